//! Portal links (SPEC §7): how a provider puts "Manage API keys" inside its own product. Its
//! server asks for a link for one of its customers (`POST /v1/portal/sessions`) and sends the
//! customer's browser there; the link signs that person into the dashboard for that workspace,
//! once, within five minutes, with no Latchkey password.
//!
//! Who may make one is `latchkey_core::delegation`'s decision (`Issuer::may_make_portal_links`,
//! `Issuer::may_sign_in`): a live credential holding `latchkey:keys:manage_all` and every right
//! the session will carry. Another workspace and its people are a 404; someone who is not an
//! active member of the workspace is a field error on `user_id`. The link's secret is handed
//! out once and kept only as its SHA-256; it never reaches a log line, an error or the audit
//! log. Using a link is one conditional write (`SqlStore::use_portal_link`), so it signs in
//! once however many requests race for it, and the person must still be an active member then.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::now;
use crate::routes::portal::CreatePortalSessionRequest;
use crate::state::AppState;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use latchkey_core::delegation::SessionTarget;
use latchkey_core::{ids, Secret, Validator};
use latchkey_store::{Actor, NewPortalLink, PortalLink, Principal};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Random bytes of a link's secret (256 bits), written as 43 base64url characters.
const SECRET_BYTES: usize = 32;
const SECRET_CHARS: usize = 43;

/// The path a link's secret is appended to.
pub const PATH: &str = "/portal/";

/// A link just made: the URL to send the person to (it holds the secret: shown this once) and
/// when it stops working.
pub struct CreatedLink {
    pub url: Secret,
    pub expires_at: i64,
}

/// What a link is, seen from the browser that opens it.
pub enum LinkState {
    /// Never made (or swept a day after it expired), or not shaped like a link at all.
    Unknown,
    /// Used already, or expired.
    Spent(PortalLink),
    /// Its person is no longer an active member of its workspace.
    NoAccess(PortalLink),
    /// Good to sign in with (until someone else uses it first).
    Usable(PortalLink),
}

/// The stored id of a link: the SHA-256 of its secret. `None` for a string no link has.
fn link_id(secret: &str) -> Option<String> {
    let shaped = secret.len() == SECRET_CHARS
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    shaped.then(|| B64.encode(Sha256::digest(secret.as_bytes())))
}

/// The person a link would sign in, if the caller may see them: `Ok(None)` when they are not
/// an active member of `workspace_id` (a field error: the caller sees them, so saying so tells
/// nothing new), a 404 when they do not exist or belong only to other workspaces.
async fn member(
    state: &AppState,
    caller: &Caller,
    workspace_id: &str,
    user_id: &str,
) -> Result<Option<Principal>, ApiError> {
    let Some(p) = state.store.principal(workspace_id, user_id).await? else {
        return Err(ApiError::NotFound);
    };
    if p.is_member() {
        return Ok(p.active.then_some(p));
    }
    // Not a member here: visible, as to a workspace admin adding members, when the caller is
    // an instance admin or the person is in no workspace yet (just provisioned).
    if caller.is_instance_admin() || state.store.memberships(user_id).await?.is_empty() {
        Ok(None)
    } else {
        Err(ApiError::NotFound)
    }
}

