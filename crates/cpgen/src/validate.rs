//! The rules of DESIGN.md §4: a [`ClusterSpec`] in (parsed from `cluster.toml` or built in
//! code), a [`Plan`] out — or every finding at once. Findings point through the origins of
//! the values: at the text a value was parsed from, or at the path of a field set in code.
//! Each value is first parsed on its own (so one bad value never hides another), then the
//! cross-cutting rules run on whatever parsed, and the plan is assembled only when no error
//! was found.

use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;

use camino::Utf8PathBuf;
use sha2::{Digest, Sha256};

use crate::diag::{did_you_mean, Code, Diagnostic, Location, Report, Severity};
use crate::kubernetes::{self, AUTHORIZATION_MODES};
use crate::plan::{
    master_listeners, uncovered_dials, Api, Choice, ClusterSettings, Component, ComponentsVia,
    Etcd, HealthCheck, Host, Listener, LoadBalancer, LoadBalancerMode, MasterPorts, Network,
    Origin, Pki, PkiLayout, Plan,
};
use crate::spec::{
    defaults, ApiSpec, ClusterSpec, EtcdSpec, HostSpec, LoadBalancerSpec, NetworkSpec, Origins,
};
use crate::types::{
    Cidr, DnsName, HostAddress, HostName, KeyAlgorithm, KubernetesVersion, NameError, Port,
    PortRange, San, ValidityDays,
};
use crate::{Config, Error};

/// Where a value came from, if it was given: see [`Origins`].
type Span = Option<Location>;

/// What a report on a spec built in code names as its source.
const SPEC_SOURCE_NAME: &str = "cluster spec";

/// A valid configuration: the plan, and the warnings (if any) found on the way.
#[derive(Debug)]
pub struct Checked {
    /// The resolved cluster.
    pub plan: Plan,
    /// Warnings only; empty when the configuration is clean.
    pub report: Report,
}

impl Config {
    /// Applies every rule. `Ok` when no finding is an error (warnings ride along in
    /// [`Checked::report`]); otherwise [`Error::Invalid`] with every finding.
    pub fn validate(&self) -> Result<Checked, Error> {
        validate(self)
    }
}

impl ClusterSpec {
    /// Applies every rule, the same as for a `cluster.toml` ([`Config::validate`]); findings
    /// point at field paths (`masters[1].address`). The plan has no `config_sha256`, as no
    /// file was read.
    pub fn validate(&self) -> Result<Checked, Error> {
        let origins = Origins::of_code(self);
        let (findings, plan) = check(self, &origins, Vec::new());
        checked(Report::new(SPEC_SOURCE_NAME, "", findings), plan)
    }
}

/// See [`Config::validate`].
pub fn validate(config: &Config) -> Result<Checked, Error> {
    let (spec, origins) = config.spec_and_origins();
    let (findings, plan) = check(&spec, &origins, config.parse_findings().to_vec());
    let plan = plan.map(|plan| Plan {
        config_sha256: Some(Sha256::digest(config.source()).into()),
        ..plan
    });
    checked(
        Report::new(config.source_name(), config.source(), findings),
        plan,
    )
}

/// Every finding about `spec`, after those already made (`findings`), and the plan when
/// none of them is an error.
fn check(
    spec: &ClusterSpec,
    origins: &Origins,
    findings: Vec<Diagnostic>,
) -> (Vec<Diagnostic>, Option<Plan>) {
    let mut rules = Rules { findings, origins };
    let draft = rules.draft(spec);
    rules.cross_check(&draft);
    let plan = if rules.has_errors() {
        None
    } else {
        draft.assemble()
    };
    if let Some(plan) = &plan {
        rules.check_san_coverage(plan);
    }
    (rules.findings, plan)
}

fn checked(report: Report, plan: Option<Plan>) -> Result<Checked, Error> {
    match plan {
        Some(plan) if !report.has_errors() => Ok(Checked { plan, report }),
        _ => Err(Error::Invalid(Box::new(report))),
    }
}

/// The most etcd members cpgen plans: etcd's guidance is 3, 5 or 7, and past 9 every
/// write waits on so many that the cluster gets slower and no safer.
const MAX_ETCD_MEMBERS: usize = 9;

struct Rules<'o> {
    findings: Vec<Diagnostic>,
    /// Where each value was given, and which were left out for their type.
    origins: &'o Origins,
}

/// Which list a host was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostKind {
    Master,
    LoadBalancer,
    Worker,
}

impl HostKind {
    fn table(self) -> &'static str {
        match self {
            HostKind::Master => "[[masters]]",
            HostKind::LoadBalancer => "[[load_balancer.hosts]]",
            HostKind::Worker => "[[workers]]",
        }
    }

    fn key(self) -> &'static str {
        match self {
            HostKind::Master => "masters",
            HostKind::LoadBalancer => "load_balancer.hosts",
            HostKind::Worker => "workers",
        }
    }
}

/// A host as far as it parsed.
struct DraftHost {
    kind: HostKind,
    name: Option<HostName>,
    address: Option<HostAddress>,
    span: Span,
    name_span: Span,
    address_span: Span,
}

