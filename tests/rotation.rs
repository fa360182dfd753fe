//! Staged rotation (`cpgen rotate start|issue|finish`): with the real etcd, the etcd CA
//! rotates through its three stages while the members are rolled one at a time and the
//! clients of the previous and of the current stage keep writing through every member; for
//! the Kubernetes CA and the service-account key, openssl shows which generations each
//! trust file carries and which one signs at each stage. Out-of-order stages and skipped
//! roll-outs are refused, and verify knows a bundle in the middle of a rotation.

mod util;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use util::etcd::{etcdctl, Machines};

/// The masters' addresses: no other suite's.
const ADDRESSES: [&str; 3] = ["127.0.1.120", "127.0.1.121", "127.0.1.122"];
const LB_ADDRESS: &str = "127.0.1.123";
const MASTERS: [&str; 3] = ["kubem00", "kubem01", "kubem02"];

fn config((client, peer): (u16, u16), layout: &str) -> String {
    let mut text = format!(
        "[cluster]\nname = \"rotating\"\n\
         [api]\nendpoint = \"{LB_ADDRESS}\"\n\
         [[load_balancer.hosts]]\nname = \"lb\"\naddress = \"{LB_ADDRESS}\"\n\
         [etcd]\nclient_port = {client}\npeer_port = {peer}\n\
         [pki]\nkey_algorithm = \"ecdsa-p256\"\nlayout = \"{layout}\"\n"
    );
    for (name, address) in MASTERS.iter().zip(ADDRESSES) {
        text.push_str(&format!(
            "[[masters]]\nname = \"{name}\"\naddress = \"{address}\"\n"
        ));
    }
    text
}

/// The example with separate CAs and a worker: a bundle only read, never run, so its
/// addresses are the example's.
fn example_with_a_worker() -> String {
    util::example_text("separate-cas")
        + "\n[[workers]]\nname = \"worker0\"\naddress = \"10.10.10.90\"\n"
}

/// `cpgen ARGS` in `dir`, which must succeed.
fn cpgen_ok(dir: &Path, args: &[&str]) -> Output {
    let out = util::cpgen_in(dir, args);
    assert_eq!(
        util::code(&out),
        0,
        "cpgen {args:?}: {}",
        util::stderr(&out)
    );
    out
}

/// Runs `stage` of the rotation of each of `which`, then bundles `out` with --previous
/// `previous`.
fn stage(dir: &Path, stage: &str, which: &[&str], previous: &str, out: &str) -> PathBuf {
    for what in which {
        cpgen_ok(dir, &["rotate", stage, "--which", what, "c.toml"]);
    }
    cpgen_ok(
        dir,
        &["bundle", "c.toml", "--out-dir", out, "--previous", previous],
    );
    // A bundle in the middle of a rotation verifies, on its own and rebuilt from the
    // secrets file of its stage.
    cpgen_ok(dir, &["verify", out]);
    cpgen_ok(
        dir,
        &[
            "verify",
            out,
            "--config",
            "c.toml",
            "--secrets",
            "c.secrets.toml",
        ],
    );
    dir.join(out)
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("cannot run openssl: install the Debian package openssl")
}

/// The PEM blocks of a file, each with its BEGIN and END lines.
fn blocks(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut found = Vec::new();
    let mut block: Option<String> = None;
    for line in text.lines() {
        if line.starts_with("-----BEGIN ") {
            block = Some(String::new());
        }
        if let Some(open) = block.as_mut() {
            open.push_str(line);
            open.push('\n');
        }
        if line.starts_with("-----END ") {
            found.extend(block.take());
        }
    }
    found
}

/// The certificate-authority-data of a kubeconfig, decoded.
fn kubeconfig_ca(path: &Path) -> String {
    use base64::Engine;
    let text = std::fs::read_to_string(path).unwrap();
    let data = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("certificate-authority-data: "))
        .unwrap_or_else(|| panic!("{} has no CA data", path.display()));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim().trim_matches('"'))
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

/// Whether `cert` chains to the certificates of `ca_file` alone (openssl exits 2 otherwise).
fn verifies(ca_file: &Path, cert: &Path) -> bool {
    let out = openssl(&[
        "verify",
        "-CAfile",
        ca_file.to_str().unwrap(),
        cert.to_str().unwrap(),
    ]);
    out.status.success()
}

