//! The `RateLimit-Policy`/`RateLimit` fields on successful API answers (SPEC §11.1): the
//! credential is checked in the [`Caller`](crate::auth::Caller) extractor, which cannot touch
//! the response, so it leaves the fields in a slot the request carries, and the edge
//! middleware copies them onto whatever the handler answered.

use axum::http::request::Parts;
use axum::response::Response;
use latchkey_proto::ratelimit::{Fields, RATELIMIT};
use std::sync::{Arc, OnceLock};

/// Where a request's limits are left for its answer.
#[derive(Clone, Default)]
pub struct Slot(Arc<OnceLock<Fields>>);

/// Called once the caller's limits were charged.
pub fn report(parts: &Parts, fields: Fields) {
    if let Some(slot) = parts.extensions.get::<Slot>() {
        let _ = slot.0.set(fields);
    }
}

/// Puts the fields left in `slot` on `resp`, unless it carries its own (a 429 of a limit).
pub fn apply(slot: &Slot, resp: &mut Response) {
    if let Some(fields) = slot.0.get() {
        if !resp.headers().contains_key(RATELIMIT) {
            fields.insert(resp.headers_mut());
        }
    }
}