/// Every value, parsed on its own; `None` where parsing failed (and a finding says why).
struct Draft {
    cluster_name: Option<DnsName>,
    version: Option<KubernetesVersion>,
    dns_domain: Option<DnsName>,
    service_cidr: Option<Cidr>,
    pod_cidr: Option<Cidr>,
    node_port_range: Option<PortRange>,
    host_cidrs: Vec<(Cidr, Span)>,
    endpoint: Option<San>,
    api_port: Option<Port>,
    api_bind_port: Option<Port>,
    extra_sans: Option<Vec<San>>,
    components_via: Option<ComponentsVia>,
    admission_plugins: Vec<String>,
    authorization_modes: Vec<String>,
    masters: Vec<DraftHost>,
    lb_hosts: Vec<DraftHost>,
    workers: Vec<DraftHost>,
    lb_mode: Option<LoadBalancerMode>,
    lb_bind_port: Option<Port>,
    health_check: Option<HealthCheck>,
    vip: Option<Option<HostAddress>>,
    vip_span: Span,
    vip_interface: Option<String>,
    etcd_client_port: Option<Port>,
    etcd_peer_port: Option<Port>,
    cluster_token: Option<String>,
    data_dir: Option<Utf8PathBuf>,
    key_algorithm: Option<KeyAlgorithm>,
    sa_key_algorithm: Option<KeyAlgorithm>,
    ca_validity: Option<ValidityDays>,
    cert_validity: Option<ValidityDays>,
    layout: Option<PkiLayout>,
}

