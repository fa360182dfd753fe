//! `cpgen diff OLD NEW`: real bundles written by the CLI into a temporary directory, each
//! pair differing by one change (two more masters, a renewal, other SANs, one byte), and
//! what the report says of it: files, certificate reasons, units, exit codes, JSON shape.

mod util;

use std::path::{Path, PathBuf};

use camino::Utf8Path;
use serde_json::Value;

/// A temporary directory with `examples/seed-ha.toml` and a copy of its golden secrets
/// (test-only keys: no key is generated, so each bundle takes a moment).
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets.toml");
        std::fs::copy(util::root().join("golden/seed-ha.secrets.toml"), &secrets).unwrap();
        set_mode(&secrets, 0o600);
        Workspace { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `config` as `<name>.toml` and bundles it with `secrets` into `<name>` (a
    /// directory) or `<name>.tar.gz`.
    fn bundle_with(&self, name: &str, config: &str, secrets: &str, tar_gz: bool) -> PathBuf {
        let config_path = self.path(&format!("{name}.toml"));
        std::fs::write(&config_path, config).unwrap();
        let out = if tar_gz {
            self.path(&format!("{name}.tar.gz"))
        } else {
            self.path(name)
        };
        let flag = if tar_gz { "-o" } else { "--out-dir" };
        let run = util::cpgen(&[
            "bundle",
            s(&config_path),
            "--secrets",
            s(&self.path(secrets)),
            flag,
            s(&out),
        ]);
        assert_eq!(util::code(&run), 0, "{}", util::stderr(&run));
        out
    }

    fn bundle(&self, name: &str, config: &str) -> PathBuf {
        self.bundle_with(name, config, "secrets.toml", false)
    }
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn seed_ha() -> String {
    util::example_text("seed-ha")
}

/// `cpgen diff OLD NEW [--format json]`: exit code, stdout, stderr.
fn diff(old: &Path, new: &Path, json: bool) -> (i32, String, String) {
    let mut args = vec!["diff", s(old), s(new)];
    if json {
        args.extend(["--format", "json"]);
    }
    let out = util::cpgen(&args);
    (util::code(&out), util::stdout(&out), util::stderr(&out))
}

fn diff_json(old: &Path, new: &Path) -> (i32, Value) {
    let (code, stdout, stderr) = diff(old, new, true);
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}"));
    (code, json)
}

/// The JSON entry of `host`.
fn host<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == name)
        .unwrap_or_else(|| panic!("no {name} in {json:#}"))
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

/// The `changed` entry of `path` under `host`.
fn changed<'a>(json: &'a Value, name: &str, path: &str) -> &'a Value {
    host(json, name)["changed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == path)
        .unwrap_or_else(|| panic!("{path} not changed in {json:#}"))
}

#[test]
fn the_same_bundle_as_tar_gz_and_as_directory_is_the_same() {
    let ws = Workspace::new();
    let dir = ws.bundle("a", &seed_ha());
    let tar = ws.bundle_with("b", &seed_ha(), "secrets.toml", true);
    let (code, stdout, stderr) = diff(&dir, &tar, false);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.starts_with("the bundles are the same: 109 files"),
        "{stdout}"
    );
    let (code, json) = diff_json(&tar, &dir);
    assert_eq!(code, 0);
    assert_eq!(json["same"], true);
    assert_eq!(json["hosts"], serde_json::json!([]));
}

/// seed-ha with kubem03 and kubem04 added, inside its 10.10.10.0/24.
fn five_masters() -> String {
    seed_ha().replace(
        "[load_balancer]",
        "[[masters]]\nname = \"kubem03\"\naddress = \"10.10.10.83\"\n\n\
         [[masters]]\nname = \"kubem04\"\naddress = \"10.10.10.84\"\n\n[load_balancer]",
    )
}

