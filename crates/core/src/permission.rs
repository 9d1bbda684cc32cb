//! Permissions: `resource:action` or `resource:id:action`, with `*` matching one segment and a
//! trailing `*` matching the rest.
//!
//! One deliberate rule on top of that: Latchkey's own namespace (`latchkey:…`) is only matched by
//! patterns that spell `latchkey` as their first segment. A role granting every *app* permission
//! (`*`) therefore does not silently grant key management or verification.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

pub const MAX_LEN: usize = 200;
pub const MAX_SEGMENTS: usize = 8;
pub const MAX_SEGMENT_LEN: usize = 64;
pub const NAMESPACE: &str = "latchkey";

pub const KEYS_MANAGE_OWN: &str = "latchkey:keys:manage_own";
pub const KEYS_MANAGE_ALL: &str = "latchkey:keys:manage_all";
pub const MEMBERS_MANAGE: &str = "latchkey:members:manage";
pub const AUDIT_READ: &str = "latchkey:audit:read";
pub const VERIFY: &str = "latchkey:verify";
/// Report leaked keys (`POST /v1/leaks`, SPEC §12.2): any key string, of any workspace.
pub const LEAKS_REPORT: &str = "latchkey:leaks:report";

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Permission(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidPermission(pub &'static str);

impl Permission {
    pub fn parse(s: &str) -> Result<Self, InvalidPermission> {
        Self::validate(s)?;
        Ok(Self(s.to_owned()))
    }

    /// Checks a permission's syntax without keeping it (no allocation).
    pub fn validate(s: &str) -> Result<(), InvalidPermission> {
        if s.is_empty() || s.len() > MAX_LEN {
            return Err(InvalidPermission("must be 1 to 200 characters"));
        }
        let mut count = 0;
        for seg in s.split(':') {
            count += 1;
            let ok = seg == "*"
                || (!seg.is_empty()
                    && seg.len() <= MAX_SEGMENT_LEN
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')));
            if !ok {
                return Err(InvalidPermission(
                    "segments are `*` or letters, digits, `_`, `-`, `.` separated by `:`",
                ));
            }
        }
        if count > MAX_SEGMENTS {
            return Err(InvalidPermission("at most 8 segments"));
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_latchkey(&self) -> bool {
        is_latchkey(&self.0)
    }

    /// Whether everything `other` matches is matched by `self`. With a concrete `other`
    /// (no wildcards) this is plain matching.
    pub fn implies(&self, other: &Permission) -> bool {
        implies(&self.0, &other.0)
    }
}

pub(crate) fn is_latchkey(p: &str) -> bool {
    p.split(':').next() == Some(NAMESPACE)
}

fn implies(granted: &str, wanted: &str) -> bool {
    let mut g = granted.split(':').peekable();
    let mut w = wanted.split(':').peekable();
    let (Some(&g0), Some(&w0)) = (g.peek(), w.peek()) else {
        return false;
    };
    if w0 == NAMESPACE && g0 != NAMESPACE {
        return false;
    }
    while let Some(gs) = g.next() {
        let g_last = g.peek().is_none();
        let Some(ws) = w.next() else { return false };
        let w_last = w.peek().is_none();
        if gs == "*" && g_last {
            return true;
        }
        if ws == "*" && w_last {
            // `wanted` ends in a rest-wildcard that a non-trailing segment cannot cover.
            return false;
        }
        if gs != "*" && gs != ws {
            return false;
        }
    }
    w.next().is_none()
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl FromStr for Permission {
    type Err = InvalidPermission;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Permission {
    type Error = InvalidPermission;
    /// Keeps the string it is given: no copy.
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::validate(&s)?;
        Ok(Self(s))
    }
}

impl From<Permission> for String {
    fn from(p: Permission) -> String {
        p.0
    }
}

/// A set of granted patterns.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PermissionSet(Vec<Permission>);

impl PermissionSet {
    pub fn new(mut perms: Vec<Permission>) -> Self {
        perms.sort();
        perms.dedup();
        Self(perms)
    }

    pub fn parse_all<'a>(
        items: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, InvalidPermission> {
        items
            .into_iter()
            .map(Permission::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(Self::new)
    }

    pub fn all() -> Self {
        Self::parse_all(["*", "latchkey:*"]).expect("valid")
    }

    pub fn iter(&self) -> impl Iterator<Item = &Permission> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn allows(&self, wanted: &Permission) -> bool {
        self.allows_valid(wanted.as_str())
    }

    /// [`allows`](Self::allows) for a permission not parsed yet (such as a constant): checked
    /// for syntax, never allocated.
    pub fn allows_str(&self, wanted: &str) -> bool {
        Permission::validate(wanted).is_ok() && self.allows_valid(wanted)
    }

    /// `wanted` must be a valid permission.
    pub(crate) fn allows_valid(&self, wanted: &str) -> bool {
        self.0.iter().any(|g| implies(&g.0, wanted))
    }

    pub fn union(&self, other: &PermissionSet) -> PermissionSet {
        Self::new(self.0.iter().chain(other.0.iter()).cloned().collect())
    }

    /// The patterns of either set that the other set fully covers, minus those implied by
    /// another member. Sound (everything listed is allowed by both); a partial overlap such as
    /// `a:*:read` with `a:x:*` is still enforced exactly by [`allows`](Self::allows) but not listed.
    pub fn intersection(&self, other: &PermissionSet) -> PermissionSet {
        let both: Vec<Permission> = self
            .0
            .iter()
            .filter(|p| other.allows(p))
            .chain(other.0.iter().filter(|p| self.allows(p)))
            .cloned()
            .collect();
        Self::new(both).minimal()
    }

    /// Drops patterns implied by another pattern of the set.
    pub fn minimal(&self) -> PermissionSet {
        let keep = self
            .0
            .iter()
            .enumerate()
            .filter(|(i, p)| {
                !self
                    .0
                    .iter()
                    .enumerate()
                    .any(|(j, q)| *i != j && q.implies(p) && !(p.implies(q) && j > *i))
            })
            .map(|(_, p)| p.clone())
            .collect();
        Self(keep)
    }

    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(|p| p.0.clone()).collect()
    }

    /// The first pattern of `self` that `bound` does not cover, if any: used to refuse a key
    /// restriction wider than its creator's own permissions.
    pub fn first_not_within<'a>(&'a self, bound: &PermissionSet) -> Option<&'a Permission> {
        self.0.iter().find(|p| !bound.allows(p))
    }
}

impl fmt::Debug for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Permission {
        Permission::parse(s).unwrap()
    }

    #[test]
    fn wildcard_rules() {
        assert!(p("documents:read").implies(&p("documents:read")));
        assert!(!p("documents:read").implies(&p("documents:write")));
        assert!(p("documents:*").implies(&p("documents:read")));
        assert!(
            p("documents:*").implies(&p("documents:doc_1:read")),
            "trailing * takes the rest"
        );
        assert!(p("document:*:read").implies(&p("document:doc_42:read")));
        assert!(!p("document:*:read").implies(&p("document:doc_42:write")));
        assert!(!p("document:*:read").implies(&p("document:read")));
        assert!(p("*").implies(&p("anything:at:all")));
        assert!(!p("documents:read:x").implies(&p("documents:read")));
        assert!(!p("documents:read").implies(&p("documents:*")));
        assert!(!p("document:*:read").implies(&p("document:*")));
    }

    #[test]
    fn latchkey_namespace_needs_an_explicit_grant() {
        assert!(!p("*").implies(&p(KEYS_MANAGE_OWN)));
        assert!(!p("*:*").implies(&p(VERIFY)));
        assert!(p("latchkey:*").implies(&p(KEYS_MANAGE_ALL)));
        assert!(p("latchkey:keys:*").implies(&p(KEYS_MANAGE_OWN)));
        assert!(!p("latchkey:keys:*").implies(&p(VERIFY)));
    }

    #[test]
    fn rejects_bad_syntax() {
        for bad in [
            "",
            "a::b",
            ":a",
            "a:",
            "sp ace",
            "a:b:c:d:e:f:g:h:i",
            "émoji",
        ] {
            assert!(Permission::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn intersection_lists_only_what_both_allow() {
        let owner = PermissionSet::parse_all(["documents:*", "billing:read"]).unwrap();
        let key = PermissionSet::parse_all(["documents:read", "admin:write"]).unwrap();
        assert_eq!(
            owner.intersection(&key).to_strings(),
            vec!["documents:read"]
        );
        let all = PermissionSet::parse_all(["*"]).unwrap();
        let eff = all.intersection(&owner);
        assert_eq!(eff.to_strings(), vec!["billing:read", "documents:*"]);
    }

    #[test]
    fn minimal_drops_implied_patterns_and_keeps_one_of_equals() {
        let s = PermissionSet::parse_all(["documents:*", "documents:read", "x:y"]).unwrap();
        assert_eq!(s.minimal().to_strings(), vec!["documents:*", "x:y"]);
    }

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("*".to_string()),
            Just("a".to_string()),
            Just("b".to_string()),
            Just("latchkey".to_string()),
            "[a-c]{1,2}",
        ]
    }

    fn pattern() -> impl Strategy<Value = Permission> {
        prop::collection::vec(segment(), 1..5).prop_map(|s| p(&s.join(":")))
    }

    /// A concrete permission matched by `pat`: each `*` replaced by a literal, a trailing `*`
    /// possibly by several segments.
    fn instance(pat: &Permission, fill: &[String]) -> Permission {
        let segs: Vec<&str> = pat.as_str().split(':').collect();
        let mut out = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            if *s == "*" {
                let f = &fill[i % fill.len()];
                out.push(f.clone());
                if i + 1 == segs.len() && fill.len() > 2 {
                    out.push(fill[1].clone());
                }
            } else {
                out.push((*s).to_string());
            }
        }
        p(&out.join(":"))
    }

    proptest! {
        #[test]
        fn implies_is_reflexive(a in pattern()) {
            prop_assert!(a.implies(&a));
        }

        #[test]
        fn implies_is_sound_on_instances(a in pattern(), b in pattern(),
                                         fill in prop::collection::vec("[a-c]{1,2}", 1..4)) {
            // If a implies b, every concrete permission b matches is matched by a.
            let c = instance(&b, &fill);
            prop_assert!(b.implies(&c), "{b:?} should match its instance {c:?}");
            if a.implies(&b) {
                prop_assert!(a.implies(&c), "{a:?} implies {b:?} but not its instance {c:?}");
            }
        }

        #[test]
        fn implies_is_transitive(a in pattern(), b in pattern(), c in pattern()) {
            if a.implies(&b) && b.implies(&c) {
                prop_assert!(a.implies(&c));
            }
        }

        #[test]
        fn intersection_is_sound(xs in prop::collection::vec(pattern(), 0..4),
                                 ys in prop::collection::vec(pattern(), 0..4),
                                 q in pattern()) {
            let x = PermissionSet::new(xs);
            let y = PermissionSet::new(ys);
            if x.intersection(&y).allows(&q) {
                prop_assert!(x.allows(&q) && y.allows(&q));
            }
        }

        #[test]
        fn wildcard_first_segment_never_reaches_latchkey(rest in prop::collection::vec(segment(), 0..3)) {
            let mut segs = vec!["*".to_string()];
            segs.extend(rest);
            let g = p(&segs.join(":"));
            prop_assert!(!g.implies(&p(KEYS_MANAGE_ALL)));
            prop_assert!(!g.implies(&p(VERIFY)));
        }
    }
}
