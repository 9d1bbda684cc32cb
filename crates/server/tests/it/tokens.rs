//! SPEC §6.1 and issue 3: access tokens by exchange, OAuth 2.0 client credentials,
//! introspection, revocation, JWKS, environment tokens and the key + token pair.

use crate::harness::{each_backend, TestServer};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};

async fn exchange(srv: &TestServer, key: &str, body: Value) -> crate::harness::Resp {
    srv.call(Method::POST, "/v1/auth/token", Some(key), Some(body))
        .await
}

async fn token_for(srv: &TestServer, key: &str) -> String {
    exchange(srv, key, json!({})).await.expect(200)["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn part(jwt: &str, i: usize) -> Value {
    serde_json::from_slice(&B64.decode(jwt.split('.').nth(i).unwrap()).unwrap()).unwrap()
}

/// POSTs a form to an OAuth endpoint, optionally with HTTP Basic.
async fn form(
    srv: &TestServer,
    path: &str,
    basic: Option<(&str, &str)>,
    fields: &[(&str, &str)],
) -> crate::harness::Resp {
    let mut rb = srv.request(Method::POST, path).form(fields);
    if let Some((id, secret)) = basic {
        rb = rb.basic_auth(id, Some(secret));
    }
    srv.send(rb).await
}

/// A workspace member with a key: (user id, key, key id).
async fn member_key(srv: &TestServer, ws: &str, role: &str) -> (String, String, String) {
    let (user, key) = srv.member_with_key(ws, role).await;
    let id = srv.get("/v1/me", &key).await.expect(200)["credential"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (user, key, id)
}

#[tokio::test]
async fn exchanged_tokens_follow_rfc9068_and_work_wherever_keys_do() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Tokens").await;
        let (user, key, key_id) = member_key(&srv, &ws, "developer").await;
        let r = exchange(&srv, &key, json!({"ttl_seconds": 600}))
            .await
            .expect(200);
        assert_eq!(r["token_type"], "Bearer");
        assert_eq!(r["expires_in"], 600);
        let jwt = r["access_token"].as_str().unwrap();
        let header = part(jwt, 0);
        assert_eq!(header["typ"], "at+jwt");
        assert_eq!(header["alg"], "EdDSA");
        let claims = part(jwt, 1);
        for c in [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "jti",
            "client_id",
            "scope",
            "workspace_id",
            "environment",
        ] {
            assert!(!claims[c].is_null(), "claim {c}");
        }
        assert_eq!(claims["sub"], user.as_str());
        assert_eq!(claims["client_id"], key_id.as_str());
        assert_eq!(claims["workspace_id"], ws.as_str());
        assert_eq!(claims["iss"], srv.url.as_str());
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            600
        );
        assert!(claims["jti"].as_str().unwrap().starts_with("tok_"));
        let jwks = srv
            .call(Method::GET, "/.well-known/jwks.json", None, None)
            .await
            .expect(200);
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert!(kids.contains(&header["kid"].as_str().unwrap()));
        assert!(
            jwks["keys"][0].get("d").is_none(),
            "no private material in the JWKS"
        );

        let me = srv.get("/v1/me", jwt).await.expect(200);
        assert_eq!(me["credential"]["type"], "access_token");
        assert_eq!(me["credential"]["id"], claims["jti"]);
        assert_eq!(me["credential"]["key_id"], key_id.as_str());
        srv.post("/v1/keys", jwt, json!({"name": "made with a token"}))
            .await
            .expect(201);
        let v = srv
            .verify(json!({"access_token": jwt, "permissions": ["documents:read"]}))
            .await;
        assert_eq!(v["code"], "VALID");
        assert_eq!(v["token_id"], claims["jti"]);
        assert_eq!(v["key_id"], key_id.as_str());
        assert_eq!(
            srv.verify(json!({"credential": jwt})).await["code"],
            "VALID"
        );

        // The key in the body instead of a header; a TTL above the maximum is capped.
        let r = srv
            .call(
                Method::POST,
                "/v1/auth/token",
                None,
                Some(json!({"api_key": key, "ttl_seconds": 999_999_999})),
            )
            .await
            .expect(200);
        assert_eq!(r["expires_in"], 86_400);
        exchange(&srv, &key, json!({"ttl_seconds": 0}))
            .await
            .problem(422, "validation_failed");
        exchange(&srv, "sk_live_nope", json!({}))
            .await
            .problem(401, "invalid_credentials");
        exchange(&srv, jwt, json!({}))
            .await
            .problem(400, "bad_request");
    })
    .await;
}

