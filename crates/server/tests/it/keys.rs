//! SPEC §6.2: the key lifecycle, show-once, who may manage which keys, roll and revoke.

use crate::harness::each_backend;
use serde_json::{json, Value};
use std::time::Duration;

fn secret(v: &Value) -> String {
    v["key"]
        .as_str()
        .expect("creation returns the key")
        .to_owned()
}

#[tokio::test]
async fn a_developer_creates_own_keys_and_a_member_may_not() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Acme").await;
        let (dev, dev_key) = srv.member_with_key(&ws, "developer").await;
        let created = srv
            .post("/v1/keys", &dev_key, json!({"name": "ci"}))
            .await
            .expect(201);
        assert_eq!(created["owner_id"], dev.as_str());
        assert_eq!(created["workspace_id"], ws.as_str());
        assert_eq!(
            created["environment"], "live",
            "defaults to the creating credential's environment"
        );
        let k = secret(&created);
        assert!(k.starts_with("sk_live_") && k.len() == 46);
        srv.get("/v1/me", &k).await.expect(200);

        // A developer may not issue keys for someone else.
        let (other, _) = srv.member_with_key(&ws, "developer").await;
        srv.post(
            "/v1/keys",
            &dev_key,
            json!({"name": "x", "owner_id": other}),
        )
        .await
        .problem(403, "insufficient_permissions");

        let (_, member_key) = srv.member_with_key(&ws, "member").await;
        srv.post("/v1/keys", &member_key, json!({"name": "nope"}))
            .await
            .problem(403, "insufficient_permissions");
        // ...until an admin grants it.
        let me = srv.get("/v1/me", &member_key).await.expect(200);
        let member_id = me["user"]["id"].as_str().unwrap().to_owned();
        srv.post(
            &format!("/v1/workspaces/{ws}/grants"),
            &srv.admin_key,
            json!({"user_id": member_id, "permission": "latchkey:keys:manage_own"}),
        )
        .await
        .expect(201);
        srv.post("/v1/keys", &member_key, json!({"name": "now allowed"}))
            .await
            .expect(201);
    })
    .await;
}

#[tokio::test]
async fn the_secret_is_shown_once_and_never_again() {
    each_backend(|srv| async move {
        let created = srv
            .post(
                "/v1/keys",
                &srv.admin_key,
                json!({"name": "show once", "environment": "test"}),
            )
            .await
            .expect(201);
        let k = secret(&created);
        let id = created["id"].as_str().unwrap();
        assert_eq!(
            created["redacted"],
            format!("sk_test_…{}", &k[k.len() - 4..])
        );
        let got = srv
            .get(&format!("/v1/keys/{id}"), &srv.admin_key)
            .await
            .expect(200);
        let listed = srv
            .get("/v1/keys?limit=500", &srv.admin_key)
            .await
            .expect(200);
        for body in [&got, &listed] {
            assert!(
                !body.to_string().contains(&k[8..]),
                "no read returns the secret: {body}"
            );
            assert!(body.get("key").is_none());
        }
        assert_eq!(got["redacted"], created["redacted"]);
        assert_eq!(got["status"], "active");
    })
    .await;
}

#[tokio::test]
async fn revoke_is_immediate_and_idempotent() {
    each_backend(|srv| async move {
        let created = srv
            .post("/v1/keys", &srv.admin_key, json!({"name": "doomed"}))
            .await
            .expect(201);
        let (k, id) = (secret(&created), created["id"].as_str().unwrap().to_owned());
        srv.get("/v1/me", &k).await.expect(200); // now cached
        srv.delete(&format!("/v1/keys/{id}"), &srv.admin_key)
            .await
            .expect(204);
        srv.get("/v1/me", &k)
            .await
            .problem(401, "invalid_credentials");
        assert_eq!(srv.verify(json!({"key": k})).await["code"], "REVOKED");
        srv.delete(&format!("/v1/keys/{id}"), &srv.admin_key)
            .await
            .expect(204);
        let got = srv
            .get(&format!("/v1/keys/{id}"), &srv.admin_key)
            .await
            .expect(200);
        assert_eq!(got["status"], "revoked");
        assert!(got["revoked_at"].is_string());
        let revoked = srv
            .get("/v1/keys?status=revoked", &srv.admin_key)
            .await
            .expect(200);
        assert_eq!(revoked["data"].as_array().unwrap().len(), 1);
        // A key may always revoke itself, whatever its permissions.
        let ws = srv.workspace("Self revoke").await;
        let (_, member_key) = srv.member_with_key(&ws, "member").await;
        let me = srv.get("/v1/me", &member_key).await.expect(200);
        let own_id = me["credential"]["id"].as_str().unwrap();
        srv.delete(&format!("/v1/keys/{own_id}"), &member_key)
            .await
            .expect(204);
        srv.get("/v1/me", &member_key)
            .await
            .problem(401, "invalid_credentials");
    })
    .await;
}