impl Rules<'_> {
    fn push(&mut self, diagnostic: Diagnostic) {
        self.findings.push(diagnostic);
    }

    fn has_errors(&self) -> bool {
        self.findings.iter().any(|d| d.severity == Severity::Error)
    }

    /// Parses a text value, or takes `default` when the key is absent.
    fn text<T: FromStr>(
        &mut self,
        path: &str,
        value: &Option<String>,
        default: Option<T>,
        code: Code,
        help: &str,
    ) -> Option<T>
    where
        T::Err: std::fmt::Display,
    {
        match value {
            Some(value) => self.parse_at(path, value, code, help),
            None => default,
        }
    }

    fn parse_at<T: FromStr>(&mut self, path: &str, value: &str, code: Code, help: &str) -> Option<T>
    where
        T::Err: std::fmt::Display,
    {
        match value.trim().parse::<T>() {
            Ok(parsed) => Some(parsed),
            Err(e) => {
                self.push(
                    Diagnostic::error(code, e.to_string())
                        .at(self.origins.get(path), "invalid value")
                        .help(help),
                );
                None
            }
        }
    }

    fn port(&mut self, path: &str, value: Option<i64>, default: u16) -> Option<Port> {
        let Some(value) = value else {
            return Port::new(default);
        };
        match Port::try_from(value) {
            Ok(port) => Some(port),
            Err(e) => {
                self.push(
                    Diagnostic::error(Code::InvalidPort, e.to_string())
                        .at(self.origins.get(path), "not a port")
                        .help("use a port from 1 to 65535"),
                );
                None
            }
        }
    }

    /// One of `T`'s spellings at `key`, or `default` (a spelling too) when not given.
    fn choice<T: Choice>(&mut self, key: &str, value: &Option<String>, default: &str) -> Option<T> {
        let given = value.as_deref().unwrap_or(default);
        if let Some((_, v)) = T::ALL.iter().find(|(name, _)| *name == given) {
            return Some(*v);
        }
        let names: Vec<&str> = T::ALL.iter().map(|(name, _)| *name).collect();
        let help = match did_you_mean(given, names.iter().copied()) {
            Some(s) => format!("did you mean \"{s}\"?"),
            None => format!("use one of: {}", quoted(&names)),
        };
        self.push(
            Diagnostic::error(
                Code::UnknownValue,
                format!("`{given}` is not a valid `{key}`"),
            )
            .at(self.origins.get(key), "unknown value")
            .help(help),
        );
        None
    }

    fn validity(&mut self, path: &str, value: Option<i64>, default: i64) -> Option<ValidityDays> {
        let n = value.unwrap_or(default);
        match ValidityDays::try_from(n) {
            Ok(days) => Some(days),
            Err(e) => {
                self.push(
                    Diagnostic::error(Code::InvalidValidity, e.to_string())
                        .at(self.origins.get(path), "invalid validity"),
                );
                None
            }
        }
    }

    fn draft(&mut self, spec: &ClusterSpec) -> Draft {
        let masters = self.hosts(&spec.masters, HostKind::Master);
        let workers = self.hosts(&spec.workers, HostKind::Worker);
        let lb = &spec.load_balancer;
        let lb_hosts = self.hosts(&lb.hosts, HostKind::LoadBalancer);
        let cluster = &spec.cluster;
        let name_help = "names are DNS-1123: lowercase letters, digits, `-` and `.`";
        let cluster_name = self.text(
            "cluster.name",
            &cluster.name,
            defaults::CLUSTER_NAME.parse().ok(),
            Code::InvalidName,
            name_help,
        );
        let version = self.version(&cluster.kubernetes_version);
        let dns_domain = self.text(
            "cluster.dns_domain",
            &cluster.dns_domain,
            defaults::DNS_DOMAIN.parse().ok(),
            Code::InvalidName,
            name_help,
        );
        let ipv6 = masters
            .iter()
            .find_map(|m| m.address)
            .is_some_and(|a| a.ip().is_ipv6());
        let (service_cidr, pod_cidr, node_port_range, host_cidrs) =
            self.network(&spec.network, ipv6);
        let lb_mode = self.choice("load_balancer.mode", &lb.mode, defaults::LB_MODE);
        let lb_bind_default = if lb_mode == Some(LoadBalancerMode::OnMasters) {
            defaults::LB_BIND_PORT_ON_MASTERS
        } else {
            defaults::LB_BIND_PORT_EXTERNAL
        };
        let lb_bind_port = self.port("load_balancer.bind_port", lb.bind_port, lb_bind_default);
        let health_check = self.choice(
            "load_balancer.health_check",
            &lb.health_check,
            defaults::HEALTH_CHECK,
        );
        let vip = self.vip(lb);
        let api = &spec.api;
        let api_bind_port = self.port("api.bind_port", api.bind_port, defaults::API_BIND_PORT);
        let has_balancer = lb_mode == Some(LoadBalancerMode::OnMasters) || !lb_hosts.is_empty();
        let api_port_default = if has_balancer {
            lb_bind_port
        } else {
            api_bind_port
        };
        let api_port = match api_port_default {
            Some(default) => self.port("api.port", api.port, default.get()),
            None => self.port("api.port", api.port, defaults::API_BIND_PORT),
        };
        let endpoint = self.endpoint(api, lb_mode, vip.flatten(), &lb_hosts, &masters);
        let etcd = &spec.etcd;
        let pki = &spec.pki;
        let key_algorithm = self.key_algorithm(
            "pki.key_algorithm",
            &pki.key_algorithm,
            defaults::KEY_ALGORITHM.parse().ok(),
        );
        let cluster_token = self.cluster_token(etcd, cluster_name.as_ref());
        let sa_key_algorithm = match key_algorithm {
            Some(alg) => self.key_algorithm(
                "pki.service_account_key_algorithm",
                &pki.service_account_key_algorithm,
                Some(alg),
            ),
            None => None,
        };
        Draft {
            cluster_name,
            version,
            dns_domain,
            service_cidr,
            pod_cidr,
            node_port_range,
            host_cidrs,
            endpoint,
            api_port,
            api_bind_port,
            extra_sans: self.extra_sans(&api.extra_sans),
            components_via: self.choice(
                "api.components_via",
                &api.components_via,
                defaults::COMPONENTS_VIA,
            ),
            admission_plugins: self.admission_plugins(&api.admission_plugins, version),
            authorization_modes: self.authorization_modes(&api.authorization_modes),
            masters,
            lb_hosts,
            workers,
            lb_mode,
            lb_bind_port,
            health_check,
            vip,
            vip_span: self.origins.get("load_balancer.vip"),
            vip_interface: self.vip_interface(&lb.vip_interface),
            etcd_client_port: self.port(
                "etcd.client_port",
                etcd.client_port,
                defaults::ETCD_CLIENT_PORT,
            ),
            etcd_peer_port: self.port("etcd.peer_port", etcd.peer_port, defaults::ETCD_PEER_PORT),
            cluster_token,
            data_dir: self.data_dir(&etcd.data_dir),
            key_algorithm,
            sa_key_algorithm,
            ca_validity: self.validity(
                "pki.ca_validity_days",
                pki.ca_validity_days,
                defaults::CA_VALIDITY_DAYS,
            ),
            cert_validity: self.validity(
                "pki.cert_validity_days",
                pki.cert_validity_days,
                defaults::CERT_VALIDITY_DAYS,
            ),
            layout: self.choice("pki.layout", &pki.layout, defaults::PKI_LAYOUT),
        }
    }

    fn hosts(&mut self, hosts: &[HostSpec], kind: HostKind) -> Vec<DraftHost> {
        let entries = hosts.iter().enumerate();
        entries.map(|(i, host)| self.host(host, kind, i)).collect()
    }

    fn host(&mut self, host: &HostSpec, kind: HostKind, index: usize) -> DraftHost {
        let entry = format!("{}[{index}]", kind.key());
        let at = |key: &str| format!("{entry}.{key}");
        for (key, value) in [("name", &host.name), ("address", &host.address)] {
            // Dropped values are recorded by their index in the list as kept.
            let dropped = format!("{}.{index}.{key}", kind.key());
            if value.is_none() && !self.origins.wrong_typed_within(&dropped) {
                self.push(
                    Diagnostic::error(
                        Code::MissingKey,
                        format!("this {} entry has no `{key}`", kind.table()),
                    )
                    .at(self.origins.get(&entry), format!("`{key}` missing"))
                    .help(format!("add `{key} = \"...\"` to the entry")),
                );
            }
        }
        let name = host
            .name
            .as_ref()
            .and_then(|name| self.host_name(&at("name"), name));
        let address = host.address.as_ref().and_then(|address| {
            address
                .parse::<HostAddress>()
                .map_err(|e| {
                    self.push(
                        Diagnostic::error(Code::InvalidAddress, e.to_string())
                            .at(self.origins.get(&at("address")), "not a machine address")
                            .help("give the machine's IPv4 or IPv6 address, e.g. \"10.10.10.80\""),
                    )
                })
                .ok()
        });
        DraftHost {
            kind,
            name,
            address,
            span: self.origins.get(&entry),
            name_span: self.origins.get(&at("name")),
            address_span: self.origins.get(&at("address")),
        }
    }

    fn host_name(&mut self, path: &str, name: &str) -> Option<HostName> {
        match name.parse::<HostName>() {
            Ok(parsed) => Some(parsed),
            Err(e) => {
                let lower = name.to_ascii_lowercase().replace('_', "-");
                let help = match (&e, lower.parse::<HostName>()) {
                    (NameError::BadChar(_), Ok(fixed)) => format!("did you mean \"{fixed}\"?"),
                    _ => "host names are DNS-1123: lowercase letters, digits, `-` and `.`, at most 63 characters between dots".to_owned(),
                };
                self.push(
                    Diagnostic::error(
                        Code::InvalidName,
                        format!("`{name}` is not a valid host name: {e}"),
                    )
                    .at(self.origins.get(path), "invalid host name")
                    .help(help),
                );
                None
            }
        }
    }

    fn version(&mut self, value: &Option<String>) -> Option<KubernetesVersion> {
        let path = "cluster.kubernetes_version";
        let range = format!(
            "{} to {}",
            KubernetesVersion::OLDEST,
            KubernetesVersion::NEWEST
        );
        let version = self.text(
            path,
            value,
            Some(KubernetesVersion::new(defaults::KUBERNETES_MINOR)),
            Code::UnsupportedVersion,
            &format!("cpgen supports Kubernetes {range}"),
        )?;
        if !version.is_supported() {
            self.push(
                Diagnostic::error(
                    Code::UnsupportedVersion,
                    format!("Kubernetes {version} is not supported"),
                )
                .at(self.origins.get(path), "unsupported version")
                .help(format!(
                    "cpgen emits flags for Kubernetes {range}; choose one of those"
                )),
            );
            return None;
        }
        Some(version)
    }

    #[allow(clippy::type_complexity)]
    fn network(
        &mut self,
        network: &NetworkSpec,
        ipv6: bool,
    ) -> (
        Option<Cidr>,
        Option<Cidr>,
        Option<PortRange>,
        Vec<(Cidr, Span)>,
    ) {
        let help =
            "write a network address and prefix, e.g. \"10.32.0.0/16\" or \"fd00:10:32::/108\"";
        let (service_default, pod_default) = if ipv6 {
            (defaults::SERVICE_CIDR_V6, defaults::POD_CIDR_V6)
        } else {
            (defaults::SERVICE_CIDR_V4, defaults::POD_CIDR_V4)
        };
        let service = self.text(
            "network.service_cidr",
            &network.service_cidr,
            service_default.parse().ok(),
            Code::InvalidCidr,
            help,
        );
        let pod = self.text(
            "network.pod_cidr",
            &network.pod_cidr,
            pod_default.parse().ok(),
            Code::InvalidCidr,
            help,
        );
        let node_ports = self.text(
            "network.node_port_range",
            &network.node_port_range,
            defaults::NODE_PORT_RANGE.parse().ok(),
            Code::InvalidPortRange,
            "write LOW-HIGH, e.g. \"30000-32767\"",
        );
        let host_cidrs = network
            .host_cidrs
            .iter()
            .flatten()
            .enumerate()
            .filter_map(|(i, c)| {
                let path = format!("network.host_cidrs[{i}]");
                let cidr = self.parse_at(&path, c, Code::InvalidCidr, help)?;
                Some((cidr, self.origins.get(&path)))
            })
            .collect();
        if let Some(service) = service {
            self.service_cidr_size(service, self.origins.get("network.service_cidr"));
        }
        (service, pod, node_ports, host_cidrs)
    }

    fn service_cidr_size(&mut self, service: Cidr, at: Span) {
        let prefix = service.net().prefix_len();
        let (largest, smallest) = if service.is_ipv6() {
            (108, 125)
        } else {
            (12, 29)
        };
        let problem = if prefix < largest {
            format!(
                "service CIDR {service} is too large: kube-apiserver accepts at most /{largest}"
            )
        } else if prefix > smallest {
            format!("service CIDR {service} is too small to hold the service IPs")
        } else {
            return;
        };
        self.push(
            Diagnostic::error(Code::ServiceCidrSize, problem)
                .at(at, "service CIDR")
                .help(format!("use a prefix from /{largest} to /{smallest}")),
        );
    }

    fn vip(&mut self, lb: &LoadBalancerSpec) -> Option<Option<HostAddress>> {
        match &lb.vip {
            Some(vip) if !vip.trim().is_empty() => self
                .parse_at(
                    "load_balancer.vip",
                    vip,
                    Code::InvalidAddress,
                    "give a free address in the masters' network, e.g. \"10.10.10.100\"",
                )
                .map(Some),
            _ => Some(None),
        }
    }

    /// A Linux interface name: 1 to 15 characters, no `/`, whitespace or `%`.
    fn vip_interface(&mut self, value: &Option<String>) -> Option<String> {
        let name = value.as_deref().unwrap_or(defaults::VIP_INTERFACE);
        let valid = (1..=15).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b));
        if valid {
            return Some(name.to_owned());
        }
        self.push(
            Diagnostic::error(Code::InvalidInterface, format!("`{name}` is not a network interface name"))
                .at(self.origins.get("load_balancer.vip_interface"), "invalid interface")
                .help("give the masters' interface that carries their address, e.g. \"eth0\" or \"ens3\" (at most 15 characters)"),
        );
        None
    }

    fn endpoint(
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

    fn extra_sans(&mut self, list: &Option<Vec<String>>) -> Option<Vec<San>> {
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
                        .at(
                            self.origins.get(&format!("api.extra_sans[{i}]")),
                            "invalid SAN",
                        )
                        .help("give an IP address or a DNS name (a leading `*.` is allowed)"),
                    );
                }
            }
        }
        ok.then_some(sans)
    }

    fn admission_plugins(
        &mut self,
        list: &Option<Vec<String>>,
        version: Option<KubernetesVersion>,
    ) -> Vec<String> {
        let Some(list) = list else {
            return kubernetes::DEFAULT_ADMISSION_PLUGINS
                .iter()
                .map(|p| p.to_string())
                .collect();
        };
        let minor = version
            .unwrap_or(KubernetesVersion::new(defaults::KUBERNETES_MINOR))
            .minor();
        for (i, name) in list.iter().enumerate() {
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

    fn authorization_modes(&mut self, list: &Option<Vec<String>>) -> Vec<String> {
        let Some(list) = list else {
            return kubernetes::DEFAULT_AUTHORIZATION_MODES
                .iter()
                .map(|m| m.to_string())
                .collect();
        };
        for (i, mode) in list.iter().enumerate() {
            let mode = mode.as_str();
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

    fn cluster_token(&mut self, etcd: &EtcdSpec, cluster: Option<&DnsName>) -> Option<String> {
        match &etcd.initial_cluster_token {
            // It goes into etcd's unit, where systemd expands `%` and `$`: a plain word only.
            Some(token)
                if token.is_empty()
                    || !token
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) =>
            {
                self.push(
                    Diagnostic::error(
                        Code::EmptyClusterToken,
                        "the etcd initial cluster token must be a non-empty word of letters, digits, `.`, `_` and `-`",
                    )
                    .at(
                        self.origins.get("etcd.initial_cluster_token"),
                        "empty, or another character",
                    )
                    .help("use a name unique to this cluster, e.g. \"kubernetes-etcd\""),
                );
                None
            }
            Some(token) => Some(token.clone()),
            None => Some(format!(
                "{}{}",
                cluster.map_or(defaults::CLUSTER_NAME, DnsName::as_str),
                defaults::CLUSTER_TOKEN_SUFFIX
            )),
        }
    }

    fn data_dir(&mut self, value: &Option<String>) -> Option<Utf8PathBuf> {
        let dir = value.as_deref().unwrap_or(defaults::ETCD_DATA_DIR);
        let path = Utf8PathBuf::from(dir);
        // What the message promises, and nothing systemd would expand (`%h`, `$HOME`).
        let clean = path.is_absolute()
            && !path.components().any(|c| c.as_str() == "..")
            && dir
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
        if clean {
            return Some(path);
        }
        self.push(
            Diagnostic::error(
                Code::InvalidDataDir,
                format!(
                    "etcd data directory `{dir}` must be an absolute path of letters, digits, `/`, `.`, `_` and `-`, without `..`"
                ),
            )
            .at(self.origins.get("etcd.data_dir"), "invalid path")
            .help("use e.g. \"/var/lib/etcd\""),
        );
        None
    }

    fn key_algorithm(
        &mut self,
        path: &str,
        value: &Option<String>,
        default: Option<KeyAlgorithm>,
    ) -> Option<KeyAlgorithm> {
        let Some(given) = value else {
            return default;
        };
        match given.parse::<KeyAlgorithm>() {
            Ok(alg) => Some(alg),
            Err(e) => {
                let names = KeyAlgorithm::ALL.iter().map(|(n, _)| *n);
                let help = did_you_mean(given, names.clone()).map_or_else(
                    || format!("use one of: {}", quoted(&names.collect::<Vec<_>>())),
                    |s| format!("did you mean \"{s}\"?"),
                );
                self.push(
                    Diagnostic::error(Code::InvalidKeyAlgorithm, e.to_string())
                        .at(self.origins.get(path), "unknown algorithm")
                        .help(help),
                );
                None
            }
        }
    }
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Draft {
    fn hosts(&self) -> impl Iterator<Item = &DraftHost> {
        self.masters
            .iter()
            .chain(&self.lb_hosts)
            .chain(&self.workers)
    }

    fn master_ports(&self) -> Option<MasterPorts> {
        Some(MasterPorts {
            etcd_client: self.etcd_client_port?,
            etcd_peer: self.etcd_peer_port?,
            apiserver: self.api_bind_port?,
            haproxy: match self.lb_mode? {
                LoadBalancerMode::OnMasters => Some(self.lb_bind_port?),
                LoadBalancerMode::External => None,
            },
        })
    }

    /// The plan, if every value parsed.
    fn assemble(self) -> Option<Plan> {
        let hosts = |list: Vec<DraftHost>| -> Option<Vec<Host>> {
            list.into_iter()
                .map(|h| {
                    Some(Host {
                        name: h.name?,
                        address: h.address?,
                    })
                })
                .collect()
        };
        Some(Plan {
            config_sha256: None,
            cluster: ClusterSettings {
                name: self.cluster_name?,
                kubernetes_version: self.version?,
                dns_domain: self.dns_domain?,
            },
            network: Network {
                service_cidr: self.service_cidr?,
                pod_cidr: self.pod_cidr?,
                node_port_range: self.node_port_range?,
                host_cidrs: self.host_cidrs.into_iter().map(|(c, _)| c).collect(),
            },
            api: Api {
                endpoint: self.endpoint?,
                port: self.api_port?,
                bind_port: self.api_bind_port?,
                extra_sans: self.extra_sans?,
                components_via: self.components_via?,
                admission_plugins: self.admission_plugins,
                authorization_modes: self.authorization_modes,
            },
            masters: hosts(self.masters)?,
            load_balancer: LoadBalancer {
                mode: self.lb_mode?,
                bind_port: self.lb_bind_port?,
                health_check: self.health_check?,
                vip: self.vip?,
                vip_interface: self.vip_interface?,
                hosts: hosts(self.lb_hosts)?,
            },
            workers: hosts(self.workers)?,
            etcd: Etcd {
                client_port: self.etcd_client_port?,
                peer_port: self.etcd_peer_port?,
                initial_cluster_token: self.cluster_token?,
                data_dir: self.data_dir?,
            },
            pki: Pki {
                key_algorithm: self.key_algorithm?,
                service_account_key_algorithm: self.sa_key_algorithm?,
                ca_validity: self.ca_validity?,
                cert_validity: self.cert_validity?,
                layout: self.layout?,
            },
        })
    }
}

/// Cross-cutting rules: they compare values that each parsed on their own.
impl Rules<'_> {
    fn cross_check(&mut self, draft: &Draft) {
        self.etcd_members(draft);
        self.unique_hosts(draft);
        self.cidr_overlaps(draft);
        self.address_placement(draft);
        self.ip_families(draft);
        self.listener_collisions(draft);
        self.node_port_collisions(draft);
        self.load_balancer_shape(draft);
        self.endpoint_reaches_a_listener(draft);
        self.vip_network(draft);
        self.pki_rules(draft);
    }

    fn etcd_members(&mut self, draft: &Draft) {
        let n = draft.masters.len();
        // The count is at fault, not one entry: a file points at the last entry, code at
        // the list.
        let last = self.origins.get("masters");
        if n == 0 {
            // `[masters]` or `masters = 3` is reported as a wrong type, not as no masters.
            if !self.origins.wrong_typed_within("masters") {
                self.push(
                    Diagnostic::error(Code::NoMasters, "the cluster has no masters")
                        .at(Some(self.origins.absent("masters")), "no [[masters]] in this file")
                        .help("add a [[masters]] entry with `name` and `address` for each control-plane machine (3 for HA)"),
                );
            }
        } else if n > MAX_ETCD_MEMBERS {
            self.push(
                Diagnostic::error(
                    Code::TooManyEtcdMembers,
                    format!("{n} etcd members: past {MAX_ETCD_MEMBERS}, every write waits for so many of them ({} here) that the cluster gets slower and no safer", n / 2 + 1),
                )
                .at(last, format!("member {n} of {n}"))
                .help("use 3, 5 or 7 masters (etcd's guidance); more machines for the API belong in workers or behind the load balancer, not in etcd"),
            );
        } else if n.is_multiple_of(2) {
            let tolerance = (n - 1) / 2;
            self.push(
                Diagnostic::error(
                    Code::EvenEtcdMembers,
                    format!(
                        "even number of etcd members: {n} members need {} for quorum and tolerate {tolerance} failure{}, no more than {} member{} would",
                        n / 2 + 1,
                        if tolerance == 1 { "" } else { "s" },
                        n - 1,
                        if n - 1 == 1 { "" } else { "s" },
                    ),
                )
                .at(last, format!("member {n} of {n}"))
                .help(format!("use an odd number of masters: {} or {}", n - 1, n + 1)),
            );
        } else if n > 7 {
            self.push(
                Diagnostic::warning(
                    Code::LargeEtcdCluster,
                    format!(
                        "{n} etcd members: every write waits for {} of them",
                        n / 2 + 1
                    ),
                )
                .at(
                    last,
                    "beyond 7 members etcd gets slower without a practical gain",
                )
                .help("etcd recommends 3, 5 or 7 members"),
            );
        }
    }

    fn unique_hosts(&mut self, draft: &Draft) {
        let hosts: Vec<&DraftHost> = draft.hosts().collect();
        let mut names: HashMap<&HostName, &DraftHost> = HashMap::new();
        let mut addresses: HashMap<HostAddress, &DraftHost> = HashMap::new();
        for host in &hosts {
            if let Some(name) = &host.name {
                if let Some(first) = names.get(name) {
                    self.push(
                        Diagnostic::error(
                            Code::DuplicateName,
                            format!("host name `{name}` is used twice"),
                        )
                        .at(host.name_span.clone(), "used again here")
                        .also(
                            first.name_span.clone(),
                            format!("first used here, in {}", first.kind.table()),
                        )
                        .help("every machine needs its own name; give this one another"),
                    );
                } else {
                    names.insert(name, host);
                }
            }
            if let Some(address) = host.address {
                if let Some(first) = addresses.get(&address) {
                    self.push(
                        Diagnostic::error(Code::DuplicateAddress, format!("address {address} is used twice"))
                            .at(host.address_span.clone(), "used again here")
                            .also(first.address_span.clone(), format!("first used here, in {}", first.kind.table()))
                            .help("every machine needs its own address; a load balancer on a master is mode = \"on-masters\""),
                    );
                } else {
                    addresses.insert(address, host);
                }
            }
        }
        if let Some(Some(vip)) = draft.vip {
            if let Some(host) = hosts.iter().find(|h| h.address == Some(vip)) {
                self.push(
                    Diagnostic::error(
                        Code::DuplicateAddress,
                        format!("the virtual IP {vip} is also the address of a machine"),
                    )
                    .at(draft.vip_span.clone(), "virtual IP")
                    .also(host.address_span.clone(), "this machine's address")
                    .help("keepalived moves the VIP between masters, so it must be a free address"),
                );
            }
        }
    }

    fn cidr_overlaps(&mut self, draft: &Draft) {
        let mut named: Vec<(&str, Cidr, Span)> = Vec::new();
        if let Some(c) = draft.service_cidr {
            named.push(("service CIDR", c, self.origins.get("network.service_cidr")));
        }
        if let Some(c) = draft.pod_cidr {
            named.push(("pod CIDR", c, self.origins.get("network.pod_cidr")));
        }
        for (c, at) in &draft.host_cidrs {
            named.push(("host CIDR", *c, at.clone()));
        }
        for (i, (name, net, at)) in named.iter().enumerate() {
            for (other_name, other, other_at) in &named[..i] {
                if *name == "host CIDR" && *other_name == "host CIDR" || !net.overlaps(*other) {
                    continue;
                }
                self.push(
                    Diagnostic::error(Code::CidrOverlap, format!("{name} {net} overlaps the {other_name} {other}"))
                        .at(at.clone(), name.to_string())
                        .also(other_at.clone(), other_name.to_string())
                        .help("service, pod and host networks must be disjoint, or packets go to the wrong place"),
                );
            }
        }
    }

    fn addresses(&self, draft: &Draft) -> Vec<(String, HostAddress, Span)> {
        let mut addresses: Vec<_> = draft
            .hosts()
            .filter_map(|h| {
                let name = h
                    .name
                    .as_ref()
                    .map_or_else(|| "a host".to_owned(), |n| format!("`{n}`"));
                Some((name, h.address?, h.address_span.clone()))
            })
            .collect();
        if let Some(Some(vip)) = draft.vip {
            addresses.push(("the virtual IP".to_owned(), vip, draft.vip_span.clone()));
        }
        addresses
    }

    fn address_placement(&mut self, draft: &Draft) {
        for (who, address, at) in self.addresses(draft) {
            let ip = address.ip();
            if !draft.host_cidrs.is_empty() && !draft.host_cidrs.iter().any(|(c, _)| c.contains(ip))
            {
                let cidrs: Vec<String> = draft
                    .host_cidrs
                    .iter()
                    .map(|(c, _)| c.to_string())
                    .collect();
                self.push(
                    Diagnostic::error(
                        Code::AddressOutsideHostCidrs,
                        format!("{who}'s address {ip} is outside the host networks"),
                    )
                    .at(at.clone(), "not in host_cidrs")
                    .also(self.origins.get("network.host_cidrs"), "the host networks")
                    .help(format!(
                        "fix the address or add its network to host_cidrs (now {})",
                        cidrs.join(", ")
                    )),
                );
            }
            for (kind, cidr, cidr_at) in [
                (
                    "service",
                    draft.service_cidr,
                    self.origins.get("network.service_cidr"),
                ),
                ("pod", draft.pod_cidr, self.origins.get("network.pod_cidr")),
            ] {
                if let Some(cidr) = cidr.filter(|c| c.contains(ip)) {
                    self.push(
                        Diagnostic::error(
                            Code::AddressInClusterCidr,
                            format!("{who}'s address {ip} is inside the {kind} CIDR {cidr}"),
                        )
                        .at(at.clone(), format!("inside the {kind} CIDR"))
                        .also(cidr_at, format!("{kind} CIDR"))
                        .help(format!(
                            "choose a {kind} CIDR that does not contain any machine"
                        )),
                    );
                }
            }
        }
    }

    fn ip_families(&mut self, draft: &Draft) {
        let Some(service) = draft.service_cidr else {
            return;
        };
        let family = |v6: bool| if v6 { "IPv6" } else { "IPv4" };
        let service_family = family(service.is_ipv6());
        if let Some(pod) = draft.pod_cidr.filter(|p| p.is_ipv6() != service.is_ipv6()) {
            self.push(
                Diagnostic::error(
                    Code::IpFamilyMismatch,
                    format!(
                        "pod CIDR {pod} is {} but the service CIDR is {service_family}",
                        family(pod.is_ipv6())
                    ),
                )
                .at(self.origins.get("network.pod_cidr"), "other IP family")
                .also(self.origins.get("network.service_cidr"), "service CIDR")
                .help("a single-stack cluster uses one IP family throughout"),
            );
        }
        let mut family_bound: Vec<(String, HostAddress, Span)> = draft
            .masters
            .iter()
            .filter_map(|m| {
                Some((
                    format!("master `{}`", m.name.as_ref()?),
                    m.address?,
                    m.address_span.clone(),
                ))
            })
            .collect();
        if let Some(Some(vip)) = draft.vip {
            family_bound.push(("the virtual IP".to_owned(), vip, draft.vip_span.clone()));
        }
        for (who, address, at) in family_bound {
            if address.ip().is_ipv6() != service.is_ipv6() {
                self.push(
                    Diagnostic::error(Code::IpFamilyMismatch, format!("{who} has {} address {address} but the service CIDR is {service_family}", family(address.ip().is_ipv6())))
                        .at(at, "other IP family")
                        .also(self.origins.get("network.service_cidr"), "service CIDR")
                        .help("kube-apiserver advertises its address in the `kubernetes` service, so both must be the same IP family"),
                );
            }
        }
    }

    fn listener_collisions(&mut self, draft: &Draft) {
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

    fn node_port_collisions(&mut self, draft: &Draft) {
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

    fn load_balancer_shape(&mut self, draft: &Draft) {
        match draft.lb_mode {
            Some(LoadBalancerMode::External) if matches!(draft.vip, Some(Some(_))) => self.push(
                Diagnostic::error(Code::VipMisuse, "a virtual IP needs keepalived on the masters, which only mode = \"on-masters\" runs")
                    .at(self.origins.get("load_balancer.vip"), "VIP in external mode")
                    .also(self.origins.get("load_balancer.mode"), "external mode")
                    .help("set mode = \"on-masters\", or remove `vip` and point api.endpoint at your load balancer"),
            ),
            Some(LoadBalancerMode::OnMasters) if !draft.lb_hosts.is_empty() => self.push(
                Diagnostic::error(Code::UnusedLoadBalancerHosts, "load balancer hosts are listed, but mode = \"on-masters\" runs HAProxy on the masters")
                    .at(draft.lb_hosts.first().and_then(|h| h.span.clone()), "would be ignored")
                    .also(self.origins.get("load_balancer.mode"), "on-masters mode")
                    .help("remove the [[load_balancer.hosts]] entries, or set mode = \"external\""),
            ),
            _ => {}
        }
    }

    /// Clients dial `api.endpoint`:`api.port`, so a listener of the plan must be there: a
    /// kubeconfig pointing at a dead port validates otherwise. An endpoint outside the plan
    /// (a DNS name of an external balancer) cannot be checked here.
    fn endpoint_reaches_a_listener(&mut self, draft: &Draft) {
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

    /// An endpoint that names one of several load balancers loses the API with that one
    /// machine, as the default endpoint would (CP701).
    fn one_of_several_balancers(&mut self, draft: &Draft, balancer: &DraftHost) {
        if self.origins.get("api.endpoint").is_none() {
            // The default: CP701 has already said so.
            return;
        }
        let others: Vec<String> = draft
            .lb_hosts
            .iter()
            .filter(|h| !std::ptr::eq(*h, balancer))
            .filter_map(|h| h.name.as_ref().map(|n| format!("`{n}`")))
            .collect();
        let name = balancer.name.as_ref().map_or_else(
            || "one load balancer".to_owned(),
            |n| format!("load balancer `{n}`"),
        );
        self.push(
            Diagnostic::warning(
                Code::NoLoadBalancer,
                format!("the API endpoint is not highly available: clients dial {name} only, although {} also balance the API", others.join(", ")),
            )
            .at(self.origins.get("api.endpoint"), "one load balancer")
            .help("set `api.endpoint` to a DNS name that resolves to every load balancer"),
        );
    }

    /// keepalived moves the VIP between the masters' own interfaces, so it must be an
    /// address of a network the masters are on. Without `host_cidrs` that network is taken
    /// to be the /24 (IPv4) or /64 (IPv6) around each master.
    fn vip_network(&mut self, draft: &Draft) {
        let Some(vip) = draft.vip.flatten() else {
            return;
        };
        let networks: Vec<Cidr> = draft
            .masters
            .iter()
            .filter_map(|m| m.address)
            .filter_map(|a| {
                let ip = a.ip();
                draft
                    .host_cidrs
                    .iter()
                    .map(|(c, _)| *c)
                    .find(|c| c.contains(ip))
                    .or_else(|| Cidr::around(ip, if ip.is_ipv4() { 24 } else { 64 }))
            })
            .collect();
        if let Some(network) = networks.iter().find(|n| n.contains(vip.ip())) {
            self.vip_not_a_host_address(draft, vip, *network);
            return;
        }
        if networks.is_empty() {
            return;
        }
        let mut shown: Vec<String> = networks.iter().map(ToString::to_string).collect();
        shown.dedup();
        let assumed = if draft.host_cidrs.is_empty() {
            " (a /24 or /64 around each master, as network.host_cidrs is not set)"
        } else {
            ""
        };
        self.push(
            Diagnostic::warning(
                Code::VipOutsideMasterNetwork,
                format!("the virtual IP {vip} is in no network of the masters: {}{assumed}", shown.join(", ")),
            )
            .at(draft.vip_span.clone(), "virtual IP")
            .also(self.origins.get("network.host_cidrs"), "host networks")
            .help("keepalived can only raise the VIP on a master's own network: pick a free address there, or set network.host_cidrs if the masters' network is larger"),
        );
    }

    /// The VIP must be a usable host address of its network: not the network's own address, nor
    /// IPv4's broadcast address, which no interface can own.
    fn vip_not_a_host_address(&mut self, draft: &Draft, vip: HostAddress, network: Cidr) {
        let net = network.net();
        let which = if vip.ip() == net.network() && net.prefix_len() < net.max_prefix_len() {
            "network address"
        } else if vip.ip().is_ipv4() && vip.ip() == net.broadcast() && net.prefix_len() < 31 {
            "broadcast address"
        } else {
            return;
        };
        self.push(
            Diagnostic::warning(
                Code::VipOutsideMasterNetwork,
                format!("the virtual IP {vip} is the {which} of the masters' network {network}"),
            )
            .at(draft.vip_span.clone(), "virtual IP")
            .help("keepalived needs a free host address of that network: pick one no machine uses"),
        );
    }

    fn pki_rules(&mut self, draft: &Draft) {
        if let Some(alg) = draft
            .sa_key_algorithm
            .filter(|a| !a.can_sign_service_accounts())
        {
            let (at, key) = match self.origins.get("pki.service_account_key_algorithm") {
                Some(at) => (Some(at), "service_account_key_algorithm"),
                None => (self.origins.get("pki.key_algorithm"), "key_algorithm"),
            };
            self.push(
                Diagnostic::error(Code::ServiceAccountKeyAlgorithm, format!("the service-account key cannot be {alg}: kube-apiserver signs tokens with RSA or ECDSA keys only"))
                    .at(at, format!("`{key}` applies to the service-account key"))
                    .help("set pki.service_account_key_algorithm = \"ecdsa-p256\" (or an RSA size)"),
            );
        }
        if draft.layout == Some(PkiLayout::SharedCa) {
            self.push(
                Diagnostic::warning(Code::SharedCa, "with one shared CA, every client certificate of the cluster (each kubelet's, say) can read and write etcd")
                    .at(self.origins.get("pki.layout"), "shared CA")
                    .help("use layout = \"separate-cas\" unless you must match an existing cluster"),
            );
        }
        if let (Some(ca), Some(leaf)) = (draft.ca_validity, draft.cert_validity) {
            if leaf > ca {
                self.push(
                    Diagnostic::error(
                        Code::InvalidValidity,
                        format!(
                            "certificates valid {} days would outlive their CA ({} days)",
                            leaf.days(),
                            ca.days()
                        ),
                    )
                    .at(self.origins.get("pki.cert_validity_days"), "leaf validity")
                    .also(self.origins.get("pki.ca_validity_days"), "CA validity")
                    .help("make cert_validity_days at most ca_validity_days"),
                );
            }
        }
    }

    /// The last line of defence for the PKI: every name a client dials must be in the
    /// certificate it reaches. The SAN sets are built from the same plan, so a finding here
    /// means a dialled name could not be put into a certificate.
    fn check_san_coverage(&mut self, plan: &Plan) {
        for (dial, master) in uncovered_dials(plan, &plan.server_certificates()) {
            self.push(
                Diagnostic::error(
                    Code::SanNotCovered,
                    format!(
                        "{} dial {} but the {} certificate of {master} would not carry it",
                        dial.client,
                        dial.target,
                        dial.role.identity()
                    ),
                )
                .at(origin_span(self.origins, dial.origin), "dialled here")
                .help("add it to api.extra_sans, or report a bug: cpgen should have added it"),
            );
        }
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

fn origin_span(origins: &Origins, origin: Origin) -> Span {
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
