//! The cluster description as plain Rust values: [`ClusterSpec`], one field per key of
//! `cluster.toml`, and the defaults of every key left out (one private table, `defaults`,
//! read by the TOML path and the code path alike). A spec is what the rules of
//! [`validate`](crate::validate) check, whether a `cluster.toml` was parsed into it or code
//! built it; this module also owns the map from a field's path to where it was
//! written (`Origins`), through which findings point at the text or at the field.
//!
//! Values are strings, integers and lists as a user would write them, not the checked
//! newtypes of [`types`](crate::types): a wrong value must reach the rules, which report it
//! with its code, rather than be refused by the type system before they run.
//!
//! ```
//! use cpgen::spec::ClusterSpec;
//!
//! let spec = ClusterSpec::new("prod")
//!     .master("kubem00", "10.0.0.10")
//!     .master("kubem01", "10.0.0.11")
//!     .master("kubem02", "10.0.0.12")
//!     .balancer("kubelb00", "10.0.0.2");
//! let checked = spec.validate()?;
//! assert_eq!(checked.plan.etcd_failure_tolerance(), 1);
//! # Ok::<(), cpgen::Error>(())
//! ```

use std::collections::HashMap;

use crate::diag::{FieldPath, Location};

/// The value of every key `cluster.toml` may leave out, shared by the file and by code: the
/// rules take a default from here whenever a spec's field is `None`.
pub(crate) mod defaults {
    /// `cluster.name`.
    pub(crate) const CLUSTER_NAME: &str = "kubernetes";
    /// `cluster.kubernetes_version`, as its minor version of 1.x.
    pub(crate) const KUBERNETES_MINOR: u16 = 31;
    /// `cluster.dns_domain`.
    pub(crate) const DNS_DOMAIN: &str = "cluster.local";
    /// `network.service_cidr` of an IPv4 cluster.
    pub(crate) const SERVICE_CIDR_V4: &str = "10.32.0.0/16";
    /// `network.service_cidr` of an IPv6 cluster (its first master has an IPv6 address).
    pub(crate) const SERVICE_CIDR_V6: &str = "fd00:10:32::/108";
    /// `network.pod_cidr` of an IPv4 cluster.
    pub(crate) const POD_CIDR_V4: &str = "10.38.0.0/16";
    /// `network.pod_cidr` of an IPv6 cluster.
    pub(crate) const POD_CIDR_V6: &str = "fd00:10:38::/56";
    /// `network.node_port_range`.
    pub(crate) const NODE_PORT_RANGE: &str = "30000-32767";
    /// `api.bind_port`, and `api.port` when clients dial a master.
    pub(crate) const API_BIND_PORT: u16 = 6443;
    /// `load_balancer.bind_port` on separate load balancer hosts (mode `external`).
    pub(crate) const LB_BIND_PORT_EXTERNAL: u16 = 6443;
    /// `load_balancer.bind_port` of HAProxy on the masters (mode `on-masters`), beside
    /// kube-apiserver's own port.
    pub(crate) const LB_BIND_PORT_ON_MASTERS: u16 = 8443;
    /// `load_balancer.mode`.
    pub(crate) const LB_MODE: &str = "external";
    /// `load_balancer.health_check`.
    pub(crate) const HEALTH_CHECK: &str = "https-readyz";
    /// `load_balancer.vip_interface`.
    pub(crate) const VIP_INTERFACE: &str = "eth0";
    /// `api.components_via`.
    pub(crate) const COMPONENTS_VIA: &str = "load-balancer";
    /// `api.admission_plugins`: the guide's plugins plus NodeRestriction, which the guide's
    /// `Node` authorization mode needs to be meaningful.
    pub(crate) const ADMISSION_PLUGINS: &[&str] = &[
        "NamespaceLifecycle",
        "ServiceAccount",
        "LimitRanger",
        "ResourceQuota",
        "DefaultStorageClass",
        "NodeRestriction",
    ];
    /// `api.authorization_modes`: the guide's.
    pub(crate) const AUTHORIZATION_MODES: &[&str] = &["Node", "RBAC"];
    /// `etcd.client_port`.
    pub(crate) const ETCD_CLIENT_PORT: u16 = 2379;
    /// `etcd.peer_port`.
    pub(crate) const ETCD_PEER_PORT: u16 = 2380;
    /// `etcd.data_dir`.
    pub(crate) const ETCD_DATA_DIR: &str = "/var/lib/etcd";
    /// `etcd.initial_cluster_token` is the cluster name followed by this.
    pub(crate) const CLUSTER_TOKEN_SUFFIX: &str = "-etcd";
    /// `pki.key_algorithm` (and `pki.service_account_key_algorithm`, which follows it).
    pub(crate) const KEY_ALGORITHM: &str = "ecdsa-p256";
    /// `pki.ca_validity_days`.
    pub(crate) const CA_VALIDITY_DAYS: i64 = 3650;
    /// `pki.cert_validity_days`.
    pub(crate) const CERT_VALIDITY_DAYS: i64 = 365;
    /// `pki.layout`.
    pub(crate) const PKI_LAYOUT: &str = "separate-cas";
    /// `pki.encryption_provider`.
    pub(crate) const ENCRYPTION_PROVIDER: &str = "secretbox";
    /// `control_plane.workloads`.
    pub(crate) const CONTROL_PLANE_WORKLOADS: bool = false;
    /// `kubelet.container_runtime_endpoint`: containerd's socket.
    pub(crate) const CONTAINER_RUNTIME_ENDPOINT: &str = "unix:///run/containerd/containerd.sock";
}

