//! The verification decision: given what the store knows about a key, its owner and its
//! workspace, and what the caller demands, is the key good, and if not, exactly why.

use crate::key::{Environment, KeyType};
use crate::permission::{Permission, PermissionSet, VERIFY};
use crate::validate::origin_allowed;
use ipnet::IpNet;

use std::net::IpAddr;

/// Why a credential was refused. The order of checks in [`decide`] is the order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    NotFound,
    Revoked,
    Disabled,
    Expired,
    /// The owner is deactivated or no longer a member of the key's workspace.
    Forbidden,
    EnvironmentMismatch,
    OriginNotAllowed,
    IpNotAllowed,
    InsufficientPermissions,
    PairRequired,
    PairMismatch,
    /// A rate limit of the key or its member is spent (SPEC §11.1).
    RateLimited,
    /// The key's or its member's credits are spent (SPEC §11.2).
    UsageExceeded,
}

impl Denial {
    /// Every denial, for the list of verify codes the API documents.
    pub const ALL: [Denial; 13] = [
        Denial::NotFound,
        Denial::Revoked,
        Denial::Disabled,
        Denial::Expired,
        Denial::Forbidden,
        Denial::EnvironmentMismatch,
        Denial::OriginNotAllowed,
        Denial::IpNotAllowed,
        Denial::InsufficientPermissions,
        Denial::PairRequired,
        Denial::PairMismatch,
        Denial::RateLimited,
        Denial::UsageExceeded,
    ];

    /// The `code` of `POST /v1/verify`.
    pub fn verify_code(self) -> &'static str {
        match self {
            Denial::NotFound => "NOT_FOUND",
            Denial::Revoked => "REVOKED",
            Denial::Disabled => "DISABLED",
            Denial::Expired => "EXPIRED",
            Denial::Forbidden => "FORBIDDEN",
            Denial::EnvironmentMismatch => "ENVIRONMENT_MISMATCH",
            Denial::OriginNotAllowed => "ORIGIN_NOT_ALLOWED",
            Denial::IpNotAllowed => "IP_NOT_ALLOWED",
            Denial::InsufficientPermissions => "INSUFFICIENT_PERMISSIONS",
            Denial::PairRequired => "PAIR_REQUIRED",
            Denial::PairMismatch => "PAIR_MISMATCH",
            Denial::RateLimited => "RATE_LIMITED",
            Denial::UsageExceeded => "USAGE_EXCEEDED",
        }
    }

    /// The denial a verify `code` names (`None` for `VALID` and codes this version does not know).
    pub fn from_verify_code(code: &str) -> Option<Denial> {
        Denial::ALL.into_iter().find(|d| d.verify_code() == code)
    }

    /// A limit or a quota (HTTP 429), not a verdict on the credential.
    pub fn is_limit(self) -> bool {
        matches!(self, Denial::RateLimited | Denial::UsageExceeded)
    }

    /// True when the credential itself is unusable (HTTP 401); false when it is valid but not
    /// enough for this request (HTTP 403, or 429 for [`is_limit`](Self::is_limit)).
    pub fn is_authentication_failure(self) -> bool {
        matches!(
            self,
            Denial::NotFound
                | Denial::Revoked
                | Denial::Disabled
                | Denial::Expired
                | Denial::Forbidden
                | Denial::PairRequired
                | Denial::PairMismatch
        )
    }
}

/// What is stored about a key that matters to a decision.
#[derive(Debug, Clone, Copy)]
pub struct KeyFacts<'a> {
    pub key_type: KeyType,
    pub environment: Environment,
    pub revoked: bool,
    pub enabled: bool,
    pub expires_at: Option<i64>,
    pub restriction: Option<&'a PermissionSet>,
    pub allowed_origins: &'a [String],
    pub allowed_ips: &'a [IpNet],
    /// When the key is presented through an access token: the token's own narrowing.
    pub token_scope: Option<&'a PermissionSet>,
}

/// The owner's standing in the key's workspace, read live.
#[derive(Debug, Clone, Copy)]
pub struct OwnerFacts<'a> {
    pub active: bool,
    /// Member of the workspace (instance admins included: their keys, like anyone's, live in
    /// a workspace they belong to and reach others from there).
    pub member: bool,
    /// Role permissions plus direct grants (everything for an instance admin).
    pub permissions: &'a PermissionSet,
    /// An instance verifier: `latchkey:verify` on top of `permissions`, still narrowed by the
    /// key's restriction and token scope like any other permission (and never for a
    /// publishable key). Where it reaches, every workspace, is the verify endpoint's business.
    pub instance_verifier: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct WorkspacePolicy<'a> {
    pub publishable_permissions: &'a PermissionSet,
}

