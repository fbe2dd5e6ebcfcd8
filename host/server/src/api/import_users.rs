//! The `console_users` column of the extensions CSV: the extension users
//! of each extension, by e-mail, separated by `;`. Exported as they are;
//! on import, a column the file has makes each extension's users exactly
//! those listed: a new address becomes a user with a generated password
//! (in the report, once), an address no longer listed loses its access.

use std::collections::HashMap;

use edgepbx_store::{PersonalUser, Role};
use serde::Serialize;
use utoipa::ToSchema;

use super::imports::RowError;
use super::{Api, Problem};
use crate::admin::credentials::generate_password;

/// The column's name.
pub const USERS_COLUMN: &str = "console_users";

/// Most users one extension may be given in a file.
const MAX_PER_EXTENSION: usize = 10;

/// The console password of a user an import created.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserPassword {
    /// Login e-mail.
    email: String,
    /// Their extension.
    extension: String,
    /// Their password: give it to them; they cannot see it again.
    password: String,
}

/// The extension users of a row: those of `number` already (kept) and
/// the addresses to create, or the row's error.
pub(super) async fn check(
    api: &Api,
    tenant: &str,
    number: &str,
    cell: Option<&str>,
) -> Result<(Vec<PersonalUser>, Vec<String>), RowError> {
    let err = |message: String| RowError::new(0, USERS_COLUMN, message);
    let mut kept = Vec::new();
    let mut created: Vec<String> = Vec::new();
    let addresses: Vec<String> = cell
        .unwrap_or_default()
        .split(';')
        .map(|a| a.trim().to_ascii_lowercase())
        .filter(|a| !a.is_empty())
        .collect();
    if addresses.len() > MAX_PER_EXTENSION {
        return Err(err(format!(
            "at most {MAX_PER_EXTENSION} users per extension"
        )));
    }
    for address in addresses {
        edgepbx_store::email(USERS_COLUMN, &address).map_err(|e| err(e.to_string()))?;
        if kept.iter().any(|u: &PersonalUser| u.email == address) || created.contains(&address) {
            return Err(err(format!("{address} is named twice")));
        }
        let user = api
            .admin
            .store
            .access()
            .user(&address)
            .await
            .map_err(|e| err(e.to_string()))?;
        match user {
            None => created.push(address),
            Some(u)
                if u.role == Role::ExtensionUser
                    && u.tenant.as_deref() == Some(tenant)
                    && u.extension.as_deref() == Some(number) =>
            {
                kept.push(PersonalUser {
                    email: address,
                    password_hash: None,
                });
            }
            Some(_) => return Err(err(format!("{address} is already a console user"))),
        }
    }
    Ok((kept, created))
}

/// Gives each address of `created` a generated password: the users to
/// write, and the passwords for the report.
pub(super) async fn issue(
    tenant: &str,
    number: &str,
    created: Vec<String>,
) -> Result<(Vec<PersonalUser>, Vec<UserPassword>), Problem> {
    let mut users = Vec::with_capacity(created.len());
    let mut passwords = Vec::with_capacity(created.len());
    for email in created {
        let password = generate_password();
        let hash =
            crate::passwords::hash(crate::work::Payer::Tenant(tenant), password.clone()).await?;
        users.push(PersonalUser {
            email: email.clone(),
            password_hash: Some(hash),
        });
        passwords.push(UserPassword {
            email,
            extension: number.to_owned(),
            password,
        });
    }
    Ok((users, passwords))
}

/// The extension users of the tenant's extensions, as the column's cells.
pub(super) async fn cells(api: &Api, tenant: &str) -> Result<HashMap<String, String>, Problem> {
    let mut cells: HashMap<String, String> = HashMap::new();
    for user in api.admin.store.access().users(Some(tenant)).await? {
        if let Some(number) = user.extension {
            let cell = cells.entry(number).or_default();
            if !cell.is_empty() {
                cell.push(';');
            }
            cell.push_str(&user.email);
        }
    }
    Ok(cells)
}
