//! Names on the wire: the SAN set of every server certificate (one apiserver and one
//! etcd-server certificate per master), every name and address a client dials and which
//! servers it reaches, and the check that the first covers the second.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use super::{wildcard_and_loopback, ComponentsVia, Host, LoadBalancerMode, Plan};
use crate::types::{HostName, San};

/// Which kind of server certificate a client checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerRole {
    /// kube-apiserver's serving certificate.
    Apiserver,
    /// etcd's serving certificate, for its clients.
    EtcdServer,
    /// etcd's peer certificate: the member to the other members, both ways.
    EtcdPeer,
}

impl ServerRole {
    /// The identity's name in the PKI table.
    pub fn identity(self) -> &'static str {
        match self {
            ServerRole::Apiserver => "apiserver",
            ServerRole::EtcdServer => "etcd-server",
            ServerRole::EtcdPeer => "etcd-peer",
        }
    }
}

/// The serving certificate of one server on one host, as far as names go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ServerCertificate {
    /// Which kind of server.
    pub(crate) role: ServerRole,
    /// On which master.
    pub(crate) host: HostName,
    /// Every subjectAltName, DNS names first, without duplicates.
    pub(crate) sans: Vec<San>,
}

/// Where a dialled name comes from in the configuration (so a finding can point there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[allow(missing_docs)]
pub enum Origin {
    ApiEndpoint,
    LoadBalancerHost(usize),
    Vip,
    Master(usize),
    ServiceCidr,
    DnsDomain,
    Loopback,
}

/// One way a client reaches a server: the name or address it dials, and which servers'
/// certificates must therefore carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dial {
    /// Who dials, in words.
    pub client: &'static str,
    /// What it dials.
    pub target: San,
    /// The kind of server reached.
    pub role: ServerRole,
    /// The one master reached, or `None` when the connection may land on any master.
    pub master: Option<usize>,
    /// Where the target comes from.
    pub origin: Origin,
}

impl Plan {
    /// The in-cluster names of the API: `kubernetes`, …, `kubernetes.default.svc.<domain>`.
    pub(crate) fn kubernetes_service_names(&self) -> Vec<San> {
        let full = format!("kubernetes.default.svc.{}", self.cluster.dns_domain);
        [
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            &full,
        ]
        .into_iter()
        .filter_map(|name| name.parse().ok())
        .map(San::Dns)
        .collect()
    }

    /// Every name and address a client dials, and which server certificates it reaches.
    pub(crate) fn dials(&self) -> Vec<Dial> {
        let mut dials = Vec::new();
        let any_master = |client, target, origin| Dial {
            client,
            target,
            role: ServerRole::Apiserver,
            master: None,
            origin,
        };
        dials.push(any_master(
            "kubectl, kubelets and components",
            self.api.endpoint.clone(),
            Origin::ApiEndpoint,
        ));
        for (i, host) in self.load_balancer.hosts.iter().enumerate() {
            for target in host_sans(host) {
                dials.push(any_master(
                    "clients of the load balancer",
                    target,
                    Origin::LoadBalancerHost(i),
                ));
            }
        }
        if let Some(vip) = self.load_balancer.vip {
            dials.push(any_master(
                "clients of the virtual IP",
                San::Ip(vip.ip()),
                Origin::Vip,
            ));
        }
        for (i, master) in self.masters.iter().enumerate() {
            if self.load_balancer.mode == LoadBalancerMode::OnMasters {
                for target in host_sans(master) {
                    dials.push(any_master(
                        "clients of the HAProxy on a master",
                        target,
                        Origin::Master(i),
                    ));
                }
            }
            dials.extend(self.master_dials(i, master));
        }
        dials.push(any_master(
            "pods",
            San::Ip(self.kubernetes_service_ip()),
            Origin::ServiceCidr,
        ));
        for name in self.kubernetes_service_names() {
            dials.push(any_master("pods", name, Origin::DnsDomain));
        }
        dials
    }

