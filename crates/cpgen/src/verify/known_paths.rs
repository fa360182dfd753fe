//! The files a bundle cpgen writes can hold, by path: verify trusts a certificate or key
//! only in one of them, and anything else under `hosts/` would be installed on a machine
//! (`usr/bin/etcd`, `etc/ld.so.preload`, `root/.ssh/authorized_keys`) without any check
//! knowing what it does.

use crate::bundle::manifest::MANIFEST;
use crate::layout::{CHANGES, README};
use crate::render::paths::{ADMIN_FILES, HOST_FILES, SYSTEMD, UNITS};

/// Paths outside `hosts/`, for the operator and the deployment tools.
const OTHER_FILES: &[&str] = &[
    README,
    MANIFEST,
    CHANGES,
    "deploy/ansible/changes-step.yml",
    "deploy/ansible/inventory.ini",
    "deploy/ansible/playbook.yml",
    "deploy/nix/module.nix",
];

/// True for a path a cpgen bundle can hold.
pub(super) fn is_expected(path: &str) -> bool {
    if OTHER_FILES.contains(&path) || ADMIN_FILES.contains(&path) {
        return true;
    }
    if let Some(vars) = path.strip_prefix("deploy/ansible/host_vars/") {
        return vars.ends_with(".yml") && !vars.contains('/');
    }
    path.strip_prefix("hosts/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(_, local)| is_host_file(local))
}

/// True for a path below `hosts/<host>/` that cpgen writes: the renderer's own list.
fn is_host_file(local: &str) -> bool {
    let absolute = format!("/{local}");
    if HOST_FILES.contains(&absolute.as_str()) {
        return true;
    }
    absolute
        .strip_prefix(SYSTEMD)
        .and_then(|unit| unit.strip_prefix('/'))
        .is_some_and(|unit| UNITS.contains(&unit))
}
