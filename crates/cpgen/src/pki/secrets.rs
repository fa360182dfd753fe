//! The secrets file: every private key (PKCS#8 PEM), the issue times, the encryption-at-rest
//! key and imported CA certificates. Loaded strictly (format version, permissions), filled
//! with only the keys it lacks, and rewritten atomically so old content is never lost.

use std::collections::BTreeMap;

use askama::Template;
use base64::Engine;
use camino::{Utf8Path, Utf8PathBuf};
use rayon::prelude::*;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::identities::{leaf_identities, Ca, SERVICE_ACCOUNT_KEY};
use super::keys::{PrivateKey, PublicKeyInfo};
use super::rotation::{Rotated, Rotation, Stage, NEXT};
use crate::error::{KeyRole, SecretsProblem, StaleKey, StaleKeys};
use crate::plan::{Choice, EncryptionProvider, Plan};
use crate::types::KeyAlgorithm;
use crate::Error;

/// The secrets file format this version reads and writes.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// The contents of a secrets file.
#[derive(Clone)]
pub struct Secrets {
    pub(crate) ca_issued_at: OffsetDateTime,
    pub(crate) issued_at: OffsetDateTime,
    /// The aescbc key: every secrets file has it, as cpgen first wrote Secrets with aescbc.
    pub(crate) encryption_key: [u8; 32],
    /// The keys of the other encryption-at-rest providers (`secretbox`, `aesgcm`), made
    /// when a config first asks for one and kept, so what they wrote stays readable.
    pub(crate) encryption_keys: BTreeMap<String, Zeroizing<[u8; 32]>>,
    /// Private keys by identity; wiped from memory when dropped.
    pub(crate) keys: BTreeMap<String, Zeroizing<String>>,
    /// Algorithm and public key of each key, read once.
    pub(crate) public: BTreeMap<String, PublicKeyInfo>,
    pub(crate) imported_cas: BTreeMap<String, String>,
    /// Rotations in progress, by what rotates (`etcd`, `service-account`).
    pub(crate) rotations: BTreeMap<String, Rotation>,
    /// When each CA that a rotation brought was issued (the others: `ca_issued_at`).
    pub(crate) ca_issued_at_of: BTreeMap<String, OffsetDateTime>,
    test_only: bool,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: key material never reaches logs or errors.
        f.debug_struct("Secrets")
            .field("ca_issued_at", &self.ca_issued_at)
            .field("issued_at", &self.issued_at)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .field(
                "imported_cas",
                &self.imported_cas.keys().collect::<Vec<_>>(),
            )
            .field("rotations", &self.rotations)
            .finish_non_exhaustive()
    }
}

/// The providers whose keys live in `[encryption_keys]` (aescbc's is `encryption_key`).
const ENCRYPTION_KEY_PROVIDERS: &[&str] = &["secretbox", "aesgcm"];

/// The file as serde reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretsFile {
    format_version: u32,
    #[serde(default)]
    test_only: bool,
    ca_issued_at: String,
    issued_at: String,
    encryption_key: String,
    #[serde(default)]
    encryption_keys: BTreeMap<String, String>,
    #[serde(default)]
    keys: BTreeMap<String, String>,
    #[serde(default)]
    imported_cas: BTreeMap<String, String>,
    #[serde(default)]
    ca_issued_at_of: BTreeMap<String, String>,
    #[serde(default)]
    rotations: BTreeMap<String, RotationEntry>,
}

/// A rotation in progress as serde reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RotationEntry {
    stage: String,
    issued_at: String,
}

#[derive(Template)]
#[template(path = "secrets.toml", escape = "none")]
struct SecretsTemplate<'a> {
    format_version: u32,
    test_only: bool,
    ca_issued_at: String,
    issued_at: String,
    encryption_key: String,
    encryption_keys: Vec<(&'a str, String)>,
    keys: Vec<(&'a str, &'a str)>,
    imported_cas: Vec<(&'a str, &'a str)>,
    ca_issued_at_of: Vec<(&'a str, String)>,
    rotations: Vec<(&'a str, &'static str, String)>,
}

/// What [`Secrets::load_or_create`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretsChange {
    /// The file did not exist and was created.
    pub created: bool,
    /// Identities that got a new key (empty: the file was not rewritten).
    pub new_keys: Vec<String>,
}

