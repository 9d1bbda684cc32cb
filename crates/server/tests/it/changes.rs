//! The change stream (`GET /v1/changes`, SPEC §10.6), read as a remote verifier reads it.

use crate::harness::{each_backend, TestServer};
use latchkey_client::sse::{SseEvent, SseParser};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::time::Duration;

/// Convergence, not speed.
const WITHIN: Duration = Duration::from_secs(10);

struct Stream {
    resp: reqwest::Response,
    parser: SseParser,
    pending: VecDeque<SseEvent>,
    /// The `id` of the last event read.
    position: Option<i64>,
}

impl Stream {
    async fn open(srv: &TestServer, key: &str, last_event_id: Option<i64>) -> Self {
        let mut rb = srv
            .request(axum::http::Method::GET, "/v1/changes")
            .header("x-api-key", key);
        if let Some(id) = last_event_id {
            rb = rb.header("last-event-id", id.to_string());
        }
        let resp = rb.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Self {
            resp,
            parser: SseParser::default(),
            pending: VecDeque::new(),
            position: None,
        }
    }

    /// The next event; `None` when the server ended the stream.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                if let Some(id) = e.id.as_deref() {
                    self.position = Some(id.parse().expect("a numeric position"));
                }
                return Some(e);
            }
            let chunk = tokio::time::timeout(WITHIN, self.resp.chunk())
                .await
                .expect("the stream said nothing (not even a keep-alive)");
            match chunk {
                Ok(Some(c)) => self.pending.extend(self.parser.feed(&c)),
                _ => return None,
            }
        }
    }

    /// Reads until an event matches; fails if the stream ends or stays silent first.
    async fn until(&mut self, what: &str, pred: impl Fn(&SseEvent, &Value) -> bool) -> SseEvent {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            assert!(tokio::time::Instant::now() < deadline, "{what}: not seen");
            let e = self
                .next()
                .await
                .unwrap_or_else(|| panic!("{what}: stream ended"));
            let data: Value = serde_json::from_str(&e.data).unwrap();
            if pred(&e, &data) {
                return e;
            }
        }
    }
}

fn is_key_change(key_id: &str) -> impl Fn(&SseEvent, &Value) -> bool + '_ {
    move |e, d| e.event == "change" && d["kind"] == "key" && d["key_id"] == key_id
}

