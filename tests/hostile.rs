//! Hostile and broken input: each gets a clear error and exit 1 or 2, nothing is created or
//! altered, and no key material shows up in any message. Also: interrupted writes lose
//! nothing.

mod util;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use cpgen::pki::{self, Ca, Secrets};
use cpgen::Config;
use time::macros::datetime;

const THREE: &str = "[[masters]]\nname = \"m0\"\naddress = \"127.0.1.80\"\n[[masters]]\nname = \"m1\"\naddress = \"127.0.1.81\"\n[[masters]]\nname = \"m2\"\naddress = \"127.0.1.82\"\n";

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// `check` and `bundle` on hostile config bytes: the expected exit code and message, and
/// `bundle` leaves the directory exactly as it was.
fn refuse(name: &str, bytes: &[u8], exit: i32, message: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cluster.toml");
    std::fs::write(&config, bytes).unwrap();
    let out = util::cpgen(&["check", "--color", "never", config.to_str().unwrap()]);
    let stderr = util::stderr(&out);
    assert_eq!(util::code(&out), exit, "{name}: {stderr}");
    assert!(
        stderr.contains(message),
        "{name}: expected {message:?} in\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    assert!(
        !stderr.chars().any(|c| c.is_control() && c != '\n'),
        "{name}: control characters reach the terminal: {stderr:?}"
    );
    assert!(
        stderr.lines().count() <= 200 && stderr.len() < 20_000,
        "{name}: far too long:\n{stderr}"
    );

    let before = listing(dir.path());
    let output = dir.path().join("out.tar.gz");
    let out = util::cpgen(&[
        "bundle",
        config.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
    ]);
    assert_eq!(
        util::code(&out),
        exit,
        "{name} bundle: {}",
        util::stderr(&out)
    );
    assert_eq!(
        listing(dir.path()),
        before,
        "{name}: bundle created or removed files"
    );
}

#[test]
fn hostile_configs_get_a_clear_error_and_change_nothing() {
    let mut huge = Vec::from(THREE.as_bytes());
    huge.extend(std::iter::repeat_n(b'#', 10 << 20));
    refuse("10 MB", &huge, 1, "a cluster description is at most");
    let deep = format!(
        "[x]\nv = {}{}\n{THREE}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    refuse("deep arrays", deep.as_bytes(), 1, "error[CP001]");
    let tables = format!(
        "{}\n{THREE}",
        (0..5000).map(|i| format!("[t{i}]\n")).collect::<String>()
    );
    refuse(
        "5,000 unknown tables",
        tables.as_bytes(),
        1,
        "more (all of them with --format json)",
    );
    let nested = format!("a = {}1{}\n", "{b = ".repeat(50_000), "}".repeat(50_000));
    refuse("deep inline tables", nested.as_bytes(), 1, "error[CP001]");
    refuse(
        "zero masters",
        b"[cluster]\nname = \"x\"\n",
        1,
        "error[CP401]",
    );
    refuse(
        "not UTF-8",
        b"[cluster]\nname = \"\xff\xfe\"\n",
        1,
        "not a text file",
    );
    refuse(
        "raw NUL in a string",
        THREE.replace("m1", "m\u{0}1").as_bytes(),
        1,
        "error[CP001]",
    );
    refuse(
        "escaped NUL in a name",
        THREE.replace("m1", "m\\u00001").as_bytes(),
        1,
        "error[CP101]",
    );
    refuse(
        "terminal escapes",
        THREE.replace("m1", "m\\u001b[2J1").as_bytes(),
        1,
        "error[CP101]",
    );
    refuse(
        "IPv6 zone id",
        THREE.replace("127.0.1.81", "fe80::1%eth0").as_bytes(),
        1,
        "error[CP104]",
    );
    refuse(
        "host bits",
        format!("[network]\nservice_cidr = \"10.32.0.1/16\"\n{THREE}").as_bytes(),
        1,
        "has host bits set",
    );
    refuse(
        "port 0",
        format!("[api]\nbind_port = 0\n{THREE}").as_bytes(),
        1,
        "error[CP301]",
    );
    refuse(
        "port 65536",
        format!("[etcd]\nclient_port = 65536\n{THREE}").as_bytes(),
        1,
        "65536 is not a TCP port",
    );
    refuse(
        "duplicate keys",
        format!("[api]\nport = 1\nport = 2\n{THREE}").as_bytes(),
        1,
        "duplicate key",
    );
}

#[test]
fn ten_thousand_masters_are_refused_quickly() {
    // On-masters mode puts every master into every apiserver certificate: the plan would be
    // quadratic, so the refusal must come before any plan is made.
    let mut text =
        String::from("[api]\nendpoint = \"172.16.0.1\"\n[load_balancer]\nmode = \"on-masters\"\n");
    for i in 0..10_001 {
        text.push_str(&format!(
            "[[masters]]\nname = \"m{i}\"\naddress = \"172.16.{}.{}\"\n",
            i / 250,
            1 + i % 250
        ));
    }
    let start = std::time::Instant::now();
    let Err(cpgen::Error::Invalid(report)) =
        Config::parse("big.toml", &text).and_then(|c| c.validate())
    else {
        panic!("10,001 masters validated")
    };
    let codes: Vec<_> = report.diagnostics().iter().map(|d| d.code).collect();
    assert_eq!(codes, [cpgen::diag::Code::TooManyEtcdMembers], "{codes:?}");
    // Not a timing assertion on the machine, a guard against quadratic rules: a debug build
    // checks 10,001 masters in well under a second when the rules are linear.
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
}

/// A directory with the guide's example and a secrets file written by cpgen.
fn cluster_with_secrets() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        std::fs::read(util::root().join("examples/separate-cas.toml")).unwrap(),
    )
    .unwrap();
    let secrets = dir.path().join("c.secrets.toml");
    let out = util::cpgen(&[
        "bundle",
        config.to_str().unwrap(),
        "-o",
        dir.path().join("first.tar.gz").to_str().unwrap(),
    ]);
    assert_eq!(util::code(&out), 0, "{}", util::stderr(&out));
    (dir, config, secrets)
}

