//! SPEC §12.2: leaked-key reports. GitHub's secret scanning reports, signed with a P-256 key
//! made here and configured as one of GitHub's, revoke the keys they name; a report whose
//! signature is missing, unknown or wrong changes nothing; `POST /v1/leaks` does the same for
//! a credential with `latchkey:leaks:report`. Both answer labels only.

use crate::harness::{each_backend_with, random_suffix, Resp, TestServer};
use crate::upstream::sha256_hex;
use base64::Engine;
use latchkey_server::config::{GithubPublicKey, LeakAction, LeakSettings};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::EncodePublicKey;
use reqwest::Method;
use serde_json::{json, Value};

const KID: &str = "bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c";

/// A fresh P-256 key pair, as GitHub's would be.
fn key_pair() -> SigningKey {
    loop {
        let bytes: [u8; 32] = rand::random();
        if let Ok(k) = SigningKey::from_slice(&bytes) {
            return k;
        }
    }
}

/// `[[leaks.github_public_keys]]` with `sk`'s public key under [`KID`], given as the PEM an
/// operator pastes from GitHub's meta API.
fn configure(sk: &SigningKey, action: LeakAction) -> impl Fn(&mut latchkey_server::Config) {
    let pem = VerifyingKey::from(sk)
        .to_public_key_pem(p256::pkcs8::LineEnding::LF)
        .unwrap();
    move |c| {
        c.leaks = LeakSettings {
            action,
            github_public_keys: vec![GithubPublicKey::from_pem(KID, &pem).unwrap()],
        }
    }
}

fn sign(sk: &SigningKey, body: &[u8]) -> String {
    let sig: Signature = sk.sign(body);
    base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes())
}

async fn send_github(srv: &TestServer, kid: &str, signature: &str, body: &[u8]) -> Resp {
    srv.send(
        srv.request(Method::POST, "/v1/leaks/github")
            .header("content-type", "application/json")
            .header("Github-Public-Key-Identifier", kid)
            .header("Github-Public-Key-Signature", signature)
            .body(body.to_vec()),
    )
    .await
}

fn github_body(tokens: &[&str]) -> Vec<u8> {
    let items: Vec<Value> = tokens
        .iter()
        .map(|t| {
            json!({"token": t, "type": "latchkey_api_key",
                   "url": "https://github.com/octo/repo/blob/abc/config.py", "source": "content"})
        })
        .collect();
    serde_json::to_vec(&items).unwrap()
}

/// A live key of a new member of a new workspace, and its id.
async fn victim(srv: &TestServer) -> (String, String) {
    let ws = srv.workspace(&format!("victim-{}", random_suffix())).await;
    let user = srv.user("victim").await;
    srv.set_member(&ws, &user, "developer").await;
    let k = srv.key_for(&ws, &user, json!({"name": "ci key"})).await;
    (
        k["key"].as_str().unwrap().to_owned(),
        k["id"].as_str().unwrap().to_owned(),
    )
}

/// The audit events with `action` about key `id` (as the instance admin sees them).
async fn events(srv: &TestServer, action: &str, id: &str) -> Vec<Value> {
    let all = srv
        .get(
            &format!("/v1/audit?action={action}&limit=500"),
            &srv.admin_key,
        )
        .await
        .expect(200);
    all["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"]["id"] == id)
        .cloned()
        .collect()
}

/// A key-shaped string whose checksum does not match.
fn bad_checksum(key: &str) -> String {
    let mut s = key.to_owned();
    let last = if s.ends_with('A') { "B" } else { "A" };
    s.replace_range(s.len() - 1.., last);
    s
}

