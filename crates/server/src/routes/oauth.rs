//! OAuth 2.0 for off-the-shelf clients: client credentials (RFC 6749 §4.4), introspection
//! (RFC 7662), revocation (RFC 7009), server metadata (RFC 8414) and the JWKS (RFC 7517).
//!
//! The client is an API key: `client_id` is its id, `client_secret` the key itself. Errors on
//! these endpoints use the OAuth format (RFC 6749 §5.2), as OAuth libraries expect.

use crate::auth::{basic_credentials, presented_credentials, Caller, Presented};
use crate::error::responses::BadRequest;
use crate::error::{ApiError, Problem};
use crate::extract::{ApiBytes, ApiJson};
use crate::routes::schema::{
    ClientCredentialsForm, Introspection, JwkSet, ServerMetadata, TokenForm,
};
use crate::routes::tokens::{exchange_key, TokenResponse};
use crate::service;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, request::Parts, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use latchkey_core::permission::VERIFY;
use latchkey_core::token::scope_string;
use latchkey_core::{Demand, Permission, PermissionSet};
use latchkey_store::TokenKind;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use utoipa::ToSchema;

#[derive(Debug)]
pub enum OAuthError {
    /// RFC 6749 §5.2 error response.
    Protocol {
        status: StatusCode,
        error: &'static str,
        description: &'static str,
        /// Answer with `WWW-Authenticate: Basic` (the client tried, or should try, HTTP Basic).
        challenge: bool,
    },
    /// What every endpoint answers alike, as problem+json: a throttled client address (429
    /// with `Retry-After`, which OAuth clients treat like any 429).
    Api(ApiError),
}

#[derive(Serialize, ToSchema)]
pub struct OAuthErrorBody {
    #[schema(value_type = String, pattern = "^(invalid_request|invalid_client|unsupported_grant_type|invalid_scope|unauthorized_client|temporarily_unavailable|server_error)$")]
    pub error: &'static str,
    pub error_description: &'static str,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: &'static str) -> Self {
        Self::Protocol {
            status,
            error,
            description,
            challenge: false,
        }
    }
    /// RFC 6749 §4.1.2.1's `temporarily_unavailable`, answered 503 like the rest of the API.
    fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "The service cannot reach its database right now; retry shortly",
        )
    }
    fn invalid_request(description: &'static str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }
    fn invalid_client(used_basic: bool) -> Self {
        Self::Protocol {
            status: if used_basic {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::BAD_REQUEST
            },
            error: "invalid_client",
            description: "Client authentication failed",
            challenge: used_basic,
        }
    }

    /// A refused client is `invalid_client`, whatever the reason, unless its address is
    /// throttled or the database is out of reach: those answers say when to come back.
    fn client_refused(e: ApiError, used_basic: bool) -> Self {
        match e {
            ApiError::RateLimited { .. } => Self::Api(e),
            ApiError::Unauthenticated { .. }
            | ApiError::Forbidden(_)
            | ApiError::BadRequest { .. } => Self::invalid_client(used_basic),
            // Not a verdict on the client: an outage (503) or our own failure (500).
            other => Self::from(other),
        }
    }
}

/// Failures that are not the client's: an outage (503) or an internal error (500).
impl From<ApiError> for OAuthError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Unavailable => Self::unavailable(),
            _ => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "Internal server error",
            ),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let (status, error, description, challenge) = match self {
            OAuthError::Protocol {
                status,
                error,
                description,
                challenge,
            } => (status, error, description, challenge),
            OAuthError::Api(e) => return e.into_response(),
        };
        let mut resp = (
            status,
            ApiJson(OAuthErrorBody {
                error,
                error_description: description,
            }),
        )
            .into_response();
        let h = resp.headers_mut();
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            h.insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(crate::error::RETRY_AFTER_SECONDS),
            );
        }
        if challenge {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"latchkey\""),
            );
        }
        resp
    }
}

/// An `application/x-www-form-urlencoded` body; a parameter given twice is an error (RFC 6749 §3.2).
fn form(parts: &Parts, body: &Bytes) -> Result<HashMap<String, String>, OAuthError> {
    let ct = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(OAuthError::invalid_request(
            "Expected an application/x-www-form-urlencoded body",
        ));
    }
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if out.insert(k.into_owned(), v.into_owned()).is_some() {
            return Err(OAuthError::invalid_request(
                "A parameter was given more than once",
            ));
        }
    }
    Ok(out)
}

/// Client authentication: HTTP Basic (`client_secret_basic`) or form fields
/// (`client_secret_post`), never both. Returns (client_id, client_secret, used_basic).
fn client_credentials(
    parts: &Parts,
    form: &HashMap<String, String>,
) -> Result<(String, String, bool), OAuthError> {
    let basic = match parts.headers.get(header::AUTHORIZATION) {
        None => None,
        Some(v) => {
            let v = v.to_str().map_err(|_| OAuthError::invalid_client(true))?;
            match v.split_once(' ') {
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => {
                    Some(basic_credentials(rest).ok_or(OAuthError::invalid_client(true))?)
                }
                _ => return Err(OAuthError::invalid_client(true)),
            }
        }
    };
    match (basic, form.get("client_secret")) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(
            "Use one client authentication method, not two",
        )),
        (Some((id, secret)), None) => Ok((id, secret, true)),
        (None, Some(secret)) => match form.get("client_id") {
            Some(id) => Ok((id.clone(), secret.clone(), false)),
            None => Err(OAuthError::invalid_client(false)),
        },
        // No credentials at all: invite HTTP Basic (RFC 6749 §5.2).
        (None, None) => Err(OAuthError::invalid_client(true)),
    }
}

