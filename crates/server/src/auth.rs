//! Who is calling: reading the credentials from the request (SPEC §4), resolving API keys and
//! access tokens through the cache, and the [`Caller`] extractor that authenticated handlers take.

use crate::cache::{CachedKey, KeyEntry};
use crate::error::ApiError;
use crate::now;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts, HeaderMap};
use base64::Engine;
use latchkey_core::issuance::{ip_intersection, Grants, Issuer};
use latchkey_core::token::looks_like_jwt;
use latchkey_core::verify::{self, Effective};
use latchkey_core::{
    ApiKey, Demand, Denial, Environment, KeyFacts, KeyHash, OwnerFacts, Permission, PermissionSet,
    WorkspacePolicy,
};
use latchkey_store::{Actor, Principal, TokenRecord, Workspace};
use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

/// The credentials a request presents: at most one API key and one access token (the pair).
/// Borrowed from the request where it can be (a header or a body field); owned when decoded
/// (`Basic`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Presented<'a> {
    pub key: Option<Cow<'a, str>>,
    pub token: Option<Cow<'a, str>>,
}

impl Presented<'_> {
    pub fn is_empty(&self) -> bool {
        self.key.is_none() && self.token.is_none()
    }
}

/// Stands in for a header value that is not visible ASCII: it can never be a credential, but it
/// still counts as one presented (and so can make the request ambiguous).
const INVALID: &str = "\u{0}invalid";

/// Reads the credentials of a request, by any accepted style. Two different API keys, or two
/// different tokens, are ambiguous; one of each is the pair.
pub fn presented_credentials(headers: &HeaderMap) -> Result<Presented<'_>, ApiError> {
    // X-API-Key carries API keys only (SPEC §4); Authorization either kind.
    let authorization = headers
        .get_all(header::AUTHORIZATION)
        .into_iter()
        .map(|v| (from_authorization(v.to_str().unwrap_or(INVALID)), true));
    let api_key = headers
        .get_all("x-api-key")
        .into_iter()
        .map(|v| (Cow::Borrowed(v.to_str().unwrap_or(INVALID).trim()), false));
    let mut p = Presented::default();
    for (c, token_ok) in authorization.chain(api_key) {
        let slot = if token_ok && looks_like_jwt(&c) {
            &mut p.token
        } else {
            &mut p.key
        };
        match slot {
            Some(existing) if *existing != c => {
                return Err(ApiError::BadRequest {
                    code: "ambiguous_credentials",
                    detail: "Send one credential (or one API key with one access token): the request carries two different ones".into(),
                })
            }
            _ => *slot = Some(c),
        }
    }
    Ok(p)
}

/// `Bearer <cred>`; `Basic` with the key as user name and no password (curl -u sk_…:) or, as
/// OAuth clients send it, the client id as user name and the key as password; or the raw key.
fn from_authorization(v: &str) -> Cow<'_, str> {
    let v = v.trim();
    match v.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => Cow::Borrowed(rest.trim()),
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => Cow::Owned(
            basic_credentials(rest)
                .map(|(user, pass)| if pass.is_empty() { user } else { pass })
                .unwrap_or_else(|| INVALID.into()),
        ),
        _ => Cow::Borrowed(v),
    }
}

/// Decodes `base64(user:password)` (RFC 7617); OAuth clients also form-encode both (RFC 6749 §2.3.1).
pub fn basic_credentials(b64: &str) -> Option<(String, String)> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((decode(user)?, decode(pass)?))
}

/// Query parameter names that would carry a credential in a URL (logged by every proxy).
const CREDENTIAL_PARAMS: [&str; 7] = [
    "api_key",
    "apikey",
    "api-key",
    "key",
    "access_token",
    "token",
    "x-api-key",
];

/// True when the query string carries something that is, or is named like, a credential.
pub fn query_has_credential(query: &str) -> bool {
    url::form_urlencoded::parse(query.as_bytes()).any(|(k, v)| {
        CREDENTIAL_PARAMS.iter().any(|p| k.eq_ignore_ascii_case(p))
            || ApiKey::looks_like_key(&v)
            || looks_like_jwt(&v)
    })
}

