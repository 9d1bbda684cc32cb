//! API keys: create (the secret shown once), list, get, edit, roll, revoke.
//!
//! Access: with `latchkey:keys:manage_own` a credential reads and manages its owner's keys; with
//! `latchkey:keys:manage_all` every key of its workspace (the keys of a user with an instance
//! role, which act beyond the workspace, only for instance admins). Anything else is a 404. A
//! key can always read and revoke itself. New keys never get more than the credential issuing
//! them (`latchkey_core::issuance`). Test credentials see and touch only test keys.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::now;
use crate::routes::keys::{CreateKeyRequest, KeyListParams, RollKeyRequest, UpdateKeyRequest};
use crate::service::{check_id_filter, page_request, parse_time};
use crate::state::AppState;
use latchkey_core::credits::Credits;
use latchkey_core::ipnet::IpNet;
use latchkey_core::issuance::Issuer;
use latchkey_core::permission::{KEYS_MANAGE_ALL, KEYS_MANAGE_OWN};
use latchkey_core::ratelimit::NamedLimit;
use latchkey_core::{ids, ApiKey, Environment, KeyType, PermissionSet, Validator};
use latchkey_store::{ApiKeyRecord, KeyFilter, KeyPatch, KeyStatus, NewApiKey, Page};
use serde_json::Value;

/// The longest grace period of a roll: a week.
pub const MAX_GRACE_SECONDS: u32 = 604_800;

/// A key just created or rolled: the key itself (shown this once) and its record.
pub struct IssuedKey {
    pub key: ApiKey,
    pub record: ApiKeyRecord,
}

/// May the caller read keys at all? Publishable keys and keys without key permissions may not
/// (a key may still read and revoke itself).
pub fn may_read_keys(caller: &Caller) -> bool {
    caller.allows(KEYS_MANAGE_OWN) || caller.allows(KEYS_MANAGE_ALL)
}

