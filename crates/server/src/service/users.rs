//! Users: the Admin API's provisioning.
//!
//! Instance admins see and manage every user. A credential holding `latchkey:members:manage`
//! may create users (to add them to its workspace) and sees the members of its workspace. Only
//! an unbounded credential (no restriction, expiry or IP list) sets a password, and only an
//! unbounded instance admin credential gives or takes an instance role, `admin` or `verifier`
//! (`latchkey_core::delegation`). Everyone sees themselves and may rename themselves.
//! Deactivation is for instance admins only: a user spans workspaces.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::password;
use crate::routes::users::{CreateUserRequest, UpdateUserRequest, UserListParams};
use crate::service::{check_id_filter, page_request};
use crate::state::AppState;
use latchkey_core::permission::MEMBERS_MANAGE;
use latchkey_core::roles::InstanceRole;
use latchkey_core::{ids, KeyType, Secret, Validator};
use latchkey_store::{NewUser, Page, User, UserPatch};

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

/// A user the caller may see; every other one is a 404.
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

/// A new user, in no workspace yet.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    body: CreateUserRequest,
) -> Result<User, ApiError> {
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
    Ok(state
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
        .await?)
}

/// A user that single sign-on creates (`[dashboard.oidc] create_users`): an email the provider
/// has verified, no password, no instance role, in no workspace yet (an admin adds them). There
/// is no caller: `actor` names the provider, and the audit log records `user.created` like any
/// other. A `name` that is not a valid name is cut to one (the provider decides names, not the
/// person signing in, but its limits are not ours).
pub async fn create_signed_on(
    state: &AppState,
    email: &str,
    name: &str,
    actor: latchkey_store::Actor,
) -> Result<User, ApiError> {
    let mut v = Validator::new();
    let email = v.email("email", email);
    let cut = |s: &str| -> String {
        let kept: String = s.chars().filter(|c| !c.is_control()).take(100).collect();
        kept.trim().to_owned()
    };
    let mut name = cut(name);
    if name.is_empty() {
        name = cut(&email);
    }
    let name = v.name("name", &name);
    v.finish()?;
    Ok(state
        .store
        .create_user(
            &NewUser {
                id: ids::new_id(ids::USER),
                email,
                name,
                password_hash: None,
                instance_role: None,
            },
            &actor,
        )
        .await?)
}

/// Every user (optionally of one workspace) for an instance admin; the members of the
/// caller's workspace for a credential with `latchkey:members:manage`.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    q: &UserListParams,
) -> Result<Page<User>, ApiError> {
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
        q.workspace_id.clone()
    } else {
        caller.require(MEMBERS_MANAGE)?;
        Some(caller.target_workspace(q.workspace_id.as_deref())?)
    };
    Ok(state.store.list_users(workspace.as_deref(), page).await?)
}

pub async fn get(state: &AppState, caller: &Caller, id: &str) -> Result<User, ApiError> {
    visible_user(state, caller, id).await
}

/// Renames a user (themself, or by an instance admin) or gives or takes an instance role.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: &str,
    body: &UpdateUserRequest,
) -> Result<User, ApiError> {
    visible_user(state, caller, id).await?;
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
    let (user, changes) = state.store.update_user(id, &patch, &caller.actor()).await?;
    state.changed(&changes);
    Ok(user)
}

/// Deactivates a user (again: already inactive is no error): every key of theirs is revoked.
pub async fn deactivate(state: &AppState, caller: &Caller, id: &str) -> Result<(), ApiError> {
    visible_user(state, caller, id).await?;
    if !caller.is_instance_admin() {
        return Err(ApiError::insufficient_permissions());
    }
    caller.require_live()?;
    if id == caller.user_id() {
        return Err(ApiError::Conflict("You cannot deactivate yourself".into()));
    }
    if let Some((_, changes)) = state.store.deactivate_user(id, &caller.actor()).await? {
        state.changed(&changes);
    }
    Ok(())
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
