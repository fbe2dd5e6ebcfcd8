//! Sheets: the CSV files in which an administrator exports a tenant's
//! extensions or desk phones, edits them in a spreadsheet and imports them
//! back.
//!
//! A sheet is a header row naming its columns (in any order and case),
//! then one record per row, each with as many cells as the header.
//! [`Sheet::read`] checks the header against the columns a kind of sheet
//! has and the number of rows against a limit, before any cell is looked
//! at; the cells are checked by the types they become ([`FollowMe`],
//! [`Mac`], ...).
//!
//! Spreadsheets evaluate a cell that starts with `=`, `+`, `-`, `@`, a tab
//! or a carriage return as a formula, so a name like `=HYPERLINK(...)`
//! could run when an exported file is opened. [`write`] puts an apostrophe
//! before such a cell, which spreadsheets read as "this is text", and
//! before a cell that already starts with one; [`Row::cell`] takes it off
//! again, so every cell imports back exactly. Phone numbers (`+4930...`)
//! are left alone: digits cannot make a harmful formula.
//!
//! [`FollowMe`]: crate::FollowMe
//! [`Mac`]: crate::Mac

use std::collections::HashMap;

/// First characters that make a spreadsheet evaluate a cell as a formula.
const FORMULA_STARTS: &[char] = &['=', '+', '-', '@', '\t', '\r'];
/// What [`write`] puts before such a cell; [`Row::cell`] takes it off.
const TEXT_MARK: char = '\'';

/// Why a file is not a sheet of the expected kind. Nothing of such a file
/// is imported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SheetError {
    /// The header row is not CSV (or not there).
    #[error("unreadable CSV header: {0}")]
    Header(#[source] csv::Error),
    /// The header names a column the sheet does not have.
    #[error("unknown column; the columns are {}", .expected.join(", "))]
    UnknownColumn {
        /// The column, lower-cased.
        column: String,
        /// The columns the sheet may have.
        expected: Vec<String>,
    },
    /// The header names a column twice (in any case).
    #[error("column given twice")]
    DuplicateColumn {
        /// The column, lower-cased.
        column: String,
    },
    /// The header lacks a column every row needs.
    #[error("column is required")]
    MissingColumn {
        /// The column.
        column: String,
    },
    /// A row is not CSV, or has another number of cells than the header.
    #[error("row {row}: unreadable CSV: {source}")]
    Row {
        /// The row in the file, the header being row 1.
        row: usize,
        /// What the CSV reader found.
        #[source]
        source: csv::Error,
    },
    /// More rows than one import takes.
    #[error("at most {max} rows per import")]
    TooManyRows {
        /// The limit.
        max: usize,
    },
    /// Writing a sheet failed.
    #[error("cannot write the CSV file: {0}")]
    Write(#[source] csv::Error),
}

impl SheetError {
    /// The column the error is about; `None` when it is about the file as
    /// a whole.
    pub fn column(&self) -> Option<&str> {
        match self {
            SheetError::UnknownColumn { column, .. }
            | SheetError::DuplicateColumn { column }
            | SheetError::MissingColumn { column } => Some(column),
            SheetError::Header(_)
            | SheetError::Row { .. }
            | SheetError::TooManyRows { .. }
            | SheetError::Write(_) => None,
        }
    }
}

/// A sheet read from CSV, its header checked.
#[derive(Debug, Clone)]
pub struct Sheet {
    /// Where each column is in a record, by lower-cased name.
    columns: HashMap<String, usize>,
    /// The rows after the header, in file order.
    records: Vec<csv::StringRecord>,
}

impl Sheet {
    /// Reads `text`: a header naming only `columns` (in any case, each at
    /// most once, `required` among them), then at most `max_rows` rows.
    /// Header cells are trimmed; a row with more or fewer cells than the
    /// header is an error.
    pub fn read(
        text: &str,
        columns: &[&str],
        required: &[&str],
        max_rows: usize,
    ) -> Result<Sheet, SheetError> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(false)
            .trim(csv::Trim::Headers)
            .from_reader(text.as_bytes());
        let mut positions = HashMap::new();
        for (i, name) in reader
            .headers()
            .map_err(SheetError::Header)?
            .iter()
            .enumerate()
        {
            let column = name.to_ascii_lowercase();
            if !columns.contains(&column.as_str()) {
                return Err(SheetError::UnknownColumn {
                    column,
                    expected: columns.iter().map(|c| (*c).to_owned()).collect(),
                });
            }
            if positions.contains_key(&column) {
                return Err(SheetError::DuplicateColumn { column });
            }
            positions.insert(column, i);
        }
        if let Some(missing) = required.iter().find(|c| !positions.contains_key(**c)) {
            return Err(SheetError::MissingColumn {
                column: (*missing).to_owned(),
            });
        }
        let mut records = Vec::new();
        for (i, record) in reader.records().enumerate() {
            let record = record.map_err(|source| SheetError::Row { row: i + 2, source })?;
            if records.len() == max_rows {
                return Err(SheetError::TooManyRows { max: max_rows });
            }
            records.push(record);
        }
        Ok(Sheet {
            columns: positions,
            records,
        })
    }

    /// Whether the header names `column` (lower case).
    pub fn has(&self, column: &str) -> bool {
        self.columns.contains_key(column)
    }

    /// The number of rows after the header.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are no rows after the header.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The rows after the header, in file order.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = Row<'_>> {
        self.records.iter().enumerate().map(|(i, record)| Row {
            sheet: self,
            record,
            number: i + 2,
        })
    }
}

