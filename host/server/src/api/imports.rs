//! CSV export and import of extensions with their settings.
//!
//! An import runs as a job the client polls for progress: every row is
//! checked first (against the file's other rows and the tenant's numbers
//! and aliases); a dry run stops there with the report, a commit writes all
//! rows in one transaction or, when any row has an error, nothing.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use edgepbx_model::sheet::{self, Row, Sheet, SheetError};
use edgepbx_store::{Extension, ExtensionWrite, FollowMe, StoreError, WriteMode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Scope, TenantParam, WriteScope};
use super::extensions::{
    CallerId, DirectoryEntry, Editable, FollowMeStep, FollowMeView, Forwarding, Voicemail,
    editable, new_credentials, reload, settings_of,
};
use super::import_users::{self, USERS_COLUMN, UserPassword};
use super::{Api, Problem, State};

/// The columns, in export order.
pub const COLUMNS: &[&str] = &[
    "number",
    "name",
    "aliases",
    "ring_timeout_secs",
    "dnd",
    "away",
    "forward_unconditional",
    "forward_busy",
    "forward_no_answer",
    "forward_offline",
    "follow_me",
    "voicemail",
    "voicemail_email",
    "voicemail_attach_audio",
    "voicemail_delete_after_email",
    "voicemail_skip_pin_on_own_phone",
    "outbound_caller_id",
    "inbound_prefix",
    "directory_listed",
    "directory_email",
    "directory_department",
    "allowed_destinations",
    USERS_COLUMN,
];
/// A column import accepts besides the exported ones.
const PASSWORD_COLUMN: &str = "password";
/// Finished jobs kept for their reports.
const KEPT_JOBS: usize = 50;
/// Imports of one tenant running at once.
const MAX_RUNNING_PER_TENANT: usize = 1;
/// Most errors one report lists.
const MAX_REPORTED_ERRORS: usize = 1_000;
/// Import jobs, by id. A finished job's report (with the passwords it
/// generated) is kept for a while, then forgotten.
pub struct Jobs {
    jobs: Mutex<HashMap<String, Arc<Mutex<Job>>>>,
    keep_for: Duration,
}

struct Job {
    tenant: String,
    started: Instant,
    /// When it ended (done or failed).
    finished: Option<Instant>,
    status: ImportStatus,
}

/// An import's progress and, when done, its report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportStatus {
    /// The job's id.
    id: String,
    /// `running`, `done` or `failed`.
    state: &'static str,
    /// Only checked, nothing written.
    dry_run: bool,
    /// Rows checked so far.
    processed: usize,
    /// Data rows in the file.
    total: usize,
    /// What is wrong, row by row (row 1 is the header).
    errors: Vec<RowError>,
    /// Extensions that are (or would be) created.
    created: usize,
    /// Extensions that are (or would be) changed.
    updated: usize,
    /// The rows were written.
    committed: bool,
    /// Passwords of created extensions: after a commit, in the first
    /// report read, and never again.
    passwords: Vec<NewPassword>,
    /// Passwords of created console users (the `console_users` column),
    /// handed out the same way.
    user_passwords: Vec<UserPassword>,
}

/// A row's error.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct RowError {
    /// Row in the file, the header being row 1 (0: the file as a whole).
    row: usize,
    /// The column.
    field: String,
    /// What is wrong.
    message: String,
}

impl RowError {
    /// `message` about `field` in row `row` (the header being row 1).
    pub(super) fn new(row: usize, field: impl Into<String>, message: impl Into<String>) -> Self {
        RowError {
            row,
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The password of an extension an import created.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NewPassword {
    /// Extension number.
    number: String,
    /// Its SIP password.
    password: String,
}

/// Import options.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImportParams {
    /// Tenant (system admins).
    tenant: Option<String>,
    /// Check only (default true): nothing is written.
    dry_run: Option<bool>,
}

/// Export options.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// Tenant (system admins).
    tenant: Option<String>,
    /// Comma-separated numbers; all extensions when omitted.
    numbers: Option<String>,
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// One extension as a CSV record, in [`COLUMNS`] order, with `users`
/// (the cells of its console users by extension).
fn record(e: &Extension, users: &HashMap<String, String>) -> Vec<String> {
    let ed = editable(e);
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    vec![
        e.number.clone(),
        ed.name,
        ed.aliases.join(";"),
        ed.ring_timeout_secs
            .map(|s| s.to_string())
            .unwrap_or_default(),
        yes_no(ed.dnd).into(),
        yes_no(ed.away).into(),
        opt(&ed.forwarding.unconditional),
        opt(&ed.forwarding.busy),
        opt(&ed.forwarding.no_answer),
        opt(&ed.forwarding.offline),
        e.settings
            .follow_me
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        yes_no(ed.voicemail.enabled).into(),
        opt(&ed.voicemail.email),
        yes_no(ed.voicemail.attach_audio).into(),
        yes_no(ed.voicemail.delete_after_email).into(),
        yes_no(ed.voicemail.skip_pin_on_own_phone).into(),
        opt(&ed.caller_id.outbound),
        opt(&ed.caller_id.inbound_prefix),
        yes_no(ed.directory.listed).into(),
        opt(&ed.directory.email),
        opt(&ed.directory.department),
        ed.allowed_destinations,
        users.get(&e.number).cloned().unwrap_or_default(),
    ]
}

/// Exports extensions with their settings as CSV.
#[utoipa::path(get, path = "/api/v1/extensions/export.csv", tag = "import-export",
    params(ExportParams),
    responses((status = 200, content_type = "text/csv", body = String), (status = 404, body = Problem)))]
