//! CORS for browser apps that call the API with a publishable key (SPEC §10.4): the gateway
//! answers preflights itself (they carry no credential, so the upstream could not judge them),
//! and marks the actual response readable by the page's origin when its key allowed that origin.

use crate::problem::{empty, problem};
use crate::Body;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};

/// How long a browser may reuse an allowed preflight, in seconds: short, so a revoked key's
/// origin closes soon in browsers too.
const MAX_AGE: &str = "60";

/// The `Origin` of a CORS preflight: `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`, and no credential (a request that carries one is an
/// ordinary request, checked as such).
pub fn preflight_origin<'h>(method: &Method, headers: &'h HeaderMap) -> Option<&'h HeaderValue> {
    if method != Method::OPTIONS
        || !headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        || headers.contains_key(header::AUTHORIZATION)
        || headers.contains_key("x-api-key")
    {
        return None;
    }
    headers.get(header::ORIGIN)
}

/// 204 allowing `origin` the method and headers it asked for.
pub fn allow_preflight(origin: &HeaderValue, asked: &HeaderMap) -> Response<Body> {
    let mut resp = Response::new(empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    if let Some(m) = asked.get(header::ACCESS_CONTROL_REQUEST_METHOD) {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, m.clone());
    }
    if let Some(names) = asked.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, names.clone());
    }
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(MAX_AGE),
    );
    vary(h);
    resp
}

/// 403 `origin_not_allowed`, without any `Access-Control-*`: the browser does not send the
/// actual request.
pub fn refuse_preflight() -> Response<Body> {
    let mut resp = problem(
        StatusCode::FORBIDDEN,
        "origin_not_allowed",
        latchkey_proto::denial::forbidden_detail("origin_not_allowed"),
    );
    vary(resp.headers_mut());
    resp
}

/// The actual request's answer, readable by `origin` (its publishable key allowed it).
pub fn allow_response(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

fn vary(h: &mut HeaderMap) {
    h.append(
        header::VARY,
        HeaderValue::from_static(
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn a_preflight_is_an_options_with_origin_and_method_asked_and_no_credential() {
        let asked = [
            ("origin", "https://app.example"),
            ("access-control-request-method", "POST"),
        ];
        let h = headers(&asked);
        assert_eq!(
            preflight_origin(&Method::OPTIONS, &h).map(|o| o.to_str().unwrap()),
            Some("https://app.example")
        );
        assert_eq!(preflight_origin(&Method::GET, &h), None);
        assert_eq!(
            preflight_origin(&Method::OPTIONS, &headers(&asked[..1])),
            None,
            "a plain OPTIONS goes through the Gate"
        );
        for credential in ["authorization", "x-api-key"] {
            let mut h = headers(&asked);
            h.insert(credential, HeaderValue::from_static("sk_live_x"));
            assert_eq!(
                preflight_origin(&Method::OPTIONS, &h),
                None,
                "{credential}: checked as an ordinary request"
            );
        }
    }

    #[test]
    fn an_allowed_preflight_names_what_was_asked_and_a_refused_one_nothing() {
        let asked = headers(&[
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "x-api-key, content-type"),
        ]);
        let origin = HeaderValue::from_static("https://app.example");
        let ok = allow_preflight(&origin, &asked);
        assert_eq!(ok.status(), StatusCode::NO_CONTENT);
        let h = ok.headers();
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example"
        );
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_METHODS], "PUT");
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_HEADERS],
            "x-api-key, content-type"
        );
        assert!(h[header::VARY].to_str().unwrap().starts_with("Origin"));
        let refused = refuse_preflight();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert!(!refused
            .headers()
            .keys()
            .any(|k| k.as_str().starts_with("access-control-")));
    }
}
