//! `POST /v1/verify`: the provider's services ask whether a credential may do something.
//! Always 200 once the caller is authorised; the answer is in `valid` and `code`.
//!
//! Scope: the credential of an instance admin or an instance verifier can verify any key
//! ([`Caller::verifies_everywhere`]); any other `latchkey:verify` holder only keys of its own
//! workspace (others answer `NOT_FOUND`, as if they did not exist).

use crate::auth::{Caller, Presented, Refusal, Verified};
use crate::error::responses::{Authenticated, JsonBody};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::routes::schema::LimitChargeList;
use crate::routes::schema::{
    EnvironmentName, IpAddress, KeyId, KeyTypeName, Permission as PermissionSchema, PermissionList,
    Timestamp, TokenId, UserId, VerifyCode, WorkspaceId,
};
use crate::routes::views::{ts, ts_opt};
use crate::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use latchkey_core::permission::VERIFY;
use latchkey_core::ratelimit::{valid_name, Named, MAX_LIMITS};
use latchkey_core::token::looks_like_jwt;
use latchkey_core::{Demand, Denial, Environment, Permission, Validator};
use latchkey_engine::limits::{Report, Scope};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::net::IpAddr;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The credential to check (alias: `key`, `access_token`); give exactly one.
    pub credential: Option<String>,
    pub key: Option<String>,
    pub access_token: Option<String>,
    /// Every one of these is required.
    #[schema(value_type = Option<PermissionList>)]
    pub permissions: Option<Vec<String>>,
    /// `test` or `live`: the credential must belong to this environment.
    #[schema(value_type = Option<EnvironmentName>)]
    pub environment: Option<Environment>,
    /// The `Origin` the credential was presented from (for publishable keys).
    pub origin: Option<String>,
    /// The client IP the credential was presented from.
    #[schema(value_type = Option<IpAddress>)]
    pub ip: Option<String>,
    /// Limits of the key or its member to charge, by name, besides the auto-applied ones (a
    /// name the credential does not carry charges nothing). An auto-applied limit named here
    /// is charged its `cost` instead of 1.
    #[schema(value_type = Option<LimitChargeList>)]
    pub ratelimits: Option<Vec<LimitChargeBody>>,
    /// The credits this verification costs when it succeeds (default 1; 0 only checks). Spent
    /// from the key's credits and its owner's, when they have some.
    #[serde(default, deserialize_with = "crate::routes::integer::option")]
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub cost: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitChargeBody {
    pub name: String,
    #[serde(default, deserialize_with = "crate::routes::integer::option")]
    pub cost: Option<u32>,
}

/// The largest `cost` of one verification.
pub const MAX_COST: u32 = 1_000_000;

/// Where one of the credential's limits stands after this verification (SPEC §11.1).
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitAnswerView<'a> {
    pub name: &'a str,
    pub limit: u32,
    /// The limit's window (`w` of `RateLimit-Policy`).
    pub window_seconds: u64,
    pub remaining: u32,
    /// When the limit is fully rested again.
    #[schema(value_type = Timestamp)]
    pub reset_at: String,
    /// This limit refused the verification.
    pub exceeded: bool,
    /// For a limit that refused: seconds until the same request would pass; otherwise 0.
    pub retry_after_seconds: u64,
}

/// Where the credits of the key or its member stand after this verification (SPEC §11.2).
#[derive(Debug, Serialize, ToSchema)]
pub struct CreditsAnswerView {
    /// `key` or `member`.
    pub owner: &'static str,
    pub remaining: i64,
    /// These credits refused the verification (`USAGE_EXCEEDED`).
    pub exceeded: bool,
    /// The next refill, if the credits have one.
    #[schema(value_type = Option<Timestamp>)]
    pub refills_at: Option<String>,
}