fn public_key_of_private(key: &Path) -> String {
    let out = openssl(&["pkey", "-in", key.to_str().unwrap(), "-pubout"]);
    assert!(out.status.success(), "{}", util::stderr(&out));
    util::stdout(&out)
}

#[test]
fn the_kubernetes_ca_and_the_service_account_key_are_trusted_twice_exactly_during_start_and_issue()
{
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    std::fs::write(work.join("c.toml"), example_with_a_worker()).unwrap();
    cpgen_ok(work, &["bundle", "c.toml", "--out-dir", "v0"]);
    let which = ["kubernetes", "service-account"];
    let mut bundles = vec![work.join("v0")];
    for (n, name) in ["start", "issue", "finish"].into_iter().enumerate() {
        let previous = format!("v{n}");
        let out = format!("v{}", n + 1);
        bundles.push(stage(work, name, &which, &previous, &out));
    }
    let pki =
        |bundle: &Path, file: &str| bundle.join("hosts/kubem00/etc/kubernetes/pki").join(file);
    let old_ca = pki(&bundles[0], "ca.pem");
    let new_ca = pki(&bundles[3], "ca.pem");
    // Two generations in every trust file exactly during start and issue.
    for (bundle, generations) in bundles.iter().zip([1, 2, 2, 1]) {
        let at = bundle.display();
        for trust in [
            pki(bundle, "ca.pem"),
            bundle.join("hosts/worker0/etc/kubernetes/pki/ca.pem"),
        ] {
            assert_eq!(blocks(&trust).len(), generations, "{}", trust.display());
        }
        // The admin's kubeconfig embeds its trust; the hosts' kubeconfigs name `ca.pem`.
        let ca = kubeconfig_ca(&bundle.join("admin/admin.kubeconfig"));
        assert_eq!(
            ca.matches("BEGIN CERTIFICATE").count(),
            generations,
            "{at}: {ca}"
        );
        let kubelet =
            std::fs::read_to_string(bundle.join("hosts/worker0/var/lib/kubelet/kubeconfig"))
                .unwrap();
        assert!(
            kubelet.contains("certificate-authority: \"/etc/kubernetes/pki/ca.pem\""),
            "{kubelet}"
        );
        assert_eq!(blocks(&pki(bundle, "sa.pub")).len(), generations, "{at}");
        // The signing CA alone, for kube-controller-manager's signer, and the key that goes
        // with it; the service-account key that signs is the first that checks.
        assert_eq!(blocks(&pki(bundle, "ca-signing.pem")).len(), 1, "{at}");
        assert_eq!(
            blocks(&pki(bundle, "ca-signing.pem"))[0],
            blocks(&pki(bundle, "ca.pem"))[0],
            "{at}"
        );
        assert_eq!(
            public_key_of_private(&pki(bundle, "sa.key")),
            blocks(&pki(bundle, "sa.pub"))[0],
            "{at}"
        );
    }
    // The bundle's README says where each rotation stands and what must come first.
    let readme = |bundle: &Path| std::fs::read_to_string(bundle.join("README.md")).unwrap();
    assert!(!readme(&bundles[0]).contains("## Rotation in progress"));
    assert!(
        readme(&bundles[1]).contains("- **the kubernetes CA: `start`.**")
            && readme(&bundles[1]).contains("`cpgen rotate issue --which service-account"),
        "{}",
        readme(&bundles[1])
    );
    assert!(
        readme(&bundles[2]).contains("webhook `caBundle`s")
            && readme(&bundles[2]).contains("wait at least 24 hours"),
        "{}",
        readme(&bundles[2])
    );
    assert!(!readme(&bundles[3]).contains("## Rotation in progress"));
    // Leaves stay with the old CA at start and move to the new one at issue.
    assert!(verifies(&old_ca, &pki(&bundles[1], "apiserver.pem")));
    assert!(!verifies(&new_ca, &pki(&bundles[1], "apiserver.pem")));
    assert!(verifies(&new_ca, &pki(&bundles[2], "apiserver.pem")));
    // The service-account signing key changes at issue, and only then.
    let sa_key = |bundle: &Path| std::fs::read(pki(bundle, "sa.key")).unwrap();
    assert_eq!(sa_key(&bundles[0]), sa_key(&bundles[1]));
    assert_ne!(sa_key(&bundles[1]), sa_key(&bundles[2]));
    assert_eq!(sa_key(&bundles[2]), sa_key(&bundles[3]));
    // After finish every leaf chains to the new CA and nothing trusts the old one.
    let finished = &bundles[3];
    let old_body: String = blocks(&old_ca)[0]
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let mut leaves = 0;
    for entry in walk(finished) {
        let name = entry.file_name().unwrap().to_str().unwrap().to_owned();
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        assert!(
            !text.contains(&old_body[..64]),
            "{} still carries the old CA",
            entry.display()
        );
        // The Kubernetes CA's leaves (the front-proxy CA has its own, not rotated here).
        let leaf = name.ends_with(".pem")
            && !name.ends_with("-key.pem")
            && !name.contains("ca")
            && !name.starts_with("front-proxy")
            && entry.to_str().unwrap().contains("/pki/")
            && !entry.to_str().unwrap().contains("/etc/etcd/");
        if leaf {
            assert!(verifies(&new_ca, &entry), "{}", entry.display());
            assert!(!verifies(&old_ca, &entry), "{}", entry.display());
            leaves += 1;
        }
    }
    // apiserver, kubelet-client, controller-manager and scheduler on three masters; the
    // worker's kubelet client and serving certificates and kube-proxy's.
    assert_eq!(leaves, 4 * 3 + 3);
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

#[test]
fn stages_out_of_order_and_skipped_roll_outs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    std::fs::write(work.join("c.toml"), config((2379, 2380), "separate-cas")).unwrap();
    cpgen_ok(work, &["bundle", "c.toml", "--out-dir", "v0"]);
    let secrets = || std::fs::read(work.join("c.secrets.toml")).unwrap();
    let refused = |args: &[&str], words: &str| {
        let before = secrets();
        let out = util::cpgen_in(work, args);
        assert_eq!(util::code(&out), 1, "{args:?}: {}", util::stderr(&out));
        assert!(util::stderr(&out).contains(words), "{}", util::stderr(&out));
        assert_eq!(secrets(), before, "{args:?} wrote the secrets file");
    };
    refused(
        &["rotate", "issue", "--which", "etcd", "c.toml"],
        "no rotation of etcd runs; the next stage is `cpgen rotate start --which etcd`",
    );
    refused(
        &["rotate", "finish", "--which", "service-account", "c.toml"],
        "the next stage is `cpgen rotate start --which service-account`",
    );
    // A host added to the config since the last bundle has no keys yet: not the rotation's
    // business, the next bundle makes them.
    let grown = config((2379, 2380), "separate-cas")
        + "[[workers]]\nname = \"worker9\"\naddress = \"10.10.10.99\"\n";
    std::fs::write(work.join("c.toml"), grown).unwrap();
    cpgen_ok(work, &["rotate", "start", "--which", "etcd", "c.toml"]);
    refused(
        &["rotate", "start", "--which", "etcd", "c.toml"],
        "stands at `start`; the next stage is `cpgen rotate issue --which etcd`",
    );
    refused(
        &["rotate", "finish", "--which", "etcd", "c.toml"],
        "the next stage is `cpgen rotate issue --which etcd`",
    );
    let status = cpgen_ok(work, &["rotate", "status", "c.toml"]);
    let text = util::stdout(&status);
    assert!(
        text.contains("etcd             at `start` (next: issue)"),
        "{text}"
    );
    assert!(text.contains("kubernetes       no rotation"), "{text}");
    // Issuing before the start's bundle ran: the running members would not trust the
    // new certificates.
    cpgen_ok(work, &["rotate", "issue", "--which", "etcd", "c.toml"]);
    let out = util::cpgen_in(
        work,
        &["bundle", "c.toml", "--out-dir", "x", "--previous", "v0"],
    );
    assert_eq!(util::code(&out), 1, "{}", util::stderr(&out));
    assert!(
        util::stderr(&out).contains("roll out the bundle of the rotation's `start` first"),
        "{}",
        util::stderr(&out)
    );
    assert!(!work.join("x").exists());
    // In shared-ca, the etcd CA is the Kubernetes CA.
    std::fs::write(work.join("s.toml"), config((2379, 2380), "shared-ca")).unwrap();
    cpgen_ok(work, &["bundle", "s.toml", "--out-dir", "s0"]);
    let out = util::cpgen_in(work, &["rotate", "start", "--which", "etcd", "s.toml"]);
    assert_eq!(util::code(&out), 1, "{}", util::stderr(&out));
    assert!(
        util::stderr(&out).contains("rotate kubernetes"),
        "{}",
        util::stderr(&out)
    );
}

