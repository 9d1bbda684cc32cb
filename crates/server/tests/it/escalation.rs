//! Keys never widen, whichever way they are made: creation, edit, roll; and what a public
//! (publishable) key or a key of another workspace's admin can reach.

use crate::harness::each_backend;
use serde_json::json;

#[tokio::test]
async fn rolling_never_yields_more_than_the_caller_holds() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Roll caps").await;
        let (owner, full_key) = srv.member_with_key(&ws, "developer").await;
        let full = srv.get("/v1/me", &full_key).await.expect(200);
        let full_id = full["credential"]["id"].as_str().unwrap();
        let narrow = srv
            .key_for(
                &ws,
                &owner,
                json!({"permissions": ["latchkey:keys:manage_own"]}),
            )
            .await;
        let narrow_key = narrow["key"].as_str().unwrap();
        // The narrow key may roll its owner's unrestricted key, but the successor is capped.
        let rolled = srv
            .post(
                &format!("/v1/keys/{full_id}/roll"),
                narrow_key,
                json!({"grace_seconds": 60}),
            )
            .await
            .expect(201);
        assert_eq!(rolled["permissions"], json!(["latchkey:keys:manage_own"]));
        let v = srv
            .verify(json!({"key": rolled["key"], "permissions": ["documents:read"]}))
            .await;
        assert_eq!(v["code"], "INSUFFICIENT_PERMISSIONS");
    })
    .await;
}

#[tokio::test]
async fn a_key_cannot_shed_its_own_ip_list_or_expiry() {
    each_backend(|srv| async move {
        let at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
        let k = srv
            .post(
                "/v1/keys",
                &srv.admin_key,
                json!({"name": "fenced", "allowed_ips": ["127.0.0.1"], "expires_at": at}),
            )
            .await
            .expect(201);
        let (key, id) = (k["key"].as_str().unwrap(), k["id"].as_str().unwrap());
        let r = srv
            .patch(
                &format!("/v1/keys/{id}"),
                key,
                json!({"allowed_ips": [], "expires_at": null}),
            )
            .await;
        let body = r.problem(422, "validation_failed");
        let fields: Vec<_> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(
            fields.contains(&"allowed_ips") && fields.contains(&"expires_at"),
            "{fields:?}"
        );
        // Children inherit both.
        let child = srv
            .post("/v1/keys", key, json!({"name": "child"}))
            .await
            .expect(201);
        assert_eq!(child["allowed_ips"], json!(["127.0.0.1/32"]));
        assert_eq!(child["expires_at"], k["expires_at"]);
        srv.post(
            "/v1/keys",
            key,
            json!({"name": "wide", "allowed_ips": ["0.0.0.0/0"]}),
        )
        .await
        .problem(422, "validation_failed");
    })
    .await;
}

#[tokio::test]
async fn publishable_keys_cannot_read_or_manage_keys() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Public").await;
        let (owner, secret_key) = srv.member_with_key(&ws, "admin").await;
        let pk = srv
            .key_for(&ws, &owner, json!({"type": "publishable"}))
            .await;
        let pk_key = pk["key"].as_str().unwrap();
        let sk_id = srv.get("/v1/me", &secret_key).await.expect(200)["credential"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        srv.get("/v1/keys", pk_key)
            .await
            .problem(403, "insufficient_permissions");
        srv.get(&format!("/v1/keys/{sk_id}"), pk_key)
            .await
            .problem(404, "not_found");
        srv.delete(&format!("/v1/keys/{sk_id}"), pk_key)
            .await
            .problem(404, "not_found");
        srv.get("/v1/me", &secret_key).await.expect(200);
        let me = srv.get("/v1/me", pk_key).await.expect(200);
        assert!(
            me["user"]["email"].is_null(),
            "a public key does not reveal its owner's email"
        );
        // It can still see and revoke itself.
        let pk_id = pk["id"].as_str().unwrap();
        srv.get(&format!("/v1/keys/{pk_id}"), pk_key)
            .await
            .expect(200);
        srv.delete(&format!("/v1/keys/{pk_id}"), pk_key)
            .await
            .expect(204);
    })
    .await;
}

