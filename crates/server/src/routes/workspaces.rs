//! `/v1/workspaces`: tenants, their members, roles and grants.
//!
//! A credential sees only its own workspace (instance admins see all); another workspace is a
//! 404. Reading the workspace and its roles needs only to see it; everything else needs
//! `latchkey:members:manage`. Creating workspaces is for instance admins. What a role, grant or
//! membership may give is `latchkey_core::delegation`'s decision: never more than the caller
//! holds, and `admin` only from a full admin.

use crate::auth::Caller;
use crate::error::responses::{Authenticated, Conflict, JsonBody, NotFound, Unprocessable};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::routes::schema::{
    GrantId, KeyTtlSeconds, Limit, Name, Permission as PermissionSchema, PermissionList, RoleName,
    UserId, WorkspaceId,
};
use crate::routes::views::PageParams;
use crate::routes::views::{GrantView, List, MemberView, RoleView, WorkspaceView};
use crate::service::page_request;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use latchkey_core::permission::MEMBERS_MANAGE;
use latchkey_core::{ids, roles, Permission, PermissionSet, Validator};
use latchkey_store::{Page, StoreError, WorkspacePatch};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// `max_key_ttl_seconds`: a minute to ten years.
pub const MIN_TTL_SECONDS: i64 = 60;
pub const MAX_TTL_SECONDS: i64 = 10 * 366 * 24 * 3600;

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

/// The workspace in the path, if the caller may see it and it exists. An instance admin sees
/// every workspace id, so existence is checked here: a workspace that does not exist is a 404
/// on every path below it (not an empty list, a 422 about a field, or a foreign-key 500).
async fn visible(state: &AppState, caller: &Caller, id: &str) -> Result<(), ApiError> {
    if !(ids::is_id(ids::WORKSPACE, id) && caller.sees_workspace(id)) {
        return Err(ApiError::NotFound);
    }
    if caller.is_instance_admin() && id != caller.workspace_id() {
        state.store.get_workspace(id).await?;
    }
    Ok(())
}

async fn managed(state: &AppState, caller: &Caller, id: &str) -> Result<(), ApiError> {
    visible(state, caller, id).await?;
    caller.require(MEMBERS_MANAGE)
}

/// For changes: managed, and made with a live credential.
async fn changeable(state: &AppState, caller: &Caller, id: &str) -> Result<(), ApiError> {
    managed(state, caller, id).await?;
    caller.require_live()
}

/// Whom a workspace admin may add or change: a user already in this workspace, or one in no
/// workspace yet (just provisioned). Users of other workspaces are invisible (404); the
/// membership of an instance admin or verifier is an instance admin's to manage (403): it is
/// where their keys, which act beyond the workspace, live.
async fn may_manage_member(
    state: &AppState,
    caller: &Caller,
    ws: &str,
    user_id: &str,
) -> Result<(), ApiError> {
    if !ids::is_id(ids::USER, user_id) {
        return Err(ApiError::NotFound);
    }
    let user = state.store.get_user(user_id).await?;
    if caller.is_instance_admin() {
        return Ok(());
    }
    let memberships = state.store.memberships(user_id).await?;
    if !memberships.is_empty() && !memberships.iter().any(|m| m == ws) {
        return Err(ApiError::NotFound);
    }
    if user.instance_role().is_some() {
        return Err(ApiError::insufficient_permissions());
    }
    Ok(())
}

/// The permissions of the workspace's `admin` role, against which "full admin" is measured
/// (`latchkey_core::delegation`). Should the role be missing, everything: then only a
/// credential holding everything counts as a full admin.
async fn admin_role(state: &AppState, ws: &str) -> Result<PermissionSet, ApiError> {
    match state.store.get_role(ws, roles::ADMIN).await {
        Ok(r) => Ok(r.permissions),
        Err(StoreError::NotFound) => Ok(PermissionSet::all()),
        Err(e) => Err(e.into()),
    }
}

/// The role a user has in a workspace now, if a member.
async fn current_role(state: &AppState, ws: &str, user: &str) -> Result<Option<String>, ApiError> {
    Ok(state.store.principal(ws, user).await?.and_then(|p| p.role))
}

#[utoipa::path(post, path = "/v1/workspaces", tag = "workspaces", request_body = CreateWorkspaceRequest,
    responses((status = 201, body = WorkspaceView), Authenticated, JsonBody))]
pub async fn create_workspace(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateWorkspaceRequest>,
) -> Result<(StatusCode, ApiJson<WorkspaceView>), ApiError> {
    if !caller.is_instance_admin() {
        return Err(ApiError::insufficient_permissions());
    }
    caller.require_live()?;
    let mut v = Validator::new();
    let name = v.name("name", &body.name);
    v.finish()?;
    let ws = state
        .store
        .create_workspace(
            &ids::new_id(ids::WORKSPACE),
            &name,
            caller.user_id(),
            &caller.actor(),
        )
        .await?;
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
    let page = page_request(q.limit, q.cursor.as_deref(), ids::WORKSPACE)?;
    let page = if caller.is_instance_admin() {
        state.store.list_workspaces(None, page).await?
    } else {
        let own = state.store.get_workspace(caller.workspace_id()).await?;
        let data = if page.cursor.is_some_and(|c| c <= own.id.as_str()) {
            vec![]
        } else {
            vec![own]
        };
        Page {
            data,
            next_cursor: None,
        }
    };
    Ok(ApiJson(List::from_page(page)))
}

#[utoipa::path(get, path = "/v1/workspaces/{id}", tag = "workspaces", params(("id" = WorkspaceId, Path)),
    responses((status = 200, body = WorkspaceView), Authenticated, NotFound))]
