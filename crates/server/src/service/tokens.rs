//! Access tokens: the exchange of an API key for a short-lived token, and the named, long-lived
//! environment tokens (generate, list, renew, revoke).
//!
//! Environment tokens are issued by an API key allowed to manage keys (not by another token; in
//! a pair, by the pair's key), and never carry more, or live longer, than the credential asking
//! for them (`Issuer::token_scope`, `Issuer::token_expiry`). A caller sees its own environment
//! tokens; with `manage_all`, its workspace's (an instance admin's or verifier's only for an
//! instance admin); anything else is a 404. A token may always revoke itself.

use crate::auth::{Caller, Resolved};
use crate::error::ApiError;
use crate::now;
use crate::routes::tokens::CreateTokenRequest;
use crate::routes::views::PageParams;
use crate::service::keys::may_read_keys;
use crate::service::page_request;
use crate::state::AppState;
use latchkey_core::permission::{KEYS_MANAGE_ALL, KEYS_MANAGE_OWN};
use latchkey_core::token::{scope_string, AccessTokenClaims};
use latchkey_core::{ids, Environment, KeyType, Permission, PermissionSet, Validator};
use latchkey_engine::resolve::resolve_key_by_id;
use latchkey_store::{Actor, NewToken, Page, StoreError, TokenFilter, TokenKind, TokenRecord};
use std::borrow::Cow;

/// A freshly issued token: the JWT (shown this once) and what it carries.
pub struct Issued {
    pub jwt: String,
    pub record: TokenRecord,
    pub scope: String,
}

/// Issues a token for the key in `from` (never more than it can do: `scope` only narrows),
/// ending at `expires_at` or with the key, whichever is first. The caller bounds both by the
/// credential asking for it (`Issuer::token_expiry`, `Issuer::token_scope`).
/// It is signed first (so the record names the key that really signed it, which keeps that key
/// published while the token lives) and recorded before it is handed out.
pub async fn issue(
    state: &AppState,
    from: &Resolved,
    kind: TokenKind,
    name: Option<String>,
    expires_at: i64,
    scope: Option<PermissionSet>,
    actor: &Actor,
) -> Result<Issued, ApiError> {
    let t = now();
    let key = &from.key;
    let mut new = NewToken {
        id: ids::new_id(ids::TOKEN),
        kind,
        name,
        kid: String::new(),
        key_id: key.id.clone(),
        workspace_id: key.workspace_id.clone(),
        owner_id: key.owner_id.clone(),
        environment: key.environment,
        scope,
        issued_at: t,
        // A token never outlives the key it came from.
        expires_at: key.expires_at.map_or(expires_at, |k| k.min(expires_at)),
    };
    let (jwt, scope) = sign(state, from, &mut new)?;
    let record = state.store.issue_token(&new, actor).await?;
    Ok(Issued { jwt, record, scope })
}

/// Signs the JWT for a token about to be recorded, setting its `kid`; returns it with its scope.
fn sign(
    state: &AppState,
    from: &Resolved,
    new: &mut NewToken,
) -> Result<(String, String), ApiError> {
    let mut effective_set = from.effective().listing();
    if let Some(s) = &new.scope {
        effective_set = effective_set.intersection(s);
    }
    let scope = scope_string(&effective_set);
    let claims = AccessTokenClaims {
        iss: state.issuer().to_owned(),
        sub: new.owner_id.clone(),
        aud: state.issuer().to_owned(),
        exp: new.expires_at,
        iat: new.issued_at,
        jti: new.id.clone(),
        client_id: new.key_id.clone(),
        workspace_id: new.workspace_id.clone(),
        environment: new.environment.as_str().to_owned(),
        scope: scope.clone(),
    };
    let (jwt, kid) = state.engine.signing.sign(&claims)?;
    new.kid = kid;
    Ok((jwt, scope))
}

/// Validates a requested narrowing: each permission well-formed and within what `from` can do.
pub fn narrowing(
    v: &mut Validator,
    field: &str,
    from: &Resolved,
    requested: Option<&[String]>,
) -> Option<PermissionSet> {
    let list = requested?;
    let set = v.permissions(field, list);
    let eff = from.effective();
    for (i, p) in list.iter().enumerate() {
        if Permission::parse(p).is_ok_and(|p| !eff.allows(&p)) {
            v.error(
                &format!("{field}[{i}]"),
                "exceeds the permissions of the API key",
            );
        }
    }
    Some(set)
}

/// The exchange (`POST /v1/auth/token`): a token for the API key in `from`, already
/// authenticated as one that may be exchanged, for `ttl_seconds` (default and cap: the server's
/// settings) and narrowed to `permissions`.
pub async fn exchange(
    state: &AppState,
    from: &Resolved,
    ttl_seconds: Option<i64>,
    permissions: Option<&[String]>,
    actor: &Actor,
) -> Result<Issued, ApiError> {
    let mut v = Validator::new();
    let ttl = ttl_seconds.unwrap_or(state.tokens.default_ttl);
    v.check(ttl > 0, "ttl_seconds", "must be positive");
    let scope = narrowing(&mut v, "permissions", from, permissions);
    v.finish()?;
    issue(
        state,
        from,
        TokenKind::Exchange,
        None,
        now().saturating_add(ttl.min(state.tokens.max_ttl)),
        scope,
        actor,
    )
    .await
}

