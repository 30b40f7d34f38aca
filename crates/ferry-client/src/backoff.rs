//! Retry policy: exponential backoff with jitter that always ends.
//!
//! Every retry loop in ferry-client takes a [`BackoffConfig`] and walks a [`Backoff`]; there
//! is no bare `loop { sleep }`. A `Backoff` ends when its deadline passes or, if set, when its
//! attempt cap is reached — whichever comes first. The deadline is not optional, so no
//! policy can retry forever.
//!
//! Defaults (see [`BackoffConfig::default`]): first delay 100 ms, doubling up to 10 s, ±20 %
//! jitter, at most 2 minutes in total, no attempt cap. The total bound follows the reasoning
//! of object_store's `RetryConfig` and the Java client's `delivery.timeout.ms` (2 minutes):
//! long enough to ride out a leader election or a rolling restart, short enough that a
//! broken cluster surfaces as an error the operator sees.
//!
//! # References
//! - rskafka `src/backoff.rs`; object_store `RetryConfig`
//! - KIP-580 (exponential backoff for Kafka clients)

use std::time::{Duration, Instant};

use crate::config::ConfigError;

/// Backoff policy. Build with [`BackoffConfig::default`] and the `with_*` methods; check it with
/// [`BackoffConfig::validate`] (the connection config builder does so).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffConfig {
    initial: Duration,
    max: Duration,
    multiplier: f64,
    jitter: f64,
    deadline: Duration,
    max_attempts: Option<u32>,
}

impl Default for BackoffConfig {
    /// 100 ms initial, ×2, capped at 10 s, ±20 % jitter, 2-minute deadline, no attempt cap.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            multiplier: 2.0,
            jitter: 0.2,
            deadline: Duration::from_secs(120),
            max_attempts: None,
        }
    }
}

impl BackoffConfig {
    /// First delay.
    #[must_use]
    pub fn with_initial(mut self, initial: Duration) -> Self {
        self.initial = initial;
        self
    }

    /// Largest delay.
    #[must_use]
    pub fn with_max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// Growth factor per attempt (≥ 1).
    #[must_use]
    pub fn with_multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// Relative jitter in `[0, 1]`: each delay is scaled by a random factor in
    /// `[1 - jitter, 1 + jitter]` (and still capped at `max`).
    #[must_use]
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// Total time after which no further retry is attempted.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Maximum number of retries (not counting the first attempt); `None` = deadline only.
    #[must_use]
    pub fn with_max_attempts(mut self, max_attempts: Option<u32>) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// The deadline.
    #[must_use]
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Checks the cross-field rules: `initial ≤ max`, `multiplier ≥ 1`, `jitter ∈ [0, 1]`,
    /// a non-zero deadline.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: &str| ConfigError::InvalidValue {
            field: "backoff",
            message: message.to_owned(),
        };
        if self.initial > self.max {
            return Err(invalid("initial delay is larger than the maximum delay"));
        }
        if !(self.multiplier >= 1.0 && self.multiplier.is_finite()) {
            return Err(invalid("multiplier must be a finite number >= 1"));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(invalid("jitter must be within [0, 1]"));
        }
        if self.deadline.is_zero() {
            return Err(invalid("deadline must be positive"));
        }
        Ok(())
    }

    /// Starts a retry sequence now.
    #[must_use]
    pub fn start(&self) -> Backoff {
        self.start_at(Instant::now())
    }

    /// Starts a retry sequence at `now` (for tests and simulations).
    #[must_use]
    pub fn start_at(&self, now: Instant) -> Backoff {
        Backoff {
            config: *self,
            started: now,
            attempts: 0,
            next: self.initial,
        }
    }
}

/// One retry sequence. Call [`Backoff::next_delay`] after each failed attempt.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    started: Instant,
    attempts: u32,
    next: Duration,
}

impl Backoff {
    /// The delay before the next attempt, or `None` when the policy is exhausted.
    pub fn next_delay(&mut self) -> Option<Duration> {
        self.next_delay_at(Instant::now(), rand::random::<f64>())
    }

    /// As [`Backoff::next_delay`], with the clock and the random draw (`[0, 1)`) supplied.
    pub fn next_delay_at(&mut self, now: Instant, random: f64) -> Option<Duration> {
        if let Some(cap) = self.config.max_attempts
            && self.attempts >= cap
        {
            return None;
        }
        let elapsed = now.saturating_duration_since(self.started);
        let remaining = self.config.deadline.checked_sub(elapsed)?;
        if remaining.is_zero() {
            return None;
        }
        self.attempts = self.attempts.saturating_add(1);
        let base = self.next.min(self.config.max);
        let factor = 1.0 + self.config.jitter * (2.0 * random.clamp(0.0, 1.0) - 1.0);
        let delay = base.mul_f64(factor.max(0.0)).min(self.config.max);
        self.next = base.mul_f64(self.config.multiplier).min(self.config.max);
        // Never sleep past the deadline.
        Some(delay.min(remaining))
    }

    /// Retries granted so far.
    #[must_use]
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Time since the sequence started.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_loop_terminates_by_deadline() {
        // A loop whose operation always fails ends once the virtual clock passes the deadline.
        let cfg = BackoffConfig::default().with_deadline(Duration::from_secs(30));
        cfg.validate().unwrap();
        let t0 = Instant::now();
        let mut now = t0;
        let mut backoff = cfg.start_at(t0);
        let mut attempts = 0u32;
        while let Some(d) = backoff.next_delay_at(now, 0.999) {
            attempts += 1;
            assert!(d <= Duration::from_secs(10) || d <= cfg.deadline());
            now += d;
            assert!(attempts < 10_000, "backoff never ended");
        }
        assert!(now.duration_since(t0) <= Duration::from_secs(30));
        assert!(attempts > 3);
    }

    #[test]
    fn retry_loop_terminates_by_attempts() {
        let cfg = BackoffConfig::default().with_max_attempts(Some(4));
        let mut b = cfg.start();
        let mut n = 0;
        while b.next_delay_at(Instant::now(), 0.5).is_some() {
            n += 1;
        }
        assert_eq!(n, 4);
    }

    #[test]
    fn delays_grow_and_cap_with_bounded_jitter() {
        let cfg = BackoffConfig::default()
            .with_initial(Duration::from_millis(100))
            .with_max(Duration::from_millis(800))
            .with_jitter(0.5)
            .with_deadline(Duration::from_secs(3600));
        let t0 = Instant::now();
        let mut b = cfg.start_at(t0);
        let no_jitter: Vec<_> = (0..6).map(|_| b.next_delay_at(t0, 0.5).unwrap()).collect();
        let ms: Vec<u128> = no_jitter.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, vec![100, 200, 400, 800, 800, 800]);
        let mut b = cfg.start_at(t0);
        let low = b.next_delay_at(t0, 0.0).unwrap();
        assert_eq!(low, Duration::from_millis(50));
        let mut b = cfg.start_at(t0);
        let high = b.next_delay_at(t0, 1.0).unwrap();
        assert_eq!(high, Duration::from_millis(150));
    }

    #[test]
    fn validation() {
        assert!(BackoffConfig::default().validate().is_ok());
        assert!(
            BackoffConfig::default()
                .with_jitter(1.5)
                .validate()
                .is_err()
        );
        assert!(
            BackoffConfig::default()
                .with_multiplier(0.5)
                .validate()
                .is_err()
        );
        assert!(
            BackoffConfig::default()
                .with_deadline(Duration::ZERO)
                .validate()
                .is_err()
        );
        assert!(
            BackoffConfig::default()
                .with_initial(Duration::from_secs(20))
                .validate()
                .is_err()
        );
    }
}
