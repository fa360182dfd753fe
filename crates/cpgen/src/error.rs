//! The one error type of the library; the binary maps it to messages and exit codes.

use camino::Utf8PathBuf;

use crate::diag::Report;
use crate::pki::{ImportProblem, KeyError, StaleKeys};

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
    /// The input file is far larger than any cluster description.
    #[error("{path} is {size} bytes; a cluster description is at most {limit} bytes (is this the right file?)")]
    TooLarge {
        /// The file.
        path: Utf8PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
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
    /// A path cpgen would read secrets from or write to is a symbolic link.
    #[error("{path} is a symbolic link; cpgen neither reads secrets through nor writes through links (they could point anywhere)")]
    Symlink {
        /// The link.
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
    /// The secrets file is not one cpgen can use.
    #[error("secrets file {path}: {problem}")]
    Secrets {
        /// The secrets file.
        path: Utf8PathBuf,
        /// What is wrong (never key material).
        problem: String,
    },
    /// The secrets file may be read by group or others.
    #[error("secrets file {path} is readable by group or others (mode {mode:03o}); it holds every private key of the cluster: run `chmod 600 {path}` and check who has read it")]
    InsecureSecrets {
        /// The secrets file.
        path: Utf8PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A key in the secrets file is unusable.
    #[error("key `{identity}` in the secrets file: {source}")]
    Key {
        /// Whose key.
        identity: String,
        /// What is wrong with it.
        #[source]
        source: KeyError,
    },
    /// A key the plan needs is not in the secrets file.
    #[error("the secrets file has no key `{identity}`")]
    MissingKey {
        /// Whose key.
        identity: String,
    },
    /// Stored keys have another algorithm than the configuration asks for; all of them.
    #[error("{0}")]
    KeyAlgorithmMismatch(StaleKeys),
    /// A time certificates cannot be issued at.
    #[error("{what}: {problem}")]
    IssueTime {
        /// Which time.
        what: &'static str,
        /// Why.
        problem: String,
    },
    /// A CA could not be imported.
    #[error("cannot use the {which} CA: {problem}")]
    Import {
        /// Which CA (`kubernetes`, `etcd`, `front-proxy`).
        which: &'static str,
        /// Why.
        problem: ImportProblem,
    },
    /// rcgen refused to build a certificate (a bug in cpgen, not in the input).
    #[error("internal error while issuing {identity}: {source}")]
    Issue {
        /// Which certificate.
        identity: String,
        /// rcgen's error.
        #[source]
        source: rcgen::Error,
    },
    /// The cryptography library failed at something that does not depend on input.
    #[error("the cryptography library failed: {0}")]
    Crypto(&'static str),
    /// Something that cannot fail on any input failed (a bug in cpgen).
    #[error("internal error: {0}")]
    Internal(&'static str),
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
        matches!(
            self,
            Error::Invalid(_)
                | Error::NotText { .. }
                | Error::TooLarge { .. }
                | Error::Secrets { .. }
                | Error::InsecureSecrets { .. }
                | Error::Key { .. }
                | Error::MissingKey { .. }
                | Error::KeyAlgorithmMismatch(_)
                | Error::IssueTime { .. }
                | Error::Import { .. }
        )
    }
}
