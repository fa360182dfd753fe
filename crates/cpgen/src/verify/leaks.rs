//! What a bundle's files may not carry even when each parses: a certificate in a trust file
//! that the bundle does not expect (kube-apiserver, etcd and kubectl trust every certificate
//! of such a file, not only the first), and a private key outside its own key file.

use std::collections::HashMap;

use base64::Engine;

use super::material::{CertInfo, Material};
use super::source::Tree;
use crate::bundle::manifest::{Header, MANIFEST};
use crate::diag::{Code, Diagnostic};
use crate::pki::Ca;
use crate::render::paths;

/// Runs the checks.
pub(super) fn run(tree: &Tree, material: &Material, findings: &mut Vec<Diagnostic>) {
    let rotating = rotating_pairs(tree, material, findings);
    stacks(material, &rotating, findings);
    keys(tree, findings);
    other_certificate_blocks(tree, findings);
}

/// PEM types OpenSSL reads as trusted certificates and cpgen never writes: clients built on
/// OpenSSL (curl, `openssl s_client`) trust a CA in such a block, while Go's parser, and so
/// the certificate checks here, skip it.
const OPENSSL_ONLY_CERTIFICATES: &[&str] = &["TRUSTED CERTIFICATE", "X509 CERTIFICATE"];

fn other_certificate_blocks(tree: &Tree, findings: &mut Vec<Diagnostic>) {
    let is_other = |tag: &str| OPENSSL_ONLY_CERTIFICATES.contains(&tag);
    for (path, entry) in &tree.files {
        let text = String::from_utf8_lossy(&entry.data);
        let tag = pem_block(&text, Block::Whole, is_other).or_else(|| {
            base64_runs(&text).find_map(|bytes| {
                pem_block(&String::from_utf8_lossy(&bytes), Block::BeginOnly, is_other)
            })
        });
        if let Some(tag) = tag {
            findings.push(Diagnostic::file_error(
                Code::UnexpectedCertificate,
                path,
                format!("holds a `{tag}` block: OpenSSL-based clients trust the certificate in it, and cpgen never writes one"),
                "remove it, or rebuild the bundle with cpgen; find out who added it",
            ));
        }
    }
}

/// The certificates (DER) of each file by its path on the host: `(bundle path, DERs)` of
/// every host's copy.
type ByLocalPath<'a> = HashMap<&'a str, Vec<(&'a str, Vec<&'a [u8]>)>>;

/// `hosts/<host>/<local path>` → `<local path>`, with the `#field` of embedded data.
fn local_path(id: &str) -> Option<&str> {
    id.strip_prefix("hosts/")?
        .split_once('/')
        .map(|(_, rest)| rest)
}

