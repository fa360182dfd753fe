//! Hosts: every host the bundle's files name is there with what its part needs, and etcd's member
//! count.

use std::collections::HashMap;

use crate::diag::{Code, Diagnostic};
use crate::verify::model::{url_host, HaproxyServer};

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
}

/// An address as one text however it is written (`fd00:0::1` is `fd00::1`); a name as is.
fn canonical(target: &str) -> String {
    target
        .parse::<std::net::IpAddr>()
        .map_or_else(|_| target.to_owned(), |ip| ip.to_string())
}

impl Audit<'_> {
    pub(super) fn etcd_members(&mut self) {
        let mut found = Vec::new();
        for host in self.hosts {
            let Some(etcd) = host.unit("etcd") else {
                continue;
            };
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

    /// The host a name or address that a file dials belongs to: a master by what its units
    /// advertise, a manifest member by name or address, or a host of that name.
    fn resolve(&self, target: &str, members: &HashMap<String, String>) -> Option<String> {
        if let Some(master) = self.master_at(target) {
            return Some(master.name.clone());
        }
        if let Some(member) = members.get(&canonical(target)) {
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
            Need::Etcd => (host.unit("etcd").is_some(), "an etcd unit"),
            Need::Apiserver => (
                host.unit("kube-apiserver").is_some(),
                "a kube-apiserver unit",
            ),
            Need::Haproxy => (host.haproxy_config.is_some(), "an HAProxy config"),
            Need::Api => (
                host.unit("kube-apiserver").is_some() || host.haproxy_config.is_some(),
                "a kube-apiserver unit or an HAProxy config",
            ),
        };
        (!has).then(|| format!("hosts/{name}/ has no {what}"))
    }

    /// Every host the bundle's own files name must be in it with the files its part needs:
    /// a bundle with a master cut out (its tree deleted, the manifest redone) would
    /// otherwise verify clean while etcd, the apiservers and HAProxy still count on it.
    pub(super) fn named_hosts(&mut self) {
        let members = self.manifest_header().members;
        // Each member by its name and by its address, so that each lookup is one step.
        let by_member: HashMap<String, String> = members
            .iter()
            .flat_map(|m| {
                [
                    (m.name.clone(), m.name.clone()),
                    (canonical(&m.address), m.name.clone()),
                ]
            })
            .collect();
        let mut found = Vec::new();
        let mut missing = |file: &str, what: String, lack: String| {
            found.push(Diagnostic::file_error(
                Code::MissingHost,
                file,
                format!("{what}, but {lack}"),
                "the bundle is incomplete: build it again, or restore the host's files",
            ));
        };
        for host in self.hosts {
            if let Some(etcd) = host.unit("etcd") {
                let cluster = etcd.flag("initial-cluster").unwrap_or_default();
                for member in cluster.split(',').filter(|m| !m.is_empty()) {
                    let (name, url) = member.split_once('=').unwrap_or((member, ""));
                    let resolved = if self.host(name).is_some() {
                        Some(name.to_owned())
                    } else {
                        url_host(url).and_then(|t| self.resolve(t, &by_member))
                    };
                    let lack = match resolved {
                        Some(resolved) => self.lacks(&resolved, Need::Etcd),
                        None => Some(format!("the bundle has no hosts/{name}/")),
                    };
                    if let Some(lack) = lack {
                        missing(
                            &etcd.file,
                            format!("--initial-cluster names etcd member {name} ({url})"),
                            lack,
                        );
                    }
                }
            }
            if let Some(api) = host.unit("kube-apiserver") {
                let servers = api.flag("etcd-servers").unwrap_or_default();
                for url in servers.split(',').filter(|u| !u.is_empty()) {
                    let Some(target) = url_host(url) else {
                        continue;
                    };
                    if is_loopback(target) {
                        if let Some(lack) = self.lacks(&host.name, Need::Etcd) {
                            missing(&api.file, format!("--etcd-servers names {url}"), lack);
                        }
                        continue;
                    }
                    let lack = match self.resolve(target, &by_member) {
                        Some(resolved) => self.lacks(&resolved, Need::Etcd),
                        None => Some(format!("{target} is no host of the bundle")),
                    };
                    if let Some(lack) = lack {
                        missing(&api.file, format!("--etcd-servers names {url}"), lack);
                    }
                }
            }
            if let Some(config) = &host.haproxy_config {
                for HaproxyServer {
                    name,
                    host: target,
                    port,
                } in &host.haproxy_servers
                {
                    let lack = match self.resolve(target, &by_member) {
                        Some(resolved) => self.lacks(&resolved, Need::Apiserver),
                        None => Some(format!("{target} is no host of the bundle")),
                    };
                    if let Some(lack) = lack {
                        missing(
                            config,
                            format!("HAProxy's server {name} is {target}:{port}"),
                            lack,
                        );
                    }
                }
            }
            for kubeconfig in &host.kubeconfigs {
                let path = &kubeconfig.path;
                for cluster in &kubeconfig.clusters {
                    let server = &cluster.entry.server;
                    let Some(target) = url_host(server) else {
                        continue;
                    };
                    let lack = if is_loopback(target) {
                        if host.name == "admin" {
                            continue;
                        }
                        self.lacks(&host.name, Need::Api)
                    } else {
                        // A name or address that is no host is a balancer outside the
                        // bundle (a VIP, a cloud load balancer): nothing to look for.
                        let Some(resolved) = self.resolve(target, &by_member) else {
                            continue;
                        };
                        self.lacks(&resolved, Need::Api)
                    };
                    if let Some(lack) = lack {
                        missing(path, format!("it dials {server}"), lack);
                    }
                }
            }
        }
        for member in &members {
            let roles = &member.roles;
            let mut needs = Vec::new();
            if roles.iter().any(|r| r == "master") {
                needs.push(Need::Apiserver);
            }
            if roles.iter().any(|r| r == "etcd") {
                needs.push(Need::Etcd);
            }
            if roles.iter().any(|r| r == "load-balancer") {
                needs.push(Need::Haproxy);
            }
            if needs.is_empty() {
                needs.push(Need::Files);
            }
            for need in needs {
                if let Some(lack) = self.lacks(&member.name, need) {
                    missing(
                        "manifest.json",
                        format!(
                            "member {} ({}, {}) is listed",
                            member.name,
                            member.address,
                            roles.join(", ")
                        ),
                        lack,
                    );
                    if self.host(&member.name).is_none() {
                        break;
                    }
                }
            }
        }
        self.findings.extend(found);
    }
}