fn bundle_again(config: &Path, dir: &Path) -> std::process::Output {
    util::cpgen(&[
        "bundle",
        config.to_str().unwrap(),
        "-o",
        dir.join("second.tar.gz").to_str().unwrap(),
    ])
}

#[test]
fn broken_secrets_files_are_refused_without_changes() {
    let (dir, config, secrets) = cluster_with_secrets();
    let good = std::fs::read_to_string(&secrets).unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "truncated",
            good[..good.len() / 2].to_owned(),
            "not a cpgen secrets file",
        ),
        (
            "wrong algorithm",
            {
                let mut s = Secrets::parse(&good).unwrap();
                let plan = Config::parse(
                    "x",
                    &std::fs::read_to_string(&config).unwrap().replace(
                        "[network]",
                        "[pki]\nkey_algorithm = \"rsa-2048\"\n[network]",
                    ),
                )
                .and_then(|c| c.validate())
                .unwrap()
                .plan;
                // Keys of another algorithm under the same names.
                let other = util::fresh_secrets(&plan);
                let rsa = other.key_pem("apiserver/kubem00").unwrap().to_owned();
                let text = s
                    .render()
                    .unwrap()
                    .replace(s.key_pem("apiserver/kubem00").unwrap(), &rsa);
                s = Secrets::parse(&text).unwrap();
                s.render().unwrap().to_string()
            },
            "`apiserver/kubem00` (rsa-2048, wants ecdsa-p256)",
        ),
        (
            "imported CA with another key",
            {
                let text = with_imported_etcd_ca(&good);
                let other =
                    cpgen::test_support::PrivateKey::from_pem(&fixture("cfssl/other-ca-key.pem"))
                        .unwrap()
                        .to_pkcs8_pem()
                        .unwrap();
                replace_block(&text, "\"etcd-ca\" = '''\n", &other)
            },
            "imported CA `etcd`: the key does not belong to the certificate",
        ),
        (
            "imported CA edited into a leaf (CA:FALSE)",
            {
                // The certificate and its key swapped for a leaf's, as a hand edit would.
                let text = with_imported_etcd_ca(&good);
                let leaf_key =
                    cpgen::test_support::PrivateKey::from_pem(&fixture("openssl/leaf-key.pem"))
                        .unwrap()
                        .to_pkcs8_pem()
                        .unwrap();
                let text = replace_block(&text, "\"etcd-ca\" = '''\n", &leaf_key);
                replace_block(&text, "\"etcd\" = '''\n", &fixture("openssl/leaf.pem"))
            },
            "imported CA `etcd`: the certificate is not a CA",
        ),
    ];
    for (name, text, message) in cases {
        std::fs::write(&secrets, &text).unwrap();
        let before = listing(dir.path());
        let out = bundle_again(&config, dir.path());
        let stderr = util::stderr(&out);
        assert_eq!(util::code(&out), 1, "{name}: {stderr}");
        assert!(
            stderr.contains(message),
            "{name}: expected {message:?} in\n{stderr}"
        );
        assert!(
            !stderr.contains("PRIVATE KEY") && !stderr.contains("MII"),
            "{name}: key material in\n{stderr}"
        );
        assert_eq!(listing(dir.path()), before, "{name}: files created");
        assert_eq!(
            std::fs::read_to_string(&secrets).unwrap(),
            text,
            "{name}: the secrets file was changed"
        );
    }
}