#[tokio::test]
async fn concurrent_rolls_of_one_key_yield_one_successor() {
    each_backend(|srv| async move {
        let k = srv
            .post("/v1/keys", &srv.admin_key, json!({"name": "contended"}))
            .await
            .expect(201);
        let id = k["id"].as_str().unwrap();
        let path = format!("/v1/keys/{id}/roll");
        let attempts =
            (0..8).map(|_| srv.post(&path, &srv.admin_key, json!({"grace_seconds": 60})));
        let results = futures::future::join_all(attempts).await;
        let ok = results.iter().filter(|r| r.status == 201).count();
        let conflicts = results.iter().filter(|r| r.status == 409).count();
        assert_eq!((ok, conflicts), (1, 7));
        // Revoked first, then rolled: refused.
        let k = srv
            .post("/v1/keys", &srv.admin_key, json!({"name": "revoked"}))
            .await
            .expect(201);
        let id = k["id"].as_str().unwrap();
        srv.delete(&format!("/v1/keys/{id}"), &srv.admin_key)
            .await
            .expect(204);
        srv.post(&format!("/v1/keys/{id}/roll"), &srv.admin_key, json!({}))
            .await
            .problem(409, "conflict");
    })
    .await;
}

#[tokio::test]
async fn workspace_admins_cannot_pull_in_other_tenants_users() {
    each_backend(|srv| async move {
        let a = srv.workspace("A").await;
        let b = srv.workspace("B").await;
        let (_, a_admin) = srv.member_with_key(&a, "admin").await;
        let (b_user, _) = srv.member_with_key(&b, "admin").await;
        srv.put(
            &format!("/v1/workspaces/{a}/members/{b_user}"),
            &a_admin,
            json!({"role": "member"}),
        )
        .await
        .problem(404, "not_found");
        srv.put(
            &format!("/v1/workspaces/{a}/members/{}", srv.admin_user_id),
            &a_admin,
            json!({"role": "viewer"}),
        )
        .await
        .problem(403, "insufficient_permissions");
        // A user they provision themselves (in no workspace yet) can be added.
        let fresh = srv
            .post(
                "/v1/users",
                &a_admin,
                json!({"email": "fresh@example.com", "name": "Fresh"}),
            )
            .await
            .expect(201);
        srv.put(
            &format!(
                "/v1/workspaces/{a}/members/{}",
                fresh["id"].as_str().unwrap()
            ),
            &a_admin,
            json!({"role": "member"}),
        )
        .await
        .expect(201);
        srv.put(
            &format!(
                "/v1/workspaces/{a}/members/{}",
                fresh["id"].as_str().unwrap()
            ),
            &a_admin,
            json!({"role": "no\u{0}pe"}),
        )
        .await
        .problem(422, "validation_failed");
    })
    .await;
}

#[tokio::test]
async fn control_characters_in_urls_are_refused() {
    each_backend(|srv| async move {
        srv.get("/v1/audit?action=%00", &srv.admin_key)
            .await
            .problem(400, "bad_request");
        srv.get("/v1/keys?owner_id=%00", &srv.admin_key)
            .await
            .problem(400, "bad_request");
        let ws = srv.workspace_of(&srv.admin_key).await;
        srv.get(&format!("/v1/workspaces/{ws}/roles/a%00b"), &srv.admin_key)
            .await
            .problem(400, "bad_request");
        srv.get(
            &format!("/v1/workspaces/{ws}/roles/Not-Valid"),
            &srv.admin_key,
        )
        .await
        .problem(404, "not_found");
        srv.delete(
            &format!("/v1/workspaces/{ws}/grants/nonsense"),
            &srv.admin_key,
        )
        .await
        .problem(404, "not_found");
    })
    .await;
}

