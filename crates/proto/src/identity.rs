//! The identity of a verified request, and its form as headers (SPEC §10.1).

use http::header::{HeaderMap, HeaderName, HeaderValue};
use latchkey_core::{Environment, KeyType, PermissionSet};
use serde::{Deserialize, Serialize};

/// Who made a request, with what, allowed to do what: the axum extractor of the tower layer
/// and the `X-Latchkey-*` headers of forward auth and the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub user_id: String,
    pub workspace_id: String,
    /// The API key (for an access token: the key it was obtained from).
    pub key_id: String,
    /// The access token, when one was presented.
    pub token_id: Option<String>,
    pub key_type: KeyType,
    pub environment: Environment,
    /// What the credential can do now: its owner's permissions narrowed by the key's
    /// restriction, the token's scope and (for a pair) the other half.
    pub permissions: PermissionSet,
    /// The credential's name.
    pub name: String,
}

impl Identity {
    /// Whether the credential holds `permission` (patterns match as everywhere in Latchkey).
    pub fn allows(&self, permission: &str) -> bool {
        self.permissions.allows_str(permission)
    }
}

pub const USER_ID: &str = "x-latchkey-user-id";
pub const WORKSPACE_ID: &str = "x-latchkey-workspace-id";
pub const KEY_ID: &str = "x-latchkey-key-id";
pub const TOKEN_ID: &str = "x-latchkey-token-id";
pub const KEY_TYPE: &str = "x-latchkey-key-type";
pub const ENVIRONMENT: &str = "x-latchkey-environment";
pub const PERMISSIONS: &str = "x-latchkey-permissions";
pub const NAME: &str = "x-latchkey-name";
/// On a denial: the verify code (`NOT_FOUND`, `INSUFFICIENT_PERMISSIONS`, …).
pub const CODE: &str = "x-latchkey-code";

/// The §10.1 headers, in the order of the SPEC's table.
pub const HEADERS: [&str; 8] = [
    USER_ID,
    WORKSPACE_ID,
    KEY_ID,
    TOKEN_ID,
    KEY_TYPE,
    ENVIRONMENT,
    PERMISSIONS,
    NAME,
];

const PREFIX: &str = "x-latchkey-";

/// Whether a request carries any `X-Latchkey-*` header.
pub fn carries_any(headers: &HeaderMap) -> bool {
    headers.keys().any(|k| k.as_str().starts_with(PREFIX))
}

/// Removes every `X-Latchkey-*` header: what a client sends under these names is never
/// believed, nor passed on.
pub fn strip_inbound(headers: &mut HeaderMap) {
    // The usual request carries none: look before allocating.
    if !carries_any(headers) {
        return;
    }
    let forged: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with(PREFIX))
        .cloned()
        .collect();
    for name in forged {
        headers.remove(name);
    }
}

/// The §10.1 headers of a request let through without a credential (a `public` route): present,
/// as always, and all `-`, since no credential was checked and none names anyone.
pub fn insert_anonymous(headers: &mut HeaderMap) {
    for name in HEADERS {
        headers.insert(HeaderName::from_static(name), HeaderValue::from_static("-"));
    }
}

/// Sets the §10.1 headers: every one present, none empty (`-` for no value), so a proxy that
/// copies the answer's headers can never pass a forged value through.
pub fn insert_headers(identity: &Identity, headers: &mut HeaderMap) {
    let mut set = |name: &'static str, value: &str| {
        let v = if value.is_empty() { "-" } else { value };
        // Ids, types and permissions are visible ASCII by construction; the name is encoded.
        let v = HeaderValue::from_str(v).unwrap_or_else(|_| HeaderValue::from_static("-"));
        headers.insert(HeaderName::from_static(name), v);
    };
    set(USER_ID, &identity.user_id);
    set(WORKSPACE_ID, &identity.workspace_id);
    set(KEY_ID, &identity.key_id);
    set(TOKEN_ID, identity.token_id.as_deref().unwrap_or("-"));
    set(KEY_TYPE, identity.key_type.as_str());
    set(ENVIRONMENT, identity.environment.as_str());
    set(PERMISSIONS, &identity.permissions.to_strings().join(" "));
    set(NAME, &percent_encode(&identity.name));
}

/// RFC 3986 percent-encoding of everything but unreserved characters: a name is any UTF-8.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::Permission;

    fn identity() -> Identity {
        Identity {
            user_id: "usr_1".into(),
            workspace_id: "ws_1".into(),
            key_id: "key_1".into(),
            token_id: None,
            key_type: KeyType::Secret,
            environment: Environment::Live,
            permissions: PermissionSet::new(vec![Permission::parse("documents:*").unwrap()]),
            name: "CI key ✓ \r\nX-Evil: 1".into(),
        }
    }

    #[test]
    fn headers_are_always_present_never_empty_and_the_name_is_encoded() {
        let mut h = HeaderMap::new();
        h.insert("x-latchkey-user-id", HeaderValue::from_static("usr_forged"));
        h.insert("X-Latchkey-Admin", HeaderValue::from_static("yes"));
        strip_inbound(&mut h);
        assert!(h.is_empty(), "forged headers are removed: {h:?}");
        let mut id = identity();
        id.permissions = PermissionSet::default();
        insert_headers(&id, &mut h);
        assert_eq!(h[USER_ID], "usr_1");
        assert_eq!(h[TOKEN_ID], "-");
        assert_eq!(h[PERMISSIONS], "-");
        assert_eq!(h[KEY_TYPE], "secret");
        assert_eq!(h[NAME], "CI%20key%20%E2%9C%93%20%0D%0AX-Evil%3A%201");
        assert_eq!(h.len(), 8);
    }

    #[test]
    fn allows_matches_patterns() {
        let id = identity();
        assert!(id.allows("documents:read"));
        assert!(!id.allows("billing:read"));
    }
}
