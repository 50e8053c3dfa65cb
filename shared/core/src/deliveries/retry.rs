//! Retry math: what an HTTP result means and when the next attempt is due. No I/O, no clock.

use serde::{Deserialize, Serialize};

/// Attempt 1 now, then +1 min, +5 min, +30 min: four attempts, then the delivery has failed.
pub const DEFAULT_RETRY_SCHEDULE: [u32; 3] = [60, 300, 1800];
/// A receiver's `Retry-After` is honoured up to this many seconds.
pub const MAX_RETRY_AFTER_SECONDS: u32 = 3600;
const MAX_SCHEDULE_ENTRIES: usize = 10;
const MAX_SCHEDULE_DELAY_SECONDS: u32 = 86_400;

/// A webhook's delays between attempts, in seconds: 1-10 of them, each 1 s to a day. Valid by
/// construction (also when read back from a store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<u32>", into = "Vec<u32>")]
pub struct RetrySchedule(Vec<u32>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetryScheduleError {
    #[error("must list 1-{MAX_SCHEDULE_ENTRIES} delays")]
    Length,
    #[error("each delay must be 1-{MAX_SCHEDULE_DELAY_SECONDS} seconds")]
    Delay,
}

impl RetrySchedule {
    pub fn new(delays: Vec<u32>) -> Result<Self, RetryScheduleError> {
        if delays.is_empty() || delays.len() > MAX_SCHEDULE_ENTRIES {
            return Err(RetryScheduleError::Length);
        }
        if delays
            .iter()
            .any(|delay| !(1..=MAX_SCHEDULE_DELAY_SECONDS).contains(delay))
        {
            return Err(RetryScheduleError::Delay);
        }
        Ok(RetrySchedule(delays))
    }

    /// A schedule written in the code, known to be valid.
    pub(crate) fn of(delays: &[u32]) -> Self {
        debug_assert!(RetrySchedule::new(delays.to_vec()).is_ok());
        RetrySchedule(delays.to_vec())
    }

    pub fn delays(&self) -> &[u32] {
        &self.0
    }

    /// The first attempt plus one per delay.
    pub fn max_attempts(&self) -> u32 {
        self.0.len() as u32 + 1
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule::of(&DEFAULT_RETRY_SCHEDULE)
    }
}

impl TryFrom<Vec<u32>> for RetrySchedule {
    type Error = RetryScheduleError;

    fn try_from(delays: Vec<u32>) -> Result<Self, Self::Error> {
        RetrySchedule::new(delays)
    }
}

impl From<RetrySchedule> for Vec<u32> {
    fn from(schedule: RetrySchedule) -> Self {
        schedule.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Succeeded,
    /// 410 Gone: the receiver says the endpoint no longer exists.
    Gone,
    Failed {
        retry_after_seconds: Option<u32>,
    },
}

/// `status` is `None` when no response arrived (timeout, connection error, refused address).
/// `Retry-After` counts on 429 and 503 only, as delta-seconds.
pub fn classify(status: Option<u16>, retry_after: Option<&str>) -> AttemptOutcome {
    match status {
        Some(200..=299) => AttemptOutcome::Succeeded,
        Some(410) => AttemptOutcome::Gone,
        Some(429 | 503) => AttemptOutcome::Failed {
            retry_after_seconds: retry_after.and_then(|value| value.trim().parse().ok()),
        },
        _ => AttemptOutcome::Failed {
            retry_after_seconds: None,
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Retry { delay_seconds: u32 },
    GiveUp,
}

/// What follows `attempts_made` attempts (in this round) ending in `outcome`; `None` after success.
/// A `Retry-After` can postpone the next attempt, never bring it forward: we retry no sooner than
/// the receiver asked nor sooner than our schedule.
pub fn next_step(
    schedule: &RetrySchedule,
    attempts_made: u32,
    outcome: &AttemptOutcome,
) -> Option<NextStep> {
    let retry_after = match outcome {
        AttemptOutcome::Succeeded => return None,
        AttemptOutcome::Gone => return Some(NextStep::GiveUp),
        AttemptOutcome::Failed {
            retry_after_seconds,
        } => *retry_after_seconds,
    };
    if attempts_made == 0 || attempts_made >= schedule.max_attempts() {
        return Some(NextStep::GiveUp);
    }
    let scheduled = schedule.0[attempts_made as usize - 1];
    let requested = retry_after.map_or(0, |seconds| seconds.clamp(1, MAX_RETRY_AFTER_SECONDS));
    Some(NextStep::Retry {
        delay_seconds: scheduled.max(requested),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> AttemptOutcome {
        classify(Some(500), None)
    }

    #[test]
    fn default_schedule_is_now_1m_5m_30m_then_failed() {
        let schedule = RetrySchedule::default();
        let delays: Vec<_> = (1..=4)
            .map(|n| next_step(&schedule, n, &failed()))
            .collect();
        assert_eq!(
            delays,
            [
                Some(NextStep::Retry { delay_seconds: 60 }),
                Some(NextStep::Retry { delay_seconds: 300 }),
                Some(NextStep::Retry {
                    delay_seconds: 1800
                }),
                Some(NextStep::GiveUp),
            ]
        );
    }

    #[test]
    fn referral_loop_schedule_makes_five_attempts() {
        let schedule = RetrySchedule::new(vec![60, 300, 900, 3600]).unwrap();
        assert_eq!(schedule.max_attempts(), 5);
        assert_eq!(
            next_step(&schedule, 4, &failed()),
            Some(NextStep::Retry {
                delay_seconds: 3600
            })
        );
        assert_eq!(next_step(&schedule, 5, &failed()), Some(NextStep::GiveUp));
    }

    #[test]
    fn retry_after_postpones_and_is_clamped() {
        let schedule = RetrySchedule::default();
        let asked =
            |value: &str, status| next_step(&schedule, 1, &classify(Some(status), Some(value)));
        assert_eq!(
            asked("120", 429),
            Some(NextStep::Retry { delay_seconds: 120 })
        );
        assert_eq!(
            asked("999999", 503),
            Some(NextStep::Retry {
                delay_seconds: 3600
            })
        );
        assert_eq!(
            asked("5", 429),
            Some(NextStep::Retry { delay_seconds: 60 }),
            "never sooner than the schedule"
        );
        assert_eq!(
            asked("soon", 429),
            Some(NextStep::Retry { delay_seconds: 60 })
        );
        assert_eq!(
            asked("120", 500),
            Some(NextStep::Retry { delay_seconds: 60 }),
            "only on 429/503"
        );
    }

    #[test]
    fn classification() {
        assert_eq!(classify(Some(204), None), AttemptOutcome::Succeeded);
        assert_eq!(classify(Some(410), None), AttemptOutcome::Gone);
        assert_eq!(
            next_step(&RetrySchedule::default(), 1, &AttemptOutcome::Gone),
            Some(NextStep::GiveUp)
        );
        assert_eq!(
            next_step(&RetrySchedule::default(), 1, &AttemptOutcome::Succeeded),
            None
        );
        for status in [None, Some(301), Some(400), Some(500)] {
            assert!(
                matches!(classify(status, None), AttemptOutcome::Failed { .. }),
                "{status:?}"
            );
        }
    }

    #[test]
    fn schedules_are_validated() {
        assert_eq!(RetrySchedule::new(vec![]), Err(RetryScheduleError::Length));
        assert_eq!(
            RetrySchedule::new(vec![1; 11]),
            Err(RetryScheduleError::Length)
        );
        assert_eq!(RetrySchedule::new(vec![0]), Err(RetryScheduleError::Delay));
        assert_eq!(
            RetrySchedule::new(vec![86_401]),
            Err(RetryScheduleError::Delay)
        );
    }
}
