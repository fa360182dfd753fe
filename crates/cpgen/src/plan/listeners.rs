//! Who listens where: the components that open sockets on a host, their fixed ports, and
//! every listener of a master or a load balancer. Validation computes the same listeners
//! before a plan exists (to find collisions), so both agree by construction.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use super::{LoadBalancerMode, Plan};
use crate::types::{url_host, Port};

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
    Kubelet,
    KubeletHealthz,
    KubeProxyMetrics,
    KubeProxyHealthz,
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
            Component::Kubelet => "kubelet",
            Component::KubeletHealthz => "kubelet (healthz)",
            Component::KubeProxyMetrics => "kube-proxy (metrics)",
            Component::KubeProxyHealthz => "kube-proxy (healthz)",
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

/// A fixed port from a literal. Only const items call it, where a panic is a compile
/// error, never a runtime one.
#[allow(clippy::panic)]
const fn fixed(port: u16) -> Port {
    match Port::new(port) {
        Some(p) => p,
        None => panic!("a fixed port is never 0"),
    }
}

/// kube-controller-manager's fixed secure port (bound to loopback).
pub(crate) const CONTROLLER_MANAGER_PORT: Port = fixed(10257);
/// kube-scheduler's fixed secure port (bound to loopback).
pub(crate) const SCHEDULER_PORT: Port = fixed(10259);

/// The kubelet's API (logs, exec, metrics), which kube-apiserver dials.
pub(crate) const KUBELET_PORT: Port = fixed(10250);
/// The kubelet's health endpoint (loopback).
pub(crate) const KUBELET_HEALTHZ_PORT: Port = fixed(10248);
/// kube-proxy's metrics (loopback).
pub(crate) const KUBE_PROXY_METRICS_PORT: Port = fixed(10249);
/// kube-proxy's health endpoint, which external load balancers of `Local` services ask.
pub(crate) const KUBE_PROXY_HEALTHZ_PORT: Port = fixed(10256);

/// The listeners of a node's kubelet and kube-proxy at `address`: what the rendered
/// KubeletConfiguration and KubeProxyConfiguration bind.
pub(crate) fn node_listeners(address: IpAddr) -> Vec<Listener> {
    let (any, loopback) = wildcard_and_loopback(address);
    let listener = |component, bind, port| Listener {
        component,
        bind,
        port,
    };
    vec![
        listener(Component::Kubelet, Bind::Address(address), KUBELET_PORT),
        listener(
            Component::KubeletHealthz,
            Bind::Address(loopback),
            KUBELET_HEALTHZ_PORT,
        ),
        listener(
            Component::KubeProxyMetrics,
            Bind::Address(loopback),
            KUBE_PROXY_METRICS_PORT,
        ),
        listener(
            Component::KubeProxyHealthz,
            Bind::Any(any),
            KUBE_PROXY_HEALTHZ_PORT,
        ),
    ]
}

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
    /// The master is a node too: kubelet and kube-proxy listen.
    pub(crate) node: bool,
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
    if ports.node {
        listeners.extend(node_listeners(address));
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

impl Plan {
    /// The ports every master listens on.
    pub(crate) fn master_ports(&self) -> MasterPorts {
        MasterPorts {
            etcd_client: self.etcd.client_port,
            etcd_peer: self.etcd.peer_port,
            apiserver: self.api.bind_port,
            haproxy: (self.load_balancer.mode == LoadBalancerMode::OnMasters)
                .then_some(self.load_balancer.bind_port),
            node: self.nodes.on_masters,
        }
    }
}
