//! Counts per HTTP status in a fixed table: O(1) to add, bounded in size.

use std::fmt;

/// The colour classes of the status panes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatusClass {
    Success,
    Redirect,
    ClientError,
    ServerError,
    /// No HTTP status: timeout, refused, TLS, body over the cap…
    Transport,
}

impl StatusClass {
    #[must_use]
    pub fn of(status: Option<u16>) -> Self {
        match status {
            Some(100..=299) => Self::Success,
            Some(300..=399) => Self::Redirect,
            Some(400..=499) => Self::ClientError,
            Some(_) => Self::ServerError,
            None => Self::Transport,
        }
    }

    pub const ALL: [Self; 5] = [
        Self::Success,
        Self::Redirect,
        Self::ClientError,
        Self::ServerError,
        Self::Transport,
    ];

    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Success => "2xx",
            Self::Redirect => "3xx",
            Self::ClientError => "4xx",
            Self::ServerError => "5xx",
            Self::Transport => "transport",
        }
    }

    #[must_use]
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for StatusClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

const FIRST: u16 = 100;
const SLOTS: usize = 900;

/// Attempts per HTTP status (100–999).
#[derive(Clone, PartialEq, Eq)]
pub struct StatusCounts {
    counts: Box<[u64; SLOTS]>,
    total: u64,
}

impl Default for StatusCounts {
    fn default() -> Self {
        Self {
            counts: Box::new([0; SLOTS]),
            total: 0,
        }
    }
}

impl fmt::Debug for StatusCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl StatusCounts {
    /// Count one status; values outside 100–999 are not HTTP statuses and are ignored.
    pub fn add(&mut self, status: u16) {
        if let Some(slot) = status
            .checked_sub(FIRST)
            .and_then(|i| self.counts.get_mut(usize::from(i)))
        {
            *slot += 1;
            self.total += 1;
        }
    }

    #[must_use]
    pub fn get(&self, status: u16) -> u64 {
        status
            .checked_sub(FIRST)
            .and_then(|i| self.counts.get(usize::from(i)))
            .copied()
            .unwrap_or(0)
    }

    #[must_use]
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Statuses with a non-zero count, ascending.
    pub fn iter(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        (FIRST..)
            .zip(self.counts.iter().copied())
            .filter(|(_, count)| *count > 0)
    }

    #[must_use]
    pub fn class_total(&self, class: StatusClass) -> u64 {
        self.iter()
            .filter(|(status, _)| StatusClass::of(Some(*status)) == class)
            .map(|(_, count)| count)
            .sum()
    }
}
