//! The in-memory view that answers verifications without the database: keys by hash (each with
//! its owner's standing and its workspace, so a verification is one lookup), and the owners'
//! standing, workspaces and tokens on their own.
//!
//! Correctness rule: after a write commits, [`VerifyCache::apply`] removes what it affected, so
//! the next request on this node reads fresh data. A load racing with a write could re-insert a
//! stale value; the epoch, bumped before and after the removals, closes that window (see
//! [`VerifyCache::fill`]). A key's bundled standing is trusted only while the standing epoch
//! (bumped by changes to principals, workspaces and users, not by key changes) has not moved
//! since it was read; after such a change it is read again from the standing and workspace
//! caches (see [`CachedKey::is_current`]).

use latchkey_core::KeyHash;
use latchkey_store::{ApiKeyRecord, Change, Principal, TokenRecord, Workspace};
use moka::sync::Cache;
use quick_cache::UnitWeighter;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::ops::Deref;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A stored key as verification uses it: the record, its hash parsed once, and when its use was
/// last recorded (so `last_used_at` costs no lock on most requests).
pub struct KeyEntry {
    record: ApiKeyRecord,
    pub hash: KeyHash,
    last_use_recorded: AtomicI64,
    /// The cache generation it was read from the database in (see [`VerifyCache::tick`]).
    generation: u64,
}

impl KeyEntry {
    /// A record just read from the database. `None` if the stored hash is not one of ours (a
    /// corrupt row).
    pub fn new(record: ApiKeyRecord, read_in: Generation) -> Option<Self> {
        Some(Self {
            hash: KeyHash::from_hex(&record.hash)?,
            last_use_recorded: AtomicI64::new(record.last_used_at.unwrap_or(i64::MIN)),
            generation: read_in.0,
            record,
        })
    }

    /// For credentials that are not stored keys (a dashboard session); never looked up by hash.
    pub fn detached(record: ApiKeyRecord) -> Self {
        const NONE: &str = "0000000000000000000000000000000000000000000000000000000000000000";
        Self {
            hash: KeyHash::from_hex(NONE).expect("64 hex digits"),
            last_use_recorded: AtomicI64::new(i64::MAX),
            generation: 0,
            record,
        }
    }

    /// Claims the recording of a use at `at` unless one was recorded less than `every` seconds
    /// before: true for exactly one caller per period.
    pub fn claim_use(&self, at: i64, every: i64) -> bool {
        let last = self.last_use_recorded.load(Ordering::Relaxed);
        at >= last.saturating_add(every)
            && self
                .last_use_recorded
                .compare_exchange(last, at, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

impl std::fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the record: its hash is a lookup handle.
        f.debug_struct("KeyEntry").field("id", &self.id).finish()
    }
}

impl Deref for KeyEntry {
    type Target = ApiKeyRecord;
    fn deref(&self) -> &ApiKeyRecord {
        &self.record
    }
}

/// What the key cache holds: the key with its owner's standing and its workspace as of standing
/// epoch `checked`.
pub struct CachedKey {
    pub key: Arc<KeyEntry>,
    pub principal: Arc<Principal>,
    pub workspace: Arc<Workspace>,
    checked: AtomicU64,
}

impl CachedKey {
    pub fn new(
        key: Arc<KeyEntry>,
        principal: Arc<Principal>,
        workspace: Arc<Workspace>,
        read_at: Epoch,
    ) -> Self {
        Self {
            key,
            principal,
            workspace,
            checked: AtomicU64::new(read_at.0),
        }
    }

    /// True while nothing has been invalidated since the standing was read (or re-checked).
    pub fn is_current(&self, now: Epoch) -> bool {
        self.checked.load(Ordering::Acquire) == now.0
    }

