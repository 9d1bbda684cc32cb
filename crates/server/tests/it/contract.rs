//! The OpenAPI document as a contract: it declares the constraints the server enforces (so a
//! change to either is seen in review), and the server answers what it declares. The requests
//! below are ones schemathesis (tests/schemathesis/run.sh) found answered otherwise.

use crate::harness::{each_backend, Backend, TestServer};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Follows `$ref`s and the `oneOf: [null, …]` of an optional field to the schema that constrains it.
fn resolve<'a>(doc: &'a Value, mut s: &'a Value) -> &'a Value {
    loop {
        if let Some(r) = s["$ref"].as_str() {
            s = doc
                .pointer(r.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("dangling {r}"));
        } else if let Some(items) = s["oneOf"].as_array() {
            let not_null: Vec<_> = items.iter().filter(|i| i["type"] != "null").collect();
            assert_eq!(not_null.len(), 1, "{s}");
            s = not_null[0];
        } else {
            return s;
        }
    }
}

fn field<'a>(doc: &'a Value, schema: &str, name: &str) -> &'a Value {
    let s = &doc["components"]["schemas"][schema];
    resolve(doc, &s["properties"][name])
}

fn param<'a>(doc: &'a Value, path: &str, method: &str, name: &str) -> &'a Value {
    let params = doc["paths"][path][method]["parameters"]
        .as_array()
        .unwrap_or_else(|| panic!("{method} {path} has parameters"));
    let p = params
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{method} {path} has {name}"));
    resolve(doc, &p["schema"])
}

fn statuses(doc: &Value, path: &str, method: &str) -> BTreeSet<String> {
    doc["paths"][path][method]["responses"]
        .as_object()
        .unwrap_or_else(|| panic!("{method} {path}"))
        .keys()
        .cloned()
        .collect()
}

fn set(codes: &[&str]) -> BTreeSet<String> {
    codes.iter().map(|c| c.to_string()).collect()
}

#[track_caller]
fn matches(schema: &Value, value: &str) -> bool {
    let pattern = schema["pattern"].as_str().expect("a pattern");
    regex::Regex::new(pattern).unwrap().is_match(value)
}