/// Loads a key the caller may see; every other key is a 404. Visible: the calling key itself;
/// with `manage_own`, the caller's own keys; with `manage_all`, the workspace's keys except
/// those of an instance admin or verifier (unless the caller is an instance admin). Test
/// credentials see only test keys.
async fn visible_key(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<ApiKeyRecord, ApiError> {
    if !ids::is_id(ids::KEY, id) {
        return Err(ApiError::NotFound);
    }
    let k = state.store.get_key(id).await?;
    if caller.is_self(&k.id) {
        return Ok(k);
    }
    let in_scope = caller.sees_workspace(&k.workspace_id)
        && !(caller.environment() == Environment::Test && k.environment == Environment::Live);
    let by_role = if k.owner_id == caller.user_id() {
        may_read_keys(caller)
    } else {
        caller.allows(KEYS_MANAGE_ALL)
            && (caller.is_instance_admin() || !owned_by_instance_role(state, &k).await?)
    };
    if in_scope && by_role {
        Ok(k)
    } else {
        Err(ApiError::NotFound)
    }
}

/// An instance admin's or verifier's key acts in every workspace: a workspace admin who could
/// read, roll or mint such keys would hold more than its workspace.
async fn owned_by_instance_role(state: &AppState, k: &ApiKeyRecord) -> Result<bool, ApiError> {
    Ok(state
        .store
        .get_user(&k.owner_id)
        .await?
        .instance_role()
        .is_some())
}

fn require_manage(
    caller: &Caller,
    owner_id: &str,
    environment: Environment,
) -> Result<(), ApiError> {
    let ok = caller.allows(KEYS_MANAGE_ALL)
        || (owner_id == caller.user_id() && caller.allows(KEYS_MANAGE_OWN));
    if !ok {
        return Err(ApiError::insufficient_permissions());
    }
    if caller.environment() == Environment::Test && environment == Environment::Live {
        return Err(ApiError::Forbidden("environment_mismatch"));
    }
    Ok(())
}

/// May the caller change `key` ([`update`], [`roll`])? For pages deciding whether to offer a
/// form; the actions check it themselves.
pub fn may_manage(caller: &Caller, key: &ApiKeyRecord) -> bool {
    require_manage(caller, &key.owner_id, key.environment).is_ok()
}

/// Expiry rules: in the future, and within the workspace's `max_key_ttl_seconds` if set
/// (which also becomes the default).
pub fn expiry(
    v: &mut Validator,
    field: &str,
    requested: Option<i64>,
    max_ttl: Option<i64>,
) -> Option<i64> {
    let t = now();
    match (requested, max_ttl) {
        (Some(e), _) if e <= t => {
            v.error(field, "must be in the future");
            None
        }
        (Some(e), Some(max)) if e > t.saturating_add(max) => {
            v.error(
                field,
                format!("must be within this workspace's maximum key lifetime ({max} s)"),
            );
            None
        }
        (Some(e), _) => Some(e),
        (None, Some(max)) => Some(t.saturating_add(max)),
        (None, None) => None,
    }
}

/// A new key's fields as `create` checks them, each bounded by what `issuer` holds; errors go
/// into `v`. No IO: the fuzz target `json_bodies` calls it as is.
pub struct NewKeyFields {
    pub name: String,
    pub permissions: Option<PermissionSet>,
    pub allowed_origins: Vec<String>,
    pub allowed_ips: Vec<IpNet>,
    pub metadata: Value,
    pub expires_at: Option<i64>,
    pub ratelimits: Vec<NamedLimit>,
    pub credits: Option<Credits>,
}

pub fn new_key_fields(
    v: &mut Validator,
    issuer: &Issuer<'_>,
    owner_id: &str,
    key_type: KeyType,
    body: &CreateKeyRequest,
    max_ttl: Option<i64>,
) -> NewKeyFields {
    let name = v.name("name", &body.name);
    let permissions = issuer.restriction(v, owner_id, body.permissions.as_deref());
    let allowed_origins = match (&body.allowed_origins, key_type) {
        (Some(o), KeyType::Publishable) => v.origins("allowed_origins", o),
        (Some(o), KeyType::Secret) if !o.is_empty() => {
            v.error(
                "allowed_origins",
                "only publishable keys take allowed_origins",
            );
            vec![]
        }
        _ => vec![],
    };
    let requested_ips = body
        .allowed_ips
        .as_deref()
        .map(|ips| v.ips("allowed_ips", ips));
    let allowed_ips = issuer.ips(v, "allowed_ips", requested_ips);
    let metadata = body
        .metadata
        .clone()
        .unwrap_or_else(|| Value::Object(Default::default()));
    v.metadata("metadata", &metadata);
    let requested_expiry = body
        .expires_at
        .as_deref()
        .and_then(|s| parse_time(v, "expires_at", s));
    let expires_at = expiry(v, "expires_at", requested_expiry, max_ttl);
    let expires_at = issuer.expiry(v, "expires_at", expires_at);
    let ratelimits = body.ratelimits.clone().unwrap_or_default();
    v.ratelimits("ratelimits", &ratelimits);
    if let Some(c) = &body.credits {
        v.credits("credits", c);
    }
    NewKeyFields {
        credits: body.credits.clone(),
        ratelimits,
        name,
        permissions,
        allowed_origins,
        allowed_ips,
        metadata,
        expires_at,
    }
}

const OWNER_MUST_BE_MEMBER: &str = "must be an active member of the workspace";

/// May `owner_id` own a key in `workspace_id` that the caller creates? One answer for every
/// kind of unsuitable owner, so ids cannot be probed across workspaces.
async fn suitable_owner(
    state: &AppState,
    caller: &Caller,
    workspace_id: &str,
    owner_id: &str,
) -> Result<bool, ApiError> {
    Ok(ids::is_id(ids::USER, owner_id)
        && state
            .store
            .principal(workspace_id, owner_id)
            .await?
            .is_some_and(|p| {
                p.active
                    && p.role.is_some()
                    && (p.instance_role().is_none() || caller.is_instance_admin())
            }))
}

pub async fn create(
    state: &AppState,
    caller: &Caller,
    body: &CreateKeyRequest,
) -> Result<IssuedKey, ApiError> {
    let workspace_id = caller.target_workspace(body.workspace_id.as_deref())?;
    let owner_id = body
        .owner_id
        .clone()
        .unwrap_or_else(|| caller.user_id().to_owned());
    let key_type = body.r#type.unwrap_or(KeyType::Secret);
    let environment = body.environment.unwrap_or(caller.environment());
    require_manage(caller, &owner_id, environment)?;

    let mut v = Validator::new();
    // Keys work only while their owner is a member of their workspace (instance admins
    // included), so a key for anyone else, or for the caller in another workspace, needs a
    // member there.
    if owner_id != caller.user_id() || workspace_id != caller.workspace_id() {
        let suitable = suitable_owner(state, caller, &workspace_id, &owner_id).await?;
        v.check(suitable, "owner_id", OWNER_MUST_BE_MEMBER);
    }
    let ws = state.store.get_workspace(&workspace_id).await?;
    let fields = new_key_fields(
        &mut v,
        &caller.issuer(),
        &owner_id,
        key_type,
        body,
        ws.max_key_ttl_seconds,
    );
    v.finish()?;

    let key = ApiKey::generate(key_type, environment);
    let NewKeyFields {
        name,
        permissions,
        allowed_origins,
        allowed_ips,
        metadata,
        expires_at,
        ratelimits,
        credits,
    } = fields;
    let new = NewApiKey {
        ratelimits,
        credits,
        permissions,
        allowed_origins,
        allowed_ips,
        metadata,
        expires_at,
        created_by: Some(caller.resolved.key.id.clone()),
        ..NewApiKey::for_key(&key, &state.engine.hasher, name, workspace_id, owner_id)
    };
    let (record, changes) = state.store.create_key(&new, &caller.actor()).await?;
    state.changed(&changes);
    Ok(IssuedKey { key, record })
}

/// The keys the caller may see, filtered. Other people's keys (without `manage_all`) and live
/// keys (for a test credential) are invisible: asking for them gives an empty list, not an
/// error.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    q: &KeyListParams,
) -> Result<Page<ApiKeyRecord>, ApiError> {
    let page = page_request(q.limit, q.cursor.as_deref(), ids::KEY)?;
    let mut v = Validator::new();
    check_id_filter(
        &mut v,
        "workspace_id",
        q.workspace_id.as_deref(),
        &[ids::WORKSPACE],
    );
    check_id_filter(&mut v, "owner_id", q.owner_id.as_deref(), &[ids::USER]);
    let status = q.status.as_deref().and_then(|s| {
        let status = KeyStatus::parse(s);
        v.check(
            status.is_some(),
            "status",
            "must be active, expired, revoked or disabled",
        );
        status
    });
    let key_type = q.r#type.as_deref().and_then(|t| {
        let key_type = t.parse::<KeyType>().ok();
        v.check(key_type.is_some(), "type", "must be secret or publishable");
        key_type
    });
    if let Some(name) = &q.name {
        v.check(
            name.chars().count() <= 100,
            "name",
            "must be at most 100 characters",
        );
    }
    v.finish()?;
    if !may_read_keys(caller) {
        return Err(ApiError::insufficient_permissions());
    }
    let workspace_id = caller.target_workspace(q.workspace_id.as_deref())?;
    let empty = || {
        Ok(Page {
            data: vec![],
            next_cursor: None,
        })
    };
    let owner_id = if caller.allows(KEYS_MANAGE_ALL) {
        q.owner_id.clone()
    } else if q.owner_id.as_deref().is_some_and(|o| o != caller.user_id()) {
        return empty();
    } else {
        Some(caller.user_id().to_owned())
    };
    let environment = match (caller.environment(), q.environment) {
        (Environment::Test, Some(Environment::Live)) => return empty(),
        (Environment::Test, _) => Some(Environment::Test),
        (Environment::Live, e) => e,
    };
    let filter = KeyFilter {
        workspace_id: Some(workspace_id),
        owner_id,
        environment,
        status,
        key_type,
        name_contains: q.name.clone(),
        instance_role_keys_hidden_from: (!caller.is_instance_admin())
            .then(|| caller.user_id().to_owned()),
    };
    Ok(state.store.list_keys(&filter, page).await?)
}

