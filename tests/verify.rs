//! `cpgen verify` and `cpgen certs`: every bundle cpgen makes is clean, each fault is found
//! with exactly its code, a hand-made cfssl bundle shows its real flaws, hostile archives
//! are reported without touching the disk.

mod util;

use std::collections::BTreeSet;
use std::path::Path;

use cpgen::bundle::{Bundle, FileKind};
use cpgen::pki::{self, Ca, Secrets};
use cpgen::verify::{self, read_archive, Code};
use cpgen::Plan;
use time::macros::datetime;
use time::OffsetDateTime;

/// Inside every golden certificate's validity, far from its end.
const AT: OffsetDateTime = datetime!(2026-02-01 00:00:00 UTC);

use util::{fresh_secrets, plan_from};

use util::example_text as example;

fn golden_secrets(name: &str) -> Secrets {
    Secrets::parse(
        &std::fs::read_to_string(util::root().join(format!("golden/{name}.secrets.toml"))).unwrap(),
    )
    .unwrap()
}

/// Verifies a bundle the way the CLI reads a .tar.gz.
fn codes_of(bundle: &Bundle, plan: Option<&Plan>, at: OffsetDateTime) -> (BTreeSet<Code>, String) {
    let bytes = bundle.to_tar_gz().unwrap();
    let mut findings = Vec::new();
    let tree = read_archive(bytes.as_slice(), &mut findings);
    let report = verify::verify_tree(&tree, plan, at, findings);
    (
        report.findings.iter().map(|f| f.code).collect(),
        report.render(),
    )
}

#[test]
fn every_bundle_cpgen_makes_verifies_clean() {
    for name in ["seed-ha", "separate-cas", "on-masters-vip", "ipv6"] {
        let plan = plan_from(&example(name));
        let secrets = fresh_secrets(&plan);
        let bundle = Bundle::build(&plan, &secrets).unwrap();
        // One shared CA is a choice `check` already warns about (CP504); verify says the same.
        let allowed: BTreeSet<Code> = match plan.pki.layout {
            cpgen::plan::PkiLayout::SharedCa => [Code::SharedCa].into(),
            _ => BTreeSet::new(),
        };
        for with_plan in [None, Some(&plan)] {
            let (codes, text) = codes_of(&bundle, with_plan, AT);
            assert!(
                codes.is_subset(&allowed),
                "{name} (config given: {}):\n{text}",
                with_plan.is_some()
            );
            assert!(text.contains(" 0 errors"), "{text}");
        }
    }
}

