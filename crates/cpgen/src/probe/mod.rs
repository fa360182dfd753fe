//! Checking the running cluster against its bundle (`cpgen probe`): every endpoint the bundle
//! describes is dialled at once (bounded, each within one timeout), a TLS handshake is made
//! with the bundle's client identity where the server asks for one, etcd and kube-apiserver
//! get one read-only health request, and the certificate each serves is compared with the
//! one the bundle gives it. A certificate that was renewed on disk but never loaded, a load
//! balancer that forwards to a stale member, a port some other program took: each is named,
//! with the command that fixes it.
//!
//! Files: `mod` (the report and the driver), `targets` (endpoints from the bundle's files),
//! `dial` (TLS with a deadline), `judge` (status, words, fix), `render` (text, JSON,
//! Prometheus).

mod dial;
mod judge;
mod render;
mod targets;

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use camino::Utf8Path;
use serde::Serialize;
use time::OffsetDateTime;

use crate::diag::{Diagnostic, Severity};
use crate::render::paths;
use crate::types::Timeout;
use crate::verify::source::read_bundle;
use crate::verify::verify_tree;
use crate::{Error, Plan};

use self::dial::Request;
use self::targets::Target;

/// What an endpoint serves, compared with the bundle; ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Status {
    /// Exactly the bundle's certificate, in date.
    Ok,
    /// Another certificate from the bundle's CA: older (not reloaded) or newer.
    Drift,
    /// No certificate: refused, timed out, not TLS, or the name does not resolve.
    Unreachable,
    /// The certificate is out of its validity period (expired, or not yet valid).
    Expired,
    /// A certificate not from the bundle's CA, or one the server does not hold the key of.
    Foreign,
}

impl Status {
    /// Every status, best first.
    pub const ALL: [Status; 5] = [
        Status::Ok,
        Status::Drift,
        Status::Unreachable,
        Status::Expired,
        Status::Foreign,
    ];

    /// `ok`, `drift`, `unreachable`, `expired`, `foreign`.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Drift => "drift",
            Status::Unreachable => "unreachable",
            Status::Expired => "expired",
            Status::Foreign => "foreign",
        }
    }
}

/// Which server an endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Service {
    /// etcd's client URL.
    EtcdClient,
    /// etcd's peer URL.
    EtcdPeer,
    /// kube-apiserver's secure port.
    KubeApiserver,
    /// HAProxy in front of the apiservers (an LB host, or the virtual IP).
    LoadBalancer,
    /// The server the admin kubeconfig names, as clients dial it.
    ApiEndpoint,
    /// A kubelet's port.
    Kubelet,
}

impl Service {
    /// `etcd-client`, `etcd-peer`, `kube-apiserver`, `load-balancer`, `api-endpoint`,
    /// `kubelet`.
    pub fn name(self) -> &'static str {
        match self {
            Service::EtcdClient => "etcd-client",
            Service::EtcdPeer => "etcd-peer",
            Service::KubeApiserver => "kube-apiserver",
            Service::LoadBalancer => "load-balancer",
            Service::ApiEndpoint => "api-endpoint",
            Service::Kubelet => "kubelet",
        }
    }

    /// The systemd unit that serves it.
    fn unit(self) -> &'static str {
        match self {
            Service::EtcdClient | Service::EtcdPeer => paths::ETCD_UNIT,
            Service::KubeApiserver => paths::APISERVER_UNIT,
            Service::LoadBalancer | Service::ApiEndpoint => paths::HAPROXY_UNIT,
            // No kubelet unit in the bundle yet: the name kubelet packages give theirs.
            Service::Kubelet => "kubelet.service",
        }
    }

    /// The one read-only request made after the handshake, if any.
    fn health_path(self) -> Option<&'static str> {
        match self {
            Service::EtcdClient => Some("/health"),
            Service::KubeApiserver | Service::LoadBalancer | Service::ApiEndpoint => {
                Some("/readyz")
            }
            Service::EtcdPeer | Service::Kubelet => None,
        }
    }
}