/// Exchanges `key` for an access token; `body` may narrow it or set its lifetime.
async fn access_token(
    srv: &crate::harness::TestServer,
    key: &str,
    body: serde_json::Value,
) -> String {
    srv.post("/v1/auth/token", key, body).await.expect(200)["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn timestamp(v: &serde_json::Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().expect("an expiry"))
        .unwrap()
        .timestamp()
}

#[tokio::test]
async fn a_short_lived_token_cannot_mint_or_keep_a_credential_that_outlives_it() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Token caps").await;
        let (owner, key) = srv.member_with_key(&ws, "developer").await;
        let key_id = srv.get("/v1/me", &key).await.expect(200)["credential"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let hour_from_now = chrono::Utc::now().timestamp() + 3600;
        let token = access_token(&srv, &key, json!({"ttl_seconds": 3600})).await;
        // Rolling the (never-expiring) key through the token: the successor dies with the token.
        let rolled = srv
            .post(&format!("/v1/keys/{key_id}/roll"), &token, json!({}))
            .await
            .expect(201);
        assert!(
            timestamp(&rolled["expires_at"]) <= hour_from_now + 5,
            "{rolled}"
        );
        let rolled_key = rolled["key"].as_str().unwrap();
        let rolled_id = rolled["id"].as_str().unwrap();
        // Nor can the token clear a key's expiry.
        let token = access_token(&srv, rolled_key, json!({"ttl_seconds": 3600})).await;
        let other = srv.key_for(&ws, &owner, json!({})).await;
        srv.patch(
            &format!("/v1/keys/{}", other["id"].as_str().unwrap()),
            &token,
            json!({"expires_at": null}),
        )
        .await
        .problem(422, "validation_failed");
        srv.patch(
            &format!("/v1/keys/{rolled_id}"),
            &token,
            json!({"name": "renamed"}),
        )
        .await
        .expect(200);
    })
    .await;
}

#[tokio::test]
async fn environment_tokens_stay_within_the_credential_making_them() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Env token caps").await;
        let (owner, full_key) = srv.member_with_key(&ws, "developer").await;
        // A 30-day environment token from the owner's unrestricted key.
        let env = srv
            .post(
                "/v1/tokens",
                &full_key,
                json!({"name": "ci", "ttl_seconds": 2_592_000}),
            )
            .await
            .expect(201);
        let env_id = env["id"].as_str().unwrap();
        // A narrow, one-hour key of the same owner renews it: the successor is no stronger and
        // no longer-lived than that key.
        let at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
        let narrow = srv
            .key_for(
                &ws,
                &owner,
                json!({"permissions": ["latchkey:keys:manage_own"], "expires_at": at}),
            )
            .await;
        let narrow_key = narrow["key"].as_str().unwrap();
        let renewed = srv
            .post(&format!("/v1/tokens/{env_id}/renew"), narrow_key, json!({}))
            .await
            .expect(201);
        assert!(timestamp(&renewed["expires_at"]) <= timestamp(&narrow["expires_at"]));
        let v = srv
            .verify(
                json!({"access_token": renewed["access_token"], "permissions": ["documents:read"]}),
            )
            .await;
        assert_eq!(v["code"], "INSUFFICIENT_PERMISSIONS", "{v}");

        // A pair (the full key with a narrow one-hour token) creates an environment token: it
        // carries the pair's limits, not the key's alone.
        let token = access_token(
            &srv,
            &full_key,
            json!({"ttl_seconds": 3600, "permissions": ["latchkey:keys:manage_own"]}),
        )
        .await;
        let hour_from_now = chrono::Utc::now().timestamp() + 3600;
        let r = srv
            .send(
                srv.request(reqwest::Method::POST, "/v1/tokens")
                    .header("x-api-key", &full_key)
                    .bearer_auth(&token)
                    .json(&json!({"name": "from a pair", "ttl_seconds": 2_592_000})),
            )
            .await
            .expect(201);
        assert!(timestamp(&r["expires_at"]) <= hour_from_now + 5, "{r}");
        let v = srv
            .verify(json!({"access_token": r["access_token"], "permissions": ["documents:read"]}))
            .await;
        assert_eq!(v["code"], "INSUFFICIENT_PERMISSIONS", "{v}");
    })
    .await;
}

