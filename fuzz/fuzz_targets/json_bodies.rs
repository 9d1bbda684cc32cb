//! The JSON bodies of the write endpoints: each input goes, as a request body, through the
//! server's own extractor (`ApiJson` or `ApiJsonOrEmpty`) into every request type, and what
//! deserializes goes through the field checks its handler runs before touching the store (the
//! `Validator`, key expiry, and the issuer's limits for two fixed issuers). What validates must
//! then satisfy the rules it was validated against.
//!
//! The checks that need the store or a caller (membership, visibility, roles read from the
//! database) are not run here; the handler is the reference for the order of the rest.
#![no_main]

use axum::body::Body;
use axum::extract::FromRequest;
use axum::http::{header, Request};
use ipnet::IpNet;
use latchkey_core::issuance::{Grants, Issuer};
use latchkey_core::validate::{origin_allowed, MAX_METADATA_BYTES, MAX_NAME_CHARS};
use latchkey_core::{ids, roles, KeyType, Permission, PermissionSet, Validator};
use latchkey_server::error::ApiError;
use latchkey_server::extract::{is_blank, ApiJson, ApiJsonOrEmpty};
use latchkey_server::routes::{keys, tokens, users, verify, workspaces};
use latchkey_server::service::{self, parse_time};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::net::IpAddr;

fuzz_target!(|data: &[u8]| {
    let ctx = Ctx::new();
    if let Some(b) = json::<keys::CreateKeyRequest>(data) {
        // With and without a workspace maximum key lifetime (one day).
        ctx.each(|i| {
            [None, Some(86_400)]
                .into_iter()
                .for_each(|max| create_key(i, &b, max))
        });
    }
    if let Some(b) = json::<keys::UpdateKeyRequest>(data) {
        ctx.each(|i| update_key(i, &b));
    }
    if let Some(b) = json_or_empty::<keys::RollKeyRequest>(data) {
        let _ = b.grace_seconds.map(|g| i64::from(g) + ctx.now);
    }
    if let Some(b) = json::<users::CreateUserRequest>(data) {
        create_user(&b);
    }
    if let Some(b) = json::<workspaces::CreateWorkspaceRequest>(data) {
        let mut v = Validator::new();
        let name = v.name("name", &b.name);
        if v.finish().is_ok() {
            check_name(&name);
        }
    }
    if let Some(b) = json::<workspaces::UpdateWorkspaceRequest>(data) {
        update_workspace(&b);
    }
    if let Some(b) = json::<workspaces::PutMemberRequest>(data) {
        if roles::is_valid_name(&b.role) {
            assert!(!b.role.contains('/') && b.role.len() <= 50, "{:?}", b.role);
        }
    }
    if let Some(b) = json::<workspaces::PutRoleRequest>(data) {
        ctx.each(|i| put_role(i, &b));
    }
    if let Some(b) = json::<workspaces::CreateGrantRequest>(data) {
        ctx.each(|i| create_grant(i, &b));
    }
    if let Some(b) = json_or_empty::<tokens::ExchangeRequest>(data) {
        ctx.each(|i| exchange(i, &b));
    }
    if let Some(b) = json::<tokens::CreateTokenRequest>(data) {
        let mut v = Validator::new();
        let name = v.name("name", &b.name);
        if v.finish().is_ok() {
            check_name(&name);
        }
    }
    if let Some(b) = json::<verify::VerifyRequest>(data) {
        verify_request(&b);
    }
});

/// The body through `ApiJson`, as a handler receives it; a rejection must be a 400 or a 422
/// naming a field.
fn json<T: DeserializeOwned>(data: &[u8]) -> Option<T> {
    let req = Request::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(data.to_vec()))
        .expect("valid request");
    accepted(futures::executor::block_on(ApiJson::<T>::from_request(req, &())).map(|ApiJson(b)| b))
}

/// The body through `ApiJsonOrEmpty` (bodies that may be left out).
fn json_or_empty<T: DeserializeOwned + Default>(data: &[u8]) -> Option<T> {
    let req = Request::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(data.to_vec()))
        .expect("valid request");
    let r = futures::executor::block_on(ApiJsonOrEmpty::<T>::from_request(req, &()));
    if is_blank(data) {
        assert!(r.is_ok(), "an empty body is the defaults");
    } else if serde_json::from_slice::<serde_json::Value>(data).is_err() {
        assert!(r.is_err(), "a body that is not JSON is refused");
    }
    accepted(r.map(|ApiJsonOrEmpty(b)| b))
}

