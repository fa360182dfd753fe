//! The nodes' kubelet and kube-proxy configuration files: the settings that keep a
//! kubelet's API closed to strangers, no key cpgen does not write, and the files they name.

use serde_json::Value;

use crate::diag::Diagnostic;
use crate::verify::model::{ComponentConfig, ComponentKind};

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
const KUBELET_GUARDS: [Guard; 5] = [
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
];

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
        ComponentKind::KubeProxy => (KUBE_PROXY_KEYS, &[][..], "KubeProxyConfiguration"),
    };
    let mut found = Vec::new();
    let Some(map) = config.value.as_object() else {
        return vec![unsafe_setting(
            &config.path,
            format!("not a {kind}: the program reads no settings from it"),
            help,
        )];
    };
    if config.kind == ComponentKind::KubeProxy && config.text("kind") != Some(kind) {
        found.push(unsafe_setting(
            &config.path,
            format!("kind is not {kind}"),
            help,
        ));
    }
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

impl Audit<'_> {
    /// Every node configuration file, checked for what would open its node.
    pub(super) fn node_settings(&mut self) {
        let found: Vec<Diagnostic> = self
            .hosts
            .iter()
            .flat_map(|host| &host.component_configs)
            .flat_map(config_findings)
            .collect();
        self.findings.extend(found);
    }
}