#[tokio::test]
async fn keys_expire() {
    each_backend(|srv| async move {
        let at = chrono::Utc::now() + chrono::Duration::seconds(2);
        let created = srv
            .post(
                "/v1/keys",
                &srv.admin_key,
                json!({"name": "short", "expires_at": at.to_rfc3339()}),
            )
            .await
            .expect(201);
        let k = secret(&created);
        srv.get("/v1/me", &k).await.expect(200);
        tokio::time::sleep(Duration::from_millis(3100)).await;
        srv.get("/v1/me", &k)
            .await
            .problem(401, "invalid_credentials");
        assert_eq!(srv.verify(json!({"key": k})).await["code"], "EXPIRED");
        let got = srv
            .get(
                &format!("/v1/keys/{}", created["id"].as_str().unwrap()),
                &srv.admin_key,
            )
            .await
            .expect(200);
        assert_eq!(got["status"], "expired");
    })
    .await;
}

#[tokio::test]
async fn roll_without_grace_replaces_at_once() {
    each_backend(|srv| async move {
        let created = srv
            .post(
                "/v1/keys",
                &srv.admin_key,
                json!({"name": "rolling", "metadata": {"team": "a"}}),
            )
            .await
            .expect(201);
        let (old, id) = (secret(&created), created["id"].as_str().unwrap().to_owned());
        srv.get("/v1/me", &old).await.expect(200);
        let rolled = srv
            .call(
                reqwest::Method::POST,
                &format!("/v1/keys/{id}/roll"),
                Some(&srv.admin_key),
                None,
            )
            .await
            .expect(201);
        let new = secret(&rolled);
        assert_ne!(new, old);
        assert_eq!(rolled["name"], "rolling");
        assert_eq!(rolled["metadata"], json!({"team": "a"}));
        srv.get("/v1/me", &new).await.expect(200);
        srv.get("/v1/me", &old)
            .await
            .problem(401, "invalid_credentials");
        let old_view = srv
            .get(&format!("/v1/keys/{id}"), &srv.admin_key)
            .await
            .expect(200);
        assert_eq!(old_view["rolled_to"], rolled["id"]);
        srv.post(&format!("/v1/keys/{id}/roll"), &srv.admin_key, json!({}))
            .await
            .problem(409, "conflict");
    })
    .await;
}

