//! With `--config`: each host holds exactly the files its part in that config gets. The
//! structural audit allows any file cpgen writes on any host; a config says which (an
//! HAProxy or keepalived config on a master of a cluster with an external load balancer is a
//! file cpgen writes, but not there, and keepalived runs its `vrrp_script` as root).

use std::collections::BTreeSet;

use super::source::Tree;
use crate::diag::{Code, Diagnostic};
use crate::layout::{host_path, hosts};
use crate::Plan;

/// Files under `hosts/` that the plan does not give their host. (A file it gives that is
/// missing is already a finding of the manifest, of whoever names it, or of CP830.) A plan
/// whose layout cannot be worked out gives no finding here: the other comparisons report it.
pub(super) fn findings(tree: &Tree, plan: &Plan) -> Vec<Diagnostic> {
    let mut expected = BTreeSet::new();
    for (host, role) in hosts(plan) {
        let Ok(files) = crate::render::host_layout(plan, host, role) else {
            return Vec::new();
        };
        expected.extend(files.iter().map(|file| host_path(&host.name, &file.target)));
    }
    let present: BTreeSet<String> = tree
        .files
        .keys()
        .filter(|path| path.starts_with("hosts/"))
        .cloned()
        .collect();
    let help = "build the bundle again from this config, or verify it against the config it was built from";
    let extra = present.difference(&expected).map(|path| {
        Diagnostic::file_error(
            Code::PlanMismatch,
            path,
            "the config gives this host no such file: its part in the cluster has none",
            help,
        )
    });
    extra.collect()
}
