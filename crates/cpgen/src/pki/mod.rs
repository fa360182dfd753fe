//! The PKI (the README's PKI table): the secrets file, key generation and parsing, deterministic
//! issuance of every identity, importing an existing CA, and the staged rotation of a CA or
//! of the service-account key.
//!
//! ```text
//! Plan + Secrets --issue--> CertSet
//! ```
//!
//! Only [`Secrets::load`], [`Secrets::save`] and [`Secrets::load_or_create`] touch the
//! filesystem; issuing is pure.

// `pub(crate)` where `test_support` re-exports what the integration tests reach into.
pub(crate) mod identities;
mod import;
pub(crate) mod issue;
pub(crate) mod keys;
mod lifetime;
mod rotation;
mod secrets;

pub use crate::error::{
    ImportProblem, KeyError, RotationProblem, SecretsProblem, StaleKey, StaleKeys,
};
pub use identities::Ca;
pub(crate) use identities::{
    leaf_identities, Identity, IdentityId, CLUSTER_ADMINS_GROUP, KUBELET_CLIENT_USER,
    SUPER_ADMINS_GROUP,
};
pub use import::{import_ca, ImportMode};
pub(crate) use issue::{Authority, CaCertificate, CertSet, LeafCertificate};
pub(crate) use keys::PublicKeyInfo;
pub use lifetime::{ca_notices, renewal_time, CaNotice, RenewalTime, EXPIRES_SOON};
pub use rotation::{NewCa, Rotated, Stage};
pub use secrets::{FillOptions, Secrets, SecretsChange};
