//! SPEC §6.4: `POST /v1/verify` answers 200 with a precise code once the caller is authorised.

use crate::harness::each_backend;
use serde_json::json;

#[tokio::test]
async fn verify_reports_every_code() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Verify").await;
        let (user, key) = srv.member_with_key(&ws, "developer").await;
        let ok = srv
            .verify(json!({"key": key, "permissions": ["documents:read"], "environment": "live"}))
            .await;
        assert_eq!(ok["valid"], true);
        assert_eq!(ok["code"], "VALID");
        assert_eq!(ok["owner_id"], user.as_str());
        assert_eq!(ok["workspace_id"], ws.as_str());
        assert_eq!(ok["key_type"], "secret");
        assert!(ok["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("latchkey:keys:manage_own")));
        let same = srv.verify(json!({"credential": key})).await;
        assert_eq!(same["code"], "VALID");

        assert_eq!(
            srv.verify(json!({"key": key, "environment": "test"})).await["code"],
            "ENVIRONMENT_MISMATCH"
        );
        assert_eq!(
            srv.verify(json!({"key": key, "permissions": ["latchkey:members:manage"]}))
                .await["code"],
            "INSUFFICIENT_PERMISSIONS"
        );
        let nf = srv.verify(json!({"key": "sk_live_not_a_real_key"})).await;
        assert_eq!(nf["code"], "NOT_FOUND");
        assert_eq!(nf["valid"], false);
        let unknown = latchkey_core::ApiKey::generate(
            latchkey_core::KeyType::Secret,
            latchkey_core::Environment::Test,
        );
        assert_eq!(
            srv.verify(json!({"key": unknown.secret().expose()})).await["code"],
            "NOT_FOUND"
        );

        srv.patch(
            &format!("/v1/workspaces/{ws}"),
            &srv.admin_key,
            json!({"require_pair": true}),
        )
        .await
        .expect(200);
        assert_eq!(
            srv.verify(json!({"key": key})).await["code"],
            "PAIR_REQUIRED"
        );
        srv.get("/v1/me", &key)
            .await
            .problem(401, "invalid_credentials");
        srv.patch(
            &format!("/v1/workspaces/{ws}"),
            &srv.admin_key,
            json!({"require_pair": false}),
        )
        .await
        .expect(200);
        assert_eq!(srv.verify(json!({"key": key})).await["code"], "VALID");

        srv.post("/v1/verify", &srv.admin_key, json!({}))
            .await
            .problem(422, "validation_failed");
        srv.post(
            "/v1/verify",
            &srv.admin_key,
            json!({"key": key, "credential": key}),
        )
        .await
        .problem(422, "validation_failed");
        srv.post(
            "/v1/verify",
            &srv.admin_key,
            json!({"key": key, "ip": "nope"}),
        )
        .await
        .problem(422, "validation_failed");
        // Verifying needs latchkey:verify.
        srv.post("/v1/verify", &key, json!({"key": key}))
            .await
            .problem(403, "insufficient_permissions");
    })
    .await;
}