    /// Records that the standing, re-read at `read_at`, was unchanged.
    pub fn confirm(&self, read_at: Epoch) {
        self.checked.fetch_max(read_at.0, Ordering::AcqRel);
    }
}

/// Passes [`KeyHash`]'s own `u64` through (see its `Hash` impl); for `KeyHash` keys only.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is expected; fold anything else in rather than lose it.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type KeyMap = quick_cache::sync::Cache<
    KeyHash,
    Arc<CachedKey>,
    UnitWeighter,
    BuildHasherDefault<PassThrough>,
>;

pub struct VerifyCache {
    /// On every verification's path, so not moka: a read here is a shard read-lock and a probe
    /// (moka's also records the read and checks a clock, ~3x the cost). Expiry is by
    /// generation instead of a clock read per lookup. `None` when caching is off.
    keys: Option<KeyMap>,
    generation: AtomicU64,
    principals: Cache<(String, String), Arc<Principal>>,
    workspaces: Cache<String, Arc<Workspace>>,
    tokens: Cache<String, Arc<TokenRecord>>,
    epoch: AtomicU64,
    standing_epoch: AtomicU64,
}

/// Taken before reading the database for a cache fill.
#[derive(Clone, Copy)]
pub struct Epoch(u64);

/// The age of a cached key, in half-TTLs (see [`VerifyCache::tick`]).
#[derive(Clone, Copy)]
pub struct Generation(u64);

impl VerifyCache {
    /// `ttl` bounds how long an entry lives even if an invalidation were missed (for keys:
    /// call [`VerifyCache::tick`] every `ttl / 2`).
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Self {
            keys: (capacity > 0).then(|| {
                KeyMap::with(
                    usize::try_from(capacity).unwrap_or(usize::MAX),
                    capacity,
                    UnitWeighter,
                    BuildHasherDefault::default(),
                    Default::default(),
                )
            }),
            generation: AtomicU64::new(0),
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
            standing_epoch: AtomicU64::new(0),
        }
    }

    pub fn epoch(&self) -> Epoch {
        Epoch(self.epoch.load(Ordering::Acquire))
    }

    /// Taken before reading an owner's standing or a workspace for a cached key.
    pub fn standing_epoch(&self) -> Epoch {
        Epoch(self.standing_epoch.load(Ordering::Acquire))
    }

    /// Drops a cached key whose bundled standing turned out stale: the next use reads the key
    /// again too, rather than trusting a record that may have changed meanwhile.
    pub fn forget_key(&self, hash: &KeyHash) {
        if let Some(keys) = &self.keys {
            keys.remove(hash);
        }
    }

    /// A cached key, unless it was read from the database more than a generation ago.
    pub fn key(&self, hash: &KeyHash) -> Option<Arc<CachedKey>> {
        let cached = self.keys.as_ref()?.get(hash)?;
        (self.generation.load(Ordering::Relaxed) <= cached.key.generation + 1).then_some(cached)
    }

    pub fn generation(&self) -> Generation {
        Generation(self.generation.load(Ordering::Relaxed))
    }