/// Environment tokens are issued by an API key (not by another token; in a pair, by the pair's
/// key) allowed to manage keys. Returns that key.
fn token_issuer(caller: &Caller) -> Result<&Resolved, ApiError> {
    let key = match (&caller.resolved.token, &caller.pair) {
        (None, _) => &caller.resolved,
        (Some(_), Some(pair_key)) => pair_key,
        (Some(_), None) => return Err(ApiError::insufficient_permissions()),
    };
    if key.key.key_type == KeyType::Publishable {
        return Err(ApiError::insufficient_permissions());
    }
    caller
        .require(KEYS_MANAGE_OWN)
        .or_else(|_| caller.require(KEYS_MANAGE_ALL))?;
    Ok(key)
}

/// An environment token the caller may see (its own; with `manage_all`, its workspace's).
async fn visible_token(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<TokenRecord, ApiError> {
    if !ids::is_id(ids::TOKEN, id) {
        return Err(ApiError::NotFound);
    }
    let t = state.store.get_token(id).await?;
    let others_visible = caller.allows(KEYS_MANAGE_ALL)
        && (caller.is_instance_admin()
            || state
                .store
                .get_user(&t.owner_id)
                .await?
                .instance_role()
                .is_none());
    let visible = t.kind == TokenKind::Environment
        && caller.sees_workspace(&t.workspace_id)
        && (t.owner_id == caller.user_id() || others_visible)
        && !(caller.environment() == Environment::Test && t.environment == Environment::Live);
    if visible {
        Ok(t)
    } else {
        Err(ApiError::NotFound)
    }
}

/// The key an environment token is generated from.
#[derive(Clone, Copy)]
pub enum TokenSource<'a> {
    /// The key making the request (in a pair, the pair's key): `POST /v1/tokens`.
    Caller,
    /// One of the caller's own usable secret keys in its workspace, by id: the dashboard's
    /// "Generate", whose session is no key. Any other key is a field error on `key_id`, one
    /// answer for all (so it tells nothing about other people's keys).
    OwnKey(&'a str),
}

/// Generates a named environment token from `source`, in that key's environment.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    source: TokenSource<'_>,
    body: &CreateTokenRequest,
) -> Result<Issued, ApiError> {
    let (from, name, ttl) = match source {
        TokenSource::Caller => {
            let from = token_issuer(caller)?;
            let (name, ttl) = checked_request(state, caller, body)?;
            (Cow::Borrowed(from), name, ttl)
        }
        // The form is read before the key: what is wrong with it is said first.
        TokenSource::OwnKey(key_id) => {
            let (name, ttl) = checked_request(state, caller, body)?;
            (Cow::Owned(own_key(state, caller, key_id).await?), name, ttl)
        }
    };
    // In a pair the token comes from the pair's key but is asked for by both halves: it gets
    // no more, and lives no longer, than the pair.
    let issuer = caller.issuer();
    let from_self = std::ptr::eq(&*from, &caller.resolved);
    if !issuer.covers_ips(&from.key.allowed_ips) {
        return Err(ApiError::insufficient_permissions());
    }
    issue(
        state,
        &from,
        TokenKind::Environment,
        Some(name),
        issuer.token_expiry(now(), ttl, None),
        issuer.token_scope(from_self, None),
        &caller.actor(),
    )
    .await
}

/// The name and lifetime of a new environment token, in the caller's environment.
fn checked_request(
    state: &AppState,
    caller: &Caller,
    body: &CreateTokenRequest,
) -> Result<(String, i64), ApiError> {
    if body.environment.is_some_and(|e| e != caller.environment()) {
        return Err(ApiError::Forbidden("environment_mismatch"));
    }
    let mut v = Validator::new();
    let name = v.name("name", &body.name);
    let ttl = body
        .ttl_seconds
        .unwrap_or(state.tokens.environment_default_ttl);
    v.check(
        ttl > 0 && ttl <= state.tokens.environment_max_ttl,
        "ttl_seconds",
        &format!("must be 1 to {} seconds", state.tokens.environment_max_ttl),
    );
    v.finish()?;
    Ok((name, ttl))
}

/// [`TokenSource::OwnKey`]: the caller may issue environment tokens, and the key is its own,
/// in its workspace, a secret key, and usable now.
async fn own_key(state: &AppState, caller: &Caller, key_id: &str) -> Result<Resolved, ApiError> {
    let found = if ids::is_id(ids::KEY, key_id) {
        resolve_key_by_id(&state.engine, key_id).await?
    } else {
        None
    };
    match found {
        Some(r)
            if token_issuer(caller).is_ok()
                && r.key.owner_id == caller.user_id()
                && r.key.workspace_id == caller.workspace_id()
                && r.key.key_type == KeyType::Secret
                && r.usable() =>
        {
            Ok(r)
        }
        _ => Err(ApiError::validation(
            "key_id",
            "must be one of your active secret keys",
        )),
    }
}

