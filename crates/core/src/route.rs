//! The route table of SPEC §10.2: which permission a request needs, from its method and path.
//! One table serves forward auth, the gateway and the tower middleware, so they cannot disagree.
//!
//! # Syntax
//! `METHOD /path/{name}/... permission-template [keep_credentials]`, e.g.
//! `GET /documents/{id} document:{id}:read`, `POST /documents documents:write`,
//! `GET /health public`, `* /admin/** admin:*`.
//!
//! - `METHOD` is an HTTP method token (any case, stored upper-case) or `*` for every method.
//! - The path starts with `/`. A segment is a literal, `{name}` (exactly one non-empty segment;
//!   `name` is `[A-Za-z_][A-Za-z0-9_]*`, unique in the path) or `**` as the last segment (the rest
//!   of the path: zero or more segments). Empty segments are refused in a pattern (`//`, and a
//!   trailing `/` except the root `/` itself), because a request's trailing slash is ignored (see
//!   below). Literals may be percent-encoded and are compared decoded; `*`, `{`, `}`, white space,
//!   control characters, `?` and `#` must be percent-encoded in a literal, and a literal cannot be
//!   `.` or `..` (no request containing one is ever matched).
//! - The permission template is `public` (no credential asked) or a permission in which a whole
//!   segment may be `{name}`, a capture of the path. It is checked when parsed by putting `x` in
//!   every capture and running [`Permission::validate`]. `public` itself can therefore never be
//!   required as a permission; `Public`, `PUBLIC`… are refused as a likely typo.
//! - `keep_credentials`: the gateway forwards the credential instead of stripping it. It is
//!   allowed on public routes too, and carried in [`RouteDecision::Public`]: an upstream path with
//!   its own authentication (Basic auth on an OAuth token endpoint, say) is public to Latchkey but
//!   must still receive its `Authorization` header.
//!
//! # Matching a request
//! [`RouteTable::decide`] takes the method and the request target's path as received:
//!
//! 1. Anything from the first `?` or `#` is dropped. The path must then start with `/`.
//! 2. One trailing `/` is ignored (`/documents/x/` is decided as `/documents/x`): most upstreams
//!    serve both alike, and deciding them differently would let the slash reach a wider route
//!    or the default.
//! 3. The path is split on `/`, then each segment is percent-decoded on its own, so `%2F` stays
//!    inside its segment.
//! 4. **Refused outright** ([`RouteDecision::NotFound`], never the default, whatever the table):
//!    an empty segment (`//`), a bad percent escape (`%ZZ`, `%2`), and any segment that, decoded,
//!    is a dot segment, or would become one for an upstream that also splits on `%2F` or `\` or
//!    strips `;params` (`.`, `..`, `%2e%2e`, `..%2F`, `..\x`, `..;x`). An upstream may resolve
//!    such a path to one the table never saw.
//! 5. The method matches a route whose method is `*`, the same method (compared ignoring ASCII
//!    case, so `get` cannot dodge a `GET` route), or `GET` when the request is `HEAD` (servers
//!    commonly answer `HEAD` with the `GET` handler, so a `HEAD` must not get past a `GET` route).
//! 6. The path matches a route when each literal equals the decoded segment (exactly,
//!    case-sensitively), each `{capture}` has a segment, `**` takes whatever is left, and without
//!    `**` no segment is left over.
//! 7. Of the routes matching 5 and 6, the most specific wins, whatever the order they were given
//!    in. Paths first, segment by segment from the left: a literal beats a capture, a capture beats
//!    `**`, and a pattern that ends there beats one whose `**` matches nothing more (`/a` beats
//!    `/a/**` on `/a`). On the same path shape: the exact method beats `GET`-for-`HEAD`, which beats
//!    `*`. Two routes that could tie (same method, same shape up to capture names) are refused by
//!    [`RouteTable::new`], so the order is total and the winner unique.
//! 8. Only the winner's captures are then checked: each decoded value must be a valid permission
//!    segment (1 to 64 of `A-Z a-z 0-9 _ - .`, so never `:`, `*`, `/`, `{`, `}`, white space, a
//!    control character or non-ASCII) and neither `.` nor `..`; and the rendered permission must
//!    pass [`Permission::parse`] (it can still be too long). If not, the decision is
//!    [`RouteDecision::NotFound`]: **not** a less specific route and **not** the default. A value
//!    such as `secret;jsessionid=1` or `a%20b`, which some upstreams read as the document `secret`
//!    or `a b`, must not fall through to `/documents/** public` or `--default-permission public`.
//!    This holds for captures the template does not use and for public routes too.
//! 9. Nothing matched: the default ([`DefaultAccess`]) if configured, else
//!    [`RouteDecision::NotFound`].
//!
//! What the table cannot see: an upstream that compares paths case-insensitively, decodes twice
//! (`%252e`), strips `;params` from literals, or treats other characters as separators can
//! disagree with it on which route a path is. Without a default, an unmatched path is a 404, which
//! fails closed; a `public` default is only as safe as that agreement.

use crate::permission::{Permission, MAX_SEGMENT_LEN};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// The option word that keeps the credential on a forwarded request.
pub const KEEP_CREDENTIALS: &str = "keep_credentials";
/// The permission template of a route that needs no credential.
pub const PUBLIC: &str = "public";

/// Why a route, or a table of them, was refused. Each message names the part that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("route `{line}`: expected `METHOD /path permission [keep_credentials]`")]
    Syntax { line: String },
    #[error("route `{line}`: unknown option `{option}` (the only option is `keep_credentials`)")]
    UnknownOption { line: String, option: String },
    #[error("method `{method}`: {reason}")]
    Method { method: String, reason: String },
    #[error("path `{path}`: {reason}")]
    Path { path: String, reason: String },
    #[error("permission `{permission}`: {reason}")]
    Permission { permission: String, reason: String },
    #[error(
        "routes `{first}` and `{second}` have the same method and path shape, \
         so neither is more specific"
    )]
    Duplicate { first: String, second: String },
}

/// What a request needs, as decided by a [`RouteTable`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteDecision {
    /// No credential is asked. `keep_credentials`: the gateway forwards any credential sent.
    Public { keep_credentials: bool },
    /// A valid credential holding `permission`.
    Require {
        permission: Permission,
        keep_credentials: bool,
    },
    /// No route, or a path refused outright: answer 404.
    NotFound,
}

impl RouteDecision {
    /// The permission to demand, if any.
    pub fn permission(&self) -> Option<&Permission> {
        match self {
            RouteDecision::Require { permission, .. } => Some(permission),
            _ => None,
        }
    }

    /// Whether the gateway forwards the credential instead of stripping it.
    pub fn keep_credentials(&self) -> bool {
        match self {
            RouteDecision::Public { keep_credentials }
            | RouteDecision::Require {
                keep_credentials, ..
            } => *keep_credentials,
            RouteDecision::NotFound => false,
        }
    }
}

/// What an unmatched request gets: `--default-permission P`, or `public`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DefaultAccess {
    Public,
    Permission(Permission),
}

impl FromStr for DefaultAccess {
    type Err = RouteError;
    fn from_str(s: &str) -> Result<Self, RouteError> {
        if s == PUBLIC {
            return Ok(DefaultAccess::Public);
        }
        check_public_spelling(s)?;
        Permission::parse(s)
            .map(DefaultAccess::Permission)
            .map_err(|e| RouteError::Permission {
                permission: s.to_owned(),
                reason: e.to_string(),
            })
    }
}

