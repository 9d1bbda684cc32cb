//! Who is calling: reading the credential from the request (SPEC §4), resolving it through the
//! cache, and the [`Caller`] extractor that authenticated handlers take.

use crate::error::ApiError;
use crate::now;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::{header, request::Parts, HeaderMap};
use base64::Engine;
use latchkey_core::issuance::Issuer;
use latchkey_core::verify::{self, Effective};
use latchkey_core::{
    ApiKey, Demand, Denial, Environment, KeyFacts, OwnerFacts, PermissionSet, WorkspacePolicy,
};
use latchkey_store::{Actor, ApiKeyRecord, Principal, Workspace};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Reads the one credential a request presents, by any accepted style. `Ok(None)` when none.
pub fn presented_credential(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut found: Vec<String> = Vec::new();
    for v in headers.get_all(header::AUTHORIZATION) {
        found.push(from_authorization(v.to_str().unwrap_or("\u{0}invalid")));
    }
    for v in headers.get_all("x-api-key") {
        found.push(v.to_str().unwrap_or("\u{0}invalid").trim().to_owned());
    }
    let Some(first) = found.first() else {
        return Ok(None);
    };
    if found.iter().any(|c| c != first) {
        return Err(ApiError::BadRequest {
            code: "ambiguous_credentials",
            detail: "Send one credential: the request carries two different ones".into(),
        });
    }
    Ok(Some(first.clone()))
}

/// `Bearer <cred>`, `Basic base64(<key>:)` (as curl -u sk_…: sends it), or the raw key.
fn from_authorization(v: &str) -> String {
    let v = v.trim();
    match v.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim().to_owned(),
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => {
            base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.split_once(':').map(|(user, _)| user.to_owned()))
                .unwrap_or_else(|| "\u{0}invalid".into())
        }
        _ => v.to_owned(),
    }
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
        CREDENTIAL_PARAMS.iter().any(|p| k.eq_ignore_ascii_case(p)) || ApiKey::looks_like_key(&v)
    })
}

/// A key found in storage, with its owner's current standing and its workspace's policy.
#[derive(Clone)]
pub struct Resolved {
    pub key: Arc<ApiKeyRecord>,
    pub principal: Arc<Principal>,
    pub workspace: Arc<Workspace>,
}

impl Resolved {
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

    pub fn decide(&self, demand: &Demand<'_>) -> Result<(), Denial> {
        verify::decide(&self.facts(), &self.owner(), &self.policy(), demand, now())
    }

    pub fn effective(&self) -> Effective<'_> {
        verify::effective(&self.facts(), &self.owner(), &self.policy())
    }
}

/// Finds a key by its full secret: checksum first (no lookup for junk), then the cache, then
/// the database. `Ok(None)` means no such key.
pub async fn resolve_key(state: &AppState, raw: &str) -> Result<Option<Resolved>, ApiError> {
    let Ok(key) = ApiKey::parse(raw) else {
        return Ok(None);
    };
    let hash = state.hasher.hash(key.secret().expose());
    let record = match state.cache.key(&hash) {
        Some(r) => {
            metrics::counter!("latchkey_cache_hits_total", "kind" => "key").increment(1);
            r
        }
        None => {
            metrics::counter!("latchkey_cache_misses_total", "kind" => "key").increment(1);
            let epoch = state.cache.epoch();
            let Some(r) = state.store.key_by_hash(&hash.to_hex()).await? else {
                return Ok(None);
            };
            let r = Arc::new(r);
            state.cache.insert_key(hash, r.clone(), epoch);
            r
        }
    };
    // The lookup was by hash; confirm in constant time before trusting the record.
    if !latchkey_core::KeyHash::from_hex(&record.hash).is_some_and(|h| h.ct_eq(&hash)) {
        return Ok(None);
    }
    let principal = load_principal(state, &record.workspace_id, &record.owner_id).await?;
    let workspace = load_workspace(state, &record.workspace_id).await?;
    Ok(Some(Resolved {
        key: record,
        principal,
        workspace,
    }))
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
    let p = state
        .store
        .principal(ws, user)
        .await?
        .ok_or(ApiError::Internal)?;
    let p = Arc::new(p);
    state.cache.insert_principal(p.clone(), epoch);
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

pub fn count_verification(code: &'static str, source: &'static str) {
    metrics::counter!("latchkey_verifications_total", "code" => code, "source" => source)
        .increment(1);
}

/// The authenticated caller of a `/v1` endpoint.
pub struct Caller {
    pub resolved: Resolved,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(raw) = presented_credential(&parts.headers)? else {
            return Err(ApiError::Unauthenticated { presented: false });
        };
        let Some(resolved) = resolve_key(state, &raw).await? else {
            count_verification(Denial::NotFound.verify_code(), "auth");
            return Err(ApiError::Unauthenticated { presented: true });
        };
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let origin = parts
            .headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok());
        let demand = Demand {
            origin,
            ip,
            ..Demand::default()
        };
        let mut outcome = resolved.decide(&demand);
        if outcome.is_ok() && resolved.workspace.require_pair {
            outcome = Err(Denial::PairRequired);
        }
        if let Err(d) = outcome {
            count_verification(d.verify_code(), "auth");
            return Err(ApiError::from_denial(d));
        }
        count_verification("VALID", "auth");
        state.usage.touch(&resolved.key.id, now());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect());
        Ok(Caller {
            resolved,
            ip,
            user_agent,
        })
    }
}

impl Caller {
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

    /// Whether the key carries its own restriction list (so what it creates must stay inside it).
    pub fn is_restricted(&self) -> bool {
        self.resolved.key.permissions.is_some()
    }

    /// Everything this credential can do now, as a listing.
    pub fn permissions(&self) -> PermissionSet {
        self.resolved.effective().listing()
    }

    /// This credential as the issuer of new keys: the limits they inherit.
    pub fn issuer(&self) -> Issuer<'_> {
        Issuer {
            user_id: self.user_id(),
            is_instance_admin: self.is_instance_admin(),
            effective: self.resolved.effective(),
            restricted: self.is_restricted(),
            allowed_ips: &self.resolved.key.allowed_ips,
            expires_at: self.resolved.key.expires_at,
        }
    }

    /// Whether `key_id` is the credential making this request.
    pub fn is_self(&self, key_id: &str) -> bool {
        self.resolved.key.id == key_id
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
            credential_id: Some(self.resolved.key.id.clone()),
            credential_name: Some(self.resolved.key.name.clone()),
            ip: self.ip.map(|i| i.to_string()),
            user_agent: self.user_agent.clone(),
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
            assert_eq!(presented_credential(&h).unwrap().as_deref(), Some(k));
        }
        assert_eq!(presented_credential(&headers(&[])).unwrap(), None);
    }

    #[test]
    fn two_different_credentials_are_ambiguous() {
        let h = headers(&[("authorization", "Bearer a"), ("x-api-key", "b")]);
        assert!(matches!(
            presented_credential(&h),
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
