//! Listeners and the endpoint: no two components on one port of a master, node ports clear of them,
//! and an endpoint that reaches a listener of the plan.

use std::net::IpAddr;

use crate::diag::{Code, Diagnostic};
use crate::plan::{master_listeners, Component, Listener, LoadBalancerMode, Origin};
use crate::spec::{defaults, Origins};
use crate::types::{HostAddress, Port, San};

use super::{Draft, DraftHost, Rules, Span};

impl Rules<'_> {
    pub(super) fn listener_collisions(&mut self, draft: &Draft) {
        let Some(ports) = draft.master_ports() else {
            return;
        };
        let Some(address) = draft.masters.iter().find_map(|m| m.address) else {
            return;
        };
        let listeners = master_listeners(ports, address.ip());
        for (i, listener) in listeners.iter().enumerate() {
            let clash = listeners[..i]
                .iter()
                .find(|l| l.port == listener.port && l.bind.overlaps(listener.bind));
            if let Some(first) = clash {
                self.push(
                    Diagnostic::error(
                        Code::ListenerCollision,
                        format!(
                            "{} and {} both listen on {} on every master",
                            first.component.label(),
                            listener.component.label(),
                            if first.socket() == listener.socket() {
                                first.socket()
                            } else {
                                format!("{} and {}", first.socket(), listener.socket())
                            }
                        ),
                    )
                    .at(
                        port_span(self.origins, listener.component),
                        format!("{} port", listener.component.label()),
                    )
                    .also(
                        port_span(self.origins, first.component),
                        format!("{} port", first.component.label()),
                    )
                    .help(collision_help(
                        &listeners,
                        first.component,
                        listener.component,
                    )),
                );
            }
        }
    }

    pub(super) fn node_port_collisions(&mut self, draft: &Draft) {
        let (Some(range), Some(ports)) = (draft.node_port_range, draft.master_ports()) else {
            return;
        };
        let Some(address) = draft.masters.iter().find_map(|m| m.address) else {
            return;
        };
        for listener in master_listeners(ports, address.ip()) {
            if range.contains(listener.port) {
                self.push(
                    Diagnostic::error(Code::NodePortCollision, format!("the NodePort range {range} contains port {} of {}", listener.port, listener.component.label()))
                        .at(self.origins.get("network.node_port_range"), "NodePort range")
                        .also(port_span(self.origins, listener.component), "this port")
                        .help("kube-proxy opens NodePorts on every node; keep control-plane ports outside the range"),
                );
            }
        }
    }

    /// Clients dial `api.endpoint`:`api.port`, so a listener of the plan must be there: a
    /// kubeconfig pointing at a dead port validates otherwise. An endpoint outside the plan
    /// (a DNS name of an external balancer) cannot be checked here.
    pub(super) fn endpoint_reaches_a_listener(&mut self, draft: &Draft) {
        let (Some(endpoint), Some(port)) = (&draft.endpoint, draft.api_port) else {
            return;
        };
        let is = |host: &DraftHost| {
            host.address.is_some_and(|a| *endpoint == San::Ip(a.ip()))
                || host
                    .name
                    .as_ref()
                    .is_some_and(|n| *endpoint == San::Dns(n.as_dns_name().clone()))
        };
        let vip = draft.vip.flatten();
        let is_vip = vip.is_some_and(|v| *endpoint == San::Ip(v.ip()));
        let master = draft.masters.iter().find(|h| is(h));
        let balancer = draft.lb_hosts.iter().find(|h| is(h));
        let worker = draft.workers.iter().find(|h| is(h));
        let (what, listening) = if is_vip || balancer.is_some() {
            let Some(lb_port) = draft.lb_bind_port else {
                return;
            };
            let what = match balancer.and_then(|b| b.name.as_ref()) {
                _ if is_vip => "the virtual IP".to_owned(),
                Some(name) => format!("load balancer `{name}`"),
                None => "a load balancer".to_owned(),
            };
            (what, vec![(Component::Haproxy, lb_port)])
        } else if let Some(master) = master {
            let Some(bind_port) = draft.api_bind_port else {
                return;
            };
            let mut listening = vec![(Component::KubeApiserver, bind_port)];
            if let (Some(LoadBalancerMode::OnMasters), Some(lb_port)) =
                (draft.lb_mode, draft.lb_bind_port)
            {
                listening.push((Component::Haproxy, lb_port));
            }
            let what = master
                .name
                .as_ref()
                .map_or_else(|| "a master".to_owned(), |n| format!("master `{n}`"));
            (what, listening)
        } else if let Some(worker) = worker {
            let what = worker
                .name
                .as_ref()
                .map_or_else(|| "a worker".to_owned(), |n| format!("worker `{n}`"));
            (what, Vec::new())
        } else {
            return;
        };
        if !listening.iter().any(|(_, p)| *p == port) {
            self.dead_endpoint(draft, endpoint, port, &what, &listening);
        }
        if let (Some(master), false) = (master, is_vip || balancer.is_some()) {
            self.single_master_endpoint(draft, master, vip);
        }
        if let Some(balancer) = balancer.filter(|_| draft.lb_hosts.len() > 1) {
            self.one_of_several_balancers(draft, balancer);
        }
    }

    fn dead_endpoint(
        &mut self,
        draft: &Draft,
        endpoint: &San,
        port: Port,
        what: &str,
        listening: &[(Component, Port)],
    ) {
        let api_span = self.origins.get("api");
        let mut there: Vec<String> = listening
            .iter()
            .map(|(c, p)| format!("{} on {p}", c.label()))
            .collect();
        if there.is_empty() {
            there.push("no API listener at all".to_owned());
        }
        let (port_at, port_label) = match self.origins.get("api.port") {
            Some(at) => (Some(at), "the port clients dial".to_owned()),
            None => (
                api_span,
                format!("api.port is not set and defaults to {port}"),
            ),
        };
        let fix = if listening.is_empty() {
            "api.endpoint to the load balancer, the VIP or a master".to_owned()
        } else {
            listening
                .iter()
                .map(|(_, p)| format!("api.port = {p}"))
                .collect::<Vec<_>>()
                .join(" or ")
        };
        self.push(
            Diagnostic::error(
                Code::EndpointPortMismatch,
                format!(
                    "clients dial {}:{port}, where nothing listens: {endpoint} is {what}, which has {}",
                    endpoint_text(endpoint),
                    there.join(" and ")
                ),
            )
            .at(endpoint_span(self.origins, draft), "api.endpoint")
            .also(port_at, port_label)
            .help(format!("every kubeconfig would point at a dead port; set {fix}")),
        );
    }

    fn single_master_endpoint(
        &mut self,
        draft: &Draft,
        master: &DraftHost,
        vip: Option<HostAddress>,
    ) {
        let balancers: Vec<String> = draft
            .lb_hosts
            .iter()
            .filter_map(|h| h.name.as_ref().map(|n| format!("`{n}`")))
            .collect();
        let (instead, fix) = match (vip, balancers.first()) {
            (Some(vip), _) => (
                format!("the virtual IP {vip}"),
                format!("api.endpoint = \"{vip}\""),
            ),
            (None, Some(first)) if balancers.len() == 1 => (
                format!("the load balancer {first}"),
                format!("api.endpoint = \"{}\"", first.trim_matches('`')),
            ),
            (None, Some(_)) => (
                format!("the load balancers {}", balancers.join(", ")),
                "api.endpoint to a name that resolves to every load balancer".to_owned(),
            ),
            (None, None) => return,
        };
        let name = master
            .name
            .as_ref()
            .map_or_else(|| "one master".to_owned(), |n| format!("master `{n}`"));
        self.push(
            Diagnostic::warning(
                Code::SingleMasterEndpoint,
                format!("clients dial {name} only: when that machine is down they lose the API, although {instead} reaches every master"),
            )
            .at(endpoint_span(self.origins, draft), "one master")
            .also(master.name_span.clone().or_else(|| master.span.clone()), "this master")
            .help(format!("set {fix}")),
        );
    }
}