fn credit_answers(report: &Report) -> Vec<CreditsAnswerView> {
    report
        .credits
        .iter()
        .map(|c| CreditsAnswerView {
            owner: match c.scope {
                Scope::Key => "key",
                Scope::Member => "member",
            },
            remaining: c.remaining,
            exceeded: c.exceeded,
            refills_at: ts_opt(c.refills_at),
        })
        .collect()
}

fn limit_answers(report: &Report, now: i64) -> Vec<LimitAnswerView<'_>> {
    report
        .entries
        .iter()
        .map(|e| LimitAnswerView {
            name: &e.name,
            limit: e.limit,
            window_seconds: e.window_seconds,
            remaining: e.remaining,
            reset_at: ts(now + e.reset_ns.div_ceil(1_000_000_000) as i64),
            exceeded: e.exceeded,
            retry_after_seconds: if e.exceeded {
                e.retry_after_ns.div_ceil(1_000_000_000).max(1)
            } else {
                0
            },
        })
        .collect()
}

/// Borrows from the resolved credential (serialized before the handler returns), so the answer
/// does not copy the key's ids, name or metadata.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct VerifyResponse<'a> {
    pub valid: bool,
    /// `VALID`, `NOT_FOUND`, `EXPIRED`, `REVOKED`, `DISABLED`, `INSUFFICIENT_PERMISSIONS`,
    /// `ENVIRONMENT_MISMATCH`, `ORIGIN_NOT_ALLOWED`, `IP_NOT_ALLOWED`, `PAIR_REQUIRED`,
    /// `PAIR_MISMATCH`, `FORBIDDEN`, `RATE_LIMITED`, `USAGE_EXCEEDED`.
    #[schema(value_type = VerifyCode)]
    pub code: &'static str,
    #[schema(value_type = Option<KeyId>)]
    pub key_id: Option<&'a str>,
    #[schema(value_type = Option<TokenId>)]
    pub token_id: Option<&'a str>,
    pub name: Option<Cow<'a, str>>,
    #[schema(value_type = Option<KeyTypeName>)]
    pub key_type: Option<&'static str>,
    #[schema(value_type = Option<EnvironmentName>)]
    pub environment: Option<&'static str>,
    #[schema(value_type = Option<WorkspaceId>)]
    pub workspace_id: Option<&'a str>,
    #[schema(value_type = Option<UserId>)]
    pub owner_id: Option<&'a str>,
    /// What the credential can do (empty unless `valid`).
    #[schema(value_type = Vec<PermissionSchema>)]
    pub permissions: Vec<&'a str>,
    #[schema(value_type = Option<Timestamp>)]
    pub expires_at: Option<String>,
    /// The key's metadata (any JSON value, as stored).
    pub metadata: Option<&'a Value>,
    /// The credential's rate limits charged by this verification, as they stand after it.
    pub ratelimits: Vec<LimitAnswerView<'a>>,
    /// The credits of the key and of its owner, when they have some.
    pub credits: Vec<CreditsAnswerView>,
}

#[utoipa::path(post, path = "/v1/verify", tag = "verify", request_body = VerifyRequest,
    responses((status = 200, body = VerifyResponse), Authenticated, JsonBody))]
