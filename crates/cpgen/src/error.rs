//! The one error type of the library, and the typed problems it carries (a refused key, a CA
//! that cannot be imported, keys of another algorithm); the binary maps it to messages and
//! exit codes. It sits below every other module but `types` and `diag`, so all can use it.

use camino::Utf8PathBuf;

use crate::diag::{Diagnostic, Report};
use crate::types::KeyAlgorithm;

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input could not be read (missing file, a directory, no permission).
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path that was read.
        path: Utf8PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The input is not UTF-8 text, so it cannot be a TOML file.
    #[error("{path} is not a text file: byte {offset} is not valid UTF-8 (is this really a cluster.toml?)")]
    NotText {
        /// The path that was read.
        path: Utf8PathBuf,
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// The input file is far larger than any cluster description.
    #[error("{path} is {size} bytes; a cluster description is at most {limit} bytes (is this the right file?)")]
    TooLarge {
        /// The file.
        path: Utf8PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The configuration has errors; the report holds every finding.
    #[error("{} in {}", .0.summary(), .0.source_name())]
    Invalid(Box<Report>),
    /// An output file exists and would be overwritten.
    #[error("{path} already exists; refusing to overwrite it")]
    AlreadyExists {
        /// The existing path.
        path: Utf8PathBuf,
    },
    /// A path cpgen would read secrets from or write to is a symbolic link.
    #[error("{path} is a symbolic link; cpgen neither reads secrets through nor writes through links (they could point anywhere)")]
    Symlink {
        /// The link.
        path: Utf8PathBuf,
    },
    /// Writing an output failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The path being written.
        path: Utf8PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The secrets file is not one cpgen can use.
    #[error("secrets file {path}: {problem}")]
    Secrets {
        /// The secrets file.
        path: Utf8PathBuf,
        /// What is wrong (never key material).
        problem: SecretsProblem,
    },
    /// The secrets file may be read by group or others.
    #[error("secrets file {path} is readable by group or others (mode {mode:03o}); it holds every private key of the cluster: run `chmod 600 {path}` and check who has read it")]
    InsecureSecrets {
        /// The secrets file.
        path: Utf8PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A key in the secrets file is unusable.
    #[error("key `{identity}` in the secrets file: {source}")]
    Key {
        /// Whose key.
        identity: String,
        /// What is wrong with it.
        #[source]
        source: KeyError,
    },
    /// A key the plan needs is not in the secrets file.
    #[error("the secrets file has no key `{identity}`")]
    MissingKey {
        /// Whose key.
        identity: String,
    },
    /// Stored keys have another algorithm than the configuration asks for; all of them.
    #[error("{0}")]
    KeyAlgorithmMismatch(StaleKeys),
    /// A time certificates cannot be issued at.
    #[error("{what}: {problem}")]
    IssueTime {
        /// Which time.
        what: &'static str,
        /// Why.
        problem: String,
    },
    /// A CA could not be imported.
    #[error("cannot use the {which} CA: {problem}")]
    Import {
        /// Which CA (`kubernetes`, `etcd`, `front-proxy`).
        which: &'static str,
        /// Why.
        problem: ImportProblem,
    },
    /// A bundle given to `cpgen diff` holds hostile entries (CP800) or is not a bundle
    /// (CP814): nothing in it can be trusted to compare.
    #[error("{path} cannot be compared: it holds hostile entries or is not a bundle")]
    NotComparable {
        /// The bundle.
        path: Utf8PathBuf,
        /// What reading it found, the hostile entries and CP814 among them.
        findings: Vec<Diagnostic>,
    },
    /// `probe --only` names a host the bundle has no endpoint on.
    #[error("the bundle has no endpoint on host {name}; its hosts are: {}", .known.join(", "))]
    UnknownHost {
        /// The name given.
        name: String,
        /// The hosts it has endpoints on.
        known: Vec<String>,
    },
    /// A rotation stage cannot run (`cpgen rotate`).
    #[error("{0}")]
    Rotation(RotationProblem),
    /// The deployed bundle given for a change (`--previous`) cannot be changed from.
    #[error("previous bundle {path}: {problem}")]
    Previous {
        /// The deployed bundle.
        path: Utf8PathBuf,
        /// Why.
        problem: PreviousProblem,
    },
    /// rcgen refused to build a certificate (a bug in cpgen, not in the input).
    #[error("internal error while issuing {identity}: {source}")]
    Issue {
        /// Which certificate.
        identity: String,
        /// rcgen's error.
        #[source]
        source: rcgen::Error,
    },
    /// The cryptography library failed at something that does not depend on input.
    #[error("the cryptography library failed: {0}")]
    Crypto(&'static str),
    /// Something that cannot fail on any input failed (a bug in cpgen).
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// A template failed to render (a bug in cpgen, not in the input).
    #[error("internal error while rendering {template}: {source}")]
    Render {
        /// Which template.
        template: &'static str,
        /// The renderer's error.
        #[source]
        source: askama::Error,
    },
}

impl Error {
    /// True when the error is about the user's input (exit code 1), false for usage, I/O or
    /// internal errors (exit code 2).
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Error::Invalid(_)
                | Error::NotText { .. }
                | Error::TooLarge { .. }
                | Error::Secrets { .. }
                | Error::InsecureSecrets { .. }
                | Error::Key { .. }
                | Error::MissingKey { .. }
                | Error::KeyAlgorithmMismatch(_)
                | Error::IssueTime { .. }
                | Error::Import { .. }
                | Error::Previous { .. }
                | Error::Rotation(_)
        )
    }
}

/// Why key material was refused. Never carries key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not PEM, or a PEM block of another kind.
    #[error("not a PEM private key (expected PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)")]
    NotPem,
    /// The PEM block's contents do not decode as a key of its kind.
    #[error("the {0} block does not hold a valid key")]
    Malformed(&'static str),
    /// A key type or size cpgen does not use.
    #[error("unsupported key: {0}")]
    Unsupported(String),
    /// The cryptography library failed to generate or sign.
    #[error("the cryptography library failed: {0}")]
    Crypto(&'static str),
}

/// Why a CA cannot be imported; each case has its own message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImportProblem {
    /// No `CERTIFICATE` PEM block in the certificate file.
    #[error("the certificate file holds no PEM CERTIFICATE block")]
    NoCertificate,
    /// The certificate's DER does not parse.
    #[error("the certificate does not parse: {0}")]
    BadCertificate(String),
    /// basicConstraints is missing or says CA:FALSE.
    #[error("the certificate is not a CA (its basicConstraints do not say CA:TRUE)")]
    NotACa,
    /// keyUsage is present but lacks keyCertSign.
    #[error("the CA certificate may not sign certificates (its keyUsage lacks keyCertSign)")]
    NoCertSign,
    /// NotAfter is in the past.
    #[error("the CA certificate expired at {0}")]
    Expired(String),
    /// NotBefore is in the future.
    #[error("the CA certificate is not valid until {0}")]
    NotYetValid(String),
    /// The key file is unusable.
    #[error("the key file: {0}")]
    BadKey(KeyError),
    /// The key's public half is not the certificate's.
    #[error("the key does not belong to the certificate: their public keys differ")]
    KeyMismatch,
    /// The secrets file already has a key for this CA.
    #[error("the secrets file already has a key for this CA; replacing it invalidates every certificate it signed, so pass --force if that is what you want")]
    AlreadyPresent,
    /// A name that is none of the three CAs.
    #[error("`{0}` is not a CA; use kubernetes, etcd or front-proxy")]
    UnknownCa(String),
}

/// A stored key of another algorithm than the configuration asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleKey {
    /// The key's name in the secrets file, e.g. `apiserver/kubem00`.
    pub identity: String,
    /// What the file has.
    pub found: KeyAlgorithm,
    /// What the configuration asks for.
    pub expected: KeyAlgorithm,
    /// What deleting it means, for the message.
    pub(crate) role: KeyRole,
}

