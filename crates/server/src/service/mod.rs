//! The service layer: what a caller may do to each resource, decided in one place that the API
//! handlers (`routes`) and the dashboard pages (`dashboard`) both call.
//!
//! Each function takes the state, the [`Caller`](crate::auth::Caller) and typed inputs (the
//! API's request types, already parsed), and returns typed results (store records, a secret
//! shown once) or an [`ApiError`]. Everything that decides lives here: visibility (another
//! tenant's object is a 404), who may manage what, the delegation caps of
//! [`Caller::issuer`](crate::auth::Caller::issuer), test-vs-live rules, field validation
//! (`latchkey_core::Validator`), the store calls, the cache invalidation after each write
//! (`AppState::changed`) and the audit actor. What is left to a handler is extraction and its
//! response shape; to a page, its form and its HTML. Neither calls the store for a decision,
//! and neither calls the other.
//!
//! Plain async functions rather than a `Service { state, caller }` value: not every operation
//! has a caller (the key exchange and OAuth's client credentials issue tokens for a key that
//! is not yet a caller), and a struct would add a constructor and a lifetime at every call site
//! to carry two arguments.

pub mod audit;
pub mod keys;
pub mod leaks;
pub mod portal;
pub mod tokens;
pub mod usage;
pub mod users;
pub mod webhooks;
pub mod workspaces;

use crate::error::ApiError;
use latchkey_core::{ids, Validator};
use latchkey_store::PageRequest;

pub const DEFAULT_PAGE_LIMIT: u32 = 50;
pub const MAX_PAGE_LIMIT: u32 = 500;

/// Validates `limit`/`cursor`: limit 1–500 (default 50), a cursor shaped like an id of `prefix`.
pub fn page_request<'a>(
    limit: Option<u32>,
    cursor: Option<&'a str>,
    prefix: &str,
) -> Result<PageRequest<'a>, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE_LIMIT);
    let mut v = Validator::new();
    v.check(
        (1..=MAX_PAGE_LIMIT).contains(&limit),
        "limit",
        "must be 1 to 500",
    );
    v.check(
        cursor.is_none_or(|c| ids::is_id(prefix, c)),
        "cursor",
        "is not a cursor returned by this list",
    );
    v.finish()?;
    Ok(PageRequest { cursor, limit })
}

/// A filter that names an object by id: a malformed one is a 422 naming the field (as the
/// document's pattern says), not a silently empty list.
pub fn check_id_filter(v: &mut Validator, field: &str, value: Option<&str>, prefixes: &[&str]) {
    if value.is_some_and(|id| !prefixes.iter().any(|p| ids::is_id(p, id))) {
        v.error(
            field,
            format!("must be an id starting with {}_", prefixes.join("_ or ")),
        );
    }
}

/// RFC 3339 → unix seconds, as a field error when it does not parse.
pub fn parse_time(v: &mut Validator, field: &str, s: &str) -> Option<i64> {
    match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => Some(t.timestamp()),
        Err(_) => {
            v.error(
                field,
                "must be an RFC 3339 timestamp like 2030-01-31T00:00:00Z",
            );
            None
        }
    }
}
