//! SPEC §9: several nodes on one database. A change made through one node reaches the others'
//! caches by the change log, without waiting for cache expiry. The bound below is generous on
//! purpose: this asserts convergence, not speed (the propagation time is a benchmark's job).

use crate::harness::{each_backend, TestServer};
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