/// How [`Secrets::fill`] and [`Secrets::load_or_create`] make keys.
#[derive(Clone, Copy, Default)]
pub struct FillOptions<'a> {
    /// Called with `(done, total)` after each new key, from any thread, e.g. to drive a
    /// progress bar.
    pub progress: Option<&'a (dyn Fn(usize, usize) + Sync)>,
}

impl Secrets {
    /// Empty secrets: certificates issued at `now`, a fresh encryption key, no keys yet.
    pub fn new(now: OffsetDateTime) -> Result<Secrets, Error> {
        let mut encryption_key = [0u8; 32];
        aws_lc_rs::rand::fill(&mut encryption_key).map_err(|_| Error::Crypto("random source"))?;
        let now = now.replace_nanosecond(0).unwrap_or(now);
        Ok(Secrets {
            ca_issued_at: now,
            issued_at: now,
            encryption_key,
            encryption_keys: BTreeMap::new(),
            keys: BTreeMap::new(),
            public: BTreeMap::new(),
            imported_cas: BTreeMap::new(),
            rotations: BTreeMap::new(),
            ca_issued_at_of: BTreeMap::new(),
            test_only: false,
        })
    }

    /// Reads a secrets file, refusing a symbolic link, anything but a regular file (a FIFO
    /// would block the read forever), a file of another user (as ssh does: whoever owns it
    /// chose its keys) and a file that group or others may read.
    pub fn load(path: &Utf8Path) -> Result<Secrets, Error> {
        crate::atomic::refuse_symlink(path)?;
        let text = read_private(path)?;
        Secrets::parse(&text).map_err(|problem| Error::Secrets {
            path: path.to_owned(),
            problem,
        })
    }

    /// The directories of `config` and `secrets` that group or others may write to, with
    /// their permission bits: whoever can write there can replace either file (or, before
    /// the first run, plant a secrets file of their own).
    pub fn writable_directories(config: &Utf8Path, secrets: &Utf8Path) -> Vec<(Utf8PathBuf, u32)> {
        use std::os::unix::fs::PermissionsExt;
        let mut found: Vec<(Utf8PathBuf, u32)> = Vec::new();
        for path in [config, secrets] {
            let dir = crate::atomic::parent_dir(path);
            let full = dir.canonicalize_utf8().unwrap_or_else(|_| dir.to_owned());
            let Ok(metadata) = std::fs::metadata(&full) else {
                continue;
            };
            let mode = metadata.permissions().mode() & 0o7777;
            if mode & 0o022 != 0 && !found.iter().any(|(seen, _)| *seen == full) {
                found.push((full, mode));
            }
        }
        found
    }

    /// Parses the text of a secrets file. The error names the problem, never a key.
    pub fn parse(text: &str) -> Result<Secrets, SecretsProblem> {
        Secrets::parse_text(text).map_err(SecretsProblem::Malformed)
    }

