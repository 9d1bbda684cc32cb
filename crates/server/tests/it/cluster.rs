//! SPEC §9: several nodes on one database. A change made through one node reaches the others'
//! caches by the change log, without waiting for cache expiry. The bound below is generous on
//! purpose: this asserts convergence, not speed (the propagation time is a benchmark's job).

use crate::harness::{backends, each_backend, eventually, Backend, TestServer};
use serde_json::{json, Value};
use std::time::Duration;

/// Convergence, not speed: generous on purpose.
const CONVERGES: Duration = Duration::from_secs(10);

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
        eventually("role change", CONVERGES, || async {
            verify_code(&b, json!({"key": key, "permissions": ["documents:write"]})).await
                == "INSUFFICIENT_PERMISSIONS"
        })
        .await;

        a.delete(&format!("/v1/workspaces/{ws}/members/{user}"), &a.admin_key)
            .await
            .expect(204);
        eventually("membership removal", CONVERGES, || async {
            verify_code(&b, json!({"key": key})).await == "FORBIDDEN"
        })
        .await;

        a.set_member(&ws, &user, "developer").await;
        eventually("membership restored", CONVERGES, || async {
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
        eventually("revocation", CONVERGES, || async {
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
    eventually("revocation by notification", CONVERGES, || async {
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
    eventually(
        "revocation after the listener reconnected",
        CONVERGES,
        || async { b.get("/v1/me", k2["key"].as_str().unwrap()).await.status == 401 },
    )
    .await;
    b.stop().await;
}

/// The shared PostgreSQL's URL; these scenarios are about PostgreSQL's visibility rules.
fn postgres_admin_url() -> Option<String> {
    backends().into_iter().find_map(|b| match b {
        Backend::Postgres(url) => Some(url),
        Backend::Sqlite => None,
    })
}

/// A transaction on the deployment's database that revokes a key and logs it, left open: it
/// holds a sequence number that other nodes see only when (and if) it commits.
struct HeldRevocation {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
}

impl HeldRevocation {
    async fn begin(db: &sqlx::PgPool, key_id: &str) -> Self {
        let mut tx = db.begin().await.unwrap();
        let hash: String =
            sqlx::query_scalar("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 RETURNING hash")
                .bind(latchkey_server::now())
                .bind(key_id)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
        sqlx::query("INSERT INTO changes (at, kind, subject) VALUES ($1, 'key', $2)")
            .bind(latchkey_server::now())
            .bind(hash)
            .execute(&mut *tx)
            .await
            .unwrap();
        Self { tx }
    }

    async fn commit(self) {
        self.tx.commit().await.unwrap();
    }
}

/// A fresh node on its own PostgreSQL database, and a pool on that database. `sparse`: change
/// numbers as CockroachDB's `SERIAL` gives them, unique and increasing but never consecutive.
async fn deployment(admin_url: &str, sparse: bool) -> (TestServer, sqlx::PgPool) {
    let node = TestServer::start(&Backend::Postgres(admin_url.to_owned())).await;
    let (url, _) = node.database_and_secret();
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    if sparse {
        sqlx::query("ALTER SEQUENCE changes_seq_seq INCREMENT BY 1000")
            .execute(&db)
            .await
            .unwrap();
    }
    (node, db)
}

async fn key_id_and_secret(node: &TestServer, name: &str) -> (String, String) {
    let k = node
        .post("/v1/keys", &node.admin_key, json!({"name": name}))
        .await
        .expect(201);
    (
        k["id"].as_str().unwrap().to_owned(),
        k["key"].as_str().unwrap().to_owned(),
    )
}

/// Below the follower's 10 s hole timeout, so only reading past an open hole can pass in time.
const BEFORE_HOLES_EXPIRE: Duration = Duration::from_secs(8);

/// An open transaction below more than a thousand newer changes: a revocation made above them
/// reaches node B while the hole is still open, and the held revocation once it commits.
#[tokio::test]
async fn changes_above_an_open_hole_and_the_hole_itself_reach_other_nodes() {
    let Some(admin_url) = postgres_admin_url() else {
        eprintln!("not run: needs LATCHKEY_TEST_POSTGRES_URL");
        return;
    };
    for sparse in [false, true] {
        let (a, db) = deployment(&admin_url, sparse).await;
        let b = a.another_node().await;
        let (held_id, held_key) = key_id_and_secret(&a, "revoked in a slow transaction").await;
        let (late_id, late_key) = key_id_and_secret(&a, "revoked above the hole").await;
        for k in [&held_key, &late_key] {
            b.get("/v1/me", k).await.expect(200);
        }

        let held = HeldRevocation::begin(&db, &held_id).await;
        // 1,100 committed changes above the hole (harmless: no such user).
        sqlx::query(
            "INSERT INTO changes (at, kind, subject) \
             SELECT $1, 'user', 'usr_nobody' FROM generate_series(1, 1100)",
        )
        .bind(latchkey_server::now())
        .execute(&db)
        .await
        .unwrap();
        a.delete(&format!("/v1/keys/{late_id}"), &a.admin_key)
            .await
            .expect(204);
        eventually(
            &format!("revocation above an open hole (sparse: {sparse})"),
            BEFORE_HOLES_EXPIRE,
            || async { b.get("/v1/me", &late_key).await.status == 401 },
        )
        .await;
        assert_eq!(
            b.get("/v1/me", &held_key).await.status,
            200,
            "not committed yet"
        );

        held.commit().await;
        eventually(
            &format!("revocation committed late (sparse: {sparse})"),
            BEFORE_HOLES_EXPIRE,
            || async { b.get("/v1/me", &held_key).await.status == 401 },
        )
        .await;
        b.stop().await;
        db.close().await;
    }
}

/// A transaction numbered below the log's end when node B starts, committed after: B applies it.
#[tokio::test]
async fn a_transaction_committed_after_a_node_started_reaches_it() {
    let Some(admin_url) = postgres_admin_url() else {
        eprintln!("not run: needs LATCHKEY_TEST_POSTGRES_URL");
        return;
    };
    for sparse in [false, true] {
        let (a, db) = deployment(&admin_url, sparse).await;
        let (held_id, held_key) = key_id_and_secret(&a, "revoked in a slow transaction").await;
        let held = HeldRevocation::begin(&db, &held_id).await;
        // A later, committed change: the log's end is now above the held number.
        key_id_and_secret(&a, "committed above").await;

        let b = a.another_node().await;
        b.get("/v1/me", &held_key).await.expect(200);
        held.commit().await;
        eventually(
            &format!("revocation committed after start (sparse: {sparse})"),
            BEFORE_HOLES_EXPIRE,
            || async { b.get("/v1/me", &held_key).await.status == 401 },
        )
        .await;
        b.stop().await;
        db.close().await;
    }
}
