//! `/v1/leaks`: leaked-key reports, from GitHub's secret scanning partner program
//! (`/v1/leaks/github`, authenticated by GitHub's signature of the body) and from any
//! credential holding `latchkey:leaks:report`. What a report does is
//! [`crate::service::leaks`]'s decision.

use crate::auth::{client_ip, Caller};
use crate::error::responses::{Authenticated, JsonBody, Signed};
use crate::error::ApiError;
use crate::extract::{ApiBytes, ApiJson};
use crate::service::leaks::{self, Reported};
use crate::state::AppState;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The largest report body: GitHub's batches are far smaller. Checked before the signature,
/// so an unsigned flood costs no ECDSA verification.
pub const MAX_REPORT_BYTES: usize = 1 << 20;

/// One match of GitHub's secret scanning.
#[derive(Debug, Deserialize, ToSchema)]
pub struct GithubMatch {
    /// The matched string.
    pub token: String,
    /// The secret type the provider registered with GitHub, echoed back as `token_type`.
    pub r#type: String,
    /// Where GitHub found it.
    #[serde(default)]
    pub url: Option<String>,
    /// What GitHub scanned: `content`, `commit`, `pull_request_description`, …
    #[serde(default)]
    pub source: Option<String>,
}

/// One reported string in the answer: only whether it is ours, never which key it is.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeakLabel {
    /// SHA-256 of the reported string, lowercase hex.
    pub token_hash: String,
    /// GitHub's `type`, echoed; for `POST /v1/leaks`, `secret` or `publishable` from the
    /// string's prefix, `unknown` for a string that is not shaped like a key.
    pub token_type: String,
    /// `true_positive` (one of this server's keys, whatever its state) or `false_positive`.
    #[schema(example = "true_positive")]
    pub label: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeakReport {
    /// The leaked strings (at most 1000).
    pub keys: Vec<String>,
    /// Where they were found, in the reporter's words (kept in the audit event).
    #[serde(default)]
    pub source: Option<String>,
    /// Where they were found (kept in the audit event).
    #[serde(default)]
    pub url: Option<String>,
}

/// Bounds the free-text fields a reporter puts into the audit log.
fn bounded(field: &str, s: Option<&str>, max: usize) -> Result<(), ApiError> {
    match s {
        Some(s) if s.chars().count() > max => Err(ApiError::validation(
            field,
            format!("must be at most {max} characters"),
        )),
        _ => Ok(()),
    }
}

#[utoipa::path(post, path = "/v1/leaks/github", tag = "leaks", request_body = Vec<GithubMatch>,
    security(()),
    params(
        ("Github-Public-Key-Identifier" = String, Header, description = "Which of GitHub's secret scanning keys signed the body"),
        ("Github-Public-Key-Signature" = String, Header, description = "Base64 ASN.1 DER ECDSA P-256 SHA-256 signature of the raw body"),
    ),
    responses((status = 200, body = Vec<LeakLabel>, description = "One label per match, in order"), Signed))]
pub async fn github(
    State(state): State<AppState>,
    parts: Parts,
    ApiBytes(body): ApiBytes,
) -> Result<ApiJson<Vec<LeakLabel>>, ApiError> {
    if body.len() > MAX_REPORT_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    let h = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    // The signature first, over the bytes as received: nothing is parsed from an unsigned body.
    leaks::verify_github_signature(
        &state.leaks.github_public_keys,
        h("github-public-key-identifier"),
        h("github-public-key-signature"),
        &body,
    )?;
    let matches: Vec<GithubMatch> = parse_array(&body)?;
    for (i, m) in matches.iter().enumerate() {
        bounded(&format!("[{i}].url"), m.url.as_deref(), 2000)?;
        bounded(&format!("[{i}].source"), m.source.as_deref(), 200)?;
    }
    let items: Vec<Reported<'_>> = matches
        .iter()
        .map(|m| Reported {
            token: &m.token,
            source: m.source.as_deref(),
            url: m.url.as_deref(),
        })
        .collect();
    let actor = latchkey_store::Actor {
        credential_name: Some("GitHub secret scanning".into()),
        ip: client_ip(&parts, &state).map(|i| i.to_string()),
        user_agent: user_agent(&parts.headers),
        ..Default::default()
    };
    let labels = leaks::handle(&state, "github", &items, &actor, None).await?;
    Ok(ApiJson(
        matches
            .iter()
            .zip(labels)
            .map(|(m, l)| LeakLabel {
                token_hash: leaks::token_hash(&m.token),
                token_type: m.r#type.clone(),
                label: l.as_str().into(),
            })
            .collect(),
    ))
}

#[utoipa::path(post, path = "/v1/leaks", tag = "leaks", request_body = LeakReport,
    responses((status = 200, body = Vec<LeakLabel>, description = "One label per key, in order"), Authenticated, JsonBody))]
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<LeakReport>,
) -> Result<ApiJson<Vec<LeakLabel>>, ApiError> {
    bounded("url", body.url.as_deref(), 2000)?;
    bounded("source", body.source.as_deref(), 200)?;
    let items: Vec<Reported<'_>> = body
        .keys
        .iter()
        .map(|k| Reported {
            token: k,
            source: body.source.as_deref(),
            url: body.url.as_deref(),
        })
        .collect();
    let labels = leaks::report(&state, &caller, &items).await?;
    Ok(ApiJson(
        body.keys
            .iter()
            .zip(labels)
            .map(|(k, l)| LeakLabel {
                token_hash: leaks::token_hash(k),
                token_type: token_type_of(k).into(),
                label: l.as_str().into(),
            })
            .collect(),
    ))
}

/// `secret` or `publishable` for a string shaped like a key (what its prefix says anyway).
fn token_type_of(s: &str) -> &'static str {
    if !latchkey_core::ApiKey::looks_like_key(s) {
        "unknown"
    } else if s.starts_with("pk_") {
        "publishable"
    } else {
        "secret"
    }
}

/// GitHub's body is a JSON array, which [`crate::extract::parse_json`] (objects only) refuses.
fn parse_array<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<Vec<T>, ApiError> {
    if !bytes.trim_ascii_start().starts_with(b"[") {
        return Err(ApiError::validation("body", "must be a JSON array"));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = format!("body{}", e.path()).replace("body.", "body");
        if e.inner().is_data() {
            ApiError::validation(&field, "is missing or not a string")
        } else {
            ApiError::bad_request("Malformed JSON body")
        }
    })
}

fn user_agent(h: &HeaderMap) -> Option<String> {
    h.get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(200).collect())
}
