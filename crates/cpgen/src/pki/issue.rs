//! Issuing the whole PKI from a plan and its secrets. Certificates are a pure function of
//! the two: serials are derived from everything a certificate says (subject, SANs, usages,
//! validity, key, issuer); validity comes from the secrets' issue times; every signature is
//! deterministic.

use rayon::prelude::*;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::identities::{leaf_identities, Ca, Identity, Usage};
use super::keys::PrivateKey;
use super::rotation::{CaSource, Generation, Rotated, Stage};
use super::secrets::Secrets;
use crate::plan::Plan;
use crate::types::{KeyAlgorithm, San};
use crate::Error;

/// Certificates are valid from this long before their issue time, so that a clock a little
/// behind does not reject them.
pub const BACKDATE: Duration = Duration::minutes(5);

/// A CA certificate and its key.
#[derive(Clone)]
pub struct CaCertificate {
    /// Which CA.
    pub ca: Ca,
    /// Certificate, PEM.
    pub cert_pem: String,
    /// Private key, PKCS#8 PEM (as stored in the secrets file).
    pub key_pem: String,
    /// True when it came from `cpgen secrets import-ca`. Only the tests read it.
    #[cfg_attr(not(feature = "test-support"), allow(dead_code))]
    pub imported: bool,
}

/// A leaf certificate and its key.
#[derive(Clone)]
pub struct LeafCertificate {
    /// What it is.
    pub identity: Identity,
    /// Certificate, PEM.
    pub cert_pem: String,
    /// Private key, PKCS#8 PEM.
    pub key_pem: String,
}

/// Everything the PKI of a plan consists of.
#[derive(Clone)]
pub struct CertSet {
    /// The distinct CAs of the layout (one in shared-ca, three otherwise): the generation
    /// that signs, during a rotation.
    pub cas: Vec<CaCertificate>,
    /// What trusts each CA: its certificates, PEM, the signing one first (two during a
    /// rotation's `start` and `issue`).
    pub trust: Vec<(Ca, String)>,
    /// Every leaf certificate it was asked for, in that order.
    pub leaves: Vec<LeafCertificate>,
    /// The service-account signing key, PKCS#8 PEM.
    pub service_account_key_pem: String,
    /// Its public key, SubjectPublicKeyInfo PEM.
    pub service_account_public_pem: String,
    /// The encryption-at-rest providers and their keys, the one that writes first.
    pub(crate) encryption: Vec<(&'static str, [u8; 32])>,
    /// The rotations in progress and their stage.
    pub rotations: Vec<(Rotated, Stage)>,
    /// Position of each leaf by id: thousands of workers make a scan quadratic.
    index: std::collections::HashMap<String, usize>,
}

impl std::fmt::Debug for CertSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let leaves: Vec<&str> = self.leaves.iter().map(|l| l.identity.id.as_str()).collect();
        f.debug_struct("CertSet")
            .field("leaves", &leaves)
            .finish_non_exhaustive()
    }
}

impl CertSet {
    /// The CA that signs for `ca`'s role (the shared one in shared-ca).
    pub fn ca(&self, ca: Ca) -> Option<&CaCertificate> {
        self.cas
            .iter()
            .find(|c| c.ca == ca)
            .or_else(|| self.cas.iter().find(|c| c.ca == Ca::Kubernetes))
    }

    /// The trust bundle of `ca`'s role, PEM: every generation a trust file carries.
    pub fn trust(&self, ca: Ca) -> Option<&str> {
        let find = |ca: Ca| self.trust.iter().find(|(c, _)| *c == ca);
        find(ca)
            .or_else(|| find(Ca::Kubernetes))
            .map(|(_, pem)| pem.as_str())
    }

    /// The leaf with this id (e.g. `apiserver/kubem00`).
    pub fn leaf(&self, id: &str) -> Option<&LeafCertificate> {
        self.index.get(id).and_then(|&i| self.leaves.get(i))
    }
}

