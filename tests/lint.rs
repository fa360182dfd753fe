//! Every certificate of every example, as issued, checked by an independent linter:
//! pkilint's RFC 5280 certificate linter (`lint_pkix_cert lint -s WARNING`). scripts/test
//! installs it into `target/pkilint-venv`.

mod util;

use std::path::PathBuf;
use std::process::Command;

/// Findings that are right for a Kubernetes control plane and wrong only on the public web.
/// pkilint wants every dNSName to be a multi-label domain name; `kubernetes`, `localhost` and
/// short host names such as `kubem00` are how Kubernetes clients dial their servers.
fn allowed(finding: &str) -> bool {
    finding
        .strip_prefix("pkix.invalid_domain_name_syntax (ERROR): Invalid domain name syntax: \"")
        .and_then(|rest| rest.strip_suffix('"'))
        .is_some_and(|name| !name.contains('.'))
}

fn linter() -> PathBuf {
    let venv = util::root().join("target/pkilint-venv/bin/lint_pkix_cert");
    if venv.exists() {
        return venv;
    }
    let found = Command::new("sh")
        .args(["-c", "command -v lint_pkix_cert"])
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "pkilint is not installed: run scripts/test, which installs the PyPI package `pkilint` into target/pkilint-venv"
    );
    PathBuf::from(String::from_utf8_lossy(&found.stdout).trim())
}

#[test]
fn pkilint_finds_every_certificate_clean() {
    let linter = linter();
    let mut linted = 0;
    for example in [
        "seed-ha",
        "separate-cas",
        "on-masters-vip",
        "ipv6",
        "workloads",
    ] {
        let plan = util::plan_from(&util::example_text(example));
        let bundle = util::fresh_bundle(&plan);
        let dir = tempfile::tempdir().unwrap();
        // One of each identity: the first master's certificates, the admin's and the workers'.
        let first = plan.masters()[0].name().to_string();
        let certificates: Vec<(&str, &cpgen::bundle::BundleFile)> = bundle
            .files()
            .filter(|(p, f)| {
                f.kind == cpgen::bundle::FileKind::Certificate && !p.ends_with("sa.pub")
            })
            .filter(|(p, _)| {
                p.starts_with(&format!("hosts/{first}/"))
                    || p.starts_with("admin/")
                    || p.contains("/var/lib/kube")
            })
            .collect();
        for (path, file) in certificates {
            let pem = dir.path().join(path.replace('/', "_"));
            std::fs::write(&pem, &file.contents).unwrap();
            let out = Command::new(&linter)
                .args(["lint", "-s", "WARNING"])
                .arg(&pem)
                .output()
                .unwrap();
            let report = String::from_utf8_lossy(&out.stdout);
            let findings: Vec<&str> = report
                .lines()
                .map(str::trim)
                .filter(|l| {
                    l.contains("(ERROR)") || l.contains("(WARNING)") || l.contains("(FATAL)")
                })
                .filter(|l| !allowed(l))
                .collect();
            assert!(
                findings.is_empty(),
                "{example} {path}:\n{report}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            linted += 1;
        }
    }
    assert!(linted > 40, "only {linted} certificates linted");
}

#[test]
fn the_allowlist_is_narrow() {
    assert!(allowed(
        r#"pkix.invalid_domain_name_syntax (ERROR): Invalid domain name syntax: "kubernetes""#
    ));
    assert!(!allowed(
        r#"pkix.invalid_domain_name_syntax (ERROR): Invalid domain name syntax: "a..b""#
    ));
    assert!(!allowed(
        "pkix.certificate_serial_number_out_of_range (ERROR)"
    ));
}
