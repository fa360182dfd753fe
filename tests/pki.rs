//! The PKI checked from outside: x509-parser reads every certificate against the §5 table,
//! openssl verifies every chain, purpose and dialled name, and issuing is reproducible.

mod util;

use std::path::Path;
use std::process::Command;

use ::time::macros::datetime;
use ::time::OffsetDateTime;
use cpgen::pki::{self, Ca, FillOptions, ImportProblem, Secrets};
use cpgen::test_support::{CertSet, Usage};
use cpgen::test_support::{PkiLayout, ServerRole};
use cpgen::types::San;
use cpgen::{Config, Error, Plan};
use x509_parser::prelude::*;

const ISSUED_AT: OffsetDateTime = datetime!(2026-01-01 00:00:00 UTC);
/// After the committed fixture CAs were made (2026-11-26), before they expire (2126).
const IMPORTED_AT: OffsetDateTime = datetime!(2027-01-01 00:00:00 UTC);

fn plan_of(path: &str) -> Plan {
    Config::from_path(util::root().join(path).to_str().unwrap().into())
        .and_then(|c| c.validate())
        .unwrap()
        .plan
}

use util::plan_from;

fn filled(plan: &Plan) -> Secrets {
    let mut secrets = Secrets::new(ISSUED_AT).unwrap();
    secrets
        .fill(plan, &cpgen::pki::FillOptions::default())
        .unwrap();
    secrets
}

fn der(pem: &str) -> Vec<u8> {
    ::pem::parse(pem).unwrap().into_contents()
}

fn openssl(args: &[&str]) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run openssl ({e}); install the Debian package `openssl`")
        })
}

/// Writes the CA and leaf PEMs into `dir` and runs `openssl verify` at a time inside the
/// validity window.
struct Verifier {
    dir: tempfile::TempDir,
    attime: String,
}

impl Verifier {
    fn new(set: &CertSet, issued_at: OffsetDateTime) -> Verifier {
        let dir = tempfile::tempdir().unwrap();
        for ca in &set.cas {
            std::fs::write(dir.path().join(format!("{}.pem", ca.ca.id())), &ca.cert_pem).unwrap();
        }
        for leaf in &set.leaves {
            std::fs::write(
                dir.path()
                    .join(format!("{}.pem", leaf.identity.id.replace('/', "_"))),
                &leaf.cert_pem,
            )
            .unwrap();
        }
        let attime = (issued_at.unix_timestamp() + 3600).to_string();
        Verifier { dir, attime }
    }

