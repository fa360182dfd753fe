//! The nodes' kubelet and kube-proxy configuration files: the settings that keep a
//! kubelet's API closed to strangers, no key cpgen does not write, and the files they name.

use serde_json::Value;

use crate::diag::Diagnostic;
use crate::plan::{KUBELET_HEALTHZ_PORT, KUBELET_PORT};
use crate::render::paths::{
    CA, KUBELET_CONFIG, KUBELET_KUBECONFIG, KUBELET_SERVER, KUBELET_SERVER_KEY, KUBE_PROXY_CONFIG,
    KUBE_PROXY_KUBECONFIG,
};
use crate::verify::model::{ComponentConfig, ComponentKind, HostModel};

use super::{unsafe_setting, Audit};

/// The top-level keys cpgen writes in a KubeletConfiguration. Any other can open the node
/// (`staticPodPath` runs whatever a directory holds, `enableServer`, `tlsCipherSuites`).
const KUBELET_KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "address",
    "port",
    "readOnlyPort",
    "healthzBindAddress",
    "healthzPort",
    "authentication",
    "authorization",
    "tlsCertFile",
    "tlsPrivateKeyFile",
    "rotateCertificates",
    "serverTLSBootstrap",
    "cgroupDriver",
    "containerRuntimeEndpoint",
    "clusterDomain",
    "clusterDNS",
    "registerWithTaints",
];

/// The top-level keys cpgen writes in a KubeProxyConfiguration.
const KUBE_PROXY_KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "clientConnection",
    "hostnameOverride",
    "clusterCIDR",
    "mode",
    "healthzBindAddress",
    "metricsBindAddress",
];

/// A setting by dotted key, whether a value is the one cpgen writes, and what another does.
type Guard = (&'static str, fn(&Value) -> bool, &'static str);

/// What keeps the kubelet's API (exec, logs, port-forward) to clients the API server
/// authorizes.
const KUBELET_GUARDS: [Guard; 21] = [
    (
        "kind",
        |v| v == "KubeletConfiguration",
        "the kubelet reads it as something else, or not at all",
    ),
    (
        "authentication.anonymous.enabled",
        |v| v == &Value::Bool(false),
        "requests without a certificate reach the kubelet's API",
    ),
    (
        "authentication.webhook.enabled",
        |v| v == &Value::Bool(true),
        "bearer tokens are not checked with the API server",
    ),
    (
        "authorization.mode",
        |v| v == "Webhook",
        "the kubelet no longer asks the API server who may exec, read logs or port-forward",
    ),
    (
        "readOnlyPort",
        |v| v.as_u64() == Some(0),
        "the read-only port serves pod and node details to anyone, without authentication",
    ),
    (
        "authentication",
        |v| keys_are(v, &["anonymous", "webhook", "x509"]),
        "settings cpgen does not write decide who the kubelet lets in",
    ),
    (
        "authentication.anonymous",
        |v| keys_are(v, &["enabled"]),
        "settings cpgen does not write decide who the kubelet lets in",
    ),
    (
        "authentication.webhook",
        |v| keys_are(v, &["enabled"]),
        "settings cpgen does not write (a cache of a day keeps a revoked token working)",
    ),
    (
        "authentication.x509",
        |v| keys_are(v, &["clientCAFile"]),
        "settings cpgen does not write decide who the kubelet lets in",
    ),
    (
        "authorization",
        |v| keys_are(v, &["mode"]),
        "settings cpgen does not write (a cache of a day keeps a revoked permission working)",
    ),
    (
        "authentication.x509.clientCAFile",
        |v| v == CA,
        "clients are checked against another CA than the cluster's",
    ),
    (
        "tlsCertFile",
        |v| v == KUBELET_SERVER,
        "the kubelet serves another certificate than the one cpgen issued it",
    ),
    (
        "tlsPrivateKeyFile",
        |v| v == KUBELET_SERVER_KEY,
        "the kubelet serves with another key than its certificate's",
    ),
    (
        "rotateCertificates",
        |v| v == &Value::Bool(false),
        "the kubelet asks the cluster for certificates cpgen does not issue",
    ),
    (
        "serverTLSBootstrap",
        |v| v == &Value::Bool(false),
        "the kubelet asks the cluster for a serving certificate cpgen does not issue",
    ),
    (
        "apiVersion",
        |v| v == "kubelet.config.k8s.io/v1beta1",
        "the kubelet reads the file under other rules, or refuses it",
    ),
    (
        "port",
        |v| v.as_u64() == Some(u64::from(KUBELET_PORT.get())),
        "the API servers dial the kubelet on 10250",
    ),
    (
        "healthzBindAddress",
        |v| v == "127.0.0.1" || v == "::1",
        "the kubelet's health endpoint is served to the network",
    ),
    (
        "healthzPort",
        |v| v.as_u64() == Some(u64::from(KUBELET_HEALTHZ_PORT.get())),
        "the health endpoint moves onto a port cpgen keeps for others",
    ),
    (
        "cgroupDriver",
        |v| v == "systemd",
        "the kubelet and a systemd-driven container runtime fight over cgroups",
    ),
    (
        "containerRuntimeEndpoint",
        |v| v.as_str().is_some_and(|e| e.starts_with("unix:///")),
        "the kubelet drives a container runtime elsewhere than a local socket",
    ),
];

