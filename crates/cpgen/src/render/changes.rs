//! The README's "Changes" section of a bundle that changes a running cluster: its runbook
//! (`changes.json`) for people. Rendered from the runbook's lines alone, so that verify can
//! rebuild it from a bundle's `changes.json`.

use askama::Template;
use serde::Deserialize;

use crate::template::render_text;
use crate::Error;

/// One step as the README shows it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct RunbookLine {
    /// `install`, `etcd-member-add`, ...
    pub(crate) action: String,
    /// The host it is about.
    pub(crate) host: String,
    /// Why it is there.
    pub(crate) why: String,
    /// The line to paste.
    pub(crate) command: String,
}

/// `changes.json` as the README reads it.
#[derive(Debug, Deserialize)]
pub(crate) struct RunbookLines {
    /// The steps in order.
    pub(crate) steps: Vec<RunbookLine>,
}

#[derive(Template)]
#[template(path = "changes.md", escape = "none")]
struct ChangesSection<'a> {
    steps: &'a [RunbookLine],
    data_dir: &'a str,
}

/// The section, to append to the README.
pub(crate) fn changes_section(steps: &[RunbookLine], data_dir: &str) -> Result<String, Error> {
    render_text(&ChangesSection { steps, data_dir }, "changes.md")
}
