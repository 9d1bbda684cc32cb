//! The API key parser: `ApiKey::parse`, `ApiKey::check` and `ApiKey::looks_like_key` on any
//! input, and a key built from the input with a correct checksum, which must be accepted.
#![no_main]

use latchkey_core::base62;
use latchkey_core::key::{CHECKSUM_LEN, KEY_LEN, RANDOM_LEN};
use latchkey_core::{ApiKey, Environment, KeyType, ParseKeyError};
use libfuzzer_sys::fuzz_target;

const PREFIX_LEN: usize = KEY_LEN - RANDOM_LEN - CHECKSUM_LEN;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check_any(&text);
    if let Some(key) = well_formed(data) {
        check_well_formed(&key, data);
    }
});

/// Whatever the string, the three entry points agree with each other and with the format.
fn check_any(s: &str) {
    let checked = ApiKey::check(s);
    let parsed = ApiKey::parse(s);
    assert_eq!(
        checked,
        parsed
            .as_ref()
            .map(|k| (k.key_type(), k.environment()))
            .map_err(|e| *e),
        "check() and parse() disagree on {s:?}"
    );
    if !ApiKey::looks_like_key(s) {
        // The query-string scanner must never miss something the parser would accept.
        assert!(
            checked.is_err(),
            "{s:?} parses but does not look like a key"
        );
    }
    if let Ok(k) = parsed {
        assert_eq!(k.secret().expose(), s, "a parsed key keeps its text");
        assert_eq!(s.len(), KEY_LEN);
        let prefix = format!("{}_{}_", k.key_type().prefix(), k.environment().as_str());
        assert!(s.starts_with(&prefix), "{s:?} parsed as {prefix}");
        assert!(s.as_bytes()[PREFIX_LEN..]
            .iter()
            .all(|&b| base62::is_base62(b)));
        let redacted = k.redacted();
        assert!(redacted.starts_with(&prefix) && redacted.ends_with(&s[KEY_LEN - 4..]));
        assert!(
            !redacted.contains(&s[PREFIX_LEN..KEY_LEN - 4]),
            "redacted form leaks the secret"
        );
    } else if let Err(ParseKeyError::BadChecksum) = checked {
        // A bad checksum is only reported for something of the right shape.
        assert!(ApiKey::looks_like_key(s));
    }
}

/// A key of the real format whose type, environment and random part come from the input, with
/// the checksum computed here independently of the parser.
fn well_formed(data: &[u8]) -> Option<String> {
    let (&sel, rest) = data.split_first()?;
    let key_type = if sel & 1 == 0 {
        KeyType::Secret
    } else {
        KeyType::Publishable
    };
    let env = if sel & 2 == 0 {
        Environment::Test
    } else {
        Environment::Live
    };
    let mut s = format!("{}_{}_", key_type.prefix(), env.as_str());
    s.extend(
        (0..RANDOM_LEN)
            .map(|i| rest.get(i).copied().unwrap_or(0))
            .map(|b| char::from(base62::ALPHABET[usize::from(b) % 62])),
    );
    let crc = crc32(&s.as_bytes()[..PREFIX_LEN + RANDOM_LEN]);
    base62::encode_fixed(u64::from(crc), CHECKSUM_LEN, &mut s);
    Some(s)
}

fn check_well_formed(key: &str, data: &[u8]) {
    let k = ApiKey::parse(key).unwrap_or_else(|e| panic!("{key:?} is well formed but {e}"));
    assert_eq!(k.secret().expose(), key);
    assert!(ApiKey::looks_like_key(key));
    // Any one substitution in the random part or the checksum is refused (CRC32 catches every
    // single-character error), so a typo never reaches the store.
    let pos = PREFIX_LEN
        + usize::from(data.get(RANDOM_LEN + 1).copied().unwrap_or(0)) % (KEY_LEN - PREFIX_LEN);
    let to = base62::ALPHABET[usize::from(data.get(RANDOM_LEN + 2).copied().unwrap_or(1)) % 62];
    if key.as_bytes()[pos] != to {
        let mut typo = key.as_bytes().to_vec();
        typo[pos] = to;
        let typo = String::from_utf8(typo).expect("ASCII");
        assert_eq!(
            ApiKey::parse(&typo),
            Err(ParseKeyError::BadChecksum),
            "{typo:?}"
        );
    }
    // Other prefixes and lengths are never keys.
    assert!(ApiKey::parse(&key[1..]).is_err());
    assert!(ApiKey::parse(&format!("{key}0")).is_err());
    assert!(ApiKey::parse(&key.replacen('_', "-", 1)).is_err());
}

/// Bitwise CRC-32 (IEEE, reflected), independent of the crc32fast the parser uses.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
