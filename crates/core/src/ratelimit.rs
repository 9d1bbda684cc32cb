//! Rate-limit arithmetic (SPEC §11.1): the generic cell rate algorithm (GCRA), one `u64` of state
//! per limit, charged with a compare-and-swap, so a check takes no lock and allocates nothing.
//! Time is a parameter (nanoseconds on any monotonic clock the caller keeps), which is what lets
//! the tests run on a test clock.
//!
//! A limit of `limit` per `window` admits one unit every `T = window / limit` on average and a
//! burst of up to `limit` at once. Its state is the theoretical arrival time (TAT): when the
//! limit would be fully rested again. A charge of `cost` at `now` passes when
//! `max(TAT, now) + cost·T − now ≤ limit·T` (the window, T rounded up), and moves TAT there. So:
//! - from rest, `limit` units pass at one instant, and then one per `T`;
//! - in any interval of length `window`, at most `2 · limit` units pass (the burst plus a window's
//!   worth of steady rate), and over a long run at most `limit` per `window` plus one burst;
//! - a changed limit applies at once and keeps what was already spent: TAT is absolute time, not
//!   a count, so it is re-read under the new `T` rather than reset.
//!
//! Why GCRA rather than a fixed or sliding window counter: a fixed window admits `2 · limit` at
//! each window boundary and then nothing, and a sliding counter needs two counters and a clock
//! per limit; GCRA is exact with one word, spreads what it admits, and its state is what the
//! `RateLimit` header reports (`remaining`, `reset`) without a second computation.

use std::sync::atomic::{AtomicU64, Ordering};

/// How much a limit allows: `limit` units per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    limit: u32,
    window_seconds: u64,
    /// `window / limit` rounded up, the emission interval T: rounding never lets more through.
    interval_ns: u64,
    /// `limit · T`: how far ahead of now the state may run (the window, up to the rounding).
    capacity_ns: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    #[error("a limit allows at least 1 request")]
    ZeroLimit,
    #[error("a window is at least 1 second and at most 366 days")]
    Window,
    #[error("a limit allows at most one request per microsecond of its window")]
    TooDense,
}

/// The longest window: a year (leap) of seconds.
pub const MAX_WINDOW_SECONDS: u64 = 366 * 86_400;

impl Rate {
    pub fn new(limit: u32, window_seconds: u64) -> Result<Self, RateError> {
        if limit == 0 {
            return Err(RateError::ZeroLimit);
        }
        if !(1..=MAX_WINDOW_SECONDS).contains(&window_seconds) {
            return Err(RateError::Window);
        }
        let window_ns = window_seconds * 1_000_000_000;
        let interval_ns = window_ns.div_ceil(u64::from(limit));
        // Below a microsecond per unit, rounding the interval up would cost more than 0.1 % of
        // the limit's rate.
        if interval_ns < 1_000 {
            return Err(RateError::TooDense);
        }
        Ok(Self {
            limit,
            window_seconds,
            interval_ns,
            capacity_ns: interval_ns * u64::from(limit),
        })
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn window_seconds(&self) -> u64 {
        self.window_seconds
    }

    /// The emission interval T in nanoseconds: what one unit occupies of the window.
    pub fn interval_ns(&self) -> u64 {
        self.interval_ns
    }

    /// `limit · T`: how far ahead of now the state may run.
    pub fn capacity_ns(&self) -> u64 {
        self.capacity_ns
    }

    /// What a TAT means at `now` (for state kept elsewhere, e.g. in Redis).
    pub fn standing(&self, tat: u64, now: u64) -> State {
        self.state(tat, now)
    }

    /// What `tat` means at `now`: units left, and how long until fully rested.
    fn state(&self, tat: u64, now: u64) -> State {
        let used = tat.saturating_sub(now);
        // Each unit spent occupies T of the window; what is free is what is left of it.
        let free = self.capacity_ns.saturating_sub(used);
        State {
            remaining: (free / self.interval_ns).min(u64::from(self.limit)) as u32,
            reset_ns: used,
        }
    }
}

/// A limit's standing at one instant, as the `RateLimit` header and the verify answer report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    /// Units that would pass now.
    pub remaining: u32,
    /// Nanoseconds until the limit is fully rested (`remaining == limit`).
    pub reset_ns: u64,
}

