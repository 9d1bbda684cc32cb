//! The IETF rate-limit header fields (draft-ietf-httpapi-ratelimit-headers, SPEC §11.1), as
//! structured-field lists (RFC 9651): `RateLimit-Policy: "burst";q=100;w=60` names each limit,
//! `RateLimit: "burst";r=0;t=12` says where each stands. Both go on refusals and successes alike.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use std::fmt::Write as _;

pub const RATELIMIT: &str = "ratelimit";
pub const RATELIMIT_POLICY: &str = "ratelimit-policy";

/// One limit as the headers name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing<'a> {
    pub name: &'a str,
    /// `q`: units per window.
    pub limit: u32,
    /// `w`: the window, in seconds.
    pub window_seconds: u64,
    /// `r`: units left.
    pub remaining: u32,
    /// `t`: seconds until fully rested.
    pub reset_seconds: u64,
}

/// `RateLimit-Policy`: `"name";q=LIMIT;w=WINDOW`, comma-separated.
pub fn policy_field(limits: &[Standing<'_>]) -> String {
    list(limits, |out, l| {
        let _ = write!(out, ";q={};w={}", l.limit, l.window_seconds);
    })
}

/// `RateLimit`: `"name";r=REMAINING;t=RESET`, comma-separated.
pub fn state_field(limits: &[Standing<'_>]) -> String {
    list(limits, |out, l| {
        let _ = write!(out, ";r={};t={}", l.remaining, l.reset_seconds);
    })
}

/// Both fields, rendered once for a request's limits; what a front door puts on its answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fields {
    pub policy: String,
    pub state: String,
}

impl Fields {
    /// `None` when the request was charged no limit (then no field is sent).
    pub fn of(limits: &[Standing<'_>]) -> Option<Self> {
        (!limits.is_empty()).then(|| Self {
            policy: policy_field(limits),
            state: state_field(limits),
        })
    }

    /// Sets both headers (replacing any an upstream sent).
    pub fn insert(&self, headers: &mut HeaderMap) {
        for (name, value) in [(RATELIMIT_POLICY, &self.policy), (RATELIMIT, &self.state)] {
            // Always valid: names are printable ASCII and the rest are digits.
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(name), v);
            }
        }
    }
}

fn list(limits: &[Standing<'_>], params: impl Fn(&mut String, &Standing<'_>)) -> String {
    let mut out = String::with_capacity(limits.len() * 32);
    for (i, l) in limits.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_sf_string(&mut out, l.name);
        params(&mut out, l);
    }
    out
}

/// An sf-string (RFC 9651 §3.3.3): printable ASCII in quotes, `"` and `\` escaped. Limit names
/// are validated where they are set; anything else still cannot break the field: it is dropped.
fn push_sf_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars().filter(|c| (' '..='~').contains(c)) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standing(name: &str) -> Standing<'_> {
        Standing {
            name,
            limit: 100,
            window_seconds: 60,
            remaining: 0,
            reset_seconds: 12,
        }
    }

    #[test]
    fn the_spec_s_example() {
        let l = [standing("burst")];
        assert_eq!(policy_field(&l), r#""burst";q=100;w=60"#);
        assert_eq!(state_field(&l), r#""burst";r=0;t=12"#);
    }

    #[test]
    fn several_limits_are_one_list_and_names_cannot_break_it() {
        let day = Standing {
            limit: 10_000,
            window_seconds: 86_400,
            remaining: 9_999,
            reset_seconds: 9,
            ..standing("daily")
        };
        assert_eq!(
            policy_field(&[standing("burst"), day]),
            r#""burst";q=100;w=60, "daily";q=10000;w=86400"#
        );
        assert_eq!(
            state_field(&[standing("a\"b\\c\u{7}é")]),
            r#""a\"b\\c";r=0;t=12"#
        );
        assert_eq!(state_field(&[]), "");
    }
}