/// Checks every file or datum holding more than one certificate. After a CA (a trust
/// file), each further certificate must be a CA that signs a certificate of the bundle and
/// that the same file carries on every other host; after a leaf, only its issuer chain may
/// follow.
fn stacks(material: &Material, rotating: &[Pair<'_>], findings: &mut Vec<Diagnostic>) {
    // What the bundle presents: the first certificate of each file or datum, and the chain
    // after a leaf (a trusted CA may sign an intermediate rather than the leaf).
    // Only a file cpgen writes counts: a leaf pasted into README.md presents nothing.
    let mut used: Vec<&CertInfo> = material
        .certs
        .iter()
        .filter(|(id, _)| super::known_paths::is_expected(id.split('#').next().unwrap_or(id)))
        .map(|(_, cert)| cert)
        .collect();
    for stack in material.stacks.values() {
        if stack.first().is_some_and(|c| !c.is_ca) {
            used.extend(stack.iter().skip(1));
        }
    }
    let mut by_local: ByLocalPath<'_> = HashMap::new();
    let ids = material.certs.keys().chain(material.stacks.keys());
    for id in ids {
        let Some(local) = local_path(id) else {
            continue;
        };
        let ders: Vec<&[u8]> = match material.stacks.get(id) {
            Some(stack) => stack.iter().map(|c| c.der.as_slice()).collect(),
            None => material
                .certs
                .get(id)
                .map(|c| c.der.as_slice())
                .into_iter()
                .collect(),
        };
        let files = by_local.entry(local).or_default();
        if !files.iter().any(|(other, _)| other == id) {
            files.push((id.as_str(), ders));
        }
    }
    for (id, stack) in &material.stacks {
        let Some(first) = stack.first() else {
            continue;
        };
        if id.ends_with(paths::CA_SIGNING) {
            findings.push(Diagnostic::file_error(
                Code::UnexpectedCertificate,
                id,
                format!(
                    "holds {} certificates: kube-controller-manager's CSR signer takes exactly one, the CA that signs",
                    stack.len()
                ),
                "rebuild the bundle with cpgen; find out who added them",
            ));
            continue;
        }
        if is_rotating(stack, rotating) {
            continue;
        }
        for (index, cert) in stack.iter().enumerate().skip(1) {
            let number = index + 1;
            let problem = if first.is_ca {
                trust_problem(id, cert, &used, &by_local)
            } else {
                let below = &stack[index - 1];
                (!below.signed_by(cert)).then(|| {
                    format!(
                        "did not issue certificate {index} of the file: after a leaf, a file \
                         may hold only the leaf's issuer chain"
                    )
                })
            };
            if let Some(problem) = problem {
                findings.push(Diagnostic::file_error(
                    Code::UnexpectedCertificate,
                    id,
                    format!(
                        "certificate {number} of the file (`{}`) {problem}",
                        cert.subject
                    ),
                    "remove the certificates the bundle does not use from it, or rebuild the \
                     bundle with cpgen; find out who added them",
                ));
            }
        }
    }
}

/// The two generations (DER) of a CA in rotation, as its trust files carry them.
type Pair<'a> = [&'a [u8]; 2];

/// The generations of each CA the manifest says is in rotation (`start` or `issue`): two
/// CAs in one trust file are expected then and only then. A recorded rotation whose trust
/// file does not hold two CAs is a finding.
fn rotating_pairs<'m>(
    tree: &Tree,
    material: &'m Material,
    findings: &mut Vec<Diagnostic>,
) -> Vec<Pair<'m>> {
    let Some(manifest) = tree.files.get(MANIFEST) else {
        return Vec::new();
    };
    let header = Header::read(&manifest.data);
    let mut pairs = Vec::new();
    for (rotated, stage) in header.rotations() {
        if rotated == "service-account" {
            continue;
        }
        let stack = material
            .stacks
            .iter()
            .find(|(path, _)| paths::trust_file_ca(path).map(Ca::name) == Some(rotated));
        match stack.map(|(_, stack)| stack.as_slice()) {
            Some([old, new]) if old.is_ca && new.is_ca => {
                pairs.push([old.der.as_slice(), new.der.as_slice()]);
            }
            _ => findings.push(Diagnostic::file_error(
                Code::ManifestMismatch,
                MANIFEST,
                format!(
                    "it records the rotation of the {} CA at `{}`, yet its trust files do not carry two CAs",
                    crate::diag::escape(rotated),
                    crate::diag::escape(stage)
                ),
                "rebuild the bundle with cpgen from the secrets file of the rotation",
            )),
        }
    }
    pairs
}

