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

/// The JSON body endpoints, each with a body it would accept: (method, path, body).
fn json_endpoints(key_id: &str, ws: &str, user: &str) -> Vec<(Method, String, String)> {
    let p = |m: Method, path: &str, body: &str| (m, path.to_owned(), body.to_owned());
    vec![
        p(Method::POST, "/v1/keys", r#"{"name": "x"}"#),
        p(
            Method::PATCH,
            &format!("/v1/keys/{key_id}"),
            r#"{"name": "y"}"#,
        ),
        p(
            Method::POST,
            &format!("/v1/keys/{key_id}/roll"),
            r#"{"grace_seconds": 0}"#,
        ),
        p(
            Method::POST,
            "/v1/users",
            r#"{"email": "trailing@example.com", "name": "T"}"#,
        ),
        p(Method::POST, "/v1/workspaces", r#"{"name": "W"}"#),
        p(
            Method::PATCH,
            &format!("/v1/workspaces/{ws}"),
            r#"{"require_pair": false}"#,
        ),
        p(
            Method::PUT,
            &format!("/v1/workspaces/{ws}/members/{user}"),
            r#"{"role": "viewer"}"#,
        ),
        p(
            Method::PUT,
            &format!("/v1/workspaces/{ws}/roles/viewer"),
            r#"{"permissions": ["a:read"]}"#,
        ),
        p(
            Method::POST,
            &format!("/v1/workspaces/{ws}/grants"),
            &format!(r#"{{"user_id": "{user}", "permission": "a:read"}}"#),
        ),
        p(Method::POST, "/v1/auth/token", r#"{"ttl_seconds": 60}"#),
        p(Method::POST, "/v1/tokens", r#"{"name": "t"}"#),
        p(Method::POST, "/v1/verify", r#"{"key": "sk_live_x"}"#),
    ]
}

/// Defect 11: a JSON body is one value; anything after it but whitespace is a malformed body,
/// on every endpoint that takes JSON, and nothing changes.
#[tokio::test]
async fn json_with_trailing_garbage_is_a_400_everywhere() {
    each_backend(|srv| async move {
        let key = srv.admin_key.clone();
        let ws = srv.workspace("Trailing").await;
        let user = srv.user("trailing").await;
        let target = srv
            .post("/v1/keys", &key, json!({"name": "target"}))
            .await
            .expect(201);
        let key_id = target["id"].as_str().unwrap();
        let audit_before = srv.get("/v1/audit?limit=500", &key).await.expect(200)["data"]
            .as_array()
            .unwrap()
            .len();
        for (method, path, body) in json_endpoints(key_id, &ws, &user) {
            for junk in [" junk", "{}", ",", "\n]"] {
                let r = srv
                    .send(
                        srv.request(method.clone(), &path)
                            .bearer_auth(&key)
                            .header("content-type", "application/json")
                            .body(format!("{body}{junk}")),
                    )
                    .await;
                assert_eq!(r.status, 400, "{method} {path} with {junk:?}: {}", r.body);
                r.problem(400, "bad_request");
            }
        }
        let audit_after = srv.get("/v1/audit?limit=500", &key).await.expect(200)["data"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(
            audit_after, audit_before,
            "no rejected request changed anything"
        );
        srv.get("/v1/me", target["key"].as_str().unwrap())
            .await
            .expect(200);
        // Trailing whitespace is still fine.
        let r = srv
            .send(
                srv.request(Method::POST, "/v1/keys")
                    .bearer_auth(&key)
                    .header("content-type", "application/json")
                    .body("{\"name\": \"x\"} \n\t"),
            )
            .await;
        r.expect(201);
    })
    .await;
}

/// Defect 16: a body over the limit is a 413 problem+json on every API and OAuth route that
/// reads one (OAuth and roll used to answer axum's plain text, or 400).
#[tokio::test]
async fn oversized_bodies_are_413_problems() {
    each_backend(|srv| async move {
        let key = srv.admin_key.clone();
        let ws = srv.workspace("Big").await;
        let user = srv.user("big").await;
        let target = srv
            .post("/v1/keys", &key, json!({"name": "target"}))
            .await
            .expect(201);
        let key_id = target["id"].as_str().unwrap();
        let before = srv.key_count(&key).await;
        let big = format!("{{\"name\": \"{}\"}}", "a".repeat(3 << 20));
        for (method, path, _) in json_endpoints(key_id, &ws, &user) {
            let r = srv
                .send(
                    srv.request(method.clone(), &path)
                        .bearer_auth(&key)
                        .header("content-type", "application/json")
                        .body(big.clone()),
                )
                .await;
            assert_eq!(r.status, 413, "{method} {path}: {}", r.body);
            r.problem(413, "payload_too_large");
        }
        let form = format!(
            "grant_type=client_credentials&scope={}",
            "a".repeat(3 << 20)
        );
        for path in ["/oauth/token", "/oauth/introspect", "/oauth/revoke"] {
            let r = srv
                .send(
                    srv.request(Method::POST, path)
                        .bearer_auth(&key)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(form.clone()),
                )
                .await;
            assert_eq!(r.status, 413, "{path}: {}", r.body);
            r.problem(413, "payload_too_large");
        }
        assert_eq!(srv.key_count(&key).await, before);
        srv.get("/v1/me", target["key"].as_str().unwrap())
            .await
            .expect(200);
    })
    .await;
}