/// A CA ready to sign.
struct Signer {
    issuer: Issuer<'static, PrivateKey>,
    not_after: OffsetDateTime,
    /// The CA certificate (DER): a leaf's serial covers its issuer whole.
    cert_der: Vec<u8>,
}

/// The CAs of a plan, ready to sign its leaves one at a time: a bundle is written host by
/// host, and each host's certificates are issued only when its files are.
pub struct Authority<'a> {
    plan: &'a Plan,
    secrets: &'a Secrets,
    cas: Vec<CaCertificate>,
    trust: Vec<(Ca, String)>,
    signers: Vec<(Ca, Signer)>,
}

impl<'a> Authority<'a> {
    /// Loads or makes every CA certificate of the plan's layout.
    pub fn new(plan: &'a Plan, secrets: &'a Secrets) -> Result<Authority<'a>, Error> {
        let mut cas = Vec::new();
        let mut trust = Vec::new();
        let mut signers = Vec::new();
        for ca in Ca::all_in(plan.pki.layout) {
            let stage = secrets.rotation(Rotated::Ca(ca));
            let mut generations = Generation::trusted(stage).iter();
            let signing = generations.next().copied().unwrap_or(Generation::Current);
            let (certificate, signer) = ca_certificate(plan, ca, &secrets.ca_source(ca, signing))?;
            let mut pem = certificate.cert_pem.clone();
            for other in generations {
                let (certificate, _) = ca_certificate(plan, ca, &secrets.ca_source(ca, *other))?;
                pem.push_str(&certificate.cert_pem);
            }
            cas.push(certificate);
            trust.push((ca, pem));
            signers.push((ca, signer));
        }
        Ok(Authority {
            plan,
            secrets,
            cas,
            trust,
            signers,
        })
    }

    /// When each CA of the layout expires.
    pub fn ca_expiries(&self) -> Vec<(Ca, OffsetDateTime)> {
        self.signers
            .iter()
            .map(|(ca, signer)| (*ca, signer.not_after))
            .collect()
    }

    /// Issues one leaf certificate; its key must be in the secrets.
    pub fn sign(&self, identity: Identity) -> Result<LeafCertificate, Error> {
        let effective = identity.signer.effective(self.plan.pki.layout);
        let signer = self
            .signers
            .iter()
            .find(|(c, _)| *c == effective)
            .map(|(_, s)| s)
            .ok_or_else(|| Error::MissingKey {
                identity: effective.id().to_owned(),
            })?;
        let cert_pem = leaf_certificate(self.plan, self.secrets, &identity, signer)?;
        let key_pem = self.secrets.key_pem(&identity.id)?.to_owned();
        Ok(LeafCertificate {
            identity,
            cert_pem,
            key_pem,
        })
    }

    /// Issues `identities` across all cores into a [`CertSet`] with the CAs, the
    /// service-account key and the encryption key.
    pub fn cert_set(&self, identities: Vec<Identity>) -> Result<CertSet, Error> {
        // rayon keeps the order, so the output does not depend on the number of threads.
        let leaves = identities
            .into_par_iter()
            .map(|identity| self.sign(identity))
            .collect::<Result<Vec<_>, Error>>()?;
        let (service_account_key_pem, service_account_public_pem) = self.service_account()?;
        let index = leaves
            .iter()
            .enumerate()
            .map(|(i, l)| (l.identity.id.clone(), i))
            .collect();
        Ok(CertSet {
            index,
            cas: self.cas.clone(),
            trust: self.trust.clone(),
            leaves,
            service_account_key_pem,
            service_account_public_pem,
            encryption: self
                .secrets
                .encryption_providers(self.plan.pki.encryption_provider)
                .ok_or_else(|| Error::MissingKey {
                    identity: format!("encryption/{}", self.plan.pki.encryption_provider),
                })?,
            rotations: Rotated::ALL
                .into_iter()
                .filter_map(|r| Some((r, self.secrets.rotation(r)?)))
                .collect(),
        })
    }

    /// The service-account key that signs, and every public key that checks tokens (two
    /// during a rotation), signer first.
    fn service_account(&self) -> Result<(String, String), Error> {
        let rotated = Rotated::ServiceAccount;
        let id = |generation: &Generation| match generation {
            Generation::Current => rotated.key_id().to_owned(),
            Generation::Next => rotated.next_key_id(),
        };
        let generations = Generation::trusted(self.secrets.rotation(rotated));
        let signing = generations
            .first()
            .map_or_else(|| rotated.key_id().to_owned(), id);
        let mut public = String::new();
        for generation in generations {
            public.push_str(&self.secrets.key(&id(generation))?.public_key_pem());
        }
        Ok((self.secrets.key_pem(&signing)?.to_owned(), public))
    }
}

