//! The validated, resolved cluster: every default filled in, every value typed. This file
//! owns the model ([`Plan`], [`Host`], the resolved sections, the [`Choice`] settings) and
//! the plan's plain accessors. What follows from the plan without any key material lives
//! beside it: the listeners on each host (`listeners`), the SAN set of each server
//! certificate and every name and address a client dials (`sans`), and what `cpgen check`
//! prints (`summary`). Everything is re-exported here, so `crate::plan::X` names it.

mod listeners;
mod sans;
mod summary;

use std::collections::BTreeMap;
use std::net::IpAddr;

use camino::Utf8PathBuf;
use serde::Serialize;

use crate::types::{
    url_host, Cidr, DnsName, HostAddress, HostName, KeyAlgorithm, KubernetesVersion, Port,
    PortRange, RuntimeEndpoint, San, ValidityDays,
};

pub(crate) use listeners::{
    haproxy_listener, master_listeners, node_listeners, wildcard_and_loopback, Bind, Component,
    Listener, MasterPorts, KUBELET_HEALTHZ_PORT, KUBELET_PORT, KUBE_PROXY_HEALTHZ_PORT,
    KUBE_PROXY_METRICS_PORT,
};
pub(crate) use sans::{uncovered_dials, ServerCertificate};
// Only the integration tests' window (`test_support`) names a plan's dials from outside.
#[cfg(feature = "test-support")]
pub use sans::Dial;
pub use sans::{Origin, ServerRole};
pub use summary::Summary;

/// A setting with a fixed set of spellings in `cluster.toml`.
pub(crate) trait Choice: Copy + PartialEq + 'static {
    /// Every value with its spelling.
    const ALL: &'static [(&'static str, Self)];

    /// The spelling of this value.
    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, v)| *v == self)
            .map_or("?", |(name, _)| name)
    }
}

macro_rules! choice {
    ($(#[$doc:meta])* $vis:vis $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[non_exhaustive]
        $vis enum $name { $($(#[$vdoc])* $variant,)* }

        impl Choice for $name {
            const ALL: &'static [(&'static str, Self)] = &[$(($text, $name::$variant),)*];
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

choice! {
    /// Where HAProxy runs.
    pub(crate) LoadBalancerMode {
        /// On machines of its own (`[[load_balancer.hosts]]`), as in the guide.
        External = "external",
        /// On every master, next to kube-apiserver.
        OnMasters = "on-masters",
    }
}

choice! {
    /// How HAProxy decides that an API server is alive.
    pub(crate) HealthCheck {
        /// A TCP connect, as in the guide.
        Tcp = "tcp",
        /// `GET /readyz` over TLS.
        HttpsReadyz = "https-readyz",
    }
}

choice! {
    /// Where controller-manager and scheduler kubeconfigs point.
    pub ComponentsVia {
        /// Through the load balancer, as in the guide.
        LoadBalancer = "load-balancer",
        /// To the API server on the same master.
        Local = "local",
    }
}

choice! {
    /// How many certificate authorities the cluster has.
    pub PkiLayout {
        /// Kubernetes, etcd and front-proxy each have their own CA.
        SeparateCas = "separate-cas",
        /// One CA signs everything, as in the guide.
        SharedCa = "shared-ca",
    }
}

choice! {
    /// How kube-apiserver encrypts Secrets at rest (the provider new data is written with).
    pub(crate) EncryptionProvider {
        /// XSalsa20 and Poly1305: authenticated, the local-key provider upstream recommends.
        Secretbox = "secretbox",
        /// AES-GCM: authenticated, but its key must change every 200,000 writes.
        Aesgcm = "aesgcm",
        /// AES-CBC: what cpgen wrote first; upstream discourages it (padding oracles).
        Aescbc = "aescbc",
    }
}

/// `[cluster]`, resolved.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ClusterSettings {
    /// Cluster name (kubeconfig cluster, `--cluster-name`).
    pub(crate) name: DnsName,
    /// Target Kubernetes release.
    pub(crate) kubernetes_version: KubernetesVersion,
    /// Cluster DNS domain.
    pub(crate) dns_domain: DnsName,
}

/// `[network]`, resolved.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Network {
    /// Service cluster IP range.
    pub(crate) service_cidr: Cidr,
    /// Pod network.
    pub(crate) pod_cidr: Cidr,
    /// NodePort range.
    pub(crate) node_port_range: PortRange,
    /// Where the machines live (may be empty: unchecked).
    pub(crate) host_cidrs: Vec<Cidr>,
}

/// `[api]`, resolved.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Api {
    /// What clients dial.
    pub(crate) endpoint: San,
    /// The port clients dial on the endpoint.
    pub(crate) port: Port,
    /// kube-apiserver `--secure-port`.
    pub(crate) bind_port: Port,
    /// Additional SANs for every API server certificate.
    pub(crate) extra_sans: Vec<San>,
    /// Where controller-manager and scheduler connect.
    pub(crate) components_via: ComponentsVia,
    /// `--enable-admission-plugins`.
    pub(crate) admission_plugins: Vec<String>,
    /// `--authorization-mode`.
    pub(crate) authorization_modes: Vec<String>,
}

/// A machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Host {
    /// Host name (also the etcd member name for masters).
    pub(crate) name: HostName,
    /// Its address.
    pub(crate) address: HostAddress,
}

impl Host {
    /// Its name (also the etcd member name for masters).
    pub fn name(&self) -> &HostName {
        &self.name
    }

    /// Its address.
    pub fn address(&self) -> &HostAddress {
        &self.address
    }
}

/// `[load_balancer]`, resolved.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LoadBalancer {
    /// Where HAProxy runs.
    pub(crate) mode: LoadBalancerMode,
    /// HAProxy's bind port.
    pub(crate) bind_port: Port,
    /// HAProxy's health check.
    pub(crate) health_check: HealthCheck,
    /// keepalived virtual IP (on-masters mode only).
    pub(crate) vip: Option<HostAddress>,
    /// The network interface keepalived puts the virtual IP on.
    pub(crate) vip_interface: String,
    /// Dedicated HAProxy machines (external mode; may be empty when an outside load
    /// balancer or the first master serves the endpoint).
    pub(crate) hosts: Vec<Host>,
}

