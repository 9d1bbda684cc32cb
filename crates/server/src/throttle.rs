//! Failure throttles in bounded memory: how many failed attempts (credentials, passwords) a
//! client address or an account may make. Per node: a cluster multiplies the allowance by its
//! size, which still turns a flood into a trickle.
//!
//! Each key holds one number, the GCRA "theoretical arrival time" of its next failure: `limit`
//! failures at once use up the window, and one more is allowed every `window / limit` after
//! that. Entries live in a moka cache (capacity-bounded, TinyLFU admission, so a flood of new
//! keys does not push out the ones being throttled) and expire once idle long enough to have
//! nothing left to remember. Reading never inserts.

use crate::error::ApiError;
use crate::state::AppState;
use moka::sync::Cache;
use std::borrow::Borrow;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct FailureThrottle<K> {
    entries: Cache<K, Arc<AtomicU64>>,
    /// Nanoseconds per allowed failure (`window / limit`).
    interval: u64,
    window: u64,
    base: Instant,
    /// Until when (our nanoseconds) some key may be refused; 0 when none is. Lets
    /// [`FailureThrottle::admit`] answer with one atomic load while nobody is throttled.
    hot_until: AtomicU64,
}

impl<K: Hash + Eq + Send + Sync + 'static> FailureThrottle<K> {
    pub fn new(limit: u32, window: Duration, capacity: u64) -> Self {
        let window = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX / 4);
        Self {
            entries: Cache::builder()
                .max_capacity(capacity)
                // Concurrent failures admitted together can run a little past one window.
                .time_to_idle(Duration::from_nanos(window.saturating_mul(2)))
                .build(),
            interval: (window / u64::from(limit.max(1))).max(1),
            window,
            base: Instant::now(),
            hot_until: AtomicU64::new(0),
        }
    }

    /// Never 0, so 0 can mean "nobody" in `hot_until`.
    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX / 4)
            + 1
    }

    /// `Err(retry after)` when `key` has no failure left to make now.
    pub fn check<Q>(&self, key: &Q, at: Instant) -> Result<(), Duration>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Some(cell) = self.entries.get(key) else {
            return Ok(());
        };
        let now = self.nanos(at);
        let next = cell.load(Relaxed).max(now) + self.interval;
        match next.checked_sub(now + self.window) {
            Some(wait) if wait > 0 => Err(Duration::from_nanos(wait)),
            _ => Ok(()),
        }
    }

    /// [`Self::check`], answered without a lookup while no key at all is throttled.
    pub fn admit<Q>(&self, key: &Q, at: Instant) -> Result<(), Duration>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hot = self.hot_until.load(Relaxed);
        if hot == 0 {
            return Ok(());
        }
        if self.nanos(at) >= hot {
            // Nobody is refused any more; a key that got throttled meanwhile raised it again.
            let _ = self.hot_until.compare_exchange(hot, 0, Relaxed, Relaxed);
            return Ok(());
        }
        self.check(key, at)
    }

    /// Records a failure of `key`.
    pub fn failed(&self, key: K, at: Instant) {
        let cell = self.entries.get_with(key, || Arc::new(AtomicU64::new(0)));
        let now = self.nanos(at);
        let mut current = cell.load(Relaxed);
        let tat = loop {
            let tat = current.max(now) + self.interval;
            match cell.compare_exchange_weak(current, tat, Relaxed, Relaxed) {
                Ok(_) => break tat,
                Err(c) => current = c,
            }
        };
        // The next failure is refused until `tat + interval - window`.
        let until = (tat + self.interval).saturating_sub(self.window);
        if until > now {
            self.hot_until.fetch_max(until, Relaxed);
        }
    }

    /// Forgets `key`'s failures (a successful sign-in).
    pub fn reset<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.invalidate(key);
    }

    #[cfg(test)]
    fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }
}

/// What a throttle counts an address as: IPv6 by its /64, since one host usually holds a
/// whole /64 and could otherwise spread its failures over 2^64 keys.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
    }
}

/// Whole seconds for `Retry-After`, never 0.
pub fn retry_after_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Addresses remembered by each throttle. A remembered key costs its hash entry and an
/// `Arc<AtomicU64>`, so this bounds each throttle to a few megabytes.
pub const CAPACITY: u64 = 65_536;

/// Failed credentials per client address: the gate every authenticated request passes before
/// its credential is looked up.
pub struct CredentialThrottle(FailureThrottle<IpAddr>);

impl CredentialThrottle {
    pub fn new(settings: crate::config::ThrottleSettings) -> Self {
        Self(FailureThrottle::new(
            settings.credential_failures,
            settings.credential_window,
            CAPACITY,
        ))
    }
}

/// 429 while `ip` has used up its failed credentials. On the path of every authenticated
/// request: one atomic load unless some address is being throttled.
pub fn admit_credential(state: &AppState, ip: Option<IpAddr>) -> Result<(), ApiError> {
    let Some(ip) = ip else { return Ok(()) };
    state
        .credential_throttle
        .0
        .admit(&address_key(ip), Instant::now())
        .map_err(|wait| ApiError::RateLimited {
            retry_after: retry_after_secs(wait),
        })
}

/// Counts a refused credential (a 401 after one was presented) against the client address.
/// Only the address is kept: never the credential, so nothing secret is held or logged.
pub fn credential_refused(state: &AppState, ip: Option<IpAddr>, error: &ApiError) {
    if let (Some(ip), ApiError::Unauthenticated { presented: true }) = (ip, error) {
        let t = &state.credential_throttle.0;
        let key = address_key(ip);
        let now = Instant::now();
        let was_ok = t.check(&key, now).is_ok();
        t.failed(key, now);
        if was_ok && t.check(&key, now).is_err() {
            tracing::warn!(client = %ip, "too many failed credentials from one address: refusing it for a while");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_limit_then_one_per_interval() {
        let t = FailureThrottle::new(3, Duration::from_secs(60), 100);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(t.check(&"a", t0).is_ok());
            t.failed("a", t0);
        }
        let wait = t.check(&"a", t0).unwrap_err();
        assert_eq!(retry_after_secs(wait), 20, "one more every 60 s / 3");
        assert!(t.admit(&"a", t0).is_err());
        assert!(t.check(&"b", t0).is_ok(), "keys are independent");
        assert!(t.admit(&"b", t0).is_ok());
        let later = t0 + Duration::from_secs(20);
        assert!(t.check(&"a", later).is_ok());
        t.failed("a", later);
        assert!(t.check(&"a", later).is_err());
        let much_later = t0 + Duration::from_secs(3600);
        assert!(t.admit(&"a", much_later).is_ok());
        assert_eq!(
            t.hot_until.load(Relaxed),
            0,
            "nobody throttled: back to the fast path"
        );
        t.reset(&"a");
        assert!(t.check(&"a", t0).is_ok());
    }

    #[test]
    fn reads_do_not_insert_and_memory_is_bounded() {
        let t = FailureThrottle::new(5, Duration::from_secs(60), 1000);
        let now = Instant::now();
        for i in 0..10_000u32 {
            let _ = t.check(&i, now);
            let _ = t.admit(&i, now);
        }
        assert_eq!(t.len(), 0, "checking remembers nothing");
        for i in 0..10_000u32 {
            t.failed(i, now);
        }
        assert!(t.len() <= 1000, "{} entries", t.len());
    }

    #[test]
    fn ipv6_counts_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(address_key(v4), v4);
    }
}