fn accepted<T>(r: Result<T, ApiError>) -> Option<T> {
    match r {
        Ok(b) => Some(b),
        Err(ApiError::BadRequest { code, detail }) => {
            assert!(!detail.is_empty(), "{code} without detail");
            assert!(
                !detail.contains(" at line "),
                "position leaks into {detail:?}"
            );
            None
        }
        Err(ApiError::Validation(errs)) => {
            assert_eq!(errs.len(), 1, "one deserialization error at a time");
            // A field is named, except the one whose name is empty (`{"": 1}`), named as sent.
            let e = &errs[0];
            assert!(!e.message.is_empty(), "{errs:?}");
            assert!(
                !e.field.is_empty() || e.message.starts_with("unknown field ``"),
                "{errs:?}"
            );
            None
        }
        Err(e) => panic!("a JSON body was rejected with {e:?}"),
    }
}

/// What a credential can do, for the issuer's limits.
struct Holds(PermissionSet);

impl Grants for Holds {
    fn allows(&self, wanted: &Permission) -> bool {
        self.0.allows(wanted)
    }
    fn listing(&self) -> PermissionSet {
        self.0.clone()
    }
}

const ISSUER_ID: &str = "usr_0AbCdEfG0123456789ab";

struct Ctx {
    now: i64,
    narrow: Holds,
    wide: Holds,
    ips: Vec<IpNet>,
}

impl Ctx {
    fn new() -> Self {
        let set = |items: &[&str]| PermissionSet::parse_all(items.iter().copied()).expect("valid");
        Self {
            now: latchkey_server::now(),
            narrow: Holds(set(&[
                "documents:*",
                "billing:read",
                "latchkey:keys:manage_own",
            ])),
            wide: Holds(PermissionSet::all()),
            ips: vec![
                "10.0.0.0/8".parse().expect("valid"),
                "2001:db8::/32".parse().expect("valid"),
            ],
        }
    }

