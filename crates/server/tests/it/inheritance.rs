//! SPEC §5.2: a key can never do more than its owner can, now. Every change to the owner's
//! standing takes effect on the very next request (the cache is invalidated, not waited out).

use crate::harness::each_backend;
use serde_json::json;

#[tokio::test]
async fn lowering_a_role_takes_effect_on_the_next_request() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Roles").await;
        let (user, key) = srv.member_with_key(&ws, "developer").await;
        srv.post("/v1/keys", &key, json!({"name": "allowed"}))
            .await
            .expect(201);
        let v = srv
            .verify(json!({"key": key, "permissions": ["documents:write"]}))
            .await;
        assert_eq!(v["code"], "VALID");
        srv.set_member(&ws, &user, "viewer").await;
        srv.post("/v1/keys", &key, json!({"name": "refused"}))
            .await
            .problem(403, "insufficient_permissions");
        let v = srv
            .verify(json!({"key": key, "permissions": ["documents:write"]}))
            .await;
        assert_eq!(v["code"], "INSUFFICIENT_PERMISSIONS");
        let v = srv
            .verify(json!({"key": key, "permissions": ["documents:read"]}))
            .await;
        assert_eq!(v["code"], "VALID");
        let me = srv.get("/v1/me", &key).await.expect(200);
        assert_eq!(me["workspace"]["role"], "viewer");
    })
    .await;
}

#[tokio::test]
async fn editing_a_role_changes_every_holder_at_once() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Role edit").await;
        let (_, key) = srv.member_with_key(&ws, "member").await;
        assert_eq!(
            srv.verify(json!({"key": key, "permissions": ["billing:read"]}))
                .await["code"],
            "VALID"
        );
        srv.put(
            &format!("/v1/workspaces/{ws}/roles/member"),
            &srv.admin_key,
            json!({"permissions": ["documents:*"]}),
        )
        .await
        .expect(200);
        assert_eq!(
            srv.verify(json!({"key": key, "permissions": ["billing:read"]}))
                .await["code"],
            "INSUFFICIENT_PERMISSIONS"
        );
        assert_eq!(
            srv.verify(json!({"key": key, "permissions": ["documents:doc_42:read"]}))
                .await["code"],
            "VALID"
        );
        let role = srv
            .get(&format!("/v1/workspaces/{ws}/roles/member"), &srv.admin_key)
            .await
            .expect(200);
        assert_eq!(role["permissions"], json!(["documents:*"]));
    })
    .await;
}

#[tokio::test]
async fn removing_a_grant_takes_effect_on_the_next_request() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Grants").await;
        let (user, key) = srv.member_with_key(&ws, "viewer").await;
        assert_eq!(
            srv.verify(json!({"key": key, "permissions": ["reports:export"]}))
                .await["code"],
            "INSUFFICIENT_PERMISSIONS"
        );
        let g = srv
            .post(
                &format!("/v1/workspaces/{ws}/grants"),
                &srv.admin_key,
                json!({"user_id": user, "permission": "reports:export"}),
            )
            .await
            .expect(201);
        assert_eq!(
            srv.verify(json!({"key": key, "permissions": ["reports:export"]}))
                .await["code"],
            "VALID"
        );
        srv.post(
            &format!("/v1/workspaces/{ws}/grants"),
            &srv.admin_key,
            json!({"user_id": user, "permission": "reports:export"}),
        )
        .await
        .problem(409, "conflict");
        let listed = srv
            .get(
                &format!("/v1/workspaces/{ws}/grants?user_id={user}"),
                &srv.admin_key,
            )
            .await
            .expect(200);
        assert_eq!(listed["data"].as_array().unwrap().len(), 1);
        srv.delete(
            &format!("/v1/workspaces/{ws}/grants/{}", g["id"].as_str().unwrap()),
            &srv.admin_key,
        )
        .await
        .expect(204);
        assert_eq!(
            srv.verify(json!({"key": key, "permissions": ["reports:export"]}))
                .await["code"],
            "INSUFFICIENT_PERMISSIONS"
        );
    })
    .await;
}

#[tokio::test]
async fn removing_a_member_takes_effect_on_the_next_request() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Members").await;
        let (user, key) = srv.member_with_key(&ws, "developer").await;
        srv.get("/v1/me", &key).await.expect(200);
        srv.delete(
            &format!("/v1/workspaces/{ws}/members/{user}"),
            &srv.admin_key,
        )
        .await
        .expect(204);
        srv.get("/v1/me", &key)
            .await
            .problem(401, "invalid_credentials");
        assert_eq!(srv.verify(json!({"key": key})).await["code"], "FORBIDDEN");
        srv.delete(
            &format!("/v1/workspaces/{ws}/members/{user}"),
            &srv.admin_key,
        )
        .await
        .problem(404, "not_found");
        // Back in: the key follows the user's standing again.
        srv.set_member(&ws, &user, "member").await;
        srv.get("/v1/me", &key).await.expect(200);
    })
    .await;
}

#[tokio::test]
async fn deactivating_a_user_kills_every_key_at_once() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Deactivate").await;
        let (user, key) = srv.member_with_key(&ws, "developer").await;
        let second = srv
            .post("/v1/keys", &key, json!({"name": "second"}))
            .await
            .expect(201);
        srv.get("/v1/me", &key).await.expect(200);
        srv.delete(&format!("/v1/users/{user}"), &srv.admin_key)
            .await
            .expect(204);
        srv.get("/v1/me", &key)
            .await
            .problem(401, "invalid_credentials");
        srv.get("/v1/me", second["key"].as_str().unwrap())
            .await
            .problem(401, "invalid_credentials");
        assert_eq!(srv.verify(json!({"key": key})).await["code"], "REVOKED");
        let u = srv
            .get(&format!("/v1/users/{user}"), &srv.admin_key)
            .await
            .expect(200);
        assert_eq!(u["active"], false);
        srv.delete(&format!("/v1/users/{user}"), &srv.admin_key)
            .await
            .expect(204);
        srv.delete(&format!("/v1/users/{}", srv.admin_user_id), &srv.admin_key)
            .await
            .problem(409, "conflict");
        // Only instance admins deactivate users.
        let (_, ws_admin) = srv.member_with_key(&ws, "admin").await;
        let (victim, _) = srv.member_with_key(&ws, "member").await;
        srv.delete(&format!("/v1/users/{victim}"), &ws_admin)
            .await
            .problem(403, "insufficient_permissions");
    })
    .await;
}
