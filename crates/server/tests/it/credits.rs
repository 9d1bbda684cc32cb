//! Credits (SPEC §11.2) as a user meets them: a balance spent one (or `cost`) per successful
//! verification, on keys and on members, `USAGE_EXCEEDED` / 429 `usage_exceeded` when it is
//! gone, charged only after every other check, exact under concurrency on both backends and
//! across two nodes, and every manual change audited. Refills are tested on a test clock in
//! `latchkey_engine`'s tests and `latchkey_core::credits`.

use crate::harness::{each_backend, TestServer};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;

async fn key_with(srv: &TestServer, extra: Value) -> (String, String, String) {
    let ws = srv.workspace_of(&srv.admin_key).await;
    let user = srv.user("customer").await;
    srv.set_member(&ws, &user, "developer").await;
    let key = srv.key_for(&ws, &user, extra).await;
    (
        key["key"].as_str().unwrap().to_owned(),
        key["id"].as_str().unwrap().to_owned(),
        user,
    )
}

fn credits(v: &Value, owner: &str) -> Option<(i64, bool)> {
    v["credits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["owner"] == owner)
        .map(|c| {
            (
                c["remaining"].as_i64().unwrap(),
                c["exceeded"].as_bool().unwrap(),
            )
        })
}

#[tokio::test]
async fn a_keys_credits_are_spent_then_answer_usage_exceeded() {
    each_backend(|srv| async move {
        let (key, id, _) = key_with(&srv, json!({"credits": {"remaining": 3}})).await;
        let shown = srv.get(&format!("/v1/keys/{id}"), &srv.admin_key).await.expect(200);
        assert_eq!(shown["credits"], json!({"remaining": 3}));
        for _ in 0..3 {
            srv.get("/v1/me", &key).await.expect(200);
        }
        let r = srv.call(Method::GET, "/v1/me", Some(&key), None).await;
        assert!(r.headers.get("retry-after").is_none(), "no refill: waiting does not help");
        let body = r.problem(429, "usage_exceeded");
        assert!(body["detail"].as_str().unwrap().contains("credits"));
        let shown = srv.get(&format!("/v1/keys/{id}"), &srv.admin_key).await.expect(200);
        assert_eq!(shown["credits"]["remaining"], 0, "never negative");

        let v = srv.verify(json!({"key": key})).await;
        assert_eq!((v["valid"].clone(), v["code"].clone()), (json!(false), json!("USAGE_EXCEEDED")));
        assert_eq!(credits(&v, "key"), Some((0, true)));
        assert!(v["credits"][0]["refills_at"].is_null());

        // Forward auth refuses it the same way.
        let r = srv
            .send(
                srv.request(Method::GET, "/v1/forward-auth")
                    .header("x-forwarded-method", "GET")
                    .header("x-forwarded-uri", "/x")
                    .header("x-api-key", &key),
            )
            .await;
        assert_eq!(r.headers["x-latchkey-code"], "USAGE_EXCEEDED");
        r.problem(429, "usage_exceeded");

        // Topped up by hand: audited with the balance it replaced; then it works again.
        let topped = json!({"credits": {"remaining": 5, "refill": {"interval": "monthly", "amount": 5, "day": 31}}});
        let k = srv.patch(&format!("/v1/keys/{id}"), &srv.admin_key, topped).await.expect(200);
        assert_eq!(k["credits"]["refill"], json!({"interval": "monthly", "amount": 5, "day": 31}));
        let audit = srv.get("/v1/audit?action=key.updated", &srv.admin_key).await.expect(200);
        let e = audit["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["target"]["id"] == id.as_str())
            .expect("the change is audited");
        assert_eq!(e["detail"]["credits"]["from"], json!({"remaining": 0}));
        assert_eq!(e["detail"]["credits"]["to"]["remaining"], 5);
        let v = srv.verify(json!({"key": key})).await;
        assert_eq!(v["code"], "VALID");
        assert_eq!(credits(&v, "key"), Some((4, false)));
        assert!(v["credits"][0]["refills_at"].as_str().unwrap().ends_with("T00:00:00Z"));

        // `null`: unlimited again.
        srv.patch(&format!("/v1/keys/{id}"), &srv.admin_key, json!({"credits": null}))
            .await
            .expect(200);
        let v = srv.verify(json!({"key": key})).await;
        assert_eq!(v["code"], "VALID");
        assert_eq!(v["credits"], json!([]));
    })
    .await;
}

#[tokio::test]
async fn a_verification_costs_its_cost_and_a_refusal_costs_nothing() {
    each_backend(|srv| async move {
        let (key, _, _) = key_with(
            &srv,
            json!({"credits": {"remaining": 10}, "permissions": ["documents:read"],
                   "ratelimits": [{"name": "burst", "limit": 3, "window_seconds": 3600}]}),
        )
        .await;
        let v = srv.verify(json!({"key": key, "cost": 4})).await;
        assert_eq!(credits(&v, "key"), Some((6, false)));
        let v = srv.verify(json!({"key": key, "cost": 7})).await;
        assert_eq!(v["code"], "USAGE_EXCEEDED");
        assert_eq!(credits(&v, "key"), Some((6, true)), "7 of 6: nothing spent");
        // Every other check comes first: a permission the key lacks spends nothing.
        let v = srv
            .verify(json!({"key": key, "permissions": ["documents:write"]}))
            .await;
        assert_eq!(v["code"], "INSUFFICIENT_PERMISSIONS");
        assert_eq!(v["credits"], json!([]));
        // A cost of 0 checks without spending (the rate limit's third unit goes to it).
        let v = srv.verify(json!({"key": key, "cost": 0})).await;
        assert_eq!(
            (v["code"].clone(), credits(&v, "key")),
            (json!("VALID"), Some((6, false)))
        );
        // Now the rate limit refuses first, and the credits are not touched.
        let v = srv.verify(json!({"key": key})).await;
        assert_eq!(v["code"], "RATE_LIMITED");
        assert_eq!(v["credits"], json!([]));
        let shown = srv
            .get("/v1/keys?limit=500", &srv.admin_key)
            .await
            .expect(200);
        let k = shown["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["credits"]["remaining"].is_number())
            .expect("the key is listed with its credits");
        assert_eq!(k["credits"]["remaining"], 6);

        let bad = srv
            .post(
                "/v1/verify",
                &srv.admin_key,
                json!({"key": key, "cost": -1}),
            )
            .await;
        bad.problem(422, "validation_failed");
    })
    .await;
}

#[tokio::test]
async fn a_members_credits_are_spent_by_all_of_their_keys() {
    each_backend(|srv| async move {
        let ws = srv.workspace_of(&srv.admin_key).await;
        let (user, first) = srv.member_with_key(&ws, "developer").await;
        let second = srv.key_for(&ws, &user, json!({})).await["key"]
            .as_str()
            .unwrap()
            .to_owned();
        let path = format!("/v1/workspaces/{ws}/members/{user}");
        let m = srv
            .put(
                &path,
                &srv.admin_key,
                json!({"role": "developer", "credits": {"remaining": 3}}),
            )
            .await
            .expect(200);
        assert_eq!(m["credits"], json!({"remaining": 3}));
        let v = srv.verify(json!({"key": first})).await;
        assert_eq!(credits(&v, "member"), Some((2, false)));
        let v = srv.verify(json!({"key": second, "cost": 2})).await;
        assert_eq!(credits(&v, "member"), Some((0, false)));
        let v = srv.verify(json!({"key": first})).await;
        assert_eq!(
            (v["code"].clone(), credits(&v, "member")),
            (json!("USAGE_EXCEEDED"), Some((0, true)))
        );
        srv.get("/v1/me", &second)
            .await
            .problem(429, "usage_exceeded");

        // A key with credits of its own pays from both, or from neither.
        let third = srv
            .key_for(&ws, &user, json!({"credits": {"remaining": 10}}))
            .await["key"]
            .as_str()
            .unwrap()
            .to_owned();
        let v = srv.verify(json!({"key": third})).await;
        assert_eq!(v["code"], "USAGE_EXCEEDED");
        let v = srv.verify(json!({"key": third, "cost": 0})).await;
        assert_eq!(
            credits(&v, "key"),
            Some((10, false)),
            "the member's refusal cost the key nothing"
        );

        let audit = srv
            .get(
                &format!("/v1/audit?action=member.updated&workspace_id={ws}"),
                &srv.admin_key,
            )
            .await
            .expect(200);
        assert_eq!(audit["data"][0]["detail"]["credits"]["to"]["remaining"], 3);
        srv.put(
            &path,
            &srv.admin_key,
            json!({"role": "developer", "credits": null}),
        )
        .await
        .expect(200);
        srv.get("/v1/me", &second).await.expect(200);
    })
    .await;
}

#[tokio::test]
async fn invalid_credits_are_422s_that_change_nothing() {
    each_backend(|srv| async move {
        let before = srv.key_count(&srv.admin_key).await;
        for (credits, field) in [
            (json!({"remaining": -1}), "credits.remaining"),
            (json!({"remaining": 1, "refill": {"interval": "daily", "amount": 0}}), "credits.refill.amount"),
            (json!({"remaining": 1, "refill": {"interval": "daily", "amount": 5, "day": 3}}), "credits.refill.day"),
            (json!({"remaining": 1, "refill": {"interval": "monthly", "amount": 5, "day": 32}}), "credits.refill.day"),
        ] {
            let body = srv
                .post("/v1/keys", &srv.admin_key, json!({"name": "k", "credits": credits}))
                .await
                .problem(422, "validation_failed");
            assert_eq!(body["errors"][0]["field"], field, "{body}");
        }
        srv.post(
            "/v1/keys",
            &srv.admin_key,
            json!({"name": "k", "credits": {"remaining": 1, "refill": {"interval": "weekly", "amount": 1}}}),
        )
        .await
        .problem(422, "validation_failed");
        assert_eq!(srv.key_count(&srv.admin_key).await, before);
    })
    .await;
}

/// 200 concurrent verifications, alternating between `nodes`: how many were VALID (the rest
/// must be USAGE_EXCEEDED).
async fn valid_of(nodes: &[Arc<TestServer>], key: &str) -> usize {
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (node, key) = (nodes[i % nodes.len()].clone(), key.to_owned());
            tokio::spawn(async move { node.verify(json!({"key": key})).await["code"].clone() })
        })
        .collect();
    let mut valid = 0;
    for t in tasks {
        match t.await.unwrap().as_str() {
            Some("VALID") => valid += 1,
            Some("USAGE_EXCEEDED") => {}
            other => panic!("unexpected code {other:?}"),
        }
    }
    valid
}

#[tokio::test]
async fn two_hundred_concurrent_verifications_against_fifty_credits_pass_fifty() {
    each_backend(|srv| async move {
        let (key, id, _) = key_with(&srv, json!({"credits": {"remaining": 50}})).await;
        let one = [Arc::new(srv)];
        assert_eq!(valid_of(&one, &key).await, 50);
        let shown = one[0]
            .get(&format!("/v1/keys/{id}"), &one[0].admin_key)
            .await
            .expect(200);
        assert_eq!(shown["credits"]["remaining"], 0);

        // Two nodes on one database: the database decides, so still exactly the balance.
        let (key, id, _) = key_with(&one[0], json!({"credits": {"remaining": 50}})).await;
        let other = one[0].another_node().await;
        let two = [one[0].clone(), Arc::new(other)];
        assert_eq!(valid_of(&two, &key).await, 50);
        let shown = two[1]
            .get(&format!("/v1/keys/{id}"), &two[1].admin_key)
            .await
            .expect(200);
        assert_eq!(shown["credits"]["remaining"], 0);
    })
    .await;
}

#[tokio::test]
async fn a_verifier_of_another_workspace_cannot_spend_a_keys_credits_or_limits() {
    each_backend(|srv| async move {
        let (key, _, _) = key_with(
            &srv,
            json!({"credits": {"remaining": 1},
                   "ratelimits": [{"name": "one", "limit": 1, "window_seconds": 3600}]}),
        )
        .await;
        // A service of another tenant, allowed to verify its own workspace's keys.
        let other = srv.workspace("Other tenant").await;
        let (user, verifier) = srv.member_with_key(&other, "member").await;
        srv.post(
            &format!("/v1/workspaces/{other}/grants"),
            &srv.admin_key,
            json!({"user_id": user, "permission": "latchkey:verify"}),
        )
        .await
        .expect(201);
        for _ in 0..3 {
            let v = srv
                .post("/v1/verify", &verifier, json!({"key": key, "cost": 1}))
                .await
                .expect(200);
            assert_eq!(
                v["code"], "NOT_FOUND",
                "another tenant's key does not exist for it"
            );
            assert!(v["key_id"].is_null() && v["credits"] == json!([]));
        }
        // Nothing was spent: its own tenant's first verification still passes.
        let v = srv.verify(json!({"key": key})).await;
        assert_eq!(v["code"], "VALID");
        assert_eq!(credits(&v, "key"), Some((0, false)));
    })
    .await;
}