#[tokio::test]
async fn token_permissions_only_narrow() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Narrow tokens").await;
        let (_, key, _) = member_key(&srv, &ws, "developer").await;
        let r = exchange(&srv, &key, json!({"permissions": ["documents:read"]}))
            .await
            .expect(200);
        assert_eq!(r["scope"], "documents:read");
        let jwt = r["access_token"].as_str().unwrap();
        assert_eq!(
            srv.verify(json!({"access_token": jwt, "permissions": ["documents:read"]}))
                .await["code"],
            "VALID"
        );
        assert_eq!(
            srv.verify(json!({"access_token": jwt, "permissions": ["documents:write"]}))
                .await["code"],
            "INSUFFICIENT_PERMISSIONS"
        );
        srv.post("/v1/keys", jwt, json!({"name": "x"}))
            .await
            .problem(403, "insufficient_permissions");
        let r = exchange(
            &srv,
            &key,
            json!({"permissions": ["latchkey:members:manage"]}),
        )
        .await;
        assert_eq!(
            r.problem(422, "validation_failed")["errors"][0]["field"],
            "permissions[0]"
        );
        // Publishable keys never obtain tokens.
        let (owner, _) = srv.member_with_key(&ws, "admin").await;
        let pk = srv
            .key_for(&ws, &owner, json!({"type": "publishable"}))
            .await;
        exchange(&srv, pk["key"].as_str().unwrap(), json!({}))
            .await
            .problem(403, "insufficient_permissions");
    })
    .await;
}

