//! The built-in roles every workspace starts with (their permission lists are editable per
//! workspace), and the instance-wide roles a user may hold besides.

use crate::permission::PermissionSet;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

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

/// A user's standing across the whole instance (SPEC §5.1), besides its workspace roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceRole {
    /// Holds every permission in every workspace.
    Admin,
    /// Adds `latchkey:verify` (and the change stream) across every workspace, and nothing else:
    /// the credential a provider gives its gateway, middleware or services.
    Verifier,
}

impl InstanceRole {
    pub const ALL: [InstanceRole; 2] = [InstanceRole::Admin, InstanceRole::Verifier];

    pub fn as_str(self) -> &'static str {
        match self {
            InstanceRole::Admin => "admin",
            InstanceRole::Verifier => "verifier",
        }
    }
}

impl fmt::Display for InstanceRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InstanceRole {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        InstanceRole::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or(())
    }
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
            p::LEAKS_REPORT,
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

    #[test]
    fn instance_roles_round_trip() {
        for r in InstanceRole::ALL {
            assert_eq!(r.as_str().parse::<InstanceRole>(), Ok(r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        assert!("Admin".parse::<InstanceRole>().is_err());
        assert!(serde_json::from_str::<InstanceRole>("\"none\"").is_err());
    }
}
