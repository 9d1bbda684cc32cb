//! Fixed-width base62 in ASCII order, so that encoded numbers sort like the numbers.

use rand::Rng;

pub const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Encodes `value` as exactly `width` digits (most significant first); higher digits are dropped.
pub fn encode_fixed(mut value: u64, width: usize, out: &mut String) {
    let mut digits = vec![b'0'; width];
    for slot in digits.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    out.extend(digits.into_iter().map(char::from));
}

pub fn is_base62(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Appends `len` characters drawn uniformly from the alphabet using the OS CSPRNG.
pub fn push_random(len: usize, out: &mut String) {
    let mut rng = rand::rngs::OsRng;
    for _ in 0..len {
        out.push(char::from(ALPHABET[rng.gen_range(0..62)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_width_preserves_order() {
        let enc = |v| {
            let mut s = String::new();
            encode_fixed(v, 6, &mut s);
            s
        };
        assert_eq!(enc(0), "000000");
        assert_eq!(enc(61), "00000z");
        assert_eq!(enc(62), "000010");
        assert!(enc(12345) < enc(12346));
        assert!(enc(u32::MAX as u64) > enc(62 * 62 * 62));
    }
}