/// A whole cluster description: what `cluster.toml` holds, as plain values; `None` (or an
/// empty list) where a key is left out and its default applies.
///
/// Build one with [`ClusterSpec::new`] and the builder methods, or from
/// [`ClusterSpec::default`] by setting its public fields; check it with
/// [`ClusterSpec::validate`].
#[derive(Debug, Clone, Default, PartialEq, Eq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[non_exhaustive]
pub struct ClusterSpec {
    /// `[cluster]`: the cluster's name, Kubernetes release and DNS domain.
    pub cluster: ClusterSettingsSpec,
    /// `[network]`: the service, pod and machine networks and the NodePort range.
    pub network: NetworkSpec,
    /// `[api]`: where clients reach the API servers, and how those run.
    pub api: ApiSpec,
    /// `[[masters]]`: the control-plane machines, each an etcd member.
    pub masters: Vec<HostSpec>,
    /// `[load_balancer]`: HAProxy on machines of its own or on the masters, and an optional
    /// keepalived virtual IP.
    pub load_balancer: LoadBalancerSpec,
    /// `[etcd]`: the etcd members (the masters) and their ports.
    pub etcd: EtcdSpec,
    /// `[pki]`: key algorithms, validities, CA layout and the encryption of Secrets.
    pub pki: PkiSpec,
    /// `[[workers]]`: node machines, each with a kubelet and kube-proxy.
    pub workers: Vec<HostSpec>,
    /// `[control_plane]`: whether the masters are nodes too.
    pub control_plane: ControlPlaneSpec,
    /// `[kubelet]`: settings of every node's kubelet.
    pub kubelet: KubeletSpec,
}

/// `[control_plane]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[non_exhaustive]
pub struct ControlPlaneSpec {
    /// `workloads`: the masters are nodes too (kubelet and kube-proxy, registered with a
    /// `NoSchedule` taint), so the apiservers reach webhooks and aggregated APIs in the pod
    /// network.
    pub workloads: Option<bool>,
}

/// `[kubelet]`: settings of every kubelet (workers, and masters with
/// `control_plane.workloads`).
#[derive(Debug, Clone, Default, PartialEq, Eq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[non_exhaustive]
pub struct KubeletSpec {
    /// `container_runtime_endpoint`: the CRI socket, `unix:///...`.
    pub container_runtime_endpoint: Option<String>,
}

/// `[cluster]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[non_exhaustive]
pub struct ClusterSettingsSpec {
    /// `name`: the cluster's name (kubeconfigs, `--cluster-name`), a DNS-1123 name.
    pub name: Option<String>,
    /// `kubernetes_version`: the Kubernetes release the units are written for, e.g.
    /// `"1.31"` (1.29 to 1.34).
    pub kubernetes_version: Option<String>,
    /// `dns_domain`: the cluster's DNS domain (`kubernetes.default.svc.<domain>`).
    pub dns_domain: Option<String>,
}

/// `[network]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[non_exhaustive]
pub struct NetworkSpec {
    /// `service_cidr`: the Service network, at most /12 (IPv6 /108) and at least /28 (/124):
    /// its first address is the `kubernetes` Service's, its 10th the cluster DNS's. Default
    /// `10.32.0.0/16` (IPv6 `fd00:10:32::/108`).
    pub service_cidr: Option<String>,
    /// `pod_cidr`: the pod network the controller-manager slices per node. Default
    /// `10.38.0.0/16` (IPv6 `fd00:10:38::/56`).
    pub pod_cidr: Option<String>,
    /// `node_port_range`: the NodePort range, `"LOW-HIGH"`; no control-plane port inside.
    pub node_port_range: Option<String>,
    /// `host_cidrs`: the networks the machines are on; every address must lie in one.
    pub host_cidrs: Option<Vec<String>>,
}