    fn verify(
        &self,
        ca: Ca,
        leaf_id: &str,
        purpose: &str,
        check: Option<(&str, String)>,
    ) -> (bool, String) {
        let ca_file = self.dir.path().join(format!("{}.pem", ca.id()));
        let leaf_file = self
            .dir
            .path()
            .join(format!("{}.pem", leaf_id.replace('/', "_")));
        let mut args = vec![
            "verify".to_owned(),
            "-CAfile".to_owned(),
            ca_file.to_str().unwrap().to_owned(),
            "-purpose".to_owned(),
            purpose.to_owned(),
            "-attime".to_owned(),
            self.attime.clone(),
        ];
        if let Some((flag, value)) = check {
            args.push(flag.to_owned());
            args.push(value);
        }
        args.push(leaf_file.to_str().unwrap().to_owned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = openssl(&args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

fn target_check(target: &San) -> (&'static str, String) {
    match target {
        San::Ip(ip) => ("-verify_ip", ip.to_string()),
        San::Dns(name) => ("-verify_hostname", name.to_string()),
    }
}

/// Every leaf verifies against its CA with the purpose that fits its use, and every name
/// and address a client dials verifies against the server certificate it reaches.
fn assert_openssl_accepts(plan: &Plan) {
    let secrets = filled(plan);
    let set = cpgen::test_support::issue(plan, &secrets).unwrap();
    let verifier = Verifier::new(&set, secrets.issued_at());
    for leaf in &set.leaves {
        let ca = leaf
            .identity
            .signer
            .effective(cpgen::test_support::pki_layout(plan));
        let purposes: &[&str] = match leaf.identity.usage {
            Usage::Server => &["sslserver"],
            Usage::Client => &["sslclient"],
            Usage::ServerAndClient => &["sslserver", "sslclient"],
        };
        for purpose in purposes {
            let (ok, text) = verifier.verify(ca, &leaf.identity.id, purpose, None);
            assert!(ok, "{} as {purpose}: {text}", leaf.identity.id);
        }
        let wrong = if leaf.identity.usage == Usage::Client {
            "sslserver"
        } else {
            "sslclient"
        };
        if leaf.identity.usage != Usage::ServerAndClient {
            let (ok, _) = verifier.verify(ca, &leaf.identity.id, wrong, None);
            assert!(!ok, "{} must not verify as {wrong}", leaf.identity.id);
        }
    }
    let mut checked = 0;
    for dial in cpgen::test_support::dials(plan) {
        for (i, master) in plan.masters().iter().enumerate() {
            if dial.master.is_some_and(|m| m != i) {
                continue;
            }
            let etcd_ca = Ca::Etcd.effective(cpgen::test_support::pki_layout(plan));
            let ca = match dial.role {
                ServerRole::Apiserver => Ca::Kubernetes,
                _ => etcd_ca,
            };
            let id = format!("{}/{}", dial.role.identity(), master.name());
            let (ok, text) =
                verifier.verify(ca, &id, "sslserver", Some(target_check(&dial.target)));
            assert!(
                ok,
                "{} dials {} but {id} fails: {text}",
                dial.client, dial.target
            );
            checked += 1;
        }
    }
    assert!(checked > 10, "only {checked} dials checked");
    // The check can fail: an address no client dials is refused.
    let (ok, _) = verifier.verify(
        Ca::Kubernetes,
        &format!("apiserver/{}", plan.masters()[0].name()),
        "sslserver",
        Some(("-verify_ip", "192.0.2.99".to_owned())),
    );
    assert!(
        !ok,
        "openssl accepted an address that is not in the certificate"
    );
}

#[test]
fn openssl_verifies_the_guides_cluster() {
    assert_openssl_accepts(&plan_of("examples/seed-ha.toml"));
}

#[test]
fn openssl_verifies_separate_cas() {
    let plan = plan_of("examples/separate-cas.toml");
    assert_eq!(
        cpgen::test_support::pki_layout(&plan),
        PkiLayout::SeparateCas
    );
    assert_openssl_accepts(&plan);
    // In separate-cas, etcd's certificates do not chain to the Kubernetes CA.
    let secrets = filled(&plan);
    let set = cpgen::test_support::issue(&plan, &secrets).unwrap();
    let verifier = Verifier::new(&set, secrets.issued_at());
    let (ok, _) = verifier.verify(Ca::Kubernetes, "etcd-client", "sslclient", None);
    assert!(!ok, "etcd-client verified against the Kubernetes CA");
}

#[test]
fn openssl_verifies_the_vip_and_every_master_in_on_masters_mode() {
    assert_openssl_accepts(&plan_of("examples/on-masters-vip.toml"));
}

#[test]
fn openssl_verifies_ipv6() {
    assert_openssl_accepts(&plan_of("examples/ipv6.toml"));
}

fn parse(pem: &str) -> (Vec<u8>, String) {
    (der(pem), pem.to_owned())
}

/// Every row of the PKI table (README), read back through x509-parser.
#[test]
fn every_identity_matches_the_pki_table() {
    let plan = plan_of("examples/separate-cas.toml");
    let secrets = filled(&plan);
    let set = cpgen::test_support::issue(&plan, &secrets).unwrap();
    assert_eq!(set.cas.len(), 3);

    let mut ca_skis = std::collections::HashMap::new();
    for (ca, cn) in [
        (Ca::Kubernetes, "kubernetes"),
        (Ca::Etcd, "etcd-ca"),
        (Ca::FrontProxy, "front-proxy-ca"),
    ] {
        let (bytes, _) = parse(&set.ca(ca).unwrap().cert_pem);
        let (_, cert) = X509Certificate::from_der(&bytes).unwrap();
        assert_eq!(common_name(cert.subject()), cn);
        assert_eq!(cert.subject(), cert.issuer(), "{cn} is self-signed");
        let bc = cert.basic_constraints().unwrap().unwrap();
        assert!(bc.critical && bc.value.ca, "{cn}: CA, critical");
        assert_eq!(bc.value.path_len_constraint, Some(0), "{cn}: pathlen 0");
        let ku = cert.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.crl_sign());
        let ski = subject_key_id(&cert).expect("CA has a subject key identifier");
        ca_skis.insert(ca, (ski, cert.subject().to_string()));
        assert_eq!(
            cert.validity().not_before.to_datetime(),
            ISSUED_AT - cpgen::test_support::BACKDATE
        );
        assert_eq!(
            cert.validity().not_after.to_datetime(),
            ISSUED_AT + ::time::Duration::days(3650)
        );
    }

    type Row = (
        &'static str,
        &'static str,
        Option<&'static str>,
        Ca,
        bool,
        bool,
    );
    let expected: &[Row] = &[
        // id, CN, O, signer, serverAuth, clientAuth
        ("etcd-server/kubem00", "kubem00", None, Ca::Etcd, true, true),
        ("etcd-peer/kubem00", "kubem00", None, Ca::Etcd, true, true),
        (
            "etcd-client",
            "kube-apiserver-etcd-client",
            None,
            Ca::Etcd,
            false,
            true,
        ),
        (
            "apiserver/kubem01",
            "kube-apiserver",
            None,
            Ca::Kubernetes,
            true,
            false,
        ),
        (
            "kubelet-client",
            "kube-apiserver-kubelet-client",
            None,
            Ca::Kubernetes,
            false,
            true,
        ),
        (
            "front-proxy-client",
            "front-proxy-client",
            None,
            Ca::FrontProxy,
            false,
            true,
        ),
        (
            "controller-manager",
            "system:kube-controller-manager",
            None,
            Ca::Kubernetes,
            false,
            true,
        ),
        (
            "scheduler",
            "system:kube-scheduler",
            None,
            Ca::Kubernetes,
            false,
            true,
        ),
        (
            "admin",
            "admin",
            Some("cpgen:cluster-admins"),
            Ca::Kubernetes,
            false,
            true,
        ),
        (
            "super-admin",
            "super-admin",
            Some("system:masters"),
            Ca::Kubernetes,
            false,
            true,
        ),
        (
            "etcd-healthcheck-client",
            "kube-etcd-healthcheck-client",
            None,
            Ca::Etcd,
            false,
            true,
        ),
    ];
    let mut serials = std::collections::HashSet::new();
    for (id, cn, o, signer, server, client) in expected {
        let leaf = set.leaf(id).unwrap_or_else(|| panic!("no {id}"));
        let (bytes, _) = parse(&leaf.cert_pem);
        let (_, cert) = X509Certificate::from_der(&bytes).unwrap();
        assert_eq!(common_name(cert.subject()), *cn, "{id}");
        let org = cert
            .subject()
            .iter_organization()
            .next()
            .map(|o| o.as_str().unwrap().to_owned());
        assert_eq!(org.as_deref(), *o, "{id}");
        let (aki_expected, issuer_name) = &ca_skis[signer];
        assert_eq!(&cert.issuer().to_string(), issuer_name, "{id} issuer");
        assert_eq!(
            authority_key_id(&cert).as_ref(),
            Some(aki_expected),
            "{id} AKI is its CA's SKI"
        );
        assert!(subject_key_id(&cert).is_some(), "{id} has an SKI");
        let bc = cert.basic_constraints().unwrap().unwrap().value;
        assert!(!bc.ca, "{id} is not a CA");
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert_eq!(
            (eku.server_auth, eku.client_auth),
            (*server, *client),
            "{id} EKU"
        );
        let ku = cert.key_usage().unwrap().unwrap().value;
        assert!(ku.digital_signature() && !ku.key_cert_sign(), "{id} KU");
        let sans: Vec<String> = cert
            .subject_alternative_name()
            .unwrap()
            .map(|ext| ext.value.general_names.iter().map(general_name).collect())
            .unwrap_or_default();
        let wanted: Vec<String> = leaf.identity.sans.iter().map(San::to_string).collect();
        assert_eq!(sans, wanted, "{id} SANs");
        let serial = cert.raw_serial();
        assert!(
            serial.len() <= 20 && serial[0] & 0x80 == 0,
            "{id} serial positive, at most 20 bytes"
        );
        assert!(serials.insert(serial.to_vec()), "{id} serial is unique");
        assert_eq!(
            cert.validity().not_before.to_datetime(),
            ISSUED_AT - cpgen::test_support::BACKDATE
        );
        assert_eq!(
            cert.validity().not_after.to_datetime(),
            ISSUED_AT + ::time::Duration::days(365)
        );
    }
    let etcd = set.leaf("etcd-server/kubem00").unwrap();
    let wanted = ["kubem00", "localhost", "10.10.10.80", "127.0.0.1", "::1"];
    assert_eq!(
        etcd.identity
            .sans
            .iter()
            .map(San::to_string)
            .collect::<Vec<_>>(),
        wanted
    );
    // The service-account key pair is a matching pair.
    let private = cpgen::test_support::PrivateKey::from_pem(&set.service_account_key_pem).unwrap();
    assert_eq!(private.public_key_pem(), set.service_account_public_pem);
}

fn common_name(name: &X509Name<'_>) -> String {
    name.iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

fn subject_key_id(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        })
}

fn authority_key_id(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })
}

