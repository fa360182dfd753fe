//! The bundle README's firewall table: every port a host of the plan opens to the network,
//! from the same listeners validation checks for collisions, with who must reach it.

use crate::plan::{
    haproxy_listener, master_listeners, node_listeners, Bind, Component, Listener, Plan,
};

/// One line of the table.
pub(super) struct FirewallRule {
    pub(super) hosts: &'static str,
    pub(super) port: String,
    pub(super) protocol: &'static str,
    pub(super) program: &'static str,
    pub(super) from: &'static str,
}

/// Who must reach a listener of `component`.
fn reached_by(component: Component) -> &'static str {
    match component {
        Component::EtcdClient => "the masters (kube-apiserver); etcdctl from the operator",
        Component::EtcdPeer => "the other masters",
        Component::KubeApiserver => "the load balancers, the masters, the nodes, kubectl",
        Component::Haproxy => "every client of the API: kubectl, the nodes, pods",
        Component::Kubelet => {
            "the masters (kube-apiserver: logs, exec, port-forward); metrics-server"
        }
        Component::KubeProxyHealthz => {
            "external load balancers of `externalTrafficPolicy: Local` services"
        }
        _ => "this host only",
    }
}

/// The listeners of one kind of host that other machines reach (loopback ones are left out).
fn open_listeners(listeners: Vec<Listener>) -> Vec<Listener> {
    listeners
        .into_iter()
        .filter(|l| !matches!(l.bind, Bind::Address(ip) if ip.is_loopback()))
        .collect()
}

fn rules_of(hosts: &'static str, listeners: Vec<Listener>) -> Vec<FirewallRule> {
    open_listeners(listeners)
        .into_iter()
        .map(|l| FirewallRule {
            hosts,
            port: l.port.to_string(),
            protocol: "TCP",
            program: l.component.label(),
            from: reached_by(l.component),
        })
        .collect()
}

/// Every rule, masters first, then the load balancer machines, then the workers.
pub(super) fn firewall_rules(plan: &Plan) -> Vec<FirewallRule> {
    let Some(first) = plan.masters.first() else {
        return Vec::new();
    };
    let mut rules = rules_of(
        "masters",
        master_listeners(plan.master_ports(), first.address.ip()),
    );
    if plan.load_balancer.vip.is_some() {
        rules.push(FirewallRule {
            hosts: "masters",
            port: "-".to_owned(),
            protocol: "VRRP (IP protocol 112)",
            program: "keepalived",
            from: "the other masters",
        });
    }
    if let Some(balancer) = plan.load_balancer.hosts.first() {
        let haproxy = haproxy_listener(balancer.address.ip(), plan.load_balancer.bind_port);
        rules.extend(rules_of("load balancers", vec![haproxy]));
    }
    if let Some(worker) = plan.workers.first() {
        rules.extend(rules_of("workers", node_listeners(worker.address.ip())));
    }
    if plan.nodes().next().is_some() {
        let range = plan.network.node_port_range;
        rules.push(FirewallRule {
            hosts: if plan.masters_are_nodes() {
                "every node"
            } else {
                "workers"
            },
            port: range.to_string(),
            protocol: "TCP, UDP",
            program: "kube-proxy (NodePort services)",
            from: "the clients of NodePort services",
        });
    }
    rules
}
