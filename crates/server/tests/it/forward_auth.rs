//! SPEC §10.3 forward auth, asked over real HTTP the way each proxy asks it: Traefik and Caddy
//! (`X-Forwarded-Method` + `X-Forwarded-Uri`), nginx (`X-Original-Method` + `X-Original-URI`,
//! `?proxy=nginx`) and Envoy's ext_authz HTTP service (the original method, the path after
//! `/v1/forward-auth`). The real proxies are in `proxies.rs`; here every answer is looked at.

use crate::harness::{backends, each_backend_with, Backend, Resp, TestServer};
use latchkey_core::route::RouteTable;
use reqwest::Method;
use serde_json::json;

pub const ROUTES: [&str; 4] = [
    "GET /documents/{id} document:{id}:read",
    "POST /documents documents:write",
    "GET /health public",
    "* /admin/** admin:*",
];

pub fn routes() -> RouteTable {
    RouteTable::from_lines(ROUTES, None).unwrap()
}

const IDENTITY: [&str; 8] = [
    "x-latchkey-user-id",
    "x-latchkey-workspace-id",
    "x-latchkey-key-id",
    "x-latchkey-token-id",
    "x-latchkey-key-type",
    "x-latchkey-environment",
    "x-latchkey-permissions",
    "x-latchkey-name",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Convention {
    /// Traefik and Caddy.
    Forwarded,
    /// nginx, with `?proxy=nginx` as docs/enforcement.md configures it.
    Nginx,
    /// Envoy ext_authz, HTTP service with `path_prefix: /v1/forward-auth`.
    Envoy,
}

const CONVENTIONS: [Convention; 3] = [Convention::Forwarded, Convention::Nginx, Convention::Envoy];

/// A request a proxy would make about the client request `method target`, carrying the
/// client's `headers` (its credential among them). `query` is forward auth's own (the proxy's
/// configured URL); Envoy cannot have one.
fn asking(
    srv: &TestServer,
    conv: Convention,
    method: &str,
    target: &str,
    query: &str,
    headers: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let mut rb = match conv {
        Convention::Forwarded => srv
            .request(Method::GET, &format!("/v1/forward-auth{query}"))
            .header("x-forwarded-method", method)
            .header("x-forwarded-proto", "http")
            .header("x-forwarded-host", "api.example.com")
            .header("x-forwarded-uri", target)
            .header("x-forwarded-for", "127.0.0.1"),
        Convention::Nginx => {
            let q = if query.is_empty() {
                "?proxy=nginx".to_owned()
            } else {
                format!("{query}&proxy=nginx")
            };
            srv.request(Method::GET, &format!("/v1/forward-auth{q}"))
                .header("x-original-method", method)
                .header("x-original-uri", target)
                .header("x-forwarded-for", "127.0.0.1")
        }
        Convention::Envoy => {
            assert!(query.is_empty(), "Envoy's query is the client's");
            // As Envoy's ext_authz HTTP service sends it: the original method, the prefixed
            // path, no body, and the headers Envoy adds.
            srv.request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                &format!("/v1/forward-auth{target}"),
            )
            .header("content-length", "0")
            .header("x-forwarded-for", "127.0.0.1")
            .header("x-forwarded-proto", "http")
            .header("x-request-id", "5b0d3f2c-8f0e-4e8c-9a7e-3d1c2b4a5f60")
            .header("x-envoy-expected-rq-timeout-ms", "1000")
        }
    };
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    rb
}

async fn ask(
    srv: &TestServer,
    conv: Convention,
    method: &str,
    target: &str,
    key: Option<&str>,
) -> Resp {
    let bearer = key.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = bearer
        .as_deref()
        .map(|b| ("authorization", b))
        .into_iter()
        .collect();
    srv.send(asking(srv, conv, method, target, "", &headers))
        .await
}

/// An allow: 200, an empty body, every §10.1 header present and none empty.
#[track_caller]
fn allowed(r: &Resp) {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, serde_json::Value::Null, "an empty body");
    for name in IDENTITY {
        let v = r
            .headers
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert!(!v.is_empty(), "{name} is never empty");
    }
    assert!(r.headers.get("x-latchkey-code").is_none());
}

