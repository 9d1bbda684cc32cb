//! What the OpenAPI document says a field accepts, built from the same constants the validators
//! use (`latchkey_core::{ids, validate, permission, roles}`), so the document cannot drift from
//! the checks. Each type here is a schema only: request and response types point at it with
//! `#[schema(value_type = …)]`, parameters with `inline(…)`.

use latchkey_core::roles::InstanceRole;
use latchkey_core::{ids, permission, roles, validate, Denial, Environment, KeyType};
use latchkey_store::KeyStatus;
use serde_json::json;
use std::borrow::Cow;
use utoipa::openapi::schema::{
    AnyOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// Characters `char::is_control` refuses (Unicode `Cc`), as a regex class body.
const CONTROL: &str = r"\x00-\x1f\x7f-\x9f";
/// What `str::trim` removes (Unicode `White_Space`), spelled out: `\s` differs between regex
/// dialects (ECMA's includes U+FEFF, which Rust does not trim).
const SPACE: &str = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn strings(values: impl IntoIterator<Item = &'static str>) -> ObjectBuilder {
    string().enum_values(Some(values))
}

/// `{prefix}_` then the base62 body of `ids::new_id`.
fn id_pattern(prefixes: &[&str]) -> String {
    format!(
        "^({})_[0-9A-Za-z]{{{}}}$",
        prefixes.join("|"),
        ids::BODY_LEN
    )
}

fn id(prefixes: &[&str], description: &str) -> RefOr<Schema> {
    let example = format!("{}_0VcaA1b2C3d4E5f6G7h8", prefixes[0]);
    string()
        .pattern(Some(id_pattern(prefixes)))
        .min_length(Some(prefixes[0].len() + 1 + ids::BODY_LEN))
        .max_length(Some(
            prefixes.iter().map(|p| p.len()).max().unwrap_or(0) + 1 + ids::BODY_LEN,
        ))
        .description(Some(description))
        .examples([json!(example)])
        .into()
}

/// Declares a schema-only type: `schema!(Name, "Name", || …)`.
macro_rules! schema {
    ($(#[$doc:meta])* $ty:ident, $build:expr) => {
        $(#[$doc])*
        pub struct $ty;
        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                let build: fn() -> RefOr<Schema> = $build;
                build()
            }
        }
        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($ty))
            }
        }
    };
}

schema!(KeyId, || id(&[ids::KEY], "An API key's id (not the key)."));
schema!(UserId, || id(&[ids::USER], "A user's id."));
schema!(WorkspaceId, || id(&[ids::WORKSPACE], "A workspace's id."));
schema!(TokenId, || id(&[ids::TOKEN], "An access token's id."));
schema!(EventId, || id(&[ids::EVENT], "An audit event's id."));
schema!(GrantId, || id(&[ids::GRANT], "A grant's id."));
schema!(WebhookId, || id(
    &[ids::WEBHOOK],
    "A webhook endpoint's id."
));
schema!(WebhookDeliveryId, || id(
    &[ids::DELIVERY],
    "A webhook delivery's id."
));
schema!(
    /// An event's name (`key.revoked`), every event of a group (`key.*`), or every event (`*`).
    WebhookEventFilter,
    || {
        let mut all = vec!["*".to_owned()];
        for e in latchkey_core::webhooks::EVENTS {
            let group = format!("{}.*", e.split_once('.').map_or(*e, |(g, _)| g));
            if !all.contains(&group) {
                all.push(group);
            }
        }
        all.extend(latchkey_core::webhooks::EVENTS.iter().map(|e| e.to_string()));
        string().enum_values(Some(all)).into()
    }
);
schema!(WebhookDeliveryStatus, || strings([
    "pending",
    "succeeded",
    "failed"
])
.into());
schema!(
    /// What `GET /v1/me` calls the credential: the token's id, else the key's.
    CredentialId,
    || id(&[ids::KEY, ids::TOKEN], "A key's or an access token's id.")
);
schema!(
    /// An audit actor filter: the user, or the key or token that acted.
    ActorId,
    || id(
        &[ids::USER, ids::KEY, ids::TOKEN],
        "A user id, or the id of the key or token that acted."
    )
);