async fn export(
    AxumState(api): AxumState<State>,
    scope: Scope,
    Query(p): Query<ExportParams>,
) -> Result<Response, Problem> {
    let _ = p.tenant;
    let all = api.admin.store.extensions().list(&scope.tenant).await?;
    let chosen: Vec<&Extension> = match &p.numbers {
        None => all.iter().collect(),
        Some(list) => {
            let wanted: HashSet<&str> = list.split(',').map(str::trim).collect();
            for n in &wanted {
                if !all.iter().any(|e| e.number == *n) {
                    return Err(Problem::not_found(format!("extension {n}")));
                }
            }
            all.iter()
                .filter(|e| wanted.contains(e.number.as_str()))
                .collect()
        }
    };
    let users = import_users::cells(&api, &scope.tenant).await?;
    csv_download(
        COLUMNS,
        chosen.iter().map(|e| record(e, &users)),
        "attachment; filename=\"extensions.csv\"",
    )
}

/// A CSV file of `records` under the header `columns` (a [`sheet`], its
/// cells safe to open in a spreadsheet), sent as the download
/// `disposition` names.
pub(super) fn csv_download(
    columns: &[&str],
    records: impl Iterator<Item = Vec<String>>,
    disposition: &'static str,
) -> Result<Response, Problem> {
    let bytes = sheet::write(columns, records).map_err(anyhow::Error::from)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

/// Starts an import of extensions from CSV (a dry run unless
/// `dry_run=false`); poll the job for progress and the report.
#[utoipa::path(post, path = "/api/v1/imports", tag = "import-export", params(ImportParams),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 202, body = ImportStatus), (status = 422, body = Problem)))]
async fn start(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
    Query(p): Query<ImportParams>,
    body: Bytes,
) -> Result<(StatusCode, Json<ImportStatus>), Problem> {
    let _ = p.tenant;
    let dry_run = p.dry_run.unwrap_or(true);
    let text = std::str::from_utf8(&body)
        .map_err(|_| Problem::field("body", "the CSV file must be UTF-8"))?;
    let sheet = parse(text, api.config.max_import_rows)?;
    if api.imports.running(&scope.tenant) >= MAX_RUNNING_PER_TENANT {
        return Err(Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "an import of this tenant is still running; wait for it",
        ));
    }
    let id = crate::secrets::random_token(12);
    let status = ImportStatus {
        id: id.clone(),
        state: "running",
        dry_run,
        processed: 0,
        total: sheet.len(),
        errors: Vec::new(),
        created: 0,
        updated: 0,
        committed: false,
        passwords: Vec::new(),
        user_passwords: Vec::new(),
    };
    let job = Arc::new(Mutex::new(Job {
        tenant: scope.tenant.clone(),
        started: Instant::now(),
        finished: None,
        status: status.clone(),
    }));
    api.imports.insert(id, job.clone());
    let worker = api.clone();
    tokio::spawn(async move {
        let outcome = run(&worker, &scope.tenant, sheet, dry_run, &job).await;
        let mut j = lock(&job);
        j.finished = Some(Instant::now());
        match outcome {
            Ok(()) => j.status.state = "done",
            Err(problem) => {
                j.status.state = "failed";
                j.status.committed = false;
                j.status.passwords.clear();
                j.status.user_passwords.clear();
                j.status.errors.push(RowError {
                    row: 0,
                    field: problem
                        .errors
                        .first()
                        .map_or_else(|| "file".to_owned(), |f| column_of(&f.field)),
                    message: problem.detail,
                });
            }
        }
    });
    Ok((StatusCode::ACCEPTED, Json(status)))
}