#[test]
fn two_more_masters_add_hosts_and_restart_the_others() {
    let ws = Workspace::new();
    let old = ws.bundle("three", &seed_ha());
    let new = ws.bundle("five", &five_masters());
    let check = util::cpgen(&["check", s(&ws.path("five.toml"))]);
    assert_eq!(util::code(&check), 0, "{}", util::stderr(&check));

    let (code, stdout, _) = diff(&old, &new, false);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("host kubem03:\n"), "{stdout}");
    assert!(
        stdout.contains("  + hosts/kubem04/etc/systemd/system/etcd.service\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  ~ hosts/kubem00/etc/systemd/system/kube-apiserver.service\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  restart: etcd.service, kube-apiserver.service\n"),
        "{stdout}"
    );
    assert!(stdout.contains("  restart: haproxy.service\n"), "{stdout}");
    let summary = stdout.lines().last().unwrap();
    assert!(
        summary.starts_with("6 hosts, admin/ and the top-level files changed: "),
        "{summary}"
    );
    assert!(
        summary.contains("7 units to restart, 8 to start"),
        "{summary}"
    );

    let (code, json) = diff_json(&old, &new);
    assert_eq!(code, 1);
    assert_eq!(json["same"], false);
    for master in ["kubem00", "kubem01", "kubem02"] {
        let entry = host(&json, master);
        assert_eq!(
            strings(&entry["restart"]),
            ["etcd.service", "kube-apiserver.service"]
        );
        let unit = format!("hosts/{master}/etc/systemd/system/kube-apiserver.service");
        assert_eq!(changed(&json, master, &unit)["contents"], true);
        assert!(strings(&entry["added"]).is_empty());
    }
    let added = host(&json, "kubem03");
    assert!(strings(&added["added"]).contains(&"hosts/kubem03/etc/kubernetes/pki/apiserver.pem"));
    assert_eq!(
        strings(&added["start"]),
        [
            "etcd.service",
            "kube-apiserver.service",
            "kube-controller-manager.service",
            "kube-scheduler.service"
        ]
    );
    let lb = host(&json, "kubernetes");
    assert_eq!(strings(&lb["restart"]), ["haproxy.service"]);
    changed(
        &json,
        "kubernetes",
        "hosts/kubernetes/etc/haproxy/haproxy.cfg",
    );

    // The library gives the same units as typed data.
    let report = cpgen::diff::diff_paths(utf8(&old), utf8(&new)).unwrap();
    let restarts: Vec<(&str, Vec<&str>)> = report
        .restarts()
        .map(|(host, units)| (host, units.restart.iter().map(|u| u.as_str()).collect()))
        .collect();
    assert!(restarts.contains(&("kubernetes", vec!["haproxy.service"])));
    assert!(restarts.contains(&("kubem01", vec!["etcd.service", "kube-apiserver.service"])));
}

fn utf8(path: &Path) -> &Utf8Path {
    Utf8Path::from_path(path).unwrap()
}

