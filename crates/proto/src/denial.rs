//! What a front door answers when it does not let a request through (SPEC §3, §10.1): the
//! problem+json body, the status, `X-Latchkey-Code`, `WWW-Authenticate` on 401 and
//! `Retry-After` on 503. The API's own errors use the same texts.

use crate::identity::CODE;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use latchkey_core::Denial;
use serde::Serialize;

/// The one 401 detail, whatever was wrong with the credential (SPEC §3).
pub const INVALID_CREDENTIALS: &str = "Invalid or missing API key";
/// How long a client should wait after a 503, in seconds.
pub const RETRY_AFTER_SECONDS: &str = "2";

/// The 400 of a credential in the URL (SPEC §4).
pub const CREDENTIALS_IN_QUERY: &str = "Credentials must be sent in a header, never in the URL";
/// The 400 of two different credentials in one request.
pub const AMBIGUOUS_CREDENTIALS: &str =
    "Send one credential (or one API key with one access token): the request carries two different ones";

/// Why a request was not let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The credential was checked: missing (`presented: false`), invalid, or not enough.
    Denied { denial: Denial, presented: bool },
    /// A rate limit or the credits of a valid credential are spent (SPEC §11).
    Limited(Limited),
    /// The request itself is wrong (`ambiguous_credentials`, `credentials_in_query`).
    BadRequest { code: &'static str, detail: String },
    /// No route of the route table matches, and there is no default.
    NoRoute,
    /// The credential could not be checked (the database or the Latchkey server is
    /// unreachable): never a verdict.
    Unavailable,
}

#[derive(Debug, Serialize)]
struct Problem<'a> {
    r#type: String,
    title: &'static str,
    status: u16,
    detail: &'a str,
    code: &'static str,
}

/// The 403 detail of each code.
pub fn forbidden_detail(code: &str) -> &'static str {
    match code {
        "environment_mismatch" => "This credential's environment cannot be used for this request",
        "origin_not_allowed" => "This key may not be used from this origin",
        "ip_not_allowed" => "This key may not be used from this IP address",
        _ => "This credential lacks the permission for this request",
    }
}

/// The §3 `code` of a denial's 403, or `None` for a 401.
pub fn forbidden_code(d: Denial) -> Option<&'static str> {
    match d {
        Denial::EnvironmentMismatch => Some("environment_mismatch"),
        Denial::OriginNotAllowed => Some("origin_not_allowed"),
        Denial::IpNotAllowed => Some("ip_not_allowed"),
        Denial::InsufficientPermissions => Some("insufficient_permissions"),
        _ => None,
    }
}

/// A 429 of a credential's own limits: a rate limit (`RATE_LIMITED`) or its credits
/// (`USAGE_EXCEEDED`) are spent. Every front door, the API included, answers it with the same
/// code, detail and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    pub denial: Denial,
    /// Seconds until the request would pass (at least 1); `None` for credits that never
    /// refill (no wait helps).
    pub retry_after: Option<u64>,
    pub fields: Option<crate::ratelimit::Fields>,
}

impl Limited {
    /// The §3 `code`: `rate_limited` or `usage_exceeded`.
    pub fn code(&self) -> &'static str {
        match self.denial {
            Denial::UsageExceeded => "usage_exceeded",
            _ => "rate_limited",
        }
    }

    pub fn detail(&self) -> &'static str {
        match self.denial {
            Denial::UsageExceeded => "This credential has no credits left",
            _ => "Rate limit exceeded; retry after the time in Retry-After",
        }
    }

    /// `Retry-After` (when waiting helps) and the `RateLimit` fields.
    pub fn insert_headers(&self, h: &mut http::HeaderMap) {
        if let Some(s) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if let Some(f) = &self.fields {
            f.insert(h);
        }
    }
}

impl Rejection {
    pub fn missing_credential() -> Self {
        Rejection::Denied {
            denial: Denial::NotFound,
            presented: false,
        }
    }

    pub fn credentials_in_query() -> Self {
        Rejection::BadRequest {
            code: "credentials_in_query",
            detail: CREDENTIALS_IN_QUERY.into(),
        }
    }

