//! The HTTP layer's one error type, rendered once as RFC 9457 problem+json. Every failure a
//! client can see (including axum's own rejections and panics) goes through [`ApiError`].

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use latchkey_core::{Denial, FieldError};
use latchkey_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

pub use latchkey_proto::denial::INVALID_CREDENTIALS;

/// `Retry-After` on a 503: long enough not to hammer a recovering database.
pub use latchkey_proto::denial::RETRY_AFTER_SECONDS;

#[derive(Debug)]
pub enum ApiError {
    /// 401. `presented`: a credential was sent (adds `error="invalid_token"`, RFC 6750 §3).
    Unauthenticated {
        presented: bool,
    },
    /// 401 `invalid_signature`: a request authenticated by its signature alone (GitHub's leak
    /// reports) whose signature is missing, of an unknown key, or does not match the body.
    InvalidSignature,
    /// 403 with one of the §3 codes.
    Forbidden(&'static str),
    NotFound,
    Conflict(String),
    Validation(Vec<FieldError>),
    BadRequest {
        code: &'static str,
        detail: String,
    },
    UnsupportedMediaType,
    PayloadTooLarge,
    MethodNotAllowed,
    /// 503: the database cannot be reached, so nothing could be checked or changed. Never a
    /// verdict on the credential.
    Unavailable,
    /// 429 with `Retry-After`: too many failed attempts from this client.
    RateLimited {
        retry_after: u64,
    },
    /// 429 of the credential's own rate limit (`rate_limited`) or credits (`usage_exceeded`),
    /// as every front door answers it (SPEC §11).
    Limited(latchkey_proto::denial::Limited),
    Internal,
}

/// RFC 9457 problem details, as every error response carries them.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    #[schema(example = "urn:latchkey:problem:invalid_credentials")]
    pub r#type: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[schema(example = "invalid_credentials")]
    pub code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldErrorBody>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FieldErrorBody {
    pub field: String,
    pub message: String,
}

impl ApiError {
    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code: "bad_request",
            detail: detail.into(),
        }
    }

    pub fn insufficient_permissions() -> Self {
        ApiError::Forbidden("insufficient_permissions")
    }

    /// How a refused credential surfaces on an authenticated endpoint.
    pub fn from_denial(d: Denial) -> Self {
        match latchkey_proto::denial::forbidden_code(d) {
            Some(code) => ApiError::Forbidden(code),
            None => ApiError::Unauthenticated { presented: true },
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated { .. } | ApiError::InvalidSignature => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::RateLimited { .. } | ApiError::Limited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn problem(&self) -> Problem {
        let (code, detail): (&'static str, String) = match self {
            ApiError::Unauthenticated { .. } => ("invalid_credentials", INVALID_CREDENTIALS.into()),
            ApiError::InvalidSignature => (
                "invalid_signature",
                "Missing, unknown or invalid request signature".into(),
            ),
            ApiError::Forbidden(code) => {
                (code, latchkey_proto::denial::forbidden_detail(code).into())
            }
            ApiError::NotFound => ("not_found", "Not found".into()),
            ApiError::Conflict(d) => ("conflict", d.clone()),
            ApiError::Validation(_) => ("validation_failed", "Validation failed".into()),
            ApiError::BadRequest { code, detail } => (code, detail.clone()),
            ApiError::UnsupportedMediaType => (
                "unsupported_media_type",
                "Expected a body with Content-Type: application/json".into(),
            ),
            ApiError::PayloadTooLarge => ("payload_too_large", "Request body too large".into()),
            ApiError::MethodNotAllowed => ("method_not_allowed", "Method not allowed".into()),
            ApiError::Unavailable => (
                "unavailable",
                "The service cannot reach its database right now; retry shortly".into(),
            ),
            ApiError::RateLimited { retry_after } => (
                "rate_limited",
                format!("Too many failed attempts from this address; retry in {retry_after} s"),
            ),
            ApiError::Limited(l) => (l.code(), l.detail().into()),
            ApiError::Internal => ("internal_error", "Internal server error".into()),
        };
        let status = self.status();
        Problem {
            r#type: format!("urn:latchkey:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail,
            code,
            errors: match self {
                ApiError::Validation(errs) => Some(
                    errs.iter()
                        .map(|e| FieldErrorBody {
                            field: e.field.clone(),
                            message: e.message.clone(),
                        })
                        .collect(),
                ),
                _ => None,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&self.problem()).expect("problem serialises");
        let mut resp = (status, body).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match self {
            ApiError::Unauthenticated { presented: false } => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"latchkey\""),
                );
            }
            ApiError::Unauthenticated { presented: true } => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"latchkey\", error=\"invalid_token\""),
                );
            }
            ApiError::Forbidden("insufficient_permissions") => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "Bearer realm=\"latchkey\", error=\"insufficient_scope\"",
                    ),
                );
            }
            ApiError::Unavailable => {
                h.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_SECONDS),
                );
            }
            ApiError::RateLimited { retry_after } => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            ApiError::Limited(l) => l.insert_headers(h),
            _ => {}
        }
        resp
    }
}