/// Who may own keys in the caller's workspace, as (user id, email), for a caller who sees
/// everyone's keys (`manage_all`): the dashboard's owner column and filter. Anyone else gets
/// nothing, as they see only their own keys.
pub async fn owners(state: &AppState, caller: &Caller) -> Result<Vec<(String, String)>, ApiError> {
    if !caller.allows(KEYS_MANAGE_ALL) {
        return Ok(vec![]);
    }
    let mut out: Vec<(String, String)> =
        super::workspaces::all_members(state, caller.workspace_id())
            .await?
            .into_iter()
            .map(|m| (m.user_id, m.email))
            .collect();
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

/// Whose a visible key is, as its page says it: "you", the owner's email for a caller who sees
/// everyone's keys, or the owner's id when the owner is no member of the workspace any more.
pub async fn owner_email(
    state: &AppState,
    caller: &Caller,
    key: &ApiKeyRecord,
) -> Result<String, ApiError> {
    if key.owner_id == caller.user_id() {
        return Ok("you".into());
    }
    if !caller.allows(KEYS_MANAGE_ALL) {
        return Ok(key.owner_id.clone());
    }
    Ok(state
        .store
        .member(&key.workspace_id, &key.owner_id)
        .await?
        .map_or_else(|| key.owner_id.clone(), |m| m.email))
}

pub async fn get(state: &AppState, caller: &Caller, id: &str) -> Result<ApiKeyRecord, ApiError> {
    visible_key(state, caller, id).await
}

pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: &str,
    body: &UpdateKeyRequest,
) -> Result<ApiKeyRecord, ApiError> {
    let k = visible_key(state, caller, id).await?;
    require_manage(caller, &k.owner_id, k.environment)?;
    let issuer = caller.issuer();
    let mut v = Validator::new();
    let mut patch = KeyPatch {
        name: body.name.as_deref().map(|n| v.name("name", n)),
        enabled: body.enabled,
        ..KeyPatch::default()
    };
    if let Some(p) = &body.permissions {
        patch.permissions = Some(issuer.restriction(&mut v, &k.owner_id, p.as_deref()));
    }
    if let Some(e) = &body.expires_at {
        let ws = state.store.get_workspace(&k.workspace_id).await?;
        let requested = match e {
            Some(s) => match parse_time(&mut v, "expires_at", s) {
                Some(t) => expiry(&mut v, "expires_at", Some(t), ws.max_key_ttl_seconds),
                None => None,
            },
            None => {
                if ws.max_key_ttl_seconds.is_some() {
                    v.error("expires_at", "this workspace requires keys to expire");
                } else if !issuer.may_clear_expiry() {
                    v.error(
                        "expires_at",
                        "must not be later than the expiry of the credential making this request",
                    );
                }
                None
            }
        };
        patch.expires_at = Some(issuer.expiry(&mut v, "expires_at", requested));
    }
    if let Some(o) = &body.allowed_origins {
        if k.key_type == KeyType::Secret && !o.is_empty() {
            v.error(
                "allowed_origins",
                "only publishable keys take allowed_origins",
            );
        }
        patch.allowed_origins = Some(v.origins("allowed_origins", o));
    }
    if let Some(ips) = &body.allowed_ips {
        let requested = v.ips("allowed_ips", ips);
        patch.allowed_ips = Some(issuer.ips(&mut v, "allowed_ips", Some(requested)));
    }
    if let Some(m) = &body.metadata {
        v.metadata("metadata", m);
        patch.metadata = Some(m.clone());
    }
    if let Some(l) = &body.ratelimits {
        v.ratelimits("ratelimits", l);
        patch.ratelimits = Some(l.clone());
    }
    if let Some(c) = &body.credits {
        if let Some(c) = c {
            v.credits("credits", c);
        }
        patch.credits = Some(c.clone());
    }
    v.finish()?;
    let (rec, changes) = state.store.update_key(id, &patch, &caller.actor()).await?;
    state.changed(&changes);
    Ok(rec)
}