/// `[etcd]`, resolved.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Etcd {
    /// Client port.
    pub(crate) client_port: Port,
    /// Peer port.
    pub(crate) peer_port: Port,
    /// `--initial-cluster-token`.
    pub(crate) initial_cluster_token: String,
    /// `--data-dir`.
    pub(crate) data_dir: Utf8PathBuf,
    /// More names and addresses in every etcd serving certificate (a DNS alias clients
    /// dial, an address behind NAT).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) extra_sans: Vec<San>,
    /// How each member joined, for a bundle that changes a running cluster: a member not
    /// listed here bootstraps with every master (`--initial-cluster-state=new`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) joins: BTreeMap<String, EtcdJoin>,
}

/// How an etcd member joined its cluster: what its unit's `--initial-cluster-state` and
/// `--initial-cluster` say. etcd reads both only on the member's first start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub(crate) struct EtcdJoin {
    /// `new` (it bootstrapped the cluster) or `existing` (it joined a running one).
    pub(crate) state: JoinState,
    /// The membership at its first start, `name=peer-url,...`.
    pub(crate) initial_cluster: String,
}

/// `--initial-cluster-state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum JoinState {
    /// The member bootstrapped the cluster.
    New,
    /// The member joined a running cluster.
    Existing,
}

impl JoinState {
    /// The flag's value.
    pub(crate) fn word(self) -> &'static str {
        match self {
            JoinState::New => "new",
            JoinState::Existing => "existing",
        }
    }
}

/// `[pki]`, resolved.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Pki {
    /// Algorithm of every TLS key.
    pub(crate) key_algorithm: KeyAlgorithm,
    /// Algorithm of the service-account signing key.
    pub(crate) service_account_key_algorithm: KeyAlgorithm,
    /// CA validity.
    pub(crate) ca_validity: ValidityDays,
    /// Leaf validity.
    pub(crate) cert_validity: ValidityDays,
    /// One CA or three.
    pub(crate) layout: PkiLayout,
    /// What encrypts Secrets at rest.
    pub(crate) encryption_provider: EncryptionProvider,
}

/// `[control_plane]` and `[kubelet]`, resolved: what the nodes share.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Nodes {
    /// The masters run kubelet and kube-proxy too, tainted `NoSchedule`.
    pub(crate) on_masters: bool,
    /// The container runtime's socket, on every kubelet host.
    pub(crate) container_runtime_endpoint: RuntimeEndpoint,
    /// The cluster DNS service's address (the service CIDR's 10th), every kubelet's
    /// `clusterDNS`.
    pub(crate) cluster_dns: IpAddr,
}