#[tokio::test]
async fn tokens_die_with_their_key_owner_or_membership() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Lifetimes").await;
        for how in ["revoke key", "remove member", "deactivate user"] {
            let (user, key, key_id) = member_key(&srv, &ws, "developer").await;
            let jwt = token_for(&srv, &key).await;
            srv.get("/v1/me", &jwt).await.expect(200);
            match how {
                "revoke key" => srv
                    .delete(&format!("/v1/keys/{key_id}"), &srv.admin_key)
                    .await
                    .expect(204),
                "remove member" => srv
                    .delete(
                        &format!("/v1/workspaces/{ws}/members/{user}"),
                        &srv.admin_key,
                    )
                    .await
                    .expect(204),
                _ => srv
                    .delete(&format!("/v1/users/{user}"), &srv.admin_key)
                    .await
                    .expect(204),
            };
            // Its signature is still valid; it must fail anyway.
            srv.get("/v1/me", &jwt)
                .await
                .problem(401, "invalid_credentials");
            assert_ne!(
                srv.verify(json!({"access_token": jwt})).await["code"],
                "VALID",
                "{how}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn forged_altered_and_expired_tokens_are_refused() {
    each_backend(|srv| async move {
        let jwt = token_for(&srv, &srv.admin_key).await;
        let parts: Vec<&str> = jwt.split('.').collect();
        let header = part(&jwt, 0);
        let mut claims = part(&jwt, 1);

        let mut sig = parts[2].to_owned();
        let c = sig.pop().unwrap();
        sig.push(if c == 'A' { 'B' } else { 'A' });
        let tampered_sig = format!("{}.{}.{sig}", parts[0], parts[1]);
        claims["scope"] = json!("*");
        let tampered_claims = format!(
            "{}.{}.{}",
            parts[0],
            B64.encode(claims.to_string()),
            parts[2]
        );
        let none = format!(
            "{}.{}.",
            B64.encode(json!({"alg": "none", "typ": "at+jwt"}).to_string()),
            parts[1]
        );
        let mut h = header.clone();
        h["kid"] = json!("sig_unknown");
        let wrong_kid = format!("{}.{}.{}", B64.encode(h.to_string()), parts[1], parts[2]);
        // Signed with a key that is not ours, under our kid.
        let stranger = {
            let seed = [7u8; 32];
            let mut der = vec![
                0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
                0x04, 0x20,
            ];
            der.extend(seed);
            let mut hd = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
            hd.typ = Some("at+jwt".into());
            hd.kid = header["kid"].as_str().map(str::to_owned);
            jsonwebtoken::encode(
                &hd,
                &part(&jwt, 1),
                &jsonwebtoken::EncodingKey::from_ed_der(&der),
            )
            .unwrap()
        };
        for (what, bad) in [
            ("signature", tampered_sig),
            ("claims", tampered_claims),
            ("alg none", none),
            ("kid", wrong_kid),
            ("foreign key", stranger),
        ] {
            let r = srv.get("/v1/me", &bad).await;
            assert_eq!(r.status, 401, "{what}");
            assert_eq!(r.body["detail"], "Invalid or missing API key");
            assert_eq!(
                srv.verify(json!({"access_token": bad})).await["code"],
                "NOT_FOUND",
                "{what}"
            );
        }
        srv.get("/v1/me", &jwt).await.expect(200);

        let short = exchange(&srv, &srv.admin_key, json!({"ttl_seconds": 1}))
            .await
            .expect(200);
        let short = short["access_token"].as_str().unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        srv.get("/v1/me", short)
            .await
            .problem(401, "invalid_credentials");
        assert_eq!(
            srv.verify(json!({"access_token": short})).await["code"],
            "EXPIRED"
        );
    })
    .await;
}

#[tokio::test]
async fn oauth_client_credentials_per_rfc6749() {
    each_backend(|srv| async move {
        let ws = srv.workspace("OAuth").await;
        let (_, key, key_id) = member_key(&srv, &ws, "developer").await;
        let grant = [("grant_type", "client_credentials")];

        let r = form(&srv, "/oauth/token", Some((&key_id, &key)), &grant).await;
        assert_eq!(r.headers["cache-control"], "no-store");
        let body = r.expect(200);
        assert_eq!(body["token_type"], "Bearer");
        assert!(body.get("refresh_token").is_none());
        srv.get("/v1/me", body["access_token"].as_str().unwrap())
            .await
            .expect(200);

        let post = [
            ("grant_type", "client_credentials"),
            ("client_id", key_id.as_str()),
            ("client_secret", key.as_str()),
            ("scope", "documents:read reports:*"),
        ];
        let body = form(&srv, "/oauth/token", None, &post).await.expect(200);
        assert_eq!(body["scope"], "documents:read reports:*");

        let err = |r: crate::harness::Resp, status: u16, code: &str| {
            assert_eq!(r.status.as_u16(), status, "{code}: {}", r.body);
            assert_eq!(r.body["error"], code);
            r
        };
        let r = err(
            form(
                &srv,
                "/oauth/token",
                Some((&key_id, "sk_live_wrong")),
                &grant,
            )
            .await,
            401,
            "invalid_client",
        );
        assert_eq!(r.headers["www-authenticate"], "Basic realm=\"latchkey\"");
        err(
            form(
                &srv,
                "/oauth/token",
                None,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &key_id),
                    ("client_secret", "nope"),
                ],
            )
            .await,
            400,
            "invalid_client",
        );
        err(
            form(
                &srv,
                "/oauth/token",
                Some(("key_someoneelse00000000", &key)),
                &grant,
            )
            .await,
            401,
            "invalid_client",
        );
        err(
            form(
                &srv,
                "/oauth/token",
                Some((&key_id, &key)),
                &[("grant_type", "password")],
            )
            .await,
            400,
            "unsupported_grant_type",
        );
        err(
            form(&srv, "/oauth/token", Some((&key_id, &key)), &[]).await,
            400,
            "invalid_request",
        );
        err(
            form(
                &srv,
                "/oauth/token",
                Some((&key_id, &key)),
                &[
                    ("grant_type", "client_credentials"),
                    ("client_secret", &key),
                ],
            )
            .await,
            400,
            "invalid_request",
        );
        err(
            form(
                &srv,
                "/oauth/token",
                Some((&key_id, &key)),
                &[
                    ("grant_type", "client_credentials"),
                    ("scope", "latchkey:members:manage"),
                ],
            )
            .await,
            400,
            "invalid_scope",
        );
        let json_body = srv
            .send(
                srv.request(Method::POST, "/oauth/token")
                    .basic_auth(&key_id, Some(&key))
                    .json(&json!({"grant_type": "client_credentials"})),
            )
            .await;
        err(json_body, 400, "invalid_request");

        let meta = srv
            .call(
                Method::GET,
                "/.well-known/oauth-authorization-server",
                None,
                None,
            )
            .await
            .expect(200);
        assert_eq!(meta["issuer"], srv.url.as_str());
        assert_eq!(meta["token_endpoint"], format!("{}/oauth/token", srv.url));
        assert_eq!(meta["grant_types_supported"], json!(["client_credentials"]));
    })
    .await;
}

