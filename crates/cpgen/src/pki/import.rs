//! `cpgen secrets import-ca`: bringing an existing CA (made by cfssl or openssl) into the
//! secrets file, after checking that it can really serve as this cluster's CA.

use rcgen::PublicKeyData;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::identities::Ca;
use super::keys::{pem_encode, PrivateKey};
use super::secrets::Secrets;
use crate::error::ImportProblem;
use crate::Error;

/// Whether [`import_ca`] may replace a CA the secrets already have.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ImportMode {
    /// Refuse ([`ImportProblem::AlreadyPresent`]): replacing a CA invalidates every
    /// certificate it signed.
    #[default]
    KeepExisting,
    /// Replace it (`cpgen secrets import-ca --force`).
    Replace,
}

/// Checks `cert_pem` and `key_pem` and stores them in `secrets` as the `ca` CA. `now` is the
/// time the CA must be valid at; `mode` says whether a CA key the secrets already have may
/// be replaced.
/// Returns the CA's NotAfter: every certificate it signs ends by then.
pub fn import_ca(
    secrets: &mut Secrets,
    ca: Ca,
    cert_pem: &str,
    key_pem: &str,
    now: OffsetDateTime,
    mode: ImportMode,
) -> Result<OffsetDateTime, Error> {
    if mode == ImportMode::KeepExisting
        && (secrets.keys.contains_key(ca.id()) || secrets.imported_cas.contains_key(ca.name()))
    {
        return Err(Error::Import {
            which: ca.name(),
            problem: ImportProblem::AlreadyPresent,
        });
    }
    let slot = ImportSlot {
        key_id: ca.id().to_owned(),
        cert_name: ca.name().to_owned(),
    };
    import_into(secrets, ca, &slot, cert_pem, key_pem, now)
}

/// Where in the secrets file an imported CA goes: the CA in use, or a rotation's new one.
pub(crate) struct ImportSlot {
    /// The key's name.
    pub(crate) key_id: String,
    /// The certificate's name among the imported CAs.
    pub(crate) cert_name: String,
}

/// Checks `cert_pem` and `key_pem` as a CA for `ca` valid at `now`, and stores them in
/// `slot`. Returns the CA's NotAfter.
pub(crate) fn import_into(
    secrets: &mut Secrets,
    ca: Ca,
    slot: &ImportSlot,
    cert_pem: &str,
    key_pem: &str,
    now: OffsetDateTime,
) -> Result<OffsetDateTime, Error> {
    let problem = |problem| Error::Import {
        which: ca.name(),
        problem,
    };
    let der = certificate_der(cert_pem).map_err(problem)?;
    let key = PrivateKey::from_pem(key_pem).map_err(|e| problem(ImportProblem::BadKey(e)))?;
    check_ca(&der, &key, now).map_err(problem)?;
    let not_after = parse(&der)
        .map_err(problem)?
        .validity()
        .not_after
        .to_datetime();
    let key_pkcs8 = key
        .to_pkcs8_pem()
        .map_err(|e| problem(ImportProblem::BadKey(e)))?;
    let info = super::keys::PublicKeyInfo::from_private_pem(&key_pkcs8)
        .map_err(|e| problem(ImportProblem::BadKey(e)))?;
    secrets.public.insert(slot.key_id.clone(), info);
    secrets
        .keys
        .insert(slot.key_id.clone(), zeroize::Zeroizing::new(key_pkcs8));
    secrets
        .imported_cas
        .insert(slot.cert_name.clone(), pem_encode("CERTIFICATE", der));
    Ok(not_after)
}

pub(crate) fn certificate_der(cert_pem: &str) -> Result<Vec<u8>, ImportProblem> {
    pem::parse_many(cert_pem)
        .map_err(|_| ImportProblem::NoCertificate)?
        .into_iter()
        .find(|block| block.tag() == "CERTIFICATE")
        .map(|block| block.into_contents())
        .ok_or(ImportProblem::NoCertificate)
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, ImportProblem> {
    X509Certificate::from_der(der)
        .map(|(_, cert)| cert)
        .map_err(|e| ImportProblem::BadCertificate(e.to_string()))
}

fn check_ca(der: &[u8], key: &PrivateKey, now: OffsetDateTime) -> Result<(), ImportProblem> {
    let cert = parse(der)?;
    check_may_sign(&cert)?;
    let validity = cert.validity();
    let rfc3339 = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_else(|_| t.to_string());
    if validity.not_after.to_datetime() < now {
        return Err(ImportProblem::Expired(rfc3339(
            validity.not_after.to_datetime(),
        )));
    }
    if validity.not_before.to_datetime() > now {
        return Err(ImportProblem::NotYetValid(rfc3339(
            validity.not_before.to_datetime(),
        )));
    }
    if cert.public_key().subject_public_key.data.as_ref() != key.der_bytes() {
        return Err(ImportProblem::KeyMismatch);
    }
    Ok(())
}

/// A CA certificate that may sign: CA:TRUE, and keyCertSign if it has a keyUsage.
fn check_may_sign(cert: &X509Certificate<'_>) -> Result<(), ImportProblem> {
    let is_ca = cert
        .basic_constraints()
        .map_err(|e| ImportProblem::BadCertificate(e.to_string()))?
        .is_some_and(|bc| bc.value.ca);
    if !is_ca {
        return Err(ImportProblem::NotACa);
    }
    let key_usage = cert
        .key_usage()
        .map_err(|e| ImportProblem::BadCertificate(e.to_string()))?;
    if key_usage.is_some_and(|ku| !ku.value.key_cert_sign()) {
        return Err(ImportProblem::NoCertSign);
    }
    Ok(())
}

/// Checks a stored CA certificate and its stored key on every load, as at import: the
/// secrets file may have been edited by hand since.
pub(crate) fn check_pair(cert_pem: &str, key_pem: &str) -> Result<(), ImportProblem> {
    let der = certificate_der(cert_pem)?;
    let key = PrivateKey::from_pem(key_pem).map_err(ImportProblem::BadKey)?;
    let cert = parse(&der)?;
    check_may_sign(&cert)?;
    if cert.public_key().subject_public_key.data.as_ref() != key.der_bytes() {
        return Err(ImportProblem::KeyMismatch);
    }
    Ok(())
}

/// The NotAfter of a stored CA certificate.
pub(crate) fn not_after(cert_pem: &str) -> Result<OffsetDateTime, ImportProblem> {
    let der = certificate_der(cert_pem)?;
    Ok(parse(&der)?.validity().not_after.to_datetime())
}
