//! The `cpgen` command line: parses arguments, calls the library, prints, and maps errors to
//! exit codes (0 success, 1 invalid input, 2 usage, I/O or internal error).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use camino::Utf8PathBuf;
use clap::{Parser, Subcommand, ValueEnum};

use cpgen::{Config, Error, Report};

/// Compile one typed description of a highly-available Kubernetes control plane into a
/// validated, reproducible bundle.
#[derive(Parser)]
#[command(name = "cpgen", version, about, long_about = None)]
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
    /// Build the bundle: PKI, systemd units, kubeconfigs, HAProxy, manifest (not built yet).
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
    },
}

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
            cpgen::init::write_starter_config(&path)?;
            eprintln!("wrote {path}; edit it, then run `cpgen check {path}`");
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config, format } => check(&config, format, colour),
        Command::Bundle { config, .. } => {
            let checked = Config::from_path(&config)?.validate()?;
            print_warnings(&checked.report, colour);
            eprintln!("cpgen: {config} is valid, but bundling is not built yet in this version");
            Ok(ExitCode::from(2))
        }
    }
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

fn print_warnings(report: &Report, colour: bool) {
    if !report.diagnostics().is_empty() {
        eprint!("{}", report.render(colour));
        eprintln!("{}: {}", report.source_name(), report.summary());
    }
}

/// Writes to stdout; a closed pipe (`cpgen check … | head`) is not an error.
fn print_stdout(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn report_error(error: &Error, colour: bool) {
    match error {
        Error::Invalid(report) => {
            eprint!("{}", report.render(colour));
            eprintln!(
                "{}: {}; nothing was generated",
                report.source_name(),
                report.summary()
            );
        }
        other => eprintln!("cpgen: error: {other}"),
    }
}
