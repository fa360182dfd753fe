//! Which units a change needs restarted, started or stopped on a host: a unit restarts when
//! its own file changed or any file it reads did (a path among its ExecStart's flag values,
//! and the files a kubeconfig among them names); HAProxy and keepalived, whose units come
//! with their Debian packages, restart when their config changed.

use std::collections::{BTreeMap, BTreeSet};

use super::PartDiff;
use crate::render::paths::{HAPROXY_UNIT, KEEPALIVED_UNIT};
use crate::verify::source::Tree;
use crate::verify::{kubeconfig_files, parse_unit};

/// A systemd unit's name, e.g. `kube-apiserver.service`, as the bundle names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitName(String);

impl UnitName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UnitName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a host's change asks of systemd.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnitActions {
    /// Units in both bundles whose file, or a file they read, changed.
    pub restart: Vec<UnitName>,
    /// Units only the new bundle has (or whose config it adds).
    pub start: Vec<UnitName>,
    /// Units only the old bundle has (or whose config it removes).
    pub stop: Vec<UnitName>,
    /// True when a file under `/etc/systemd/system/` was added, removed or changed:
    /// `systemctl daemon-reload` comes first.
    pub daemon_reload: bool,
}

impl UnitActions {
    /// True when nothing needs doing.
    pub fn is_empty(&self) -> bool {
        self.restart.is_empty() && self.start.is_empty() && self.stop.is_empty()
    }
}

/// Where cpgen writes units, under a host's root.
const UNIT_DIR: &str = "etc/systemd/system/";

/// Configs whose units the bundle does not carry: the Debian packages' own.
const PACKAGED: &[(&str, &str)] = &[
    ("etc/haproxy/haproxy.cfg", HAPROXY_UNIT),
    ("etc/keepalived/keepalived.conf", KEEPALIVED_UNIT),
];

/// The units `diff` (one host's changes) restarts, starts and stops on `host`.
pub(super) fn actions(host: &str, diff: &PartDiff, old: &Tree, new: &Tree) -> UnitActions {
    let root = format!("hosts/{host}/");
    let touched: BTreeSet<&str> = diff
        .added
        .iter()
        .chain(&diff.removed)
        .chain(diff.changed.iter().map(|change| &change.path))
        .map(String::as_str)
        .collect();
    let (before, after) = (units_of(old, &root), units_of(new, &root));
    let mut actions = UnitActions {
        daemon_reload: touched
            .iter()
            .any(|path| path.starts_with(&format!("{root}{UNIT_DIR}"))),
        ..UnitActions::default()
    };
    for (name, path) in &after {
        if !before.contains_key(name) {
            actions.start.push(name.clone());
        } else if needs_restart(name, path, new, &root, &touched) {
            actions.restart.push(name.clone());
        }
    }
    let gone = before.keys().filter(|name| !after.contains_key(*name));
    actions.stop.extend(gone.cloned());
    for (config, unit) in PACKAGED {
        let path = format!("{root}{config}");
        if !touched.contains(path.as_str()) {
            continue;
        }
        let unit = UnitName((*unit).to_owned());
        match (old.files.contains_key(&path), new.files.contains_key(&path)) {
            (false, _) => actions.start.push(unit),
            (_, false) => actions.stop.push(unit),
            _ => actions.restart.push(unit),
        }
    }
    for list in [&mut actions.restart, &mut actions.start, &mut actions.stop] {
        list.sort();
    }
    actions
}

/// The units directly in `/etc/systemd/system/` of the host at `root`, with their paths.
fn units_of(tree: &Tree, root: &str) -> BTreeMap<UnitName, String> {
    let dir = format!("{root}{UNIT_DIR}");
    tree.files
        .range(dir.clone()..)
        .take_while(|(path, _)| path.starts_with(&dir))
        .filter_map(|(path, _)| {
            let name = &path[dir.len()..];
            let unit = name.ends_with(".service") && !name.contains('/');
            unit.then(|| (UnitName(name.to_owned()), path.clone()))
        })
        .collect()
}

/// True when the unit at `path` (in both bundles) changed, a drop-in of it did, or a file it
/// reads did.
fn needs_restart(
    name: &UnitName,
    path: &str,
    new: &Tree,
    root: &str,
    touched: &BTreeSet<&str>,
) -> bool {
    let drop_ins = format!("{path}.d/");
    touched.contains(path)
        || touched.iter().any(|other| other.starts_with(&drop_ins))
        || uses(name, path, new, root)
            .iter()
            .any(|used| touched.contains(used.as_str()))
}

/// The bundle paths of the files the unit at `path` reads: the absolute paths among its
/// flags' values, and what each kubeconfig among them names.
fn uses(name: &UnitName, path: &str, tree: &Tree, root: &str) -> BTreeSet<String> {
    let text = |path: &str| {
        tree.files
            .get(path)
            .map(|entry| String::from_utf8_lossy(&entry.data).into_owned())
    };
    let Some(unit) = text(path).and_then(|unit| parse_unit(name.as_str(), &unit)) else {
        return BTreeSet::new();
    };
    let mut used = BTreeSet::new();
    for absolute in unit.absolute_paths() {
        let file = format!("{root}{}", absolute.trim_start_matches('/'));
        if absolute.ends_with("kubeconfig") {
            let dir = match absolute.trim_start_matches('/').rsplit_once('/') {
                Some((dir, _)) => format!("{dir}/"),
                None => String::new(),
            };
            let named = text(&file).map_or_else(Vec::new, |k| kubeconfig_files(&file, &k));
            used.extend(named.iter().map(|named| match named.strip_prefix('/') {
                Some(absolute) => format!("{root}{absolute}"),
                // client-go reads a relative path from the kubeconfig's directory.
                None => format!("{root}{dir}{named}"),
            }));
        }
        used.insert(file);
    }
    used
}
