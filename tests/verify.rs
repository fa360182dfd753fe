//! `cpgen verify` and `cpgen certs`: every bundle cpgen makes is clean, each fault is found
//! with exactly its code, a hand-made cfssl bundle shows its real flaws, hostile archives
//! are reported without touching the disk.

mod util;

use std::collections::BTreeSet;
use std::path::Path;

use cpgen::bundle::{Bundle, FileKind};
use cpgen::diag::Code;
use cpgen::pki::{self, Ca, Secrets};
use cpgen::test_support::read_archive;
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
    let report = cpgen::test_support::verify_tree(&tree, plan, at, findings);
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
        let allowed: BTreeSet<Code> = match cpgen::test_support::pki_layout(&plan) {
            cpgen::test_support::PkiLayout::SharedCa => [Code::BundleSharedCa].into(),
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
            cpgen::pki::ImportMode::Replace,
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
    assert_only(codes, &[Code::CertificateSanNotCovered], &text);
    assert!(text.contains("10.10.10.2 is dialled by"), "{text}");
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
    // The config makes the file: with it, its absence is also a mismatch.
    assert_only(codes, &[Code::MissingFile, Code::PlanMismatch], &text);
    assert!(text.contains("front-proxy-ca.pem"), "{text}");
    let (codes, text) = codes_of(&bundle, None, AT);
    assert_only(codes, &[Code::MissingFile], &text);
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
    // The config alone makes a component's kubeconfig: with it, any edit is a mismatch too.
    assert_only(codes, &[Code::DanglingReference, Code::PlanMismatch], &text);
    let (codes, text) = codes_of(&bundle, None, AT);
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
    assert_only(
        codes,
        &[Code::WrongUsage, Code::CertificateSanNotCovered],
        &text,
    );
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
    // The fourth member is no host of the bundle (CP830) nor a master of the config (CP831).
    assert_only(
        codes,
        &[
            Code::BundleEvenEtcdMembers,
            Code::MissingHost,
            Code::PlanMismatch,
        ],
        &text,
    );
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
fn a_kubeconfig_that_is_none_is_found_and_certs_says_its_table_is_incomplete() {
    const KUBECONFIG: &str = "hosts/kubem01/var/lib/kube-scheduler/kubeconfig";
    for garbage in ["clusters: not-a-list\n", "{ unclosed: [\n"] {
        let (plan, bundle) = faulty(|bundle, _, _| {
            replace(bundle, KUBECONFIG, garbage.as_bytes().to_vec());
        });
        let (codes, text) = codes_of(&bundle, Some(&plan), AT);
        assert!(codes.contains(&Code::Unparseable), "{text}");
        assert!(
            text.contains(&format!("{KUBECONFIG}: not a kubeconfig")),
            "{text}"
        );
        let dir = written(&bundle);
        let out = util::cpgen(&["certs", dir.path().join("b").to_str().unwrap()]);
        assert_eq!(util::code(&out), 1, "{}", util::stderr(&out));
        assert!(
            util::stderr(&out).contains(
                "error[CP801]: hosts/kubem01/var/lib/kube-scheduler/kubeconfig: not a kubeconfig"
            ),
            "{}",
            util::stderr(&out)
        );
    }
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
    let report = cpgen::test_support::verify_tree(&tree, Some(&plan), AT, findings);
    let unparseable: BTreeSet<&str> = report
        .findings
        .iter()
        .filter(|f| f.code == Code::Unparseable)
        .filter_map(|f| f.file())
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
            cpgen::bundle::WriteMode::CreateNew,
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
    let codes: BTreeSet<&str> = json["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    // The manifest records 0600 too, so it disagrees as well.
    assert_eq!(codes, BTreeSet::from(["CP810", "CP811"]), "{text}");
    assert!(json["diagnostics"]
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
    let findings = json["diagnostics"].as_array().unwrap();
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
            "kubernetes is dialled by"
        ),
        "{findings:#?}"
    );
    assert!(
        has(
            "CP805",
            "kubem01/etc/kubernetes/pki/apiserver.pem",
            "10.10.10.81 is dialled by"
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
    // The guide's units open an unauthenticated HTTP port (--insecure-port,
    // --insecure-bind-address) and carry flags Kubernetes removed; cpgen writes none of them.
    assert!(
        has(
            "CP833",
            "kubem00/etc/systemd/system/kube-apiserver.service",
            "--insecure-port is not a flag cpgen writes"
        ),
        "{findings:#?}"
    );
    // Its CA key sits on every master, where no unit uses it.
    assert!(
        has(
            "CP817",
            "kubem00/etc/kubernetes/pki/ca-key.pem",
            "no unit of kubem00 uses"
        ),
        "{findings:#?}"
    );
    // The guide gives kube-apiserver's kubelet client system:masters, on every master.
    assert!(
        has(
            "CP832",
            "kubem00/etc/kubernetes/pki/kubelet-client.pem",
            "a system:masters certificate on a host"
        ),
        "{findings:#?}"
    );
    assert_eq!(
        codes,
        BTreeSet::from(["CP805", "CP813", "CP817", "CP832", "CP833"]),
        "{findings:#?}"
    );

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
        &vec![0u8; (cpgen::test_support::MAX_FILE + 1) as usize],
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
        text.contains("1 file, "),
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
    assert!(
        total as u64 <= cpgen::test_support::MAX_TOTAL,
        "read {total} bytes"
    );
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
        let _ = cpgen::test_support::verify_tree(&tree, None, AT, findings);
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

// ---- what is not a bundle ----

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = util::cpgen(args);
    (util::code(&out), util::stdout(&out), util::stderr(&out))
}

#[test]
fn what_is_not_a_bundle_is_an_error_saying_what_a_bundle_is() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let configs = dir.path().join("configs");
    std::fs::create_dir(&configs).unwrap();
    std::fs::write(configs.join("cluster.toml"), example("separate-cas")).unwrap();
    // Files in host directories, but no certificate anywhere.
    let no_certs = dir.path().join("no-certs");
    std::fs::create_dir_all(no_certs.join("hosts/kubem00/etc")).unwrap();
    std::fs::write(no_certs.join("hosts/kubem00/etc/hosts"), "127.0.0.1 x\n").unwrap();
    // Certificates, but no host directory.
    let loose = dir.path().join("loose");
    std::fs::create_dir(&loose).unwrap();
    for f in ["ca.pem", "ca-key.pem"] {
        std::fs::copy(
            util::root().join("tests/fixtures/cfssl").join(f),
            loose.join(f),
        )
        .unwrap();
    }
    let zero = dir.path().join("zero.tar.gz");
    std::fs::write(&zero, b"").unwrap();
    let garbage = dir.path().join("garbage.tar.gz");
    std::fs::write(
        &garbage,
        b"PK\x03\x04 this is a zip, or nothing at all".repeat(40),
    )
    .unwrap();
    for bundle in [&empty, &configs, &no_certs, &loose, &zero, &garbage] {
        let path = bundle.to_str().unwrap();
        let (code, out, err) = cli(&["verify", path]);
        assert_eq!(code, 1, "verify {path}:\n{out}{err}");
        assert!(out.contains("error[CP814]"), "verify {path}:\n{out}");
        for expected in ["manifest.json", "hosts/<host>/", "certificates"] {
            assert!(out.contains(expected), "verify {path}:\n{out}");
        }
        assert!(!out.contains(" 0 errors"), "verify {path}:\n{out}");

        let (code, out, _) = cli(&["verify", path, "--format", "json"]);
        assert_eq!(code, 1, "verify --format json {path}:\n{out}");
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(json["valid"], false, "{out}");
        assert!(
            json["diagnostics"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["code"] == "CP814" && d["name"] == "not-a-bundle"),
            "{out}"
        );

        for format in ["text", "json"] {
            let (code, out, err) = cli(&["certs", path, "--format", format]);
            assert_eq!(code, 1, "certs --format {format} {path}:\n{out}{err}");
            assert!(err.contains("error[CP814]"), "certs {path}:\n{err}");
        }
    }
}

// ---- control characters from a bundle never reach the terminal ----

/// ESC (a CSI sequence that clears the screen), BEL, BS, DEL and the C1 CSI.
const HOSTILE: &str = "\u{1b}[2J\u{7}\u{8}\u{7f}\u{9b}31m";

fn self_signed(common_name: &str, is_ca: bool) -> (rcgen::Certificate, rcgen::KeyPair) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    if is_ca {
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    }
    let key = rcgen::KeyPair::generate().unwrap();
    (params.self_signed(&key).unwrap(), key)
}

/// A tar whose entry names, file contents, kubeconfig fields and certificate names all carry
/// terminal control sequences.
fn hostile_archive(dir: &Path) -> std::path::PathBuf {
    let (ca, _) = self_signed(&format!("evil CA {HOSTILE}"), true);
    let (leaf, leaf_key) = self_signed(&format!("evil leaf {HOSTILE}"), false);
    let pki = "hosts/kubem00/etc/kubernetes/pki";
    let unit = "[Service]\nExecStart=/usr/bin/etcd --cert-file=/etc/kubernetes/pki/leaf.pem \
                --key-file=/etc/kubernetes/pki/leaf-key.pem \
                --trusted-ca-file=/etc/kubernetes/pki/ca.pem\n";
    let kubeconfig =
        "apiVersion: v1\nkind: Config\ncurrent-context: \"ctx\\e[2J\\a\\b\\x7f\\u009b\"\n\
        clusters: []\ncontexts: []\nusers:\n- name: \"user\\e]0;pwned\\a\\u009b\"\n  user:\n    \
        client-certificate-data: \"bm90IGEgY2VydGlmaWNhdGU=\"\n";
    let manifest = format!(
        "{{\"files\": [{{\"path\": \"hosts/kubem00/gone{}\", \"mode\": \"0644\", \"sha256\": \"00\"}}, \
         {{\"path\": \"{pki}/ca.pem\", \"mode\": \"06{}44\", \"sha256\": \"00\"}}]}}",
        "\\u001b[2J\\u0007\\u0008\\u007f\\u009b", "\\u001b[31m\\u009b"
    );
    let files: Vec<(String, Vec<u8>)> = vec![
        ("manifest.json".into(), manifest.into_bytes()),
        (format!("{pki}/ca.pem"), ca.pem().into_bytes()),
        (format!("{pki}/leaf.pem"), leaf.pem().into_bytes()),
        (
            format!("{pki}/leaf-key.pem"),
            leaf_key.serialize_pem().into_bytes(),
        ),
        (
            "hosts/kubem00/etc/systemd/system/etcd.service".into(),
            unit.as_bytes().to_vec(),
        ),
        (
            "hosts/kubem00/var/lib/kube-scheduler/kubeconfig".into(),
            kubeconfig.as_bytes().to_vec(),
        ),
        (
            format!("{pki}/name{HOSTILE}.pem"),
            b"-----BEGIN CERTIFICATE-----\nZ2FyYmFnZQ==\n-----END CERTIFICATE-----\n".to_vec(),
        ),
        (
            format!("{pki}/quoted.pem"),
            format!("-----BEGIN X{HOSTILE}-----\nZ2FyYmFnZQ==\n-----END X{HOSTILE}-----\n")
                .into_bytes(),
        ),
    ];
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in &files {
        raw_entry(&mut tar, name, tar::EntryType::Regular, data, None);
    }
    let path = dir.join("hostile.tar");
    std::fs::write(&path, tar.into_inner().unwrap()).unwrap();
    path
}

/// The characters that move the cursor, recolour, retitle, ring or erase on a terminal.
fn assert_no_control_characters(what: &str, bytes: &[u8]) {
    let text =
        std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("{what}: not UTF-8 ({e}): {bytes:?}"));
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| matches!(c, '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}'))
        .collect();
    assert!(bad.is_empty(), "{what} carries {bad:?}:\n{text}");
}

