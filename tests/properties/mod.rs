//! Properties every input must satisfy, shared by the fuzz targets (`fuzz/`) and by the
//! regression tests that replay their seeds and past findings. Each function panics when a
//! property fails.

#![allow(dead_code)]

use cpgen::bundle::Bundle;
use cpgen::pki::Secrets;
use cpgen::test_support::PrivateKey;
use cpgen::types::KeyAlgorithm;
use cpgen::{Config, Error};
use time::macros::datetime;

const AT: time::OffsetDateTime = datetime!(2026-02-01 00:00:00 UTC);

/// Parsing and validating never panics; findings point inside the text; a valid config
/// (with fast keys and a handful of hosts) renders a bundle that passes its own audit.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let checked = match Config::parse("fuzz.toml", text).and_then(|c| c.validate()) {
        Ok(checked) => checked,
        Err(Error::Invalid(report)) => {
            assert!(report.has_errors(), "rejected without an error");
            for d in report.diagnostics() {
                for label in d.primary.iter().chain(&d.secondary) {
                    let span = label.span().expect("a finding on a file points into it");
                    assert!(span.end <= text.len() && span.start <= span.end);
                }
            }
            let _ = report.render(cpgen::diag::Style::Plain);
            return;
        }
        Err(other) => panic!("text input gave a non-input error: {other}"),
    };
    let _ = checked.plan.summary().to_string();
    let mut plan = checked.plan;
    let hosts = plan.masters().len() + plan.load_balancers().len() + plan.workers().len();
    if hosts > 9 {
        return;
    }
    cpgen::test_support::set_key_algorithms(&mut plan, KeyAlgorithm::EcdsaP256);
    let mut secrets = Secrets::new(datetime!(2026-01-01 00:00:00 UTC)).expect("secrets");
    secrets
        .fill(&plan, &cpgen::pki::FillOptions::default())
        .expect("keys");
    let bundle = Bundle::build(&plan, &secrets).expect("a valid plan renders");
    let bytes = bundle.to_tar_gz().expect("archive");
    let mut findings = Vec::new();
    let tree = cpgen::test_support::read_archive(bytes.as_slice(), &mut findings);
    let report = cpgen::test_support::verify_tree(&tree, Some(&plan), AT, findings);
    assert!(
        !report.has_errors(),
        "a bundle cpgen made fails its audit:\n{}",
        report.render()
    );
}

/// A secrets file that parses renders to text that parses to the same secrets.
pub fn secrets(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(secrets) = Secrets::parse(text) else {
        return;
    };
    let rendered = secrets.render().expect("render");
    let again = Secrets::parse(&rendered).expect("rendered secrets parse");
    assert_eq!(
        *again.render().expect("render"),
        *rendered,
        "render -> parse -> render is not stable"
    );
}

/// Any bytes as an archive: findings, never a panic, and never more than the limits.
pub fn verify_archive(data: &[u8]) {
    let mut findings = Vec::new();
    let tree = cpgen::test_support::read_archive(data, &mut findings);
    let total: usize = tree.files.values().map(|e| e.data.len()).sum();
    assert!(total as u64 <= cpgen::test_support::MAX_TOTAL);
    assert!(tree
        .files
        .keys()
        .all(|p| !p.starts_with('/') && !p.split('/').any(|c| c == ".." || c.is_empty())));
    let report = cpgen::test_support::verify_tree(&tree, None, AT, findings);
    let _ = report.render();
}

/// Any bytes as a PEM file a unit names: findings, never a panic; a key that parses
/// survives a PKCS#8 round trip with the same public key.
pub fn verify_pem(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(key) = PrivateKey::from_pem(text) {
            use rcgen::PublicKeyData;
            let pem = key.to_pkcs8_pem().expect("PKCS#8");
            let again = PrivateKey::from_pem(&pem).expect("PKCS#8 parses");
            assert_eq!(again.der_bytes(), key.der_bytes());
        }
    }
    let mut tree = cpgen::test_support::Tree::default();
    let unit = "[Service]\nExecStart=/usr/bin/kube-apiserver --tls-cert-file=/etc/kubernetes/pki/apiserver.pem --tls-private-key-file=/etc/kubernetes/pki/apiserver-key.pem --client-ca-file=/etc/kubernetes/pki/ca.pem\n";
    for (path, contents) in [
        (
            "hosts/m/etc/systemd/system/kube-apiserver.service",
            unit.as_bytes(),
        ),
        ("hosts/m/etc/kubernetes/pki/apiserver.pem", data),
        ("hosts/m/etc/kubernetes/pki/apiserver-key.pem", data),
        ("hosts/m/etc/kubernetes/pki/ca.pem", data),
    ] {
        tree.files.insert(
            path.to_owned(),
            cpgen::test_support::Entry {
                mode: 0o600,
                data: contents.to_vec(),
            },
        );
    }
    let _ = cpgen::test_support::verify_tree(&tree, None, AT, Vec::new()).render();
}
