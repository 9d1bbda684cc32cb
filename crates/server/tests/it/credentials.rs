//! SPEC §4: every way of presenting a credential, and every way of presenting one wrongly.

use crate::harness::{each_backend, each_backend_with, TestServer};
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

/// A request as if a proxy in front had forwarded it for `client`.
fn from(srv: &TestServer, method: Method, path: &str, client: &str) -> reqwest::RequestBuilder {
    srv.request(method, path).header("x-forwarded-for", client)
}

fn unknown_key() -> String {
    latchkey_core::ApiKey::generate(
        latchkey_core::KeyType::Secret,
        latchkey_core::Environment::Live,
    )
    .secret()
    .expose()
    .to_owned()
}

/// Defect 12: failed credentials are throttled per client address. Once an address has used
/// up its failures it gets 429 for any credential (as Stripe and GitHub do), until it may
/// try again; every other address, and every request that presents no credential or is a
/// verification of someone else's key, is unaffected.
#[tokio::test]
async fn failed_credentials_are_throttled_per_client_address() {
    let configure = |c: &mut latchkey_server::Config| {
        c.throttle.credential_failures = 5;
        c.throttle.credential_window = std::time::Duration::from_secs(3600);
    };
    each_backend_with(configure, |srv| async move {
        let a = "198.51.100.1";
        for _ in 0..5 {
            let r = srv
                .send(from(&srv, Method::GET, "/v1/me", a).bearer_auth(unknown_key()))
                .await;
            r.problem(401, "invalid_credentials");
        }
        let r = srv
            .send(from(&srv, Method::GET, "/v1/me", a).bearer_auth(unknown_key()))
            .await;
        let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=3600).contains(&retry), "{retry}");
        let body = r.problem(429, "rate_limited");
        assert!(!body.to_string().contains("sk_live_"), "{body}");
        // The address is blocked, whatever it presents.
        let r = srv
            .send(from(&srv, Method::GET, "/v1/me", a).bearer_auth(&srv.admin_key))
            .await;
        r.problem(429, "rate_limited");
        let r = srv
            .send(from(&srv, Method::GET, "/v1/me", a).header("x-api-key", unknown_key()))
            .await;
        r.problem(429, "rate_limited");

        // Another address is untouched: its valid keys work, its failures are its own.
        let b = "198.51.100.2";
        srv.send(from(&srv, Method::GET, "/v1/me", b).bearer_auth(&srv.admin_key))
            .await
            .expect(200);
        srv.send(from(&srv, Method::GET, "/v1/me", b).bearer_auth(unknown_key()))
            .await
            .problem(401, "invalid_credentials");
        // Without a proxy header the peer (loopback) is the client, a third address.
        srv.get("/v1/me", &srv.admin_key).await.expect(200);

        // No credential at all is not a guess.
        let c = "198.51.100.3";
        for _ in 0..10 {
            srv.send(from(&srv, Method::GET, "/v1/me", c))
                .await
                .problem(401, "invalid_credentials");
        }
        srv.send(from(&srv, Method::GET, "/v1/me", c).bearer_auth(&srv.admin_key))
            .await
            .expect(200);

        // A verifier checking its customers' keys is not guessing either.
        let d = "198.51.100.4";
        for _ in 0..10 {
            let r = srv
                .send(
                    from(&srv, Method::POST, "/v1/verify", d)
                        .bearer_auth(&srv.admin_key)
                        .json(&json!({"key": unknown_key()})),
                )
                .await
                .expect(200);
            assert_eq!(r["code"], "NOT_FOUND");
        }
        srv.send(from(&srv, Method::GET, "/v1/me", d).bearer_auth(&srv.admin_key))
            .await
            .expect(200);

        // The exchanges count too: a key in the body of /v1/auth/token, and OAuth clients.
        let e = "198.51.100.5";
        for _ in 0..5 {
            srv.send(
                from(&srv, Method::POST, "/v1/auth/token", e)
                    .json(&json!({"api_key": unknown_key()})),
            )
            .await
            .problem(401, "invalid_credentials");
        }
        srv.send(
            from(&srv, Method::POST, "/v1/auth/token", e).json(&json!({"api_key": unknown_key()})),
        )
        .await
        .problem(429, "rate_limited");
        let f = "198.51.100.6";
        for _ in 0..5 {
            let r = srv
                .send(
                    from(&srv, Method::POST, "/oauth/token", f)
                        .basic_auth("key_x", Some(unknown_key()))
                        .form(&[("grant_type", "client_credentials")]),
                )
                .await;
            assert_eq!(r.body["error"], "invalid_client");
        }
        let r = srv
            .send(
                from(&srv, Method::POST, "/oauth/token", f)
                    .basic_auth("key_x", Some(unknown_key()))
                    .form(&[("grant_type", "client_credentials")]),
            )
            .await;
        assert!(r.headers.contains_key("retry-after"));
        r.problem(429, "rate_limited");
    })
    .await;
}