/// Whether a drifted certificate is older or newer than the bundle's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Age {
    /// Issued before the bundle's: the service did not load the files it was given.
    Older,
    /// Issued after the bundle's: this bundle is not the one that was deployed last.
    Newer,
    /// Issued at the same time, yet another certificate.
    Same,
}

/// What identifies a certificate to an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertSummary {
    /// Colon-separated hex.
    pub serial: String,
    /// RFC 4514.
    pub subject: String,
    /// RFC 4514.
    pub issuer: String,
    /// NotBefore.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// NotAfter.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}

/// The answer to the health request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// The path asked for (`/health`, `/readyz`).
    pub path: String,
    /// A 2xx answer.
    pub ok: bool,
    /// `HTTP 200`, or why there was no answer.
    pub answer: String,
}

/// One endpoint's result.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    /// `https://ADDRESS:PORT`.
    pub endpoint: String,
    /// The bundle host (`endpoint` for the API endpoint, `vip` for a virtual IP).
    pub host: String,
    /// Which server.
    pub service: Service,
    /// The verdict on its certificate.
    pub status: Status,
    /// What it serves and how that differs from the bundle, in words.
    pub detail: String,
    /// What to run to fix it (`None` when there is nothing to fix).
    pub fix: Option<String>,
    /// The certificate it serves.
    pub served: Option<CertSummary>,
    /// The bundle's certificate for it (behind a load balancer: the backend's, found by key).
    pub expected: Option<CertSummary>,
    /// For a drift: older or newer.
    pub drift: Option<Age>,
    /// The address dialled, when the served certificate's SANs do not name it.
    pub missing_sans: Vec<String>,
    /// The health request's answer, for etcd's client URL and the apiservers.
    pub health: Option<Health>,
}

impl Endpoint {
    /// True when it serves the bundle's certificate, named for the address dialled, and
    /// answers its health request (if it has one) with success.
    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
            && self.missing_sans.is_empty()
            && self.health.as_ref().is_none_or(|h| h.ok)
    }
}

/// Everything `cpgen probe` found.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    /// Every endpoint, worst first.
    pub endpoints: Vec<Endpoint>,
    /// The errors `verify` finds in the bundle itself: what was served is compared with a
    /// bundle that is not sound.
    pub bundle_errors: Vec<Diagnostic>,
    /// When the probe ran (validity is judged at this time).
    pub at: OffsetDateTime,
}

impl ProbeReport {
    /// True when every endpoint [is ok](Endpoint::is_ok) and the bundle verifies.
    pub fn all_ok(&self) -> bool {
        self.bundle_errors.is_empty() && self.endpoints.iter().all(Endpoint::is_ok)
    }

    /// The table for people, worst first, with each fix; every string from the bundle or
    /// the network escaped.
    pub fn render(&self) -> String {
        render::text(self)
    }

    /// `{"valid", "endpoints": [{"endpoint", "host", "service", "status", "detail", ...}]}`.
    pub fn to_json(&self) -> serde_json::Value {
        render::json(self)
    }

    /// Prometheus text exposition (for node_exporter's textfile collector): per endpoint,
    /// a gauge per status and the seconds until the served certificate expires.
    pub fn to_prometheus(&self) -> String {
        render::prometheus(self)
    }
}

/// How to probe.
#[derive(Debug, Clone)]
pub struct ProbeOptions<'a> {
    /// How long one endpoint may take, connection to health answer.
    pub timeout: Timeout,
    /// Only the endpoints of these hosts (bundle host names, `endpoint`, `vip`); all when
    /// empty.
    pub only: &'a [String],
    /// How many endpoints are dialled at once.
    pub parallel: NonZeroUsize,
    /// The plan of the config the bundle is meant to be: the bundle is verified against
    /// it before its endpoints are trusted.
    pub plan: Option<&'a Plan>,
}

impl Default for ProbeOptions<'_> {
    fn default() -> Self {
        ProbeOptions {
            timeout: Timeout::default(),
            only: &[],
            parallel: NonZeroUsize::new(512).unwrap_or(NonZeroUsize::MIN),
            plan: None,
        }
    }
}