    fn parse_text(text: &str) -> Result<Secrets, String> {
        let mut file: SecretsFile = toml::from_str(text)
            .map_err(|e| format!("not a cpgen secrets file: {}", file_error(&e, text)))?;
        if file.format_version != FORMAT_VERSION {
            return Err(format!(
                "format version {} is not supported (this cpgen reads version {FORMAT_VERSION})",
                file.format_version
            ));
        }
        let time = |field: &str, value: &str| {
            let time = OffsetDateTime::parse(value, &Rfc3339)
                .map_err(|_| format!("`{field}` is not an RFC 3339 time: {value:?}"))?;
            check_issue_time(time).map_err(|problem| format!("`{field}`: {problem}"))?;
            Ok::<_, String>(time)
        };
        let encryption_key = base64::engine::general_purpose::STANDARD
            .decode(file.encryption_key.trim())
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or("`encryption_key` is not 32 bytes of base64")?;
        let mut encryption_keys = BTreeMap::new();
        for (name, key) in std::mem::take(&mut file.encryption_keys) {
            if !ENCRYPTION_KEY_PROVIDERS.contains(&name.as_str()) {
                return Err(format!(
                    "`encryption_keys` has a key for {name:?}; cpgen keeps keys for {}",
                    ENCRYPTION_KEY_PROVIDERS.join(" and ")
                ));
            }
            let key = base64::engine::general_purpose::STANDARD
                .decode(key.trim())
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .ok_or_else(|| format!("`encryption_keys.{name}` is not 32 bytes of base64"))?;
            encryption_keys.insert(name, Zeroizing::new(key));
        }
        let keys: BTreeMap<String, Zeroizing<String>> = std::mem::take(&mut file.keys)
            .into_iter()
            .map(|(name, pem)| (name, Zeroizing::new(pem)))
            .collect();
        let public = keys
            .par_iter()
            .map(|(name, pem)| {
                PublicKeyInfo::from_private_pem(pem)
                    .map(|info| (name.clone(), info))
                    .map_err(|e| format!("key `{name}`: {e}"))
            })
            .collect::<Result<BTreeMap<_, _>, String>>()?;
        for (name, cert) in &file.imported_cas {
            // A rotation's new CA is `<name>.next`, with the key `<id>.next`.
            let (base, suffix) = match name.strip_suffix(NEXT) {
                Some(base) => (base, NEXT),
                None => (name.as_str(), ""),
            };
            let ca: Ca = base.parse().map_err(|_| {
                format!("imported CA `{name}` is not kubernetes, etcd or front-proxy")
            })?;
            let key_id = format!("{}{suffix}", ca.id());
            let key = keys
                .get(&key_id)
                .ok_or_else(|| format!("imported CA `{name}` has no key `{key_id}`"))?;
            super::import::check_pair(cert, key)
                .map_err(|problem| format!("imported CA `{name}`: {problem}"))?;
        }
        let mut ca_issued_at_of = BTreeMap::new();
        for (name, at) in &file.ca_issued_at_of {
            let ca: Ca = name
                .parse()
                .map_err(|_| format!("`ca_issued_at_of.{name}`: no such CA"))?;
            ca_issued_at_of.insert(ca.name().to_owned(), time("ca_issued_at_of", at)?);
        }
        let mut rotations = BTreeMap::new();
        for (name, entry) in &file.rotations {
            let rotated: Rotated = name
                .parse()
                .map_err(|_| format!("`rotations.{name}`: nothing of that name rotates"))?;
            let stage = match entry.stage.parse::<Stage>() {
                Ok(stage @ (Stage::Start | Stage::Issue)) => stage,
                _ => return Err(format!("`rotations.{name}.stage` is not start or issue")),
            };
            if !keys.contains_key(&rotated.next_key_id()) {
                return Err(format!(
                    "the rotation of {name} has no key `{}`",
                    rotated.next_key_id()
                ));
            }
            let issued_at = time("rotations.issued_at", &entry.issued_at)?;
            rotations.insert(rotated.name().to_owned(), Rotation { stage, issued_at });
        }
        Ok(Secrets {
            ca_issued_at: time("ca_issued_at", &file.ca_issued_at)?,
            issued_at: time("issued_at", &file.issued_at)?,
            encryption_key,
            encryption_keys,
            keys,
            public,
            imported_cas: file.imported_cas,
            rotations,
            ca_issued_at_of,
            test_only: file.test_only,
        })
    }

