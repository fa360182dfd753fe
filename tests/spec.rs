//! A cluster built in code (`cpgen::spec::ClusterSpec`) is checked by the same rules as a
//! `cluster.toml`, plans and bundles the same, and its findings point at field paths. The
//! `in_code` example is run as a user would run it.

mod util;

use std::path::Path;
use std::process::{Command, Output};

use cpgen::bundle::Bundle;
use cpgen::diag::{Code, Diagnostic};
use cpgen::pki::{FillOptions, Secrets};
use cpgen::spec::ClusterSpec;
use cpgen::{Config, Error, Plan, Report};
use time::macros::datetime;

/// `examples/on-masters-vip.toml`, written in code.
fn on_masters_vip() -> ClusterSpec {
    let mut spec = ClusterSpec::new("prod-eu1")
        .kubernetes_version("1.32")
        .host_cidrs(["10.10.10.0/24"])
        .endpoint("10.10.10.100")
        .api_port(8443)
        .master("kubem00", "10.10.10.80")
        .master("kubem01", "10.10.10.81")
        .master("kubem02", "10.10.10.82")
        .on_masters_with_vip("10.10.10.100");
    spec.api.components_via = Some("local".to_owned());
    spec.api.extra_sans = Some(vec!["k8s.example.internal".to_owned()]);
    spec.load_balancer.bind_port = Some(8443);
    spec.pki.key_algorithm = Some("ecdsa-p384".to_owned());
    spec
}

fn invalid(spec: &ClusterSpec) -> Report {
    match spec.validate() {
        Err(Error::Invalid(report)) => *report,
        Ok(checked) => panic!("validated: {:?}", checked.report.diagnostics()),
        Err(other) => panic!("{other}"),
    }
}

fn finding(report: &Report, code: Code) -> &Diagnostic {
    report
        .diagnostics()
        .iter()
        .find(|d| d.code == code)
        .unwrap_or_else(|| {
            panic!(
                "no {}: {}",
                code.id(),
                report.render(cpgen::diag::Style::Plain)
            )
        })
}

fn path_of(diagnostic: &Diagnostic) -> Option<&str> {
    let primary = diagnostic.primary.as_ref()?;
    primary.path().map(|path| path.as_str())
}

fn bundle_bytes(plan: &Plan, secrets: &Secrets) -> Vec<u8> {
    Bundle::build(plan, secrets).unwrap().to_tar_gz().unwrap()
}

#[test]
fn a_spec_built_in_code_plans_and_bundles_as_its_toml_does() {
    let path = util::root().join("examples/on-masters-vip.toml");
    let config = Config::from_path(&camino::Utf8PathBuf::try_from(path).unwrap()).unwrap();
    let spec = on_masters_vip();
    assert_eq!(config.to_spec(), spec, "the file parses into the same spec");

    let from_text = config.validate().unwrap();
    let from_code = spec.validate().unwrap();
    assert_eq!(
        from_text.report.diagnostics(),
        from_code.report.diagnostics()
    );
    assert!(from_text.plan.config_sha256().is_some());
    assert_eq!(from_code.plan.config_sha256(), None, "no file was read");
    assert_eq!(
        serde_json::to_value(&from_text.plan).unwrap(),
        serde_json::to_value(&from_code.plan).unwrap()
    );
    // Byte for byte with the same secrets, once the file's digest (which only the manifest
    // of a bundle made from a file records) is set aside.
    let mut text_plan = from_text.plan;
    cpgen::test_support::forget_config_file(&mut text_plan);
    let mut secrets = Secrets::new(datetime!(2026-01-01 00:00:00 UTC)).unwrap();
    secrets
        .fill(&from_code.plan, &FillOptions::default())
        .unwrap();
    assert!(
        secrets
            .fill(&text_plan, &FillOptions::default())
            .unwrap()
            .is_empty(),
        "the same keys"
    );
    assert!(bundle_bytes(&text_plan, &secrets) == bundle_bytes(&from_code.plan, &secrets));
}

#[test]
fn defaults_are_the_same_for_a_file_and_for_code() {
    let text = "[[masters]]\nname = \"kubem00\"\naddress = \"10.0.0.10\"\n";
    let from_text = Config::parse("c.toml", text).unwrap().validate().unwrap();
    let from_code = ClusterSpec::default()
        .master("kubem00", "10.0.0.10")
        .validate()
        .unwrap();
    assert_eq!(
        serde_json::to_value(&from_text.plan).unwrap(),
        serde_json::to_value(&from_code.plan).unwrap()
    );
    // The warning that clients dial one master, at the entry or at its path.
    let warning = finding(&from_code.report, Code::NoLoadBalancer);
    assert_eq!(path_of(warning), Some("masters[0]"));
    assert_eq!(
        finding(&from_text.report, Code::NoLoadBalancer).message,
        warning.message
    );
}

#[test]
fn two_masters_in_code_are_cp402_at_masters() {
    let spec = ClusterSpec::new("two")
        .master("kubem00", "10.0.0.10")
        .master("kubem01", "10.0.0.11");
    let report = invalid(&spec);
    let even = finding(&report, Code::EvenEtcdMembers);
    assert_eq!(path_of(even), Some("masters"));
    let text = report.render(cpgen::diag::Style::Plain);
    assert!(
        text.contains("error[CP402]: even number of etcd members"),
        "{text}"
    );
    assert!(text.contains("--> masters: member 2 of 2"), "{text}");
    let json = report.to_json();
    let cp402 = json
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "CP402")
        .unwrap();
    assert_eq!(cp402["path"], "masters");
    assert_eq!(cp402["primary"]["path"], "masters");
    assert!(cp402["help"].as_str().unwrap().contains("1 or 3"));
}