#[test]
fn control_characters_from_a_bundle_never_reach_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let archive = hostile_archive(dir.path());
    let path = archive.to_str().unwrap();
    let at = "2026-02-01T00:00:00Z";
    for args in [
        vec!["verify", path, "--at", at],
        vec!["verify", path, "--at", at, "--format", "json"],
        vec!["certs", path, "--at", at],
        vec!["certs", path, "--at", at, "--format", "json"],
    ] {
        let out = util::cpgen(&args);
        let what = args.join(" ");
        assert_no_control_characters(&format!("{what}: stdout"), &out.stdout);
        assert_no_control_characters(&format!("{what}: stderr"), &out.stderr);
        let all = format!("{}{}", util::stdout(&out), util::stderr(&out));
        // Shown as visible escapes, so an auditor sees what is there.
        assert!(
            all.contains(r"\x1b[2J") && all.contains(r"\u{9b}"),
            "{what}:\n{all}"
        );
    }
    let (code, text, _) = cli(&["verify", path, "--at", at]);
    assert_eq!(code, 1, "{text}");
    // Every kind of untrusted text is in the report: entry names, a PEM label quoted from a
    // file, the manifest's paths and modes, kubeconfig fields, certificate names.
    for expected in [
        r"pki/name\x1b[2J\x07\x08\x7f\u{9b}31m.pem",
        r"unexpected PEM block X\x1b[2J",
        r"hosts/kubem00/gone\x1b[2J",
        r"manifest.json says 06\x1b[31m\u{9b}44",
        r"current-context `ctx\x1b[2J\x07\x08\x7f\u{9b}`",
        r"#user\x1b]0;pwned\x07\u{9b}.client-certificate-data",
        r"CN=evil leaf \x1b[2J",
        r"CN=evil CA \x1b[2J",
    ] {
        assert!(text.contains(expected), "{expected} missing:\n{text}");
    }
    let (_, table, _) = cli(&["certs", path, "--at", at]);
    assert!(
        table.contains(r"evil CA \x1b[2J\x07\x08\x7f\u{9b}31m (CA)"),
        "{table}"
    );
}

