//! Access tokens issued for API keys: the exchange (`POST /v1/auth/token`) and the named,
//! long-lived environment tokens (`/v1/tokens`, Plutu's "Generate" and "Renew").

use crate::auth::{
    authenticate_request, client_ip, presented_credentials, Caller, LoneCaller, Presented, Resolved,
};
use crate::error::responses::{
    Authenticated, Conflict, JsonBody, NotFound, OptionalJsonBody, Unprocessable,
};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiJsonOrEmpty, ApiPath, ApiQuery};
use crate::now;
use crate::routes::schema::{
    BearerType, EnvironmentName, KeyId, Limit, Name, PermissionList, Timestamp, TokenId,
    TokenStatus,
};
use crate::routes::views::{ts, List, PageParams};
use crate::service::page_request;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, request::Parts, HeaderMap, StatusCode};
use latchkey_core::permission::{KEYS_MANAGE_ALL, KEYS_MANAGE_OWN};
use latchkey_core::token::{scope_string, AccessTokenClaims};
use latchkey_core::{ids, Environment, KeyType, Permission, PermissionSet, Validator};
use latchkey_store::{Actor, NewToken, StoreError, TokenFilter, TokenKind, TokenRecord};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A freshly issued token: the JWT and what it carries.
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

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExchangeRequest {
    /// The API key, if not sent in a header.
    pub api_key: Option<String>,
    /// Lifetime; capped by the server's maximum.
    #[serde(default, deserialize_with = "crate::routes::integer::option")]
    #[schema(minimum = 1)]
    pub ttl_seconds: Option<i64>,
    /// Narrow the token to these permissions (never more than the key has).
    #[schema(value_type = Option<PermissionList>)]
    pub permissions: Option<Vec<String>>,
}

/// RFC 6749 §5.1 shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(value_type = BearerType)]
    pub token_type: &'static str,
    pub expires_in: i64,
    /// Space-separated permissions the token carries.
    pub scope: String,
}

impl From<&Issued> for TokenResponse {
    fn from(i: &Issued) -> Self {
        Self {
            access_token: i.jwt.clone(),
            token_type: "Bearer",
            expires_in: i.record.expires_at - i.record.issued_at,
            scope: i.scope.clone(),
        }
    }
}

/// Resolves the API key being exchanged (from a header or the body) and checks it may be:
/// valid, a secret key, presented alone. `require_pair` does not apply: this is how the token
/// of a pair is obtained.
pub async fn exchange_key(
    state: &AppState,
    parts: &Parts,
    key: Presented<'_>,
) -> Result<Resolved, ApiError> {
    if key.token.is_some() {
        return Err(ApiError::bad_request(
            "Exchange an API key for an access token, not a token",
        ));
    }
    if key.key.is_none() {
        return Err(ApiError::Unauthenticated { presented: false });
    }
    let ip = client_ip(parts, state);
    let (resolved, _) = authenticate_request(state, parts, ip, &key, true, "exchange").await?;
    if resolved.key.key_type == KeyType::Publishable {
        return Err(ApiError::insufficient_permissions());
    }
    Ok(resolved)
}

fn actor_for(r: &Resolved, ip: Option<std::net::IpAddr>, headers: &HeaderMap) -> Actor {
    Actor {
        user_id: Some(r.key.owner_id.clone()),
        credential_id: Some(r.key.id.clone()),
        credential_name: Some(r.key.name.clone()),
        ip: ip.map(|i| i.to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect()),
    }
}

#[utoipa::path(post, path = "/v1/auth/token", tag = "tokens", request_body = ExchangeRequest,
    request_body(content = Option<ExchangeRequest>, description = "Optional when the key is in a header"),
    responses((status = 200, body = TokenResponse), Authenticated, OptionalJsonBody))]
pub async fn exchange(
    State(state): State<AppState>,
    parts: Parts,
    ApiJsonOrEmpty(body): ApiJsonOrEmpty<ExchangeRequest>,
) -> Result<ApiJson<TokenResponse>, ApiError> {
    let mut presented = presented_credentials(&parts.headers)?;
    if let Some(k) = &body.api_key {
        if presented.key.as_ref().is_some_and(|h| h != k) || presented.token.is_some() {
            return Err(ApiError::BadRequest {
                code: "ambiguous_credentials",
                detail: "Send the API key once: in a header or in the body".into(),
            });
        }
        presented.key = Some(k.as_str().into());
    }
    let resolved = exchange_key(&state, &parts, presented).await?;
    let mut v = Validator::new();
    let ttl = body.ttl_seconds.unwrap_or(state.tokens.default_ttl);
    v.check(ttl > 0, "ttl_seconds", "must be positive");
    let scope = narrowing(
        &mut v,
        "permissions",
        &resolved,
        body.permissions.as_deref(),
    );
    v.finish()?;
    let actor = actor_for(&resolved, client_ip(&parts, &state), &parts.headers);
    let issued = issue(
        &state,
        &resolved,
        TokenKind::Exchange,
        None,
        now().saturating_add(ttl.min(state.tokens.max_ttl)),
        scope,
        &actor,
    )
    .await?;
    Ok(ApiJson(TokenResponse::from(&issued)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    #[schema(value_type = Name)]
    pub name: String,
    /// `test` or `live`: must be the environment of the API key creating it (the default).
    #[schema(value_type = Option<EnvironmentName>)]
    pub environment: Option<Environment>,
    /// Lifetime; default 30 days, at most the server's maximum (365 days by default).
    #[serde(default, deserialize_with = "crate::routes::integer::option")]
    #[schema(minimum = 1)]
    pub ttl_seconds: Option<i64>,
}

/// An environment token as listed: never the token itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    #[schema(value_type = TokenId)]
    pub id: String,
    pub name: Option<String>,
    #[schema(value_type = EnvironmentName)]
    pub environment: &'static str,
    /// The API key it was generated with (it dies with that key).
    #[schema(value_type = KeyId)]
    pub key_id: String,
    /// `active`, `expired` or `revoked`.
    #[schema(value_type = TokenStatus)]
    pub status: &'static str,
    #[schema(value_type = Timestamp)]
    pub created_at: String,
    #[schema(value_type = Timestamp)]
    pub expires_at: String,
    #[schema(value_type = Option<Timestamp>)]
    pub revoked_at: Option<String>,
}

impl From<&TokenRecord> for TokenView {
    fn from(t: &TokenRecord) -> Self {
        Self {
            id: t.id.clone(),
            name: t.name.clone(),
            environment: t.environment.as_str(),
            key_id: t.key_id.clone(),
            status: if t.revoked_at.is_some() {
                "revoked"
            } else if t.expires_at <= now() {
                "expired"
            } else {
                "active"
            },
            created_at: ts(t.issued_at),
            expires_at: ts(t.expires_at),
            revoked_at: t.revoked_at.map(ts),
        }
    }
}

/// A token as created or renewed: the only time it is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    pub access_token: String,
    #[schema(value_type = BearerType)]
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(flatten)]
    pub view: TokenView,
}