fn general_name(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(dns) => dns.to_string(),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*bytes).unwrap()).to_string(),
            16 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*bytes).unwrap()).to_string(),
            _ => panic!("bad IP SAN"),
        },
        other => panic!("unexpected SAN {other:?}"),
    }
}

fn one_master(algorithm: &str, layout: &str) -> Plan {
    plan_from(&format!(
        "[pki]\nkey_algorithm = \"{algorithm}\"\nservice_account_key_algorithm = \"ecdsa-p256\"\nlayout = \"{layout}\"\n\
         [api]\nendpoint = \"127.0.1.80\"\n[[masters]]\nname = \"m0\"\naddress = \"127.0.1.80\"\n"
    ))
}

fn pems(set: &CertSet) -> Vec<String> {
    set.cas
        .iter()
        .map(|c| c.cert_pem.clone())
        .chain(set.leaves.iter().map(|l| l.cert_pem.clone()))
        .collect()
}

/// Same plan and secrets, same bytes — for every algorithm, also after the secrets went
/// through their file format.
#[test]
fn issuing_is_reproducible_for_every_algorithm() {
    for (name, _) in cpgen::types::KeyAlgorithm::ALL {
        let plan = one_master(name, "shared-ca");
        let secrets = filled(&plan);
        let first = pems(&cpgen::test_support::issue(&plan, &secrets).unwrap());
        let second = pems(&cpgen::test_support::issue(&plan, &secrets).unwrap());
        assert_eq!(first, second, "{name}");
        let reloaded = Secrets::parse(&secrets.render().unwrap()).unwrap();
        assert_eq!(
            pems(&cpgen::test_support::issue(&plan, &reloaded).unwrap()),
            first,
            "{name} after a round trip"
        );
        assert_eq!(reloaded.render().unwrap(), secrets.render().unwrap());
    }
}