/// Dials every endpoint of the bundle at `path` (a `.tar.gz`, a `.tar` or a directory) and
/// compares what each serves with the bundle. Fails only when the bundle cannot be read or
/// `only` names a host the bundle does not have; everything the network does is a status.
pub fn probe_path(path: &Utf8Path, options: &ProbeOptions<'_>) -> Result<ProbeReport, Error> {
    let mut findings = Vec::new();
    let tree = read_bundle(path, &mut findings)?;
    let at = OffsetDateTime::now_utc();
    let bundle_errors: Vec<Diagnostic> = verify_tree(&tree, options.plan, at, findings)
        .findings
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .collect();
    let (mut targets, mut gaps) = targets::targets(&tree);
    if let Some(plan) = options.plan {
        let (kept, strangers) = targets
            .into_iter()
            .partition(|t| plan_dials(plan, &t.address));
        targets = kept;
        gaps.extend(strangers.into_iter().map(|t: Target| targets::Gap {
            why: format!(
                "the bundle has it at {}, which is no address of the config: not dialled",
                t.url()
            ),
            host: t.host,
            service: t.service,
        }));
    }
    if !options.only.is_empty() {
        let known: std::collections::BTreeSet<&str> = targets
            .iter()
            .map(|t| t.host.as_str())
            .chain(gaps.iter().map(|g| g.host.as_str()))
            .collect();
        if let Some(unknown) = options.only.iter().find(|h| !known.contains(h.as_str())) {
            return Err(Error::UnknownHost {
                name: unknown.clone(),
                known: known.into_iter().map(str::to_owned).collect(),
            });
        }
        targets.retain(|t| options.only.contains(&t.host));
        gaps.retain(|g| options.only.contains(&g.host));
    }
    let outcomes = dial_all(&targets, options);
    let mut endpoints: Vec<Endpoint> = targets
        .iter()
        .zip(outcomes)
        .map(|(target, outcome)| judge::judge(target, outcome, at))
        .chain(gaps.into_iter().map(judge::gap))
        .collect();
    endpoints.sort_by(|a, b| {
        b.status
            .cmp(&a.status)
            .then(a.is_ok().cmp(&b.is_ok()))
            .then_with(|| (&a.host, a.service, &a.endpoint).cmp(&(&b.host, b.service, &b.endpoint)))
    });
    Ok(ProbeReport {
        endpoints,
        bundle_errors,
        at,
    })
}

/// True when `address` is one the plan's clients dial: a host's, the virtual IP, or the API
/// endpoint.
fn plan_dials(plan: &Plan, address: &dial::Address) -> bool {
    let endpoint = plan.api.endpoint.to_string();
    match address {
        dial::Address::Ip(ip) => {
            plan.hosts().any(|host| host.address.ip() == *ip)
                || plan.load_balancer.vip.is_some_and(|vip| vip.ip() == *ip)
                || endpoint == ip.to_string()
        }
        dial::Address::Name(name) => *name == endpoint,
    }
}

/// Dials every target, `options.parallel` at a time, each on a thread of its own so that a
/// silent peer holds up nothing but its own slot.
fn dial_all(targets: &[Target], options: &ProbeOptions<'_>) -> Vec<dial::Outcome> {
    let results: Vec<Mutex<Option<dial::Outcome>>> =
        targets.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        let Some(target) = targets.get(index) else {
            break;
        };
        let outcome = dial::dial(&Request {
            address: &target.address,
            port: target.port,
            identity: target.identity.as_deref(),
            health_path: target.service.health_path(),
            timeout: options.timeout,
        });
        *results[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(outcome);
    };
    let workers = options.parallel.get().min(targets.len());
    std::thread::scope(|scope| {
        let spawned = (0..workers)
            .filter(|_| {
                std::thread::Builder::new()
                    .name("cpgen-probe".to_owned())
                    .stack_size(512 << 10)
                    .spawn_scoped(scope, work)
                    .is_ok()
            })
            .count();
        // No thread to be had (a process limit): dial here, one at a time.
        if spawned == 0 {
            work();
        }
    });
    results
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(PoisonError::into_inner)
                .unwrap_or(dial::Outcome::Silent {
                    why: dial::Silence::Failed,
                    message: "not dialled".to_owned(),
                })
        })
        .collect()
}
