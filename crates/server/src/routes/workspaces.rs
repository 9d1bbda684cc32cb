//! `/v1/workspaces`: tenants, their members, roles and grants. Who may see and change what is
//! [`crate::service::workspaces`]'s decision.

use crate::auth::Caller;
use crate::error::responses::{Authenticated, Conflict, JsonBody, NotFound, Unprocessable};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::routes::schema::{
    CreditsSchema, GrantId, KeyTtlSeconds, Limit, Name, Permission as PermissionSchema,
    PermissionList, RateLimitList, RoleName, UserId, WorkspaceId,
};
use crate::routes::views::PageParams;
use crate::routes::views::{GrantView, List, MemberView, RoleView, WorkspaceView};
use crate::service;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkspaceRequest {
    #[schema(value_type = Name)]
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWorkspaceRequest {
    #[schema(value_type = Option<Name>)]
    pub name: Option<String>,
    pub require_pair: Option<bool>,
    /// Never a `latchkey:` permission.
    #[schema(value_type = Option<PermissionList>)]
    pub publishable_permissions: Option<Vec<String>>,
    /// Longest lifetime of a new key (60 s to 10 years), or `null` for no limit.
    #[serde(default, deserialize_with = "crate::routes::integer::nullable")]
    #[schema(value_type = Option<KeyTtlSeconds>)]
    pub max_key_ttl_seconds: Option<Option<i64>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutMemberRequest {
    /// A role of this workspace.
    #[schema(value_type = RoleName)]
    pub role: String,
    /// The member's rate limits, shared by all of their keys and tokens in the workspace
    /// (SPEC §11.1); left as they are when not given, `[]` removes them.
    #[schema(value_type = Option<RateLimitList>)]
    pub ratelimits: Option<Vec<latchkey_core::ratelimit::NamedLimit>>,
    /// The member's credits, spent by all of their keys and tokens in the workspace; `null`
    /// for unlimited, left as they are when not given.
    #[serde(default, deserialize_with = "crate::routes::nullable")]
    #[schema(value_type = Option<CreditsSchema>)]
    pub credits: Option<Option<latchkey_core::credits::Credits>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutRoleRequest {
    #[schema(value_type = PermissionList)]
    pub permissions: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGrantRequest {
    /// A member of this workspace.
    #[schema(value_type = UserId)]
    pub user_id: String,
    #[schema(value_type = PermissionSchema)]
    pub permission: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GrantListParams {
    #[param(value_type = Option<UserId>)]
    pub user_id: Option<String>,
    #[param(value_type = Option<Limit>)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(value_type = Option<GrantId>)]
    pub cursor: Option<String>,
}

#[utoipa::path(post, path = "/v1/workspaces", tag = "workspaces", request_body = CreateWorkspaceRequest,
    responses((status = 201, body = WorkspaceView), Authenticated, JsonBody))]
pub async fn create_workspace(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateWorkspaceRequest>,
) -> Result<(StatusCode, ApiJson<WorkspaceView>), ApiError> {
    let ws = service::workspaces::create(&state, &caller, &body).await?;
    Ok((StatusCode::CREATED, ApiJson(WorkspaceView::from(&ws))))
}

#[utoipa::path(get, path = "/v1/workspaces", tag = "workspaces",
    params(("limit" = Option<Limit>, Query), ("cursor" = Option<WorkspaceId>, Query, description = "The `next_cursor` of the previous page")),
    responses((status = 200, body = List<WorkspaceView>), Authenticated, Unprocessable))]
pub async fn list_workspaces(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<ApiJson<List<WorkspaceView>>, ApiError> {
    let page = service::workspaces::list(&state, &caller, &q).await?;
    Ok(ApiJson(List::from_page(page)))
}

#[utoipa::path(get, path = "/v1/workspaces/{id}", tag = "workspaces", params(("id" = WorkspaceId, Path)),
    responses((status = 200, body = WorkspaceView), Authenticated, NotFound))]
pub async fn get_workspace(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<WorkspaceView>, ApiError> {
    let ws = service::workspaces::get(&state, &caller, &id).await?;
    Ok(ApiJson(WorkspaceView::from(&ws)))
}

#[utoipa::path(patch, path = "/v1/workspaces/{id}", tag = "workspaces", params(("id" = WorkspaceId, Path)),
    request_body = UpdateWorkspaceRequest,
    responses((status = 200, body = WorkspaceView), Authenticated, JsonBody, NotFound))]
pub async fn update_workspace(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateWorkspaceRequest>,
) -> Result<ApiJson<WorkspaceView>, ApiError> {
    let ws = service::workspaces::update(&state, &caller, &id, &body).await?;
    Ok(ApiJson(WorkspaceView::from(&ws)))
}