impl State {
    /// `reset_ns` in whole seconds, rounded up (a header never says 0 while something is spent).
    pub fn reset_seconds(&self) -> u64 {
        self.reset_ns.div_ceil(1_000_000_000)
    }
}

/// The outcome of one charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charged {
    pub allowed: bool,
    /// After the charge (or, refused, as it stands).
    pub state: State,
    /// Refused: nanoseconds until `cost` would pass. Allowed: 0.
    pub retry_after_ns: u64,
}

/// One limit's state: the theoretical arrival time, in the caller's nanoseconds. `0` is rest.
#[derive(Debug, Default)]
pub struct Limiter {
    tat: AtomicU64,
}

impl Limiter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Charges `cost` units at `now` if they fit; a refused charge changes nothing. A `cost`
    /// of 0 only reads.
    pub fn charge(&self, rate: &Rate, now: u64, cost: u32) -> Charged {
        let increment = rate.interval_ns.saturating_mul(u64::from(cost));
        let mut current = self.tat.load(Ordering::Acquire);
        loop {
            let base = current.max(now);
            let next = base.saturating_add(increment);
            if next - now > rate.capacity_ns {
                return Charged {
                    allowed: false,
                    state: rate.state(current, now),
                    retry_after_ns: next - now - rate.capacity_ns,
                };
            }
            if cost == 0 {
                return Charged {
                    allowed: true,
                    state: rate.state(current, now),
                    retry_after_ns: 0,
                };
            }
            match self
                .tat
                .compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    return Charged {
                        allowed: true,
                        state: rate.state(next, now),
                        retry_after_ns: 0,
                    }
                }
                Err(seen) => current = seen,
            }
        }
    }

    /// Gives back a charge of `cost` made under `rate` (another limit of the same request
    /// refused, SPEC §11.1: all pass or none is charged). Concurrent charges in between keep
    /// theirs: only this charge's share of the state is taken off.
    pub fn refund(&self, rate: &Rate, cost: u32) {
        let decrement = rate.interval_ns.saturating_mul(u64::from(cost));
        let _ = self
            .tat
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_sub(decrement))
            });
    }

    /// What charging `cost` at `now` would answer, without charging it.
    pub fn peek(&self, rate: &Rate, now: u64, cost: u32) -> Charged {
        let current = self.tat.load(Ordering::Acquire);
        let next = current
            .max(now)
            .saturating_add(rate.interval_ns.saturating_mul(u64::from(cost)));
        let over = (next - now).saturating_sub(rate.capacity_ns);
        Charged {
            allowed: over == 0,
            state: rate.state(current, now),
            retry_after_ns: over,
        }
    }

    /// Whether the limit is fully rested at `now`: its state then equals a fresh limiter's, so
    /// it can be forgotten without losing anything.
    pub fn is_rested(&self, now: u64) -> bool {
        self.tat.load(Ordering::Acquire) <= now
    }

    /// The standing at `now`, charging nothing.
    pub fn state(&self, rate: &Rate, now: u64) -> State {
        rate.state(self.tat.load(Ordering::Acquire), now)
    }
}

/// A limit as it is set on a key or a member (`ratelimits: [{name, limit, window_seconds,
/// auto_apply}]`, SPEC §11.1) and stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedLimit {
    pub name: String,
    pub limit: u32,
    pub window_seconds: u64,
    /// Charged on every verification (the default); otherwise only when a verify request
    /// names it.
    #[serde(default = "auto_apply_default")]
    pub auto_apply: bool,
}

fn auto_apply_default() -> bool {
    true
}

/// At most this many limits on one key or one member: each is charged on the verification path.
pub const MAX_LIMITS: usize = 10;
/// Limit names: what a `RateLimit` header and a verify request name them by.
pub const MAX_NAME_LEN: usize = 64;

impl NamedLimit {
    /// Its rate (validated where the limit was set, so stored limits always have one).
    pub fn rate(&self) -> Result<Rate, RateError> {
        Rate::new(self.limit, self.window_seconds)
    }
}

/// Whether `name` can name a limit: 1–64 of `A-Z a-z 0-9 _ - .` (safe in an sf-string and in
/// a Redis key without escaping).
pub fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// A limit a verify request names, with what to charge it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Named<'a> {
    pub name: &'a str,
    pub cost: u32,
}