/// Issues every certificate of the plan. Every key must already be in `secrets` (see
/// [`Secrets::fill`]).
pub fn issue(plan: &Plan, secrets: &Secrets) -> Result<CertSet, Error> {
    Authority::new(plan, secrets)?.cert_set(leaf_identities(plan))
}

fn ca_certificate(
    plan: &Plan,
    ca: Ca,
    source: &CaSource<'_>,
) -> Result<(CaCertificate, Signer), Error> {
    let key = source.secrets.key(&source.key_id)?;
    let key_pem = source.secrets.key_pem(&source.key_id)?.to_owned();
    let issue_error = |source| Error::Issue {
        identity: ca.id().to_owned(),
        source,
    };
    if let Some(cert_pem) = source.imported {
        let not_after = super::import::not_after(cert_pem).map_err(|problem| Error::Import {
            which: ca.name(),
            problem,
        })?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key).map_err(issue_error)?;
        let cert_der =
            super::import::certificate_der(cert_pem).map_err(|problem| Error::Import {
                which: ca.name(),
                problem,
            })?;
        let certificate = CaCertificate {
            ca,
            cert_pem: cert_pem.to_owned(),
            key_pem,
            imported: true,
        };
        let signer = Signer {
            issuer,
            not_after,
            cert_der,
        };
        return Ok((certificate, signer));
    }
    let (not_before, not_after) = validity(source.issued_at, plan.pki.ca_validity.days());
    let mut params = CertificateParams::default();
    params.distinguished_name = subject(ca.common_name(), None);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    params.not_before = not_before;
    params.not_after = not_after;
    // Self-signed: the issuer is the subject, which the serial already covers.
    params.serial_number = Some(
        SerialBasis::new("ca")
            .subject(ca.common_name(), None)
            .validity(not_before, not_after)
            .key(&key)
            .serial(),
    );
    params.key_identifier_method = KeyIdMethod::Sha256;
    let certificate = params.self_signed(&key).map_err(issue_error)?;
    let cert_der = certificate.der().to_vec();
    let issuer = Issuer::new(params, key);
    let certificate = CaCertificate {
        ca,
        cert_pem: certificate.pem(),
        key_pem,
        imported: false,
    };
    let signer = Signer {
        issuer,
        not_after,
        cert_der,
    };
    Ok((certificate, signer))
}