/// One row of a [`Sheet`].
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    sheet: &'a Sheet,
    record: &'a csv::StringRecord,
    /// Its row in the file, the header being row 1.
    number: usize,
}

impl<'a> Row<'a> {
    /// Its row in the file, the header being row 1.
    pub fn number(&self) -> usize {
        self.number
    }

    /// Whether the sheet has `column` (lower case), even if this row's
    /// cell is empty.
    pub fn has(&self, column: &str) -> bool {
        self.sheet.has(column)
    }

    /// The cell of `column` as written; `None` when the sheet has no such
    /// column.
    pub fn raw(&self, column: &str) -> Option<&'a str> {
        let position = *self.sheet.columns.get(column)?;
        self.record.get(position)
    }

    /// The cell of `column` trimmed and without the mark [`write`] puts
    /// before text a spreadsheet would evaluate; `None` when the sheet has
    /// no such column or the cell is empty.
    pub fn cell(&self, column: &str) -> Option<&'a str> {
        self.raw(column)
            .map(|cell| unmarked(cell.trim()))
            .filter(|cell| !cell.is_empty())
    }
}

/// `cell` as imported: without the mark that [`write`] put before text a
/// spreadsheet would evaluate (and before text that starts with the mark).
pub fn unmarked(cell: &str) -> &str {
    match cell.strip_prefix(TEXT_MARK) {
        Some(rest) if rest.starts_with(FORMULA_STARTS) || rest.starts_with(TEXT_MARK) => rest,
        _ => cell,
    }
}

/// `cell` as exported: marked as text when a spreadsheet would evaluate it
/// or when it starts with the mark; phone numbers are left alone.
fn spreadsheet_safe(cell: String) -> String {
    let digits = cell.strip_prefix('+').unwrap_or(&cell);
    let number = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    if !number && (cell.starts_with(FORMULA_STARTS) || cell.starts_with(TEXT_MARK)) {
        format!("{TEXT_MARK}{cell}")
    } else {
        cell
    }
}

