//! The permission syntax and matcher: `Permission::parse`/`validate`, `implies`, and
//! `PermissionSet` (`allows`, `allows_str`, `union`, `intersection`, `minimal`,
//! `first_not_within`).
//!
//! Input: one permission per line. The first valid line is the one asked for (`wanted`), the
//! others make two granted sets (odd and even lines); a line that does not parse is still fed to
//! the string entry points.
#![no_main]

use latchkey_core::permission::{MAX_LEN, NAMESPACE};
use latchkey_core::{Permission, PermissionSet};
use libfuzzer_sys::fuzz_target;

/// Bounds the quadratic set checks, so a long input cannot make one execution slow.
const MAX_LINES: usize = 24;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut valid = Vec::new();
    for line in text.split('\n').take(MAX_LINES) {
        if let Some(p) = check_syntax(line) {
            check_one(&p);
            valid.push(p);
        }
    }
    // The whole input as one string too: long, many segments, odd characters.
    if let Some(p) = check_syntax(&text) {
        check_one(&p);
    }
    if valid.len() >= 2 {
        check_sets(&valid);
    }
});

fn check_syntax(s: &str) -> Option<Permission> {
    let validated = Permission::validate(s);
    let parsed = Permission::parse(s);
    assert_eq!(
        validated.is_ok(),
        parsed.is_ok(),
        "validate and parse disagree on {s:?}"
    );
    let p = parsed.ok()?;
    assert_eq!(p.as_str(), s);
    assert_eq!(p.to_string(), s);
    assert!(!s.is_empty() && s.len() <= MAX_LEN);
    assert!(s.split(':').all(|seg| seg == "*" || !seg.contains('*')));
    // What the API and the store read back is the same permission.
    let json = serde_json::to_string(&p).expect("serializes");
    assert_eq!(
        serde_json::from_str::<Permission>(&json).ok().as_ref(),
        Some(&p)
    );
    assert_eq!(s.parse::<Permission>().as_ref(), Ok(&p));
    Some(p)
}

fn check_one(p: &Permission) {
    assert!(p.implies(p), "{p:?} does not imply itself");
    let alone = PermissionSet::new(vec![p.clone()]);
    assert!(alone.allows(p) && alone.allows_str(p.as_str()));
    assert_eq!(
        p.is_latchkey(),
        p.as_str().split(':').next() == Some(NAMESPACE)
    );
    // `*` grants every app permission and none of Latchkey's own.
    let star = Permission::parse("*").expect("valid");
    assert_eq!(star.implies(p), !p.is_latchkey(), "`*` vs {p:?}");
    if p.is_latchkey() && p.as_str() != NAMESPACE {
        let ns = Permission::parse("latchkey:*").expect("valid");
        assert!(ns.implies(p), "`latchkey:*` vs {p:?}");
    }
    // A trailing `*` covers the pattern it replaces, and everything below it.
    let segs: Vec<&str> = p.as_str().split(':').collect();
    for cut in 1..segs.len() {
        let wider = format!("{}:*", segs[..cut].join(":"));
        if let Ok(w) = Permission::parse(&wider) {
            if !(p.is_latchkey() && !w.is_latchkey()) {
                assert!(w.implies(p), "{wider:?} does not imply {p:?}");
            }
        }
    }
    // Every concrete instance of a pattern is matched by it.
    let instance = concrete(p);
    assert!(
        p.implies(&instance),
        "{p:?} does not match its instance {instance:?}"
    );
    // Nothing concrete implies a wildcard it is not equal to.
    if !p.as_str().contains('*') {
        for q in [p.as_str().to_owned() + ":*", "*".to_owned()] {
            if let Ok(q) = Permission::parse(&q) {
                assert!(!p.implies(&q), "concrete {p:?} implies pattern {q:?}");
            }
        }
    }
}

/// `p` with each `*` replaced by a literal (a trailing one by two segments).
fn concrete(p: &Permission) -> Permission {
    let segs: Vec<&str> = p.as_str().split(':').collect();
    let last = segs.len() - 1;
    let out: Vec<&str> = segs
        .iter()
        .enumerate()
        .flat_map(|(i, s)| match (*s, i == last) {
            // Only within the 8-segment and 200-character limits; otherwise one segment.
            ("*", true) if segs.len() < 8 && p.as_str().len() + 2 <= MAX_LEN => vec!["x", "y"],
            ("*", _) => vec!["x"],
            (s, _) => vec![s],
        })
        .collect();
    Permission::parse(&out.join(":")).unwrap_or_else(|e| panic!("instance of {p:?}: {e}"))
}

fn check_sets(valid: &[Permission]) {
    let wanted = &valid[0];
    let rest = &valid[1..];
    let x = PermissionSet::new(rest.iter().step_by(2).cloned().collect());
    let y = PermissionSet::new(rest.iter().skip(1).step_by(2).cloned().collect());
    let sorted: Vec<&Permission> = x.iter().collect();
    assert!(
        sorted.windows(2).all(|w| w[0] < w[1]),
        "new() sorts and dedups"
    );

    let in_x = x.allows(wanted);
    let in_y = y.allows(wanted);
    assert_eq!(in_x, x.iter().any(|g| g.implies(wanted)));
    assert_eq!(in_x, x.allows_str(wanted.as_str()));
    assert_eq!(x.union(&y).allows(wanted), in_x || in_y, "union");
    // The listed intersection is sound: it never allows what one side does not.
    let both = x.intersection(&y);
    if both.allows(wanted) {
        assert!(in_x && in_y, "{x:?} ∩ {y:?} = {both:?} allows {wanted:?}");
    }
    assert!(both.first_not_within(&x).is_none() && both.first_not_within(&y).is_none());
    // Dropping implied patterns changes nothing about what the set allows.
    let min = x.minimal();
    assert_eq!(
        min.allows(wanted),
        in_x,
        "{x:?} minimal {min:?} on {wanted:?}"
    );
    assert!(min.iter().count() <= x.iter().count());
    for p in x.iter() {
        assert!(min.allows(p), "{x:?} minimal {min:?} lost {p:?}");
        let instance = concrete(p);
        assert_eq!(min.allows(&instance), x.allows(&instance));
    }
    // first_not_within finds exactly the patterns the bound does not cover.
    let outside = x.first_not_within(&y);
    assert_eq!(outside.is_none(), x.iter().all(|p| y.allows(p)));
    if let Some(p) = outside {
        assert!(!y.allows(p));
    }
    // Transitivity over the first three valid lines.
    if let [a, b, c, ..] = valid {
        if a.implies(b) && b.implies(c) {
            assert!(a.implies(c), "{a:?} ⇒ {b:?} ⇒ {c:?} but not {a:?} ⇒ {c:?}");
        }
        // Soundness on instances: what b matches, anything implying b matches too.
        if a.implies(b) {
            let inst = concrete(b);
            assert!(
                a.implies(&inst),
                "{a:?} ⇒ {b:?} but not its instance {inst:?}"
            );
        }
    }
}
