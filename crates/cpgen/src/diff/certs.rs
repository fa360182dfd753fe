//! Why a certificate at the same place in two bundles differs: names, key, validity, issuer.
//! The certificates are those verify parsed; nothing is parsed here.

use std::collections::BTreeSet;

use time::OffsetDateTime;

use super::Parsed;
use crate::verify::CertInfo;

/// Why a certificate was re-issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum CertReason {
    /// Its subject alternative names differ.
    Sans,
    /// Its public key differs.
    Key,
    /// Its NotBefore or NotAfter differs.
    Validity,
    /// Its issuer's name, or the key of the CA in the bundle that signed it, differs.
    Issuer,
    /// Its subject differs.
    Subject,
    /// Something else differs (an extension, the signature): none of the above.
    Other,
    /// Its serial number differs (cpgen derives it from the whole certificate, so any
    /// change above changes it too).
    Serial,
}

impl CertReason {
    /// `sans`, `key`, `validity`, `issuer`, `subject`, `other`, `serial`.
    pub fn word(self) -> &'static str {
        match self {
            CertReason::Sans => "sans",
            CertReason::Key => "key",
            CertReason::Validity => "validity",
            CertReason::Issuer => "issuer",
            CertReason::Subject => "subject",
            CertReason::Other => "other",
            CertReason::Serial => "serial",
        }
    }
}

/// A certificate at the same place in both bundles that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertChange {
    /// The kubeconfig field that embeds it (`admin.client-certificate-data`); `None` for
    /// the file's own certificate.
    pub field: Option<String>,
    /// Why it differs, in the order of [`CertReason`].
    pub reasons: Vec<CertReason>,
    /// Names and addresses only the new one carries.
    pub sans_added: Vec<String>,
    /// Names and addresses only the old one carries.
    pub sans_removed: Vec<String>,
    /// The old NotAfter.
    pub old_not_after: OffsetDateTime,
    /// The new NotAfter.
    pub new_not_after: OffsetDateTime,
    /// The old serial, colon-separated hex.
    pub old_serial: String,
    /// The new serial.
    pub new_serial: String,
    /// The old issuer's CN.
    pub old_issuer: String,
    /// The new issuer's CN.
    pub new_issuer: String,
}

/// Every certificate of the file at `path` (its own, and those a kubeconfig embeds under
/// `path#field`) that both bundles have and that differs.
pub(super) fn changes(path: &str, old: &Parsed<'_>, new: &Parsed<'_>) -> Vec<CertChange> {
    old.certs
        .range(path.to_owned()..)
        .take_while(|(key, _)| key.starts_with(path))
        .filter_map(|(key, before)| {
            let field = match &key[path.len()..] {
                "" => None,
                rest => Some(rest.strip_prefix('#')?.to_owned()),
            };
            let after = new.certs.get(key)?;
            (before.der != after.der).then(|| between(field, (before, old), (after, new)))
        })
        .collect()
}

fn between(
    field: Option<String>,
    (before, old): (&CertInfo, &Parsed<'_>),
    (after, new): (&CertInfo, &Parsed<'_>),
) -> CertChange {
    let (old_sans, new_sans) = (sans(before), sans(after));
    let issuer_keys = (issuer_key(before, old), issuer_key(after, new));
    let issuer_differs =
        before.issuer != after.issuer || matches!(issuer_keys, (Some(a), Some(b)) if a != b);
    let mut reasons: Vec<CertReason> = [
        (CertReason::Sans, old_sans != new_sans),
        (CertReason::Key, before.public_key != after.public_key),
        (
            CertReason::Validity,
            (before.not_before, before.not_after) != (after.not_before, after.not_after),
        ),
        (CertReason::Issuer, issuer_differs),
        (CertReason::Subject, before.subject != after.subject),
    ]
    .into_iter()
    .filter_map(|(reason, differs)| differs.then_some(reason))
    .collect();
    if reasons.is_empty() {
        reasons.push(CertReason::Other);
    }
    let (old_serial, new_serial) = (before.serial(), after.serial());
    if old_serial != new_serial {
        reasons.push(CertReason::Serial);
    }
    CertChange {
        field,
        reasons,
        sans_added: new_sans.difference(&old_sans).cloned().collect(),
        sans_removed: old_sans.difference(&new_sans).cloned().collect(),
        old_not_after: before.not_after,
        new_not_after: after.not_after,
        old_serial,
        new_serial,
        old_issuer: before.issuer_common_name.clone(),
        new_issuer: after.issuer_common_name.clone(),
    }
}

/// DNS names and IP addresses, as text.
fn sans(cert: &CertInfo) -> BTreeSet<String> {
    let ips = cert.ips.iter().map(ToString::to_string);
    cert.dns.iter().cloned().chain(ips).collect()
}

/// The public key of the CA in the same bundle that signed `cert`, if the bundle has it.
fn issuer_key<'a>(cert: &CertInfo, bundle: &'a Parsed<'_>) -> Option<&'a [u8]> {
    bundle
        .certs
        .values()
        .find(|ca| ca.is_ca && ca.subject == cert.issuer && cert.signed_by(ca))
        .map(|ca| ca.public_key.as_slice())
}
