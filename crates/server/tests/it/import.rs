//! SPEC §12.3: keys issued elsewhere, imported by plaintext or by SHA-256 (hex or base64),
//! verify like native ones; what cannot be imported is listed per item and changes nothing;
//! `latchkey keys import` does the same from CSV and JSON Lines.

use crate::harness::{each_backend, random_suffix, TestServer};
use crate::upstream::sha256_hex;
use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// A key in some other service's format, different on every call.
fn foreign_key() -> String {
    format!("acme_live_{}{}", random_suffix(), random_suffix())
}

/// A new member of a new workspace: (workspace, user).
async fn member(srv: &TestServer) -> (String, String) {
    let ws = srv.workspace(&format!("import-{}", random_suffix())).await;
    let user = srv.user("customer").await;
    srv.set_member(&ws, &user, "developer").await;
    (ws, user)
}

/// How many keys the workspace has (up to 500).
async fn keys_in(srv: &TestServer, ws: &str) -> usize {
    let page = srv
        .get(
            &format!("/v1/keys?workspace_id={ws}&limit=500"),
            &srv.admin_key,
        )
        .await
        .expect(200);
    page["data"].as_array().unwrap().len()
}

async fn import(srv: &TestServer, key: &str, keys: Value) -> (u16, Value) {
    let r = srv
        .post("/v1/keys/import", key, json!({ "keys": keys }))
        .await;
    (r.status.as_u16(), r.body)
}

