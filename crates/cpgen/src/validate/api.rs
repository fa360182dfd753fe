//! The `[api]` section: the endpoint clients dial (or what it defaults to), extra SANs, admission
//! plugins and authorization modes.

use std::net::IpAddr;

use crate::diag::{did_you_mean, Code, Diagnostic};
use crate::kubernetes::{self, AUTHORIZATION_MODES};
use crate::plan::LoadBalancerMode;
use crate::spec::{defaults, ApiSpec};
use crate::types::{HostAddress, KubernetesVersion, San};

use super::{Draft, DraftHost, Rules};

impl Rules<'_> {
    pub(super) fn endpoint(
        &mut self,
        api: &ApiSpec,
        mode: Option<LoadBalancerMode>,
        vip: Option<HostAddress>,
        lb_hosts: &[DraftHost],
        masters: &[DraftHost],
    ) -> Option<San> {
        if let Some(endpoint) = &api.endpoint {
            let given = endpoint.trim();
            let at = self.origins.get("api.endpoint");
            return match given.parse::<San>() {
                Ok(San::Dns(name)) if name.is_wildcard() => {
                    self.push(
                        Diagnostic::error(Code::InvalidSan, format!("`{given}` cannot be the API endpoint: clients dial one name, not a wildcard"))
                            .at(at, "wildcard")
                            .help("give the name clients dial; wildcards belong in api.extra_sans"),
                    );
                    None
                }
                Ok(San::Ip(ip)) if ip.is_unspecified() || ip.is_multicast() => {
                    self.push(
                        Diagnostic::error(Code::InvalidSan, format!("`{given}` cannot be the API endpoint: no client can dial it"))
                            .at(at, "not a unicast address")
                            .help("give the address or DNS name of the load balancer, the VIP or a master"),
                    );
                    None
                }
                Ok(san) => Some(san),
                Err(e) => {
                    let help = if given.contains("://")
                        || (given.contains(':') && given.parse::<IpAddr>().is_err())
                    {
                        "give only the host clients dial, e.g. \"kubernetes\" or \"10.10.10.2\"; the port is `api.port`".to_owned()
                    } else {
                        format!("clients must dial an IP address or a DNS name a certificate can carry ({e})")
                    };
                    self.push(
                        Diagnostic::error(
                            Code::InvalidSan,
                            format!("`{given}` cannot be the API endpoint"),
                        )
                        .at(at, "not an address or DNS name")
                        .help(help),
                    );
                    None
                }
            };
        }
        if let Some(vip) = vip {
            return Some(San::Ip(vip.ip()));
        }
        let (fallback, why) = match (mode?, lb_hosts.first()) {
            (LoadBalancerMode::External, Some(lb)) if lb_hosts.len() == 1 => {
                return lb.address.map(|a| San::Ip(a.ip()))
            }
            (LoadBalancerMode::External, Some(lb)) => (
                lb,
                "clients will dial the first of several load balancers only",
            ),
            (LoadBalancerMode::External, None) => (
                masters.first()?,
                "there is no load balancer, so clients will dial the first master only",
            ),
            (LoadBalancerMode::OnMasters, _) => (
                masters.first()?,
                "there is no virtual IP, so clients will dial the HAProxy on the first master only",
            ),
        };
        // A default is no finding of its own when what was written instead had the wrong type.
        let written = ["api.endpoint", "load_balancer"];
        if !written
            .iter()
            .any(|path| self.origins.wrong_typed_within(path))
        {
            self.push(
                Diagnostic::warning(Code::NoLoadBalancer, format!("the API endpoint is not highly available: {why}"))
                    .at(fallback.span.clone(), "the API endpoint defaults to this host")
                    .help("set `api.endpoint` to a name that resolves to every load balancer, or use mode = \"on-masters\" with a `vip`"),
            );
        }
        fallback.address.map(|a| San::Ip(a.ip()))
    }

    /// `list`, given at `path` (`api.extra_sans`, `etcd.extra_sans`), as SANs.
    pub(super) fn extra_sans(
        &mut self,
        path: &str,
        list: &Option<Vec<String>>,
    ) -> Option<Vec<San>> {
        let mut sans = Vec::new();
        let mut ok = true;
        for (i, given) in list.iter().flatten().enumerate() {
            match given.parse::<San>() {
                Ok(san) => sans.push(san),
                Err(e) => {
                    ok = false;
                    self.push(
                        Diagnostic::error(
                            Code::InvalidSan,
                            format!("`{given}` cannot be a subjectAltName: {e}"),
                        )
                        .at(self.origins.get(&format!("{path}[{i}]")), "invalid SAN")
                        .help("give an IP address or a DNS name (a leading `*.` is allowed)"),
                    );
                }
            }
        }
        ok.then_some(sans)
    }

    pub(super) fn admission_plugins(
        &mut self,
        list: &Option<Vec<String>>,
        version: Option<KubernetesVersion>,
    ) -> Vec<String> {
        let Some(list) = list else {
            return defaults::ADMISSION_PLUGINS
                .iter()
                .map(|p| p.to_string())
                .collect();
        };
        let minor = version
            .unwrap_or(KubernetesVersion::new(defaults::KUBERNETES_MINOR))
            .minor();
        for (i, name) in list.iter().enumerate() {
            if let Some(why) = unusable_plugin(name) {
                self.push(
                    Diagnostic::error(
                        Code::UnknownAdmissionPlugin,
                        format!("admission plugin {name} {why}"),
                    )
                    .at(
                        self.origins.get(&format!("api.admission_plugins[{i}]")),
                        "unusable here",
                    )
                    .help("remove it"),
                );
                continue;
            }
            let problem = match kubernetes::admission_plugin(name) {
                Some(p) if p.exists_in(minor) => continue,
                Some(p) => match p.removed_in {
                    Some(removed) if minor >= removed => format!("admission plugin {name} was removed in Kubernetes 1.{removed}"),
                    _ => format!("admission plugin {name} does not exist yet in Kubernetes 1.{minor} (it came in 1.{})", p.since),
                },
                None => format!("`{name}` is not a kube-apiserver admission plugin"),
            };
            let known = kubernetes::ADMISSION_PLUGINS
                .iter()
                .filter(|p| p.exists_in(minor))
                .map(|p| p.name);
            let help = did_you_mean(name, known).map_or_else(
                || {
                    "remove it; see `kube-apiserver --help` for the plugins of your release"
                        .to_owned()
                },
                |s| format!("did you mean {s}?"),
            );
            self.push(
                Diagnostic::error(Code::UnknownAdmissionPlugin, problem)
                    .at(
                        self.origins.get(&format!("api.admission_plugins[{i}]")),
                        "unknown plugin",
                    )
                    .help(help),
            );
        }
        list.clone()
    }

    pub(super) fn authorization_modes(&mut self, list: &Option<Vec<String>>) -> Vec<String> {
        let Some(list) = list else {
            return defaults::AUTHORIZATION_MODES
                .iter()
                .map(|m| m.to_string())
                .collect();
        };
        for (i, mode) in list.iter().enumerate() {
            let mode = mode.as_str();
            if let Some(why) = unusable_mode(mode) {
                self.push(
                    Diagnostic::error(
                        Code::UnknownAuthorizationMode,
                        format!("authorization mode {mode} {why}"),
                    )
                    .at(
                        self.origins.get(&format!("api.authorization_modes[{i}]")),
                        "unusable here",
                    )
                    .help("use [\"Node\", \"RBAC\"]"),
                );
                continue;
            }
            if !AUTHORIZATION_MODES.contains(&mode) {
                let help = did_you_mean(mode, AUTHORIZATION_MODES.iter().copied()).map_or_else(
                    || format!("use some of: {}", AUTHORIZATION_MODES.join(", ")),
                    |s| format!("did you mean {s}?"),
                );
                self.push(
                    Diagnostic::error(
                        Code::UnknownAuthorizationMode,
                        format!("`{mode}` is not an authorization mode"),
                    )
                    .at(
                        self.origins.get(&format!("api.authorization_modes[{i}]")),
                        "unknown mode",
                    )
                    .help(help),
                );
            }
        }
        if list.is_empty() {
            self.push(
                Diagnostic::error(
                    Code::UnknownAuthorizationMode,
                    "no authorization mode given",
                )
                .at(self.origins.get("api.authorization_modes"), "empty list")
                .help("use [\"Node\", \"RBAC\"]"),
            );
        }
        list.clone()
    }
}

