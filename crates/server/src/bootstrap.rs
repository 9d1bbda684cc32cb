//! First start: the instance admin, the `Default` workspace and the admin's key.

use crate::password;
use latchkey_core::roles::InstanceRole;
use latchkey_core::{base62, ids, ApiKey, Environment, KeyHasher, KeyType, Secret};
use latchkey_store::{Bootstrap, NewApiKey, NewUser, SqlStore, StoreError};
use serde::Serialize;

/// Printed once, then gone: only hashes are stored.
#[derive(Serialize)]
pub struct BootstrapOutput {
    pub admin_user_id: String,
    pub admin_email: String,
    pub admin_password: String,
    pub admin_key: String,
    pub workspace_id: String,
}

impl std::fmt::Debug for BootstrapOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapOutput")
            .field("admin_user_id", &self.admin_user_id)
            .finish_non_exhaustive()
    }
}

/// Initialises an empty database. `Ok(None)` when it already was (by us earlier, or by another node).
pub async fn bootstrap(
    store: &SqlStore,
    hasher: &KeyHasher,
    admin_email: &str,
) -> anyhow::Result<Option<BootstrapOutput>> {
    if store.is_initialised().await? {
        return Ok(None);
    }
    let mut password = String::new();
    base62::push_random(24, &mut password);
    let password_hash = password::hash(Secret::new(password.clone()))
        .await
        .map_err(|_| anyhow::anyhow!("hashing the admin password failed"))?;
    let key = ApiKey::generate(KeyType::Secret, Environment::Live);
    let admin = NewUser {
        id: ids::new_id(ids::USER),
        email: admin_email.trim().to_lowercase(),
        name: "Instance admin".into(),
        password_hash: Some(password_hash),
        instance_role: Some(InstanceRole::Admin),
    };
    let workspace_id = ids::new_id(ids::WORKSPACE);
    let b = Bootstrap {
        key: NewApiKey::for_key(
            &key,
            hasher,
            "Bootstrap admin key".into(),
            workspace_id.clone(),
            admin.id.clone(),
        ),
        admin,
        workspace_id: workspace_id.clone(),
        workspace_name: "Default".into(),
    };
    match store.bootstrap(&b).await {
        Ok(()) => Ok(Some(BootstrapOutput {
            admin_user_id: b.admin.id,
            admin_email: b.admin.email,
            admin_password: password,
            admin_key: key.secret().expose().to_owned(),
            workspace_id,
        })),
        Err(StoreError::Conflict(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
