//! Private keys: generation, parsing from the formats cfssl and openssl write (PKCS#1, SEC1,
//! PKCS#8), PKCS#8 PEM output, and deterministic signing for rcgen.
//!
//! Signatures must be a pure function of key and message (a bundle is a pure function of config and secrets): RSA PKCS#1 v1.5
//! and Ed25519 are by nature; ECDSA uses RFC 6979 nonces from the RustCrypto curves, because
//! rcgen's own ECDSA signing draws random nonces.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{self, KeySize};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256};
use p256::ecdsa::signature::Signer;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rcgen::{PublicKeyData, SignatureAlgorithm, SigningKey};

use crate::error::KeyError;
use crate::types::KeyAlgorithm;

/// What a certificate needs of a key it does not sign with: the algorithm and the public
/// key. Reading it is cheap (no curve arithmetic in constant-time Rust), which matters when a
/// cluster has thousands of keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyInfo {
    /// The key's algorithm.
    pub algorithm: KeyAlgorithm,
    /// The SubjectPublicKeyInfo BIT STRING contents.
    pub public: Vec<u8>,
}

impl PublicKeyInfo {
    /// The public half of a PEM private key. PKCS#8 keys are read with aws-lc (whose curve
    /// code is fast); other formats go through [`PrivateKey::from_pem`].
    pub fn from_private_pem(text: &str) -> Result<PublicKeyInfo, KeyError> {
        use aws_lc_rs::signature::{
            EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING,
        };
        let block = pem::parse(text).map_err(|_| KeyError::NotPem)?;
        if block.tag() == "PRIVATE KEY" {
            let der = zeroize::Zeroizing::new(block.into_contents());
            let ec = |alg, algorithm| {
                EcdsaKeyPair::from_pkcs8(alg, &der)
                    .ok()
                    .map(|k| PublicKeyInfo {
                        algorithm,
                        public: k.public_key().as_ref().to_vec(),
                    })
            };
            if let Some(info) = ec(&ECDSA_P256_SHA256_ASN1_SIGNING, KeyAlgorithm::EcdsaP256)
                .or_else(|| ec(&ECDSA_P384_SHA384_ASN1_SIGNING, KeyAlgorithm::EcdsaP384))
            {
                return Ok(info);
            }
        }
        let key = PrivateKey::from_pem(text)?;
        Ok(PublicKeyInfo {
            algorithm: key.algorithm(),
            public: key.public.clone(),
        })
    }
}

/// A fresh key as PKCS#8 PEM with its public half. ECDSA keys are made by aws-lc, whose
/// curve code is much faster than the constant-time Rust used for deterministic signing;
/// the PEM is the same standard PKCS#8 either way.
pub fn generate_pem(
    algorithm: KeyAlgorithm,
) -> Result<(zeroize::Zeroizing<String>, PublicKeyInfo), KeyError> {
    use aws_lc_rs::signature::{
        EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING,
    };
    let curve = match algorithm {
        KeyAlgorithm::EcdsaP256 => Some(&ECDSA_P256_SHA256_ASN1_SIGNING),
        KeyAlgorithm::EcdsaP384 => Some(&ECDSA_P384_SHA384_ASN1_SIGNING),
        _ => None,
    };
    if let Some(curve) = curve {
        let failed = |_| KeyError::Crypto("key generation");
        let document = EcdsaKeyPair::generate_pkcs8(curve, &SystemRandom::new()).map_err(failed)?;
        let der = zeroize::Zeroizing::new(document.as_ref().to_vec());
        let pair = EcdsaKeyPair::from_pkcs8(curve, &der)
            .map_err(|_| KeyError::Crypto("key generation"))?;
        let info = PublicKeyInfo {
            algorithm,
            public: pair.public_key().as_ref().to_vec(),
        };
        return Ok((
            zeroize::Zeroizing::new(pem_encode("PRIVATE KEY", der.to_vec())),
            info,
        ));
    }
    let key = PrivateKey::generate(algorithm)?;
    Ok((
        zeroize::Zeroizing::new(key.to_pkcs8_pem()?),
        key.public_info(),
    ))
}

impl PublicKeyData for PublicKeyInfo {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        signature_algorithm_of(self.algorithm)
    }
}

fn signature_algorithm_of(algorithm: KeyAlgorithm) -> &'static SignatureAlgorithm {
    match algorithm {
        KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        KeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        KeyAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
        _ => &rcgen::PKCS_RSA_SHA256,
    }
}

/// A private key of one of the algorithms of [`KeyAlgorithm`].
pub struct PrivateKey {
    inner: Inner,
    algorithm: KeyAlgorithm,
    /// Public key bytes as they go into a SubjectPublicKeyInfo's BIT STRING.
    public: Vec<u8>,
}

enum Inner {
    Rsa(rsa::KeyPair),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Ed25519(Ed25519KeyPair),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "PrivateKey({})", self.algorithm)
    }
}

