//! Webhooks (SPEC §12.1) against a real receiver on loopback: endpoints managed by workspace
//! admins, events delivered from the outbox, signatures checked by the official
//! `standardwebhooks` library, retries, 410, rotation and the SSRF guard.

use crate::harness::{
    backends, each_backend_with, eventually, PgDatabase, ServerProcess, TempDir, TestServer,
};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use latchkey_server::Config;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> String {
        self.headers[name].to_str().unwrap().to_owned()
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// Records every request; answers with the queued statuses, then `200`.
#[derive(Clone, Default)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    async fn start() -> Self {
        Self::start_on("127.0.0.1:0").await
    }

    async fn start_on(addr: &str) -> Self {
        let mut r = Receiver::default();
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        r.url = format!("http://{}/hook", listener.local_addr().unwrap());
        let state = r.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: String| {
            let state = state.clone();
            async move {
                state.got.lock().unwrap().push(Received { headers, body });
                let status = state.answers.lock().unwrap().pop_front().unwrap_or(200);
                let mut resp = StatusCode::from_u16(status).unwrap().into_response();
                if status == 302 {
                    resp.headers_mut()
                        .insert("location", "http://127.0.0.1:1/elsewhere".parse().unwrap());
                }
                resp
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        r
    }

    fn answer(&self, statuses: &[u16]) {
        self.answers.lock().unwrap().extend(statuses);
    }

    fn of_type(&self, event: &str) -> Vec<Received> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.json()["type"] == event)
            .cloned()
            .collect()
    }

    fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }

    async fn wait_for(&self, event: &str, n: usize) -> Vec<Received> {
        eventually(
            &format!("{n} × {event}"),
            Duration::from_secs(20),
            || async { self.of_type(event).len() >= n },
        )
        .await;
        self.of_type(event)
    }
}

fn fast(c: &mut Config) {
    c.webhooks.allow_private_targets = true;
    c.webhooks.retry_schedule = vec![Duration::from_secs(1); 3];
    c.webhooks.poll = Duration::from_millis(50);
    c.webhooks.expiry_check = Duration::from_millis(50);
}