async fn token_for(srv: &TestServer, key: &str) -> String {
    srv.post("/v1/auth/token", key, json!({})).await.expect(200)["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn leak_github_report_revokes_the_key_and_its_tokens_and_labels_each_match() {
    let sk = key_pair();
    each_backend_with(configure(&sk, LeakAction::Revoke), |srv| {
        let sk = sk.clone();
        async move {
            let (key, id) = victim(&srv).await;
            let token = token_for(&srv, &key).await;
            srv.get("/v1/me", &token).await.expect(200);
            let junk = "ghp_not_ours_at_all";
            let typo = bad_checksum(&key);
            let body = github_body(&[&key, junk, &typo]);
            let r = send_github(&srv, KID, &sign(&sk, &body), &body).await;
            let labels = r.expect(200);
            assert_eq!(
                labels,
                json!([
                    {"token_hash": sha256_hex(key.as_bytes()), "token_type": "latchkey_api_key", "label": "true_positive"},
                    {"token_hash": sha256_hex(junk.as_bytes()), "token_type": "latchkey_api_key", "label": "false_positive"},
                    {"token_hash": sha256_hex(typo.as_bytes()), "token_type": "latchkey_api_key", "label": "false_positive"},
                ])
            );
            // Revoked at once, through every front door, its token with it.
            assert_eq!(srv.verify(json!({"key": key})).await["code"], "REVOKED");
            srv.get("/v1/me", &key)
                .await
                .problem(401, "invalid_credentials");
            srv.get("/v1/me", &token)
                .await
                .problem(401, "invalid_credentials");
            // Audited: where it was found and what was done, never the key.
            let leaked = events(&srv, "key.leaked", &id).await;
            assert_eq!(leaked.len(), 1, "{leaked:?}");
            let detail = &leaked[0]["detail"];
            assert_eq!(detail["source"], "content");
            assert_eq!(
                detail["url"],
                "https://github.com/octo/repo/blob/abc/config.py"
            );
            assert_eq!(detail["action"], "revoke");
            assert_eq!(detail["reporter"], "github");
            assert!(!leaked[0].to_string().contains(&key[8..]), "{leaked:?}");
            assert_eq!(events(&srv, "key.revoked", &id).await.len(), 1);
        }
    })
    .await;
}

#[tokio::test]
async fn leak_github_reports_without_a_good_signature_change_nothing() {
    let sk = key_pair();
    let other = key_pair();
    each_backend_with(configure(&sk, LeakAction::Revoke), |srv| {
        let (sk, other) = (sk.clone(), other.clone());
        async move {
            let (key, id) = victim(&srv).await;
            let body = github_body(&[&key]);
            let good = sign(&sk, &body);
            // The body changed after signing (a URL edited, whitespace added).
            let mut tampered = body.clone();
            tampered.push(b' ');
            let mut forged_body = body.clone();
            forged_body.splice(1..1, b"{\"token\":\"x\",\"type\":\"t\"},".iter().copied());
            for (what, kid, sig, b) in [
                ("tampered body", KID, good.clone(), tampered),
                ("item added", KID, good.clone(), forged_body),
                (
                    "unknown key identifier",
                    "not-a-github-key",
                    good.clone(),
                    body.clone(),
                ),
                (
                    "signed by another key",
                    KID,
                    sign(&other, &body),
                    body.clone(),
                ),
                (
                    "not a signature",
                    KID,
                    "bm90IGEgc2lnbmF0dXJl".into(),
                    body.clone(),
                ),
                ("not base64", KID, "%%%".into(), body.clone()),
            ] {
                let r = send_github(&srv, kid, &sig, &b).await;
                let p = r.problem(401, "invalid_signature");
                assert!(!p.to_string().contains(&key[8..]), "{what}: {p}");
            }
            // No headers at all.
            let r = srv
                .send(
                    srv.request(Method::POST, "/v1/leaks/github")
                        .header("content-type", "application/json")
                        .body(body.clone()),
                )
                .await;
            r.problem(401, "invalid_signature");
            assert_eq!(srv.verify(json!({"key": key})).await["code"], "VALID");
            assert!(events(&srv, "key.leaked", &id).await.is_empty());
            assert!(events(&srv, "key.revoked", &id).await.is_empty());
            // The good signature still works afterwards.
            send_github(&srv, KID, &good, &body).await.expect(200);
            assert_eq!(srv.verify(json!({"key": key})).await["code"], "REVOKED");
        }
    })
    .await;
}

#[tokio::test]
async fn leak_reports_are_idempotent() {
    let sk = key_pair();
    each_backend_with(configure(&sk, LeakAction::Revoke), |srv| {
        let sk = sk.clone();
        async move {
            let (key, id) = victim(&srv).await;
            // The same key twice in one report, and the same report twice.
            let body = github_body(&[&key, &key]);
            let sig = sign(&sk, &body);
            for _ in 0..2 {
                let labels = send_github(&srv, KID, &sig, &body).await.expect(200);
                assert_eq!(labels[0]["label"], "true_positive");
                assert_eq!(labels[1]["label"], "true_positive");
            }
            srv.post("/v1/leaks", &srv.admin_key, json!({"keys": [key]}))
                .await
                .expect(200);
            assert_eq!(events(&srv, "key.leaked", &id).await.len(), 1);
            assert_eq!(events(&srv, "key.revoked", &id).await.len(), 1);
            assert_eq!(srv.verify(json!({"key": key})).await["code"], "REVOKED");
        }
    })
    .await;
}

#[tokio::test]
async fn leak_notify_mode_only_audits_once() {
    let sk = key_pair();
    each_backend_with(configure(&sk, LeakAction::Notify), |srv| {
        let sk = sk.clone();
        async move {
            let (key, id) = victim(&srv).await;
            let body = github_body(&[&key]);
            let sig = sign(&sk, &body);
            for _ in 0..2 {
                let labels = send_github(&srv, KID, &sig, &body).await.expect(200);
                assert_eq!(labels[0]["label"], "true_positive");
            }
            assert_eq!(srv.verify(json!({"key": key})).await["code"], "VALID");
            let leaked = events(&srv, "key.leaked", &id).await;
            assert_eq!(leaked.len(), 1, "{leaked:?}");
            assert_eq!(leaked[0]["detail"]["action"], "notify");
            assert!(events(&srv, "key.revoked", &id).await.is_empty());
        }
    })
    .await;
}

#[tokio::test]
async fn leak_api_reports_need_the_permission_and_reveal_only_labels() {
    let sk = key_pair();
    each_backend_with(configure(&sk, LeakAction::Revoke), |srv| async move {
        let (key, id) = victim(&srv).await;
        // A reporter in another workspace: its admin holds `latchkey:*`, a developer does not.
        let ws = srv.workspace(&format!("reporter-{}", random_suffix())).await;
        let (_, reporter) = srv.member_with_key(&ws, "admin").await;
        let (_, developer) = srv.member_with_key(&ws, "developer").await;
        srv.post("/v1/leaks", &developer, json!({"keys": [key]}))
            .await
            .problem(403, "insufficient_permissions");
        srv.call(Method::POST, "/v1/leaks", None, Some(json!({"keys": [key]})))
            .await
            .problem(401, "invalid_credentials");
        assert_eq!(srv.verify(json!({"key": key})).await["code"], "VALID");

        let typo = bad_checksum(&key);
        let r = srv
            .post(
                "/v1/leaks",
                &reporter,
                json!({"keys": [key, "hello", typo], "source": "pastebin", "url": "https://pastebin.example/x"}),
            )
            .await;
        let labels = r.expect(200);
        assert_eq!(
            labels,
            json!([
                {"token_hash": sha256_hex(key.as_bytes()), "token_type": "secret", "label": "true_positive"},
                {"token_hash": sha256_hex("hello".as_bytes()), "token_type": "unknown", "label": "false_positive"},
                {"token_hash": sha256_hex(typo.as_bytes()), "token_type": "secret", "label": "false_positive"},
            ])
        );
        let text = labels.to_string();
        assert!(
            !text.contains(&id) && !text.contains("ws_") && !text.contains("ci key"),
            "{text}"
        );
        assert_eq!(srv.verify(json!({"key": key})).await["code"], "REVOKED");
        let leaked = events(&srv, "key.leaked", &id).await;
        assert_eq!(leaked.len(), 1);
        assert_eq!(leaked[0]["detail"]["source"], "pastebin");
        assert_eq!(leaked[0]["detail"]["url"], "https://pastebin.example/x");
        assert_eq!(leaked[0]["detail"]["reporter"], "api");
        assert!(!leaked[0].to_string().contains(&key[8..]));
        // The victim's log does not name the reporter of another workspace either.
        assert_eq!(
            leaked[0]["actor"],
            json!({"user_id": null, "credential_id": null, "credential_name": "Leak report (api)"}),
        );
        // A key of the reporter's own workspace is audited under the reporter.
        let (_, own) = srv.member_with_key(&ws, "developer").await;
        let own_id = srv.get("/v1/me", &own).await.expect(200)["credential"]["key_id"]
            .as_str()
            .unwrap()
            .to_owned();
        srv.post("/v1/leaks", &reporter, json!({"keys": [own]}))
            .await
            .expect(200);
        let ev = events(&srv, "key.leaked", &own_id).await;
        assert_eq!(ev.len(), 1);
        assert!(ev[0]["actor"]["user_id"].is_string(), "{}", ev[0]);
        // Too many keys, or not a list: refused whole.
        let many: Vec<String> = (0..1001).map(|i| format!("k{i}")).collect();
        srv.post("/v1/leaks", &reporter, json!({"keys": many}))
            .await
            .problem(422, "validation_failed");
    })
    .await;
}

/// `latchkey signing-keys rotate --revoke-previous`: a leaked token signing key.
#[tokio::test]
async fn leaked_signing_key_rotate_revoke_previous_kills_its_tokens_everywhere() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let kid_of = |jwt: &str| -> String {
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(jwt.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        header["kid"].as_str().unwrap().to_owned()
    };
    crate::harness::each_backend(|srv| async move {
        let (key, _) = victim(&srv).await;
        let before = token_for(&srv, &key).await;
        let old_kid = kid_of(&before);
        let forward = |t: String| {
            srv.request(Method::GET, "/v1/forward-auth")
                .header("x-forwarded-method", "GET")
                .header("x-forwarded-proto", "http")
                .header("x-forwarded-host", "api.example.com")
                .header("x-forwarded-uri", "/documents")
                .header("x-forwarded-for", "127.0.0.1")
                .bearer_auth(t)
        };
        srv.get("/v1/me", &before).await.expect(200);
        assert_eq!(srv.send(forward(before.clone())).await.status, 200);
        let (db, secret) = srv.database_and_secret();
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args([
                "signing-keys",
                "rotate",
                "--revoke-previous",
                "--json",
                "--database",
                &db,
            ])
            .env("LATCHKEY_SECRET", &secret)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(answer["revoked_previous"], true);
        let new_kid = answer["kid"].as_str().unwrap().to_owned();
        assert_ne!(new_kid, old_kid);

        // The running server hears of it through the change log (within a second).
        crate::harness::eventually(
            "the old key's token is refused",
            std::time::Duration::from_secs(5),
            || {
                let srv = &srv;
                let before = before.clone();
                async move { srv.get("/v1/me", &before).await.status == 401 }
            },
        )
        .await;
        srv.get("/v1/me", &before)
            .await
            .problem(401, "invalid_credentials");
        assert_ne!(
            srv.verify(json!({"access_token": before})).await["valid"],
            true
        );
        assert_eq!(srv.send(forward(before.clone())).await.status, 401);
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
        assert_eq!(kids, vec![new_kid.as_str()]);
        // The key itself is not leaked: it gets new tokens, signed with the new key.
        let after = token_for(&srv, &key).await;
        assert_eq!(kid_of(&after), new_kid);
        srv.get("/v1/me", &after).await.expect(200);
    })
    .await;
}