#[utoipa::path(post, path = "/oauth/token", tag = "oauth",
    request_body(content = ClientCredentialsForm, content_type = "application/x-www-form-urlencoded",
        description = "grant_type=client_credentials, optional scope; client_id/client_secret by HTTP Basic or in the form"),
    security((), ("basic" = [])),
    responses((status = 200, body = TokenResponse),
        (status = 400, description = "RFC 6749 §5.2 error (or a request refused before it reached OAuth)",
            content((OAuthErrorBody = "application/json"), (Problem = "application/problem+json"))),
        (status = 401, description = "Client authentication by HTTP Basic failed", body = OAuthErrorBody),
        (status = 413, description = "Request body too large", body = Problem),
        (status = 429, description = "Too many refused credentials from this client address; see Retry-After", body = Problem),
        (status = 503, description = "The database is unreachable; retry", body = OAuthErrorBody)))]
pub async fn token(
    State(state): State<AppState>,
    parts: Parts,
    ApiBytes(body): ApiBytes,
) -> Result<Response, OAuthError> {
    let form = form(&parts, &body)?;
    let (client_id, secret, used_basic) = client_credentials(&parts, &form)?;
    match form.get("grant_type").map(String::as_str) {
        None => return Err(OAuthError::invalid_request("grant_type is required")),
        Some("client_credentials") => {}
        Some(_) => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Only client_credentials is supported",
            ))
        }
    }
    let presented = Presented {
        key: Some(secret.into()),
        token: None,
    };
    let key = exchange_key(&state, &parts, presented)
        .await
        .map_err(|e| OAuthError::client_refused(e, used_basic))?;
    if key.key.id != client_id {
        return Err(OAuthError::invalid_client(used_basic));
    }
    let scope = match form
        .get("scope")
        .map(|s| s.split(' ').filter(|p| !p.is_empty()).collect::<Vec<_>>())
    {
        None => None,
        Some(list) if list.is_empty() => None,
        Some(list) => {
            let eff = key.effective();
            let mut perms = Vec::with_capacity(list.len());
            for p in list {
                match Permission::parse(p) {
                    Ok(p) if eff.allows(&p) => perms.push(p),
                    _ => {
                        return Err(OAuthError::new(
                            StatusCode::BAD_REQUEST,
                            "invalid_scope",
                            "The scope asks for more than this client may have",
                        ))
                    }
                }
            }
            Some(PermissionSet::new(perms))
        }
    };
    let actor = latchkey_store::Actor {
        user_id: Some(key.key.owner_id.clone()),
        credential_id: Some(key.key.id.clone()),
        credential_name: Some(key.key.name.clone()),
        ip: crate::auth::client_ip(&parts, &state).map(|i| i.to_string()),
        user_agent: None,
    };
    let issued = service::tokens::issue(
        &state,
        &key,
        TokenKind::ClientCredentials,
        None,
        crate::now().saturating_add(state.tokens.default_ttl),
        scope,
        &actor,
    )
    .await
    .map_err(|_| {
        OAuthError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "Could not issue a token",
        )
    })?;
    let mut resp = ApiJson(TokenResponse::from(&issued)).into_response();
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

/// The caller of introspection and revocation: an API key, by any accepted header style
/// (including HTTP Basic `client_id:client_secret`) or as `client_secret` in the form.
async fn oauth_client(
    state: &AppState,
    parts: &Parts,
    form: &HashMap<String, String>,
) -> Result<Caller, OAuthError> {
    // When the client names itself (Basic user name, or `client_id`), the key must be that client.
    let named = match parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(v) => match v.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => basic_credentials(rest)
                .filter(|(_, pass)| !pass.is_empty())
                .map(|(user, _)| user),
            _ => None,
        },
        None => form.get("client_id").cloned(),
    };
    let used_basic = !form.contains_key("client_secret");
    let mut parts = parts.clone();
    if let Some(secret) = form.get("client_secret") {
        let presented =
            presented_credentials(&parts.headers).map_err(|_| OAuthError::invalid_client(true))?;
        if !presented.is_empty() {
            return Err(OAuthError::invalid_request(
                "Use one client authentication method, not two",
            ));
        }
        let v = HeaderValue::from_str(&format!("Bearer {secret}"))
            .map_err(|_| OAuthError::invalid_client(false))?;
        parts.headers.insert(header::AUTHORIZATION, v);
    }
    use axum::extract::FromRequestParts;
    let caller = crate::auth::LoneCaller::from_request_parts(&mut parts, state)
        .await
        .map(|c| c.0)
        .map_err(|e| OAuthError::client_refused(e, used_basic))?;
    if named.is_some_and(|id| id != caller.resolved.key.id) {
        return Err(OAuthError::invalid_client(used_basic));
    }
    Ok(caller)
}