#[track_caller]
fn denied(r: Resp, status: u16, code: &str, verify_code: &str) {
    assert_eq!(
        r.headers
            .get("x-latchkey-code")
            .map(|v| v.to_str().unwrap()),
        Some(verify_code),
        "{}",
        r.body
    );
    r.problem(status, code);
}

/// What a status is under a convention: nginx is answered 403 for 404 (SPEC §10.3).
fn under(conv: Convention, status: u16) -> u16 {
    match (conv, status) {
        (Convention::Nginx, 404 | 429 | 400) => 403,
        _ => status,
    }
}

/// A member's key restricted to `permissions`, and its id.
async fn key_with(srv: &TestServer, ws: &str, permissions: &[&str]) -> (String, String, String) {
    let user = srv.user("reader").await;
    srv.set_member(ws, &user, "member").await;
    let k = srv
        .key_for(
            ws,
            &user,
            json!({"name": "Reader ✓", "permissions": permissions}),
        )
        .await;
    (
        user,
        k["key"].as_str().unwrap().to_owned(),
        k["id"].as_str().unwrap().to_owned(),
    )
}

/// A key issued elsewhere and imported (SPEC §12.3) is allowed and denied by forward auth
/// under every convention exactly as a native key is.
#[tokio::test]
async fn an_imported_key_is_allowed_and_denied_like_a_native_one() {
    each_backend_with(
        |c| c.routes = Some(routes()),
        |srv| async move {
            let ws = srv.workspace("Docs").await;
            let user = srv.user("reader").await;
            srv.set_member(&ws, &user, "member").await;
            let legacy = format!("legacy_{}", crate::harness::random_suffix().repeat(2));
            let imported = srv
                .post(
                    "/v1/keys/import",
                    &srv.admin_key,
                    json!({"keys": [{"key": legacy, "name": "legacy", "owner_id": user,
                        "workspace_id": ws, "environment": "live",
                        "permissions": ["document:doc_1:read"]}]}),
                )
                .await
                .expect(200);
            let key_id = imported["imported"][0]["id"].as_str().unwrap();
            for conv in CONVENTIONS {
                let r = ask(&srv, conv, "GET", "/documents/doc_1", Some(&legacy)).await;
                allowed(&r);
                assert_eq!(r.headers["x-latchkey-key-id"].to_str().unwrap(), key_id);
                assert_eq!(r.headers["x-latchkey-user-id"].to_str().unwrap(), user);
                let r = ask(&srv, conv, "GET", "/documents/doc_2", Some(&legacy)).await;
                denied(
                    r,
                    under(conv, 403),
                    "insufficient_permissions",
                    "INSUFFICIENT_PERMISSIONS",
                );
            }
        },
    )
    .await;
}

