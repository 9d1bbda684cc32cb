//! `/v1/keys`: create (shown once), list, get, edit, roll, revoke. Who may do what is
//! [`crate::service::keys`]'s decision.

use crate::auth::Caller;
use crate::error::responses::{
    Authenticated, Conflict, JsonBody, NotFound, OptionalJsonBody, Unprocessable,
};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiJsonOrEmpty, ApiPath, ApiQuery};
use crate::routes::nullable;
use crate::routes::schema::CreditsSchema;
use crate::routes::schema::{
    EnvironmentName, GraceSeconds, IpNetworkList, KeyId, KeyStatusName, KeyTypeName, Limit,
    Metadata, Name, OriginList, PermissionList, RateLimitList, Timestamp, UserId, WorkspaceId,
};
use crate::routes::views::{CreatedKey, KeyView, List};
use crate::service;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use latchkey_core::credits::Credits;
use latchkey_core::ratelimit::NamedLimit;
use latchkey_core::{Environment, KeyType};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    #[schema(value_type = Name)]
    pub name: String,
    /// `secret` (default) or `publishable`.
    #[schema(value_type = Option<KeyTypeName>)]
    pub r#type: Option<KeyType>,
    /// `test` or `live`; defaults to the calling credential's environment.
    #[schema(value_type = Option<EnvironmentName>)]
    pub environment: Option<Environment>,
    /// Default: the calling credential's workspace.
    #[schema(value_type = Option<WorkspaceId>)]
    pub workspace_id: Option<String>,
    /// Another active member of the workspace; needs `latchkey:keys:manage_all`.
    #[schema(value_type = Option<UserId>)]
    pub owner_id: Option<String>,
    /// Restrict the key to these permissions (never more than its owner and its creator have).
    #[schema(value_type = Option<PermissionList>)]
    pub permissions: Option<Vec<String>>,
    /// In the future, and within the workspace's `max_key_ttl_seconds` if it has one.
    #[schema(value_type = Option<Timestamp>)]
    pub expires_at: Option<String>,
    /// Publishable keys only: browser origins allowed to use the key.
    #[schema(value_type = Option<OriginList>)]
    pub allowed_origins: Option<Vec<String>>,
    /// IP addresses or CIDR blocks allowed to use the key.
    #[schema(value_type = Option<IpNetworkList>)]
    pub allowed_ips: Option<Vec<String>>,
    #[schema(value_type = Option<Metadata>)]
    pub metadata: Option<Value>,
    /// Named rate limits of the key (SPEC §11.1).
    #[schema(value_type = Option<RateLimitList>)]
    pub ratelimits: Option<Vec<NamedLimit>>,
    /// Credits the key spends, one per successful verification (SPEC §11.2); none = unlimited.
    #[schema(value_type = Option<CreditsSchema>)]
    pub credits: Option<Credits>,
}

/// One key of an import (SPEC §12.3): `key` (its plaintext, in any format) or `sha256` (hex
/// or base64), never both. A key in Latchkey's own format takes its type and environment from
/// its prefix.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportKeyItem {
    /// The key as its holders send it, 16 to 256 visible ASCII characters.
    #[schema(value_type = Option<String>, min_length = 16, max_length = 256)]
    pub key: Option<String>,
    /// The key's SHA-256: 64 hex digits, or 32 bytes in base64 (standard or URL-safe).
    pub sha256: Option<String>,
    #[schema(value_type = Name)]
    pub name: String,
    /// An active member of the workspace.
    #[schema(value_type = UserId)]
    pub owner_id: String,
    #[schema(value_type = Option<WorkspaceId>)]
    pub workspace_id: Option<String>,
    #[schema(value_type = Option<EnvironmentName>)]
    pub environment: Option<Environment>,
    /// `secret` (default) or `publishable`.
    #[schema(value_type = Option<KeyTypeName>)]
    pub r#type: Option<KeyType>,
    #[schema(value_type = Option<PermissionList>)]
    pub permissions: Option<Vec<String>>,
    #[schema(value_type = Option<Timestamp>)]
    pub expires_at: Option<String>,
    #[schema(value_type = Option<Metadata>)]
    pub metadata: Option<Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportKeysRequest {
    /// 1 to 1,000 keys. Each is checked on its own: one that does not parse or is refused is
    /// listed in `failed`, the rest are stored.
    #[schema(value_type = Vec<ImportEntry>, min_items = 1, max_items = 1000)]
    pub keys: Vec<Value>,
}

/// What an entry of `keys` may be: SPEC §12.3 answers an entry that is not an
/// [`ImportKeyItem`] with a line in `failed`, not by refusing the whole request, so the
/// document says so (any value is accepted; only an `ImportKeyItem` is imported). Declaring
/// the entries as `ImportKeyItem` alone would promise a 4xx the server does not give.
pub struct ImportEntry;

impl utoipa::PartialSchema for ImportEntry {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, SchemaType};
        use utoipa::openapi::Ref;
        AnyOfBuilder::new()
            .item(Ref::from_schema_name(ImportKeyItem::name()))
            .item(ObjectBuilder::new().schema_type(SchemaType::AnyValue))
            .description(Some(
                "A key to import (`ImportKeyItem`). Any other value is listed in `failed` \
                 with the reason, and the request's other keys are still imported.",
            ))
            .into()
    }
}