#[test]
fn verify_expects_two_cas_exactly_where_the_manifest_records_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    std::fs::write(work.join("c.toml"), config((2379, 2380), "separate-cas")).unwrap();
    cpgen_ok(work, &["bundle", "c.toml", "--out-dir", "v0"]);
    let v1 = stage(work, "start", &["etcd"], "v0", "v1");
    let manifest = v1.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(text.contains("\"etcd\": \"start\""), "{text}");
    // Standalone, verify says that only the secrets prove the second CA.
    let out = util::cpgen_in(work, &["verify", "v1"]);
    assert!(
        util::stderr(&out).contains("note: manifest.json says a rotation of etcd is in progress"),
        "{}",
        util::stderr(&out)
    );
    // The second generation's validity counts as the first's does.
    let out = util::cpgen_in(work, &["verify", "v1", "--at", "2200-01-01T00:00:00Z"]);
    assert!(
        util::stdout(&out).contains("admin/etcd-ca.pem#2: expired at"),
        "{}",
        util::stdout(&out)
    );
    // kube-controller-manager's signer takes one certificate, rotation or not.
    let signing = v1.join("hosts/kubem00/etc/kubernetes/pki/ca-signing.pem");
    let signing_text = std::fs::read_to_string(&signing).unwrap();
    let ca_text = std::fs::read_to_string(v1.join("hosts/kubem00/etc/etcd/pki/ca.pem")).unwrap();
    std::fs::write(&signing, format!("{signing_text}{ca_text}")).unwrap();
    util::redo_manifest(&v1);
    let out = util::cpgen_in(work, &["verify", "v1"]);
    assert_eq!(util::code(&out), 1, "{}", util::stdout(&out));
    assert!(
        util::stdout(&out).contains("ca-signing.pem: holds 3 certificates: kube-controller-manager's CSR signer takes exactly one"),
        "{}",
        util::stdout(&out)
    );
    std::fs::write(&signing, signing_text).unwrap();
    util::redo_manifest(&v1);
    // Without the record, the second CA is one nobody expects.
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json.as_object_mut().unwrap().remove("rotations");
    std::fs::write(&manifest, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    let out = util::cpgen_in(work, &["verify", "v1"]);
    assert_eq!(util::code(&out), 1, "{}", util::stdout(&out));
    assert!(
        util::stdout(&out).contains("error[CP816]: admin/etcd-ca.pem: certificate 2"),
        "{}",
        util::stdout(&out)
    );
    // A record without the second CA in the trust files.
    let v0_manifest = work.join("v0/manifest.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&v0_manifest).unwrap()).unwrap();
    json["rotations"] = serde_json::json!({"etcd": "issue"});
    std::fs::write(&v0_manifest, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    let out = util::cpgen_in(work, &["verify", "v0"]);
    assert_eq!(util::code(&out), 1, "{}", util::stdout(&out));
    assert!(
        util::stdout(&out).contains(
            "error[CP810]: manifest.json: it records the rotation of the etcd CA at `issue`"
        ),
        "{}",
        util::stdout(&out)
    );
}

// ---- the etcd CA, live ----

/// A write through each member alone, with the client identity and trust of `bundle`
/// (so also through the member's peers: a follower forwards to the leader).
fn writes_through_every_member(machines: &Machines, bundle: &Path, client: u16, key: &str) {
    for address in ADDRESSES {
        let endpoint = vec![format!("https://{address}:{client}")];
        let start = Instant::now();
        loop {
            match etcdctl(bundle, &endpoint, &["put", key, "written"]) {
                Ok(_) => break,
                Err(e) if start.elapsed() > Duration::from_secs(30) => panic!(
                    "{key} through {address} with {}'s client: {e}\n{}",
                    bundle.display(),
                    machines.logs()
                ),
                Err(_) => std::thread::sleep(Duration::from_millis(300)),
            }
        }
    }
}

#[test]
fn the_etcd_ca_rotates_while_clients_of_both_stages_write_through_every_member() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let ports = util::etcd::free_ports(&ADDRESSES, 60);
    std::fs::write(work.join("c.toml"), config(ports, "separate-cas")).unwrap();
    cpgen_ok(work, &["bundle", "c.toml", "--out-dir", "v0"]);
    let mut machines = Machines::new(work);
    let v0 = work.join("v0");
    for host in MASTERS {
        machines.install(&v0, host);
        machines.start_etcd(host);
    }
    writes_through_every_member(&machines, &v0, ports.0, "before");
    let mut previous = v0.clone();
    for (n, name) in ["start", "issue", "finish"].into_iter().enumerate() {
        let current = stage(
            work,
            name,
            &["etcd"],
            &format!("v{n}"),
            &format!("v{}", n + 1),
        );
        // One member at a time, as the runbook rolls them.
        for host in MASTERS {
            machines.stop_etcd(host);
            machines.install(&current, host);
            machines.start_etcd(host);
            for client in [&previous, &current] {
                let key = format!("{name}-{host}-{}", client.display().to_string().len());
                writes_through_every_member(&machines, client, ports.0, &key);
            }
        }
        previous = current;
    }
    // The data written before the rotation is still there.
    let endpoints: Vec<String> = ADDRESSES
        .iter()
        .map(|a| format!("https://{a}:{}", ports.0))
        .collect();
    let got = etcdctl(
        &previous,
        &endpoints,
        &["get", "before", "--print-value-only"],
    )
    .unwrap();
    assert_eq!(got.trim(), "written");
    // After finish, a client certificate of the old CA is refused (the server is trusted
    // through the new CA, so only the client certificate can be the reason).
    let old_client = work.join("old-client");
    std::fs::create_dir_all(old_client.join("admin")).unwrap();
    for (from, file) in [
        (&previous, "etcd-ca.pem"),
        (&v0, "etcd-healthcheck-client.pem"),
        (&v0, "etcd-healthcheck-client-key.pem"),
    ] {
        std::fs::copy(
            from.join("admin").join(file),
            old_client.join("admin").join(file),
        )
        .unwrap();
    }
    let refused = etcdctl(&old_client, &endpoints[..1], &["put", "after", "x"]);
    assert!(refused.is_err(), "{refused:?}");
    // ... while the same call with the finished bundle's client works.
    etcdctl(&previous, &endpoints[..1], &["put", "after", "x"]).unwrap();
}

/// The subject of the certificate in `path` (the first), as openssl prints it.
fn subject(path: &Path) -> String {
    let out = openssl(&["x509", "-noout", "-subject", "-in", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", util::stderr(&out));
    util::stdout(&out).trim().to_owned()
}

#[test]
fn an_imported_ca_rotates_in_and_a_generated_one_rotates_it_out() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    std::fs::write(work.join("c.toml"), example_with_a_worker()).unwrap();
    cpgen_ok(work, &["bundle", "c.toml", "--out-dir", "v0"]);
    util::openssl_ca(work, "new", "imported-front-proxy", 3650);
    // A key the secrets file holds is no new CA: the CA's own, or another CA's (etcd would
    // then trust what the Kubernetes CA signs).
    let pki = work.join("v0/hosts/kubem00/etc/kubernetes/pki");
    let (k8s_cert, k8s_key) = (pki.join("ca.pem"), pki.join("ca-key.pem"));
    for which in ["kubernetes", "etcd"] {
        let before = std::fs::read(work.join("c.secrets.toml")).unwrap();
        let out = util::cpgen_in(
            work,
            &[
                "rotate",
                "start",
                "--which",
                which,
                "c.toml",
                "--cert",
                k8s_cert.to_str().unwrap(),
                "--key",
                k8s_key.to_str().unwrap(),
            ],
        );
        assert_eq!(util::code(&out), 1, "{which}: {}", util::stderr(&out));
        assert!(
            util::stderr(&out).contains("is the key of `ca` in the secrets file"),
            "{}",
            util::stderr(&out)
        );
        assert_eq!(std::fs::read(work.join("c.secrets.toml")).unwrap(), before);
    }
    // Only a CA's `start` takes a CA to import.
    let out = util::cpgen_in(
        work,
        &[
            "rotate",
            "start",
            "--which",
            "service-account",
            "c.toml",
            "--cert",
            "new.pem",
            "--key",
            "new-key.pem",
        ],
    );
    assert_eq!(util::code(&out), 1, "{}", util::stderr(&out));
    cpgen_ok(
        work,
        &[
            "rotate",
            "start",
            "--which",
            "front-proxy",
            "c.toml",
            "--cert",
            "new.pem",
            "--key",
            "new-key.pem",
        ],
    );
    cpgen_ok(
        work,
        &["bundle", "c.toml", "--out-dir", "v1", "--previous", "v0"],
    );
    let trust = |bundle: &str| {
        work.join(bundle)
            .join("hosts/kubem00/etc/kubernetes/pki/front-proxy-ca.pem")
    };
    let client = |bundle: &str| {
        work.join(bundle)
            .join("hosts/kubem00/etc/kubernetes/pki/front-proxy-client.pem")
    };
    let imported = blocks(&work.join("new.pem"));
    assert_eq!(blocks(&trust("v1"))[1..], imported[..]);
    // `certs` lists both generations of the trust file.
    let certs = util::stdout(&cpgen_ok(work, &["certs", "v1"]));
    assert!(
        certs.contains("front-proxy-ca.pem#2") && certs.contains("imported-front-proxy"),
        "{certs}"
    );
    let rest = [("issue", "v2", "v1"), ("finish", "v3", "v2")];
    for (name, out, previous) in rest {
        cpgen_ok(work, &["rotate", name, "--which", "front-proxy", "c.toml"]);
        cpgen_ok(
            work,
            &["bundle", "c.toml", "--out-dir", out, "--previous", previous],
        );
    }
    assert!(verifies(&work.join("new.pem"), &client("v2")));
    assert_eq!(blocks(&trust("v3")), imported);
    // And out again, to a CA cpgen makes.
    let rest = [
        ("start", "v4", "v3"),
        ("issue", "v5", "v4"),
        ("finish", "v6", "v5"),
    ];
    for (name, out, previous) in rest {
        cpgen_ok(work, &["rotate", name, "--which", "front-proxy", "c.toml"]);
        cpgen_ok(
            work,
            &["bundle", "c.toml", "--out-dir", out, "--previous", previous],
        );
    }
    assert_eq!(blocks(&trust("v6")).len(), 1);
    assert_eq!(subject(&trust("v6")), "subject=CN = front-proxy-ca");
    assert!(verifies(&trust("v6"), &client("v6")));
    assert!(!verifies(&work.join("new.pem"), &client("v6")));
    cpgen_ok(
        work,
        &[
            "verify",
            "v6",
            "--config",
            "c.toml",
            "--secrets",
            "c.secrets.toml",
        ],
    );
}

#[test]
fn a_rotation_removes_the_temporary_secrets_an_interrupted_run_left() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    std::fs::write(work.join("c.toml"), config((2379, 2380), "separate-cas")).unwrap();
    cpgen_ok(work, &["bundle", "c.toml", "--out-dir", "v0"]);
    // What a killed `rotate` leaves: a temporary copy of the secrets, every key in it.
    let stale = work.join(".cpgen-tmp-Ab3dEf6hIj9L");
    std::fs::copy(work.join("c.secrets.toml"), &stale).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let out = cpgen_ok(work, &["rotate", "start", "--which", "etcd", "c.toml"]);
    assert!(
        util::stderr(&out).contains("left by an interrupted cpgen run"),
        "{}",
        util::stderr(&out)
    );
    assert!(!stale.exists());
}