schema!(
    /// `Validator::name`: surrounding white space is trimmed; what is left is 1 to 100 characters,
    /// none of them a control character.
    Name,
    || string()
        .min_length(Some(1))
        .max_length(Some(validate::MAX_NAME_CHARS))
        .pattern(Some(format!(
            r"^[{SPACE}]*[^{SPACE}{CONTROL}]([^{CONTROL}]*[^{SPACE}{CONTROL}])?[{SPACE}]*$"
        )))
        .description(Some(format!(
            "1 to {} characters, not only white space, no control characters.",
            validate::MAX_NAME_CHARS
        )))
        .examples([json!("Production server")])
        .into()
);

schema!(
    /// `Validator::email`: one `@` with something on each side, no white space.
    Email,
    || string()
        .min_length(Some(3))
        .max_length(Some(validate::MAX_EMAIL_CHARS))
        .pattern(Some(format!(
            r"^[{SPACE}]*[^@{SPACE}{CONTROL}]+@[^@{SPACE}{CONTROL}]+[{SPACE}]*$"
        )))
        .description(Some("Compared case-insensitively; stored lowercased."))
        .examples([json!("ada@example.com")])
        .into()
);

schema!(Password, || string()
    .min_length(Some(validate::MIN_PASSWORD_CHARS))
    .max_length(Some(validate::MAX_PASSWORD_CHARS))
    .description(Some(format!(
        "{} to {} characters.",
        validate::MIN_PASSWORD_CHARS,
        validate::MAX_PASSWORD_CHARS
    )))
    .into());

/// `Permission::validate`: 1 to 8 `:`-separated segments, each `*` or up to 64 of
/// `[A-Za-z0-9_.-]`, 200 characters at most.
pub fn permission_pattern() -> String {
    let seg = format!(r"(\*|[A-Za-z0-9_.\-]{{1,{}}})", permission::MAX_SEGMENT_LEN);
    format!("^{seg}(:{seg}){{0,{}}}$", permission::MAX_SEGMENTS - 1)
}

schema!(Permission, || {
    string()
    .min_length(Some(1))
    .max_length(Some(permission::MAX_LEN))
    .pattern(Some(permission_pattern()))
    .description(Some(
        "`resource:action` or `resource:id:action`; `*` matches one segment, a trailing `*` the rest."
    ))
    .examples([json!("documents:read")])
    .into()
});

schema!(
    /// Restriction and role lists.
    PermissionList,
    || ArrayBuilder::new()
        .items(Permission::schema())
        .max_items(Some(validate::MAX_LIST))
        .into()
);

schema!(RoleName, || {
    string()
    .min_length(Some(1))
    .max_length(Some(roles::MAX_NAME_LEN))
    .pattern(Some(format!(
        "^[a-z][a-z0-9_-]{{0,{}}}$",
        roles::MAX_NAME_LEN - 1
    )))
    .description(Some(
        "Lowercase letters, digits, `_` and `-`, starting with a letter; built in: admin, developer, member, viewer."
    ))
    .examples([json!(roles::DEVELOPER)])
    .into()
});

schema!(
    /// The audit log's `action` filter: any text (an unknown action matches nothing), but no
    /// control character, which the server refuses in any URL (400).
    AuditAction,
    || string()
        .pattern(Some(r"^[^\x00-\x1f\x7f]*$"))
        .examples([json!("key.revoked")])
        .into()
);

schema!(
    /// Every time the API reads or writes: RFC 3339 (`parse_time`, `views::ts`).
    Timestamp,
    || string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .description(Some("RFC 3339; answers are always UTC, to the second."))
        .examples([json!("2030-01-31T00:00:00Z")])
        .into()
);

