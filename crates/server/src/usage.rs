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

    pub async fn flush(&self, store: &SqlStore) {
        let batch: Vec<(String, i64)> = {
            let mut p = self.pending.lock().expect("usage lock");
            p.drain().collect()
        };
        if batch.is_empty() {
            return;
        }
        if let Err(e) = store.record_last_used(&batch).await {
            tracing::warn!(error = %e, keys = batch.len(), "could not record last_used_at; will retry");
            let mut p = self.pending.lock().expect("usage lock");
            for (id, at) in batch {
                let t = p.entry(id).or_insert(at);
                *t = (*t).max(at);
            }
        }
    }
}
