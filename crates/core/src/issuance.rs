//! What a credential may hand out when it creates, edits or rolls a key, or issues or renews an
//! access token: never more than it has itself. A child's permissions stay within the creator's,
//! its IP allow-list within the creator's, and its expiry no later than the creator's.

use crate::permission::{Permission, PermissionSet};
use crate::validate::Validator;
use crate::verify::Effective;
use ipnet::IpNet;
use std::borrow::Cow;

/// What a credential can do right now. One credential is an [`Effective`]; a key presented with
/// an access token (SPEC §4 pair) is the intersection of two.
pub trait Grants: Sync {
    fn allows(&self, wanted: &Permission) -> bool;
    /// A sound listing: everything listed is allowed.
    fn listing(&self) -> PermissionSet;
}

impl Grants for Effective<'_> {
    fn allows(&self, wanted: &Permission) -> bool {
        Effective::allows(self, wanted)
    }
    fn listing(&self) -> PermissionSet {
        Effective::listing(self)
    }
}

/// The credential issuing a key or token, as far as limits go: for a pair, both halves at once
/// (the intersection of their permissions and IP lists, the earlier expiry).
#[derive(Clone)]
pub struct Issuer<'a> {
    pub user_id: &'a str,
    pub is_instance_admin: bool,
    pub effective: &'a dyn Grants,
    /// Something narrows the credential below its owner: a key restriction, a token scope.
    pub restricted: bool,
    pub allowed_ips: Cow<'a, [IpNet]>,
    pub expires_at: Option<i64>,
}

/// The addresses both lists allow (empty = anywhere). CIDR blocks are nested or disjoint, so
/// each overlap is the smaller block of a pair.
pub fn ip_intersection<'a>(a: &'a [IpNet], b: &'a [IpNet]) -> Cow<'a, [IpNet]> {
    if a.is_empty() {
        return Cow::Borrowed(b);
    }
    if b.is_empty() {
        return Cow::Borrowed(a);
    }
    let mut both = Vec::new();
    for x in a {
        for y in b {
            if x.contains(y) {
                both.push(*y);
            } else if y.contains(x) {
                both.push(*x);
            }
        }
    }
    both.sort();
    both.dedup();
    if both.is_empty() {
        // Disjoint lists allow no address (an authenticated pair never has them: the client's
        // address was in both). An empty list would mean "anywhere", so stand in a single
        // address of TEST-NET-1 (RFC 5737), which no client has.
        both.push("192.0.2.0/32".parse().expect("valid"));
    }
    Cow::Owned(both)
}

