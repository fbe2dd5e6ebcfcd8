//! Ring groups and virtual extensions: numbers that ring other extensions.
//!
//! A ring group hunts through its members by a strategy; a virtual
//! extension rings all its members at once and has no device of its own.
//! Their numbers share the tenant's dialling namespace with extension
//! numbers and aliases (`dial_name`), so every dialled number reaches
//! exactly one thing.

use std::time::SystemTime;

use surrealdb::Surreal;
use surrealdb::engine::any::Any;
use surrealdb::types::{Datetime, RecordId, SurrealValue};

use crate::StoreError;
use crate::db::{Write, from_datetime, run, version_required};
use crate::extensions::{by_number, extension_number};
use crate::tenants::{code_of, tenant_code, tenant_id};
use edgepbx_model::{ForwardTarget, Group, GroupKind, GroupStrategy, MAX_MEMBERS, MAX_RING_SECS};

/// Group repository; get one from [`Store::groups`](crate::Store::groups).
#[derive(Debug, Clone, Copy)]
pub struct Groups<'a> {
    pub(crate) db: &'a Surreal<Any>,
}

#[derive(SurrealValue)]
struct GroupRow {
    tenant: RecordId,
    number: String,
    name: String,
    kind: String,
    strategy: String,
    members: Vec<String>,
    ring_timeout_secs: u32,
    no_answer: Option<String>,
    /// Set by the database on every write.
    updated_at: Option<Datetime>,
}

impl GroupRow {
    fn into_group(self) -> Result<Group, StoreError> {
        let bad = |e: edgepbx_model::InvalidField| StoreError::InvalidRecord {
            table: "ring_group",
            reason: e.to_string(),
        };
        Ok(Group {
            tenant: code_of("ring_group", self.tenant)?,
            number: self.number,
            name: self.name,
            kind: if self.kind == "virtual" {
                GroupKind::Virtual
            } else {
                GroupKind::Ring
            },
            strategy: GroupStrategy::parse(&self.strategy).map_err(bad)?,
            members: self.members,
            ring_timeout_secs: self.ring_timeout_secs,
            no_answer: self
                .no_answer
                .map(|t| ForwardTarget::parse("no_answer", &t))
                .transpose()
                .map_err(bad)?,
            updated_at: self
                .updated_at
                .as_ref()
                .map_or(SystemTime::UNIX_EPOCH, from_datetime),
        })
    }
}