/// What the caller needs from the credential for this request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Demand<'a> {
    pub permissions: &'a [Permission],
    pub environment: Option<Environment>,
    pub origin: Option<&'a str>,
    pub ip: Option<IpAddr>,
    /// Limits named by `POST /v1/verify`, each with its cost (the auto-applied ones are
    /// charged 1 whether named or not).
    pub ratelimits: &'a [crate::ratelimit::Named<'a>],
    /// The credits a successful verification costs (SPEC §11.2); `None` = 1.
    pub cost: Option<u32>,
    /// Only a credential of this workspace exists for this request (a verifier that sees one
    /// workspace): any other is `NOT_FOUND`, before anything is charged to it.
    pub within_workspace: Option<&'a str>,
}

/// The permissions a key can exercise right now, as a checkable set.
#[derive(Debug, Clone, Copy)]
pub struct Effective<'a> {
    owner: &'a PermissionSet,
    /// The owner is an instance verifier: `latchkey:verify` counts as one of `owner`. A flag
    /// rather than a widened set, so an ordinary key's check allocates nothing.
    verifier: bool,
    restriction: Option<&'a PermissionSet>,
    token_scope: Option<&'a PermissionSet>,
    publishable: Option<&'a PermissionSet>,
}

impl Effective<'_> {
    pub fn allows(&self, wanted: &Permission) -> bool {
        self.allows_valid(wanted.as_str())
    }

    /// [`allows`](Self::allows) for a permission not parsed yet: checked, never allocated.
    pub fn allows_str(&self, wanted: &str) -> bool {
        Permission::validate(wanted).is_ok() && self.allows_valid(wanted)
    }

    fn allows_valid(&self, wanted: &str) -> bool {
        // `latchkey:verify` has no wildcard, so the only pattern it implies is itself.
        (self.owner.allows_valid(wanted) || (self.verifier && wanted == VERIFY))
            && self.restriction.is_none_or(|r| r.allows_valid(wanted))
            && self.token_scope.is_none_or(|s| s.allows_valid(wanted))
            && self
                .publishable
                .is_none_or(|p| !crate::permission::is_latchkey(wanted) && p.allows_valid(wanted))
    }

    /// A listing for `/v1/me` and verify responses (see [`PermissionSet::intersection`]).
    pub fn listing(&self) -> PermissionSet {
        let mut set = self.owner.minimal();
        if self.verifier && !set.allows_str(VERIFY) {
            set = set.union(&PermissionSet::parse_all([VERIFY]).expect("valid"));
        }
        for narrowing in [self.restriction, self.token_scope].into_iter().flatten() {
            set = set.intersection(narrowing);
        }
        if let Some(p) = self.publishable {
            let app_only =
                PermissionSet::new(set.iter().filter(|q| !q.is_latchkey()).cloned().collect());
            set = app_only.intersection(p);
        }
        set
    }
}

pub fn effective<'a>(
    key: &KeyFacts<'a>,
    owner: &OwnerFacts<'a>,
    workspace: &WorkspacePolicy<'a>,
) -> Effective<'a> {
    Effective {
        owner: owner.permissions,
        verifier: owner.instance_verifier,
        restriction: key.restriction,
        token_scope: key.token_scope,
        publishable: (key.key_type == KeyType::Publishable)
            .then_some(workspace.publishable_permissions),
    }
}