/// Defect 6: the client address is the peer, or, when the peer is a trusted proxy, the
/// right-most address in X-Forwarded-For that is not a trusted proxy. The same address is
/// audited and checked against allow-lists.
#[tokio::test]
async fn the_client_address_comes_from_trusted_proxies_only() {
    let configure = |c: &mut latchkey_server::Config| {
        c.proxy_trusted = vec![
            "127.0.0.0/8".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ];
    };
    each_backend_with(configure, |srv| async move {
        let key = srv.admin_key.clone();
        let client = "203.0.113.9";
        let limited = srv
            .post(
                "/v1/keys",
                &key,
                json!({"name": "ip-bound", "allowed_ips": [client]}),
            )
            .await
            .expect(201);
        let limited = limited["key"].as_str().unwrap().to_owned();
        let me = |xff: Option<&'static str>| {
            let mut rb = srv.request(Method::GET, "/v1/me").bearer_auth(&limited);
            if let Some(x) = xff {
                rb = rb.header("x-forwarded-for", x);
            }
            srv.send(rb)
        };
        me(Some("203.0.113.9")).await.expect(200);
        // Through two trusted proxies.
        me(Some("203.0.113.9, 10.1.2.3")).await.expect(200);
        // A client cannot put itself on the list: the right-most untrusted entry is the client.
        me(Some("203.0.113.9, 198.51.100.77"))
            .await
            .problem(403, "ip_not_allowed");
        me(Some("198.51.100.77"))
            .await
            .problem(403, "ip_not_allowed");
        me(None).await.problem(403, "ip_not_allowed");

        // The audit log records the same address.
        let r = srv
            .send(
                srv.request(Method::POST, "/v1/keys")
                    .bearer_auth(&key)
                    .header("x-forwarded-for", "192.0.2.1, 203.0.113.10, 10.0.0.1")
                    .json(&json!({"name": "audited"})),
            )
            .await
            .expect(201);
        let audit = srv
            .get("/v1/audit?action=key.created&limit=500", &key)
            .await
            .expect(200);
        let event = audit["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["target"]["id"] == r["id"])
            .unwrap()
            .clone();
        assert_eq!(event["ip"], "203.0.113.10", "{event}");
    })
    .await;
}

/// With no trusted proxy, X-Forwarded-For is the client's own say and is ignored.
#[tokio::test]
async fn without_trusted_proxies_forwarded_for_is_ignored() {
    each_backend_with(
        |c| c.proxy_trusted = vec![],
        |srv| async move {
            let limited = srv
                .post(
                    "/v1/keys",
                    &srv.admin_key,
                    json!({"name": "ip-bound", "allowed_ips": ["203.0.113.9"]}),
                )
                .await
                .expect(201);
            let r = srv
                .send(
                    srv.request(Method::GET, "/v1/me")
                        .bearer_auth(limited["key"].as_str().unwrap())
                        .header("x-forwarded-for", "203.0.113.9"),
                )
                .await;
            r.problem(403, "ip_not_allowed");
        },
    )
    .await;
}
