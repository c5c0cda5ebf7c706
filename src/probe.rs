//! The probe engine: the edge that spends the user's money, carefully.
//!
//! [`Engine::spawn`] starts it on the current tokio runtime from a resolved
//! [`crate::config::EngineConfig`]. It sends [`Event`]s (facts and live notices) over a bounded
//! channel (awaiting when the consumer is behind: nothing is dropped) and takes
//! [`EngineCommand`]s through its
//! [`EngineHandle`]. Classification and decisions are the Core's pure functions; this module adds
//! the network, the clock, the limits and the scheduling.

mod engine;
pub mod http;
pub mod limits;

pub use crate::event::{EngineCommand, Event, Scope};
pub use engine::{Engine, EngineError, EngineHandle, STOP_GRACE};

/// A good size for the event channel: deep enough to ride out a redraw, small enough to bound memory.
pub const EVENT_CHANNEL_CAPACITY: usize = 1024;
