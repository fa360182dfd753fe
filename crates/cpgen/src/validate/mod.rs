//! The rules (CPnnn, the README's rule table): a [`ClusterSpec`] in (parsed from
//! `cluster.toml` or built in code), a [`Plan`] out — or every finding at once. Findings point through the origins of
//! the values: at the text a value was parsed from, or at the path of a field set in code.
//! Each value is first parsed on its own (so one bad value never hides another), then the
//! cross-cutting rules run on whatever parsed, and the plan is assembled only when no error
//! was found.
//!
//! This file owns the entry points, the driver, `Rules` with its generic parsers, and the
//! `Draft` the passes share; each section's rules live in a submodule of their own, the
//! cross-section ones in `cross`.

mod api;
mod cluster;
mod cross;
mod draft;
mod etcd;
mod listeners;
mod load_balancer;
mod network;
mod pki;
mod version;

use std::str::FromStr;

use camino::Utf8PathBuf;
use sha2::{Digest, Sha256};

use crate::diag::{did_you_mean, Code, Diagnostic, Location, Report, Severity};
use crate::plan::{
    Choice, ComponentsVia, EncryptionProvider, HealthCheck, LoadBalancerMode, PkiLayout, Plan,
};
use crate::spec::{ClusterSpec, Origins};
use crate::types::{
    Cidr, DnsName, HostAddress, HostName, KeyAlgorithm, KubernetesVersion, Port, PortRange,
    RuntimeEndpoint, San, ValidityDays,
};
use crate::{Config, Error};

pub(crate) use api::{unusable_mode, unusable_plugin};

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
    etcd_extra_sans: Option<Vec<San>>,
    key_algorithm: Option<KeyAlgorithm>,
    sa_key_algorithm: Option<KeyAlgorithm>,
    ca_validity: Option<ValidityDays>,
    cert_validity: Option<ValidityDays>,
    layout: Option<PkiLayout>,
    encryption_provider: Option<EncryptionProvider>,
    workloads_on_masters: bool,
    runtime_endpoint: Option<RuntimeEndpoint>,
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
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}
