//! Secrets at rest: SIP passwords sealed for an audited reveal, console
//! passwords hashed with argon2id, random tokens (API keys, sessions) and
//! their SHA-256 digests.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use sha2::{Digest, Sha256};

/// Seals and opens SIP passwords with a key derived from the server key.
#[derive(Clone)]
pub struct Sealer {
    key: [u8; 32],
}

// The key stays out of logs.
impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

impl Sealer {
    /// A sealer whose key is derived from the installation's server key
    /// (domain-separated from the nonce HMAC key it also feeds).
    pub fn new(server_key: &[u8; 32]) -> Sealer {
        let mut h = Sha256::new();
        h.update(b"edgepbx sip-password seal v1\0");
        h.update(server_key);
        Sealer {
            key: h.finalize().into(),
        }
    }

    fn aead(&self) -> LessSafeKey {
        // A 32-byte key is what ChaCha20-Poly1305 takes; this cannot fail.
        LessSafeKey::new(
            UnboundKey::new(&aead::CHACHA20_POLY1305, &self.key)
                .unwrap_or_else(|_| unreachable!("ChaCha20-Poly1305 takes 32-byte keys")),
        )
    }

    /// Encrypts and authenticates `password`: URL-safe base64 of a random
    /// nonce, the ciphertext and the tag.
    pub fn seal(&self, password: &str) -> String {
        let mut nonce = [0u8; aead::NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let mut data = password.as_bytes().to_vec();
        // Sealing in place only fails for inputs of gigabytes.
        if self
            .aead()
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut data)
            .is_err()
        {
            data.clear();
        }
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// The password a [`seal`](Self::seal) holds; `None` when it was
    /// sealed under another key or altered.
    pub fn open(&self, sealed: &str) -> Option<String> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if bytes.len() < aead::NONCE_LEN + aead::CHACHA20_POLY1305.tag_len() {
            return None;
        }
        let (nonce, rest) = bytes.split_at(aead::NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut data = rest.to_vec();
        let plain = self
            .aead()
            .open_in_place(nonce, Aad::empty(), &mut data)
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

/// An argon2id PHC string for a console password or a voicemail PIN.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
}

/// Whether `password` matches a PHC string from [`hash_password`].
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A PHC string that matches no password, verified instead of a missing
/// user's so that an unknown e-mail costs as much time as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let mut random = [0u8; 32];
        rand::rng().fill_bytes(&mut random);
        hash_password(&URL_SAFE_NO_PAD.encode(random)).unwrap_or_default()
    })
}

/// `bytes` random bytes as URL-safe base64.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Lower-case hex SHA-256 of a token.
pub fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_password_opens_only_under_its_key() {
        let sealer = Sealer::new(&[7; 32]);
        let sealed = sealer.seal("s3cret pass");
        assert_eq!(sealer.open(&sealed).as_deref(), Some("s3cret pass"));
        assert_ne!(sealer.seal("s3cret pass"), sealed, "nonces are random");
        assert_eq!(Sealer::new(&[8; 32]).open(&sealed), None);
        let mut altered = sealed.into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            sealer.open(&String::from_utf8(altered).unwrap_or_default()),
            None
        );
        assert_eq!(sealer.open("short"), None);
    }

    #[test]
    fn password_hashes_verify() {
        let hash = hash_password("correct horse").expect("hashes");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "wrong"));
        assert!(!verify_password("not a hash", "wrong"));
        assert!(!verify_password(decoy_hash(), ""));
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
