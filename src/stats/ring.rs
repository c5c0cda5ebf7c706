//! A fixed ring of per-second buckets: the last minutes of a session, for sparklines and "last
//! minute" figures, in constant memory.

use std::time::Duration;

use super::{CauseCounts, StatusClass};
use crate::outcome::{Cause, Outcome};

/// What happened during one second.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecondBucket {
    /// Unix second this bucket holds; buckets of older seconds are reused.
    pub second: i64,
    pub attempts: u32,
    pub succeeded: u32,
    /// API-layer answers by class.
    pub api_classes: [u32; 5],
    /// Target-layer answers by class (attempts that carried a target status).
    pub target_classes: [u32; 5],
    /// API statuses seen this second (few distinct per second; bounded).
    pub api_statuses: Vec<(u16, u32)>,
    pub target_statuses: Vec<(u16, u32)>,
    pub throttled: u32,
    pub max_in_flight: u32,
    pub latency_max: Duration,
    /// Failures by cause.
    pub causes: [u32; Cause::COUNT],
}

/// Distinct statuses kept per bucket; more are counted in their class only.
const STATUSES_PER_BUCKET: usize = 16;

fn add_status(list: &mut Vec<(u16, u32)>, status: u16) {
    if let Some(entry) = list.iter_mut().find(|(s, _)| *s == status) {
        entry.1 += 1;
    } else if list.len() < STATUSES_PER_BUCKET {
        list.push((status, 1));
    }
}

impl SecondBucket {
    fn reset(&mut self, second: i64) {
        self.second = second;
        self.attempts = 0;
        self.succeeded = 0;
        self.api_classes = [0; 5];
        self.target_classes = [0; 5];
        self.api_statuses.clear();
        self.target_statuses.clear();
        self.throttled = 0;
        self.max_in_flight = 0;
        self.latency_max = Duration::ZERO;
        self.causes = [0; Cause::COUNT];
    }

    pub(super) fn record(&mut self, outcome: &Outcome, succeeded: bool, in_flight: u32) {
        self.attempts += 1;
        self.succeeded += u32::from(succeeded);
        self.api_classes[StatusClass::of(outcome.api_status).index()] += 1;
        if let Some(status) = outcome.api_status {
            add_status(&mut self.api_statuses, status);
        }
        if let Some(status) = outcome.target_status {
            self.target_classes[StatusClass::of(Some(status)).index()] += 1;
            add_status(&mut self.target_statuses, status);
        }
        self.throttled += u32::from(outcome.throttled());
        if let Some(cause) = outcome.cause() {
            self.causes[cause.index()] += 1;
        }
        self.max_in_flight = self.max_in_flight.max(in_flight);
        self.latency_max = self.latency_max.max(outcome.latency);
    }

    pub(super) fn note_in_flight(&mut self, in_flight: u32) {
        self.max_in_flight = self.max_in_flight.max(in_flight);
    }
}

/// The last `capacity` seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondRing {
    buckets: Vec<SecondBucket>,
}

impl SecondRing {
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            buckets: vec![
                SecondBucket {
                    second: i64::MIN,
                    ..SecondBucket::default()
                };
                capacity.max(1)
            ],
        }
    }

    fn slot(&self, second: i64) -> usize {
        let len = i64::try_from(self.buckets.len()).unwrap_or(i64::MAX);
        usize::try_from(second.rem_euclid(len)).unwrap_or(0)
    }

    /// The bucket for `second`, emptied first if it held an older second. An arrival for a second
    /// whose slot already holds a newer one is folded into that newer bucket: memory stays fixed at
    /// the cost of one slightly misplaced count.
    pub fn bucket_mut(&mut self, second: i64) -> &mut SecondBucket {
        let slot = self.slot(second);
        let bucket = &mut self.buckets[slot];
        if bucket.second < second {
            bucket.reset(second);
        }
        bucket
    }

    /// The `seconds` seconds up to and including `now_second`, oldest first, borrowed: `None`
    /// for a second with nothing recorded. What the panes read on every frame.
    pub fn seconds(
        &self,
        now_second: i64,
        seconds: usize,
    ) -> impl Iterator<Item = Option<&SecondBucket>> + '_ {
        let seconds = seconds.min(self.buckets.len());
        let span = i64::try_from(seconds).unwrap_or(0);
        (now_second - span + 1..=now_second).map(move |second| {
            let bucket = &self.buckets[self.slot(second)];
            (bucket.second == second).then_some(bucket)
        })
    }

    /// Totals over the window: statuses per layer and class counts.
    #[must_use]
    pub fn summarize(&self, now_second: i64, seconds: usize) -> WindowSummary {
        let mut summary = WindowSummary::default();
        for bucket in self.seconds(now_second, seconds).flatten() {
            summary.attempts += u64::from(bucket.attempts);
            summary.succeeded += u64::from(bucket.succeeded);
            summary.throttled += u64::from(bucket.throttled);
            for cause in Cause::all() {
                summary
                    .causes
                    .add(cause, u64::from(bucket.causes[cause.index()]));
            }
            for (total, count) in summary.api_classes.iter_mut().zip(bucket.api_classes) {
                *total += u64::from(count);
            }
            for (total, count) in summary.target_classes.iter_mut().zip(bucket.target_classes) {
                *total += u64::from(count);
            }
            for &(status, count) in &bucket.api_statuses {
                merge(&mut summary.api_statuses, status, count);
            }
            for &(status, count) in &bucket.target_statuses {
                merge(&mut summary.target_statuses, status, count);
            }
        }
        summary.api_statuses.sort_unstable();
        summary.target_statuses.sort_unstable();
        summary
    }
}

fn merge(list: &mut Vec<(u16, u64)>, status: u16, count: u32) {
    match list.iter_mut().find(|(s, _)| *s == status) {
        Some(entry) => entry.1 += u64::from(count),
        None => list.push((status, u64::from(count))),
    }
}

/// Totals over a window of seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowSummary {
    pub attempts: u64,
    pub succeeded: u64,
    pub throttled: u64,
    pub api_classes: [u64; 5],
    pub target_classes: [u64; 5],
    pub api_statuses: Vec<(u16, u64)>,
    pub target_statuses: Vec<(u16, u64)>,
    pub causes: CauseCounts,
}
