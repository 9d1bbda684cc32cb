//! Resolving a presented credential: an API key or an access token, through the cache to the
//! store, with its owner's current standing and its workspace's policy; and the decision of
//! whether it may do what a request demands (the pair rules of SPEC §4 included).

use crate::cache::{CachedKey, KeyEntry};
use crate::credentials::Presented;
use crate::limits::{self, Bound, Report};
use crate::{now, Engine, EngineError};
use latchkey_core::token::looks_like_jwt;
use latchkey_core::verify::{self, Effective};
use latchkey_core::{Demand, Denial, KeyFacts, KeyHash, OwnerFacts, WorkspacePolicy};
use latchkey_store::{Principal, TokenRecord, Workspace};
use std::borrow::Cow;
use std::sync::Arc;

/// A credential found in storage: the key (itself, or the one a token was obtained from), the
/// token if it was one, the owner's current standing and the workspace's policy.
#[derive(Clone)]
pub struct Resolved {
    pub key: Arc<KeyEntry>,
    pub token: Option<Arc<TokenRecord>>,
    pub principal: Arc<Principal>,
    pub workspace: Arc<Workspace>,
    /// The key's and its owner's rate limits.
    pub limits: Bound,
}

impl Resolved {
    fn from_cache(cached: &CachedKey, token: Option<Arc<TokenRecord>>) -> Self {
        Self {
            key: cached.key.clone(),
            token,
            principal: cached.principal.clone(),
            workspace: cached.workspace.clone(),
            limits: cached.limits.clone(),
        }
    }

    pub fn facts(&self) -> KeyFacts<'_> {
        KeyFacts {
            key_type: self.key.key_type,
            environment: self.key.environment,
            revoked: self.key.revoked_at.is_some(),
            enabled: self.key.enabled,
            expires_at: self.key.expires_at,
            restriction: self.key.permissions.as_ref(),
            allowed_origins: &self.key.allowed_origins,
            allowed_ips: &self.key.allowed_ips,
            token_scope: self.token.as_ref().and_then(|t| t.scope.as_ref()),
        }
    }

    fn owner(&self) -> OwnerFacts<'_> {
        OwnerFacts {
            active: self.principal.active,
            member: self.principal.is_member(),
            permissions: &self.principal.permissions,
            instance_verifier: self.principal.is_instance_verifier,
        }
    }

    fn policy(&self) -> WorkspacePolicy<'_> {
        WorkspacePolicy {
            publishable_permissions: &self.workspace.publishable_permissions,
        }
    }

    /// The token's own state first (revoked, expired), then the key's and its owner's.
    pub fn decide(&self, demand: &Demand<'_>) -> Result<(), Denial> {
        let t = now();
        if let Some(tok) = &self.token {
            if tok.revoked_at.is_some() {
                return Err(Denial::Revoked);
            }
            if tok.expires_at <= t {
                return Err(Denial::Expired);
            }
        }
        verify::decide(&self.facts(), &self.owner(), &self.policy(), demand, t)
    }

    pub fn effective(&self) -> Effective<'_> {
        verify::effective(&self.facts(), &self.owner(), &self.policy())
    }

    /// Whether the key (and token) could be used at all, whatever the request context (IP,
    /// origin, permissions): not revoked, disabled or expired, and the owner in good standing.
    pub fn usable(&self) -> bool {
        let t = now();
        let token_ok = self
            .token
            .as_ref()
            .is_none_or(|tok| tok.revoked_at.is_none() && tok.expires_at > t);
        token_ok
            && self.key.revoked_at.is_none()
            && self.key.enabled
            && self.key.expires_at.is_none_or(|e| e > t)
            && self.principal.active
            && self.principal.is_member()
    }

    /// `access_token` or `api_key`.
    pub fn credential_type(&self) -> &'static str {
        if self.token.is_some() {
            "access_token"
        } else {
            "api_key"
        }
    }

    /// The presented credential's id: the token's, else the key's.
    pub fn credential_id(&self) -> &str {
        self.token.as_ref().map_or(&self.key.id, |t| &t.id)
    }

    /// A token is named after itself (environment tokens) or after the key it came from.
    pub fn credential_name(&self) -> Cow<'_, str> {
        match &self.token {
            Some(t) => t.name.as_deref().map_or_else(
                || Cow::Owned(format!("{} (access token)", self.key.name)),
                Cow::Borrowed,
            ),
            None => Cow::Borrowed(&self.key.name),
        }
    }

    pub fn expires_at(&self) -> Option<i64> {
        match &self.token {
            Some(t) => Some(
                self.key
                    .expires_at
                    .map_or(t.expires_at, |k| k.min(t.expires_at)),
            ),
            None => self.key.expires_at,
        }
    }
}