/// An import's progress and report.
#[utoipa::path(get, path = "/api/v1/imports/{id}", tag = "import-export",
    params(TenantParam, ("id" = String, Path)),
    responses((status = 200, body = ImportStatus), (status = 404, body = Problem)))]
async fn status(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
    Path(id): Path<String>,
) -> Result<Json<ImportStatus>, Problem> {
    let job = api
        .imports
        .get(&id)
        .ok_or_else(|| Problem::not_found(format!("import {id}")))?;
    let mut j = lock(&job);
    if j.tenant != scope.tenant {
        return Err(Problem::not_found(format!("import {id}")));
    }
    let mut status = j.status.clone();
    // The generated passwords are handed out once.
    status.passwords = std::mem::take(&mut j.status.passwords);
    status.user_passwords = std::mem::take(&mut j.status.user_passwords);
    Ok(Json(status))
}

fn lock(job: &Mutex<Job>) -> std::sync::MutexGuard<'_, Job> {
    job.lock().unwrap_or_else(|e| e.into_inner())
}

impl Jobs {
    /// No jobs yet; reports kept `keep_for` after their job ended.
    pub fn new(keep_for: Duration) -> Jobs {
        Jobs {
            jobs: Mutex::default(),
            keep_for,
        }
    }

    /// Whether `job` is finished and past its keeping.
    fn expired(&self, job: &Job) -> bool {
        job.finished.is_some_and(|at| at.elapsed() >= self.keep_for)
    }

    fn insert(&self, id: String, job: Arc<Mutex<Job>>) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.retain(|_, j| !self.expired(&lock(j)));
        if jobs.len() >= KEPT_JOBS
            && let Some(oldest) = jobs
                .iter()
                .filter(|(_, j)| lock(j).status.state != "running")
                .min_by_key(|(_, j)| lock(j).started)
                .map(|(k, _)| k.clone())
        {
            jobs.remove(&oldest);
        }
        jobs.insert(id, job);
    }

    /// Jobs of `tenant` still running.
    fn running(&self, tenant: &str) -> usize {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|j| {
                let j = lock(j);
                j.tenant == tenant && j.status.state == "running"
            })
            .count()
    }

    /// The job, unless its report expired; expired ones are forgotten on
    /// the way.
    fn get(&self, id: &str) -> Option<Arc<Mutex<Job>>> {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.retain(|_, j| !self.expired(&lock(j)));
        jobs.get(id).cloned()
    }
}

/// Reads the file; a malformed file or header is refused at once.
fn parse(text: &str, max_rows: usize) -> Result<Sheet, Problem> {
    let mut columns = COLUMNS.to_vec();
    columns.push(PASSWORD_COLUMN);
    Sheet::read(text, &columns, &["number", "name"], max_rows).map_err(sheet_problem)
}

/// A file that is not the sheet expected, as a problem about the column
/// at fault or the body.
pub(super) fn sheet_problem(error: SheetError) -> Problem {
    Problem::field(error.column().unwrap_or("body"), error.to_string())
}

/// The CSV column of an API field.
fn column_of(field: &str) -> String {
    match field {
        "forwarding.unconditional" => "forward_unconditional".into(),
        "forwarding.busy" => "forward_busy".into(),
        "forwarding.no_answer" => "forward_no_answer".into(),
        "forwarding.offline" => "forward_offline".into(),
        "voicemail.email" => "voicemail_email".into(),
        "voicemail.attach_audio" => "voicemail_attach_audio".into(),
        "voicemail.delete_after_email" => "voicemail_delete_after_email".into(),
        "voicemail.skip_pin_on_own_phone" => "voicemail_skip_pin_on_own_phone".into(),
        "caller_id.outbound" => "outbound_caller_id".into(),
        "caller_id.inbound_prefix" => "inbound_prefix".into(),
        "directory.email" => "directory_email".into(),
        "directory.department" => "directory_department".into(),
        "follow_me.mode" => "follow_me".into(),
        other => other.into(),
    }
}

/// One checked row, ready to write.
struct Checked {
    write: ExtensionWrite,
    password: Option<String>,
    /// Console users to create, by e-mail.
    new_users: Vec<String>,
}