    /// The file's text.
    pub fn render(&self) -> Result<Zeroizing<String>, Error> {
        let rfc3339 = |t: OffsetDateTime| {
            t.format(&Rfc3339)
                .map_err(|_| Error::Crypto("time formatting"))
        };
        let template = SecretsTemplate {
            format_version: FORMAT_VERSION,
            test_only: self.test_only,
            ca_issued_at: rfc3339(self.ca_issued_at)?,
            issued_at: rfc3339(self.issued_at)?,
            encryption_key: base64::engine::general_purpose::STANDARD.encode(self.encryption_key),
            encryption_keys: self
                .encryption_keys
                .iter()
                .map(|(name, key)| {
                    (
                        name.as_str(),
                        base64::engine::general_purpose::STANDARD.encode(key.as_slice()),
                    )
                })
                .collect(),
            keys: pairs(&self.keys),
            imported_cas: pairs(&self.imported_cas),
            ca_issued_at_of: self
                .ca_issued_at_of
                .iter()
                .map(|(name, at)| Ok((name.as_str(), rfc3339(*at)?)))
                .collect::<Result<_, Error>>()?,
            rotations: self
                .rotations
                .iter()
                .map(|(name, r)| Ok((name.as_str(), r.stage.name(), rfc3339(r.issued_at)?)))
                .collect::<Result<_, Error>>()?,
        };
        crate::template::render_text(&template, "secrets.toml").map(Zeroizing::new)
    }

    /// Writes the file with mode 0600: to a temporary file beside it, then renamed over the
    /// old one, so a crash leaves either the old or the new file, never a mix.
    pub fn save(&self, path: &Utf8Path) -> Result<(), Error> {
        let text = self.render()?;
        crate::atomic::write_file(path, text.as_bytes(), crate::atomic::Existing::Replace)
    }

    /// [`Secrets::save`] for a file that must not exist yet ([`Error::AlreadyExists`]).
    fn save_new(&self, path: &Utf8Path) -> Result<(), Error> {
        let text = self.render()?;
        crate::atomic::write_file(path, text.as_bytes(), crate::atomic::Existing::Keep)
    }

    /// Loads the file at `path`, or starts new secrets issued at `now` when it does not
    /// exist; then adds the keys the plan needs (as [`Secrets::fill`] does, with `options`)
    /// and saves, only if anything changed.
    pub fn load_or_create(
        path: &Utf8Path,
        plan: &Plan,
        now: OffsetDateTime,
        options: &FillOptions<'_>,
    ) -> Result<(Secrets, SecretsChange), Error> {
        // Held from reading the file to writing it: a concurrent run waits here, then reads
        // the keys this one made instead of making a CA of its own that the file would lose.
        let _lock = crate::atomic::lock_directory(crate::atomic::parent_dir(path))?;
        let created = crate::atomic::found(path)? == crate::atomic::Found::Nothing;
        let mut secrets = if created {
            Secrets::new(now)?
        } else {
            Secrets::load(path)?
        };
        let new_keys = secrets.fill(plan, options)?;
        if created {
            secrets.save_new(path)?;
        } else if !new_keys.is_empty() {
            secrets.save(path)?;
        }
        Ok((secrets, SecretsChange { created, new_keys }))
    }

    /// Generates a key for every identity of the plan that has none (in parallel), and
    /// returns their names. An existing key of another algorithm than the plan asks for is an
    /// error: keys are never replaced silently.
    pub fn fill(&mut self, plan: &Plan, options: &FillOptions<'_>) -> Result<Vec<String>, Error> {
        let progress = options.progress.unwrap_or(&|_, _| {});
        let mut missing = Vec::new();
        let mut stale = Vec::new();
        for (id, expected) in self.required_keys(plan) {
            match self.public.get(&id) {
                Some(info) if info.algorithm != expected => stale.push(StaleKey {
                    role: key_role(&id),
                    identity: id,
                    found: info.algorithm,
                    expected,
                }),
                Some(_) => {}
                None => missing.push((id, expected)),
            }
        }
        // Every stale key at once: after an algorithm change, that is usually all of them.
        if !stale.is_empty() {
            return Err(Error::KeyAlgorithmMismatch(StaleKeys(stale)));
        }
        let total = missing.len();
        let done = std::sync::atomic::AtomicUsize::new(0);
        let generated: Vec<(String, Zeroizing<String>, PublicKeyInfo)> = missing
            .into_par_iter()
            .map(|(id, algorithm)| {
                let (pem, info) =
                    super::keys::generate_pem(algorithm).map_err(|source| Error::Key {
                        identity: id.clone(),
                        source,
                    })?;
                progress(
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
                    total,
                );
                Ok((id, pem, info))
            })
            .collect::<Result<_, Error>>()?;
        let mut names: Vec<String> = generated.iter().map(|(id, _, _)| id.clone()).collect();
        for (id, pem, info) in generated {
            self.public.insert(id.clone(), info);
            self.keys.insert(id, pem);
        }
        names.extend(self.fill_encryption_key(plan.pki.encryption_provider)?);
        Ok(names)
    }

