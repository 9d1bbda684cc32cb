//! SPEC §4: every way of presenting a credential, and every way of presenting one wrongly.

use crate::harness::each_backend;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn each_credential_style_authenticates() {
    each_backend(|srv| async move {
        let key = srv.admin_key.clone();
        let basic = base64_user(&key);
        for (name, value) in [
            ("authorization", format!("Bearer {key}")),
            ("authorization", format!("bearer {key}")),
            ("authorization", key.clone()),
            ("authorization", format!("Basic {basic}")),
            ("X-API-Key", key.clone()),
            ("x-api-key", key.clone()),
        ] {
            let r = srv
                .send(srv.request(Method::GET, "/v1/me").header(name, &value))
                .await;
            let body = r.expect(200);
            assert_eq!(body["credential"]["type"], "api_key", "{name}");
            assert_eq!(body["user"]["id"], srv.admin_user_id.as_str());
        }
        // The same key in both headers is one credential, not two.
        let r = srv
            .send(
                srv.request(Method::GET, "/v1/me")
                    .bearer_auth(&key)
                    .header("x-api-key", &key),
            )
            .await;
        r.expect(200);
    })
    .await;
}

fn base64_user(key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
}

#[tokio::test]
async fn missing_and_bad_credentials_are_401_per_rfc6750() {
    each_backend(|srv| async move {
        let r = srv.call(Method::GET, "/v1/me", None, None).await;
        assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"latchkey\"");
        let body = r.problem(401, "invalid_credentials");
        assert_eq!(body["detail"], "Invalid or missing API key");

        let mut typo = srv.admin_key.clone();
        let last = typo.pop().unwrap();
        typo.push(if last == 'a' { 'b' } else { 'a' });
        let unknown = latchkey_core::ApiKey::generate(
            latchkey_core::KeyType::Secret,
            latchkey_core::Environment::Live,
        );
        for bad in ["garbage", typo.as_str(), unknown.secret().expose()] {
            let r = srv.get("/v1/me", bad).await;
            assert_eq!(
                r.headers["www-authenticate"],
                "Bearer realm=\"latchkey\", error=\"invalid_token\""
            );
            let body = r.problem(401, "invalid_credentials");
            assert_eq!(body["detail"], "Invalid or missing API key");
        }
    })
    .await;
}

#[tokio::test]
async fn credentials_in_the_query_string_are_refused() {
    each_backend(|srv| async move {
        for q in [
            format!("api_key={}", srv.admin_key),
            format!("access_token={}", srv.admin_key),
            format!("x={}", srv.admin_key),
        ] {
            // Refused even when a valid header is present too: the URL has already leaked it.
            let r = srv.get(&format!("/v1/me?{q}"), &srv.admin_key).await;
            r.problem(400, "credentials_in_query");
        }
        srv.get("/v1/keys?limit=5", &srv.admin_key)
            .await
            .expect(200);
    })
    .await;
}

#[tokio::test]
async fn two_different_credentials_are_ambiguous() {
    each_backend(|srv| async move {
        let other = srv
            .post("/v1/keys", &srv.admin_key, json!({"name": "second"}))
            .await
            .expect(201);
        let other = other["key"].as_str().unwrap();
        let r = srv
            .send(
                srv.request(Method::GET, "/v1/me")
                    .bearer_auth(&srv.admin_key)
                    .header("x-api-key", other),
            )
            .await;
        r.problem(400, "ambiguous_credentials");
    })
    .await;
}