#[test]
fn renewing_moves_leaves_and_keeps_cas_and_keys() {
    let plan = one_master("ecdsa-p256", "separate-cas");
    let mut secrets = filled(&plan);
    let before = cpgen::test_support::issue(&plan, &secrets).unwrap();
    let keys_before = secrets
        .render()
        .unwrap()
        .lines()
        .filter(|l| !l.contains("issued_at"))
        .collect::<Vec<_>>()
        .join("\n");
    secrets.renew(datetime!(2026-06-01 12:00:00 UTC)).unwrap();
    let after = cpgen::test_support::issue(&plan, &secrets).unwrap();
    let keys_after = secrets
        .render()
        .unwrap()
        .lines()
        .filter(|l| !l.contains("issued_at"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(keys_before, keys_after, "keys changed");
    for (a, b) in before.cas.iter().zip(&after.cas) {
        assert_eq!(a.cert_pem, b.cert_pem, "{:?} CA changed", a.ca);
    }
    for (a, b) in before.leaves.iter().zip(&after.leaves) {
        assert_ne!(a.cert_pem, b.cert_pem, "{} not renewed", a.identity.id);
        assert_eq!(a.key_pem, b.key_pem);
    }
    let bytes = der(&after.leaves[0].cert_pem);
    let (_, cert) = X509Certificate::from_der(&bytes).unwrap();
    assert_eq!(
        cert.validity().not_before.to_datetime(),
        datetime!(2026-06-01 11:55:00 UTC)
    );
}

#[test]
fn secrets_file_is_private_reused_and_only_grows() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = camino::Utf8PathBuf::from_path_buf(dir.path().join("c.secrets.toml")).unwrap();
    let plan = one_master("ecdsa-p256", "separate-cas");
    let (_, change) =
        Secrets::load_or_create(&path, &plan, ISSUED_AT, &FillOptions::default()).unwrap();
    assert!(change.created);
    assert_eq!(
        change.new_keys.len(),
        3 + 3 + 8 + 1 + 1,
        "{:?}",
        change.new_keys
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let first = std::fs::read_to_string(&path).unwrap();
    assert!(first.contains("-----BEGIN PRIVATE KEY-----"));

    let (_, change) = Secrets::load_or_create(
        &path,
        &plan,
        datetime!(2030-01-01 00:00:00 UTC),
        &FillOptions::default(),
    )
    .unwrap();
    assert!(!change.created && change.new_keys.is_empty());
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        first,
        "an unchanged file is not rewritten"
    );

    let bigger = plan_from(
        "[api]\nendpoint = \"127.0.1.80\"\n[[masters]]\nname = \"m0\"\naddress = \"127.0.1.80\"\n\
         [[masters]]\nname = \"m1\"\naddress = \"127.0.1.81\"\n[[masters]]\nname = \"m2\"\naddress = \"127.0.1.82\"\n",
    );
    let (grown, change) =
        Secrets::load_or_create(&path, &bigger, ISSUED_AT, &FillOptions::default()).unwrap();
    assert_eq!(
        change.new_keys,
        [
            "apiserver/m1",
            "apiserver/m2",
            "etcd-server/m1",
            "etcd-server/m2",
            "etcd-peer/m1",
            "etcd-peer/m2"
        ]
    );
    let old = Secrets::parse(&first).unwrap();
    assert_eq!(
        grown.key_pem("ca").unwrap(),
        old.key_pem("ca").unwrap(),
        "existing keys kept"
    );
    let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(leftovers, 1, "temporary files left behind");

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = Secrets::load(&path).unwrap_err();
    assert!(
        matches!(err, Error::InsecureSecrets { mode: 0o644, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("chmod 600"));

    // Every key changes algorithm, the service-account key too.
    let rsa = plan_from(
        "[pki]\nkey_algorithm = \"rsa-2048\"\n[api]\nendpoint = \"127.0.1.80\"\n\
         [[masters]]\nname = \"m0\"\naddress = \"127.0.1.80\"\n",
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = Secrets::load_or_create(&path, &rsa, ISSUED_AT, &FillOptions::default()).unwrap_err();
    let Error::KeyAlgorithmMismatch(stale) = &err else {
        panic!("{err}")
    };
    // Every key of the old algorithm in one error, not one per run.
    let mut expected: Vec<String> = cpgen::test_support::leaf_identities(&rsa)
        .into_iter()
        .map(|i| i.id)
        .chain(["ca", "etcd-ca", "front-proxy-ca", "service-account"].map(String::from))
        .collect();
    expected.sort();
    let mut named: Vec<String> = stale.0.iter().map(|k| k.identity.clone()).collect();
    named.sort();
    assert_eq!(named, expected);
    let message = err.to_string();
    for id in &expected {
        assert!(
            message.contains(&format!("`{id}`")),
            "{id} not named: {message}"
        );
    }
    assert!(message.contains("makes a new CA"), "{message}");
    assert!(message.contains("re-bootstrapped"), "{message}");
    assert!(message.contains("rotation"), "{message}");
    assert!(message.contains("service-account token"), "{message}");
}

#[test]
fn key_material_never_shows_in_debug_or_errors() {
    let plan = one_master("ecdsa-p256", "shared-ca");
    let secrets = filled(&plan);
    assert!(!format!("{secrets:?}").contains("BEGIN"));
    let broken = secrets.render().unwrap().replacen("MIG", "XXX", 1);
    let err = Secrets::parse(&broken).unwrap_err().to_string();
    assert!(!err.contains("BEGIN") && !err.contains("MIG"), "{err}");
    let set = cpgen::test_support::issue(&plan, &secrets).unwrap();
    assert!(!format!("{set:?}").contains("BEGIN"));
}

fn fixture(path: &str) -> String {
    std::fs::read_to_string(util::root().join("tests/fixtures").join(path)).unwrap()
}

#[test]
fn a_cfssl_ca_imports_and_signs_a_chain_openssl_accepts() {
    let plan = plan_of("examples/seed-ha.toml");
    let mut secrets = Secrets::new(IMPORTED_AT).unwrap();
    pki::import_ca(
        &mut secrets,
        Ca::Kubernetes,
        &fixture("cfssl/ca.pem"),
        &fixture("cfssl/ca-key.pem"),
        IMPORTED_AT,
        cpgen::pki::ImportMode::KeepExisting,
    )
    .unwrap();
    let new_keys = secrets
        .fill(&plan, &cpgen::pki::FillOptions::default())
        .unwrap();
    assert!(
        !new_keys.contains(&"ca".to_owned()),
        "the imported CA key is reused"
    );
    let set = cpgen::test_support::issue(&plan, &secrets).unwrap();
    let ca = set.ca(Ca::Kubernetes).unwrap();
    assert!(ca.imported);
    assert_eq!(
        der(&ca.cert_pem),
        der(&fixture("cfssl/ca.pem")),
        "the CA certificate is cfssl's, unchanged"
    );
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, fixture("cfssl/ca.pem")).unwrap();
    for leaf in &set.leaves {
        let leaf_file = dir.path().join("leaf.pem");
        std::fs::write(&leaf_file, &leaf.cert_pem).unwrap();
        let attime = (IMPORTED_AT.unix_timestamp() + 3600).to_string();
        let out = openssl(&[
            "verify",
            "-CAfile",
            ca_file.to_str().unwrap(),
            "-attime",
            &attime,
            leaf_file.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}: {}",
            leaf.identity.id,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The secrets file keeps the imported CA across a round trip.
    let reloaded = Secrets::parse(&secrets.render().unwrap()).unwrap();
    assert_eq!(
        pems(&cpgen::test_support::issue(&plan, &reloaded).unwrap()),
        pems(&set)
    );
}

#[test]
fn an_openssl_sec1_ec_ca_imports_as_the_etcd_ca() {
    let plan = plan_of("examples/separate-cas.toml");
    let mut secrets = Secrets::new(IMPORTED_AT).unwrap();
    pki::import_ca(
        &mut secrets,
        Ca::Etcd,
        &fixture("openssl/ec-ca.pem"),
        &fixture("openssl/ec-ca-key.pem"),
        IMPORTED_AT,
        cpgen::pki::ImportMode::KeepExisting,
    )
    .unwrap();
    secrets
        .fill(&plan, &cpgen::pki::FillOptions::default())
        .unwrap();
    let set = cpgen::test_support::issue(&plan, &secrets).unwrap();
    let verifier = Verifier::new(&set, IMPORTED_AT);
    let (ok, text) = verifier.verify(
        Ca::Etcd,
        "etcd-server/kubem00",
        "sslserver",
        Some(("-verify_ip", "10.10.10.80".to_owned())),
    );
    assert!(ok, "{text}");
}

#[test]
fn bad_cas_are_refused_each_with_its_own_reason() {
    let import = |cert: &str, key: &str, now: OffsetDateTime| {
        let mut secrets = Secrets::new(IMPORTED_AT).unwrap();
        match pki::import_ca(
            &mut secrets,
            Ca::Kubernetes,
            &fixture(cert),
            &fixture(key),
            now,
            cpgen::pki::ImportMode::KeepExisting,
        ) {
            Err(Error::Import { problem, .. }) => problem,
            other => panic!("{cert} with {key}: expected a refusal, got {other:?}"),
        }
    };
    assert_eq!(
        import("cfssl/ca.pem", "cfssl/other-ca-key.pem", IMPORTED_AT),
        ImportProblem::KeyMismatch
    );
    assert_eq!(
        import("openssl/leaf.pem", "openssl/leaf-key.pem", IMPORTED_AT),
        ImportProblem::NotACa
    );
    assert!(matches!(
        import(
            "cfssl/ca.pem",
            "cfssl/ca-key.pem",
            datetime!(2200-01-01 00:00:00 UTC)
        ),
        ImportProblem::Expired(_)
    ));
    assert!(matches!(
        import(
            "cfssl/ca.pem",
            "cfssl/ca-key.pem",
            datetime!(2000-01-01 00:00:00 UTC)
        ),
        ImportProblem::NotYetValid(_)
    ));
    assert_eq!(
        import("cfssl/ca-key.pem", "cfssl/ca-key.pem", IMPORTED_AT),
        ImportProblem::NoCertificate
    );
    assert!(matches!(
        import("cfssl/ca.pem", "cfssl/ca.pem", IMPORTED_AT),
        ImportProblem::BadKey(_)
    ));
    let messages: std::collections::HashSet<String> = [
        ImportProblem::KeyMismatch,
        ImportProblem::NotACa,
        ImportProblem::Expired("x".into()),
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(messages.len(), 3);

    // A CA the file already has is replaced only on request.
    let mut secrets = filled(&one_master("ecdsa-p256", "shared-ca"));
    let again = pki::import_ca(
        &mut secrets,
        Ca::Kubernetes,
        &fixture("cfssl/ca.pem"),
        &fixture("cfssl/ca-key.pem"),
        IMPORTED_AT,
        cpgen::pki::ImportMode::KeepExisting,
    );
    assert!(matches!(
        again,
        Err(Error::Import {
            problem: ImportProblem::AlreadyPresent,
            ..
        })
    ));
    pki::import_ca(
        &mut secrets,
        Ca::Kubernetes,
        &fixture("cfssl/ca.pem"),
        &fixture("cfssl/ca-key.pem"),
        IMPORTED_AT,
        cpgen::pki::ImportMode::Replace,
    )
    .unwrap();
}

#[test]
fn cli_imports_a_ca_and_renews() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("seed-ha.secrets.toml");
    let config = dir.path().join("seed-ha.toml");
    std::fs::copy(util::root().join("examples/seed-ha.toml"), &config).unwrap();
    let (secrets_arg, config_arg) = (secrets.to_str().unwrap(), config.to_str().unwrap());
    let fixtures = util::root().join("tests/fixtures/cfssl");
    let (ca, key, other) = (
        fixtures.join("ca.pem"),
        fixtures.join("ca-key.pem"),
        fixtures.join("other-ca-key.pem"),
    );

    let out = util::cpgen(&[
        "secrets",
        "import-ca",
        "--cert",
        ca.to_str().unwrap(),
        "--key",
        other.to_str().unwrap(),
        "--secrets",
        secrets_arg,
    ]);
    assert_eq!(util::code(&out), 1, "{}", util::stderr(&out));
    assert!(
        util::stderr(&out).contains("does not belong to the certificate"),
        "{}",
        util::stderr(&out)
    );
    assert!(!secrets.exists(), "a refused import writes nothing");

    let out = util::cpgen(&[
        "secrets",
        "import-ca",
        "--cert",
        ca.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--secrets",
        secrets_arg,
    ]);
    assert_eq!(util::code(&out), 0, "{}", util::stderr(&out));

    let out = util::cpgen(&["renew", config_arg, "--at", "2026-03-01T00:00:00Z"]);
    assert_eq!(util::code(&out), 0, "{}", util::stderr(&out));
    assert!(
        util::stderr(&out).contains("2026-03-01T00:00:00Z"),
        "{}",
        util::stderr(&out)
    );
    let reloaded = Secrets::load(camino::Utf8Path::new(secrets_arg)).unwrap();
    assert_eq!(reloaded.issued_at(), datetime!(2026-03-01 00:00:00 UTC));
    let text = std::fs::read_to_string(&secrets).unwrap();
    assert!(text.contains("[imported_cas]\n\"kubernetes\""), "{text}");

    let out = util::cpgen(&[
        "renew",
        config_arg,
        "--secrets",
        dir.path().join("none.toml").to_str().unwrap(),
    ]);
    assert_eq!(
        util::code(&out),
        2,
        "a missing secrets file is an I/O error"
    );
    assert!(Path::new(&secrets).exists());
}

/// RFC 5280: a serial names one certificate per CA. Moving a master changes its server
/// certificates, so their serials change too; what did not change keeps its serial.
#[test]
fn a_serial_names_one_certificate_across_bundles_of_one_ca() {
    let config = |address: &str| {
        plan_from(&format!(
            "[api]\nendpoint = \"127.0.1.2\"\n[[load_balancer.hosts]]\nname = \"lb\"\naddress = \"127.0.1.2\"\n\
             [[masters]]\nname = \"m0\"\naddress = \"{address}\"\n"
        ))
    };
    let before = config("127.0.1.80");
    let after = config("127.0.1.81");
    let secrets = filled(&before);
    let (old, new) = (
        cpgen::test_support::issue(&before, &secrets).unwrap(),
        cpgen::test_support::issue(&after, &secrets).unwrap(),
    );
    let serial_of = |pem: &str| {
        let der = der(pem);
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        (cert.issuer().to_string(), cert.raw_serial().to_vec())
    };
    let apiserver = |set: &CertSet| set.leaf("apiserver/m0").unwrap().cert_pem.clone();
    assert_ne!(apiserver(&old), apiserver(&new), "the SANs changed");
    assert_ne!(serial_of(&apiserver(&old)), serial_of(&apiserver(&new)));
    // Across both issues, one (issuer, serial) is always one certificate.
    let mut seen = std::collections::HashMap::new();
    for pem in pems(&old).into_iter().chain(pems(&new)) {
        let previous = seen.insert(serial_of(&pem), pem.clone());
        if let Some(previous) = previous {
            assert_eq!(previous, pem, "two certificates share issuer and serial");
        }
    }
    // A certificate that did not change keeps its serial (and bytes).
    let client = |set: &CertSet| set.leaf("controller-manager").unwrap().cert_pem.clone();
    assert_eq!(client(&old), client(&new));
}

/// The subject openssl reads from a kubeconfig's embedded client certificate.
fn kubeconfig_subject(kubeconfig: &Path) -> String {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let pem = util::kubeconfig_client_certificate(&text);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cert.pem");
    std::fs::write(&file, pem).unwrap();
    openssl_subject(&file)
}

/// `openssl x509 -subject` of a certificate file, RFC 2253.
fn openssl_subject(file: &Path) -> String {
    let out = openssl(&[
        "x509",
        "-noout",
        "-subject",
        "-nameopt",
        "RFC2253",
        "-in",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Every document of a YAML file, as JSON values.
fn yaml_documents(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_multiple::<serde_json::Value>(&text).unwrap()
}

#[test]
fn no_identity_on_a_host_or_in_daily_use_is_system_masters() {
    let bundle = util::root().join("golden/seed-ha");
    // openssl's view of the operator identities.
    assert_eq!(
        kubeconfig_subject(&bundle.join("admin/admin.kubeconfig")),
        "subject=CN=admin,O=cpgen:cluster-admins"
    );
    assert_eq!(
        kubeconfig_subject(&bundle.join("admin/super-admin.kubeconfig")),
        "subject=CN=super-admin,O=system:masters"
    );
    assert_eq!(
        openssl_subject(&bundle.join("hosts/kubem00/etc/kubernetes/pki/kubelet-client.pem")),
        "subject=CN=kube-apiserver-kubelet-client"
    );
    // No certificate file (what hosts get) carries system:masters.
    let mut with_masters = Vec::new();
    let mut stack = vec![bundle.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "pem") {
                let out = openssl(&["x509", "-noout", "-subject", "-in", path.to_str().unwrap()]);
                if String::from_utf8_lossy(&out.stdout).contains("system:masters") {
                    with_masters.push(path);
                }
            }
        }
    }
    assert_eq!(with_masters, Vec::<std::path::PathBuf>::new());
}

#[test]
fn the_rbac_bootstrap_binds_exactly_the_identities_the_certificates_name() {
    let bootstrap = util::root().join("golden/seed-ha/admin/bootstrap");
    let mut names: Vec<String> = std::fs::read_dir(&bootstrap)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["apiserver-kubelet-client.yaml", "cluster-admins.yaml"]
    );
    let binding = |file: &str| {
        let docs = yaml_documents(&bootstrap.join(file));
        assert_eq!(docs.len(), 1, "{file}");
        let doc = docs.into_iter().next().unwrap();
        assert_eq!(doc["apiVersion"], "rbac.authorization.k8s.io/v1", "{file}");
        assert_eq!(doc["kind"], "ClusterRoleBinding", "{file}");
        assert_eq!(doc["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
        assert_eq!(doc["roleRef"]["kind"], "ClusterRole");
        let subjects = doc["subjects"].as_array().unwrap().clone();
        assert_eq!(subjects.len(), 1, "{file}");
        assert_eq!(subjects[0]["apiGroup"], "rbac.authorization.k8s.io");
        (
            doc["roleRef"]["name"].as_str().unwrap().to_owned(),
            subjects[0]["kind"].as_str().unwrap().to_owned(),
            subjects[0]["name"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(
        binding("cluster-admins.yaml"),
        (
            "cluster-admin".into(),
            "Group".into(),
            "cpgen:cluster-admins".into()
        )
    );
    assert_eq!(
        binding("apiserver-kubelet-client.yaml"),
        (
            "system:kubelet-api-admin".into(),
            "User".into(),
            "kube-apiserver-kubelet-client".into()
        )
    );
}

/// The providers of a bundle's encryption config, in order, each with its key.
fn encryption_providers(bundle: &Path) -> Vec<(String, String)> {
    let config = bundle.join("hosts/m0/etc/kubernetes/encryption-config.yaml");
    let doc = yaml_documents(&config).remove(0);
    assert_eq!(doc["kind"], "EncryptionConfiguration");
    let resource = &doc["resources"][0];
    assert_eq!(resource["resources"], serde_json::json!(["secrets"]));
    resource["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|provider| {
            let (name, settings) = provider.as_object().unwrap().iter().next().unwrap();
            let key = settings["keys"][0]["secret"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            (name.clone(), key)
        })
        .collect()
}

#[test]
fn secrets_are_encrypted_with_secretbox_and_a_provider_change_keeps_reading_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let config = |provider: &str| {
        format!(
            "[api]\nendpoint = \"127.0.1.80\"\n[[masters]]\nname = \"m0\"\naddress = \"127.0.1.80\"\n{provider}"
        )
    };
    let bundle = |out: &str, text: &str| {
        std::fs::write(dir.path().join("c.toml"), text).unwrap();
        let made = util::cpgen_in(dir.path(), &["bundle", "c.toml", "--out-dir", out]);
        assert_eq!(util::code(&made), 0, "{}", util::stderr(&made));
        util::stderr(&made)
    };
    bundle("default", &config(""));
    let first = encryption_providers(&dir.path().join("default"));
    let names: Vec<&str> = first.iter().map(|(n, _)| n.as_str()).collect();
    // secretbox writes; aescbc (cpgen's first provider) and identity still read.
    assert_eq!(names, ["secretbox", "aescbc", "identity"]);
    use base64::Engine;
    for (name, key) in &first[..2] {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key)
            .unwrap();
        assert_eq!(bytes.len(), 32, "{name}");
    }
    assert_ne!(first[0].1, first[1].1, "one key for two ciphers");

    let said = bundle(
        "aesgcm",
        &config("[pki]\nencryption_provider = \"aesgcm\"\n"),
    );
    assert!(said.contains("encryption/aesgcm"), "{said}");
    let second = encryption_providers(&dir.path().join("aesgcm"));
    let names: Vec<&str> = second.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["aesgcm", "secretbox", "aescbc", "identity"]);
    // The old writer reads with the key it wrote with.
    assert_eq!(second[1], first[0]);
    assert_eq!(second[2], first[1]);

    let wrong = util::cpgen_in(dir.path(), &["check", "c.toml"]);
    assert_eq!(util::code(&wrong), 0);
    std::fs::write(
        dir.path().join("c.toml"),
        config("[pki]\nencryption_provider = \"secretbx\"\n"),
    )
    .unwrap();
    let wrong = util::cpgen_in(dir.path(), &["check", "c.toml"]);
    assert_eq!(util::code(&wrong), 1);
    assert!(
        util::stderr(&wrong).contains("did you mean \"secretbox\"?"),
        "{}",
        util::stderr(&wrong)
    );
}

#[test]
fn an_encryption_key_of_an_unknown_provider_or_length_is_refused() {
    let text = std::fs::read_to_string(util::root().join("golden/seed-ha.secrets.toml")).unwrap();
    assert!(Secrets::parse(&text).is_ok());
    let key = "SFJ9EZOfz+sQVMIIzIxRT40hfde+2IbA3tnxnTtaPtY=";
    for (entry, said) in [
        (format!("rot13 = \"{key}\""), "\"rot13\""),
        ("secretbox = \"c2hvcnQ=\"".to_owned(), "not 32 bytes"),
    ] {
        let edited = text.replacen(&format!("secretbox = \"{key}\""), &entry, 1);
        assert_ne!(edited, text);
        let error = Secrets::parse(&edited)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains(said), "{entry}: {error}");
    }
}
