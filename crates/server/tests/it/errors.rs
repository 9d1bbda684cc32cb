//! SPEC §3: every error is problem+json with the right status and code, and changes nothing.

use crate::harness::each_backend;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn malformed_requests_are_clear_4xx_problems_and_change_nothing() {
    each_backend(|srv| async move {
        let key = srv.admin_key.clone();
        let before = srv.key_count(&key).await;

        let r = srv.send(srv.request(Method::POST, "/v1/keys").bearer_auth(&key).header("content-type", "application/json").body("{\"name\": ")).await;
        r.problem(400, "bad_request");
        let r = srv.send(srv.request(Method::POST, "/v1/keys").bearer_auth(&key).header("content-type", "text/plain").body("name=x")).await;
        r.problem(415, "unsupported_media_type");
        let r = srv.post("/v1/keys", &key, json!({"name": "x", "colour": "red"})).await;
        let body = r.problem(422, "validation_failed");
        assert_eq!(body["errors"][0]["field"], "colour");
        let r = srv.post("/v1/keys", &key, json!({"name": "x".repeat(101), "permissions": ["ok:read", "not valid"], "allowed_ips": ["300.1.1.1"]})).await;
        let body = r.problem(422, "validation_failed");
        let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["name", "permissions[1]", "allowed_ips[0]"]);
        let r = srv.post("/v1/keys", &key, json!({"name": "x", "environment": "prod"})).await;
        assert_eq!(r.problem(422, "validation_failed")["errors"][0]["field"], "environment");
        let r = srv.post("/v1/keys", &key, json!({"name": "x", "expires_at": "2001-01-01T00:00:00Z"})).await;
        assert_eq!(r.problem(422, "validation_failed")["errors"][0]["field"], "expires_at");
        let r = srv.post("/v1/keys", &key, json!({"name": "x", "expires_at": "tomorrow"})).await;
        assert_eq!(r.problem(422, "validation_failed")["errors"][0]["field"], "expires_at");

        assert_eq!(srv.key_count(&key).await, before, "no rejected request created a key");

        srv.get("/v1/keys?limit=501", &key).await.problem(422, "validation_failed");
        srv.get("/v1/keys?limit=zero", &key).await.problem(400, "bad_request");
        srv.get("/v1/keys?cursor=nonsense", &key).await.problem(422, "validation_failed");
        srv.get("/v1/keys/key_doesnotexist0000000", &key).await.problem(404, "not_found");
        srv.get("/v1/keys/not-an-id", &key).await.problem(404, "not_found");
        srv.get("/v1/nothing-here", &key).await.problem(404, "not_found");
        srv.call(Method::PUT, "/v1/keys", Some(&key), None).await.problem(405, "method_not_allowed");

        let email = format!("dup-{}@example.com", crate::harness::random_suffix());
        srv.post("/v1/users", &key, json!({"email": email, "name": "A"})).await.expect(201);
        let body = srv.post("/v1/users", &key, json!({"email": email.to_uppercase(), "name": "B"})).await.problem(409, "conflict");
        assert!(body["detail"].as_str().unwrap().contains("email"));
        srv.post("/v1/users", &key, json!({"email": "not-an-email", "name": "B"})).await.problem(422, "validation_failed");
        srv.post("/v1/users", &key, json!({"email": "short@example.com", "name": "B", "password": "short"})).await.problem(422, "validation_failed");
    })
    .await;
}