/// Resolves an API key or an access token. `Err(NotFound)` when there is no such credential
/// (including junk, a bad checksum or a token we did not sign); other denials come from
/// [`Resolved::decide`].
pub async fn resolve(engine: &Engine, raw: &str) -> Result<Result<Resolved, Denial>, EngineError> {
    if looks_like_jwt(raw) {
        resolve_token(engine, raw).await
    } else {
        resolve_api_key(engine, raw).await
    }
}

async fn resolve_api_key(
    engine: &Engine,
    raw: &str,
) -> Result<Result<Resolved, Denial>, EngineError> {
    Ok(resolve_key(engine, raw).await?.ok_or(Denial::NotFound))
}

/// Finds a key by its full secret: checksum first (no lookup for junk in our format), then the
/// cache, then the database. Keys imported in another format are found by the hash of their
/// SHA-256 ([`KeyHasher::lookup`](latchkey_core::KeyHasher::lookup)). `Ok(None)` means no such
/// key.
pub async fn resolve_key(engine: &Engine, raw: &str) -> Result<Option<Resolved>, EngineError> {
    let Some(hash) = engine.hasher.lookup(raw) else {
        return Ok(None);
    };
    let Some(cached) = load_key(engine, hash).await? else {
        return Ok(None);
    };
    // The lookup was by hash; confirm in constant time before trusting the record.
    if !cached.key.hash.ct_eq(&hash) {
        return Ok(None);
    }
    Ok(Some(Resolved::from_cache(&cached, None)))
}

async fn resolve_token(
    engine: &Engine,
    jwt: &str,
) -> Result<Result<Resolved, Denial>, EngineError> {
    let Some(claims) = engine
        .signing
        .verify(&engine.store, jwt, engine.issuer())
        .await?
    else {
        return Ok(Err(Denial::NotFound));
    };
    let token = match engine.cache.token(&claims.jti) {
        Some(t) => t,
        None => {
            let epoch = engine.cache.epoch();
            let t = match engine.store.get_token(&claims.jti).await {
                Ok(t) => Arc::new(t),
                Err(latchkey_store::StoreError::NotFound) => return Ok(Err(Denial::NotFound)),
                Err(e) => return Err(e.into()),
            };
            engine.cache.insert_token(t.clone(), epoch);
            t
        }
    };
    // The claims are signed, but the record is the authority (and must agree).
    if token.key_id != claims.client_id || token.owner_id != claims.sub {
        return Ok(Err(Denial::NotFound));
    }
    let Some(hash) = KeyHash::from_hex(&token.key_hash) else {
        return Err(EngineError::Internal);
    };
    let Some(cached) = load_key(engine, hash).await? else {
        return Ok(Err(Denial::NotFound));
    };
    Ok(Ok(Resolved::from_cache(&cached, Some(token))))
}

