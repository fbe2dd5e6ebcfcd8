//! CSV import (dry run, then commit, with progress) and export.

use leptos::html::Input;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api;
use crate::model::Import;
use crate::state::AppState;
use crate::ui::{self, RowErrors};

/// How often a running import is polled.
const POLL_MS: i32 = 300;

/// The import/export page.
#[component]
pub fn ImportExport() -> impl IntoView {
    let state = AppState::get();
    let file = NodeRef::<Input>::new();
    let job = RwSignal::new(None::<Import>);
    let running = move || job.with(|j| j.as_ref().is_some_and(|j| j.state == "running"));
    let start = move |dry_run: bool| {
        let Some(f) = ui::chosen_file(&file) else {
            state.error.set(Some("Choose a CSV file first.".into()));
            return;
        };
        state.clear_banner();
        spawn_local(async move {
            let path = format!("/imports?dry_run={dry_run}");
            let mut current = match api::post_body::<Import>(&path, "text/csv", f).await {
                Ok(j) => j,
                Err(e) => return state.fail(&e),
            };
            loop {
                // The page was left: stop polling.
                if job.try_set(Some(current.clone())).is_some() {
                    return;
                }
                if current.state != "running" {
                    break;
                }
                ui::sleep(POLL_MS).await;
                match api::get::<Import>(&format!("/imports/{}", api::encode(&current.id))).await {
                    Ok(j) => current = j,
                    Err(e) => return state.fail(&e),
                }
            }
            match (
                current.state.as_str(),
                current.dry_run,
                current.errors.len(),
            ) {
                ("failed", ..) => state.error.set(Some("The import failed.".into())),
                (_, true, 0) => state.done("Dry run: no errors. Commit to import."),
                (_, true, n) => state
                    .error
                    .set(Some(format!("Dry run: {n} errors; nothing was changed."))),
                (_, false, 0) if current.committed => state.done(format!(
                    "Imported: {} created, {} updated.",
                    current.created, current.updated
                )),
                (_, false, _) => state
                    .error
                    .set(Some("The import has errors; nothing was changed.".into())),
            }
        });
    };
    let export_all =
        move |_| ui::export_csv(state, "/extensions/export.csv".into(), "extensions.csv");
    view! {
        <section class="page">
            <div class="toolbar">
                <h1>"Import/Export"</h1>
            </div>
            <div class="card writes" data-testid="import-card">
                <h2>"Import extensions from CSV"</h2>
                <p class="hint">
                    "Columns: number, name, aliases, ring_timeout_secs, dnd, away, forward_unconditional, forward_busy, "
                    "forward_no_answer, forward_offline, follow_me, voicemail, voicemail_email, outbound_caller_id, "
                    "inbound_prefix, directory_listed, directory_email, directory_department, allowed_destinations, console_users "
                    "(e-mails separated by ;, who log in to manage only that extension), and optionally password. "
                    "A dry run checks every row and changes nothing; a commit with any error changes nothing either."
                </p>
                <div class="row">
                    <input type="file" accept=".csv,text/csv" node_ref=file data-testid="import-file"/>
                    <button data-testid="import-dry-run" disabled=running on:click=move |_| start(true)>
                        "Dry run"
                    </button>
                    <button class="primary" data-testid="import-commit" disabled=running on:click=move |_| start(false)>
                        "Commit"
                    </button>
                </div>
                {move || job.get().map(|j| view! { <ImportResult job=j/> })}
            </div>
            <div class="card">
                <h2>"Export"</h2>
                <button data-testid="export-all" on:click=export_all>
                    "Export all extensions (CSV)"
                </button>
            </div>
        </section>
    }
}

/// The progress, errors and outcome of an import.
#[component]
fn ImportResult(job: Import) -> impl IntoView {
    let percent = if job.total == 0 {
        if job.state == "running" { 0.0 } else { 100.0 }
    } else {
        f64::from(job.processed) / f64::from(job.total) * 100.0
    };
    let label = format!(
        "{} {} of {} rows{}",
        if job.dry_run { "Dry run:" } else { "Import:" },
        job.processed,
        job.total,
        match job.state.as_str() {
            "running" => " …".to_string(),
            "done" => " (done)".to_string(),
            other => format!(" ({other})"),
        }
    );
    let outcome = (job.state != "running").then(|| {
        let text = if job.dry_run {
            format!(
                "{}; nothing was changed.",
                ui::errors_text(job.errors.len())
            )
        } else if job.committed {
            format!("{} created, {} updated.", job.created, job.updated)
        } else {
            "Nothing was changed.".to_string()
        };
        view! { <p data-testid="import-outcome" data-state=job.state.clone()>{text}</p> }
    });
    let passwords = job
        .passwords
        .iter()
        .map(|p| vec![p.number.clone(), p.password.clone()])
        .collect();
    let user_passwords = job
        .user_passwords
        .iter()
        .map(|p| vec![p.email.clone(), p.extension.clone(), p.password.clone()])
        .collect();
    view! {
        <div class="import-result">
            <div
                class="progress"
                role="progressbar"
                aria-valuemin="0"
                aria-valuemax=job.total
                aria-valuenow=job.processed
                data-testid="import-progress"
                data-state=job.state.clone()
                data-processed=job.processed
                data-total=job.total
            >
                <div class="progress-fill" style=format!("width: {percent:.1}%")></div>
            </div>
            <p class="hint">{label}</p>
            {outcome}
            <RowErrors errors=job.errors.clone() testid="import-errors"/>
            <Secrets
                title="Generated passwords, shown only now:"
                headers=&["Extension", "Password"]
                rows=passwords
                testid="import-passwords"
            />
            <Secrets
                title="Console users added, with their passwords, shown only now:"
                headers=&["E-mail", "Extension", "Password"]
                rows=user_passwords
                testid="import-user-passwords"
            />
        </div>
    }
}

/// Passwords an import generated, shown once, the last column of each row
/// being the secret; nothing when there are none.
#[component]
fn Secrets(
    /// What they are.
    title: &'static str,
    /// The columns' titles.
    headers: &'static [&'static str],
    /// The rows' cells.
    rows: Vec<Vec<String>>,
    /// `data-testid` of the table.
    testid: &'static str,
) -> impl IntoView {
    (!rows.is_empty()).then(|| {
        let head = headers
            .iter()
            .map(|h| view! { <th>{*h}</th> })
            .collect_view();
        let body = rows
            .into_iter()
            .map(|cells| {
                let last = cells.len().saturating_sub(1);
                let cells = cells
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| view! { <td class:mono=i == last>{c}</td> })
                    .collect_view();
                view! { <tr>{cells}</tr> }
            })
            .collect_view();
        view! {
            <p class="hint">{title}</p>
            <table class="grid compact" data-testid=testid>
                <thead>
                    <tr>{head}</tr>
                </thead>
                <tbody>{body}</tbody>
            </table>
        }
    })
}