    /// Makes the key of `provider` if it is new to the file; returns its name then.
    fn fill_encryption_key(
        &mut self,
        provider: EncryptionProvider,
    ) -> Result<Option<String>, Error> {
        let name = provider.name();
        if provider == EncryptionProvider::Aescbc || self.encryption_keys.contains_key(name) {
            return Ok(None);
        }
        let mut key = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(key.as_mut_slice()).map_err(|_| Error::Crypto("random source"))?;
        self.encryption_keys.insert(name.to_owned(), key);
        Ok(Some(format!("encryption/{name}")))
    }

    /// The encryption-at-rest providers kube-apiserver is given, each with its key: the one
    /// `writer` first (new Secrets are written with it), then every other the file has a
    /// key for, aescbc always among them (cpgen wrote with it first), so Secrets written
    /// before a change of provider stay readable. `None` when the writer has no key yet.
    pub(crate) fn encryption_providers(
        &self,
        writer: EncryptionProvider,
    ) -> Option<Vec<(&'static str, [u8; 32])>> {
        let key_of = |provider: EncryptionProvider| match provider {
            EncryptionProvider::Aescbc => Some(self.encryption_key),
            other => self.encryption_keys.get(other.name()).map(|key| **key),
        };
        let mut providers = vec![(writer.name(), key_of(writer)?)];
        for (name, provider) in EncryptionProvider::ALL {
            if *provider != writer {
                providers.extend(key_of(*provider).map(|key| (*name, key)));
            }
        }
        Some(providers)
    }

    /// Every key the plan needs and its algorithm. Imported CAs bring their own key, of any
    /// algorithm.
    fn required_keys(&self, plan: &Plan) -> Vec<(String, KeyAlgorithm)> {
        let algorithm = plan.pki.key_algorithm;
        let mut keys: Vec<(String, KeyAlgorithm)> = Ca::all_in(plan.pki.layout)
            .into_iter()
            .filter(|ca| !self.imported_cas.contains_key(ca.name()))
            .map(|ca| (ca.id().to_owned(), algorithm))
            .collect();
        keys.extend(
            leaf_identities(plan)
                .into_iter()
                .map(|identity| (identity.id, algorithm)),
        );
        keys.push((
            SERVICE_ACCOUNT_KEY.to_owned(),
            plan.pki.service_account_key_algorithm,
        ));
        keys
    }

    /// Keys of hosts `plan` no longer has (`etcd-server/kubem03` after kubem03 left):
    /// kept, as a host may come back, and named so the operator knows they are unused.
    pub fn unused_keys(&self, plan: &Plan) -> Vec<String> {
        let used: std::collections::BTreeSet<String> =
            leaf_identities(plan).into_iter().map(|i| i.id).collect();
        self.keys
            .keys()
            .filter(|id| id.contains('/') && !used.contains(*id))
            .cloned()
            .collect()
    }

    /// The masters the keys were made for (`etcd-server/<master>`), so that a change of
    /// etcd's membership shows even without the bundle that runs.
    pub fn etcd_member_names(&self) -> Vec<String> {
        let stem = crate::plan::ServerRole::EtcdServer.identity();
        self.keys
            .keys()
            .filter_map(|id| id.strip_prefix(stem)?.strip_prefix('/'))
            .map(str::to_owned)
            .collect()
    }