/// Loads a key by id (for a token's renewal), with its owner's standing.
pub async fn resolve_key_by_id(engine: &Engine, id: &str) -> Result<Option<Resolved>, EngineError> {
    let record = match engine.store.get_key(id).await {
        Ok(k) => k,
        Err(latchkey_store::StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let key =
        Arc::new(KeyEntry::new(record, engine.cache.generation()).ok_or(EngineError::Internal)?);
    let (principal, workspace) = load_standing(engine, &key).await?;
    Ok(Some(Resolved {
        limits: engine.limits.bind(&key, &principal),
        key,
        token: None,
        principal,
        workspace,
    }))
}

/// The key with a hash, with its owner's standing and workspace: from the cache while neither
/// has changed since they were read; otherwise the standing is read again (from its own cache,
/// so a change costs two lookups, not a database read).
async fn load_key(engine: &Engine, hash: KeyHash) -> Result<Option<Arc<CachedKey>>, EngineError> {
    let key = match engine.cache.key(&hash) {
        Some(cached) => {
            engine.counters.key_hits.increment(1);
            if cached.is_current() {
                return Ok(Some(cached));
            }
            let stamp = cached.stamp();
            let (principal, workspace) = load_standing(engine, &cached.key).await?;
            if Arc::ptr_eq(&principal, &cached.principal)
                && Arc::ptr_eq(&workspace, &cached.workspace)
            {
                cached.confirm(&stamp);
                return Ok(Some(cached));
            }
            // This request gets the fresh standing; the entry goes, so the next one reads the
            // key from the database too.
            engine.cache.forget_key(&hash);
            let limits = engine.limits.bind(&cached.key, &principal);
            let fresh = CachedKey::new(cached.key.clone(), principal, workspace, limits, &stamp);
            return Ok(Some(Arc::new(fresh)));
        }
        None => {
            engine.counters.key_misses.increment(1);
            // Taken here, not on the hit path: every change anywhere moves the epoch, and a hit
            // should not share a contended cache line with the writers.
            let epoch = engine.cache.epoch();
            let generation = engine.cache.generation();
            match engine.store.key_by_hash(&hash.to_hex()).await? {
                Some(r) => (
                    Arc::new(KeyEntry::new(r, generation).ok_or(EngineError::Internal)?),
                    epoch,
                ),
                None => return Ok(None),
            }
        }
    };
    let (key, epoch) = key;
    let stamp = engine.cache.stamp(&key.workspace_id, &key.owner_id);
    let (principal, workspace) = load_standing(engine, &key).await?;
    let limits = engine.limits.bind(&key, &principal);
    let cached = Arc::new(CachedKey::new(key, principal, workspace, limits, &stamp));
    engine.cache.insert_key(hash, cached.clone(), epoch);
    Ok(Some(cached))
}

async fn load_standing(
    engine: &Engine,
    key: &KeyEntry,
) -> Result<(Arc<Principal>, Arc<Workspace>), EngineError> {
    let principal = load_principal(engine, &key.workspace_id, &key.owner_id).await?;
    let workspace = load_workspace(engine, &key.workspace_id).await?;
    Ok((principal, workspace))
}

async fn load_principal(
    engine: &Engine,
    ws: &str,
    user: &str,
) -> Result<Arc<Principal>, EngineError> {
    if let Some(p) = engine.cache.principal(ws, user) {
        return Ok(p);
    }
    let epoch = engine.cache.epoch();
    let stamp = engine.cache.stamp(ws, user);
    let p = engine
        .store
        .principal(ws, user)
        .await?
        .ok_or(EngineError::Internal)?;
    let p = Arc::new(p);
    engine.cache.insert_principal(p.clone(), epoch, stamp);
    Ok(p)
}

async fn load_workspace(engine: &Engine, ws: &str) -> Result<Arc<Workspace>, EngineError> {
    if let Some(w) = engine.cache.workspace(ws) {
        return Ok(w);
    }
    let epoch = engine.cache.epoch();
    let w = Arc::new(engine.store.get_workspace(ws).await?);
    engine.cache.insert_workspace(w.clone(), epoch);
    Ok(w)
}

/// Why [`authenticate`] did not accept the presented credentials.
pub enum Refusal {
    /// They were checked and refused (with the credential, when it was found).
    Denied(Option<Resolved>, Denial),
    /// They are valid, but a rate limit (`RATE_LIMITED`) or the credits (`USAGE_EXCEEDED`)
    /// are spent: where each stands.
    Limited(Resolved, Box<Report>),
    /// They could not be checked (the database is unreachable): never a verdict, so never
    /// answered as an invalid credential.
    Unchecked(EngineError),
}

/// Credentials that passed, with where their rate limits stand after this request.
pub struct Verified {
    /// The presented credential; for a pair, its access token.
    pub primary: Resolved,
    /// The API key of a pair.
    pub pair: Option<Resolved>,
    pub limits: Report,
}

/// Checks presented credentials against a demand: each must be valid; a pair must be of the
/// same user, workspace and environment; a workspace with `require_pair` refuses a lone one
/// (unless `lone_ok`: the exchanges that produce the token of a pair). On success the primary
/// credential is the token of a pair.
pub async fn authenticate(
    engine: &Engine,
    presented: &Presented<'_>,
    demand: &Demand<'_>,
    lone_ok: bool,
) -> Result<Verified, Refusal> {
    let (primary, pair) = check_credentials(engine, presented, demand, lone_ok).await?;
    // Last, once every other check passed: a refused request must not spend a limit.
    let none = Bound::default();
    let mut report = {
        let halves = [&primary.limits, pair.as_ref().map_or(&none, |p| &p.limits)];
        let plan = limits::plan(&halves, demand.ratelimits);
        limits::charge(engine, &plan).await
    };
    // Credits after the rate limits: a request a rate limit refuses spends none (SPEC §11.2).
    if report.allowed() && limits::has_credits(&primary, pair.as_ref()) {
        let cost = demand.cost.unwrap_or(1);
        if let Err(e) =
            limits::charge_credits(engine, &primary, pair.as_ref(), cost, &mut report).await
        {
            return Err(Refusal::Unchecked(e));
        }
    }
    if !report.allowed() {
        return Err(Refusal::Limited(primary, Box::new(report)));
    }
    Ok(Verified {
        primary,
        pair,
        limits: report,
    })
}

/// [`authenticate`] without charging any limit: whether credentials already admitted are still
/// good (a long-lived stream re-checking its caller).
pub async fn check_credentials(
    engine: &Engine,
    presented: &Presented<'_>,
    demand: &Demand<'_>,
    lone_ok: bool,
) -> Result<(Resolved, Option<Resolved>), Refusal> {
    let one = |r: Result<Result<Resolved, Denial>, EngineError>| match r {
        Ok(Ok(res))
            if demand
                .within_workspace
                .is_some_and(|ws| ws != res.key.workspace_id) =>
        {
            Err(Refusal::Denied(None, Denial::NotFound))
        }
        Ok(Ok(res)) => match res.decide(demand) {
            Ok(()) => Ok(res),
            Err(d) => Err(Refusal::Denied(Some(res), d)),
        },
        Ok(Err(d)) => Err(Refusal::Denied(None, d)),
        Err(e) => Err(Refusal::Unchecked(e)),
    };
    match (&presented.key, &presented.token) {
        (None, None) => Err(Refusal::Denied(None, Denial::NotFound)),
        (Some(k), Some(t)) => {
            let token = one(resolve_token(engine, t).await)?;
            let key = one(resolve_api_key(engine, k).await)?;
            let same = key.key.owner_id == token.key.owner_id
                && key.key.workspace_id == token.key.workspace_id
                && key.key.environment == token.key.environment;
            if !same {
                return Err(Refusal::Denied(Some(token), Denial::PairMismatch));
            }
            Ok((token, Some(key)))
        }
        (k, t) => {
            let found = match (k, t) {
                (Some(k), _) => resolve_api_key(engine, k).await,
                (_, Some(t)) => resolve_token(engine, t).await,
                _ => unreachable!("handled above"),
            };
            let res = one(found)?;
            if res.workspace.require_pair && !lone_ok {
                return Err(Refusal::Denied(Some(res), Denial::PairRequired));
            }
            Ok((res, None))
        }
    }
}
