//! Joining an async job's 202 and the client's later polls into one outcome (pure).
//!
//! The 202 queues the job; each poll the client sends is read with the profile's job shape; the
//! poll that finds the job ended makes the attempt's outcome, with the job kept and the latency
//! counted from the submission, as the engine does for its own jobs. Pending jobs are bounded in
//! number and age: one the client stopped polling is reported as abandoned, not kept forever.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};

use crate::outcome::{Fault, Outcome, Retryable};

/// Jobs waiting for the client's polls, at most.
pub const MAX_PENDING_JOBS: usize = 10_000;

/// What one poll (or the 202) did to the job.
#[derive(Debug, Clone, PartialEq)]
pub enum JobStep {
    /// Queued or still running: the provider's status word.
    Pending { job_id: String, status: String },
    /// The job ended: its attempt's outcome.
    Ended(Box<Outcome>),
}

#[derive(Debug, Clone)]
struct PendingJob {
    queued: Outcome,
    submitted_at: DateTime<Utc>,
}

/// The jobs the proxy saw queued and not yet ended.
#[derive(Debug, Default)]
pub struct Jobs {
    pending: HashMap<(String, String), PendingJob>,
    /// Submission order, for evicting the oldest.
    order: VecDeque<(String, String)>,
}

/// How a poll ended, as the caller read it.
#[derive(Debug, Clone, PartialEq)]
pub enum PollRead {
    /// The poll answered and the job is still running.
    Pending(String),
    /// The job completed: the classified result (its own latency and job ref are set here).
    Completed(Box<Outcome>),
    /// The job failed or timed out on the provider's side, or its status could not be read.
    Failed(String),
    /// The poll itself failed (a 401, a 404, a 5xx…): its classified outcome.
    PollFailed(Box<Outcome>),
}

impl Jobs {
    /// A 202 queued `queued.job`. Returns the jobs evicted to make room (abandoned by the client),
    /// as ended attempts.
    pub fn submit(
        &mut self,
        queued: Outcome,
        now: DateTime<Utc>,
        max_age: chrono::TimeDelta,
    ) -> Vec<Outcome> {
        let Some(job) = &queued.job else {
            return Vec::new();
        };
        let key = (queued.provider.clone(), job.id.clone());
        let mut evicted = self.expire(now, max_age);
        while self.pending.len() >= MAX_PENDING_JOBS {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(job) = self.pending.remove(&oldest) {
                evicted.push(abandoned(
                    job,
                    now,
                    "the proxy's pending-job table was full",
                ));
            }
        }
        if self
            .pending
            .insert(
                key.clone(),
                PendingJob {
                    queued,
                    submitted_at: now,
                },
            )
            .is_none()
        {
            self.order.push_back(key);
        }
        evicted
    }

    /// Jobs older than `max_age`, as abandoned attempts.
    pub fn expire(&mut self, now: DateTime<Utc>, max_age: chrono::TimeDelta) -> Vec<Outcome> {
        let mut expired = Vec::new();
        while let Some(oldest) = self.order.front() {
            let Some(job) = self.pending.get(oldest) else {
                self.order.pop_front();
                continue;
            };
            if now - job.submitted_at < max_age {
                break;
            }
            let Some(key) = self.order.pop_front() else {
                break;
            };
            if let Some(job) = self.pending.remove(&key) {
                expired.push(abandoned(job, now, "no poll saw it end"));
            }
        }
        expired
    }

