//! Leaked-key reports (SPEC §12.2), from GitHub's secret scanning or from any credential with
//! `latchkey:leaks:report`: each reported string that is one of our keys is revoked (or, with
//! `[leaks] action = "notify"`, only announced) and audited `key.leaked`.
//!
//! The answer says of each string only whether it is ours (`true_positive`): never a key id,
//! a name or a workspace, so a reporter learns nothing about other tenants but what the
//! string itself already proves. A string is looked up as verification does, checksum first:
//! junk and typos never reach the database.

use crate::auth::Caller;
use crate::config::{GithubPublicKey, LeakAction};
use crate::error::ApiError;
use crate::state::AppState;
use base64::Engine as _;
use latchkey_core::permission::LEAKS_REPORT;
use latchkey_store::Actor;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::Signature;
use serde_json::json;
use sha2::{Digest, Sha256};

/// The most strings one report may carry. GitHub sends small batches; a larger report is
/// split by its sender.
pub const MAX_REPORTED: usize = 1000;

/// One reported string, with where it was found.
pub struct Reported<'a> {
    pub token: &'a str,
    /// Where it was found: GitHub's `source` (`content`, `commit`, …), or the reporter's word.
    pub source: Option<&'a str>,
    pub url: Option<&'a str>,
}

/// Whether a reported string is one of our keys, as GitHub labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    TruePositive,
    FalsePositive,
}

impl Label {
    pub fn as_str(self) -> &'static str {
        match self {
            Label::TruePositive => "true_positive",
            Label::FalsePositive => "false_positive",
        }
    }
}

/// `token_hash` of GitHub's answer: the SHA-256 of the reported string, lowercase hex.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Checks GitHub's signature over the raw body: `identifier` must name a configured key and
/// `signature` (base64 of an ASN.1 DER ECDSA P-256 SHA-256 signature) must match `body`.
/// Every failure is the same [`ApiError::InvalidSignature`].
pub fn verify_github_signature(
    keys: &[GithubPublicKey],
    identifier: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> Result<(), ApiError> {
    let (Some(identifier), Some(signature)) = (identifier, signature) else {
        return Err(ApiError::InvalidSignature);
    };
    let key = keys
        .iter()
        .find(|k| k.key_identifier == identifier)
        .ok_or(ApiError::InvalidSignature)?;
    let der = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| ApiError::InvalidSignature)?;
    let sig = Signature::from_der(&der).map_err(|_| ApiError::InvalidSignature)?;
    key.key
        .verify(body, &sig)
        .map_err(|_| ApiError::InvalidSignature)
}

/// Handles a report: each string in turn, in its own transaction (a report of a thousand
/// keys revokes what it can even if one write fails midway, and a retry finishes the rest).
/// Returns each string's label, in order.
///
/// `actor_workspace` is the reporting credential's workspace (`None` for GitHub): the keys of
/// other workspaces are audited under an anonymous "Leak report" actor, so one tenant's audit
/// log never shows another tenant's user or key.
pub async fn handle(
    state: &AppState,
    reporter: &str,
    items: &[Reported<'_>],
    actor: &Actor,
    actor_workspace: Option<&str>,
) -> Result<Vec<Label>, ApiError> {
    if items.len() > MAX_REPORTED {
        return Err(ApiError::validation(
            "body",
            format!("at most {MAX_REPORTED} keys per report"),
        ));
    }
    let action = state.leaks.action;
    let foreign_actor = Actor {
        credential_name: Some(format!("Leak report ({reporter})")),
        ..Actor::default()
    };
    let mut labels = Vec::with_capacity(items.len());
    for item in items {
        // Looked up as verification would (checksum first): a string that cannot be a stored
        // key is not ours.
        let Some(hash) = state.engine.hasher.lookup(item.token) else {
            labels.push(Label::FalsePositive);
            continue;
        };
        let hash = hash.to_hex();
        // Never the key itself: where it was found, who said so, and what was done.
        let detail = json!({
            "source": item.source,
            "url": item.url,
            "reporter": reporter,
            "action": action.as_str(),
        });
        let found = state
            .store
            .report_leaked_key(
                &hash,
                action == LeakAction::Revoke,
                detail,
                actor,
                actor_workspace,
                &foreign_actor,
            )
            .await?;
        match found {
            Some(changes) => {
                state.changed(&changes);
                labels.push(Label::TruePositive);
            }
            None => labels.push(Label::FalsePositive),
        }
    }
    Ok(labels)
}

/// `POST /v1/leaks`: the same handling for a credential holding `latchkey:leaks:report`.
pub async fn report(
    state: &AppState,
    caller: &Caller,
    items: &[Reported<'_>],
) -> Result<Vec<Label>, ApiError> {
    caller.require(LEAKS_REPORT)?;
    // An instance admin acts in every workspace: its name may appear in any of them.
    let workspace = (!caller.is_instance_admin()).then(|| caller.workspace_id());
    handle(state, "api", items, &caller.actor(), workspace).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hash_is_the_sha256_hex_github_expects() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_signature_is_checked_against_the_named_key_and_the_exact_body() {
        use p256::ecdsa::signature::Signer;
        use p256::ecdsa::{SigningKey, VerifyingKey};
        let sk = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let keys = vec![GithubPublicKey {
            key_identifier: "kid1".into(),
            key: VerifyingKey::from(&sk),
        }];
        let body = br#"[{"token":"x","type":"t","url":"u","source":"content"}]"#;
        let sig: Signature = sk.sign(body);
        let b64 = base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes());
        assert!(verify_github_signature(&keys, Some("kid1"), Some(&b64), body).is_ok());
        let bad = |id: Option<&str>, s: Option<&str>, b: &[u8]| {
            matches!(
                verify_github_signature(&keys, id, s, b),
                Err(ApiError::InvalidSignature)
            )
        };
        assert!(bad(Some("kid2"), Some(&b64), body));
        assert!(bad(Some("kid1"), Some(&b64), b"[]"));
        assert!(bad(Some("kid1"), Some("bm90IGEgc2lnbmF0dXJl"), body));
        assert!(bad(Some("kid1"), Some("%%%"), body));
        assert!(bad(None, Some(&b64), body));
        assert!(bad(Some("kid1"), None, body));
    }
}
