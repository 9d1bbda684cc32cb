//! Access tokens as JWTs (RFC 9068): the claims we issue and how a bearer string is told apart
//! from an API key.

use crate::permission::PermissionSet;
use serde::{Deserialize, Serialize};

/// The JOSE `typ` of an access token (RFC 9068 §2.1).
pub const JWT_TYPE: &str = "at+jwt";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    /// The user the token acts for.
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    /// The token's id (`tok_…`).
    pub jti: String,
    /// The API key it was obtained from (the OAuth client).
    pub client_id: String,
    pub workspace_id: String,
    pub environment: String,
    /// Space-separated permissions (RFC 8693 §4.2 / RFC 9068 §2.2.3).
    pub scope: String,
}

/// `scope` as OAuth writes it: permissions separated by single spaces.
pub fn scope_string(set: &PermissionSet) -> String {
    set.to_strings().join(" ")
}

/// A compact JWS has three base64url parts; an API key has none of its dots.
pub fn looks_like_jwt(s: &str) -> bool {
    s.starts_with("eyJ")
        && s.bytes().filter(|&b| b == b'.').count() == 2
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_tokens_from_keys() {
        assert!(looks_like_jwt("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln"));
        assert!(!looks_like_jwt("sk_live_abc"));
        assert!(!looks_like_jwt("eyJ.only-one-dot"));
        assert!(!looks_like_jwt("eyJa.b.c d"));
        let set = PermissionSet::parse_all(["documents:read", "billing:*"]).unwrap();
        assert_eq!(scope_string(&set), "billing:* documents:read");
    }
}
