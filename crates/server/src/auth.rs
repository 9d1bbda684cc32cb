//! Who is calling a `/v1` endpoint: the [`Caller`] extractor that authenticated handlers take,
//! on top of the engine's credential parsing and resolution.

use crate::error::ApiError;
use crate::now;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use latchkey_core::issuance::{ip_intersection, Grants, Issuer};
use latchkey_core::{Demand, Environment, Permission, PermissionSet};
pub use latchkey_engine::credentials::{basic_credentials, query_has_credential};
pub use latchkey_engine::{Presented, Refusal, Resolved, Verified};
use latchkey_store::Actor;
use std::borrow::Cow;
use std::net::IpAddr;

/// Reads the credentials of a request (SPEC §4); two different ones are a 400.
pub fn presented_credentials(headers: &axum::http::HeaderMap) -> Result<Presented<'_>, ApiError> {
    latchkey_engine::presented_credentials(headers).map_err(ApiError::from)
}

/// The answer of an authenticated endpoint to a refusal; `source` labels the verification counter.
pub fn refusal_error(refusal: Refusal, state: &AppState, source: &'static str) -> ApiError {
    match refusal {
        Refusal::Denied(found, d) => {
            state
                .engine
                .record(found.as_ref(), d.verify_code(), source, 0);
            ApiError::from_denial(d)
        }
        Refusal::Limited(found, report) => {
            ApiError::Limited(state.engine.refused_by_limits(&found, &report, source))
        }
        Refusal::Unchecked(e) => e.into(),
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
) -> Result<Verified, ApiError> {
    crate::throttle::admit_credential(state, ip)?;
    let demand = request_demand(parts, ip);
    state
        .engine
        .authenticate(presented, &demand, lone_ok)
        .await
        .map_err(|r| {
            let e = refusal_error(r, state, source);
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
/// The request's `User-Agent`, as the audit log keeps it: its first 256 characters.
pub fn user_agent(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(256).collect())
}

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
        let Verified {
            primary: resolved,
            pair,
            limits,
        } = authenticate_request(state, parts, ip, &presented, lone_ok, "auth").await?;
        state
            .engine
            .record(Some(&resolved), "VALID", "auth", limits.credits_spent);
        if let Some(fields) = limits.fields() {
            crate::ratelimit_headers::report(parts, fields);
        }
        if let Some(p) = &pair {
            state.engine.usage.touch(&p.key, now());
        }
        let user_agent = user_agent(&parts.headers);
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
    pub fn is_instance_verifier(&self) -> bool {
        self.resolved.principal.is_instance_verifier
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

    /// Whether the credential's `latchkey:verify` (which it must still hold: see
    /// [`allows`](Self::allows)) reaches every workspace: its owner is an instance admin or an
    /// instance verifier (SPEC §5.1). The scope of `POST /v1/verify`, `POST /oauth/introspect`
    /// and the change stream; of nothing else, since an instance verifier sees no other
    /// workspace's objects.
    pub fn verifies_everywhere(&self) -> bool {
        self.is_instance_admin() || self.is_instance_verifier()
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

    #[test]
    fn the_user_agent_is_kept_to_256_characters_and_absent_when_unreadable() {
        let mut h = axum::http::HeaderMap::new();
        assert_eq!(user_agent(&h), None);
        h.insert(header::USER_AGENT, "curl/8.5.0".parse().unwrap());
        assert_eq!(user_agent(&h).as_deref(), Some("curl/8.5.0"));
        h.insert(header::USER_AGENT, "a".repeat(300).parse().unwrap());
        assert_eq!(user_agent(&h), Some("a".repeat(256)));
        h.insert(
            header::USER_AGENT,
            axum::http::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        );
        assert_eq!(user_agent(&h), None, "not visible ASCII: not kept");
    }
}
