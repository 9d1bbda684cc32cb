//! The gateway's own answers: a denial of the Gate as §10.1 words it, and problem+json for
//! what only a proxy can go through (the upstream refused, or took too long).

use crate::Body;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};
use latchkey_proto::{Problem, Rejection};

pub fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

/// The Gate's denial (401, 403, 404, 400, 503), exactly as forward auth and the tower layer
/// answer it.
pub fn rejection(r: &Rejection) -> Response<Body> {
    r.to_response().map(full)
}

/// A problem+json answer of the gateway's own: `code` and `detail` never say more than the
/// status does (a 5xx carries no internals, SPEC §3).
pub fn problem(status: StatusCode, code: &str, detail: &str) -> Response<Body> {
    let body = Problem {
        r#type: format!("urn:latchkey:problem:{code}"),
        title: status.canonical_reason().unwrap_or("Error").into(),
        status: status.as_u16(),
        detail: detail.into(),
        code: code.into(),
        errors: None,
    };
    let mut resp = Response::new(full(
        serde_json::to_vec(&body).expect("a problem serialises"),
    ));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    resp
}

pub fn bad_gateway() -> Response<Body> {
    problem(
        StatusCode::BAD_GATEWAY,
        "bad_gateway",
        "The upstream service cannot be reached",
    )
}

pub fn gateway_timeout() -> Response<Body> {
    problem(
        StatusCode::GATEWAY_TIMEOUT,
        "gateway_timeout",
        "The upstream service did not answer in time",
    )
}

pub fn bad_request(detail: &str) -> Response<Body> {
    problem(StatusCode::BAD_REQUEST, "bad_request", detail)
}
