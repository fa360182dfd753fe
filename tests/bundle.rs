//! The bundle checked by the real tools that will consume it: golden trees byte for byte,
//! reproducible archives, modes, `haproxy -c`, `systemd-analyze verify`, `kubectl config
//! view`, and every path and flag the units name.

mod util;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use cpgen::bundle::{Bundle, FileKind};
use cpgen::pki::Secrets;
use cpgen::{Config, Plan};
use sha2::{Digest, Sha256};
use time::macros::datetime;

/// The examples with golden trees.
const GOLDEN: [&str; 4] = ["seed-ha", "separate-cas", "on-masters-vip", "workloads"];

fn plan_of(example: &str) -> Plan {
    let path = util::root().join(format!("examples/{example}.toml"));
    Config::from_path(path.to_str().unwrap().into())
        .and_then(|c| c.validate())
        .unwrap()
        .plan
}

/// The committed test-only secrets of a golden example; with `UPDATE_GOLDEN=1` a missing
/// one is created.
fn golden_secrets(example: &str, plan: &Plan) -> Secrets {
    // Tests run in parallel; only one may create a missing fixture.
    static CREATING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = CREATING.lock().unwrap_or_else(|e| e.into_inner());
    let path = util::root().join(format!("golden/{example}.secrets.toml"));
    match std::fs::read_to_string(&path) {
        // Parsed, not loaded: a git checkout makes the committed fixture 0644.
        Ok(text) if updating() => {
            // A new identity gets its key; every existing key stays.
            let mut secrets = Secrets::parse(&text).unwrap();
            let added = secrets
                .fill(plan, &cpgen::pki::FillOptions::default())
                .unwrap();
            if !added.is_empty() {
                std::fs::write(&path, secrets.render().unwrap()).unwrap();
            }
            secrets
        }
        Ok(text) => Secrets::parse(&text).unwrap(),
        Err(_) if updating() => {
            let mut secrets = Secrets::new(datetime!(2026-01-01 00:00:00 UTC)).unwrap();
            secrets.mark_test_only();
            secrets
                .fill(plan, &cpgen::pki::FillOptions::default())
                .unwrap();
            std::fs::write(&path, secrets.render().unwrap()).unwrap();
            secrets
        }
        Err(e) => panic!(
            "{}: {e}; run with UPDATE_GOLDEN=1 to create it",
            path.display()
        ),
    }
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

fn build(example: &str) -> (Plan, Bundle) {
    let plan = plan_of(example);
    let secrets = golden_secrets(example, &plan);
    let bundle = Bundle::build(&plan, &secrets).unwrap();
    (plan, bundle)
}

fn walk(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = format!("{prefix}{}", entry.file_name().to_str().unwrap());
        if entry.file_type().unwrap().is_dir() {
            walk(&entry.path(), &format!("{name}/"), out);
        } else {
            out.insert(name, std::fs::read(entry.path()).unwrap());
        }
    }
}

#[test]
fn bundles_match_their_golden_trees() {
    for example in GOLDEN {
        let (_, bundle) = build(example);
        let golden_dir = util::root().join(format!("golden/{example}"));
        if updating() {
            let _ = std::fs::remove_dir_all(&golden_dir);
            for (path, file) in bundle.files() {
                let target = golden_dir.join(path);
                std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                std::fs::write(target, &file.contents).unwrap();
            }
            continue;
        }
        let mut golden = BTreeMap::new();
        walk(&golden_dir, "", &mut golden);
        let expected: Vec<&String> = golden.keys().collect();
        let actual: Vec<String> = bundle.files().map(|(p, _)| p.to_owned()).collect();
        assert_eq!(
            actual.iter().collect::<Vec<_>>(),
            expected,
            "{example}: the list of files differs from golden/{example}; run with UPDATE_GOLDEN=1 to accept"
        );
        for (path, file) in bundle.files() {
            if file.contents != golden[path] {
                panic!(
                    "{example}: {path} differs from golden/{example}/{path}\n--- golden\n{}\n--- actual\n{}\n\
                     run with UPDATE_GOLDEN=1 to accept",
                    String::from_utf8_lossy(&golden[path]),
                    String::from_utf8_lossy(&file.contents)
                );
            }
        }
    }
}

