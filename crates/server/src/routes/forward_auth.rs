//! SPEC §10.3 forward auth: a proxy already in front of an API (nginx `auth_request`, Traefik
//! `ForwardAuth`, Caddy `forward_auth`, Envoy `ext_authz`) asks here about each request before
//! forwarding it. This module only reads the question out of the proxy's request and shapes the
//! answer for it; the decision is the [`Gate`](latchkey_tower::Gate)'s, as for the gateway and
//! the tower layer.

use crate::error::ApiError;
use crate::state::AppState;
use crate::throttle;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use latchkey_core::Permission;
use latchkey_proto::identity::{self, insert_anonymous, insert_headers, CODE};
use latchkey_proto::Rejection;
use latchkey_tower::{Admission, Asked};
use std::net::IpAddr;

/// Where proxies send their questions. Envoy's `path_prefix` puts the original path after it.
pub const PREFIX: &str = "/v1/forward-auth";

/// The status an nginx-mapped answer stood for (404, 429 or 400), so an nginx `error_page` can
/// give it back to the client (docs/enforcement.md).
pub const STATUS: &str = "x-latchkey-status";

/// Not in the OpenAPI document (docs/api-decisions.md): any method, and its input is the
/// headers of someone else's request.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(PREFIX, any(forward_auth))
        .route("/v1/forward-auth/", any(forward_auth))
        .route("/v1/forward-auth/{*path}", any(forward_auth))
}

async fn forward_auth(State(state): State<AppState>, req: Request) -> Response {
    let (parts, _body) = req.into_parts();
    let question = match Question::read(&parts.method, &parts.uri, &parts.headers) {
        Ok(q) => q,
        Err(detail) => {
            // A proxy's configuration problem, or a client's forged header: never a verdict
            // on the credential. With `?proxy=nginx` it is still mapped (nginx would say 500);
            // Envoy's form has no query of its own to say so.
            let nginx = parts.uri.path() == PREFIX && parts.uri.query().is_some_and(asks_for_nginx);
            return answer(Err(Refused::Bad(detail)), nginx);
        }
    };
    if !question.permissions.is_empty() && state.gate.routes().is_some() {
        // SPEC §10.3: the table decides. Said once, so an operator who moved to a route table
        // learns that the proxy's `?permission=` no longer counts.
        static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(
                "forward auth: a route table is configured, so the proxy's ?permission= is ignored"
            );
        }
    }
    let ip = crate::auth::client_ip(&parts, &state);
    let outcome = decide(&state, &question, &parts.headers, ip).await;
    answer(outcome, question.nginx)
}

/// What the proxy asks: the original request, and what the proxy's configured URL adds.
#[derive(Debug, PartialEq, Eq)]
struct Question {
    method: String,
    /// `/path?query`, percent-encoded as the client sent it.
    target: String,
    /// `?permission=`: what any request needs when there is no route table.
    permissions: Vec<Permission>,
    /// `?proxy=nginx`: refuse with 401 or 403 only (nginx makes anything else a 500), but for
    /// a 503, which is an error there too.
    nginx: bool,
}

/// Why a request was not let through: the gate's answer, or the throttle's, or the proxy's
/// question was unreadable.
#[derive(Debug)]
enum Refused {
    Gate(Rejection),
    Throttled { retry_after: u64 },
    Bad(String),
}

async fn decide(
    state: &AppState,
    q: &Question,
    headers: &HeaderMap,
    ip: Option<IpAddr>,
) -> Result<Admission, Refused> {
    // The API's credential throttle, per client address as forward auth believes it: a proxy
    // in front must not become a way around it. As on the API, only requests that present a
    // credential pass it: a throttled address still reaches public routes without one.
    let presents = latchkey_engine::presented_credentials(headers).is_ok_and(|p| !p.is_empty());
    if presents {
        if let Err(ApiError::RateLimited { retry_after }) = throttle::admit_credential(state, ip) {
            return Err(Refused::Throttled { retry_after });
        }
    }
    let asked = Asked {
        method: &q.method,
        target: &q.target,
        headers,
        ip,
    };
    let admitted = state.gate.admit(&asked, &q.permissions).await;
    if let Err(Rejection::Denied {
        denial,
        presented: true,
    }) = &admitted
    {
        if denial.is_authentication_failure() {
            throttle::credential_refused(state, ip, &ApiError::Unauthenticated { presented: true });
        }
    }
    admitted.map_err(Refused::Gate)
}

/// 200 with an empty body and every §10.1 header (`-` on a public route), or the denial.
fn answer(outcome: Result<Admission, Refused>, nginx: bool) -> Response {
    let refused = match outcome {
        Ok(admission) => return allowed(&admission),
        Err(r) => r,
    };
    let (mut resp, problem) = refused.render();
    if nginx && NGINX_MAPPED.contains(&resp.status()) {
        for_nginx(&mut resp, problem);
    }
    resp
}

