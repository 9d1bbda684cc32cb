//! Reading usage (SPEC §11.3): who may see whose, and the series a chart draws.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::service::{check_id_filter, keys, parse_time};
use crate::state::AppState;
use latchkey_core::permission::KEYS_MANAGE_ALL;
use latchkey_core::{ids, Validator};
use latchkey_store::{Granularity, UsageFilter};
use std::collections::BTreeMap;

/// The most buckets one answer holds (a day of minutes).
pub const MAX_POINTS: i64 = 1_440;

/// `since`, `until`, `granularity` as a request gives them.
#[derive(Debug, Default, Clone)]
pub struct Window<'a> {
    pub since: Option<&'a str>,
    pub until: Option<&'a str>,
    pub granularity: Option<&'a str>,
}

/// One bucket of a series.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Point {
    pub at: i64,
    pub valid: i64,
    /// Refused verifications by verify code.
    pub denied: BTreeMap<String, i64>,
    pub credits_spent: i64,
}

/// A window read and checked: bucket starts from `since` (rounded down) to before `until`.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    pub granularity: Granularity,
    pub since: i64,
    pub until: i64,
}

impl Span {
    /// The default: the last 24 hours by hour (30 days by day).
    pub fn parse(w: &Window<'_>, now: i64) -> Result<Self, ApiError> {
        let mut v = Validator::new();
        let granularity = match w.granularity {
            None => Granularity::Hour,
            Some(g) => Granularity::parse(g).unwrap_or_else(|| {
                v.error("granularity", "minute, hour or day");
                Granularity::Hour
            }),
        };
        let until = w
            .until
            .and_then(|s| parse_time(&mut v, "until", s))
            .unwrap_or(now);
        let since = w.since.and_then(|s| parse_time(&mut v, "since", s));
        v.finish()?;
        // Whole buckets: `until` up to the end of its bucket, `since` down to its start.
        let until = granularity.start(until - 1) + granularity.seconds();
        let default_span = match granularity {
            Granularity::Day => 30 * 86_400,
            _ => 86_400,
        };
        let since = granularity.start(since.unwrap_or(until - default_span));
        if since >= until {
            return Err(ApiError::validation("since", "must be before until"));
        }
        if (until - since) / granularity.seconds() > MAX_POINTS {
            return Err(ApiError::validation(
                "since",
                format!("at most {MAX_POINTS} buckets per answer: narrow the window or take a coarser granularity"),
            ));
        }
        Ok(Self {
            granularity,
            since,
            until,
        })
    }
}

/// Every bucket of `span`, empty ones included, for the keys `filter` selects.
pub async fn series(
    state: &AppState,
    filter: &UsageFilter,
    span: Span,
) -> Result<Vec<Point>, ApiError> {
    let rows = state
        .store
        .usage(filter, span.granularity, span.since, span.until)
        .await?;
    let step = span.granularity.seconds();
    let mut points: Vec<Point> = (span.since..span.until)
        .step_by(step as usize)
        .map(|at| Point {
            at,
            ..Point::default()
        })
        .collect();
    for r in rows {
        let Some(p) = points.get_mut(((r.bucket_start - span.since) / step) as usize) else {
            continue;
        };
        p.credits_spent += r.credits;
        if r.code == "VALID" {
            p.valid += r.count;
        } else {
            *p.denied.entry(r.code).or_default() += r.count;
        }
    }
    Ok(points)
}

/// One key's usage: whoever may see the key may see its usage.
pub async fn of_key(
    state: &AppState,
    caller: &Caller,
    id: &str,
    span: Span,
) -> Result<Vec<Point>, ApiError> {
    let key = keys::get(state, caller, id).await?;
    let filter = UsageFilter {
        key_id: Some(key.id),
        ..Default::default()
    };
    series(state, &filter, span).await
}

/// A workspace's usage, or one owner's there. One's own needs what reading one's own keys
/// needs; anyone else's, or the whole workspace's, `latchkey:keys:manage_all`. Usage spans
/// both environments, so a test credential cannot read it.
pub async fn of_workspace(
    state: &AppState,
    caller: &Caller,
    workspace_id: Option<&str>,
    owner_id: Option<&str>,
    span: Span,
) -> Result<Vec<Point>, ApiError> {
    let mut v = Validator::new();
    check_id_filter(&mut v, "workspace_id", workspace_id, &[ids::WORKSPACE]);
    check_id_filter(&mut v, "owner_id", owner_id, &[ids::USER]);
    v.finish()?;
    caller.require_live()?;
    let workspace_id = caller.target_workspace(workspace_id)?;
    let own = owner_id == Some(caller.user_id());
    if !(caller.allows(KEYS_MANAGE_ALL) || (own && keys::may_read_keys(caller))) {
        return Err(ApiError::insufficient_permissions());
    }
    let filter = UsageFilter {
        workspace_id: Some(workspace_id),
        owner_id: owner_id.map(str::to_owned),
        key_id: None,
    };
    series(state, &filter, span).await
}