    pub fn ambiguous_credentials() -> Self {
        Rejection::BadRequest {
            code: "ambiguous_credentials",
            detail: AMBIGUOUS_CREDENTIALS.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::Denied { denial, .. } if denial.is_authentication_failure() => {
                StatusCode::UNAUTHORIZED
            }
            Rejection::Denied { .. } => StatusCode::FORBIDDEN,
            Rejection::Limited(_) => StatusCode::TOO_MANY_REQUESTS,
            Rejection::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Rejection::NoRoute => StatusCode::NOT_FOUND,
            Rejection::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The problem's `code`.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Denied { denial, .. } => {
                forbidden_code(*denial).unwrap_or("invalid_credentials")
            }
            Rejection::Limited(l) => l.code(),
            Rejection::BadRequest { code, .. } => code,
            Rejection::NoRoute => "not_found",
            Rejection::Unavailable => "unavailable",
        }
    }

    /// `X-Latchkey-Code`: the verify code of a denial.
    pub fn verify_code(&self) -> Option<&'static str> {
        match self {
            Rejection::Denied { denial, .. } | Rejection::Limited(Limited { denial, .. }) => {
                Some(denial.verify_code())
            }
            Rejection::NoRoute => Some("NOT_FOUND"),
            _ => None,
        }
    }

    pub fn detail(&self) -> &str {
        match self {
            Rejection::Denied { denial, .. } => match forbidden_code(*denial) {
                Some(code) => forbidden_detail(code),
                None => INVALID_CREDENTIALS,
            },
            Rejection::Limited(l) => l.detail(),
            Rejection::BadRequest { detail, .. } => detail,
            Rejection::NoRoute => "Not found",
            Rejection::Unavailable => "Credentials cannot be checked right now; retry shortly",
        }
    }

    pub fn problem_json(&self) -> String {
        let status = self.status();
        serde_json::to_string(&Problem {
            r#type: format!("urn:latchkey:problem:{}", self.code()),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: self.detail(),
            code: self.code(),
        })
        .expect("a problem serialises")
    }

    /// The whole answer, with the body as a string.
    pub fn to_response(&self) -> Response<String> {
        let mut resp = Response::new(self.problem_json());
        *resp.status_mut() = self.status();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(code) = self.verify_code() {
            h.insert(CODE, HeaderValue::from_static(code));
        }
        match self {
            Rejection::Denied {
                presented: false, ..
            } => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"latchkey\""),
                );
            }
            Rejection::Denied { denial, .. } if denial.is_authentication_failure() => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"latchkey\", error=\"invalid_token\""),
                );
            }
            Rejection::Denied {
                denial: Denial::InsufficientPermissions,
                ..
            } => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "Bearer realm=\"latchkey\", error=\"insufficient_scope\"",
                    ),
                );
            }
            Rejection::Limited(l) => l.insert_headers(h),
            Rejection::Unavailable => {
                h.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_SECONDS),
                );
            }
            _ => {}
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_denial_answers_its_status_code_and_headers() {
        let r = Rejection::Denied {
            denial: Denial::Revoked,
            presented: true,
        }
        .to_response();
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()[CODE], "REVOKED");
        assert!(r.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("invalid_token"));
        let body: serde_json::Value = serde_json::from_str(r.body()).unwrap();
        assert_eq!(body["detail"], INVALID_CREDENTIALS);
        assert_eq!(body["code"], "invalid_credentials");

        let r = Rejection::Denied {
            denial: Denial::InsufficientPermissions,
            presented: true,
        }
        .to_response();
        assert_eq!(r.status(), 403);
        assert_eq!(r.headers()[CODE], "INSUFFICIENT_PERMISSIONS");

        let r = Rejection::missing_credential().to_response();
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"latchkey\""
        );

        let r = Rejection::Unavailable.to_response();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[header::RETRY_AFTER], RETRY_AFTER_SECONDS);
        assert!(r.headers().get(CODE).is_none());
    }
}