/// Whose key a stale key is; deleting a CA's or the service-account key costs more than a
/// leaf's, and the message says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyRole {
    Ca,
    ServiceAccount,
    Leaf,
}

/// Every stored key that no longer matches the configuration, and what deleting them means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleKeys(pub Vec<StaleKey>);

/// Names listed in the message; the rest are counted (10,000 workers make a long list).
const STALE_KEYS_SHOWN: usize = 20;

impl std::fmt::Display for StaleKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = &self.0;
        let names: Vec<String> = keys
            .iter()
            .take(STALE_KEYS_SHOWN)
            .map(|k| format!("`{}` ({}, wants {})", k.identity, k.found, k.expected))
            .collect();
        let more = keys.len().saturating_sub(STALE_KEYS_SHOWN);
        let count = match keys.len() {
            1 => "1 key in the secrets file is".to_owned(),
            n => format!("{n} keys in the secrets file are"),
        };
        write!(
            f,
            "{count} not of the algorithm the configuration asks for: {}{}",
            names.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        )?;
        write!(f, "; cpgen never replaces a key. Either set pki.key_algorithm (and pki.service_account_key_algorithm) back to what the file holds, or delete these entries from [keys] and bundle again to get new keys")?;
        let cas: Vec<&str> = keys
            .iter()
            .filter(|k| k.role == KeyRole::Ca)
            .map(|k| k.identity.as_str())
            .collect();
        if !cas.is_empty() {
            write!(f, ". Deleting a CA key ({}) makes a new CA: every certificate it signed stops being trusted, so every node and client must be re-bootstrapped with the new bundle at once; only a staged CA rotation (trust both CAs, re-issue, then drop the old) keeps a running cluster up", cas.join(", "))?;
        }
        if let Some(key) = keys.iter().find(|k| k.role == KeyRole::ServiceAccount) {
            write!(
                f,
                ". Deleting `{}` invalidates every service-account token the cluster has issued",
                key.identity
            )?;
        }
        Ok(())
    }
}

