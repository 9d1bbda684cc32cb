//! `/v1/users`: the Admin API's user provisioning. Who may see, create and change users is
//! [`crate::service::users`]'s decision.

use crate::auth::Caller;
use crate::error::responses::{Authenticated, Conflict, JsonBody, NotFound, Unprocessable};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::routes::nullable;
use crate::routes::schema::{Email, InstanceRoleName, Limit, Name, Password, UserId, WorkspaceId};
use crate::routes::views::{List, UserView};
use crate::service;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use latchkey_core::roles::InstanceRole;
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
    /// `admin`, `verifier` or `null` (none, the default). Only an instance admin gives one,
    /// with a credential that has no restriction, expiry or IP list.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<InstanceRoleName>)]
    pub instance_role: Option<Option<InstanceRole>>,
    /// The older spelling of `instance_role: "admin"`. If both are given they must agree.
    #[schema(deprecated)]
    pub is_instance_admin: Option<bool>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    /// The user themself or an instance admin.
    #[schema(value_type = Option<Name>)]
    pub name: Option<String>,
    /// `admin`, `verifier`, or `null` to take the instance role away. Only an instance admin,
    /// with a credential that has no restriction, expiry or IP list; the last active instance
    /// admin keeps the role (409).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<InstanceRoleName>)]
    pub instance_role: Option<Option<InstanceRole>>,
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

#[utoipa::path(post, path = "/v1/users", tag = "users", request_body = CreateUserRequest,
    responses((status = 201, body = UserView), Authenticated, JsonBody, Conflict))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, ApiJson<UserView>), ApiError> {
    let user = service::users::create(&state, &caller, body).await?;
    Ok((StatusCode::CREATED, ApiJson(UserView::from(&user))))
}

#[utoipa::path(get, path = "/v1/users", tag = "users", params(UserListParams),
    responses((status = 200, body = List<UserView>), Authenticated, NotFound, Unprocessable))]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<UserListParams>,
) -> Result<ApiJson<List<UserView>>, ApiError> {
    let page = service::users::list(&state, &caller, &q).await?;
    Ok(ApiJson(List::from_page(page)))
}

#[utoipa::path(get, path = "/v1/users/{id}", tag = "users", params(("id" = UserId, Path)),
    responses((status = 200, body = UserView), Authenticated, NotFound))]
pub async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<UserView>, ApiError> {
    let user = service::users::get(&state, &caller, &id).await?;
    Ok(ApiJson(UserView::from(&user)))
}

#[utoipa::path(patch, path = "/v1/users/{id}", tag = "users", params(("id" = UserId, Path)),
    request_body = UpdateUserRequest,
    responses((status = 200, body = UserView), Authenticated, JsonBody, NotFound, Conflict))]
pub async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateUserRequest>,
) -> Result<ApiJson<UserView>, ApiError> {
    let user = service::users::update(&state, &caller, &id, &body).await?;
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
    service::users::deactivate(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
