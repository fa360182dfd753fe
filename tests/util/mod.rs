//! Helpers shared by the integration tests: running the binary and comparing golden files.

#![allow(dead_code)]

pub mod etcd;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root; tests run the binary from here so paths in output are relative.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `cpgen ARGS` from the repository root with colour off.
pub fn cpgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cpgen"))
        .args(args)
        .current_dir(root())
        .env_remove("NO_COLOR")
        .output()
        .expect("the cpgen binary runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn code(output: &Output) -> i32 {
    output.status.code().expect("cpgen exited, not killed")
}

/// Compares `actual` with the golden file at `path` (relative to the root), byte for byte.
/// With `UPDATE_GOLDEN=1` the file is rewritten instead.
pub fn assert_golden(path: &Path, actual: &str) {
    let path = root().join(path);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read golden file {}: {e}\nrun with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        panic!(
            "{} differs from the output\n--- expected\n{expected}\n--- actual\n{actual}\n\
             run with UPDATE_GOLDEN=1 to accept the new output",
            path.display()
        );
    }
}

/// Runs `cpgen ARGS` in `dir`, as an operator in their own directory would.
pub fn cpgen_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cpgen"))
        .args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .output()
        .expect("the cpgen binary runs")
}

/// A temporary directory holding `examples/<example>.toml` as `cluster.toml`.
pub fn dir_with_config(example: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(dir.path().join("cluster.toml"), example_text(example)).expect("config written");
    dir
}

/// The text of `examples/<name>.toml`.
pub fn example_text(name: &str) -> String {
    std::fs::read_to_string(root().join(format!("examples/{name}.toml"))).unwrap()
}

/// The plan of a configuration that must be valid.
pub fn plan_from(text: &str) -> cpgen::Plan {
    cpgen::Config::parse("t.toml", text)
        .and_then(|c| c.validate())
        .unwrap()
        .plan
}

/// Fresh keys for every identity of `plan`, issued at a fixed time.
pub fn fresh_secrets(plan: &cpgen::Plan) -> cpgen::pki::Secrets {
    secrets_issued_at(plan, time::macros::datetime!(2026-01-01 00:00:00 UTC))
}

/// Fresh keys for `plan`, certificates issued at `at`: live tests, whose TLS peers check
/// validity against the clock, issue a day before now rather than at a fixed date.
pub fn secrets_issued_at(plan: &cpgen::Plan, at: time::OffsetDateTime) -> cpgen::pki::Secrets {
    let mut secrets = cpgen::pki::Secrets::new(at).unwrap();
    secrets
        .fill(plan, &cpgen::pki::FillOptions::default())
        .unwrap();
    secrets
}

/// The bundle of `plan` with fresh keys, issued at a fixed time.
pub fn fresh_bundle(plan: &cpgen::Plan) -> cpgen::bundle::Bundle {
    cpgen::bundle::Bundle::build(plan, &fresh_secrets(plan)).unwrap()
}

/// Puts each file's sha256 in the manifest.json of the bundle directory `bundle`, as a forger
/// would.
pub fn redo_manifest(bundle: &Path) {
    use sha2::Digest;
    let path = bundle.join("manifest.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for file in json["files"].as_array_mut().unwrap() {
        let name = file["path"].as_str().unwrap().to_owned();
        let data = std::fs::read(bundle.join(&name)).unwrap();
        file["sha256"] = serde_json::Value::String(format!("{:x}", sha2::Sha256::digest(&data)));
    }
    std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
}

/// A P-256 CA made by openssl in `dir`: `stem.pem` and `stem-key.pem`, with common name
/// `cn`, valid for `days` from now.
pub fn openssl_ca(dir: &Path, stem: &str, cn: &str, days: u32) {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-keyout", &format!("{stem}-key.pem")])
        .args([
            "-out",
            &format!("{stem}.pem"),
            "-subj",
            &format!("/CN={cn}"),
        ])
        .args(["-days", &days.to_string()])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        .current_dir(dir)
        .output()
        .expect("cannot run openssl: install the Debian package openssl");
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Writes `config` to `dir/<out>.toml` and runs `cpgen bundle <out>.toml --secrets SECRETS
/// --out-dir OUT [--previous PREVIOUS]` in `dir`.
pub fn bundle_config(
    dir: &Path,
    config: &str,
    secrets: &str,
    out: &str,
    previous: Option<&str>,
) -> Output {
    let file = format!("{out}.toml");
    std::fs::write(dir.join(&file), config).unwrap();
    let mut args = vec!["bundle", &file, "--secrets", secrets, "--out-dir", out];
    if let Some(previous) = previous {
        args.extend(["--previous", previous]);
    }
    cpgen_in(dir, &args)
}

/// The PEM of a kubeconfig's embedded client certificate (`client-certificate-data`).
pub fn kubeconfig_client_certificate(kubeconfig: &str) -> Vec<u8> {
    use base64::Engine;
    let data = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("client-certificate-data: "))
        .expect("the kubeconfig embeds its client certificate")
        .trim_matches('"');
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("the embedded certificate is base64")
}
