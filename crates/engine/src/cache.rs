//! The in-memory view that answers verifications without the database: keys by hash (each with
//! its owner's standing and its workspace, so a verification is one lookup), and the owners'
//! standing, workspaces and tokens on their own.
//!
//! Correctness rule: after a write commits, [`VerifyCache::apply`] removes what it affected, so
//! the next request on this node reads fresh data. A load racing with a write could re-insert a
//! stale value; the epoch, bumped before and after the removals, closes that window (see
//! [`VerifyCache::fill`]). What depends on an owner's standing (a key's bundled standing, a
//! cached principal) carries a [`Stamp`]: the versions of its workspace and its user when it was
//! read. A change bumps only the versions of the workspace or user it touched, so it costs
//! nothing for anything cached on behalf of other workspaces and users: no walk over the cache,
//! and no slower path for their keys.

use latchkey_core::KeyHash;
use latchkey_store::{ApiKeyRecord, Change, Principal, TokenRecord, Workspace};
use moka::sync::Cache;
use quick_cache::UnitWeighter;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::ops::Deref;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
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
            // Never a real generation: marks the entry as not stored (see `is_stored`).
            generation: u64::MAX,
            record,
        }
    }

    /// A key read from the database (not [`detached`](Self::detached)): its use is counted.
    pub fn is_stored(&self) -> bool {
        self.generation != u64::MAX
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

/// One workspace's or one user's version: bumped by every change to it.
type Version = Arc<AtomicU64>;

/// Versions by workspace or user id, for those that something cached depends on (an entry
/// lives while a [`Stamp`] holds its counter; dead ones are pruned as the cache ages).
#[derive(Default)]
struct Versions(Mutex<HashMap<String, Weak<AtomicU64>>>);

impl Versions {
    fn cell(&self, id: &str) -> Version {
        let mut map = self.0.lock().expect("versions lock");
        if let Some(v) = map.get(id).and_then(Weak::upgrade) {
            return v;
        }
        let v = Version::default();
        map.insert(id.to_owned(), Arc::downgrade(&v));
        v
    }

    /// Nothing to do when nothing cached depends on `id`.
    fn bump(&self, id: &str) {
        let map = self.0.lock().expect("versions lock");
        if let Some(v) = map.get(id).and_then(Weak::upgrade) {
            v.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn prune(&self) {
        self.0
            .lock()
            .expect("versions lock")
            .retain(|_, v| v.strong_count() > 0);
    }
}

/// The versions of a workspace and a user as they were when a standing was read (taken before
/// the read: a change during it leaves the stamp behind).
#[derive(Clone)]
pub struct Stamp {
    workspace: Version,
    user: Version,
    workspace_seen: u64,
    user_seen: u64,
}

impl Stamp {
    fn of(workspace: Version, user: Version) -> Self {
        Self {
            workspace_seen: workspace.load(Ordering::Acquire),
            user_seen: user.load(Ordering::Acquire),
            workspace,
            user,
        }
    }

    /// True while neither the workspace nor the user has changed since.
    fn holds(&self) -> bool {
        self.workspace.load(Ordering::Acquire) == self.workspace_seen
            && self.user.load(Ordering::Acquire) == self.user_seen
    }
}

/// What the key cache holds: the key with its owner's standing and its workspace, read under
/// the stamp's versions (advanced by [`CachedKey::confirm`]).
pub struct CachedKey {
    pub key: Arc<KeyEntry>,
    pub principal: Arc<Principal>,
    pub workspace: Arc<Workspace>,
    /// The key's and the member's rate limits, bound to their state.
    pub limits: crate::limits::Bound,
    workspace_version: Version,
    user_version: Version,
    workspace_seen: AtomicU64,
    user_seen: AtomicU64,
}

impl CachedKey {
    pub fn new(
        key: Arc<KeyEntry>,
        principal: Arc<Principal>,
        workspace: Arc<Workspace>,
        limits: crate::limits::Bound,
        read_under: &Stamp,
    ) -> Self {
        Self {
            key,
            principal,
            workspace,
            limits,
            workspace_version: read_under.workspace.clone(),
            user_version: read_under.user.clone(),
            workspace_seen: AtomicU64::new(read_under.workspace_seen),
            user_seen: AtomicU64::new(read_under.user_seen),
        }
    }

    /// True while neither the owner nor the workspace changed since the standing was read (or
    /// re-checked): two loads, on the path of every verification.
    pub fn is_current(&self) -> bool {
        self.workspace_version.load(Ordering::Acquire)
            == self.workspace_seen.load(Ordering::Acquire)
            && self.user_version.load(Ordering::Acquire) == self.user_seen.load(Ordering::Acquire)
    }

    /// A stamp of the current versions, to take before re-reading the standing.
    pub fn stamp(&self) -> Stamp {
        Stamp::of(self.workspace_version.clone(), self.user_version.clone())
    }

    /// Records that the standing, re-read under `stamp`, was unchanged.
    pub fn confirm(&self, stamp: &Stamp) {
        self.workspace_seen
            .fetch_max(stamp.workspace_seen, Ordering::AcqRel);
        self.user_seen.fetch_max(stamp.user_seen, Ordering::AcqRel);
    }
}

/// A cached principal with the stamp it was read under.
#[derive(Clone)]
struct PrincipalEntry {
    principal: Arc<Principal>,
    stamp: Stamp,
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
    principals: Cache<(String, String), PrincipalEntry>,
    workspaces: Cache<String, Arc<Workspace>>,
    tokens: Cache<String, Arc<TokenRecord>>,
    epoch: AtomicU64,
    workspace_versions: Versions,
    user_versions: Versions,
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
            workspace_versions: Versions::default(),
            user_versions: Versions::default(),
        }
    }

    pub fn epoch(&self) -> Epoch {
        Epoch(self.epoch.load(Ordering::Acquire))
    }

    /// Taken before reading the standing of `user_id` in `workspace_id`.
    pub fn stamp(&self, workspace_id: &str, user_id: &str) -> Stamp {
        Stamp::of(
            self.workspace_versions.cell(workspace_id),
            self.user_versions.cell(user_id),
        )
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
        (self.generation.load(Ordering::Relaxed) <= cached.key.generation.saturating_add(1))
            .then_some(cached)
    }

    pub fn generation(&self) -> Generation {
        Generation(self.generation.load(Ordering::Relaxed))
    }

    /// Ages cached keys: one read two ticks ago is no longer served. Ticking every `ttl / 2`
    /// keeps every key younger than `ttl` without a clock read per lookup.
    pub fn tick(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
        self.workspace_versions.prune();
        self.user_versions.prune();
    }

    /// A cached principal, unless its workspace or user changed since it was read.
    pub fn principal(&self, workspace_id: &str, user_id: &str) -> Option<Arc<Principal>> {
        self.principals
            .get(&(workspace_id.to_owned(), user_id.to_owned()))
            .filter(|e| e.stamp.holds())
            .map(|e| e.principal)
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

    /// `stamp` was taken (by [`VerifyCache::stamp`]) before the principal was read.
    pub fn insert_principal(&self, v: Arc<Principal>, loaded_at: Epoch, stamp: Stamp) {
        let k = (v.workspace_id.clone(), v.user_id.clone());
        let entry = PrincipalEntry {
            principal: v,
            stamp,
        };
        self.fill(&self.principals, k, entry, loaded_at);
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
        self.remove(change);
        // Again after the removals: a reader that took the first bump's epoch and then read a
        // value that was about to be removed must not keep it (its stamp now lags too).
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    fn remove(&self, change: &Change) {
        match change {
            Change::Key(hex) => {
                if let (Some(h), Some(keys)) = (KeyHash::from_hex(hex), &self.keys) {
                    keys.remove(&h);
                }
            }
            // The user's version: a membership change re-checks that user's keys (in every
            // workspace, a small over-reach that keeps one version per user, not per member).
            Change::Principal {
                workspace_id,
                user_id,
            } => {
                self.principals
                    .invalidate(&(workspace_id.clone(), user_id.clone()));
                self.user_versions.bump(user_id);
            }
            // Its principals go stale by their stamps: no walk over the cache.
            Change::Workspace(ws) => {
                self.workspaces.invalidate(ws);
                self.workspace_versions.bump(ws);
            }
            Change::User(user) => self.user_versions.bump(user),
            Change::Token(id) => self.tokens.invalidate(id),
            // Not cached here: the signing keys reload themselves (see `AppState::changed`).
            Change::SigningKeys => {}
        }
    }

    /// How many entries each part of the cache holds (moka's counts settle lazily), for
    /// `latchkey_cache_entries`: a leak or an unbounded map shows up here.
    pub fn sizes(&self) -> [(&'static str, u64); 6] {
        let count = |m: &Mutex<HashMap<String, Weak<AtomicU64>>>| {
            m.lock().expect("versions lock").len() as u64
        };
        [
            ("key", self.keys.as_ref().map_or(0, |k| k.len() as u64)),
            ("principal", self.principals.entry_count()),
            ("workspace", self.workspaces.entry_count()),
            ("token", self.tokens.entry_count()),
            ("workspace_version", count(&self.workspace_versions.0)),
            ("user_version", count(&self.user_versions.0)),
        ]
    }

    /// Forgets everything: for a change this node cannot interpret (written by a newer
    /// version), where only a cold cache is sure to be right.
    pub fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(keys) = &self.keys {
            keys.clear();
        }
        self.principals.invalidate_all();
        self.workspaces.invalidate_all();
        self.tokens.invalidate_all();
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    pub fn apply_all(&self, changes: &[Change]) {
        for c in changes {
            self.apply(c);
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
            ratelimits: vec![],
            credits: None,
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
            is_instance_verifier: false,
            role: Some("admin".into()),
            permissions: PermissionSet::default(),
            ratelimits: vec![],
            credits: None,
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
            crate::limits::Bound::default(),
            &cache.stamp("ws_1", "usr_1"),
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
        assert!(cached.is_current());
        cache.apply(&Change::Key(hash("other").to_hex()));
        assert!(cached.is_current(), "another key's change leaves it alone");
        let read_during = cached.stamp();
        cache.apply(&Change::User("usr_1".into()));
        assert!(!cached.is_current(), "re-read after its owner changed");
        cached.confirm(&read_during);
        assert!(
            !cached.is_current(),
            "a check that began before the change does not confirm it"
        );
        cached.confirm(&cached.stamp());
        assert!(cached.is_current());
        for change in [
            Change::Workspace("ws_1".into()),
            Change::Principal {
                workspace_id: "ws_1".into(),
                user_id: "usr_1".into(),
            },
        ] {
            cache.apply(&change);
            assert!(!cached.is_current(), "{change:?} is a change of standing");
            cached.confirm(&cached.stamp());
        }
    }

    #[test]
    fn changes_elsewhere_leave_a_keys_standing_alone() {
        let cache = VerifyCache::new(100, Duration::from_secs(300));
        let h = hash("k");
        cache.insert_key(h, entry(&cache, h), cache.epoch());
        let cached = cache.key(&h).expect("cached");
        for change in [
            Change::Workspace("ws_2".into()),
            Change::User("usr_2".into()),
            Change::Principal {
                workspace_id: "ws_2".into(),
                user_id: "usr_2".into(),
            },
        ] {
            cache.apply(&change);
            assert!(cached.is_current(), "{change:?} concerns someone else");
        }
    }

    fn principal(ws: &str, user: &str) -> Arc<Principal> {
        Arc::new(Principal {
            user_id: user.into(),
            email: format!("{user}@example.com"),
            name: user.into(),
            workspace_id: ws.into(),
            active: true,
            is_instance_admin: false,
            is_instance_verifier: false,
            role: Some("member".into()),
            permissions: PermissionSet::default(),
            ratelimits: vec![],
            credits: None,
        })
    }

    #[test]
    fn principals_go_stale_with_their_workspace_or_user_and_no_one_else() {
        let cache = VerifyCache::new(100, Duration::from_secs(300));
        for (ws, user) in [
            ("ws_a", "usr_1"),
            ("ws_a", "usr_2"),
            ("ws_b", "usr_1"),
            ("ws_b", "usr_3"),
        ] {
            let stamp = cache.stamp(ws, user);
            cache.insert_principal(principal(ws, user), cache.epoch(), stamp);
        }
        let cached = |ws, user| cache.principal(ws, user).is_some();
        cache.apply(&Change::Workspace("ws_a".into()));
        assert!(!cached("ws_a", "usr_1") && !cached("ws_a", "usr_2"));
        assert!(cached("ws_b", "usr_1") && cached("ws_b", "usr_3"));
        cache.apply(&Change::User("usr_3".into()));
        assert!(!cached("ws_b", "usr_3"));
        assert!(cached("ws_b", "usr_1"));
        let stamp = cache.stamp("ws_a", "usr_2");
        cache.insert_principal(principal("ws_a", "usr_2"), cache.epoch(), stamp);
        assert!(cached("ws_a", "usr_2"), "read again after the change: kept");
    }

    #[test]
    fn a_principal_read_across_a_change_is_not_trusted() {
        let cache = VerifyCache::new(100, Duration::from_secs(300));
        let stamp = cache.stamp("ws_a", "usr_1");
        let epoch = cache.epoch();
        cache.apply(&Change::Workspace("ws_a".into()));
        cache.insert_principal(principal("ws_a", "usr_1"), epoch, stamp);
        assert!(cache.principal("ws_a", "usr_1").is_none());
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
