//! The company directory: contacts of a tenant (people and numbers phones
//! show in their directory and the console lists), each optionally linked
//! to one of the tenant's extensions, whose caller ID it then names.

use surrealdb::Surreal;
use surrealdb::engine::any::Any;
use surrealdb::types::{RecordId, SurrealValue};

use crate::StoreError;
use crate::db::run;
use crate::extensions::{email, extension_number};
use crate::settings::dialable;
use crate::tenants::{tenant_code, tenant_id};

/// Most contacts per tenant.
pub const MAX_CONTACTS: usize = 10_000;

/// A directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// Its id within the tenant (letters and digits).
    pub id: String,
    /// Name shown.
    pub name: String,
    /// Number to dial.
    pub number: String,
    /// E-mail address.
    pub email: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// The extension it stands for, if any.
    pub extension: Option<String>,
}

impl Contact {
    /// Checks every value; the error names the field.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.id.is_empty()
            || self.id.len() > 32
            || !self.id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(StoreError::invalid(
                "id",
                "must be 1 to 32 letters and digits",
            ));
        }
        text("name", &self.name)?;
        dialable("number", &self.number)?;
        if let Some(e) = &self.email {
            email("email", e)?;
        }
        if let Some(c) = &self.company {
            text("company", c)?;
        }
        if let Some(x) = &self.extension {
            extension_number(x)
                .map_err(|_| StoreError::invalid("extension", "must be 1 to 15 digits"))?;
        }
        Ok(())
    }
}

fn text(field: &'static str, value: &str) -> Result<(), StoreError> {
    if value.trim().is_empty() || value.chars().count() > 100 || value.chars().any(char::is_control)
    {
        return Err(StoreError::invalid(
            field,
            "must be 1 to 100 characters without control characters",
        ));
    }
    Ok(())
}

#[derive(SurrealValue)]
struct ContactRow {
    contact_id: String,
    tenant: RecordId,
    name: String,
    number: String,
    email: Option<String>,
    company: Option<String>,
    extension: Option<String>,
}

impl From<ContactRow> for Contact {
    fn from(r: ContactRow) -> Self {
        Contact {
            id: r.contact_id,
            name: r.name,
            number: r.number,
            email: r.email,
            company: r.company,
            extension: r.extension,
        }
    }
}

/// Contact repository; get one from [`Store::contacts`](crate::Store::contacts).
#[derive(Debug, Clone, Copy)]
pub struct Contacts<'a> {
    pub(crate) db: &'a Surreal<Any>,
}

impl Contacts<'_> {
    /// Creates or replaces a contact. A linked extension must exist.
    pub async fn put(&self, tenant: &str, contact: Contact) -> Result<Contact, StoreError> {
        let code = tenant_code(tenant)?;
        contact.validate()?;
        let row = ContactRow {
            contact_id: contact.id.clone(),
            tenant: tenant_id(&code),
            name: contact.name.clone(),
            number: contact.number.clone(),
            email: contact.email.clone(),
            company: contact.company.clone(),
            extension: contact.extension.clone(),
        };
        run(self
            .db
            .query(
                "BEGIN TRANSACTION;
                IF !record::exists($tenant) { THROW 'edgepbx:not_found:tenant ' + $code; };
                IF $row.extension != NONE
                    AND !record::exists(type::record('extension', [$code, $row.extension])) {
                    THROW 'edgepbx:not_found:extension ' + $row.extension + ' in tenant ' + $code;
                };
                LET $contact = type::record('contact', [$code, $row.contact_id]);
                IF !record::exists($contact)
                    AND array::len((SELECT VALUE id FROM contact WHERE tenant = $tenant)) >= $max {
                    THROW 'edgepbx:limit:max_contacts:' + <string> $max;
                };
                UPSERT $contact CONTENT $row;
                COMMIT TRANSACTION;",
            )
            .bind(("tenant", tenant_id(&code)))
            .bind(("code", code))
            .bind(("max", MAX_CONTACTS as i64))
            .bind(("row", row)))
        .await?;
        Ok(contact)
    }

    /// One contact.
    pub async fn get(&self, tenant: &str, id: &str) -> Result<Option<Contact>, StoreError> {
        let code = tenant_code(tenant)?;
        let mut res = run(self
            .db
            .query("SELECT * FROM type::record('contact', [$code, $id])")
            .bind(("code", code))
            .bind(("id", id.to_owned())))
        .await?;
        let row: Option<ContactRow> = res.take(0)?;
        Ok(row.map(Contact::from))
    }

    /// A tenant's contacts, by name.
    pub async fn list(&self, tenant: &str) -> Result<Vec<Contact>, StoreError> {
        let mut res = run(self
            .db
            .query("SELECT * FROM contact WHERE tenant = $tenant ORDER BY name")
            .bind(("tenant", tenant_id(&tenant_code(tenant)?))))
        .await?;
        let rows: Vec<ContactRow> = res.take(0)?;
        Ok(rows.into_iter().map(Contact::from).collect())
    }

    /// Removes a contact.
    pub async fn remove(&self, tenant: &str, id: &str) -> Result<(), StoreError> {
        let code = tenant_code(tenant)?;
        run(self
            .db
            .query(
                "BEGIN TRANSACTION;
                LET $contact = type::record('contact', [$code, $id]);
                IF !record::exists($contact) { THROW 'edgepbx:not_found:contact ' + $id; };
                DELETE $contact;
                COMMIT TRANSACTION;",
            )
            .bind(("code", code))
            .bind(("id", id.to_owned())))
        .await?;
        Ok(())
    }
}