/// A trust file of exactly the two generations of a CA in rotation.
fn is_rotating(stack: &[CertInfo], rotating: &[Pair<'_>]) -> bool {
    let [a, b] = stack else {
        return false;
    };
    rotating.iter().any(|pair| {
        let ours = [a.der.as_slice(), b.der.as_slice()];
        ours == *pair || ours == [pair[1], pair[0]]
    })
}

/// Why `ca`, after the first CA of the trust file `id`, is not one the bundle expects.
fn trust_problem(
    id: &str,
    ca: &CertInfo,
    used: &[&CertInfo],
    by_local: &ByLocalPath<'_>,
) -> Option<String> {
    if !ca.is_ca {
        return Some(
            "is no CA, yet every client of this trust file trusts it as a root".to_owned(),
        );
    }
    let signs_something = used
        .iter()
        .any(|leaf| leaf.der != ca.der && leaf.issuer == ca.subject && leaf.signed_by(ca));
    if !signs_something {
        return Some(
            "is a CA that signs no certificate of the bundle, yet every client of this trust \
             file accepts what it signs"
                .to_owned(),
        );
    }
    let other = local_path(id)
        .and_then(|local| by_local.get(local))
        .and_then(|files| {
            files
                .iter()
                .find(|(other, ders)| *other != id && !ders.contains(&ca.der.as_slice()))
        });
    other.map(|(other, _)| {
        format!("is a CA that {other}, the same trust file on another host, does not carry")
    })
}

/// Scans every file for private keys, as PEM text or base64-encoded (a kubeconfig's
/// `client-key-data`, a secret pasted into a manifest). Keys belong in their own key file
/// (`*-key.pem`, `sa.key`, `*.key`) or in an operator's kubeconfig under `admin/`.
fn keys(tree: &Tree, findings: &mut Vec<Diagnostic>) {
    for (path, entry) in &tree.files {
        let name = path.rsplit('/').next().unwrap_or(path);
        let key_file = name.ends_with("-key.pem") || name.ends_with(".key");
        let admin_kubeconfig = path.starts_with("admin/") && name.ends_with(".kubeconfig");
        if key_file || admin_kubeconfig {
            continue;
        }
        let text = String::from_utf8_lossy(&entry.data);
        let (tag, how) = match private_key_block(&text, Block::Whole) {
            Some(tag) => (tag, ""),
            None => {
                let decoded: Vec<Vec<u8>> = base64_runs(&text).collect();
                match embedded_key(&decoded) {
                    Some(tag) => (tag, ", base64-encoded"),
                    None if decoded.iter().any(|der| is_private_key_der(der)) => (
                        "PRIVATE KEY".to_owned(),
                        " as bare base64 DER, without its PEM lines",
                    ),
                    None => continue,
                }
            }
        };
        // Only the block's type is named: the finding must not become a second leak.
        findings.push(Diagnostic::file_error(
            Code::LeakedKey,
            path,
            format!(
                "holds a private key (a `{tag}` block{how}); a key belongs only in its own key \
                 file (`*-key.pem`, `sa.key`, mode 0600) or an admin kubeconfig"
            ),
            "remove the key from this file and treat it as exposed: replace it and re-issue \
             what it signs or secures",
        ));
    }
}

/// Which PEM blocks [`private_key_block`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    /// Only a block with its END line, so a document that merely names the marker is not
    /// taken for a key.
    Whole,
    /// A BEGIN line is enough: a decoded base64 run may hold only the start of a block.
    BeginOnly,
}

/// The type of the first private-key PEM block in `text` (`RSA PRIVATE KEY`, `PRIVATE KEY`,
/// `OPENSSH PRIVATE KEY`, ...), counting blocks as `block` says.
fn private_key_block(text: &str, block: Block) -> Option<String> {
    pem_block(text, block, |tag| tag.ends_with("PRIVATE KEY"))
}

/// The type of the first PEM block in `text` whose type `wanted` accepts.
fn pem_block(text: &str, block: Block, wanted: impl Fn(&str) -> bool) -> Option<String> {
    let whole = block == Block::Whole;
    const BEGIN: &str = "-----BEGIN ";
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        rest = &rest[start + BEGIN.len()..];
        let end = rest.find("-----")?;
        let tag = &rest[..end];
        let plausible = wanted(tag) && tag.len() <= 40 && !tag.contains('\n');
        if plausible && (!whole || rest[end..].contains(&format!("-----END {tag}-----"))) {
            return Some(tag.to_owned());
        }
    }
    None
}

