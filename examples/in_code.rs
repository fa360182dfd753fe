//! A cluster built in code, without a `cluster.toml`: N masters on loopback addresses
//! (127.0.1.10 and up) behind one load balancer (127.0.1.2), validated by the same rules as a
//! file, and written as a bundle with fresh secrets beside it.
//!
//! ```text
//! cargo run --example in_code -- 3 cluster.tar.gz
//! ```
//!
//! writes `cluster.tar.gz` and `cluster.secrets.toml` (mode 0600). Findings are printed one
//! per line with their codes, and nothing is written (exit 1); a wrong argument is a usage
//! message (exit 2). Only the library's public API is used.

use std::process::ExitCode;

use camino::{Utf8Path, Utf8PathBuf};
use cpgen::bundle::WriteOptions;
use cpgen::diag::escape;
use cpgen::pki::{FillOptions, Secrets};
use cpgen::spec::ClusterSpec;
use cpgen::{Error, Report, Severity};

const USAGE: &str = "usage: in_code N OUT.tar.gz   (N: the number of masters, 1 or more)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (masters, out) = match args.as_slice() {
        [n, out] => match n.parse::<u8>() {
            Ok(n) if n > 0 => (n, Utf8PathBuf::from(out)),
            _ => return usage(&format!("`{}` is not a number of masters", escape(n))),
        },
        _ => return usage("give the number of masters and the bundle to write"),
    };
    match run(masters, &out) {
        Ok(files) => {
            println!("wrote {out} ({files} files) and {}", secrets_path(&out));
            ExitCode::SUCCESS
        }
        Err(Error::Invalid(report)) => {
            print_findings(&report);
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The spec of a cluster of `masters` masters and one load balancer.
fn cluster(masters: u8) -> ClusterSpec {
    let mut spec = ClusterSpec::new("in-code")
        .balancer("kubelb00", "127.0.1.2")
        .endpoint("127.0.1.2");
    for i in 0..masters {
        spec = spec.master(
            format!("kubem{i:02}"),
            format!("127.0.1.{}", 10 + u16::from(i)),
        );
    }
    spec
}

/// Validates, then writes the secrets and the bundle; nothing is written when a finding is
/// an error. Returns the number of files in the bundle.
fn run(masters: u8, out: &Utf8Path) -> Result<usize, Error> {
    let checked = cluster(masters).validate()?;
    print_findings(&checked.report);
    let now = time::OffsetDateTime::now_utc();
    let (secrets, _) = Secrets::load_or_create(
        &secrets_path(out),
        &checked.plan,
        now,
        &FillOptions::default(),
    )?;
    cpgen::bundle::write_tar_gz(&checked.plan, &secrets, out, &WriteOptions::default())
}

/// `OUT.secrets.toml` beside `OUT.tar.gz`.
fn secrets_path(out: &Utf8Path) -> Utf8PathBuf {
    let name = out.file_name().unwrap_or("cluster");
    let stem = name
        .strip_suffix(".tar.gz")
        .or_else(|| name.strip_suffix(".tgz"))
        .unwrap_or(name);
    out.with_file_name(format!("{stem}.secrets.toml"))
}

/// One line per finding: `error[CP402]: message --> masters`.
fn print_findings(report: &Report) {
    for finding in report.diagnostics() {
        let severity = match finding.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let place = finding
            .primary
            .as_ref()
            .and_then(|label| label.path())
            .map_or_else(String::new, |path| {
                format!(" --> {}", escape(path.as_str()))
            });
        eprintln!(
            "{severity}[{}]: {}{place}",
            finding.code.id(),
            escape(&finding.message)
        );
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("error: {problem}\n{USAGE}");
    ExitCode::from(2)
}
