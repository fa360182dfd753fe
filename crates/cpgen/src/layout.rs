//! The bundle's shape, shared by everything that writes or reads it: which hosts a plan has
//! and in what role, where a host's file goes in the bundle, what kind of file it is and so
//! its mode and owner. It knows nothing of contents, keys or templates, so the renderer, the
//! deployment glue, the writer and verify all build on it instead of on each other.

use serde::Serialize;

use crate::plan::{Host, Plan};
use crate::types::HostName;

/// What a file is; decides its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum FileKind {
    Certificate,
    PrivateKey,
    /// Not a key, but holds one (embedded in a kubeconfig, the encryption key).
    Secret,
    SystemdUnit,
    Kubeconfig,
    Config,
    Readme,
    Manifest,
    Deploy,
}

impl FileKind {
    /// 0600 for anything holding key material, 0644 for the rest.
    pub fn mode(self) -> u32 {
        match self {
            FileKind::PrivateKey | FileKind::Secret => 0o600,
            _ => 0o644,
        }
    }
}

/// Mode of every directory in the bundle.
pub(crate) const DIR_MODE: u32 = 0o755;
/// Owner of every file.
pub(crate) const OWNER: &str = "root:root";

/// The bundle's README, for the operator.
pub(crate) const README: &str = "README.md";

/// The runbook of a bundle that changes a running cluster (`bundle --previous`).
pub(crate) const CHANGES: &str = "changes.json";

/// What a host is in the cluster; decides which files it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Master,
    LoadBalancer,
    Worker,
}

impl Role {
    /// True when a host of this role runs a kubelet and kube-proxy under `plan`: every
    /// worker, and the masters with `control_plane.workloads`.
    pub(crate) fn is_node(self, plan: &Plan) -> bool {
        match self {
            Role::Master => plan.masters_are_nodes(),
            Role::Worker => true,
            Role::LoadBalancer => false,
        }
    }

    /// How the bundle's README names it.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::LoadBalancer => "load balancer",
            Role::Worker => "worker",
        }
    }
}

/// Every host of the plan with its role: masters, load balancers, workers, each in the
/// config's order.
pub(crate) fn hosts(plan: &Plan) -> impl Iterator<Item = (&Host, Role)> {
    let masters = plan.masters.iter().map(|h| (h, Role::Master));
    let balancers = plan.load_balancer.hosts.iter();
    masters
        .chain(balancers.map(|h| (h, Role::LoadBalancer)))
        .chain(plan.workers.iter().map(|h| (h, Role::Worker)))
}

/// One host's file list without contents.
pub(crate) struct HostListing<'a> {
    pub(crate) host: &'a Host,
    pub(crate) role: Role,
    /// Target path and kind, sorted by path.
    pub(crate) files: Vec<(String, FileKind)>,
}

/// The bundle path of a host's file at `target`.
pub(crate) fn host_path(host: &HostName, target: &str) -> String {
    format!("hosts/{host}/{}", target.trim_start_matches('/'))
}