impl PrivateKey {
    /// A fresh key from the operating system's random source.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<PrivateKey, KeyError> {
        let failed = |_| KeyError::Crypto("key generation");
        let inner = match algorithm {
            KeyAlgorithm::Rsa2048 => {
                Inner::Rsa(rsa::KeyPair::generate(KeySize::Rsa2048).map_err(failed)?)
            }
            KeyAlgorithm::Rsa3072 => {
                Inner::Rsa(rsa::KeyPair::generate(KeySize::Rsa3072).map_err(failed)?)
            }
            KeyAlgorithm::Rsa4096 => {
                Inner::Rsa(rsa::KeyPair::generate(KeySize::Rsa4096).map_err(failed)?)
            }
            KeyAlgorithm::EcdsaP256 => Inner::P256(p256::ecdsa::SigningKey::from(
                p256::SecretKey::from_bytes(&random_scalar::<32>()?.into())
                    .map_err(|_| KeyError::Crypto("key generation"))?,
            )),
            KeyAlgorithm::EcdsaP384 => Inner::P384(p384::ecdsa::SigningKey::from(
                p384::SecretKey::from_bytes(&random_scalar::<48>()?.into())
                    .map_err(|_| KeyError::Crypto("key generation"))?,
            )),
            KeyAlgorithm::Ed25519 => Inner::Ed25519(Ed25519KeyPair::generate().map_err(failed)?),
        };
        Ok(PrivateKey::from_inner(inner))
    }

    fn from_inner(inner: Inner) -> PrivateKey {
        let (algorithm, public) = match &inner {
            Inner::Rsa(key) => {
                let algorithm = match key.public_modulus_len() * 8 {
                    0..=2048 => KeyAlgorithm::Rsa2048,
                    2049..=3072 => KeyAlgorithm::Rsa3072,
                    _ => KeyAlgorithm::Rsa4096,
                };
                (algorithm, key.public_key().as_ref().to_vec())
            }
            Inner::P256(key) => (
                KeyAlgorithm::EcdsaP256,
                key.verifying_key()
                    .to_encoded_point(false)
                    .as_bytes()
                    .to_vec(),
            ),
            Inner::P384(key) => (
                KeyAlgorithm::EcdsaP384,
                key.verifying_key()
                    .to_encoded_point(false)
                    .as_bytes()
                    .to_vec(),
            ),
            Inner::Ed25519(key) => (KeyAlgorithm::Ed25519, key.public_key().as_ref().to_vec()),
        };
        PrivateKey {
            inner,
            algorithm,
            public,
        }
    }

    /// Parses a PEM private key: `PRIVATE KEY` (PKCS#8), `RSA PRIVATE KEY` (PKCS#1, as cfssl
    /// writes it) or `EC PRIVATE KEY` (SEC1, as openssl writes it).
    pub fn from_pem(text: &str) -> Result<PrivateKey, KeyError> {
        let block = pem::parse_many(text)
            .map_err(|_| KeyError::NotPem)?
            .into_iter()
            .find(|b| b.tag().ends_with("PRIVATE KEY"))
            .ok_or(KeyError::NotPem)?;
        let der = block.contents();
        let inner = match block.tag() {
            "PRIVATE KEY" => from_pkcs8(der)?,
            "RSA PRIVATE KEY" => Inner::Rsa(
                rsa::KeyPair::from_der(der).map_err(|_| KeyError::Malformed("RSA PRIVATE KEY"))?,
            ),
            "EC PRIVATE KEY" => from_sec1(der)?,
            other => return Err(KeyError::Unsupported(format!("PEM block {other}"))),
        };
        let key = PrivateKey::from_inner(inner);
        if matches!(key.inner, Inner::Rsa(_)) && key.public.len() < 200 {
            return Err(KeyError::Unsupported(
                "RSA keys shorter than 2048 bits".to_owned(),
            ));
        }
        Ok(key)
    }

    /// The key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn to_pkcs8_pem(&self) -> Result<String, KeyError> {
        let der = match &self.inner {
            Inner::Rsa(key) => AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(key)
                .map_err(|_| KeyError::Crypto("PKCS#8 encoding"))?
                .as_ref()
                .to_vec(),
            Inner::P256(key) => key
                .to_pkcs8_der()
                .map_err(|_| KeyError::Crypto("PKCS#8 encoding"))?
                .as_bytes()
                .to_vec(),
            Inner::P384(key) => key
                .to_pkcs8_der()
                .map_err(|_| KeyError::Crypto("PKCS#8 encoding"))?
                .as_bytes()
                .to_vec(),
            Inner::Ed25519(key) => key
                .to_pkcs8v1()
                .map_err(|_| KeyError::Crypto("PKCS#8 encoding"))?
                .as_ref()
                .to_vec(),
        };
        Ok(pem_encode("PRIVATE KEY", der))
    }

    /// The public key as PEM (`-----BEGIN PUBLIC KEY-----`, SubjectPublicKeyInfo).
    pub fn public_key_pem(&self) -> String {
        pem_encode("PUBLIC KEY", self.subject_public_key_info())
    }

    /// The algorithm (for RSA, the size class of the modulus).
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The signature algorithm certificates signed by this key use.
    pub fn signature_algorithm(&self) -> &'static SignatureAlgorithm {
        signature_algorithm_of(self.algorithm)
    }

    /// Its algorithm and public key.
    pub fn public_info(&self) -> PublicKeyInfo {
        PublicKeyInfo {
            algorithm: self.algorithm,
            public: self.public.clone(),
        }
    }
}