schema!(EnvironmentName, || strings(
    Environment::ALL.map(Environment::as_str)
)
.into());
schema!(KeyTypeName, || strings(KeyType::ALL.map(KeyType::as_str))
    .into());
schema!(
    /// A user's instance role (SPEC §5.1); `null` where a field takes none.
    InstanceRoleName,
    || strings(InstanceRole::ALL.map(InstanceRole::as_str)).into()
);
schema!(KeyStatusName, || strings(
    KeyStatus::ALL.map(KeyStatus::as_str)
)
.into());
schema!(TokenStatus, || strings(["active", "expired", "revoked"])
    .into());
schema!(
    /// `POST /v1/verify`'s `code`.
    VerifyCode,
    || strings(
        std::iter::once("VALID").chain(Denial::ALL.map(Denial::verify_code))
    )
    .into()
);
schema!(BearerType, || strings(["Bearer"]).into());
schema!(CredentialType, || strings(["api_key", "access_token"])
    .into());

schema!(
    /// `Validator::metadata`.
    Metadata,
    || ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(format!(
            "Any JSON object, at most {} bytes serialized.",
            validate::MAX_METADATA_BYTES
        )))
        .into()
);

/// 0 to 65535, as `u16` parses it.
const PORT: &str =
    r"([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])";

schema!(
    /// `Validator::origins` (which also takes upper case and a trailing `/`).
    Origin,
    || string()
        .pattern(Some(format!(
            r"^https?://(\*\.)?([A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*|\[[0-9A-Fa-f:.]+\])(:{PORT})?$"
        )))
        .description(Some(
            "`scheme://host[:port]`, http or https; `https://*.example.com` allows every subdomain."
        ))
        .examples([json!("https://app.example.com")])
        .into()
);

schema!(
    /// `Validator::link_url`: an absolute http or https URL with a host and no user name or
    /// password.
    ReturnUrl,
    || string()
        .format(Some(SchemaFormat::Custom("uri".into())))
        .max_length(Some(validate::MAX_URL_CHARS))
        .pattern(Some(format!(
            r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#@{SPACE}{CONTROL}]+([/?#][^{SPACE}{CONTROL}]*)?$"
        )))
        .description(Some(format!(
            "An absolute http or https URL, at most {} characters, no user name or password.",
            validate::MAX_URL_CHARS
        )))
        .examples([json!("https://app.example.com/settings/api")])
        .into()
);

const OCTET: &str = r"(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";

fn ipv4() -> ObjectBuilder {
    string().format(Some(SchemaFormat::KnownFormat(KnownFormat::Ipv4)))
}

fn ipv6() -> ObjectBuilder {
    string().format(Some(SchemaFormat::KnownFormat(KnownFormat::Ipv6)))
}

schema!(IpAddress, || AnyOfBuilder::new()
    .item(ipv4())
    .item(ipv6())
    .description(Some("An IPv4 or IPv6 address."))
    .into());

schema!(
    /// `Validator::ips`: an address or a CIDR block (IPv6 blocks are accepted too).
    IpNetwork,
    || AnyOfBuilder::new()
        .item(ipv4())
        .item(ipv6())
        .item(string().pattern(Some(format!(
            r"^({OCTET}\.){{3}}{OCTET}/(3[0-2]|[12]?[0-9])$"
        ))))
        .description(Some(
            "An IP address or a CIDR block such as 10.0.0.0/8 (IPv6 blocks too)."
        ))
        .examples([json!("10.0.0.0/8")])
        .into()
);

fn list(item: RefOr<Schema>) -> ArrayBuilder {
    ArrayBuilder::new()
        .items(item)
        .max_items(Some(validate::MAX_LIST))
}

schema!(OriginList, || list(Origin::schema()).into());
schema!(IpNetworkList, || list(IpNetwork::schema()).into());