#[test]
fn a_renewal_reissues_the_leaves_for_their_validity() {
    let ws = Workspace::new();
    let old = ws.bundle("old", &seed_ha());
    std::fs::copy(ws.path("secrets.toml"), ws.path("renewed.toml")).unwrap();
    set_mode(&ws.path("renewed.toml"), 0o600);
    let renew = util::cpgen(&[
        "renew",
        s(&ws.path("old.toml")),
        "--secrets",
        s(&ws.path("renewed.toml")),
        "--at",
        "2026-06-01T00:00:00Z",
        "--allow-future",
        "--allow-expired",
    ]);
    assert_eq!(util::code(&renew), 0, "{}", util::stderr(&renew));
    let new = ws.bundle_with("new", &seed_ha(), "renewed.toml", false);

    let (code, json) = diff_json(&old, &new);
    assert_eq!(code, 1);
    let cert = &changed(
        &json,
        "kubem01",
        "hosts/kubem01/etc/kubernetes/pki/apiserver.pem",
    )["certificate"];
    assert_eq!(strings(&cert["reasons"]), ["validity", "serial"]);
    assert_ne!(cert["old_not_after"], cert["new_not_after"]);
    assert!(cert["new_not_after"]
        .as_str()
        .unwrap()
        .starts_with("2027-06-01"));
    // The CA stays: keys and CAs are not renewed.
    let cas = host(&json, "kubem01")["changed"].as_array().unwrap().iter();
    assert!(cas
        .clone()
        .all(|c| !c["path"].as_str().unwrap().ends_with("/ca.pem")));
    // The controller-manager's certificate is named in its kubeconfig, not its unit.
    assert_eq!(
        strings(&host(&json, "kubem01")["restart"]),
        [
            "etcd.service",
            "kube-apiserver.service",
            "kube-controller-manager.service",
            "kube-scheduler.service"
        ]
    );
    // The admin kubeconfig's embedded certificate, by its field.
    let embedded = &changed(&json, "admin", "admin/admin.kubeconfig")["embedded_certificates"][0];
    assert_eq!(embedded["field"], "admin.client-certificate-data");
    assert_eq!(strings(&embedded["reasons"]), ["validity", "serial"]);

    let (_, stdout, _) = diff(&old, &new, false);
    assert!(
        stdout.contains(
            "  ~ hosts/kubem00/etc/etcd/pki/etcd-server.pem\n      certificate re-issued: validity, serial\n      NotAfter: 2027-01-01T00:00:00Z -> 2027-06-01T00:00:00Z\n"
        ),
        "{stdout}"
    );
}

#[test]
fn other_sans_are_listed_added_and_removed() {
    let ws = Workspace::new();
    let with = |sans: &str| seed_ha().replace("extra_sans = []", &format!("extra_sans = [{sans}]"));
    let old = ws.bundle("old", &with("\"old.example.test\""));
    let new = ws.bundle("new", &with("\"new.example.test\", \"10.10.10.50\""));
    let (code, json) = diff_json(&old, &new);
    assert_eq!(code, 1);
    let cert = &changed(
        &json,
        "kubem02",
        "hosts/kubem02/etc/kubernetes/pki/apiserver.pem",
    )["certificate"];
    assert_eq!(strings(&cert["reasons"]), ["sans", "serial"]);
    assert_eq!(
        strings(&cert["sans_added"]),
        ["10.10.10.50", "new.example.test"]
    );
    assert_eq!(strings(&cert["sans_removed"]), ["old.example.test"]);
    assert_eq!(
        strings(&host(&json, "kubem02")["restart"]),
        ["kube-apiserver.service"]
    );
    let (_, stdout, _) = diff(&old, &new, false);
    assert!(
        stdout.contains("      SANs added: 10.10.10.50, new.example.test\n      SANs removed: old.example.test\n"),
        "{stdout}"
    );
}

