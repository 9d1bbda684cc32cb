//! Fixed-width base62 in ASCII order, so that encoded numbers sort like the numbers.

use rand::RngCore;

pub const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Encodes `value` as exactly `width` (at most 16) digits, most significant first; higher digits
/// are dropped.
pub fn encode_fixed(value: u64, width: usize, out: &mut String) {
    let mut digits = [0u8; 16];
    let digits = &mut digits[..width];
    encode_into(value, digits);
    out.extend(digits.iter().map(|&d| char::from(d)));
}

/// As [`encode_fixed`], into a buffer whose length is the width (no allocation: the key
/// checksum is checked on every request).
pub fn encode_into(mut value: u64, digits: &mut [u8]) {
    for slot in digits.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
}

pub fn is_base62(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Appends `len` characters drawn uniformly from the alphabet using the OS CSPRNG: one read of
/// random bytes, rejection-sampled (bytes ≥ 248 are redrawn) so every character is uniform.
pub fn push_random(len: usize, out: &mut String) {
    let mut rng = rand::rngs::OsRng;
    let mut buf = [0u8; 64];
    let mut pushed = 0;
    while pushed < len {
        rng.fill_bytes(&mut buf);
        for &b in buf.iter().filter(|&&b| b < 248) {
            if pushed == len {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(b % 62)]));
            pushed += 1;
        }
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

    #[test]
    fn random_characters_cover_the_alphabet_evenly() {
        let mut s = String::new();
        push_random(62 * 2000, &mut s);
        assert_eq!(s.len(), 62 * 2000);
        let mut counts = [0usize; 128];
        for b in s.bytes() {
            counts[usize::from(b)] += 1;
        }
        for &c in ALPHABET {
            // Expected 2000 each; a bias of one character in four would be far outside this.
            let n = counts[usize::from(c)];
            assert!(
                (1600..2400).contains(&n),
                "{} drawn {n} times",
                char::from(c)
            );
        }
    }
}