impl Issuer<'_> {
    /// The restriction list of a key for `owner_id`: what was asked for (each pattern within the
    /// issuer's own permissions), or, when nothing was asked, the issuer's permissions if the key
    /// could otherwise do more than its issuer (the issuer is restricted, or the owner is
    /// someone else whose rights may exceed the issuer's).
    pub fn restriction(
        &self,
        v: &mut Validator,
        owner_id: &str,
        requested: Option<&[String]>,
    ) -> Option<PermissionSet> {
        match requested {
            Some(list) => {
                let set = v.permissions("permissions", list);
                for (i, p) in list.iter().enumerate() {
                    if Permission::parse(p).is_ok_and(|p| !self.effective.allows(&p)) {
                        v.error(
                            &format!("permissions[{i}]"),
                            "exceeds the permissions of the credential making this request",
                        );
                    }
                }
                Some(set)
            }
            None if self.needs_cap(owner_id) => Some(self.effective.listing()),
            None => None,
        }
    }

    /// For a roll: the old key's restriction, capped to the issuer's permissions when needed.
    pub fn carry_restriction(
        &self,
        owner_id: &str,
        old: Option<&PermissionSet>,
    ) -> Option<PermissionSet> {
        if !self.needs_cap(owner_id) {
            return old.cloned();
        }
        let mine = self.effective.listing();
        Some(match old {
            Some(o) => o.intersection(&mine),
            None => mine,
        })
    }

    fn needs_cap(&self, owner_id: &str) -> bool {
        self.restricted || (owner_id != self.user_id && !self.is_instance_admin)
    }

    /// The IP allow-list: inside the issuer's own list, which is inherited when none is given.
    pub fn ips(&self, v: &mut Validator, field: &str, requested: Option<Vec<IpNet>>) -> Vec<IpNet> {
        if self.allowed_ips.is_empty() {
            return requested.unwrap_or_default();
        }
        match requested {
            None => self.allowed_ips.to_vec(),
            Some(list) => {
                if list.is_empty() {
                    v.error(
                        field,
                        "must stay within the allowed_ips of the credential making this request",
                    );
                }
                for (i, net) in list.iter().enumerate() {
                    if !self.allowed_ips.iter().any(|mine| mine.contains(net)) {
                        v.error(
                            &format!("{field}[{i}]"),
                            "is outside the allowed_ips of the credential making this request",
                        );
                    }
                }
                list
            }
        }
    }

    /// For a roll: the old key's list if it fits inside the issuer's, else the issuer's.
    pub fn carry_ips(&self, old: &[IpNet]) -> Vec<IpNet> {
        if self.covers_ips(old) {
            old.to_vec()
        } else {
            self.allowed_ips.to_vec()
        }
    }

    /// The expiry: no later than the issuer's own, which is inherited when none is given.
    /// `requested = None` means "no expiry asked for".
    pub fn expiry(&self, v: &mut Validator, field: &str, requested: Option<i64>) -> Option<i64> {
        match (self.expires_at, requested) {
            (None, r) => r,
            (Some(mine), None) => Some(mine),
            (Some(mine), Some(e)) if e > mine => {
                v.error(
                    field,
                    "must not be later than the expiry of the credential making this request",
                );
                Some(mine)
            }
            (Some(_), Some(e)) => Some(e),
        }
    }

    /// For a roll: the old key's expiry, brought forward to the issuer's own. A roll through a
    /// one-hour token yields a successor that dies with the token, not one that never expires.
    pub fn carry_expiry(&self, old: Option<i64>) -> Option<i64> {
        match (old, self.expires_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether a key may be patched to never expire through this credential.
    pub fn may_clear_expiry(&self) -> bool {
        self.expires_at.is_none()
    }

    /// When a token issued at `now` for `ttl` seconds from a key expiring at `source_expiry`
    /// ends: never after that key, nor after the issuer.
    pub fn token_expiry(&self, now: i64, ttl: i64, source_expiry: Option<i64>) -> i64 {
        [source_expiry, self.expires_at]
            .into_iter()
            .flatten()
            .fold(now.saturating_add(ttl), i64::min)
    }

    /// The scope of a token issued or renewed through this credential from some key. When the
    /// issuer is that key alone, the key's own restriction keeps applying to the token, so the
    /// scope stays as asked. Otherwise (a pair, another key of the owner, a token) a narrowed
    /// issuer caps the scope to what it can do itself.
    pub fn token_scope(
        &self,
        issuer_is_source: bool,
        requested: Option<PermissionSet>,
    ) -> Option<PermissionSet> {
        if issuer_is_source || !self.restricted {
            return requested;
        }
        let mine = self.effective.listing();
        Some(match requested {
            Some(r) => r.intersection(&mine),
            None => mine,
        })
    }

    /// Whether every address `source` allows (empty = anywhere) is one the issuer allows: a
    /// token lives on its key's IP list, which must not be wider than the issuer's.
    pub fn covers_ips(&self, source: &[IpNet]) -> bool {
        self.allowed_ips.is_empty()
            || (!source.is_empty()
                && source
                    .iter()
                    .all(|n| self.allowed_ips.iter().any(|m| m.contains(n))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{Environment, KeyType};
    use crate::verify::{effective, KeyFacts, OwnerFacts, WorkspacePolicy};

    fn set(items: &[&str]) -> PermissionSet {
        PermissionSet::parse_all(items.iter().copied()).unwrap()
    }

    fn with_issuer(
        owner: &PermissionSet,
        restriction: Option<&PermissionSet>,
        ips: &[IpNet],
        expires_at: Option<i64>,
        f: impl FnOnce(Issuer<'_>),
    ) {
        let empty = PermissionSet::default();
        let key = KeyFacts {
            key_type: KeyType::Secret,
            environment: Environment::Live,
            revoked: false,
            enabled: true,
            expires_at,
            restriction,
            allowed_origins: &[],
            allowed_ips: ips,
            token_scope: None,
        };
        let o = OwnerFacts {
            active: true,
            member: true,
            permissions: owner,
            instance_verifier: false,
        };
        let w = WorkspacePolicy {
            publishable_permissions: &empty,
        };
        let eff = effective(&key, &o, &w);
        f(Issuer {
            user_id: "usr_me",
            is_instance_admin: false,
            effective: &eff,
            restricted: restriction.is_some(),
            allowed_ips: ips.into(),
            expires_at,
        })
    }

    #[test]
    fn unrestricted_own_keys_follow_the_owner_and_others_are_capped() {
        let owner = set(&["*", "latchkey:keys:manage_all"]);
        with_issuer(&owner, None, &[], None, |i| {
            let mut v = Validator::new();
            assert_eq!(i.restriction(&mut v, "usr_me", None), None);
            let capped = i.restriction(&mut v, "usr_other", None).unwrap();
            assert_eq!(capped.to_strings(), vec!["*", "latchkey:keys:manage_all"]);
            assert!(v.finish().is_ok());
        });
    }

    #[test]
    fn a_restricted_issuer_cannot_widen_or_drop_its_limits() {
        let owner = set(&["*", "latchkey:*"]);
        let mine = set(&["documents:read", "latchkey:keys:manage_own"]);
        let ips: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        with_issuer(&owner, Some(&mine), &ips, Some(1000), |i| {
            let mut v = Validator::new();
            assert_eq!(i.restriction(&mut v, "usr_me", None), Some(mine.clone()));
            assert_eq!(i.ips(&mut v, "allowed_ips", None), ips);
            assert_eq!(i.expiry(&mut v, "expires_at", None), Some(1000));
            assert_eq!(i.expiry(&mut v, "expires_at", Some(500)), Some(500));
            assert_eq!(i.carry_restriction("usr_me", None), Some(mine.clone()));
            assert_eq!(i.carry_ips(&[]), ips);
            assert!(v.finish().is_ok());

            let mut v = Validator::new();
            i.restriction(&mut v, "usr_me", Some(&["documents:write".into()]));
            i.ips(&mut v, "allowed_ips", Some(vec![]));
            i.ips(
                &mut v,
                "allowed_ips",
                Some(vec!["192.168.0.0/16".parse().unwrap()]),
            );
            i.expiry(&mut v, "expires_at", Some(2000));
            let fields: Vec<_> = v
                .finish()
                .unwrap_err()
                .into_iter()
                .map(|e| e.field)
                .collect();
            assert_eq!(
                fields,
                [
                    "permissions[0]",
                    "allowed_ips",
                    "allowed_ips[0]",
                    "expires_at"
                ]
            );
        });
    }

    #[test]
    fn rolls_and_tokens_end_no_later_than_the_issuer() {
        let owner = set(&["*", "latchkey:keys:manage_own"]);
        with_issuer(&owner, None, &[], Some(1000), |i| {
            assert_eq!(i.carry_expiry(None), Some(1000));
            assert_eq!(i.carry_expiry(Some(500)), Some(500));
            assert_eq!(i.carry_expiry(Some(5000)), Some(1000));
            assert!(!i.may_clear_expiry());
            assert_eq!(i.token_expiry(100, 3600, None), 1000);
            assert_eq!(i.token_expiry(100, 3600, Some(800)), 800);
            assert_eq!(i.token_expiry(100, 60, Some(800)), 160);
        });
        with_issuer(&owner, None, &[], None, |i| {
            assert_eq!(i.carry_expiry(None), None);
            assert!(i.may_clear_expiry());
            assert_eq!(i.token_expiry(100, 60, None), 160);
        });
    }

    #[test]
    fn a_narrowed_issuer_caps_the_tokens_it_makes_from_other_keys() {
        let owner = set(&["*", "latchkey:keys:manage_own"]);
        let mine = set(&["latchkey:keys:manage_own"]);
        let ips: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        with_issuer(&owner, Some(&mine), &ips, None, |i| {
            assert_eq!(
                i.token_scope(true, None),
                None,
                "its own key's restriction applies"
            );
            assert_eq!(i.token_scope(false, None), Some(mine.clone()));
            assert_eq!(
                i.token_scope(false, Some(set(&["documents:read", "latchkey:keys:*"]))),
                Some(mine.clone())
            );
            assert!(i.covers_ips(&["10.1.0.0/16".parse().unwrap()]));
            assert!(!i.covers_ips(&[]), "anywhere is wider than 10/8");
            assert!(!i.covers_ips(&["192.168.0.0/16".parse().unwrap()]));
        });
        with_issuer(&owner, None, &[], None, |i| {
            assert_eq!(i.token_scope(false, None), None);
            assert!(i.covers_ips(&[]));
        });
    }

    #[test]
    fn ip_lists_intersect_to_the_smaller_blocks() {
        let a: Vec<IpNet> = vec![
            "10.0.0.0/8".parse().unwrap(),
            "192.168.1.0/24".parse().unwrap(),
        ];
        let b: Vec<IpNet> = vec![
            "10.1.0.0/16".parse().unwrap(),
            "192.168.0.0/16".parse().unwrap(),
        ];
        let both: Vec<String> = ip_intersection(&a, &b)
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(both, ["10.1.0.0/16", "192.168.1.0/24"]);
        assert_eq!(&*ip_intersection(&a, &[]), &a[..]);
        let far: Vec<IpNet> = vec!["172.16.0.0/12".parse().unwrap()];
        let none = ip_intersection(&a, &far);
        assert!(!none.is_empty(), "disjoint lists are not \"anywhere\"");
        assert!(!none
            .iter()
            .any(|n| n.contains(&"10.0.0.1".parse::<std::net::IpAddr>().unwrap())));
    }
}