    /// Jobs still pending.
    #[must_use]
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Join one poll of `job_id` to its job. A poll of a job the proxy did not see queued (it was
    /// started before the proxy) still ends as an attempt when it finds the job ended.
    pub fn poll(
        &mut self,
        provider: &str,
        job_id: &str,
        read: PollRead,
        now: DateTime<Utc>,
    ) -> JobStep {
        let key = (provider.to_owned(), job_id.to_owned());
        let transient = |outcome: &Outcome| {
            outcome.class.retryable.allows_plain_retry() && !outcome.class.account_stop
        };
        match read {
            PollRead::Pending(status) => JobStep::Pending {
                job_id: job_id.to_owned(),
                status,
            },
            // A transient poll failure (a 429, a 503) leaves the job running: the client polls again.
            PollRead::PollFailed(outcome)
                if transient(&outcome) && self.pending.contains_key(&key) =>
            {
                JobStep::Pending {
                    job_id: job_id.to_owned(),
                    status: format!(
                        "poll failed ({}), still pending",
                        outcome.api_status.map_or_else(
                            || outcome.transport.label().to_owned(),
                            |s| s.to_string()
                        )
                    ),
                }
            }
            PollRead::Completed(mut result) => {
                if let Some(job) = self.take(&key) {
                    job.join(&mut result, now);
                }
                JobStep::Ended(result)
            }
            PollRead::PollFailed(mut outcome) => {
                let job = self.take(&key);
                outcome.message = Some(format!(
                    "job poll failed: {}",
                    outcome.message.unwrap_or_default()
                ));
                outcome.api_success = false;
                if let Some(job) = job {
                    job.join(&mut outcome, now);
                }
                JobStep::Ended(outcome)
            }
            PollRead::Failed(detail) => match self.take(&key) {
                Some(job) => JobStep::Ended(Box::new(job_failed(job, now, &detail))),
                None => JobStep::Pending {
                    job_id: job_id.to_owned(),
                    status: format!("{detail} (a job the proxy did not see queued)"),
                },
            },
        }
    }

    fn take(&mut self, key: &(String, String)) -> Option<PendingJob> {
        let job = self.pending.remove(key)?;
        if let Some(at) = self.order.iter().position(|queued| queued == key) {
            self.order.remove(at);
        }
        Some(job)
    }

    /// Every job still pending, as abandoned attempts (the proxy is stopping).
    pub fn drain(&mut self, now: DateTime<Utc>) -> Vec<Outcome> {
        self.order.clear();
        let mut left: Vec<PendingJob> = self.pending.drain().map(|(_, job)| job).collect();
        left.sort_by_key(|job| job.submitted_at);
        left.into_iter()
            .map(|job| abandoned(job, now, "still pending when the proxy stopped"))
            .collect()
    }
}

impl PendingJob {
    /// The poll's outcome becomes the job's: the submitting attempt's identity, target and
    /// options, and the latency from submission to this poll.
    fn join(self, outcome: &mut Outcome, now: DateTime<Utc>) {
        outcome.attempt_id = self.queued.attempt_id;
        outcome.started_at = self.queued.started_at;
        outcome.target_url = self.queued.target_url;
        outcome.options = self.queued.options;
        outcome.latency =
            (now - self.submitted_at).to_std().unwrap_or_default() + self.queued.latency;
        outcome.job = self.queued.job;
    }
}

fn job_failed(job: PendingJob, now: DateTime<Utc>, detail: &str) -> Outcome {
    let mut outcome = job.queued;
    outcome.api_success = false;
    outcome.latency += (now - job.submitted_at).to_std().unwrap_or_default();
    outcome.message = Some(detail.to_owned());
    outcome.class.fault = Fault::Provider;
    outcome.class.retryable = Retryable::No;
    outcome.class.meaning = Some("async job did not complete".to_owned());
    outcome
}

fn abandoned(job: PendingJob, now: DateTime<Utc>, why: &str) -> Outcome {
    let mut outcome = job_failed(job, now, &format!("job not followed to its end: {why}"));
    outcome.class.fault = Fault::Client;
    outcome.class.meaning = Some("async job abandoned by the client".to_owned());
    outcome
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone};

