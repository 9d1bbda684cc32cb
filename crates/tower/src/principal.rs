//! The verified caller, as an axum extractor.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use latchkey_proto::{Identity, Rejection};
use serde::Serialize;
use std::convert::Infallible;
use std::ops::Deref;

/// Who made the request (SPEC §10.5): `user_id`, `workspace_id`, `key_id`, `token_id`,
/// `key_type`, `environment`, `permissions`, `name`, and [`Identity::allows`]. Put there by
/// [`crate::LatchkeyLayer`]; on a public route there is none (take `Option<Principal>`), and a
/// handler that demands one answers 401.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Principal(pub Identity);

impl Deref for Principal {
    type Target = Identity;
    fn deref(&self) -> &Identity {
        &self.0
    }
}

/// The 401 of a handler that needs a principal where the layer let the request through
/// without one.
pub struct NoPrincipal;

impl IntoResponse for NoPrincipal {
    fn into_response(self) -> Response {
        Rejection::missing_credential()
            .to_response()
            .map(axum::body::Body::from)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = NoPrincipal;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, NoPrincipal> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or(NoPrincipal)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Principal {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Infallible> {
        Ok(parts.extensions.get::<Principal>().cloned())
    }
}
