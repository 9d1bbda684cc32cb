//! Access tokens issued for API keys: the exchange (`POST /v1/auth/token`) and the named,
//! long-lived environment tokens (`/v1/tokens`, Plutu's "Generate" and "Renew").

use crate::auth::{
    authenticate_request, client_ip, presented_credentials, Caller, LoneCaller, Presented,
    Resolved, Verified,
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
use crate::service;
use crate::service::tokens::Issued;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{request::Parts, HeaderMap, StatusCode};
use latchkey_core::{Environment, KeyType};
use latchkey_store::{Actor, TokenRecord};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
    let Verified {
        primary: resolved, ..
    } = authenticate_request(state, parts, ip, &key, true, "exchange").await?;
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
        user_agent: crate::auth::user_agent(headers),
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
    let actor = actor_for(&resolved, client_ip(&parts, &state), &parts.headers);
    let issued = service::tokens::exchange(
        &state,
        &resolved,
        body.ttl_seconds,
        body.permissions.as_deref(),
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

#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", request_body = CreateTokenRequest,
    responses((status = 201, body = CreatedToken), Authenticated, JsonBody))]
pub async fn create_token(
    State(state): State<AppState>,
    LoneCaller(caller): LoneCaller,
    ApiJson(body): ApiJson<CreateTokenRequest>,
) -> Result<(StatusCode, ApiJson<CreatedToken>), ApiError> {
    let issued =
        service::tokens::create(&state, &caller, service::tokens::TokenSource::Caller, &body)
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
    let page = service::tokens::list(&state, &caller, &q).await?;
    Ok(ApiJson(List::from_page(page)))
}

#[utoipa::path(post, path = "/v1/tokens/{id}/renew", tag = "tokens", params(("id" = TokenId, Path)),
    responses((status = 201, body = CreatedToken), Authenticated, NotFound, Conflict))]
pub async fn renew_token(
    State(state): State<AppState>,
    LoneCaller(caller): LoneCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, ApiJson<CreatedToken>), ApiError> {
    let issued = service::tokens::renew(&state, &caller, &id).await?;
    Ok((StatusCode::CREATED, ApiJson(CreatedToken::from(&issued))))
}

#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tokens", params(("id" = TokenId, Path)),
    responses((status = 204, description = "Revoked (or already revoked)"), Authenticated, NotFound))]
pub async fn revoke_token(
    State(state): State<AppState>,
    LoneCaller(caller): LoneCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    service::tokens::revoke(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