#[test]
fn one_tampered_byte_changes_one_file_and_restarts_its_readers() {
    let ws = Workspace::new();
    let old = ws.bundle("old", &seed_ha());
    let new = ws.bundle("new", &seed_ha());
    let target = "hosts/kubem01/etc/kubernetes/pki/front-proxy-ca.pem";
    let file = new.join(target);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[200] ^= 0x01;
    std::fs::write(&file, bytes).unwrap();

    let (code, json) = diff_json(&old, &new);
    assert_eq!(code, 1);
    let hosts = json["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 1, "{json:#}");
    let entry = host(&json, "kubem01");
    assert_eq!(entry["changed"].as_array().unwrap().len(), 1);
    assert_eq!(entry["changed"][0]["path"], target);
    assert!(entry["changed"][0].get("mode").is_none());
    // kube-apiserver and kube-controller-manager both read it as their request-header CA.
    assert_eq!(
        strings(&entry["restart"]),
        ["kube-apiserver.service", "kube-controller-manager.service"]
    );
    assert_eq!(entry["daemon_reload"], false);

    // A mode alone is a change too, and says so.
    let key = "hosts/kubem02/etc/kubernetes/pki/sa.pub";
    set_mode(&new.join(key), 0o600);
    let (_, json) = diff_json(&old, &new);
    let mode = &changed(&json, "kubem02", key);
    assert_eq!(mode["contents"], false);
    assert_eq!(
        mode["mode"],
        serde_json::json!({"old": "0644", "new": "0600"})
    );
    let (_, stdout, _) = diff(&old, &new, false);
    assert!(
        stdout.contains(&format!("  ~ {key} (mode only: 0644 -> 0600)\n")),
        "{stdout}"
    );
}

#[test]
fn a_hostile_or_missing_bundle_is_exit_2() {
    let ws = Workspace::new();
    let good = ws.bundle("good", &seed_ha());
    let hostile = ws.path("hostile.tar");
    {
        let mut builder = tar::Builder::new(std::fs::File::create(&hostile).unwrap());
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../escape");
        header.set_size(1);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append(&header, &b"x"[..]).unwrap();
        builder.finish().unwrap();
    }
    let (code, stdout, stderr) = diff(&good, &hostile, false);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("error[CP800]: ../escape"), "{stderr}");
    assert!(stderr.contains("cannot be compared"), "{stderr}");

    let (code, _, stderr) = diff(&ws.path("absent"), &good, false);
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot read"), "{stderr}");

    let (code, _, stderr) = diff(&good, ws.dir.path(), false);
    assert_eq!(code, 2, "a directory of bundles is no bundle");
    assert!(stderr.contains("CP814"), "{stderr}");
}

#[test]
fn a_path_with_an_escape_is_printed_escaped() {
    let ws = Workspace::new();
    let old = ws.bundle("old", &seed_ha());
    let new = ws.bundle("new", &seed_ha());
    std::fs::write(new.join("hosts/kubem00/etc/evil\x1b[2J"), "x").unwrap();
    let (code, stdout, _) = diff(&old, &new, false);
    assert_eq!(code, 1);
    assert!(!stdout.contains('\x1b'), "{stdout:?}");
    assert!(
        stdout.contains("  + hosts/kubem00/etc/evil\\x1b[2J\n"),
        "{stdout}"
    );
    let (_, json) = diff_json(&old, &new);
    assert_eq!(
        strings(&host(&json, "kubem00")["added"]),
        ["hosts/kubem00/etc/evil\\x1b[2J"]
    );
}

#[test]
fn the_json_has_its_documented_shape() {
    let ws = Workspace::new();
    let old = ws.bundle("three", &seed_ha());
    let new = ws.bundle(
        "five",
        &five_masters().replace("extra_sans = []", "extra_sans = [\"x.example.test\"]"),
    );
    let (_, json) = diff_json(&old, &new);
    let keys = |value: &Value| -> Vec<String> {
        let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&json), ["hosts", "same"]);
    assert!(json["same"].is_boolean());
    for entry in json["hosts"].as_array().unwrap() {
        assert_eq!(
            keys(entry),
            [
                "added",
                "changed",
                "daemon_reload",
                "host",
                "part",
                "removed",
                "restart",
                "start",
                "stop"
            ]
        );
        assert!(entry["host"].is_string());
        assert!(["host", "admin", "top-level"].contains(&entry["part"].as_str().unwrap()));
        for list in ["added", "removed", "restart", "start", "stop"] {
            strings(&entry[list]);
        }
        for change in entry["changed"].as_array().unwrap() {
            assert!(change["path"].is_string());
            assert!(change["contents"].is_boolean());
        }
    }
    let cert = &changed(
        &json,
        "kubem00",
        "hosts/kubem00/etc/kubernetes/pki/apiserver.pem",
    )["certificate"];
    assert_eq!(
        keys(cert),
        [
            "new_issuer",
            "new_not_after",
            "new_serial",
            "old_issuer",
            "old_not_after",
            "old_serial",
            "reasons",
            "sans_added",
            "sans_removed"
        ]
    );
    for time in ["old_not_after", "new_not_after"] {
        let text = cert[time].as_str().unwrap();
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap();
    }
    assert_eq!(strings(&cert["sans_added"]), ["x.example.test"]);
}
