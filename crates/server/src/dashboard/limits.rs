//! A key's or a member's rate limit and credits as the dashboard's forms show them (SPEC §11):
//! one limit and a balance typed into fields, turned into the API's `NamedLimit` and `Credits`
//! (which the service then checks like any API request), and said back in words.

use crate::error::ApiError;
use crate::words::window_words;
use latchkey_core::credits::{Credits, Interval, Refill};
use latchkey_core::ratelimit::NamedLimit;
use serde::Deserialize;

/// The limit a key's form edits.
pub const KEY_LIMIT: &str = "default";
/// The limit a member's form edits: its own name, so that a verify answer and the `RateLimit`
/// fields, which list a key's limits and its owner's side by side, tell the two apart.
pub const MEMBER_LIMIT: &str = "member";

/// The windows a form offers.
const WINDOWS: [(u64, &str); 3] = [(60, "minute"), (3_600, "hour"), (86_400, "day")];

/// The rate-limit and credits fields of a form, as typed. Empty means none: no limit, and
/// unlimited credits.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct LimitFields {
    /// Requests per window.
    pub ratelimit: String,
    pub window_seconds: String,
    /// The balance.
    pub credits: String,
    /// `never`, `daily`, `monthly` (on the 1st) or `monthly:DAY`.
    pub refill: String,
    /// What a refill sets the balance to; empty = the credits given.
    pub refill_amount: String,
}

fn whole<T: std::str::FromStr>(field: &str, s: &str, what: &str) -> Result<T, ApiError> {
    s.trim()
        .parse()
        .map_err(|_| ApiError::validation(field, what.to_owned()))
}

impl LimitFields {
    /// The fields showing `limit` and `credits` as they are.
    pub fn showing(limit: Option<&NamedLimit>, credits: Option<&Credits>) -> Self {
        let refill = credits.and_then(|c| c.refill);
        Self {
            ratelimit: limit.map(|l| l.limit.to_string()).unwrap_or_default(),
            window_seconds: limit.map_or(60, |l| l.window_seconds).to_string(),
            credits: credits.map(|c| c.remaining.to_string()).unwrap_or_default(),
            refill: match refill {
                None => "never".into(),
                Some(r) if r.interval == Interval::Daily => "daily".into(),
                Some(r) => match r.day.unwrap_or(1) {
                    1 => "monthly".into(),
                    d => format!("monthly:{d}"),
                },
            },
            refill_amount: refill.map(|r| r.amount.to_string()).unwrap_or_default(),
        }
    }

    /// The limit named `name` the fields ask for; `None` when the count is empty.
    pub fn limit(&self, name: &str) -> Result<Option<NamedLimit>, ApiError> {
        if self.ratelimit.trim().is_empty() {
            return Ok(None);
        }
        let limit = whole(
            "ratelimit",
            &self.ratelimit,
            "a whole number of requests, at least 1 (or empty for no limit)",
        )?;
        let window_seconds = whole(
            "window_seconds",
            &self.window_seconds,
            "per minute, per hour or per day",
        )?;
        Ok(Some(NamedLimit {
            name: name.to_owned(),
            limit,
            window_seconds,
            auto_apply: true,
        }))
    }

    /// The credits the fields ask for; `None` (unlimited) when the balance is empty.
    pub fn credits(&self) -> Result<Option<Credits>, ApiError> {
        let refill = self.refill.trim();
        if self.credits.trim().is_empty() {
            if !matches!(refill, "" | "never") {
                return Err(ApiError::validation(
                    "credits",
                    "a refill needs a number of credits (leave both empty for unlimited)",
                ));
            }
            return Ok(None);
        }
        let remaining = whole(
            "credits",
            &self.credits,
            "a whole number of credits, 0 or more (or empty for unlimited)",
        )?;
        let amount = if self.refill_amount.trim().is_empty() {
            remaining
        } else {
            whole(
                "refill_amount",
                &self.refill_amount,
                "a whole number of credits",
            )?
        };
        let refill = match refill {
            "" | "never" => None,
            "daily" => Some(Refill {
                interval: Interval::Daily,
                amount,
                day: None,
            }),
            "monthly" => Some(Refill {
                interval: Interval::Monthly,
                amount,
                day: None,
            }),
            other => match other.strip_prefix("monthly:").map(str::parse::<u8>) {
                Some(Ok(day)) => Some(Refill {
                    interval: Interval::Monthly,
                    amount,
                    day: Some(day),
                }),
                _ => return Err(ApiError::validation("refill", "never, daily or monthly")),
            },
        };
        Ok(Some(Credits { remaining, refill }))
    }