/// `[api]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[non_exhaustive]
pub struct ApiSpec {
    /// `endpoint`: the address or DNS name every client dials (the load balancer, the VIP);
    /// no scheme, no port. Default: the VIP, else the only load-balancer machine.
    pub endpoint: Option<String>,
    /// `port`: the port clients dial on the endpoint. Default: the load balancer's port, or
    /// `bind_port` without one.
    pub port: Option<i64>,
    /// `bind_port`: kube-apiserver's `--secure-port` on every master.
    pub bind_port: Option<i64>,
    /// `extra_sans`: more DNS names or addresses for every API server certificate.
    pub extra_sans: Option<Vec<String>>,
    /// `components_via`: where controller-manager and scheduler reach the API:
    /// `"load-balancer"` (the endpoint) or `"local"` (their own master).
    pub components_via: Option<String>,
    /// `admission_plugins`: kube-apiserver's `--enable-admission-plugins`, each known in
    /// `kubernetes_version`.
    pub admission_plugins: Option<Vec<String>>,
    /// `authorization_modes`: kube-apiserver's `--authorization-mode`, in order.
    pub authorization_modes: Option<Vec<String>>,
}

/// One machine: an entry of `[[masters]]`, `[[workers]]` or `[[load_balancer.hosts]]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[non_exhaustive]
pub struct HostSpec {
    /// `name`: the machine's DNS-1123 host name, unique across all machines.
    pub name: Option<String>,
    /// `address`: the machine's unicast IPv4 or IPv6 address, unique across all machines.
    pub address: Option<String>,
}

impl HostSpec {
    /// A machine with both keys given.
    pub fn new(name: impl Into<String>, address: impl Into<String>) -> HostSpec {
        HostSpec {
            name: Some(name.into()),
            address: Some(address.into()),
        }
    }
}

/// `[load_balancer]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[non_exhaustive]
pub struct LoadBalancerSpec {
    /// `mode`: `"external"` (HAProxy on `[[load_balancer.hosts]]`) or `"on-masters"`
    /// (HAProxy on every master, with keepalived when `vip` is set).
    pub mode: Option<String>,
    /// `bind_port`: HAProxy's port. Default 6443 external, 8443 on the masters.
    pub bind_port: Option<i64>,
    /// `health_check`: how HAProxy checks an API server: `"tcp"` (a connect) or
    /// `"https-readyz"` (`GET /readyz` over TLS).
    pub health_check: Option<String>,
    /// `vip`: the virtual IP keepalived moves between the masters (on-masters mode only).
    pub vip: Option<String>,
    /// `vip_interface`: the masters' network interface keepalived raises the VIP on.
    pub vip_interface: Option<String>,
    /// `[[load_balancer.hosts]]`: the HAProxy machines of external mode.
    pub hosts: Vec<HostSpec>,
}

/// `[etcd]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[non_exhaustive]
pub struct EtcdSpec {
    /// `client_port`: etcd's client port.
    pub client_port: Option<i64>,
    /// `peer_port`: etcd's peer port.
    pub peer_port: Option<i64>,
    /// `initial_cluster_token`: `--initial-cluster-token`. Default `<cluster name>-etcd`.
    pub initial_cluster_token: Option<String>,
    /// `data_dir`: etcd's `--data-dir`, an absolute path.
    pub data_dir: Option<String>,
    /// `extra_sans`: more names and addresses in every etcd serving certificate, for
    /// names clients dial that the plan cannot know.
    pub extra_sans: Option<Vec<String>>,
}

/// `[pki]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[non_exhaustive]
pub struct PkiSpec {
    /// `key_algorithm`: the algorithm of every TLS key.
    pub key_algorithm: Option<String>,
    /// `service_account_key_algorithm`: the service-account signing key's, RSA or ECDSA.
    /// Default: `key_algorithm`.
    pub service_account_key_algorithm: Option<String>,
    /// `ca_validity_days`: how long each CA is valid, in days.
    pub ca_validity_days: Option<i64>,
    /// `cert_validity_days`: how long each leaf certificate is valid, in days, at most
    /// `ca_validity_days`.
    pub cert_validity_days: Option<i64>,
    /// `layout`: `"separate-cas"` (Kubernetes, etcd and front-proxy CAs) or `"shared-ca"`
    /// (one CA, as the guide; etcd then trusts every cluster client).
    pub layout: Option<String>,
    /// `encryption_provider`: what encrypts Secrets at rest: `"secretbox"`, `"aesgcm"` or
    /// `"aescbc"`.
    pub encryption_provider: Option<String>,
}

