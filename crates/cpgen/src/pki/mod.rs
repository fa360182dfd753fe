//! The PKI of DESIGN.md §5: the secrets file, key generation and parsing, deterministic
//! issuance of every identity, and importing an existing CA.
//!
//! ```text
//! Plan + Secrets --issue--> CertSet
//! ```
//!
//! Only [`Secrets::load`], [`Secrets::save`] and [`Secrets::load_or_create`] touch the
//! filesystem; issuing is pure.

mod identities;
mod import;
mod issue;
mod keys;
mod lifetime;
mod secrets;

pub use crate::error::{ImportProblem, KeyError, StaleKey, StaleKeys};
pub use identities::{leaf_identities, Ca, Identity, Usage, SERVICE_ACCOUNT_KEY};
pub use import::import_ca;
pub use issue::{issue, Authority, CaCertificate, CertSet, LeafCertificate, BACKDATE};
pub use keys::{generate_pem, PrivateKey, PublicKeyInfo};
pub use lifetime::{ca_notices, renewal_time, CaNotice, RenewalTime, EXPIRES_SOON};
pub use secrets::{check_issue_time, Secrets, SecretsChange, FORMAT_VERSION};