schema!(
    /// `service::page_request`: 1 to 500, default 50.
    Limit,
    || ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(crate::service::MAX_PAGE_LIMIT))
        .default(Some(json!(crate::service::DEFAULT_PAGE_LIMIT)))
        .into()
);

fn limit_name() -> ObjectBuilder {
    string()
        .pattern(Some(format!(
            "^[A-Za-z0-9_.-]{{1,{}}}$",
            latchkey_core::ratelimit::MAX_NAME_LEN
        )))
        .examples([json!("burst")])
}

schema!(
    /// `Validator::ratelimits`: a key's or a member's named rate limits (SPEC §11.1).
    RateLimitList,
    || ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .property("name", limit_name())
                .required("name")
                .property(
                    "limit",
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(1))
                        .description(Some("Requests allowed per window (and at once, from rest)."))
                )
                .required("limit")
                .property(
                    "window_seconds",
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(1))
                        .maximum(Some(latchkey_core::ratelimit::MAX_WINDOW_SECONDS))
                )
                .required("window_seconds")
                .property(
                    "auto_apply",
                    ObjectBuilder::new()
                        .schema_type(Type::Boolean)
                        .default(Some(json!(true)))
                        .description(Some(
                            "Charged on every verification; otherwise only when a verify request names it."
                        ))
                )
                .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(false)))
        )
        .max_items(Some(latchkey_core::ratelimit::MAX_LIMITS))
        .into()
);

schema!(
    /// `Validator::credits`: a balance and an optional refill (SPEC §11.2).
    CreditsSchema,
    || ObjectBuilder::new()
        .property(
            "remaining",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0))
                .maximum(Some(latchkey_core::credits::MAX_CREDITS))
        )
        .required("remaining")
        .property(
            "refill",
            ObjectBuilder::new()
                // `null` (or leaving it out): no refill.
                .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                    Type::Object,
                    Type::Null,
                ]))
                .property("interval", strings(["daily", "monthly"]))
                .required("interval")
                .property(
                    "amount",
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(1))
                        .maximum(Some(latchkey_core::credits::MAX_CREDITS))
                        .description(Some("The balance each refill sets."))
                )
                .required("amount")
                .property(
                    "day",
                    ObjectBuilder::new()
                        // `null` (or leaving it out): the 1st.
                        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                            Type::Integer,
                            Type::Null,
                        ]))
                        .minimum(Some(1))
                        .maximum(Some(31))
                        .description(Some(
                            "Monthly only, default 1: the day of the month (UTC); past the month's end, its last day."
                        ))
                )
                .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(false)))
        )
        .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(false)))
        .into()
);

schema!(
    /// `POST /v1/verify`'s `ratelimits`: limits to charge besides the auto-applied ones.
    LimitChargeList,
    || ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .property("name", limit_name())
                .required("name")
                .property(
                    "cost",
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(0))
                        .maximum(Some(crate::routes::verify::MAX_COST))
                        .default(Some(json!(1)))
                )
                .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(false)))
        )
        .max_items(Some(2 * latchkey_core::ratelimit::MAX_LIMITS))
        .into()
);

schema!(
    /// `POST /v1/keys/{id}/roll`.
    GraceSeconds,
    || ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .maximum(Some(crate::service::keys::MAX_GRACE_SECONDS))
        .default(Some(json!(0)))
        .into()
);

schema!(
    /// A workspace's `max_key_ttl_seconds`.
    KeyTtlSeconds,
    || ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(crate::service::workspaces::MIN_TTL_SECONDS))
        .maximum(Some(crate::service::workspaces::MAX_TTL_SECONDS))
        .into()
);

// The OAuth endpoints read their form and write their answers by hand (a repeated parameter is
// refused, RFC 6749 §3.2; introspection's shape depends on `active`), so their shapes are
// described here, for the document only.

