//! SPEC §9: an acknowledged write survives `kill -9`.

use crate::harness::{backends, each_backend, Backend, PgDatabase, ServerProcess, TempDir};
use serde_json::json;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

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

/// Clients that give up mid-request (timeouts, closed tabs) drop the request's work at whatever
/// await it had reached, including inside the database driver's BEGIN or COMMIT. Writes must
/// keep working afterwards: a connection left inside a half-started transaction would refuse
/// every later write (SQLite has a single writer connection).
#[tokio::test]
async fn writes_keep_working_after_clients_abandon_requests_mid_write() {
    each_backend(|srv| async move {
        for round in 0..20u64 {
            // Give-up moments spread over the whole write, different in every round.
            // Raw connections closed after sending, as a load generator does when it stops.
            let addr = srv.url.trim_start_matches("http://").to_owned();
            let body = r#"{"name":"abandoned"}"#;
            let request = format!(
                "POST /v1/keys HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                srv.admin_key,
                body.len()
            );
            let sends = (0..64u64).map(|i| {
                let patience = Duration::from_micros(100 + (round * 64 + i) * 389 % 3000);
                let (addr, request) = (addr.clone(), request.clone());
                async move {
                    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
                    conn.write_all(request.as_bytes()).await.unwrap();
                    tokio::time::sleep(patience).await;
                    drop(conn);
                }
            });
            futures::future::join_all(sends).await;
            // Whatever the abandoned requests left behind, the next write succeeds.
            srv.post(
                "/v1/keys",
                &srv.admin_key,
                json!({"name": format!("after {round}")}),
            )
            .await
            .expect(201);
        }
    })
    .await;
}