/// What keeps kube-proxy on its own identity and its metrics off the network.
const KUBE_PROXY_GUARDS: [Guard; 6] = [
    (
        "kind",
        |v| v == "KubeProxyConfiguration",
        "kube-proxy reads it as something else, or not at all",
    ),
    (
        "clientConnection",
        |v| keys_are(v, &["kubeconfig"]),
        "settings cpgen does not write change how kube-proxy reaches the API",
    ),
    (
        "clientConnection.kubeconfig",
        |v| v == KUBE_PROXY_KUBECONFIG,
        "kube-proxy reaches the API as another identity than its own",
    ),
    (
        "apiVersion",
        |v| v == "kubeproxy.config.k8s.io/v1alpha1",
        "kube-proxy reads the file under other rules, or refuses it",
    ),
    (
        "mode",
        |v| v == "iptables",
        "kube-proxy programs services another way than cpgen writes",
    ),
    (
        "metricsBindAddress",
        |v| {
            v.as_str()
                .is_some_and(|a| a.starts_with("127.0.0.1:") || a.starts_with("[::1]:"))
        },
        "kube-proxy's metrics are served to the network",
    ),
];

/// True for an object with exactly these keys.
fn keys_are(value: &Value, keys: &[&str]) -> bool {
    value.as_object().is_some_and(|map| {
        map.len() == keys.len() && map.keys().all(|key| keys.contains(&key.as_str()))
    })
}

/// The files a configuration names, by dotted key.
pub(super) fn named_files(config: &ComponentConfig) -> Vec<(&'static str, &str)> {
    let keys: &[&'static str] = match config.kind {
        ComponentKind::Kubelet => &[
            "authentication.x509.clientCAFile",
            "tlsCertFile",
            "tlsPrivateKeyFile",
        ],
        ComponentKind::KubeProxy => &["clientConnection.kubeconfig"],
    };
    keys.iter()
        .filter_map(|key| Some((*key, config.text(key)?)))
        .collect()
}

fn config_findings(config: &ComponentConfig) -> Vec<Diagnostic> {
    let help = "restore the file cpgen wrote (build the bundle again)";
    let (keys, guards, kind): (&[&str], &[Guard], &str) = match config.kind {
        ComponentKind::Kubelet => (KUBELET_KEYS, &KUBELET_GUARDS[..], "KubeletConfiguration"),
        ComponentKind::KubeProxy => (
            KUBE_PROXY_KEYS,
            &KUBE_PROXY_GUARDS[..],
            "KubeProxyConfiguration",
        ),
    };
    let mut found = Vec::new();
    let Some(map) = config.value.as_object() else {
        return vec![unsafe_setting(
            &config.path,
            format!("not a {kind}: the program reads no settings from it"),
            help,
        )];
    };
    for key in map.keys().filter(|key| !keys.contains(&key.as_str())) {
        found.push(unsafe_setting(
            &config.path,
            format!("{key}: a {kind} setting cpgen does not write; it can change who reaches the node or what runs there"),
            help,
        ));
    }
    for (key, holds, risk) in guards {
        let value = config.get(key);
        if !value.is_some_and(holds) {
            let written = value.map_or_else(|| "missing".to_owned(), |v| format!("{v}"));
            found.push(unsafe_setting(
                &config.path,
                format!("{key} is {written}: {risk}"),
                help,
            ));
        }
    }
    found
}

