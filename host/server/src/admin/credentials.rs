//! SIP credentials: generated passwords, the checks on chosen ones, and
//! the HA1 values stored for both username forms with the password sealed
//! for an audited reveal.

use anyhow::bail;
use edgepbx_sip::auth::Credentials;
use edgepbx_store::{CredentialEntry, SipCredentials, Store};
use rand::Rng;
use rand::distr::Alphanumeric;

use edgepbx_store::Sealer;

/// Length of generated SIP passwords: long enough that guessing is hopeless.
const GENERATED_PASSWORD_LEN: usize = 24;

/// A random password of letters and digits.
pub fn generate_password() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(GENERATED_PASSWORD_LEN)
        .map(char::from)
        .collect()
}

/// HA1 values for both digest usernames of an extension: `<number>` (on the
/// tenant's domain) and `<number>-<CODE>` (on any address), and the password
/// sealed for an administrator's audited reveal.
pub fn credentials_for(
    sealer: &Sealer,
    tenant: &str,
    domain: &str,
    number: &str,
    password: &str,
) -> SipCredentials {
    let entries = [number.to_owned(), format!("{number}-{tenant}")]
        .into_iter()
        .map(|username| {
            let c = Credentials::from_password(&username, domain, password);
            CredentialEntry {
                username,
                md5_ha1: c.md5,
                sha256_ha1: c.sha256,
            }
        })
        .collect();
    SipCredentials {
        entries,
        sealed: Some(sealer.seal(password)),
    }
}

/// Credentials from a given password, or from a generated one. Returns
/// the password and whether it was generated (so it is printed once).
pub fn credentials_from(
    store: &Store,
    tenant: &edgepbx_store::Tenant,
    number: &str,
    password: Option<String>,
) -> anyhow::Result<(SipCredentials, String, bool)> {
    let generated = password.is_none();
    let password = password.unwrap_or_else(generate_password);
    check_password(&password)?;
    let credentials = credentials_for(
        store.sealer(),
        &tenant.code,
        &tenant.sip_domain,
        number,
        &password,
    );
    Ok((credentials, password, generated))
}

/// Checks a SIP password chosen by a person.
pub fn check_password(password: &str) -> anyhow::Result<()> {
    if password.len() < 8 || password.len() > 128 {
        bail!("a SIP password must be 8 to 128 characters long");
    }
    if password.chars().any(|c| c.is_control()) {
        bail!("a SIP password must not contain control characters");
    }
    Ok(())
}