/// A sheet of `records` under the header `columns` as CSV, every cell
/// marked as text where a spreadsheet would evaluate it.
pub fn write(
    columns: &[&str],
    records: impl IntoIterator<Item = Vec<String>>,
) -> Result<Vec<u8>, SheetError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(columns).map_err(SheetError::Write)?;
    for record in records {
        writer
            .write_record(record.into_iter().map(spreadsheet_safe))
            .map_err(SheetError::Write)?;
    }
    writer
        .into_inner()
        .map_err(|e| SheetError::Write(e.into_error().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: &[&str] = &["number", "name", "aliases"];

    fn read(text: &str) -> Result<Sheet, SheetError> {
        Sheet::read(text, COLUMNS, &["number"], 2)
    }

    #[test]
    fn formulas_are_exported_as_text_and_imported_back_exactly() {
        for cell in [
            "=HYPERLINK(\"http://evil.test\",\"click\")",
            "+SUM(1,2)",
            "-2+3",
            "@cmd",
            "\tTab",
            "'quoted",
            "'=already marked",
            "Alice",
            "",
            "+4930123456",
            "100",
        ] {
            let exported = spreadsheet_safe(cell.to_owned());
            assert_eq!(unmarked(&exported), cell, "{exported:?}");
            let evaluated = exported.starts_with(FORMULA_STARTS);
            let number = cell
                .trim_start_matches('+')
                .bytes()
                .all(|b| b.is_ascii_digit());
            assert!(!evaluated || number, "{exported:?}");
        }
        assert_eq!(spreadsheet_safe("+4930123456".into()), "+4930123456");
        assert_eq!(spreadsheet_safe("=1+1".into()), "'=1+1");
    }

    #[test]
    fn a_written_sheet_reads_back_cell_for_cell() {
        let records = vec![
            vec![
                "100".to_owned(),
                "=Alice, \"the boss\"".to_owned(),
                String::new(),
            ],
            vec![
                "101".to_owned(),
                "Bob\r\nSmith".to_owned(),
                "'200;201".to_owned(),
            ],
        ];
        let bytes = write(COLUMNS, records.clone()).expect("writes");
        let text = String::from_utf8(bytes).expect("UTF-8");
        let sheet = read(&text).expect("reads");
        assert_eq!(sheet.len(), 2);
        for (row, record) in sheet.rows().zip(&records) {
            for (column, cell) in COLUMNS.iter().zip(record) {
                assert_eq!(row.raw(column).map(unmarked), Some(cell.as_str()));
            }
        }
        let second = sheet.rows().nth(1).expect("two rows");
        assert_eq!(second.number(), 3);
        assert_eq!(second.cell("aliases"), Some("'200;201"));
        assert_eq!(sheet.rows().next().and_then(|r| r.cell("aliases")), None);
    }

    #[test]
    fn headers_are_read_in_any_order_and_case() {
        let sheet = read(" Name ,NUMBER\n Alice ,100\n").expect("reads");
        let row = sheet.rows().next().expect("a row");
        assert_eq!(
            (row.cell("number"), row.cell("name")),
            (Some("100"), Some("Alice"))
        );
        assert_eq!(row.raw("name"), Some(" Alice "));
        assert!(row.has("name") && !row.has("aliases"));
        assert_eq!(row.cell("aliases"), None);
    }

    #[test]
    fn a_bad_file_is_refused_naming_the_column_or_the_row() {
        let column = |text: &str| {
            read(text)
                .map(|_| ())
                .map_err(|e| e.column().map(str::to_owned))
        };
        assert_eq!(column("number,colour\n"), Err(Some("colour".into())));
        assert_eq!(column("number,Number\n"), Err(Some("number".into())));
        assert_eq!(column("name\n"), Err(Some("number".into())));
        assert_eq!(column("number\n1\n2\n3\n"), Err(None));
        assert!(matches!(
            read("number,name\n1,a\n2\n"),
            Err(SheetError::Row { row: 3, .. })
        ));
        assert!(matches!(
            read("number\n1\n2\n3\n"),
            Err(SheetError::TooManyRows { max: 2 })
        ));
        let unknown = read("number,colour\n").map(|_| ()).expect_err("unknown");
        assert_eq!(
            unknown.to_string(),
            "unknown column; the columns are number, name, aliases"
        );
    }
}