/// The control plane's taint, which every master that is a node registers with and no
/// other node does.
fn control_plane_taint() -> Value {
    serde_json::json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}])
}

/// What ties a node's files to the node: the kubelet and kube-proxy name the host, listen on
/// the address the kubelet registers, read the files cpgen writes for them, and a master
/// (and only a master) registers with the control plane's taint.
fn node_identity_findings(host: &HostModel) -> Vec<Diagnostic> {
    let help = "restore the file cpgen wrote (build the bundle again)";
    let mut found = Vec::new();
    let mut expect = |file: &str, what: String, ok: bool, risk: &str| {
        if !ok {
            found.push(unsafe_setting(file, format!("{what}: {risk}"), help));
        }
    };
    let master = host.unit("etcd").is_some() || host.unit("kube-apiserver").is_some();
    let kubelet_unit = host.unit("kubelet");
    if let Some(unit) = kubelet_unit {
        for (flag, path) in [
            ("config", KUBELET_CONFIG),
            ("kubeconfig", KUBELET_KUBECONFIG),
        ] {
            if let Some(value) = unit.flag(flag) {
                expect(
                    &unit.file,
                    format!("--{flag}={value}"),
                    value == path,
                    &format!("the kubelet reads another file than {path}, which verify audits"),
                );
            }
        }
        let name = unit.flag("hostname-override");
        expect(
            &unit.file,
            format!("--hostname-override={}", name.unwrap_or("(missing)")),
            name == Some(host.name.as_str()),
            "the kubelet registers as another node than this host (without the flag, as the machine's hostname, which its certificate need not name)",
        );
    }
    if let Some(unit) = host.unit("kube-proxy") {
        if let Some(value) = unit.flag("config") {
            expect(
                &unit.file,
                format!("--config={value}"),
                value == KUBE_PROXY_CONFIG,
                "kube-proxy reads another file than the one verify audits",
            );
        }
    }
    for config in &host.component_configs {
        match config.kind {
            ComponentKind::Kubelet => {
                let address = config.text("address");
                let node_ip = kubelet_unit.and_then(|u| u.flag("node-ip"));
                expect(
                    &config.path,
                    format!("address is {}", address.unwrap_or("missing")),
                    address.is_some() && address == node_ip,
                    "the kubelet listens elsewhere than the address it registers (--node-ip)",
                );
                let taint = config.get("registerWithTaints");
                let tainted = taint == Some(&control_plane_taint());
                if master {
                    expect(
                        &config.path,
                        "registerWithTaints is not the control plane's NoSchedule taint".to_owned(),
                        tainted,
                        "any pod may run on this master",
                    );
                } else {
                    expect(
                        &config.path,
                        "registerWithTaints on a worker".to_owned(),
                        taint.is_none(),
                        "cpgen writes no taint for workers",
                    );
                }
            }
            ComponentKind::KubeProxy => {
                let name = config.text("hostnameOverride");
                expect(
                    &config.path,
                    format!("hostnameOverride is {}", name.unwrap_or("missing")),
                    name == Some(host.name.as_str()),
                    "kube-proxy serves another node's services",
                );
            }
        }
    }
    found
}

impl Audit<'_> {
    /// Every node configuration file, checked for what would open its node, and each node's
    /// files for what ties them to it.
    pub(super) fn node_settings(&mut self) {
        let mut found: Vec<Diagnostic> = self
            .hosts
            .iter()
            .flat_map(|host| &host.component_configs)
            .flat_map(config_findings)
            .collect();
        for host in self.hosts {
            found.extend(node_identity_findings(host));
        }
        self.findings.extend(found);
    }
}
