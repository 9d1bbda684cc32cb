//! The change log as followers read it.

use crate::db::{actor, each_backend, owner_and_key};
use latchkey_store::Change;
use sqlx::any::AnyPoolOptions;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn the_log_is_read_in_order_counted_floored_and_pruned() {
    each_backend(|store, _| async move {
        let mut hashes = vec![];
        for _ in 0..3 {
            let (_, _, _, new) = owner_and_key(&store).await;
            store.create_key(&new, &actor()).await.unwrap();
            hashes.push(new.hash);
        }
        let all = store.changes_after(0, None, 1000).await.unwrap();
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "in order");
        let keys: Vec<_> = all
            .iter()
            .filter_map(|e| match &e.change {
                Some(Change::Key(h)) => Some(h.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(keys, hashes);
        let (first, last) = (all[0].seq, all.last().unwrap().seq);
        // Paging and bounds.
        let page = store.changes_after(first, Some(last - 1), 2).await.unwrap();
        assert!(page.len() <= 2 && page.iter().all(|e| e.seq > first && e.seq < last));
        assert_eq!(
            store.count_changes(0, last).await.unwrap(),
            all.len() as i64
        );
        assert_eq!(store.count_changes(last, i64::MAX).await.unwrap(), 0);
        assert_eq!(store.oldest_change().await.unwrap(), Some(first));
        // The floor a starting node takes: the last entry older than the given time.
        assert_eq!(store.change_floor_before(now() + 5).await.unwrap(), last);
        assert_eq!(store.change_floor_before(0).await.unwrap(), 0);

        let pruned = store.prune_changes(now() + 5).await.unwrap();
        assert_eq!(pruned, all.len() as u64);
        assert_eq!(store.oldest_change().await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn an_entry_of_an_unknown_kind_is_still_read() {
    each_backend(|store, url| async move {
        sqlx::any::install_default_drivers();
        let any_url = if url.starts_with("postgres") {
            url.clone()
        } else {
            format!("sqlite://{url}")
        };
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&any_url)
            .await
            .unwrap();
        sqlx::query("INSERT INTO changes (at, kind, subject) VALUES ($1, 'from_the_future', 'x')")
            .bind(now())
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let all = store.changes_after(0, None, 1000).await.unwrap();
        let last = all.last().unwrap();
        assert_eq!(
            last.change, None,
            "a newer node's kind: counted, not understood"
        );
    })
    .await;
}