    /// What reaches one master directly: its API server and its etcd member.
    fn master_dials(&self, i: usize, master: &Host) -> Vec<Dial> {
        let (_, loopback) = wildcard_and_loopback(master.address.ip());
        let direct = |client, target, role, origin| Dial {
            client,
            target,
            role,
            master: Some(i),
            origin,
        };
        let mut dials = vec![direct(
            "the load balancer's health check",
            San::Ip(master.address.ip()),
            ServerRole::Apiserver,
            Origin::Master(i),
        )];
        if self.api.components_via == ComponentsVia::Local {
            dials.push(direct(
                "controller-manager and scheduler",
                San::Ip(loopback),
                ServerRole::Apiserver,
                Origin::Loopback,
            ));
        }
        for target in host_sans(master) {
            dials.push(direct(
                "kube-apiserver and etcdctl",
                target.clone(),
                ServerRole::EtcdServer,
                Origin::Master(i),
            ));
            dials.push(direct(
                "etcd peers",
                target,
                ServerRole::EtcdPeer,
                Origin::Master(i),
            ));
        }
        dials.push(direct(
            "etcdctl on the master",
            San::Ip(loopback),
            ServerRole::EtcdServer,
            Origin::Loopback,
        ));
        dials
    }

    /// The SAN set of every server certificate: one apiserver and one etcd-server
    /// certificate per master.
    pub(crate) fn server_certificates(&self) -> Vec<ServerCertificate> {
        let mut certificates = Vec::new();
        for master in &self.masters {
            certificates.push(ServerCertificate {
                role: ServerRole::Apiserver,
                host: master.name.clone(),
                sans: self.apiserver_sans(master),
            });
        }
        for master in &self.masters {
            certificates.push(ServerCertificate {
                role: ServerRole::EtcdServer,
                host: master.name.clone(),
                sans: self.etcd_server_sans(master),
            });
        }
        // Peers dial each other's address. A member also checks the *source* address of a
        // peer's connection against that peer's certificate, and a connection between two
        // addresses of one machine (or leaving by another route) comes from loopback: the
        // loopback names stay, as in kubeadm's peer certificates. Client-side names
        // (`etcd.extra_sans`) do not.
        for master in &self.masters {
            let mut sans = host_sans(master);
            sans.extend(loopback_sans());
            certificates.push(ServerCertificate {
                role: ServerRole::EtcdPeer,
                host: master.name.clone(),
                sans: order_sans(sans),
            });
        }
        certificates
    }

    fn apiserver_sans(&self, master: &Host) -> Vec<San> {
        let mut sans = self.kubernetes_service_names();
        sans.push(San::Ip(self.kubernetes_service_ip()));
        sans.push(self.api.endpoint.clone());
        // Behind a TCP load balancer any master may answer a connection to any
        // load-balancer address, so every apiserver certificate carries all of them.
        let balanced: Vec<&Host> = match self.load_balancer.mode {
            LoadBalancerMode::External => self.load_balancer.hosts.iter().collect(),
            LoadBalancerMode::OnMasters => self.masters.iter().collect(),
        };
        for host in std::iter::once(master).chain(balanced) {
            sans.extend(host_sans(host));
        }
        sans.extend(self.load_balancer.vip.map(|vip| San::Ip(vip.ip())));
        sans.extend(loopback_sans());
        sans.extend(self.api.extra_sans.iter().cloned());
        order_sans(sans)
    }
}

impl Plan {
    /// The member's name and address, loopback, and the names clients dial that the plan
    /// cannot know (`etcd.extra_sans`).
    fn etcd_server_sans(&self, master: &Host) -> Vec<San> {
        let mut sans = host_sans(master);
        sans.extend(loopback_sans());
        sans.extend(self.etcd.extra_sans.iter().cloned());
        order_sans(sans)
    }
}

/// The host's name and address.
fn host_sans(host: &Host) -> Vec<San> {
    vec![
        San::Dns(host.name.as_dns_name().clone()),
        San::Ip(host.address.ip()),
    ]
}

fn loopback_sans() -> Vec<San> {
    let localhost = "localhost".parse().map(San::Dns).ok();
    localhost
        .into_iter()
        .chain([
            San::Ip(Ipv4Addr::LOCALHOST.into()),
            San::Ip(Ipv6Addr::LOCALHOST.into()),
        ])
        .collect()
}

