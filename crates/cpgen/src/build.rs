//! Helpers for a downstream `build.rs`: validate a cluster description (diagnostics become a
//! build failure naming the file and line), write its bundle into `OUT_DIR`, tell cargo when
//! to rerun, and generate a module of constants to `include!`.
//!
//! In `build.rs`'s `main`:
//!
//! ```no_run
//! cpgen::build::Build::new("cluster.toml").run_or_exit();
//! ```
//!
//! ```ignore
//! // src/main.rs
//! mod cluster {
//!     include!(concat!(env!("OUT_DIR"), "/cpgen_cluster.rs"));
//! }
//! fn main() {
//!     println!("{} at {}", cluster::CLUSTER_NAME, cluster::API_ENDPOINT);
//! }
//! ```
// A build script talks to cargo on stdout and to the user on stderr; this module exists to
// do exactly that.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use askama::Template;
use camino::{Utf8Path, Utf8PathBuf};
use time::OffsetDateTime;

use crate::bundle::Bundle;
use crate::pki::{Ca, FillOptions, Secrets};
use crate::{Config, Error, Plan};

/// The file name of the generated constants module in `OUT_DIR`.
pub const CONSTANTS_FILE: &str = "cpgen_cluster.rs";
/// The directory name of the bundle in `OUT_DIR`.
pub const BUNDLE_DIR: &str = "cpgen-bundle";

/// What a build produced.
#[derive(Debug)]
pub struct BuildOutput {
    /// The validated plan.
    pub plan: Plan,
    /// The bundle, as a directory tree.
    pub bundle_dir: Utf8PathBuf,
    /// The generated constants module.
    pub constants: Utf8PathBuf,
}

/// A bundle build for a `build.rs`.
#[derive(Debug, Clone)]
pub struct Build {
    config: Utf8PathBuf,
    secrets: Option<Utf8PathBuf>,
    out_dir: Option<Utf8PathBuf>,
}

#[derive(Template)]
#[template(path = "constants.rs", escape = "none")]
struct Constants {
    source: String,
    cluster: String,
    version: String,
    api: String,
    etcd: Vec<String>,
    ca: String,
}

/// `value` as a Rust string literal.
fn literal(value: &str) -> String {
    format!("{value:?}")
}

impl Build {
    /// A build of the cluster described at `config` (relative to the package root, where
    /// build scripts run).
    pub fn new(config: impl Into<Utf8PathBuf>) -> Build {
        Build {
            config: config.into(),
            secrets: None,
            out_dir: None,
        }
    }

    /// The secrets file (default: beside the config, `<stem>.secrets.toml`, created on the
    /// first build; keep it, or every clean build would mint a new PKI).
    pub fn secrets(mut self, path: impl Into<Utf8PathBuf>) -> Build {
        self.secrets = Some(path.into());
        self
    }

    /// Where to write (default: `$OUT_DIR`).
    pub fn out_dir(mut self, path: impl Into<Utf8PathBuf>) -> Build {
        self.out_dir = Some(path.into());
        self
    }

    /// Validates, writes the bundle and the constants, and prints `cargo:rerun-if-changed`.
    pub fn run(&self) -> Result<BuildOutput, Error> {
        let secrets_path = self
            .secrets
            .clone()
            .unwrap_or_else(|| Config::default_secrets_path(&self.config));
        println!("cargo:rerun-if-changed={}", self.config);
        println!("cargo:rerun-if-changed={secrets_path}");
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var("OUT_DIR")
                .map(Utf8PathBuf::from)
                .map_err(|_| Error::Read {
                    path: Utf8PathBuf::from("$OUT_DIR"),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "OUT_DIR is not set: call this from a build script",
                    ),
                })?,
        };
        let checked = Config::from_path(&self.config)?.validate()?;
        for diagnostic in checked.report.diagnostics() {
            // One line each: cargo reads a line break as the end of the warning.
            let message = crate::diag::escape(&diagnostic.message);
            println!("cargo:warning={}: {message}", self.config);
        }
        let (secrets, change) = Secrets::load_or_create(
            &secrets_path,
            &checked.plan,
            OffsetDateTime::now_utc(),
            &FillOptions::default(),
        )?;
        if change.created {
            println!("cargo:warning=cpgen created {secrets_path}: it holds every private key of the cluster; keep it and keep it private");
        }
        let now = OffsetDateTime::now_utc();
        for notice in crate::pki::ca_notices(&checked.plan, &secrets, now)? {
            println!("cargo:warning={notice}");
        }
        let bundle = Bundle::build(&checked.plan, &secrets)?;
        let bundle_dir = out_dir.join(BUNDLE_DIR);
        bundle.write_dir(&bundle_dir, crate::bundle::WriteMode::Replace)?;
        let constants = out_dir.join(CONSTANTS_FILE);
        write_constants(&constants, &self.config, &checked.plan, &bundle)?;
        Ok(BuildOutput {
            plan: checked.plan,
            bundle_dir,
            constants,
        })
    }

    /// [`Build::run`], but a failure ends the build script: the diagnostics (each naming the
    /// file, line and column) go to stderr, which cargo shows, and the exit code is 1.
    pub fn run_or_exit(&self) -> BuildOutput {
        match self.run() {
            Ok(output) => output,
            Err(Error::Invalid(report)) => {
                eprint!("{}", report.render(crate::diag::Style::Plain));
                eprintln!("{}: {}", report.source_name(), report.summary());
                std::process::exit(1)
            }
            Err(other) => {
                eprintln!("cpgen: {other}");
                std::process::exit(1)
            }
        }
    }
}

fn write_constants(
    path: &Utf8Path,
    source: &Utf8Path,
    plan: &Plan,
    bundle: &Bundle,
) -> Result<(), Error> {
    let ca = plan
        .masters
        .first()
        .and_then(|m| bundle.get(&format!("hosts/{}/etc/kubernetes/pki/ca.pem", m.name)))
        .map(|f| String::from_utf8_lossy(&f.contents).into_owned())
        .ok_or(Error::MissingKey {
            identity: Ca::Kubernetes.id().to_owned(),
        })?;
    let constants = Constants {
        source: source.to_string(),
        cluster: literal(plan.cluster.name.as_str()),
        version: literal(&plan.cluster.kubernetes_version.to_string()),
        api: literal(&plan.api_url()),
        etcd: plan
            .masters
            .iter()
            .map(|m| {
                literal(&format!(
                    "https://{}:{}",
                    m.address.url_host(),
                    plan.etcd.client_port
                ))
            })
            .collect(),
        ca: literal(&ca),
    };
    let text = crate::template::render_text(&constants, "constants.rs")?;
    std::fs::write(path, text).map_err(|source| Error::Write {
        path: path.to_owned(),
        source,
    })
}
