//! The one error type of the library; the binary maps it to messages and exit codes.

use camino::Utf8PathBuf;

use crate::diag::Report;

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input could not be read (missing file, a directory, no permission).
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path that was read.
        path: Utf8PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The input is not UTF-8 text, so it cannot be a TOML file.
    #[error("{path} is not a text file: byte {offset} is not valid UTF-8 (is this really a cluster.toml?)")]
    NotText {
        /// The path that was read.
        path: Utf8PathBuf,
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// The configuration has errors; the report holds every finding.
    #[error("{} in {}", .0.summary(), .0.source_name())]
    Invalid(Box<Report>),
    /// An output file exists and would be overwritten.
    #[error("{path} already exists; refusing to overwrite it")]
    AlreadyExists {
        /// The existing path.
        path: Utf8PathBuf,
    },
    /// Writing an output failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The path being written.
        path: Utf8PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A template failed to render (a bug in cpgen, not in the input).
    #[error("internal error while rendering {template}: {source}")]
    Render {
        /// Which template.
        template: &'static str,
        /// The renderer's error.
        #[source]
        source: askama::Error,
    },
}

impl Error {
    /// True when the error is about the user's input (exit code 1), false for usage, I/O or
    /// internal errors (exit code 2).
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, Error::Invalid(_) | Error::NotText { .. })
    }
}
