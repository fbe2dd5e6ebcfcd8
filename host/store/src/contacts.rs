//! The company directory: contacts of a tenant (people and numbers phones
//! show in their directory and the console lists), each optionally linked
//! to one of the tenant's extensions, whose caller ID it then names.

use std::time::SystemTime;

use edgepbx_model::dialable;
use surrealdb::Surreal;
use surrealdb::engine::any::Any;
use surrealdb::types::{Datetime, RecordId, SurrealValue};

use crate::StoreError;
use crate::db::{Write, from_datetime, run, version_required};
use crate::extensions::{email, extension_number};
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
    /// When it last changed: its version. Set by the store; what a write
    /// passes is ignored.
    pub updated_at: SystemTime,
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
    /// Set by the database on every write.
    updated_at: Option<Datetime>,
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
            updated_at: r
                .updated_at
                .as_ref()
                .map_or(SystemTime::UNIX_EPOCH, from_datetime),
        }
    }
}

/// Contact repository; get one from [`Store::contacts`](crate::Store::contacts).
#[derive(Debug, Clone, Copy)]
pub struct Contacts<'a> {
    pub(crate) db: &'a Surreal<Any>,
}

impl Contacts<'_> {
    /// Adds a contact and returns it as stored. Its id must be new in the
    /// tenant and a linked extension must exist; nothing is written on
    /// failure.
    pub async fn add(&self, tenant: &str, contact: Contact) -> Result<Contact, StoreError> {
        self.write(tenant, contact, Write::Add).await
    }

    /// Replaces an existing contact (same checks as [`Contacts::add`]);
    /// with `if_version`, only if its version ([`Contact::updated_at`]) is
    /// still that one ([`StoreError::Changed`] otherwise, and nothing
    /// written).
    pub async fn replace(
        &self,
        tenant: &str,
        contact: Contact,
        if_version: Option<SystemTime>,
    ) -> Result<Contact, StoreError> {
        self.write(tenant, contact, Write::Replace { if_version })
            .await
    }

    async fn write(
        &self,
        tenant: &str,
        contact: Contact,
        how: Write,
    ) -> Result<Contact, StoreError> {
        let code = tenant_code(tenant)?;
        contact.validate()?;
        let (replace, if_version) = how.parts()?;
        let row = ContactRow {
            contact_id: contact.id.clone(),
            tenant: tenant_id(&code),
            name: contact.name.clone(),
            number: contact.number.clone(),
            email: contact.email.clone(),
            company: contact.company.clone(),
            extension: contact.extension.clone(),
            updated_at: None,
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
                IF $replace AND !record::exists($contact) {
                    THROW 'edgepbx:not_found:contact ' + $row.contact_id;
                };
                IF !$replace AND record::exists($contact) {
                    THROW 'edgepbx:conflict:contact ' + $row.contact_id + ' already exists';
                };
                IF $if_version != NONE AND (SELECT VALUE updated_at FROM $contact)[0] != $if_version {
                    THROW 'edgepbx:changed:contact ' + $row.contact_id;
                };
                IF !$replace
                    AND array::len((SELECT VALUE id FROM contact WHERE tenant = $tenant)) >= $max {
                    THROW 'edgepbx:limit:max_contacts:' + <string> $max;
                };
                UPSERT $contact CONTENT $row;
                COMMIT TRANSACTION;",
            )
            .bind(("tenant", tenant_id(&code)))
            .bind(("code", code.clone()))
            .bind(("max", MAX_CONTACTS as i64))
            .bind(("replace", replace))
            .bind(("if_version", if_version))
            .bind(("row", row)))
        .await?;
        self.get(&code, &contact.id).await?.ok_or_else(|| {
            // Removed by someone else since this write committed.
            StoreError::NotFound {
                what: format!("contact {}", contact.id),
            }
        })
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

    /// Removes a contact; with `if_version`, only if its version
    /// ([`Contact::updated_at`]) is still that one ([`StoreError::Changed`]
    /// otherwise).
    pub async fn remove(
        &self,
        tenant: &str,
        id: &str,
        if_version: Option<SystemTime>,
    ) -> Result<(), StoreError> {
        let code = tenant_code(tenant)?;
        let if_version = version_required(if_version)?;
        run(self
            .db
            .query(
                "BEGIN TRANSACTION;
                LET $contact = type::record('contact', [$code, $id]);
                IF !record::exists($contact) { THROW 'edgepbx:not_found:contact ' + $id; };
                IF $if_version != NONE AND (SELECT VALUE updated_at FROM $contact)[0] != $if_version {
                    THROW 'edgepbx:changed:contact ' + $id;
                };
                DELETE $contact;
                COMMIT TRANSACTION;",
            )
            .bind(("code", code))
            .bind(("id", id.to_owned()))
            .bind(("if_version", if_version)))
        .await?;
        Ok(())
    }
}