    /// The key of `id`, parsed.
    pub fn key(&self, id: &str) -> Result<PrivateKey, Error> {
        let pem = self.keys.get(id).ok_or_else(|| Error::MissingKey {
            identity: id.to_owned(),
        })?;
        parse_key(id, pem)
    }

    /// The algorithm and public key of `id`'s key, without parsing it again.
    pub fn public_key(&self, id: &str) -> Result<&PublicKeyInfo, Error> {
        self.public.get(id).ok_or_else(|| Error::MissingKey {
            identity: id.to_owned(),
        })
    }

    /// The key of `id` as stored (PKCS#8 PEM).
    pub fn key_pem(&self, id: &str) -> Result<&str, Error> {
        self.keys
            .get(id)
            .map(|pem| pem.as_str())
            .ok_or_else(|| Error::MissingKey {
                identity: id.to_owned(),
            })
    }

    /// Moves the leaf issue time to `at`: `cpgen renew`. Keys and CAs stay as they are.
    pub fn renew(&mut self, at: OffsetDateTime) -> Result<(), Error> {
        check_issue_time(at).map_err(|problem| Error::IssueTime {
            what: "the renewal time",
            problem,
        })?;
        self.issued_at = at.replace_nanosecond(0).unwrap_or(at);
        Ok(())
    }

    /// When leaf certificates are issued.
    pub fn issued_at(&self) -> OffsetDateTime {
        self.issued_at
    }

    /// When generated CA certificates are issued.
    pub fn ca_issued_at(&self) -> OffsetDateTime {
        self.ca_issued_at
    }

    /// kube-apiserver's encryption-at-rest key for aescbc (the other providers' keys are
    /// in the encryption config a bundle carries).
    pub fn encryption_key(&self) -> &[u8; 32] {
        &self.encryption_key
    }

    /// Issues every certificate of `plan` in memory and drops them: proves that these
    /// secrets can sign for the plan, e.g. before renewed secrets are saved.
    pub fn check_issuance(&self, plan: &Plan) -> Result<(), Error> {
        super::issue::issue(plan, self).map(drop)
    }

    /// Marks the file as a test fixture (it says so in a comment and a key).
    #[cfg(feature = "test-support")]
    pub fn mark_test_only(&mut self) {
        self.test_only = true;
    }
}

fn pairs<V: AsRef<str>>(map: &BTreeMap<String, V>) -> Vec<(&str, &str)> {
    map.iter().map(|(k, v)| (k.as_str(), v.as_ref())).collect()
}

fn parse_key(id: &str, pem: &str) -> Result<PrivateKey, Error> {
    PrivateKey::from_pem(pem).map_err(|source| Error::Key {
        identity: id.to_owned(),
        source,
    })
}

/// The text of the secrets file at `path`, checked on the open file (so the path cannot
/// change between check and read): a regular file of the user running cpgen, private to
/// them.
fn read_private(path: &Utf8Path) -> Result<Zeroizing<String>, Error> {
    use rustix::fs::{Mode, OFlags};
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let read_error = |source| Error::Read {
        path: path.to_owned(),
        source,
    };
    // Non-blocking: opening a FIFO for reading would otherwise wait for a writer.
    let fd = rustix::fs::open(
        path.as_std_path(),
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| read_error(e.into()))?;
    let mut file = std::fs::File::from(fd);
    let metadata = file.metadata().map_err(read_error)?;
    if !metadata.is_file() {
        return Err(read_error(std::io::Error::other(format!(
            "it is {}, not a regular file",
            crate::atomic::Found::of(&metadata).describe()
        ))));
    }
    let me = rustix::process::geteuid().as_raw();
    if metadata.uid() != me {
        let owner = match user_name(metadata.uid()) {
            Some(name) => format!("{name} (uid {})", metadata.uid()),
            None => format!("uid {}", metadata.uid()),
        };
        return Err(Error::Secrets {
            path: path.to_owned(),
            problem: SecretsProblem::ForeignOwner {
                owner,
                me: me.to_string(),
            },
        });
    }
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::InsecureSecrets {
            path: path.to_owned(),
            mode,
        });
    }
    // Room for the whole file at once: no reallocation leaves a copy of keys unwiped.
    let mut text = Zeroizing::new(String::with_capacity(
        usize::try_from(metadata.len())
            .unwrap_or(0)
            .saturating_add(1),
    ));
    file.read_to_string(&mut text).map_err(read_error)?;
    Ok(text)
}

