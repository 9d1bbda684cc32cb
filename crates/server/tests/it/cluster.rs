//! SPEC §9: several nodes on one database. A change made through one node reaches the others'
//! caches by the change log, without waiting for cache expiry. The bound below is generous on
//! purpose: this asserts convergence, not speed (the propagation time is a benchmark's job).

use crate::harness::{backends, each_backend, Backend, TestServer};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Polls `probe` until it returns true, for at most 10 s.
async fn eventually<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if probe().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what}: not seen on the other node within 10 s");
}

async fn verify_code(node: &TestServer, body: Value) -> String {
    node.verify(body).await["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn changes_on_one_node_reach_the_other() {
    each_backend(|a| async move {
        let b = a.another_node().await;
        let ws = a.workspace("Cluster").await;
        let (user, key) = a.member_with_key(&ws, "developer").await;

        // Warm node B's cache with the key, its owner and the workspace.
        b.get("/v1/me", &key).await.expect(200);
        assert_eq!(
            verify_code(&b, json!({"key": key, "permissions": ["documents:write"]})).await,
            "VALID"
        );

        a.set_member(&ws, &user, "viewer").await;
        eventually("role change", || async {
            verify_code(&b, json!({"key": key, "permissions": ["documents:write"]})).await
                == "INSUFFICIENT_PERMISSIONS"
        })
        .await;

        a.delete(&format!("/v1/workspaces/{ws}/members/{user}"), &a.admin_key)
            .await
            .expect(204);
        eventually("membership removal", || async {
            verify_code(&b, json!({"key": key})).await == "FORBIDDEN"
        })
        .await;

        a.set_member(&ws, &user, "developer").await;
        eventually("membership restored", || async {
            verify_code(&b, json!({"key": key})).await == "VALID"
        })
        .await;

        let id = b.get("/v1/me", &key).await.expect(200)["credential"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        a.delete(&format!("/v1/keys/{id}"), &a.admin_key)
            .await
            .expect(204);
        eventually("revocation", || async {
            b.get("/v1/me", &key).await.status == 401
        })
        .await;
        b.stop().await;
    })
    .await;
}

/// PostgreSQL: node B polls only once a minute, so it can only hear of changes in time through
/// LISTEN/NOTIFY; its listener's connection is killed and must come back by itself.
#[tokio::test]
async fn the_listener_reconnects_after_its_connection_is_killed() {
    let Some(Backend::Postgres(admin_url)) = backends()
        .into_iter()
        .find(|b| matches!(b, Backend::Postgres(_)))
    else {
        // Without PostgreSQL there is no listener to test (SQLite nodes follow the log by polling,
        // covered above); CI always sets LATCHKEY_TEST_POSTGRES_URL.
        eprintln!("not run: needs LATCHKEY_TEST_POSTGRES_URL");
        return;
    };
    let a = TestServer::start(&Backend::Postgres(admin_url.clone())).await;
    let b = a.another_node_polling(Duration::from_secs(60)).await;
    let k1 = a
        .post("/v1/keys", &a.admin_key, json!({"name": "one"}))
        .await
        .expect(201);
    let k2 = a
        .post("/v1/keys", &a.admin_key, json!({"name": "two"}))
        .await
        .expect(201);
    for k in [&k1, &k2] {
        b.get("/v1/me", k["key"].as_str().unwrap())
            .await
            .expect(200);
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // the first poll tick has passed

    a.delete(
        &format!("/v1/keys/{}", k1["id"].as_str().unwrap()),
        &a.admin_key,
    )
    .await
    .expect(204);
    eventually("revocation by notification", || async {
        b.get("/v1/me", k1["key"].as_str().unwrap()).await.status == 401
    })
    .await;

    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    let killed: i64 = sqlx::query_scalar(
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND query ILIKE 'LISTEN%'",
    )
    .bind(a.pg_database().unwrap())
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(killed >= 1, "found the listeners' connections");
    tokio::time::sleep(Duration::from_secs(1)).await;

    a.delete(
        &format!("/v1/keys/{}", k2["id"].as_str().unwrap()),
        &a.admin_key,
    )
    .await
    .expect(204);
    eventually("revocation after the listener reconnected", || async {
        b.get("/v1/me", k2["key"].as_str().unwrap()).await.status == 401
    })
    .await;
    b.stop().await;
}