/// `POST /v1/portal/sessions`: a single-use link that signs `user_id` into the dashboard for
/// `workspace_id`, valid for five minutes, with a "Back to …" link to `return_url`.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    body: &CreatePortalSessionRequest,
) -> Result<CreatedLink, ApiError> {
    let issuer = caller.issuer();
    // Before anyone is looked up: a credential that may not make links learns nothing.
    issuer.may_make_portal_links(caller.environment())?;
    let ws = body.workspace_id.as_str();
    if !(ids::is_id(ids::WORKSPACE, ws) && caller.sees_workspace(ws)) {
        return Err(ApiError::NotFound);
    }
    if ws != caller.workspace_id() {
        // Only an instance admin sees another workspace: it must exist.
        state.store.get_workspace(ws).await?;
    }
    let mut v = Validator::new();
    let target = if ids::is_id(ids::USER, &body.user_id) {
        let found = member(state, caller, ws, &body.user_id).await?;
        v.check(
            found.is_some(),
            "user_id",
            "must be an active member of the workspace",
        );
        found
    } else {
        v.error("user_id", "must be a user id starting with usr_");
        None
    };
    let return_url = body
        .return_url
        .as_deref()
        .and_then(|u| v.link_url("return_url", u));
    v.finish()?;
    let target = target.ok_or(ApiError::Internal)?;
    issuer.may_sign_in(
        caller.environment(),
        &SessionTarget {
            permissions: &target.permissions,
            instance_role: target.instance_role(),
        },
    )?;

    let mut bytes = [0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = Secret::new(B64.encode(bytes));
    let t = now();
    // Neither the link nor its session outlives the credential that made it (as a key or
    // token it issues would not: `core::issuance`).
    let ends_by = issuer.expires_at;
    let link = NewPortalLink {
        id: link_id(secret.expose()).expect("a generated secret is shaped like one"),
        user_id: target.user_id,
        workspace_id: ws.to_owned(),
        return_url,
        created_at: t,
        expires_at: t
            .saturating_add(state.portal_link_ttl)
            .min(ends_by.unwrap_or(i64::MAX)),
        session_ends_by: ends_by,
    };
    state
        .store
        .create_portal_link(&link, &caller.actor())
        .await?;
    Ok(CreatedLink {
        url: Secret::new(format!("{}{PATH}{}", state.issuer(), secret.expose())),
        expires_at: link.expires_at,
    })
}

/// What the link `secret` is now, without using it (`HEAD /portal/{secret}`, and the first
/// step of [`sign_in`]).
pub async fn check(state: &AppState, secret: &str) -> Result<LinkState, ApiError> {
    let Some(id) = link_id(secret) else {
        return Ok(LinkState::Unknown);
    };
    let Some(link) = state.store.portal_link(&id).await? else {
        return Ok(LinkState::Unknown);
    };
    if link.used_at.is_some() || link.expires_at <= now() {
        return Ok(LinkState::Spent(link));
    }
    let still_member = state
        .store
        .principal(&link.workspace_id, &link.user_id)
        .await?
        .is_some_and(|p| p.active && p.is_member());
    Ok(if still_member {
        LinkState::Usable(link)
    } else {
        LinkState::NoAccess(link)
    })
}

/// Uses the link `secret` for the browser at `ip` with `user_agent`: [`LinkState::Usable`] for
/// the one request that used it (audited as `portal.session_used`, acted by the person), the
/// reason otherwise. A link that loses a race is [`LinkState::Spent`].
pub async fn sign_in(
    state: &AppState,
    secret: &str,
    ip: Option<std::net::IpAddr>,
    user_agent: Option<String>,
) -> Result<LinkState, ApiError> {
    let link = match check(state, secret).await? {
        LinkState::Usable(link) => link,
        refused => return Ok(refused),
    };
    let actor = Actor {
        user_id: Some(link.user_id.clone()),
        credential_id: None,
        credential_name: Some("Portal link".into()),
        ip: ip.map(|i| i.to_string()),
        user_agent,
    };
    Ok(
        match state.store.use_portal_link(&link.id, now(), &actor).await? {
            Some(used) => LinkState::Usable(used),
            None => LinkState::Spent(link),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_link_shaped_strings_are_looked_up() {
        let secret = "a".repeat(SECRET_CHARS);
        let id = link_id(&secret).unwrap();
        assert_ne!(id, secret, "stored by hash");
        assert_eq!(id.len(), 43);
        assert_eq!(link_id(&secret), Some(id), "the same secret, the same id");
        for bad in [
            String::new(),
            "a".repeat(SECRET_CHARS - 1),
            "a".repeat(SECRET_CHARS + 1),
            format!("{}=", "a".repeat(SECRET_CHARS - 1)),
            format!("{}/", "a".repeat(SECRET_CHARS - 1)),
        ] {
            assert_eq!(link_id(&bad), None, "{bad:?}");
        }
        let mut bytes = [0u8; SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        assert!(link_id(&B64.encode(bytes)).is_some());
    }
}