/// One limit a request must pass.
#[derive(Debug, Clone, Copy)]
pub struct Charge<'a> {
    pub limiter: &'a Limiter,
    pub rate: Rate,
    pub cost: u32,
}

/// Charges every limit of a request, or none (SPEC §11.1): on the first refusal the charges
/// already made are refunded. `out[i]` receives limit `i`'s outcome (those after a refusal are
/// read, not charged); `out` is at least as long as `charges`. Returns whether all passed.
pub fn charge_all(charges: &[Charge<'_>], now: u64, out: &mut [Charged]) -> bool {
    assert!(out.len() >= charges.len(), "one outcome per charge");
    for (i, c) in charges.iter().enumerate() {
        out[i] = c.limiter.charge(&c.rate, now, c.cost);
        if !out[i].allowed {
            for (done, earlier) in charges[..i].iter().zip(out.iter_mut()) {
                done.limiter.refund(&done.rate, done.cost);
                earlier.state = done.limiter.state(&done.rate, now);
            }
            for (later, slot) in charges.iter().zip(out.iter_mut()).skip(i + 1) {
                *slot = later.limiter.peek(&later.rate, now, later.cost);
            }
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn from_rest_a_burst_of_limit_passes_then_one_per_interval() {
        let rate = Rate::new(10, 60).unwrap();
        let l = Limiter::new();
        let now = 1_000 * S;
        for i in 0..10 {
            let c = l.charge(&rate, now, 1);
            assert!(c.allowed, "unit {i}");
            assert_eq!(c.state.remaining, 9 - i);
        }
        let refused = l.charge(&rate, now, 1);
        assert!(!refused.allowed);
        assert_eq!(refused.state.remaining, 0);
        assert_eq!(refused.retry_after_ns, 6 * S, "one unit rests every 6 s");
        assert_eq!(refused.state.reset_seconds(), 60);
        assert!(!l.charge(&rate, now + 6 * S - 1, 1).allowed);
        assert!(l.charge(&rate, now + 6 * S, 1).allowed);
        // Fully rested a window after the last charge.
        assert_eq!(l.state(&rate, now + 66 * S).remaining, 10);
    }

    #[test]
    fn a_cost_is_charged_whole_or_not_at_all() {
        let rate = Rate::new(5, 10).unwrap();
        let l = Limiter::new();
        assert!(l.charge(&rate, S, 3).allowed);
        let c = l.charge(&rate, S, 3);
        assert!(!c.allowed, "3 of 2 left");
        assert_eq!(c.state.remaining, 2, "a refusal changes nothing");
        assert!(l.charge(&rate, S, 2).allowed);
        assert!(
            !l.charge(&rate, S, 6).allowed,
            "more than the limit never passes"
        );
        assert!(l.charge(&rate, S, 0).allowed, "cost 0 reads");
    }

    #[test]
    fn all_of_a_requests_limits_pass_or_none_is_charged() {
        let wide = Rate::new(100, 60).unwrap();
        let narrow = Rate::new(2, 60).unwrap();
        let (a, b) = (Limiter::new(), Limiter::new());
        let charges = [
            Charge {
                limiter: &a,
                rate: wide,
                cost: 1,
            },
            Charge {
                limiter: &b,
                rate: narrow,
                cost: 1,
            },
        ];
        let mut out = [Charged {
            allowed: false,
            state: State {
                remaining: 0,
                reset_ns: 0,
            },
            retry_after_ns: 0,
        }; 2];
        assert!(charge_all(&charges, S, &mut out));
        assert!(charge_all(&charges, S, &mut out));
        assert!(
            !charge_all(&charges, S, &mut out),
            "the narrow one is spent"
        );
        assert!(out[0].allowed && !out[1].allowed);
        assert_eq!(a.state(&wide, S).remaining, 98, "the wide one was refunded");
        assert_eq!(out[0].state.remaining, 98);
    }

    #[test]
    fn a_changed_limit_applies_at_once_and_keeps_what_was_spent() {
        let l = Limiter::new();
        let before = Rate::new(10, 60).unwrap();
        for _ in 0..8 {
            assert!(l.charge(&before, S, 1).allowed);
        }
        let after = Rate::new(20, 60).unwrap();
        // 8 units of 6 s = 48 s of a 60 s window; under the new 3 s interval, 4 more fit.
        assert_eq!(l.state(&after, S).remaining, 4);
        // What was spent is time taken from the window, whatever the limit says now: 48 s is
        // four units of a 5-per-minute limit (one left), and all of a 4-per-minute one.
        assert_eq!(l.state(&Rate::new(5, 60).unwrap(), S).remaining, 1);
        let tighter = Rate::new(4, 60).unwrap();
        assert_eq!(
            l.state(&tighter, S).remaining,
            0,
            "a lowered limit is already spent"
        );
        assert!(!l.charge(&tighter, S, 1).allowed);
    }

    #[test]
    fn limits_are_validated() {
        assert_eq!(Rate::new(0, 60), Err(RateError::ZeroLimit));
        assert_eq!(Rate::new(1, 0), Err(RateError::Window));
        assert_eq!(Rate::new(1, MAX_WINDOW_SECONDS + 1), Err(RateError::Window));
        assert_eq!(Rate::new(u32::MAX, 1), Err(RateError::TooDense));
        assert!(Rate::new(1_000_000, 1).is_ok());
        // A limit that does not divide its window: rounding never admits an extra unit.
        let odd = Rate::new(999_999, 1).unwrap();
        let l = Limiter::new();
        assert!(l.charge(&odd, S, 999_999).allowed);
        assert!(!l.charge(&odd, S, 1).allowed);
        let seven = Rate::new(7, 1).unwrap();
        assert_eq!(Limiter::new().state(&seven, S).remaining, 7);
    }

    #[test]
    fn concurrent_charges_never_pass_more_than_the_limit() {
        let rate = Rate::new(50, 3_600).unwrap();
        let l = std::sync::Arc::new(Limiter::new());
        let passed = std::sync::Arc::new(AtomicU64::new(0));
        std::thread::scope(|s| {
            for _ in 0..8 {
                let (l, passed) = (l.clone(), passed.clone());
                s.spawn(move || {
                    for _ in 0..25 {
                        if l.charge(&rate, S, 1).allowed {
                            passed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(
            passed.load(Ordering::Relaxed),
            50,
            "200 tries at one instant, limit 50"
        );
    }

    proptest! {
        /// Whatever arrives when, with whatever costs: in any interval of one window, at most
        /// the limit plus its burst (2 · limit) passes, and from rest at most the limit passes
        /// in the first instant.
        #[test]
        fn never_more_than_limit_plus_burst_in_any_window(
            limit in 1u32..50,
            window in 1u64..120,
            arrivals in proptest::collection::vec((0u64..3_000_000_000, 1u32..4), 1..400),
        ) {
            let rate = Rate::new(limit, window).unwrap();
            let l = Limiter::new();
            let mut now = 10 * S;
            let mut passed: Vec<(u64, u32)> = Vec::new();
            for (gap, cost) in arrivals {
                now += gap;
                if l.charge(&rate, now, cost).allowed {
                    passed.push((now, cost));
                }
            }
            let w = window * S;
            for (i, &(start, _)) in passed.iter().enumerate() {
                let in_window: u64 = passed[i..]
                    .iter()
                    .take_while(|(t, _)| *t < start + w)
                    .map(|(_, c)| u64::from(*c))
                    .sum();
                prop_assert!(in_window <= 2 * u64::from(limit), "{in_window} in one window of limit {limit}");
            }
            let first = passed.first().map(|p| p.0);
            let at_first: u64 = passed.iter().filter(|p| Some(p.0) == first).map(|p| u64::from(p.1)).sum();
            prop_assert!(at_first <= u64::from(limit));
            // Long-run rate: over the whole run, at most one window's worth per window plus a burst.
            if let (Some(a), Some(b)) = (passed.first(), passed.last()) {
                let total: u64 = passed.iter().map(|p| u64::from(p.1)).sum();
                let windows = (b.0 - a.0) as u128 * u128::from(limit) / u128::from(w);
                prop_assert!(u128::from(total) <= windows + 1 + u128::from(limit));
            }
        }

        /// A limiter that was only read, or whose refused charges were all there was, stays at
        /// rest: refusals cost nothing.
        #[test]
        fn refusals_change_nothing(limit in 1u32..20, extra in 1u32..20) {
            let rate = Rate::new(limit, 60).unwrap();
            let l = Limiter::new();
            prop_assert!(!l.charge(&rate, S, limit + extra).allowed);
            prop_assert_eq!(l.state(&rate, S).remaining, limit);
        }
    }
}