#[tokio::test]
async fn openapi_declares_the_constraints_of_important_fields() {
    let srv = TestServer::start(&Backend::Sqlite).await;
    let doc = srv
        .call(Method::GET, "/openapi.json", None, None)
        .await
        .expect(200);
    let created = srv
        .post("/v1/keys", &srv.admin_key, json!({"name": "contract"}))
        .await
        .expect(201);

    // Names: 1-100 characters, not blank, no control characters.
    for (schema, name) in [
        ("CreateKeyRequest", "name"),
        ("UpdateKeyRequest", "name"),
        ("CreateUserRequest", "name"),
        ("UpdateUserRequest", "name"),
        ("CreateWorkspaceRequest", "name"),
        ("CreateTokenRequest", "name"),
    ] {
        let s = field(&doc, schema, name);
        assert_eq!(
            (s["minLength"].as_u64(), s["maxLength"].as_u64()),
            (Some(1), Some(100)),
            "{schema}.{name}"
        );
        assert!(matches(s, "Production server") && !matches(s, "   ") && !matches(s, "tab\there"));
    }

    // Ids carry their prefix and the 20 base62 characters of the real format.
    let key_id = created["id"].as_str().unwrap();
    for (path, method, name, prefix) in [
        ("/v1/keys/{id}", "get", "id", "key_"),
        ("/v1/keys/{id}/roll", "post", "id", "key_"),
        ("/v1/users/{id}", "delete", "id", "usr_"),
        ("/v1/users/{id}", "patch", "id", "usr_"),
        ("/v1/workspaces/{id}", "get", "id", "ws_"),
        (
            "/v1/workspaces/{id}/members/{user_id}",
            "put",
            "user_id",
            "usr_",
        ),
        (
            "/v1/workspaces/{id}/grants/{grant_id}",
            "delete",
            "grant_id",
            "grt_",
        ),
        ("/v1/tokens/{id}/renew", "post", "id", "tok_"),
        ("/v1/audit", "get", "cursor", "evt_"),
        ("/v1/keys", "get", "owner_id", "usr_"),
    ] {
        let s = param(&doc, path, method, name);
        let example = format!("{prefix}{}", &key_id[4..]);
        assert!(matches(s, &example), "{method} {path} {name}: {s}");
        assert!(
            !matches(s, &example[..example.len() - 1]) && !matches(s, "0"),
            "{path} {name}"
        );
    }
    assert!(matches(field(&doc, "KeyView", "id"), key_id));
    assert!(matches(
        field(&doc, "CreateKeyRequest", "owner_id"),
        created["owner_id"].as_str().unwrap()
    ));
    assert!(matches(
        field(&doc, "CreateKeyRequest", "workspace_id"),
        created["workspace_id"].as_str().unwrap()
    ));
    let shown_once = &doc["components"]["schemas"]["CreatedKey"]["allOf"][1]["properties"]["key"];
    assert!(matches(shown_once, created["key"].as_str().unwrap()));

    // Permissions: pattern, length, and lists of at most 100.
    let perms = field(&doc, "CreateKeyRequest", "permissions");
    assert_eq!(perms["maxItems"], 100);
    let perm = resolve(&doc, &perms["items"]);
    assert_eq!(perm["maxLength"], 200);
    for ok in [
        "documents:read",
        "document:doc_42:write",
        "*",
        "latchkey:keys:manage_own",
    ] {
        assert!(matches(perm, ok), "{ok}");
    }
    for bad in ["", "a b", "a::b", &["a"; 9].join(":")] {
        assert!(!matches(perm, bad), "{bad}");
    }
    assert_eq!(field(&doc, "PutRoleRequest", "permissions"), perms);
    assert_eq!(field(&doc, "CreateGrantRequest", "permission"), perm);

    // Enums.
    let values = |s: &Value| -> Vec<String> {
        s["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("an enum: {s}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        values(field(&doc, "CreateKeyRequest", "environment")),
        ["test", "live"]
    );
    assert_eq!(
        values(field(&doc, "CreateKeyRequest", "type")),
        ["secret", "publishable"]
    );
    assert_eq!(
        values(field(&doc, "KeyView", "status")),
        ["active", "expired", "revoked", "disabled"]
    );
    assert_eq!(
        values(param(&doc, "/v1/keys", "get", "status")),
        ["active", "expired", "revoked", "disabled"]
    );
    assert_eq!(
        values(field(&doc, "TokenView", "status")),
        ["active", "expired", "revoked"]
    );
    let codes = values(field(&doc, "VerifyResponse", "code"));
    assert!(
        codes.len() == 14
            && codes.contains(&"VALID".into())
            && codes.contains(&"PAIR_MISMATCH".into())
            && codes.contains(&"RATE_LIMITED".into())
            && codes.contains(&"USAGE_EXCEEDED".into()),
        "{codes:?}"
    );
    for (schema, name) in [
        ("CreateUserRequest", "instance_role"),
        ("UpdateUserRequest", "instance_role"),
        ("UserView", "instance_role"),
        ("MeUser", "instance_role"),
    ] {
        assert_eq!(
            values(field(&doc, schema, name)),
            ["admin", "verifier"],
            "{schema}.{name}"
        );
        let nullable = &doc["components"]["schemas"][schema]["properties"][name]["oneOf"];
        assert!(
            nullable
                .as_array()
                .is_some_and(|o| o.iter().any(|s| s["type"] == "null")),
            "{schema}.{name} takes null: {nullable}"
        );
    }
    let role = field(&doc, "PutMemberRequest", "role");
    assert!(matches(role, "developer") && !matches(role, "Admin"));

    // Numbers and formats.
    let limit = param(&doc, "/v1/keys", "get", "limit");
    assert_eq!(
        (&limit["minimum"], &limit["maximum"], &limit["default"]),
        (&json!(1), &json!(500), &json!(50))
    );
    let grace = field(&doc, "RollKeyRequest", "grace_seconds");
    assert_eq!(
        (&grace["minimum"], &grace["maximum"]),
        (&json!(0), &json!(604800))
    );
    let ttl = field(&doc, "UpdateWorkspaceRequest", "max_key_ttl_seconds");
    assert_eq!(
        (&ttl["minimum"], &ttl["maximum"]),
        (&json!(60), &json!(316_224_000))
    );
    let env_ttl = field(&doc, "CreateTokenRequest", "ttl_seconds");
    assert_eq!(
        (&env_ttl["minimum"], &env_ttl["maximum"]),
        (&json!(1), &json!(365 * 24 * 3600)),
        "the configured maximum"
    );
    for (schema, name) in [
        ("CreateKeyRequest", "expires_at"),
        ("KeyView", "created_at"),
        ("KeyView", "last_used_at"),
        ("AuditEventView", "at"),
    ] {
        assert_eq!(
            field(&doc, schema, name)["format"],
            "date-time",
            "{schema}.{name}"
        );
    }
    let email = field(&doc, "CreateUserRequest", "email");
    assert_eq!(email["maxLength"], 254);
    assert!(matches(email, "ada@example.com") && !matches(email, "ada"));
    assert_eq!(
        field(&doc, "CreateUserRequest", "password")["minLength"],
        12
    );

    // An optional body is optional, not `null`.
    for path in ["/v1/keys/{id}/roll", "/v1/auth/token"] {
        let body = &doc["paths"][path]["post"]["requestBody"];
        assert_eq!(body["required"], false, "{path}");
        assert!(
            body["content"]["application/json"]["schema"]["$ref"].is_string(),
            "{path}: {body}"
        );
    }

    // Every status an operation can answer, and only those.
    assert_eq!(
        statuses(&doc, "/v1/me", "get"),
        set(&["200", "400", "401", "403", "429", "503"])
    );
    assert_eq!(
        statuses(&doc, "/v1/keys", "post"),
        set(&["201", "400", "401", "403", "404", "413", "415", "422", "429", "503"])
    );
    assert_eq!(
        statuses(&doc, "/v1/keys", "get"),
        set(&["200", "400", "401", "403", "404", "422", "429", "503"])
    );
    assert_eq!(
        statuses(&doc, "/v1/users/{id}", "delete"),
        set(&["204", "400", "401", "403", "404", "409", "429", "503"])
    );
    assert_eq!(
        statuses(&doc, "/v1/users/{id}", "patch"),
        set(&["200", "400", "401", "403", "404", "409", "413", "415", "422", "429", "503"])
    );
    assert_eq!(
        statuses(&doc, "/v1/workspaces/{id}/members/{user_id}", "put"),
        set(&["200", "201", "400", "401", "403", "404", "409", "413", "415", "422", "429", "503"])
    );
    assert_eq!(
        statuses(&doc, "/v1/portal/sessions", "post"),
        set(&["201", "400", "401", "403", "404", "413", "415", "422", "429", "503"])
    );
    let return_url = field(&doc, "CreatePortalSessionRequest", "return_url");
    assert_eq!(return_url["maxLength"], 2048);
    assert!(
        matches(return_url, "https://app.example.com/settings?tab=api")
            && matches(return_url, "http://localhost:3000")
            && !matches(return_url, "javascript:alert(1)")
            && !matches(return_url, "//evil.example.com/")
            && !matches(return_url, "https://a@evil.example.com/")
    );
    assert!(matches(
        field(&doc, "CreatePortalSessionRequest", "user_id"),
        created["owner_id"].as_str().unwrap()
    ));
    assert_eq!(
        statuses(&doc, "/oauth/token", "post"),
        set(&["200", "400", "401", "413", "429", "503"])
    );
    assert_eq!(
        statuses(&doc, "/readyz", "get"),
        set(&["200", "400", "503"])
    );
    let me = &doc["paths"]["/v1/me"]["get"]["responses"];
    assert!(me["401"]["headers"]["WWW-Authenticate"].is_object());
    assert!(me["503"]["headers"]["Retry-After"].is_object());
    assert!(me["403"]["content"]["application/problem+json"].is_object());
    srv.stop().await;
}

/// An instance admin "sees" every workspace id; one that does not exist was an empty list, a
/// 422 about a field, or (PUT of a role) a foreign-key 500. It is a 404 everywhere below it.
#[tokio::test]
async fn a_workspace_that_does_not_exist_is_404_on_every_path_below_it() {
    each_backend(|srv| async move {
        let key = &srv.admin_key;
        let ws = "/v1/workspaces/ws_00000000000000000000";
        let me = &srv.admin_user_id;
        srv.get(&format!("{ws}/members"), key)
            .await
            .problem(404, "not_found");
        srv.get(&format!("{ws}/roles"), key)
            .await
            .problem(404, "not_found");
        srv.get(&format!("{ws}/grants"), key)
            .await
            .problem(404, "not_found");
        srv.put(
            &format!("{ws}/roles/reader"),
            key,
            json!({"permissions": ["documents:read"]}),
        )
        .await
        .problem(404, "not_found");
        srv.post(
            &format!("{ws}/grants"),
            key,
            json!({"user_id": me, "permission": "documents:read"}),
        )
        .await
        .problem(404, "not_found");
        srv.put(&format!("{ws}/members/{me}"), key, json!({"role": "admin"}))
            .await
            .problem(404, "not_found");
        srv.patch(ws, key, json!({"name": "x"}))
            .await
            .problem(404, "not_found");
        // Its own workspace still answers.
        let own = srv.workspace_of(key).await;
        srv.get(&format!("/v1/workspaces/{own}/members"), key)
            .await
            .expect(200);
    })
    .await;
}

/// JSON Schema's `integer` is any number without a fraction: `3600.0` is 3600 (Python sends it
/// for `timedelta.total_seconds()`). serde refused it with a 422.
#[tokio::test]
async fn integral_numbers_are_integers() {
    each_backend(|srv| async move {
        let key = &srv.admin_key;
        let ws = srv.workspace_of(key).await;
        let body = srv
            .patch(
                &format!("/v1/workspaces/{ws}"),
                key,
                json!({"max_key_ttl_seconds": 86400.0}),
            )
            .await
            .expect(200);
        assert_eq!(body["max_key_ttl_seconds"], 86400);
        srv.patch(
            &format!("/v1/workspaces/{ws}"),
            key,
            json!({"max_key_ttl_seconds": null}),
        )
        .await
        .expect(200);
        let k = srv
            .post("/v1/keys", key, json!({"name": "rolled"}))
            .await
            .expect(201);
        let id = k["id"].as_str().unwrap();
        srv.post(
            &format!("/v1/keys/{id}/roll"),
            key,
            json!({"grace_seconds": 60.0}),
        )
        .await
        .expect(201);
        let t = srv
            .post(
                "/v1/tokens",
                key,
                json!({"name": "t", "ttl_seconds": 3600.0}),
            )
            .await
            .expect(201);
        assert_eq!(t["expires_in"], 3600);
        srv.post("/v1/auth/token", key, json!({"ttl_seconds": 60.0}))
            .await
            .expect(200);
        // A fraction is still no integer, and says which field.
        let bad = srv
            .post("/v1/tokens", key, json!({"name": "t", "ttl_seconds": 1.5}))
            .await
            .problem(422, "validation_failed");
        assert_eq!(bad["errors"][0]["field"], "ttl_seconds");
        let bad = srv
            .post(
                &format!("/v1/keys/{id}/roll"),
                key,
                json!({"grace_seconds": -1}),
            )
            .await
            .problem(422, "validation_failed");
        assert_eq!(bad["errors"][0]["field"], "grace_seconds");
    })
    .await;
}

/// Filters that name an object by id were matched as given: a malformed one answered an empty
/// list, as if nothing matched. They are a 422 naming the filter, as the document's pattern says.
#[tokio::test]
async fn malformed_id_filters_are_422_naming_the_filter() {
    each_backend(|srv| async move {
        let key = &srv.admin_key;
        for (path, field) in [
            ("/v1/keys?owner_id=bob", "owner_id"),
            ("/v1/keys?workspace_id=default", "workspace_id"),
            ("/v1/users?workspace_id=default", "workspace_id"),
            ("/v1/audit?workspace_id=default", "workspace_id"),
            ("/v1/audit?actor=bob", "actor"),
        ] {
            let body = srv.get(path, key).await.problem(422, "validation_failed");
            assert_eq!(body["errors"][0]["field"], field, "{path}");
        }
        let me = &srv.admin_user_id;
        let listed = srv
            .get(&format!("/v1/keys?owner_id={me}"), key)
            .await
            .expect(200);
        assert!(!listed["data"].as_array().unwrap().is_empty());
        srv.get(&format!("/v1/audit?actor={me}"), key)
            .await
            .expect(200);
        // Emails: 254 characters, counted as `maxLength` counts them (not in UTF-8 bytes).
        let email = format!("{}@example.com", "é".repeat(254 - "@example.com".len()));
        assert_eq!(email.chars().count(), 254);
        srv.post("/v1/users", key, json!({"email": email, "name": "Long"}))
            .await
            .expect(201);
        let email = format!("{}@example.com", "é".repeat(255 - "@example.com".len()));
        srv.post("/v1/users", key, json!({"email": email, "name": "Longer"}))
            .await
            .problem(422, "validation_failed");
    })
    .await;
}