/// A member of a new workspace whose key holds `latchkey:verify` by a grant: the credential a
/// workspace's own service would follow the stream with. Returns (workspace, key, key id).
async fn workspace_verifier(srv: &TestServer) -> (String, String, String) {
    let ws = srv.workspace("Verifying").await;
    let user = srv.user("service").await;
    srv.set_member(&ws, &user, "member").await;
    srv.post(
        &format!("/v1/workspaces/{ws}/grants"),
        &srv.admin_key,
        json!({"user_id": user, "permission": "latchkey:verify"}),
    )
    .await
    .expect(201);
    let key = srv.key_for(&ws, &user, json!({})).await;
    (
        ws,
        key["key"].as_str().unwrap().to_owned(),
        key["id"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn the_stream_names_each_change_and_resumes_from_last_event_id() {
    each_backend(|srv| async move {
        let mut s = Stream::open(&srv, &srv.admin_key, None).await;
        let ready = s.next().await.unwrap();
        assert_eq!(ready.event, "ready");
        let ws = srv.workspace("Streamed").await;
        let user = srv.user("owner").await;
        srv.set_member(&ws, &user, "developer").await;
        s.until("the member's change", |e, d| {
            e.event == "change" && d["kind"] == "principal" && d["user_id"] == user.as_str()
        })
        .await;
        let key = srv.key_for(&ws, &user, json!({})).await;
        let key_id = key["id"].as_str().unwrap().to_owned();
        let e = s.until("the new key", is_key_change(&key_id)).await;
        let data: Value = serde_json::from_str(&e.data).unwrap();
        assert_eq!(data["workspace_id"], ws.as_str());
        assert!(
            data.get("hash").is_none(),
            "no key hash on the wire: {data}"
        );
        let resume_from = s.position.expect("events carry positions");
        drop(s);

        // Missed while away: replayed on resumption, before `ready`.
        srv.delete(&format!("/v1/keys/{key_id}"), &srv.admin_key)
            .await;
        let mut s = Stream::open(&srv, &srv.admin_key, Some(resume_from)).await;
        let mut saw_revocation = false;
        loop {
            let e = s.next().await.expect("replay, then ready");
            if e.event == "ready" {
                break;
            }
            let d: Value = serde_json::from_str(&e.data).unwrap();
            saw_revocation |= is_key_change(&key_id)(&e, &d);
        }
        if !saw_revocation {
            // The revocation may also have come after the replay's read: then it is live.
            s.until("the revocation", is_key_change(&key_id)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_workspace_verifier_sees_only_its_own_workspace() {
    each_backend(|srv| async move {
        let (ws, key, _) = workspace_verifier(&srv).await;
        let mut s = Stream::open(&srv, &key, None).await;
        assert_eq!(s.next().await.unwrap().event, "ready");
        let other_ws = srv.workspace("Elsewhere").await;
        let other_user = srv.user("other").await;
        srv.set_member(&other_ws, &other_user, "developer").await;
        let theirs = srv.key_for(&other_ws, &other_user, json!({})).await;
        let mine = srv.key_for(&ws, &srv.admin_user_id, json!({})).await;
        let theirs_id = theirs["id"].as_str().unwrap().to_owned();
        // Everything up to this workspace's own key: nothing of the other workspace's on the way.
        let mine_id = mine["id"].as_str().unwrap().to_owned();
        loop {
            let e = s.next().await.expect("the stream goes on");
            if e.event != "change" {
                continue;
            }
            let d: Value = serde_json::from_str(&e.data).unwrap();
            assert_ne!(
                d["key_id"],
                theirs_id.as_str(),
                "another workspace's key leaked"
            );
            assert_ne!(
                d["workspace_id"],
                other_ws.as_str(),
                "another workspace leaked: {d}"
            );
            assert_ne!(
                d["user_id"],
                other_user.as_str(),
                "another workspace's user leaked"
            );
            if d["key_id"] == mine_id.as_str() {
                break;
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_client_too_far_behind_is_told_to_drop_its_cache() {
    each_backend(|srv| async move {
        let mut s = Stream::open(&srv, &srv.admin_key, None).await;
        assert_eq!(s.next().await.unwrap().event, "ready");
        let ws = srv.workspace("Pruned").await;
        let key = srv.key_for(&ws, &srv.admin_user_id, json!({})).await;
        let e = s
            .until("the new key", is_key_change(key["id"].as_str().unwrap()))
            .await;
        // A position the client may hold once the node's floor passed this change (on a
        // fresh PostgreSQL database the floor can wait at 0 behind a rolled-back number).
        let d: Value = serde_json::from_str(&e.data).unwrap();
        let position = d["seq"].as_i64().unwrap();
        assert!(position > 0);
        drop(s);
        // What a node's hourly pruning does to entries a day old.
        let (db, _) = srv.database_and_secret();
        let store = latchkey_store::SqlStore::open(&db).await.unwrap();
        store
            .prune_changes(latchkey_engine::now() + 60)
            .await
            .unwrap();
        let mut s = Stream::open(&srv, &srv.admin_key, Some(position)).await;
        let e = s.next().await.unwrap();
        assert_eq!(e.event, "reset", "{e:?}");
        let d: Value = serde_json::from_str(&e.data).unwrap();
        assert_eq!(d["reason"], "too_far_behind");
        assert_eq!(s.next().await.unwrap().event, "ready");
    })
    .await;
}

#[tokio::test]
async fn the_stream_ends_when_its_own_credential_stops_working() {
    each_backend(|srv| async move {
        let (_, key, key_id) = workspace_verifier(&srv).await;
        let mut s = Stream::open(&srv, &key, None).await;
        assert_eq!(s.next().await.unwrap().event, "ready");
        srv.delete(&format!("/v1/keys/{key_id}"), &srv.admin_key)
            .await;
        let deadline = tokio::time::Instant::now() + WITHIN;
        while s.next().await.is_some() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the stream outlived its revoked credential"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn the_stream_needs_verify_and_a_readable_position() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Plain").await;
        let (_, key) = srv.member_with_key(&ws, "developer").await;
        srv.get("/v1/changes", &key)
            .await
            .problem(403, "insufficient_permissions");
        let r = srv
            .send(
                srv.request(axum::http::Method::GET, "/v1/changes")
                    .header("x-api-key", &srv.admin_key)
                    .header("last-event-id", "yesterday"),
            )
            .await;
        r.problem(400, "bad_request");
        srv.get("/v1/changes", "sk_live_nonsense")
            .await
            .problem(401, "invalid_credentials");
    })
    .await;
}

#[tokio::test]
async fn an_instance_verifier_follows_every_workspace() {
    each_backend(|srv| async move {
        let key = srv.instance_verifier_key().await;
        let mut s = Stream::open(&srv, &key, None).await;
        assert_eq!(s.next().await.unwrap().event, "ready");
        let ws = srv.workspace("Anywhere").await;
        let user = srv.user("someone").await;
        srv.set_member(&ws, &user, "developer").await;
        let theirs = srv.key_for(&ws, &user, json!({})).await;
        s.until(
            "another workspace's key",
            is_key_change(theirs["id"].as_str().unwrap()),
        )
        .await;
    })
    .await;
}