/// A small builder over the public fields: each method sets one key and returns the spec.
impl ClusterSpec {
    /// A spec with `cluster.name` set and every other key left to its default.
    pub fn new(name: impl Into<String>) -> ClusterSpec {
        let mut spec = ClusterSpec::default();
        spec.cluster.name = Some(name.into());
        spec
    }

    /// Adds a `[[masters]]` entry.
    pub fn master(mut self, name: impl Into<String>, address: impl Into<String>) -> ClusterSpec {
        self.masters.push(HostSpec::new(name, address));
        self
    }

    /// Adds a `[[workers]]` entry.
    pub fn worker(mut self, name: impl Into<String>, address: impl Into<String>) -> ClusterSpec {
        self.workers.push(HostSpec::new(name, address));
        self
    }

    /// Adds a `[[load_balancer.hosts]]` entry.
    pub fn balancer(mut self, name: impl Into<String>, address: impl Into<String>) -> ClusterSpec {
        self.load_balancer.hosts.push(HostSpec::new(name, address));
        self
    }

    /// Sets `cluster.kubernetes_version`, e.g. `"1.31"`.
    pub fn kubernetes_version(mut self, version: impl Into<String>) -> ClusterSpec {
        self.cluster.kubernetes_version = Some(version.into());
        self
    }

    /// Sets `api.endpoint`.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> ClusterSpec {
        self.api.endpoint = Some(endpoint.into());
        self
    }

    /// Sets `api.port`.
    pub fn api_port(mut self, port: i64) -> ClusterSpec {
        self.api.port = Some(port);
        self
    }

    /// HAProxy and keepalived on the masters (`load_balancer.mode = "on-masters"`), with
    /// `vip` as the virtual IP clients dial.
    pub fn on_masters_with_vip(mut self, vip: impl Into<String>) -> ClusterSpec {
        self.load_balancer.mode = Some("on-masters".to_owned());
        self.load_balancer.vip = Some(vip.into());
        self
    }

    /// Sets `control_plane.workloads`: the masters run kubelet and kube-proxy too.
    pub fn workloads_on_masters(mut self, workloads: bool) -> ClusterSpec {
        self.control_plane.workloads = Some(workloads);
        self
    }

    /// Sets `network.host_cidrs`.
    pub fn host_cidrs<S: Into<String>>(
        mut self,
        cidrs: impl IntoIterator<Item = S>,
    ) -> ClusterSpec {
        self.network.host_cidrs = Some(cidrs.into_iter().map(Into::into).collect());
        self
    }

    /// The path of every field given (set, or a non-empty list), with the sections, which
    /// are always there: what a finding about a spec built in code may point at.
    fn given_paths(&self) -> Vec<String> {
        let mut paths = Vec::new();
        let mut field = |section: &str, key: &str, given: bool| {
            if given {
                paths.push(format!("{section}.{key}"));
            }
        };
        let c = &self.cluster;
        field("cluster", "name", c.name.is_some());
        field(
            "cluster",
            "kubernetes_version",
            c.kubernetes_version.is_some(),
        );
        field("cluster", "dns_domain", c.dns_domain.is_some());
        let n = &self.network;
        field("network", "service_cidr", n.service_cidr.is_some());
        field("network", "pod_cidr", n.pod_cidr.is_some());
        field("network", "node_port_range", n.node_port_range.is_some());
        let a = &self.api;
        field("api", "endpoint", a.endpoint.is_some());
        field("api", "port", a.port.is_some());
        field("api", "bind_port", a.bind_port.is_some());
        field("api", "components_via", a.components_via.is_some());
        let l = &self.load_balancer;
        field("load_balancer", "mode", l.mode.is_some());
        field("load_balancer", "bind_port", l.bind_port.is_some());
        field("load_balancer", "health_check", l.health_check.is_some());
        field("load_balancer", "vip", l.vip.is_some());
        field("load_balancer", "vip_interface", l.vip_interface.is_some());
        let e = &self.etcd;
        field("etcd", "client_port", e.client_port.is_some());
        field("etcd", "peer_port", e.peer_port.is_some());
        field(
            "etcd",
            "initial_cluster_token",
            e.initial_cluster_token.is_some(),
        );
        field("etcd", "data_dir", e.data_dir.is_some());
        let p = &self.pki;
        field("pki", "key_algorithm", p.key_algorithm.is_some());
        field(
            "pki",
            "service_account_key_algorithm",
            p.service_account_key_algorithm.is_some(),
        );
        field("pki", "ca_validity_days", p.ca_validity_days.is_some());
        field("pki", "cert_validity_days", p.cert_validity_days.is_some());
        field("pki", "layout", p.layout.is_some());
        field(
            "pki",
            "encryption_provider",
            p.encryption_provider.is_some(),
        );
        field(
            "control_plane",
            "workloads",
            self.control_plane.workloads.is_some(),
        );
        field(
            "kubelet",
            "container_runtime_endpoint",
            self.kubelet.container_runtime_endpoint.is_some(),
        );
        for section in [
            "cluster",
            "network",
            "api",
            "load_balancer",
            "etcd",
            "pki",
            "control_plane",
            "kubelet",
        ] {
            paths.push(section.to_owned());
        }
        let lists = [
            ("network.host_cidrs", &n.host_cidrs),
            ("api.extra_sans", &a.extra_sans),
            ("etcd.extra_sans", &e.extra_sans),
            ("api.admission_plugins", &a.admission_plugins),
            ("api.authorization_modes", &a.authorization_modes),
        ];
        for (path, list) in lists {
            if let Some(items) = list {
                paths.push(path.to_owned());
                paths.extend((0..items.len()).map(|i| format!("{path}[{i}]")));
            }
        }
        let hosts = [
            ("masters", &self.masters),
            ("workers", &self.workers),
            ("load_balancer.hosts", &l.hosts),
        ];
        for (path, hosts) in hosts {
            if !hosts.is_empty() {
                paths.push(path.to_owned());
            }
            for (i, host) in hosts.iter().enumerate() {
                paths.push(format!("{path}[{i}]"));
                if host.name.is_some() {
                    paths.push(format!("{path}[{i}].name"));
                }
                if host.address.is_some() {
                    paths.push(format!("{path}[{i}].address"));
                }
            }
        }
        paths
    }
}

