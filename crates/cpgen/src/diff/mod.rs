//! `cpgen diff OLD NEW`: what changes between two bundles, host by host — files added,
//! removed and changed (contents or mode), why a certificate was re-issued, and which units
//! the change restarts, starts or stops. Both bundles are read and parsed exactly as
//! `verify` reads them (its reader, its certificate and unit parsers); this module owns only
//! the comparison and its report.

mod certs;
mod render;
mod units;

use std::collections::{BTreeMap, BTreeSet};

use camino::Utf8Path;

use crate::diag::{Code, Diagnostic};
use crate::verify::source::{read_bundle, Tree};
use crate::verify::{self, CertInfo};
use crate::Error;

pub use certs::{CertChange, CertReason};
pub use units::{UnitActions, UnitName};

/// Which part of a bundle a file is in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Part {
    /// `hosts/<host>/...`: one machine's files.
    Host(String),
    /// `admin/...`: the operator's files.
    Admin,
    /// Everything else: `manifest.json`, `README.md`, `deploy/...`.
    TopLevel,
}

impl Part {
    /// The part the bundle path `path` is in.
    fn of(path: &str) -> Part {
        let host = path
            .strip_prefix("hosts/")
            .and_then(|rest| rest.split_once('/'))
            .filter(|(host, local)| !host.is_empty() && !local.is_empty());
        match host {
            Some((host, _)) => Part::Host(host.to_owned()),
            None if path.starts_with("admin/") => Part::Admin,
            None => Part::TopLevel,
        }
    }

    /// The host's name, for a host.
    pub fn host(&self) -> Option<&str> {
        match self {
            Part::Host(name) => Some(name),
            _ => None,
        }
    }
}

/// A file's permission bits before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModeChange {
    /// In the old bundle.
    pub old: u32,
    /// In the new bundle.
    pub new: u32,
}

/// A file in both bundles that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileChange {
    /// Its bundle path (`hosts/kubem00/etc/...`).
    pub path: String,
    /// True when its bytes differ.
    pub contents: bool,
    /// Its mode, when that differs.
    pub mode: Option<ModeChange>,
    /// Each certificate of it (the file's own, or one a kubeconfig embeds) that differs.
    pub certificates: Vec<CertChange>,
}

/// What changed in one part of the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartDiff {
    /// The host, `admin/` or the top-level files.
    pub part: Part,
    /// Bundle paths only the new bundle has.
    pub added: Vec<String>,
    /// Bundle paths only the old bundle has.
    pub removed: Vec<String>,
    /// Files in both that differ.
    pub changed: Vec<FileChange>,
    /// The units the change restarts, starts or stops (only a host has any).
    pub units: UnitActions,
}

/// Everything that differs between two bundles, by part; empty when they are the same byte
/// for byte, path for path and mode for mode.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct BundleDiff {
    /// The parts that differ: hosts by name, then `admin/`, then the top-level files.
    pub parts: Vec<PartDiff>,
    /// How many files the new bundle holds.
    pub files: usize,
    /// What reading the bundles found that does not stop a comparison (an archive path given
    /// twice, an owner other than root): the owner is not compared, so it is said here.
    pub findings: Vec<Diagnostic>,
}

impl BundleDiff {
    /// True when the bundles are the same.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Per host that needs any, the units to restart, start or stop.
    pub fn restarts(&self) -> impl Iterator<Item = (&str, &UnitActions)> {
        self.parts.iter().filter_map(|part| {
            let host = part.part.host()?;
            (!part.units.is_empty()).then_some((host, &part.units))
        })
    }

    /// The report as text, every name from the bundles escaped.
    pub fn render(&self) -> String {
        render::text(self)
    }

    /// The report as JSON, every string escaped.
    pub fn to_json(&self) -> serde_json::Value {
        render::json(self)
    }
}

/// A bundle read, with its certificates parsed once.
struct Parsed<'a> {
    tree: &'a Tree,
    certs: BTreeMap<String, CertInfo>,
}

impl<'a> Parsed<'a> {
    fn new(tree: &'a Tree) -> Parsed<'a> {
        Parsed {
            tree,
            certs: verify::certificates(tree),
        }
    }
}

/// Compares the bundles at `old` and `new` (each a `.tar.gz`, a `.tar` or a directory).
/// A bundle with hostile entries (CP800) or that is not a bundle (CP814) is
/// [`Error::NotComparable`], with every finding of reading it; one that cannot be read at
/// all is [`Error::Read`].
pub fn diff_paths(old: &Utf8Path, new: &Utf8Path) -> Result<BundleDiff, Error> {
    let (old_tree, mut findings) = read(old)?;
    let (new_tree, new_findings) = read(new)?;
    let (old_parsed, new_parsed) = (Parsed::new(&old_tree), Parsed::new(&new_tree));
    let refuse = |path: &Utf8Path, parsed: &Parsed<'_>, mut findings: Vec<Diagnostic>| {
        findings.extend(verify::not_a_bundle(parsed.tree, parsed.certs.len()));
        let fatal = findings
            .iter()
            .any(|f| matches!(f.code, Code::HostileEntry | Code::NotABundle));
        match fatal {
            true => Err(Error::NotComparable {
                path: path.to_owned(),
                findings,
            }),
            false => Ok(findings),
        }
    };
    findings = refuse(old, &old_parsed, findings)?;
    findings.extend(refuse(new, &new_parsed, new_findings)?);
    let mut diff = compare(&old_parsed, &new_parsed);
    diff.findings = findings;
    Ok(diff)
}

