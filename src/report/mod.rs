//! The human report: renders register entries of one period as a self-contained, printable HTML page
//! (inline CSS, no external assets, every register value escaped) and prints that page to PDF with Debian's
//! headless `chromium` (docs/FORMATS.md §24).
//!
//! Owns: what the report shows and the correlations an auditor asks for. Must not touch: the store, HTTP or
//! the registry; the caller hands in the entries.

mod correlate;
mod html;
mod pdf;

pub use correlate::{Correlations, DeniedPull, LateSignature, UnverifiedPull, correlate};
pub use html::{escape, render_html};
pub use pdf::{PDF_TIMEOUT, render_pdf};

/// What a report is made of: the entries of one period of one register, in register order.
#[derive(Debug, Clone)]
pub struct ReportInput {
    /// The register's checkpoint origin line (docs/FORMATS.md §13).
    pub origin: String,
    /// The period, RFC 3339; `to` is exclusive.
    pub from: String,
    pub to: String,
    /// The tree size the entries were read at.
    pub tree_size: u64,
    /// `(register index, entry)` pairs, ascending by index.
    pub entries: Vec<(u64, serde_json::Value)>,
}

/// Why a PDF could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot prepare the PDF renderer's working directory: {0}")]
    WorkDir(#[source] std::io::Error),
    #[error("cannot start the PDF renderer {path}: {source}")]
    Start {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the PDF renderer did not finish within {0:?}")]
    Timeout(std::time::Duration),
    #[error("the PDF renderer failed ({status}) and wrote no PDF")]
    Failed { status: String },
    #[error("the PDF renderer wrote no PDF (the file is missing or not a PDF)")]
    NoPdf,
}