#[utoipa::path(post, path = "/oauth/introspect", tag = "oauth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded", description = "token=…, optional token_type_hint"),
    security(("bearer" = []), ("api_key" = []), ("basic" = []), ()),
    responses((status = 200, description = "RFC 7662 response; exactly {\"active\": false} when the token is not active", body = Introspection),
        (status = 400, description = "RFC 6749 §5.2 error (or a request refused before it reached OAuth)",
            content((OAuthErrorBody = "application/json"), (Problem = "application/problem+json"))),
        (status = 401, description = "Client authentication failed", body = OAuthErrorBody),
        (status = 403, description = "The client lacks latchkey:verify", body = OAuthErrorBody),
        (status = 413, description = "Request body too large", body = Problem),
        (status = 429, description = "Too many refused credentials from this client address; see Retry-After", body = Problem),
        (status = 503, description = "The database is unreachable; retry", body = OAuthErrorBody)))]
pub async fn introspect(
    State(state): State<AppState>,
    parts: Parts,
    ApiBytes(body): ApiBytes,
) -> Result<Response, OAuthError> {
    let form = form(&parts, &body)?;
    let caller = oauth_client(&state, &parts, &form).await?;
    if !caller.allows(VERIFY) {
        return Err(OAuthError::new(
            StatusCode::FORBIDDEN,
            "unauthorized_client",
            "Introspection needs latchkey:verify",
        ));
    }
    let token = form
        .get("token")
        .ok_or(OAuthError::invalid_request("token is required"))?;
    let inactive = || ApiJson(json!({"active": false})).into_response();
    let Ok(r) = state
        .engine
        .resolve(token)
        .await
        .map_err(ApiError::from)
        .map_err(OAuthError::from)?
    else {
        return Ok(inactive());
    };
    let Some(t) = r.token.clone() else {
        return Ok(inactive());
    };
    // Scoped like `POST /v1/verify`, the other way to check a token online.
    let in_scope = caller.verifies_everywhere() || caller.workspace_id() == t.workspace_id;
    if !in_scope || r.decide(&Demand::default()).is_err() {
        return Ok(inactive());
    }
    let mut eff = r.effective().listing();
    if let Some(s) = &t.scope {
        eff = eff.intersection(s);
    }
    let body: Value = json!({
        "active": true,
        "scope": scope_string(&eff),
        "client_id": t.key_id,
        "sub": t.owner_id,
        "exp": r.expires_at(),
        "iat": t.issued_at,
        "iss": state.issuer(),
        "aud": state.issuer(),
        "jti": t.id,
        "token_type": "Bearer",
        "workspace_id": t.workspace_id,
        "environment": t.environment.as_str(),
    });
    Ok(ApiJson(body).into_response())
}

#[utoipa::path(post, path = "/oauth/revoke", tag = "oauth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded", description = "token=…, optional token_type_hint (only a hint)"),
    security(("bearer" = []), ("api_key" = []), ("basic" = []), ()),
    responses((status = 200, description = "Revoked, or nothing to revoke (RFC 7009 §2.2)"),
        (status = 400, description = "RFC 6749 §5.2 error (or a request refused before it reached OAuth)",
            content((OAuthErrorBody = "application/json"), (Problem = "application/problem+json"))),
        (status = 401, description = "Client authentication failed", body = OAuthErrorBody),
        (status = 413, description = "Request body too large", body = Problem),
        (status = 429, description = "Too many refused credentials from this client address; see Retry-After", body = Problem),
        (status = 503, description = "The database is unreachable; retry", body = OAuthErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    parts: Parts,
    ApiBytes(body): ApiBytes,
) -> Result<Response, OAuthError> {
    let form = form(&parts, &body)?;
    let caller = oauth_client(&state, &parts, &form).await?;
    let token = form
        .get("token")
        .ok_or(OAuthError::invalid_request("token is required"))?;
    // Not knowing whether the token exists is no reason to say it was revoked.
    service::tokens::revoke_quietly(&state, &caller, token).await?;
    Ok(StatusCode::OK.into_response())
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "oauth", security(),
    responses((status = 200, description = "The public keys that sign access tokens (RFC 7517)", body = JwkSet), BadRequest))]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut resp = ApiJson(state.engine.signing.jwks()).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    resp
}

#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "oauth", security(),
    responses((status = 200, description = "Authorization server metadata (RFC 8414)", body = ServerMetadata), BadRequest))]
pub async fn metadata(State(state): State<AppState>) -> Response {
    let iss = state.issuer();
    let mut resp = ApiJson(json!({
        "issuer": iss,
        "token_endpoint": format!("{iss}/oauth/token"),
        "jwks_uri": format!("{iss}/.well-known/jwks.json"),
        "introspection_endpoint": format!("{iss}/oauth/introspect"),
        "revocation_endpoint": format!("{iss}/oauth/revoke"),
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "access_token_signing_alg_values_supported": ["EdDSA"],
        "service_documentation": format!("{iss}/openapi.json"),
    }))
    .into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}
