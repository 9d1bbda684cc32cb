//! What a credential may hand to people (SPEC §5.2): a role, a grant, a membership or a new user
//! never carries a permission the credential lacks, only a full admin of a workspace makes
//! (or unmakes) an `admin`, and only an unbounded instance admin credential gives or takes an
//! instance role. The same holds for a portal link (SPEC §7), which hands a person a dashboard
//! session: only a credential that holds everything that session will hold makes one. The API
//! and the dashboard both ask these questions of an [`Issuer`].

use crate::issuance::Issuer;
use crate::key::Environment;
use crate::permission::{Permission, PermissionSet, KEYS_MANAGE_ALL};
use crate::roles::{self, InstanceRole};
use crate::validate::Validator;

/// The credential may not do this at all, whatever the input (HTTP 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this needs a full admin of the workspace")]
pub struct NotAllowed;

const NOT_HELD: &str = "exceeds the permissions of the credential making this request";

/// Why a credential may not make a portal link (HTTP 403 either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PortalRefusal {
    /// A test credential: a link signs a person into the live dashboard, where live keys are.
    #[error("portal links are made with a live credential")]
    TestCredential,
    /// No `latchkey:keys:manage_all`, or not every right the session would carry.
    #[error("the credential does not hold everything the session would")]
    NotHeld,
}

/// The person a portal link signs in, as the decision needs them: what they hold in the
/// link's workspace now, and their instance role, which a session carries with it.
#[derive(Debug, Clone, Copy)]
pub struct SessionTarget<'a> {
    /// Their role's permissions and their grants in the workspace.
    pub permissions: &'a PermissionSet,
    pub instance_role: Option<InstanceRole>,
}

