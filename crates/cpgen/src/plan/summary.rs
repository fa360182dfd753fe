//! What `cpgen check` prints about a plan: the hosts with their listeners, etcd's quorum
//! and each server certificate's SANs, as a [`Summary`] that is both text and JSON.

use serde::Serialize;

use super::{
    haproxy_listener, master_listeners, node_listeners, Component, Host, Listener, PkiLayout, Plan,
    ServerCertificate,
};
use crate::types::{HostAddress, HostName, KeyAlgorithm, San};

/// What `cpgen check` prints: hosts and listeners, etcd quorum, certificate SANs.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Cluster name.
    pub(crate) cluster: String,
    /// Kubernetes version.
    pub(crate) kubernetes_version: String,
    /// `https://endpoint:port`.
    pub(crate) api_url: String,
    /// PKI layout.
    pub(crate) pki_layout: PkiLayout,
    /// Key algorithm.
    pub(crate) key_algorithm: KeyAlgorithm,
    /// etcd quorum facts.
    pub(crate) etcd: EtcdSummary,
    /// Every host with what it runs.
    pub(crate) hosts: Vec<HostSummary>,
    /// Every server certificate's SANs.
    pub(crate) certificates: Vec<ServerCertificate>,
}

/// etcd membership facts.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct EtcdSummary {
    /// Members.
    pub(crate) members: usize,
    /// Members needed for quorum.
    pub(crate) quorum: usize,
    /// Members that may fail.
    pub(crate) failure_tolerance: usize,
}

/// One host in the summary.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct HostSummary {
    /// Name.
    pub(crate) name: HostName,
    /// Address.
    pub(crate) address: HostAddress,
    /// "master", "load-balancer", "worker".
    pub(crate) role: &'static str,
    /// What it listens on.
    pub(crate) listeners: Vec<ListenerSummary>,
}

/// One listener in the summary.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ListenerSummary {
    /// Who listens.
    pub(crate) component: Component,
    /// `address:port`.
    pub(crate) socket: String,
}

impl Plan {
    /// The summary `cpgen check` prints.
    pub fn summary(&self) -> Summary {
        let listeners = |ls: Vec<Listener>| {
            ls.into_iter()
                .map(|l| ListenerSummary {
                    component: l.component,
                    socket: l.socket(),
                })
                .collect()
        };
        let summarize = |host: &Host, role, ls| HostSummary {
            name: host.name.clone(),
            address: host.address,
            role,
            listeners: listeners(ls),
        };
        let mut hosts: Vec<HostSummary> = self
            .masters
            .iter()
            .map(|m| {
                summarize(
                    m,
                    "master",
                    master_listeners(self.master_ports(), m.address.ip()),
                )
            })
            .collect();
        hosts.extend(self.load_balancer.hosts.iter().map(|h| {
            summarize(
                h,
                "load-balancer",
                vec![haproxy_listener(
                    h.address.ip(),
                    self.load_balancer.bind_port,
                )],
            )
        }));
        hosts.extend(
            self.workers
                .iter()
                .map(|w| summarize(w, "worker", node_listeners(w.address.ip()))),
        );
        Summary {
            cluster: self.cluster.name.to_string(),
            kubernetes_version: self.cluster.kubernetes_version.to_string(),
            api_url: self.api_url(),
            pki_layout: self.pki.layout,
            key_algorithm: self.pki.key_algorithm,
            etcd: EtcdSummary {
                members: self.masters.len(),
                quorum: self.masters.len() / 2 + 1,
                failure_tolerance: self.etcd_failure_tolerance(),
            },
            hosts,
            certificates: self.server_certificates(),
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "cluster {} (Kubernetes {}), API at {}",
            self.cluster, self.kubernetes_version, self.api_url
        )?;
        writeln!(
            f,
            "etcd: {} members, quorum {}, tolerates {} failed member{}",
            self.etcd.members,
            self.etcd.quorum,
            self.etcd.failure_tolerance,
            if self.etcd.failure_tolerance == 1 {
                ""
            } else {
                "s"
            }
        )?;
        writeln!(f, "pki: {}, {} keys", self.pki_layout, self.key_algorithm)?;
        writeln!(f, "\nhosts:")?;
        for host in &self.hosts {
            writeln!(f, "  {} {} ({})", host.name, host.address, host.role)?;
            for l in &host.listeners {
                writeln!(f, "    {:<24} {}", l.component.label(), l.socket)?;
            }
        }
        writeln!(f, "\nserver certificates:")?;
        for c in &self.certificates {
            let sans: Vec<String> = c.sans.iter().map(San::to_string).collect();
            writeln!(
                f,
                "  {} on {}: {}",
                c.role.identity(),
                c.host,
                sans.join(", ")
            )?;
        }
        Ok(())
    }
}