/// `/v1/me` with the key sent as an API key: 200 and the key's id, or the status.
async fn me(srv: &TestServer, key: &str) -> Result<String, u16> {
    let r = srv
        .send(srv.request(Method::GET, "/v1/me").header("x-api-key", key))
        .await;
    if r.status.as_u16() == 200 {
        Ok(r.body["credential"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    } else {
        Err(r.status.as_u16())
    }
}

#[tokio::test]
async fn imported_keys_verify_by_plaintext_hex_and_base64_and_nothing_else() {
    each_backend(|srv| async move {
        let (ws, user) = member(&srv).await;
        let (plain, by_hex, by_b64, by_url) =
            (foreign_key(), foreign_key(), foreign_key(), foreign_key());
        let b64 = base64::engine::general_purpose::STANDARD.encode(sha256(&by_b64));
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha256(&by_url));
        let (status, body) = import(
            &srv,
            &srv.admin_key,
            json!([
                {"key": plain, "name": "plain", "owner_id": user, "workspace_id": ws},
                {"sha256": sha256_hex(by_hex.as_bytes()).to_uppercase(), "name": "hex", "owner_id": user,
                 "workspace_id": ws, "environment": "live", "permissions": ["keys:read"],
                 "metadata": {"plan": "pro"}},
                {"sha256": b64, "name": "b64", "owner_id": user, "workspace_id": ws},
                {"sha256": url_safe, "name": "url", "owner_id": user, "workspace_id": ws},
            ]),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["failed"], json!([]), "{body}");
        let ids: Vec<String> = body["imported"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, item)| {
                assert_eq!(item["index"], i);
                item["id"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(ids.len(), 4);
        for (key, id) in [&plain, &by_hex, &by_b64, &by_url].into_iter().zip(&ids) {
            assert_eq!(me(&srv, key).await, Ok(id.clone()), "{key}");
            let v = srv.verify(json!({"key": key})).await;
            assert_eq!(v["valid"], true, "{v}");
            assert_eq!(v["owner_id"], user.as_str());
            assert_eq!(v["key_id"], id.as_str());
        }
        // What was given beside the key holds, and the list shows no more than a hint of it.
        let hex_key = srv
            .get(&format!("/v1/keys/{}", ids[1]), &srv.admin_key)
            .await
            .expect(200);
        assert_eq!(hex_key["metadata"], json!({"plan": "pro"}));
        assert_eq!(hex_key["environment"], "live");
        let v = srv
            .verify(json!({"key": by_hex, "permissions": ["keys:write"]}))
            .await;
        assert_eq!(v["code"], "INSUFFICIENT_PERMISSIONS", "{v}");
        let listed = srv
            .get(&format!("/v1/keys/{}", ids[0]), &srv.admin_key)
            .await
            .expect(200);
        assert_eq!(
            listed["redacted"],
            format!("acme_live_…{}", &plain[plain.len() - 4..])
        );
        assert!(!listed.to_string().contains(&plain[10..20]), "{listed}");

        // The stored form presented as a key is not the key.
        for digest in [sha256_hex(by_hex.as_bytes()), sha256_hex(by_hex.as_bytes()).to_uppercase()] {
            assert_eq!(me(&srv, &digest).await, Err(401));
            assert_eq!(
                srv.verify(json!({"key": digest})).await["code"],
                "NOT_FOUND"
            );
        }
        // Nor is a near miss.
        let mut typo = plain.clone();
        typo.pop();
        typo.push('#');
        assert_eq!(me(&srv, &typo).await, Err(401));

        // Imported keys roll into native ones, and revoke like any other.
        srv.delete(&format!("/v1/keys/{}", ids[2]), &srv.admin_key)
            .await
            .expect(204);
        assert_eq!(srv.verify(json!({"key": by_b64})).await["code"], "REVOKED");
        let rolled = srv
            .post(
                &format!("/v1/keys/{}/roll", ids[3]),
                &srv.admin_key,
                json!({}),
            )
            .await
            .expect(201);
        let new = rolled["key"].as_str().unwrap();
        assert!(new.starts_with("sk_live_"));
        assert_eq!(srv.verify(json!({"key": new})).await["valid"], true);
        assert_eq!(srv.verify(json!({"key": by_url})).await["valid"], false);

        // Each import is audited as a key's creation, naming no secret.
        let audit = srv
            .get(
                &format!("/v1/audit?workspace_id={ws}&action=key.created"),
                &srv.admin_key,
            )
            .await
            .expect(200);
        let created = audit["data"].as_array().unwrap();
        assert_eq!(created.len(), 4, "{audit}");
        assert!(
            created.iter().all(|e| e["detail"]["imported"] == true),
            "{audit}"
        );
        for key in [&plain, &by_hex] {
            assert!(!audit.to_string().contains(key.as_str()));
        }
    })
    .await;
}

#[tokio::test]
async fn what_cannot_be_imported_is_listed_and_the_rest_is_stored() {
    each_backend(|srv| async move {
        let (ws, user) = member(&srv).await;
        let (a, b, c) = (foreign_key(), foreign_key(), foreign_key());
        // Stored by an earlier import: importing it again is a duplicate.
        let (status, body) = import(
            &srv,
            &srv.admin_key,
            json!([{"key": a, "name": "first", "owner_id": user, "workspace_id": ws}]),
        )
        .await;
        assert_eq!((status, body["failed"].clone()), (200, json!([])), "{body}");
        let before = keys_in(&srv, &ws).await;
        let native = latchkey_core::ApiKey::generate(
            latchkey_core::KeyType::Publishable,
            latchkey_core::Environment::Test,
        );
        let native = native.secret().expose().to_owned();
        let mut bad_checksum = native.clone().into_bytes();
        bad_checksum[20] = if bad_checksum[20] == b'a' { b'b' } else { b'a' };
        let bad_checksum = String::from_utf8(bad_checksum).unwrap();
        let other_ws = srv.workspace("elsewhere").await;
        let (status, body) = import(
            &srv,
            &srv.admin_key,
            json!([
                {"key": a, "name": "again", "owner_id": user, "workspace_id": ws},          // 0 stored already
                {"key": b, "name": "b", "owner_id": user, "workspace_id": ws},              // 1 ok
                {"sha256": sha256_hex(b.as_bytes()), "name": "b again", "owner_id": user, "workspace_id": ws}, // 2 same as 1
                {"key": "short", "name": "short", "owner_id": user, "workspace_id": ws},   // 3
                {"key": bad_checksum, "name": "typo", "owner_id": user, "workspace_id": ws}, // 4
                {"key": c, "sha256": sha256_hex(c.as_bytes()), "name": "both", "owner_id": user, "workspace_id": ws}, // 5
                {"sha256": "not a digest", "name": "x", "owner_id": user, "workspace_id": ws}, // 6
                {"key": c, "name": "c", "owner_id": user, "workspace_id": other_ws},       // 7 not a member there
                {"key": c, "name": "", "owner_id": user, "workspace_id": ws},              // 8 no name
                {"key": c, "name": "c", "owner_id": user, "workspace_id": ws, "colour": 1}, // 9 unknown field
                {"key": native, "name": "native", "owner_id": user, "workspace_id": ws, "environment": "live"}, // 10 prefix says test
                {"key": native, "name": "native", "owner_id": user, "workspace_id": ws},   // 11 ok, native
                {"key": c, "name": "c", "owner_id": user, "workspace_id": ws, "permissions": ["docs read"]}, // 12 not a permission
            ]),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let failed: Vec<(u64, String)> = body["failed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["index"].as_u64().unwrap(),
                    f["message"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let indexes: Vec<u64> = failed.iter().map(|f| f.0).collect();
        assert_eq!(indexes, [0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12], "{body}");
        let message = |i: u64| failed.iter().find(|f| f.0 == i).unwrap().1.clone();
        assert!(message(0).contains("stored already"), "{}", message(0));
        assert_eq!(message(2), "the same key as item 1");
        assert!(
            message(3).contains("16 to 256 characters"),
            "{}",
            message(3)
        );
        assert!(message(4).contains("checksum"), "{}", message(4));
        assert!(
            message(5).contains("either key or sha256"),
            "{}",
            message(5)
        );
        assert!(message(6).starts_with("sha256:"), "{}", message(6));
        assert!(message(7).contains("owner_id"), "{}", message(7));
        assert!(message(8).starts_with("name:"), "{}", message(8));
        assert!(message(9).contains("colour"), "{}", message(9));
        assert!(message(10).contains("prefix"), "{}", message(10));
        assert!(message(12).starts_with("permissions"), "{}", message(12));
        // No message repeats a key.
        for (_, m) in &failed {
            for secret in [&a, &b, &c, &native, &bad_checksum] {
                assert!(!m.contains(secret.as_str()), "{m}");
            }
        }
        let imported: Vec<u64> = body["imported"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["index"].as_u64().unwrap())
            .collect();
        assert_eq!(imported, [1, 11]);
        let after = keys_in(&srv, &ws).await;
        assert_eq!(after, before + 2);
        // The native one keeps its checksum-first lookup and its own type and environment.
        let v = srv.verify(json!({"key": native})).await;
        assert_eq!(
            (v["valid"].clone(), v["key_type"].clone()),
            (json!(true), json!("publishable")),
            "{v}"
        );
        assert_eq!(srv.verify(json!({"key": c})).await["code"], "NOT_FOUND");

        // The call as a whole: limits and who may make it.
        let (status, body) = import(&srv, &srv.admin_key, json!([])).await;
        assert_eq!(status, 422, "{body}");
        let many: Vec<Value> = (0..1001)
            .map(|i| json!({"sha256": sha256_hex(i.to_string().as_bytes()), "name": "n", "owner_id": user}))
            .collect();
        let (status, _) = import(&srv, &srv.admin_key, Value::Array(many)).await;
        assert_eq!(status, 422);
        let (_, developer_key) = srv.member_with_key(&ws, "developer").await;
        let (status, body) = import(
            &srv,
            &developer_key,
            json!([{"key": foreign_key(), "name": "mine", "owner_id": user, "workspace_id": ws}]),
        )
        .await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["code"], "insufficient_permissions");
    })
    .await;
}