fn read(path: &Utf8Path) -> Result<(Tree, Vec<Diagnostic>), Error> {
    let mut findings = Vec::new();
    let tree = read_bundle(path, &mut findings)?;
    Ok((tree, findings))
}

/// Compares two bundles already in memory (a runbook compares the bundle on the machines
/// with the one about to replace it).
// Not called inside the crate yet: the runbook that will is being written.
#[allow(dead_code)]
pub(crate) fn diff_trees(old: &Tree, new: &Tree) -> BundleDiff {
    compare(&Parsed::new(old), &Parsed::new(new))
}

fn compare(old: &Parsed<'_>, new: &Parsed<'_>) -> BundleDiff {
    let mut parts: BTreeMap<Part, PartDiff> = BTreeMap::new();
    let paths: BTreeSet<&String> = old.tree.files.keys().chain(new.tree.files.keys()).collect();
    for path in paths {
        match (old.tree.files.get(path), new.tree.files.get(path)) {
            (None, Some(_)) => part_of(&mut parts, path).added.push(path.clone()),
            (Some(_), None) => part_of(&mut parts, path).removed.push(path.clone()),
            (Some(before), Some(after)) if before != after => {
                part_of(&mut parts, path).changed.push(FileChange {
                    path: path.clone(),
                    contents: before.data != after.data,
                    mode: (before.mode != after.mode).then_some(ModeChange {
                        old: before.mode,
                        new: after.mode,
                    }),
                    certificates: certs::changes(path, old, new),
                })
            }
            _ => {}
        }
    }
    for diff in parts.values_mut() {
        if let Part::Host(host) = &diff.part {
            diff.units = units::actions(host, diff, old.tree, new.tree);
        }
    }
    BundleDiff {
        parts: parts.into_values().collect(),
        files: new.tree.files.len(),
        findings: Vec::new(),
    }
}

/// The entry of the part `path` is in, made empty on first use.
fn part_of<'a>(parts: &'a mut BTreeMap<Part, PartDiff>, path: &str) -> &'a mut PartDiff {
    let part = Part::of(path);
    parts.entry(part.clone()).or_insert_with(|| PartDiff {
        part,
        added: Vec::new(),
        removed: Vec::new(),
        changed: Vec::new(),
        units: UnitActions::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_fall_in_their_part() {
        assert_eq!(
            Part::of("hosts/kubem00/etc/x"),
            Part::Host("kubem00".to_owned())
        );
        assert_eq!(Part::of("admin/admin.kubeconfig"), Part::Admin);
        assert_eq!(Part::of("manifest.json"), Part::TopLevel);
        assert_eq!(Part::of("hosts/x"), Part::TopLevel);
        assert_eq!(Part::of("hosts//x"), Part::TopLevel);
    }

    fn tree(files: &[(&str, &str)]) -> Tree {
        let mut tree = Tree::default();
        for (path, text) in files {
            let entry = crate::verify::source::Entry {
                mode: 0o644,
                data: text.as_bytes().to_vec(),
            };
            tree.files.insert((*path).to_owned(), entry);
        }
        tree
    }

    #[test]
    fn units_follow_their_flags_kubeconfigs_and_drop_ins() {
        let unit = "[Service]\nExecStart=/usr/bin/x --kubeconfig=/var/lib/x/kubeconfig --v=2\n";
        let kubeconfig = "users:\n- name: x\n  user:\n    client-certificate: pki/x.pem\n";
        let common = [
            ("hosts/m/etc/systemd/system/x.service", unit),
            ("hosts/m/etc/systemd/system/y.service", unit),
            ("hosts/m/var/lib/x/kubeconfig", kubeconfig),
        ];
        let old = tree(&[
            common[0],
            common[1],
            common[2],
            ("hosts/m/var/lib/x/pki/x.pem", "old"),
            ("hosts/m/etc/systemd/system/gone.service", unit),
        ]);
        let new = tree(&[
            common[0],
            common[1],
            common[2],
            ("hosts/m/var/lib/x/pki/x.pem", "new"),
            ("hosts/m/etc/systemd/system/new.service", unit),
            ("hosts/m/etc/keepalived/keepalived.conf", "vrrp"),
        ]);
        let diff = diff_trees(&old, &new);
        let (host, units) = diff.restarts().next().expect("m has units to act on");
        assert_eq!(host, "m");
        let names = |list: &[UnitName]| {
            list.iter()
                .map(|u| u.as_str().to_owned())
                .collect::<Vec<_>>()
        };
        // x.service and y.service read x.pem through the kubeconfig, by a relative path.
        assert_eq!(names(&units.restart), ["x.service", "y.service"]);
        assert_eq!(names(&units.start), ["keepalived.service", "new.service"]);
        assert_eq!(names(&units.stop), ["gone.service"]);
        assert!(units.daemon_reload);
        // A drop-in restarts its unit alone.
        let mut with_drop_in = new.clone();
        with_drop_in.files.insert(
            "hosts/m/etc/systemd/system/y.service.d/override.conf".to_owned(),
            crate::verify::source::Entry {
                mode: 0o644,
                data: Vec::new(),
            },
        );
        let diff = diff_trees(&new, &with_drop_in);
        let (_, units) = diff.restarts().next().expect("a drop-in restarts");
        assert_eq!(names(&units.restart), ["y.service"]);
        assert!(diff_trees(&new, &new).is_empty());
    }
}