#[test]
fn a_bad_value_in_code_is_reported_at_its_field_path() {
    let spec = ClusterSpec::new("bad")
        .master("kubem00", "10.0.0.10")
        .master("kubem01", "10.0.0.300")
        .master("Kubem02", "10.0.0.12");
    let report = invalid(&spec);
    let address = finding(&report, Code::InvalidAddress);
    assert_eq!(path_of(address), Some("masters[1].address"));
    let name = finding(&report, Code::InvalidName);
    assert_eq!(path_of(name), Some("masters[2].name"));
    assert_eq!(name.help.as_deref(), Some("did you mean \"kubem02\"?"));

    // The same rule on the same values in a file: the same message, at a span instead.
    let text = "[cluster]\nname = \"bad\"\n[[masters]]\nname = \"kubem00\"\naddress = \"10.0.0.10\"\n[[masters]]\nname = \"kubem01\"\naddress = \"10.0.0.300\"\n[[masters]]\nname = \"Kubem02\"\naddress = \"10.0.0.12\"\n";
    let Err(Error::Invalid(from_text)) = Config::parse("c.toml", text).unwrap().validate() else {
        panic!("validated")
    };
    // A file's findings are in the order of the text, code's in the order of the rules.
    let codes = |r: &Report| {
        let mut codes: Vec<_> = r.diagnostics().iter().map(|d| d.code).collect();
        codes.sort();
        codes
    };
    assert_eq!(codes(&from_text), codes(&report));
    let in_text = finding(&from_text, Code::InvalidAddress);
    assert_eq!(in_text.message, address.message);
    let span = in_text.primary.as_ref().unwrap().span().unwrap();
    assert_eq!(&text[span], "\"10.0.0.300\"");
}

#[test]
fn a_missing_key_and_a_default_port_in_code_point_at_paths() {
    let mut spec = ClusterSpec::new("gaps").master("kubem00", "10.0.0.10");
    spec.masters[0].address = None;
    spec.etcd.client_port = Some(70000);
    let report = invalid(&spec);
    assert_eq!(
        path_of(finding(&report, Code::MissingKey)),
        Some("masters[0]")
    );
    assert_eq!(
        path_of(finding(&report, Code::InvalidPort)),
        Some("etcd.client_port")
    );
}

fn path_of_first(report: &Report) -> Option<&str> {
    report.diagnostics().first().and_then(path_of)
}

#[test]
fn no_masters_in_code_is_cp401_at_masters() {
    let report = invalid(&ClusterSpec::new("none"));
    assert_eq!(report.diagnostics()[0].code, Code::NoMasters);
    assert_eq!(path_of_first(&report), Some("masters"));
}

/// Runs the `in_code` example: the binary `cargo test --all-targets` built beside this
/// test's, or else through cargo, in a target directory of its own (the outer cargo may
/// hold the lock on ours), which builds the whole package once.
fn in_code(args: &[&str]) -> Output {
    let built = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("examples/in_code")))
        .filter(|path| path.is_file());
    let mut command = match built {
        Some(binary) => Command::new(binary),
        None => {
            let mut cargo = Command::new(env!("CARGO"));
            cargo
                .args(["run", "--quiet", "--offline", "--example", "in_code", "--"])
                .current_dir(util::root())
                .env(
                    "CARGO_TARGET_DIR",
                    util::root().join("target/in-code-example"),
                )
                .env_remove("RUSTFLAGS");
            cargo
        }
    };
    command.args(args).output().unwrap()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_in_code_example_writes_a_bundle_verify_accepts_or_its_findings() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("three.tar.gz");
    let three = in_code(&["3", out.to_str().unwrap()]);
    assert_eq!(util::code(&three), 0, "{}", util::stderr(&three));
    assert_eq!(files_in(dir.path()), ["three.secrets.toml", "three.tar.gz"]);
    let secrets = std::fs::metadata(dir.path().join("three.secrets.toml")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&secrets.permissions()) & 0o777,
        0o600
    );
    let verify = util::cpgen(&["verify", out.to_str().unwrap()]);
    assert_eq!(util::code(&verify), 0, "{}", util::stdout(&verify));
    assert!(
        util::stdout(&verify).contains("0 errors"),
        "{}",
        util::stdout(&verify)
    );

    let empty = tempfile::tempdir().unwrap();
    let out = empty.path().join("two.tar.gz");
    let two = in_code(&["2", out.to_str().unwrap()]);
    assert_eq!(util::code(&two), 1, "{}", util::stderr(&two));
    let stderr = util::stderr(&two);
    assert!(
        stderr
            .lines()
            .any(|line| line.starts_with("error[CP402]: ") && line.ends_with("--> masters")),
        "{stderr}"
    );
    assert!(files_in(empty.path()).is_empty(), "nothing is written");

    for bad in ["0", "three"] {
        let usage = in_code(&[bad, out.to_str().unwrap()]);
        assert_eq!(util::code(&usage), 2, "{}", util::stderr(&usage));
        assert!(util::stderr(&usage).contains("usage: in_code N OUT.tar.gz"));
    }
    assert!(files_in(empty.path()).is_empty());
}
