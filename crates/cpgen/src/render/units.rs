//! The systemd units cpgen writes, in the guide's shape, with its settings translated for a
//! current Kubernetes: a master's four, and a node's kubelet and kube-proxy.

use askama::Template;

use super::paths::*;
use crate::layout::Role;
use crate::plan::{wildcard_and_loopback, Host, JoinState, Plan};

/// One `--name=value` of an ExecStart line.
pub(crate) struct UnitFlag {
    pub(crate) name: &'static str,
    pub(crate) value: String,
}

impl UnitFlag {
    /// The value as one word of an `ExecStart=` line: systemd expands `%` specifiers and
    /// `$` variables and splits on spaces, so none of them may reach it as written.
    /// Validation keeps such characters out of the config; this keeps them out of the unit
    /// whatever a value holds.
    pub(crate) fn systemd_word(&self) -> String {
        let mut word = String::with_capacity(self.value.len());
        for c in self.value.chars() {
            match c {
                '%' => word.push_str("%%"),
                '$' => word.push_str("$$"),
                '\\' => word.push_str("\\\\"),
                '"' => word.push_str("\\\""),
                c => word.push(c),
            }
        }
        if word.contains(|c: char| c.is_whitespace() || c == '\'') {
            format!("\"{word}\"")
        } else {
            word
        }
    }
}

fn flag(name: &'static str, value: impl ToString) -> UnitFlag {
    UnitFlag {
        name,
        value: value.to_string(),
    }
}

/// A systemd unit in the guide's shape; rendered to a unit file, and read by the NixOS
/// module writer.
#[derive(Template)]
#[template(path = "systemd/unit.service", escape = "none")]
pub(crate) struct Unit {
    pub(crate) description: &'static str,
    pub(crate) documentation: &'static str,
    pub(crate) after: &'static [&'static str],
    pub(crate) wants: &'static [&'static str],
    pub(crate) notify: bool,
    pub(crate) binary: &'static str,
    pub(crate) flags: Vec<UnitFlag>,
}

impl Unit {
    /// The unit's name without `.service`.
    pub(crate) fn program(&self) -> &'static str {
        self.binary.rsplit('/').next().unwrap_or(self.binary)
    }
}

/// The four units of a master, by file name.
pub(crate) fn master_unit_specs(plan: &Plan, master: &Host) -> Vec<(&'static str, Unit)> {
    let kubernetes_docs = "https://kubernetes.io/docs/reference/command-line-tools-reference/";
    vec![
        (
            ETCD_UNIT,
            Unit {
                description: "etcd",
                documentation: "https://etcd.io/docs/",
                after: &["network.target", "network-online.target"],
                wants: &["network-online.target"],
                notify: true,
                binary: "/usr/bin/etcd",
                flags: etcd_flags(plan, master),
            },
        ),
        (
            APISERVER_UNIT,
            Unit {
                description: "Kubernetes API Server",
                documentation: kubernetes_docs,
                after: &["network.target", "etcd.service"],
                wants: &[],
                notify: true,
                binary: "/usr/bin/kube-apiserver",
                flags: apiserver_flags(plan, master),
            },
        ),
        (
            CONTROLLER_MANAGER_UNIT,
            Unit {
                description: "Kubernetes Controller Manager",
                documentation: kubernetes_docs,
                after: &["network.target", "kube-apiserver.service"],
                wants: &[],
                notify: false,
                binary: "/usr/bin/kube-controller-manager",
                flags: controller_manager_flags(plan, master),
            },
        ),
        (
            SCHEDULER_UNIT,
            Unit {
                description: "Kubernetes Scheduler",
                documentation: kubernetes_docs,
                after: &["network.target", "kube-apiserver.service"],
                wants: &[],
                notify: false,
                binary: "/usr/bin/kube-scheduler",
                flags: scheduler_flags(master),
            },
        ),
    ]
}

