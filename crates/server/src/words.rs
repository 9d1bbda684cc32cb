//! Rate limits and credits said in words (SPEC §11), the same on the dashboard's pages and in
//! the CLI's output: "100 per minute, every verification", "refills to 50 every day".

use crate::routes::views::ts;
use latchkey_core::credits::{Interval, Refill};
use latchkey_core::ratelimit::NamedLimit;

/// One rate limit as a table row.
pub struct LimitRow {
    pub name: String,
    pub limit: u32,
    pub window: String,
    pub applied: &'static str,
}

impl From<&NamedLimit> for LimitRow {
    fn from(l: &NamedLimit) -> Self {
        Self {
            name: l.name.clone(),
            limit: l.limit,
            window: window_words(l.window_seconds),
            applied: if l.auto_apply {
                "every verification"
            } else {
                "when a verify request names it"
            },
        }
    }
}

/// "per minute", "per 2 hours", "per 90 seconds".
pub fn window_words(seconds: u64) -> String {
    for (unit_seconds, unit) in [
        (86_400, "day"),
        (3_600, "hour"),
        (60, "minute"),
        (1, "second"),
    ] {
        if seconds.is_multiple_of(unit_seconds) {
            return match seconds / unit_seconds {
                1 => format!("per {unit}"),
                n => format!("per {n} {unit}s"),
            };
        }
    }
    format!("per {seconds} seconds")
}

/// A refill in words, with when the next one is due after `now`.
pub fn refill_words(refill: Option<&Refill>, now: i64) -> String {
    let Some(r) = refill else {
        return "never refills".into();
    };
    let next = ts(r.next_boundary(now));
    let next = next.get(..10).unwrap_or(&next);
    match r.interval {
        Interval::Daily => format!(
            "refills to {} every day at 00:00 UTC (next on {next})",
            r.amount
        ),
        Interval::Monthly => {
            let day = r.day.unwrap_or(1);
            let shorter = if day > 28 {
                "; the month's last day when shorter"
            } else {
                ""
            };
            format!(
                "refills to {} on day {day} of each month (UTC{shorter}; next on {next})",
                r.amount
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_refills_in_words() {
        assert_eq!(window_words(60), "per minute");
        assert_eq!(window_words(7_200), "per 2 hours");
        assert_eq!(window_words(90), "per 90 seconds");
        assert_eq!(refill_words(None, 0), "never refills");
        // 2026-02-10 12:00 UTC.
        let now = 1_770_724_800;
        let monthly = Refill {
            interval: Interval::Monthly,
            amount: 1000,
            day: Some(31),
        };
        assert_eq!(
            refill_words(Some(&monthly), now),
            "refills to 1000 on day 31 of each month (UTC; the month's last day when shorter; \
             next on 2026-02-28)"
        );
        let daily = Refill {
            interval: Interval::Daily,
            amount: 50,
            day: None,
        };
        assert_eq!(
            refill_words(Some(&daily), now),
            "refills to 50 every day at 00:00 UTC (next on 2026-02-11)"
        );
    }
}
