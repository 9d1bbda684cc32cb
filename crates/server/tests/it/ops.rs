//! Health, readiness, metrics and the OpenAPI document.

use crate::harness::each_backend;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn health_readiness_and_metrics() {
    each_backend(|srv| async move {
        assert_eq!(srv.call(Method::GET, "/healthz", None, None).await.expect(200), json!({"status": "ok"}));
        assert_eq!(srv.call(Method::GET, "/readyz", None, None).await.expect(200), json!({"status": "ok"}));
        srv.get("/v1/me", &srv.admin_key).await.expect(200);
        srv.verify(json!({"key": "sk_live_nope"})).await;
        // Arbitrary methods must not become metric labels (unbounded cardinality).
        let odd = Method::from_bytes(b"FROBNICATE").unwrap();
        srv.call(odd, "/v1/me", None, None).await;
        let r = srv.send(srv.request(Method::GET, "/metrics")).await;
        assert_eq!(r.status, 200);
        let text = r.body.as_str().unwrap().to_owned();
        assert!(text.contains("latchkey_verifications_total{code=\"VALID\",source=\"auth\"}"), "{text}");
        assert!(text.contains("latchkey_verifications_total{code=\"NOT_FOUND\",source=\"verify\"}"));
        assert!(text.contains("latchkey_http_request_duration_seconds_bucket"));
        assert!(text.contains("route=\"/v1/me\""));
        assert!(text.contains("latchkey_cache_hits_total"));
        // The admin key was just used: the key cache holds at least it.
        let cached_keys: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("latchkey_cache_entries{kind=\"key\"} "))
            .and_then(|v| v.trim().parse().ok())
            .expect("latchkey_cache_entries{kind=\"key\"}");
        assert!(cached_keys >= 1.0, "{text}");
        assert!(!text.contains("FROBNICATE") && text.contains("method=\"other\""));
        assert!(!text.contains(&srv.admin_key[8..]), "no secret in metrics");
    })
    .await;
}

#[tokio::test]
async fn openapi_documents_every_endpoint() {
    let srv = crate::harness::TestServer::start(&crate::harness::Backend::Sqlite).await;
    let doc = srv
        .call(Method::GET, "/openapi.json", None, None)
        .await
        .expect(200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/v1/me", vec!["get"]),
        ("/v1/keys", vec!["get", "post"]),
        ("/v1/keys/{id}", vec!["get", "patch", "delete"]),
        ("/v1/keys/{id}/roll", vec!["post"]),
        ("/v1/keys/import", vec!["post"]),
        ("/v1/keys/{id}/usage", vec!["get"]),
        ("/v1/usage", vec!["get"]),
        ("/v1/users", vec!["get", "post"]),
        ("/v1/users/{id}", vec!["get", "delete"]),
        ("/v1/workspaces", vec!["get", "post"]),
        ("/v1/workspaces/{id}", vec!["get", "patch"]),
        ("/v1/workspaces/{id}/members", vec!["get"]),
        (
            "/v1/workspaces/{id}/members/{user_id}",
            vec!["put", "delete"],
        ),
        ("/v1/workspaces/{id}/roles", vec!["get"]),
        ("/v1/workspaces/{id}/roles/{role}", vec!["get", "put"]),
        ("/v1/workspaces/{id}/grants", vec!["get", "post"]),
        ("/v1/workspaces/{id}/grants/{grant_id}", vec!["delete"]),
        ("/v1/verify", vec!["post"]),
        ("/v1/leaks", vec!["post"]),
        ("/v1/leaks/github", vec!["post"]),
        ("/v1/changes", vec!["get"]),
        ("/v1/auth/token", vec!["post"]),
        ("/v1/tokens", vec!["get", "post"]),
        ("/v1/tokens/{id}", vec!["delete"]),
        ("/v1/tokens/{id}/renew", vec!["post"]),
        ("/v1/portal/sessions", vec!["post"]),
        ("/oauth/token", vec!["post"]),
        ("/oauth/introspect", vec!["post"]),
        ("/oauth/revoke", vec!["post"]),
        ("/.well-known/jwks.json", vec!["get"]),
        ("/.well-known/oauth-authorization-server", vec!["get"]),
        ("/v1/webhooks", vec!["get", "post"]),
        ("/v1/webhooks/{id}", vec!["get", "patch", "delete"]),
        ("/v1/webhooks/{id}/rotate-secret", vec!["post"]),
        ("/v1/webhooks/{id}/deliveries", vec!["get"]),
        (
            "/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver",
            vec!["post"],
        ),
        ("/v1/audit", vec!["get"]),
        ("/healthz", vec!["get"]),
        ("/readyz", vec!["get"]),
        ("/metrics", vec!["get"]),
        ("/openapi.json", vec!["get"]),
    ];
    assert_eq!(
        paths.len(),
        expected.len(),
        "documented: {:?}",
        paths.keys().collect::<Vec<_>>()
    );
    for (path, methods) in expected {
        let item = paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is documented"));
        for m in methods {
            let op = &item[m];
            assert!(op.is_object(), "{m} {path} is documented");
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{m} {path} has responses"
            );
        }
    }
    // Every endpoint must actually exist: an undocumented method is refused by the router.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for s in [
        "Problem",
        "KeyView",
        "CreatedKey",
        "CreateKeyRequest",
        "VerifyResponse",
        "Me",
    ] {
        assert!(schemas.contains_key(s), "schema {s}");
    }
    srv.stop().await;
}