/// The kubelet and kube-proxy of a node, by file name. Both read the rest of their settings
/// from the configuration files beside their kubeconfigs.
pub(crate) fn node_unit_specs(node: &Host) -> Vec<(&'static str, Unit)> {
    let kubernetes_docs = "https://kubernetes.io/docs/reference/command-line-tools-reference/";
    let network: &'static [&'static str] = &["network-online.target"];
    vec![
        (
            KUBELET_UNIT,
            Unit {
                description: "Kubernetes Kubelet",
                documentation: kubernetes_docs,
                after: network,
                wants: network,
                notify: false,
                binary: "/usr/bin/kubelet",
                flags: vec![
                    flag("config", KUBELET_CONFIG),
                    // The client certificate names the node; the kubelet must register
                    // under that name, not the machine's hostname, for the Node authorizer.
                    flag("hostname-override", &node.name),
                    flag("kubeconfig", KUBELET_KUBECONFIG),
                    flag("node-ip", node.address),
                    flag("v", 2),
                ],
            },
        ),
        (
            KUBE_PROXY_UNIT,
            Unit {
                description: "Kubernetes Kube Proxy",
                documentation: kubernetes_docs,
                after: network,
                wants: network,
                notify: false,
                binary: "/usr/bin/kube-proxy",
                // kube-proxy takes its settings from the file alone once --config is given.
                flags: vec![flag("config", KUBE_PROXY_CONFIG)],
            },
        ),
    ]
}

/// Every unit cpgen writes for `host` in `role`, by file name, in start order.
pub(crate) fn host_unit_specs(plan: &Plan, host: &Host, role: Role) -> Vec<(&'static str, Unit)> {
    let mut units = match role {
        Role::Master => master_unit_specs(plan, host),
        Role::LoadBalancer | Role::Worker => Vec::new(),
    };
    if role.is_node(plan) {
        units.extend(node_unit_specs(host));
    }
    units
}

/// etcd's `--initial-cluster` members, `name=https://address:peer-port`, one per master in
/// the config's order: what the units say, and what verify expects them to say.
pub(crate) fn initial_cluster_members(plan: &Plan) -> Vec<String> {
    plan.masters
        .iter()
        .map(|m| {
            format!(
                "{}=https://{}:{}",
                m.name,
                m.address.url_host(),
                plan.etcd.peer_port
            )
        })
        .collect()
}

fn etcd_flags(plan: &Plan, master: &Host) -> Vec<UnitFlag> {
    let host = master.address.url_host();
    let client_url = format!("https://{host}:{}", plan.etcd.client_port);
    let peer_url = format!("https://{host}:{}", plan.etcd.peer_port);
    let (initial_cluster, state) = match plan.etcd.joins.get(master.name.as_str()) {
        Some(join) => (join.initial_cluster.clone(), join.state.word()),
        None => (
            initial_cluster_members(plan).join(","),
            JoinState::New.word(),
        ),
    };
    vec![
        flag("name", &master.name),
        flag("trusted-ca-file", ETCD_CA),
        flag("cert-file", ETCD_SERVER),
        flag("key-file", ETCD_SERVER_KEY),
        flag("client-cert-auth", "true"),
        flag("listen-client-urls", &client_url),
        flag("advertise-client-urls", &client_url),
        flag("peer-client-cert-auth", "true"),
        flag("peer-trusted-ca-file", ETCD_CA),
        flag("peer-cert-file", ETCD_PEER),
        flag("peer-key-file", ETCD_PEER_KEY),
        flag("initial-advertise-peer-urls", &peer_url),
        flag("listen-peer-urls", &peer_url),
        flag("initial-cluster-token", &plan.etcd.initial_cluster_token),
        flag("initial-cluster", initial_cluster),
        flag("initial-cluster-state", state),
        flag("data-dir", &plan.etcd.data_dir),
    ]
}

