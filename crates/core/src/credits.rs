//! Credits (SPEC §11.2): a balance a key or a member spends, one (or a given cost) per
//! successful verification, optionally refilled at a UTC boundary. The balance itself lives in
//! the database and is charged there with a conditional update; what is here is the setting,
//! its validation, and the calendar: when the last refill was due.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// `credits: {remaining, refill?}` as it is set on a key or a member. `None` (`null`) =
/// unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credits {
    pub remaining: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refill: Option<Refill>,
}

/// `refill: {interval, amount, day?}`: at each boundary the balance becomes `amount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refill {
    pub interval: Interval,
    pub amount: i64,
    /// Monthly only: the day of the month (1–31; a day past the month's end is its last day).
    /// Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    /// Every day at 00:00 UTC.
    Daily,
    /// Every month on `day` at 00:00 UTC.
    Monthly,
}

/// The largest balance or refill: far beyond any use, far from overflowing a cost subtracted.
pub const MAX_CREDITS: i64 = 1_000_000_000_000;

impl Refill {
    /// The last refill boundary at or before `now` (unix seconds, UTC).
    pub fn last_boundary(&self, now: i64) -> i64 {
        let Some(t) = DateTime::<Utc>::from_timestamp(now, 0) else {
            return now;
        };
        let midnight = |d: NaiveDate| {
            Utc.from_utc_datetime(&d.and_time(Default::default()))
                .timestamp()
        };
        let today = t.date_naive();
        match self.interval {
            Interval::Daily => midnight(today),
            Interval::Monthly => {
                let day = self.day.unwrap_or(1);
                let this_month = on_day(today.year(), today.month(), day);
                if this_month <= today {
                    midnight(this_month)
                } else {
                    let first = today.with_day(1).expect("day 1 exists");
                    let previous = first - Duration::days(1);
                    midnight(on_day(previous.year(), previous.month(), day))
                }
            }
        }
    }

    /// The first refill boundary after `now`.
    pub fn next_boundary(&self, now: i64) -> i64 {
        let last = self.last_boundary(now);
        match self.interval {
            Interval::Daily => last + 86_400,
            Interval::Monthly => {
                // The boundary of the month after `last`'s: at most 31 days on, at least 28.
                let mut probe = last + 28 * 86_400;
                while self.last_boundary(probe) == last {
                    probe += 86_400;
                }
                self.last_boundary(probe)
            }
        }
    }
}

/// `day` of the month, or the month's last day when it has fewer.
fn on_day(year: i32, month: u32, day: u8) -> NaiveDate {
    let mut d = u32::from(day.clamp(1, 31));
    loop {
        if let Some(date) = NaiveDate::from_ymd_opt(year, month, d) {
            return date;
        }
        d -= 1;
    }
}