impl ToSchema for ImportEntry {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((
            ImportKeyItem::name().into(),
            <ImportKeyItem as utoipa::PartialSchema>::schema(),
        ));
        <ImportKeyItem as ToSchema>::schemas(schemas);
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportKeysResponse {
    /// The keys stored, in one transaction.
    pub imported: Vec<ImportedKey>,
    /// The keys refused (duplicates included), and why.
    pub failed: Vec<FailedImport>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportedKey {
    /// The key's position in the request, from 0.
    pub index: usize,
    #[schema(value_type = KeyId)]
    pub id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FailedImport {
    pub index: usize,
    pub message: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateKeyRequest {
    #[schema(value_type = Option<Name>)]
    pub name: Option<String>,
    /// A new restriction list, or `null` to follow the owner's permissions.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<PermissionList>)]
    pub permissions: Option<Option<Vec<String>>>,
    /// A new expiry, or `null` for none.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Timestamp>)]
    pub expires_at: Option<Option<String>>,
    pub enabled: Option<bool>,
    /// Publishable keys only.
    #[schema(value_type = Option<OriginList>)]
    pub allowed_origins: Option<Vec<String>>,
    #[schema(value_type = Option<IpNetworkList>)]
    pub allowed_ips: Option<Vec<String>>,
    #[schema(value_type = Option<Metadata>)]
    pub metadata: Option<Value>,
    /// The key's whole list of rate limits (`[]` for none). A limit kept by name keeps what
    /// was spent of it.
    #[schema(value_type = Option<RateLimitList>)]
    pub ratelimits: Option<Vec<NamedLimit>>,
    /// New credits (the balance and the refill), or `null` for unlimited.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<CreditsSchema>)]
    pub credits: Option<Option<Credits>>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollKeyRequest {
    /// How long the old key keeps working, 0 to 604800 seconds (default 0), never past its own expiry.
    #[serde(default, deserialize_with = "crate::routes::integer::option")]
    #[schema(value_type = Option<GraceSeconds>)]
    pub grace_seconds: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeyListParams {
    #[param(value_type = Option<WorkspaceId>)]
    pub workspace_id: Option<String>,
    #[param(value_type = Option<UserId>)]
    pub owner_id: Option<String>,
    #[param(value_type = Option<EnvironmentName>)]
    pub environment: Option<Environment>,
    #[param(value_type = Option<KeyStatusName>)]
    pub status: Option<String>,
    /// `secret` or `publishable`.
    #[param(value_type = Option<KeyTypeName>)]
    pub r#type: Option<String>,
    /// Keys whose name contains this (ignoring case), at most 100 characters.
    pub name: Option<String>,
    #[param(value_type = Option<Limit>)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(value_type = Option<KeyId>)]
    pub cursor: Option<String>,
}

#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = CreateKeyRequest,
    responses((status = 201, body = CreatedKey), Authenticated, JsonBody, NotFound))]
pub async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateKeyRequest>,
) -> Result<(StatusCode, ApiJson<CreatedKey>), ApiError> {
    let issued = service::keys::create(&state, &caller, &body).await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(CreatedKey::new(&state, &issued)),
    ))
}

#[utoipa::path(post, path = "/v1/keys/import", tag = "keys", request_body = ImportKeysRequest,
    responses((status = 200, body = ImportKeysResponse), Authenticated, JsonBody))]
pub async fn import_keys(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ImportKeysRequest>,
) -> Result<ApiJson<ImportKeysResponse>, ApiError> {
    let outcome = service::keys::import(&state, &caller, &body.keys).await?;
    Ok(ApiJson(ImportKeysResponse {
        imported: outcome
            .imported
            .into_iter()
            .map(|(index, id)| ImportedKey { index, id })
            .collect(),
        failed: outcome
            .failed
            .into_iter()
            .map(|(index, message)| FailedImport { index, message })
            .collect(),
    }))
}

#[utoipa::path(get, path = "/v1/keys", tag = "keys", params(KeyListParams),
    responses((status = 200, body = List<KeyView>), Authenticated, NotFound, Unprocessable))]
pub async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<KeyListParams>,
) -> Result<ApiJson<List<KeyView>>, ApiError> {
    let page = service::keys::list(&state, &caller, &q).await?;
    Ok(ApiJson(List::map(page, |k| KeyView::current(&state, k))))
}

#[utoipa::path(get, path = "/v1/keys/{id}", tag = "keys", params(("id" = KeyId, Path)),
    responses((status = 200, body = KeyView), Authenticated, NotFound))]
pub async fn get_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<KeyView>, ApiError> {
    let k = service::keys::get(&state, &caller, &id).await?;
    Ok(ApiJson(KeyView::current(&state, &k)))
}

#[utoipa::path(patch, path = "/v1/keys/{id}", tag = "keys", params(("id" = KeyId, Path)),
    request_body = UpdateKeyRequest,
    responses((status = 200, body = KeyView), Authenticated, JsonBody, NotFound))]
pub async fn update_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateKeyRequest>,
) -> Result<ApiJson<KeyView>, ApiError> {
    let k = service::keys::update(&state, &caller, &id, &body).await?;
    Ok(ApiJson(KeyView::current(&state, &k)))
}

#[utoipa::path(post, path = "/v1/keys/{id}/roll", tag = "keys", params(("id" = KeyId, Path)),
    request_body(content = Option<RollKeyRequest>, description = "Optional: no body rolls without a grace period"),
    responses((status = 201, body = CreatedKey), Authenticated, OptionalJsonBody, NotFound, Conflict))]
pub async fn roll_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJsonOrEmpty(body): ApiJsonOrEmpty<RollKeyRequest>,
) -> Result<(StatusCode, ApiJson<CreatedKey>), ApiError> {
    let issued = service::keys::roll(&state, &caller, &id, &body).await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(CreatedKey::new(&state, &issued)),
    ))
}

#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys", params(("id" = KeyId, Path)),
    responses((status = 204, description = "Revoked (or already revoked)"), Authenticated, NotFound))]
pub async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    service::keys::revoke(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