/// The name of user `uid` in /etc/passwd, to name the owner of a file in a message.
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?.parse::<u32>().ok()?;
        (id == uid && !name.is_empty()).then(|| crate::diag::escape(name).into_owned())
    })
}

/// Issue times a certificate can carry: every validity (at most 36,500 days) then ends before
/// the year 9999, the last that X.509's GeneralizedTime can encode.
const ISSUE_TIMES: std::ops::Range<OffsetDateTime> =
    time::macros::datetime!(1950-01-01 00:00 UTC)..time::macros::datetime!(9000-01-01 00:00 UTC);

/// `Err` with the reason when certificates cannot be issued at `time`.
pub(crate) fn check_issue_time(time: OffsetDateTime) -> Result<(), String> {
    if ISSUE_TIMES.contains(&time) {
        return Ok(());
    }
    Err(format!(
        "{} is outside the times certificates can be issued at (1950 to 9000)",
        time.format(&Rfc3339).unwrap_or_else(|_| time.to_string())
    ))
}

/// What is wrong with a secrets file, in TOML words and with its line, never quoting a
/// value: toml and serde quote the offending text, which may be key material.
fn file_error(e: &toml::de::Error, text: &str) -> String {
    let message = e.message();
    let quoted = |prefix: &str| {
        let rest = message.strip_prefix(prefix)?.strip_prefix('`')?;
        rest.split_once('`').map(|(name, _)| name.to_owned())
    };
    let problem = if let Some(key) = quoted("missing field ") {
        format!("the key `{key}` is missing")
    } else if let Some(key) = quoted("unknown field ") {
        format!("`{key}` is not a key of a secrets file")
    } else if message.starts_with("invalid type") || message.starts_with("invalid value") {
        "a value has the wrong type".to_owned()
    } else if message.contains('"') || message.contains('\'') {
        "it is not valid TOML".to_owned()
    } else {
        message
            .lines()
            .next()
            .unwrap_or("it is not valid TOML")
            .to_owned()
    };
    match e.span() {
        Some(at) => {
            let line = text
                .get(..at.start)
                .map_or(0, |before| before.matches('\n').count())
                + 1;
            format!("{problem} (line {line})")
        }
        None => problem,
    }
}

/// Whose key `id` is, for the message about stale keys.
fn key_role(id: &str) -> KeyRole {
    if Ca::ALL.iter().any(|ca| ca.id() == id) {
        KeyRole::Ca
    } else if id == SERVICE_ACCOUNT_KEY {
        KeyRole::ServiceAccount
    } else {
        KeyRole::Leaf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_errors_name_the_key_and_line_in_toml_words_and_quote_no_value() {
        let secret = "-----BEGIN PRIVATE KEY-----\\nMIGHAgEAMBMGByqGSM49";
        for (text, expected) in [
            (
                "format_version = 1\napi = 1\n",
                "`api` is not a key of a secrets file (line 2)",
            ),
            ("format_version = 1\n", "the key `ca_issued_at` is missing"),
            (
                &format!("format_version = \"{secret}\"\n") as &str,
                "a value has the wrong type (line 1)",
            ),
        ] {
            let Err(problem) = Secrets::parse(text) else {
                panic!("{text} parsed")
            };
            let problem = problem.to_string();
            assert!(problem.contains(expected), "{text}: {problem}");
            for word in ["field", "expected", "u32", "MIGHA", "PRIVATE KEY"] {
                assert!(!problem.contains(word), "{text}: {problem}");
            }
        }
    }
}
