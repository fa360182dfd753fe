//! `cpgen verify` and `cpgen certs`: auditing a control-plane bundle — cpgen's or one made
//! by hand with cfssl or openssl — read in memory from a `.tar.gz` or a directory in the
//! bundle layout. Each finding has a stable code, the file it is about and a fix hint.

mod checks;
mod host_files;
mod known_paths;
mod leaks;
mod material;
mod model;
// `pub(crate)`: `test_support` re-exports the reader for the integration tests.
pub(crate) mod source;

use camino::Utf8Path;
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::diag::{self, counted, escape, Code, Diagnostic, Severity, Source, Style};
use crate::plan::Plan;
use crate::Error;

use source::{read_bundle, Tree};

// For `diff`, which compares two bundles read and parsed exactly as an audit reads them.
pub(crate) use material::{certificates, CertInfo};
pub(crate) use model::{
    hosts as host_models, kubeconfig_files, kubeconfig_server, parse_unit, Unit,
};

use crate::pki::EXPIRES_SOON;

/// Where a certificate stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Validity {
    /// Valid, for longer than [`EXPIRES_SOON`].
    Valid,
    /// Valid, but for less than [`EXPIRES_SOON`].
    ExpiresSoon,
    /// Its NotBefore is still ahead.
    NotYetValid,
    /// Its NotAfter is past.
    Expired,
}

impl Validity {
    /// Where a certificate valid from `not_before` to `not_after` stands at `at`.
    pub(crate) fn at(
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
        at: OffsetDateTime,
    ) -> Self {
        if not_after < at {
            Validity::Expired
        } else if not_before > at {
            Validity::NotYetValid
        } else if not_after - at < EXPIRES_SOON {
            Validity::ExpiresSoon
        } else {
            Validity::Valid
        }
    }

    /// `valid`, `expires soon`, `not yet valid`, `expired`.
    pub(crate) fn words(self) -> &'static str {
        match self {
            Validity::Valid => "valid",
            Validity::ExpiresSoon => "expires soon",
            Validity::NotYetValid => "not yet valid",
            Validity::Expired => "expired",
        }
    }
}

/// The finding for a tree that is not a bundle, judged by what every bundle — cpgen's or
/// hand-made — has: files under `hosts/<host>/` and certificates. An empty directory, a
/// directory of configs, a 0-byte or garbage file would otherwise pass with 0 errors.
/// `manifest.json` is not required: a hand-made bundle has none.
pub(crate) fn not_a_bundle(tree: &Tree, certificates: usize) -> Option<Diagnostic> {
    let has_hosts = tree.files.keys().any(|path| {
        path.strip_prefix("hosts/")
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(host, local)| !host.is_empty() && !local.is_empty())
    });
    let files = counted(tree.files.len(), "file");
    let what = match (has_hosts, certificates) {
        (true, 1..) => return None,
        _ if tree.files.is_empty() => "it holds no file".to_owned(),
        (false, 0) => {
            format!("it holds {files}, but no hosts/<host>/ directory and no certificate")
        }
        (true, 0) => format!("it holds {files}, but no certificate"),
        (false, _) => format!(
            "it holds {}, but no hosts/<host>/ directory",
            counted(certificates, "certificate")
        ),
    };
    // A bundle archived by its directory's name (`tar czf b.tar.gz bundle/`) sits one level
    // down: say where.
    let nested = tree.files.keys().find_map(|path| {
        let (top, rest) = path.split_once('/')?;
        rest.starts_with("hosts/").then_some(top)
    });
    let help = match nested {
        Some(top) if !has_hosts => format!(
            "the bundle seems to be inside `{top}/`: archive its contents instead (`tar czf OUT.tar.gz -C {top} .`), or verify that directory"
        ),
        _ => "give the .tar.gz or directory that `cpgen bundle` wrote (-o or --out-dir), or a \
              hand-made one in that layout; `cpgen check` is the command for a cluster.toml"
            .to_owned(),
    };
    Some(Diagnostic::file_error(
        Code::NotABundle,
        "(bundle)",
        format!(
            "not a bundle: {what}; a bundle has a manifest.json, each machine's files under \
             hosts/<host>/... and their certificates"
        ),
        &help,
    ))
}

/// Findings about a bundle's files as text, escaped for a terminal: what `cpgen certs` prints
/// of reading a bundle, and the body of a [`VerifyReport`].
pub fn render_findings(findings: &[Diagnostic]) -> String {
    diag::render_text(findings, &Source::default(), usize::MAX, Style::Plain)
}