impl TryFrom<String> for DefaultAccess {
    type Error = RouteError;
    fn try_from(s: String) -> Result<Self, RouteError> {
        s.parse()
    }
}

impl From<DefaultAccess> for String {
    fn from(d: DefaultAccess) -> String {
        d.to_string()
    }
}

impl fmt::Display for DefaultAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DefaultAccess::Public => f.write_str(PUBLIC),
            DefaultAccess::Permission(p) => f.write_str(p.as_str()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum MethodMatch {
    Any,
    /// Upper-case.
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Decoded.
    Literal(String),
    Capture(String),
    Rest,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TemplatePart {
    Literal(String),
    /// `position` is the index of the captured segment in the path.
    Capture {
        name: String,
        position: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Access {
    Public,
    Require(Vec<TemplatePart>),
}

/// One route: `METHOD /path permission-template [keep_credentials]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RouteSpec", into = "RouteSpec")]
pub struct Route {
    method: MethodMatch,
    segments: Vec<Segment>,
    access: Access,
    keep_credentials: bool,
}

/// A route as configuration writes it: `[[gateway.routes]] method, path, permission`, optionally
/// `keep_credentials = true`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    pub method: String,
    pub path: String,
    pub permission: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub keep_credentials: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl TryFrom<RouteSpec> for Route {
    type Error = RouteError;
    fn try_from(s: RouteSpec) -> Result<Self, RouteError> {
        Ok(Route::from_parts(&s.method, &s.path, &s.permission)?
            .with_keep_credentials(s.keep_credentials))
    }
}

impl From<Route> for RouteSpec {
    fn from(r: Route) -> RouteSpec {
        RouteSpec {
            method: r.method_display().to_owned(),
            path: r.path_display().to_string(),
            permission: r.permission_display().to_string(),
            keep_credentials: r.keep_credentials,
        }
    }
}

impl Route {
    /// Parses the line syntax of a `--route` flag.
    pub fn parse(line: &str) -> Result<Route, RouteError> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (method, path, permission, option) = match words[..] {
            [m, p, t] => (m, p, t, None),
            [m, p, t, o] => (m, p, t, Some(o)),
            _ => {
                return Err(RouteError::Syntax {
                    line: line.to_owned(),
                })
            }
        };
        let keep = match option {
            None => false,
            Some(KEEP_CREDENTIALS) => true,
            Some(other) => {
                return Err(RouteError::UnknownOption {
                    line: line.to_owned(),
                    option: other.to_owned(),
                })
            }
        };
        Ok(Route::from_parts(method, path, permission)?.with_keep_credentials(keep))
    }

    /// Builds a route from its three fields, as a configuration file gives them.
    pub fn from_parts(method: &str, path: &str, permission: &str) -> Result<Route, RouteError> {
        let method = parse_method(method)?;
        let segments = parse_path(path)?;
        let access = parse_template(permission, &segments)?;
        Ok(Route {
            method,
            segments,
            access,
            keep_credentials: false,
        })
    }

    /// Sets `keep_credentials` (the fourth word of the line syntax).
    pub fn with_keep_credentials(mut self, keep: bool) -> Route {
        self.keep_credentials = keep;
        self
    }

    /// The method, upper-case; `None` for `*` (every method).
    pub fn method(&self) -> Option<&str> {
        match &self.method {
            MethodMatch::Any => None,
            MethodMatch::Exact(m) => Some(m),
        }
    }

    pub fn is_public(&self) -> bool {
        self.access == Access::Public
    }

    pub fn keep_credentials(&self) -> bool {
        self.keep_credentials
    }

    /// The path pattern in the syntax it is parsed from, literals percent-encoded canonically.
    pub fn path_display(&self) -> impl fmt::Display + '_ {
        PathDisplay(&self.segments)
    }

    /// The permission template (`public`, or e.g. `document:{id}:read`).
    pub fn permission_display(&self) -> impl fmt::Display + '_ {
        TemplateDisplay(&self.access)
    }

    fn method_display(&self) -> &str {
        self.method().unwrap_or("*")
    }

    /// 2 for the request's own method, 1 for `GET` serving a `HEAD`, 0 for `*`; `None`: no match.
    fn method_rank(&self, method: &str) -> Option<u8> {
        match &self.method {
            MethodMatch::Any => Some(0),
            MethodMatch::Exact(m) if m.eq_ignore_ascii_case(method) => Some(2),
            MethodMatch::Exact(m) if m == "GET" && method.eq_ignore_ascii_case("HEAD") => Some(1),
            MethodMatch::Exact(_) => None,
        }
    }

    /// Step 6 of the module doc: literals and the number of segments; captures unchecked.
    fn shape_matches(&self, path: &RequestPath<'_>) -> bool {
        let mut segs = path.segments();
        for pattern in &self.segments {
            match pattern {
                Segment::Rest => return true,
                Segment::Literal(lit) => match segs.next() {
                    Some(raw) if decoded_eq(raw, lit) => {}
                    _ => return false,
                },
                Segment::Capture(_) => {
                    if segs.next().is_none() {
                        return false;
                    }
                }
            }
        }
        segs.next().is_none()
    }

    /// Step 8 of the module doc, for a route whose shape matched.
    fn decision(&self, path: &RequestPath<'_>) -> RouteDecision {
        let captures_ok = self
            .segments
            .iter()
            .zip(path.segments())
            .all(|(pattern, raw)| !matches!(pattern, Segment::Capture(_)) || valid_capture(raw));
        if !captures_ok {
            return RouteDecision::NotFound;
        }
        let parts = match &self.access {
            Access::Public => {
                return RouteDecision::Public {
                    keep_credentials: self.keep_credentials,
                }
            }
            Access::Require(parts) => parts,
        };
        let mut rendered = String::with_capacity(crate::permission::MAX_LEN);
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                rendered.push(':');
            }
            match part {
                TemplatePart::Literal(s) => rendered.push_str(s),
                TemplatePart::Capture { position, .. } => {
                    let Some(raw) = path.segments().nth(*position) else {
                        return RouteDecision::NotFound;
                    };
                    // A valid capture decodes to ASCII only.
                    rendered.extend(Decode::new(raw).map(char::from));
                }
            }
        }
        match Permission::try_from(rendered) {
            Ok(permission) => RouteDecision::Require {
                permission,
                keep_credentials: self.keep_credentials,
            },
            Err(_) => RouteDecision::NotFound,
        }
    }
}

impl FromStr for Route {
    type Err = RouteError;
    fn from_str(s: &str) -> Result<Self, RouteError> {
        Route::parse(s)
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.method_display(),
            self.path_display(),
            self.permission_display()
        )?;
        if self.keep_credentials {
            write!(f, " {KEEP_CREDENTIALS}")?;
        }
        Ok(())
    }
}

struct PathDisplay<'a>(&'a [Segment]);

impl fmt::Display for PathDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("/");
        }
        for segment in self.0 {
            f.write_str("/")?;
            match segment {
                Segment::Literal(lit) => {
                    for b in lit.bytes() {
                        if is_plain_path_byte(b) {
                            write!(f, "{}", char::from(b))?;
                        } else {
                            write!(f, "%{b:02X}")?;
                        }
                    }
                }
                Segment::Capture(name) => write!(f, "{{{name}}}")?,
                Segment::Rest => f.write_str("**")?,
            }
        }
        Ok(())
    }
}