/// A credential found in storage: the key (itself, or the one a token was obtained from), the
/// token if it was one, the owner's current standing and the workspace's policy.
#[derive(Clone)]
pub struct Resolved {
    pub key: Arc<KeyEntry>,
    pub token: Option<Arc<TokenRecord>>,
    pub principal: Arc<Principal>,
    pub workspace: Arc<Workspace>,
}

impl Resolved {
    fn from_cache(cached: &CachedKey, token: Option<Arc<TokenRecord>>) -> Self {
        Self {
            key: cached.key.clone(),
            token,
            principal: cached.principal.clone(),
            workspace: cached.workspace.clone(),
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
pub async fn resolve(state: &AppState, raw: &str) -> Result<Result<Resolved, Denial>, ApiError> {
    if looks_like_jwt(raw) {
        resolve_token(state, raw).await
    } else {
        resolve_api_key(state, raw).await
    }
}

async fn resolve_api_key(
    state: &AppState,
    raw: &str,
) -> Result<Result<Resolved, Denial>, ApiError> {
    Ok(resolve_key(state, raw).await?.ok_or(Denial::NotFound))
}

/// Finds a key by its full secret: checksum first (no lookup for junk), then the cache, then
/// the database. `Ok(None)` means no such key.
pub async fn resolve_key(state: &AppState, raw: &str) -> Result<Option<Resolved>, ApiError> {
    if ApiKey::check(raw).is_err() {
        return Ok(None);
    }
    let hash = state.hasher.hash(raw);
    let Some(cached) = load_key(state, hash).await? else {
        return Ok(None);
    };
    // The lookup was by hash; confirm in constant time before trusting the record.
    if !cached.key.hash.ct_eq(&hash) {
        return Ok(None);
    }
    Ok(Some(Resolved::from_cache(&cached, None)))
}

async fn resolve_token(state: &AppState, jwt: &str) -> Result<Result<Resolved, Denial>, ApiError> {
    let Some(claims) = state
        .signing
        .verify(&state.store, jwt, state.issuer())
        .await?
    else {
        return Ok(Err(Denial::NotFound));
    };
    let token = match state.cache.token(&claims.jti) {
        Some(t) => t,
        None => {
            let epoch = state.cache.epoch();
            let t = match state.store.get_token(&claims.jti).await {
                Ok(t) => Arc::new(t),
                Err(latchkey_store::StoreError::NotFound) => return Ok(Err(Denial::NotFound)),
                Err(e) => return Err(e.into()),
            };
            state.cache.insert_token(t.clone(), epoch);
            t
        }
    };
    // The claims are signed, but the record is the authority (and must agree).
    if token.key_id != claims.client_id || token.owner_id != claims.sub {
        return Ok(Err(Denial::NotFound));
    }
    let Some(hash) = KeyHash::from_hex(&token.key_hash) else {
        return Err(ApiError::Internal);
    };
    let Some(cached) = load_key(state, hash).await? else {
        return Ok(Err(Denial::NotFound));
    };
    Ok(Ok(Resolved::from_cache(&cached, Some(token))))
}

/// Loads a key by id (for a token's renewal), with its owner's standing.
pub async fn resolve_key_by_id(state: &AppState, id: &str) -> Result<Option<Resolved>, ApiError> {
    let record = match state.store.get_key(id).await {
        Ok(k) => k,
        Err(latchkey_store::StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let key = Arc::new(KeyEntry::new(record, state.cache.generation()).ok_or(ApiError::Internal)?);
    let (principal, workspace) = load_standing(state, &key).await?;
    Ok(Some(Resolved {
        key,
        token: None,
        principal,
        workspace,
    }))
}

/// The key with a hash, with its owner's standing and workspace: from the cache while neither
/// has changed since they were read; otherwise the standing is read again (from its own cache,
/// so a change costs two lookups, not a database read).
async fn load_key(state: &AppState, hash: KeyHash) -> Result<Option<Arc<CachedKey>>, ApiError> {
    let key = match state.cache.key(&hash) {
        Some(cached) => {
            state.counters.key_hits.increment(1);
            if cached.is_current() {
                return Ok(Some(cached));
            }
            let stamp = cached.stamp();
            let (principal, workspace) = load_standing(state, &cached.key).await?;
            if Arc::ptr_eq(&principal, &cached.principal)
                && Arc::ptr_eq(&workspace, &cached.workspace)
            {
                cached.confirm(&stamp);
                return Ok(Some(cached));
            }
            // This request gets the fresh standing; the entry goes, so the next one reads the
            // key from the database too.
            state.cache.forget_key(&hash);
            let fresh = CachedKey::new(cached.key.clone(), principal, workspace, &stamp);
            return Ok(Some(Arc::new(fresh)));
        }
        None => {
            state.counters.key_misses.increment(1);
            // Taken here, not on the hit path: every change anywhere moves the epoch, and a hit
            // should not share a contended cache line with the writers.
            let epoch = state.cache.epoch();
            let generation = state.cache.generation();
            match state.store.key_by_hash(&hash.to_hex()).await? {
                Some(r) => (
                    Arc::new(KeyEntry::new(r, generation).ok_or(ApiError::Internal)?),
                    epoch,
                ),
                None => return Ok(None),
            }
        }
    };
    let (key, epoch) = key;
    let stamp = state.cache.stamp(&key.workspace_id, &key.owner_id);
    let (principal, workspace) = load_standing(state, &key).await?;
    let cached = Arc::new(CachedKey::new(key, principal, workspace, &stamp));
    state.cache.insert_key(hash, cached.clone(), epoch);
    Ok(Some(cached))
}

async fn load_standing(
    state: &AppState,
    key: &KeyEntry,
) -> Result<(Arc<Principal>, Arc<Workspace>), ApiError> {
    let principal = load_principal(state, &key.workspace_id, &key.owner_id).await?;
    let workspace = load_workspace(state, &key.workspace_id).await?;
    Ok((principal, workspace))
}

async fn load_principal(
    state: &AppState,
    ws: &str,
    user: &str,
) -> Result<Arc<Principal>, ApiError> {
    if let Some(p) = state.cache.principal(ws, user) {
        return Ok(p);
    }
    let epoch = state.cache.epoch();
    let stamp = state.cache.stamp(ws, user);
    let p = state
        .store
        .principal(ws, user)
        .await?
        .ok_or(ApiError::Internal)?;
    let p = Arc::new(p);
    state.cache.insert_principal(p.clone(), epoch, stamp);
    Ok(p)
}

async fn load_workspace(state: &AppState, ws: &str) -> Result<Arc<Workspace>, ApiError> {
    if let Some(w) = state.cache.workspace(ws) {
        return Ok(w);
    }
    let epoch = state.cache.epoch();
    let w = Arc::new(state.store.get_workspace(ws).await?);
    state.cache.insert_workspace(w.clone(), epoch);
    Ok(w)
}

pub fn count_verification(state: &AppState, code: &'static str, source: &'static str) {
    state.counters.verification(code, source);
}

/// Why [`authenticate`] did not accept the presented credentials.
pub enum Refusal {
    /// They were checked and refused (with the credential, when it was found).
    Denied(Option<Resolved>, Denial),
    /// They could not be checked (the database is unreachable): never a verdict, so never
    /// answered as an invalid credential.
    Unchecked(ApiError),
}

impl Refusal {
    /// The answer of an authenticated endpoint; `source` labels the verification counter.
    pub fn into_api_error(self, state: &AppState, source: &'static str) -> ApiError {
        match self {
            Refusal::Denied(_, d) => {
                count_verification(state, d.verify_code(), source);
                ApiError::from_denial(d)
            }
            Refusal::Unchecked(e) => e,
        }
    }
}

/// Checks presented credentials against a demand: each must be valid; a pair must be of the
/// same user, workspace and environment; a workspace with `require_pair` refuses a lone one
/// (unless `lone_ok`: the exchanges that produce the token of a pair). On success the primary
/// credential is the token of a pair.
pub async fn authenticate(
    state: &AppState,
    presented: &Presented<'_>,
    demand: &Demand<'_>,
    lone_ok: bool,
) -> Result<(Resolved, Option<Resolved>), Refusal> {
    let one = |r: Result<Result<Resolved, Denial>, ApiError>| match r {
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
            let token = one(resolve_token(state, t).await)?;
            let key = one(resolve_api_key(state, k).await)?;
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
                (Some(k), _) => resolve_api_key(state, k).await,
                (_, Some(t)) => resolve_token(state, t).await,
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

/// [`authenticate`] for a request from `ip`: refused at once while that address is throttled,
/// and a refusal counts against it. `source` labels the verification counter.
pub async fn authenticate_request(
    state: &AppState,
    parts: &Parts,
    ip: Option<IpAddr>,
    presented: &Presented<'_>,
    lone_ok: bool,
    source: &'static str,
) -> Result<(Resolved, Option<Resolved>), ApiError> {
    crate::throttle::admit_credential(state, ip)?;
    let demand = request_demand(parts, ip);
    authenticate(state, presented, &demand, lone_ok)
        .await
        .map_err(|r| {
            let e = r.into_api_error(state, source);
            crate::throttle::credential_refused(state, ip, &e);
            e
        })
}

/// The authenticated caller of a `/v1` endpoint: one credential, or the key + token pair.
#[derive(Clone)]
pub struct Caller {
    pub resolved: Resolved,
    /// The API key of a pair (then `resolved` is its access token).
    pub pair: Option<Resolved>,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Caller::from_parts(parts, state, false).await
    }
}

/// A [`Caller`] allowed to present a lone credential in a `require_pair` workspace: for the
/// endpoints that issue the token of a pair.
pub struct LoneCaller(pub Caller);

impl FromRequestParts<AppState> for LoneCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Caller::from_parts(parts, state, true).await.map(LoneCaller)
    }
}

/// The client address of a request, for every use (see [`crate::client_addr`]).
pub fn client_ip(parts: &Parts, state: &AppState) -> Option<IpAddr> {
    crate::client_addr::client_ip(parts, &state.proxies)
}

/// What any request demands of its credential: its `Origin` and client address must be allowed.
pub fn request_demand(parts: &Parts, ip: Option<IpAddr>) -> Demand<'_> {
    Demand {
        origin: parts
            .headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok()),
        ip,
        ..Demand::default()
    }
}

impl Caller {
    async fn from_parts(parts: &Parts, state: &AppState, lone_ok: bool) -> Result<Self, ApiError> {
        let presented = presented_credentials(&parts.headers)?;
        if presented.is_empty() {
            return Err(ApiError::Unauthenticated { presented: false });
        }
        let ip = client_ip(parts, state);
        let (resolved, pair) =
            authenticate_request(state, parts, ip, &presented, lone_ok, "auth").await?;
        count_verification(state, "VALID", "auth");
        let at = now();
        state.usage.touch(&resolved.key, at);
        if let Some(p) = &pair {
            state.usage.touch(&p.key, at);
        }
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect());
        Ok(Caller {
            resolved,
            pair,
            ip,
            user_agent,
        })
    }

    pub fn user_id(&self) -> &str {
        &self.resolved.key.owner_id
    }
    pub fn workspace_id(&self) -> &str {
        &self.resolved.key.workspace_id
    }
    pub fn environment(&self) -> Environment {
        self.resolved.key.environment
    }
    pub fn is_instance_admin(&self) -> bool {
        self.resolved.principal.is_instance_admin
    }
    pub fn allows(&self, permission: &str) -> bool {
        self.resolved.effective().allows_str(permission)
            && self
                .pair
                .as_ref()
                .is_none_or(|p| p.effective().allows_str(permission))
    }

    pub fn require(&self, permission: &str) -> Result<(), ApiError> {
        if self.allows(permission) {
            Ok(())
        } else {
            Err(ApiError::insufficient_permissions())
        }
    }

    /// A credential acts inside its own workspace; only instance admins see every workspace.
    pub fn sees_workspace(&self, workspace_id: &str) -> bool {
        self.is_instance_admin() || self.workspace_id() == workspace_id
    }

    /// The workspace to act in: the given one if visible (404 otherwise), else the credential's.
    pub fn target_workspace(&self, requested: Option<&str>) -> Result<String, ApiError> {
        match requested {
            Some(ws) if self.sees_workspace(ws) => Ok(ws.to_owned()),
            Some(_) => Err(ApiError::NotFound),
            None => Ok(self.workspace_id().to_owned()),
        }
    }

    /// Whether anything narrows this credential below its owner's rights (a key restriction, a
    /// token scope, or a pair), so what it creates must stay inside it.
    pub fn is_restricted(&self) -> bool {
        let narrowed = |r: &Resolved| {
            r.key.permissions.is_some() || r.token.as_ref().is_some_and(|t| t.scope.is_some())
        };
        narrowed(&self.resolved) || self.pair.as_ref().is_some_and(narrowed)
    }

    /// Everything this credential can do now, as a listing.
    pub fn permissions(&self) -> PermissionSet {
        Grants::listing(self)
    }

    /// This credential as the issuer of new keys and tokens, and the giver of roles, grants and
    /// users: the limits they inherit. A pair is bounded by both of its halves.
    pub fn issuer(&self) -> Issuer<'_> {
        let mine = &self.resolved.key.allowed_ips;
        let (allowed_ips, expires_at) = match &self.pair {
            None => (Cow::Borrowed(&mine[..]), self.resolved.expires_at()),
            Some(p) => (
                ip_intersection(mine, &p.key.allowed_ips),
                match (self.resolved.expires_at(), p.expires_at()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                },
            ),
        };
        Issuer {
            user_id: self.user_id(),
            is_instance_admin: self.is_instance_admin(),
            effective: self,
            restricted: self.is_restricted(),
            allowed_ips,
            expires_at,
        }
    }