impl Issuer<'_> {
    /// A full admin of a workspace: nothing narrows the credential (no key restriction, token
    /// scope or narrowing pair) and it holds, now, every permission of the workspace's `admin`
    /// role. An instance admin's unrestricted credential is one in every workspace.
    pub fn is_full_admin(&self, admin_role: &PermissionSet) -> bool {
        !self.restricted && admin_role.iter().all(|p| self.effective.allows(p))
    }

    /// Whether nothing bounds this credential but its owner's rights: no restriction, no expiry,
    /// no IP allow-list. Only such a credential may set a password, since a password is a way
    /// to a dashboard session, which has none of those bounds.
    pub fn is_unbounded(&self) -> bool {
        !self.restricted && self.expires_at.is_none() && self.allowed_ips.is_empty()
    }

    /// A new user with a dashboard password (see [`is_unbounded`](Self::is_unbounded)).
    pub fn may_set_password(&self) -> bool {
        self.is_unbounded()
    }

    /// Giving or taking an instance role (SPEC §5.1): an instance admin holds everything
    /// everywhere and an instance verifier verifies everywhere, far beyond any workspace, so
    /// only an unbounded instance admin credential makes or unmakes either. (Unmaking too, as a
    /// workspace's `admin` is unmade only by a full admin: a narrowed key that can demote the
    /// other instance admins can take the instance over.)
    pub fn may_set_instance_role(&self) -> bool {
        self.is_instance_admin && self.is_unbounded()
    }

    /// Giving someone `role` (with `role_permissions`), or changing or removing a member whose
    /// role is `current_role`. Making or unmaking an admin needs a full admin (`Err`); any
    /// other role must fit inside the credential (a field error on `role`).
    pub fn may_assign_role(
        &self,
        v: &mut Validator,
        role: &str,
        role_permissions: &PermissionSet,
        current_role: Option<&str>,
        admin_role: &PermissionSet,
    ) -> Result<(), NotAllowed> {
        self.may_change_member(current_role, admin_role)?;
        if role == roles::ADMIN && !self.is_full_admin(admin_role) {
            return Err(NotAllowed);
        }
        if role_permissions.iter().any(|p| !self.effective.allows(p)) {
            v.error(
                "role",
                "carries permissions the credential making this request lacks",
            );
        }
        Ok(())
    }

    /// Changing or removing a member: an admin's membership is a full admin's to change.
    pub fn may_change_member(
        &self,
        current_role: Option<&str>,
        admin_role: &PermissionSet,
    ) -> Result<(), NotAllowed> {
        if current_role == Some(roles::ADMIN) && !self.is_full_admin(admin_role) {
            return Err(NotAllowed);
        }
        Ok(())
    }

    /// Setting a role's permissions: the `admin` role is a full admin's; every other role may
    /// only hold what the credential holds (field errors `field[i]`).
    pub fn may_set_role(
        &self,
        v: &mut Validator,
        field: &str,
        role: &str,
        requested: &[String],
        admin_role: &PermissionSet,
    ) -> Result<(), NotAllowed> {
        if role == roles::ADMIN && !self.is_full_admin(admin_role) {
            return Err(NotAllowed);
        }
        for (i, p) in requested.iter().enumerate() {
            if Permission::parse(p).is_ok_and(|p| !self.effective.allows(&p)) {
                v.error(&format!("{field}[{i}]"), NOT_HELD);
            }
        }
        Ok(())
    }

    /// Making portal links at all, before anyone is looked up (so a credential that may not
    /// learns nothing about people): it holds `latchkey:keys:manage_all` in the workspace and
    /// is a live credential.
    pub fn may_make_portal_links(&self, environment: Environment) -> Result<(), PortalRefusal> {
        if environment == Environment::Test {
            return Err(PortalRefusal::TestCredential);
        }
        let manage_all = Permission::parse(KEYS_MANAGE_ALL).expect("valid");
        if !self.effective.allows(&manage_all) {
            return Err(PortalRefusal::NotHeld);
        }
        Ok(())
    }

    /// A portal link for `target`. The session it opens acts with every right the target
    /// holds in the workspace, bounded by no key restriction, so the credential must hold each
    /// of those rights itself. `effective` is already narrowed by the credential's own key
    /// restriction, token scope or pair: a key restricted below the target is refused even when
    /// its owner holds more. A person with an instance role carries it into the session (every
    /// workspace, or verification everywhere), and only an unbounded instance admin credential
    /// gives that role ([`may_set_instance_role`](Self::may_set_instance_role)), so only such a
    /// credential signs them in.
    pub fn may_sign_in(
        &self,
        environment: Environment,
        target: &SessionTarget<'_>,
    ) -> Result<(), PortalRefusal> {
        self.may_make_portal_links(environment)?;
        if target.instance_role.is_some() && !self.may_set_instance_role() {
            return Err(PortalRefusal::NotHeld);
        }
        if !target.permissions.iter().all(|p| self.effective.allows(p)) {
            return Err(PortalRefusal::NotHeld);
        }
        Ok(())
    }

    /// A direct grant: only of a permission the credential holds.
    pub fn may_grant(&self, v: &mut Validator, field: &str, permission: &Permission) {
        if !self.effective.allows(permission) {
            v.error(field, NOT_HELD);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issuance::Grants;
    use ipnet::IpNet;

    struct Holds(PermissionSet);

    impl Grants for Holds {
        fn allows(&self, wanted: &Permission) -> bool {
            self.0.allows(wanted)
        }
        fn listing(&self) -> PermissionSet {
            self.0.clone()
        }
    }

    fn set(items: &[&str]) -> PermissionSet {
        PermissionSet::parse_all(items.iter().copied()).unwrap()
    }

    fn issuer<'a>(g: &'a Holds, restricted: bool, ips: &'a [IpNet]) -> Issuer<'a> {
        Issuer {
            user_id: "usr_me",
            is_instance_admin: false,
            effective: g,
            restricted,
            allowed_ips: ips.into(),
            expires_at: None,
        }
    }

    fn admin_role() -> PermissionSet {
        roles::default_permissions(roles::ADMIN).unwrap()
    }

    #[test]
    fn a_full_admin_holds_the_whole_admin_role_unrestricted() {
        let all = Holds(admin_role());
        assert!(issuer(&all, false, &[]).is_full_admin(&admin_role()));
        assert!(!issuer(&all, true, &[]).is_full_admin(&admin_role()));
        let manager = Holds(set(&["*", "latchkey:members:manage"]));
        assert!(!issuer(&manager, false, &[]).is_full_admin(&admin_role()));
        // Against an edited admin role, what counts is that role.
        assert!(issuer(&manager, false, &[]).is_full_admin(&set(&["latchkey:members:manage"])));
    }

    #[test]
    fn a_members_manager_gives_only_what_it_holds() {
        let g = Holds(set(&["latchkey:members:manage", "documents:read"]));
        let i = issuer(&g, true, &[]);
        let admin = admin_role();
        let mut v = Validator::new();
        assert_eq!(
            i.may_assign_role(&mut v, "admin", &admin, None, &admin),
            Err(NotAllowed)
        );
        assert_eq!(
            i.may_change_member(Some("admin"), &admin),
            Err(NotAllowed),
            "nor unmakes an admin"
        );
        let viewer = roles::default_permissions(roles::VIEWER).unwrap();
        i.may_assign_role(&mut v, "viewer", &viewer, Some("member"), &admin)
            .unwrap();
        i.may_assign_role(&mut v, "readers", &set(&["documents:read"]), None, &admin)
            .unwrap();
        assert!(
            v.finish().is_err(),
            "viewer reads everything, the key does not"
        );

        let mut v = Validator::new();
        let ok = Permission::parse("documents:read").unwrap();
        let wide = Permission::parse("documents:*").unwrap();
        i.may_grant(&mut v, "permission", &ok);
        assert!(v.finish().is_ok());
        let mut v = Validator::new();
        i.may_grant(&mut v, "permission", &wide);
        i.may_set_role(
            &mut v,
            "permissions",
            "readers",
            &["documents:read".into(), "latchkey:*".into()],
            &admin,
        )
        .unwrap();
        let fields: Vec<_> = v
            .finish()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["permission", "permissions[1]"]);
        assert_eq!(
            i.may_set_role(&mut Validator::new(), "permissions", "admin", &[], &admin),
            Err(NotAllowed)
        );
    }

    #[test]
    fn a_portal_link_needs_manage_all_live_and_every_right_of_its_target() {
        let admin = Holds(set(&["*", "latchkey:*"]));
        let developer = roles::default_permissions(roles::DEVELOPER).unwrap();
        let target = SessionTarget {
            permissions: &developer,
            instance_role: None,
        };
        let live = Environment::Live;
        assert_eq!(
            issuer(&admin, false, &[]).may_sign_in(live, &target),
            Ok(())
        );
        assert_eq!(
            issuer(&admin, false, &[]).may_sign_in(Environment::Test, &target),
            Err(PortalRefusal::TestCredential)
        );
        assert_eq!(
            issuer(&admin, false, &[]).may_make_portal_links(Environment::Test),
            Err(PortalRefusal::TestCredential)
        );

        // Everything but manage_all: no links at all.
        let manager = Holds(set(&[
            "*",
            "latchkey:members:manage",
            "latchkey:keys:manage_own",
        ]));
        assert_eq!(
            issuer(&manager, false, &[]).may_make_portal_links(live),
            Err(PortalRefusal::NotHeld)
        );

        // manage_all, but not every right of the target.
        let keys_only = Holds(set(&[
            "latchkey:keys:manage_all",
            "latchkey:keys:manage_own",
        ]));
        let i = issuer(&keys_only, false, &[]);
        assert_eq!(i.may_make_portal_links(live), Ok(()));
        assert_eq!(i.may_sign_in(live, &target), Err(PortalRefusal::NotHeld));
        let reader = set(&["documents:read"]);
        let narrow_target = SessionTarget {
            permissions: &reader,
            instance_role: None,
        };
        assert_eq!(
            i.may_sign_in(live, &narrow_target),
            Err(PortalRefusal::NotHeld)
        );
        let docs = Holds(set(&["latchkey:keys:manage_all", "documents:*"]));
        assert_eq!(
            issuer(&docs, true, &[]).may_sign_in(live, &narrow_target),
            Ok(()),
            "a restricted key holding all the target holds may"
        );

        // A pattern of the target must be covered whole, not just overlap.
        let one_doc = Holds(set(&["latchkey:keys:manage_all", "document:doc_1:*"]));
        let all_docs = set(&["document:*:read"]);
        let t = SessionTarget {
            permissions: &all_docs,
            instance_role: None,
        };
        assert_eq!(
            issuer(&one_doc, false, &[]).may_sign_in(live, &t),
            Err(PortalRefusal::NotHeld)
        );

        // No rights at all: anyone with manage_all may sign them in.
        let nothing = PermissionSet::default();
        let t = SessionTarget {
            permissions: &nothing,
            instance_role: None,
        };
        assert_eq!(issuer(&keys_only, true, &[]).may_sign_in(live, &t), Ok(()));
    }

    #[test]
    fn only_an_unbounded_instance_admin_signs_in_someone_with_an_instance_role() {
        let all = Holds(PermissionSet::all());
        let nothing = PermissionSet::default();
        for role in InstanceRole::ALL {
            let t = SessionTarget {
                permissions: &nothing,
                instance_role: Some(role),
            };
            let mut i = issuer(&all, false, &[]);
            assert_eq!(
                i.may_sign_in(Environment::Live, &t),
                Err(PortalRefusal::NotHeld),
                "{role:?}: everything in a workspace is not an instance role"
            );
            i.is_instance_admin = true;
            assert_eq!(i.may_sign_in(Environment::Live, &t), Ok(()), "{role:?}");
            i.expires_at = Some(1000);
            assert_eq!(
                i.may_sign_in(Environment::Live, &t),
                Err(PortalRefusal::NotHeld),
                "{role:?}: a bounded instance admin credential"
            );
        }
    }

    #[test]
    fn passwords_and_instance_roles_need_an_unbounded_credential() {
        let all = Holds(PermissionSet::all());
        let ips: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut i = issuer(&all, false, &[]);
        assert!(
            i.may_set_password() && !i.may_set_instance_role(),
            "holding every permission of a workspace is not being an instance admin"
        );
        i.is_instance_admin = true;
        assert!(i.may_set_instance_role());
        i.expires_at = Some(1000);
        assert!(!i.may_set_password() && !i.may_set_instance_role());
        let mut fenced = issuer(&all, false, &ips);
        assert!(!fenced.may_set_password());
        fenced.is_instance_admin = true;
        assert!(!fenced.may_set_instance_role());
        let mut restricted = issuer(&all, true, &[]);
        assert!(!restricted.may_set_password());
        restricted.is_instance_admin = true;
        assert!(!restricted.may_set_instance_role());
    }
}
