//! Hosts: every host the bundle's files name is there with what its part needs, and etcd's member
//! count.

use std::collections::{BTreeSet, HashMap};

use crate::bundle::manifest::{Member, MANIFEST};
use crate::diag::{Code, Diagnostic};
use crate::plan::JoinState;
use crate::verify::model::{url_host, HaproxyServer, HostModel};

use super::{is_loopback, Audit};

/// What a host named by another file must have to play its part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Some file.
    Files,
    /// An etcd unit.
    Etcd,
    /// A kube-apiserver unit.
    Apiserver,
    /// An HAProxy config.
    Haproxy,
    /// A kube-apiserver unit or an HAProxy config: something a kubeconfig can dial.
    Api,
    /// A kubelet and a kube-proxy unit: a node.
    Node,
}

/// An address as one text however it is written (`fd00:0::1` is `fd00::1`); a name as is.
fn canonical(target: &str) -> String {
    target
        .parse::<std::net::IpAddr>()
        .map_or_else(|_| target.to_owned(), |ip| ip.to_string())
}

impl Audit<'_> {
    pub(super) fn etcd_members(&mut self) {
        let header = self.manifest_header();
        let mut found = Vec::new();
        for host in self.hosts {
            let Some(etcd) = host.unit("etcd") else {
                continue;
            };
            // A member that joined a running cluster lists the membership at its join,
            // which is history, not the cluster's size.
            if header.etcd_joins().contains_key(&host.name) {
                continue;
            }
            let Some(cluster) = etcd.flag("initial-cluster") else {
                continue;
            };
            let members = cluster.split(',').filter(|m| !m.is_empty()).count();
            if members % 2 == 0 {
                found.push(Diagnostic::file_error(
                    Code::BundleEvenEtcdMembers,
                    &etcd.file,
                    format!("--initial-cluster has {members} members: they tolerate {} failure(s), no more than {} would", (members.saturating_sub(1)) / 2, members - 1),
                    "run an odd number of etcd members",
                ));
            }
        }
        self.findings.extend(found);
    }

    /// A member's recorded join (a bundle that changes a running cluster) is what its etcd
    /// unit says, and names the member itself at its own peer URL: the record is why the
    /// unit may list members the bundle no longer has.
    pub(super) fn etcd_join_records(&mut self) {
        let header = self.manifest_header();
        let mut found = Vec::new();
        // Every member that bootstrapped lists the same first membership.
        let bootstraps: BTreeSet<&str> = header
            .etcd_joins()
            .values()
            .filter(|join| join.state == JoinState::New)
            .map(|join| join.initial_cluster.as_str())
            .collect();
        for (name, join) in header.etcd_joins() {
            let Some(etcd) = self.host(name).and_then(|h| h.unit("etcd")) else {
                found.push(Diagnostic::file_error(
                    Code::ManifestMismatch,
                    MANIFEST,
                    format!("manifest.json records how etcd member {name} joined, but the bundle has no etcd unit for it"),
                    "build the bundle again",
                ));
                continue;
            };
            let own = format!(
                "{name}={}",
                etcd.flag("initial-advertise-peer-urls").unwrap_or_default()
            );
            let others = join
                .initial_cluster
                .split(',')
                .filter(|m| *m != own)
                .count();
            let problem = if etcd.flag("initial-cluster") != Some(join.initial_cluster.as_str()) {
                Some("--initial-cluster differs from the membership manifest.json records at its join")
            } else if etcd.flag("initial-cluster-state") != Some(join.state.word()) {
                Some("--initial-cluster-state differs from how manifest.json records it joined")
            } else if !join.initial_cluster.split(',').any(|m| m == own) {
                Some("the membership at its join does not name the member itself at its peer URL")
            } else if join.state == JoinState::Existing && others == 0 {
                Some("it joins a running cluster whose membership names no member but itself")
            } else if join.state == JoinState::New && bootstraps.len() > 1 {
                Some("it bootstrapped a cluster other members that bootstrapped do not list: one of them would start a second etcd cluster")
            } else {
                None
            };
            found.extend(problem.map(|problem| {
                Diagnostic::file_error(
                    Code::ManifestMismatch,
                    &etcd.file,
                    problem,
                    "build the bundle again with `cpgen bundle --previous`; never edit a member's join by hand",
                )
            }));
        }
        self.findings.extend(found);
    }

    /// The host a name or address that a file dials belongs to: a master by what its units
    /// advertise, a manifest member by name or address, or a host of that name.
    fn resolve(&self, target: &str, members: &Members) -> Option<String> {
        if let Some(master) = self.master_at(target) {
            return Some(master.name.clone());
        }
        if let Some(member) = members.get(target) {
            return Some(member.clone());
        }
        self.host(target).map(|h| h.name.clone())
    }

    /// What host `name` lacks of `need`, in words; `None` when it has it.
    fn lacks(&self, name: &str, need: Need) -> Option<String> {
        let Some(host) = self.host(name) else {
            return Some(format!("the bundle has no hosts/{name}/"));
        };
        let (has, what) = match need {
            Need::Files => (true, ""),
            Need::Etcd => (host.unit("etcd").is_some(), "etcd unit"),
            Need::Apiserver => (host.unit("kube-apiserver").is_some(), "kube-apiserver unit"),
            Need::Haproxy => (host.haproxy_config.is_some(), "HAProxy config"),
            Need::Api => (
                host.unit("kube-apiserver").is_some() || host.haproxy_config.is_some(),
                "kube-apiserver unit and no HAProxy config",
            ),
            Need::Node => (
                host.unit("kubelet").is_some() && host.unit("kube-proxy").is_some(),
                "kubelet and kube-proxy units",
            ),
        };
        (!has).then(|| format!("hosts/{name}/ has no {what}"))
    }

    /// Every host the bundle's own files name must be in it with the files its part needs:
    /// a bundle with a master cut out (its tree deleted, the manifest redone) would
    /// otherwise verify clean while etcd, the apiservers and HAProxy still count on it.
    pub(super) fn named_hosts(&mut self) {
        let header = self.manifest_header();
        let members = Members::of(header.members());
        let mut gaps = Vec::new();
        for host in self.hosts {
            gaps.extend(self.etcd_peers_missing(host, &members));
            gaps.extend(self.etcd_servers_missing(host, &members));
            gaps.extend(self.haproxy_backends_missing(host, &members));
            gaps.extend(self.kubeconfig_servers_missing(host, &members));
        }
        gaps.extend(self.manifest_members_missing(header.members()));
        self.findings.extend(gaps.into_iter().map(Gap::finding));
    }

    /// The members of etcd's `--initial-cluster` that are no etcd host of the bundle.
    fn etcd_peers_missing(&self, host: &HostModel, members: &Members) -> Vec<Gap> {
        let Some(etcd) = host.unit("etcd") else {
            return Vec::new();
        };
        // The membership at a recorded join may name members that have left since; the
        // record itself is checked against the unit (CP810).
        if self.manifest_header().etcd_joins().contains_key(&host.name) {
            return Vec::new();
        }
        let cluster = etcd.flag("initial-cluster").unwrap_or_default();
        let mut gaps = Vec::new();
        for member in cluster.split(',').filter(|m| !m.is_empty()) {
            let (name, url) = member.split_once('=').unwrap_or((member, ""));
            let resolved = if self.host(name).is_some() {
                Some(name.to_owned())
            } else {
                url_host(url).and_then(|t| self.resolve(t, members))
            };
            let lack = match resolved {
                Some(resolved) => self.lacks(&resolved, Need::Etcd),
                None => Some(format!("the bundle has no hosts/{name}/")),
            };
            gaps.extend(lack.map(|lack| Gap {
                file: etcd.file.clone(),
                what: format!("--initial-cluster names etcd member {name} ({url})"),
                lack,
            }));
        }
        gaps
    }

    /// The apiserver's `--etcd-servers` that are no etcd host of the bundle.
    fn etcd_servers_missing(&self, host: &HostModel, members: &Members) -> Vec<Gap> {
        let Some(api) = host.unit("kube-apiserver") else {
            return Vec::new();
        };
        let servers = api.flag("etcd-servers").unwrap_or_default();
        let mut gaps = Vec::new();
        for url in servers.split(',').filter(|u| !u.is_empty()) {
            let Some(target) = url_host(url) else {
                continue;
            };
            // A loopback address is the host itself, unless it is a host's own address
            // (a cluster on 127.0.1.x).
            let lack = match self.resolve(target, members) {
                Some(resolved) => self.lacks(&resolved, Need::Etcd),
                None if is_loopback(target) => self.lacks(&host.name, Need::Etcd),
                None => Some(format!("{target} is no host of the bundle")),
            };
            gaps.extend(lack.map(|lack| Gap {
                file: api.file.clone(),
                what: format!("--etcd-servers names {url}"),
                lack,
            }));
        }
        gaps
    }

    /// HAProxy's backends that are no apiserver host of the bundle.
    fn haproxy_backends_missing(&self, host: &HostModel, members: &Members) -> Vec<Gap> {
        let Some(config) = &host.haproxy_config else {
            return Vec::new();
        };
        let mut gaps = Vec::new();
        for HaproxyServer {
            name,
            host: target,
            port,
        } in &host.haproxy_servers
        {
            let lack = match self.resolve(target, members) {
                Some(resolved) => self.lacks(&resolved, Need::Apiserver),
                None => Some(format!("{target} is no host of the bundle")),
            };
            gaps.extend(lack.map(|lack| Gap {
                file: config.clone(),
                what: format!("HAProxy's server {name} is {target}:{port}"),
                lack,
            }));
        }
        gaps
    }

    /// Kubeconfig servers that are a host of the bundle with nothing to answer them.
    fn kubeconfig_servers_missing(&self, host: &HostModel, members: &Members) -> Vec<Gap> {
        let mut gaps = Vec::new();
        for kubeconfig in &host.kubeconfigs {
            for cluster in &kubeconfig.clusters {
                let server = &cluster.entry.server;
                let Some(target) = url_host(server) else {
                    continue;
                };
                let lack = match self.resolve(target, members) {
                    Some(resolved) => self.lacks(&resolved, Need::Api),
                    // Loopback, and no host's address: the host itself.
                    None if is_loopback(target) => {
                        if host.name == "admin" {
                            continue;
                        }
                        self.lacks(&host.name, Need::Api)
                    }
                    // A name or address that is no host is a balancer outside the bundle
                    // (a VIP, a cloud load balancer): nothing to look for.
                    None => continue,
                };
                gaps.extend(lack.map(|lack| Gap {
                    file: kubeconfig.path.clone(),
                    what: format!("it dials {server}"),
                    lack,
                }));
            }
        }
        gaps
    }

    /// Members `manifest.json` lists without the files their roles need.
    fn manifest_members_missing(&self, members: &[Member]) -> Vec<Gap> {
        let mut gaps = Vec::new();
        for member in members {
            let has = |role: &str| member.roles.iter().any(|r| r == role);
            let mut needs = Vec::new();
            if has("master") {
                needs.push(Need::Apiserver);
            }
            if has("etcd") {
                needs.push(Need::Etcd);
            }
            if has("load-balancer") {
                needs.push(Need::Haproxy);
            }
            if has("worker") || has("node") {
                needs.push(Need::Node);
            }
            if needs.is_empty() {
                needs.push(Need::Files);
            }
            for need in needs {
                let Some(lack) = self.lacks(&member.name, need) else {
                    continue;
                };
                gaps.push(Gap {
                    file: MANIFEST.to_owned(),
                    what: format!(
                        "member {} ({}, {}) is listed",
                        member.name,
                        member.address,
                        member.roles.join(", ")
                    ),
                    lack,
                });
                // A host that is not there lacks everything: once is enough.
                if self.host(&member.name).is_none() {
                    break;
                }
            }
        }
        gaps
    }
}

/// A file that counts on a host for something the host lacks.
struct Gap {
    /// The file that names the host.
    file: String,
    /// What it says of the host.
    what: String,
    /// What the host lacks, in words.
    lack: String,
}

impl Gap {
    fn finding(self) -> Diagnostic {
        Diagnostic::file_error(
            Code::MissingHost,
            &self.file,
            format!("{}, but {}", self.what, self.lack),
            "the bundle is incomplete: build it again, or restore the host's files",
        )
    }
}

/// The manifest's members by name and by address, so that each lookup is one step.
struct Members(HashMap<String, String>);

impl Members {
    fn of(members: &[Member]) -> Members {
        Members(
            members
                .iter()
                .flat_map(|m| {
                    [
                        (m.name.clone(), m.name.clone()),
                        (canonical(&m.address), m.name.clone()),
                    ]
                })
                .collect(),
        )
    }

    /// The member `target` (a name or an address, however written) is.
    fn get(&self, target: &str) -> Option<&String> {
        self.0.get(&canonical(target))
    }
}