struct TemplateDisplay<'a>(&'a Access);

impl fmt::Display for TemplateDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = match self.0 {
            Access::Public => return f.write_str(PUBLIC),
            Access::Require(parts) => parts,
        };
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            match part {
                TemplatePart::Literal(s) => f.write_str(s)?,
                TemplatePart::Capture { name, .. } => write!(f, "{{{name}}}")?,
            }
        }
        Ok(())
    }
}

/// RFC 3986 `pchar` minus `%` and `*`: what a literal prints without escaping.
fn is_plain_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

fn parse_method(method: &str) -> Result<MethodMatch, RouteError> {
    if method == "*" {
        return Ok(MethodMatch::Any);
    }
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(RouteError::Method {
            method: method.to_owned(),
            reason: "not an HTTP method: give a method such as GET, or `*` for every method"
                .to_owned(),
        });
    }
    Ok(MethodMatch::Exact(method.to_ascii_uppercase()))
}

fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `{name}` → `Some(name)` when the braces enclose the whole text.
fn braced(s: &str) -> Option<&str> {
    s.strip_prefix('{')?.strip_suffix('}')
}

fn parse_path(path: &str) -> Result<Vec<Segment>, RouteError> {
    let err = |reason: &str| RouteError::Path {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let Some(rest) = path.strip_prefix('/') else {
        return Err(err("must start with `/`"));
    };
    if path.contains(['?', '#']) {
        return Err(err(
            "a route path has no query or fragment: write `%3F` or `%23` for a literal `?` or `#`",
        ));
    }
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(err(
            "white space and control characters must be percent-encoded",
        ));
    }
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let count = rest.split('/').count();
    let mut segments = Vec::with_capacity(count);
    for (i, seg) in rest.split('/').enumerate() {
        let segment = if seg.is_empty() {
            return Err(err(
                "empty segment (`//`, or a trailing `/`): only the root path `/` ends in `/`, \
                 and a request's trailing `/` is ignored anyway",
            ));
        } else if seg == "**" {
            if i + 1 != count {
                return Err(err(
                    "`**` matches the rest of the path: it must be the last segment",
                ));
            }
            Segment::Rest
        } else if let Some(name) = braced(seg) {
            if !valid_name(name) {
                return Err(RouteError::Path {
                    path: path.to_owned(),
                    reason: format!(
                        "capture `{seg}`: a name is a letter or `_`, then letters, digits or `_`"
                    ),
                });
            }
            if segments
                .iter()
                .any(|s| matches!(s, Segment::Capture(n) if n == name))
            {
                return Err(RouteError::Path {
                    path: path.to_owned(),
                    reason: format!("capture `{seg}` appears twice"),
                });
            }
            Segment::Capture(name.to_owned())
        } else if seg.contains(['{', '}']) {
            return Err(RouteError::Path {
                path: path.to_owned(),
                reason: format!(
                    "segment `{seg}`: a capture `{{name}}` must be a whole segment \
                     (write `%7B`, `%7D` for literal braces)"
                ),
            });
        } else if seg.contains('*') {
            return Err(RouteError::Path {
                path: path.to_owned(),
                reason: format!(
                    "segment `{seg}`: `*` is no wildcard inside a path; use `{{name}}` for one \
                     segment, `**` as the last segment for the rest, or `%2A` for a literal `*`"
                ),
            });
        } else {
            let decoded = decode_checked(seg).and_then(|b| String::from_utf8(b).ok());
            let Some(decoded) = decoded else {
                return Err(RouteError::Path {
                    path: path.to_owned(),
                    reason: format!(
                        "segment `{seg}`: bad percent escape (`%` must be followed by two hex \
                         digits and decode to UTF-8)"
                    ),
                });
            };
            if is_dot_like(seg) {
                return Err(RouteError::Path {
                    path: path.to_owned(),
                    reason: format!(
                        "segment `{seg}` is a dot segment (`.` or `..`, possibly behind `%2F`, \
                         `\\` or `;`): requests containing one are always refused"
                    ),
                });
            }
            Segment::Literal(decoded)
        };
        segments.push(segment);
    }
    Ok(segments)
}

fn check_public_spelling(s: &str) -> Result<(), RouteError> {
    if s != PUBLIC && s.eq_ignore_ascii_case(PUBLIC) {
        return Err(RouteError::Permission {
            permission: s.to_owned(),
            reason: "write `public` in lower case for a route without a credential".to_owned(),
        });
    }
    Ok(())
}

fn parse_template(template: &str, segments: &[Segment]) -> Result<Access, RouteError> {
    if template == PUBLIC {
        return Ok(Access::Public);
    }
    check_public_spelling(template)?;
    let err = |reason: String| RouteError::Permission {
        permission: template.to_owned(),
        reason,
    };
    let mut parts = Vec::new();
    for seg in template.split(':') {
        if let Some(name) = braced(seg) {
            let position = segments
                .iter()
                .position(|s| matches!(s, Segment::Capture(n) if n == name));
            let Some(position) = position else {
                return Err(err(format!(
                    "`{seg}` is not captured by the path (captures are written `{{name}}` there)"
                )));
            };
            parts.push(TemplatePart::Capture {
                name: name.to_owned(),
                position,
            });
        } else if seg.contains(['{', '}']) {
            return Err(err(format!(
                "segment `{seg}`: a capture `{{name}}` must be a whole permission segment"
            )));
        } else {
            parts.push(TemplatePart::Literal(seg.to_owned()));
        }
    }
    // The shortest value a capture can render; a longer one is checked when rendered.
    let placeholder: Vec<&str> = parts
        .iter()
        .map(|p| match p {
            TemplatePart::Literal(s) => s.as_str(),
            TemplatePart::Capture { .. } => "x",
        })
        .collect();
    Permission::validate(&placeholder.join(":"))
        .map_err(|e| err(format!("{e} (with `x` for each capture)")))?;
    Ok(Access::Require(parts))
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `raw`; `None` on a bad escape.
fn decode_checked(raw: &str) -> Option<Vec<u8>> {
    if !escapes_ok(raw) {
        return None;
    }
    Some(Decode::new(raw).collect())
}

fn escapes_ok(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let ok = bytes.get(i + 1).copied().and_then(hex).is_some()
                && bytes.get(i + 2).copied().and_then(hex).is_some();
            if !ok {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// The bytes of a percent-encoded segment whose escapes are known to be good.
struct Decode<'a> {
    bytes: std::slice::Iter<'a, u8>,
}

impl<'a> Decode<'a> {
    fn new(raw: &'a str) -> Self {
        Decode {
            bytes: raw.as_bytes().iter(),
        }
    }
}

impl Iterator for Decode<'_> {
    type Item = u8;
    fn next(&mut self) -> Option<u8> {
        let b = *self.bytes.next()?;
        if b != b'%' {
            return Some(b);
        }
        let hi = hex(*self.bytes.next()?)?;
        let lo = hex(*self.bytes.next()?)?;
        Some((hi << 4) | lo)
    }
}

fn decoded_eq(raw: &str, literal: &str) -> bool {
    if raw.contains('%') {
        Decode::new(raw).eq(literal.bytes())
    } else {
        raw == literal
    }
}

/// Whether the decoded segment has a piece, between `/` or `\`, that is `.` or `..` once
/// anything from a `;` is cut off. Escapes must be good.
fn is_dot_like(raw: &str) -> bool {
    let mut dots = 0usize;
    let mut other = false;
    let mut in_params = false;
    for b in Decode::new(raw).chain(std::iter::once(b'/')) {
        match b {
            b'/' | b'\\' => {
                if !other && (dots == 1 || dots == 2) {
                    return true;
                }
                dots = 0;
                other = false;
                in_params = false;
            }
            _ if in_params => {}
            b';' => in_params = true,
            b'.' => dots += 1,
            _ => other = true,
        }
    }
    false
}

/// Whether a raw segment decodes to a valid permission segment that is not `*`, `.` or `..`.
fn valid_capture(raw: &str) -> bool {
    let mut len = 0;
    let mut dots_only = true;
    for b in Decode::new(raw) {
        if !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) {
            return false;
        }
        dots_only &= b == b'.';
        len += 1;
        if len > MAX_SEGMENT_LEN {
            return false;
        }
    }
    len > 0 && !(dots_only && len <= 2)
}