#[tokio::test]
async fn each_convention_is_allowed_and_denied_by_the_route_table() {
    each_backend_with(
        |c| c.routes = Some(routes()),
        |srv| async move {
            let ws = srv.workspace("Docs").await;
            let (user, key, key_id) = key_with(&srv, &ws, &["document:doc_1:read"]).await;
            for conv in CONVENTIONS {
                let r = ask(&srv, conv, "GET", "/documents/doc_1?page=2", Some(&key)).await;
                allowed(&r);
                let h = |n: &str| r.headers[n].to_str().unwrap().to_owned();
                assert_eq!(h("x-latchkey-user-id"), user, "{conv:?}");
                assert_eq!(h("x-latchkey-workspace-id"), ws);
                assert_eq!(h("x-latchkey-key-id"), key_id);
                assert_eq!(h("x-latchkey-token-id"), "-");
                assert_eq!(h("x-latchkey-key-type"), "secret");
                assert_eq!(h("x-latchkey-environment"), "live");
                assert_eq!(h("x-latchkey-permissions"), "document:doc_1:read");
                assert_eq!(h("x-latchkey-name"), "Reader%20%E2%9C%93");

                // The `{id}` capture decides: another document, another permission.
                let r = ask(&srv, conv, "GET", "/documents/doc_2", Some(&key)).await;
                denied(
                    r,
                    403,
                    "insufficient_permissions",
                    "INSUFFICIENT_PERMISSIONS",
                );
                let r = ask(&srv, conv, "POST", "/documents", Some(&key)).await;
                denied(
                    r,
                    403,
                    "insufficient_permissions",
                    "INSUFFICIENT_PERMISSIONS",
                );

                // With a route table, the table decides (SPEC §10.3): a `?permission=` in
                // the proxy's URL neither adds to the route's permission nor replaces it.
                if conv != Convention::Envoy {
                    let bearer = format!("Bearer {key}");
                    let headers = [("authorization", bearer.as_str())];
                    let target = "/documents/doc_1";
                    let q = "?permission=admin:*";
                    let r = srv
                        .send(asking(&srv, conv, "GET", target, q, &headers))
                        .await;
                    allowed(&r);
                    let q = "?permission=document:doc_1:read";
                    let r = srv
                        .send(asking(&srv, conv, "GET", "/documents/doc_2", q, &headers))
                        .await;
                    denied(
                        r,
                        403,
                        "insufficient_permissions",
                        "INSUFFICIENT_PERMISSIONS",
                    );
                }

                // A public route asks nothing, and still sets every header, to `-`.
                let r = ask(&srv, conv, "GET", "/health", None).await;
                allowed(&r);
                for name in IDENTITY {
                    assert_eq!(r.headers[name], "-", "{conv:?} {name}");
                }

                // No key, a bad key.
                let r = ask(&srv, conv, "GET", "/documents/doc_1", None).await;
                assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"latchkey\"");
                denied(r, 401, "invalid_credentials", "NOT_FOUND");
                let bad = "sk_live_00000000000000000000000000000000000000";
                let r = ask(&srv, conv, "GET", "/documents/doc_1", Some(bad)).await;
                assert!(r.headers["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .contains("invalid_token"));
                assert_eq!(r.body["detail"], "Invalid or missing API key");
                denied(r, 401, "invalid_credentials", "NOT_FOUND");

                // No route: 404, which nginx is told as 403 with its code.
                let r = ask(&srv, conv, "GET", "/nowhere", Some(&key)).await;
                assert_eq!(r.status.as_u16(), under(conv, 404), "{conv:?}");
                assert_eq!(r.headers["x-latchkey-code"], "NOT_FOUND");
                assert_eq!(r.body["code"], "not_found");
                if conv == Convention::Nginx {
                    assert_eq!(r.headers["x-latchkey-status"], "404");
                }
            }
        },
    )
    .await;
}

/// A path cannot name another document's permission (SPEC §10.2), however it is forwarded.
#[tokio::test]
async fn path_injection_never_matches_another_documents_permission() {
    each_backend_with(
        |c| c.routes = Some(routes()),
        |srv| async move {
            let ws = srv.workspace("Docs").await;
            // Holds exactly the permissions an injected capture would try to reach.
            let (_, key, _) = key_with(
                &srv,
                &ws,
                &[
                    "document:a:read",
                    "document:secret:read",
                    "document:doc_1:read",
                ],
            )
            .await;
            for conv in CONVENTIONS {
                for target in [
                    "/documents/a:b",
                    "/documents/%2A",
                    "/documents/*",
                    "/documents/..%2Fsecret",
                    "/documents/doc_1%2F..%2Fsecret",
                    "/documents/a%3Ab",
                    "/documents//doc_1",
                    "/documents/doc_1/extra",
                ] {
                    let r = ask(&srv, conv, "GET", target, Some(&key)).await;
                    assert_eq!(
                        r.status.as_u16(),
                        under(conv, 404),
                        "{conv:?} {target}: {}",
                        r.body
                    );
                    assert_eq!(
                        r.headers["x-latchkey-code"], "NOT_FOUND",
                        "{conv:?} {target}"
                    );
                }
                // The key itself works, so the 404s above are the paths' doing.
                allowed(&ask(&srv, conv, "GET", "/documents/secret", Some(&key)).await);
            }
        },
    )
    .await;
}

/// A client that sends `X-Latchkey-*` itself is refused, so no proxy can pass a forged
/// identity on (nginx and Envoy cannot remove headers by prefix); and a second way of naming
/// the original request, added by a client, is refused rather than believed.
#[tokio::test]
async fn forged_identity_headers_and_a_second_original_request_are_refused() {
    each_backend_with(
        |c| c.routes = Some(routes()),
        |srv| async move {
            let ws = srv.workspace("Docs").await;
            let (_, key, _) = key_with(&srv, &ws, &["document:doc_1:read"]).await;
            let bearer = format!("Bearer {key}");
            for conv in CONVENTIONS {
                for forged in [
                    ("x-latchkey-user-id", "usr_forged"),
                    ("X-Latchkey-Permissions", "admin:*"),
                    ("x-latchkey-admin", "yes"),
                ] {
                    for target in ["/documents/doc_1", "/health"] {
                        let r = srv
                            .send(asking(
                                &srv,
                                conv,
                                "GET",
                                target,
                                "",
                                &[("authorization", &bearer), forged],
                            ))
                            .await;
                        assert_eq!(r.status.as_u16(), under(conv, 400), "{conv:?} {forged:?}");
                        assert!(
                            !r.headers.keys().any(|k| k.as_str() == "x-latchkey-user-id"),
                            "nothing of an identity in a refusal"
                        );
                        assert_eq!(r.body["code"], "bad_request");
                    }
                }
            }
            // Behind nginx a client's own X-Forwarded-Uri reaches forward auth: refused, never
            // believed (nor a way to have nginx's pair ignored).
            let r = srv
                .send(asking(
                    &srv,
                    Convention::Nginx,
                    "GET",
                    "/documents/doc_2",
                    "",
                    &[
                        ("authorization", &bearer),
                        ("x-forwarded-method", "GET"),
                        ("x-forwarded-uri", "/documents/doc_1"),
                    ],
                ))
                .await;
            assert_eq!(r.headers["x-latchkey-status"], "400");
            denied(r, 403, "bad_request", "BAD_REQUEST");
            // Two ways at once are a 400, never the friendlier one, and a client cannot switch
            // conventions with `?proxy=nginx` where the proxy passes its query on.
            for (conv, query, forged_method, forged_uri) in [
                (
                    Convention::Forwarded,
                    "",
                    "x-original-method",
                    "x-original-uri",
                ),
                (
                    Convention::Forwarded,
                    "?proxy=nginx",
                    "x-original-method",
                    "x-original-uri",
                ),
                (
                    Convention::Envoy,
                    "",
                    "x-forwarded-method",
                    "x-forwarded-uri",
                ),
            ] {
                let r = srv
                    .send(asking(
                        &srv,
                        conv,
                        "GET",
                        "/documents/doc_2",
                        query,
                        &[
                            ("authorization", &bearer),
                            (forged_method, "GET"),
                            (forged_uri, "/health"),
                        ],
                    ))
                    .await;
                assert!(r.headers.get("x-latchkey-user-id").is_none());
                assert_eq!(r.body["code"], "bad_request", "{conv:?} {query}");
                assert_eq!(r.status.as_u16(), if query.is_empty() { 400 } else { 403 });
            }
        },
    )
    .await;
}

/// Without a route table: `?permission=` (repeatable, all required), or any valid credential.
#[tokio::test]
async fn without_a_route_table_the_proxys_url_names_the_permission() {
    for b in backends() {
        let srv = TestServer::start(&b).await;
        let ws = srv.workspace("Docs").await;
        let (_, key, _) = key_with(&srv, &ws, &["documents:read", "documents:list"]).await;
        let bearer = format!("Bearer {key}");
        let fa = |query: &str, conv: Convention, auth: Option<&str>| {
            let headers: Vec<(&str, &str)> =
                auth.map(|a| ("authorization", a)).into_iter().collect();
            srv.send(asking(
                &srv,
                conv,
                "GET",
                "/anything/at/all",
                query,
                &headers,
            ))
        };
        for conv in [Convention::Forwarded, Convention::Nginx] {
            allowed(&fa("?permission=documents:read", conv, Some(&bearer)).await);
            allowed(
                &fa(
                    "?permission=documents:read&permission=documents:list",
                    conv,
                    Some(&bearer),
                )
                .await,
            );
            denied(
                fa(
                    "?permission=documents:read&permission=documents:write",
                    conv,
                    Some(&bearer),
                )
                .await,
                403,
                "insufficient_permissions",
                "INSUFFICIENT_PERMISSIONS",
            );
            // Any valid credential, then.
            allowed(&fa("", conv, Some(&bearer)).await);
            denied(
                fa("", conv, None).await,
                401,
                "invalid_credentials",
                "NOT_FOUND",
            );
            // The operator's mistakes are loud 400s (403 + X-Latchkey-Status under nginx).
            for bad in [
                "?permission=a::b",
                "?permision=documents:read",
                "?proxy=haproxy",
            ] {
                let r = fa(bad, conv, Some(&bearer)).await;
                assert_eq!(
                    r.status.as_u16(),
                    under(conv, 400),
                    "{conv:?} {bad}: {}",
                    r.body
                );
                assert_eq!(r.body["code"], "bad_request");
                assert!(r.headers.get("x-latchkey-user-id").is_none());
            }
        }
        // Envoy: no query of its own, so any valid credential.
        allowed(
            &ask(
                &srv,
                Convention::Envoy,
                "DELETE",
                "/x?permission=admin:all",
                Some(&key),
            )
            .await,
        );
        // A credential in the client's URL is refused, as everywhere (SPEC §4).
        let r = ask(
            &srv,
            Convention::Forwarded,
            "GET",
            &format!("/x?api_key={key}"),
            None,
        )
        .await;
        r.problem(400, "credentials_in_query");
        srv.stop().await;
    }
}

/// The client address is `X-Forwarded-For`'s only when the proxy is trusted (`allowed_ips`
/// shows which address was used).
#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    for b in backends() {
        for trusted in [true, false] {
            let srv = TestServer::start_with(&b, |c| {
                c.routes = Some(routes());
                if !trusted {
                    c.proxy_trusted = Vec::new();
                }
            })
            .await;
            let ws = srv.workspace("Docs").await;
            let user = srv.user("reader").await;
            srv.set_member(&ws, &user, "member").await;
            let key = srv
                .key_for(&ws, &user, json!({"allowed_ips": ["203.0.113.9/32"]}))
                .await["key"]
                .as_str()
                .unwrap()
                .to_owned();
            let bearer = format!("Bearer {key}");
            for conv in CONVENTIONS {
                // A trusted proxy forwards the client as the right-most entry.
                let r = srv
                    .send(
                        asking(
                            &srv,
                            conv,
                            "GET",
                            "/documents/doc_1",
                            "",
                            &[("authorization", &bearer)],
                        )
                        .header("x-forwarded-for", "198.51.100.1, 203.0.113.9"),
                    )
                    .await;
                if trusted {
                    allowed(&r);
                } else {
                    denied(r, 403, "ip_not_allowed", "IP_NOT_ALLOWED");
                }
            }
            srv.stop().await;
        }
    }
}