/// Where each given field of a spec came from, by its path (`api.port`, `masters[1].address`,
/// `network.host_cidrs[0]`; a section by its name, a list of machines by its key): a span of
/// the `cluster.toml` it was parsed from, or the path itself for a spec built in code. A
/// field left out has no place, which rules use to tell a default from a written value.
#[derive(Debug, Clone, Default)]
pub(crate) struct Origins {
    places: HashMap<String, Location>,
    /// Paths of values written with the wrong type and left out (see
    /// [`Config::wrong_typed_within`](crate::Config::wrong_typed_within)).
    wrong_typed: Vec<String>,
    from_text: bool,
}

impl Origins {
    /// Every field of a spec built in code is at its own path.
    pub(crate) fn of_code(spec: &ClusterSpec) -> Origins {
        let places = spec
            .given_paths()
            .into_iter()
            .map(|path| (path.clone(), Location::Path(FieldPath::new(path))))
            .collect();
        Origins {
            places,
            wrong_typed: Vec::new(),
            from_text: false,
        }
    }

    /// The spans of a parsed `cluster.toml`.
    pub(crate) fn of_text(places: HashMap<String, Location>, wrong_typed: Vec<String>) -> Origins {
        Origins {
            places,
            wrong_typed,
            from_text: true,
        }
    }

    /// Every path with a place, in order: for tests that compare the two kinds of origin.
    #[cfg(test)]
    pub(crate) fn paths(&self) -> std::collections::BTreeSet<&str> {
        self.places.keys().map(String::as_str).collect()
    }

    /// Where the field at `path` was given; `None` when it was left out.
    pub(crate) fn get(&self, path: &str) -> Option<Location> {
        self.places.get(path).cloned()
    }

    /// Where a finding about `path` points when nothing was given there: the start of the
    /// file, or the path.
    pub(crate) fn absent(&self, path: &str) -> Location {
        if self.from_text {
            Location::Span(0..0)
        } else {
            Location::Path(FieldPath::new(path))
        }
    }

    /// Whether a value at `path` (dotted, `masters.0.name`), or anywhere under it, was
    /// written with the wrong type and left out: it is reported as such, not again as
    /// missing.
    pub(crate) fn wrong_typed_within(&self, path: &str) -> bool {
        wrong_typed_within(&self.wrong_typed, path)
    }
}

/// See [`Origins::wrong_typed_within`].
pub(crate) fn wrong_typed_within(dropped: &[String], path: &str) -> bool {
    // A removed array item is recorded as `masters[4]`, by its place as written: it has no
    // index in the cleaned arrays, and only counts as "under `masters`".
    dropped.iter().any(|dropped| {
        dropped
            .strip_prefix(path)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
    })
}