    /// Whether `key_id` is the key making this request (or the key its token came from).
    pub fn is_self(&self, key_id: &str) -> bool {
        self.resolved.key.id == key_id || self.pair.as_ref().is_some_and(|p| p.key.id == key_id)
    }

    /// Changes to people, roles and settings affect live traffic: test credentials may not make them.
    pub fn require_live(&self) -> Result<(), ApiError> {
        if self.environment() == Environment::Test {
            return Err(ApiError::Forbidden("environment_mismatch"));
        }
        Ok(())
    }

    pub fn actor(&self) -> Actor {
        Actor {
            user_id: Some(self.user_id().to_owned()),
            credential_id: Some(self.resolved.credential_id().to_owned()),
            credential_name: Some(self.resolved.credential_name().into_owned()),
            ip: self.ip.map(|i| i.to_string()),
            user_agent: self.user_agent.clone(),
        }
    }
}

impl Grants for Caller {
    fn allows(&self, wanted: &Permission) -> bool {
        Caller::allows(self, wanted.as_str())
    }

    fn listing(&self) -> PermissionSet {
        let mine = self.resolved.effective().listing();
        match &self.pair {
            Some(p) => mine.intersection(&p.effective().listing()),
            None => mine,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn every_style_yields_the_same_credential() {
        let k = "sk_test_abc";
        for h in [
            headers(&[("authorization", "Bearer sk_test_abc")]),
            headers(&[("authorization", "bearer  sk_test_abc ")]),
            headers(&[("X-API-Key", k)]),
            headers(&[("authorization", k)]),
            headers(&[("authorization", "Basic c2tfdGVzdF9hYmM6")]),
            headers(&[("authorization", "Bearer sk_test_abc"), ("x-api-key", k)]),
        ] {
            assert_eq!(presented_credentials(&h).unwrap().key.as_deref(), Some(k));
        }
        assert!(presented_credentials(&headers(&[])).unwrap().is_empty());
    }

    #[test]
    fn two_different_credentials_are_ambiguous() {
        let h = headers(&[("authorization", "Bearer a"), ("x-api-key", "b")]);
        assert!(matches!(
            presented_credentials(&h),
            Err(ApiError::BadRequest {
                code: "ambiguous_credentials",
                ..
            })
        ));
    }

    #[test]
    fn credentials_in_the_query_are_spotted() {
        assert!(query_has_credential("api_key=x"));
        assert!(query_has_credential("limit=5&ACCESS_TOKEN=x"));
        let key = ApiKey::generate(latchkey_core::KeyType::Secret, Environment::Test);
        assert!(query_has_credential(&format!(
            "q={}",
            key.secret().expose()
        )));
        assert!(!query_has_credential(
            "limit=5&owner_id=usr_1&status=active"
        ));
    }
}