#[tokio::test]
async fn members_manage_alone_gives_nothing_it_does_not_hold() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Delegation").await;
        let (admin, admin_key) = srv.member_with_key(&ws, "admin").await;
        let narrow = srv
            .key_for(
                &ws,
                &admin,
                json!({"permissions": ["latchkey:members:manage"]}),
            )
            .await;
        let narrow = narrow["key"].as_str().unwrap();
        // A user with a password would be a way to a dashboard session the key does not have.
        srv.post(
            "/v1/users",
            narrow,
            json!({"email": "pw@example.com", "name": "Pw", "password": "correct horse battery"}),
        )
        .await
        .problem(403, "insufficient_permissions");
        let fresh = srv
            .post(
                "/v1/users",
                narrow,
                json!({"email": "fresh@example.com", "name": "Fresh"}),
            )
            .await
            .expect(201);
        let fresh = fresh["id"].as_str().unwrap();
        let member_path = format!("/v1/workspaces/{ws}/members/{fresh}");
        // Only a full admin makes an admin; other roles must fit inside the key.
        srv.put(&member_path, narrow, json!({"role": "admin"}))
            .await
            .problem(403, "insufficient_permissions");
        let body = srv
            .put(&member_path, narrow, json!({"role": "developer"}))
            .await
            .problem(422, "validation_failed");
        assert_eq!(body["errors"][0]["field"], "role", "{body}");
        srv.get(&format!("/v1/workspaces/{ws}/members"), narrow)
            .await
            .expect(200);
        assert!(
            srv.get(&format!("/v1/workspaces/{ws}/members"), &admin_key)
                .await
                .expect(200)["data"]
                .as_array()
                .unwrap()
                .iter()
                .all(|m| m["user_id"] != fresh),
            "nothing was added"
        );
        // A role with nothing in it fits; then grants and roles are capped the same way.
        srv.put(
            &format!("/v1/workspaces/{ws}/roles/empty"),
            narrow,
            json!({"permissions": []}),
        )
        .await
        .expect(200);
        srv.put(&member_path, narrow, json!({"role": "empty"}))
            .await
            .expect(201);
        let body = srv
            .post(
                &format!("/v1/workspaces/{ws}/grants"),
                narrow,
                json!({"user_id": fresh, "permission": "latchkey:*"}),
            )
            .await
            .problem(422, "validation_failed");
        assert_eq!(body["errors"][0]["field"], "permission", "{body}");
        srv.post(
            &format!("/v1/workspaces/{ws}/grants"),
            narrow,
            json!({"user_id": fresh, "permission": "latchkey:members:manage"}),
        )
        .await
        .expect(201);
        let body = srv
            .put(
                &format!("/v1/workspaces/{ws}/roles/empty"),
                narrow,
                json!({"permissions": ["latchkey:members:manage", "documents:read"]}),
            )
            .await
            .problem(422, "validation_failed");
        assert_eq!(body["errors"][0]["field"], "permissions[1]", "{body}");
        srv.put(
            &format!("/v1/workspaces/{ws}/roles/admin"),
            narrow,
            json!({"permissions": ["latchkey:members:manage"]}),
        )
        .await
        .problem(403, "insufficient_permissions");
        // Nor can it demote or remove the admins it could not have made.
        srv.put(
            &format!("/v1/workspaces/{ws}/members/{admin}"),
            narrow,
            json!({"role": "empty"}),
        )
        .await
        .problem(403, "insufficient_permissions");
        srv.delete(&format!("/v1/workspaces/{ws}/members/{admin}"), narrow)
            .await
            .problem(403, "insufficient_permissions");
        let me = srv.get("/v1/me", &admin_key).await.expect(200);
        assert!(me["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("latchkey:*")));

        // The full admin can do all of it.
        srv.put(&member_path, &admin_key, json!({"role": "admin"}))
            .await
            .expect(200);
        srv.post(
            "/v1/users",
            &admin_key,
            json!({"email": "pw2@example.com", "name": "Pw", "password": "correct horse battery"}),
        )
        .await
        .expect(201);
    })
    .await;
}

#[tokio::test]
async fn a_narrowed_instance_admin_key_cannot_make_instance_admins() {
    each_backend(|srv| async move {
        let ws = srv.workspace_of(&srv.admin_key).await;
        let narrow = srv
            .key_for(
                &ws,
                &srv.admin_user_id,
                json!({"permissions": ["latchkey:members:manage"]}),
            )
            .await;
        let narrow = narrow["key"].as_str().unwrap();
        srv.post(
            "/v1/users",
            narrow,
            json!({"email": "root2@example.com", "name": "Root", "is_instance_admin": true}),
        )
        .await
        .problem(403, "insufficient_permissions");
        srv.post(
            "/v1/users",
            &srv.admin_key,
            json!({"email": "root3@example.com", "name": "Root", "is_instance_admin": true}),
        )
        .await
        .expect(201);
    })
    .await;
}
