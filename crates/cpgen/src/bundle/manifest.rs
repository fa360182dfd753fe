//! `manifest.json`: what made the bundle (cpgen's name and version, the config's sha256),
//! the cluster's members with their addresses and roles, and every other file of the bundle
//! with host, target, mode, owner, sha256 and kind, in path order.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::BundleFile;
use crate::layout::{hosts, FileKind, Role, OWNER};
use std::collections::BTreeMap;

use crate::pki::{Rotated, Secrets};
use crate::plan::{EtcdJoin, LoadBalancerMode, Plan};
use crate::Error;

/// The manifest's path in the bundle; it sorts after `hosts/`, so it is written last.
pub(crate) const MANIFEST: &str = "manifest.json";

#[derive(Serialize)]
pub(crate) struct Manifest {
    format_version: u32,
    #[serde(flatten)]
    header: Header,
    files: Vec<ManifestEntry>,
}

/// Which cluster a bundle is of and what made it, so that a later command (a verify, a
/// change to the running cluster) can tell. Read leniently: a key a bundle lacks is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Header {
    generator: Generator,
    /// The sha256 of the config text the plan was validated from; `None` for a plan that
    /// did not come from a config file.
    config_sha256: Option<String>,
    cluster: String,
    members: Vec<Member>,
    /// How each etcd member joined, in a bundle that changes a running cluster (`bundle
    /// --previous`); absent otherwise, as every member then bootstraps together.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    etcd_joins: BTreeMap<String, EtcdJoin>,
    /// The rotations in progress (`kubernetes`, `etcd`, `front-proxy`, `service-account`)
    /// and their stage: their trust files carry two generations. Absent when none runs.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    rotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Generator {
    name: String,
    version: String,
}

impl Default for Generator {
    fn default() -> Generator {
        Generator {
            name: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// A machine of the cluster and what it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Member {
    /// Its host name.
    pub(crate) name: String,
    /// Its address, as the config wrote it.
    pub(crate) address: String,
    /// `master`, `etcd`, `load-balancer`, `worker`.
    pub(crate) roles: Vec<String>,
}

impl Header {
    /// The header of `plan`'s bundle.
    pub(crate) fn of(plan: &Plan) -> Header {
        let on_masters = plan.load_balancer.mode == LoadBalancerMode::OnMasters;
        let members = hosts(plan)
            .map(|(host, role)| {
                let mut roles: Vec<&str> = match role {
                    Role::Master if on_masters => vec!["master", "etcd", "load-balancer"],
                    Role::Master => vec!["master", "etcd"],
                    Role::LoadBalancer => vec!["load-balancer"],
                    Role::Worker => vec!["worker"],
                };
                // A master with a kubelet and kube-proxy (`control_plane.workloads`).
                if role == Role::Master && role.is_node(plan) {
                    roles.push("node");
                }
                Member {
                    name: host.name.to_string(),
                    address: host.address.to_string(),
                    roles: roles.into_iter().map(str::to_owned).collect(),
                }
            })
            .collect();
        Header {
            generator: Generator::default(),
            config_sha256: plan.config_sha256.as_ref().map(|digest| hex(digest)),
            cluster: plan.cluster.name.to_string(),
            members,
            etcd_joins: plan.etcd.joins.clone(),
            rotations: BTreeMap::new(),
        }
    }

    /// The header with the rotations `secrets` records.
    pub(crate) fn rotating(mut self, secrets: &Secrets) -> Header {
        self.rotations = Rotated::ALL
            .into_iter()
            .filter_map(|r| Some((r.name().to_owned(), secrets.rotation(r)?.name().to_owned())))
            .collect();
        self
    }

    /// The stage of each rotation in progress, by what rotates.
    pub(crate) fn rotations(&self) -> &BTreeMap<String, String> {
        &self.rotations
    }

    /// The header of an existing `manifest.json`, or an empty one.
    pub(crate) fn read(json: &[u8]) -> Header {
        serde_json::from_slice(json).unwrap_or_default()
    }

    /// The cluster's name (empty when the manifest lacks it).
    pub(crate) fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The cluster's machines, in the order the bundle lists them.
    pub(crate) fn members(&self) -> &[Member] {
        &self.members
    }

    /// How each etcd member joined, when the bundle changes a running cluster.
    pub(crate) fn etcd_joins(&self) -> &BTreeMap<String, EtcdJoin> {
        &self.etcd_joins
    }
}

/// One file's line. Kept compact (a bundle of 10,000 workers has 100,000 of them) and
/// formatted only when serialized.
#[derive(Serialize)]
pub(crate) struct ManifestEntry {
    pub(crate) path: String,
    host: Option<String>,
    target: Option<String>,
    #[serde(serialize_with = "octal")]
    mode: u32,
    owner: &'static str,
    #[serde(serialize_with = "hex_digest")]
    sha256: [u8; 32],
    kind: FileKind,
}

impl ManifestEntry {
    /// The entry of `file` at `path` (hashes its contents).
    pub(crate) fn of(path: &str, file: &BundleFile) -> ManifestEntry {
        ManifestEntry {
            path: path.to_owned(),
            host: file.host.as_ref().map(ToString::to_string),
            target: file.target.clone(),
            mode: file.mode(),
            owner: OWNER,
            sha256: Sha256::digest(&file.contents).into(),
            kind: file.kind,
        }
    }
}

impl Manifest {
    /// An empty manifest with `header`.
    pub(crate) fn new(header: Header) -> Manifest {
        Manifest {
            format_version: 1,
            header,
            files: Vec::new(),
        }
    }

    /// How many files it lists.
    pub(crate) fn len(&self) -> usize {
        self.files.len()
    }

    /// Adds the next file, in path order.
    pub(crate) fn add(&mut self, entry: ManifestEntry) {
        self.files.push(entry);
    }

    /// The manifest as a bundle file.
    pub(crate) fn into_file(self) -> Result<BundleFile, Error> {
        // About 300 bytes a line; sized up front rather than doubled into.
        let mut json = Vec::with_capacity(64 + self.files.len() * 320);
        serde_json::to_writer_pretty(&mut json, &self)
            .map_err(|_| Error::Internal("manifest serialization"))?;
        json.push(b'\n');
        Ok(BundleFile {
            kind: FileKind::Manifest,
            host: None,
            target: None,
            contents: json,
        })
    }
}

fn octal<S: serde::Serializer>(mode: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{mode:04o}"))
}

fn hex_digest<S: serde::Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(bytes))
}

/// Lowercase hex, as the manifest writes digests.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|byte| {
            [
                DIGITS[usize::from(byte >> 4)],
                DIGITS[usize::from(byte & 0xf)],
            ]
        })
        .map(char::from)
        .collect()
}