/// DNS names first, then addresses, each in first-seen order, duplicates dropped.
fn order_sans(sans: Vec<San>) -> Vec<San> {
    let (mut dns, ips): (Vec<San>, Vec<San>) =
        sans.into_iter().partition(|s| matches!(s, San::Dns(_)));
    dns.extend(ips);
    let mut seen = std::collections::HashSet::new();
    dns.retain(|san| seen.insert(san.clone()));
    dns
}

/// Every dial whose target is missing from a server certificate it may reach, with the
/// master whose certificate lacks it; empty when the SAN sets cover every client.
pub(crate) fn uncovered_dials(
    plan: &Plan,
    certificates: &[ServerCertificate],
) -> Vec<(Dial, HostName)> {
    // Indexed, so that a cluster with thousands of masters is checked in linear time.
    let by_server: std::collections::HashMap<
        (ServerRole, &HostName),
        std::collections::HashSet<&San>,
    > = certificates
        .iter()
        .map(|c| ((c.role, &c.host), c.sans.iter().collect()))
        .collect();
    let mut missing = Vec::new();
    for dial in plan.dials() {
        for (i, master) in plan.masters.iter().enumerate() {
            if dial.master.is_some_and(|m| m != i) {
                continue;
            }
            let covered = by_server
                .get(&(dial.role, &master.name))
                .is_some_and(|sans| sans.contains(&dial.target));
            if !covered {
                missing.push((dial.clone(), master.name.clone()));
            }
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::{plan, THREE_ON_MASTERS};

    #[test]
    fn computed_sans_cover_every_dial() {
        let plan = plan(THREE_ON_MASTERS);
        assert!(uncovered_dials(&plan, &plan.server_certificates()).is_empty());
    }

    #[test]
    fn a_missing_san_is_found_on_the_certificate_that_lacks_it() {
        let plan = plan(THREE_ON_MASTERS);
        let mut certificates = plan.server_certificates();
        let vip = San::Ip("127.0.1.100".parse().unwrap());
        certificates[1].sans.retain(|s| *s != vip);
        let missing = uncovered_dials(&plan, &certificates);
        // The endpoint defaults to the VIP, so two ways of dialling it miss.
        let origins: Vec<Origin> = missing.iter().map(|(dial, _)| dial.origin).collect();
        assert_eq!(origins, [Origin::ApiEndpoint, Origin::Vip], "{missing:?}");
        assert!(missing
            .iter()
            .all(|(dial, host)| dial.target == vip && host.as_str() == "m1"));
    }

    #[test]
    fn etcd_certificates_carry_their_member_only() {
        let plan = plan(THREE_ON_MASTERS);
        let etcd: Vec<_> = plan
            .server_certificates()
            .into_iter()
            .filter(|c| c.role == ServerRole::EtcdServer)
            .collect();
        assert_eq!(etcd.len(), 3);
        let names: Vec<String> = etcd[0].sans.iter().map(San::to_string).collect();
        assert_eq!(names, ["m0", "localhost", "127.0.1.80", "127.0.0.1", "::1"]);
    }

    #[test]
    fn peer_certificates_name_what_peers_dial_and_extra_sans_go_to_clients_only() {
        let text = format!(
            "{THREE_ON_MASTERS}\n[etcd]\nextra_sans = [\"etcd.example.internal\", \"192.0.2.10\"]\n"
        );
        let plan = plan(&text);
        let sans_of = |role: ServerRole| -> Vec<String> {
            plan.server_certificates()
                .into_iter()
                .find(|c| c.role == role && c.host.as_str() == "m1")
                .map(|c| c.sans.iter().map(San::to_string).collect())
                .unwrap_or_default()
        };
        assert_eq!(
            sans_of(ServerRole::EtcdPeer),
            ["m1", "localhost", "127.0.1.81", "127.0.0.1", "::1"]
        );
        assert_eq!(
            sans_of(ServerRole::EtcdServer),
            [
                "m1",
                "localhost",
                "etcd.example.internal",
                "127.0.1.81",
                "127.0.0.1",
                "::1",
                "192.0.2.10"
            ]
        );
        // Every dial of a peer lands on a name its certificate has.
        assert!(uncovered_dials(&plan, &plan.server_certificates()).is_empty());
        assert!(plan
            .dials()
            .iter()
            .any(|d| d.role == ServerRole::EtcdPeer && d.client == "etcd peers"));
    }
}