impl PublicKeyData for PrivateKey {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.signature_algorithm()
    }
}

impl SigningKey for PrivateKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(match &self.inner {
            Inner::Rsa(key) => {
                let mut signature = vec![0; key.public_modulus_len()];
                // PKCS#1 v1.5 draws nothing from the random source; the API just asks for one.
                key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), msg, &mut signature)
                    .map_err(|_| rcgen::Error::RingUnspecified)?;
                signature
            }
            Inner::P256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(msg);
                signature.to_der().as_bytes().to_vec()
            }
            Inner::P384(key) => {
                let signature: p384::ecdsa::Signature = key.sign(msg);
                signature.to_der().as_bytes().to_vec()
            }
            Inner::Ed25519(key) => key.sign(msg).as_ref().to_vec(),
        })
    }
}

fn from_pkcs8(der: &[u8]) -> Result<Inner, KeyError> {
    if let Ok(key) = rsa::KeyPair::from_pkcs8(der) {
        return Ok(Inner::Rsa(key));
    }
    if let Ok(key) = p256::ecdsa::SigningKey::from_pkcs8_der(der) {
        return Ok(Inner::P256(key));
    }
    if let Ok(key) = p384::ecdsa::SigningKey::from_pkcs8_der(der) {
        return Ok(Inner::P384(key));
    }
    if let Ok(key) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
        return Ok(Inner::Ed25519(key));
    }
    Err(KeyError::Unsupported(
        "a PKCS#8 key that is not RSA, ECDSA P-256/P-384 or Ed25519".to_owned(),
    ))
}

fn from_sec1(der: &[u8]) -> Result<Inner, KeyError> {
    if let Ok(key) = p256::SecretKey::from_sec1_der(der) {
        return Ok(Inner::P256(key.into()));
    }
    if let Ok(key) = p384::SecretKey::from_sec1_der(der) {
        return Ok(Inner::P384(key.into()));
    }
    Err(KeyError::Unsupported(
        "an EC key on a curve other than P-256 or P-384".to_owned(),
    ))
}

/// Random bytes for an EC private scalar; a value outside the curve order is rejected by the
/// caller, which for these curves happens with negligible probability.
fn random_scalar<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| KeyError::Crypto("random source"))?;
    Ok(bytes)
}

/// PEM with `\n` line ends, whatever the platform.
pub(crate) fn pem_encode(tag: &str, der: Vec<u8>) -> String {
    pem::encode_config(
        &pem::Pem::new(tag, der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_round_trips_through_pkcs8_and_signs_deterministically() {
        for (_, algorithm) in KeyAlgorithm::ALL {
            let key = PrivateKey::generate(algorithm).unwrap();
            assert_eq!(key.algorithm(), algorithm);
            let pem = key.to_pkcs8_pem().unwrap();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
            let again = PrivateKey::from_pem(&pem).unwrap();
            assert_eq!(again.algorithm(), algorithm);
            assert_eq!(again.der_bytes(), key.der_bytes());
            assert_eq!(
                key.sign(b"message").unwrap(),
                again.sign(b"message").unwrap(),
                "{algorithm}"
            );
            assert_ne!(key.sign(b"message").unwrap(), key.sign(b"other").unwrap());
        }
    }

    #[test]
    fn the_fast_public_key_reader_agrees_with_the_full_parser() {
        for (_, algorithm) in KeyAlgorithm::ALL {
            let key = PrivateKey::generate(algorithm).unwrap();
            let info = PublicKeyInfo::from_private_pem(&key.to_pkcs8_pem().unwrap()).unwrap();
            assert_eq!(info, key.public_info(), "{algorithm}");
        }
    }

    #[test]
    fn fast_generated_keys_parse_and_sign_deterministically() {
        for (_, algorithm) in KeyAlgorithm::ALL {
            let (pem, info) = generate_pem(algorithm).unwrap();
            let key = PrivateKey::from_pem(&pem).unwrap();
            assert_eq!(key.public_info(), info, "{algorithm}");
            assert_eq!(
                key.sign(b"m").unwrap(),
                key.sign(b"m").unwrap(),
                "{algorithm}"
            );
        }
    }

    #[test]
    fn debug_output_hides_the_key() {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        assert_eq!(format!("{key:?}"), "PrivateKey(ecdsa-p256)");
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        assert_eq!(PrivateKey::from_pem("hello").unwrap_err(), KeyError::NotPem);
        let bogus = pem_encode("PRIVATE KEY", vec![1, 2, 3]);
        assert!(matches!(
            PrivateKey::from_pem(&bogus),
            Err(KeyError::Unsupported(_))
        ));
        let bogus = pem_encode("RSA PRIVATE KEY", vec![1, 2, 3]);
        assert_eq!(
            PrivateKey::from_pem(&bogus).unwrap_err(),
            KeyError::Malformed("RSA PRIVATE KEY")
        );
    }
}