/// A request path that passed steps 1 to 4 of the module doc.
struct RequestPath<'a> {
    /// Without the leading `/` or an ignored trailing `/`; empty for the root.
    rest: &'a str,
}

impl<'a> RequestPath<'a> {
    fn new(raw: &'a str) -> Option<Self> {
        let end = raw.find(['?', '#']).unwrap_or(raw.len());
        let rest = raw[..end].strip_prefix('/')?;
        let rest = match rest.strip_suffix('/') {
            Some(r) if !r.is_empty() && !r.ends_with('/') => r,
            _ => rest,
        };
        let path = RequestPath { rest };
        path.segments()
            .all(|seg| !seg.is_empty() && escapes_ok(seg) && !is_dot_like(seg))
            .then_some(path)
    }

    fn segments(&self) -> impl Iterator<Item = &'a str> {
        let n = if self.rest.is_empty() { 0 } else { usize::MAX };
        self.rest.split('/').take(n)
    }
}

/// How a pattern continues at one position, least specific first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Rest,
    End,
    Capture,
    Literal,
}

fn kind_at(segments: &[Segment], i: usize) -> Kind {
    match segments.get(i) {
        None => Kind::End,
        Some(Segment::Rest) => Kind::Rest,
        Some(Segment::Capture(_)) => Kind::Capture,
        Some(Segment::Literal(_)) => Kind::Literal,
    }
}

/// Step 7 of the module doc, for two patterns that match the same path.
fn path_specificity(a: &[Segment], b: &[Segment]) -> Ordering {
    let mut i = 0;
    loop {
        let (ka, kb) = (kind_at(a, i), kind_at(b, i));
        if ka != kb {
            return ka.cmp(&kb);
        }
        if matches!(ka, Kind::Rest | Kind::End) {
            return Ordering::Equal;
        }
        i += 1;
    }
}

#[derive(PartialEq, Eq, Hash)]
enum ShapeKey<'a> {
    Literal(&'a str),
    Capture,
    Rest,
}

impl Route {
    /// The path pattern with capture names left out: equal shapes match the same paths.
    fn shape(&self) -> Vec<ShapeKey<'_>> {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => ShapeKey::Literal(l),
                Segment::Capture(_) => ShapeKey::Capture,
                Segment::Rest => ShapeKey::Rest,
            })
            .collect()
    }
}

/// The routes and the default of §10.2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    routes: Vec<Route>,
    default: Option<DefaultAccess>,
}