/// The whole validated cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The sha256 of the config text this plan was validated from, recorded in the
    /// bundle's manifest; `None` for a plan built another way.
    #[serde(skip)]
    pub(crate) config_sha256: Option<[u8; 32]>,
    /// `[cluster]`.
    pub(crate) cluster: ClusterSettings,
    /// `[network]`.
    pub(crate) network: Network,
    /// `[api]`.
    pub(crate) api: Api,
    /// Control-plane machines, in order; also the etcd members.
    pub(crate) masters: Vec<Host>,
    /// `[load_balancer]`.
    pub(crate) load_balancer: LoadBalancer,
    /// Worker machines.
    pub(crate) workers: Vec<Host>,
    /// `[etcd]`.
    pub(crate) etcd: Etcd,
    /// `[pki]`.
    pub(crate) pki: Pki,
    /// `[control_plane]` and `[kubelet]`.
    pub(crate) nodes: Nodes,
}

impl Plan {
    /// The SHA-256 of the config file the plan was read from; `None` for a spec built in
    /// code. `manifest.json` records it, so a bundle names the file that made it.
    pub fn config_sha256(&self) -> Option<[u8; 32]> {
        self.config_sha256
    }

    /// The masters, in the config's order.
    pub fn masters(&self) -> &[Host] {
        &self.masters
    }

    /// The load balancer hosts of an external load balancer, in the config's order (none
    /// when HAProxy runs on the masters).
    pub fn load_balancers(&self) -> &[Host] {
        &self.load_balancer.hosts
    }

    /// The workers, in the config's order.
    pub fn workers(&self) -> &[Host] {
        &self.workers
    }

    /// Every host: masters, load balancers, workers.
    pub fn hosts(&self) -> impl Iterator<Item = &Host> {
        self.masters
            .iter()
            .chain(&self.load_balancer.hosts)
            .chain(&self.workers)
    }

    /// The hosts that run a kubelet and kube-proxy: the masters when they take workloads,
    /// then the workers.
    pub fn nodes(&self) -> impl Iterator<Item = &Host> {
        let masters: &[Host] = if self.nodes.on_masters {
            &self.masters
        } else {
            &[]
        };
        masters.iter().chain(&self.workers)
    }

    /// True when the masters are nodes too (`control_plane.workloads`).
    pub fn masters_are_nodes(&self) -> bool {
        self.nodes.on_masters
    }

    /// How long leaf certificates are valid.
    pub fn cert_validity(&self) -> ValidityDays {
        self.pki.cert_validity
    }

    /// How many etcd members may fail while the cluster keeps quorum.
    pub fn etcd_failure_tolerance(&self) -> usize {
        self.masters.len().saturating_sub(1) / 2
    }

    /// The first service IP, which the `kubernetes` service gets.
    pub(crate) fn kubernetes_service_ip(&self) -> IpAddr {
        self.network.service_cidr.first_host()
    }

    /// `https://endpoint:port`, what every client outside the masters dials.
    pub fn api_url(&self) -> String {
        let host = match &self.api.endpoint {
            San::Ip(ip) => url_host(*ip),
            San::Dns(name) => name.to_string(),
        };
        format!("https://{host}:{}", self.api.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    /// The plan of a config that must validate.
    pub(super) fn plan(text: &str) -> Plan {
        Config::parse("t.toml", text)
            .unwrap()
            .validate()
            .unwrap()
            .plan
    }

    /// Three masters with HAProxy and a virtual IP on them.
    pub(super) const THREE_ON_MASTERS: &str = r#"
        [load_balancer]
        mode = "on-masters"
        vip = "127.0.1.100"
        [[masters]]
        name = "m0"
        address = "127.0.1.80"
        [[masters]]
        name = "m1"
        address = "127.0.1.81"
        [[masters]]
        name = "m2"
        address = "127.0.1.82"
    "#;

    #[test]
    fn failure_tolerance_follows_quorum() {
        let mut plan = plan(THREE_ON_MASTERS);
        assert_eq!(plan.etcd_failure_tolerance(), 1);
        plan.masters.truncate(1);
        assert_eq!(plan.etcd_failure_tolerance(), 0);
    }
}
