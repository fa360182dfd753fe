//! The `cpgen` command line: parses arguments, calls the library, prints, and maps errors to
//! exit codes (0 success, 1 invalid input, 2 usage, I/O or internal error).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use camino::{Utf8Path, Utf8PathBuf};
use clap::{Parser, Subcommand, ValueEnum};

use cpgen::bundle::{OutputKind, WriteMode, WriteOptions};
use cpgen::change::Deployed;
use cpgen::diag::escape;
use cpgen::pki::{self, Ca, FillOptions, ImportMode, Secrets, SecretsProblem};
use cpgen::verify::VerifyOptions;
use cpgen::{Config, Error, Report};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Compile one typed description of a highly-available Kubernetes control plane into a
/// validated, reproducible bundle.
#[derive(Parser)]
#[command(
    name = "cpgen",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("CPGEN_COMMIT"), ")"),
    about,
    long_about = None
)]
struct Cli {
    /// When to colour diagnostics.
    #[arg(long, value_enum, global = true, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum ColorChoice {
    /// Colour when stderr is a terminal and NO_COLOR is unset.
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// For people.
    Text,
    /// For machines.
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProbeFormat {
    /// For people.
    Text,
    /// For machines.
    Json,
    /// Prometheus text exposition.
    Prometheus,
}

#[derive(Subcommand)]
enum Command {
    /// Write a commented starter cluster.toml (the guide's three masters and load balancer).
    ///
    /// Refuses to overwrite an existing file.
    Init {
        /// Where to write it.
        #[arg(default_value = "cluster.toml")]
        path: Utf8PathBuf,
    },
    /// Validate a cluster.toml and print the plan: hosts, listeners, etcd quorum and the SANs
    /// of every server certificate.
    ///
    /// Every problem is reported at once, with its place in the file. Exit 0 when valid
    /// (warnings may be printed), 1 when not.
    Check {
        /// The cluster description.
        config: Utf8PathBuf,
        /// Output format of the plan and of the findings.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Build the bundle: PKI, systemd units, kubeconfigs, HAProxy/keepalived, manifest.
    ///
    /// Creates the secrets file (mode 0600) on first use and reuses it afterwards; the same
    /// config and secrets always give the same bytes.
    Bundle {
        /// The cluster description.
        config: Utf8PathBuf,
        /// Write a reproducible .tar.gz here.
        #[arg(
            short = 'o',
            long = "output",
            conflicts_with = "out_dir",
            required_unless_present = "out_dir"
        )]
        output: Option<Utf8PathBuf>,
        /// Write the bundle as a directory tree here.
        #[arg(long)]
        out_dir: Option<Utf8PathBuf>,
        /// The secrets file (default: <config dir>/<config stem>.secrets.toml).
        #[arg(long)]
        secrets: Option<Utf8PathBuf>,
        /// Replace an existing output.
        #[arg(long)]
        force: bool,
        /// The bundle the cluster runs now (.tar.gz or directory): the new bundle changes
        /// it in place. Joining etcd members join the running cluster, and changes.json
        /// (also in its README) says in which order to add, remove and restart what.
        #[arg(long)]
        previous: Option<Utf8PathBuf>,
    },
    /// Re-issue every leaf certificate: new validity from --at (default now), same keys.
    ///
    /// Moves `issued_at` in the secrets file; CA certificates and all keys stay as they are.
    /// Run `cpgen bundle` afterwards to write the renewed certificates.
    Renew {
        /// The cluster description.
        config: Utf8PathBuf,
        /// The secrets file (default: <config dir>/<config stem>.secrets.toml).
        #[arg(long)]
        secrets: Option<Utf8PathBuf>,
        /// Issue time, RFC 3339 (e.g. 2026-12-01T00:00:00Z); default now.
        #[arg(long, value_parser = parse_time)]
        at: Option<OffsetDateTime>,
        /// Accept an --at more than a day ahead: the certificates are not valid until then.
        #[arg(long)]
        allow_future: bool,
        /// Accept an --at so far back that the certificates are already expired.
        #[arg(long)]
        allow_expired: bool,
    },
    /// Audit a bundle (a .tar.gz or a directory in the bundle layout), made by cpgen or by
    /// hand: parsing, key/certificate pairs, chains, usages, SANs, expiry, paths, kubeconfig
    /// references, manifest, key permissions, etcd membership.
    ///
    /// Exit 0 when nothing is wrong (warnings may be printed), 1 when something is.
    Verify {
        /// The bundle: .tar.gz, .tar or directory.
        bundle: Utf8PathBuf,
        /// The cluster description; then the names and addresses clients dial come from it
        /// instead of being inferred from the units, kubeconfigs and HAProxy backends.
        #[arg(long)]
        config: Option<Utf8PathBuf>,
        /// The config's secrets file: then the bundle is rebuilt in memory and every file
        /// that differs, is missing or was added is named. Only read, never filled.
        #[arg(long, requires = "config")]
        secrets: Option<Utf8PathBuf>,
        /// Check validity at this time (RFC 3339) instead of now.
        #[arg(long, value_parser = parse_time)]
        at: Option<OffsetDateTime>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// List every certificate of a bundle with its expiry, soonest first (like `kubeadm
    /// certs check-expiration`).
    Certs {
        /// The bundle: .tar.gz, .tar or directory.
        bundle: Utf8PathBuf,
        /// Compute residual times from this time (RFC 3339) instead of now.
        #[arg(long, value_parser = parse_time)]
        at: Option<OffsetDateTime>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Compare two bundles host by host: files added, removed and changed, why each
    /// certificate was re-issued, and the units the change restarts, starts or stops.
    ///
    /// Exit 0 when they are the same (every path, byte and mode), 1 when they differ, 2 when
    /// either cannot be read or holds hostile entries, like diff(1).
    Diff {
        /// The bundle on the machines now: .tar.gz, .tar or directory.
        old: Utf8PathBuf,
        /// The bundle to replace it.
        new: Utf8PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Dial every endpoint of the running cluster and compare what it serves with the
    /// bundle: etcd's client and peer URLs, each kube-apiserver, the load balancer (each LB
    /// host, the virtual IP, the API endpoint) and each kubelet.
    ///
    /// Per endpoint: ok (the bundle's certificate), drift (another from the bundle's CA:
    /// older or newer), foreign (not from the bundle's CA), expired, unreachable; with the
    /// fix. Sends nothing but a TLS handshake (with the bundle's etcd health-check identity
    /// where etcd asks for one) and, to etcd and the apiservers, one read-only health
    /// request. Exit 0 when every endpoint is ok (and answers its health request, and its
    /// certificate names the address dialled), 1 when not, 2 on usage errors.
    Probe {
        /// The bundle the cluster should run: .tar.gz, .tar or directory.
        bundle: Utf8PathBuf,
        /// The cluster description: the bundle is verified against it first, and an
        /// address the config does not have is not dialled.
        #[arg(long)]
        config: Option<Utf8PathBuf>,
        /// How long one endpoint may take, from connecting to its health answer: 500ms,
        /// 3s, 1m.
        #[arg(long, default_value = "3s")]
        timeout: cpgen::types::Timeout,
        /// Only the endpoints of this host (repeatable; `endpoint` and `vip` name the API
        /// endpoint and the virtual IP).
        #[arg(long = "only", value_name = "HOST")]
        only: Vec<String>,
        /// How many endpoints are dialled at once.
        #[arg(long, default_value = "512")]
        parallel: std::num::NonZeroUsize,
        /// Output format; prometheus writes gauges for node_exporter's textfile collector.
        #[arg(long, value_enum, default_value_t = ProbeFormat::Text)]
        format: ProbeFormat,
    },
    /// Rotate a CA or the service-account key in stages, without downtime.
    ///
    /// `start` makes the new one beside the old (trust files carry both; the old still
    /// signs), `issue` makes the new one sign (every leaf it signs is re-issued), `finish`
    /// drops the old. After each stage, bundle with `--previous` and roll the bundle out
    /// host by host before the next stage. `status` shows where each rotation stands.
    Rotate {
        /// The stage to run, or `status`.
        stage: RotateStage,
        /// The cluster description.
        config: Utf8PathBuf,
        /// What rotates (not for `status`).
        #[arg(long, value_enum)]
        which: Option<WhichRotated>,
        /// The secrets file (default: <config dir>/<config stem>.secrets.toml).
        #[arg(long)]
        secrets: Option<Utf8PathBuf>,
        /// With `start` of a CA: the new CA's certificate (PEM), imported instead of made.
        #[arg(long, requires = "key")]
        cert: Option<Utf8PathBuf>,
        /// With `start` of a CA: the new CA's private key (PEM).
        #[arg(long, requires = "cert")]
        key: Option<Utf8PathBuf>,
    },
    /// Manage the secrets file.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Print the JSON Schema of cluster.toml, for editors that check TOML as it is typed.
    ///
    /// taplo and the "Even Better TOML" extension read it from the `#:schema` line `cpgen
    /// init` writes: `cpgen schema > cluster.schema.json` beside the config. The schema
    /// checks keys, types and values; the rules that relate several values stay with
    /// `cpgen check`.
    Schema,
    /// Print cpgen's completion script for a shell.
    ///
    /// bash: `source <(cpgen completions bash)` (or save it in
    /// /etc/bash_completion.d/cpgen); zsh: save it as `_cpgen` in a directory of $fpath;
    /// fish: save it as ~/.config/fish/completions/cpgen.fish.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print cpgen's manual page (roff), or a subcommand's.
    ///
    /// Read it with `cpgen man | man -l -`; install it with `cpgen man > cpgen.1` and
    /// `cpgen man bundle > cpgen-bundle.1` in a man1 directory.
    Man {
        /// A subcommand, e.g. `bundle`: its own page.
        subcommand: Option<String>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RotateStage {
    /// Make the new CA or key; trust both.
    Start,
    /// Sign with the new one; trust both.
    Issue,
    /// Drop the old one.
    Finish,
    /// Show where each rotation stands.
    Status,
}

#[derive(Clone, Copy, ValueEnum)]
enum WhichRotated {
    /// The Kubernetes CA.
    Kubernetes,
    /// The etcd CA.
    Etcd,
    /// The front-proxy CA.
    FrontProxy,
    /// The service-account key pair.
    ServiceAccount,
}

impl From<WhichRotated> for pki::Rotated {
    fn from(which: WhichRotated) -> pki::Rotated {
        match which {
            WhichRotated::Kubernetes => pki::Rotated::Ca(Ca::Kubernetes),
            WhichRotated::Etcd => pki::Rotated::Ca(Ca::Etcd),
            WhichRotated::FrontProxy => pki::Rotated::Ca(Ca::FrontProxy),
            WhichRotated::ServiceAccount => pki::Rotated::ServiceAccount,
        }
    }
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Bring an existing CA (e.g. made by `cfssl gencert -initca`) into the secrets file.
    ///
    /// The key may be PKCS#1, SEC1 or PKCS#8 PEM. The certificate must be a CA, valid now, and
    /// match the key.
    ImportCa {
        /// The CA certificate, PEM.
        #[arg(long)]
        cert: Utf8PathBuf,
        /// The CA's private key, PEM.
        #[arg(long)]
        key: Utf8PathBuf,
        /// Which of the cluster's CAs it becomes.
        #[arg(long, value_enum, default_value_t = WhichCa::Kubernetes)]
        which: WhichCa,
        /// The secrets file (created if missing).
        #[arg(long, default_value = "cluster.secrets.toml")]
        secrets: Utf8PathBuf,
        /// Replace a CA the secrets file already has.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum WhichCa {
    /// Signs the API server, its clients and the components.
    Kubernetes,
    /// Signs etcd servers and clients.
    Etcd,
    /// Signs the front-proxy client.
    FrontProxy,
}

impl From<WhichCa> for Ca {
    fn from(which: WhichCa) -> Ca {
        match which {
            WhichCa::Kubernetes => Ca::Kubernetes,
            WhichCa::Etcd => Ca::Etcd,
            WhichCa::FrontProxy => Ca::FrontProxy,
        }
    }
}

fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| format!("not an RFC 3339 time ({e}); write e.g. 2026-12-01T00:00:00Z"))
}

/// Findings printed as text; the rest are counted (JSON has them all).
const SHOWN_FINDINGS: usize = 20;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let colour = match cli.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    };
    match run(cli.command, colour) {
        Ok(code) => code,
        Err(error) => {
            report_error(&error, colour);
            ExitCode::from(if error.is_invalid_input() { 1 } else { 2 })
        }
    }
}

fn run(command: Command, colour: bool) -> Result<ExitCode, Error> {
    match command {
        Command::Init { path } => {
            match cpgen::init::write_starter_config(&path) {
                Err(Error::AlreadyExists { path }) => {
                    let another = path.with_file_name("new-cluster.toml");
                    eprintln!(
                        "cpgen: error: {} already exists; init never replaces a config: give another path, e.g. `cpgen init {}`",
                        escape(path.as_str()),
                        shell_word(another.as_str())
                    );
                    return Ok(ExitCode::from(2));
                }
                other => other?,
            }
            eprintln!(
                "wrote {}; edit it, then run `cpgen check {}` (for an editor that checks it as you type: `cpgen schema > cluster.schema.json` beside it)",
                escape(path.as_str()),
                shell_word(path.as_str())
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config, format } => check(&config, format, colour),
        Command::Bundle {
            config,
            output,
            out_dir,
            secrets,
            force,
            previous,
        } => {
            let target = match (output, out_dir) {
                (Some(file), _) => Output::TarGz(file),
                (None, Some(dir)) => Output::Dir(dir),
                (None, None) => {
                    use clap::CommandFactory;
                    Cli::command()
                        .error(
                            clap::error::ErrorKind::MissingRequiredArgument,
                            "give -o OUT.tar.gz or --out-dir DIR",
                        )
                        .exit()
                }
            };
            match bundle(&config, &target, secrets, (force, previous), colour) {
                Err(Error::AlreadyExists { path }) => {
                    eprintln!(
                        "cpgen: error: {} already exists; pass --force to replace it",
                        escape(path.as_str())
                    );
                    Ok(ExitCode::from(2))
                }
                other => other,
            }
        }
        Command::Renew {
            config,
            secrets,
            at,
            allow_future,
            allow_expired,
        } => renew(&config, secrets, at, (allow_future, allow_expired)),
        Command::Verify {
            bundle,
            config,
            secrets,
            at,
            format,
        } => verify(
            &bundle,
            config.as_ref(),
            secrets.as_ref(),
            at,
            format,
            colour,
        ),
        Command::Certs { bundle, at, format } => certs(&bundle, at, format),
        Command::Diff { old, new, format } => diff(&old, &new, format),
        Command::Probe {
            bundle,
            config,
            timeout,
            only,
            parallel,
            format,
        } => {
            let plan = match config {
                Some(path) => {
                    let checked = Config::from_path(&path)?.validate()?;
                    print_warnings(&checked.report, colour);
                    Some(checked.plan)
                }
                None => None,
            };
            let options = cpgen::probe::ProbeOptions {
                timeout,
                only: &only,
                parallel,
                plan: plan.as_ref(),
            };
            probe(&bundle, &options, format)
        }
        Command::Rotate {
            stage,
            config,
            which,
            secrets,
            cert,
            key,
        } => {
            let secrets = secrets.unwrap_or_else(|| Config::default_secrets_path(&config));
            let stage = match stage {
                RotateStage::Start => pki::Stage::Start,
                RotateStage::Issue => pki::Stage::Issue,
                RotateStage::Finish => pki::Stage::Finish,
                RotateStage::Status => return rotation_status(&secrets),
            };
            let Some(which) = which else {
                eprintln!("cpgen: error: give --which kubernetes|etcd|front-proxy|service-account");
                return Ok(ExitCode::from(2));
            };
            let import = cert.zip(key);
            rotate(&config, &secrets, which.into(), stage, import)
        }
        Command::Secrets(SecretsCommand::ImportCa {
            cert,
            key,
            which,
            secrets,
            force,
        }) => import_ca(&cert, &key, which.into(), &secrets, force),
        Command::Schema => {
            let schema = cpgen::schema::cluster_schema();
            let text = serde_json::to_string_pretty(&schema)
                .map_err(|_| Error::Internal("the JSON Schema does not serialize"))?;
            print_stdout(&format!("{text}\n"));
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "cpgen", &mut script);
            print_stdout(&String::from_utf8_lossy(&script));
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { subcommand } => man_page(subcommand.as_deref()),
    }
}

/// The roff page of cpgen, or of one subcommand (`cpgen-bundle(1)`).
fn man_page(subcommand: Option<&str>) -> Result<ExitCode, Error> {
    use clap::CommandFactory;
    let cpgen = Cli::command();
    let page = match subcommand {
        None => cpgen,
        Some(name) => {
            let Some(found) = cpgen.find_subcommand(name) else {
                let names: Vec<&str> = cpgen.get_subcommands().map(|c| c.get_name()).collect();
                eprintln!(
                    "cpgen: error: no subcommand `{}`; pages exist for: {}",
                    escape(name),
                    names.join(", ")
                );
                return Ok(ExitCode::from(2));
            };
            let title = format!("cpgen-{}", found.get_name());
            let version = cpgen.get_version().unwrap_or_default().to_owned();
            found
                .clone()
                .name(title.clone())
                .bin_name(title)
                .version(version)
        }
    };
    let mut roff = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut roff)
        .map_err(|_| Error::Internal("the man page does not render"))?;
    print_stdout(&String::from_utf8_lossy(&roff));
    Ok(ExitCode::SUCCESS)
}

enum Output {
    TarGz(Utf8PathBuf),
    Dir(Utf8PathBuf),
}

/// Without `--previous`, masters added or removed since the secrets file was made would
/// bootstrap a second etcd cluster: say so.
fn warn_membership_change(
    plan: &cpgen::Plan,
    secrets: &Secrets,
    new_keys: &[String],
    created: bool,
) {
    if created {
        return;
    }
    let Some(moved) = cpgen::change::MembershipSinceSecrets::of(plan, secrets, new_keys) else {
        return;
    };
    eprintln!(
        "warning: the masters changed since the secrets file was made (added: {}; removed: {}): \
         this bundle bootstraps etcd as if new, so new members would start a separate cluster; \
         pass --previous DEPLOYED_BUNDLE to get a bundle that changes the running cluster, \
         with its runbook",
        escape(&join_or_none(&moved.added)),
        escape(&join_or_none(&moved.removed))
    );
}

fn join_or_none<T: AsRef<str>>(items: &[T]) -> String {
    if items.is_empty() {
        return "none".to_owned();
    }
    items
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ")
}

fn bundle(
    config: &Utf8PathBuf,
    target: &Output,
    secrets: Option<Utf8PathBuf>,
    (force, previous): (bool, Option<Utf8PathBuf>),
    colour: bool,
) -> Result<ExitCode, Error> {
    let started = std::time::SystemTime::now();
    let checked = Config::from_path(config)?.validate()?;
    print_warnings(&checked.report, colour);
    // Refused before any key is made: a change from a bundle that does not verify, or of
    // another cluster, must not touch the secrets file.
    let deployed = previous
        .as_deref()
        .map(|path| Deployed::read(path, OffsetDateTime::now_utc()))
        .transpose()?;
    let out = match target {
        Output::TarGz(path) | Output::Dir(path) => path,
    };
    let secrets_path = secrets.unwrap_or_else(|| Config::default_secrets_path(config));
    // A change is made with the secrets of the cluster that runs: a new file would hold new
    // CAs, which the running members do not trust.
    if previous.is_some() && !secrets_path.exists() {
        eprintln!(
            "cpgen: error: {} does not exist: a change to a running cluster needs the secrets file its bundle was made with (pass --secrets)",
            escape(secrets_path.as_str())
        );
        return Ok(ExitCode::from(2));
    }
    // Fail before generating keys when the output is in the way or is the project itself.
    let kind = match target {
        Output::TarGz(_) => OutputKind::TarGz,
        Output::Dir(_) => OutputKind::Directory,
    };
    let mode = if force {
        WriteMode::Replace
    } else {
        WriteMode::CreateNew
    };
    let mut protected: Vec<(&Utf8Path, &str)> = vec![
        (config, "the configuration"),
        (&secrets_path, "the secrets file"),
    ];
    if let Some(previous) = &previous {
        protected.push((previous, "the deployed bundle it changes"));
    }
    cpgen::bundle::check_output(out, kind, mode, &protected)?;
    for (dir, mode) in Secrets::writable_directories(config, &secrets_path) {
        eprintln!(
            "warning: {} is writable by group or others (mode {mode:04o}): whoever can write there can replace the configuration or the secrets file; run `chmod go-w {}`",
            escape(dir.as_str()),
            shell_word(dir.as_str())
        );
    }
    clean_leftovers(&[out, &secrets_path], started);
    // Another cluster's secrets file is refused before the new masters' keys go into it.
    if let Some(deployed) = &deployed {
        deployed.check_secrets(&checked.plan, &Secrets::load(&secrets_path)?)?;
    }
    let keys_bar = progress_bar("generating keys");
    let (secrets, change) = Secrets::load_or_create(
        &secrets_path,
        &checked.plan,
        OffsetDateTime::now_utc(),
        &FillOptions {
            progress: Some(&|done, total| update(&keys_bar, done, total)),
        },
    )?;
    keys_bar.finish_and_clear();
    if change.created {
        eprintln!(
            "created {} (mode 0600) with {} keys: it holds every private key of the cluster, keep it safe and backed up",
            escape(secrets_path.as_str()),
            change.new_keys.len()
        );
    } else if !change.new_keys.is_empty() {
        eprintln!(
            "added {} keys to {}: {}",
            change.new_keys.len(),
            escape(secrets_path.as_str()),
            change.new_keys.join(", ")
        );
    }
    let plan = &checked.plan;
    for notice in pki::ca_notices(plan, &secrets, OffsetDateTime::now_utc())? {
        eprintln!("warning: {notice}");
    }
    let unused = secrets.unused_keys(plan);
    if !unused.is_empty() {
        eprintln!(
            "note: {} keeps keys of hosts the config no longer has (kept in case they come back): {}",
            escape(secrets_path.as_str()),
            escape(&unused.join(", "))
        );
    }
    if let Some(deployed) = &deployed {
        let changed = cpgen::change::change_bundle(plan, &secrets, deployed)?;
        match target {
            Output::TarGz(path) => changed.write_tar_gz(path, mode)?,
            Output::Dir(path) => changed.write_dir(path, mode)?,
        }
        eprintln!(
            "wrote {}: {} files for {} hosts; changes.json and its README say in which order to apply the change",
            escape(out.as_str()),
            changed.files().count(),
            plan.hosts().count()
        );
        return Ok(ExitCode::SUCCESS);
    }
    warn_membership_change(plan, &secrets, &change.new_keys, change.created);
    let hosts_bar = progress_bar("writing hosts");
    let progress = |done, total| update(&hosts_bar, done, total);
    let options = WriteOptions {
        mode,
        progress: Some(&progress),
    };
    let files = match target {
        Output::TarGz(path) => cpgen::bundle::write_tar_gz(plan, &secrets, path, &options),
        Output::Dir(path) => cpgen::bundle::write_dir(plan, &secrets, path, &options),
    };
    hosts_bar.finish_and_clear();
    let files = files?;
    eprintln!(
        "wrote {}: {files} files for {} hosts",
        escape(out.as_str()),
        checked.plan.hosts().count()
    );
    Ok(ExitCode::SUCCESS)
}

fn verify(
    bundle: &Utf8PathBuf,
    config: Option<&Utf8PathBuf>,
    secrets_path: Option<&Utf8PathBuf>,
    at: Option<OffsetDateTime>,
    format: Format,
    colour: bool,
) -> Result<ExitCode, Error> {
    let plan = match config {
        Some(path) => {
            let checked = Config::from_path(path)?.validate()?;
            print_warnings(&checked.report, colour);
            Some(checked.plan)
        }
        None => None,
    };
    let secrets = secrets_path.map(|path| Secrets::load(path)).transpose()?;
    let mut report = cpgen::verify::verify_path(
        bundle,
        at.unwrap_or_else(OffsetDateTime::now_utc),
        &VerifyOptions {
            plan: plan.as_ref(),
            secrets: secrets.as_ref(),
        },
    )
    .map_err(|error| match (error, secrets_path) {
        // verify never adds a key: one the config needs and the file lacks means the file
        // is not the one this bundle was built with.
        (Error::MissingKey { identity }, Some(path)) => Error::Secrets {
            path: path.clone(),
            problem: SecretsProblem::NotThisBundles { identity },
        },
        (error, _) => error,
    })?;
    let proved = secrets.is_some()
        && !report
            .findings
            .iter()
            .any(|f| f.code == cpgen::diag::Code::NotReproduced);
    if let Some(config) = config {
        for help in report.findings.iter_mut().filter_map(|f| f.help.as_mut()) {
            *help = with_paths(help, config, bundle);
        }
    }
    match format {
        Format::Text => {
            print_stdout(&report.render());
            if let (true, Some(config), Some(secrets)) = (proved, config, secrets_path) {
                print_stdout(&format!(
                    "every file is byte for byte what {} and {} build{}\n",
                    escape(config.as_str()),
                    escape(secrets.as_str()),
                    if report.has_runbook {
                        ", given its runbook (changes.json comes from the deployed bundle; its commands have cpgen's shapes)"
                    } else {
                        ""
                    }
                ));
            }
        }
        Format::Json => print_stdout(&format!("{:#}\n", report.to_json())),
    }
    if !report.rotations.is_empty() && !proved {
        eprintln!(
            "note: manifest.json says a rotation of {} is in progress, so its trust files carry two generations; nothing but `--config` and `--secrets` (a rebuild from the rotation's secrets file) proves the second is the cluster's",
            escape(&report.rotations.join(", "))
        );
    }
    Ok(if report.has_errors() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Help texts name `CLUSTER.toml` and `-o OUT.tar.gz`; with the real paths at hand, the
/// commands they suggest run as printed.
fn with_paths(help: &str, config: &Utf8Path, bundle: &Utf8Path) -> String {
    let output = if bundle.is_dir() {
        format!("--out-dir {}", shell_word(bundle.as_str()))
    } else {
        format!("-o {}", shell_word(bundle.as_str()))
    };
    help.replace("-o OUT.tar.gz", &output)
        .replace("CLUSTER.toml", &shell_word(config.as_str()))
}

/// `word` as one shell word: quoted when it holds anything a shell would split or expand.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-+=:,@%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn certs(
    bundle: &Utf8PathBuf,
    at: Option<OffsetDateTime>,
    format: Format,
) -> Result<ExitCode, Error> {
    let now = at.unwrap_or_else(OffsetDateTime::now_utc);
    let (rows, findings) = cpgen::verify::certificate_table(bundle, now)?;
    // What could not be read is missing from the table: the table still prints, but the
    // exit code says it is incomplete (or that this is no bundle at all).
    eprint!("{}", cpgen::verify::render_findings(&findings));
    match format {
        Format::Json => print_stdout(&format!("{:#}\n", cpgen::verify::table_json(&rows))),
        Format::Text => print_stdout(&cpgen::verify::render_table(&rows, now)),
    }
    Ok(
        if findings
            .iter()
            .any(|f| f.severity == cpgen::diag::Severity::Error)
        {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        },
    )
}

fn diff(old: &Utf8Path, new: &Utf8Path, format: Format) -> Result<ExitCode, Error> {
    let diff = match cpgen::diff::diff_paths(old, new) {
        Err(Error::NotComparable { path, findings }) => {
            eprint!("{}", cpgen::verify::render_findings(&findings));
            return Err(Error::NotComparable { path, findings });
        }
        other => other?,
    };
    // Not compared, so said: the owners an archive gives, a path it holds twice.
    eprint!("{}", cpgen::verify::render_findings(&diff.findings));
    match format {
        Format::Text => print_stdout(&diff.render()),
        Format::Json => print_stdout(&format!("{:#}\n", diff.to_json())),
    }
    Ok(if diff.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn probe(
    bundle: &Utf8Path,
    options: &cpgen::probe::ProbeOptions<'_>,
    format: ProbeFormat,
) -> Result<ExitCode, Error> {
    let report = cpgen::probe::probe_path(bundle, options)?;
    match format {
        ProbeFormat::Text => print_stdout(&report.render()),
        ProbeFormat::Json => print_stdout(&format!("{:#}\n", report.to_json())),
        ProbeFormat::Prometheus => print_stdout(&report.to_prometheus()),
    }
    Ok(if report.all_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn renew(
    config: &Utf8PathBuf,
    secrets: Option<Utf8PathBuf>,
    at: Option<OffsetDateTime>,
    (allow_future, allow_expired): (bool, bool),
) -> Result<ExitCode, Error> {
    let checked = Config::from_path(config)?.validate()?;
    let now = OffsetDateTime::now_utc();
    let at = at.unwrap_or(now);
    let validity = checked.plan.cert_validity().days();
    match pki::renewal_time(at, now, validity) {
        Some(pki::RenewalTime::Future { ahead }) if !allow_future => {
            eprintln!(
                "cpgen: error: --at is {} days ahead: the renewed certificates would not be valid until then, and every component would reject them; pass --allow-future if that is meant",
                ahead.whole_days()
            );
            return Ok(ExitCode::from(2));
        }
        Some(pki::RenewalTime::Expired { expired_at }) if !allow_expired => {
            eprintln!(
                "cpgen: error: --at is so far back that the renewed certificates would have expired at {}; pass --allow-expired if that is meant",
                expired_at.format(&Rfc3339).unwrap_or_default()
            );
            return Ok(ExitCode::from(2));
        }
        _ => {}
    }
    let explicit = secrets.is_some();
    let path = secrets.unwrap_or_else(|| Config::default_secrets_path(config));
    if !path.exists() {
        eprintln!(
            "cpgen: error: there is no secrets file {}: renew re-issues certificates for the keys it holds; build the bundle first (`cpgen bundle {} -o OUT.tar.gz` creates it), or pass --secrets with the file you use",
            escape(path.as_str()),
            shell_word(config.as_str())
        );
        return Ok(ExitCode::from(2));
    }
    let mut secrets = Secrets::load(&path)?;
    secrets.renew(at)?;
    let new_keys = secrets.fill(&checked.plan, &FillOptions::default())?;
    // Issue before saving, so a failure leaves the old file in place.
    secrets.check_issuance(&checked.plan)?;
    secrets.save(&path)?;
    for notice in pki::ca_notices(&checked.plan, &secrets, now)? {
        eprintln!("warning: {notice}");
    }
    let issued = secrets.issued_at().format(&Rfc3339).unwrap_or_default();
    eprintln!(
        "renewed: leaf certificates are now issued at {issued} for {} days; CAs and keys are unchanged{}",
        checked.plan.cert_validity().days(),
        if new_keys.is_empty() { String::new() } else { format!(" ({} missing keys added)", new_keys.len()) }
    );
    let stem = config.file_stem().unwrap_or("cluster");
    // The same secrets file, or the bundle would be made with new keys and a new CA.
    let secrets_flag = if explicit {
        format!(" --secrets {}", shell_word(path.as_str()))
    } else {
        String::new()
    };
    eprintln!(
        "run `cpgen bundle {}{secrets_flag} -o {} --force` (or --out-dir DIR) to write the new certificates",
        shell_word(config.as_str()),
        shell_word(&format!("{stem}.tar.gz"))
    );
    Ok(ExitCode::SUCCESS)
}

fn rotate(
    config: &Utf8PathBuf,
    path: &Utf8PathBuf,
    rotated: pki::Rotated,
    stage: pki::Stage,
    import: Option<(Utf8PathBuf, Utf8PathBuf)>,
) -> Result<ExitCode, Error> {
    let started = std::time::SystemTime::now();
    let checked = Config::from_path(config)?.validate()?;
    if !path.exists() {
        eprintln!(
            "cpgen: error: there is no secrets file {}: a rotation replaces what it holds; pass --secrets with the file the cluster's bundles are made with",
            escape(path.as_str())
        );
        return Ok(ExitCode::from(2));
    }
    let read = |p: &Utf8PathBuf| {
        std::fs::read_to_string(p).map_err(|source| Error::Read {
            path: p.clone(),
            source,
        })
    };
    let pems = match &import {
        Some((cert, key)) => Some((read(cert)?, read(key)?)),
        None => None,
    };
    let new_ca = pems
        .as_ref()
        .map(|(cert_pem, key_pem)| pki::NewCa { cert_pem, key_pem });
    let now = OffsetDateTime::now_utc();
    clean_leftovers(&[path], started);
    Secrets::rotate_file(path, &checked.plan, rotated, stage, now, new_ca)?;
    let what = match rotated {
        pki::Rotated::Ca(_) => format!("the {rotated} CA"),
        pki::Rotated::ServiceAccount => "the service-account key".to_owned(),
    };
    let done = match stage {
        pki::Stage::Start if import.is_some() => format!(
            "{what}: the imported one is the new one; bundles now trust both, the old one still signs"
        ),
        pki::Stage::Start => {
            format!("{what}: a new one is made; bundles now trust both, the old one still signs")
        }
        pki::Stage::Issue => format!("{what}: the new one now signs; bundles still trust both"),
        pki::Stage::Finish => {
            format!("{what}: the old one is dropped; bundles trust only the new one")
        }
    };
    eprintln!(
        "rotation of {rotated}: `{stage}` recorded in {}; {done}",
        escape(path.as_str())
    );
    let next = match stage.next() {
        Some(next) => format!(
            "; once every host runs it, `cpgen rotate {next} --which {rotated} {}`",
            shell_word(config.as_str())
        ),
        None => String::new(),
    };
    eprintln!(
        "next: `cpgen bundle {} -o NEW.tar.gz --previous DEPLOYED` and roll it out host by host (its changes.json says in which order){next}",
        shell_word(config.as_str())
    );
    Ok(ExitCode::SUCCESS)
}

/// Removes what interrupted runs left beside `paths` (a temporary copy of the secrets file
/// holds every key) and says so.
fn clean_leftovers(paths: &[&Utf8Path], started: std::time::SystemTime) {
    for leftover in cpgen::bundle::clean_stale(paths, started) {
        match leftover {
            cpgen::bundle::Leftover::Removed(path) => eprintln!(
                "removed {}, left by an interrupted cpgen run",
                escape(path.as_str())
            ),
            cpgen::bundle::Leftover::Kept { path, why } => eprintln!(
                "warning: left {} alone: {why}; remove it yourself if no cpgen is running",
                escape(path.as_str())
            ),
            _ => {}
        }
    }
}

fn rotation_status(path: &Utf8PathBuf) -> Result<ExitCode, Error> {
    let secrets = Secrets::load(path)?;
    for rotated in pki::Rotated::ALL {
        let line = match secrets.rotation(rotated) {
            None => "no rotation (next: start)".to_owned(),
            Some(stage) => format!(
                "at `{stage}` (next: {})",
                stage.next().map_or("none", pki::Stage::name)
            ),
        };
        print_stdout(&format!("{:<16} {line}\n", rotated.name()));
    }
    Ok(ExitCode::SUCCESS)
}

fn import_ca(
    cert: &Utf8PathBuf,
    key: &Utf8PathBuf,
    ca: Ca,
    path: &Utf8PathBuf,
    force: bool,
) -> Result<ExitCode, Error> {
    let read = |p: &Utf8PathBuf| {
        std::fs::read_to_string(p).map_err(|source| Error::Read {
            path: p.clone(),
            source,
        })
    };
    let (cert_pem, key_pem) = (read(cert)?, read(key)?);
    let now = OffsetDateTime::now_utc();
    let created = !path.exists();
    let mut secrets = if created {
        Secrets::new(now)?
    } else {
        Secrets::load(path)?
    };
    let mode = if force {
        ImportMode::Replace
    } else {
        ImportMode::KeepExisting
    };
    let not_after = pki::import_ca(&mut secrets, ca, &cert_pem, &key_pem, now, mode)?;
    secrets.save(path)?;
    if created {
        eprintln!("created {} (mode 0600)", escape(path.as_str()));
    }
    eprintln!(
        "imported the {} CA from {} into {}; `cpgen bundle` uses it when this is its secrets file: <config stem>.secrets.toml beside the config, or pass `--secrets {}`",
        ca.name(),
        escape(cert.as_str()),
        escape(path.as_str()),
        shell_word(path.as_str())
    );
    if not_after - now < pki::EXPIRES_SOON {
        let notice = pki::CaNotice::ExpiresSoon {
            ca: ca.name(),
            not_after,
        };
        eprintln!("warning: {notice}");
    }
    Ok(ExitCode::SUCCESS)
}

fn check(path: &Utf8PathBuf, format: Format, colour: bool) -> Result<ExitCode, Error> {
    let result = Config::from_path(path).and_then(|config| config.validate());
    match format {
        Format::Text => {
            let checked = result?;
            print_warnings(&checked.report, colour);
            print_stdout(&checked.plan.summary().to_string());
        }
        Format::Json => {
            let (plan, report) = match &result {
                Ok(checked) => (Some(checked.plan.summary()), Some(&checked.report)),
                Err(Error::Invalid(report)) => (None, Some(report.as_ref())),
                Err(_) => return result.map(|_| ExitCode::SUCCESS),
            };
            let json = serde_json::json!({
                "valid": plan.is_some(),
                "plan": plan,
                "diagnostics": report.map(Report::to_json),
            });
            print_stdout(&format!("{json:#}\n"));
            if plan.is_none() {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A progress bar on stderr when it is a terminal, cleared when done so that only the
/// summary line stays; hidden (and silent) when stderr is piped or redirected.
fn progress_bar(message: &'static str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::hidden();
    let style =
        indicatif::ProgressStyle::with_template("{msg:16} [{bar:40}] {pos}/{len} {elapsed}")
            .map(|style| style.progress_chars("=> "));
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar.set_message(message);
    if std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    }
    bar
}

/// Moves `bar` to `done` of `total`; never back, as reports from several threads may
/// arrive out of order.
fn update(bar: &indicatif::ProgressBar, done: usize, total: usize) {
    if bar.length() != Some(total as u64) {
        bar.set_length(total as u64);
    }
    if done as u64 > bar.position() {
        bar.set_position(done as u64);
    }
}

fn print_warnings(report: &Report, colour: bool) {
    if !report.diagnostics().is_empty() {
        eprint!("{}", report.render_first(SHOWN_FINDINGS, style(colour)));
        eprintln!("{}: {}", report.source_name(), report.summary());
    }
}

/// Writes to stdout; a closed pipe (`cpgen check … | head`) is not an error, but any other
/// failure (a full disk under `cpgen schema > cluster.schema.json`) ends the run with exit 2,
/// so a truncated file is never reported as written.
fn print_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let written = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("cpgen: error: cannot write to standard output: {e}");
            std::process::exit(2);
        }
        _ => {}
    }
}

fn report_error(error: &Error, colour: bool) {
    match error {
        Error::Invalid(report) => {
            eprint!("{}", report.render_first(SHOWN_FINDINGS, style(colour)));
            eprintln!(
                "{}: {}; nothing was generated",
                report.source_name(),
                report.summary()
            );
        }
        Error::Previous {
            problem: cpgen::change::PreviousProblem::DoesNotVerify(findings),
            ..
        } => {
            eprint!("{}", cpgen::verify::render_findings(findings));
            eprintln!("cpgen: error: {}", escape(&error.to_string()));
        }
        // Paths from the command line may hold anything; the terminal sees it escaped.
        other => eprintln!("cpgen: error: {}", escape(&other.to_string())),
    }
}

/// The rendering style for findings, from whether colour is on.
fn style(colour: bool) -> cpgen::diag::Style {
    if colour {
        cpgen::diag::Style::Colour
    } else {
        cpgen::diag::Style::Plain
    }
}