/// What to change when two listeners collide: the later one's port key if it has one
/// (else the first's), set to its usual port when that is free, else to the next free one.
fn collision_help(listeners: &[Listener], first: Component, second: Component) -> String {
    let movable = [second, first]
        .into_iter()
        .find_map(|c| port_key(c).map(|(key, usual)| (c, key, usual)));
    let Some((component, key, usual)) = movable else {
        return "give each a port of its own".to_owned();
    };
    let taken = |port: u16| listeners.iter().any(|l| l.port.get() == port);
    let free = (usual..=u16::MAX).find(|&p| !taken(p)).unwrap_or(usual);
    format!(
        "give {} a port of its own, e.g. {key} = {free}",
        component.label()
    )
}

/// The config key that sets a component's port on the masters, and its usual value.
fn port_key(component: Component) -> Option<(&'static str, u16)> {
    match component {
        Component::EtcdClient => Some(("etcd.client_port", defaults::ETCD_CLIENT_PORT)),
        Component::EtcdPeer => Some(("etcd.peer_port", defaults::ETCD_PEER_PORT)),
        Component::KubeApiserver => Some(("api.bind_port", defaults::API_BIND_PORT)),
        Component::Haproxy => Some(("load_balancer.bind_port", defaults::LB_BIND_PORT_ON_MASTERS)),
        _ => None,
    }
}

/// Where the API endpoint comes from: `api.endpoint`, else what it defaults to.
fn endpoint_span(origins: &Origins, draft: &Draft) -> Span {
    origins.get("api.endpoint").or_else(|| {
        let endpoint = draft.endpoint.as_ref()?;
        if draft
            .vip
            .flatten()
            .is_some_and(|v| *endpoint == San::Ip(v.ip()))
        {
            return draft.vip_span.clone();
        }
        draft
            .hosts()
            .find(|h| h.address.is_some_and(|a| *endpoint == San::Ip(a.ip())))
            .and_then(|h| h.address_span.clone().or(h.span.clone()))
    })
}

/// An endpoint as clients write it in a URL: IPv6 in brackets.
fn endpoint_text(endpoint: &San) -> String {
    match endpoint {
        San::Ip(IpAddr::V6(v6)) => format!("[{v6}]"),
        other => other.to_string(),
    }
}

fn port_span(origins: &Origins, component: Component) -> Span {
    use Component::*;
    let (key, section) = match component {
        EtcdClient => ("etcd.client_port", "etcd"),
        EtcdPeer => ("etcd.peer_port", "etcd"),
        KubeApiserver => ("api.bind_port", "api"),
        Haproxy => ("load_balancer.bind_port", "load_balancer"),
        _ => return None,
    };
    origins.get(key).or_else(|| origins.get(section))
}

pub(super) fn origin_span(origins: &Origins, origin: Origin) -> Span {
    match origin {
        Origin::ApiEndpoint => origins.get("api.endpoint"),
        Origin::LoadBalancerHost(i) => origins.get(&format!("load_balancer.hosts[{i}]")),
        Origin::Vip => origins.get("load_balancer.vip"),
        Origin::Master(i) => origins.get(&format!("masters[{i}]")),
        Origin::ServiceCidr => origins.get("network.service_cidr"),
        Origin::DnsDomain => origins.get("cluster.dns_domain"),
        Origin::Loopback => None,
    }
}
