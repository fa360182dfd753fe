//! `cpgen verify` and `cpgen certs`: auditing a control-plane bundle — cpgen's or one made
//! by hand with cfssl or openssl — read in memory from a `.tar.gz` or a directory in the
//! bundle layout. Each finding has a stable code, the file it is about and a fix hint.

mod checks;
mod material;
mod model;
mod source;

use camino::Utf8Path;
use serde::Serialize;
use time::OffsetDateTime;

use crate::diag::Severity;
use crate::plan::Plan;
use crate::Error;

pub use material::CertInfo;
pub use source::{read_archive, read_bundle, Entry, Tree, MAX_FILE, MAX_TOTAL};

stable_codes! {
    /// The stable identity of a verify finding; README.md lists them all.
    Code;
    HostileEntry = "CP800", "hostile-entry";
    Unparseable = "CP801", "unparseable";
    KeyMismatch = "CP802", "key-mismatch";
    WrongIssuer = "CP803", "wrong-issuer";
    WrongUsage = "CP804", "wrong-usage";
    SanNotCovered = "CP805", "san-not-covered";
    Expired = "CP806", "expired";
    ExpiresSoon = "CP807", "expires-soon";
    MissingFile = "CP808", "missing-file";
    DanglingReference = "CP809", "dangling-reference";
    ManifestMismatch = "CP810", "manifest-mismatch";
    KeyReadable = "CP811", "key-readable";
    EvenEtcdMembers = "CP812", "even-etcd-members";
    SharedCa = "CP813", "shared-ca";
}

/// One finding about one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// Stable identity.
    #[serde(serialize_with = "code_id")]
    pub code: Code,
    /// The file it is about (bundle path; `path#field` for data embedded in a kubeconfig).
    pub file: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

fn code_id<S: serde::Serializer>(code: &Code, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(code.id())
}

impl Finding {
    /// An error.
    pub fn error(code: Code, file: &str, message: String, help: &str) -> Finding {
        Finding {
            severity: Severity::Error,
            code,
            file: file.to_owned(),
            message,
            help: help.to_owned(),
        }
    }

    /// A warning.
    pub fn warning(code: Code, file: &str, message: String, help: &str) -> Finding {
        Finding {
            severity: Severity::Warning,
            ..Finding::error(code, file, message, help)
        }
    }
}

/// Everything `cpgen verify` found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Every finding, sorted by file then code.
    pub findings: Vec<Finding>,
    /// How many files were read.
    pub files: usize,
    /// How many certificates were checked.
    pub certificates: usize,
}

impl VerifyReport {
    /// True when at least one finding is an error.
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    /// The findings as text, one block each.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let severity = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            out.push_str(&format!(
                "{severity}[{}]: {}: {}\n  = help: {}\n",
                f.code.id(),
                f.file,
                f.message,
                f.help
            ));
        }
        let errors = self
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count();
        out.push_str(&format!(
            "{} files, {} certificates checked: {errors} errors, {} warnings\n",
            self.files,
            self.certificates,
            self.findings.len() - errors
        ));
        out
    }

    /// The findings as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "files": self.files,
            "certificates": self.certificates,
            "errors": self.findings.iter().filter(|f| f.severity == Severity::Error).count(),
            "findings": self.findings,
        })
    }
}

/// Audits the bundle at `path` (a `.tar.gz`, a `.tar` or a directory) at time `at`. With a
/// plan, the names and addresses clients dial come from it; without, they are inferred from
/// the units, kubeconfigs and HAProxy backends.
pub fn verify_path(
    path: &Utf8Path,
    plan: Option<&Plan>,
    at: OffsetDateTime,
) -> Result<VerifyReport, Error> {
    let mut findings = Vec::new();
    let tree = read_bundle(path, &mut findings)?;
    Ok(verify_tree(&tree, plan, at, findings))
}

/// Audits a bundle already in memory; `findings` are those of reading it.
pub fn verify_tree(
    tree: &Tree,
    plan: Option<&Plan>,
    at: OffsetDateTime,
    mut findings: Vec<Finding>,
) -> VerifyReport {
    let certificates = checks::run(tree, plan, at, &mut findings);
    findings.sort_by(|a, b| (&a.file, a.code, &a.message).cmp(&(&b.file, b.code, &b.message)));
    findings.dedup();
    VerifyReport {
        findings,
        files: tree.files.len(),
        certificates,
    }
}

/// One row of `cpgen certs`.
#[derive(Debug, Clone, Serialize)]
pub struct CertRow {
    /// The file (or kubeconfig field).
    pub certificate: String,
    /// The host it is on (`admin` for the operator's files).
    pub host: String,
    /// Subject CN.
    pub common_name: String,
    /// NotAfter.
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// Issuer CN.
    pub ca: String,
    /// Key algorithm.
    pub algorithm: String,
    /// True for CA certificates.
    pub is_ca: bool,
}

/// Every certificate of the bundle at `path`, soonest expiry first, and the findings of
/// reading it.
pub fn certificate_table(path: &Utf8Path) -> Result<(Vec<CertRow>, Vec<Finding>), Error> {
    let mut findings = Vec::new();
    let tree = read_bundle(path, &mut findings)?;
    let (hosts, _) = model::hosts(&tree);
    let material = material::collect(&tree, &hosts, &mut findings);
    let mut rows: Vec<CertRow> = material
        .certs
        .into_iter()
        .map(|(file, info)| CertRow {
            host: file
                .strip_prefix("hosts/")
                .and_then(|r| r.split('/').next())
                .unwrap_or("admin")
                .to_owned(),
            certificate: file,
            common_name: info.common_name,
            expires: info.not_after,
            ca: info.issuer_common_name,
            algorithm: info.algorithm,
            is_ca: info.is_ca,
        })
        .collect();
    rows.sort_by(|a, b| (a.expires, &a.certificate).cmp(&(b.expires, &b.certificate)));
    Ok((rows, findings))
}

/// `364d`, `23h`, `expired 3d ago`.
pub fn residual(expires: OffsetDateTime, now: OffsetDateTime) -> String {
    let left = expires - now;
    if left.is_negative() {
        return format!("expired {}d ago", (-left).whole_days());
    }
    match left.whole_days() {
        0 => format!("{}h", left.whole_hours()),
        days => format!("{days}d"),
    }
}