/// The environment tokens the caller may see.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    q: &PageParams,
) -> Result<Page<TokenRecord>, ApiError> {
    let page = page_request(q.limit, q.cursor.as_deref(), ids::TOKEN)?;
    if !may_read_keys(caller) {
        return Err(ApiError::insufficient_permissions());
    }
    let filter = TokenFilter {
        workspace_id: Some(caller.workspace_id().to_owned()),
        owner_id: (!caller.allows(KEYS_MANAGE_ALL)).then(|| caller.user_id().to_owned()),
        kind: Some(TokenKind::Environment.as_str()),
        // In the query, not after it: filtering a fetched page leaves it short (or empty) with
        // a cursor that still promises more.
        environment: (caller.environment() == Environment::Test)
            .then_some(Environment::Test.as_str()),
        instance_role_tokens_hidden_from: (!caller.is_instance_admin())
            .then(|| caller.user_id().to_owned()),
    };
    Ok(state.store.list_tokens(&filter, page).await?)
}

/// Replaces an environment token with a new one from the same key (same name, scope and
/// lifetime); the old one stops working.
pub async fn renew(state: &AppState, caller: &Caller, id: &str) -> Result<Issued, ApiError> {
    token_issuer(caller)?;
    let old = visible_token(state, caller, id).await?;
    // Only its owner renews a token: the new one is handed to the caller and acts as the owner.
    if old.owner_id != caller.user_id() {
        return Err(ApiError::insufficient_permissions());
    }
    if old.revoked_at.is_some() {
        return Err(ApiError::Conflict(
            "A revoked token cannot be renewed".into(),
        ));
    }
    // The successor comes from the same key as the old token, which must still be good.
    let from = match resolve_key_by_id(&state.engine, &old.key_id).await? {
        Some(r) if r.usable() => r,
        _ => {
            return Err(ApiError::Conflict(
                "The API key this token came from is no longer valid".into(),
            ))
        }
    };
    // The renewal is a new token handed to the caller, who may be another (narrower, shorter
    // lived) credential of the owner: it is bounded by that credential, not only by the key.
    let issuer = caller.issuer();
    let from_self =
        caller.pair.is_none() && caller.resolved.token.is_none() && caller.is_self(&old.key_id);
    if !issuer.covers_ips(&from.key.allowed_ips) {
        return Err(ApiError::insufficient_permissions());
    }
    let t = now();
    let ttl = (old.expires_at - old.issued_at).max(1);
    let mut new = NewToken {
        id: ids::new_id(ids::TOKEN),
        kind: TokenKind::Environment,
        name: old.name.clone(),
        kid: String::new(),
        key_id: old.key_id.clone(),
        workspace_id: old.workspace_id.clone(),
        owner_id: old.owner_id.clone(),
        environment: old.environment,
        scope: issuer.token_scope(from_self, old.scope.clone()),
        issued_at: t,
        expires_at: issuer.token_expiry(t, ttl, from.key.expires_at),
    };
    let (jwt, scope) = sign(state, &from, &mut new)?;
    let (record, changes) = match state.store.renew_token(id, &new, &caller.actor()).await {
        Err(StoreError::Conflict(m)) => return Err(ApiError::Conflict(m.into())),
        other => other?,
    };
    state.changed(&changes);
    Ok(Issued { jwt, record, scope })
}

/// Revokes an environment token (again: already revoked is no error).
pub async fn revoke(state: &AppState, caller: &Caller, id: &str) -> Result<(), ApiError> {
    let t = visible_token(state, caller, id).await?;
    // A token may always revoke itself.
    if caller.resolved.credential_id() != t.id {
        caller
            .require(KEYS_MANAGE_OWN)
            .or_else(|_| caller.require(KEYS_MANAGE_ALL))?;
    }
    if let Some(changes) = state.store.revoke_token(id, &caller.actor()).await? {
        state.changed(&changes);
    }
    Ok(())
}

/// OAuth revocation (RFC 7009): revokes the token `raw`, of any kind, if the caller may, and
/// says nothing either way (§2.2). The client it was issued to may revoke it, and so may
/// whoever manages that key. Only failing to find out what `raw` is an error.
pub async fn revoke_quietly(state: &AppState, caller: &Caller, raw: &str) -> Result<(), ApiError> {
    let Ok(r) = state.engine.resolve(raw).await? else {
        return Ok(());
    };
    let Some(t) = &r.token else {
        return Ok(());
    };
    let manages = if t.owner_id == caller.user_id() {
        may_read_keys(caller)
    } else {
        // An instance admin's or verifier's tokens act everywhere: only an instance admin
        // touches them.
        caller.allows(KEYS_MANAGE_ALL)
            && (caller.is_instance_admin() || r.principal.instance_role().is_none())
    };
    let allowed = caller.is_self(&t.key_id) || (caller.sees_workspace(&t.workspace_id) && manages);
    if allowed {
        if let Ok(Some(changes)) = state.store.revoke_token(&t.id, &caller.actor()).await {
            state.changed(&changes);
        }
    }
    Ok(())
}
