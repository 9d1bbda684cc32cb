//! One decision, several front doors (SPEC §10): the same scenarios through the verify API, the
//! tower layer on an embedded engine and the tower layer on a remote verifier, on each backend.
//! The tower doors serve a small app on loopback with the route table of §10.5's example, and
//! are asked over real HTTP.

use crate::harness::{each_backend, eventually, TestServer};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use latchkey_core::route::{RouteDecision, RouteTable};
use latchkey_proto::{Rejection, VerifyAnswer};
use latchkey_tower::{EmbeddedOptions, LatchkeyLayer, Principal, RemoteOptions, Verifier};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;

const ROUTES: [&str; 3] = [
    "GET /documents/{id} document:{id}:read",
    "POST /documents documents:write",
    "GET /public public",
];
/// Convergence, not speed: generous on purpose (the figures are in docs/performance.md).
const CONVERGES: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Door {
    Api,
    Embedded,
    Remote,
}

const DOORS: [Door; 3] = [Door::Api, Door::Embedded, Door::Remote];

struct Front {
    door: Door,
    url: String,
    verifier: Option<Verifier>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Front {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// What the protected app answers: the principal, and whether any `X-Latchkey-*` header
/// reached it (none may: the layer hands the identity on as the extractor).
async fn echo(principal: Option<Principal>, headers: HeaderMap) -> Json<Value> {
    let leaked: Vec<&str> = headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| k.starts_with("x-latchkey-"))
        .collect();
    Json(json!({"principal": principal, "leaked": leaked}))
}

fn routes() -> RouteTable {
    RouteTable::from_lines(ROUTES, None).unwrap()
}

async fn serve_app(verifier: Verifier) -> (String, tokio::task::JoinHandle<()>) {
    let app = Router::new()
        .route("/documents/{id}", get(echo))
        .route("/documents", post(echo))
        .route("/public", get(echo))
        .layer(LatchkeyLayer::new(verifier).with_routes(routes()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    (url, task)
}

/// A remote verifier quick to notice a lost stream (the test stops the server).
pub fn remote_options() -> RemoteOptions {
    RemoteOptions {
        reconnect_after: Duration::from_millis(100),
        stream_silence: Duration::from_secs(2),
        ..RemoteOptions::default()
    }
}

async fn front(door: Door, srv: &TestServer) -> Front {
    front_with(door, srv, remote_options()).await
}

async fn front_with(door: Door, srv: &TestServer, remote: RemoteOptions) -> Front {
    let verifier = match door {
        Door::Api => {
            return Front {
                door,
                url: srv.url.clone(),
                verifier: None,
                task: None,
            }
        }
        Door::Embedded => {
            let (db, secret) = srv.database_and_secret();
            let mut options = EmbeddedOptions::default();
            options.upkeep.change_poll = Duration::from_millis(100);
            Verifier::embedded_with(&db, &secret, options)
                .await
                .expect("embedded verifier opens")
        }
        Door::Remote => {
            // The credential a provider gives its services: an instance verifier's key.
            let key = srv.instance_verifier_key().await;
            Verifier::remote_with(&srv.url, &key, &Default::default(), remote)
                .expect("remote verifier")
        }
    };
    if let Some(r) = verifier.as_remote() {
        let r = r.clone();
        eventually(
            "the remote verifier follows the change stream",
            CONVERGES,
            || {
                let r = r.clone();
                async move { r.is_following() }
            },
        )
        .await;
    }
    let (url, task) = serve_app(verifier.clone()).await;
    Front {
        door,
        url,
        verifier: Some(verifier),
        task: Some(task),
    }
}

/// What a front door made of a request.
#[derive(Debug)]
struct Outcome {
    status: u16,
    /// `X-Latchkey-Code` of a denial.
    code: Option<String>,
    principal: Value,
    leaked: Value,
}

impl Outcome {
    fn denied(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code.as_deref()),
            (status, Some(code)),
            "{self:?}"
        );
    }
}

impl Front {
    /// Waits until `GET path` with `key` is denied with `code` (a change reaching this door).
    async fn comes_to(&self, srv: &TestServer, path: &str, key: &str, code: &str) {
        eventually(&format!("{:?}: {code}", self.door), CONVERGES, || async {
            self.ask(srv, "GET", path, Some(key)).await.code.as_deref() == Some(code)
        })
        .await;
    }