// ---- verify --format json is shaped like check --format json ----

#[test]
fn verify_json_has_checks_diagnostic_shape() {
    let check = util::cpgen(&[
        "check",
        "tests/invalid/CP003-unknown-key.toml",
        "--format",
        "json",
    ]);
    let check: serde_json::Value = serde_json::from_str(&util::stdout(&check)).unwrap();
    let keys = |v: &serde_json::Value| -> BTreeSet<String> {
        v.as_object().unwrap().keys().cloned().collect()
    };
    let check_keys = keys(&check["diagnostics"][0]);

    let (_, bundle) = faulty(|_, _, _| {});
    let dir = written(&bundle);
    let root = dir.path().join("b");
    let (code, text) = cli_verify(&root, &["--format", "json"]);
    assert_eq!(code, 0, "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        keys(&json),
        BTreeSet::from(
            [
                "valid",
                "errors",
                "warnings",
                "files",
                "certificates",
                "diagnostics"
            ]
            .map(String::from)
        ),
        "{text}"
    );
    assert_eq!(json["valid"], true);
    assert_eq!(json["errors"], 0);
    assert!(json["certificates"].as_u64().unwrap() > 30, "{text}");
    assert_eq!(json["diagnostics"], serde_json::json!([]));

    // Leaves expired, CAs valid: errors only; then CAs expiring too: warnings as well.
    std::fs::write(
        root.join("hosts/kubernetes/etc/haproxy/haproxy.cfg"),
        "changed\n",
    )
    .unwrap();
    let out = util::cpgen(&[
        "verify",
        root.to_str().unwrap(),
        "--at",
        "2035-12-20T00:00:00Z",
        "--format",
        "json",
    ]);
    assert_eq!(util::code(&out), 1);
    let json: serde_json::Value = serde_json::from_str(&util::stdout(&out)).unwrap();
    assert_eq!(json["valid"], false);
    let diagnostics = json["diagnostics"].as_array().unwrap();
    let count = |severity: &str| {
        diagnostics
            .iter()
            .filter(|d| d["severity"] == severity)
            .count()
    };
    assert!(count("error") > 0 && count("warning") > 0, "{json:#}");
    assert_eq!(json["errors"], count("error"));
    assert_eq!(json["warnings"], count("warning"));
    for d in diagnostics {
        assert_eq!(keys(d), check_keys, "{d:#}");
        assert_eq!(d["primary"], serde_json::Value::Null);
        assert_eq!(d["secondary"], serde_json::json!([]));
        let code = d["code"].as_str().unwrap();
        let named = Code::ALL.iter().find(|c| c.id() == code).unwrap();
        assert_eq!(d["name"], named.slug());
    }
    assert!(diagnostics
        .iter()
        .any(|d| d["code"] == "CP810" && d["file"] == "hosts/kubernetes/etc/haproxy/haproxy.cfg"));
}

