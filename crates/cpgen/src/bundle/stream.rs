//! Writing a plan's bundle host by host. Every host's file list is laid out from the plan
//! first (the README and the deployment glue list them, and every directory goes before any
//! file); then hosts are made a batch at a time — their own certificates issued, their
//! files rendered and hashed, across all cores — and handed to the sink in path order. So
//! memory holds a batch of hosts' files, not the cluster's.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rayon::prelude::*;

use super::manifest::{Header, Manifest, ManifestEntry, MANIFEST};
use super::{add_parents, BundleFile};
use crate::layout::{host_path, hosts, HostListing};
use crate::pki::{leaf_identities, Authority, CertSet, Identity, Secrets};
use crate::plan::Plan;
use crate::render::{self, HostCerts};
use crate::types::HostName;
use crate::Error;

/// Where a bundle's entries go, in the order of the archive: every directory first, then
/// every file by path. [`emit`] writes a plan's bundle into any sink host by host.
pub trait Sink {
    /// A directory (relative, no trailing `/`), before any file.
    fn directory(&mut self, path: &str) -> Result<(), Error>;
    /// A file at `path`, in sorted order.
    fn file(&mut self, path: &str, file: BundleFile) -> Result<(), Error>;
}

/// Hosts made at once: enough to keep every core busy, few enough that a batch's files
/// are a small, fixed amount of memory.
const HOSTS_PER_BATCH: usize = 64;

/// Writes the bundle of `plan` into `sink`: every directory, then every file in path order,
/// `manifest.json` last. Every key must already be in `secrets` (see [`Secrets::fill`]).
/// Returns the number of files. The same inputs send the same entries, with any number of
/// threads. `progress(hosts written, hosts)` is called after each batch of hosts.
pub fn emit(
    plan: &Plan,
    secrets: &Secrets,
    sink: &mut impl Sink,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<usize, Error> {
    let authority = Authority::new(plan, secrets)?;
    let (shared_identities, own) = split_identities(plan);
    let shared_certs = authority.cert_set(shared_identities)?;
    let listing = hosts(plan)
        .map(|(host, role)| {
            let files = render::host_layout(plan, host, role)?
                .into_iter()
                .map(|spec| (spec.target, spec.kind))
                .collect();
            Ok(HostListing { host, role, files })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let mut shared_files = render::shared_files(plan, &shared_certs, &listing)?;
    shared_files.extend(crate::deploy::deploy_files(plan, &listing)?);
    let shared: BTreeMap<String, BundleFile> = shared_files
        .into_iter()
        .map(|(path, kind, contents)| {
            let file = BundleFile {
                kind,
                host: None,
                target: None,
                contents,
            };
            (path, file)
        })
        .collect();
    let mut order: Vec<&HostListing<'_>> = listing.iter().collect();
    order.sort_by_cached_key(|listed| host_path(&listed.host.name, ""));
    let context = Context {
        plan,
        authority: &authority,
        shared: &shared_certs,
        own: &own,
    };
    let mut out = Writer {
        sink,
        manifest: Manifest::new(Header::of(plan).rotating(secrets)),
    };
    // Hosts are made on the rayon pool while this thread writes what comes before them and
    // then hands each batch to the sink; the channel holds one batch, so at most three are
    // in memory.
    std::thread::scope(|scope| {
        let (made_tx, made_rx) = std::sync::mpsc::sync_channel(1);
        scope.spawn(move || {
            for batch in order.chunks(HOSTS_PER_BATCH) {
                let made = batch
                    .par_iter()
                    .map(|listed| context.host_files(listed))
                    .collect::<Result<Vec<_>, Error>>();
                let failed = made.is_err();
                // A closed channel means the writer failed and stopped listening.
                if made_tx.send(made).is_err() || failed {
                    break;
                }
            }
        });
        send_directories(&shared, &listing, out.sink)?;
        // No shared file is under hosts/, so the shared files before it, every host's
        // files (a contiguous range each) and the shared files after it are in path order.
        for (path, file) in shared.range(..String::from("hosts/")) {
            out.send(ManifestEntry::of(path, file), file.clone())?;
        }
        let (mut hosts_done, hosts) = (0, listing.len());
        for made in made_rx {
            let made = made?;
            hosts_done += made.len();
            for (entry, file) in made.into_iter().flatten() {
                out.send(entry, file)?;
            }
            progress(hosts_done, hosts);
        }
        Ok::<(), Error>(())
    })?;
    for (path, file) in shared.range(String::from("hosts/")..) {
        out.send(ManifestEntry::of(path, file), file.clone())?;
    }
    // Every file is in the manifest but the manifest itself.
    let count = out.manifest.len() + 1;
    out.sink.file(MANIFEST, out.manifest.into_file()?)?;
    Ok(count)
}

/// The identities every host shares, and each host's own.
fn split_identities(plan: &Plan) -> (Vec<Identity>, HashMap<HostName, Vec<Identity>>) {
    let mut shared = Vec::new();
    let mut own: HashMap<HostName, Vec<Identity>> = HashMap::new();
    for identity in leaf_identities(plan) {
        match &identity.host {
            Some(host) => own.entry(host.clone()).or_default().push(identity),
            None => shared.push(identity),
        }
    }
    (shared, own)
}

/// Every directory of the bundle, before any file (as `tar` lists them).
fn send_directories(
    shared: &BTreeMap<String, BundleFile>,
    listing: &[HostListing<'_>],
    sink: &mut impl Sink,
) -> Result<(), Error> {
    let mut dirs = BTreeSet::new();
    for path in shared.keys() {
        add_parents(&mut dirs, path);
    }
    for listed in listing {
        for (target, _) in &listed.files {
            add_parents(&mut dirs, &host_path(&listed.host.name, target));
        }
    }
    dirs.iter().try_for_each(|dir| sink.directory(dir))
}

/// Hands files to the sink and keeps their manifest lines.
struct Writer<'s, S: Sink> {
    sink: &'s mut S,
    manifest: Manifest,
}

impl<S: Sink> Writer<'_, S> {
    fn send(&mut self, entry: ManifestEntry, file: BundleFile) -> Result<(), Error> {
        self.sink.file(&entry.path, file)?;
        self.manifest.add(entry);
        Ok(())
    }
}

/// What making one host's files needs.
struct Context<'a> {
    plan: &'a Plan,
    authority: &'a Authority<'a>,
    shared: &'a CertSet,
    own: &'a HashMap<HostName, Vec<Identity>>,
}

impl Context<'_> {
    /// One host's files with their manifest lines, sorted by path.
    fn host_files(
        &self,
        listed: &HostListing<'_>,
    ) -> Result<Vec<(ManifestEntry, BundleFile)>, Error> {
        let name = &listed.host.name;
        let own = self
            .own
            .get(name)
            .into_iter()
            .flatten()
            .map(|identity| self.authority.sign(identity.clone()))
            .collect::<Result<Vec<_>, Error>>()?;
        let certs = HostCerts {
            shared: self.shared,
            own,
        };
        // The layout is made again rather than kept from the listing: it is cheap (contents
        // are descriptors), and keeping every host's would hold the whole cluster's.
        render::host_layout(self.plan, listed.host, listed.role)?
            .into_iter()
            .map(|spec| {
                let path = host_path(name, &spec.target);
                let file = BundleFile {
                    kind: spec.kind,
                    host: Some(name.clone()),
                    contents: spec.contents(&certs)?,
                    target: Some(spec.target),
                };
                Ok((ManifestEntry::of(&path, &file), file))
            })
            .collect()
    }
}
