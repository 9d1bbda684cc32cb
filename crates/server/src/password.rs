//! Dashboard passwords: argon2id, hashed off the async runtime (it is deliberately slow).

use crate::error::ApiError;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use latchkey_core::Secret;

pub async fn hash(password: Secret) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(|_| ApiError::Internal)?
}

pub fn hash_blocking(password: &Secret) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| ApiError::Internal)
}

pub fn verify_blocking(password: &Secret, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.expose().as_bytes(), &h)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_roundtrip() {
        let h = hash_blocking(&Secret::new("correct horse battery")).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_blocking(&Secret::new("correct horse battery"), &h));
        assert!(!verify_blocking(&Secret::new("wrong"), &h));
    }
}