impl Refused {
    /// The answer, and its problem body (for nginx's rewrite).
    fn render(&self) -> (Response, String) {
        let api = |e: ApiError| {
            let problem = serde_json::to_string(&e.problem()).expect("a problem serialises");
            (e.into_response(), problem)
        };
        match self {
            Refused::Gate(rejection) => (
                rejection.to_response().into_response(),
                rejection.problem_json(),
            ),
            Refused::Throttled { retry_after } => {
                let (mut resp, problem) = api(ApiError::RateLimited {
                    retry_after: *retry_after,
                });
                resp.headers_mut()
                    .insert(CODE, HeaderValue::from_static("RATE_LIMITED"));
                (resp, problem)
            }
            Refused::Bad(detail) => api(ApiError::bad_request(detail.clone())),
        }
    }
}

fn allowed(admission: &Admission) -> Response {
    let mut resp = StatusCode::OK.into_response();
    let h = resp.headers_mut();
    match admission.identity() {
        Some(identity) => insert_headers(identity, h),
        None => insert_anonymous(h),
    }
    if let Some(fields) = admission.ratelimit() {
        fields.insert(h);
    }
    resp
}

/// nginx's `auth_request` accepts 2xx, 401 and 403 and turns anything else into 500. So 404
/// (no route), 429 (throttled) and 400 (a bad request) become 403, keeping their
/// `X-Latchkey-Code` (`NOT_FOUND`, `RATE_LIMITED`, `BAD_REQUEST`), `Retry-After` and problem
/// `code`, with the status they stood for in `X-Latchkey-Status` (an nginx `error_page` gives
/// it back to the client). A 503 stays 503: nginx answers it as 500, an error, which is what an
/// outage is; as a 403 it would look like a verdict on the key.
const NGINX_MAPPED: [StatusCode; 3] = [
    StatusCode::NOT_FOUND,
    StatusCode::TOO_MANY_REQUESTS,
    StatusCode::BAD_REQUEST,
];

fn for_nginx(resp: &mut Response, problem: String) {
    let was = resp.status();
    let mut problem: serde_json::Value = serde_json::from_str(&problem).expect("a problem is JSON");
    *resp.status_mut() = StatusCode::FORBIDDEN;
    // RFC 9457: the body's status is the response's.
    problem["status"] = 403.into();
    problem["title"] = "Forbidden".into();
    *resp.body_mut() = axum::body::Body::from(problem.to_string());
    let h = resp.headers_mut();
    h.remove(header::CONTENT_LENGTH);
    h.insert(STATUS, HeaderValue::from(was.as_u16()));
    if !h.contains_key(CODE) {
        h.insert(CODE, HeaderValue::from_static("BAD_REQUEST"));
    }
}

const X_FORWARDED_METHOD: &str = "x-forwarded-method";
const X_FORWARDED_URI: &str = "x-forwarded-uri";
const X_ORIGINAL_METHOD: &str = "x-original-method";
const X_ORIGINAL_URI: &str = "x-original-uri";

/// Whether the proxy's own query says `proxy=nginx` (for answering a question that could not
/// be read in nginx's terms too).
fn asks_for_nginx(query: &str) -> bool {
    url::form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k == "proxy" && v == "nginx")
}

impl Question {
    /// Reads the question. No `X-Latchkey-*` header may be in it ([`FORGED`]). Exactly one
    /// convention must be present: `X-Forwarded-Method` + `X-Forwarded-Uri` (Traefik, Caddy),
    /// `X-Original-Method` + `X-Original-URI` (nginx), or a path after [`PREFIX`] (Envoy). Each
    /// proxy sets its own pair but passes the client's other headers on: a client behind nginx
    /// could add `X-Forwarded-Uri: /public` and have another path checked than the one
    /// forwarded; a Caddy that passes the client's query on could be told `?proxy=nginx` by the
    /// client. Two conventions at once are therefore refused, whatever the query says.
    fn read(
        method: &axum::http::Method,
        uri: &axum::http::Uri,
        headers: &HeaderMap,
    ) -> Result<Self, String> {
        if identity::carries_any(headers) {
            return Err(FORGED.into());
        }
        let suffix = uri.path().strip_prefix(PREFIX).unwrap_or("");
        let forwarded = pair(headers, X_FORWARDED_METHOD, X_FORWARDED_URI)?;
        let original = pair(headers, X_ORIGINAL_METHOD, X_ORIGINAL_URI)?;
        if !suffix.is_empty() {
            // Envoy: the query is the client's, not ours; headers of the other conventions are
            // the client's too.
            if forwarded.is_some() || original.is_some() {
                return Err(TWO_CONVENTIONS.into());
            }
            let target = match uri.query() {
                Some(q) => format!("{suffix}?{q}"),
                None => suffix.to_owned(),
            };
            return Ok(Question {
                method: method.as_str().to_owned(),
                target,
                permissions: Vec::new(),
                nginx: false,
            });
        }
        let (permissions, nginx) = own_query(uri.query().unwrap_or(""))?;
        let (method, target) = match (forwarded, original) {
            (Some(_), Some(_)) => return Err(TWO_CONVENTIONS.into()),
            (Some(f), None) if !nginx => f,
            (_, Some(o)) => o,
            (Some(_), None) => {
                return Err(
                    "?proxy=nginx needs X-Original-Method and X-Original-URI from the proxy".into(),
                )
            }
            (None, None) => {
                return Err(
                    "Which request? Send X-Forwarded-Method and X-Forwarded-Uri, \
                     X-Original-Method and X-Original-URI, or the path after /v1/forward-auth"
                        .into(),
                )
            }
        };
        Ok(Question {
            method,
            target,
            permissions,
            nginx,
        })
    }
}

