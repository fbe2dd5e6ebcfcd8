//! Console users and API keys: creating them (the CLI and the REST API
//! share these) and recognising a presented key or session token.

use edgepbx_store::{ApiKey, ConsoleUser, Role, Store, StoreError};

use crate::passwords;
use crate::secrets::{random_token, sha256_hex};
use crate::work::Payer;

/// Prefix of every API key: `epk_<id>_<secret>`.
const KEY_PREFIX: &str = "epk_";
/// Prefix of every session token.
pub const SESSION_PREFIX: &str = "eps_";
/// Shortest console password.
const MIN_PASSWORD_CHARS: usize = 10;
/// Longest console password.
const MAX_PASSWORD_BYTES: usize = 256;

/// Creates an API key for `tenant`; returns it with the key, which is
/// shown once and never stored.
pub async fn create_api_key(
    store: &Store,
    tenant: &str,
    name: &str,
    read_only: bool,
) -> Result<(ApiKey, String), StoreError> {
    let id: String = random_token(9)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(10)
        .collect();
    let key = format!("{KEY_PREFIX}{id}_{}", random_token(32));
    let stored = store
        .access()
        .add_key(tenant, &id, name, &sha256_hex(&key), read_only)
        .await?;
    Ok((stored, key))
}

/// The public id of a presented API key, if it has the shape of one.
pub fn api_key_id(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (!id.is_empty() && id.len() <= 32 && !secret.is_empty()).then_some(id)
}

/// Checks a console password chosen by a person.
pub fn check_user_password(password: &str) -> Result<(), StoreError> {
    if password.chars().count() < MIN_PASSWORD_CHARS
        || password.len() > MAX_PASSWORD_BYTES
        || password.chars().any(char::is_control)
    {
        return Err(StoreError::InvalidField {
            field: "password",
            reason: format!(
                "must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_BYTES} characters without control characters"
            ),
        });
    }
    Ok(())
}

/// Adds a console user with a password (hashed through the password
/// gate); `extension` is an extension user's.
pub async fn create_user(
    store: &Store,
    email: &str,
    role: Role,
    tenant: Option<&str>,
    extension: Option<&str>,
    password: &str,
) -> anyhow::Result<ConsoleUser> {
    check_user_password(password)?;
    let hash = passwords::hash(Payer::of(tenant), password.to_owned()).await?;
    Ok(store
        .access()
        .add_user(email, &hash, role, tenant, extension)
        .await?)
}

/// Replaces a console user's password (their sessions end); the CLI's,
/// so the operators' share of the password gate pays.
pub async fn set_user_password(store: &Store, email: &str, password: &str) -> anyhow::Result<()> {
    check_user_password(password)?;
    let hash = passwords::hash(Payer::Operators, password.to_owned()).await?;
    Ok(store.access().set_user_password(email, &hash).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_ids_are_read_from_the_key() {
        assert_eq!(api_key_id("epk_abc123_secretpart"), Some("abc123"));
        for bad in ["abc", "epk_", "epk_abc", "epk__secret", "eps_abc_x"] {
            assert_eq!(api_key_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(check_user_password("short").is_err());
        assert!(check_user_password("long enough pw").is_ok());
        assert!(check_user_password("ten chars\n!").is_err());
    }
}