pub async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<VerifyRequest>,
) -> Result<Response, ApiError> {
    caller.require(VERIFY)?;
    let mut v = Validator::new();
    let presented = match (&body.credential, &body.key, &body.access_token) {
        (Some(c), None, None) if looks_like_jwt(c) => Presented {
            key: None,
            token: Some(c.into()),
        },
        (Some(c), None, None) => Presented {
            key: Some(c.into()),
            token: None,
        },
        (None, key, token) if key.is_some() || token.is_some() => Presented {
            key: key.as_deref().map(Into::into),
            token: token.as_deref().map(Into::into),
        },
        _ => {
            v.error(
                "credential",
                "give one of credential, key or access_token (or key with access_token for a pair)",
            );
            Presented::default()
        }
    };
    let required = v.permissions(
        "permissions",
        body.permissions.as_deref().unwrap_or_default(),
    );
    let ip = body.ip.as_deref().and_then(|s| match s.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            v.error("ip", "must be an IP address");
            None
        }
    });
    let named = body.ratelimits.as_deref().unwrap_or_default();
    if body.cost.is_some_and(|c| c > MAX_COST) {
        v.error("cost", format!("0 to {MAX_COST}"));
    }
    if named.len() > 2 * MAX_LIMITS {
        v.error("ratelimits", format!("at most {} limits", 2 * MAX_LIMITS));
    }
    for (i, n) in named.iter().enumerate() {
        if !valid_name(&n.name) {
            v.error(
                &format!("ratelimits[{i}].name"),
                "1 to 64 letters, digits, '_', '-' or '.'",
            );
        }
        if n.cost.is_some_and(|c| c > MAX_COST) {
            v.error(&format!("ratelimits[{i}].cost"), format!("0 to {MAX_COST}"));
        }
    }
    v.finish()?;
    let required: Vec<_> = required.iter().cloned().collect();
    let named: Vec<Named<'_>> = named
        .iter()
        .map(|n| Named {
            name: &n.name,
            cost: n.cost.unwrap_or(1),
        })
        .collect();
    let demand = Demand {
        permissions: &required,
        environment: body.environment,
        origin: body.origin.as_deref(),
        ip,
        ratelimits: &named,
        cost: body.cost,
        // Before anything is charged: a key this caller may not see must not be spent by it.
        within_workspace: (!caller.verifies_everywhere()).then(|| caller.workspace_id()),
    };

    let in_scope = |ws: &str| caller.verifies_everywhere() || caller.workspace_id() == ws;
    let (resolved, outcome, report) =
        match state.engine.authenticate(&presented, &demand, false).await {
            Ok(Verified {
                primary,
                pair,
                limits,
            }) => {
                let visible = in_scope(&primary.key.workspace_id);
                let listing = latchkey_engine::enforce::listing(&primary, pair.as_ref());
                (visible.then_some(primary), Ok(listing), limits)
            }
            Err(Refusal::Denied(r, d)) => (
                r.filter(|r| in_scope(&r.key.workspace_id)),
                Err(d),
                Report::default(),
            ),
            Err(Refusal::Limited(r, report)) => (
                in_scope(&r.key.workspace_id).then_some(r),
                Err(report.denial()),
                *report,
            ),
            // No verdict: the caller must not take an outage for "invalid key".
            Err(Refusal::Unchecked(e)) => return Err(e.into()),
        };
    let Some(r) = resolved else {
        state
            .engine
            .record(None, Denial::NotFound.verify_code(), "verify", 0);
        return Ok(ApiJson(VerifyResponse {
            code: Denial::NotFound.verify_code(),
            ..Default::default()
        })
        .into_response());
    };
    let code = match &outcome {
        Ok(_) => "VALID",
        Err(d) => d.verify_code(),
    };
    state
        .engine
        .record(Some(&r), code, "verify", report.credits_spent);
    let k = &r.key;
    let listing = outcome.ok();
    Ok(ApiJson(VerifyResponse {
        valid: listing.is_some(),
        code,
        key_id: Some(&k.id),
        token_id: r.token.as_ref().map(|t| t.id.as_str()),
        name: Some(r.credential_name()),
        key_type: Some(k.key_type.as_str()),
        environment: Some(k.environment.as_str()),
        workspace_id: Some(&k.workspace_id),
        owner_id: Some(&k.owner_id),
        permissions: listing
            .iter()
            .flat_map(|l| l.iter().map(Permission::as_str))
            .collect(),
        expires_at: ts_opt(r.expires_at()),
        metadata: Some(&k.metadata),
        ratelimits: limit_answers(&report, state.engine.clock.unix()),
        credits: credit_answers(&report),
    })
    .into_response())
}
