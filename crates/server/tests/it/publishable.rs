//! SPEC §5.3 and the allow-lists: publishable keys, origins and IPs.

use crate::harness::each_backend;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn publishable_keys_hold_only_publishable_permissions_and_never_manage() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Shop").await;
        let (owner, _) = srv.member_with_key(&ws, "admin").await;
        let pk = srv
            .key_for(&ws, &owner, json!({"type": "publishable"}))
            .await;
        let pk_key = pk["key"].as_str().unwrap();
        assert!(pk_key.starts_with("pk_live_"));
        // Empty by default: nothing at all.
        assert_eq!(
            srv.verify(json!({"key": pk_key, "permissions": ["products:read"]}))
                .await["code"],
            "INSUFFICIENT_PERMISSIONS"
        );
        srv.patch(
            &format!("/v1/workspaces/{ws}"),
            &srv.admin_key,
            json!({"publishable_permissions": ["products:read"]}),
        )
        .await
        .expect(200);
        assert_eq!(
            srv.verify(json!({"key": pk_key, "permissions": ["products:read"]}))
                .await["code"],
            "VALID"
        );
        assert_eq!(
            srv.verify(json!({"key": pk_key, "permissions": ["products:write"]}))
                .await["code"],
            "INSUFFICIENT_PERMISSIONS"
        );
        let me = srv.get("/v1/me", pk_key).await.expect(200);
        assert_eq!(me["permissions"], json!(["products:read"]));
        assert_eq!(me["credential"]["key_type"], "publishable");
        srv.post("/v1/keys", pk_key, json!({"name": "x"}))
            .await
            .problem(403, "insufficient_permissions");
        srv.patch(
            &format!("/v1/workspaces/{ws}"),
            &srv.admin_key,
            json!({"publishable_permissions": ["latchkey:keys:manage_own"]}),
        )
        .await
        .problem(422, "validation_failed");
    })
    .await;
}

#[tokio::test]
async fn origin_allow_lists_apply_to_publishable_keys() {
    each_backend(|srv| async move {
        let pk = srv
            .post("/v1/keys", &srv.admin_key, json!({"name": "web", "type": "publishable", "allowed_origins": ["https://shop.example.com", "https://*.cdn.example"]}))
            .await
            .expect(201);
        let k = pk["key"].as_str().unwrap();
        let with_origin = |o: &str| srv.request(Method::GET, "/v1/me").bearer_auth(k).header("origin", o);
        srv.send(with_origin("https://shop.example.com")).await.expect(200);
        srv.send(with_origin("https://eu.cdn.example")).await.expect(200);
        srv.send(with_origin("https://evil.example")).await.problem(403, "origin_not_allowed");
        srv.get("/v1/me", k).await.problem(403, "origin_not_allowed");
        assert_eq!(srv.verify(json!({"key": k, "origin": "https://evil.example"})).await["code"], "ORIGIN_NOT_ALLOWED");
        assert_eq!(srv.verify(json!({"key": k, "origin": "https://shop.example.com"})).await["code"], "VALID");
        let r = srv.post("/v1/keys", &srv.admin_key, json!({"name": "x", "allowed_origins": ["https://a.example"]})).await;
        assert_eq!(r.problem(422, "validation_failed")["errors"][0]["field"], "allowed_origins");
    })
    .await;
}

#[tokio::test]
async fn ip_allow_lists() {
    each_backend(|srv| async move {
        let far = srv
            .post(
                "/v1/keys",
                &srv.admin_key,
                json!({"name": "office", "allowed_ips": ["10.0.0.0/8"]}),
            )
            .await
            .expect(201);
        let k = far["key"].as_str().unwrap();
        srv.get("/v1/me", k).await.problem(403, "ip_not_allowed");
        assert_eq!(
            srv.verify(json!({"key": k, "ip": "10.2.3.4"})).await["code"],
            "VALID"
        );
        assert_eq!(
            srv.verify(json!({"key": k, "ip": "192.0.2.1"})).await["code"],
            "IP_NOT_ALLOWED"
        );
        let near = srv
            .post(
                "/v1/keys",
                &srv.admin_key,
                json!({"name": "local", "allowed_ips": ["127.0.0.1"]}),
            )
            .await
            .expect(201);
        srv.get("/v1/me", near["key"].as_str().unwrap())
            .await
            .expect(200);
    })
    .await;
}