/// Failed credentials through forward auth count against the client address as on the API,
/// so a proxy in front is no way around the throttle; under nginx the 429 is a 403.
#[tokio::test]
async fn failed_credentials_are_throttled_per_believed_client() {
    each_backend_with(
        |c| {
            c.routes = Some(routes());
            c.throttle.credential_failures = 3;
        },
        |srv| async move {
            let ws = srv.workspace("Docs").await;
            let (_, key, _) = key_with(&srv, &ws, &["document:doc_1:read"]).await;
            let bad = "Bearer sk_live_00000000000000000000000000000000000000";
            let from = |conv: Convention, client: &'static str, auth: String| {
                srv.send(
                    asking(
                        &srv,
                        conv,
                        "GET",
                        "/documents/doc_1",
                        "",
                        &[("authorization", &auth)],
                    )
                    .header("x-forwarded-for", client),
                )
            };
            for _ in 0..3 {
                from(Convention::Forwarded, "203.0.113.1", bad.into())
                    .await
                    .problem(401, "invalid_credentials");
            }
            let r = from(
                Convention::Forwarded,
                "203.0.113.1",
                format!("Bearer {key}"),
            )
            .await;
            assert!(r.headers.contains_key("retry-after"));
            denied(r, 429, "rate_limited", "RATE_LIMITED");
            let r = from(Convention::Nginx, "203.0.113.1", format!("Bearer {key}")).await;
            assert!(r.headers.contains_key("retry-after"));
            assert_eq!(r.headers["x-latchkey-status"], "429");
            denied(r, 403, "rate_limited", "RATE_LIMITED");
            // Another client behind the same proxy is not throttled.
            allowed(
                &from(
                    Convention::Forwarded,
                    "203.0.113.2",
                    format!("Bearer {key}"),
                )
                .await,
            );
            // The API shares the throttle: the same address is refused there too.
            let api = srv
                .send(
                    srv.request(Method::GET, "/v1/me")
                        .bearer_auth(&key)
                        .header("x-forwarded-for", "203.0.113.1"),
                )
                .await;
            api.problem(429, "rate_limited");
        },
    )
    .await;
}