/// Replaces a key with a new one (same name, owner, restrictions), the old one working on for
/// the grace period.
pub async fn roll(
    state: &AppState,
    caller: &Caller,
    id: &str,
    body: &RollKeyRequest,
) -> Result<IssuedKey, ApiError> {
    let old = visible_key(state, caller, id).await?;
    require_manage(caller, &old.owner_id, old.environment)?;
    let grace = body.grace_seconds.unwrap_or(0);
    if grace > MAX_GRACE_SECONDS {
        return Err(ApiError::validation("grace_seconds", "must be 0 to 604800"));
    }
    let t = now();
    // The grace never extends the old key past the expiry it already had.
    let old_expires_at = old
        .expires_at
        .map_or(t + i64::from(grace), |e| e.min(t + i64::from(grace)));
    // The successor is a new key issued by the caller: it gets no more than the caller has.
    let issuer = caller.issuer();
    // The presenting credential's expiry (a token's, a pair's), not merely its key's.
    let expires_at = issuer.carry_expiry(old.expires_at);
    let key = ApiKey::generate(old.key_type, old.environment);
    let fresh = NewApiKey::for_key(
        &key,
        &state.engine.hasher,
        old.name.clone(),
        old.workspace_id.clone(),
        old.owner_id.clone(),
    );
    // Every field spelled out (no `..fresh`): a restriction added to keys later must be carried
    // over here, and the compiler will say so, rather than silently take its default.
    let new = NewApiKey {
        id: fresh.id,
        hash: fresh.hash,
        redacted: fresh.redacted,
        name: fresh.name,
        key_type: fresh.key_type,
        environment: fresh.environment,
        workspace_id: fresh.workspace_id,
        owner_id: fresh.owner_id,
        permissions: issuer.carry_restriction(&old.owner_id, old.permissions.as_ref()),
        allowed_origins: old.allowed_origins.clone(),
        allowed_ips: issuer.carry_ips(&old.allowed_ips),
        metadata: old.metadata.clone(),
        ratelimits: old.ratelimits.clone(),
        // The balance moves to the successor as it stands when the roll is read: a roll is
        // not a way to get credits back.
        credits: old.credits.clone(),
        expires_at,
        created_by: Some(caller.resolved.key.id.clone()),
    };
    let (record, changes) = state
        .store
        .roll_key(id, &new, old_expires_at, &caller.actor())
        .await?;
    state.changed(&changes);
    Ok(IssuedKey { key, record })
}