/// A cell, `None` when the column is absent or the cell empty.
/// Cells are trimmed, except the inbound prefix, whose trailing space
/// separates it from the caller's name, and the marks of
/// [`sheet::write`] are taken off.
fn cell<'a>(row: &Row<'a>, column: &str) -> Option<&'a str> {
    match column {
        // Never exported, so never marked.
        PASSWORD_COLUMN => row.raw(column).map(str::trim),
        "inbound_prefix" => row.raw(column).map(sheet::unmarked),
        _ => row.cell(column),
    }
    .filter(|v| !v.is_empty())
}

fn flag(value: Option<&str>, column: &str, default: bool) -> Result<bool, RowError> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("yes" | "true" | "1" | "on") => Ok(true),
        Some("no" | "false" | "0" | "off") => Ok(false),
        Some(_) => Err(RowError {
            row: 0,
            field: column.into(),
            message: "must be yes or no".into(),
        }),
    }
}

/// Checks one row against the extension it would replace, if any.
async fn check_row(
    api: &Api,
    tenant: &edgepbx_store::Tenant,
    row: &Row<'_>,
    existing: Option<&Extension>,
) -> Result<Checked, RowError> {
    let err = |field: &str, message: String| RowError {
        row: 0,
        field: field.into(),
        message,
    };
    let number = cell(row, "number")
        .ok_or_else(|| err("number", "is required".into()))?
        .to_owned();
    if number.len() > 15 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err("number", "must be 1 to 15 digits".into()));
    }
    let text = |c: &str| cell(row, c).map(str::to_owned);
    // A column the file has sets the value (an empty cell clears it); a
    // column it lacks keeps what the extension has.
    let has = |c: &str| row.has(c);
    let mut ed = existing.map_or_else(
        || Editable {
            name: String::new(),
            aliases: Vec::new(),
            ring_timeout_secs: None,
            dnd: false,
            away: false,
            forwarding: Forwarding::default(),
            follow_me: None,
            voicemail: Voicemail::default(),
            caller_id: CallerId::default(),
            directory: DirectoryEntry::default(),
            allowed_destinations: "all".into(),
        },
        editable,
    );
    ed.name = cell(row, "name")
        .ok_or_else(|| err("name", "is required".into()))?
        .to_owned();
    if has("aliases") {
        ed.aliases = cell(row, "aliases")
            .map(|a| {
                a.split(';')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
    }
    if has("ring_timeout_secs") {
        ed.ring_timeout_secs = match cell(row, "ring_timeout_secs") {
            None => None,
            Some(t) => Some(
                t.parse()
                    .map_err(|_| err("ring_timeout_secs", "must be a number of seconds".into()))?,
            ),
        };
    }
    if has("follow_me") {
        ed.follow_me = match cell(row, "follow_me") {
            None => None,
            Some(t) => {
                let f = FollowMe::parse(t).map_err(|e| err("follow_me", e.reason))?;
                Some(FollowMeView {
                    mode: f.mode.as_str().to_owned(),
                    destinations: f
                        .destinations
                        .into_iter()
                        .map(|d| FollowMeStep {
                            number: d.number,
                            timeout_secs: d.timeout_secs,
                        })
                        .collect(),
                })
            }
        };
    }
    for (column, slot) in [
        ("forward_unconditional", &mut ed.forwarding.unconditional),
        ("forward_busy", &mut ed.forwarding.busy),
        ("forward_no_answer", &mut ed.forwarding.no_answer),
        ("forward_offline", &mut ed.forwarding.offline),
        ("voicemail_email", &mut ed.voicemail.email),
        ("outbound_caller_id", &mut ed.caller_id.outbound),
        ("inbound_prefix", &mut ed.caller_id.inbound_prefix),
        ("directory_email", &mut ed.directory.email),
        ("directory_department", &mut ed.directory.department),
    ] {
        if has(column) {
            *slot = text(column);
        }
    }
    for (column, slot, default) in [
        ("dnd", &mut ed.dnd, false),
        ("away", &mut ed.away, false),
        ("voicemail", &mut ed.voicemail.enabled, false),
        (
            "voicemail_attach_audio",
            &mut ed.voicemail.attach_audio,
            true,
        ),
        (
            "voicemail_delete_after_email",
            &mut ed.voicemail.delete_after_email,
            false,
        ),
        ("directory_listed", &mut ed.directory.listed, true),
    ] {
        if has(column) {
            *slot = flag(cell(row, column), column, default)?;
        }
    }
    if has("allowed_destinations") {
        ed.allowed_destinations = text("allowed_destinations").unwrap_or_else(|| "all".into());
    }
    let editable = ed;
    let problem_to_row = |p: Problem| match p.errors.first() {
        Some(f) => err(&column_of(&f.field), f.message.clone()),
        None => err("row", p.detail),
    };
    let pin = existing.and_then(|e| e.profile.voicemail_pin_hash.clone());
    let (settings, profile) = settings_of(&editable, pin).map_err(problem_to_row)?;
    let given = text(PASSWORD_COLUMN);
    let (credentials, password) = if existing.is_none() || given.is_some() {
        let (c, p) = new_credentials(api, tenant, &number, given).map_err(problem_to_row)?;
        (Some(c), existing.is_none().then_some(p))
    } else {
        (None, None)
    };
    let (users, new_users) = if has(USERS_COLUMN) {
        let (kept, created) =
            import_users::check(api, &tenant.code, &number, cell(row, USERS_COLUMN)).await?;
        (Some(kept), created)
    } else {
        (None, Vec::new())
    };
    Ok(Checked {
        write: ExtensionWrite {
            mode: if existing.is_some() {
                WriteMode::Update
            } else {
                WriteMode::Create
            },
            number,
            name: editable.name,
            aliases: editable.aliases,
            credentials,
            settings,
            profile,
            // Written against the version read: a change made meanwhile
            // sends the import back to read it again (see `run`).
            if_version: existing.map(|e| e.updated_at),
            users,
        },
        password,
        new_users,
    })
}

/// Times an import is checked and written again because extensions it
/// read changed before it committed.
const COMMIT_ATTEMPTS: u32 = 3;

/// Whether an attempt committed, or lost a race with another writer.
enum Attempt {
    /// Done (committed, a dry run, or refused rows).
    Finished,
    /// An extension it read changed before the commit: nothing written.
    Raced,
}

/// Checks every row, then (unless a dry run, and only without errors)
/// writes them all in one transaction, against the versions it read;
/// when another writer got there first, all over again.
async fn run(
    api: &Arc<Api>,
    code: &str,
    sheet: Sheet,
    dry_run: bool,
    job: &Mutex<Job>,
) -> Result<(), Problem> {
    for _ in 1..COMMIT_ATTEMPTS {
        if let Attempt::Finished = attempt(api, code, &sheet, dry_run, job).await? {
            return Ok(());
        }
    }
    match attempt(api, code, &sheet, dry_run, job).await? {
        Attempt::Finished => Ok(()),
        Attempt::Raced => Err(Problem::new(
            StatusCode::CONFLICT,
            "the tenant's extensions kept changing while the import ran; nothing was written, try again",
        )),
    }
}

/// One check and commit of the whole file.
async fn attempt(
    api: &Arc<Api>,
    code: &str,
    sheet: &Sheet,
    dry_run: bool,
    job: &Mutex<Job>,
) -> Result<Attempt, Problem> {
    let store = &api.admin.store;
    let tenant = store
        .tenants()
        .get(code)
        .await?
        .ok_or_else(|| Problem::not_found(format!("tenant {code}")))?;
    let existing: HashMap<String, Extension> = store
        .extensions()
        .list(code)
        .await?
        .into_iter()
        .map(|e| (e.number.clone(), e))
        .collect();
    // Every dialable name of the tenant and who has it now.
    let mut owner: HashMap<String, String> = HashMap::new();
    for e in existing.values() {
        for name in std::iter::once(&e.number).chain(&e.aliases) {
            owner.insert(name.clone(), e.number.clone());
        }
    }
    for g in store.groups().list(code).await? {
        owner.insert(g.number.clone(), format!("group {}", g.number));
    }
    // Names held by an extension that is itself a row of the file are
    // judged by that row (an alias may move between two rows).
    let in_file: std::collections::HashSet<String> = sheet
        .rows()
        .filter_map(|r| cell(&r, "number").map(str::to_owned))
        .collect();
    owner.retain(|_, holder| !in_file.contains(holder));
    let mut errors = Vec::new();
    let mut checked = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut claimed: HashMap<String, (String, usize)> = HashMap::new();
    let mut users_seen: HashMap<String, usize> = HashMap::new();
    for (i, entry) in sheet.rows().enumerate() {
        let row = entry.number();
        match check_row(
            api,
            &tenant,
            &entry,
            cell(&entry, "number").and_then(|n| existing.get(n)),
        )
        .await
        {
            Ok(c) => {
                let number = c.write.number.clone();
                if let Some(first) = seen.insert(number.clone(), row) {
                    errors.push(RowError {
                        row,
                        field: "number".into(),
                        message: format!("{number} is also on row {first}"),
                    });
                }
                for name in std::iter::once(&number).chain(&c.write.aliases) {
                    let taken_by = owner.get(name).filter(|o| **o != number).cloned();
                    let in_file = claimed
                        .get(name)
                        .filter(|(o, _)| *o != number)
                        .map(|(o, r)| format!("{o} on row {r}"));
                    if let Some(other) = taken_by.or(in_file) {
                        errors.push(RowError {
                            row,
                            field: if *name == number { "number" } else { "aliases" }.into(),
                            message: format!("{name} already reaches {other}"),
                        });
                    }
                    claimed.insert(name.clone(), (number.clone(), row));
                }
                let named = c.write.users.iter().flatten().map(|u| &u.email);
                for address in named.chain(&c.new_users) {
                    if let Some(first) = users_seen.insert(address.clone(), row) {
                        errors.push(RowError::new(
                            row,
                            USERS_COLUMN,
                            format!("{address} is also on row {first}"),
                        ));
                    }
                }
                checked.push(c);
            }
            Err(mut e) => {
                e.row = row;
                errors.push(e);
            }
        }
        if i % 100 == 99 {
            lock(job).status.processed = i + 1;
            tokio::task::yield_now().await;
        }
    }
    let created = checked
        .iter()
        .filter(|c| c.write.mode == WriteMode::Create)
        .count();
    if let Some(limit) = tenant.limits.max_extensions
        && existing.len() + created > usize::try_from(limit).unwrap_or(usize::MAX)
    {
        errors.push(RowError {
            row: 0,
            field: "number".into(),
            message: format!("the tenant may have at most {limit} extensions"),
        });
    }
    errors.truncate(MAX_REPORTED_ERRORS);
    {
        let mut j = lock(job);
        j.status.processed = sheet.len();
        j.status.created = created;
        j.status.updated = checked.len() - created;
        j.status.errors = errors;
        if dry_run || !j.status.errors.is_empty() {
            return Ok(Attempt::Finished);
        }
    }
    let passwords: Vec<NewPassword> = checked
        .iter()
        .filter_map(|c| {
            c.password.as_ref().map(|p| NewPassword {
                number: c.write.number.clone(),
                password: p.clone(),
            })
        })
        .collect();
    let mut user_passwords = Vec::new();
    for c in &mut checked {
        let (users, issued) = import_users::issue(
            &tenant.code,
            &c.write.number,
            std::mem::take(&mut c.new_users),
        )
        .await?;
        if !users.is_empty() {
            c.write.users.get_or_insert_with(Vec::new).extend(users);
        }
        user_passwords.extend(issued);
    }
    let written = store
        .extensions()
        .put(code, checked.into_iter().map(|c| c.write).collect())
        .await;
    match written {
        Ok(_) => {}
        Err(StoreError::Changed { .. } | StoreError::Contended) => return Ok(Attempt::Raced),
        Err(e) => return Err(super::extensions::api_error(e)),
    }
    reload(api, code).await?;
    // Done, committed and the passwords together: a report read while
    // running never holds (and so never takes) the passwords.
    let mut j = lock(job);
    j.status.committed = true;
    j.status.passwords = passwords;
    j.status.user_passwords = user_passwords;
    j.status.state = "done";
    Ok(Attempt::Finished)
}

/// The import and export routes.
pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(export))
        .routes(routes!(start))
        .routes(routes!(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(state: &'static str) -> Arc<Mutex<Job>> {
        Arc::new(Mutex::new(Job {
            tenant: "ACME".into(),
            started: Instant::now(),
            finished: (state != "running").then(Instant::now),
            status: ImportStatus {
                id: String::new(),
                state,
                dry_run: false,
                processed: 0,
                total: 0,
                errors: Vec::new(),
                created: 0,
                updated: 0,
                committed: false,
                passwords: Vec::new(),
                user_passwords: Vec::new(),
            },
        }))
    }

    #[test]
    fn a_finished_report_is_forgotten_after_its_keeping_and_a_running_one_is_not() {
        let forgetful = Jobs::new(Duration::ZERO);
        forgetful.insert("done".into(), job("done"));
        forgetful.insert("running".into(), job("running"));
        assert!(forgetful.get("done").is_none());
        assert!(forgetful.get("running").is_some());
        let keeping = Jobs::new(Duration::from_secs(3_600));
        keeping.insert("done".into(), job("done"));
        assert!(keeping.get("done").is_some());
    }
}