/// Everything `cpgen verify` found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Every finding, sorted by file then code; each names its file
    /// ([`Diagnostic::file`]).
    pub findings: Vec<Diagnostic>,
    /// How many files were read.
    pub files: usize,
    /// How many certificates were checked.
    pub certificates: usize,
    /// True when the bundle carries a runbook (`changes.json`, from `bundle --previous`):
    /// it comes from the deployed bundle, so no rebuild proves it; its commands are held to
    /// cpgen's shapes instead (CP833).
    pub has_runbook: bool,
    /// The rotations `manifest.json` records as in progress (`etcd`, `service-account`):
    /// their trust files carry a second CA (or key) that only a rebuild from the secrets
    /// file proves is the cluster's.
    pub rotations: Vec<String>,
}

impl VerifyReport {
    /// True when at least one finding is an error.
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    /// The findings as text, one block each, escaped for a terminal.
    pub fn render(&self) -> String {
        let mut out = render_findings(&self.findings);
        out.push_str(&format!(
            "{}, {} checked: {}, {}\n",
            counted(self.files, "file"),
            counted(self.certificates, "certificate"),
            counted(self.count(Severity::Error), "error"),
            counted(self.count(Severity::Warning), "warning")
        ));
        out
    }

    /// Number of findings of `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        diag::count(&self.findings, severity)
    }

    /// The report as JSON, shaped like `cpgen check --format json`: `valid`, the counts, and
    /// `diagnostics` with check's fields; every string escaped.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "valid": !self.has_errors(),
            "errors": self.count(Severity::Error),
            "warnings": self.count(Severity::Warning),
            "files": self.files,
            "certificates": self.certificates,
            "diagnostics": diag::diagnostics_json(&self.findings, &Source::default()),
        })
    }
}

/// What a bundle is verified against, beyond its own contents.
#[derive(Clone, Copy, Default)]
pub struct VerifyOptions<'a> {
    /// The plan of its config: the names and addresses clients dial come from it; without
    /// one, they are inferred from the units, kubeconfigs and HAProxy backends.
    pub plan: Option<&'a Plan>,
    /// With a plan, its secrets: the bundle is rebuilt in memory and every file that
    /// differs, is missing or was added is named (CP834). They are only read: a key they
    /// lack is [`Error::MissingKey`].
    pub secrets: Option<&'a crate::pki::Secrets>,
}

/// Audits the bundle at `path` (a `.tar.gz`, a `.tar` or a directory) at time `at`, against
/// what `options` give.
pub fn verify_path(
    path: &Utf8Path,
    at: OffsetDateTime,
    options: &VerifyOptions<'_>,
) -> Result<VerifyReport, Error> {
    let mut findings = Vec::new();
    let tree = read_bundle(path, &mut findings)?;
    if let (Some(plan), Some(secrets)) = (options.plan, options.secrets) {
        findings.extend(checks::rebuild(&tree, plan, secrets)?);
    }
    Ok(verify_tree(&tree, options.plan, at, findings))
}

/// Audits a bundle already in memory; `findings` are those of reading it.
/// `plan` with the etcd joins the bundle's manifest records. How each member joined comes
/// from the deployed bundle, which a config does not know: a rebuild takes the bundle's
/// record of it (checks/hosts audits the record itself).
fn with_recorded_joins(tree: &Tree, plan: &Plan) -> Plan {
    let header = tree
        .files
        .get(crate::bundle::manifest::MANIFEST)
        .map(|entry| crate::bundle::manifest::Header::read(&entry.data))
        .unwrap_or_default();
    let mut plan = plan.clone();
    plan.etcd.joins = header.etcd_joins().clone();
    plan
}

