//! Client-side limits per provider: a concurrency gate and a request pacer, both adjustable while
//! running. Built on tokio's clock so tests can pause it.
//!
//! The pacer is a tiny GCRA (one request per interval, no burst) instead of `governor`: governor
//! keeps its own clock, which tokio's paused test clock cannot drive, and a burst of paid requests
//! is exactly what a careful prober should not send.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// At most `limit` holders at once; the limit can change at any time.
///
/// Not `tokio::sync::Semaphore`: a semaphore can only be lowered by forgetting permits that are
/// free at that moment (`forget_permits`), so lowering the limit while every place is taken would
/// need a debt kept beside it and paid back as passes return. Here lowering is one assignment: a
/// pass returned above the new limit simply lets nobody in.
#[derive(Debug)]
pub struct Gate {
    state: Mutex<GateState>,
    freed: Notify,
}

#[derive(Debug, Clone, Copy)]
struct GateState {
    in_flight: u32,
    limit: u32,
}

/// One place through a [`Gate`]; dropping it frees the place.
#[derive(Debug)]
pub struct GatePass {
    gate: Option<Arc<Gate>>,
}

impl Gate {
    #[must_use]
    pub fn new(limit: u32) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(GateState {
                in_flight: 0,
                limit: limit.max(1),
            }),
            freed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wait for a place. Returns the pass and the count in flight with it.
    pub async fn enter(self: &Arc<Self>) -> (GatePass, u32) {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Register before checking, so a place freed in between is not missed.
            freed.as_mut().enable();
            {
                let mut state = self.lock();
                if state.in_flight < state.limit {
                    state.in_flight += 1;
                    return (
                        GatePass {
                            gate: Some(Arc::clone(self)),
                        },
                        state.in_flight,
                    );
                }
            }
            freed.await;
        }
    }

    pub fn set_limit(&self, limit: u32) {
        self.lock().limit = limit.max(1);
        self.freed.notify_waiters();
    }

    #[must_use]
    pub fn limit(&self) -> u32 {
        self.lock().limit
    }

    #[must_use]
    pub fn in_flight(&self) -> u32 {
        self.lock().in_flight
    }
}

impl GatePass {
    /// Leave the gate; returns the count still in flight.
    #[must_use]
    pub fn leave(mut self) -> u32 {
        self.free()
    }

    fn free(&mut self) -> u32 {
        let Some(gate) = self.gate.take() else {
            return 0;
        };
        let remaining = {
            let mut state = gate.lock();
            state.in_flight = state.in_flight.saturating_sub(1);
            state.in_flight
        };
        gate.freed.notify_waiters();
        remaining
    }
}

impl Drop for GatePass {
    fn drop(&mut self) {
        let _ = self.free();
    }
}

/// Spaces requests at least `interval` apart; `None` means unlimited.
#[derive(Debug)]
pub struct Pacer {
    state: Mutex<PacerState>,
}

#[derive(Debug, Clone, Copy)]
struct PacerState {
    interval: Option<Duration>,
    next_slot: Option<Instant>,
}

impl Pacer {
    #[must_use]
    pub fn new(interval: Option<Duration>) -> Self {
        Self {
            state: Mutex::new(PacerState {
                interval,
                next_slot: None,
            }),
        }
    }

    pub fn set_interval(&self, interval: Option<Duration>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.interval = interval;
        state.next_slot = None;
    }

    /// Reserve the next free slot and wait for it.
    pub async fn wait_turn(&self) {
        let slot = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(interval) = state.interval else {
                return;
            };
            let now = Instant::now();
            let slot = state.next_slot.map_or(now, |next| next.max(now));
            state.next_slot = Some(slot + interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_pacer_spaces_requests() {
        let pacer = Pacer::new(Some(Duration::from_millis(500)));
        let start = Instant::now();
        for _ in 0..5 {
            pacer.wait_turn().await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        pacer.set_interval(None);
        let before = Instant::now();
        pacer.wait_turn().await;
        assert_eq!(before.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn the_gate_holds_the_limit_and_follows_changes() {
        let gate = Gate::new(2);
        let (a, one) = gate.enter().await;
        let (_b, two) = gate.enter().await;
        assert_eq!((one, two), (1, 2));
        let waiting = tokio::spawn({
            let gate = Arc::clone(&gate);
            async move { gate.enter().await.1 }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiting.is_finished(), "a third must wait at limit 2");
        assert_eq!(a.leave(), 1);
        assert_eq!(waiting.await.unwrap(), 2);
        gate.set_limit(5);
        // The waiter's pass dropped when its task ended: only `_b` is still inside.
        let (_c, now_inside) = gate.enter().await;
        assert_eq!(now_inside, 2);
    }
}
