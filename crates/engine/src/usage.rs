//! What verification writes, without a database write per verification:
//! - `last_used_at`: a key's use is recorded at most once a minute;
//! - usage (SPEC §11.3): every outcome counted per key, code and minute.
//!
//! Both are collected in memory and flushed in one transaction every interval and at shutdown,
//! so writes grow with the number of keys in use, not with the request rate.

use crate::cache::KeyEntry;
use latchkey_store::{Granularity, SqlStore, UsageCount};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct UsageRecorder {
    pending: Mutex<HashMap<String, i64>>,
    counts: Mutex<HashMap<CountKey, Counted>>,
}

/// One key entry's outcomes with one code in one minute. Keyed by the entry's address, not
/// its id, so counting allocates nothing; two entries of one key (before and after a reload)
/// are two counts that the database adds up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct CountKey {
    entry: usize,
    minute: i64,
    code: &'static str,
}

struct Counted {
    /// Holds the entry, so its address is not reused while the count is pending.
    key: Arc<KeyEntry>,
    count: i64,
    credits: i64,
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

    /// Counts one verification outcome of `key` at `at` (`code`: `VALID` or the denial's
    /// verify code), with the credits it spent.
    pub fn count(&self, key: &Arc<KeyEntry>, at: i64, code: &'static str, credits: i64) {
        if !key.is_stored() {
            return;
        }
        let k = CountKey {
            entry: Arc::as_ptr(key) as usize,
            minute: Granularity::Minute.start(at),
            code,
        };
        let mut counts = self.counts.lock().expect("usage lock");
        match counts.get_mut(&k) {
            Some(c) => {
                c.count += 1;
                c.credits += credits;
            }
            None => {
                counts.insert(
                    k,
                    Counted {
                        key: key.clone(),
                        count: 1,
                        credits,
                    },
                );
            }
        }
    }

    /// Adds the counted outcomes to the usage buckets. The counts leave memory before the
    /// write and come back if it fails; the write runs in a task of its own, so a flush cut
    /// short (an aborted ticker) still finishes it.
    pub async fn flush_counts(&self, store: &SqlStore) {
        let taken = std::mem::take(&mut *self.counts.lock().expect("usage lock"));
        if taken.is_empty() {
            return;
        }
        let rows: Vec<UsageCount> = taken
            .iter()
            .map(|(k, c)| UsageCount {
                key_id: c.key.id.clone(),
                workspace_id: c.key.workspace_id.clone(),
                owner_id: c.key.owner_id.clone(),
                minute: k.minute,
                code: k.code,
                count: c.count,
                credits: c.credits,
            })
            .collect();
        let store = store.clone();
        let written = tokio::spawn(async move { store.record_usage(&rows).await }).await;
        if !matches!(written, Ok(Ok(()))) {
            tracing::warn!(buckets = taken.len(), "could not record usage; will retry");
            let mut counts = self.counts.lock().expect("usage lock");
            for (k, c) in taken {
                match counts.get_mut(&k) {
                    Some(now) => {
                        now.count += c.count;
                        now.credits += c.credits;
                    }
                    None => {
                        counts.insert(k, c);
                    }
                }
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
        self.flush_counts(store).await;
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
