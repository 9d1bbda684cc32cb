//! `last_used_at` without a database write per verification: a key's use is recorded at most
//! once a minute, collected in memory and flushed in one transaction every interval and at
//! shutdown. Writes then grow with the number of keys in use, not with the request rate.

use crate::cache::KeyEntry;
use latchkey_store::SqlStore;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct UsageRecorder {
    pending: Mutex<HashMap<String, i64>>,
}

/// How stale `last_used_at` may be, in seconds.
pub const PRECISION: i64 = 60;

impl UsageRecorder {
    /// Records a use of `key` at `at` (unix seconds) unless one was recorded within
    /// [`PRECISION`]; the check is one atomic read, so most requests take no lock.
    pub fn touch(&self, key: &KeyEntry, at: i64) {
        if key.claim_use(at, PRECISION) {
            self.record(&key.id, at);
        }
    }

    fn record(&self, key_id: &str, at: i64) {
        let mut p = self.pending.lock().expect("usage lock");
        match p.get_mut(key_id) {
            Some(t) => *t = (*t).max(at),
            None => {
                p.insert(key_id.to_owned(), at);
            }
        }
    }

    /// A use not yet flushed, so reads can show it before the next flush.
    pub fn pending(&self, key_id: &str) -> Option<i64> {
        self.pending
            .lock()
            .expect("usage lock")
            .get(key_id)
            .copied()
    }

    /// Writes the pending uses. Cancel-safe: an entry leaves the pending set only after the
    /// write that carries it committed (and only if no newer use arrived meanwhile), so a
    /// flush cut short loses nothing; the next one writes it.
    pub async fn flush(&self, store: &SqlStore) {
        let batch: Vec<(String, i64)> = {
            let p = self.pending.lock().expect("usage lock");
            p.iter().map(|(id, at)| (id.clone(), *at)).collect()
        };
        if batch.is_empty() {
            return;
        }
        match store.record_last_used(&batch).await {
            Ok(()) => {
                let mut p = self.pending.lock().expect("usage lock");
                for (id, at) in batch {
                    if p.get(&id) == Some(&at) {
                        p.remove(&id);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, keys = batch.len(), "could not record last_used_at; will retry");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Waker};

    #[tokio::test]
    async fn a_flush_cut_short_keeps_what_it_did_not_write() {
        let dir = std::env::temp_dir().join(format!("latchkey-usage-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = SqlStore::open(dir.join("db.sqlite").to_str().unwrap())
            .await
            .unwrap();
        let usage = UsageRecorder::default();
        usage.record("key_1", 100);
        {
            // Started, then dropped before its write completes (as an aborted task would be).
            let mut flush = pin!(usage.flush(&store));
            let mut cx = Context::from_waker(Waker::noop());
            assert!(flush.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(usage.pending("key_1"), Some(100), "still to be written");
        usage.flush(&store).await;
        assert_eq!(usage.pending("key_1"), None, "written by the next flush");
        usage.record("key_1", 200);
        assert_eq!(usage.pending("key_1"), Some(200));
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
