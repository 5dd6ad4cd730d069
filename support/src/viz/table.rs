//! A results table that a notebook fills run by run and shows as Markdown (also what the
//! README's results tables are generated from).

use crate::{error, Result};

/// A table with a title, a header and rows of text cells.
#[derive(Clone, Debug)]
pub struct Table {
    /// Shown in bold above the table.
    pub title: String,
    /// Column names.
    pub header: Vec<String>,
    /// The rows, one text cell per column.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with this title and header.
    pub fn new(title: &str, header: &[&str]) -> Self {
        Table {
            title: title.to_string(),
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; it must have one cell per column.
    pub fn push(&mut self, row: Vec<String>) -> Result<()> {
        if row.len() != self.header.len() {
            return Err(error(format!(
                "the table has {} columns but the row has {} cells",
                self.header.len(),
                row.len()
            )));
        }
        self.rows.push(row);
        Ok(())
    }

    /// GitHub-flavoured Markdown.
    pub fn to_markdown(&self) -> String {
        let line = |cells: &[String]| format!("| {} |", cells.join(" | "));
        let mut out = vec![line(&self.header), format!("|{}", " --- |".repeat(self.header.len()))];
        out.extend(self.rows.iter().map(|r| line(r)));
        out.join("\n")
    }

    /// Shows the table inline as Markdown (with a plain-text copy for terminals).
    pub fn evcxr_display(&self) {
        let md = format!("**{}**\n\n{}", self.title, self.to_markdown());
        println!("EVCXR_BEGIN_CONTENT text/markdown\n{md}\nEVCXR_END_CONTENT");
        println!("EVCXR_BEGIN_CONTENT text/plain\n{md}\nEVCXR_END_CONTENT");
    }
}