/// Why a known authorization mode cannot be in a cluster cpgen builds: it opens or closes
/// everything, or needs a file cpgen does not write (kube-apiserver would not start).
pub(crate) fn unusable_mode(mode: &str) -> Option<&'static str> {
    match mode {
        "AlwaysAllow" => Some("allows every authenticated request (verify refuses such a bundle)"),
        "AlwaysDeny" => Some("denies every request, the control plane's own too"),
        "ABAC" => Some("needs --authorization-policy-file, which cpgen does not write: kube-apiserver would not start"),
        "Webhook" => Some("needs --authorization-webhook-config-file, which cpgen does not write: kube-apiserver would not start"),
        _ => None,
    }
}

/// Why a known admission plugin cannot be in a cluster cpgen builds.
pub(crate) fn unusable_plugin(name: &str) -> Option<&'static str> {
    match name {
        "AlwaysDeny" => Some("rejects every request, the control plane's own too"),
        "EventRateLimit" | "ImagePolicyWebhook" => Some("needs its configuration in --admission-control-config-file, which cpgen does not write: kube-apiserver would not start"),
        _ => None,
    }
}

/// The admission plugins that call webhooks, which usually run as pods.
const WEBHOOK_PLUGINS: [&str; 2] = ["MutatingAdmissionWebhook", "ValidatingAdmissionWebhook"];

impl Rules<'_> {
    /// A webhook the config asks for runs in the pod network as a rule, which a master that
    /// is no node (no kubelet, kube-proxy or CNI) has no route into. Both plugins are on in
    /// every kube-apiserver unless disabled, so only a config that names them hears this.
    pub(super) fn webhooks_reachable(&mut self, draft: &Draft) {
        // A `workloads` of the wrong type has its own finding; its default says nothing.
        if draft.workloads_on_masters || self.origins.wrong_typed_within("control_plane.workloads")
        {
            return;
        }
        let asked = draft
            .admission_plugins
            .iter()
            .position(|name| WEBHOOK_PLUGINS.contains(&name.as_str()));
        let Some(i) = asked else {
            return;
        };
        self.push(
            Diagnostic::warning(
                Code::WebhooksUnreachable,
                format!(
                    "{} calls webhooks, which run as pods, but the masters are not nodes: kube-apiserver has no route into the pod network",
                    draft.admission_plugins[i]
                ),
            )
            .at(
                self.origins.get(&format!("api.admission_plugins[{i}]")),
                "needs the pod network",
            )
            .also(self.origins.get("control_plane.workloads"), "masters are not nodes")
            .help("set `workloads = true` under [control_plane] (kubelet and kube-proxy on the masters, tainted NoSchedule), or serve the webhooks from host-network pods or outside the cluster"),
        );
    }
}