#[test]
fn golden_secrets_say_they_are_test_only() {
    for example in GOLDEN {
        let text =
            std::fs::read_to_string(util::root().join(format!("golden/{example}.secrets.toml")))
                .unwrap();
        assert!(
            text.contains("TEST-ONLY KEYS") && text.contains("test_only = true"),
            "{example}"
        );
    }
}

fn sha256_of(path: &Path) -> String {
    Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Copies an example and its golden secrets (mode 0600) into a fresh directory.
fn workdir(example: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        util::root().join(format!("examples/{example}.toml")),
        dir.path().join("cluster.toml"),
    )
    .unwrap();
    let secrets = dir.path().join("cluster.secrets.toml");
    std::fs::copy(
        util::root().join(format!("golden/{example}.secrets.toml")),
        &secrets,
    )
    .unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    dir
}

#[test]
fn the_archive_is_byte_identical_across_runs_and_directories() {
    let (one, two) = (workdir("separate-cas"), workdir("separate-cas"));
    let mut hashes = Vec::new();
    for (dir, name) in [(&one, "a.tar.gz"), (&two, "b.tar.gz"), (&one, "c.tar.gz")] {
        let config = dir.path().join("cluster.toml");
        let out = dir.path().join(name);
        let result = util::cpgen(&[
            "bundle",
            config.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_eq!(util::code(&result), 0, "{}", util::stderr(&result));
        hashes.push(sha256_of(&out));
    }
    assert_eq!(hashes[0], hashes[1], "two directories");
    assert_eq!(hashes[0], hashes[2], "two runs");
    // And it is the golden tree, packed.
    let (_, bundle) = build("separate-cas");
    let golden: String = Sha256::digest(bundle.to_tar_gz().unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(hashes[0], golden);
}

#[test]
fn modes_are_0600_for_keys_and_0644_otherwise_in_archive_and_directory() {
    use std::os::unix::fs::PermissionsExt;
    let dir = workdir("on-masters-vip");
    let config = dir.path().join("cluster.toml");
    let archive = dir.path().join("b.tar.gz");
    let tree = dir.path().join("tree");
    for args in [
        vec!["-o", archive.to_str().unwrap()],
        vec!["--out-dir", tree.to_str().unwrap()],
    ] {
        let mut all = vec!["bundle", config.to_str().unwrap()];
        all.extend(args);
        let out = util::cpgen(&all);
        assert_eq!(util::code(&out), 0, "{}", util::stderr(&out));
    }
    let expected_mode = |path: &str| {
        let secret = path.ends_with("-key.pem")
            || path.ends_with("sa.key")
            || path.ends_with("encryption-config.yaml")
            || path.ends_with("admin.kubeconfig");
        if secret {
            0o600
        } else {
            0o644
        }
    };
    let mut files = 0;
    let decoder = flate2::read::GzDecoder::new(std::fs::File::open(&archive).unwrap());
    for entry in tar::Archive::new(decoder).entries().unwrap() {
        let entry = entry.unwrap();
        let header = entry.header();
        let path = entry.path().unwrap().to_str().unwrap().to_owned();
        assert_eq!(
            (
                header.uid().unwrap(),
                header.gid().unwrap(),
                header.mtime().unwrap()
            ),
            (0, 0, 0),
            "{path}"
        );
        let mode = header.mode().unwrap();
        if header.entry_type().is_dir() {
            assert_eq!(mode, 0o755, "{path}");
        } else {
            assert_eq!(mode, expected_mode(&path), "{path} in the archive");
            let on_disk = std::fs::metadata(tree.join(&path))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(on_disk, expected_mode(&path), "{path} in --out-dir");
            files += 1;
        }
    }
    assert!(files > 80, "only {files} files");

    // An existing output is kept unless --force.
    let again = util::cpgen(&[
        "bundle",
        config.to_str().unwrap(),
        "--out-dir",
        tree.to_str().unwrap(),
    ]);
    assert_eq!(util::code(&again), 2);
    assert!(util::stderr(&again).contains("already exists"));
    let forced = util::cpgen(&[
        "bundle",
        config.to_str().unwrap(),
        "--out-dir",
        tree.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(util::code(&forced), 0, "{}", util::stderr(&forced));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn the_first_bundle_creates_the_secrets_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mine.toml");
    std::fs::copy(util::root().join("examples/separate-cas.toml"), &config).unwrap();
    let out = util::cpgen(&[
        "bundle",
        config.to_str().unwrap(),
        "-o",
        dir.path().join("b.tar.gz").to_str().unwrap(),
    ]);
    assert_eq!(util::code(&out), 0, "{}", util::stderr(&out));
    assert!(
        util::stderr(&out).contains("created"),
        "{}",
        util::stderr(&out)
    );
    let secrets = dir.path().join("mine.secrets.toml");
    assert_eq!(
        std::fs::metadata(&secrets).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let before = std::fs::read(&secrets).unwrap();
    let out = util::cpgen(&[
        "bundle",
        config.to_str().unwrap(),
        "-o",
        dir.path().join("c.tar.gz").to_str().unwrap(),
    ]);
    assert_eq!(util::code(&out), 0);
    assert_eq!(
        std::fs::read(&secrets).unwrap(),
        before,
        "the secrets file is reused as it is"
    );
    assert_eq!(
        sha256_of(&dir.path().join("b.tar.gz")),
        sha256_of(&dir.path().join("c.tar.gz"))
    );
}

// ---- the real tools ----

fn tool(name: &str, package: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "`{name}` is not installed: install the Debian package `{package}` (scripts/test does)"
    );
    Command::new(name)
}

/// Every example, including the IPv6 one with a worker; fresh ECDSA keys where no golden
/// secrets exist.
fn every_bundle() -> Vec<(String, Plan, Bundle)> {
    let mut bundles: Vec<(String, Plan, Bundle)> = GOLDEN
        .iter()
        .map(|e| {
            let (p, b) = build(e);
            (e.to_string(), p, b)
        })
        .collect();
    let plan = plan_of("ipv6");
    let secrets = util::fresh_secrets(&plan);
    let bundle = Bundle::build(&plan, &secrets).unwrap();
    bundles.push(("ipv6".into(), plan, bundle));
    bundles
}

/// Writes one host's tree under `root`.
fn extract_host(bundle: &Bundle, host: &str, root: &Path) {
    for (path, file) in bundle.files() {
        if let Some(target) = path.strip_prefix(&format!("hosts/{host}/")) {
            let dest = root.join(target);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::write(dest, &file.contents).unwrap();
        }
    }
}

fn hosts(bundle: &Bundle) -> BTreeSet<String> {
    bundle
        .files()
        .filter_map(|(_, f)| f.host.as_ref().map(|h| h.to_string()))
        .collect()
}

#[test]
fn haproxy_accepts_every_generated_config() {
    for (example, _, bundle) in every_bundle() {
        let configs: Vec<_> = bundle
            .files()
            .filter(|(p, _)| p.ends_with("etc/haproxy/haproxy.cfg"))
            .collect();
        assert!(!configs.is_empty(), "{example} has no haproxy.cfg");
        for (path, file) in configs {
            let dir = tempfile::tempdir().unwrap();
            let cfg = dir.path().join("haproxy.cfg");
            std::fs::write(&cfg, &file.contents).unwrap();
            let out = tool("haproxy", "haproxy")
                .args(["-c", "-f", cfg.to_str().unwrap()])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{example} {path}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// A temporary root with systemd's own units and stub executables for every binary a unit
/// starts, so `systemd-analyze verify --root` checks our units and nothing else.
fn systemd_root(host_tree: &Path) -> PathBuf {
    let lib = host_tree.join("usr/lib/systemd");
    std::fs::create_dir_all(&lib).unwrap();
    let copied = Command::new("cp")
        .args(["-r", "/usr/lib/systemd/system"])
        .arg(&lib)
        .status()
        .unwrap();
    assert!(copied.success());
    let bin = host_tree.join("usr/bin");
    std::fs::create_dir_all(&bin).unwrap();
    for binary in [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubelet",
        "kube-proxy",
    ] {
        let stub = bin.join(binary);
        std::fs::write(&stub, "#!/bin/sh\nexit 0\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    host_tree.to_owned()
}

#[test]
fn systemd_analyze_verifies_every_unit_silently() {
    let mut node_units = 0;
    for (example, plan, bundle) in every_bundle() {
        let with_units = plan
            .masters()
            .iter()
            .map(|m| (m, 4 + if plan.masters_are_nodes() { 2 } else { 0 }))
            .chain(plan.workers().iter().map(|w| (w, 2)));
        for (host, expected) in with_units {
            let dir = tempfile::tempdir().unwrap();
            extract_host(&bundle, host.name().as_str(), dir.path());
            let root = systemd_root(dir.path());
            let units: Vec<String> = std::fs::read_dir(root.join("etc/systemd/system"))
                .unwrap()
                .map(|e| {
                    format!(
                        "/etc/systemd/system/{}",
                        e.unwrap().file_name().to_str().unwrap()
                    )
                })
                .collect();
            assert_eq!(units.len(), expected, "{example} {}", host.name());
            node_units += units
                .iter()
                .filter(|u| u.ends_with("/kubelet.service"))
                .count();
            let out = tool("systemd-analyze", "systemd")
                .arg("verify")
                .arg(format!("--root={}", root.display()))
                .args(&units)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            // systemd-analyze exits 0 on unknown keys and broken continuations: any output fails.
            assert!(
                out.status.success() && stderr.trim().is_empty(),
                "{example} {}: {stderr}",
                host.name()
            );
        }
    }
    assert!(node_units >= 6, "kubelet units checked: {node_units}");
}

#[test]
fn systemd_analyze_is_strict_enough_to_catch_a_broken_unit() {
    let (plan, bundle) = build("separate-cas");
    let dir = tempfile::tempdir().unwrap();
    extract_host(&bundle, plan.masters()[0].name().as_str(), dir.path());
    let root = systemd_root(dir.path());
    let unit = root.join("etc/systemd/system/etcd.service");
    let text = std::fs::read_to_string(&unit)
        .unwrap()
        .replace("RestartSec=5", "RestartSec=5\nRestartSecs=5");
    std::fs::write(&unit, text).unwrap();
    let out = tool("systemd-analyze", "systemd")
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .arg("/etc/systemd/system/etcd.service")
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stderr).trim().is_empty(),
        "a typo went unnoticed"
    );
}

/// Rewrites absolute paths in a kubeconfig to point into `root`.
fn remap(text: &str, root: &Path) -> String {
    let root = root.to_str().unwrap();
    text.replace("\"/etc/", &format!("\"{root}/etc/"))
        .replace("\"/var/", &format!("\"{root}/var/"))
}

#[test]
fn kubectl_reads_every_kubeconfig_with_its_files_in_place() {
    for (example, plan, bundle) in every_bundle() {
        let mut checked = 0;
        for host in hosts(&bundle) {
            let dir = tempfile::tempdir().unwrap();
            extract_host(&bundle, &host, dir.path());
            for (path, file) in bundle.files().filter(|(p, f)| {
                f.kind == FileKind::Kubeconfig && p.starts_with(&format!("hosts/{host}/"))
            }) {
                let kubeconfig = dir.path().join("remapped.kubeconfig");
                std::fs::write(
                    &kubeconfig,
                    remap(&String::from_utf8_lossy(&file.contents), dir.path()),
                )
                .unwrap();
                let out = tool("kubectl", "kubernetes-client")
                    .args(["config", "view", "--minify", "--flatten", "--kubeconfig"])
                    .arg(&kubeconfig)
                    .output()
                    .unwrap();
                let stdout = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success(),
                    "{example} {path}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                // --flatten inlines every referenced file, so each one was found and read.
                for field in [
                    "certificate-authority-data",
                    "client-certificate-data",
                    "client-key-data",
                ] {
                    assert!(
                        stdout.contains(field),
                        "{example} {path}: no {field} in\n{stdout}"
                    );
                }
                assert!(
                    stdout.contains(&format!("server: {}", server_of(&plan, &host))),
                    "{example} {path}:\n{stdout}"
                );
                checked += 1;
            }
        }
        let admin = bundle.get("admin/admin.kubeconfig").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.kubeconfig");
        std::fs::write(&path, &admin.contents).unwrap();
        let out = tool("kubectl", "kubernetes-client")
            .args(["config", "view", "--minify", "--flatten", "--kubeconfig"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{example} admin: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            checked >= 2 * plan.masters().len(),
            "{example}: {checked} kubeconfigs"
        );
    }
}

fn server_of(plan: &Plan, host: &str) -> String {
    let local = cpgen::test_support::components_via(plan)
        == cpgen::test_support::ComponentsVia::Local
        && plan.masters().iter().any(|m| m.name().as_str() == host);
    if local {
        let master = plan
            .masters()
            .iter()
            .find(|m| m.name().as_str() == host)
            .unwrap();
        let loopback = if master.address().ip().is_ipv6() {
            "[::1]"
        } else {
            "127.0.0.1"
        };
        format!(
            "https://{loopback}:{}",
            cpgen::test_support::api_bind_port(plan)
        )
    } else {
        plan.api_url()
    }
}

/// Every absolute file path a unit flag or kubeconfig names, per host.
fn named_paths(bundle: &Bundle) -> Vec<(String, String, String)> {
    let mut named = Vec::new();
    for (path, file) in bundle.files() {
        let Some(host) = &file.host else { continue };
        if !matches!(file.kind, FileKind::SystemdUnit | FileKind::Kubeconfig) {
            continue;
        }
        let text = String::from_utf8_lossy(&file.contents);
        for word in text.split(|c: char| c.is_whitespace() || c == '=' || c == '"' || c == ',') {
            let is_file = word.starts_with('/')
                && !word.starts_with("/usr/bin/")
                && [".pem", ".key", ".pub", ".yaml", "kubeconfig"]
                    .iter()
                    .any(|ext| word.ends_with(ext));
            if is_file {
                named.push((host.to_string(), word.to_owned(), path.to_owned()));
            }
        }
    }
    named
}

#[test]
fn every_path_a_unit_or_kubeconfig_names_is_in_the_hosts_tree() {
    for (example, _, bundle) in every_bundle() {
        let named = named_paths(&bundle);
        assert!(named.len() > 50, "{example}: only {} paths", named.len());
        for (host, target, named_in) in named {
            let relative = format!("hosts/{host}{target}");
            assert!(
                bundle.get(&relative).is_some(),
                "{example}: {named_in} names {target}, missing from hosts/{host}"
            );
        }
    }
}

/// The flags of an ExecStart line: `--name=value` → name.
fn exec_flags(unit: &str) -> Vec<String> {
    let joined = unit.replace("\\\n", " ");
    let exec = joined
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .unwrap_or_default();
    exec.split_whitespace()
        .filter_map(|w| w.strip_prefix("--"))
        .map(|w| w.split('=').next().unwrap_or(w).to_owned())
        .collect()
}

#[test]
fn every_emitted_flag_exists_in_the_target_version_and_no_removed_one_is_emitted() {
    let removed = [
        "insecure-port",
        "insecure-bind-address",
        "admission-control",
        "enable-swagger-ui",
        "address",
        "port",
        "network-plugin",
        "container-runtime",
    ];
    for minor in 29..=34 {
        let text = format!(
            "[cluster]\nkubernetes_version = \"1.{minor}\"\n[api]\nendpoint = \"127.0.1.2\"\n\
             [control_plane]\nworkloads = true\n\
             [[masters]]\nname = \"m0\"\naddress = \"127.0.1.80\"\n[[load_balancer.hosts]]\nname = \"lb\"\naddress = \"127.0.1.2\"\n"
        );
        let bundle = util::fresh_bundle(&util::plan_from(&text));
        let mut seen = 0;
        for component in [
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kubelet",
            "kube-proxy",
        ] {
            let unit = bundle
                .get(&format!("hosts/m0/etc/systemd/system/{component}.service"))
                .unwrap();
            for flag in exec_flags(&String::from_utf8_lossy(&unit.contents)) {
                assert!(
                    cpgen::test_support::flag_exists(component, &flag, minor),
                    "{component} 1.{minor} has no --{flag}"
                );
                assert!(
                    !removed.contains(&flag.as_str()),
                    "{component} emits removed --{flag}"
                );
                seen += 1;
            }
        }
        assert!(seen > 50, "only {seen} flags parsed");
    }
    // The table knows the removed flags as removed.
    for (component, flag) in [
        ("kube-apiserver", "insecure-port"),
        ("kube-apiserver", "admission-control"),
        ("kube-scheduler", "address"),
    ] {
        assert!(
            !cpgen::test_support::flag_exists(component, flag, 29),
            "{component} --{flag}"
        );
    }
}

#[test]
fn the_bundle_readme_has_the_checks_and_a_diagram() {
    let (_, bundle) = build("seed-ha");
    let readme = String::from_utf8_lossy(&bundle.get("README.md").unwrap().contents).into_owned();
    for needle in [
        "etcdctl member list",
        "get endpoints kubernetes",
        "-n kube-system get lease kube-controller-manager",
        "```mermaid",
        "flowchart LR",
        "haproxy on kubernetes 10.10.10.2:6443",
        "mTLS 2379, ca",
        "| `/etc/etcd/pki/etcd-server-key.pem` | 0600 |",
    ] {
        assert!(readme.contains(needle), "README lacks {needle:?}");
    }
}

#[test]
fn the_manifest_lists_every_file_with_its_hash_and_mode() {
    let (_, bundle) = build("on-masters-vip");
    let manifest: serde_json::Value =
        serde_json::from_slice(&bundle.get("manifest.json").unwrap().contents).unwrap();
    let entries = manifest["files"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        bundle.files().count() - 1,
        "every file but the manifest itself"
    );
    for entry in entries {
        let path = entry["path"].as_str().unwrap();
        let file = bundle.get(path).unwrap();
        let sha: String = Sha256::digest(&file.contents)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(entry["sha256"], sha, "{path}");
        assert_eq!(entry["mode"], format!("{:04o}", file.mode()), "{path}");
        assert_eq!(entry["owner"], "root:root");
    }
    assert!(entries
        .iter()
        .any(|e| e["target"] == "/etc/keepalived/keepalived.conf"));
}

#[test]
fn the_archive_is_the_same_with_one_thread_and_with_all() {
    // Enough workers for several batches of hosts, issued on however many threads.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cluster.toml");
    std::fs::write(&config, with_workers(150)).unwrap();
    let mut hashes = Vec::new();
    for (threads, name) in [("1", "one.tar.gz"), ("8", "eight.tar.gz")] {
        let out = Command::new(env!("CARGO_BIN_EXE_cpgen"))
            .args(["bundle", config.to_str().unwrap(), "-o"])
            .arg(dir.path().join(name))
            .env("RAYON_NUM_THREADS", threads)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        hashes.push(sha256_of(&dir.path().join(name)));
    }
    assert_eq!(hashes[0], hashes[1]);
}

/// A config with `count` workers whose names sort differently from their order (node9 after
/// node10), so that several batches of hosts are streamed out of config order.
fn with_workers(count: usize) -> String {
    let mut text = util::example_text("separate-cas").replace(
        "host_cidrs = [\"10.10.10.0/24\"]",
        "host_cidrs = [\"10.10.0.0/16\"]",
    );
    for i in (0..count).rev() {
        text.push_str(&format!(
            "[[workers]]\nname = \"node{i}\"\naddress = \"10.10.{}.{}\"\n",
            20 + i / 250,
            1 + i % 250
        ));
    }
    text
}

/// Every file's contents by bundle path, as `walk` reads a written tree.
fn contents_of(bundle: &Bundle) -> BTreeMap<String, Vec<u8>> {
    bundle
        .files()
        .map(|(path, file)| (path.to_owned(), file.contents.clone()))
        .collect()
}

/// Records what a sink is sent.
#[derive(Default)]
struct Recorder {
    directories: Vec<String>,
    files: Vec<String>,
}

impl cpgen::test_support::Sink for Recorder {
    fn directory(&mut self, path: &str) -> Result<(), cpgen::Error> {
        assert!(self.files.is_empty(), "directory {path} after a file");
        self.directories.push(path.to_owned());
        Ok(())
    }

    fn file(&mut self, path: &str, _file: cpgen::bundle::BundleFile) -> Result<(), cpgen::Error> {
        self.files.push(path.to_owned());
        Ok(())
    }
}

#[test]
fn entries_are_streamed_in_sorted_order_host_by_host_with_the_manifest_last() {
    let plan = util::plan_from(&with_workers(150));
    let secrets = util::fresh_secrets(&plan);
    let mut recorder = Recorder::default();
    let count = cpgen::test_support::emit(&plan, &secrets, &mut recorder, &|_, _| {}).unwrap();
    assert_eq!(count, recorder.files.len());
    assert!(
        recorder.files.windows(2).all(|w| w[0] < w[1]),
        "files strictly sorted"
    );
    assert!(recorder.directories.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        recorder.files.last().map(String::as_str),
        Some("manifest.json")
    );
    // 3 masters, 1 load balancer and 150 workers, each with its files.
    let hosts: BTreeSet<&str> = recorder
        .files
        .iter()
        .filter_map(|p| p.strip_prefix("hosts/")?.split('/').next())
        .collect();
    assert_eq!(hosts.len(), 154);
    let node9 = recorder
        .files
        .iter()
        .position(|p| p.starts_with("hosts/node9/"));
    let node10 = recorder
        .files
        .iter()
        .position(|p| p.starts_with("hosts/node10/"));
    assert!(node10 < node9, "hosts in path order, not config order");
    // The same entries as the in-memory bundle, which sorts them itself.
    let bundle = Bundle::build(&plan, &secrets).unwrap();
    let in_memory: Vec<&str> = bundle.files().map(|(path, _)| path).collect();
    assert_eq!(recorder.files, in_memory);
    let dirs: Vec<String> = bundle.directories().into_iter().collect();
    assert_eq!(recorder.directories, dirs);
}

#[test]
fn the_streamed_archive_and_tree_are_the_in_memory_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let root = camino::Utf8Path::from_path(dir.path()).unwrap();
    for (name, text) in [
        ("ipv6", util::example_text("ipv6")),
        ("on-masters-vip", util::example_text("on-masters-vip")),
        ("workers", with_workers(70)),
    ] {
        let plan = util::plan_from(&text);
        let secrets = util::fresh_secrets(&plan);
        let bundle = Bundle::build(&plan, &secrets).unwrap();
        let archive = root.join(format!("{name}.tar.gz"));
        let files = cpgen::bundle::write_tar_gz(
            &plan,
            &secrets,
            &archive,
            &cpgen::bundle::WriteOptions::default(),
        )
        .unwrap();
        assert_eq!(files, bundle.files().count(), "{name}");
        assert_eq!(
            std::fs::read(&archive).unwrap(),
            bundle.to_tar_gz().unwrap(),
            "{name}: streamed archive"
        );
        let tree = root.join(name);
        cpgen::bundle::write_dir(
            &plan,
            &secrets,
            &tree,
            &cpgen::bundle::WriteOptions::default(),
        )
        .unwrap();
        let mut written = BTreeMap::new();
        walk(tree.as_std_path(), "", &mut written);
        assert_eq!(written, contents_of(&bundle), "{name}: streamed tree");
    }
}

#[test]
fn a_failure_while_streaming_leaves_no_archive_and_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = camino::Utf8Path::from_path(dir.path()).unwrap();
    // Keys for 100 workers, a plan of 101: the last batch of hosts fails to issue.
    let secrets = util::fresh_secrets(&util::plan_from(&with_workers(100)));
    let plan = util::plan_from(&with_workers(101));
    for output in ["b.tar.gz", "tree"] {
        let path = root.join(output);
        let result = if output == "tree" {
            cpgen::bundle::write_dir(
                &plan,
                &secrets,
                &path,
                &cpgen::bundle::WriteOptions::default(),
            )
        } else {
            cpgen::bundle::write_tar_gz(
                &plan,
                &secrets,
                &path,
                &cpgen::bundle::WriteOptions::default(),
            )
        };
        match result {
            Err(cpgen::Error::MissingKey { identity }) => {
                assert!(identity.ends_with("/node100"), "{identity}")
            }
            other => panic!("expected a missing key, got {other:?}"),
        }
    }
    let left: Vec<_> = std::fs::read_dir(root).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_progress_bar_shows_on_a_terminal_and_never_when_piped() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cluster.toml");
    std::fs::write(&config, with_workers(300)).unwrap();
    let bundle = |name: &str| {
        format!(
            "{} bundle {} -o {} --force",
            env!("CARGO_BIN_EXE_cpgen"),
            config.display(),
            dir.path().join(name).display()
        )
    };
    // `script` (util-linux) gives the command a pseudo-terminal.
    let on_terminal = Command::new("script")
        .args(["-qec", &bundle("tty.tar.gz"), "/dev/null"])
        .output()
        .unwrap();
    assert!(on_terminal.status.success());
    let shown = String::from_utf8_lossy(&on_terminal.stdout);
    assert!(shown.contains("generating keys"), "{shown}");
    assert!(shown.contains("writing hosts"), "{shown}");
    assert!(shown.contains("/304"), "hosts counted: {shown}");
    let piped = Command::new("sh")
        .args(["-c", &bundle("piped.tar.gz")])
        .output()
        .unwrap();
    assert!(piped.status.success());
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(!stderr.contains("writing hosts"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "no terminal codes: {stderr:?}");
    assert!(stderr.contains("wrote "), "{stderr}");
}

#[test]
fn gnu_tar_and_gzip_read_an_archive_compressed_in_pieces() {
    // 250 workers make a tar stream of several 1 MiB pieces, deflated in parallel.
    let plan = util::plan_from(&with_workers(250));
    let secrets = util::fresh_secrets(&plan);
    let bundle = Bundle::build(&plan, &secrets).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("b.tar.gz");
    std::fs::write(&archive, bundle.to_tar_gz().unwrap()).unwrap();
    let tar_bytes: u64 = bundle
        .files()
        .map(|(_, f)| 512 + (f.contents.len() as u64).div_ceil(512) * 512)
        .sum();
    assert!(tar_bytes > 3 << 20, "several pieces: {tar_bytes} bytes");
    let tested = Command::new("gzip")
        .arg("-t")
        .arg(&archive)
        .output()
        .unwrap();
    assert!(
        tested.status.success(),
        "{}",
        String::from_utf8_lossy(&tested.stderr)
    );
    let out = dir.path().join("x");
    std::fs::create_dir(&out).unwrap();
    let extracted = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        extracted.status.success(),
        "{}",
        String::from_utf8_lossy(&extracted.stderr)
    );
    let mut written = BTreeMap::new();
    walk(&out, "", &mut written);
    assert_eq!(written, contents_of(&bundle));
}

/// A later command can tell which cluster, which config and which cpgen made a bundle.
#[test]
fn the_manifest_records_what_made_it_and_the_members() {
    let (_, bundle) = build("on-masters-vip");
    let manifest: serde_json::Value =
        serde_json::from_slice(&bundle.get("manifest.json").unwrap().contents).unwrap();
    assert_eq!(manifest["generator"]["name"], "cpgen");
    assert_eq!(manifest["generator"]["version"], env!("CARGO_PKG_VERSION"));
    let config = std::fs::read(util::root().join("examples/on-masters-vip.toml")).unwrap();
    let digest: String = Sha256::digest(&config)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(manifest["config_sha256"], digest.as_str());
    assert_eq!(manifest["cluster"], "prod-eu1");
    let members: Vec<(String, String, Vec<String>)> = manifest["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_owned(),
                m["address"].as_str().unwrap().to_owned(),
                serde_json::from_value(m["roles"].clone()).unwrap(),
            )
        })
        .collect();
    let on_masters = ["master", "etcd", "load-balancer"]
        .map(String::from)
        .to_vec();
    assert_eq!(
        members,
        [
            ("kubem00".into(), "10.10.10.80".into(), on_masters.clone()),
            ("kubem01".into(), "10.10.10.81".into(), on_masters.clone()),
            ("kubem02".into(), "10.10.10.82".into(), on_masters),
        ]
    );
    // Another config text, even one that plans the same cluster, is told apart.
    let text = String::from_utf8(config).unwrap() + "\n# a comment\n";
    let plan = util::plan_from(&text);
    let other = Bundle::build(&plan, &golden_secrets("on-masters-vip", &plan)).unwrap();
    let other: serde_json::Value =
        serde_json::from_slice(&other.get("manifest.json").unwrap().contents).unwrap();
    assert_ne!(other["config_sha256"], manifest["config_sha256"]);
}
