//! SPEC §3: no response, log line or metric ever contains a secret. Runs the real binary with
//! the most verbose logging and looks for every secret it issued in everything it printed.

use crate::harness::{ServerProcess, TempDir};
use serde_json::{json, Value};

#[tokio::test]
async fn no_issued_secret_appears_in_the_server_log() {
    let dir = TempDir::new();
    let srv = ServerProcess::spawn(&dir.0, None, &[("LATCHKEY_LOG", "trace")]);
    srv.wait_ready().await;
    let admin = srv.admin_key();
    let http = reqwest::Client::new();
    let post = |path: &str, key: &str, body: Value| {
        http.post(format!("{}{path}", srv.url))
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    let mut secrets = Vec::new();
    let created: Value = post("/v1/keys", &admin, json!({"name": "logged?"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    secrets.push(key.clone());
    let rolled: Value = post(
        &format!("/v1/keys/{}/roll", created["id"].as_str().unwrap()),
        &admin,
        json!({"grace_seconds": 60}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let rolled_key = rolled["key"].as_str().unwrap().to_owned();
    secrets.push(rolled_key.clone());
    let pw = "a password that must stay secret";
    post(
        "/v1/users",
        &admin,
        json!({"email": "pw@example.com", "name": "P", "password": pw}),
    )
    .await
    .unwrap();
    secrets.push(pw.to_owned());

    // Use the keys every way, well and badly.
    for k in [&key, &rolled_key] {
        http.get(format!("{}/v1/me", srv.url))
            .header("x-api-key", k.as_str())
            .send()
            .await
            .unwrap();
        http.get(format!("{}/v1/me", srv.url))
            .header("authorization", k.as_str())
            .send()
            .await
            .unwrap();
        http.get(format!("{}/v1/me?api_key={k}", srv.url))
            .send()
            .await
            .unwrap();
        // Pasted into a path by mistake: the access log shows route templates, not paths.
        http.get(format!("{}/v1/keys/{k}", srv.url))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        post(
            "/v1/verify",
            &admin,
            json!({"key": k, "permissions": ["x:y"]}),
        )
        .await
        .unwrap();
        post("/v1/keys", k, json!({"name": 5})).await.unwrap();
    }
    let mut wrong = key.clone();
    wrong.replace_range(10..11, if &key[10..11] == "a" { "b" } else { "a" });
    http.get(format!("{}/v1/me", srv.url))
        .bearer_auth(&wrong)
        .send()
        .await
        .unwrap();
    secrets.push(wrong);
    let metrics = http
        .get(format!("{}/metrics", srv.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await; // let a usage flush happen

    let log = srv.output() + &metrics;
    assert!(
        log.contains("/v1/me"),
        "the log was captured at trace level"
    );
    for s in &secrets {
        // The body alone (after the prefix) is what must never leak.
        let needle = if s.len() > 8 { &s[8..] } else { s.as_str() };
        assert!(
            !log.contains(needle),
            "a secret appeared in the server output"
        );
    }
}