/// Whether the official Standard Webhooks library (PyPI `standardwebhooks`, pinned in
/// `.ci/run`) accepts each request with `secret`.
fn verified_by_library(secret: &str, requests: &[Received]) -> Vec<bool> {
    let python = std::env::var("LATCHKEY_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let input: Vec<Value> = requests
        .iter()
        .map(|r| {
            json!({"body": r.body, "headers": {
                "webhook-id": r.header("webhook-id"),
                "webhook-timestamp": r.header("webhook-timestamp"),
                "webhook-signature": r.header("webhook-signature"),
            }})
        })
        .collect();
    let out = std::process::Command::new(&python)
        .args([
            "-c",
            "import sys, json\n\
             from standardwebhooks.webhooks import Webhook\n\
             wh = Webhook(sys.argv[1])\n\
             ok = []\n\
             for r in json.loads(sys.argv[2]):\n\
             \x20   try:\n\
             \x20       wh.verify(r['body'], r['headers']); ok.append(True)\n\
             \x20   except Exception:\n\
             \x20       ok.append(False)\n\
             print(json.dumps(ok))",
            secret,
            &serde_json::to_string(&input).unwrap(),
        ])
        .output()
        .unwrap_or_else(|e| panic!("{python} runs: {e}"));
    assert!(
        out.status.success(),
        "standardwebhooks verifies (.ci/run installs it; LATCHKEY_TEST_PYTHON names the Python): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn endpoint(srv: &TestServer, key: &str, url: &str, events: Value) -> (String, String) {
    let body = srv
        .post("/v1/webhooks", key, json!({"url": url, "events": events}))
        .await
        .expect(201);
    (
        body["id"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

async fn deliveries(srv: &TestServer, id: &str) -> Vec<Value> {
    srv.get(&format!("/v1/webhooks/{id}/deliveries"), &srv.admin_key)
        .await
        .expect(200)["data"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn webhook_endpoints_are_for_workspace_admins_and_show_the_secret_once() {
    each_backend_with(fast, |srv| async move {
        let created = srv
            .post(
                "/v1/webhooks",
                &srv.admin_key,
                json!({"url": "https://example.com/hook", "events": ["key.*"], "description": "ops"}),
            )
            .await
            .expect(201);
        let id = created["id"].as_str().unwrap().to_owned();
        let secret = created["secret"].as_str().unwrap();
        assert!(id.starts_with("wh_"));
        assert!(secret.starts_with("whsec_"));
        let key = base64_len(&secret["whsec_".len()..]);
        assert!(key >= 24, "{key} random bytes");
        assert_eq!(created["enabled"], true);

        let got = srv
            .get(&format!("/v1/webhooks/{id}"), &srv.admin_key)
            .await
            .expect(200);
        assert!(got.get("secret").is_none() && !got.to_string().contains(secret));
        let list = srv.get("/v1/webhooks", &srv.admin_key).await.expect(200);
        assert_eq!(list["data"].as_array().unwrap().len(), 1);
        assert!(!list.to_string().contains(secret));

        // Bad input: 422, nothing changed.
        for bad in [
            json!({"url": "ftp://example.com", "events": ["*"]}),
            json!({"url": "not a url", "events": ["*"]}),
            json!({"url": "https://u:p@example.com", "events": ["*"]}),
            json!({"url": "https://example.com", "events": []}),
            json!({"url": "https://example.com", "events": ["nope.*"]}),
            json!({"url": "https://example.com", "events": ["key.nope"]}),
        ] {
            srv.post("/v1/webhooks", &srv.admin_key, bad.clone())
                .await
                .problem(422, "validation_failed");
        }
        srv.post("/v1/webhooks", &srv.admin_key, json!({"url": "https://example.com", "events": ["*"], "secret": "x"}))
            .await
            .problem(422, "validation_failed");
        srv.patch(&format!("/v1/webhooks/{id}"), &srv.admin_key, json!({"events": ["bad"]}))
            .await
            .problem(422, "validation_failed");
        let list = srv.get("/v1/webhooks", &srv.admin_key).await.expect(200);
        assert_eq!(list["data"].as_array().unwrap().len(), 1);
        assert_eq!(list["data"][0]["events"], json!(["key.*"]));

        let patched = srv
            .patch(&format!("/v1/webhooks/{id}"), &srv.admin_key, json!({"events": ["*"], "enabled": false}))
            .await
            .expect(200);
        assert_eq!((patched["events"].clone(), patched["enabled"].clone()), (json!(["*"]), json!(false)));

        // A viewer of the workspace: 403. Another workspace's admin: 404.
        let ws = srv.workspace_of(&srv.admin_key).await;
        let (_, viewer) = srv.member_with_key(&ws, "viewer").await;
        srv.get("/v1/webhooks", &viewer).await.problem(403, "insufficient_permissions");
        srv.post("/v1/webhooks", &viewer, json!({"url": "https://example.com", "events": ["*"]}))
            .await
            .problem(403, "insufficient_permissions");
        let other = srv.workspace("Other").await;
        let (_, other_admin) = srv.member_with_key(&other, "admin").await;
        srv.get(&format!("/v1/webhooks/{id}"), &other_admin).await.problem(404, "not_found");
        srv.delete(&format!("/v1/webhooks/{id}"), &other_admin).await.problem(404, "not_found");
        srv.post(&format!("/v1/webhooks/{id}/rotate-secret"), &other_admin, json!({}))
            .await
            .problem(404, "not_found");
        let theirs = srv.get("/v1/webhooks", &other_admin).await.expect(200);
        assert!(theirs["data"].as_array().unwrap().is_empty());

        // The changes are audited.
        let audit = srv.get("/v1/audit?action=webhook.created", &srv.admin_key).await.expect(200);
        assert_eq!(audit["data"][0]["target"]["id"], id.as_str());
        assert!(!audit.to_string().contains(secret));

        srv.delete(&format!("/v1/webhooks/{id}"), &srv.admin_key).await.expect(204);
        srv.get(&format!("/v1/webhooks/{id}"), &srv.admin_key).await.problem(404, "not_found");
    })
    .await;
}

fn base64_len(s: &str) -> usize {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap()
        .len()
}

#[tokio::test]
async fn webhook_key_events_are_delivered_signed_and_filtered() {
    each_backend_with(fast, |srv| async move {
        let rx = Receiver::start().await;
        let (keys_id, keys_secret) =
            endpoint(&srv, &srv.admin_key, &rx.url, json!(["key.*"])).await;
        let members_rx = Receiver::start().await;
        let (_, members_secret) = endpoint(
            &srv,
            &srv.admin_key,
            &members_rx.url,
            json!(["member.added"]),
        )
        .await;

        let ws = srv.workspace_of(&srv.admin_key).await;
        let (user, _) = srv.member_with_key(&ws, "developer").await;
        let key = srv.key_for(&ws, &user, json!({})).await;
        let key_id = key["id"].as_str().unwrap();
        let plaintext = key["key"].as_str().unwrap();
        srv.delete(&format!("/v1/keys/{key_id}"), &srv.admin_key)
            .await
            .expect(204);

        let created = rx.wait_for("key.created", 2).await;
        let revoked = rx.wait_for("key.revoked", 1).await;
        let mine: Vec<_> = created
            .iter()
            .filter(|r| r.json()["data"]["object"]["id"] == key_id)
            .cloned()
            .collect();
        assert_eq!(mine.len(), 1);
        let body = mine[0].json();
        assert_eq!(body["workspace_id"], ws.as_str());
        assert!(body["id"].as_str().unwrap().starts_with("evt_"));
        assert_eq!(mine[0].header("webhook-id"), body["id"].as_str().unwrap());
        assert!(body["created_at"].is_i64());
        assert_eq!(revoked[0].json()["data"]["object"]["id"], key_id);

        let all: Vec<Received> = rx.got.lock().unwrap().clone();
        assert!(all
            .iter()
            .all(|r| r.json()["type"].as_str().unwrap().starts_with("key.")));
        for r in &all {
            assert!(!r.body.contains(plaintext), "the key is never in a payload");
            assert!(!r.body.contains(&keys_secret));
            assert!(r.header("webhook-signature").starts_with("v1,"));
        }
        assert!(verified_by_library(&keys_secret, &all).iter().all(|ok| *ok));
        assert!(
            verified_by_library(&members_secret, &all[..1]) == vec![false],
            "another endpoint's secret does not verify"
        );

        // Only member events reach the member endpoint.
        let added = members_rx.wait_for("member.added", 1).await;
        assert!(members_rx
            .got
            .lock()
            .unwrap()
            .iter()
            .all(|r| r.json()["type"] == "member.added"));
        assert!(verified_by_library(&members_secret, &added)
            .iter()
            .all(|ok| *ok));

        eventually(
            "the deliveries are recorded as succeeded",
            Duration::from_secs(10),
            || async {
                let log = deliveries(&srv, &keys_id).await;
                log.iter()
                    .all(|d| d["status"] == "succeeded" && d["last_status_code"] == 200)
            },
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn webhook_retries_keep_the_webhook_id_and_a_410_disables_the_endpoint() {
    each_backend_with(fast, |srv| async move {
        let rx = Receiver::start().await;
        let (id, secret) = endpoint(&srv, &srv.admin_key, &rx.url, json!(["key.created"])).await;
        rx.answer(&[500, 503]);
        let ws = srv.workspace_of(&srv.admin_key).await;
        srv.key_for(&ws, &srv.admin_user_id, json!({})).await;
        let tries = rx.wait_for("key.created", 3).await;
        let first = tries[0].header("webhook-id");
        assert!(tries.iter().all(|r| r.header("webhook-id") == first));
        assert!(tries.iter().all(|r| r.body == tries[0].body));
        assert!(verified_by_library(&secret, &tries).iter().all(|ok| *ok));
        eventually(
            "the delivery succeeded",
            Duration::from_secs(10),
            || async {
                let log = deliveries(&srv, &id).await;
                log[0]["status"] == "succeeded" && log[0]["attempts"] == 3
            },
        )
        .await;

        // Redeliver sends the same event again.
        let d = deliveries(&srv, &id).await[0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        srv.post(
            &format!("/v1/webhooks/{id}/deliveries/{d}/redeliver"),
            &srv.admin_key,
            json!({}),
        )
        .await
        .expect(202);
        let again = rx.wait_for("key.created", 4).await;
        assert_eq!(again[3].header("webhook-id"), first);

        // 410 Gone: the endpoint is disabled and sent nothing more.
        rx.answer(&[410]);
        srv.key_for(&ws, &srv.admin_user_id, json!({})).await;
        eventually(
            "the endpoint is disabled",
            Duration::from_secs(10),
            || async {
                srv.get(&format!("/v1/webhooks/{id}"), &srv.admin_key)
                    .await
                    .expect(200)["enabled"]
                    == false
            },
        )
        .await;
        let n = rx.count();
        srv.key_for(&ws, &srv.admin_user_id, json!({})).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(rx.count(), n, "nothing is sent to a disabled endpoint");
    })
    .await;
}

#[tokio::test]
async fn webhook_rotation_signs_with_both_secrets_during_the_overlap() {
    each_backend_with(fast, |srv| async move {
        let rx = Receiver::start().await;
        let (id, old) = endpoint(&srv, &srv.admin_key, &rx.url, json!(["key.created"])).await;
        let rotated = srv
            .post(
                &format!("/v1/webhooks/{id}/rotate-secret"),
                &srv.admin_key,
                json!({}),
            )
            .await
            .expect(200);
        let new = rotated["secret"].as_str().unwrap().to_owned();
        assert_ne!(new, old);
        assert!(rotated["previous_secret_expires_at"].is_string());
        let ws = srv.workspace_of(&srv.admin_key).await;
        srv.key_for(&ws, &srv.admin_user_id, json!({})).await;
        let got = rx.wait_for("key.created", 1).await;
        let sigs = got[0].header("webhook-signature");
        assert_eq!(sigs.split(' ').count(), 2, "{sigs}");
        assert_eq!(verified_by_library(&new, &got), vec![true]);
        assert_eq!(verified_by_library(&old, &got), vec![true]);
    })
    .await;
}

#[tokio::test]
async fn webhook_targets_on_private_addresses_are_refused_and_redirects_not_followed() {
    // The guard on: nothing reaches the loopback receiver.
    each_backend_with(
        |c| {
            fast(c);
            c.webhooks.allow_private_targets = false;
        },
        |srv| async move {
            let rx = Receiver::start().await;
            let port = rx
                .url
                .split(':')
                .nth(2)
                .unwrap()
                .trim_end_matches("/hook")
                .to_owned();
            let mut ids = Vec::new();
            for url in [
                rx.url.clone(),
                format!("http://localhost:{port}/hook"),
                format!("http://10.0.0.1:{port}/hook"),
                format!("http://[::1]:{port}/hook"),
            ] {
                ids.push(
                    endpoint(&srv, &srv.admin_key, &url, json!(["key.created"]))
                        .await
                        .0,
                );
            }
            let ws = srv.workspace_of(&srv.admin_key).await;
            srv.key_for(&ws, &srv.admin_user_id, json!({})).await;
            for id in &ids {
                eventually(
                    "the attempt was refused",
                    Duration::from_secs(10),
                    || async {
                        let log = deliveries(&srv, id).await;
                        log.first().is_some_and(|d| {
                            d["attempts"].as_i64() >= Some(1)
                                && d["last_error"]
                                    .as_str()
                                    .is_some_and(|e| e.starts_with("refused"))
                        })
                    },
                )
                .await;
            }
            assert_eq!(rx.count(), 0, "no request reached the receiver");
        },
    )
    .await;

    // A redirect is a failed attempt, never followed.
    each_backend_with(fast, |srv| async move {
        let rx = Receiver::start().await;
        let (id, _) = endpoint(&srv, &srv.admin_key, &rx.url, json!(["key.created"])).await;
        rx.answer(&[302]);
        let ws = srv.workspace_of(&srv.admin_key).await;
        srv.key_for(&ws, &srv.admin_user_id, json!({})).await;
        eventually(
            "the redirect was recorded",
            Duration::from_secs(10),
            || async {
                deliveries(&srv, &id)
                    .await
                    .first()
                    .is_some_and(|d| d["last_status_code"] == 302)
            },
        )
        .await;
        let d = &deliveries(&srv, &id).await[0];
        assert!(d["last_error"]
            .as_str()
            .unwrap()
            .contains("redirects are not followed"));
        assert_eq!(d["status"], "pending");
    })
    .await;
}

/// Events created while the receiver is down are in the outbox, not in memory: after a
/// `kill -9` and a restart, every one of them is delivered.
#[tokio::test]
async fn webhook_events_written_before_kill_9_are_all_delivered_after_restart() {
    const EVENTS: usize = 20;
    for backend in backends() {
        let dir = TempDir::new();
        let pg = PgDatabase::for_backend(&backend).await;
        let db = pg.as_ref().map(|p| p.url.as_str());
        // A port nobody listens on yet: the receiver is down.
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let envs = [
            ("LATCHKEY_WEBHOOKS_ALLOW_PRIVATE_TARGETS", "true"),
            (
                "LATCHKEY_WEBHOOKS_RETRY_SCHEDULE",
                "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1",
            ),
            ("LATCHKEY_WEBHOOKS_POLL_MS", "50"),
        ];
        let mut first = ServerProcess::spawn(&dir.0, db, &envs);
        first.wait_ready().await;
        let admin = first.admin_key();
        let http = reqwest::Client::new();
        let r = http
            .post(format!("{}/v1/webhooks", first.url))
            .bearer_auth(&admin)
            .json(&json!({"url": format!("http://{addr}/hook"), "events": ["key.created"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let secret = r.json::<Value>().await.unwrap()["secret"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut created = Vec::new();
        for i in 0..EVENTS {
            let r = http
                .post(format!("{}/v1/keys", first.url))
                .bearer_auth(&admin)
                .json(&json!({"name": format!("k{i}"), "environment": "live"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            created.push(
                r.json::<Value>().await.unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        first.kill_9();

        let rx = Receiver::start_on(&addr.to_string()).await;
        let second = ServerProcess::spawn(&dir.0, db, &envs);
        second.wait_ready().await;
        // An attempt claimed at the moment of the kill waits out its 60 s lease before it is
        // sent again (worker.rs): the wait allows for that and a loaded machine.
        eventually(
            &format!("{EVENTS} events delivered after the restart"),
            Duration::from_secs(180),
            || async {
                let got = rx.of_type("key.created");
                created.iter().all(|id| {
                    got.iter()
                        .any(|r| r.json()["data"]["object"]["id"] == id.as_str())
                })
            },
        )
        .await;
        let got = rx.of_type("key.created");
        assert!(verified_by_library(&secret, &got).iter().all(|ok| *ok));
        drop(second);
        eprintln!(
            "{}: {EVENTS} events delivered after kill -9",
            backend.name()
        );
    }
}

/// Two nodes on one database (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: one writer) share
/// the outbox: every event is sent once, by one of them.
#[tokio::test]
async fn webhook_deliveries_are_sent_once_by_one_of_two_nodes() {
    const EVENTS: usize = 30;
    each_backend_with(fast, |srv| async move {
        let second = srv.another_node().await;
        let rx = Receiver::start().await;
        endpoint(&srv, &srv.admin_key, &rx.url, json!(["key.created"])).await;
        let ws = srv.workspace_of(&srv.admin_key).await;
        for i in 0..EVENTS {
            let node = if i % 2 == 0 { &srv } else { &second };
            node.post(
                "/v1/keys",
                &srv.admin_key,
                json!({"name": format!("k{i}"), "workspace_id": ws, "environment": "live"}),
            )
            .await
            .expect(201);
        }
        rx.wait_for("key.created", EVENTS).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let got = rx.of_type("key.created");
        let mut ids: Vec<String> = got.iter().map(|r| r.header("webhook-id")).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), EVENTS);
        assert_eq!(got.len(), EVENTS, "each event sent once");
        second.stop().await;
    })
    .await;
}

/// Token and member events reach `token.*` and `member.*`; a token is never in a payload.
#[tokio::test]
async fn webhook_token_and_member_events_are_delivered_without_the_token() {
    each_backend_with(fast, |srv| async move {
        let rx = Receiver::start().await;
        let (_, secret) = endpoint(
            &srv,
            &srv.admin_key,
            &rx.url,
            json!(["token.*", "member.*"]),
        )
        .await;
        let issued = srv
            .post(
                "/v1/tokens",
                &srv.admin_key,
                json!({"name": "Server token", "environment": "live"}),
            )
            .await
            .expect(201);
        let jwt = issued["access_token"].as_str().unwrap().to_owned();
        let token_id = issued["id"].as_str().unwrap().to_owned();
        srv.delete(&format!("/v1/tokens/{token_id}"), &srv.admin_key)
            .await
            .expect(204);
        let ws = srv.workspace_of(&srv.admin_key).await;
        let (user, key) = srv.member_with_key(&ws, "developer").await;
        srv.set_member(&ws, &user, "viewer").await;
        srv.delete(
            &format!("/v1/workspaces/{ws}/members/{user}"),
            &srv.admin_key,
        )
        .await
        .expect(204);
        for event in [
            "token.issued",
            "token.revoked",
            "member.added",
            "member.role_changed",
            "member.removed",
        ] {
            rx.wait_for(event, 1).await;
        }
        let all: Vec<Received> = rx.got.lock().unwrap().clone();
        assert!(all
            .iter()
            .all(|r| !r.json()["type"].as_str().unwrap().starts_with("key.")));
        for r in &all {
            assert!(!r.body.contains(&jwt) && !r.body.contains(&key));
        }
        assert!(verified_by_library(&secret, &all).iter().all(|ok| *ok));
    })
    .await;
}

/// `key.expiring` is sent once, for the nearest configured threshold.
#[tokio::test]
async fn webhook_key_expiring_is_sent_once_per_threshold() {
    each_backend_with(fast, |srv| async move {
        let rx = Receiver::start().await;
        endpoint(&srv, &srv.admin_key, &rx.url, json!(["key.expiring"])).await;
        let ws = srv.workspace_of(&srv.admin_key).await;
        let at = |secs: i64| {
            chrono::DateTime::from_timestamp(latchkey_server::now() + secs, 0)
                .unwrap()
                .to_rfc3339()
        };
        let soon = srv
            .key_for(&ws, &srv.admin_user_id, json!({"expires_at": at(3_600)}))
            .await;
        let later = srv
            .key_for(
                &ws,
                &srv.admin_user_id,
                json!({"expires_at": at(3 * 86_400)}),
            )
            .await;
        srv.key_for(
            &ws,
            &srv.admin_user_id,
            json!({"expires_at": at(30 * 86_400)}),
        )
        .await;
        rx.wait_for("key.expiring", 2).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        let got = rx.of_type("key.expiring");
        assert_eq!(got.len(), 2, "each once; the key 30 days out not yet");
        let days_of = |id: &Value| {
            got.iter()
                .find(|r| r.json()["data"]["object"]["id"] == *id)
                .map(|r| r.json()["data"]["detail"]["days_before"].clone())
        };
        assert_eq!(days_of(&soon["id"]), Some(json!(1)));
        assert_eq!(days_of(&later["id"]), Some(json!(7)));
    })
    .await;
}

/// Credits that run out (SPEC §11.2) announce it once: the charge that spends the last credit
/// writes `usage.exceeded`; refusals after it write nothing; a new balance spent again, again.
#[tokio::test]
async fn webhook_usage_exceeded_is_sent_once_per_exhaustion() {
    each_backend_with(fast, |srv| async move {
        let rx = Receiver::start().await;
        let (_, secret) = endpoint(&srv, &srv.admin_key, &rx.url, json!(["usage.*"])).await;
        let ws = srv.workspace_of(&srv.admin_key).await;
        let key = srv
            .key_for(
                &ws,
                &srv.admin_user_id,
                json!({"credits": {"remaining": 2}}),
            )
            .await;
        let (id, plaintext) = (key["id"].as_str().unwrap(), key["key"].as_str().unwrap());
        let valid: Vec<Value> =
            futures::future::join_all((0..4).map(|_| srv.verify(json!({"key": plaintext}))))
                .await
                .into_iter()
                .map(|v| v["valid"].clone())
                .collect();
        assert_eq!(valid.iter().filter(|v| **v == json!(true)).count(), 2);
        let got = rx.wait_for("usage.exceeded", 1).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(
            rx.of_type("usage.exceeded").len(),
            1,
            "refusals send nothing"
        );
        let body = got[0].json();
        assert_eq!(body["data"]["object"], json!({"type": "key", "id": id}));
        assert_eq!(body["data"]["detail"]["remaining"], 0);
        assert!(!got[0].body.contains(plaintext));

        srv.patch(
            &format!("/v1/keys/{id}"),
            &srv.admin_key,
            json!({"credits": {"remaining": 1}}),
        )
        .await
        .expect(200);
        assert_eq!(srv.verify(json!({"key": plaintext})).await["valid"], true);
        assert_eq!(
            srv.verify(json!({"key": plaintext})).await["code"],
            "USAGE_EXCEEDED"
        );
        let got = rx.wait_for("usage.exceeded", 2).await;
        assert!(verified_by_library(&secret, &got).iter().all(|ok| *ok));
    })
    .await;
}

/// `key.expired` is sent once when a key's expiry passes.
#[tokio::test]
async fn webhook_key_expired_is_sent_once_when_the_expiry_passes() {
    each_backend_with(fast, |srv| async move {
        let rx = Receiver::start().await;
        let (_, secret) = endpoint(&srv, &srv.admin_key, &rx.url, json!(["key.expired"])).await;
        let ws = srv.workspace_of(&srv.admin_key).await;
        let at = chrono::DateTime::from_timestamp(latchkey_server::now() + 2, 0)
            .unwrap()
            .to_rfc3339();
        let key = srv
            .key_for(&ws, &srv.admin_user_id, json!({"expires_at": at}))
            .await;
        let got = rx.wait_for("key.expired", 1).await;
        assert!(
            latchkey_server::now()
                >= chrono::DateTime::parse_from_rfc3339(&at)
                    .unwrap()
                    .timestamp()
        );
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(rx.of_type("key.expired").len(), 1, "once");
        assert_eq!(got[0].json()["data"]["object"]["id"], key["id"]);
        assert_eq!(
            srv.verify(json!({"key": key["key"]})).await["code"],
            "EXPIRED"
        );
        assert!(verified_by_library(&secret, &got).iter().all(|ok| *ok));
    })
    .await;
}

/// A leak report (SPEC §12.2) reaches the provider's receiver as `key.leaked`, with where the
/// key was found and never the key; the same report again sends nothing more.
#[tokio::test]
async fn webhook_key_leaked_reaches_the_receiver_once() {
    each_backend_with(fast, |srv| async move {
        let rx = Receiver::start().await;
        let (_, secret) = endpoint(
            &srv,
            &srv.admin_key,
            &rx.url,
            json!(["key.leaked", "key.revoked"]),
        )
        .await;
        let ws = srv.workspace_of(&srv.admin_key).await;
        let key = srv.key_for(&ws, &srv.admin_user_id, json!({})).await;
        let plaintext = key["key"].as_str().unwrap();
        let report = json!({"keys": [plaintext], "source": "pastebin",
                            "url": "https://pastebin.example/raw/abc"});
        for _ in 0..2 {
            let labels = srv
                .post("/v1/leaks", &srv.admin_key, report.clone())
                .await
                .expect(200);
            assert_eq!(labels[0]["label"], "true_positive");
        }
        let got = rx.wait_for("key.leaked", 1).await;
        rx.wait_for("key.revoked", 1).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(
            rx.of_type("key.leaked").len(),
            1,
            "a repeated report sends nothing"
        );
        assert_eq!(rx.of_type("key.revoked").len(), 1);
        let body = got[0].json();
        assert_eq!(body["data"]["object"]["id"], key["id"]);
        assert_eq!(
            body["data"]["detail"]["url"],
            "https://pastebin.example/raw/abc"
        );
        assert_eq!(body["data"]["detail"]["source"], "pastebin");
        for r in rx.got.lock().unwrap().iter() {
            assert!(!r.body.contains(plaintext), "the key is never in a payload");
        }
        assert!(verified_by_library(&secret, &got).iter().all(|ok| *ok));
    })
    .await;
}

/// `key.updated` and `key.rolled` reach `key.*` too, signed, naming the key and never its secret
/// (the rolled-to key's included).
#[tokio::test]
async fn webhook_key_updates_and_rolls_are_delivered() {
    each_backend_with(fast, |srv| async move {
        let rx = Receiver::start().await;
        let (_, secret) = endpoint(
            &srv,
            &srv.admin_key,
            &rx.url,
            json!(["key.updated", "key.rolled"]),
        )
        .await;
        let ws = srv.workspace_of(&srv.admin_key).await;
        let key = srv.key_for(&ws, &srv.admin_user_id, json!({})).await;
        let id = key["id"].as_str().unwrap();
        srv.patch(
            &format!("/v1/keys/{id}"),
            &srv.admin_key,
            json!({"name": "renamed"}),
        )
        .await
        .expect(200);
        let rolled = srv
            .post(&format!("/v1/keys/{id}/roll"), &srv.admin_key, json!({}))
            .await
            .expect(201);
        let updated = rx.wait_for("key.updated", 1).await;
        let rolls = rx.wait_for("key.rolled", 1).await;
        assert_eq!(updated[0].json()["data"]["object"]["id"], id);
        assert_eq!(rolls[0].json()["data"]["object"]["id"], id);
        for r in rx.got.lock().unwrap().iter() {
            assert!(!r.body.contains(key["key"].as_str().unwrap()));
            assert!(!r.body.contains(rolled["key"].as_str().unwrap()));
        }
        let all: Vec<Received> = rx.got.lock().unwrap().clone();
        assert!(verified_by_library(&secret, &all).iter().all(|ok| *ok));
    })
    .await;
}