// ---- certs: not before, status, --at ----

#[test]
fn certs_shows_not_before_and_status_at_the_given_time() {
    let (_, bundle) = faulty(|_, _, _| {});
    let dir = written(&bundle);
    let root = dir.path().join("b");
    let root = root.to_str().unwrap();
    let row_of = |at: &str, file: &str| -> String {
        let (code, text, err) = cli(&["certs", root, "--at", at]);
        assert_eq!(code, 0, "{err}");
        let header = text.lines().next().unwrap();
        for column in [
            "NOT BEFORE (UTC)",
            "EXPIRES (UTC)",
            "RESIDUAL TIME",
            "STATUS",
        ] {
            assert!(header.contains(column), "{header}");
        }
        text.lines()
            .find(|l| l.starts_with(&format!("{file} ")))
            .unwrap_or_else(|| panic!("no {file}:\n{text}"))
            .to_owned()
    };
    let leaf = APISERVER;
    let ca = "hosts/kubem00/etc/kubernetes/pki/ca.pem";
    // Issued 2025-12-31 23:55, three days ahead of --at.
    let early = row_of("2025-12-28T23:55:00Z", leaf);
    assert!(early.contains("2025-12-31 23:55"), "{early}");
    assert!(early.contains("not yet valid (in 3d)"), "{early}");
    assert!(
        !early.contains(" 368d") && !early.contains(" 369d"),
        "{early}"
    );
    let soon = row_of("2026-12-20T00:00:00Z", leaf);
    assert!(
        soon.contains("12d") && soon.contains("expires soon"),
        "{soon}"
    );
    let ca_row = row_of("2026-12-20T00:00:00Z", ca);
    assert!(ca_row.contains(" valid "), "{ca_row}");
    let late = row_of("2030-01-01T00:00:00Z", leaf);
    assert!(
        late.contains("expired 1096d ago") && late.contains(" expired "),
        "{late}"
    );

    let statuses = |at: &str| -> Vec<(String, String, String)> {
        let (code, text, err) = cli(&["certs", root, "--at", at, "--format", "json"]);
        assert_eq!(code, 0, "{err}");
        let rows: serde_json::Value = serde_json::from_str(&text).unwrap();
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["certificate"].as_str().unwrap().to_owned(),
                    r["not_before"].as_str().unwrap().to_owned(),
                    r["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let status_of = |rows: &[(String, String, String)], file: &str| {
        rows.iter().find(|r| r.0 == file).unwrap().clone()
    };
    let rows = statuses("2025-12-28T23:55:00Z");
    assert_eq!(
        status_of(&rows, leaf),
        (
            leaf.to_owned(),
            "2025-12-31T23:55:00Z".to_owned(),
            "not_yet_valid".to_owned()
        )
    );
    assert_eq!(
        status_of(&statuses("2026-02-01T00:00:00Z"), leaf).2,
        "valid"
    );
    let rows = statuses("2026-12-20T00:00:00Z");
    assert_eq!(status_of(&rows, leaf).2, "expires_soon");
    assert_eq!(status_of(&rows, ca).2, "valid");
    assert_eq!(
        status_of(&statuses("2030-01-01T00:00:00Z"), leaf).2,
        "expired"
    );
}

// ---- what verify tells to do about an expiring certificate ----

#[test]
fn an_expiring_ca_is_not_sent_to_cpgen_renew_and_a_leafs_commands_run_as_printed() {
    let (plan, bundle) = faulty(|_, _, _| {});
    let is_ca = |file: &str| {
        file.ends_with("ca.pem")
            || file.ends_with("ca-signing.pem")
            || file.ends_with("certificate-authority-data")
    };
    let mut leaf_help = None;
    // CAs expire 2035-12-30: first soon, then past.
    for at in [
        datetime!(2035-12-20 00:00:00 UTC),
        datetime!(2036-01-01 00:00:00 UTC),
    ] {
        let bytes = bundle.to_tar_gz().unwrap();
        let mut findings = Vec::new();
        let tree = read_archive(bytes.as_slice(), &mut findings);
        let report = cpgen::test_support::verify_tree(&tree, Some(&plan), at, findings);
        let expiry: Vec<_> = report
            .findings
            .iter()
            .filter(|f| matches!(f.code, Code::Expired | Code::ExpiresSoon))
            .collect();
        assert!(
            expiry.iter().any(|f| is_ca(f.file().unwrap())),
            "{}",
            report.render()
        );
        for f in expiry {
            let (file, help) = (f.file().unwrap(), f.help.as_deref().unwrap());
            if is_ca(file) {
                assert!(!help.contains("cpgen renew"), "{file}: {help}");
                assert!(
                    help.contains("CA") && help.contains("rotation"),
                    "{file}: {help}"
                );
            } else {
                assert!(
                    help.contains("`cpgen renew CLUSTER.toml`")
                        && help.contains("`cpgen bundle CLUSTER.toml -o OUT.tar.gz --force`"),
                    "{file}: {help}"
                );
                leaf_help = Some(help.to_owned());
            }
        }
    }
    // The commands run as printed, once the placeholders are filled in.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cluster.toml");
    std::fs::write(&config, example("separate-cas")).unwrap();
    let out = dir.path().join("out.tar.gz");
    let fill = |command: &str| -> Vec<String> {
        command
            .split_whitespace()
            .skip(1)
            .map(|w| match w {
                "CLUSTER.toml" => config.to_str().unwrap().to_owned(),
                "OUT.tar.gz" => out.to_str().unwrap().to_owned(),
                w => w.to_owned(),
            })
            .collect()
    };
    let help = leaf_help.unwrap();
    let commands: Vec<&str> = help.split('`').skip(1).step_by(2).collect();
    assert_eq!(commands.len(), 2, "{help}");
    // The first bundle creates the secrets file `renew` needs.
    for command in [commands[1], commands[0], commands[1]] {
        let args = fill(command);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, err) = cli(&args);
        assert_eq!(code, 0, "{command}: {err}");
    }
    assert!(out.exists());
}

