//! Which browser origins a CORS preflight may be allowed from: those named in `allowed_origins`
//! of an active publishable key (SPEC §10.4). A preflight carries no credential, so this is a
//! question about the whole deployment, answered from one list read from the store and kept
//! until a key changes.

use latchkey_core::validate::origin_allowed;
use latchkey_store::{Change, SqlStore, StoreError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The origin patterns of active publishable keys, each with its key's expiry.
type Lists = Arc<Vec<(Vec<String>, Option<i64>)>>;

/// The lists, read on the first preflight after any key changed. A key change (created,
/// edited, rolled, revoked) reaches this node by the change log like every invalidation, so a
/// revoked key closes its origins as fast as it stops verifying.
#[derive(Default)]
pub struct PublishableOrigins {
    lists: Mutex<Option<Lists>>,
    /// Bumped by every invalidation: a read that raced one is used once, not kept.
    epoch: AtomicU64,
}

impl PublishableOrigins {
    /// Whether an active publishable key lists `origin` (patterns match as for verification).
    pub async fn allowed(
        &self,
        store: &SqlStore,
        origin: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let cached = self.lists.lock().expect("origins lock").clone();
        let lists = match cached {
            Some(l) => l,
            None => {
                let epoch = self.epoch.load(Ordering::Acquire);
                let read: Lists = Arc::new(store.publishable_origins().await?);
                let mut slot = self.lists.lock().expect("origins lock");
                if self.epoch.load(Ordering::Acquire) == epoch {
                    *slot = Some(read.clone());
                }
                read
            }
        };
        Ok(lists.iter().any(|(patterns, expires_at)| {
            expires_at.is_none_or(|t| t > now) && origin_allowed(patterns, origin)
        }))
    }

    /// Forgets the lists when any of `changes` is a key's.
    pub fn apply(&self, changes: &[Change]) {
        if changes.iter().any(|c| matches!(c, Change::Key(_))) {
            self.forget();
        }
    }

    /// Forgets the lists (a key changed, or everything must be forgotten).
    pub fn forget(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        *self.lists.lock().expect("origins lock") = None;
    }
}
