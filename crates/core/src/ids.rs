//! Prefixed, opaque, time-ordered object ids (`key_…`, `usr_…`): sorting ids sorts by creation,
//! which is what cursor pagination relies on.

use crate::base62;
use std::time::{SystemTime, UNIX_EPOCH};

pub const WORKSPACE: &str = "ws";
pub const USER: &str = "usr";
pub const KEY: &str = "key";
pub const TOKEN: &str = "tok";
pub const EVENT: &str = "evt";
pub const GRANT: &str = "grt";
pub const WEBHOOK: &str = "wh";
pub const DELIVERY: &str = "whd";

const TIME_DIGITS: usize = 8;
const RANDOM_DIGITS: usize = 12;
/// Base62 characters after `{prefix}_`: every id is `{prefix}_[0-9A-Za-z]{20}`.
pub const BODY_LEN: usize = TIME_DIGITS + RANDOM_DIGITS;

pub fn new_id(prefix: &str) -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut id = String::with_capacity(prefix.len() + 1 + TIME_DIGITS + RANDOM_DIGITS);
    id.push_str(prefix);
    id.push('_');
    base62::encode_fixed(millis, TIME_DIGITS, &mut id);
    base62::push_random(RANDOM_DIGITS, &mut id);
    id
}

/// True when `id` has the shape of an id with this prefix; used to reject junk cursors and paths early.
pub fn is_id(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|body| body.len() == BODY_LEN && body.bytes().all(base62::is_base62))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_and_ordered() {
        let a = new_id(KEY);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id(KEY);
        assert!(a.starts_with("key_") && is_id(KEY, &a));
        assert!(a < b);
        assert!(!is_id(USER, &a));
        assert!(!is_id(KEY, "key_short"));
    }
}