pub(crate) fn verify_tree(
    tree: &Tree,
    plan: Option<&Plan>,
    at: OffsetDateTime,
    mut findings: Vec<Diagnostic>,
) -> VerifyReport {
    let certificates = checks::run(tree, plan, at, &mut findings);
    if let Some(plan) = plan {
        findings.extend(host_files::findings(tree, plan));
    }
    findings.extend(not_a_bundle(tree, certificates));
    findings.sort_by(|a, b| (a.file(), a.code, &a.message).cmp(&(b.file(), b.code, &b.message)));
    findings.dedup();
    VerifyReport {
        findings,
        files: tree.files.len(),
        certificates,
        has_runbook: tree.files.contains_key(crate::layout::CHANGES),
        rotations: tree
            .files
            .get(crate::bundle::manifest::MANIFEST)
            .map(|entry| {
                crate::bundle::manifest::Header::read(&entry.data)
                    .rotations()
                    .keys()
                    .cloned()
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// One row of `cpgen certs`.
#[derive(Debug, Clone, Serialize)]
pub struct CertRow {
    /// The file (or kubeconfig field).
    pub(crate) certificate: String,
    /// The host it is on (`admin` for the operator's files).
    pub(crate) host: String,
    /// Subject CN.
    pub(crate) common_name: String,
    /// NotBefore.
    #[serde(with = "time::serde::rfc3339")]
    pub(crate) not_before: OffsetDateTime,
    /// NotAfter.
    #[serde(with = "time::serde::rfc3339")]
    pub(crate) expires: OffsetDateTime,
    /// Where it stands at the time the table was made for.
    pub(crate) status: Validity,
    /// Issuer CN.
    pub(crate) ca: String,
    /// Key algorithm.
    pub(crate) algorithm: String,
    /// True for CA certificates.
    pub(crate) is_ca: bool,
}

impl CertRow {
    /// The row with every string from the bundle escaped.
    fn escaped(&self) -> CertRow {
        let e = |s: &str| escape(s).into_owned();
        CertRow {
            certificate: e(&self.certificate),
            host: e(&self.host),
            common_name: e(&self.common_name),
            ca: e(&self.ca),
            algorithm: e(&self.algorithm),
            ..self.clone()
        }
    }
}

/// Every certificate of the bundle at `path` and where it stands at `at`, soonest expiry
/// first, and the findings of reading it (among them CP814 when it is not a bundle).
pub fn certificate_table(
    path: &Utf8Path,
    at: OffsetDateTime,
) -> Result<(Vec<CertRow>, Vec<Diagnostic>), Error> {
    let mut findings = Vec::new();
    let tree = read_bundle(path, &mut findings)?;
    let (hosts, unreadable) = model::hosts(&tree);
    findings.extend(unreadable);
    let material = material::collect(&tree, &hosts, &mut findings);
    findings.extend(not_a_bundle(&tree, material.certs.len()));
    let row = |file: String, info: &CertInfo| CertRow {
        host: file
            .strip_prefix("hosts/")
            .and_then(|r| r.split('/').next())
            .unwrap_or("admin")
            .to_owned(),
        certificate: file,
        common_name: info.common_name.clone(),
        not_before: info.not_before,
        expires: info.not_after,
        status: Validity::at(info.not_before, info.not_after, at),
        ca: info.issuer_common_name.clone(),
        algorithm: info.algorithm.clone(),
        is_ca: info.is_ca,
    };
    let mut rows: Vec<CertRow> = material
        .certs
        .iter()
        .map(|(file, info)| row(file.clone(), info))
        .collect();
    // A trust file's further CAs: the other generation during a rotation.
    for (file, stack) in &material.stacks {
        if stack.first().is_some_and(|first| first.is_ca) {
            for (index, info) in stack.iter().enumerate().skip(1) {
                rows.push(row(format!("{file}#{}", index + 1), info));
            }
        }
    }
    rows.sort_by(|a, b| (a.expires, &a.certificate).cmp(&(b.expires, &b.certificate)));
    Ok((rows, findings))
}

/// The rows as the `cpgen certs` table, residual times from `at`, escaped for a terminal.
pub fn render_table(rows: &[CertRow], at: OffsetDateTime) -> String {
    let date = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    let header = [
        "CERTIFICATE",
        "HOST",
        "NOT BEFORE (UTC)",
        "EXPIRES (UTC)",
        "RESIDUAL TIME",
        "STATUS",
        "ISSUED BY",
        "ALGORITHM",
    ]
    .map(str::to_owned);
    let table: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            let r = r.escaped();
            [
                r.certificate,
                r.host,
                r.not_before.format(&date).unwrap_or_default(),
                r.expires.format(&date).unwrap_or_default(),
                residual(r.not_before, r.expires, at),
                r.status.words().to_owned(),
                if r.is_ca {
                    format!("{} (CA)", r.ca)
                } else {
                    r.ca
                },
                r.algorithm,
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            table
                .iter()
                .chain([&header])
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&table) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The rows as JSON, every string escaped.
pub fn table_json(rows: &[CertRow]) -> serde_json::Value {
    serde_json::json!(rows.iter().map(CertRow::escaped).collect::<Vec<_>>())
}

/// `364d`, `23h`, `expired 3d ago`, `not yet valid (in 3d)`.
pub(crate) fn residual(
    not_before: OffsetDateTime,
    expires: OffsetDateTime,
    now: OffsetDateTime,
) -> String {
    // The largest whole unit: days, else hours, else minutes.
    let span = |left: Duration| match (left.whole_days(), left.whole_hours()) {
        (0, 0) => format!("{}m", left.whole_minutes()),
        (0, hours) => format!("{hours}h"),
        (days, _) => format!("{days}d"),
    };
    if now < not_before {
        return format!("not yet valid (in {})", span(not_before - now));
    }
    let left = expires - now;
    if left.is_negative() {
        return format!("expired {} ago", span(-left));
    }
    span(left)
}