/// `POST /oauth/token` (RFC 6749 §4.4): the client authenticates by HTTP Basic or by
/// `client_id` + `client_secret` in the form, never both.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ClientCredentialsForm {
    #[schema(pattern = "^client_credentials$")]
    grant_type: String,
    /// Space-separated permissions, each within what the key may do.
    scope: Option<String>,
    /// The key's id.
    #[schema(value_type = Option<KeyId>)]
    client_id: Option<String>,
    /// The API key itself.
    client_secret: Option<String>,
}

/// `POST /oauth/introspect` (RFC 7662) and `POST /oauth/revoke` (RFC 7009).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TokenForm {
    token: String,
    /// Only a hint; it changes nothing.
    token_type_hint: Option<String>,
    /// With `client_secret` (or HTTP Basic), the key's id, which must match it (401 if not);
    /// beside a Bearer or X-API-Key credential it is not read.
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// RFC 7662 §2.2: exactly `{"active": false}` when the token is not active (or not the
/// caller's to see); every other member only when it is.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Introspection {
    active: bool,
    scope: Option<String>,
    #[schema(value_type = Option<KeyId>)]
    client_id: Option<String>,
    #[schema(value_type = Option<UserId>)]
    sub: Option<String>,
    /// Unix seconds.
    exp: Option<i64>,
    iat: Option<i64>,
    iss: Option<String>,
    aud: Option<String>,
    #[schema(value_type = Option<TokenId>)]
    jti: Option<String>,
    #[schema(value_type = Option<BearerType>)]
    token_type: Option<String>,
    #[schema(value_type = Option<WorkspaceId>)]
    workspace_id: Option<String>,
    #[schema(value_type = Option<EnvironmentName>)]
    environment: Option<String>,
}

/// RFC 7517: the Ed25519 public keys that sign access tokens.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct JwkSet {
    keys: Vec<Jwk>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Jwk {
    #[schema(pattern = "^OKP$")]
    kty: String,
    #[schema(pattern = "^Ed25519$")]
    crv: String,
    /// The public key, base64url.
    x: String,
    kid: String,
    #[schema(pattern = "^EdDSA$")]
    alg: String,
    #[schema(pattern = "^sig$")]
    r#use: String,
}

/// RFC 8414 authorization server metadata (the members Latchkey sets).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ServerMetadata {
    issuer: String,
    token_endpoint: String,
    jwks_uri: String,
    introspection_endpoint: String,
    revocation_endpoint: String,
    grant_types_supported: Vec<String>,
    response_types_supported: Vec<String>,
    token_endpoint_auth_methods_supported: Vec<String>,
    introspection_endpoint_auth_methods_supported: Vec<String>,
    revocation_endpoint_auth_methods_supported: Vec<String>,
    access_token_signing_alg_values_supported: Vec<String>,
    service_documentation: String,
}