/// Revokes a key (again: already revoked is no error).
pub async fn revoke(state: &AppState, caller: &Caller, id: &str) -> Result<(), ApiError> {
    let k = visible_key(state, caller, id).await?;
    // A key may always revoke itself: whoever holds a leaked key can kill it.
    if !caller.is_self(&k.id) {
        require_manage(caller, &k.owner_id, k.environment)?;
    }
    if let Some(changes) = state.store.revoke_key(id, &caller.actor()).await? {
        state.changed(&changes);
    }
    Ok(())
}

/// The most keys one import call takes.
pub const MAX_IMPORT: usize = 1000;

/// What an import did, by position in the request: the keys stored (id) and those refused.
#[derive(Debug, Default)]
pub struct ImportOutcome {
    pub imported: Vec<(usize, String)>,
    pub failed: Vec<(usize, String)>,
}

/// `POST /v1/keys/import` (SPEC §12.3): keys issued elsewhere, each checked on its own by the
/// rules of [`create`] (owner, permissions, expiry, metadata), the good ones stored in one
/// transaction. Needs `latchkey:keys:manage_all`: an import names each key's owner.
pub async fn import(
    state: &AppState,
    caller: &Caller,
    items: &[Value],
) -> Result<ImportOutcome, ApiError> {
    if !caller.allows(KEYS_MANAGE_ALL) {
        return Err(ApiError::insufficient_permissions());
    }
    if items.is_empty() || items.len() > MAX_IMPORT {
        return Err(ApiError::validation(
            "keys",
            format!("must hold 1 to {MAX_IMPORT} keys"),
        ));
    }
    let mut out = ImportOutcome::default();
    let mut ready: Vec<(usize, NewApiKey)> = Vec::with_capacity(items.len());
    let mut first_with_hash = std::collections::HashMap::new();
    let mut context = ImportContext::default();
    for (index, raw) in items.iter().enumerate() {
        match imported_key(state, caller, raw, &mut context).await? {
            Err(message) => out.failed.push((index, message)),
            Ok(new) => match first_with_hash.get(&new.hash) {
                Some(first) => out
                    .failed
                    .push((index, format!("the same key as item {first}"))),
                None => {
                    first_with_hash.insert(new.hash.clone(), index);
                    ready.push((index, new));
                }
            },
        }
    }
    if !ready.is_empty() {
        let keys: Vec<NewApiKey> = ready.iter().map(|(_, k)| k.clone()).collect();
        let (stored, changes) = state.store.import_keys(&keys, &caller.actor()).await?;
        state.changed(&changes);
        for ((index, k), stored) in ready.into_iter().zip(stored) {
            if stored {
                out.imported.push((index, k.id));
            } else {
                out.failed
                    .push((index, "a key with the same secret is stored already".into()));
            }
        }
    }
    out.failed.sort_unstable_by_key(|(index, _)| *index);
    Ok(out)
}

