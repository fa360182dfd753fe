//! The key material of a bundle: every certificate, private key and public key it holds,
//! in files or embedded in kubeconfigs, parsed once into owned summaries.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use base64::Engine;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};
use x509_parser::x509::SubjectPublicKeyInfo;

use super::model::HostModel;
use super::source::Tree;
use crate::diag::{Code, Diagnostic};
use crate::pki::PublicKeyInfo;

/// What cpgen needs to know of a certificate.
#[derive(Debug, Clone)]
pub(crate) struct CertInfo {
    /// DER, for signature checks.
    pub(crate) der: Vec<u8>,
    /// Subject, RFC 4514.
    pub(crate) subject: String,
    /// Subject CN (the first).
    pub(crate) common_name: String,
    /// Every CN of the subject: Go's TLS stack, and so Kubernetes, takes the last one.
    pub(crate) common_names: Vec<String>,
    /// Subject O values: Kubernetes reads them as the client's groups.
    pub(crate) organizations: Vec<String>,
    /// Issuer, RFC 4514.
    pub(crate) issuer: String,
    /// Issuer CN.
    pub(crate) issuer_common_name: String,
    /// NotBefore.
    pub(crate) not_before: OffsetDateTime,
    /// NotAfter.
    pub(crate) not_after: OffsetDateTime,
    /// basicConstraints CA.
    pub(crate) is_ca: bool,
    /// keyUsage keyCertSign (`None`: no keyUsage extension).
    pub(crate) key_cert_sign: Option<bool>,
    /// extendedKeyUsage (serverAuth, clientAuth); `None`: no EKU extension (any use).
    pub(crate) eku: Option<(bool, bool)>,
    /// DNS SANs.
    pub(crate) dns: Vec<String>,
    /// IP SANs.
    pub(crate) ips: Vec<IpAddr>,
    /// The public key's BIT STRING contents (compared with private keys).
    pub(crate) public_key: Vec<u8>,
    /// "RSA-2048", "ECDSA P-256", "Ed25519".
    pub(crate) algorithm: String,
}

/// The values of a subject's attributes, each as text (`?` where it is not a string).
fn texts<'a>(
    attributes: impl Iterator<Item = &'a x509_parser::x509::AttributeTypeAndValue<'a>>,
) -> Vec<String> {
    attributes
        .map(|a| a.as_str().map_or_else(|_| "?".to_owned(), str::to_owned))
        .collect()
}

