//! The binary as an operator runs it: `init --json`, TLS, the plain-HTTP guard, SIGTERM.

use crate::harness::{ServerProcess, TempDir};
use serde_json::{json, Value};
use std::process::Command;

fn latchkey(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .env_remove("LATCHKEY_DATABASE")
        .output()
        .unwrap()
}

#[tokio::test]
async fn init_json_bootstraps_once_and_serve_uses_it() {
    let dir = TempDir::new();
    let d = dir.0.to_str().unwrap();
    let out = latchkey(&["init", "--json", "--data-dir", d]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let boot: Value = serde_json::from_slice(&out.stdout).unwrap();
    for f in [
        "admin_user_id",
        "admin_email",
        "admin_password",
        "admin_key",
    ] {
        assert!(boot[f].as_str().is_some_and(|s| !s.is_empty()), "{f}");
    }
    let again = latchkey(&["init", "--json", "--data-dir", d]);
    assert_eq!(again.status.code(), Some(1), "a second init refuses");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.0.join("secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the generated server secret is private"
        );
    }

    let srv = ServerProcess::spawn(&dir.0, None, &[]);
    srv.wait_ready().await;
    let health = reqwest::get(format!("{}/healthz", srv.url)).await.unwrap();
    assert!(
        health.headers().get("strict-transport-security").is_none(),
        "HSTS only over HTTPS (RFC 6797 §7.2)"
    );
    assert!(
        !srv.stdout().contains("admin API key"),
        "serve does not bootstrap again"
    );
    let me: Value = reqwest::Client::new()
        .get(format!("{}/v1/me", srv.url))
        .bearer_auth(boot["admin_key"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"]["id"], boot["admin_user_id"]);
    assert_eq!(me["workspace"]["name"], "Default");
    assert!(me["permissions"]
        .as_array()
        .unwrap()
        .contains(&json!("latchkey:*")));
}

#[tokio::test]
async fn plain_http_outside_loopback_is_refused() {
    let dir = TempDir::new();
    let out = latchkey(&[
        "serve",
        "--listen",
        "0.0.0.0:0",
        "--data-dir",
        dir.0.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--insecure-http") && err.contains("--tls-cert"),
        "{err}"
    );
}

#[tokio::test]
async fn serves_https_with_the_configured_certificate() {
    let dir = TempDir::new();
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert_pem = cert.cert.pem();
    std::fs::write(dir.0.join("cert.pem"), &cert_pem).unwrap();
    std::fs::write(dir.0.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    let (c, k) = (dir.0.join("cert.pem"), dir.0.join("key.pem"));
    let srv = ServerProcess::spawn_with(
        &dir.0,
        None,
        &[],
        &[
            "--tls-cert",
            c.to_str().unwrap(),
            "--tls-key",
            k.to_str().unwrap(),
        ],
        "https",
    );
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let mut ok = false;
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{}/healthz", srv.url)).send().await {
            assert_eq!(r.status(), 200);
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ok, "HTTPS answered: {}", srv.output());
    let me = client
        .get(format!("{}/v1/me", srv.url))
        .bearer_auth(srv.admin_key())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    // Defect 18: served over TLS, every response tells browsers to stay on HTTPS.
    let hsts = |r: &reqwest::Response| {
        r.headers()
            .get("strict-transport-security")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(hsts(&me).as_deref(), Some("max-age=63072000"));
    for path in ["/healthz", "/nothing-here", "/login", "/v1/keys"] {
        let r = client
            .get(format!("{}{path}", srv.url))
            .send()
            .await
            .unwrap();
        assert_eq!(hsts(&r).as_deref(), Some("max-age=63072000"), "{path}");
    }
    // Plain HTTP on the TLS port gets no API response.
    let plain = reqwest::get(format!("{}/healthz", srv.url.replace("https", "http"))).await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
}

#[tokio::test]
async fn sigterm_finishes_and_flushes_batched_usage() {
    let dir = TempDir::new();
    // A flush interval far longer than the test: only the shutdown flush can record the use.
    let env = [("LATCHKEY_USAGE_FLUSH_MS", "600000")];
    let mut srv = ServerProcess::spawn(&dir.0, None, &env);
    srv.wait_ready().await;
    let admin = srv.admin_key();
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{}/v1/keys", srv.url))
        .bearer_auth(&admin)
        .json(&json!({"name": "used once"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let me = http
        .get(format!("{}/v1/me", srv.url))
        .bearer_auth(created["key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let status = srv.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");

    let again = ServerProcess::spawn(&dir.0, None, &env);
    again.wait_ready().await;
    let key: Value = http
        .get(format!("{}/v1/keys/{id}", again.url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        key["last_used_at"].is_string(),
        "flushed at shutdown: {key}"
    );
}