fn apiserver_flags(plan: &Plan, master: &Host) -> Vec<UnitFlag> {
    let etcd_servers: Vec<String> = plan
        .masters
        .iter()
        .map(|m| format!("https://{}:{}", m.address.url_host(), plan.etcd.client_port))
        .collect();
    let (any, _) = wildcard_and_loopback(master.address.ip());
    vec![
        flag("advertise-address", master.address),
        flag("allow-privileged", "true"),
        flag("authorization-mode", plan.api.authorization_modes.join(",")),
        flag("bind-address", any),
        flag("client-ca-file", CA),
        flag(
            "enable-admission-plugins",
            plan.api.admission_plugins.join(","),
        ),
        flag("encryption-provider-config", ENCRYPTION_CONFIG),
        flag("endpoint-reconciler-type", "lease"),
        flag("etcd-cafile", ETCD_CA),
        flag("etcd-certfile", ETCD_CLIENT),
        flag("etcd-keyfile", ETCD_CLIENT_KEY),
        flag("etcd-servers", etcd_servers.join(",")),
        // cpgen signs the kubelets' serving certificates, so the apiserver can check them
        // (kubeadm's default cannot: its kubelets sign their own).
        flag("kubelet-certificate-authority", CA),
        flag("kubelet-client-certificate", KUBELET_CLIENT),
        flag("kubelet-client-key", KUBELET_CLIENT_KEY),
        // A node's address first: its name (the kubelet's --hostname-override) resolves
        // only where the operator made DNS records for it. Both are in its certificate.
        flag("kubelet-preferred-address-types", "InternalIP,Hostname"),
        flag("proxy-client-cert-file", FRONT_PROXY_CLIENT),
        flag("proxy-client-key-file", FRONT_PROXY_CLIENT_KEY),
        flag("requestheader-allowed-names", "front-proxy-client"),
        flag("requestheader-client-ca-file", FRONT_PROXY_CA),
        flag("requestheader-extra-headers-prefix", "X-Remote-Extra-"),
        flag("requestheader-group-headers", "X-Remote-Group"),
        flag("requestheader-username-headers", "X-Remote-User"),
        flag("secure-port", plan.api.bind_port),
        flag(
            "service-account-issuer",
            format!("https://kubernetes.default.svc.{}", plan.cluster.dns_domain),
        ),
        flag("service-account-key-file", SA_PUB),
        flag("service-account-signing-key-file", SA_KEY),
        flag("service-cluster-ip-range", plan.network.service_cidr),
        flag("service-node-port-range", plan.network.node_port_range),
        flag("tls-cert-file", APISERVER),
        flag("tls-private-key-file", APISERVER_KEY),
        flag("v", 2),
    ]
}

fn controller_manager_flags(plan: &Plan, master: &Host) -> Vec<UnitFlag> {
    let (_, loopback) = wildcard_and_loopback(master.address.ip());
    vec![
        flag("allocate-node-cidrs", "true"),
        flag("authentication-kubeconfig", CONTROLLER_MANAGER_KUBECONFIG),
        flag("authorization-kubeconfig", CONTROLLER_MANAGER_KUBECONFIG),
        flag("bind-address", loopback),
        flag("client-ca-file", CA),
        flag("cluster-cidr", plan.network.pod_cidr),
        flag("cluster-name", &plan.cluster.name),
        flag("cluster-signing-cert-file", CA_SIGNING),
        flag("cluster-signing-key-file", CA_KEY),
        flag("controllers", "*"),
        flag("kubeconfig", CONTROLLER_MANAGER_KUBECONFIG),
        flag("leader-elect", "true"),
        flag("requestheader-client-ca-file", FRONT_PROXY_CA),
        flag("root-ca-file", CA),
        flag("service-account-private-key-file", SA_KEY),
        flag("service-cluster-ip-range", plan.network.service_cidr),
        flag("use-service-account-credentials", "true"),
        flag("v", 2),
    ]
}

fn scheduler_flags(master: &Host) -> Vec<UnitFlag> {
    let (_, loopback) = wildcard_and_loopback(master.address.ip());
    vec![
        flag("authentication-kubeconfig", SCHEDULER_KUBECONFIG),
        flag("authorization-kubeconfig", SCHEDULER_KUBECONFIG),
        flag("bind-address", loopback),
        flag("kubeconfig", SCHEDULER_KUBECONFIG),
        flag("leader-elect", "true"),
        flag("v", 2),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_reach_exec_start_as_one_literal_word() {
        let word = |value: &str| flag("x", value).systemd_word();
        assert_eq!(word("/var/lib/etcd"), "/var/lib/etcd");
        assert_eq!(word("%h/$HOME/${X}"), "%%h/$$HOME/$${X}");
        assert_eq!(word(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(word("two words"), "\"two words\"");
    }
}