    use super::*;
    use crate::fixture::{Attempt, outcome};
    use crate::outcome::JobRef;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap() + TimeDelta::seconds(seconds)
    }

    fn queued(id: &str) -> Outcome {
        let mut queued = outcome(&Attempt::default());
        queued.provider = "alterlab".to_owned();
        queued.attempt_id = 9;
        queued.api_status = Some(202);
        queued.target_url = "https://slow.example/".to_owned();
        queued.job = Some(JobRef {
            id: id.to_owned(),
            poll_path: format!("/api/v1/jobs/{id}"),
        });
        queued
    }

    const HOUR: TimeDelta = TimeDelta::hours(1);

    #[test]
    fn the_polls_join_the_202_into_one_outcome() {
        let mut jobs = Jobs::default();
        assert!(jobs.submit(queued("j1"), at(0), HOUR).is_empty());
        assert_eq!(
            jobs.poll(
                "alterlab",
                "j1",
                PollRead::Pending("processing".to_owned()),
                at(2)
            ),
            JobStep::Pending {
                job_id: "j1".to_owned(),
                status: "processing".to_owned()
            }
        );
        let mut result = outcome(&Attempt::default());
        result.provider = "alterlab".to_owned();
        result.attempt_id = 55;
        let JobStep::Ended(ended) = jobs.poll(
            "alterlab",
            "j1",
            PollRead::Completed(Box::new(result)),
            at(5),
        ) else {
            panic!("the completed poll ends the job");
        };
        assert_eq!(ended.attempt_id, 9, "the attempt is the 202's");
        assert_eq!(ended.target_url, "https://slow.example/");
        assert_eq!(ended.job.as_ref().map(|job| job.id.as_str()), Some("j1"));
        assert!(ended.latency >= std::time::Duration::from_secs(5));
        assert!(ended.succeeded());
        assert!(jobs.is_empty());
    }

    #[test]
    fn a_failed_job_and_a_refused_poll_end_it_but_a_transient_poll_failure_does_not() {
        let mut jobs = Jobs::default();
        jobs.submit(queued("j1"), at(0), HOUR);
        let JobStep::Ended(failed) = jobs.poll(
            "alterlab",
            "j1",
            PollRead::Failed("job failed: blocked".to_owned()),
            at(3),
        ) else {
            panic!("ended");
        };
        assert!(!failed.succeeded());
        assert_eq!(failed.message.as_deref(), Some("job failed: blocked"));

        jobs.submit(queued("j2"), at(0), HOUR);
        let mut throttled = outcome(&Attempt {
            status: Some(429),
            ..Attempt::default()
        });
        throttled.class.retryable = Retryable::AfterDelay;
        assert!(matches!(
            jobs.poll(
                "alterlab",
                "j2",
                PollRead::PollFailed(Box::new(throttled)),
                at(1)
            ),
            JobStep::Pending { .. }
        ));
        let mut gone = outcome(&Attempt {
            status: Some(404),
            ..Attempt::default()
        });
        gone.class.retryable = Retryable::No;
        let JobStep::Ended(gone) = jobs.poll(
            "alterlab",
            "j2",
            PollRead::PollFailed(Box::new(gone)),
            at(2),
        ) else {
            panic!("a 404 poll ends the job");
        };
        assert!(gone.message.unwrap().starts_with("job poll failed"));
        assert!(!gone.api_success);
        assert!(jobs.is_empty());
    }

    #[test]
    fn pending_jobs_are_bounded_by_age_and_number() {
        let mut jobs = Jobs::default();
        jobs.submit(queued("old"), at(0), HOUR);
        let expired = jobs.submit(queued("new"), at(3601), HOUR);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].job.as_ref().unwrap().id, "old");
        assert_eq!(expired[0].class.fault, Fault::Client);
        assert_eq!(jobs.len(), 1);
        // One outcome built, then relabelled: building each from the profiles is slow in debug.
        let template = queued("template");
        for n in 0..MAX_PENDING_JOBS + 5 {
            let mut next = template.clone();
            next.job = Some(JobRef {
                id: format!("j{n}"),
                poll_path: String::new(),
            });
            jobs.submit(next, at(3601), HOUR);
        }
        assert_eq!(jobs.len(), MAX_PENDING_JOBS);
        assert_eq!(jobs.drain(at(3602)).len(), MAX_PENDING_JOBS);
        assert!(jobs.is_empty());
    }
}