    /// An unbounded instance admin's credential, and a restricted one with an IP list and an
    /// expiry (a key restriction or token scope narrows it).
    fn each(&self, f: impl Fn(&Issuer<'_>)) {
        f(&Issuer {
            user_id: ISSUER_ID,
            is_instance_admin: true,
            effective: &self.wide,
            restricted: false,
            allowed_ips: Cow::Borrowed(&[]),
            expires_at: None,
        });
        f(&Issuer {
            user_id: ISSUER_ID,
            is_instance_admin: false,
            effective: &self.narrow,
            restricted: true,
            allowed_ips: Cow::Borrowed(&self.ips),
            expires_at: Some(self.now + 86_400),
        });
    }
}

fn check_name(name: &str) {
    let n = name.chars().count();
    assert!((1..=MAX_NAME_CHARS).contains(&n), "{name:?}");
    assert_eq!(name.trim(), name);
    assert!(!name.chars().any(char::is_control), "{name:?}");
}

/// Within the issuer: permissions it holds, addresses it allows, an expiry no later than its own.
fn check_within(
    i: &Issuer<'_>,
    perms: Option<&PermissionSet>,
    ips: &[IpNet],
    expires_at: Option<i64>,
) {
    if let Some(p) = perms {
        if let Some(out) = p.iter().find(|p| !i.effective.allows(p)) {
            panic!("{out:?} passed but the issuer lacks it");
        }
    }
    if !i.allowed_ips.is_empty() {
        assert!(
            !ips.is_empty(),
            "an empty IP list (anywhere) from a bounded issuer"
        );
        for n in ips {
            assert!(i.allowed_ips.iter().any(|m| m.contains(n)), "{n} passed");
        }
    }
    if let Some(mine) = i.expires_at {
        assert!(
            expires_at.is_some_and(|e| e <= mine),
            "expiry {expires_at:?} past {mine}"
        );
    }
}

fn check_origins(origins: &[String]) {
    let mut v = Validator::new();
    // Normalizing is idempotent, and a plain origin allows itself.
    assert_eq!(v.origins("o", origins), origins);
    assert!(
        v.finish().is_ok(),
        "normalized origins {origins:?} are refused"
    );
    for o in origins.iter().filter(|o| !o.contains("://*.")) {
        assert!(origin_allowed(origins, o), "{o:?} does not allow itself");
    }
}

fn check_ips(ips: &[IpNet]) {
    for n in ips {
        assert_eq!(n.trunc(), *n, "{n} not truncated");
    }
}

fn check_metadata(m: &serde_json::Value) {
    assert!(m.is_object() && m.to_string().len() <= MAX_METADATA_BYTES);
}

/// Accepted limits are ones the limiter can keep: a rate each, names that fit a header and a
/// Redis key, each once, at most ten.
fn check_limits(limits: &[latchkey_core::ratelimit::NamedLimit]) {
    assert!(limits.len() <= latchkey_core::ratelimit::MAX_LIMITS);
    for (i, l) in limits.iter().enumerate() {
        assert!(l.rate().is_ok(), "accepted limit {l:?} has no rate");
        assert!(latchkey_core::ratelimit::valid_name(&l.name), "{:?}", l.name);
        assert!(limits[..i].iter().all(|o| o.name != l.name), "{:?} twice", l.name);
    }
}

/// Accepted credits are a balance and a refill within bounds, a day only for a monthly one.
fn check_credits(c: Option<&latchkey_core::credits::Credits>) {
    use latchkey_core::credits::{Interval, MAX_CREDITS};
    let Some(c) = c else { return };
    assert!((0..=MAX_CREDITS).contains(&c.remaining), "{c:?}");
    if let Some(r) = c.refill {
        assert!((1..=MAX_CREDITS).contains(&r.amount), "{c:?}");
        match (r.interval, r.day) {
            (Interval::Daily, d) => assert!(d.is_none(), "{c:?}"),
            (Interval::Monthly, Some(d)) => assert!((1..=31).contains(&d), "{c:?}"),
            (Interval::Monthly, None) => {}
        }
        // The calendar never fails for an accepted refill, whatever the time.
        let now = latchkey_server::now();
        assert!(r.last_boundary(now) <= now && now < r.next_boundary(now));
    }
}

/// `service::keys::create`'s field checks, in a workspace with `max_ttl`.
fn create_key(i: &Issuer<'_>, b: &keys::CreateKeyRequest, max_ttl: Option<i64>) {
    let key_type = b.r#type.unwrap_or(KeyType::Secret);
    let owner_id = b.owner_id.clone().unwrap_or_else(|| ISSUER_ID.to_owned());
    let mut v = Validator::new();
    let _ = ids::is_id(ids::USER, &owner_id);
    let service::keys::NewKeyFields {
        name,
        permissions,
        allowed_origins,
        allowed_ips,
        metadata,
        expires_at,
        ratelimits,
        credits,
    } = service::keys::new_key_fields(&mut v, i, &owner_id, key_type, b, max_ttl);
    if v.finish().is_ok() {
        check_limits(&ratelimits);
        check_credits(credits.as_ref());
        check_name(&name);
        check_within(i, permissions.as_ref(), &allowed_ips, expires_at);
        check_origins(&allowed_origins);
        check_ips(&allowed_ips);
        check_metadata(&metadata);
        let now = latchkey_server::now();
        if let Some(e) = expires_at {
            assert!(e > now - 5, "expiry {e} in the past");
        }
        if let Some(max) = max_ttl {
            assert!(
                expires_at.is_some_and(|e| e <= now + max),
                "past the workspace maximum"
            );
        }
    }
}

/// Mirrors `service::keys::update` up to its `v.finish()`, for a secret key of the issuer's owner.
fn update_key(i: &Issuer<'_>, b: &keys::UpdateKeyRequest) {
    let mut v = Validator::new();
    let name = b.name.as_deref().map(|n| v.name("name", n));
    let permissions = b
        .permissions
        .as_ref()
        .map(|p| i.restriction(&mut v, ISSUER_ID, p.as_deref()));
    let mut expires_at = None;
    if let Some(e) = &b.expires_at {
        let requested = match e {
            Some(s) => parse_time(&mut v, "expires_at", s)
                .and_then(|t| service::keys::expiry(&mut v, "expires_at", Some(t), None)),
            None => {
                if !i.may_clear_expiry() {
                    v.error(
                        "expires_at",
                        "must not be later than the expiry of the credential",
                    );
                }
                None
            }
        };
        expires_at = Some(i.expiry(&mut v, "expires_at", requested));
    }
    let origins = b.allowed_origins.as_ref().map(|o| {
        if !o.is_empty() {
            v.error(
                "allowed_origins",
                "only publishable keys take allowed_origins",
            );
        }
        v.origins("allowed_origins", o)
    });
    let ips = b.allowed_ips.as_ref().map(|ips| {
        let requested = v.ips("allowed_ips", ips);
        i.ips(&mut v, "allowed_ips", Some(requested))
    });
    if let Some(m) = &b.metadata {
        v.metadata("metadata", m);
    }
    if v.finish().is_ok() {
        if let Some(n) = &name {
            check_name(n);
        }
        if let Some(Some(p)) = &permissions {
            check_within(i, Some(p), &i.allowed_ips, i.expires_at);
        }
        if let Some(e) = expires_at {
            check_within(i, None, &i.allowed_ips, e);
        }
        if let Some(o) = &origins {
            assert!(o.is_empty(), "origins on a secret key");
        }
        if let Some(ips) = &ips {
            check_within(i, None, ips, i.expires_at);
            check_ips(ips);
        }
        if let Some(m) = &b.metadata {
            check_metadata(m);
        }
    }
}

/// Mirrors `service::users::create`'s field checks.
fn create_user(b: &users::CreateUserRequest) {
    let mut v = Validator::new();
    let email = v.email("email", &b.email);
    let name = v.name("name", &b.name);
    if let Some(p) = &b.password {
        v.password("password", p);
    }
    if v.finish().is_ok() {
        check_name(&name);
        assert_eq!(email, email.to_lowercase());
        let (local, domain) = email.split_once('@').expect("an email has an @");
        assert!(!local.is_empty() && !domain.is_empty() && !domain.contains('@'));
        if let Some(p) = &b.password {
            assert!((12..=1024).contains(&p.chars().count()));
        }
    }
}

/// Mirrors `service::workspaces::update`'s permission check: publishable keys never get
/// Latchkey's own permissions.
fn update_workspace(b: &workspaces::UpdateWorkspaceRequest) {
    let mut v = Validator::new();
    let name = b.name.as_deref().map(|n| v.name("name", n));
    let set = b.publishable_permissions.as_deref().map(|list| {
        let set = v.permissions("publishable_permissions", list);
        if set.iter().any(Permission::is_latchkey) {
            v.error(
                "publishable_permissions",
                "publishable keys can never hold latchkey:",
            );
        }
        set
    });
    if v.finish().is_ok() {
        if let Some(n) = &name {
            check_name(n);
        }
        if let Some(set) = &set {
            for p in [
                latchkey_core::permission::VERIFY,
                latchkey_core::permission::KEYS_MANAGE_ALL,
            ] {
                assert!(
                    !set.allows_str(p),
                    "publishable permissions {set:?} reach {p}"
                );
            }
        }
    }
}

/// Mirrors `service::workspaces::put_role` for a role other than `admin`.
fn put_role(i: &Issuer<'_>, b: &workspaces::PutRoleRequest) {
    let mut v = Validator::new();
    let perms = v.permissions("permissions", &b.permissions);
    let admin = PermissionSet::all();
    assert!(i
        .may_set_role(&mut v, "permissions", "developer", &b.permissions, &admin)
        .is_ok());
    if v.finish().is_ok() {
        check_within(i, Some(&perms), &i.allowed_ips, i.expires_at);
        assert_eq!(perms.iter().count(), {
            let mut s: Vec<_> = b.permissions.clone();
            s.sort();
            s.dedup();
            s.len()
        });
    }
}

/// Mirrors `service::workspaces::create_grant`'s permission check.
fn create_grant(i: &Issuer<'_>, b: &workspaces::CreateGrantRequest) {
    let mut v = Validator::new();
    let parsed = Permission::parse(&b.permission);
    match &parsed {
        Ok(p) => i.may_grant(&mut v, "permission", p),
        Err(e) => v.error("permission", e.0),
    }
    let _ = ids::is_id(ids::USER, &b.user_id);
    if v.finish().is_ok() {
        let p = parsed.expect("validated");
        assert!(i.effective.allows(&p), "granted {p:?} the issuer lacks");
    }
}

/// Mirrors `service::tokens::exchange` and `service::tokens::narrowing` (the issuer standing for the key).
fn exchange(i: &Issuer<'_>, b: &tokens::ExchangeRequest) {
    let mut v = Validator::new();
    let ttl = b.ttl_seconds.unwrap_or(3600);
    v.check(ttl > 0, "ttl_seconds", "must be positive");
    let scope = b.permissions.as_deref().map(|list| {
        let set = v.permissions("permissions", list);
        for (n, p) in list.iter().enumerate() {
            if Permission::parse(p).is_ok_and(|p| !i.effective.allows(&p)) {
                v.error(
                    &format!("permissions[{n}]"),
                    "exceeds the permissions of the API key",
                );
            }
        }
        set
    });
    if v.finish().is_ok() {
        check_within(i, scope.as_ref(), &i.allowed_ips, i.expires_at);
        let now = latchkey_server::now();
        assert!(i.token_expiry(now, ttl, None) > now || i.expires_at.is_some_and(|e| e <= now));
    }
}

/// Mirrors `verify::verify`'s checks of its input.
fn verify_request(b: &verify::VerifyRequest) {
    let mut v = Validator::new();
    let given = [&b.credential, &b.key, &b.access_token]
        .iter()
        .filter(|c| c.is_some())
        .count();
    let one = matches!(
        (&b.credential, &b.key, &b.access_token),
        (Some(_), None, None)
    ) || (b.credential.is_none() && (b.key.is_some() || b.access_token.is_some()));
    if !one {
        v.error("credential", "give one of credential, key or access_token");
    }
    let required = v.permissions("permissions", b.permissions.as_deref().unwrap_or_default());
    let ip = b.ip.as_deref().and_then(|s| match s.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            v.error("ip", "must be an IP address");
            None
        }
    });
    if v.finish().is_ok() {
        assert!((1..=2).contains(&given));
        assert_eq!(ip.is_some(), b.ip.is_some());
        for p in required.iter() {
            assert!(Permission::parse(p.as_str()).is_ok());
        }
    }
}
