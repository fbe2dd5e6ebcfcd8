//! Desk phones from CSV, on the Phones page: Check sends the chosen file
//! as a dry run (`POST /devices/import.csv?dry_run=true`) and shows the
//! server's report, every wrong row with its column; Import, offered only
//! after a clean check of that file, sends it again to be written, every
//! row in one transaction or none. The server answers at once (no job to
//! follow, unlike the extensions' import). The page's toolbar has the
//! export.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api;
use crate::model::PhoneImportReport;
use crate::state::AppState;
use crate::ui::{self, FieldErrors, RowErrors};

/// What the server said of the chosen file.
#[derive(Clone, Debug, PartialEq)]
struct Outcome {
    /// Whether it was a check, which writes nothing.
    dry_run: bool,
    /// The server's answer.
    report: PhoneImportReport,
}

impl Outcome {
    /// Whether the file may now be imported: it was checked and no row is
    /// wrong.
    fn importable(&self) -> bool {
        self.dry_run && self.report.errors.is_empty()
    }

    /// What a person reads.
    fn text(&self) -> String {
        let r = &self.report;
        let rows = match r.rows {
            1 => "1 row".to_string(),
            n => format!("{n} rows"),
        };
        let errors = ui::errors_text(r.errors.len());
        match (self.dry_run, r.committed, r.errors.is_empty()) {
            (false, true, _) => format!(
                "Imported {rows}: {} created, {} updated.",
                r.created, r.updated
            ),
            (true, _, true) => format!(
                "Checked {rows}, {errors}: Import would create {} and update {}.",
                r.created, r.updated
            ),
            (true, ..) => format!(
                "Checked {rows}, {errors}. Nothing was changed; correct the file and check it again."
            ),
            (false, ..) => format!(
                "Not imported: {rows}, {errors}. Nothing was changed; correct the file and check it \
                 again."
            ),
        }
    }
}

/// The import card: a file, Check, Import, and the report. Read-only users
/// do not see it (class `writes`).
#[component]
pub fn PhoneImport(
    /// Bumped after an import that wrote phones, to list them.
    reload: RwSignal<u32>,
) -> impl IntoView {
    let state = AppState::get();
    let file = NodeRef::<leptos::html::Input>::new();
    // A 422 for the file as a whole: an unknown or repeated column.
    let errors = FieldErrors::new();
    let outcome = RwSignal::new(None::<Outcome>);
    let busy = RwSignal::new(false);
    let send = move |dry_run: bool| {
        let Some(f) = ui::chosen_file(&file) else {
            state.error.set(Some("Choose a CSV file first.".into()));
            return;
        };
        state.clear_banner();
        errors.clear();
        outcome.set(None);
        busy.set(true);
        spawn_local(async move {
            let path = format!("/devices/import.csv?dry_run={dry_run}");
            let answer = api::post_body::<PhoneImportReport>(&path, "text/csv", f).await;
            // The page was left: nothing to show.
            if busy.try_set(false).is_some() {
                return;
            }
            match answer {
                Ok(report) => {
                    let outcome_now = Outcome { dry_run, report };
                    if outcome_now.report.committed {
                        state.done(outcome_now.text());
                        reload.update(|r| *r += 1);
                    }
                    outcome.set(Some(outcome_now));
                }
                Err(e) => errors.fail(&state, &e),
            }
        });
    };
    // Another file has not been checked.
    let chosen = move |_| {
        errors.clear();
        outcome.set(None);
    };
    let importable = move || outcome.with(|o| o.as_ref().is_some_and(Outcome::importable));
    view! {
        <div class="card writes" data-testid="phones-import">
            <h2>"Import phones from CSV"</h2>
            <p class="hint">
                "Columns: mac, vendor, model, extension, line, blf_keys (101=Bob;102) and label, as the export "
                "writes them; mac and extension are required. A phone whose MAC address is listed already is "
                "replaced. Check reads every row and changes nothing; Import writes every row, or none when "
                "any is wrong."
            </p>
            <div class="row">
                <input
                    type="file"
                    accept=".csv,text/csv"
                    node_ref=file
                    data-testid="phones-import-file"
                    disabled=move || busy.get()
                    on:change=chosen
                />
                <button data-testid="phones-import-check" disabled=move || busy.get() on:click=move |_| send(true)>
                    "Check"
                </button>
                <button
                    class="primary"
                    data-testid="phones-import-commit"
                    disabled=move || busy.get() || !importable()
                    on:click=move |_| send(false)
                >
                    "Import"
                </button>
            </div>
            {errors.view_others(&[])}
            {move || {
                outcome
                    .get()
                    .map(|o| {
                        let text = o.text();
                        let (dry_run, committed) = (o.dry_run.to_string(), o.report.committed.to_string());
                        view! {
                            <p data-testid="phones-import-outcome" data-dry-run=dry_run data-committed=committed>
                                {text}
                            </p>
                            <RowErrors errors=o.report.errors testid="phones-import-errors"/>
                        }
                    })
            }}
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ImportError;

    fn outcome(dry_run: bool, committed: bool, errors: usize) -> Outcome {
        Outcome {
            dry_run,
            report: PhoneImportReport {
                rows: 2,
                created: 1,
                updated: 1,
                committed,
                errors: vec![ImportError::default(); errors],
            },
        }
    }

    #[test]
    fn only_a_clean_check_may_be_imported() {
        assert!(outcome(true, false, 0).importable());
        assert!(!outcome(true, false, 1).importable());
        assert!(!outcome(false, true, 0).importable());
        assert!(!outcome(false, false, 1).importable());
    }

    #[test]
    fn the_outcome_says_what_was_written() {
        assert_eq!(
            outcome(true, false, 0).text(),
            "Checked 2 rows, no errors: Import would create 1 and update 1."
        );
        assert!(
            outcome(true, false, 2)
                .text()
                .starts_with("Checked 2 rows, 2 errors. Nothing")
        );
        assert_eq!(
            outcome(false, true, 0).text(),
            "Imported 2 rows: 1 created, 1 updated."
        );
        assert!(
            outcome(false, false, 1)
                .text()
                .starts_with("Not imported: 2 rows, 1 error.")
        );
    }
}
