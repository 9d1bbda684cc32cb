//! Reading the credentials a request presents (SPEC §4), on plain `http` headers so that every
//! front door (the API, forward auth, the gateway, the tower layer) reads them the same way.

use base64::Engine as _;
use http::{header, HeaderMap};
use latchkey_core::token::looks_like_jwt;
use latchkey_core::ApiKey;
use std::borrow::Cow;

/// Two different API keys, or two different access tokens, in one request (SPEC §3
/// `ambiguous_credentials`): which one the caller meant cannot be guessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the request carries two different credentials")]
pub struct Ambiguous;

/// The credentials a request presents: at most one API key and one access token (the pair).
/// Borrowed from the request where it can be (a header or a body field); owned when decoded
/// (`Basic`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Presented<'a> {
    pub key: Option<Cow<'a, str>>,
    pub token: Option<Cow<'a, str>>,
}

impl Presented<'_> {
    pub fn is_empty(&self) -> bool {
        self.key.is_none() && self.token.is_none()
    }
}

/// Stands in for a header value that is not visible ASCII: it can never be a credential, but it
/// still counts as one presented (and so can make the request ambiguous).
const INVALID: &str = "\u{0}invalid";

/// Reads the credentials of a request, by any accepted style. Two different API keys, or two
/// different tokens, are ambiguous; one of each is the pair.
pub fn presented_credentials(headers: &HeaderMap) -> Result<Presented<'_>, Ambiguous> {
    // X-API-Key carries API keys only (SPEC §4); Authorization either kind.
    let authorization = headers
        .get_all(header::AUTHORIZATION)
        .into_iter()
        .map(|v| (from_authorization(v.to_str().unwrap_or(INVALID)), true));
    let api_key = headers
        .get_all("x-api-key")
        .into_iter()
        .map(|v| (Cow::Borrowed(v.to_str().unwrap_or(INVALID).trim()), false));
    let mut p = Presented::default();
    for (c, token_ok) in authorization.chain(api_key) {
        let slot = if token_ok && looks_like_jwt(&c) {
            &mut p.token
        } else {
            &mut p.key
        };
        match slot {
            Some(existing) if *existing != c => return Err(Ambiguous),
            _ => *slot = Some(c),
        }
    }
    Ok(p)
}

/// `Bearer <cred>`; `Basic` with the key as user name and no password (curl -u sk_…:) or, as
/// OAuth clients send it, the client id as user name and the key as password; or the raw key.
fn from_authorization(v: &str) -> Cow<'_, str> {
    let v = v.trim();
    match v.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => Cow::Borrowed(rest.trim()),
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => Cow::Owned(
            basic_credentials(rest)
                .map(|(user, pass)| if pass.is_empty() { user } else { pass })
                .unwrap_or_else(|| INVALID.into()),
        ),
        _ => Cow::Borrowed(v),
    }
}

/// Decodes `base64(user:password)` (RFC 7617); OAuth clients also form-encode both (RFC 6749 §2.3.1).
pub fn basic_credentials(b64: &str) -> Option<(String, String)> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((decode(user)?, decode(pass)?))
}

/// Query parameter names that would carry a credential in a URL (logged by every proxy).
const CREDENTIAL_PARAMS: [&str; 7] = [
    "api_key",
    "apikey",
    "api-key",
    "key",
    "access_token",
    "token",
    "x-api-key",
];

/// True when the query string carries something that is, or is named like, a credential.
pub fn query_has_credential(query: &str) -> bool {
    url::form_urlencoded::parse(query.as_bytes()).any(|(k, v)| {
        CREDENTIAL_PARAMS.iter().any(|p| k.eq_ignore_ascii_case(p))
            || ApiKey::looks_like_key(&v)
            || looks_like_jwt(&v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn every_style_yields_the_same_credential() {
        let k = "sk_test_abc";
        for h in [
            headers(&[("authorization", "Bearer sk_test_abc")]),
            headers(&[("authorization", "bearer  sk_test_abc ")]),
            headers(&[("X-API-Key", k)]),
            headers(&[("authorization", k)]),
            headers(&[("authorization", "Basic c2tfdGVzdF9hYmM6")]),
            headers(&[("authorization", "Bearer sk_test_abc"), ("x-api-key", k)]),
        ] {
            assert_eq!(presented_credentials(&h).unwrap().key.as_deref(), Some(k));
        }
        assert!(presented_credentials(&headers(&[])).unwrap().is_empty());
    }

    #[test]
    fn two_different_credentials_are_ambiguous() {
        let h = headers(&[("authorization", "Bearer a"), ("x-api-key", "b")]);
        assert_eq!(presented_credentials(&h), Err(Ambiguous));
    }

    #[test]
    fn credentials_in_the_query_are_spotted() {
        assert!(query_has_credential("api_key=x"));
        assert!(query_has_credential("limit=5&ACCESS_TOKEN=x"));
        let key = ApiKey::generate(
            latchkey_core::KeyType::Secret,
            latchkey_core::Environment::Test,
        );
        assert!(query_has_credential(&format!(
            "q={}",
            key.secret().expose()
        )));
        assert!(!query_has_credential(
            "limit=5&owner_id=usr_1&status=active"
        ));
    }
}