#[tokio::test]
async fn introspection_and_revocation_per_rfc7662_and_rfc7009() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Introspect").await;
        let (user, key, key_id) = member_key(&srv, &ws, "developer").await;
        let jwt = token_for(&srv, &key).await;
        let admin_id = srv.get("/v1/me", &srv.admin_key).await.expect(200)["credential"]["id"]
            .as_str()
            .unwrap()
            .to_owned();

        let active = form(
            &srv,
            "/oauth/introspect",
            Some((&admin_id, &srv.admin_key)),
            &[("token", &jwt)],
        )
        .await
        .expect(200);
        assert_eq!(active["active"], true);
        assert_eq!(active["client_id"], key_id.as_str());
        assert_eq!(active["sub"], user.as_str());
        assert_eq!(active["token_type"], "Bearer");
        for junk in ["garbage", "eyJhbGciOiJub25lIn0.e30."] {
            let r = form(
                &srv,
                "/oauth/introspect",
                Some((&admin_id, &srv.admin_key)),
                &[("token", junk), ("token_type_hint", "refresh_token")],
            )
            .await;
            assert_eq!(r.expect(200), json!({"active": false}));
        }
        // A client naming itself must be that key.
        let r = form(
            &srv,
            "/oauth/introspect",
            Some(("key_0000000000someoneelse", &srv.admin_key)),
            &[("token", &jwt)],
        )
        .await;
        assert_eq!(r.status, 401);
        // The caller must be authorised: unauthenticated, or without latchkey:verify.
        let r = form(&srv, "/oauth/introspect", None, &[("token", &jwt)]).await;
        assert_eq!(r.status, 401);
        assert_eq!(r.body["error"], "invalid_client");
        assert_eq!(
            form(
                &srv,
                "/oauth/introspect",
                Some((&key_id, &key)),
                &[("token", &jwt)]
            )
            .await
            .status,
            403
        );
        assert_eq!(
            form(
                &srv,
                "/oauth/introspect",
                Some((&admin_id, &srv.admin_key)),
                &[]
            )
            .await
            .body["error"],
            "invalid_request"
        );

        // Revocation: 200 whatever the token; only its client (or a manager) actually revokes it.
        let (_, other_key, other_id) = member_key(&srv, &ws, "developer").await;
        assert_eq!(
            form(
                &srv,
                "/oauth/revoke",
                Some((&key_id, &key)),
                &[("token", "not-a-token")]
            )
            .await
            .status,
            200
        );
        assert_eq!(
            form(
                &srv,
                "/oauth/revoke",
                Some((&other_id, &other_key)),
                &[("token", &jwt)]
            )
            .await
            .status,
            200
        );
        srv.get("/v1/me", &jwt).await.expect(200);
        assert_eq!(
            form(
                &srv,
                "/oauth/revoke",
                Some((&key_id, &key)),
                &[("token", &jwt), ("token_type_hint", "refresh_token")]
            )
            .await
            .status,
            200
        );
        srv.get("/v1/me", &jwt)
            .await
            .problem(401, "invalid_credentials");
        let r = form(
            &srv,
            "/oauth/introspect",
            Some((&admin_id, &srv.admin_key)),
            &[("token", &jwt)],
        )
        .await;
        assert_eq!(r.expect(200), json!({"active": false}));
        assert_eq!(
            srv.verify(json!({"access_token": jwt})).await["code"],
            "REVOKED"
        );
        assert_eq!(
            form(&srv, "/oauth/revoke", None, &[("token", &jwt)])
                .await
                .status,
            401
        );
    })
    .await;
}