/// What one import call reads once for all its keys: workspaces and owners' suitability.
#[derive(Default)]
struct ImportContext {
    max_ttl: std::collections::HashMap<String, Option<i64>>,
    owners: std::collections::HashMap<(String, String), bool>,
}

/// One key of an import as it would be stored, or why it cannot be (in words for the
/// person running the import). `Err` of the outer result is a failure of the service itself.
async fn imported_key(
    state: &AppState,
    caller: &Caller,
    raw: &Value,
    context: &mut ImportContext,
) -> Result<Result<NewApiKey, String>, ApiError> {
    use crate::routes::keys::ImportKeyItem;
    use latchkey_core::imported::{check_plaintext, parse_sha256, Plaintext};

    let item: ImportKeyItem = match serde_json::from_value(raw.clone()) {
        Ok(item) => item,
        Err(e) => return Ok(Err(format!("not a key to import: {e}"))),
    };
    let Ok(workspace_id) = caller.target_workspace(item.workspace_id.as_deref()) else {
        return Ok(Err("workspace_id: no such workspace".into()));
    };
    // The stored hash and display form, and what a key in our own format says about itself.
    let (hash, redacted, own) = match (item.key.as_deref(), item.sha256.as_deref()) {
        (Some(key), None) => match check_plaintext(key) {
            Err(refusal) => return Ok(Err(format!("key: {refusal}"))),
            Ok(Plaintext::Native) => {
                let native = ApiKey::parse(key).expect("checked");
                let own = (native.key_type(), native.environment());
                (state.engine.hasher.hash(key), native.redacted(), Some(own))
            }
            Ok(Plaintext::Foreign) => (
                state.engine.hasher.hash_foreign(key),
                foreign_redacted(key),
                None,
            ),
        },
        (None, Some(digest)) => match parse_sha256(digest) {
            Some(d) => (
                state.engine.hasher.hash_imported(&d),
                "(imported by SHA-256)".to_owned(),
                None,
            ),
            None => {
                return Ok(Err(
                    "sha256: must be 64 hex digits or 32 bytes in base64".into()
                ))
            }
        },
        _ => return Ok(Err("give either key or sha256".into())),
    };
    let key_type = item.r#type.or(own.map(|o| o.0)).unwrap_or(KeyType::Secret);
    let environment = item
        .environment
        .or(own.map(|o| o.1))
        .unwrap_or(caller.environment());
    if own.is_some_and(|o| o != (key_type, environment)) {
        return Ok(Err(
            "type and environment: the key's own prefix says otherwise".into(),
        ));
    }
    if caller.environment() == Environment::Test && environment == Environment::Live {
        return Ok(Err(
            "environment: a test credential imports test keys only".into()
        ));
    }
    let owner = (workspace_id.clone(), item.owner_id.clone());
    let suitable = match context.owners.get(&owner) {
        Some(s) => *s,
        None => {
            let s = suitable_owner(state, caller, &workspace_id, &item.owner_id).await?;
            context.owners.insert(owner, s);
            s
        }
    };
    if !suitable {
        return Ok(Err(format!("owner_id: {OWNER_MUST_BE_MEMBER}")));
    }
    let max_ttl = match context.max_ttl.get(&workspace_id) {
        Some(t) => *t,
        None => {
            let t = state
                .store
                .get_workspace(&workspace_id)
                .await?
                .max_key_ttl_seconds;
            context.max_ttl.insert(workspace_id.clone(), t);
            t
        }
    };
    // The very checks of `create`, on the fields an import carries.
    let as_created = CreateKeyRequest {
        name: item.name,
        r#type: Some(key_type),
        environment: Some(environment),
        workspace_id: Some(workspace_id.clone()),
        owner_id: Some(item.owner_id.clone()),
        permissions: item.permissions,
        expires_at: item.expires_at,
        allowed_origins: None,
        allowed_ips: None,
        metadata: item.metadata,
        ratelimits: None,
        credits: None,
    };
    let mut v = Validator::new();
    let fields = new_key_fields(
        &mut v,
        &caller.issuer(),
        &item.owner_id,
        key_type,
        &as_created,
        max_ttl,
    );
    if let Err(errors) = v.finish() {
        let words: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect();
        return Ok(Err(words.join("; ")));
    }
    Ok(Ok(NewApiKey {
        id: ids::new_id(ids::KEY),
        hash: hash.to_hex(),
        redacted,
        name: fields.name,
        key_type,
        environment,
        workspace_id,
        owner_id: item.owner_id,
        permissions: fields.permissions,
        allowed_origins: vec![],
        allowed_ips: fields.allowed_ips,
        metadata: fields.metadata,
        ratelimits: vec![],
        credits: None,
        expires_at: fields.expires_at,
        created_by: Some(caller.resolved.key.id.clone()),
    }))
}