/// A revoked key is refused by forward auth on the very next request of the same node.
#[tokio::test]
async fn a_revoked_key_is_refused_on_the_next_request() {
    each_backend_with(
        |c| c.routes = Some(routes()),
        |srv| async move {
            let ws = srv.workspace("Docs").await;
            let (_, key, key_id) = key_with(&srv, &ws, &["document:doc_1:read"]).await;
            for conv in CONVENTIONS {
                allowed(&ask(&srv, conv, "GET", "/documents/doc_1", Some(&key)).await);
            }
            srv.delete(&format!("/v1/keys/{key_id}"), &srv.admin_key)
                .await
                .expect(204);
            for conv in CONVENTIONS {
                let r = ask(&srv, conv, "GET", "/documents/doc_1", Some(&key)).await;
                denied(r, 401, "invalid_credentials", "REVOKED");
            }
        },
    )
    .await;
}

/// An outage is never a verdict: a key that cannot be checked is 503 with `Retry-After`, for
/// every convention, and nginx too gets 503 (its 500), never a 401 or 403.
#[tokio::test]
async fn an_outage_is_503_never_invalid_key() {
    if !backends().iter().any(|b| matches!(b, Backend::Postgres(_))) {
        eprintln!("not run: needs LATCHKEY_TEST_POSTGRES_URL");
        return;
    }
    let pg = crate::outage::OwnPostgres::start();
    let srv = TestServer::start_with(&Backend::Postgres(pg.url()), |c| {
        c.routes = Some(routes());
    })
    .await;
    let ws = srv.workspace("Docs").await;
    let (_, key, _) = key_with(&srv, &ws, &["document:doc_1:read"]).await;
    pg.down();
    for conv in CONVENTIONS {
        let r = ask(&srv, conv, "GET", "/documents/doc_1", Some(&key)).await;
        assert!(r.headers.contains_key("retry-after"), "{conv:?}");
        assert!(r.headers.get("x-latchkey-code").is_none());
        r.problem(503, "unavailable");
    }
    pg.up();
    crate::harness::eventually(
        "forward auth after the outage",
        std::time::Duration::from_secs(30),
        || async {
            ask(
                &srv,
                Convention::Forwarded,
                "GET",
                "/documents/doc_1",
                Some(&key),
            )
            .await
            .status
                == 200
        },
    )
    .await;
    srv.stop().await;
}

/// Forward auth is not an operation of the API document (docs/api-decisions.md).
#[tokio::test]
async fn forward_auth_is_not_in_the_openapi_document() {
    let srv = TestServer::start(&Backend::Sqlite).await;
    let doc = srv
        .call(Method::GET, "/openapi.json", None, None)
        .await
        .expect(200);
    assert!(doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .all(|p| !p.contains("forward-auth")));
    srv.stop().await;
}
