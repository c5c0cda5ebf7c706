//! Per-key accounts (in-flight count, rate windows, quota, balance) and the async job store.
//! The hot path touches only atomics; the key map is read-locked, and jobs take a lock only on
//! the async routes.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use serde_json::Value;

use super::dialect::JobFailure;

/// Money is kept in millionths of the profile's unit, so atomics can hold it.
pub const MONEY_SCALE: f64 = 1_000_000.0;

#[must_use]
pub fn to_micro(amount: f64) -> i64 {
    // Scenario amounts are validated finite and non-negative; the cast saturates anyway.
    (amount * MONEY_SCALE).round() as i64
}

#[must_use]
pub fn from_micro(micro: i64) -> f64 {
    micro as f64 / MONEY_SCALE
}

/// One API key's account.
#[derive(Debug)]
pub struct Account {
    in_flight: AtomicU32,
    /// (window index << 32) | requests counted in that window.
    minute: AtomicU64,
    second: AtomicU64,
    successes: AtomicU64,
    /// Scrape requests that got past the key check.
    requests: AtomicU64,
    /// Remaining balance in micro-units; `i64::MAX` when bottomless.
    balance: AtomicI64,
    spent: AtomicI64,
}

impl Account {
    fn new(balance: Option<f64>) -> Self {
        Self {
            in_flight: AtomicU32::new(0),
            minute: AtomicU64::new(0),
            second: AtomicU64::new(0),
            successes: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            balance: AtomicI64::new(balance.map_or(i64::MAX, to_micro)),
            spent: AtomicI64::new(0),
        }
    }

    /// Take an in-flight slot, or report the number in flight when the limit is reached.
    pub fn enter(self: &Arc<Self>, limit: Option<u32>) -> Result<InFlight, u32> {
        let current = self.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        if let Some(limit) = limit
            && current > limit
        {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(current - 1);
        }
        Ok(InFlight {
            account: Arc::clone(self),
        })
    }

    #[must_use]
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Count a request in the minute window `window`; `Err(used)` when `limit` is reached.
    pub fn take_minute(&self, window: u64, limit: u32) -> Result<u32, u32> {
        take(&self.minute, window, limit)
    }

    pub fn take_second(&self, window: u64, limit: u32) -> Result<u32, u32> {
        take(&self.second, window, limit)
    }

    /// Requests counted so far in minute window `window`.
    #[must_use]
    pub fn minute_used(&self, window: u64) -> u32 {
        let packed = self.minute.load(Ordering::Acquire);
        if packed >> 32 == window & 0xffff_ffff {
            (packed & 0xffff_ffff) as u32
        } else {
            0
        }
    }

    #[must_use]
    pub fn successes(&self) -> u64 {
        self.successes.load(Ordering::Acquire)
    }

    #[must_use]
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Acquire)
    }

    pub fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::AcqRel);
    }

    pub fn count_success(&self) {
        self.successes.fetch_add(1, Ordering::AcqRel);
    }

    /// Remaining balance, `None` when bottomless.
    #[must_use]
    pub fn balance(&self) -> Option<f64> {
        let micro = self.balance.load(Ordering::Acquire);
        (micro != i64::MAX).then(|| from_micro(micro.max(0)))
    }

    #[must_use]
    pub fn can_afford(&self, price_micro: i64) -> bool {
        self.balance.load(Ordering::Acquire) >= price_micro
    }

    pub fn charge(&self, micro: i64) {
        if micro <= 0 {
            return;
        }
        self.spent.fetch_add(micro, Ordering::AcqRel);
        let _ = self
            .balance
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |balance| {
                (balance != i64::MAX).then(|| balance.saturating_sub(micro))
            });
    }

    #[must_use]
    pub fn spent(&self) -> f64 {
        from_micro(self.spent.load(Ordering::Acquire))
    }
}

fn take(slot: &AtomicU64, window: u64, limit: u32) -> Result<u32, u32> {
    let window = window & 0xffff_ffff;
    let mut packed = slot.load(Ordering::Acquire);
    loop {
        let used = if packed >> 32 == window {
            (packed & 0xffff_ffff) as u32
        } else {
            0
        };
        if used >= limit {
            return Err(used);
        }
        let next = (window << 32) | u64::from(used + 1);
        match slot.compare_exchange_weak(packed, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Ok(used + 1),
            Err(actual) => packed = actual,
        }
    }
}

