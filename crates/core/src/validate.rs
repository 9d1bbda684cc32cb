//! Field validation shared by every write: collects all problems at once so a 422 lists them all.

use crate::permission::{Permission, PermissionSet};
use ipnet::IpNet;
use serde::Serialize;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_METADATA_BYTES: usize = 4096;
/// Longest list of permissions, origins or addresses a request may carry.
pub const MAX_LIST: usize = 100;
pub const MAX_EMAIL_CHARS: usize = 254;
pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 1024;
/// Longest URL a request may carry (a portal session's `return_url`).
pub const MAX_URL_CHARS: usize = 2048;

#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    pub fn check(&mut self, ok: bool, field: &str, message: &str) {
        if !ok {
            self.error(field, message);
        }
    }

    /// Names are 1–100 characters as sent (so the OpenAPI `maxLength` is the rule), not only
    /// white space, no control characters; surrounding white space is trimmed.
    pub fn name(&mut self, field: &str, value: &str) -> String {
        let v = value.trim();
        if v.is_empty() || value.chars().count() > MAX_NAME_CHARS {
            self.error(field, "must be 1 to 100 characters");
        } else if v.chars().any(char::is_control) {
            self.error(field, "must not contain control characters");
        }
        v.to_owned()
    }

    /// Emails are compared case-insensitively, so they are stored lowercased.
    pub fn email(&mut self, field: &str, value: &str) -> String {
        // Counted in characters as sent, as the OpenAPI document's `maxLength` counts them (not
        // in bytes, and before trimming and lowercasing, which change the count).
        let chars = value.chars().count();
        let v = value.trim().to_lowercase();
        let ok = chars <= MAX_EMAIL_CHARS
            && !v.chars().any(|c| c.is_whitespace() || c.is_control())
            && v.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && !domain.is_empty() && !domain.contains('@')
            });
        self.check(ok, field, "must be an email address");
        v
    }

    pub fn password(&mut self, field: &str, value: &str) {
        let n = value.chars().count();
        self.check(
            (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n),
            field,
            "must be 12 to 1024 characters",
        );
    }

    pub fn permissions(&mut self, field: &str, values: &[String]) -> PermissionSet {
        if values.len() > MAX_LIST {
            self.error(field, "at most 100 permissions");
        }
        let mut ok = Vec::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            match Permission::parse(v) {
                Ok(p) => ok.push(p),
                Err(e) => self.error(&format!("{field}[{i}]"), e.0),
            }
        }
        PermissionSet::new(ok)
    }

    /// Browser origins: `scheme://host[:port]`, optionally `https://*.example.com`.
    pub fn origins(&mut self, field: &str, values: &[String]) -> Vec<String> {
        if values.len() > MAX_LIST {
            self.error(field, "at most 100 origins");
        }
        let mut out = Vec::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            let norm = v.trim().trim_end_matches('/').to_ascii_lowercase();
            if is_origin(&norm) {
                out.push(norm);
            } else {
                self.error(
                    &format!("{field}[{i}]"),
                    "must be an origin like https://app.example.com",
                );
            }
        }
        out
    }

    pub fn ips(&mut self, field: &str, values: &[String]) -> Vec<IpNet> {
        if values.len() > MAX_LIST {
            self.error(field, "at most 100 addresses");
        }
        let mut out = Vec::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            let parsed = v
                .parse::<IpNet>()
                .or_else(|_| v.parse::<IpAddr>().map(IpNet::from));
            match parsed {
                Ok(net) => out.push(net.trunc()),
                Err(_) => self.error(
                    &format!("{field}[{i}]"),
                    "must be an IP address or CIDR block",
                ),
            }
        }
        out
    }

    /// A link back to somewhere else that Latchkey shows a person (a portal session's
    /// `return_url`): an absolute `http` or `https` URL with a host, at most
    /// [`MAX_URL_CHARS`] characters as sent, with no white space or control characters (which
    /// URL parsers drop silently) and no user name or password (which make a link look like it
    /// goes to a host it does not). Returns it normalised, as it is to be stored and shown.
    pub fn link_url(&mut self, field: &str, value: &str) -> Option<String> {
        if value.chars().count() > MAX_URL_CHARS {
            self.error(field, "must be at most 2048 characters");
            return None;
        }
        let parsed = url::Url::parse(value).ok().filter(|u| {
            !value.chars().any(|c| c.is_whitespace() || c.is_control())
                && matches!(u.scheme(), "http" | "https")
                && u.host_str().is_some_and(|h| !h.is_empty())
                && u.username().is_empty()
                && u.password().is_none()
        });
        match parsed {
            Some(u) => Some(u.into()),
            None => {
                self.error(
                    field,
                    "must be an absolute http or https URL like https://app.example.com/settings",
                );
                None
            }
        }
    }

    pub fn metadata(&mut self, field: &str, value: &serde_json::Value) {
        if !value.is_object() {
            self.error(field, "must be a JSON object");
        } else if value.to_string().len() > MAX_METADATA_BYTES {
            self.error(field, "must be at most 4096 bytes of JSON");
        }
    }

    /// A key's or a member's rate limits (SPEC §11.1): valid names, each once, at most
    /// [`MAX_LIMITS`](crate::ratelimit::MAX_LIMITS), each a rate the limiter can keep.
    pub fn ratelimits(&mut self, field: &str, limits: &[crate::ratelimit::NamedLimit]) {
        use crate::ratelimit::{valid_name, RateError, MAX_LIMITS};
        if limits.len() > MAX_LIMITS {
            self.error(field, format!("at most {MAX_LIMITS} limits"));
        }
        for (i, l) in limits.iter().enumerate() {
            if !valid_name(&l.name) {
                self.error(
                    &format!("{field}[{i}].name"),
                    "1 to 64 letters, digits, '_', '-' or '.'",
                );
            } else if limits[..i].iter().any(|o| o.name == l.name) {
                self.error(&format!("{field}[{i}].name"), "each name once");
            }
            match l.rate() {
                Ok(_) => {}
                Err(RateError::ZeroLimit) => {
                    self.error(&format!("{field}[{i}].limit"), "at least 1")
                }
                Err(RateError::Window) => self.error(
                    &format!("{field}[{i}].window_seconds"),
                    "1 to 31622400 seconds (366 days)",
                ),
                Err(RateError::TooDense) => self.error(
                    &format!("{field}[{i}].limit"),
                    "at most one request per microsecond of the window",
                ),
            }
        }
    }

    pub fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }
}

