//! `/v1/users`: the Admin API's user provisioning.
//!
//! Instance admins see and manage every user. A credential holding `latchkey:members:manage`
//! may create users (to add them to its workspace) and sees the members of its workspace. Only
//! an unbounded credential (no restriction, expiry or IP list) sets a password, and only an
//! unbounded instance admin credential gives or takes an instance role, `admin` or `verifier`
//! (`latchkey_core::delegation`). Everyone sees themselves and may rename themselves.
//! Deactivation is for instance admins only: a user spans workspaces.

use crate::auth::Caller;
use crate::error::responses::{Authenticated, Conflict, JsonBody, NotFound, Unprocessable};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::password;
use crate::routes::nullable;
use crate::routes::schema::{Email, InstanceRoleName, Limit, Name, Password, UserId, WorkspaceId};
use crate::routes::views::{List, UserView};
use crate::service::{check_id_filter, page_request};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use latchkey_core::permission::MEMBERS_MANAGE;
use latchkey_core::roles::InstanceRole;
use latchkey_core::{ids, KeyType, Secret, Validator};
use latchkey_store::{NewUser, User, UserPatch};
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

/// The instance role a new user is to have: `instance_role`, or its older alias
/// `is_instance_admin`. Given both, they must agree (`true` with `admin`, `false` with
/// anything else), or it is a field error.
fn requested_role(
    v: &mut Validator,
    role: Option<Option<InstanceRole>>,
    is_instance_admin: Option<bool>,
) -> Option<InstanceRole> {
    match (role, is_instance_admin) {
        (Some(role), Some(admin)) => {
            if (role == Some(InstanceRole::Admin)) != admin {
                v.error(
                    "is_instance_admin",
                    "disagrees with instance_role (give instance_role alone)",
                );
            }
            role
        }
        (Some(role), None) => role,
        (None, admin) => admin.unwrap_or(false).then_some(InstanceRole::Admin),
    }
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
    let mut v = Validator::new();
    let instance_role = requested_role(&mut v, body.instance_role, body.is_instance_admin);
    let issuer = caller.issuer();
    // A password is a way to a dashboard session, which has no restriction, expiry or IP list;
    // an instance role reaches every workspace. Neither may come from a credential bounded by
    // those.
    if (instance_role.is_some() && !issuer.may_set_instance_role())
        || (body.password.is_some() && !issuer.may_set_password())
    {
        return Err(ApiError::insufficient_permissions());
    }
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
                instance_role,
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

#[utoipa::path(patch, path = "/v1/users/{id}", tag = "users", params(("id" = UserId, Path)),
    request_body = UpdateUserRequest,
    responses((status = 200, body = UserView), Authenticated, JsonBody, NotFound, Conflict))]
pub async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateUserRequest>,
) -> Result<ApiJson<UserView>, ApiError> {
    visible_user(&state, &caller, &id).await?;
    // A publishable key ships in public code and manages nothing, its owner's name included.
    let publishable = caller.resolved.key.key_type == KeyType::Publishable;
    let may_rename = !publishable && (id == caller.user_id() || caller.is_instance_admin());
    if (body.name.is_some() && !may_rename)
        || (body.instance_role.is_some() && !caller.issuer().may_set_instance_role())
    {
        return Err(ApiError::insufficient_permissions());
    }
    caller.require_live()?;
    let mut v = Validator::new();
    let name = body.name.as_deref().map(|n| v.name("name", n));
    v.finish()?;
    let patch = UserPatch {
        name,
        instance_role: body.instance_role,
    };
    let (user, changes) = state
        .store
        .update_user(&id, &patch, &caller.actor())
        .await?;
    state.changed(&changes);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_old_is_instance_admin_is_an_alias_that_must_agree() {
        use InstanceRole::{Admin, Verifier};
        for (role, alias, wanted, agrees) in [
            (None, None, None, true),
            (None, Some(true), Some(Admin), true),
            (None, Some(false), None, true),
            (Some(Some(Verifier)), None, Some(Verifier), true),
            (Some(None), None, None, true),
            (Some(Some(Admin)), Some(true), Some(Admin), true),
            (Some(Some(Verifier)), Some(false), Some(Verifier), true),
            (Some(None), Some(false), None, true),
            (Some(Some(Admin)), Some(false), Some(Admin), false),
            (Some(Some(Verifier)), Some(true), Some(Verifier), false),
            (Some(None), Some(true), None, false),
        ] {
            let mut v = Validator::new();
            assert_eq!(
                requested_role(&mut v, role, alias),
                wanted,
                "{role:?} {alias:?}"
            );
            match v.finish() {
                Ok(()) => assert!(agrees, "{role:?} {alias:?}"),
                Err(e) => {
                    assert!(!agrees, "{role:?} {alias:?}");
                    assert_eq!(e[0].field, "is_instance_admin");
                }
            }
        }
    }
}