    /// What the rate-limit fields say, to tell whether someone changed them.
    pub fn limit_state(&self) -> String {
        match self.ratelimit.trim() {
            "" => String::new(),
            n => format!("{n}/{}", self.window_seconds.trim()),
        }
    }

    /// What the credits fields say, to tell whether someone changed them. A form that sets
    /// credits sets the balance, so one that only meant to change the rate limit must not
    /// send the balance it showed: credits spent since would come back.
    pub fn credits_state(&self) -> String {
        let refill = match self.refill.trim() {
            "" => "never",
            r => r,
        };
        let amount = match self.refill_amount.trim() {
            "" => self.credits.trim(),
            a => a,
        };
        format!("{}/{refill}/{amount}", self.credits.trim())
    }

    /// The window choices, the current one selected (and offered even when a form would not
    /// offer it, say 90 seconds set through the API). (value, words, selected)
    pub fn windows(&self) -> Vec<(String, String, bool)> {
        let current = self.window_seconds.trim();
        let mut out: Vec<_> = WINDOWS
            .iter()
            .map(|(s, unit)| {
                (
                    s.to_string(),
                    format!("per {unit}"),
                    s.to_string() == current,
                )
            })
            .collect();
        if let Ok(s) = current.parse::<u64>() {
            if !out.iter().any(|o| o.2) {
                out.push((s.to_string(), window_words(s), true));
            }
        }
        out
    }

    /// The refill choices, the current one selected. (value, words, selected)
    pub fn refills(&self) -> Vec<(String, String, bool)> {
        let current = match self.refill.trim() {
            "" => "never",
            r => r,
        };
        let mut out: Vec<(String, String, bool)> = [
            ("never", "Never"),
            ("daily", "Daily"),
            ("monthly", "Monthly, on the 1st"),
        ]
        .iter()
        .map(|(v, words)| (v.to_string(), words.to_string(), *v == current))
        .collect();
        if let Some(day) = current.strip_prefix("monthly:") {
            out.push((current.to_owned(), format!("Monthly, on day {day}"), true));
        }
        out
    }
}