/// Why a stage of a rotation cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RotationProblem {
    /// `--which` named nothing that rotates.
    #[error(
        "`{0}` does not rotate: the choices are kubernetes, etcd, front-proxy and service-account"
    )]
    Unknown(String),
    /// In shared-ca, the etcd and front-proxy CAs are the Kubernetes CA.
    #[error(
        "the {0} CA is the kubernetes CA in this cluster's shared-ca layout: rotate kubernetes"
    )]
    SharedCa(&'static str),
    /// Only a `start` of a CA takes a CA to import.
    #[error("a CA to import is the new CA of a `start`, of a CA (not of the service-account key)")]
    ImportOnlyAtStart,
    /// The CA to import has a key the secrets file holds already.
    #[error("the new {rotated} CA's key is the key of `{holder}` in the secrets file: a rotation needs a key of its own (another CA's key would make one CA trust what the other signs)")]
    KeyInUse {
        /// What rotates.
        rotated: &'static str,
        /// The key's name in the secrets file.
        holder: String,
    },
    /// A stage out of order.
    #[error("{}", out_of_order(.rotated, .asked, *.at, .next))]
    OutOfOrder {
        /// What rotates.
        rotated: &'static str,
        /// The stage asked for (`start`, `issue`, `finish`).
        asked: &'static str,
        /// Where the rotation stands (`None`: none runs).
        at: Option<&'static str>,
        /// The stage that comes next.
        next: &'static str,
    },
}

fn out_of_order(rotated: &str, asked: &str, at: Option<&str>, next: &str) -> String {
    let now = match at {
        Some(stage) => format!("the rotation of {rotated} stands at `{stage}`"),
        None => format!("no rotation of {rotated} runs"),
    };
    format!("cannot `{asked}` {rotated}: {now}; the next stage is `cpgen rotate {next} --which {rotated}`, after its bundle is rolled out")
}

