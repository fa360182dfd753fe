//! Staged rotation of a CA or of the service-account key (`cpgen rotate`), as the secrets
//! file records it. `start` makes the new CA (or key) beside the old one: every trust file
//! carries both, the old one still signs. `issue` makes the new one sign (every leaf it
//! signs is re-issued; the service-account signing key switches); trust is still both.
//! `finish` drops the old one. The stage of each rotation lives in the secrets file, so a
//! bundle stays a pure function of the config and the secrets.

use std::fmt;

use time::OffsetDateTime;

use super::identities::{Ca, SERVICE_ACCOUNT_KEY};
use super::import::{import_into, ImportSlot};
use super::keys::generate_pem;
use super::secrets::Secrets;
use crate::error::RotationProblem;
use crate::plan::Plan;
use crate::Error;

/// What a rotation replaces: one of the CAs, or the service-account key pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rotated {
    /// A certificate authority.
    Ca(Ca),
    /// The key pair that signs and checks service-account tokens.
    ServiceAccount,
}

impl Rotated {
    /// All four, in the order `cpgen rotate status` lists them.
    pub const ALL: [Rotated; 4] = [
        Rotated::Ca(Ca::Kubernetes),
        Rotated::Ca(Ca::Etcd),
        Rotated::Ca(Ca::FrontProxy),
        Rotated::ServiceAccount,
    ];

    /// The name `--which` takes and the secrets file records.
    pub fn name(self) -> &'static str {
        match self {
            Rotated::Ca(ca) => ca.name(),
            Rotated::ServiceAccount => "service-account",
        }
    }

    /// The name of the key in use in the secrets file.
    pub(crate) fn key_id(self) -> &'static str {
        match self {
            Rotated::Ca(ca) => ca.id(),
            Rotated::ServiceAccount => SERVICE_ACCOUNT_KEY,
        }
    }

    /// The name of the new key while the rotation runs.
    pub(crate) fn next_key_id(self) -> String {
        format!("{}{NEXT}", self.key_id())
    }
}

/// The suffix of a rotation's new key and imported CA in the secrets file.
pub(crate) const NEXT: &str = ".next";

impl fmt::Display for Rotated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Rotated {
    type Err = RotationProblem;

    fn from_str(s: &str) -> Result<Rotated, RotationProblem> {
        Rotated::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| RotationProblem::Unknown(s.to_owned()))
    }
}

/// A stage of a rotation, in the order they must run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// The new CA or key is made; trust files carry both; the old one signs.
    Start,
    /// The new one signs; trust files still carry both.
    Issue,
    /// The old one is dropped.
    Finish,
}

impl Stage {
    /// The stage's name, as the command and the secrets file spell it.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Start => "start",
            Stage::Issue => "issue",
            Stage::Finish => "finish",
        }
    }

    /// The stage that comes after this one, if any.
    pub fn next(self) -> Option<Stage> {
        match self {
            Stage::Start => Some(Stage::Issue),
            Stage::Issue => Some(Stage::Finish),
            Stage::Finish => None,
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Stage {
    type Err = String;

    fn from_str(s: &str) -> Result<Stage, String> {
        [Stage::Start, Stage::Issue, Stage::Finish]
            .into_iter()
            .find(|stage| stage.name() == s)
            .ok_or_else(|| format!("`{s}` is no stage (start, issue, finish)"))
    }
}

/// A rotation in progress, as the secrets file records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rotation {
    /// `Start` or `Issue`: a finished rotation is no longer recorded.
    pub(crate) stage: Stage,
    /// When the new CA certificate is issued (its validity begins then).
    pub(crate) issued_at: OffsetDateTime,
}

/// A CA certificate to import as the new CA of a `start`.
#[derive(Debug, Clone, Copy)]
pub struct NewCa<'a> {
    /// The certificate, PEM.
    pub cert_pem: &'a str,
    /// Its private key, PEM.
    pub key_pem: &'a str,
}

impl Secrets {
    /// The stage `rotated` stands at: `None` when no rotation of it runs.
    pub fn rotation(&self, rotated: Rotated) -> Option<Stage> {
        self.rotations.get(rotated.name()).map(|r| r.stage)
    }

    /// Moves the rotation of `rotated` to `stage`, at `now`. `start` makes the new key in
    /// the plan's algorithm, or takes `import` as the new CA; stages out of order are
    /// refused with the stage that comes next.
    pub fn rotate(
        &mut self,
        plan: &Plan,
        rotated: Rotated,
        stage: Stage,
        now: OffsetDateTime,
        import: Option<NewCa<'_>>,
    ) -> Result<(), Error> {
        let refuse = |problem| Err(Error::Rotation(problem));
        if let Rotated::Ca(ca) = rotated {
            if ca.effective(plan.pki.layout) != ca {
                return refuse(RotationProblem::SharedCa(ca.name()));
            }
        }
        if import.is_some() && (stage != Stage::Start || rotated == Rotated::ServiceAccount) {
            return refuse(RotationProblem::ImportOnlyAtStart);
        }
        let current = self.rotation(rotated);
        let expected = current.map_or(Stage::Start, |at| at.next().unwrap_or(Stage::Start));
        if stage != expected {
            return refuse(RotationProblem::OutOfOrder {
                rotated: rotated.name(),
                asked: stage.name(),
                at: current.map(Stage::name),
                next: expected.name(),
            });
        }
        match stage {
            Stage::Start => self.start(plan, rotated, now, import)?,
            Stage::Issue => {
                if let Some(rotation) = self.rotations.get_mut(rotated.name()) {
                    rotation.stage = Stage::Issue;
                }
            }
            Stage::Finish => self.finish(rotated),
        }
        Ok(())
    }

