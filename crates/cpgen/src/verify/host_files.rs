//! With `--config`: each host holds exactly the files its part in that config gets, and every
//! file the config alone makes (units, the kubeconfigs that name files, the kubelet's and
//! kube-proxy's configuration, HAProxy's and keepalived's, the whole of `deploy/`) is the
//! config's, byte for byte. The structural audit allows any file cpgen writes on any host and
//! reads settings by meaning; a config says which files, and exactly what they hold, without
//! the secrets a full rebuild needs (an HAProxy config on a master of a cluster with an
//! external load balancer is a file cpgen writes, but not there; a NixOS module that runs the
//! kubelet with other flags, a playbook with one more task, are not).

use std::collections::{BTreeMap, BTreeSet};

use super::source::Tree;
use crate::diag::{Code, Diagnostic};
use crate::layout::{host_path, hosts, HostListing};
use crate::Plan;

const HELP: &str =
    "build the bundle again from this config, or verify it against the config it was built from";

/// The files the plan makes, by bundle path: their bytes when the plan alone makes them.
/// `None` when the layout cannot be worked out: the other comparisons report such a plan.
fn expected_files(plan: &Plan) -> Option<BTreeMap<String, Option<Vec<u8>>>> {
    let mut expected = BTreeMap::new();
    let mut listing = Vec::new();
    for (host, role) in hosts(plan) {
        let files = crate::render::host_layout(plan, host, role).ok()?;
        let mut listed = Vec::with_capacity(files.len());
        for file in files {
            let contents = file.plan_contents().transpose().ok()?;
            expected.insert(host_path(&host.name, &file.target), contents);
            listed.push((file.target, file.kind));
        }
        listing.push(HostListing {
            host,
            role,
            files: listed,
        });
    }
    for (path, _, contents) in crate::deploy::deploy_files(plan, &listing).ok()? {
        expected.insert(path, Some(contents));
    }
    Some(expected)
}

/// Files under `hosts/` and `deploy/` that the plan does not make, that it makes and are
/// missing, and those whose bytes differ from the plan's.
pub(super) fn findings(tree: &Tree, plan: &Plan) -> Vec<Diagnostic> {
    let plan = super::with_recorded_joins(tree, plan);
    let Some(expected) = expected_files(&plan) else {
        return Vec::new();
    };
    let present: BTreeSet<&String> = tree
        .files
        .keys()
        .filter(|path| path.starts_with("hosts/") || path.starts_with("deploy/"))
        .collect();
    let mut found = Vec::new();
    for path in present.iter().filter(|path| !expected.contains_key(**path)) {
        found.push(Diagnostic::file_error(
            Code::PlanMismatch,
            path,
            "the config makes no such file: this host's part in the cluster has none",
            HELP,
        ));
    }
    for (path, contents) in &expected {
        let Some(entry) = tree.files.get(path) else {
            found.push(Diagnostic::file_error(
                Code::PlanMismatch,
                path,
                "the config makes this file, and the bundle lacks it",
                HELP,
            ));
            continue;
        };
        if contents.as_ref().is_some_and(|bytes| *bytes != entry.data) {
            found.push(Diagnostic::file_error(
                Code::PlanMismatch,
                path,
                "differs from what the config makes (the config alone decides every byte of it)",
                HELP,
            ));
        }
    }
    found
}
