//! The audit rules: each reads the parsed hosts and key material and adds findings. This file
//! owns the driver (`run`), the `Audit` every rule reads, the lookups the rules share and the
//! `manifest.json` header; the rules themselves live in one submodule per theme.

mod files;
mod hosts;
mod identities;
mod kubeconfigs;
mod nodes;
mod operators;
mod pki;
mod plan;
mod reproduce;
mod runbook;
mod units;

pub(super) use reproduce::rebuild;

use std::collections::{BTreeMap, HashMap};

use time::OffsetDateTime;

use super::material::{self, CertInfo, Material};
use super::model::{self, url_host, HostModel};
use super::source::Tree;
use crate::bundle::manifest::{Header, MANIFEST};
use crate::diag::{Code, Diagnostic};
use crate::plan::Plan;

/// Runs every rule; returns how many certificates were checked.
pub(super) fn run(
    tree: &Tree,
    plan: Option<&Plan>,
    at: OffsetDateTime,
    findings: &mut Vec<Diagnostic>,
) -> usize {
    let (hosts, unreadable) = model::hosts(tree);
    findings.extend(unreadable);
    let material = material::collect(tree, &hosts, findings);
    let masters: Vec<&HostModel> = hosts
        .iter()
        .filter(|h| h.unit("kube-apiserver").is_some() || h.unit("etcd").is_some())
        .collect();
    // Every name and address a master answers on, so a bundle with thousands of hosts is
    // audited in linear time.
    let mut master_names = BTreeMap::new();
    for master in &masters {
        master_names.insert(master.name.clone(), *master);
        if let Some(address) = master
            .unit("kube-apiserver")
            .and_then(|u| u.flag("advertise-address"))
        {
            master_names.insert(address.to_owned(), *master);
        }
        let urls = master
            .unit("etcd")
            .and_then(|u| u.flag("advertise-client-urls"))
            .unwrap_or_default();
        for host in urls.split(',').filter_map(url_host) {
            master_names.insert(host.to_owned(), *master);
        }
    }
    let by_name = hosts
        .iter()
        .filter(|h| h.name != "admin")
        .map(|h| (h.name.as_str(), h))
        .collect();
    let audit = Audit {
        tree,
        hosts: &hosts,
        by_name,
        masters,
        master_names,
        material: &material,
        findings,
    };
    audit.run(plan, at);
    super::leaks::run(tree, &material, findings);
    material.certs.len()
}

struct Audit<'a> {
    tree: &'a Tree,
    hosts: &'a [HostModel],
    masters: Vec<&'a HostModel>,
    master_names: BTreeMap<String, &'a HostModel>,
    /// Every host but `admin/` by name.
    by_name: HashMap<&'a str, &'a HostModel>,
    material: &'a Material,
    findings: &'a mut Vec<Diagnostic>,
}

impl Audit<'_> {
    fn run(mut self, plan: Option<&Plan>, at: OffsetDateTime) {
        self.missing_files();
        self.kubeconfig_references();
        self.key_pairs();
        self.chains_and_usages();
        self.san_coverage(plan);
        self.validity(at);
        self.manifest();
        self.key_modes();
        self.etcd_members();
        self.etcd_join_records();
        self.runbook();
        self.shared_ca();
        self.named_hosts();
        self.unsafe_settings();
        self.unit_commands();
        self.node_settings();
        self.certificate_identities();
        self.unexpected_files();
        self.operator_settings();
        self.unused_signing_keys();
        if let Some(plan) = plan {
            self.against_plan(plan);
        }
    }

    fn push(&mut self, finding: Diagnostic) {
        self.findings.push(finding);
    }

    fn masters(&self) -> impl Iterator<Item = &HostModel> {
        self.masters.iter().copied()
    }
    fn cert(&self, id: &str) -> Option<&CertInfo> {
        self.material.certs.get(id)
    }

    /// Every certificate a trust file carries (two during a rotation).
    fn trusted(&self, id: &str) -> Vec<&CertInfo> {
        match self.material.stacks.get(id) {
            Some(stack) => stack.iter().collect(),
            None => self.cert(id).into_iter().collect(),
        }
    }

    /// The master whose own name or address `target` is.
    fn master_at(&self, target: &str) -> Option<&HostModel> {
        self.master_names.get(target).copied()
    }
}

/// A setting that opens the control plane (CP832), in `file`.
fn unsafe_setting(file: &str, message: String, help: &str) -> Diagnostic {
    Diagnostic::file_error(Code::UnsafeSetting, file, message, help)
}

fn is_loopback(target: &str) -> bool {
    target == "localhost"
        || target
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// True when a comma-separated list of URLs (or `name=URL` members) has one that is not
/// `https://`.
fn has_plain_url(value: &str) -> bool {
    value
        .split(',')
        .map(|item| item.split_once('=').map_or(item, |(_, url)| url).trim())
        .filter(|item| item.contains("://"))
        .any(|url| !url.to_ascii_lowercase().starts_with("https://"))
}

impl<'a> Audit<'a> {
    /// What `manifest.json` says of the cluster; empty for a hand-made bundle, which has
    /// none.
    fn manifest_header(&self) -> Header {
        self.tree
            .files
            .get(MANIFEST)
            .map(|entry| Header::read(&entry.data))
            .unwrap_or_default()
    }

    fn host(&self, name: &str) -> Option<&'a HostModel> {
        self.by_name.get(name).copied()
    }
}