#[test]
fn a_directory_written_by_cpgen_verifies_clean_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cluster.toml");
    std::fs::write(&config, example("separate-cas")).unwrap();
    let tree = dir.path().join("bundle");
    let out = util::cpgen(&[
        "bundle",
        config.to_str().unwrap(),
        "--out-dir",
        tree.to_str().unwrap(),
    ]);
    assert_eq!(util::code(&out), 0, "{}", util::stderr(&out));
    let out = util::cpgen(&[
        "verify",
        tree.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(util::code(&out), 0, "{}", util::stdout(&out));
    assert!(
        util::stdout(&out).contains("0 errors, 0 warnings"),
        "{}",
        util::stdout(&out)
    );
}

/// The separate-cas golden bundle, a fault applied, the manifest made to match again (so
/// only the fault itself is found).
fn faulty(fault: impl FnOnce(&mut Bundle, &Plan, &Secrets)) -> (Plan, Bundle) {
    let plan = plan_from(&example("separate-cas"));
    let secrets = golden_secrets("separate-cas");
    let mut bundle = Bundle::build(&plan, &secrets).unwrap();
    fault(&mut bundle, &plan, &secrets);
    (plan, bundle.with_manifest().unwrap())
}

fn replace(bundle: &mut Bundle, path: &str, contents: Vec<u8>) {
    let file = bundle
        .get(path)
        .unwrap_or_else(|| panic!("no {path}"))
        .clone();
    bundle.insert_host_file(
        file.host.as_ref().unwrap(),
        file.target.as_deref().unwrap(),
        file.kind,
        contents,
    );
}

fn edit(bundle: &mut Bundle, path: &str, from: &str, to: &str) {
    let text = String::from_utf8(bundle.get(path).unwrap().contents.clone()).unwrap();
    assert!(text.contains(from), "{path} lacks {from:?}");
    replace(bundle, path, text.replace(from, to).into_bytes());
}

fn assert_only(codes: BTreeSet<Code>, expected: &[Code], text: &str) {
    assert_eq!(codes, expected.iter().copied().collect(), "{text}");
}

const APISERVER: &str = "hosts/kubem00/etc/kubernetes/pki/apiserver.pem";

#[test]
fn a_certificate_from_another_ca_is_found() {
    let (plan, bundle) = faulty(|bundle, plan, secrets| {
        // Same key and SANs, but signed by the cfssl fixture CA.
        let mut other = secrets.clone();
        let fixture = |f: &str| {
            std::fs::read_to_string(util::root().join("tests/fixtures/cfssl").join(f)).unwrap()
        };
        pki::import_ca(
            &mut other,
            Ca::Kubernetes,
            &fixture("ca.pem"),
            &fixture("ca-key.pem"),
            datetime!(2027-01-01 00:00:00 UTC),
            true,
        )
        .unwrap();
        let foreign = Bundle::build(plan, &other).unwrap();
        replace(
            bundle,
            APISERVER,
            foreign.get(APISERVER).unwrap().contents.clone(),
        );
    });
    let (codes, text) = codes_of(&bundle, Some(&plan), AT);
    assert_only(codes, &[Code::WrongIssuer], &text);
    assert!(text.contains(APISERVER), "{text}");
}

#[test]
fn an_apiserver_certificate_without_the_load_balancer_address_is_found() {
    let (plan, bundle) = faulty(|bundle, _, secrets| {
        let moved = plan_from(&example("separate-cas").replace("10.10.10.2", "10.10.10.3"));
        let reissued = Bundle::build(&moved, secrets).unwrap();
        for master in ["kubem00", "kubem01", "kubem02"] {
            let path = format!("hosts/{master}/etc/kubernetes/pki/apiserver.pem");
            replace(bundle, &path, reissued.get(&path).unwrap().contents.clone());
        }
    });
    let (codes, text) = codes_of(&bundle, Some(&plan), AT);
    assert_only(codes, &[Code::SanNotCovered], &text);
    assert!(text.contains("dials 10.10.10.2"), "{text}");
}

#[test]
fn swapped_keys_are_found() {
    let (plan, bundle) = faulty(|bundle, _, _| {
        let a = "hosts/kubem00/etc/kubernetes/pki/apiserver-key.pem";
        let b = "hosts/kubem00/etc/kubernetes/pki/kubelet-client-key.pem";
        let (key_a, key_b) = (
            bundle.get(a).unwrap().contents.clone(),
            bundle.get(b).unwrap().contents.clone(),
        );
        replace(bundle, a, key_b);
        replace(bundle, b, key_a);
    });
    let (codes, text) = codes_of(&bundle, Some(&plan), AT);
    assert_only(codes, &[Code::KeyMismatch], &text);
    assert!(
        text.contains("apiserver-key.pem") && text.contains("kubelet-client-key.pem"),
        "{text}"
    );
}

#[test]
fn expiry_is_judged_at_the_given_time() {
    let (plan, bundle) = faulty(|_, _, _| {});
    let (codes, text) = codes_of(&bundle, Some(&plan), datetime!(2030-01-01 00:00:00 UTC));
    assert_only(codes, &[Code::Expired], &text);
    let (codes, text) = codes_of(&bundle, Some(&plan), datetime!(2026-12-20 00:00:00 UTC));
    assert_only(codes, &[Code::ExpiresSoon], &text);
    let (codes, text) = codes_of(&bundle, Some(&plan), datetime!(2025-06-01 00:00:00 UTC));
    assert_only(codes, &[Code::Expired], &text);
    assert!(text.contains("not valid until"), "{text}");
}

#[test]
fn a_dropped_file_is_found() {
    let (plan, bundle) = faulty(|bundle, _, _| {
        let mut kept = Bundle::default();
        for (path, file) in bundle
            .files()
            .filter(|(p, _)| *p != "hosts/kubem00/etc/kubernetes/pki/front-proxy-ca.pem")
        {
            match (&file.host, &file.target) {
                (Some(host), Some(target)) => {
                    kept.insert_host_file(host, target, file.kind, file.contents.clone())
                }
                _ => kept.insert(path, file.kind, file.contents.clone()),
            }
        }
        *bundle = kept;
    });
    let (codes, text) = codes_of(&bundle, Some(&plan), AT);
    assert_only(codes, &[Code::MissingFile], &text);
    assert!(text.contains("front-proxy-ca.pem"), "{text}");
}

#[test]
fn a_broken_kubeconfig_reference_is_found() {
    let (plan, bundle) = faulty(|bundle, _, _| {
        edit(
            bundle,
            "hosts/kubem01/var/lib/kube-scheduler/kubeconfig",
            "current-context: default",
            "current-context: defualt",
        );
    });
    let (codes, text) = codes_of(&bundle, Some(&plan), AT);
    assert_only(codes, &[Code::DanglingReference], &text);
}

#[test]
fn a_client_certificate_used_as_a_server_certificate_is_found() {
    let (_, bundle) = faulty(|bundle, _, _| {
        for master in ["kubem00", "kubem01", "kubem02"] {
            let unit = format!("hosts/{master}/etc/systemd/system/kube-apiserver.service");
            edit(
                bundle,
                &unit,
                "--tls-cert-file=/etc/kubernetes/pki/apiserver.pem",
                "--tls-cert-file=/etc/kubernetes/pki/kubelet-client.pem",
            );
            edit(
                bundle,
                &unit,
                "--tls-private-key-file=/etc/kubernetes/pki/apiserver-key.pem",
                "--tls-private-key-file=/etc/kubernetes/pki/kubelet-client-key.pem",
            );
        }
    });
    let (codes, text) = codes_of(&bundle, None, AT);
    // The client certificate also lacks every SAN a client dials.
    assert_only(codes, &[Code::WrongUsage, Code::SanNotCovered], &text);
    assert!(text.contains("lacks serverAuth"), "{text}");
}

#[test]
fn an_even_initial_cluster_is_found() {
    let (plan, bundle) = faulty(|bundle, _, _| {
        edit(
            bundle,
            "hosts/kubem00/etc/systemd/system/etcd.service",
            "kubem02=https://10.10.10.82:2380",
            "kubem02=https://10.10.10.82:2380,kubem03=https://10.10.10.83:2380",
        );
    });
    let (codes, text) = codes_of(&bundle, Some(&plan), AT);
    assert_only(codes, &[Code::EvenEtcdMembers], &text);
}

#[test]
fn garbage_in_a_certificate_is_found() {
    let (plan, bundle) = faulty(|bundle, _, _| {
        replace(
            bundle,
            "hosts/kubem02/etc/kubernetes/pki/kubelet-client.pem",
            b"-----BEGIN CERTIFICATE-----\nZ2FyYmFnZQ==\n-----END CERTIFICATE-----\n".to_vec(),
        );
    });
    let (codes, text) = codes_of(&bundle, Some(&plan), AT);
    assert_only(codes, &[Code::Unparseable], &text);
}

#[test]
fn identical_copies_are_each_reported_and_other_files_with_those_bytes_are_not() {
    // Files are parsed once per distinct content; a finding still names every copy, and a
    // file that is no key or certificate is not read as one because its bytes match one.
    let garbage = b"not a certificate\n".to_vec();
    let (plan, bundle) = faulty(|bundle, _, _| {
        for master in ["kubem00", "kubem02"] {
            let path = format!("hosts/{master}/etc/kubernetes/pki/kubelet-client.pem");
            replace(bundle, &path, garbage.clone());
        }
        bundle.insert("admin/notes.txt", FileKind::Config, garbage.clone());
    });
    let bytes = bundle.to_tar_gz().unwrap();
    let mut findings = Vec::new();
    let tree = read_archive(bytes.as_slice(), &mut findings);
    let report = verify::verify_tree(&tree, Some(&plan), AT, findings);
    let unparseable: BTreeSet<&str> = report
        .findings
        .iter()
        .filter(|f| f.code == Code::Unparseable)
        .map(|f| f.file.as_str())
        .collect();
    assert_eq!(
        unparseable,
        BTreeSet::from([
            "hosts/kubem00/etc/kubernetes/pki/kubelet-client.pem",
            "hosts/kubem02/etc/kubernetes/pki/kubelet-client.pem",
        ]),
        "{}",
        report.render()
    );
}

/// A written directory, for the faults that live in file modes and the manifest.
fn written(bundle: &Bundle) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    bundle
        .write_dir(
            camino::Utf8Path::from_path(&dir.path().join("b")).unwrap(),
            false,
        )
        .unwrap();
    dir
}