impl From<&Issued> for CreatedToken {
    fn from(i: &Issued) -> Self {
        Self {
            access_token: i.jwt.clone(),
            token_type: "Bearer",
            expires_in: i.record.expires_at - i.record.issued_at,
            view: TokenView::from(&i.record),
        }
    }
}

/// Environment tokens are issued by an API key (not by another token) allowed to manage keys.
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

#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", request_body = CreateTokenRequest,
    responses((status = 201, body = CreatedToken), Authenticated, JsonBody))]
pub async fn create_token(
    State(state): State<AppState>,
    LoneCaller(caller): LoneCaller,
    ApiJson(body): ApiJson<CreateTokenRequest>,
) -> Result<(StatusCode, ApiJson<CreatedToken>), ApiError> {
    let from = token_issuer(&caller)?;
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
    // In a pair the token comes from the pair's key but is asked for by both halves: it gets
    // no more, and lives no longer, than the pair.
    let issuer = caller.issuer();
    let from_self = std::ptr::eq(from, &caller.resolved);
    if !issuer.covers_ips(&from.key.allowed_ips) {
        return Err(ApiError::insufficient_permissions());
    }
    let issued = issue(
        &state,
        from,
        TokenKind::Environment,
        Some(name),
        issuer.token_expiry(now(), ttl, None),
        issuer.token_scope(from_self, None),
        &caller.actor(),
    )
    .await?;
    Ok((StatusCode::CREATED, ApiJson(CreatedToken::from(&issued))))
}

#[utoipa::path(get, path = "/v1/tokens", tag = "tokens",
    params(("limit" = Option<Limit>, Query), ("cursor" = Option<TokenId>, Query, description = "The `next_cursor` of the previous page")),
    responses((status = 200, body = List<TokenView>), Authenticated, Unprocessable))]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<ApiJson<List<TokenView>>, ApiError> {
    let page = page_request(q.limit, q.cursor.as_deref(), ids::TOKEN)?;
    if !(caller.allows(KEYS_MANAGE_OWN) || caller.allows(KEYS_MANAGE_ALL)) {
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
    let page = state.store.list_tokens(&filter, page).await?;
    Ok(ApiJson(List::from_page(page)))
}

#[utoipa::path(post, path = "/v1/tokens/{id}/renew", tag = "tokens", params(("id" = TokenId, Path)),
    responses((status = 201, body = CreatedToken), Authenticated, NotFound, Conflict))]
pub async fn renew_token(
    State(state): State<AppState>,
    LoneCaller(caller): LoneCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, ApiJson<CreatedToken>), ApiError> {
    token_issuer(&caller)?;
    let old = visible_token(&state, &caller, &id).await?;
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
    let from = match latchkey_engine::resolve::resolve_key_by_id(&state.engine, &old.key_id).await?
    {
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
    let (jwt, scope) = sign(&state, &from, &mut new)?;
    let (record, changes) = match state.store.renew_token(&id, &new, &caller.actor()).await {
        Err(StoreError::Conflict(m)) => return Err(ApiError::Conflict(m.into())),
        other => other?,
    };
    state.changed(&changes);
    let issued = Issued { jwt, record, scope };
    Ok((StatusCode::CREATED, ApiJson(CreatedToken::from(&issued))))
}

#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tokens", params(("id" = TokenId, Path)),
    responses((status = 204, description = "Revoked (or already revoked)"), Authenticated, NotFound))]
pub async fn revoke_token(
    State(state): State<AppState>,
    LoneCaller(caller): LoneCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let t = visible_token(&state, &caller, &id).await?;
    // A token may always revoke itself.
    if caller.resolved.credential_id() != t.id {
        caller
            .require(KEYS_MANAGE_OWN)
            .or_else(|_| caller.require(KEYS_MANAGE_ALL))?;
    }
    if let Some(changes) = state.store.revoke_token(&id, &caller.actor()).await? {
        state.changed(&changes);
    }
    Ok(StatusCode::NO_CONTENT)
}