/// Every schema above, for the document's components (parameters refer to them too).
pub fn components() -> Vec<(String, RefOr<Schema>)> {
    fn entry<T: ToSchema>() -> (String, RefOr<Schema>) {
        (T::name().into_owned(), T::schema())
    }
    vec![
        entry::<KeyId>(),
        entry::<UserId>(),
        entry::<WorkspaceId>(),
        entry::<TokenId>(),
        entry::<EventId>(),
        entry::<GrantId>(),
        entry::<WebhookId>(),
        entry::<WebhookDeliveryId>(),
        entry::<WebhookEventFilter>(),
        entry::<WebhookDeliveryStatus>(),
        entry::<CredentialId>(),
        entry::<ActorId>(),
        entry::<Name>(),
        entry::<Email>(),
        entry::<Password>(),
        entry::<Permission>(),
        entry::<PermissionList>(),
        entry::<RoleName>(),
        entry::<Timestamp>(),
        entry::<AuditAction>(),
        entry::<EnvironmentName>(),
        entry::<KeyTypeName>(),
        entry::<KeyStatusName>(),
        entry::<InstanceRoleName>(),
        entry::<TokenStatus>(),
        entry::<VerifyCode>(),
        entry::<BearerType>(),
        entry::<CredentialType>(),
        entry::<Metadata>(),
        entry::<Origin>(),
        entry::<ReturnUrl>(),
        entry::<OriginList>(),
        entry::<IpAddress>(),
        entry::<IpNetwork>(),
        entry::<IpNetworkList>(),
        entry::<Limit>(),
        entry::<GraceSeconds>(),
        entry::<RateLimitList>(),
        entry::<LimitChargeList>(),
        entry::<CreditsSchema>(),
        entry::<KeyTtlSeconds>(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::Validator;

    fn pattern_of<T: PartialSchema>() -> regex::Regex {
        let v = serde_json::to_value(T::schema()).unwrap();
        regex::Regex::new(v["pattern"].as_str().expect("a pattern")).unwrap()
    }

    /// At their edges, the patterns accept exactly what the validators accept.
    #[test]
    fn patterns_agree_with_the_validators() {
        let perm = pattern_of::<Permission>();
        let eight = ["a"; 8].join(":");
        let nine = ["a"; 9].join(":");
        let long_segment = "a".repeat(permission::MAX_SEGMENT_LEN + 1);
        for p in [
            "documents:read",
            "*",
            "a:*:b",
            "latchkey:keys:manage_own",
            "a.b-c_d:*",
            &eight,
            &nine,
            &long_segment,
            "",
            "a b",
            "a::b",
            "a:",
            ":a",
            "é",
            "a/b",
        ] {
            let server = latchkey_core::Permission::parse(p).is_ok();
            assert_eq!(perm.is_match(p), server, "{p:?}");
        }

        let name = pattern_of::<Name>();
        for n in [
            "Production",
            " padded ",
            "ünïcödé",
            "",
            "   ",
            "tab\there",
            "nul\0",
            "\u{85}x",
            " x\t",
            "a\u{85}b",
            "\u{feff}",
        ] {
            let mut v = Validator::new();
            v.name("name", n);
            assert_eq!(name.is_match(n), v.finish().is_ok(), "{n:?}");
        }

        let email = pattern_of::<Email>();
        for e in [
            "ada@example.com",
            "a@b",
            "ADA@EXAMPLE.COM",
            "no-at",
            "a@@b",
            "@b",
            "a@",
            "a b@c",
        ] {
            let mut v = Validator::new();
            v.email("email", e);
            assert_eq!(email.is_match(e), v.finish().is_ok(), "{e:?}");
        }

        let role = pattern_of::<RoleName>();
        for r in [
            "admin",
            "billing-reader",
            "r2_d2",
            "Admin",
            "2fa",
            "",
            &"a".repeat(51),
        ] {
            assert_eq!(role.is_match(r), roles::is_valid_name(r), "{r:?}");
        }

        let origin = pattern_of::<Origin>();
        for o in [
            "https://app.example.com",
            "http://localhost:3000",
            "https://*.shop.io",
            "http://[::1]:8080",
            "http://a:65535",
            "http://a:65536",
            "ftp://x",
            "https://a/b",
            "https://",
            "http://a:",
        ] {
            let mut v = Validator::new();
            v.origins("o", &[o.to_owned()]);
            // The pattern may be stricter than the validator (which lowercases and trims), never looser.
            if origin.is_match(o) {
                assert!(v.finish().is_ok(), "{o:?}");
            }
        }

        for prefix in [
            ids::KEY,
            ids::USER,
            ids::WORKSPACE,
            ids::TOKEN,
            ids::EVENT,
            ids::GRANT,
        ] {
            let re = regex::Regex::new(&id_pattern(&[prefix])).unwrap();
            let id = ids::new_id(prefix);
            assert!(re.is_match(&id) && ids::is_id(prefix, &id), "{id}");
            for bad in [
                &id[..id.len() - 1],
                &format!("{id}0"),
                &id.replacen('_', "-", 1),
            ] {
                assert!(!re.is_match(bad) && !ids::is_id(prefix, bad), "{bad}");
            }
        }
    }
}
