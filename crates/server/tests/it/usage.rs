//! Usage (SPEC §11.3): every verification outcome counted per key, owner and workspace, read
//! back by minute, hour and day; who may read whose; bad windows are 422s.

use crate::harness::{each_backend, eventually, TestServer};
use serde_json::{json, Value};
use std::time::Duration;

fn totals(series: &Value) -> (i64, i64, Value) {
    let mut valid = 0;
    let mut credits = 0;
    let mut denied = serde_json::Map::new();
    for p in series["data"].as_array().unwrap() {
        valid += p["valid"].as_i64().unwrap();
        credits += p["credits_spent"].as_i64().unwrap();
        for (code, n) in p["denied"].as_object().unwrap() {
            let sum = denied.get(code).and_then(Value::as_i64).unwrap_or(0) + n.as_i64().unwrap();
            denied.insert(code.clone(), sum.into());
        }
    }
    (valid, credits, Value::Object(denied))
}

/// The series at `path` once it counts at least `outcomes` verifications, valid or refused
/// (each flush carries what was counted since the last: the ones asked for may span two).
async fn until_counted(srv: &TestServer, path: &str, key: &str, outcomes: i64) -> Value {
    let counted = |s: &Value| {
        let (valid, _, denied) = totals(s);
        valid
            + denied
                .as_object()
                .unwrap()
                .values()
                .map(|n| n.as_i64().unwrap())
                .sum::<i64>()
    };
    eventually("the usage flush", Duration::from_secs(10), || async {
        counted(&srv.get(path, key).await.expect(200)) >= outcomes
    })
    .await;
    srv.get(path, key).await.expect(200)
}

#[tokio::test]
async fn every_outcome_is_counted_per_key_and_read_back_at_each_granularity() {
    each_backend(|srv| async move {
        let ws = srv.workspace_of(&srv.admin_key).await;
        let (user, plain) = srv.member_with_key(&ws, "developer").await;
        let metered = srv
            .key_for(
                &ws,
                &user,
                json!({"credits": {"remaining": 2}, "permissions": ["docs:read"]}),
            )
            .await;
        let (key, id) = (
            metered["key"].as_str().unwrap(),
            metered["id"].as_str().unwrap(),
        );
        for _ in 0..2 {
            srv.get("/v1/me", key).await.expect(200);
        }
        srv.get("/v1/me", key).await.problem(429, "usage_exceeded");
        let v = srv
            .verify(json!({"key": key, "permissions": ["docs:write"]}))
            .await;
        assert_eq!(v["code"], "INSUFFICIENT_PERMISSIONS");
        srv.get("/v1/me", &plain).await.expect(200);

        let by_minute = until_counted(
            &srv,
            &format!("/v1/keys/{id}/usage?granularity=minute"),
            &srv.admin_key,
            4,
        )
        .await;
        let (valid, credits, denied) = totals(&by_minute);
        assert_eq!((valid, credits), (2, 2));
        assert_eq!(
            denied,
            json!({"USAGE_EXCEEDED": 1, "INSUFFICIENT_PERMISSIONS": 1})
        );
        let points = by_minute["data"].as_array().unwrap();
        assert_eq!(points.len(), 1440, "a day of minutes, empty ones included");
        assert!(points[0]["at"].as_str().unwrap().ends_with(":00Z"));
        for g in ["hour", "day"] {
            let s = srv
                .get(
                    &format!("/v1/keys/{id}/usage?granularity={g}"),
                    &srv.admin_key,
                )
                .await
                .expect(200);
            assert_eq!(
                totals(&s),
                (2, 2, denied.clone()),
                "{g} buckets agree with minutes"
            );
        }

        // Per owner: both of the user's keys. Read with the admin's key: every request the
        // owner's own key makes is itself a verification that counts towards the owner.
        let own_path = format!("/v1/usage?owner_id={user}");
        let own = until_counted(&srv, &own_path, &srv.admin_key, 5).await;
        assert_eq!(totals(&own).0, 3);
        // The owner may read their own.
        srv.get(&own_path, &plain).await.expect(200);
        // The workspace's needs manage_all: the admin sees it all, a developer does not.
        let all = srv.get("/v1/usage", &srv.admin_key).await.expect(200);
        assert!(totals(&all).0 >= 3);
        srv.get("/v1/usage", &plain)
            .await
            .problem(403, "insufficient_permissions");
        srv.get(&format!("/v1/usage?owner_id={}", srv.admin_user_id), &plain)
            .await
            .problem(403, "insufficient_permissions");
        // A key the caller may not see has no usage either.
        srv.get(
            &format!("/v1/keys/{}/usage", metered["id"].as_str().unwrap()),
            &plain,
        )
        .await
        .expect(200);
        let other = srv.workspace("Other").await;
        let (_, stranger) = srv.member_with_key(&other, "admin").await;
        srv.get(&format!("/v1/keys/{id}/usage"), &stranger)
            .await
            .problem(404, "not_found");
    })
    .await;
}

#[tokio::test]
async fn bad_windows_are_422s() {
    each_backend(|srv| async move {
        let id = srv.get("/v1/me", &srv.admin_key).await.expect(200)["credential"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        for (query, field) in [
            ("granularity=week", "granularity"),
            ("since=yesterday", "since"),
            (
                "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
                "since",
            ),
            (
                "granularity=minute&since=2026-01-01T00:00:00Z&until=2026-01-03T00:00:00Z",
                "since",
            ),
        ] {
            let body = srv
                .get(&format!("/v1/keys/{id}/usage?{query}"), &srv.admin_key)
                .await
                .problem(422, "validation_failed");
            assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
        }
        srv.get("/v1/usage?owner_id=nope", &srv.admin_key)
            .await
            .problem(422, "validation_failed");
        srv.get("/v1/usage?bogus=1", &srv.admin_key)
            .await
            .problem(400, "bad_request");
        let days = srv
            .get(
                "/v1/usage?granularity=day&since=2026-01-01T00:00:00Z&until=2026-02-01T00:00:00Z",
                &srv.admin_key,
            )
            .await
            .expect(200);
        assert_eq!(days["data"].as_array().unwrap().len(), 31);
        assert_eq!(days["data"][0]["at"], "2026-01-01T00:00:00Z");
    })
    .await;
}