    async fn ask(&self, srv: &TestServer, method: &str, path: &str, key: Option<&str>) -> Outcome {
        self.ask_with(srv, method, path, key, &[]).await
    }

    async fn ask_with(
        &self,
        srv: &TestServer,
        method: &str,
        path: &str,
        key: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Outcome {
        match self.door {
            Door::Api => api_outcome(srv, method, path, key, headers).await,
            Door::Embedded | Door::Remote => {
                let mut rb = srv
                    .http
                    .request(method.parse().unwrap(), format!("{}{}", self.url, path));
                if let Some(k) = key {
                    rb = rb.header("x-api-key", k);
                }
                for (k, v) in headers {
                    rb = rb.header(*k, *v);
                }
                let resp = rb.send().await.unwrap();
                let status = resp.status().as_u16();
                let code = resp
                    .headers()
                    .get("x-latchkey-code")
                    .map(|v| v.to_str().unwrap().to_owned());
                if status == 401 {
                    assert!(
                        resp.headers().contains_key("www-authenticate"),
                        "a 401 names its scheme"
                    );
                }
                if status == 429 && code.as_deref() == Some("RATE_LIMITED") {
                    assert!(
                        resp.headers().contains_key("retry-after")
                            && resp.headers().contains_key("ratelimit"),
                        "a rate limit's 429 says when to retry and where the limits stand"
                    );
                }
                let body: Value = resp.json().await.unwrap();
                if status >= 400 {
                    assert_eq!(body["status"], status, "problem+json: {body}");
                }
                Outcome {
                    status,
                    code,
                    principal: body["principal"].clone(),
                    leaked: body["leaked"].clone(),
                }
            }
        }
    }
}

/// The verify API as a provider's own code uses it: the route table gives the permission,
/// `POST /v1/verify` the answer.
async fn api_outcome(
    srv: &TestServer,
    method: &str,
    path: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
) -> Outcome {
    let permission = match routes().decide(method, path) {
        RouteDecision::NotFound => {
            return Outcome {
                status: Rejection::NoRoute.status().as_u16(),
                code: Some("NOT_FOUND".into()),
                principal: Value::Null,
                leaked: json!([]),
            }
        }
        RouteDecision::Public { .. } => {
            return Outcome {
                status: 200,
                code: None,
                principal: Value::Null,
                leaked: json!([]),
            }
        }
        RouteDecision::Require { permission, .. } => permission,
    };
    let Some(key) = key else {
        // No credential: what the API itself answers.
        let r = srv
            .request(axum::http::Method::GET, "/v1/me")
            .send()
            .await
            .unwrap();
        return Outcome {
            status: r.status().as_u16(),
            code: Some("NOT_FOUND".into()),
            principal: Value::Null,
            leaked: json!([]),
        };
    };
    let answer: VerifyAnswer = serde_json::from_value(
        srv.verify(json!({
            "key": key,
            "permissions": [permission.as_str()],
            // What the tower doors see of a request from this test: its origin, and loopback.
            "origin": headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("origin")).map(|(_, v)| *v),
            "ip": "127.0.0.1",
        }))
            .await,
    )
    .unwrap();
    if answer.valid {
        return Outcome {
            status: 200,
            code: None,
            principal: json!({
                "user_id": answer.owner_id,
                "workspace_id": answer.workspace_id,
                "key_id": answer.key_id,
            }),
            leaked: json!([]),
        };
    }
    let denial = latchkey_core::Denial::from_verify_code(&answer.code).expect("a known code");
    let rejection = if denial.is_limit() {
        Rejection::Limited(latchkey_proto::denial::Limited {
            denial,
            retry_after: None,
            fields: None,
        })
    } else {
        Rejection::Denied {
            denial,
            presented: true,
        }
    };
    Outcome {
        status: rejection.status().as_u16(),
        code: Some(answer.code),
        principal: Value::Null,
        leaked: json!([]),
    }
}

/// A member of a new workspace holding `document:doc_1:read` by a grant; returns
/// (workspace, user, key, key id, grant id).
async fn reader(srv: &TestServer) -> (String, String, String, String, String) {
    let ws = srv.workspace("Docs").await;
    // Members of this workspace hold nothing by their role: only what is granted.
    srv.put(
        &format!("/v1/workspaces/{ws}/roles/member"),
        &srv.admin_key,
        json!({"permissions": []}),
    )
    .await
    .expect(200);
    let user = srv.user("reader").await;
    srv.set_member(&ws, &user, "member").await;
    let grant = srv
        .post(
            &format!("/v1/workspaces/{ws}/grants"),
            &srv.admin_key,
            json!({"user_id": user, "permission": "document:doc_1:read"}),
        )
        .await
        .expect(201);
    let key = srv.key_for(&ws, &user, json!({})).await;
    (
        ws,
        user,
        key["key"].as_str().unwrap().to_owned(),
        key["id"].as_str().unwrap().to_owned(),
        grant["id"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn every_front_door_makes_the_same_decisions() {
    each_backend(|srv| async move {
        for door in DOORS {
            let f = front(door, &srv).await;
            let (ws, user, key, key_id, _) = reader(&srv).await;

            let ok = f.ask(&srv, "GET", "/documents/doc_1", Some(&key)).await;
            assert_eq!(ok.status, 200, "{door:?}: {ok:?}");
            assert_eq!(ok.principal["user_id"], user.as_str(), "{door:?}");
            assert_eq!(ok.principal["workspace_id"], ws.as_str(), "{door:?}");
            assert_eq!(ok.principal["key_id"], key_id.as_str(), "{door:?}");
            if door != Door::Api {
                assert_eq!(ok.principal["key_type"], "secret");
                assert_eq!(ok.principal["environment"], "live");
                assert_eq!(ok.principal["token_id"], Value::Null);
                assert_eq!(ok.principal["permissions"], json!(["document:doc_1:read"]));
            }

            f.ask(&srv, "GET", "/documents/doc_2", Some(&key))
                .await
                .denied(403, "INSUFFICIENT_PERMISSIONS");
            f.ask(&srv, "POST", "/documents", Some(&key))
                .await
                .denied(403, "INSUFFICIENT_PERMISSIONS");
            let public = f.ask(&srv, "GET", "/public", None).await;
            assert_eq!(
                (public.status, &public.principal),
                (200, &Value::Null),
                "{door:?}"
            );
            let none = f.ask(&srv, "GET", "/documents/doc_1", None).await;
            assert_eq!(none.status, 401, "{door:?}: {none:?}");
            let unknown = latchkey_core::ApiKey::generate(
                latchkey_core::KeyType::Secret,
                latchkey_core::Environment::Live,
            );
            f.ask(
                &srv,
                "GET",
                "/documents/doc_1",
                Some(unknown.secret().expose()),
            )
            .await
            .denied(401, "NOT_FOUND");
            // A path cannot inject a permission: none of these reaches doc_1's.
            for injected in [
                "/documents/doc_1:write",
                "/documents/%2A",
                "/documents/..%2Fdoc_1",
                "/documents/doc_1%3Aread",
                "/documents/%2e%2e",
            ] {
                f.ask(&srv, "GET", injected, Some(&key))
                    .await
                    .denied(404, "NOT_FOUND");
            }
        }
    })
    .await;
}

/// Keys issued elsewhere and imported (SPEC §12.3), by plaintext and by SHA-256, decide as a
/// native key would at every door; the stored digest presented as a key is nobody's.
#[tokio::test]
async fn imported_keys_pass_every_front_door_like_native_ones() {
    each_backend(|srv| async move {
        for door in DOORS {
            let f = front(door, &srv).await;
            let (ws, user, _, _, _) = reader(&srv).await;
            let plain = format!("legacy-{}", crate::harness::random_suffix().repeat(2));
            let hashed = format!("legacy-{}", crate::harness::random_suffix().repeat(2));
            let digest = crate::upstream::sha256_hex(hashed.as_bytes());
            let imported = srv
                .post(
                    "/v1/keys/import",
                    &srv.admin_key,
                    json!({"keys": [
                        {"key": plain, "name": "plain", "owner_id": user, "workspace_id": ws, "environment": "live"},
                        {"sha256": digest, "name": "hashed", "owner_id": user, "workspace_id": ws, "environment": "live"},
                    ]}),
                )
                .await
                .expect(200);
            assert_eq!(imported["failed"], json!([]), "{imported}");
            for (i, key) in [&plain, &hashed].into_iter().enumerate() {
                let id = imported["imported"][i]["id"].as_str().unwrap();
                let ok = f.ask(&srv, "GET", "/documents/doc_1", Some(key)).await;
                assert_eq!(ok.status, 200, "{door:?}: {ok:?}");
                assert_eq!(ok.principal["key_id"], id, "{door:?}");
                assert_eq!(ok.principal["user_id"], user.as_str(), "{door:?}");
                f.ask(&srv, "GET", "/documents/doc_2", Some(key))
                    .await
                    .denied(403, "INSUFFICIENT_PERMISSIONS");
            }
            f.ask(&srv, "GET", "/documents/doc_1", Some(&digest))
                .await
                .denied(401, "NOT_FOUND");
        }
    })
    .await;
}

#[tokio::test]
async fn every_front_door_charges_the_same_limits_and_credits() {
    each_backend(|srv| async move {
        for door in DOORS {
            let f = front(door, &srv).await;
            let (_, _, key, key_id, _) = reader(&srv).await;
            let limit =
                json!({"ratelimits": [{"name": "door", "limit": 2, "window_seconds": 3600}]});
            srv.patch(&format!("/v1/keys/{key_id}"), &srv.admin_key, limit)
                .await
                .expect(200);
            // The remote door must not answer the second request from its cache.
            for _ in 0..2 {
                let ok = f.ask(&srv, "GET", "/documents/doc_1", Some(&key)).await;
                assert_eq!(ok.status, 200, "{door:?}: {ok:?}");
            }
            f.ask(&srv, "GET", "/documents/doc_1", Some(&key))
                .await
                .denied(429, "RATE_LIMITED");

            let (_, _, key, key_id, _) = reader(&srv).await;
            srv.patch(
                &format!("/v1/keys/{key_id}"),
                &srv.admin_key,
                json!({"credits": {"remaining": 1}}),
            )
            .await
            .expect(200);
            let ok = f.ask(&srv, "GET", "/documents/doc_1", Some(&key)).await;
            assert_eq!(ok.status, 200, "{door:?}: {ok:?}");
            f.ask(&srv, "GET", "/documents/doc_1", Some(&key))
                .await
                .denied(429, "USAGE_EXCEEDED");
        }
    })
    .await;
}

#[tokio::test]
async fn forged_identity_headers_never_reach_the_service() {
    each_backend(|srv| async move {
        for door in [Door::Embedded, Door::Remote] {
            let f = front(door, &srv).await;
            let (_, user, key, _, _) = reader(&srv).await;
            let forged = [
                ("x-latchkey-user-id", "usr_forged"),
                ("X-Latchkey-Permissions", "admin:*"),
                ("x-latchkey-anything", "x"),
            ];
            let o = f
                .ask_with(&srv, "GET", "/documents/doc_1", Some(&key), &forged)
                .await;
            assert_eq!(o.status, 200, "{door:?}");
            assert_eq!(o.principal["user_id"], user.as_str());
            assert_eq!(
                o.leaked,
                json!([]),
                "{door:?}: forged headers reached the service"
            );
            // Also on a public route, where no credential is checked.
            let o = f.ask_with(&srv, "GET", "/public", None, &forged).await;
            assert_eq!(o.leaked, json!([]), "{door:?}");
            // A forged header cannot stand in for a credential either.
            f.ask_with(&srv, "GET", "/documents/doc_1", None, &forged)
                .await
                .denied(401, "NOT_FOUND");
        }
    })
    .await;
}

#[tokio::test]
async fn revocations_and_role_changes_reach_every_front_door() {
    each_backend(|srv| async move {
        for door in DOORS {
            let f = front(door, &srv).await;
            let (ws, user, key, key_id, grant) = reader(&srv).await;
            // Cached first, so the change has something to invalidate.
            for _ in 0..3 {
                assert_eq!(
                    f.ask(&srv, "GET", "/documents/doc_1", Some(&key))
                        .await
                        .status,
                    200
                );
            }
            srv.delete(
                &format!("/v1/workspaces/{ws}/grants/{grant}"),
                &srv.admin_key,
            )
            .await;
            f.comes_to(&srv, "/documents/doc_1", &key, "INSUFFICIENT_PERMISSIONS")
                .await;

            // Membership: removing the user makes the key FORBIDDEN (401).
            let (_, user2, key2, _, _) = {
                let r = reader(&srv).await;
                assert_eq!(
                    f.ask(&srv, "GET", "/documents/doc_1", Some(&r.2))
                        .await
                        .status,
                    200
                );
                r
            };
            let ws2 = srv.workspace_of(&key2).await;
            srv.delete(
                &format!("/v1/workspaces/{ws2}/members/{user2}"),
                &srv.admin_key,
            )
            .await;
            f.comes_to(&srv, "/documents/doc_1", &key2, "FORBIDDEN")
                .await;

            // Revocation.
            srv.set_member(&ws, &user, "member").await;
            srv.post(
                &format!("/v1/workspaces/{ws}/grants"),
                &srv.admin_key,
                json!({"user_id": user, "permission": "document:*:read"}),
            )
            .await
            .expect(201);
            eventually(&format!("{door:?}: the new grant"), CONVERGES, || async {
                f.ask(&srv, "GET", "/documents/doc_9", Some(&key))
                    .await
                    .status
                    == 200
            })
            .await;
            let revoked_at = std::time::Instant::now();
            srv.delete(&format!("/v1/keys/{key_id}"), &srv.admin_key)
                .await;
            f.comes_to(&srv, "/documents/doc_9", &key, "REVOKED").await;
            // A figure for docs/performance.md (`--nocapture`), not a threshold.
            eprintln!(
                "revocation reached {door:?} on {} in {:?}",
                srv.backend_name(),
                revoked_at.elapsed()
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_remote_verifier_serves_cached_answers_through_an_outage_and_fails_closed_otherwise() {
    each_backend(|srv| async move {
        let bound = Duration::from_secs(3);
        let options = RemoteOptions {
            serve_stale_for: bound,
            ..remote_options()
        };
        let f = front_with(Door::Remote, &srv, options).await;
        let (_, _, cached, _, _) = reader(&srv).await;
        let (_, _, uncached, _, _) = reader(&srv).await;
        let verifier = f.verifier.clone().unwrap();
        let remote = verifier.as_remote().unwrap().clone();
        // An answer fetched while changes were still arriving is not cached; once the setup's
        // changes have passed, it is.
        eventually("the answer is cached", CONVERGES, || async {
            assert_eq!(
                f.ask(&srv, "GET", "/documents/doc_1", Some(&cached))
                    .await
                    .status,
                200
            );
            remote.cached() >= 1
        })
        .await;
        let http = srv.http.clone();
        srv.stop().await;
        let o = {
            let rb = http
                .get(format!("{}/documents/doc_1", f.url))
                .header("x-api-key", &cached);
            rb.send().await.unwrap()
        };
        assert_eq!(
            o.status(),
            200,
            "a cached answer serves while the server is down"
        );
        let o = http
            .get(format!("{}/documents/doc_1", f.url))
            .header("x-api-key", &uncached)
            .send()
            .await
            .unwrap();
        assert_eq!(
            o.status(),
            503,
            "an uncached credential fails closed, never 401"
        );
        assert_eq!(o.headers()["retry-after"], "2");
        let body: Value = o.json().await.unwrap();
        assert_eq!(body["code"], "unavailable");
        // And the cached one only for the configured time: then it fails closed too.
        eventually(
            "the cached answer expires in the outage",
            CONVERGES,
            || async {
                http.get(format!("{}/documents/doc_1", f.url))
                    .header("x-api-key", &cached)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    == 503
            },
        )
        .await;
    })
    .await;
}

/// The example service of SPEC §10.5, built by `cargo test --workspace` beside this binary.
fn example_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap(); // target/debug/deps -> target/debug
    let bin = dir.join("examples").join("protected");
    assert!(
        bin.exists(),
        "{} is missing: `cargo test --workspace` builds it (or `cargo build -p latchkey-tower --examples`)",
        bin.display()
    );
    bin
}

struct Example(std::process::Child, String);

impl Example {
    async fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(example_binary())
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufReader::new(stdout)
                .read_line(&mut line)
                .unwrap();
            line
        })
        .await
        .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the example said {line:?}"))
            .to_owned();
        Self(child, url)
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_protected_example_runs_as_the_spec_states() {
    each_backend(|srv| async move {
        let (db, secret) = srv.database_and_secret();
        let verifier_key = srv.instance_verifier_key().await;
        let remote = Example::start(
            &["--latchkey-url", &srv.url, "--api-key", &verifier_key],
            &[],
        )
        .await;
        let embedded = Example::start(&["--database", &db], &[("LATCHKEY_SECRET", &secret)]).await;
        let (_, user, key, _, _) = reader(&srv).await;
        for ex in [&remote, &embedded] {
            let get = |path: &str| {
                srv.http
                    .get(format!("{}{path}", ex.1))
                    .header("authorization", format!("Bearer {key}"))
                    .send()
            };
            eventually("the example answers the reader", CONVERGES, || async {
                get("/documents/doc_1").await.unwrap().status() == 200
            })
            .await;
            let p: Value = get("/documents/doc_1").await.unwrap().json().await.unwrap();
            assert_eq!(p["user_id"], user.as_str());
            assert_eq!(p["permissions"], json!(["document:doc_1:read"]));
            let denied = get("/documents/doc_2").await.unwrap();
            assert_eq!(denied.status(), 403);
            assert_eq!(
                denied.headers()["x-latchkey-code"],
                "INSUFFICIENT_PERMISSIONS"
            );
            let post = srv
                .http
                .post(format!("{}/documents", ex.1))
                .header("x-api-key", &key)
                .send()
                .await
                .unwrap();
            assert_eq!(post.status(), 403);
            let public = srv
                .http
                .get(format!("{}/public", ex.1))
                .send()
                .await
                .unwrap();
            assert_eq!(public.status(), 200);
            assert_eq!(public.json::<Value>().await.unwrap(), Value::Null);
        }
    })
    .await;
}

#[tokio::test]
async fn each_denial_code_is_the_same_through_every_door() {
    each_backend(|srv| async move {
        for door in DOORS {
            let f = front(door, &srv).await;
            let (ws, user, _, _, _) = reader(&srv).await;
            let key = |extra: Value| {
                let srv = &srv;
                let (ws, user) = (ws.clone(), user.clone());
                async move {
                    srv.key_for(&ws, &user, extra).await["key"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                }
            };
            let disabled = key(json!({})).await;
            let id = srv.get("/v1/me", &disabled).await.expect(200)["credential"]["key_id"]
                .as_str()
                .unwrap()
                .to_owned();
            srv.patch(
                &format!("/v1/keys/{id}"),
                &srv.admin_key,
                json!({"enabled": false}),
            )
            .await
            .expect(200);
            f.comes_to(&srv, "/documents/doc_1", &disabled, "DISABLED")
                .await;
            let elsewhere = key(json!({"allowed_ips": ["10.0.0.0/8"]})).await;
            f.ask(&srv, "GET", "/documents/doc_1", Some(&elsewhere))
                .await
                .denied(403, "IP_NOT_ALLOWED");
            // A publishable key, limited to one origin, in a workspace that publishes the permission.
            srv.patch(
                &format!("/v1/workspaces/{ws}"),
                &srv.admin_key,
                json!({"publishable_permissions": ["document:*:read"]}),
            )
            .await
            .expect(200);
            let public =
                key(json!({"type": "publishable", "allowed_origins": ["https://app.example"]}))
                    .await;
            let from = |origin: &'static str| [("origin", origin)];
            eventually(
                &format!("{door:?}: the publishable key from its origin"),
                CONVERGES,
                || async {
                    f.ask_with(
                        &srv,
                        "GET",
                        "/documents/doc_1",
                        Some(&public),
                        &from("https://app.example"),
                    )
                    .await
                    .status
                        == 200
                },
            )
            .await;
            f.ask_with(
                &srv,
                "GET",
                "/documents/doc_1",
                Some(&public),
                &from("https://evil.example"),
            )
            .await
            .denied(403, "ORIGIN_NOT_ALLOWED");
            // A workspace that requires the key + token pair refuses a lone key.
            let lone = key(json!({})).await;
            srv.patch(
                &format!("/v1/workspaces/{ws}"),
                &srv.admin_key,
                json!({"require_pair": true}),
            )
            .await
            .expect(200);
            f.comes_to(&srv, "/documents/doc_1", &lone, "PAIR_REQUIRED")
                .await;
        }
    })
    .await;
}