/// Proxies copy the §10.1 headers of the answer over the client's, but not every proxy can
/// remove the client's other `X-Latchkey-*` headers (nginx, Envoy): a request carrying any is
/// refused, so none ever reaches the upstream, whatever the proxy does.
const FORGED: &str = "X-Latchkey-* headers are Latchkey's answer about a request: \
     the request itself must not carry any";

const TWO_CONVENTIONS: &str = "The request names its original request in more than one way \
     (X-Forwarded-Uri, X-Original-URI, a path after /v1/forward-auth): a client may have added one";

/// One convention's method and target, if either of its headers is present. Each must then be
/// there once, the method a token, the target origin-form.
fn pair(
    headers: &HeaderMap,
    method: &'static str,
    target: &'static str,
) -> Result<Option<(String, String)>, String> {
    let one = |name: &'static str| -> Result<Option<&str>, String> {
        let mut values = headers.get_all(name).iter();
        let Some(first) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(format!("{name} is sent more than once"));
        }
        first
            .to_str()
            .map(Some)
            .map_err(|_| format!("{name} must be visible ASCII"))
    };
    let (m, t) = (one(method)?, one(target)?);
    let (m, t) = match (m, t) {
        (None, None) => return Ok(None),
        (Some(m), Some(t)) => (m, t),
        _ => return Err(format!("{method} and {target} go together")),
    };
    if axum::http::Method::from_bytes(m.as_bytes()).is_err() {
        return Err(format!("{method} is not an HTTP method"));
    }
    if !t.starts_with('/') {
        return Err(format!(
            "{target} must be a path (/…), as the client sent it"
        ));
    }
    Ok(Some((m.to_owned(), t.to_owned())))
}

