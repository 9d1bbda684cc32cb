//! The built-in roles every workspace starts with. Their permission lists are editable per workspace.

use crate::permission::PermissionSet;

pub const ADMIN: &str = "admin";
pub const DEVELOPER: &str = "developer";
pub const MEMBER: &str = "member";
pub const VIEWER: &str = "viewer";

pub const BUILT_IN: [&str; 4] = [ADMIN, DEVELOPER, MEMBER, VIEWER];

/// Default permissions of a built-in role; `None` for any other name.
pub fn default_permissions(role: &str) -> Option<PermissionSet> {
    let perms: &[&str] = match role {
        ADMIN => &["*", "latchkey:*"],
        DEVELOPER => &["*", "latchkey:keys:manage_own"],
        MEMBER => &["*"],
        VIEWER => &["*:read", "*:*:read"],
        _ => return None,
    };
    Some(PermissionSet::parse_all(perms.iter().copied()).expect("built-in roles are valid"))
}

pub const MAX_NAME_LEN: usize = 50;

/// Role names: lowercase identifiers, so they can sit in a URL path unescaped.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permission as p;

    #[test]
    fn built_in_roles_follow_the_spec() {
        let admin = default_permissions(ADMIN).unwrap();
        let dev = default_permissions(DEVELOPER).unwrap();
        let member = default_permissions(MEMBER).unwrap();
        let viewer = default_permissions(VIEWER).unwrap();
        for perm in [
            p::KEYS_MANAGE_ALL,
            p::MEMBERS_MANAGE,
            p::AUDIT_READ,
            "documents:write",
        ] {
            assert!(admin.allows_str(perm), "{perm}");
        }
        assert!(dev.allows_str(p::KEYS_MANAGE_OWN) && dev.allows_str("documents:write"));
        assert!(!dev.allows_str(p::KEYS_MANAGE_ALL) && !dev.allows_str(p::MEMBERS_MANAGE));
        assert!(member.allows_str("documents:write") && !member.allows_str(p::KEYS_MANAGE_OWN));
        assert!(viewer.allows_str("documents:read") && viewer.allows_str("document:d1:read"));
        assert!(!viewer.allows_str("documents:write"));
        assert!(default_permissions("owner").is_none());
        assert!(is_valid_name("billing-reader") && !is_valid_name("Admin") && !is_valid_name(""));
    }
}
