//! SPEC §9: an acknowledged write survives `kill -9`.

use crate::harness::{backends, each_backend, PgDatabase, ServerProcess, TempDir};
use serde_json::json;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Keys acknowledged before the crash: `LATCHKEY_CRASH_WRITES` (default 400; the benchmark
/// run uses 10,000).
fn crash_writes() -> usize {
    std::env::var("LATCHKEY_CRASH_WRITES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400)
}

/// Eight writers create keys as fast as the server takes them; the process is `kill -9`ed
/// while they are at it. Every key that was answered 201 verifies after the restart (a write
/// in flight at the kill may or may not have landed: it was never acknowledged).
#[tokio::test]
async fn keys_acknowledged_before_kill_9_all_verify_after_restart() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    const WRITERS: usize = 8;
    let target = crash_writes();
    for backend in backends() {
        let dir = TempDir::new();
        let pg = PgDatabase::for_backend(&backend).await;
        let db = pg.as_ref().map(|p| p.url.as_str());
        let mut first = ServerProcess::spawn(&dir.0, db, &[]);
        first.wait_ready().await;
        let admin = first.admin_key();
        let http = reqwest::Client::new();
        let acked = Arc::new(Mutex::new(Vec::<String>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (http, url, admin) = (http.clone(), first.url.clone(), admin.clone());
                let (acked, stop) = (acked.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        i += 1;
                        let sent = http
                            .post(format!("{url}/v1/keys"))
                            .bearer_auth(&admin)
                            .json(&json!({"name": format!("durable {w}-{i}")}))
                            .send()
                            .await;
                        // After the kill: refused or cut off, never acknowledged.
                        let Ok(r) = sent else { break };
                        if r.status() != 201 {
                            break;
                        }
                        let Ok(body) = r.json::<serde_json::Value>().await else {
                            break;
                        };
                        acked
                            .lock()
                            .unwrap()
                            .push(body["key"].as_str().unwrap().to_owned());
                    }
                })
            })
            .collect();
        while acked.lock().unwrap().len() < target {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        first.kill_9(); // while all eight are writing
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.await.unwrap();
        }
        let keys = std::mem::take(&mut *acked.lock().unwrap());
        assert!(keys.len() >= target);

        let second = ServerProcess::spawn(&dir.0, db, &[]);
        second.wait_ready().await;
        assert!(
            !second.stdout().contains("admin API key"),
            "no second bootstrap"
        );
        let keys = Arc::new(keys);
        let checkers: Vec<_> = (0..WRITERS)
            .map(|c| {
                let (http, url, admin, keys) = (
                    http.clone(),
                    second.url.clone(),
                    admin.clone(),
                    keys.clone(),
                );
                let name = backend.name();
                tokio::spawn(async move {
                    for k in keys.iter().skip(c).step_by(WRITERS) {
                        let body: serde_json::Value = http
                            .post(format!("{url}/v1/verify"))
                            .bearer_auth(&admin)
                            .json(&json!({"key": k}))
                            .send()
                            .await
                            .unwrap()
                            .json()
                            .await
                            .unwrap();
                        assert_eq!(
                            body["code"], "VALID",
                            "an acknowledged key after kill -9 ({name})"
                        );
                    }
                })
            })
            .collect();
        for c in checkers {
            c.await.unwrap();
        }
        eprintln!(
            "{}: {} acknowledged keys verified after kill -9",
            backend.name(),
            keys.len()
        );
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
