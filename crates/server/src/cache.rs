//! The in-memory view that answers verifications without the database: keys by hash, owners'
//! standing per workspace, and workspace policies.
//!
//! Correctness rule: after a write commits, [`VerifyCache::apply`] removes what it affected, so
//! the next request on this node reads fresh data. A load racing with a write could re-insert a
//! stale value; the global epoch closes that window (see [`VerifyCache::insert_key`]).

use latchkey_core::KeyHash;
use latchkey_store::{ApiKeyRecord, Change, Principal, TokenRecord, Workspace};
use moka::sync::Cache;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub struct VerifyCache {
    keys: Cache<KeyHash, Arc<ApiKeyRecord>>,
    principals: Cache<(String, String), Arc<Principal>>,
    workspaces: Cache<String, Arc<Workspace>>,
    tokens: Cache<String, Arc<TokenRecord>>,
    epoch: AtomicU64,
}

/// Taken before reading the database for a cache fill.
#[derive(Clone, Copy)]
pub struct Epoch(u64);

impl VerifyCache {
    /// `ttl` bounds how long an entry lives even if an invalidation were missed.
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Self {
            keys: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            principals: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            workspaces: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build(),
            tokens: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            epoch: AtomicU64::new(0),
        }
    }

    pub fn epoch(&self) -> Epoch {
        Epoch(self.epoch.load(Ordering::Acquire))
    }

    pub fn key(&self, hash: &KeyHash) -> Option<Arc<ApiKeyRecord>> {
        self.keys.get(hash)
    }

    pub fn principal(&self, workspace_id: &str, user_id: &str) -> Option<Arc<Principal>> {
        self.principals
            .get(&(workspace_id.to_owned(), user_id.to_owned()))
    }

    pub fn workspace(&self, id: &str) -> Option<Arc<Workspace>> {
        self.workspaces.get(id)
    }

    pub fn token(&self, id: &str) -> Option<Arc<TokenRecord>> {
        self.tokens.get(id)
    }

    pub fn insert_token(&self, v: Arc<TokenRecord>, loaded_at: Epoch) {
        self.fill(&self.tokens, v.id.clone(), v, loaded_at);
    }

    pub fn insert_key(&self, hash: KeyHash, v: Arc<ApiKeyRecord>, loaded_at: Epoch) {
        self.fill(&self.keys, hash, v, loaded_at);
    }

    pub fn insert_principal(&self, v: Arc<Principal>, loaded_at: Epoch) {
        let k = (v.workspace_id.clone(), v.user_id.clone());
        self.fill(&self.principals, k, v, loaded_at);
    }

    pub fn insert_workspace(&self, v: Arc<Workspace>, loaded_at: Epoch) {
        self.fill(&self.workspaces, v.id.clone(), v, loaded_at);
    }

    /// Inserts, then undoes the insert if any invalidation started since the load began: either
    /// the invalidation sees our entry and removes it, or we see its epoch bump.
    fn fill<K, V>(&self, cache: &Cache<K, V>, k: K, v: V, loaded_at: Epoch)
    where
        K: Hash + Eq + Send + Sync + Clone + 'static,
        V: Clone + Send + Sync + 'static,
    {
        cache.insert(k.clone(), v);
        if self.epoch.load(Ordering::Acquire) != loaded_at.0 {
            cache.invalidate(&k);
        }
    }

    /// Forgets everything a committed change may have made stale.
    pub fn apply(&self, change: &Change) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        match change {
            Change::Key(hex) => {
                if let Some(h) = KeyHash::from_hex(hex) {
                    self.keys.invalidate(&h);
                }
            }
            Change::Principal {
                workspace_id,
                user_id,
            } => self
                .principals
                .invalidate(&(workspace_id.clone(), user_id.clone())),
            Change::Workspace(ws) => {
                self.workspaces.invalidate(ws);
                self.invalidate_principals(|(w, _)| w == ws);
            }
            Change::User(user) => self.invalidate_principals(|(_, u)| u == user),
            Change::Token(id) => self.tokens.invalidate(id),
            // Not cached here: the signing keys reload themselves (see `AppState::changed`).
            Change::SigningKeys => {}
        }
    }

    pub fn apply_all(&self, changes: &[Change]) {
        for c in changes {
            self.apply(c);
        }
    }

    fn invalidate_principals(&self, matches: impl Fn(&(String, String)) -> bool) {
        let doomed: Vec<_> = self
            .principals
            .iter()
            .filter(|(k, _)| matches(k))
            .map(|(k, _)| k)
            .collect();
        for k in doomed {
            self.principals.invalidate(&*k);
        }
    }
}