impl crate::Validator {
    /// `credits` on a key or a member: a balance of 0 to [`MAX_CREDITS`]; a refill of 1 to
    /// [`MAX_CREDITS`], `day` 1–31 and only for a monthly one.
    pub fn credits(&mut self, field: &str, c: &Credits) {
        if !(0..=MAX_CREDITS).contains(&c.remaining) {
            self.error(&format!("{field}.remaining"), format!("0 to {MAX_CREDITS}"));
        }
        if let Some(r) = &c.refill {
            if !(1..=MAX_CREDITS).contains(&r.amount) {
                self.error(
                    &format!("{field}.refill.amount"),
                    format!("1 to {MAX_CREDITS}"),
                );
            }
            match (r.interval, r.day) {
                (Interval::Daily, Some(_)) => self.error(
                    &format!("{field}.refill.day"),
                    "only a monthly refill takes a day",
                ),
                (Interval::Monthly, Some(d)) if !(1..=31).contains(&d) => {
                    self.error(&format!("{field}.refill.day"), "1 to 31")
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    fn monthly(day: u8) -> Refill {
        Refill {
            interval: Interval::Monthly,
            amount: 10,
            day: Some(day),
        }
    }

    #[test]
    fn a_daily_refill_is_due_at_midnight_utc() {
        let daily = Refill {
            interval: Interval::Daily,
            amount: 10,
            day: None,
        };
        assert_eq!(
            daily.last_boundary(at("2026-12-02T15:04:05Z")),
            at("2026-12-02T00:00:00Z")
        );
        assert_eq!(
            daily.last_boundary(at("2026-12-02T00:00:00Z")),
            at("2026-12-02T00:00:00Z")
        );
        assert_eq!(
            daily.last_boundary(at("2026-12-01T23:59:59Z")),
            at("2026-12-01T00:00:00Z")
        );
        assert_eq!(
            daily.next_boundary(at("2026-12-31T12:00:00Z")),
            at("2027-01-01T00:00:00Z")
        );
    }

    #[test]
    fn day_31_is_the_last_day_of_shorter_months() {
        let r = monthly(31);
        assert_eq!(
            r.last_boundary(at("2027-02-28T00:00:00Z")),
            at("2027-02-28T00:00:00Z")
        );
        assert_eq!(
            r.last_boundary(at("2027-02-27T23:00:00Z")),
            at("2027-01-31T00:00:00Z")
        );
        assert_eq!(
            r.last_boundary(at("2028-02-29T01:00:00Z")),
            at("2028-02-29T00:00:00Z"),
            "leap year"
        );
        assert_eq!(
            r.last_boundary(at("2027-04-30T00:00:00Z")),
            at("2027-04-30T00:00:00Z")
        );
        assert_eq!(
            r.next_boundary(at("2027-01-31T00:00:00Z")),
            at("2027-02-28T00:00:00Z")
        );
        assert_eq!(
            r.next_boundary(at("2027-02-28T00:00:00Z")),
            at("2027-03-31T00:00:00Z")
        );
        let first = Refill {
            day: None,
            ..monthly(1)
        };
        assert_eq!(
            first.last_boundary(at("2027-03-15T09:00:00Z")),
            at("2027-03-01T00:00:00Z")
        );
        assert_eq!(
            first.next_boundary(at("2027-12-15T09:00:00Z")),
            at("2028-01-01T00:00:00Z")
        );
        let fifteenth = monthly(15);
        assert_eq!(
            fifteenth.last_boundary(at("2027-01-14T09:00:00Z")),
            at("2026-12-15T00:00:00Z")
        );
    }

    #[test]
    fn settings_are_validated() {
        let mut v = crate::Validator::new();
        v.credits(
            "credits",
            &Credits {
                remaining: -1,
                refill: Some(Refill {
                    interval: Interval::Daily,
                    amount: 0,
                    day: Some(3),
                }),
            },
        );
        v.credits(
            "member",
            &Credits {
                remaining: 5,
                refill: Some(monthly(32)),
            },
        );
        let fields: Vec<String> = v
            .finish()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "credits.remaining",
                "credits.refill.amount",
                "credits.refill.day",
                "member.refill.day"
            ]
        );
    }

    proptest! {
        /// The last boundary is at or before now, the next after it, nothing lies between them,
        /// and both are midnights on the refill's day (or the month's last).
        #[test]
        fn boundaries_bracket_now(now in 0i64..4_102_444_800, day in 1u8..=31, daily: bool) {
            let r = if daily {
                Refill { interval: Interval::Daily, amount: 1, day: None }
            } else {
                monthly(day)
            };
            let (last, next) = (r.last_boundary(now), r.next_boundary(now));
            prop_assert!(last <= now && now < next);
            prop_assert_eq!(last % 86_400, 0);
            prop_assert_eq!(r.last_boundary(next), next);
            prop_assert_eq!(r.last_boundary(next - 1), last);
            if !daily {
                let d = DateTime::<Utc>::from_timestamp(last, 0).unwrap().date_naive();
                let last_of_month = on_day(d.year(), d.month(), 31).day();
                prop_assert_eq!(d.day(), u32::from(day).min(last_of_month));
            }
        }
    }
}