#[test]
fn symbolic_links_are_neither_read_nor_written_through() {
    let (dir, config, secrets) = cluster_with_secrets();
    let moved = dir.path().join("elsewhere.toml");
    std::fs::rename(&secrets, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &secrets).unwrap();
    let out = bundle_again(&config, dir.path());
    assert_eq!(util::code(&out), 2, "{}", util::stderr(&out));
    assert!(
        util::stderr(&out).contains("is a symbolic link"),
        "{}",
        util::stderr(&out)
    );
    std::fs::remove_file(&secrets).unwrap();
    std::fs::rename(&moved, &secrets).unwrap();

    let target = dir.path().join("target-of-link");
    std::fs::write(&target, "precious").unwrap();
    let link = dir.path().join("out.tar.gz");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    for force in [false, true] {
        let mut args = vec![
            "bundle",
            config.to_str().unwrap(),
            "-o",
            link.to_str().unwrap(),
        ];
        if force {
            args.push("--force");
        }
        let out = util::cpgen(&args);
        assert_eq!(util::code(&out), 2, "{}", util::stderr(&out));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
    }
}

#[test]
fn secrets_and_bundles_never_show_key_material() {
    let plan = Config::parse("x", &format!("[api]\nendpoint = \"127.0.1.80\"\n{THREE}"))
        .and_then(|c| c.validate())
        .unwrap()
        .plan;
    let secrets = util::fresh_secrets(&plan);
    let bundle = cpgen::bundle::Bundle::build(&plan, &secrets).unwrap();
    let set = cpgen::test_support::issue(&plan, &secrets).unwrap();
    for debug in [
        format!("{secrets:?}"),
        format!("{bundle:?}"),
        format!("{set:?}"),
        format!("{:?}", secrets.key("ca").unwrap()),
    ] {
        assert!(
            !debug.contains("PRIVATE KEY") && !debug.contains("MII") && !debug.contains("MIG"),
            "{debug}"
        );
    }
}

#[test]
fn key_files_are_private_from_the_moment_they_exist() {
    use std::os::unix::fs::PermissionsExt;
    // The archive holds every key, so it is 0600 as well.
    let (dir, _, secrets) = cluster_with_secrets();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.path().join("first.tar.gz")), 0o600);
    assert_eq!(mode(&secrets), 0o600);
}

/// Kills `cpgen bundle` at many points while it replaces an existing secrets file (new keys
/// for added masters) and an existing bundle: afterwards each is either the old file or a
/// complete new one, never a mix, and no key written before is lost or changed.
#[test]
fn interrupted_runs_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    let secrets = dir.path().join("c.secrets.toml");
    let archive = dir.path().join("b.tar.gz");
    let base = std::fs::read_to_string(util::root().join("examples/separate-cas.toml")).unwrap()
        + "[pki]\nkey_algorithm = \"rsa-3072\"\n";
    std::fs::write(&config, &base).unwrap();
    let out = util::cpgen(&[
        "bundle",
        config.to_str().unwrap(),
        "-o",
        archive.to_str().unwrap(),
    ]);
    assert_eq!(util::code(&out), 0, "{}", util::stderr(&out));
    let old_text = std::fs::read_to_string(&secrets).unwrap();
    let old = Secrets::parse(&old_text).unwrap();
    let old_archive = std::fs::read(&archive).unwrap();

    // Two more masters: four new RSA-3072 keys make the run long enough to interrupt.
    let grown = base + "[[masters]]\nname = \"kubem03\"\naddress = \"10.10.10.83\"\n[[masters]]\nname = \"kubem04\"\naddress = \"10.10.10.84\"\n";
    std::fs::write(&config, grown).unwrap();
    for delay_ms in [5u64, 60, 150, 300, 500, 800, 1200, 2000] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cpgen"))
            .args([
                "bundle",
                config.to_str().unwrap(),
                "-o",
                archive.to_str().unwrap(),
                "--force",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();

        let text = std::fs::read_to_string(&secrets).unwrap();
        let now = Secrets::parse(&text).unwrap_or_else(|e| {
            panic!("killed at {delay_ms} ms: the secrets file is damaged: {e}")
        });
        for id in [
            "ca",
            "etcd-ca",
            "apiserver/kubem00",
            "etcd-server/kubem02",
            "service-account",
        ] {
            assert_eq!(
                now.key_pem(id).unwrap(),
                old.key_pem(id).unwrap(),
                "killed at {delay_ms} ms: key {id} changed"
            );
        }
        let bytes = std::fs::read(&archive).unwrap();
        if bytes != old_archive {
            let mut findings = Vec::new();
            let tree = cpgen::test_support::read_archive(bytes.as_slice(), &mut findings);
            assert!(
                findings.is_empty() && tree.files.contains_key("manifest.json"),
                "killed at {delay_ms} ms: a damaged archive: {findings:?}"
            );
        }
    }
}