#[tokio::test]
async fn environment_tokens_generate_list_renew_and_revoke() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Plutu").await;
        let (user, _) = srv.member_with_key(&ws, "developer").await;
        let test_key = srv
            .key_for(
                &ws,
                &user,
                json!({"environment": "test", "name": "Test key"}),
            )
            .await;
        let test_key = test_key["key"].as_str().unwrap();

        let created = srv
            .post(
                "/v1/tokens",
                test_key,
                json!({"name": "Server token", "environment": "test"}),
            )
            .await
            .expect(201);
        let jwt = created["access_token"].as_str().unwrap().to_owned();
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(created["environment"], "test");
        assert_eq!(created["expires_in"], 30 * 86_400);
        let me = srv.get("/v1/me", &jwt).await.expect(200);
        assert_eq!(me["credential"]["name"], "Server token");
        srv.post(
            "/v1/tokens",
            test_key,
            json!({"name": "x", "environment": "live"}),
        )
        .await
        .problem(403, "environment_mismatch");
        srv.post(
            "/v1/tokens",
            test_key,
            json!({"name": "x", "ttl_seconds": 999_999_999}),
        )
        .await
        .problem(422, "validation_failed");

        let listed = srv.get("/v1/tokens", test_key).await.expect(200);
        let items = listed["data"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["id"], id.as_str());
        assert_eq!(items[0]["name"], "Server token");
        assert!(
            !listed.to_string().contains(&jwt[..40]),
            "listed by id and name only"
        );

        let renewed = srv
            .post(&format!("/v1/tokens/{id}/renew"), test_key, json!({}))
            .await
            .expect(201);
        let new_jwt = renewed["access_token"].as_str().unwrap();
        assert_ne!(renewed["id"], id.as_str());
        srv.get("/v1/me", &jwt)
            .await
            .problem(401, "invalid_credentials");
        srv.get("/v1/me", new_jwt).await.expect(200);
        srv.post(&format!("/v1/tokens/{id}/renew"), test_key, json!({}))
            .await
            .problem(409, "conflict");

        let new_id = renewed["id"].as_str().unwrap();
        srv.delete(&format!("/v1/tokens/{new_id}"), test_key)
            .await
            .expect(204);
        srv.delete(&format!("/v1/tokens/{new_id}"), test_key)
            .await
            .expect(204);
        srv.get("/v1/me", new_jwt)
            .await
            .problem(401, "invalid_credentials");

        let audit = srv
            .get(
                &format!("/v1/audit?workspace_id={ws}&limit=500"),
                &srv.admin_key,
            )
            .await
            .expect(200);
        let events: Vec<(String, String)> = audit["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"].as_str().unwrap().starts_with("token."))
            .map(|e| {
                (
                    e["action"].as_str().unwrap().to_owned(),
                    e["actor"]["credential_name"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        for action in ["token.issued", "token.renewed", "token.revoked"] {
            assert!(
                events.iter().any(|(a, n)| a == action && n == "Test key"),
                "{action} by the key's name in {events:?}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn the_pair_intersects_and_must_match() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Pairs").await;
        let (_, key, key_id) = member_key(&srv, &ws, "developer").await;
        let narrow = exchange(
            &srv,
            &key,
            json!({"permissions": ["documents:read", "billing:read"]}),
        )
        .await
        .expect(200);
        let jwt = narrow["access_token"].as_str().unwrap().to_owned();
        let narrow_key = srv
            .post(
                "/v1/keys",
                &key,
                json!({"name": "docs only", "permissions": ["documents:*"]}),
            )
            .await
            .expect(201);
        let narrow_key = narrow_key["key"].as_str().unwrap().to_owned();

        let pair = |k: &str| {
            srv.request(Method::GET, "/v1/me")
                .header("x-api-key", k)
                .bearer_auth(&jwt)
        };
        let me = srv.send(pair(&narrow_key)).await.expect(200);
        assert_eq!(
            me["permissions"],
            json!(["documents:read"]),
            "the intersection"
        );
        assert_eq!(me["credential"]["type"], "access_token");
        assert!(me["paired_key_id"].is_string());
        let v = srv
            .verify(
                json!({"key": narrow_key, "access_token": jwt, "permissions": ["billing:read"]}),
            )
            .await;
        assert_eq!(v["code"], "INSUFFICIENT_PERMISSIONS");
        let v = srv
            .verify(
                json!({"key": narrow_key, "access_token": jwt, "permissions": ["documents:read"]}),
            )
            .await;
        assert_eq!(v["code"], "VALID");

        // Another user's key with this token: mismatch.
        let (_, stranger, _) = member_key(&srv, &ws, "developer").await;
        srv.send(pair(&stranger))
            .await
            .problem(401, "invalid_credentials");
        assert_eq!(
            srv.verify(json!({"key": stranger, "access_token": jwt}))
                .await["code"],
            "PAIR_MISMATCH"
        );
        // Two different keys are still ambiguous.
        let two = srv
            .request(Method::GET, "/v1/me")
            .header("x-api-key", &key)
            .bearer_auth(&narrow_key);
        srv.send(two).await.problem(400, "ambiguous_credentials");

        // require_pair: a lone credential is refused, the pair works, the exchange still works.
        srv.patch(
            &format!("/v1/workspaces/{ws}"),
            &srv.admin_key,
            json!({"require_pair": true}),
        )
        .await
        .expect(200);
        srv.get("/v1/me", &key)
            .await
            .problem(401, "invalid_credentials");
        srv.get("/v1/me", &jwt)
            .await
            .problem(401, "invalid_credentials");
        assert_eq!(
            srv.verify(json!({"key": key})).await["code"],
            "PAIR_REQUIRED"
        );
        assert_eq!(
            srv.verify(json!({"access_token": jwt})).await["code"],
            "PAIR_REQUIRED"
        );
        srv.send(pair(&key)).await.expect(200);
        let fresh = token_for(&srv, &key).await;
        let r = srv
            .send(
                srv.request(Method::GET, "/v1/me")
                    .header("x-api-key", &key)
                    .bearer_auth(&fresh),
            )
            .await;
        assert_eq!(r.expect(200)["credential"]["key_id"], key_id.as_str());
    })
    .await;
}

#[tokio::test]
async fn signing_keys_rotate_without_breaking_issued_tokens() {
    each_backend(|srv| async move {
        let before = token_for(&srv, &srv.admin_key).await;
        let old_kid = part(&before, 0)["kid"].as_str().unwrap().to_owned();
        let (db, secret) = srv.database_and_secret();
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args(["signing-keys", "rotate", "--json", "--database", &db])
            .env("LATCHKEY_SECRET", &secret)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let new_kid = serde_json::from_slice::<Value>(&out.stdout).unwrap()["kid"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_ne!(new_kid, old_kid);

        // The running server learns the new key from the change log.
        let mut signed_with = String::new();
        for _ in 0..200 {
            signed_with = part(&token_for(&srv, &srv.admin_key).await, 0)["kid"]
                .as_str()
                .unwrap()
                .to_owned();
            if signed_with == new_kid {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(signed_with, new_kid);
        srv.get("/v1/me", &before).await.expect(200);
        let jwks = srv
            .call(Method::GET, "/.well-known/jwks.json", None, None)
            .await
            .expect(200);
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert!(
            kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()),
            "{kids:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn environment_tokens_belong_to_their_owner() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Owners").await;
        let (_, admin_key) = srv.member_with_key(&ws, "admin").await;
        let (_, dev_key) = srv.member_with_key(&ws, "developer").await;
        let devs = srv
            .post("/v1/tokens", &dev_key, json!({"name": "dev's"}))
            .await
            .expect(201);
        let id = devs["id"].as_str().unwrap();
        // A workspace admin sees and may revoke it, but never renews it (that would hand them
        // a credential acting as its owner).
        srv.post(&format!("/v1/tokens/{id}/renew"), &admin_key, json!({}))
            .await
            .problem(403, "insufficient_permissions");
        let listed = srv.get("/v1/tokens", &admin_key).await.expect(200);
        assert_eq!(listed["data"].as_array().unwrap().len(), 1);
        // The instance admin's tokens are invisible to them, even in the instance admin's workspace.
        let root = srv
            .post("/v1/tokens", &srv.admin_key, json!({"name": "root"}))
            .await
            .expect(201);
        let default_ws = srv.workspace_of(&srv.admin_key).await;
        let (_, default_admin) = srv.member_with_key(&default_ws, "admin").await;
        let root_id = root["id"].as_str().unwrap();
        srv.post(
            &format!("/v1/tokens/{root_id}/renew"),
            &default_admin,
            json!({}),
        )
        .await
        .problem(404, "not_found");
        srv.delete(&format!("/v1/tokens/{root_id}"), &default_admin)
            .await
            .problem(404, "not_found");
        assert_eq!(
            srv.get("/v1/tokens", &default_admin).await.expect(200)["data"],
            json!([])
        );
        srv.get("/v1/me", root["access_token"].as_str().unwrap())
            .await
            .expect(200);
        srv.delete(&format!("/v1/tokens/{id}"), &admin_key)
            .await
            .expect(204);
        srv.get("/v1/me", devs["access_token"].as_str().unwrap())
            .await
            .problem(401, "invalid_credentials");
    })
    .await;
}

#[tokio::test]
async fn environment_tokens_work_in_a_require_pair_workspace_and_with_ip_lists() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Paired").await;
        let (user, _) = srv.member_with_key(&ws, "developer").await;
        let fenced = srv
            .key_for(&ws, &user, json!({"allowed_ips": ["127.0.0.1/32"]}))
            .await;
        let key = fenced["key"].as_str().unwrap().to_owned();
        srv.patch(
            &format!("/v1/workspaces/{ws}"),
            &srv.admin_key,
            json!({"require_pair": true}),
        )
        .await
        .expect(200);
        // Generating the pair's token needs only the key; then the pair is the credential.
        let created = srv
            .post("/v1/tokens", &key, json!({"name": "pair token"}))
            .await
            .expect(201);
        let jwt = created["access_token"].as_str().unwrap().to_owned();
        let pair = |m: Method, p: &str| {
            srv.request(m, p)
                .header("x-api-key", &key)
                .bearer_auth(&jwt)
        };
        srv.send(pair(Method::GET, "/v1/me")).await.expect(200);
        let id = created["id"].as_str().unwrap();
        let renewed = srv
            .send(pair(Method::POST, &format!("/v1/tokens/{id}/renew")))
            .await
            .expect(201);
        assert_ne!(renewed["access_token"], created["access_token"]);
        // Renewal does not trip over the key's IP list (the caller's context is not the key's).
        let renewed_id = renewed["id"].as_str().unwrap();
        srv.post(&format!("/v1/tokens/{renewed_id}/renew"), &key, json!({}))
            .await
            .expect(201);
    })
    .await;
}

#[tokio::test]
async fn x_api_key_carries_keys_only_and_an_empty_exchange_body_is_fine() {
    each_backend(|srv| async move {
        let jwt = token_for(&srv, &srv.admin_key).await;
        let r = srv
            .send(srv.request(Method::GET, "/v1/me").header("x-api-key", &jwt))
            .await;
        r.problem(401, "invalid_credentials");
        // Reversed pair (key as bearer, token as X-API-Key): two keys, ambiguous.
        let r = srv
            .send(
                srv.request(Method::GET, "/v1/me")
                    .bearer_auth(&srv.admin_key)
                    .header("x-api-key", &jwt),
            )
            .await;
        r.problem(400, "ambiguous_credentials");
        let r = srv
            .send(
                srv.request(Method::POST, "/v1/auth/token")
                    .bearer_auth(&srv.admin_key)
                    .header("content-type", "application/json"),
            )
            .await;
        assert_eq!(r.expect(200)["token_type"], "Bearer");
    })
    .await;
}

/// Defect 9: a test credential's list is filtered in the query, so every page is full and a
/// cursor never leads to an empty page (live tokens used to be dropped after paging).
#[tokio::test]
async fn a_test_keys_token_list_pages_over_test_tokens_only() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Paging").await;
        let (user, live_key) = srv.member_with_key(&ws, "developer").await;
        let test_key = srv
            .key_for(&ws, &user, json!({"environment": "test"}))
            .await;
        let test_key = test_key["key"].as_str().unwrap();
        let mut test_ids = vec![];
        for i in 0..3 {
            let t = srv
                .post("/v1/tokens", test_key, json!({"name": format!("test {i}")}))
                .await
                .expect(201);
            test_ids.push(t["id"].as_str().unwrap().to_owned());
        }
        // Newer than every test token: first in a newest-first listing.
        for i in 0..3 {
            srv.post(
                "/v1/tokens",
                &live_key,
                json!({"name": format!("live {i}")}),
            )
            .await
            .expect(201);
        }
        let first = srv.get("/v1/tokens?limit=2", test_key).await.expect(200);
        let names: Vec<&str> = first["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["test 2", "test 1"], "a full page: {first}");
        let cursor = first["next_cursor"].as_str().expect("more to come");
        let second = srv
            .get(&format!("/v1/tokens?limit=2&cursor={cursor}"), test_key)
            .await
            .expect(200);
        let data = second["data"].as_array().unwrap();
        assert_eq!(data.len(), 1, "{second}");
        assert_eq!(data[0]["id"], test_ids[0].as_str());
        assert!(second["next_cursor"].is_null(), "{second}");
    })
    .await;
}