impl CertInfo {
    /// Parses DER.
    pub(crate) fn parse(der: &[u8]) -> Result<CertInfo, String> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
        let name_cn = |name: &x509_parser::x509::X509Name<'_>| {
            name.iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let mut info = CertInfo {
            der: der.to_vec(),
            subject: cert.subject().to_string(),
            common_name: name_cn(cert.subject()),
            common_names: texts(cert.subject().iter_common_name()),
            organizations: texts(cert.subject().iter_organization()),
            issuer: cert.issuer().to_string(),
            issuer_common_name: name_cn(cert.issuer()),
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            is_ca: false,
            key_cert_sign: None,
            eku: None,
            dns: Vec::new(),
            ips: Vec::new(),
            public_key: cert.public_key().subject_public_key.data.to_vec(),
            algorithm: algorithm(cert.public_key()),
        };
        for extension in cert.extensions() {
            match extension.parsed_extension() {
                ParsedExtension::BasicConstraints(bc) => info.is_ca = bc.ca,
                ParsedExtension::KeyUsage(ku) => info.key_cert_sign = Some(ku.key_cert_sign()),
                ParsedExtension::ExtendedKeyUsage(eku) => {
                    info.eku = Some((eku.server_auth || eku.any, eku.client_auth || eku.any))
                }
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        match name {
                            GeneralName::DNSName(dns) => info.dns.push(dns.to_ascii_lowercase()),
                            GeneralName::IPAddress(bytes) => info.ips.extend(ip_from_bytes(bytes)),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(info)
    }

    /// The serial number as colon-separated hex, from the DER parsed at construction.
    pub(crate) fn serial(&self) -> String {
        X509Certificate::from_der(&self.der)
            .map(|(_, cert)| cert.raw_serial_as_string())
            .unwrap_or_default()
    }

    /// True when `ca`'s key made this certificate's signature.
    pub(crate) fn signed_by(&self, ca: &CertInfo) -> bool {
        signed_by(&self.der, &ca.der)
    }

    /// True when a client dialling `target` (an IP address or DNS name) accepts this
    /// certificate's SANs.
    pub(crate) fn covers(&self, target: &str) -> bool {
        if let Ok(ip) = target.parse::<IpAddr>() {
            return self.ips.contains(&ip);
        }
        let target = target.to_ascii_lowercase();
        self.dns.iter().any(|name| match name.strip_prefix("*.") {
            Some(suffix) => target
                .split_once('.')
                .is_some_and(|(_, rest)| rest == suffix),
            None => *name == target,
        })
    }
}

/// True when the certificate `leaf` (DER) names `ca` (DER) as its issuer and `ca`'s key made
/// its signature.
pub(super) fn signed_by(leaf: &[u8], ca: &[u8]) -> bool {
    let (Ok((_, leaf)), Ok((_, issuer))) = (
        X509Certificate::from_der(leaf),
        X509Certificate::from_der(ca),
    ) else {
        return false;
    };
    leaf.issuer() == issuer.subject() && leaf.verify_signature(Some(issuer.public_key())).is_ok()
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

fn algorithm(spki: &SubjectPublicKeyInfo<'_>) -> String {
    use x509_parser::public_key::PublicKey;
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("RSA-{}", rsa.key_size()),
        Ok(PublicKey::EC(point)) => match point.key_size() {
            256 => "ECDSA P-256".to_owned(),
            384 => "ECDSA P-384".to_owned(),
            bits => format!("ECDSA {bits}-bit"),
        },
        _ if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => "Ed25519".to_owned(),
        _ => spki.algorithm.algorithm.to_id_string(),
    }
}

/// Every certificate of the tree (the first of each file, and those embedded in kubeconfigs)
/// by where it is, parsed as an audit parses them; what does not parse is left out.
pub(crate) fn certificates(tree: &Tree) -> BTreeMap<String, CertInfo> {
    let (hosts, _) = super::model::hosts(tree);
    collect(tree, &hosts, &mut Vec::new()).certs
}

/// Every piece of key material, by where it is: a bundle path, or
/// `<kubeconfig path>#<field>` for embedded data.
#[derive(Debug, Default)]
pub(super) struct Material {
    /// Certificates (the first of each file).
    pub(super) certs: BTreeMap<String, CertInfo>,
    /// Private keys' public halves.
    pub(super) keys: BTreeMap<String, Vec<u8>>,
    /// Public keys (`sa.pub`).
    pub(super) public_keys: BTreeMap<String, Vec<u8>>,
    /// Every certificate, in order, of a file or datum that holds more than one (a trust
    /// bundle, or a leaf and its issuer chain): servers and clients read them all.
    pub(super) stacks: BTreeMap<String, Vec<CertInfo>>,
}

/// Reads every PEM file of the tree and every embedded kubeconfig datum.
pub(super) fn collect(
    tree: &Tree,
    hosts: &[HostModel],
    findings: &mut Vec<Diagnostic>,
) -> Material {
    use rayon::prelude::*;
    // Parsing keys and certificates is the costly part of an audit, and many files are
    // copies (every worker's ca.pem, kube-proxy.pem and its key): each distinct content is
    // parsed once, on every core, then filed under each of its paths in path order.
    let candidates = || {
        tree.files
            .iter()
            .filter(|(path, entry)| is_pem_candidate(path, &entry.data))
    };
    let distinct: HashSet<&[u8]> = candidates().map(|(_, e)| e.data.as_slice()).collect();
    let parsed: HashMap<&[u8], (Material, Vec<Diagnostic>)> = distinct
        .into_par_iter()
        .map(|data| {
            let mut one = Material::default();
            let mut found = Vec::new();
            add_pem(&mut one, "", &String::from_utf8_lossy(data), &mut found);
            (data, (one, found))
        })
        .collect();
    let mut material = Material::default();
    for (path, entry) in candidates() {
        let Some((one, found)) = parsed.get(entry.data.as_slice()) else {
            continue;
        };
        // `one` holds the content's parse under no name; file it under this path.
        let at = |value: &Vec<u8>| (path.clone(), value.clone());
        material
            .certs
            .extend(one.certs.values().map(|cert| (path.clone(), cert.clone())));
        material.keys.extend(one.keys.values().map(at));
        material
            .public_keys
            .extend(one.public_keys.values().map(at));
        material.stacks.extend(
            one.stacks
                .values()
                .map(|stack| (path.clone(), stack.clone())),
        );
        findings.extend(found.iter().cloned().map(|finding| finding.in_file(path)));
    }
    for host in hosts {
        for kubeconfig in &host.kubeconfigs {
            let path = &kubeconfig.path;
            for cluster in &kubeconfig.clusters {
                if let Some(data) = &cluster.entry.certificate_authority_data {
                    add_embedded(
                        &mut material,
                        &format!("{path}#{}.certificate-authority-data", cluster.name),
                        data,
                        findings,
                    );
                }
            }
            for user in &kubeconfig.users {
                for (field, data) in [
                    (
                        "client-certificate-data",
                        &user.entry.client_certificate_data,
                    ),
                    ("client-key-data", &user.entry.client_key_data),
                ] {
                    if let Some(data) = data {
                        add_embedded(
                            &mut material,
                            &format!("{path}#{}.{field}", user.name),
                            data,
                            findings,
                        );
                    }
                }
            }
        }
    }
    material
}

/// True for a file that should hold a key or certificate: by its name, or because it holds
/// a PEM block marker.
fn is_pem_candidate(path: &str, data: &[u8]) -> bool {
    [".pem", ".crt", ".key", ".pub"]
        .iter()
        .any(|ext| path.ends_with(ext))
        || data.windows(10).any(|w| w == b"-----BEGIN")
}

fn add_embedded(material: &mut Material, id: &str, data: &str, findings: &mut Vec<Diagnostic>) {
    // Go's base64 decoder, and so kubectl, skips line breaks inside the data.
    let joined: String = data.chars().filter(|c| *c != '\n' && *c != '\r').collect();
    match base64::engine::general_purpose::STANDARD.decode(joined.trim()) {
        Ok(bytes) => add_pem(material, id, &String::from_utf8_lossy(&bytes), findings),
        Err(_) => findings.push(unparseable(id, "the embedded data is not base64")),
    }
}

fn add_pem(material: &mut Material, id: &str, text: &str, findings: &mut Vec<Diagnostic>) {
    let Ok(blocks) = pem::parse_many(text.as_bytes()) else {
        findings.push(unparseable(id, "the PEM is damaged"));
        return;
    };
    let Some(block) = blocks.first() else {
        findings.push(unparseable(id, "no PEM block: not a certificate or key"));
        return;
    };
    let mut stack = Vec::new();
    for (index, later) in blocks.iter().enumerate().skip(1) {
        if later.tag() != "CERTIFICATE" {
            continue;
        }
        match CertInfo::parse(later.contents()) {
            Ok(info) => stack.push(info),
            Err(e) => findings.push(unparseable(
                id,
                &format!("certificate {} of the file does not parse: {e}", index + 1),
            )),
        }
    }
    if !stack.is_empty() {
        if let Some(first) = (block.tag() == "CERTIFICATE")
            .then(|| CertInfo::parse(block.contents()).ok())
            .flatten()
        {
            stack.insert(0, first);
        }
        if stack.len() > 1 {
            material.stacks.insert(id.to_owned(), stack);
        }
    }
    match block.tag() {
        "CERTIFICATE" => match CertInfo::parse(block.contents()) {
            Ok(info) => {
                material.certs.insert(id.to_owned(), info);
            }
            Err(e) => findings.push(unparseable(
                id,
                &format!("the certificate does not parse: {e}"),
            )),
        },
        tag if tag.ends_with("PRIVATE KEY") => match PublicKeyInfo::from_private_pem(text) {
            Ok(info) => {
                material.keys.insert(id.to_owned(), info.public);
            }
            Err(e) => findings.push(unparseable(
                id,
                &format!("the private key does not parse: {e}"),
            )),
        },
        "PUBLIC KEY" => match SubjectPublicKeyInfo::from_der(block.contents()) {
            Ok((_, spki)) => {
                material
                    .public_keys
                    .insert(id.to_owned(), spki.subject_public_key.data.to_vec());
            }
            Err(e) => findings.push(unparseable(
                id,
                &format!("the public key does not parse: {e}"),
            )),
        },
        other => findings.push(unparseable(id, &format!("unexpected PEM block {other}"))),
    }
}

fn unparseable(id: &str, problem: &str) -> Diagnostic {
    Diagnostic::file_error(
        Code::Unparseable,
        id,
        problem.to_owned(),
        "replace it with the file cpgen generated, or re-issue it",
    )
}
