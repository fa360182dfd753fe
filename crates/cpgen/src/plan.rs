//! The validated, resolved cluster: every default filled in, every value typed. Also what
//! follows from it without any key material: the listeners on each host, the SAN set of
//! each server certificate, and every name and address a client dials.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use camino::Utf8PathBuf;
use serde::Serialize;

use crate::types::{
    url_host, Cidr, DnsName, HostAddress, HostName, KeyAlgorithm, KubernetesVersion, Port,
    PortRange, San, ValidityDays,
};

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
}

/// A program that listens on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
#[allow(missing_docs)]
pub(crate) enum Component {
    EtcdClient,
    EtcdPeer,
    KubeApiserver,
    KubeControllerManager,
    KubeScheduler,
    Haproxy,
}

impl Component {
    /// How the component is named in output.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Component::EtcdClient => "etcd (clients)",
            Component::EtcdPeer => "etcd (peers)",
            Component::KubeApiserver => "kube-apiserver",
            Component::KubeControllerManager => "kube-controller-manager",
            Component::KubeScheduler => "kube-scheduler",
            Component::Haproxy => "haproxy",
        }
    }
}

/// Which local addresses a listener binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Bind {
    /// One address.
    Address(IpAddr),
    /// Every address of the host (`0.0.0.0`, `::`).
    Any(IpAddr),
}

impl Bind {
    /// True when both bind at least one common address.
    pub(crate) fn overlaps(self, other: Bind) -> bool {
        match (self, other) {
            (Bind::Address(a), Bind::Address(b)) => a == b,
            _ => true,
        }
    }

    fn ip(self) -> IpAddr {
        match self {
            Bind::Address(ip) | Bind::Any(ip) => ip,
        }
    }
}

/// A socket a component listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Listener {
    /// Who listens.
    pub(crate) component: Component,
    /// Where.
    pub(crate) bind: Bind,
    /// On which port.
    pub(crate) port: Port,
}

impl Listener {
    /// `10.0.0.1:2379`, `[fd00::1]:2379`, `0.0.0.0:6443`.
    pub(crate) fn socket(&self) -> String {
        format!("{}:{}", url_host(self.bind.ip()), self.port)
    }
}

// A panic in a const item is a compile error, never a runtime one.
/// kube-controller-manager's fixed secure port (bound to loopback).
#[allow(clippy::panic)]
pub(crate) const CONTROLLER_MANAGER_PORT: Port = match Port::new(10257) {
    Some(p) => p,
    None => panic!("10257 is a port"),
};
/// kube-scheduler's fixed secure port (bound to loopback).
#[allow(clippy::panic)]
pub(crate) const SCHEDULER_PORT: Port = match Port::new(10259) {
    Some(p) => p,
    None => panic!("10259 is a port"),
};

/// The ports a master listens on, known before the whole plan is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MasterPorts {
    /// etcd `--listen-client-urls` port.
    pub(crate) etcd_client: Port,
    /// etcd `--listen-peer-urls` port.
    pub(crate) etcd_peer: Port,
    /// kube-apiserver `--secure-port`.
    pub(crate) apiserver: Port,
    /// HAProxy's bind port in on-masters mode.
    pub(crate) haproxy: Option<Port>,
}

/// Every listener of a master at `address`. Validation uses this to find collisions before
/// a plan exists, so both agree by construction.
pub(crate) fn master_listeners(ports: MasterPorts, address: IpAddr) -> Vec<Listener> {
    let (any, loopback) = wildcard_and_loopback(address);
    let mut listeners = vec![
        Listener {
            component: Component::EtcdClient,
            bind: Bind::Address(address),
            port: ports.etcd_client,
        },
        Listener {
            component: Component::EtcdPeer,
            bind: Bind::Address(address),
            port: ports.etcd_peer,
        },
        Listener {
            component: Component::KubeApiserver,
            bind: Bind::Any(any),
            port: ports.apiserver,
        },
        Listener {
            component: Component::KubeControllerManager,
            bind: Bind::Address(loopback),
            port: CONTROLLER_MANAGER_PORT,
        },
        Listener {
            component: Component::KubeScheduler,
            bind: Bind::Address(loopback),
            port: SCHEDULER_PORT,
        },
    ];
    if let Some(port) = ports.haproxy {
        listeners.push(haproxy_listener(address, port));
    }
    listeners
}

/// HAProxy's listener (`bind :PORT`: every address).
pub(crate) fn haproxy_listener(address: IpAddr, port: Port) -> Listener {
    Listener {
        component: Component::Haproxy,
        bind: Bind::Any(wildcard_and_loopback(address).0),
        port,
    }
}

/// The wildcard and loopback address of the family of `address`.
pub(crate) fn wildcard_and_loopback(address: IpAddr) -> (IpAddr, IpAddr) {
    match address {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED.into(), Ipv4Addr::LOCALHOST.into()),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED.into(), Ipv6Addr::LOCALHOST.into()),
    }
}

/// Which kind of server certificate a client checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerRole {
    /// kube-apiserver's serving certificate.
    Apiserver,
    /// etcd's serving (and peer) certificate.
    EtcdServer,
}

impl ServerRole {
    /// The identity's name in the PKI table.
    pub fn identity(self) -> &'static str {
        match self {
            ServerRole::Apiserver => "apiserver",
            ServerRole::EtcdServer => "etcd-server",
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

    /// How long leaf certificates are valid.
    pub fn cert_validity(&self) -> ValidityDays {
        self.pki.cert_validity
    }

    /// How many etcd members may fail while the cluster keeps quorum.
    pub fn etcd_failure_tolerance(&self) -> usize {
        self.masters.len().saturating_sub(1) / 2
    }

    /// The ports every master listens on.
    pub(crate) fn master_ports(&self) -> MasterPorts {
        MasterPorts {
            etcd_client: self.etcd.client_port,
            etcd_peer: self.etcd.peer_port,
            apiserver: self.api.bind_port,
            haproxy: (self.load_balancer.mode == LoadBalancerMode::OnMasters)
                .then_some(self.load_balancer.bind_port),
        }
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
                "kube-apiserver, etcdctl and etcd peers",
                target,
                ServerRole::EtcdServer,
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
                sans: etcd_server_sans(master),
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

fn etcd_server_sans(master: &Host) -> Vec<San> {
    let mut sans = host_sans(master);
    sans.extend(loopback_sans());
    order_sans(sans)
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
                .map(|w| summarize(w, "worker", Vec::new())),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn plan(text: &str) -> Plan {
        Config::parse("t.toml", text)
            .unwrap()
            .validate()
            .unwrap()
            .plan
    }

    const THREE_ON_MASTERS: &str = r#"
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
    fn failure_tolerance_follows_quorum() {
        let mut plan = plan(THREE_ON_MASTERS);
        assert_eq!(plan.etcd_failure_tolerance(), 1);
        plan.masters.truncate(1);
        assert_eq!(plan.etcd_failure_tolerance(), 0);
    }
}