#[tokio::test]
async fn roll_with_grace_keeps_the_old_key_but_never_past_its_expiry() {
    each_backend(|srv| async move {
        let created = srv
            .post("/v1/keys", &srv.admin_key, json!({"name": "graceful"}))
            .await
            .expect(201);
        let (old, id) = (secret(&created), created["id"].as_str().unwrap().to_owned());
        let rolled = srv
            .post(
                &format!("/v1/keys/{id}/roll"),
                &srv.admin_key,
                json!({"grace_seconds": 3600}),
            )
            .await
            .expect(201);
        srv.get("/v1/me", &old).await.expect(200);
        srv.get("/v1/me", &secret(&rolled)).await.expect(200);
        let old_view = srv
            .get(&format!("/v1/keys/{id}"), &srv.admin_key)
            .await
            .expect(200);
        let exp =
            chrono::DateTime::parse_from_rfc3339(old_view["expires_at"].as_str().unwrap()).unwrap();
        let in_an_hour = chrono::Utc::now() + chrono::Duration::seconds(3600);
        assert!((exp.timestamp() - in_an_hour.timestamp()).abs() <= 5);

        // The grace never extends a key beyond the expiry it already had.
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(600)).with_nanosecond_zero();
        let short = srv
            .post(
                "/v1/keys",
                &srv.admin_key,
                json!({"name": "short", "expires_at": soon.to_rfc3339()}),
            )
            .await
            .expect(201);
        let sid = short["id"].as_str().unwrap();
        let rolled = srv
            .post(
                &format!("/v1/keys/{sid}/roll"),
                &srv.admin_key,
                json!({"grace_seconds": 604800}),
            )
            .await
            .expect(201);
        let old_view = srv
            .get(&format!("/v1/keys/{sid}"), &srv.admin_key)
            .await
            .expect(200);
        assert_eq!(old_view["expires_at"], short["expires_at"]);
        assert_eq!(
            rolled["expires_at"], short["expires_at"],
            "the new key keeps the original expiry"
        );
        srv.post(
            &format!("/v1/keys/{sid}/roll"),
            &srv.admin_key,
            json!({"grace_seconds": 604801}),
        )
        .await
        .problem(422, "validation_failed");
    })
    .await;
}

trait NoNanos {
    fn with_nanosecond_zero(self) -> Self;
}
impl NoNanos for chrono::DateTime<chrono::Utc> {
    fn with_nanosecond_zero(self) -> Self {
        chrono::Timelike::with_nanosecond(&self, 0).unwrap()
    }
}

#[tokio::test]
async fn restricted_keys_cannot_widen() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Narrow").await;
        let (dev, _) = srv.member_with_key(&ws, "developer").await;
        let narrow = srv
            .key_for(
                &ws,
                &dev,
                json!({"permissions": ["documents:read", "latchkey:keys:manage_own"]}),
            )
            .await;
        let narrow_key = secret(&narrow);
        let me = srv.get("/v1/me", &narrow_key).await.expect(200);
        assert_eq!(
            me["permissions"],
            json!(["documents:read", "latchkey:keys:manage_own"])
        );

        let r = srv
            .post(
                "/v1/keys",
                &narrow_key,
                json!({"name": "wider", "permissions": ["documents:write"]}),
            )
            .await;
        assert_eq!(
            r.problem(422, "validation_failed")["errors"][0]["field"],
            "permissions[0]"
        );
        // Without a list, the new key inherits its creator's restriction rather than its owner's full rights.
        let child = srv
            .post("/v1/keys", &narrow_key, json!({"name": "child"}))
            .await
            .expect(201);
        assert_eq!(
            child["permissions"],
            json!(["documents:read", "latchkey:keys:manage_own"])
        );
        let v = srv
            .verify(json!({"key": secret(&child), "permissions": ["documents:write"]}))
            .await;
        assert_eq!(v["code"], "INSUFFICIENT_PERMISSIONS");
        // Nor can it lift its own restriction.
        let id = narrow["id"].as_str().unwrap();
        srv.patch(
            &format!("/v1/keys/{id}"),
            &narrow_key,
            json!({"permissions": ["*"]}),
        )
        .await
        .problem(422, "validation_failed");
        srv.patch(
            &format!("/v1/keys/{id}"),
            &narrow_key,
            json!({"permissions": ["documents:read"]}),
        )
        .await
        .expect(200);
    })
    .await;
}

#[tokio::test]
async fn test_keys_cannot_touch_live_keys() {
    each_backend(|srv| async move {
        let test = srv
            .post(
                "/v1/keys",
                &srv.admin_key,
                json!({"name": "t", "environment": "test"}),
            )
            .await
            .expect(201);
        let test_key = secret(&test);
        srv.post(
            "/v1/keys",
            &test_key,
            json!({"name": "live", "environment": "live"}),
        )
        .await
        .problem(403, "environment_mismatch");
        let made = srv
            .post("/v1/keys", &test_key, json!({"name": "test child"}))
            .await
            .expect(201);
        assert_eq!(made["environment"], "test");
        let me = srv.get("/v1/me", &srv.admin_key).await.expect(200);
        let live_id = me["credential"]["id"].as_str().unwrap();
        // Test credentials see test data only: live keys do not exist for them.
        srv.delete(&format!("/v1/keys/{live_id}"), &test_key)
            .await
            .problem(404, "not_found");
        let listed = srv.get("/v1/keys?limit=500", &test_key).await.expect(200);
        assert!(listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["environment"] == "test"));
        // Nor may they change people, roles or settings.
        let ws = srv.workspace_of(&test_key).await;
        srv.patch(
            &format!("/v1/workspaces/{ws}"),
            &test_key,
            json!({"name": "x"}),
        )
        .await
        .problem(403, "environment_mismatch");
        srv.post(
            "/v1/users",
            &test_key,
            json!({"email": "t@example.com", "name": "T"}),
        )
        .await
        .problem(403, "environment_mismatch");
    })
    .await;
}

