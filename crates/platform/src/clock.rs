//! Time: every decision that depends on the time of day asks one injected [`Clock`].
//!
//! Payments settle, expire and are retried at times; tokens, sessions, links and codes
//! expire. All of it reads [`Platform::now_ms`](crate::Platform::now_ms), which asks the
//! clock in [`PlatformConfig::clock`](crate::PlatformConfig): the [`SystemClock`] in a
//! server, a [`ManualClock`] in tests that advance time instead of sleeping. The only other
//! reader of the system's time is [`system_now_ms`], for records of the infrastructure
//! itself (when a row or a migration was written, a node's heartbeat), which are never
//! decided on a partner's behalf. Durations (latencies, timeouts, rate limits) are measured
//! with monotonic `Instant`s, not read from here.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// A source of the current time, in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> i64;
}

/// A clock shared by everything that runs on one platform.
pub type SharedClock = Arc<dyn Clock>;

/// The system's time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        system_now_ms()
    }
}

/// The system's time, for records of the infrastructure itself (see the module doc).
pub fn system_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A time in milliseconds since 1970 as a UTC date-time (`None` out of `time`'s range).
pub fn utc(ms: i64) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// An RFC 3339 time in UTC with exactly three decimals (`2030-01-01T00:30:00.000Z`), one
/// width for every value; empty past the year 9999.
pub fn iso_millis(ms: i64) -> String {
    utc(ms)
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// A clock that stands still until it is moved: tests advance it instead of sleeping.
/// After moving it, await [`Platform::wake`](crate::Platform::wake): the writer settles what
/// became due and answers once that is committed.
#[derive(Debug)]
pub struct ManualClock {
    now: AtomicI64,
}

impl ManualClock {
    /// A clock standing at the system's time now.
    pub fn starting_now() -> Arc<ManualClock> {
        Arc::new(ManualClock {
            now: AtomicI64::new(system_now_ms()),
        })
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.now.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::starting_now();
        let start = clock.now_ms();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(clock.now_ms(), start);
        clock.advance(Duration::from_secs(3600));
        assert_eq!(clock.now_ms(), start + 3_600_000);
    }
}