/// Decides whether a stored key satisfies a demand at `now` (unix seconds).
pub fn decide(
    key: &KeyFacts<'_>,
    owner: &OwnerFacts<'_>,
    workspace: &WorkspacePolicy<'_>,
    demand: &Demand<'_>,
    now: i64,
) -> Result<(), Denial> {
    if key.revoked {
        return Err(Denial::Revoked);
    }
    if !key.enabled {
        return Err(Denial::Disabled);
    }
    if key.expires_at.is_some_and(|t| t <= now) {
        return Err(Denial::Expired);
    }
    if !owner.active || !owner.member {
        return Err(Denial::Forbidden);
    }
    if demand.environment.is_some_and(|e| e != key.environment) {
        return Err(Denial::EnvironmentMismatch);
    }
    if !key.allowed_origins.is_empty()
        && !demand
            .origin
            .is_some_and(|o| origin_allowed(key.allowed_origins, o))
    {
        return Err(Denial::OriginNotAllowed);
    }
    if !key.allowed_ips.is_empty()
        && !demand
            .ip
            .is_some_and(|ip| key.allowed_ips.iter().any(|net| net.contains(&ip)))
    {
        return Err(Denial::IpNotAllowed);
    }
    let eff = effective(key, owner, workspace);
    if !demand.permissions.iter().all(|p| eff.allows(p)) {
        return Err(Denial::InsufficientPermissions);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verify_code_reads_back() {
        for d in Denial::ALL {
            assert_eq!(Denial::from_verify_code(d.verify_code()), Some(d));
        }
        assert_eq!(Denial::from_verify_code("VALID"), None);
        assert_eq!(Denial::from_verify_code("SOMETHING_NEW"), None);
    }

    fn set(items: &[&str]) -> PermissionSet {
        PermissionSet::parse_all(items.iter().copied()).unwrap()
    }

    struct Fixture {
        owner: PermissionSet,
        restriction: Option<PermissionSet>,
        publishable: PermissionSet,
        origins: Vec<String>,
        ips: Vec<IpNet>,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                owner: set(&["*", "latchkey:keys:manage_own"]),
                restriction: None,
                publishable: set(&["products:read"]),
                origins: vec![],
                ips: vec![],
            }
        }
        fn key(&self, key_type: KeyType) -> KeyFacts<'_> {
            KeyFacts {
                key_type,
                environment: Environment::Live,
                revoked: false,
                enabled: true,
                expires_at: None,
                restriction: self.restriction.as_ref(),
                allowed_origins: &self.origins,
                allowed_ips: &self.ips,
                token_scope: None,
            }
        }
        fn owner(&self) -> OwnerFacts<'_> {
            OwnerFacts {
                active: true,
                member: true,
                permissions: &self.owner,
                instance_verifier: false,
            }
        }
        fn ws(&self) -> WorkspacePolicy<'_> {
            WorkspacePolicy {
                publishable_permissions: &self.publishable,
            }
        }
    }

    fn perms(items: &[&str]) -> Vec<Permission> {
        items
            .iter()
            .map(|s| Permission::parse(s).unwrap())
            .collect()
    }

    #[test]
    fn precedence_of_key_state() {
        let f = Fixture::new();
        let d = Demand::default();
        let mut k = f.key(KeyType::Secret);
        assert_eq!(decide(&k, &f.owner(), &f.ws(), &d, 100), Ok(()));
        k.expires_at = Some(100);
        assert_eq!(
            decide(&k, &f.owner(), &f.ws(), &d, 100),
            Err(Denial::Expired)
        );
        k.enabled = false;
        assert_eq!(
            decide(&k, &f.owner(), &f.ws(), &d, 100),
            Err(Denial::Disabled)
        );
        k.revoked = true;
        assert_eq!(
            decide(&k, &f.owner(), &f.ws(), &d, 100),
            Err(Denial::Revoked)
        );
    }

    #[test]
    fn owner_standing_is_checked_live() {
        let f = Fixture::new();
        let k = f.key(KeyType::Secret);
        let d = Demand::default();
        let mut o = f.owner();
        o.member = false;
        assert_eq!(decide(&k, &o, &f.ws(), &d, 0), Err(Denial::Forbidden));
        o.member = true;
        o.active = false;
        assert_eq!(decide(&k, &o, &f.ws(), &d, 0), Err(Denial::Forbidden));
    }

    #[test]
    fn a_key_never_exceeds_its_owner_or_its_restriction() {
        let mut f = Fixture::new();
        f.owner = set(&["documents:read"]);
        f.restriction = Some(set(&["documents:*", "billing:read"]));
        let k = f.key(KeyType::Secret);
        let ok = perms(&["documents:read"]);
        let too_much = perms(&["billing:read"]);
        assert_eq!(
            decide(
                &k,
                &f.owner(),
                &f.ws(),
                &Demand {
                    permissions: &ok,
                    ..Default::default()
                },
                0
            ),
            Ok(())
        );
        assert_eq!(
            decide(
                &k,
                &f.owner(),
                &f.ws(),
                &Demand {
                    permissions: &too_much,
                    ..Default::default()
                },
                0
            ),
            Err(Denial::InsufficientPermissions)
        );
        let eff = effective(&k, &f.owner(), &f.ws());
        assert_eq!(eff.listing().to_strings(), vec!["documents:read"]);
    }

    #[test]
    fn publishable_keys_are_limited_to_publishable_permissions_and_never_manage() {
        let f = Fixture::new();
        let k = f.key(KeyType::Publishable);
        let eff = effective(&k, &f.owner(), &f.ws());
        assert!(eff.allows_str("products:read"));
        assert!(!eff.allows_str("products:write"));
        assert!(!eff.allows_str("latchkey:keys:manage_own"));
        assert_eq!(eff.listing().to_strings(), vec!["products:read"]);
    }

    #[test]
    fn an_instance_verifier_verifies_unless_its_key_or_token_says_otherwise() {
        let mut f = Fixture::new();
        let held = set(&["documents:read"]);
        let want = perms(&[VERIFY]);
        let d = Demand {
            permissions: &want,
            ..Default::default()
        };
        let mut o = OwnerFacts {
            active: true,
            member: true,
            permissions: &held,
            instance_verifier: false,
        };
        let k = f.key(KeyType::Secret);
        assert_eq!(
            decide(&k, &o, &f.ws(), &d, 0),
            Err(Denial::InsufficientPermissions),
            "an ordinary owner does not"
        );
        o.instance_verifier = true;
        assert_eq!(decide(&k, &o, &f.ws(), &d, 0), Ok(()));
        let eff = effective(&k, &o, &f.ws());
        assert!(eff.allows_str(VERIFY) && eff.allows_str("documents:read"));
        assert_eq!(
            eff.listing().to_strings(),
            vec!["documents:read", "latchkey:verify"]
        );
        // Only verify: no other Latchkey permission, no wildcard over the namespace.
        for other in [
            "latchkey:keys:manage_own",
            "latchkey:*",
            "latchkey:verify:x",
        ] {
            assert!(!eff.allows_str(other), "{other}");
        }
        assert!(!eff.allows_str("documents:write"));

        // A key restricted to something else does not verify.
        f.restriction = Some(set(&["documents:read"]));
        let k = f.key(KeyType::Secret);
        assert_eq!(
            decide(&k, &o, &f.ws(), &d, 0),
            Err(Denial::InsufficientPermissions)
        );
        assert_eq!(
            effective(&k, &o, &f.ws()).listing().to_strings(),
            vec!["documents:read"]
        );
        // One restricted to verify does, and lists only that.
        f.restriction = Some(set(&[VERIFY]));
        let k = f.key(KeyType::Secret);
        assert_eq!(decide(&k, &o, &f.ws(), &d, 0), Ok(()));
        assert_eq!(
            effective(&k, &o, &f.ws()).listing().to_strings(),
            vec![VERIFY]
        );
        // So does a token scope.
        f.restriction = None;
        let scope = set(&["documents:read"]);
        let mut k = f.key(KeyType::Secret);
        k.token_scope = Some(&scope);
        assert_eq!(
            decide(&k, &o, &f.ws(), &d, 0),
            Err(Denial::InsufficientPermissions)
        );
        // A publishable key never verifies, even with verify in the workspace's list.
        f.publishable = set(&["documents:read", "latchkey:verify"]);
        let k = f.key(KeyType::Publishable);
        assert_eq!(
            decide(&k, &o, &f.ws(), &d, 0),
            Err(Denial::InsufficientPermissions)
        );
        assert_eq!(
            effective(&k, &o, &f.ws()).listing().to_strings(),
            vec!["documents:read"]
        );
    }

    #[test]
    fn a_verifier_who_already_holds_verify_lists_it_once() {
        let mut f = Fixture::new();
        f.owner = set(&["latchkey:*"]);
        let mut o = f.owner();
        o.instance_verifier = true;
        let eff = effective(&f.key(KeyType::Secret), &o, &f.ws());
        assert_eq!(eff.listing().to_strings(), vec!["latchkey:*"]);
    }

    #[test]
    fn environment_origin_and_ip() {
        let mut f = Fixture::new();
        f.origins = vec!["https://shop.example".into()];
        f.ips = vec!["10.0.0.0/8".parse().unwrap()];
        let k = f.key(KeyType::Publishable);
        let o = f.owner();
        let w = f.ws();
        let good = Demand {
            origin: Some("https://shop.example"),
            ip: Some("10.1.2.3".parse().unwrap()),
            environment: Some(Environment::Live),
            ..Default::default()
        };
        assert_eq!(decide(&k, &o, &w, &good, 0), Ok(()));
        let d = Demand {
            environment: Some(Environment::Test),
            ..good
        };
        assert_eq!(decide(&k, &o, &w, &d, 0), Err(Denial::EnvironmentMismatch));
        let d = Demand {
            origin: Some("https://evil.example"),
            ..good
        };
        assert_eq!(decide(&k, &o, &w, &d, 0), Err(Denial::OriginNotAllowed));
        let d = Demand {
            origin: None,
            ..good
        };
        assert_eq!(decide(&k, &o, &w, &d, 0), Err(Denial::OriginNotAllowed));
        let d = Demand {
            ip: Some("192.168.1.1".parse().unwrap()),
            ..good
        };
        assert_eq!(decide(&k, &o, &w, &d, 0), Err(Denial::IpNotAllowed));
    }

    #[test]
    fn http_classes() {
        assert!(Denial::Revoked.is_authentication_failure());
        assert!(Denial::Forbidden.is_authentication_failure());
        assert!(!Denial::InsufficientPermissions.is_authentication_failure());
        assert_eq!(Denial::IpNotAllowed.verify_code(), "IP_NOT_ALLOWED");
    }
}