/// `limits` with the one named `name` replaced by `new` where it stood (appended if new), or
/// removed when `new` is `None`. The others stay as they are, and a replaced limit keeps its
/// `auto_apply`, which the form does not show.
pub fn replace_limit(
    limits: &[NamedLimit],
    name: &str,
    new: Option<NamedLimit>,
) -> Vec<NamedLimit> {
    let mut out: Vec<NamedLimit> = Vec::with_capacity(limits.len() + 1);
    let mut new = new;
    for l in limits {
        if l.name == name {
            out.extend(new.take().map(|n| NamedLimit {
                auto_apply: l.auto_apply,
                ..n
            }));
        } else {
            out.push(l.clone());
        }
    }
    out.extend(new);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(ratelimit: &str, window: &str, credits: &str, refill: &str) -> LimitFields {
        LimitFields {
            ratelimit: ratelimit.into(),
            window_seconds: window.into(),
            credits: credits.into(),
            refill: refill.into(),
            refill_amount: String::new(),
        }
    }

    #[test]
    fn empty_fields_are_no_limit_and_unlimited_credits() {
        let f = fields(" ", "60", "", "never");
        assert_eq!(f.limit(KEY_LIMIT).unwrap(), None);
        assert_eq!(f.credits().unwrap(), None);
        assert_eq!(LimitFields::default().credits().unwrap(), None);
    }

    #[test]
    fn fields_become_the_apis_types() {
        let f = fields("2", "60", "5", "never");
        assert_eq!(
            f.limit(KEY_LIMIT).unwrap(),
            Some(NamedLimit {
                name: "default".into(),
                limit: 2,
                window_seconds: 60,
                auto_apply: true,
            })
        );
        assert_eq!(
            f.credits().unwrap(),
            Some(Credits {
                remaining: 5,
                refill: None
            })
        );
        let monthly = fields("", "60", "1000", "monthly")
            .credits()
            .unwrap()
            .unwrap();
        assert_eq!(
            monthly.refill,
            Some(Refill {
                interval: Interval::Monthly,
                amount: 1000,
                day: None
            })
        );
        let mut f = fields("", "60", "3", "monthly:31");
        f.refill_amount = "1000".into();
        let c = f.credits().unwrap().unwrap();
        assert_eq!(c.remaining, 3);
        assert_eq!(c.refill.unwrap().amount, 1000);
        assert_eq!(c.refill.unwrap().day, Some(31));
    }

    #[test]
    fn what_cannot_be_read_names_the_field() {
        for (f, field) in [
            (fields("two", "60", "", ""), "ratelimit"),
            (fields("-1", "60", "", ""), "ratelimit"),
            (fields("2", "fortnight", "", ""), "window_seconds"),
            (fields("", "60", "lots", ""), "credits"),
            (fields("", "60", "", "daily"), "credits"),
            (fields("", "60", "5", "weekly"), "refill"),
        ] {
            let e = f
                .limit(KEY_LIMIT)
                .and_then(|_| f.credits())
                .expect_err(field);
            let p = e.problem();
            assert_eq!(p.errors.unwrap()[0].field, field, "{f:?}");
        }
    }

    #[test]
    fn what_is_shown_reads_back_as_it_was() {
        let limit = NamedLimit {
            name: "default".into(),
            limit: 100,
            window_seconds: 90,
            auto_apply: true,
        };
        let credits = Credits {
            remaining: 3,
            refill: Some(Refill {
                interval: Interval::Monthly,
                amount: 1000,
                day: Some(31),
            }),
        };
        let f = LimitFields::showing(Some(&limit), Some(&credits));
        assert_eq!(f.limit("default").unwrap(), Some(limit));
        assert_eq!(f.credits().unwrap(), Some(credits));
        assert_eq!(
            f.windows().into_iter().filter(|w| w.2).collect::<Vec<_>>(),
            [("90".to_owned(), "per 90 seconds".to_owned(), true)]
        );
        assert_eq!(
            f.refills().into_iter().filter(|r| r.2).collect::<Vec<_>>(),
            [(
                "monthly:31".to_owned(),
                "Monthly, on day 31".to_owned(),
                true
            )]
        );
        let none = LimitFields::showing(None, None);
        assert_eq!(
            (none.limit_state(), none.credits_state()),
            ("".into(), "/never/".into())
        );
        assert_eq!(none.windows()[0], ("60".into(), "per minute".into(), true));
        // Changing only the limit leaves the credits' state as it was shown.
        let mut edited = f.clone();
        edited.ratelimit = "5".into();
        assert_ne!(edited.limit_state(), f.limit_state());
        assert_eq!(edited.credits_state(), f.credits_state());
    }

    #[test]
    fn replacing_a_limit_keeps_the_others_in_place() {
        let l = |name: &str, limit| NamedLimit {
            name: name.into(),
            limit,
            window_seconds: 60,
            auto_apply: true,
        };
        let limits = [l("burst", 1), l("default", 2), l("tokens", 3)];
        assert_eq!(
            replace_limit(&limits, "default", Some(l("default", 9))),
            [l("burst", 1), l("default", 9), l("tokens", 3)]
        );
        assert_eq!(
            replace_limit(&limits, "default", None),
            [l("burst", 1), l("tokens", 3)]
        );
        assert_eq!(
            replace_limit(&limits[..1], "default", Some(l("default", 9))),
            [l("burst", 1), l("default", 9)]
        );
        let manual = NamedLimit {
            auto_apply: false,
            ..l("default", 2)
        };
        assert_eq!(
            replace_limit(&[manual], "default", Some(l("default", 9))),
            [NamedLimit {
                auto_apply: false,
                ..l("default", 9)
            }]
        );
    }
}