fn is_origin(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.contains('/') {
        return false;
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => (h, Some(p)),
        _ => (rest, None),
    };
    if port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return false;
    }
    let host = host.strip_prefix("*.").unwrap_or(host);
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'))
}

/// Whether a request's `Origin` header matches an allow-list entry (exact, or `*.` subdomain).
pub fn origin_allowed(allowed: &[String], origin: &str) -> bool {
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    allowed.iter().any(|a| match a.split_once("://*.") {
        Some((scheme, suffix)) => origin
            .strip_prefix(scheme)
            .and_then(|r| r.strip_prefix("://"))
            .is_some_and(|host| host.ends_with(&format!(".{suffix}"))),
        None => *a == origin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_error() {
        let mut v = Validator::new();
        v.name("name", "");
        v.email("email", "nope");
        v.permissions("permissions", &["ok:read".into(), "bad perm".into()]);
        v.origins("allowed_origins", &["ftp://x".into()]);
        v.ips("allowed_ips", &["10.0.0.0/8".into(), "999.1.1.1".into()]);
        v.metadata("metadata", &serde_json::json!([1]));
        let errs = v.finish().unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "name",
                "email",
                "permissions[1]",
                "allowed_origins[0]",
                "allowed_ips[1]",
                "metadata"
            ]
        );
    }

    #[test]
    fn names_and_emails() {
        let mut v = Validator::new();
        assert_eq!(v.name("n", "  Prod key "), "Prod key");
        assert_eq!(v.email("e", "Ada@Example.COM"), "ada@example.com");
        v.name("n", &"x".repeat(100));
        assert!(v.finish().is_ok());
        let mut v = Validator::new();
        v.name("n", &"x".repeat(101));
        v.name("n2", "tab\there");
        assert_eq!(v.finish().unwrap_err().len(), 2);
    }

    #[test]
    fn link_urls_are_absolute_http_or_https() {
        let mut v = Validator::new();
        assert_eq!(
            v.link_url("u", "https://App.example.com/settings?tab=api#keys")
                .as_deref(),
            Some("https://app.example.com/settings?tab=api#keys")
        );
        assert_eq!(
            v.link_url("u", "http://localhost:3000").as_deref(),
            Some("http://localhost:3000/")
        );
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS - 20));
        assert_eq!(long.chars().count(), MAX_URL_CHARS);
        assert!(v.link_url("u", &long).is_some());
        assert!(v.finish().is_ok());
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(document.cookie)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox(1)",
            "ftp://example.com/",
            "file:///etc/passwd",
            "//evil.example.com/",
            "/settings",
            "example.com",
            "https://",
            "https://good.example.com@evil.example.com/",
            "https://user:pw@example.com/",
            "https://exa mple.com/",
            "https://example.com/\n",
            "java\tscript:alert(1)",
            " https://example.com/",
            "",
        ] {
            let mut v = Validator::new();
            assert_eq!(v.link_url("return_url", bad), None, "{bad:?}");
            let errs = v.finish().unwrap_err();
            assert_eq!(errs[0].field, "return_url");
        }
        let mut v = Validator::new();
        let too_long = format!("{long}a");
        assert_eq!(v.link_url("return_url", &too_long), None);
        assert_eq!(
            v.finish().unwrap_err()[0].message,
            "must be at most 2048 characters"
        );
    }

    #[test]
    fn origin_matching() {
        let mut v = Validator::new();
        let allowed = v.origins(
            "o",
            &[
                "https://App.example.com/".into(),
                "https://*.shop.io".into(),
                "http://localhost:3000".into(),
            ],
        );
        assert!(v.finish().is_ok());
        assert!(origin_allowed(&allowed, "https://app.example.com"));
        assert!(origin_allowed(&allowed, "https://eu.shop.io"));
        assert!(origin_allowed(&allowed, "http://localhost:3000"));
        assert!(!origin_allowed(&allowed, "https://shop.io"));
        assert!(!origin_allowed(&allowed, "https://evilshop.io"));
        assert!(!origin_allowed(&allowed, "http://app.example.com"));
        assert!(!origin_allowed(
            &allowed,
            "https://app.example.com.evil.com"
        ));
    }
}