fn leaf_certificate(
    plan: &Plan,
    secrets: &Secrets,
    identity: &Identity,
    signer: &Signer,
) -> Result<String, Error> {
    // The leaf's key only lends its public half to the certificate.
    let key = secrets.public_key(&identity.id)?;
    let issue_error = |source| Error::Issue {
        identity: identity.id.clone(),
        source,
    };
    let (not_before, not_after) = validity(secrets.issued_at(), plan.pki.cert_validity.days());
    let mut params = CertificateParams::default();
    params.distinguished_name = subject(&identity.common_name, identity.organization);
    params.subject_alt_names = identity
        .sans
        .iter()
        .map(san)
        .collect::<Result<_, _>>()
        .map_err(issue_error)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if matches!(
        key.algorithm,
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096
    ) {
        params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    params.extended_key_usages = match identity.usage {
        Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
        Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        Usage::ServerAndClient => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    };
    params.not_before = not_before;
    // A certificate never outlives its CA, which matters for imported CAs.
    params.not_after = not_after.min(signer.not_after);
    // Issued after its CA ended: a certificate that ends before it begins.
    if params.not_after <= not_before {
        let ended = signer.not_after.format(&Rfc3339).unwrap_or_default();
        return Err(Error::Import {
            which: identity.signer.effective(plan.pki.layout).name(),
            problem: super::ImportProblem::Expired(ended),
        });
    }
    params.serial_number = Some(
        SerialBasis::new(identity.usage.tag())
            .subject(&identity.common_name, identity.organization)
            .sans(&identity.sans)
            .validity(params.not_before, params.not_after)
            .key(key)
            .issuer(&signer.cert_der)
            .serial(),
    );
    params.use_authority_key_identifier_extension = true;
    params.key_identifier_method = KeyIdMethod::Sha256;
    let certificate = params
        .signed_by(&key, &signer.issuer)
        .map_err(issue_error)?;
    Ok(certificate.pem())
}

/// O first, then CN, as openssl and cfssl order them.
fn subject(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    if let Some(organization) = organization {
        name.push(DnType::OrganizationName, organization);
    }
    name.push(DnType::CommonName, common_name);
    name
}

fn san(san: &San) -> Result<SanType, rcgen::Error> {
    Ok(match san {
        San::Dns(name) => SanType::DnsName(name.as_str().try_into()?),
        San::Ip(ip) => SanType::IpAddress(*ip),
    })
}

/// NotBefore and NotAfter for a certificate issued at `issued_at`.
fn validity(issued_at: OffsetDateTime, days: u32) -> (OffsetDateTime, OffsetDateTime) {
    (
        issued_at - BACKDATE,
        issued_at + Duration::days(i64::from(days)),
    )
}

/// What a serial is derived from: everything that makes the certificate what it is, so
/// that two different certificates from one CA never share a serial (RFC 5280 4.1.2.2; NSS
/// rejects reuse), while the same inputs always give the same one. The key usages are not
/// hashed on their own: they follow from the kind (CA, or the leaf's extended usage) and
/// the key's algorithm, which the public key carries.
struct SerialBasis(Sha256);

impl SerialBasis {
    /// `kind` is `ca` or the leaf's extended key usage.
    fn new(kind: &str) -> SerialBasis {
        SerialBasis(Sha256::new_with_prefix(b"cpgen serial v2\0")).field(kind.as_bytes())
    }

    /// One length-prefixed field, so that no two different sequences hash alike.
    fn field(mut self, bytes: &[u8]) -> SerialBasis {
        self.0.update((bytes.len() as u64).to_be_bytes());
        self.0.update(bytes);
        self
    }

    fn subject(self, common_name: &str, organization: Option<&str>) -> SerialBasis {
        let with_cn = self.field(common_name.as_bytes());
        match organization {
            Some(organization) => with_cn.field(b"O").field(organization.as_bytes()),
            None => with_cn.field(b"no O"),
        }
    }

    fn sans(self, sans: &[San]) -> SerialBasis {
        let count = self.field(&(sans.len() as u64).to_be_bytes());
        sans.iter().fold(count, |basis, san| match san {
            San::Dns(name) => basis.field(b"DNS").field(name.as_str().as_bytes()),
            San::Ip(ip) => basis.field(b"IP").field(ip.to_string().as_bytes()),
        })
    }

    fn validity(self, not_before: OffsetDateTime, not_after: OffsetDateTime) -> SerialBasis {
        self.field(&not_before.unix_timestamp().to_be_bytes())
            .field(&not_after.unix_timestamp().to_be_bytes())
    }

    fn key(self, key: &impl PublicKeyData) -> SerialBasis {
        self.field(&key.subject_public_key_info())
    }

    fn issuer(self, ca_cert_der: &[u8]) -> SerialBasis {
        self.field(ca_cert_der)
    }

    /// A positive serial of exactly 16 bytes.
    fn serial(self) -> SerialNumber {
        let digest = self.0.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        // Top bit clear keeps it positive; the next bit set keeps it exactly 16 bytes long.
        bytes[0] = (bytes[0] & 0x7f) | 0x40;
        SerialNumber::from_slice(&bytes)
    }
}