impl Groups<'_> {
    /// Adds a group (or virtual extension) to a tenant and returns it as
    /// stored.
    ///
    /// The number must be free in the tenant's dialling namespace and every
    /// member an existing extension; nothing is written on failure.
    pub async fn add(&self, tenant: &str, group: Group) -> Result<Group, StoreError> {
        self.write(tenant, group, Write::Add).await
    }

    /// Replaces an existing group (same checks as [`Groups::add`]); with
    /// `if_version`, only if its version ([`Group::updated_at`]) is still
    /// that one ([`StoreError::Changed`] otherwise, and nothing written).
    pub async fn replace(
        &self,
        tenant: &str,
        group: Group,
        if_version: Option<SystemTime>,
    ) -> Result<Group, StoreError> {
        self.write(tenant, group, Write::Replace { if_version })
            .await
    }

    async fn write(&self, tenant: &str, group: Group, how: Write) -> Result<Group, StoreError> {
        let code = tenant_code(tenant)?;
        let number = extension_number(&group.number)?;
        validate(&group)?;
        let (replace, if_version) = how.parts()?;
        let row = GroupRow {
            tenant: tenant_id(&code),
            number: number.clone(),
            name: group.name.clone(),
            kind: match group.kind {
                GroupKind::Ring => "ring".into(),
                GroupKind::Virtual => "virtual".into(),
            },
            strategy: group.strategy.as_str().into(),
            members: group.members.clone(),
            ring_timeout_secs: group.ring_timeout_secs,
            no_answer: group.no_answer.as_ref().map(ToString::to_string),
            updated_at: None,
        };
        run(self
            .db
            .query(
                "BEGIN TRANSACTION;
                IF !record::exists($tenant) { THROW 'edgepbx:not_found:tenant ' + $code; };
                LET $group = type::record('ring_group', [$code, $number]);
                IF $replace AND !record::exists($group) {
                    THROW 'edgepbx:not_found:group ' + $number + ' in tenant ' + $code;
                };
                IF $if_version != NONE AND (SELECT VALUE updated_at FROM $group)[0] != $if_version {
                    THROW 'edgepbx:changed:group ' + $number + ' in tenant ' + $code;
                };
                IF !$replace AND record::exists(type::record('dial_name', [$code, $number])) {
                    THROW 'edgepbx:conflict:number or alias ' + $number + ' in tenant ' + $code;
                };
                FOR $m IN $members {
                    IF !record::exists(type::record('extension', [$code, $m])) {
                        THROW 'edgepbx:not_found:member extension ' + $m + ' in tenant ' + $code;
                    };
                };
                UPSERT $group CONTENT $row;
                UPSERT type::record('dial_name', [$code, $number])
                    CONTENT { tenant: $tenant, name: $number, group: $group };
                COMMIT TRANSACTION;",
            )
            .bind(("tenant", tenant_id(&code)))
            .bind(("code", code.clone()))
            .bind(("number", number.clone()))
            .bind(("members", group.members.clone()))
            .bind(("replace", replace))
            .bind(("if_version", if_version))
            .bind(("row", row)))
        .await?;
        self.get(&code, &number).await?.ok_or_else(|| {
            // Removed by someone else since this write committed.
            StoreError::NotFound {
                what: format!("group {number} in tenant {code}"),
            }
        })
    }

    /// The group (or virtual extension) with this number, if any.
    pub async fn get(&self, tenant: &str, number: &str) -> Result<Option<Group>, StoreError> {
        let row: Option<GroupRow> = by_number(self.db, "ring_group", tenant, number).await?;
        row.map(GroupRow::into_group).transpose()
    }

    /// The tenant's groups, by number.
    pub async fn list(&self, tenant: &str) -> Result<Vec<Group>, StoreError> {
        let code = tenant_code(tenant)?;
        let mut res = run(self
            .db
            .query("SELECT * FROM ring_group WHERE tenant = $tenant")
            .bind(("tenant", tenant_id(&code))))
        .await?;
        let rows: Vec<GroupRow> = res.take(0)?;
        let mut groups = rows
            .into_iter()
            .map(GroupRow::into_group)
            .collect::<Result<Vec<_>, _>>()?;
        groups.sort_by(|a, b| crate::extensions::number_order(&a.number, &b.number));
        Ok(groups)
    }

    /// Every group of every tenant: what the server loads at start.
    pub async fn all(&self) -> Result<Vec<Group>, StoreError> {
        let mut res = run(self.db.query("SELECT * FROM ring_group")).await?;
        let rows: Vec<GroupRow> = res.take(0)?;
        rows.into_iter().map(GroupRow::into_group).collect()
    }

    /// Removes a group and frees its number; with `if_version`, only if
    /// its version ([`Group::updated_at`]) is still that one
    /// ([`StoreError::Changed`] otherwise).
    pub async fn remove(
        &self,
        tenant: &str,
        number: &str,
        if_version: Option<SystemTime>,
    ) -> Result<(), StoreError> {
        let code = tenant_code(tenant)?;
        let number = extension_number(number)?;
        let if_version = version_required(if_version)?;
        run(self
            .db
            .query(
                "BEGIN TRANSACTION;
                LET $group = type::record('ring_group', [$code, $number]);
                IF !record::exists($group) {
                    THROW 'edgepbx:not_found:group ' + $number + ' in tenant ' + $code;
                };
                IF $if_version != NONE AND (SELECT VALUE updated_at FROM $group)[0] != $if_version {
                    THROW 'edgepbx:changed:group ' + $number + ' in tenant ' + $code;
                };
                DELETE dial_name WHERE group = $group;
                DELETE $group;
                COMMIT TRANSACTION;",
            )
            .bind(("code", code))
            .bind(("number", number))
            .bind(("if_version", if_version)))
        .await?;
        Ok(())
    }
}

fn validate(group: &Group) -> Result<(), StoreError> {
    if group.name.chars().count() > 100 || group.name.chars().any(char::is_control) {
        return Err(StoreError::invalid(
            "name",
            "must be at most 100 characters without control characters",
        ));
    }
    if group.members.is_empty() || group.members.len() > MAX_MEMBERS {
        return Err(StoreError::invalid(
            "members",
            format!("needs 1 to {MAX_MEMBERS} member extensions"),
        ));
    }
    for (i, member) in group.members.iter().enumerate() {
        extension_number(member).map_err(|_| {
            StoreError::invalid("members", format!("{member:?} is not an extension number"))
        })?;
        if group.members[..i].contains(member) {
            return Err(StoreError::invalid(
                "members",
                format!("{member} is listed twice"),
            ));
        }
    }
    if !(1..=MAX_RING_SECS).contains(&group.ring_timeout_secs) {
        return Err(StoreError::invalid(
            "ring_timeout_secs",
            format!("must be 1 to {MAX_RING_SECS}"),
        ));
    }
    if let Some(ForwardTarget::Number(n)) = &group.no_answer {
        edgepbx_model::dialable("no_answer", n)?;
    }
    Ok(())
}