pub async fn get_workspace(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<WorkspaceView>, ApiError> {
    visible(&state, &caller, &id).await?;
    Ok(ApiJson(WorkspaceView::from(
        &state.store.get_workspace(&id).await?,
    )))
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
    changeable(&state, &caller, &id).await?;
    let mut v = Validator::new();
    let name = body.name.as_deref().map(|n| v.name("name", n));
    let publishable_permissions = body.publishable_permissions.as_deref().map(|list| {
        let set = v.permissions("publishable_permissions", list);
        if set.iter().any(Permission::is_latchkey) {
            v.error(
                "publishable_permissions",
                "publishable keys can never hold latchkey: permissions",
            );
        }
        set
    });
    if let Some(Some(ttl)) = body.max_key_ttl_seconds {
        v.check(
            (MIN_TTL_SECONDS..=MAX_TTL_SECONDS).contains(&ttl),
            "max_key_ttl_seconds",
            "must be 60 seconds to 10 years",
        );
    }
    v.finish()?;
    let patch = WorkspacePatch {
        name,
        require_pair: body.require_pair,
        publishable_permissions,
        max_key_ttl_seconds: body.max_key_ttl_seconds,
    };
    let (ws, changes) = state
        .store
        .update_workspace(&id, &patch, &caller.actor())
        .await?;
    state.changed(&changes);
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
    managed(&state, &caller, &id).await?;
    let page = page_request(q.limit, q.cursor.as_deref(), ids::USER)?;
    let page = state.store.list_members(&id, page).await?;
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
    changeable(&state, &caller, &id).await?;
    may_manage_member(&state, &caller, &id, &user_id).await?;
    if !roles::is_valid_name(&body.role) {
        return Err(ApiError::validation(
            "role",
            "no such role in this workspace",
        ));
    }
    let role = match state.store.get_role(&id, &body.role).await {
        Ok(r) => r,
        Err(StoreError::NotFound) => {
            return Err(ApiError::validation(
                "role",
                "no such role in this workspace",
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let current = current_role(&state, &id, &user_id).await?;
    let mut v = Validator::new();
    caller.issuer().may_assign_role(
        &mut v,
        &body.role,
        &role.permissions,
        current.as_deref(),
        &admin_role(&state, &id).await?,
    )?;
    v.finish()?;
    let (member, added, changes) = state
        .store
        .put_member(&id, &user_id, &body.role, &caller.actor())
        .await?;
    state.changed(&changes);
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, ApiJson(MemberView::from(&member))))
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
    changeable(&state, &caller, &id).await?;
    may_manage_member(&state, &caller, &id, &user_id).await?;
    let current = current_role(&state, &id, &user_id).await?;
    caller
        .issuer()
        .may_change_member(current.as_deref(), &admin_role(&state, &id).await?)?;
    let changes = state
        .store
        .remove_member(&id, &user_id, &caller.actor())
        .await?;
    state.changed(&changes);
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/workspaces/{id}/roles", tag = "workspaces", params(("id" = WorkspaceId, Path)),
    responses((status = 200, body = List<RoleView>), Authenticated, NotFound))]
pub async fn list_roles(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<List<RoleView>>, ApiError> {
    visible(&state, &caller, &id).await?;
    let roles = state.store.list_roles(&id).await?;
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
    visible(&state, &caller, &id).await?;
    if !roles::is_valid_name(&role) {
        return Err(ApiError::NotFound);
    }
    Ok(ApiJson(RoleView::from(
        &state.store.get_role(&id, &role).await?,
    )))
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
    changeable(&state, &caller, &id).await?;
    let mut v = Validator::new();
    v.check(
        roles::is_valid_name(&role),
        "role",
        "must be lowercase letters, digits, `_` or `-`",
    );
    let perms = v.permissions("permissions", &body.permissions);
    caller.issuer().may_set_role(
        &mut v,
        "permissions",
        &role,
        &body.permissions,
        &admin_role(&state, &id).await?,
    )?;
    v.finish()?;
    let (r, changes) = state
        .store
        .put_role(&id, &role, &perms, &caller.actor())
        .await?;
    state.changed(&changes);
    Ok(ApiJson(RoleView::from(&r)))
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
    changeable(&state, &caller, &id).await?;
    let mut v = Validator::new();
    match Permission::parse(&body.permission) {
        Ok(p) => caller.issuer().may_grant(&mut v, "permission", &p),
        Err(e) => v.error("permission", e.0),
    }
    let is_member =
        ids::is_id(ids::USER, &body.user_id) && state.store.is_member(&id, &body.user_id).await?;
    v.check(is_member, "user_id", "is not a member of this workspace");
    v.finish()?;
    let (grant, changes) = state
        .store
        .create_grant(&id, &body.user_id, &body.permission, &caller.actor())
        .await?;
    state.changed(&changes);
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
    managed(&state, &caller, &id).await?;
    let page = page_request(q.limit, q.cursor.as_deref(), ids::GRANT)?;
    if q.user_id
        .as_deref()
        .is_some_and(|u| !ids::is_id(ids::USER, u))
    {
        return Err(ApiError::validation("user_id", "is not a user id"));
    }
    let page = state
        .store
        .list_grants(&id, q.user_id.as_deref(), page)
        .await?;
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
    changeable(&state, &caller, &id).await?;
    if !ids::is_id(ids::GRANT, &grant_id) {
        return Err(ApiError::NotFound);
    }
    let changes = state
        .store
        .delete_grant(&id, &grant_id, &caller.actor())
        .await?;
    state.changed(&changes);
    Ok(StatusCode::NO_CONTENT)
}