impl RouteTable {
    /// A table from route lines (`METHOD /path permission`, as `--route` takes them).
    pub fn from_lines<'a>(
        lines: impl IntoIterator<Item = &'a str>,
        default: Option<DefaultAccess>,
    ) -> Result<Self, RouteError> {
        let routes = lines
            .into_iter()
            .map(Route::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(routes, default)
    }

    /// Refuses two routes with the same method and path shape (capture names aside): neither
    /// would be more specific than the other.
    pub fn new(routes: Vec<Route>, default: Option<DefaultAccess>) -> Result<Self, RouteError> {
        {
            let mut seen: HashMap<(&MethodMatch, Vec<ShapeKey<'_>>), usize> = HashMap::new();
            for (i, route) in routes.iter().enumerate() {
                if let Some(first) = seen.insert((&route.method, route.shape()), i) {
                    return Err(RouteError::Duplicate {
                        first: routes[first].to_string(),
                        second: route.to_string(),
                    });
                }
            }
        }
        Ok(RouteTable { routes, default })
    }

    /// The routes, in the order given.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    pub fn default_access(&self) -> Option<&DefaultAccess> {
        self.default.as_ref()
    }

    /// What a request needs. `raw_path` is the request target's path as received
    /// (percent-encoded); a query or fragment is ignored. The rules are in the module doc.
    pub fn decide(&self, method: &str, raw_path: &str) -> RouteDecision {
        let Some(path) = RequestPath::new(raw_path) else {
            return RouteDecision::NotFound;
        };
        let mut best: Option<(&Route, u8)> = None;
        for route in &self.routes {
            let Some(rank) = route.method_rank(method) else {
                continue;
            };
            if !route.shape_matches(&path) {
                continue;
            }
            let better = best.is_none_or(|(b, b_rank)| {
                path_specificity(&route.segments, &b.segments).then(rank.cmp(&b_rank))
                    == Ordering::Greater
            });
            if better {
                best = Some((route, rank));
            }
        }
        match (best, &self.default) {
            (Some((route, _)), _) => route.decision(&path),
            (None, Some(DefaultAccess::Public)) => RouteDecision::Public {
                keep_credentials: false,
            },
            (None, Some(DefaultAccess::Permission(p))) => RouteDecision::Require {
                permission: p.clone(),
                keep_credentials: false,
            },
            (None, None) => RouteDecision::NotFound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(lines: &[&str], default: Option<&str>) -> RouteTable {
        let routes = lines.iter().map(|l| Route::parse(l).unwrap()).collect();
        RouteTable::new(routes, default.map(|d| d.parse().unwrap())).unwrap()
    }

    fn require(p: &str) -> RouteDecision {
        RouteDecision::Require {
            permission: Permission::parse(p).unwrap(),
            keep_credentials: false,
        }
    }

    const PUBLIC_DECISION: RouteDecision = RouteDecision::Public {
        keep_credentials: false,
    };

    fn spec_table(default: Option<&str>) -> RouteTable {
        table(
            &[
                "GET /documents/{id} document:{id}:read",
                "POST /documents documents:write",
                "GET /health public",
                "* /admin/** admin:*",
            ],
            default,
        )
    }

    #[test]
    fn spec_examples() {
        let t = spec_table(None);
        assert_eq!(
            t.decide("GET", "/documents/doc_42"),
            require("document:doc_42:read")
        );
        assert_eq!(t.decide("POST", "/documents"), require("documents:write"));
        assert_eq!(t.decide("GET", "/health"), PUBLIC_DECISION);
        assert_eq!(t.decide("DELETE", "/admin/users/7"), require("admin:*"));
        assert_eq!(t.decide("GET", "/admin"), require("admin:*"));
        assert_eq!(t.decide("GET", "/documents"), RouteDecision::NotFound);
        assert_eq!(
            t.decide("POST", "/documents/doc_42"),
            RouteDecision::NotFound
        );
        assert_eq!(t.decide("GET", "/elsewhere"), RouteDecision::NotFound);
    }

    #[test]
    fn display_prints_the_line_back() {
        for line in [
            "GET /documents/{id} document:{id}:read",
            "POST /documents documents:write",
            "GET /health public",
            "* /admin/** admin:*",
            "GET / root:read",
            "PUT /a/{x}/b/{y} a:{y}:{x} keep_credentials",
            "POST /oauth/token public keep_credentials",
        ] {
            let route = Route::parse(line).unwrap();
            assert_eq!(route.to_string(), line);
            assert_eq!(line.parse::<Route>().unwrap(), route);
        }
        // Methods are stored upper-case; literals are printed in one canonical encoding.
        let route = Route::parse("get /a%20b/%2A/%7Bx%7D/%41%2f/c%3Bd x:read").unwrap();
        assert_eq!(route.to_string(), "GET /a%20b/%2A/%7Bx%7D/A%2F/c;d x:read");
        assert_eq!(Route::parse(&route.to_string()).unwrap(), route);
        assert_eq!(route.method(), Some("GET"));
        assert_eq!(Route::parse("* /x public").unwrap().method(), None);
    }

    #[test]
    fn paths_that_could_inject_or_escape_never_reach_a_document_permission() {
        // The wider routes and the public default must not catch these either.
        let t = table(
            &[
                "GET /documents/{id} document:{id}:read",
                "GET /documents/** public",
            ],
            Some("public"),
        );
        for path in [
            "/documents/a:b",
            "/documents/%2A",
            "/documents/*",
            "/documents/..%2F",
            "/documents/%2e%2e",
            "/documents/.%2E",
            "/documents/..",
            "/documents/.",
            "/documents/a%2Fb",
            "/documents/%3A",
            "/documents/%ZZ",
            "/documents/%2",
            "/documents/%",
            "/documents//x",
            "/documents/a%20b",
            "/documents/a b",
            "/documents/%7Bid%7D",
            "/documents/%00",
            "/documents/%C3%A9",
            "/documents/%FF",
            "/documents/secret;jsessionid=1",
            "/documents/..;x",
            "/documents/..%5Cx",
            "/documents/x/..",
            "/documents/x/../y",
            "/documents/x/%2e/y",
            "/./documents/x",
            "//documents/x",
        ] {
            assert_eq!(t.decide("GET", path), RouteDecision::NotFound, "{path}");
        }
        // The same table does answer for ordinary paths.
        assert_eq!(t.decide("GET", "/documents/x"), require("document:x:read"));
        assert_eq!(t.decide("GET", "/documents/x/y"), PUBLIC_DECISION);
        assert_eq!(t.decide("GET", "/documents"), PUBLIC_DECISION);
        assert_eq!(t.decide("GET", "/other"), PUBLIC_DECISION);
    }

    #[test]
    fn refused_paths_get_not_found_even_with_a_default() {
        let t = table(&["* /** any:thing"], Some("fallback"));
        assert_eq!(t.decide("GET", "/x/y"), require("any:thing"));
        for path in [
            "/x/../y",
            "/x/./y",
            "/x//y",
            "//",
            "/x//",
            "/%zz",
            "/x/..%2f",
            "/..\\x",
            "",
            "x/y",
            "*",
            "?a",
            "http://host/x",
        ] {
            assert_eq!(t.decide("GET", path), RouteDecision::NotFound, "{path:?}");
        }
        let t = table(&[], Some("fallback"));
        assert_eq!(t.decide("GET", "/x"), require("fallback"));
        assert_eq!(t.decide("GET", "/x/../y"), RouteDecision::NotFound);
    }

    #[test]
    fn captures_are_decoded_and_checked() {
        let t = table(&["GET /documents/{id} document:{id}:read"], None);
        assert_eq!(
            t.decide("GET", "/documents/doc%5F42"),
            require("document:doc_42:read")
        );
        assert_eq!(
            t.decide("GET", "/documents/%64oc-1.v2"),
            require("document:doc-1.v2:read")
        );
        // `...` is an ordinary segment, for URLs and permissions alike.
        assert_eq!(
            t.decide("GET", "/documents/..."),
            require("document:...:read")
        );
        let max = "a".repeat(MAX_SEGMENT_LEN);
        assert_eq!(
            t.decide("GET", &format!("/documents/{max}")),
            require(&format!("document:{max}:read"))
        );
        assert_eq!(
            t.decide("GET", &format!("/documents/{max}a")),
            RouteDecision::NotFound
        );
    }

    #[test]
    fn an_unused_capture_is_checked_too() {
        let t = table(
            &["GET /files/{name} files:read", "GET /files/** public"],
            None,
        );
        assert_eq!(t.decide("GET", "/files/report.pdf"), require("files:read"));
        assert_eq!(t.decide("GET", "/files/a%20b"), RouteDecision::NotFound);
        let t = table(&["GET /avatars/{user} public"], None);
        assert_eq!(t.decide("GET", "/avatars/ann"), PUBLIC_DECISION);
        assert_eq!(t.decide("GET", "/avatars/a:b"), RouteDecision::NotFound);
    }

    #[test]
    fn a_rendered_permission_too_long_is_not_found() {
        let l = "a".repeat(60);
        let line = format!("GET /d/{{id}} {l}:{l}:{l}:{{id}}");
        let t = table(&[line.as_str()], Some("public"));
        // 3 × 60 + 3 separators = 183, so a 17-character id reaches the 200 limit.
        let ok = "b".repeat(17);
        assert_eq!(
            t.decide("GET", &format!("/d/{ok}")),
            require(&format!("{l}:{l}:{l}:{ok}"))
        );
        assert_eq!(
            t.decide("GET", &format!("/d/{ok}b")),
            RouteDecision::NotFound
        );
    }

    #[test]
    fn literals_compare_decoded_and_case_sensitive() {
        let t = spec_table(None);
        assert_eq!(t.decide("GET", "/adm%69n/users"), require("admin:*"));
        assert_eq!(t.decide("GET", "/%61%64%6D%69%6E"), require("admin:*"));
        assert_eq!(t.decide("GET", "/he%61lth"), PUBLIC_DECISION);
        assert_eq!(t.decide("GET", "/Admin/users"), RouteDecision::NotFound);
        assert_eq!(t.decide("GET", "/HEALTH"), RouteDecision::NotFound);
        assert_eq!(t.decide("GET", "/adminx"), RouteDecision::NotFound);
        // An encoded `/` is part of its segment, never a separator.
        assert_eq!(t.decide("GET", "/admin%2Fusers"), RouteDecision::NotFound);
        let t = table(&["GET /a%2Fb/c%20d x:y"], None);
        assert_eq!(t.decide("GET", "/a%2fb/c%20d"), require("x:y"));
        assert_eq!(t.decide("GET", "/a%2Fb/c d"), require("x:y"));
        assert_eq!(t.decide("GET", "/a/b/c%20d"), RouteDecision::NotFound);
    }

    #[test]
    fn method_star_versus_exact() {
        let t = table(&["* /x any:x", "GET /x get:x"], None);
        assert_eq!(t.decide("GET", "/x"), require("get:x"));
        assert_eq!(t.decide("get", "/x"), require("get:x"));
        assert_eq!(t.decide("POST", "/x"), require("any:x"));
        assert_eq!(t.decide("BREW", "/x"), require("any:x"));
        // HEAD is answered by GET handlers, so it gets the GET route, unless it has its own.
        assert_eq!(t.decide("HEAD", "/x"), require("get:x"));
        let t = table(&["* /x any:x", "GET /x get:x", "HEAD /x head:x"], None);
        assert_eq!(t.decide("HEAD", "/x"), require("head:x"));
        assert_eq!(t.decide("GET", "/x"), require("get:x"));
        let t = table(&["HEAD /x head:x"], None);
        assert_eq!(t.decide("GET", "/x"), RouteDecision::NotFound);
        let t = table(&["post /x p:x"], None);
        assert_eq!(t.decide("POST", "/x"), require("p:x"));
        assert_eq!(t.decide("GET", "/x"), RouteDecision::NotFound);
    }

    #[test]
    fn path_specificity_comes_before_the_method() {
        let t = table(
            &["* /documents/{id} any:{id}", "GET /documents/** docs:read"],
            None,
        );
        assert_eq!(t.decide("GET", "/documents/x"), require("any:x"));
        assert_eq!(t.decide("GET", "/documents/x/y"), require("docs:read"));
    }

    #[test]
    fn double_star_matches_zero_or_more_segments() {
        let t = table(&["GET /files/** files:read"], None);
        for path in [
            "/files",
            "/files/",
            "/files/a",
            "/files/a/b/c",
            "/files/a%2Fb",
        ] {
            assert_eq!(t.decide("GET", path), require("files:read"), "{path}");
        }
        for path in ["/", "/filesx", "/file", "/x/files"] {
            assert_eq!(t.decide("GET", path), RouteDecision::NotFound, "{path}");
        }
        let t = table(&["GET /** all:read"], None);
        assert_eq!(t.decide("GET", "/"), require("all:read"));
        assert_eq!(t.decide("GET", "/a/b"), require("all:read"));
    }

    #[test]
    fn most_specific_route_wins() {
        let t = table(
            &[
                "GET /** any",
                "GET /a/** a-rest",
                "GET /a a",
                "GET /a/{x} a-cap",
                "GET /a/b a-b",
                "GET /a/{x}/c a-cap-c",
                "GET /a/b/** a-b-rest",
                "GET /a/{x}/** a-cap-rest",
                "GET /{x}/b x-b",
            ],
            None,
        );
        let cases = [
            ("/", "any"),
            ("/z", "any"),
            ("/a", "a"),
            ("/a/b", "a-b"),
            ("/a/q", "a-cap"),
            ("/a/q/c", "a-cap-c"),
            // A literal at the second segment beats a longer pattern with a capture there.
            ("/a/b/c", "a-b-rest"),
            ("/a/q/d", "a-cap-rest"),
            ("/z/b", "x-b"),
            ("/z/b/c", "any"),
        ];
        for (path, want) in cases {
            assert_eq!(t.decide("GET", path), require(want), "{path}");
        }
    }

    #[test]
    fn root_route() {
        let t = table(&["GET / root:read", "GET /{x} one:{x}"], None);
        assert_eq!(t.decide("GET", "/"), require("root:read"));
        assert_eq!(t.decide("GET", "/?q=1"), require("root:read"));
        assert_eq!(t.decide("GET", "/x"), require("one:x"));
        assert_eq!(t.decide("GET", "/x/"), require("one:x"));
    }

    #[test]
    fn query_and_fragment_are_ignored() {
        let t = spec_table(None);
        for path in [
            "/documents/x?permission=admin:*",
            "/documents/x?next=/../../admin",
            "/documents/x#frag",
            "/documents/x?",
            "/documents/x/?a=b",
            "/documents/x#/../y?z",
        ] {
            assert_eq!(t.decide("GET", path), require("document:x:read"), "{path}");
        }
        assert_eq!(t.decide("GET", "/documents?x=/y"), RouteDecision::NotFound);
    }

    #[test]
    fn a_trailing_slash_is_ignored() {
        let t = spec_table(None);
        assert_eq!(t.decide("GET", "/documents/x/"), require("document:x:read"));
        assert_eq!(t.decide("GET", "/health/"), PUBLIC_DECISION);
        assert_eq!(t.decide("GET", "/admin/"), require("admin:*"));
        assert_eq!(t.decide("GET", "/documents/x//"), RouteDecision::NotFound);
    }

    #[test]
    fn defaults() {
        let t = spec_table(Some("public"));
        assert_eq!(t.decide("GET", "/elsewhere"), PUBLIC_DECISION);
        let t = spec_table(Some("app:read"));
        assert_eq!(t.decide("GET", "/elsewhere"), require("app:read"));
        assert_eq!(t.decide("GET", "/health"), PUBLIC_DECISION);
        let t = spec_table(None);
        assert_eq!(t.decide("GET", "/elsewhere"), RouteDecision::NotFound);
        assert_eq!(t.default_access(), None);

        assert_eq!("public".parse::<DefaultAccess>(), Ok(DefaultAccess::Public));
        assert_eq!(
            "a:b".parse::<DefaultAccess>(),
            Ok(DefaultAccess::Permission(Permission::parse("a:b").unwrap()))
        );
        assert!(matches!(
            "a::b".parse::<DefaultAccess>(),
            Err(RouteError::Permission { .. })
        ));
        assert!(matches!(
            "Public".parse::<DefaultAccess>(),
            Err(RouteError::Permission { .. })
        ));
        assert_eq!(DefaultAccess::Public.to_string(), "public");
    }

    #[test]
    fn keep_credentials_is_carried() {
        let t = table(
            &[
                "GET /raw/{id} raw:{id} keep_credentials",
                "POST /oauth/token public keep_credentials",
                "GET /plain x:y",
            ],
            None,
        );
        let d = t.decide("GET", "/raw/1");
        assert_eq!(
            d,
            RouteDecision::Require {
                permission: Permission::parse("raw:1").unwrap(),
                keep_credentials: true
            }
        );
        assert!(d.keep_credentials());
        assert_eq!(d.permission().map(|p| p.as_str()), Some("raw:1"));
        assert_eq!(
            t.decide("POST", "/oauth/token"),
            RouteDecision::Public {
                keep_credentials: true
            }
        );
        assert!(!t.decide("GET", "/plain").keep_credentials());
        assert!(!RouteDecision::NotFound.keep_credentials());
        assert!(Route::parse("GET /x public keep_credentials")
            .unwrap()
            .keep_credentials());
    }

    #[test]
    fn duplicates_are_refused() {
        let dup = |a: &str, b: &str| {
            RouteTable::new(
                vec![Route::parse(a).unwrap(), Route::parse(b).unwrap()],
                None,
            )
        };
        for (a, b) in [
            ("GET /d/{id} a", "GET /d/{x} b"),
            ("get /d a", "GET /d b"),
            ("* /d/** a", "* /d/** b"),
            ("GET / a", "GET / b"),
            ("GET /a%62 a", "GET /ab b"),
        ] {
            let err = dup(a, b).unwrap_err();
            assert!(matches!(err, RouteError::Duplicate { .. }), "{a} / {b}");
            assert!(err.to_string().contains("same method and path shape"));
        }
        for (a, b) in [
            ("GET /d a", "* /d b"),
            ("GET /d a", "HEAD /d b"),
            ("GET /d/{id} a", "GET /d/** b"),
            ("GET /d a", "GET /d/** b"),
            ("GET /d/x a", "GET /d/{x} b"),
        ] {
            assert!(dup(a, b).is_ok(), "{a} / {b}");
        }
    }

    #[test]
    fn parse_errors_name_the_part() {
        let cases: &[(&str, &str)] = &[
            ("", "expected `METHOD /path permission"),
            ("GET /x", "expected `METHOD /path permission"),
            ("GET /x a b c", "expected `METHOD /path permission"),
            ("GET /x a keep", "unknown option `keep`"),
            ("G(T /x a", "method `G(T`"),
            ("GET x a", "must start with `/`"),
            ("GET /a//b a", "empty segment"),
            ("GET /a/ a", "empty segment"),
            ("GET /**/a a", "must be the last segment"),
            ("GET /a/*/b a", "`*` is no wildcard"),
            ("GET /a* a", "`*` is no wildcard"),
            ("GET /{1x} a", "capture `{1x}`"),
            ("GET /{} a", "capture `{}`"),
            ("GET /{a-b} a", "capture `{a-b}`"),
            ("GET /{id}/{id} a", "appears twice"),
            ("GET /x{id} a", "must be a whole segment"),
            ("GET /{id a", "must be a whole segment"),
            ("GET /%zz a", "bad percent escape"),
            ("GET /%FF a", "bad percent escape"),
            ("GET /x?y a", "no query or fragment"),
            ("GET /x#y a", "no query or fragment"),
            ("GET /.. a", "dot segment"),
            ("GET /a/%2E a", "dot segment"),
            ("GET /x a::b", "permission `a::b`"),
            ("GET /x Public", "lower case"),
            ("GET /x PUBLIC", "lower case"),
            (
                "GET /d/{id} document:{other}:read",
                "`{other}` is not captured",
            ),
            (
                "GET /d/{id} document:x{id}:read",
                "whole permission segment",
            ),
            ("GET /d/{id} document:{id:read", "whole permission segment"),
            ("GET /d/{id} a:b:c:d:e:f:g:h:{id}", "at most 8 segments"),
            ("GET /d/{id} doc ument", "unknown option"),
        ];
        for (line, want) in cases {
            let err = Route::parse(line).unwrap_err().to_string();
            assert!(err.contains(want), "{line:?}: {err}");
        }
        assert!(matches!(
            Route::parse("G(T /x a"),
            Err(RouteError::Method { .. })
        ));
        assert!(matches!(
            Route::parse("GET /a//b a"),
            Err(RouteError::Path { .. })
        ));
        assert!(matches!(
            Route::parse("GET /x a::b"),
            Err(RouteError::Permission { .. })
        ));
        // The placeholder must fit: 200 characters with `x` is the limit.
        let s = "a".repeat(MAX_SEGMENT_LEN);
        let fits = format!("GET /{{i}} {s}:{s}:{s}:abc:{{i}}");
        assert!(Route::parse(&fits).is_ok());
        let err = Route::parse(&format!("GET /{{i}} {s}:{s}:{s}:abcd:{{i}}")).unwrap_err();
        assert!(
            err.to_string().contains("with `x` for each capture"),
            "{err}"
        );
    }

    #[test]
    fn from_parts_and_serde() {
        let r = Route::from_parts("GET", "/documents/{id}", "document:{id}:read").unwrap();
        assert_eq!(
            r,
            Route::parse("GET /documents/{id} document:{id}:read").unwrap()
        );
        assert!(matches!(
            Route::from_parts("GET", "/a b", "x"),
            Err(RouteError::Path { .. })
        ));
        assert!(matches!(
            Route::from_parts("GET", "/a", "x y"),
            Err(RouteError::Permission { .. })
        ));

        let json = r#"[
            {"method": "GET", "path": "/documents/{id}", "permission": "document:{id}:read"},
            {"method": "*", "path": "/raw/**", "permission": "raw:read", "keep_credentials": true}
        ]"#;
        let routes: Vec<Route> = serde_json::from_str(json).unwrap();
        assert_eq!(routes[0], r);
        assert_eq!(routes[1].to_string(), "* /raw/** raw:read keep_credentials");
        assert_eq!(
            serde_json::to_value(&routes[1]).unwrap(),
            serde_json::json!({"method": "*", "path": "/raw/**", "permission": "raw:read",
                               "keep_credentials": true})
        );
        let back: Vec<Route> =
            serde_json::from_str(&serde_json::to_string(&routes).unwrap()).unwrap();
        assert_eq!(back, routes);

        let bad = r#"{"method": "GET", "path": "/d/{id}", "permission": "d:{x}"}"#;
        let err = serde_json::from_str::<Route>(bad).unwrap_err().to_string();
        assert!(err.contains("`{x}` is not captured"), "{err}");
        let unknown = r#"{"method": "GET", "path": "/d", "permission": "d", "perm": "x"}"#;
        assert!(serde_json::from_str::<Route>(unknown).is_err());

        let d: DefaultAccess = serde_json::from_str(r#""public""#).unwrap();
        assert_eq!(d, DefaultAccess::Public);
    }

    #[test]
    fn table_accessors() {
        let t = spec_table(None);
        assert!(!t.is_empty());
        assert_eq!(t.routes().len(), 4);
        assert_eq!(t.routes()[2].to_string(), "GET /health public");
        assert!(t.routes()[2].is_public());
        assert!(table(&[], None).is_empty());
        assert_eq!(table(&[], None).decide("GET", "/"), RouteDecision::NotFound);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;
        use std::collections::HashSet;

        /// Pattern segments: a literal, a capture (named after its position when printed), `**`.
        #[derive(Debug, Clone)]
        enum Pat {
            Lit(String),
            Cap,
        }

        fn pattern_line(method: &str, pats: &[Pat], rest: bool, perm: &str) -> String {
            let mut path = String::new();
            for (i, p) in pats.iter().enumerate() {
                match p {
                    Pat::Lit(l) => path.push_str(&format!("/{l}")),
                    Pat::Cap => path.push_str(&format!("/{{c{i}}}")),
                }
            }
            if rest {
                path.push_str("/**");
            }
            if path.is_empty() {
                path.push('/');
            }
            // Use the first capture in the permission, so rendering is exercised.
            let perm = match pats.iter().position(|p| matches!(p, Pat::Cap)) {
                Some(i) => format!("{perm}:{{c{i}}}"),
                None => perm.to_owned(),
            };
            format!("{method} {path} {perm}")
        }

        fn pat(literals: &'static [&'static str]) -> impl Strategy<Value = Pat> {
            prop_oneof![
                prop::sample::select(literals).prop_map(|l| Pat::Lit(l.to_owned())),
                Just(Pat::Cap),
            ]
        }

        type Shape = (&'static str, Vec<Pat>, bool);

        fn shape(literals: &'static [&'static str]) -> impl Strategy<Value = Shape> {
            (
                prop::sample::select(&["GET", "POST", "HEAD", "*"][..]),
                prop::collection::vec(pat(literals), 0..4),
                any::<bool>(),
            )
        }

        /// Routes with distinct (method, shape), each with its own permission `r<i>`.
        fn lines(shapes: Vec<Shape>, prefix: &str) -> Vec<String> {
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            for (method, pats, rest) in shapes {
                let line = pattern_line(method, &pats, rest, "p");
                if seen.insert(line) {
                    let perm = format!("{prefix}{}", out.len());
                    out.push(pattern_line(method, &pats, rest, &perm));
                }
            }
            out
        }

        fn build(lines: &[String]) -> RouteTable {
            let routes = lines.iter().map(|l| Route::parse(l).unwrap()).collect();
            RouteTable::new(routes, None).unwrap()
        }

        /// An independent statement of "most specific": per position of the request path, the
        /// rank of what the pattern has there (literal 3, capture 2, its end 1, `**` and after
        /// 0), compared as a fixed-length vector; then the method rank.
        fn oracle_winner<'a>(
            routes: &'a [Route],
            method: &str,
            decoded: &[String],
        ) -> Option<&'a Route> {
            let n = decoded.len();
            let mut best: Option<(Vec<u8>, u8, &Route)> = None;
            for r in routes {
                let m_rank = match r.method() {
                    None => 0,
                    Some(m) if m == method => 2,
                    Some("GET") if method == "HEAD" => 1,
                    Some(_) => continue,
                };
                let mut key = Vec::with_capacity(n + 1);
                let mut matched = true;
                let mut in_rest = false;
                for i in 0..=n {
                    if in_rest {
                        key.push(0);
                        continue;
                    }
                    match (r.segments.get(i), decoded.get(i)) {
                        (Some(Segment::Rest), _) => {
                            in_rest = true;
                            key.push(0);
                        }
                        (Some(Segment::Literal(l)), Some(d)) if l == d => key.push(3),
                        (Some(Segment::Capture(_)), Some(_)) => key.push(2),
                        (None, None) => key.push(1),
                        _ => matched = false,
                    }
                }
                if !matched {
                    continue;
                }
                let better = match &best {
                    None => true,
                    Some((k, m, _)) => (&key, m_rank) > (k, *m),
                };
                if better {
                    best = Some((key, m_rank, r));
                }
            }
            best.map(|(_, _, r)| r)
        }

        /// Percent-encodes the characters `encode` picks (and always `/ ? # %`), with upper- or
        /// lower-case hex as `upper` says.
        fn encode(s: &str, choices: &[(bool, bool)]) -> String {
            let mut out = String::new();
            for (c, &(enc, upper)) in s.chars().zip(choices.iter().cycle()) {
                if enc || matches!(c, '/' | '?' | '#' | '%') {
                    let mut buf = [0; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        if upper {
                            out.push_str(&format!("%{b:02X}"));
                        } else {
                            out.push_str(&format!("%{b:02x}"));
                        }
                    }
                } else {
                    out.push(c);
                }
            }
            out
        }

        fn choices() -> impl Strategy<Value = Vec<(bool, bool)>> {
            prop::collection::vec(any::<(bool, bool)>(), 1..16)
        }

        fn captured_value() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                "[A-Za-z0-9_.-]{1,70}",
                "[a-z:*/%{}; .\\\\]{0,6}",
                // One forbidden character among valid ones, so nothing else hides it.
                "[a-c]{0,3}[:*/%{}; \t\\\\\u{0}-\u{1f}\u{7f}\u{e9}\u{2028}][a-c]{0,3}",
                prop::sample::select(&[".", "..", "...", "*", "", "a..", "..;x", "a\\.."][..])
                    .prop_map(str::to_owned),
            ]
        }

        const LITERALS: &[&str] = &["a", "b"];

        proptest! {
            #[test]
            fn most_specific_wins_whatever_the_order(
                (given, shuffled) in prop::collection::vec(shape(LITERALS), 0..12)
                    .prop_map(|s| lines(s, "r"))
                    .prop_flat_map(|l| (Just(l.clone()), Just(l).prop_shuffle())),
                method in prop::sample::select(&["GET", "POST", "HEAD", "PUT"][..]),
                path in prop::collection::vec(
                    prop::sample::select(&["a", "b", "%61", "c", "x:y", "..", "%2A"][..]), 0..5),
            ) {
                let raw = format!("/{}", path.join("/"));
                let a = build(&given);
                let b = build(&shuffled);
                let decision = a.decide(method, &raw);
                prop_assert_eq!(&decision, &b.decide(method, &raw), "{} {}", method, raw);

                let decoded: Vec<String> = path
                    .iter()
                    .map(|s| String::from_utf8(decode_checked(s).unwrap()).unwrap())
                    .collect();
                let want = match oracle_winner(a.routes(), method, &decoded) {
                    Some(r) => RouteTable::new(vec![r.clone()], None).unwrap().decide(method, &raw),
                    None => RouteDecision::NotFound,
                };
                prop_assert_eq!(decision, want, "{} {}", method, raw);
            }

            #[test]
            fn a_captured_value_renders_only_as_itself(
                (value, choices) in (captured_value(), choices()),
                query in prop::option::of("[a-z=&:*/.]{0,8}"),
            ) {
                let t = RouteTable::new(
                    vec![
                        Route::parse("GET /documents/{id} document:{id}:read").unwrap(),
                        Route::parse("GET /documents/** docs:any").unwrap(),
                    ],
                    Some(DefaultAccess::Permission(Permission::parse("fallback").unwrap())),
                )
                .unwrap();
                let mut raw = format!("/documents/{}", encode(&value, &choices));
                if let Some(q) = query {
                    raw = format!("{raw}?{q}");
                }
                let valid = !value.is_empty()
                    && value.len() <= MAX_SEGMENT_LEN
                    && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
                    && value != "."
                    && value != "..";
                let decision = t.decide("GET", &raw);
                if let RouteDecision::Require { permission, .. } = &decision {
                    prop_assert!(Permission::validate(permission.as_str()).is_ok());
                    if permission.as_str().starts_with("document:") {
                        let segs: Vec<&str> = permission.as_str().split(':').collect();
                        prop_assert_eq!(segs.len(), 3);
                        prop_assert_eq!(segs[1], value.as_str());
                        prop_assert!(!segs[1].contains([':', '*']));
                    }
                }
                let want = if valid {
                    require(&format!("document:{value}:read"))
                } else if value.is_empty() {
                    // `/documents/` is `/documents`: the `**` route, with nothing to capture.
                    require("docs:any")
                } else {
                    RouteDecision::NotFound
                };
                prop_assert_eq!(decision, want, "{:?} as {}", value, raw);
            }

            #[test]
            fn a_literal_route_beats_every_capture_route(
                literal in prop::collection::vec("[a-c]{1,3}", 1..4),
                literal_any_method in any::<bool>(),
                request_post in any::<bool>(),
                others in prop::collection::vec(shape(&["a", "b", "c", "ab", "abc"]), 0..12),
                at in any::<prop::sample::Index>(),
                choices in choices(),
            ) {
                let method = if literal_any_method { "*" } else { "GET" };
                let line = format!("{method} /{} lit:ok", literal.join("/"));
                let others: Vec<Shape> = others
                    .into_iter()
                    .filter(|(_, pats, rest)| *rest || pats.iter().any(|p| matches!(p, Pat::Cap)))
                    .collect();
                let mut all = lines(others, "o");
                all.insert(at.index(all.len() + 1), line.clone());
                let t = build(&all);
                let request = if literal_any_method && request_post { "POST" } else { "GET" };
                let raw = format!("/{}", encode(&literal.join("/"), &choices).replace("%2F", "/")
                    .replace("%2f", "/"));
                prop_assert_eq!(t.decide(request, &raw), require("lit:ok"), "{} {} in {:?}",
                    request, raw, all);
            }
        }
    }
}