/// The bytes of every base64 run in `text` long enough to hold a key: each run on a line,
/// and each block of lines that are base64 and nothing else (a PEM body without its lines,
/// wrapped). Shorter runs hold no key: "-----BEGIN PRIVATE KEY-----" alone takes 36
/// characters in base64.
fn base64_runs(text: &str) -> impl Iterator<Item = Vec<u8>> + '_ {
    let is_base64 = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=';
    let mut blocks: Vec<String> = Vec::new();
    let mut block = String::new();
    for line in text.lines().map(str::trim) {
        if !line.is_empty() && line.chars().all(is_base64) {
            block.push_str(line);
        } else if !block.is_empty() {
            blocks.push(std::mem::take(&mut block));
        }
    }
    blocks.push(block);
    let runs = text
        .split(move |c: char| !is_base64(c))
        .filter(|run| run.len() >= 36)
        .map(str::to_owned);
    blocks
        .into_iter()
        .filter(|block| block.len() >= 36)
        .chain(runs)
        .filter_map(|run| {
            let run = run.trim_end_matches('=');
            let whole = &run[..run.len() - run.len() % 4];
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(whole)
                .ok()
        })
}

/// DER that starts the way a private key does, whatever its algorithm: a SEQUENCE whose
/// first element is the version INTEGER 0 (PKCS#8, PKCS#1 RSA) or 1 (SEC1 EC). Certificates
/// and public keys start with a SEQUENCE inside the SEQUENCE instead.
fn is_private_key_der(der: &[u8]) -> bool {
    let body = match der {
        [0x30, 0x81, _, rest @ ..] => rest,
        [0x30, 0x82, _, _, rest @ ..] => rest,
        [0x30, len, rest @ ..] if *len < 0x80 => rest,
        _ => return false,
    };
    matches!(
        body,
        [0x02, 0x01, 0x00, 0x30 | 0x02, ..] | [0x02, 0x01, 0x01, 0x04, ..]
    )
}

/// The type of a private key hidden in base64 (see [`base64_runs`]): a one-line run such
/// as a kubeconfig's `*-data`, a wrapped block, or the first line of one.
fn embedded_key(decoded: &[Vec<u8>]) -> Option<String> {
    decoded
        .iter()
        .find_map(|bytes| private_key_block(&String::from_utf8_lossy(bytes), Block::BeginOnly))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_blocks_are_found_by_type_and_a_bare_marker_is_not() {
        let key = "x\n-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n";
        assert_eq!(
            private_key_block(key, Block::Whole).as_deref(),
            Some("EC PRIVATE KEY")
        );
        let doc = "a key starts with -----BEGIN PRIVATE KEY----- and that is all";
        assert_eq!(private_key_block(doc, Block::Whole), None);
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        assert_eq!(private_key_block(cert, Block::Whole), None);
    }

    #[test]
    fn base64_keys_are_found_one_line_or_wrapped() {
        let pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
        let encoded = base64::engine::general_purpose::STANDARD.encode(pem);
        let yaml = format!("users:\n- user:\n    client-key-data: {encoded}\n");
        assert_eq!(
            embedded_key(&base64_runs(&yaml).collect::<Vec<_>>()).as_deref(),
            Some("OPENSSH PRIVATE KEY")
        );
        let wrapped: String = encoded
            .as_bytes()
            .chunks(76)
            .map(|line| format!("  {}\n", String::from_utf8_lossy(line)))
            .collect();
        assert_eq!(
            embedded_key(&base64_runs(&wrapped).collect::<Vec<_>>()).as_deref(),
            Some("OPENSSH PRIVATE KEY")
        );
        let secret = "secret: c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=\n";
        assert_eq!(embedded_key(&base64_runs(secret).collect::<Vec<_>>()), None);
    }
}