/// Why a deployed bundle cannot be the start of a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PreviousProblem {
    /// Verifying it found errors (each a finding about one of its files).
    #[error("it does not verify ({} error(s)); a change computed from it could not be trusted: run `cpgen verify` on it", .0.len())]
    DoesNotVerify(Vec<Diagnostic>),
    /// It has no `manifest.json`, which records the members.
    #[error("it has no manifest.json, so the members it runs are unknown; give the bundle `cpgen bundle` wrote")]
    NoManifest,
    /// It is of another cluster.
    #[error("it is of cluster `{deployed}`, the config is of `{config}`")]
    OtherCluster {
        /// Its cluster's name.
        deployed: String,
        /// The config's.
        config: String,
    },
    /// Its CA differs from the secrets file's.
    #[error("{file} is another CA than the secrets file's: the bundle is of another cluster, or of other secrets")]
    OtherCa {
        /// The CA file that differs.
        file: String,
    },
    /// A rotation stage was skipped: the hosts of the two bundles would not trust each
    /// other while the new one rolls out.
    #[error("{file}: {}", if *.deployed_first {
        "what signs the deployed bundle's certificates (or tokens) is not trusted by the new bundle: roll out the bundle of the previous rotation stage first (`cpgen rotate status` says where each rotation stands)"
    } else {
        "the new bundle's certificates (or tokens) are signed by what the deployed bundle does not trust yet: roll out the bundle of the rotation's `start` first (`cpgen rotate status` says where each rotation stands)"
    })]
    RotationSkipped {
        /// The trust file.
        file: String,
        /// True when the deployed bundle's signer is dropped; false when the target's
        /// signer is not yet trusted.
        deployed_first: bool,
    },
    /// The secrets file has no key for a CA the config's PKI needs.
    #[error("the secrets file has no key for the {ca} CA: a new CA would be one the running members do not trust; keep the deployed bundle's PKI layout and secrets file")]
    NoCaKey {
        /// The CA (`kubernetes`, `etcd`, `front-proxy`).
        ca: &'static str,
    },
    /// The change would remove etcd's last member.
    #[error("removing etcd member {member} would remove the last one: no order keeps the cluster; keep at least one master of the running cluster")]
    LastMember {
        /// The member.
        member: String,
    },
    /// The change would remove a member from a two-member cluster.
    #[error("removing etcd member {member} would leave from a two-member cluster, which etcd documents as unsafe (both must agree, and a failure during the removal leaves a cluster that cannot make progress); a running cluster of three or more masters keeps at least three")]
    TwoMembers {
        /// The member.
        member: String,
    },
    /// A joining member would take the address of a member that still runs there.
    #[error("etcd member {member} would join at {address}, where member {holder} still runs; move {holder} away in one change, then give its address to {member} in the next")]
    AddressInUse {
        /// The joining member.
        member: String,
        /// The address.
        address: String,
        /// The member there now.
        holder: String,
    },
}

/// What is wrong with a secrets file. Never quotes key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsProblem {
    /// The text is not a secrets file this cpgen reads: the problem in TOML words, with its
    /// line.
    #[error("{0}")]
    Malformed(String),
    /// The file belongs to another user, who chose its keys.
    #[error("it is owned by {owner}, not by the user running cpgen (uid {me}); like ssh, cpgen uses only a secrets file of its own user, since whoever owns the file chose its keys: check where it came from, then `chown {me}` it")]
    ForeignOwner {
        /// The owner, by name and uid when known.
        owner: String,
        /// The uid running cpgen.
        me: String,
    },
    /// The file lacks a key the configuration needs, so it is not the one a bundle of that
    /// configuration was built with.
    #[error("it has no key `{identity}`, which the config needs: these secrets do not belong to this bundle's config")]
    NotThisBundles {
        /// The missing key.
        identity: String,
    },
}