/// How an imported key is shown: its prefix (up to its last `_` or `-` within the first 12
/// characters, as in `acme_live_`) and its last four characters, each only while at least 16
/// characters stay hidden.
fn foreign_redacted(key: &str) -> String {
    const HIDDEN: usize = 16;
    let head = &key[..key.len().min(12)];
    let prefix = head.rfind(['_', '-']).map_or("", |i| &key[..=i]);
    let prefix = if key.len() >= prefix.len() + HIDDEN {
        prefix
    } else {
        ""
    };
    let tail = if key.len() >= prefix.len() + HIDDEN + 4 {
        &key[key.len() - 4..]
    } else {
        ""
    };
    format!("{prefix}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::foreign_redacted;

    #[test]
    fn an_imported_key_shows_its_prefix_and_end_only_while_most_of_it_stays_hidden() {
        assert_eq!(
            foreign_redacted("acme_live_4f9a7c1e2b3d4f5a6b7c8d9e"),
            "acme_live_…8d9e"
        );
        assert_eq!(
            foreign_redacted("acme_live_4f9a7c1e2b3d4f5a"),
            "acme_live_…"
        );
        assert_eq!(foreign_redacted("0123456789abcdef"), "…");
        assert_eq!(foreign_redacted("0123456789abcdef0123"), "…0123");
    }
}