    /// [`Secrets::rotate`] on the secrets file at `path`, under its lock, then saved
    /// atomically; the CAs and the service-account keys of the new secrets must load first,
    /// so a failure leaves the file as it was. Keys of hosts added to the config since are
    /// not its business: the next `bundle` makes them.
    pub fn rotate_file(
        path: &camino::Utf8Path,
        plan: &Plan,
        rotated: Rotated,
        stage: Stage,
        now: OffsetDateTime,
        import: Option<NewCa<'_>>,
    ) -> Result<Secrets, Error> {
        let _lock = crate::atomic::lock_directory(crate::atomic::parent_dir(path))?;
        let mut secrets = Secrets::load(path)?;
        secrets.rotate(plan, rotated, stage, now, import)?;
        super::issue::Authority::new(plan, &secrets)?.cert_set(Vec::new())?;
        secrets.save(path)?;
        Ok(secrets)
    }

    fn start(
        &mut self,
        plan: &Plan,
        rotated: Rotated,
        now: OffsetDateTime,
        import: Option<NewCa<'_>>,
    ) -> Result<(), Error> {
        let next = rotated.next_key_id();
        match (rotated, import) {
            (Rotated::Ca(ca), Some(new)) => {
                let slot = ImportSlot {
                    key_id: next.clone(),
                    cert_name: format!("{}{NEXT}", ca.name()),
                };
                let mut imported = self.clone();
                import_into(&mut imported, ca, &slot, new.cert_pem, new.key_pem, now)?;
                // A key the file holds already is no new CA: the CA itself (a rotation that
                // changes nothing), another CA of the cluster (etcd would trust everything
                // the Kubernetes CA signs) or a leaf's.
                let key = imported.public.get(&next).map(|info| &info.public);
                if let Some((holder, _)) = self
                    .public
                    .iter()
                    .find(|(_, info)| Some(&info.public) == key)
                {
                    return Err(Error::Rotation(RotationProblem::KeyInUse {
                        rotated: rotated.name(),
                        holder: holder.clone(),
                    }));
                }
                *self = imported;
            }
            _ => {
                let algorithm = match rotated {
                    Rotated::Ca(_) => plan.pki.key_algorithm,
                    Rotated::ServiceAccount => plan.pki.service_account_key_algorithm,
                };
                let (pem, info) = generate_pem(algorithm).map_err(|source| Error::Key {
                    identity: next.clone(),
                    source,
                })?;
                self.public.insert(next.clone(), info);
                self.keys.insert(next, pem);
            }
        }
        let issued_at = now.replace_nanosecond(0).unwrap_or(now);
        self.rotations.insert(
            rotated.name().to_owned(),
            Rotation {
                stage: Stage::Start,
                issued_at,
            },
        );
        Ok(())
    }

    /// The new key (and imported certificate) takes the old one's place; the old one is
    /// gone: nothing trusts it any more.
    fn finish(&mut self, rotated: Rotated) {
        let Some(rotation) = self.rotations.remove(rotated.name()) else {
            return;
        };
        let next = rotated.next_key_id();
        if let (Some(key), Some(info)) = (self.keys.remove(&next), self.public.remove(&next)) {
            self.keys.insert(rotated.key_id().to_owned(), key);
            self.public.insert(rotated.key_id().to_owned(), info);
        }
        if let Rotated::Ca(ca) = rotated {
            self.imported_cas.remove(ca.name());
            if let Some(cert) = self.imported_cas.remove(&format!("{}{NEXT}", ca.name())) {
                self.imported_cas.insert(ca.name().to_owned(), cert);
            }
            self.ca_issued_at_of
                .insert(ca.name().to_owned(), rotation.issued_at);
        }
    }

    /// Where one generation of CA `ca` comes from.
    pub(crate) fn ca_source(&self, ca: Ca, generation: Generation) -> CaSource<'_> {
        let (key_id, cert_name, issued_at) = match generation {
            Generation::Current => (
                ca.id().to_owned(),
                ca.name().to_owned(),
                self.ca_issued_at_of.get(ca.name()).copied(),
            ),
            Generation::Next => (
                format!("{}{NEXT}", ca.id()),
                format!("{}{NEXT}", ca.name()),
                self.rotations.get(ca.name()).map(|r| r.issued_at),
            ),
        };
        CaSource {
            secrets: self,
            imported: self.imported_cas.get(&cert_name).map(String::as_str),
            key_id,
            issued_at: issued_at.unwrap_or(self.ca_issued_at),
        }
    }
}

/// One generation of a CA, as the secrets file holds it.
pub(crate) struct CaSource<'a> {
    pub(crate) secrets: &'a Secrets,
    /// Its key's name.
    pub(crate) key_id: String,
    /// Its certificate, when imported.
    pub(crate) imported: Option<&'a str>,
    /// When a generated certificate is issued.
    pub(crate) issued_at: OffsetDateTime,
}

/// Which generation of a CA or key signs during a rotation, and which the trust files
/// carry, signer first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Generation {
    /// The one in use before the rotation.
    Current,
    /// The one the rotation brings.
    Next,
}

impl Generation {
    /// The generations trust files carry at `stage` (`None`: no rotation), the signing one
    /// first.
    pub(crate) fn trusted(stage: Option<Stage>) -> &'static [Generation] {
        match stage {
            None | Some(Stage::Finish) => &[Generation::Current],
            Some(Stage::Start) => &[Generation::Current, Generation::Next],
            Some(Stage::Issue) => &[Generation::Next, Generation::Current],
        }
    }
}