#[tokio::test]
async fn patch_disables_and_edits() {
    each_backend(|srv| async move {
        let created = srv
            .post("/v1/keys", &srv.admin_key, json!({"name": "editable"}))
            .await
            .expect(201);
        let (k, id) = (secret(&created), created["id"].as_str().unwrap().to_owned());
        srv.get("/v1/me", &k).await.expect(200);
        let r = srv
            .patch(
                &format!("/v1/keys/{id}"),
                &srv.admin_key,
                json!({"enabled": false, "name": "renamed", "metadata": {"a": 1}}),
            )
            .await
            .expect(200);
        assert_eq!(r["status"], "disabled");
        assert_eq!(r["name"], "renamed");
        srv.get("/v1/me", &k)
            .await
            .problem(401, "invalid_credentials");
        assert_eq!(srv.verify(json!({"key": k})).await["code"], "DISABLED");
        srv.patch(
            &format!("/v1/keys/{id}"),
            &srv.admin_key,
            json!({"enabled": true}),
        )
        .await
        .expect(200);
        let me = srv.get("/v1/me", &k).await.expect(200);
        assert_eq!(me["credential"]["name"], "renamed");
    })
    .await;
}

#[tokio::test]
async fn lists_paginate_and_filter() {
    each_backend(|srv| async move {
        for i in 0..5 {
            let env = if i % 2 == 0 { "test" } else { "live" };
            srv.post(
                "/v1/keys",
                &srv.admin_key,
                json!({"name": format!("k{i}"), "environment": env}),
            )
            .await
            .expect(201);
        }
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/keys?limit=2&cursor={c}"),
                None => "/v1/keys?limit=2".into(),
            };
            let page = srv.get(&path, &srv.admin_key).await.expect(200);
            let data = page["data"].as_array().unwrap();
            assert!(data.len() <= 2);
            seen.extend(data.iter().map(|k| k["id"].as_str().unwrap().to_owned()));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 6, "5 keys + the bootstrap key, each once");
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.reverse();
        assert_eq!(seen, sorted, "newest first");
        let test = srv
            .get("/v1/keys?environment=test", &srv.admin_key)
            .await
            .expect(200);
        assert_eq!(test["data"].as_array().unwrap().len(), 3);
        assert!(test["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["environment"] == "test"));
        let active = srv
            .get("/v1/keys?status=active", &srv.admin_key)
            .await
            .expect(200);
        assert_eq!(active["data"].as_array().unwrap().len(), 6);
        srv.get("/v1/keys?status=sleeping", &srv.admin_key)
            .await
            .problem(422, "validation_failed");
    })
    .await;
}

#[tokio::test]
async fn last_used_at_is_recorded_without_a_write_per_request() {
    each_backend(|srv| async move {
        let created = srv
            .post("/v1/keys", &srv.admin_key, json!({"name": "used"}))
            .await
            .expect(201);
        let (k, id) = (secret(&created), created["id"].as_str().unwrap().to_owned());
        assert!(created["last_used_at"].is_null());
        srv.get("/v1/me", &k).await.expect(200);
        let mut last = Value::Null;
        for _ in 0..40 {
            last = srv
                .get(&format!("/v1/keys/{id}"), &srv.admin_key)
                .await
                .expect(200)["last_used_at"]
                .clone();
            if last.is_string() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(last.is_string(), "last_used_at set after use");
        srv.stop().await;
    })
    .await;
}
