//! Any file posted to an import, and any cells exported: reading never
//! panics, a refused file is refused naming the column at fault or a row
//! within it, the cells an import reads parse without panicking into
//! values that print back to themselves, and an exported sheet imports
//! back cell for cell with no cell a spreadsheet would run as a formula.
#![no_main]

use edgepbx_model::sheet::{Row, Sheet, SheetError, unmarked, write};
use edgepbx_model::{AllowedDestinations, FollowMe, ForwardTarget, Mac};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// A sheet with columns of each kind of cell the imports check.
const COLUMNS: &[&str] = &[
    "number",
    "name",
    "follow_me",
    "forward_busy",
    "allowed_destinations",
    "mac",
];
/// Columns every row needs.
const REQUIRED: &[&str] = &["number", "name"];
/// Rows per import.
const MAX_ROWS: usize = 50;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        import(text);
    }
    if let Ok(records) = records(&mut Unstructured::new(data)) {
        export_and_import(&records);
    }
});

fn import(text: &str) {
    let sheet = match Sheet::read(text, COLUMNS, REQUIRED, MAX_ROWS) {
        Ok(sheet) => sheet,
        Err(SheetError::Row { row, .. }) => {
            assert!(row >= 2 && row <= text.len() + 1, "row {row}");
            return;
        }
        Err(SheetError::UnknownColumn { column, .. }) => {
            assert!(!COLUMNS.contains(&column.as_str()), "{column} is known");
            return;
        }
        Err(SheetError::DuplicateColumn { column }) => {
            assert!(COLUMNS.contains(&column.as_str()), "{column} is unknown");
            return;
        }
        Err(SheetError::MissingColumn { column }) => {
            assert!(REQUIRED.contains(&column.as_str()), "{column} is optional");
            return;
        }
        Err(_) => return,
    };
    assert!(sheet.len() <= MAX_ROWS);
    for row in sheet.rows() {
        cells(&row);
    }
}

/// The checks an import runs on a row's cells: each value that parses
/// prints as text that parses to it again.
fn cells(row: &Row<'_>) {
    if let Some(Ok(follow_me)) = row.cell("follow_me").map(FollowMe::parse) {
        assert_eq!(FollowMe::parse(&follow_me.to_string()), Ok(follow_me));
    }
    if let Some(Ok(target)) = row
        .cell("forward_busy")
        .map(|cell| ForwardTarget::parse("forward_busy", cell))
    {
        assert_eq!(
            ForwardTarget::parse("forward_busy", &target.to_string()),
            Ok(target)
        );
    }
    if let Some(Ok(allowed)) = row
        .cell("allowed_destinations")
        .map(AllowedDestinations::parse)
    {
        assert_eq!(
            AllowedDestinations::parse(&allowed.to_string()),
            Ok(allowed)
        );
    }
    if let Some(Ok(mac)) = row.cell("mac").map(Mac::parse) {
        assert_eq!(Mac::parse(mac.as_str()), Ok(mac));
    }
}

/// Rows of exactly as many cells as [`COLUMNS`].
fn records(u: &mut Unstructured<'_>) -> Result<Vec<Vec<String>>> {
    let count = u.int_in_range(0..=MAX_ROWS)?;
    (0..count)
        .map(|_| COLUMNS.iter().map(|_| u.arbitrary()).collect())
        .collect()
}

fn export_and_import(records: &[Vec<String>]) {
    let bytes = write(COLUMNS, records.iter().cloned()).expect("a sheet is always writable");
    let text = String::from_utf8(bytes).expect("cells are UTF-8");
    let sheet = Sheet::read(&text, COLUMNS, REQUIRED, MAX_ROWS)
        .unwrap_or_else(|error| panic!("an exported sheet does not import ({error}):\n{text}"));
    assert_eq!(sheet.len(), records.len());
    for (row, record) in sheet.rows().zip(records) {
        for (column, cell) in COLUMNS.iter().zip(record) {
            let written = row.raw(column).expect("every column was written");
            assert_eq!(unmarked(written), cell, "{text}");
            let formula = written.starts_with(['=', '+', '-', '@', '\t', '\r'])
                && !written
                    .strip_prefix('+')
                    .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
            assert!(!formula, "{written:?} would run as a formula");
        }
    }
}
