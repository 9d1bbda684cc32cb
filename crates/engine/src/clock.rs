//! The engine's time, for what it measures itself (rate-limit windows, credit refills): the
//! system's, or a manual clock that tests move by hand, so windows and refills are tested
//! without sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct Clock(Arc<Source>);

enum Source {
    System {
        origin: Instant,
        unix_origin_ns: u64,
    },
    Manual {
        ns: AtomicU64,
    },
}

/// `now_ns` starts here rather than at 0: a limiter's state of 0 means "at rest", and no
/// instant should be confused with it.
const START_NS: u64 = 1_000_000_000;

impl Clock {
    pub fn system() -> Self {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self(Arc::new(Source::System {
            origin: Instant::now(),
            unix_origin_ns: u64::try_from(unix.as_nanos()).unwrap_or(0),
        }))
    }

    /// A clock that stands still at `unix_seconds` until [`advance`](Self::advance)d.
    pub fn manual(unix_seconds: i64) -> Self {
        let ns = u64::try_from(unix_seconds).unwrap_or(0) * 1_000_000_000;
        Self(Arc::new(Source::Manual {
            ns: AtomicU64::new(ns.max(START_NS)),
        }))
    }

    /// Monotonic nanoseconds (never 0): what limiter state is kept in. On the system clock
    /// it is unix time at start plus the monotonic time since, so a wall-clock step (NTP)
    /// never moves a window.
    pub fn now_ns(&self) -> u64 {
        match &*self.0 {
            Source::System {
                origin,
                unix_origin_ns,
            } => {
                let since = u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
                unix_origin_ns.saturating_add(since).max(START_NS)
            }
            Source::Manual { ns } => ns.load(Ordering::Acquire),
        }
    }

    /// Unix seconds on this clock.
    pub fn unix(&self) -> i64 {
        (self.now_ns() / 1_000_000_000) as i64
    }

    /// Moves a manual clock forward (a system clock ignores it).
    pub fn advance(&self, by: Duration) {
        if let Source::Manual { ns } = &*self.0 {
            ns.fetch_add(
                u64::try_from(by.as_nanos()).unwrap_or(u64::MAX),
                Ordering::AcqRel,
            );
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &*self.0 {
            Source::System { .. } => "system",
            Source::Manual { .. } => "manual",
        };
        write!(f, "Clock({kind})")
    }
}
