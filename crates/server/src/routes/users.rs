//! `/v1/users`: the Admin API's user provisioning.
//!
//! Instance admins see and manage every user. A credential holding `latchkey:members:manage`
//! may create users (to add them to its workspace) and sees the members of its workspace. Only
//! an unbounded credential (no restriction, expiry or IP list) sets a password or makes an
//! instance admin (`latchkey_core::delegation`).
//! Everyone sees themselves. Deactivation is for instance admins only: a user spans workspaces.

use crate::auth::Caller;
use crate::error::responses::{Authenticated, Conflict, JsonBody, NotFound, Unprocessable};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::password;
use crate::routes::schema::{Email, Limit, Name, Password, UserId, WorkspaceId};
use crate::routes::views::{List, UserView};
use crate::routes::{check_id_filter, page_request};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use latchkey_core::permission::MEMBERS_MANAGE;
use latchkey_core::roles::InstanceRole;
use latchkey_core::{ids, Secret, Validator};
use latchkey_store::{NewUser, User};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    #[schema(value_type = Email)]
    pub email: String,
    #[schema(value_type = Name)]
    pub name: String,
    /// For the dashboard; 12 to 1024 characters. Service accounts need none.
    #[schema(value_type = Option<Password>)]
    pub password: Option<String>,
    /// Only an instance admin may create another.
    pub is_instance_admin: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListParams {
    /// Only the members of this workspace.
    #[param(value_type = Option<WorkspaceId>)]
    pub workspace_id: Option<String>,
    #[param(value_type = Option<Limit>)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(value_type = Option<UserId>)]
    pub cursor: Option<String>,
}

async fn visible_user(state: &AppState, caller: &Caller, id: &str) -> Result<User, ApiError> {
    if !ids::is_id(ids::USER, id) {
        return Err(ApiError::NotFound);
    }
    let visible = id == caller.user_id()
        || caller.is_instance_admin()
        || (caller.allows(MEMBERS_MANAGE)
            && state.store.is_member(caller.workspace_id(), id).await?);
    if !visible {
        return Err(ApiError::NotFound);
    }
    Ok(state.store.get_user(id).await?)
}

#[utoipa::path(post, path = "/v1/users", tag = "users", request_body = CreateUserRequest,
    responses((status = 201, body = UserView), Authenticated, JsonBody, Conflict))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, ApiJson<UserView>), ApiError> {
    if !caller.is_instance_admin() {
        caller.require(MEMBERS_MANAGE)?;
    }
    caller.require_live()?;
    let make_admin = body.is_instance_admin.unwrap_or(false);
    let issuer = caller.issuer();
    // A password is a way to a dashboard session, which has no restriction, expiry or IP list;
    // an instance admin holds everything. Neither may come from a credential bounded by those.
    if (make_admin && !issuer.may_set_instance_role())
        || (body.password.is_some() && !issuer.may_set_password())
    {
        return Err(ApiError::insufficient_permissions());
    }
    let mut v = Validator::new();
    let email = v.email("email", &body.email);
    let name = v.name("name", &body.name);
    if let Some(p) = &body.password {
        v.password("password", p);
    }
    v.finish()?;
    let password_hash = match body.password {
        Some(p) => Some(password::hash(Secret::new(p)).await?),
        None => None,
    };
    let user = state
        .store
        .create_user(
            &NewUser {
                id: ids::new_id(ids::USER),
                email,
                name,
                password_hash,
                instance_role: make_admin.then_some(InstanceRole::Admin),
            },
            &caller.actor(),
        )
        .await?;
    Ok((StatusCode::CREATED, ApiJson(UserView::from(&user))))
}

#[utoipa::path(get, path = "/v1/users", tag = "users", params(UserListParams),
    responses((status = 200, body = List<UserView>), Authenticated, NotFound, Unprocessable))]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<UserListParams>,
) -> Result<ApiJson<List<UserView>>, ApiError> {
    let page = page_request(q.limit, q.cursor.as_deref(), ids::USER)?;
    let mut v = Validator::new();
    check_id_filter(
        &mut v,
        "workspace_id",
        q.workspace_id.as_deref(),
        &[ids::WORKSPACE],
    );
    v.finish()?;
    let workspace = if caller.is_instance_admin() {
        q.workspace_id
    } else {
        caller.require(MEMBERS_MANAGE)?;
        Some(caller.target_workspace(q.workspace_id.as_deref())?)
    };
    let page = state.store.list_users(workspace.as_deref(), page).await?;
    Ok(ApiJson(List::from_page(page)))
}

#[utoipa::path(get, path = "/v1/users/{id}", tag = "users", params(("id" = UserId, Path)),
    responses((status = 200, body = UserView), Authenticated, NotFound))]
pub async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<UserView>, ApiError> {
    let user = visible_user(&state, &caller, &id).await?;
    Ok(ApiJson(UserView::from(&user)))
}

#[utoipa::path(delete, path = "/v1/users/{id}", tag = "users", params(("id" = UserId, Path)),
    responses((status = 204, description = "Deactivated; every key of the user is revoked"),
        Authenticated, NotFound, Conflict))]
pub async fn deactivate_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    visible_user(&state, &caller, &id).await?;
    if !caller.is_instance_admin() {
        return Err(ApiError::insufficient_permissions());
    }
    caller.require_live()?;
    if id == caller.user_id() {
        return Err(ApiError::Conflict("You cannot deactivate yourself".into()));
    }
    if let Some((_, changes)) = state.store.deactivate_user(&id, &caller.actor()).await? {
        state.changed(&changes);
    }
    Ok(StatusCode::NO_CONTENT)
}
