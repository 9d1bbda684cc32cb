//! Another tenant's objects are 404, and lists never show them.

use crate::harness::each_backend;
use serde_json::json;

#[tokio::test]
async fn another_workspace_is_invisible() {
    each_backend(|srv| async move {
        let a = srv.workspace("Tenant A").await;
        let b = srv.workspace("Tenant B").await;
        let (_, a_admin) = srv.member_with_key(&a, "admin").await;
        let (b_user, b_admin) = srv.member_with_key(&b, "admin").await;
        let b_key = srv
            .post("/v1/keys", &b_admin, json!({"name": "b's key"}))
            .await
            .expect(201);
        let b_key_id = b_key["id"].as_str().unwrap();

        srv.get(&format!("/v1/workspaces/{b}"), &a_admin)
            .await
            .problem(404, "not_found");
        srv.get(&format!("/v1/workspaces/{b}/members"), &a_admin)
            .await
            .problem(404, "not_found");
        srv.patch(
            &format!("/v1/workspaces/{b}"),
            &a_admin,
            json!({"name": "mine"}),
        )
        .await
        .problem(404, "not_found");
        srv.put(
            &format!("/v1/workspaces/{b}/members/{b_user}"),
            &a_admin,
            json!({"role": "viewer"}),
        )
        .await
        .problem(404, "not_found");
        srv.get(&format!("/v1/keys/{b_key_id}"), &a_admin)
            .await
            .problem(404, "not_found");
        srv.patch(
            &format!("/v1/keys/{b_key_id}"),
            &a_admin,
            json!({"name": "x"}),
        )
        .await
        .problem(404, "not_found");
        srv.delete(&format!("/v1/keys/{b_key_id}"), &a_admin)
            .await
            .problem(404, "not_found");
        srv.post(&format!("/v1/keys/{b_key_id}/roll"), &a_admin, json!({}))
            .await
            .problem(404, "not_found");
        srv.get(&format!("/v1/users/{b_user}"), &a_admin)
            .await
            .problem(404, "not_found");
        srv.post(
            "/v1/keys",
            &a_admin,
            json!({"name": "x", "workspace_id": b}),
        )
        .await
        .problem(404, "not_found");

        let listed = srv
            .get(&format!("/v1/keys?workspace_id={b}"), &a_admin)
            .await;
        listed.problem(404, "not_found");
        let keys = srv.get("/v1/keys?limit=500", &a_admin).await.expect(200);
        assert!(keys["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["workspace_id"] == a.as_str()));
        let workspaces = srv.get("/v1/workspaces", &a_admin).await.expect(200);
        let ids: Vec<_> = workspaces["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [a.as_str()]);
        let users = srv.get("/v1/users?limit=500", &a_admin).await.expect(200);
        assert!(users["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["id"] != b_user.as_str()));
        let audit = srv.get("/v1/audit?limit=500", &a_admin).await.expect(200);
        assert!(audit["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["workspace_id"] == a.as_str()));
        // A's verifier cannot probe B's keys: they do not exist for it.
        let v = srv
            .post("/v1/verify", &a_admin, json!({"key": b_key["key"]}))
            .await
            .expect(200);
        assert_eq!(v["code"], "NOT_FOUND");
        assert!(v["workspace_id"].is_null());
        // B's key still works.
        srv.get("/v1/me", b_key["key"].as_str().unwrap())
            .await
            .expect(200);
    })
    .await;
}

#[tokio::test]
async fn another_users_key_is_invisible_without_manage_all() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Shared").await;
        let (_, dev1) = srv.member_with_key(&ws, "developer").await;
        let (dev2_id, dev2) = srv.member_with_key(&ws, "developer").await;
        let k2 = srv
            .post("/v1/keys", &dev2, json!({"name": "dev2's"}))
            .await
            .expect(201);
        let id = k2["id"].as_str().unwrap();
        srv.get(&format!("/v1/keys/{id}"), &dev1)
            .await
            .problem(404, "not_found");
        srv.delete(&format!("/v1/keys/{id}"), &dev1)
            .await
            .problem(404, "not_found");
        let list = srv.get("/v1/keys?limit=500", &dev1).await.expect(200);
        assert!(list["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["owner_id"] != dev2_id.as_str()));
        let filtered = srv
            .get(&format!("/v1/keys?owner_id={dev2_id}"), &dev1)
            .await
            .expect(200);
        assert_eq!(filtered["data"], json!([]));
        // The workspace admin sees and can revoke it.
        let (_, admin) = srv.member_with_key(&ws, "admin").await;
        srv.get(&format!("/v1/keys/{id}"), &admin).await.expect(200);
        srv.delete(&format!("/v1/keys/{id}"), &admin)
            .await
            .expect(204);
        // A workspace admin cannot mint a key for the instance admin (whose keys span every workspace).
        srv.post(
            "/v1/keys",
            &admin,
            json!({"name": "x", "owner_id": srv.admin_user_id}),
        )
        .await
        .problem(422, "validation_failed");
        // Nor see, roll or revoke the instance admin's keys, though they live in this workspace.
        let boot = srv.get("/v1/me", &srv.admin_key).await.expect(200);
        let boot_id = boot["credential"]["id"].as_str().unwrap();
        let default_ws = boot["workspace"]["id"].as_str().unwrap();
        let (_, default_admin) = srv.member_with_key(default_ws, "admin").await;
        srv.get(&format!("/v1/keys/{boot_id}"), &default_admin)
            .await
            .problem(404, "not_found");
        srv.post(
            &format!("/v1/keys/{boot_id}/roll"),
            &default_admin,
            json!({"grace_seconds": 604800}),
        )
        .await
        .problem(404, "not_found");
        srv.delete(&format!("/v1/keys/{boot_id}"), &default_admin)
            .await
            .problem(404, "not_found");
        let listed = srv
            .get("/v1/keys?limit=500", &default_admin)
            .await
            .expect(200);
        assert!(listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["id"] != boot_id));
    })
    .await;
}

#[tokio::test]
async fn a_workspace_never_loses_its_last_admin() {
    each_backend(|srv| async move {
        let ws = srv.workspace("One admin").await;
        let root = srv.admin_user_id.clone();
        // The creator (the instance admin) is its only admin.
        let me = format!("/v1/workspaces/{ws}/members/{root}");
        srv.delete(&me, &srv.admin_key)
            .await
            .problem(409, "conflict");
        srv.put(&me, &srv.admin_key, json!({"role": "developer"}))
            .await
            .problem(409, "conflict");
        let (a, a_key) = srv.member_with_key(&ws, "admin").await;
        srv.delete(&me, &srv.admin_key).await.expect(204);
        // Now `a` is the last one: it cannot step down, leave, or be deactivated.
        let a_path = format!("/v1/workspaces/{ws}/members/{a}");
        srv.put(&a_path, &a_key, json!({"role": "viewer"}))
            .await
            .problem(409, "conflict");
        srv.delete(&a_path, &a_key).await.problem(409, "conflict");
        srv.delete(&format!("/v1/users/{a}"), &srv.admin_key)
            .await
            .problem(409, "conflict");
        srv.get("/v1/me", &a_key).await.expect(200);
        // Re-setting the same role is not a change.
        srv.put(&a_path, &a_key, json!({"role": "admin"}))
            .await
            .expect(200);

        // Two admins demoted at the same time: exactly one goes.
        let (b, _) = srv.member_with_key(&ws, "admin").await;
        for _ in 0..3 {
            let demote = |u: String| {
                let path = format!("/v1/workspaces/{ws}/members/{u}");
                let srv = &srv;
                async move {
                    srv.put(&path, &srv.admin_key, json!({"role": "member"}))
                        .await
                }
            };
            let (ra, rb) = futures::join!(demote(a.clone()), demote(b.clone()));
            let mut codes = [ra.status.as_u16(), rb.status.as_u16()];
            codes.sort();
            assert_eq!(codes, [200, 409]);
            let admins = srv
                .get(&format!("/v1/workspaces/{ws}/members"), &srv.admin_key)
                .await
                .expect(200)["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["role"] == "admin")
                .count();
            assert_eq!(admins, 1);
            srv.set_member(&ws, &a, "admin").await;
            srv.set_member(&ws, &b, "admin").await;
        }
    })
    .await;
}

#[tokio::test]
async fn an_instance_admin_removed_from_a_workspace_loses_its_keys_there() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Left behind").await;
        let root = srv.admin_user_id.clone();
        let k = srv.key_for(&ws, &root, json!({})).await;
        let key = k["key"].as_str().unwrap();
        srv.get("/v1/me", key).await.expect(200);
        srv.member_with_key(&ws, "admin").await;
        srv.delete(
            &format!("/v1/workspaces/{ws}/members/{root}"),
            &srv.admin_key,
        )
        .await
        .expect(204);
        srv.get("/v1/me", key)
            .await
            .problem(401, "invalid_credentials");
        // No new key can be made for it there either, and its keys elsewhere still work.
        srv.post(
            "/v1/keys",
            &srv.admin_key,
            json!({"name": "stray", "workspace_id": ws}),
        )
        .await
        .problem(422, "validation_failed");
        srv.get("/v1/me", &srv.admin_key).await.expect(200);
        // Back as a member, the key works again (keys follow standing, like everyone's).
        srv.set_member(&ws, &root, "viewer").await;
        srv.get("/v1/me", key).await.expect(200);
    })
    .await;
}

/// The accepted risk of docs/security.md ("An email's existence across tenants"), bounded: a
/// workspace admin who creates a user with another tenant's email learns that the address is
/// taken, and nothing else about that person.
#[tokio::test]
async fn a_taken_email_from_another_tenant_reveals_nothing_but_that() {
    each_backend(|srv| async move {
        let a = srv.workspace("A").await;
        let b = srv.workspace("B").await;
        let (_, a_admin) = srv.member_with_key(&a, "admin").await;
        let email = format!("elsewhere-{}@example.com", crate::harness::random_suffix());
        let theirs = srv
            .post(
                "/v1/users",
                &srv.admin_key,
                json!({"email": email, "name": "Secret Name"}),
            )
            .await
            .expect(201);
        let theirs = theirs["id"].as_str().unwrap();
        srv.set_member(&b, theirs, "developer").await;

        let body = srv
            .post(
                "/v1/users",
                &a_admin,
                json!({"email": email, "name": "Mine"}),
            )
            .await
            .problem(409, "conflict");
        let text = body.to_string();
        for secret in [theirs, "Secret Name", b.as_str()] {
            assert!(!text.contains(secret), "{text} names {secret}");
        }
        srv.get(&format!("/v1/users/{theirs}"), &a_admin)
            .await
            .problem(404, "not_found");
    })
    .await;
}