/// Forward auth's own query (the proxy's configured URL): `permission` (repeatable) and
/// `proxy=nginx`. Anything else is refused, so a misspelt parameter in a proxy's configuration
/// fails loudly rather than letting every valid key through.
fn own_query(query: &str) -> Result<(Vec<Permission>, bool), String> {
    let mut permissions = Vec::new();
    let mut nginx = false;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "permission" => permissions.push(
                Permission::parse(&v)
                    .map_err(|e| format!("?permission={v} is not a permission: {e}"))?,
            ),
            "proxy" if v == "nginx" => nginx = true,
            // Labels only: Caddy's configuration needs a query of its own (docs/enforcement.md).
            "proxy" if matches!(&*v, "caddy" | "traefik") => {}
            "proxy" => {
                return Err(format!(
                    "?proxy={v}: the proxies are nginx, caddy and traefik (only nginx changes anything)"
                ))
            }
            other => {
                return Err(format!(
                    "Unknown parameter {other:?} (forward auth takes permission and proxy)"
                ))
            }
        }
    }
    Ok((permissions, nginx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderName, Method, Uri};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn read(method: Method, uri: &str, h: &[(&str, &str)]) -> Result<Question, String> {
        Question::read(&method, &uri.parse::<Uri>().unwrap(), &headers(h))
    }

    #[test]
    fn each_convention_names_the_original_request() {
        let traefik = read(
            Method::GET,
            "/v1/forward-auth?permission=documents:read",
            &[
                ("x-forwarded-method", "DELETE"),
                ("x-forwarded-uri", "/documents/7?x=1"),
            ],
        )
        .unwrap();
        assert_eq!(
            (traefik.method.as_str(), traefik.target.as_str()),
            ("DELETE", "/documents/7?x=1")
        );
        assert_eq!(traefik.permissions[0].as_str(), "documents:read");
        let nginx = read(
            Method::GET,
            "/v1/forward-auth?proxy=nginx",
            &[
                ("x-original-method", "POST"),
                ("x-original-uri", "/documents"),
            ],
        )
        .unwrap();
        assert_eq!(
            (nginx.method.as_str(), nginx.target.as_str(), nginx.nginx),
            ("POST", "/documents", true)
        );
        let envoy = read(
            Method::PUT,
            "/v1/forward-auth/documents/7?permission=x",
            &[],
        )
        .unwrap();
        assert_eq!(
            (envoy.method.as_str(), envoy.target.as_str()),
            ("PUT", "/documents/7?permission=x"),
            "Envoy's query is the client's"
        );
        assert!(envoy.permissions.is_empty());
        assert_eq!(
            read(Method::GET, "/v1/forward-auth/", &[]).unwrap().target,
            "/"
        );
        for label in ["caddy", "traefik"] {
            let q = read(
                Method::GET,
                &format!("/v1/forward-auth?proxy={label}"),
                &[("x-forwarded-method", "GET"), ("x-forwarded-uri", "/a")],
            )
            .unwrap();
            assert!(!q.nginx && q.permissions.is_empty(), "{label} is a label");
        }
    }

    #[test]
    fn an_unreadable_or_doubled_question_is_refused() {
        for (uri, h) in [
            ("/v1/forward-auth", &[][..]),
            ("/v1/forward-auth", &[("x-forwarded-uri", "/a")][..]),
            (
                "/v1/forward-auth",
                &[
                    ("x-forwarded-method", "GET"),
                    ("x-forwarded-uri", "http://evil/a"),
                ][..],
            ),
            (
                "/v1/forward-auth",
                &[("x-forwarded-method", "G T"), ("x-forwarded-uri", "/a")][..],
            ),
            (
                "/v1/forward-auth",
                &[
                    ("x-forwarded-method", "GET"),
                    ("x-forwarded-uri", "/a"),
                    ("x-forwarded-uri", "/b"),
                ][..],
            ),
            (
                "/v1/forward-auth",
                &[
                    ("x-forwarded-method", "GET"),
                    ("x-forwarded-uri", "/a"),
                    ("x-original-method", "GET"),
                    ("x-original-uri", "/public"),
                ][..],
            ),
            (
                "/v1/forward-auth/a",
                &[
                    ("x-forwarded-method", "GET"),
                    ("x-forwarded-uri", "/public"),
                ][..],
            ),
            (
                "/v1/forward-auth?proxy=nginx",
                &[("x-forwarded-method", "GET"), ("x-forwarded-uri", "/a")][..],
            ),
            (
                "/v1/forward-auth?permission=a::b",
                &[("x-forwarded-method", "GET"), ("x-forwarded-uri", "/a")][..],
            ),
            (
                "/v1/forward-auth?permision=a:b",
                &[("x-forwarded-method", "GET"), ("x-forwarded-uri", "/a")][..],
            ),
            (
                "/v1/forward-auth?proxy=haproxy",
                &[("x-forwarded-method", "GET"), ("x-forwarded-uri", "/a")][..],
            ),
        ] {
            assert!(read(Method::GET, uri, h).is_err(), "{uri} {h:?}");
        }
    }

    #[test]
    fn nginx_gets_only_401_and_403_refusals_and_503_stays_an_error() {
        let mapped = |r: Refused| {
            let resp = answer(Err(r), true);
            (
                resp.status().as_u16(),
                resp.headers()
                    .get(CODE)
                    .map(|v| v.to_str().unwrap().to_owned()),
                resp.headers()
                    .get(STATUS)
                    .map(|v| v.to_str().unwrap().to_owned()),
                resp.headers().contains_key(header::RETRY_AFTER),
            )
        };
        assert_eq!(
            mapped(Refused::Gate(Rejection::NoRoute)),
            (403, Some("NOT_FOUND".into()), Some("404".into()), false)
        );
        assert_eq!(
            mapped(Refused::Throttled { retry_after: 9 }),
            (403, Some("RATE_LIMITED".into()), Some("429".into()), true)
        );
        assert_eq!(
            mapped(Refused::Bad("x".into())),
            (403, Some("BAD_REQUEST".into()), Some("400".into()), false)
        );
        assert_eq!(
            mapped(Refused::Gate(Rejection::Unavailable)),
            (503, None, None, true)
        );
        assert_eq!(
            mapped(Refused::Gate(Rejection::missing_credential())),
            (401, Some("NOT_FOUND".into()), None, false)
        );
        let plain = answer(Err(Refused::Gate(Rejection::NoRoute)), false);
        assert_eq!(plain.status(), 404, "without proxy=nginx, the real status");
    }

    #[test]
    fn a_public_route_is_allowed_with_every_header_set_to_a_dash() {
        let resp = allowed(&Admission::Public {
            keep_credentials: false,
        });
        assert_eq!(resp.status(), 200);
        for name in identity::HEADERS {
            assert_eq!(resp.headers()[name], "-", "{name}");
        }
    }
}