    /// Ages cached keys: one read two ticks ago is no longer served. Ticking every `ttl / 2`
    /// keeps every key younger than `ttl` without a clock read per lookup.
    pub fn tick(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
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

    pub fn insert_key(&self, hash: KeyHash, v: Arc<CachedKey>, loaded_at: Epoch) {
        let Some(keys) = &self.keys else { return };
        keys.insert(hash, v);
        // As in `fill`.
        if self.epoch.load(Ordering::Acquire) != loaded_at.0 {
            keys.remove(&hash);
        }
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
        self.bump(change);
        self.remove(change);
        // Again after the removals: a reader that took the first bump's epoch and then read a
        // value that was about to be removed must not keep it (its stamp now lags too).
        self.bump(change);
    }

    fn bump(&self, change: &Change) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if matches!(
            change,
            Change::Principal { .. } | Change::Workspace(_) | Change::User(_)
        ) {
            self.standing_epoch.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn remove(&self, change: &Change) {
        match change {
            Change::Key(hex) => {
                if let (Some(h), Some(keys)) = (KeyHash::from_hex(hex), &self.keys) {
                    keys.remove(&h);
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

    /// Forgets everything: for a change this node cannot interpret (written by a newer
    /// version), where only a cold cache is sure to be right.
    pub fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.standing_epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(keys) = &self.keys {
            keys.clear();
        }
        self.principals.invalidate_all();
        self.workspaces.invalidate_all();
        self.tokens.invalidate_all();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.standing_epoch.fetch_add(1, Ordering::AcqRel);
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

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::{Environment, KeyHasher, KeyType, PermissionSet};

    fn entry(cache: &VerifyCache, hash: KeyHash) -> Arc<CachedKey> {
        let record = ApiKeyRecord {
            id: "key_1".into(),
            hash: hash.to_hex(),
            redacted: "sk_live_…abcd".into(),
            name: "k".into(),
            key_type: KeyType::Secret,
            environment: Environment::Live,
            workspace_id: "ws_1".into(),
            owner_id: "usr_1".into(),
            permissions: None,
            allowed_origins: vec![],
            allowed_ips: vec![],
            metadata: serde_json::json!({}),
            enabled: true,
            expires_at: None,
            revoked_at: None,
            rolled_to: None,
            created_by: None,
            created_at: 0,
            updated_at: 0,
            last_used_at: None,
        };
        let principal = Principal {
            user_id: "usr_1".into(),
            email: "a@example.com".into(),
            name: "A".into(),
            workspace_id: "ws_1".into(),
            active: true,
            is_instance_admin: false,
            role: Some("admin".into()),
            permissions: PermissionSet::default(),
        };
        let workspace = Workspace {
            id: "ws_1".into(),
            name: "W".into(),
            require_pair: false,
            publishable_permissions: PermissionSet::default(),
            max_key_ttl_seconds: None,
            created_at: 0,
            updated_at: 0,
        };
        let key = KeyEntry::new(record, cache.generation()).expect("valid hash");
        Arc::new(CachedKey::new(
            Arc::new(key),
            Arc::new(principal),
            Arc::new(workspace),
            cache.standing_epoch(),
        ))
    }

    fn hash(s: &str) -> KeyHash {
        KeyHasher::new(b"0123456789abcdef0123456789abcdef").hash(s)
    }

    #[test]
    fn a_key_expires_after_two_ticks() {
        let cache = VerifyCache::new(100, Duration::from_secs(300));
        let h = hash("k");
        cache.insert_key(h, entry(&cache, h), cache.epoch());
        assert!(cache.key(&h).is_some());
        cache.tick();
        assert!(cache.key(&h).is_some(), "younger than the TTL");
        cache.tick();
        assert!(cache.key(&h).is_none(), "a whole TTL old");
    }

    #[test]
    fn a_change_of_standing_makes_the_bundled_standing_unconfirmed() {
        let cache = VerifyCache::new(100, Duration::from_secs(300));
        let h = hash("k");
        cache.insert_key(h, entry(&cache, h), cache.epoch());
        let cached = cache.key(&h).expect("cached");
        assert!(cached.is_current(cache.standing_epoch()));
        cache.apply(&Change::Key(hash("other").to_hex()));
        assert!(
            cached.is_current(cache.standing_epoch()),
            "another key's change leaves it alone"
        );
        let read_during = cache.standing_epoch();
        cache.apply(&Change::User("usr_2".into()));
        assert!(
            !cached.is_current(cache.standing_epoch()),
            "re-read after any change of standing"
        );
        cached.confirm(read_during);
        assert!(
            !cached.is_current(cache.standing_epoch()),
            "a check that began before the change does not confirm it"
        );
        cached.confirm(cache.standing_epoch());
        assert!(cached.is_current(cache.standing_epoch()));
    }

    #[test]
    fn a_fill_racing_an_invalidation_is_dropped() {
        let cache = VerifyCache::new(100, Duration::from_secs(300));
        let h = hash("k");
        let read_at = cache.epoch();
        let stale = entry(&cache, h);
        cache.apply(&Change::Key(h.to_hex()));
        cache.insert_key(h, stale, read_at);
        assert!(cache.key(&h).is_none(), "read before the change: not kept");
        cache.insert_key(h, entry(&cache, h), cache.epoch());
        assert!(cache.key(&h).is_some(), "read after it: kept");
        cache.apply(&Change::Key(h.to_hex()));
        assert!(
            cache.key(&h).is_none(),
            "the next change to the key removes it"
        );
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        let cache = VerifyCache::new(0, Duration::from_secs(300));
        let h = hash("k");
        cache.insert_key(h, entry(&cache, h), cache.epoch());
        assert!(cache.key(&h).is_none());
    }
}