fn fixture(path: &str) -> String {
    std::fs::read_to_string(util::root().join("tests/fixtures").join(path)).unwrap()
}

/// The secrets `text` with the committed cfssl CA imported as the etcd CA, rendered.
fn with_imported_etcd_ca(text: &str) -> String {
    let mut secrets = Secrets::parse(text).unwrap();
    pki::import_ca(
        &mut secrets,
        Ca::Etcd,
        &fixture("cfssl/ca.pem"),
        &fixture("cfssl/ca-key.pem"),
        datetime!(2027-01-01 00:00:00 UTC),
        cpgen::pki::ImportMode::Replace,
    )
    .unwrap();
    secrets.render().unwrap().to_string()
}

/// `text` with the multi-line string after `marker` replaced by `with`.
fn replace_block(text: &str, marker: &str, with: &str) -> String {
    let start = text.find(marker).unwrap() + marker.len();
    let end = start + text[start..].find("'''").unwrap();
    format!("{}{}{}", &text[..start], with, &text[end..])
}

/// Runs `cpgen ARGS` in `dir`, killed after 30 s: a regression that blocks on a FIFO fails
/// instead of hanging the suite.
fn cpgen_bounded(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cpgen"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("cpgen {args:?} still running after 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_fifo_or_a_device_is_no_config() {
    let dir = tempfile::tempdir().unwrap();
    let made = |program: &str, args: &[&str]| {
        let status = Command::new(program)
            .args(args)
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "{program} {args:?}");
    };
    made("mkfifo", &["fifo.toml"]);
    // A zero device of our own, inside the scratch directory.
    made("mknod", &["zero.toml", "c", "1", "5"]);
    for name in ["fifo.toml", "zero.toml"] {
        let out = cpgen_bounded(dir.path(), &["check", name]);
        assert_eq!(util::code(&out), 2, "{name}: {}", util::stderr(&out));
        assert!(
            util::stderr(&out).contains("not a regular file"),
            "{name}: {}",
            util::stderr(&out)
        );
    }
}

#[test]
fn a_secrets_file_given_as_the_config_is_never_echoed() {
    let dir = util::dir_with_config("separate-cas");
    let out = util::cpgen_in(dir.path(), &["bundle", "cluster.toml", "-o", "b.tar.gz"]);
    assert_eq!(util::code(&out), 0, "{}", util::stderr(&out));
    let secrets = std::fs::read_to_string(dir.path().join("cluster.secrets.toml")).unwrap();
    let encryption_key = secrets
        .lines()
        .find_map(|l| l.strip_prefix("encryption_key = "))
        .unwrap()
        .trim_matches('"')
        .to_owned();
    for args in [
        vec!["check", "cluster.secrets.toml"],
        vec!["check", "--format", "json", "cluster.secrets.toml"],
        vec!["bundle", "cluster.secrets.toml", "-o", "x.tar.gz"],
    ] {
        let out = util::cpgen_in(dir.path(), &args);
        assert_eq!(util::code(&out), 1, "{args:?}");
        let shown = util::stdout(&out) + &util::stderr(&out);
        assert!(shown.contains("CP006"), "{args:?}: {shown}");
        assert!(!shown.contains(&encryption_key), "{args:?}: {shown}");
        assert!(!shown.contains("PRIVATE KEY"), "{args:?}: {shown}");
    }
    // A config with a pasted key in it is never quoted either.
    let key = secrets.split("'''").nth(1).unwrap();
    let body = key
        .lines()
        .find(|l| !l.is_empty() && !l.starts_with("-----"))
        .unwrap();
    std::fs::write(
        dir.path().join("pasted.toml"),
        format!("[api]\nendpoint = '''{key}'''\n"),
    )
    .unwrap();
    let out = util::cpgen_in(dir.path(), &["check", "pasted.toml"]);
    assert_eq!(util::code(&out), 1);
    assert!(!util::stderr(&out).contains(body), "{}", util::stderr(&out));
}