/// An in-flight slot, released when dropped (also when the client goes away mid-request).
#[derive(Debug)]
pub struct InFlight {
    account: Arc<Account>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.account.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Keys seen so far. Past `MAX_KEYS` distinct keys, the rest share one account, so a client
/// sending random keys cannot grow memory without bound.
#[derive(Debug)]
pub struct AccountBook {
    accounts: RwLock<HashMap<String, Arc<Account>>>,
    overflow: Arc<Account>,
    balance: Option<f64>,
}

const MAX_KEYS: usize = 1024;

impl AccountBook {
    #[must_use]
    pub fn new(balance: Option<f64>) -> Self {
        Self {
            accounts: RwLock::new(HashMap::new()),
            overflow: Arc::new(Account::new(balance)),
            balance,
        }
    }

    #[must_use]
    pub fn get(&self, key: &str) -> Arc<Account> {
        if let Some(account) = self
            .accounts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
        {
            return Arc::clone(account);
        }
        let mut accounts = self
            .accounts
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(account) = accounts.get(key) {
            return Arc::clone(account);
        }
        if accounts.len() >= MAX_KEYS {
            return Arc::clone(&self.overflow);
        }
        let account = Arc::new(Account::new(self.balance));
        accounts.insert(key.to_owned(), Arc::clone(&account));
        account
    }
}

/// How an async job ends.
#[derive(Debug, Clone)]
pub enum JobEnd {
    /// The whole scrape response, as the sync endpoint would have sent it.
    Completed(Value),
    Failed(JobFailure),
}

#[derive(Debug, Clone)]
pub struct Job {
    pub url: String,
    pub created: Duration,
    pub queued_for: Duration,
    pub works_for: Duration,
    pub end: JobEnd,
}

/// Where a job stands at a moment, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobPhase {
    Queued,
    Processing,
    Ended,
}

impl Job {
    #[must_use]
    pub fn phase_at(&self, elapsed: Duration) -> (JobPhase, Duration) {
        let started = self.created + self.queued_for;
        let ended = started + self.works_for;
        if elapsed < started {
            (JobPhase::Queued, self.created)
        } else if elapsed < ended {
            (JobPhase::Processing, started)
        } else {
            (JobPhase::Ended, ended)
        }
    }
}

/// Jobs by id, the oldest forgotten past `MAX_JOBS`.
#[derive(Debug, Default)]
pub struct JobStore {
    inner: Mutex<JobsInner>,
}

#[derive(Debug, Default)]
struct JobsInner {
    jobs: HashMap<String, Job>,
    order: VecDeque<String>,
}

const MAX_JOBS: usize = 10_000;

impl JobStore {
    pub fn insert(&self, id: String, job: Job) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.order.len() >= MAX_JOBS
            && let Some(oldest) = inner.order.pop_front()
        {
            inner.jobs.remove(&oldest);
        }
        inner.order.push_back(id.clone());
        inner.jobs.insert(id, job);
    }

    #[must_use]
    pub fn get(&self, id: &str) -> Option<Job> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .jobs
            .get(id)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_slots_are_released_on_drop() {
        let account = Arc::new(Account::new(None));
        let first = account.enter(Some(1)).unwrap();
        assert_eq!(account.enter(Some(1)).unwrap_err(), 1);
        drop(first);
        assert!(account.enter(Some(1)).is_ok());
        assert_eq!(account.in_flight(), 0);
    }

    #[test]
    fn minute_window_counts_and_resets() {
        let account = Account::new(None);
        assert_eq!(account.take_minute(7, 2), Ok(1));
        assert_eq!(account.take_minute(7, 2), Ok(2));
        assert_eq!(account.take_minute(7, 2), Err(2));
        assert_eq!(account.minute_used(7), 2);
        assert_eq!(account.take_minute(8, 2), Ok(1));
    }

    #[test]
    fn balance_runs_down_and_bottomless_stays() {
        let account = Account::new(Some(2.0));
        assert!(account.can_afford(to_micro(1.5)));
        account.charge(to_micro(1.5));
        assert_eq!(account.balance(), Some(0.5));
        assert!(!account.can_afford(to_micro(1.0)));
        let rich = Account::new(None);
        rich.charge(to_micro(5.0));
        assert_eq!(rich.balance(), None);
        assert!((rich.spent() - 5.0).abs() < 1e-9);
    }

    #[test]
    fn job_phases_follow_time() {
        let job = Job {
            url: String::new(),
            created: Duration::from_secs(10),
            queued_for: Duration::from_secs(1),
            works_for: Duration::from_secs(2),
            end: JobEnd::Completed(Value::Null),
        };
        assert_eq!(job.phase_at(Duration::from_secs(10)).0, JobPhase::Queued);
        assert_eq!(
            job.phase_at(Duration::from_secs(11)).0,
            JobPhase::Processing
        );
        assert_eq!(job.phase_at(Duration::from_secs(13)).0, JobPhase::Ended);
    }
}