impl From<latchkey_core::delegation::NotAllowed> for ApiError {
    fn from(_: latchkey_core::delegation::NotAllowed) -> Self {
        ApiError::insufficient_permissions()
    }
}

impl From<latchkey_core::delegation::PortalRefusal> for ApiError {
    fn from(r: latchkey_core::delegation::PortalRefusal) -> Self {
        match r {
            latchkey_core::delegation::PortalRefusal::TestCredential => {
                ApiError::Forbidden("environment_mismatch")
            }
            latchkey_core::delegation::PortalRefusal::NotHeld => {
                ApiError::insufficient_permissions()
            }
        }
    }
}

impl From<latchkey_engine::EngineError> for ApiError {
    fn from(e: latchkey_engine::EngineError) -> Self {
        match e {
            latchkey_engine::EngineError::Unavailable => ApiError::Unavailable,
            // Logged by the engine where it happened.
            _ => ApiError::Internal,
        }
    }
}

impl From<latchkey_engine::Ambiguous> for ApiError {
    fn from(_: latchkey_engine::Ambiguous) -> Self {
        ApiError::BadRequest {
            code: "ambiguous_credentials",
            detail: latchkey_proto::denial::AMBIGUOUS_CREDENTIALS.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Conflict(what) => ApiError::Conflict(capitalise(what)),
            StoreError::Unavailable(e) => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::Unavailable
            }
            other => {
                // The database error may quote SQL and values; it goes to the log, never the client.
                tracing::error!(error = %other, "store error");
                ApiError::Internal
            }
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

impl From<Vec<FieldError>> for ApiError {
    fn from(errs: Vec<FieldError>) -> Self {
        ApiError::Validation(errs)
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::bad_request(format!("Invalid query string: {}", e.body_text()))
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(_: axum::extract::rejection::PathRejection) -> Self {
        ApiError::NotFound
    }
}

/// The error responses an operation lists in the OpenAPI document, one type per status so that
/// each `#[utoipa::path]` names exactly the ones it can answer: `responses((status = 200, …),
/// Authenticated, JsonBody, NotFound)`. Every one is problem+json ([`Problem`]).
pub mod responses {
    use std::collections::BTreeMap;
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::response::{Response, ResponseBuilder};
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{content::ContentBuilder, Ref, RefOr};
    use utoipa::IntoResponses;

    type Responses = BTreeMap<String, RefOr<Response>>;

    fn header(description: &str) -> utoipa::openapi::header::Header {
        HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::String))
            .description(Some(description))
            .build()
    }

    pub(crate) fn problem(status: u16, description: &str) -> (String, RefOr<Response>) {
        let mut r = ResponseBuilder::new().description(description).content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        );
        r = match status {
            // The refused credential (the one 401 a credential's holder can meet), as the
            // server words it: its answer carries the challenge.
            401 if description == latchkey_proto::denial::INVALID_CREDENTIALS => r.header(
                "WWW-Authenticate",
                header(r#"`Bearer realm="latchkey"`, with `error="invalid_token"` when a credential was sent"#),
            ),
            503 => r.header("Retry-After", header("Seconds to wait before retrying")),
            _ => r,
        };
        (status.to_string(), r.build().into())
    }

    macro_rules! problem_responses {
        ($($(#[$doc:meta])* $ty:ident: $(($status:literal, $description:expr)),+;)+) => {$(
            $(#[$doc])*
            pub struct $ty;
            impl IntoResponses for $ty {
                fn responses() -> Responses {
                    [$(problem($status, $description)),+].into_iter().collect()
                }
            }
        )+};
    }

    problem_responses! {
        /// Any request: refused at the edge (credentials or control characters in the URL).
        BadRequest: (400, "Malformed request: credentials in the URL, control characters, a malformed query or body, or two different credentials");
        /// Every operation that takes a credential: it may be missing or refused (401), not
        /// enough (403), or not checkable because the database is out of reach (503).
        Authenticated:
            (400, "Malformed request: credentials in the URL, control characters, a malformed query or body, or two different credentials"),
            (401, latchkey_proto::denial::INVALID_CREDENTIALS),
            (403, "Valid credential lacking the permission, environment, origin or IP"),
            (429, "Too many refused credentials from this client address; see `Retry-After`"),
            (503, "The database is unreachable: nothing was checked or changed; retry");
        /// Every operation with a JSON body: unreadable (400), too large (413), not JSON (415),
        /// or a field that is invalid (422, naming it).
        JsonBody:
            (400, "Malformed request: credentials in the URL, control characters, a malformed query or body, or two different credentials"),
            (413, "Request body too large"),
            (415, "The body is not `application/json`"),
            (422, "A field is invalid; `errors` names each");
        /// A JSON body that may also be left out entirely.
        OptionalJsonBody:
            (400, "Malformed request: credentials in the URL, control characters, a malformed query or body, or two different credentials"),
            (413, "Request body too large"),
            (415, "The body is not `application/json`"),
            (422, "A field is invalid; `errors` names each");
        /// An operation authenticated by a signature of its body alone (GitHub's leak reports).
        Signed:
            (400, "Malformed request: control characters in the URL, or a body that is not JSON"),
            (401, "The signature is missing, of an unknown key, or does not match the body"),
            (413, "Request body too large"),
            (422, "A field is invalid; `errors` names each"),
            (503, "The database is unreachable: nothing was checked or changed; retry");
        NotFound: (404, "Not found, or not visible to this credential");
        Conflict: (409, "Conflict with the current state (a taken email, the last admin, an already rolled key or revoked token)");
        /// A query parameter (`limit`, `cursor`, a filter) is invalid.
        Unprocessable: (422, "A field is invalid; `errors` names each");
        /// Rate limits and quotas (`rate_limited`, `usage_exceeded`), for the operations that have them.
        TooManyRequests: (429, "Rate limit or quota exceeded; see `Retry-After`");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    async fn render(e: ApiError) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let r = e.into_response();
        let (parts, body) = r.into_parts();
        let bytes = to_bytes(body, 1 << 16).await.unwrap();
        (
            parts.status,
            parts.headers,
            serde_json::from_slice(&bytes).unwrap(),
        )
    }

    #[tokio::test]
    async fn unauthenticated_is_rfc6750_and_exact() {
        let (s, h, b) = render(ApiError::Unauthenticated { presented: true }).await;
        assert_eq!(s, 401);
        assert_eq!(h["content-type"], "application/problem+json");
        assert_eq!(
            h["www-authenticate"],
            "Bearer realm=\"latchkey\", error=\"invalid_token\""
        );
        assert_eq!(b["detail"], "Invalid or missing API key");
        assert_eq!(b["code"], "invalid_credentials");
        assert_eq!(b["status"], 401);
        let (_, h, _) = render(ApiError::Unauthenticated { presented: false }).await;
        assert_eq!(h["www-authenticate"], "Bearer realm=\"latchkey\"");
    }

    #[tokio::test]
    async fn validation_lists_fields_and_internal_hides_details() {
        let (s, _, b) = render(ApiError::validation("name", "must be 1 to 100 characters")).await;
        assert_eq!(s, 422);
        assert_eq!(b["errors"][0]["field"], "name");
        assert_eq!(b["code"], "validation_failed");
        let (s, _, b) = render(ApiError::from(StoreError::Migration("secret sql".into()))).await;
        assert_eq!(s, 500);
        assert!(!b.to_string().contains("secret sql"));
    }

    #[tokio::test]
    async fn an_outage_is_503_with_retry_after() {
        let e = StoreError::from(sqlx::Error::PoolTimedOut);
        assert!(e.is_unavailable());
        let (s, h, b) = render(ApiError::from(e)).await;
        assert_eq!(s, 503);
        assert_eq!(h["retry-after"], RETRY_AFTER_SECONDS);
        assert_eq!(b["code"], "unavailable");
    }

    #[tokio::test]
    async fn rate_limited_says_when_to_retry() {
        let (s, h, b) = render(ApiError::RateLimited { retry_after: 7 }).await;
        assert_eq!(s, 429);
        assert_eq!(h["retry-after"], "7");
        assert_eq!(b["code"], "rate_limited");
    }

    #[test]
    fn denials_map_to_401_or_403() {
        assert_eq!(ApiError::from_denial(Denial::Revoked).status(), 401);
        assert_eq!(ApiError::from_denial(Denial::Forbidden).status(), 401);
        assert_eq!(ApiError::from_denial(Denial::IpNotAllowed).status(), 403);
        assert_eq!(
            ApiError::from_denial(Denial::InsufficientPermissions).status(),
            403
        );
    }
}
