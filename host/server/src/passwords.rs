//! Console passwords and voicemail PINs, hashed with argon2id.
//!
//! Argon2 is memory-hard on purpose: one hash or verification takes about
//! 19 MiB and tens of milliseconds of a core. Every one therefore runs
//! through one [`Gate`], off the async workers: at most as many at once as
//! the machine has cores, at most half of those for any one tenant, and
//! [`MAX_QUEUED`] running or waiting for one tenant.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::work::{Gate, Payer, WorkError};

/// Hashes and verifications one payer may have running or waiting.
const MAX_QUEUED: usize = 64;

/// An argon2id PHC string for `secret`, hashed on `payer`'s share.
pub async fn hash(payer: Payer<'_>, secret: String) -> anyhow::Result<String> {
    gate().run(payer, move || hash_now(&secret)).await?
}

/// Whether `secret` matches a PHC string from [`hash`], checked on
/// `payer`'s share.
pub async fn verify(payer: Payer<'_>, hash: String, secret: String) -> Result<bool, WorkError> {
    gate().run(payer, move || verify_now(&hash, &secret)).await
}

/// A PHC string that matches no password, verified instead of a missing
/// user's so that an unknown name costs as much time as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_now(&crate::secrets::random_token(32)).unwrap_or_default())
}

fn hash_now(secret: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
}

fn verify_now(hash: &str, secret: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok()
    })
}

/// The process's one gate, sized to its cores.
fn gate() -> &'static Gate {
    static GATE: OnceLock<Gate> = OnceLock::new();
    GATE.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Gate::new(cores, (cores / 2).max(1), MAX_QUEUED)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn password_hashes_verify() {
        let hash = hash(Payer::Tenant("T1"), "correct horse".to_owned())
            .await
            .expect("hashes");
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            verify(Payer::Operators, hash.clone(), "correct horse".to_owned())
                .await
                .expect("runs")
        );
        assert!(
            !verify(Payer::Operators, hash, "wrong".to_owned())
                .await
                .expect("runs")
        );
        assert!(
            !verify(
                Payer::Operators,
                "not a hash".to_owned(),
                "wrong".to_owned()
            )
            .await
            .expect("runs")
        );
        assert!(
            !verify(Payer::Operators, decoy_hash().to_owned(), String::new())
                .await
                .expect("runs")
        );
    }
}