#[utoipa::path(get, path = "/v1/workspaces/{id}/members", tag = "workspaces",
    params(("id" = WorkspaceId, Path), ("limit" = Option<Limit>, Query), ("cursor" = Option<UserId>, Query, description = "The `next_cursor` of the previous page")),
    responses((status = 200, body = List<MemberView>), Authenticated, NotFound, Unprocessable))]
pub async fn list_members(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<ApiJson<List<MemberView>>, ApiError> {
    let page = service::workspaces::list_members(&state, &caller, &id, &q).await?;
    Ok(ApiJson(List::from_page(page)))
}

#[utoipa::path(put, path = "/v1/workspaces/{id}/members/{user_id}", tag = "workspaces",
    params(("id" = WorkspaceId, Path), ("user_id" = UserId, Path)), request_body = PutMemberRequest,
    responses((status = 200, description = "Role changed", body = MemberView),
        (status = 201, description = "Added", body = MemberView),
        Authenticated, JsonBody, NotFound, Conflict))]
pub async fn put_member(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, user_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<PutMemberRequest>,
) -> Result<(StatusCode, ApiJson<MemberView>), ApiError> {
    let put = service::workspaces::put_member(&state, &caller, &id, &user_id, &body).await?;
    let status = if put.added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, ApiJson(MemberView::from(&put.member))))
}

#[utoipa::path(delete, path = "/v1/workspaces/{id}/members/{user_id}", tag = "workspaces",
    params(("id" = WorkspaceId, Path), ("user_id" = UserId, Path)),
    responses((status = 204, description = "Removed; their keys stop working at once"),
        Authenticated, NotFound, Conflict))]
pub async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, user_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    service::workspaces::remove_member(&state, &caller, &id, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/workspaces/{id}/roles", tag = "workspaces", params(("id" = WorkspaceId, Path)),
    responses((status = 200, body = List<RoleView>), Authenticated, NotFound))]
pub async fn list_roles(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<List<RoleView>>, ApiError> {
    let roles = service::workspaces::list_roles(&state, &caller, &id).await?;
    Ok(ApiJson(List {
        data: roles.iter().map(RoleView::from).collect(),
        next_cursor: None,
    }))
}

#[utoipa::path(get, path = "/v1/workspaces/{id}/roles/{role}", tag = "workspaces",
    params(("id" = WorkspaceId, Path), ("role" = RoleName, Path)),
    responses((status = 200, body = RoleView), Authenticated, NotFound))]
pub async fn get_role(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, role)): ApiPath<(String, String)>,
) -> Result<ApiJson<RoleView>, ApiError> {
    let role = service::workspaces::get_role(&state, &caller, &id, &role).await?;
    Ok(ApiJson(RoleView::from(&role)))
}

#[utoipa::path(put, path = "/v1/workspaces/{id}/roles/{role}", tag = "workspaces",
    params(("id" = WorkspaceId, Path), ("role" = RoleName, Path)), request_body = PutRoleRequest,
    responses((status = 200, body = RoleView), Authenticated, JsonBody, NotFound))]
pub async fn put_role(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, role)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<PutRoleRequest>,
) -> Result<ApiJson<RoleView>, ApiError> {
    let role = service::workspaces::put_role(&state, &caller, &id, &role, &body).await?;
    Ok(ApiJson(RoleView::from(&role)))
}

#[utoipa::path(post, path = "/v1/workspaces/{id}/grants", tag = "workspaces", params(("id" = WorkspaceId, Path)),
    request_body = CreateGrantRequest,
    responses((status = 201, body = GrantView), Authenticated, JsonBody, NotFound, Conflict))]
pub async fn create_grant(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CreateGrantRequest>,
) -> Result<(StatusCode, ApiJson<GrantView>), ApiError> {
    let grant = service::workspaces::create_grant(&state, &caller, &id, &body).await?;
    Ok((StatusCode::CREATED, ApiJson(GrantView::from(&grant))))
}

#[utoipa::path(get, path = "/v1/workspaces/{id}/grants", tag = "workspaces",
    params(("id" = WorkspaceId, Path), GrantListParams),
    responses((status = 200, body = List<GrantView>), Authenticated, NotFound, Unprocessable))]
pub async fn list_grants(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<GrantListParams>,
) -> Result<ApiJson<List<GrantView>>, ApiError> {
    let page = service::workspaces::list_grants(&state, &caller, &id, &q).await?;
    Ok(ApiJson(List::from_page(page)))
}

#[utoipa::path(delete, path = "/v1/workspaces/{id}/grants/{grant_id}", tag = "workspaces",
    params(("id" = WorkspaceId, Path), ("grant_id" = GrantId, Path)),
    responses((status = 204, description = "Deleted; takes effect on the next request"),
        Authenticated, NotFound))]
pub async fn delete_grant(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, grant_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    service::workspaces::delete_grant(&state, &caller, &id, &grant_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