/// An operator who unpacks a bundle and packs it again with GNU tar gets a clean audit; one
/// who packs the directory itself is told where the bundle is.
#[test]
fn a_bundle_repacked_with_tar_verifies_and_a_nested_one_is_pointed_at() {
    let dir = util::dir_with_config("separate-cas");
    let out = util::cpgen_in(dir.path(), &["bundle", "cluster.toml", "--out-dir", "tree"]);
    assert_eq!(out.status.code(), Some(0), "{}", util::stderr(&out));
    let tar = |args: &[&str]| {
        let status = std::process::Command::new("tar")
            .args(args)
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "tar {args:?}");
    };
    // `./`, `./hosts/...`: what `tar -C DIR .` writes.
    tar(&["czf", "repacked.tar.gz", "-C", "tree", "."]);
    let out = util::cpgen_in(dir.path(), &["verify", "repacked.tar.gz"]);
    assert_eq!(out.status.code(), Some(0), "{}", util::stdout(&out));
    tar(&["czf", "nested.tar.gz", "tree"]);
    let out = util::cpgen_in(dir.path(), &["verify", "nested.tar.gz"]);
    assert_eq!(out.status.code(), Some(1));
    let text = util::stdout(&out);
    assert!(text.contains("CP814"), "{text}");
    assert!(text.contains("inside `tree/`"), "{text}");
    assert!(text.contains("-C tree ."), "{text}");
}
