//! SPEC §9: an acknowledged write survives `kill -9`.

use crate::harness::{backends, Backend, PgDatabase, ServerProcess, TempDir};
use serde_json::json;

#[tokio::test]
async fn keys_acknowledged_before_kill_9_all_verify_after_restart() {
    for backend in backends() {
        let dir = TempDir::new();
        let pg = match &backend {
            Backend::Sqlite => None,
            Backend::Postgres(admin) => Some(PgDatabase::create(admin).await),
        };
        let db = pg.as_ref().map(|p| p.url.as_str());
        let mut first = ServerProcess::spawn(&dir.0, db, &[]);
        first.wait_ready().await;
        let admin = first.admin_key();
        let http = reqwest::Client::new();
        let mut keys = Vec::new();
        for i in 0..150 {
            let r = http
                .post(format!("{}/v1/keys", first.url))
                .bearer_auth(&admin)
                .json(&json!({"name": format!("durable {i}")}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            let body: serde_json::Value = r.json().await.unwrap();
            keys.push(body["key"].as_str().unwrap().to_owned());
        }
        first.kill_9();

        let second = ServerProcess::spawn(&dir.0, db, &[]);
        second.wait_ready().await;
        assert!(
            !second.stdout().contains("admin API key"),
            "no second bootstrap"
        );
        for k in &keys {
            let r = http
                .post(format!("{}/v1/verify", second.url))
                .bearer_auth(&admin)
                .json(&json!({"key": k}))
                .send()
                .await
                .unwrap();
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["code"], "VALID", "{} after kill -9", backend.name());
        }
    }
}
