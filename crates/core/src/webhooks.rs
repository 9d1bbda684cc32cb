//! Webhooks (SPEC §12.1): which events exist, which filters match them, and the Standard
//! Webhooks v1 signature.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Every event an endpoint can subscribe to.
pub const EVENTS: &[&str] = &[
    "key.created",
    "key.updated",
    "key.rolled",
    "key.revoked",
    "key.expiring",
    "key.expired",
    "key.leaked",
    "token.issued",
    "token.revoked",
    "member.added",
    "member.role_changed",
    "member.removed",
    "usage.exceeded",
];

/// The prefix of an endpoint secret; the rest is the standard base64 of the signing key.
pub const SECRET_PREFIX: &str = "whsec_";

pub fn is_event(action: &str) -> bool {
    EVENTS.contains(&action)
}

/// A filter is `*`, `{group}.*` for a group that has events, or an event's exact name.
pub fn is_valid_filter(filter: &str) -> bool {
    match filter.strip_suffix(".*") {
        _ if filter == "*" => true,
        Some(group) => EVENTS
            .iter()
            .any(|e| e.split_once('.').is_some_and(|(g, _)| g == group)),
        None => is_event(filter),
    }
}

pub fn filter_matches(filter: &str, event: &str) -> bool {
    match filter.strip_suffix(".*") {
        _ if filter == "*" => true,
        Some(group) => event
            .strip_prefix(group)
            .is_some_and(|rest| rest.starts_with('.')),
        None => filter == event,
    }
}

pub fn any_filter_matches<S: AsRef<str>>(filters: &[S], event: &str) -> bool {
    filters.iter().any(|f| filter_matches(f.as_ref(), event))
}

/// The signing key inside a `whsec_…` secret; `None` when it is not one.
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    B64.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()
}

/// `v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">`, one entry of `webhook-signature`.
pub fn sign(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The known-answer vector the Standard Webhooks libraries publish in their own tests
    /// (standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py).
    #[test]
    fn signs_the_standard_webhooks_known_answer() {
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn filters() {
        assert!(filter_matches("*", "member.added"));
        assert!(filter_matches("key.*", "key.revoked"));
        assert!(!filter_matches("key.*", "member.added"));
        assert!(!filter_matches("key.*", "keyring.x"));
        assert!(filter_matches("key.revoked", "key.revoked"));
        assert!(!filter_matches("key.revoked", "key.created"));
        assert!(is_valid_filter("*") && is_valid_filter("key.*") && is_valid_filter("key.leaked"));
        assert!(!is_valid_filter("nope.*") && !is_valid_filter("key.nope") && !is_valid_filter(""));
    }
}