fn cli_verify(dir: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec![
        "verify",
        dir.to_str().unwrap(),
        "--at",
        "2026-02-01T00:00:00Z",
    ];
    args.extend(extra);
    let out = util::cpgen(&args);
    (util::code(&out), util::stdout(&out))
}

#[test]
fn a_key_readable_by_others_is_found() {
    use std::os::unix::fs::PermissionsExt;
    let (_, bundle) = faulty(|_, _, _| {});
    let dir = written(&bundle);
    let root = dir.path().join("b");
    assert_eq!(cli_verify(&root, &[]).0, 0);
    let key = root.join("hosts/kubem00/etc/etcd/pki/etcd-server-key.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, text) = cli_verify(&root, &["--format", "json"]);
    assert_eq!(code, 1, "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let codes: BTreeSet<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    // The manifest records 0600 too, so it disagrees as well.
    assert_eq!(codes, BTreeSet::from(["CP810", "CP811"]), "{text}");
    assert!(json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["file"] == "hosts/kubem00/etc/etcd/pki/etcd-server-key.pem"));
}

#[test]
fn a_file_changed_after_bundling_is_found_by_the_manifest() {
    let (_, bundle) = faulty(|_, _, _| {});
    let dir = written(&bundle);
    let root = dir.path().join("b");
    let cfg = root.join("hosts/kubernetes/etc/haproxy/haproxy.cfg");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("retries 3", "retries 0");
    std::fs::write(&cfg, text).unwrap();
    let (code, text) = cli_verify(&root, &[]);
    assert_eq!(code, 1);
    assert!(
        text.contains(
            "error[CP810]: hosts/kubernetes/etc/haproxy/haproxy.cfg: its contents differ"
        ),
        "{text}"
    );
    assert_eq!(text.matches("error[").count(), 1, "{text}");
}

#[test]
fn the_hand_made_cfssl_bundle_shows_its_real_flaws() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let copy = Command::new("cp")
        .args([
            "-r",
            util::root()
                .join("tests/fixtures/guide-cfssl/bundle")
                .to_str()
                .unwrap(),
            dir.path().to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(copy.success());
    let root = dir.path().join("bundle");
    // make.sh left the keys 0600; a git checkout does not keep that.
    for entry in walk(&root) {
        let is_key = std::fs::read_to_string(&entry)
            .unwrap_or_default()
            .contains("PRIVATE KEY");
        let mode = if is_key { 0o600 } else { 0o644 };
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let out = util::cpgen(&["verify", root.to_str().unwrap(), "--format", "json"]);
    assert_eq!(util::code(&out), 1, "{}", util::stdout(&out));
    let json: serde_json::Value = serde_json::from_str(&util::stdout(&out)).unwrap();
    let findings = json["findings"].as_array().unwrap();
    let has = |code: &str, file: &str, text: &str| {
        findings.iter().any(|f| {
            f["code"] == code
                && f["file"].as_str().unwrap().contains(file)
                && f["message"].as_str().unwrap().contains(text)
        })
    };
    // The apiserver certificate of the single-master setup, copied to every master, lacks
    // the load balancer's name that every kubeconfig dials, and the other masters' addresses.
    assert!(
        has(
            "CP805",
            "kubem00/etc/kubernetes/pki/apiserver.pem",
            "dials kubernetes"
        ),
        "{findings:#?}"
    );
    assert!(
        has(
            "CP805",
            "kubem01/etc/kubernetes/pki/apiserver.pem",
            "dials 10.10.10.81"
        ),
        "{findings:#?}"
    );
    // One CA signs everything, so etcd trusts every cluster client.
    assert!(
        has("CP813", "hosts/kubem00/", "etcd trusts"),
        "{findings:#?}"
    );
    // The guide's etcd certificate does cover every address etcd's clients and peers dial.
    assert!(
        !findings
            .iter()
            .any(|f| f["file"].as_str().unwrap().contains("etcd-server.pem")),
        "{findings:#?}"
    );
    let codes: BTreeSet<&str> = findings
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, BTreeSet::from(["CP805", "CP813"]), "{findings:#?}");

    let table = util::cpgen(&["certs", root.to_str().unwrap()]);
    assert_eq!(util::code(&table), 0);
    let text = util::stdout(&table);
    assert!(text.starts_with("CERTIFICATE"), "{text}");
    assert!(
        text.contains("RSA-2048") && text.contains("kubernetes (CA)"),
        "{text}"
    );
}

use std::process::Command;

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn certs_lists_every_certificate_soonest_expiry_first() {
    let (_, bundle) = faulty(|_, _, _| {});
    let dir = written(&bundle);
    let out = util::cpgen(&[
        "certs",
        dir.path().join("b").to_str().unwrap(),
        "--at",
        "2026-02-01T00:00:00Z",
        "--format",
        "json",
    ]);
    assert_eq!(util::code(&out), 0, "{}", util::stderr(&out));
    let rows: serde_json::Value = serde_json::from_str(&util::stdout(&out)).unwrap();
    let rows = rows.as_array().unwrap();
    assert!(rows.len() > 30);
    let expiries: Vec<&str> = rows
        .iter()
        .map(|r| r["expires"].as_str().unwrap())
        .collect();
    let mut sorted = expiries.clone();
    sorted.sort_unstable();
    assert_eq!(expiries, sorted);
    assert_eq!(rows.last().unwrap()["is_ca"], true, "CAs outlive leaves");
    let text = util::stdout(&util::cpgen(&[
        "certs",
        dir.path().join("b").to_str().unwrap(),
        "--at",
        "2026-02-01T00:00:00Z",
    ]));
    let first = text.lines().nth(1).unwrap();
    assert!(
        first.contains("2027-01-01 00:00")
            && first.contains("334d")
            && first.contains("ECDSA P-256"),
        "{text}"
    );
}

// ---- hostile input ----

/// A tar entry with a raw name (the tar crate refuses to write `..`, an attacker does not).
fn raw_entry(
    tar: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: tar::EntryType,
    data: &[u8],
    link: Option<&str>,
) {
    let mut header = tar::Header::new_gnu();
    let gnu = header.as_gnu_mut().unwrap();
    gnu.name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_entry_type(kind);
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    if let Some(link) = link {
        header.set_link_name(link).unwrap();
    }
    header.set_cksum();
    tar.append(&header, data).unwrap();
}

#[test]
fn hostile_archives_are_reported_and_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    raw_entry(
        &mut tar,
        "../escaped.pem",
        tar::EntryType::Regular,
        b"x",
        None,
    );
    raw_entry(
        &mut tar,
        "/etc/absolute.pem",
        tar::EntryType::Regular,
        b"x",
        None,
    );
    raw_entry(
        &mut tar,
        "hosts/a/link.pem",
        tar::EntryType::Symlink,
        b"",
        Some("/etc/shadow"),
    );
    raw_entry(
        &mut tar,
        "hosts/a/huge.pem",
        tar::EntryType::Regular,
        &vec![0u8; (verify::MAX_FILE + 1) as usize],
        None,
    );
    raw_entry(
        &mut tar,
        "hosts/a/fine.txt",
        tar::EntryType::Regular,
        b"fine",
        None,
    );
    let archive = dir.path().join("hostile.tar");
    std::fs::write(&archive, tar.into_inner().unwrap()).unwrap();
    let (code, text) = cli_verify(&archive, &[]);
    assert_eq!(code, 1, "{text}");
    for path in [
        "../escaped.pem",
        "/etc/absolute.pem",
        "hosts/a/link.pem",
        "hosts/a/huge.pem",
    ] {
        assert!(
            text.contains(&format!("error[CP800]: {path}")),
            "{path} not reported:\n{text}"
        );
    }
    assert!(!dir.path().parent().unwrap().join("escaped.pem").exists());
    assert!(
        text.contains("1 files"),
        "only the fine file is read: {text}"
    );

    let garbage = dir.path().join("garbage.tar.gz");
    std::fs::write(&garbage, b"\x1f\x8b\x08\x00 definitely not a gzip stream").unwrap();
    let (code, text) = cli_verify(&garbage, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("CP800"), "{text}");
}

#[test]
fn a_gzip_bomb_stops_at_the_size_limit() {
    use std::io::Write;
    // 300 MiB of zeros compress to a few hundred KiB.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(Vec::new());
    for i in 0..75 {
        raw_entry(
            &mut tar,
            &format!("hosts/a/part{i}.pem"),
            tar::EntryType::Regular,
            &vec![0u8; 4 << 20],
            None,
        );
    }
    gz.write_all(&tar.into_inner().unwrap()).unwrap();
    let bytes = gz.finish().unwrap();
    let mut findings = Vec::new();
    let tree = read_archive(bytes.as_slice(), &mut findings);
    let total: usize = tree.files.values().map(|e| e.data.len()).sum();
    assert!(total as u64 <= verify::MAX_TOTAL, "read {total} bytes");
    assert!(
        findings.iter().any(|f| f.code == Code::HostileEntry),
        "{findings:?}"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    #[test]
    fn random_bytes_never_panic_the_verifier(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
        let mut findings = Vec::new();
        let tree = read_archive(bytes.as_slice(), &mut findings);
        let _ = verify::verify_tree(&tree, None, AT, findings);
    }
}

#[test]
fn every_verify_code_is_documented() {
    let readme = std::fs::read_to_string(util::root().join("README.md")).unwrap();
    for code in Code::ALL {
        assert!(readme.contains(code.id()), "README lacks {}", code.id());
    }
    let _ = FileKind::Certificate;
}
