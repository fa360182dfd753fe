//! The bundle's README.md: what is where, start order, the guide's checks in current
//! syntax, and a Mermaid diagram of who talks to whom.

use askama::Template;

use super::firewall::{firewall_rules, FirewallRule};
use crate::layout::HostListing;
use crate::pki::{Ca, Rotated, Stage};
use crate::plan::{ComponentsVia, Host, LoadBalancerMode, Plan};
use crate::template::render_template;
use crate::types::San;
use crate::Error;

struct HostFiles {
    name: String,
    role: &'static str,
    address: String,
    files: Vec<FileLine>,
}

struct FileLine {
    path: String,
    mode: String,
}

struct Node {
    id: String,
    label: String,
}

struct Edge {
    from: String,
    to: String,
    label: String,
}

#[derive(Template)]
#[template(path = "bundle-README.md", escape = "none")]
struct Readme<'a> {
    cluster: &'a str,
    version: String,
    api_url: String,
    members: usize,
    quorum: usize,
    tolerance: usize,
    hosts: Vec<HostFiles>,
    on_masters: bool,
    vip: bool,
    lb_count: usize,
    layout: String,
    nodes: Vec<Node>,
    edges: Vec<Edge>,
    rotations: Vec<RotationNote>,
    setup: Setup,
    masters_are_nodes: bool,
}

/// What the operator provides around the bundle: the machines' software, DNS, the firewall,
/// and what a working cluster needs after the control plane is up.
struct Setup {
    /// Which hosts run a kubelet (`masters and workers`, `workers`, `masters`), if any.
    nodes: Option<&'static str>,
    runtime_endpoint: String,
    /// `api.endpoint` when it is a DNS name, with what it must resolve to.
    endpoint_record: Option<(String, String)>,
    firewall: Vec<FirewallRule>,
    pod_cidr: String,
    service_cidr: String,
    cluster_dns: String,
    dns_domain: String,
}

impl Setup {
    fn of(plan: &Plan) -> Setup {
        let nodes = match (plan.masters_are_nodes(), plan.workers.is_empty()) {
            (true, false) => Some("masters and workers"),
            (true, true) => Some("masters"),
            (false, false) => Some("workers"),
            (false, true) => None,
        };
        let endpoint_record = match &plan.api.endpoint {
            San::Dns(name) => Some((name.to_string(), endpoint_target(plan))),
            San::Ip(_) => None,
        };
        Setup {
            nodes,
            runtime_endpoint: plan.nodes.container_runtime_endpoint.to_string(),
            endpoint_record,
            firewall: firewall_rules(plan),
            pod_cidr: plan.network.pod_cidr.to_string(),
            service_cidr: plan.network.service_cidr.to_string(),
            cluster_dns: plan.nodes.cluster_dns.to_string(),
            dns_domain: plan.cluster.dns_domain.to_string(),
        }
    }
}

/// What the API endpoint's DNS name must resolve to: the virtual IP, the load balancer
/// machines, or the masters.
fn endpoint_target(plan: &Plan) -> String {
    let addresses = |hosts: &[Host]| {
        hosts
            .iter()
            .map(|h| h.address.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (plan.load_balancer.vip, plan.load_balancer.mode) {
        (Some(vip), _) => format!("the virtual IP {vip}"),
        (None, LoadBalancerMode::External) if !plan.load_balancer.hosts.is_empty() => format!(
            "the load balancer{} ({})",
            if plan.load_balancer.hosts.len() == 1 {
                ""
            } else {
                "s"
            },
            addresses(&plan.load_balancer.hosts)
        ),
        _ => format!("the masters ({})", addresses(&plan.masters)),
    }
}

/// A rotation in progress: where it stands, why rolling this bundle out is safe, and what
/// comes next.
struct RotationNote {
    what: String,
    stage: &'static str,
    now: String,
    safe: &'static str,
    next: String,
}

impl RotationNote {
    fn of(rotated: Rotated, stage: Stage) -> RotationNote {
        let what = match rotated {
            Rotated::Ca(ca) => format!("the {} CA", ca.name()),
            Rotated::ServiceAccount => "the service-account key".to_owned(),
        };
        let which = rotated.name();
        let (now, safe, next) = match stage {
            Stage::Start => (
                format!("Every trust file carries the old and the new one, the old first; {what}'s old generation still signs everything."),
                "Safe host by host: hosts not yet rolled trust only the old one, which signs every certificate and token in use.",
                format!("once every host runs this bundle, `cpgen rotate issue --which {which} CLUSTER.toml`."),
            ),
            _ => (
                format!("The new generation of {what} signs (every certificate it signs was re-issued, or tokens are signed with the new key); trust files still carry both, the new first."),
                "Safe host by host: every host trusts both generations since the `start` bundle ran everywhere.",
                finish_note(rotated),
            ),
        };
        RotationNote {
            what,
            stage: stage.name(),
            now,
            safe,
            next,
        }
    }
}

/// What must hold outside the bundle before the old generation is dropped.
fn finish_note(rotated: Rotated) -> String {
    let outside = match rotated {
        Rotated::Ca(Ca::Kubernetes) => "give clients outside the bundle the new CA first (kubeconfigs handed to users, webhook `caBundle`s, anything else that trusts `ca.pem`: this bundle's `ca.pem` carries both), and renew kubelet certificates that a CSR got before `issue` (the old CA signed them)",
        Rotated::Ca(Ca::Etcd) => "give etcd clients outside the bundle (backup jobs, monitoring) the new CA and certificates signed by it first",
        Rotated::Ca(Ca::FrontProxy) => "aggregated API servers read the front-proxy CA from the `extension-apiserver-authentication` ConfigMap, which kube-apiserver keeps current: nothing outside the bundle",
        Rotated::ServiceAccount => "wait at least 24 hours, so that kubelets have refreshed every projected token, and re-create legacy token Secrets (never refreshed): tokens of the old key stop working then",
    };
    format!(
        "once every host runs this bundle, {outside}; then `cpgen rotate finish --which {} CLUSTER.toml`.",
        rotated.name()
    )
}

pub(super) fn render(
    plan: &Plan,
    listing: &[HostListing<'_>],
    rotations: &[(Rotated, Stage)],
) -> Result<Vec<u8>, Error> {
    let (nodes, edges) = topology(plan);
    let readme = Readme {
        cluster: plan.cluster.name.as_str(),
        version: plan.cluster.kubernetes_version.to_string(),
        api_url: plan.api_url(),
        members: plan.masters.len(),
        quorum: plan.masters.len() / 2 + 1,
        tolerance: plan.etcd_failure_tolerance(),
        hosts: host_files(listing),
        on_masters: plan.load_balancer.mode == LoadBalancerMode::OnMasters,
        vip: plan.load_balancer.vip.is_some(),
        lb_count: plan.load_balancer.hosts.len(),
        layout: plan.pki.layout.to_string(),
        nodes,
        edges,
        rotations: rotations
            .iter()
            .map(|(rotated, stage)| RotationNote::of(*rotated, *stage))
            .collect(),
        setup: Setup::of(plan),
        masters_are_nodes: plan.masters_are_nodes(),
    };
    render_template(&readme, "bundle-README.md")
}

fn host_files(listing: &[HostListing<'_>]) -> Vec<HostFiles> {
    listing
        .iter()
        .map(|listed| HostFiles {
            name: listed.host.name.to_string(),
            role: listed.role.label(),
            address: listed.host.address.to_string(),
            files: listed
                .files
                .iter()
                .map(|(target, kind)| FileLine {
                    path: target.clone(),
                    mode: format!("{:04o}", kind.mode()),
                })
                .collect(),
        })
        .collect()
}

/// The diagram's nodes and edges, in the order the README draws them.
#[derive(Default)]
struct Graph {
    nodes: Vec<Node>,
    edges: Vec<Edge>,
}

impl Graph {
    fn node(&mut self, id: impl Into<String>, label: String) {
        self.nodes.push(Node {
            id: id.into(),
            label,
        });
    }

    fn edge(&mut self, from: &str, to: &str, label: String) {
        self.edges.push(Edge {
            from: from.to_owned(),
            to: to.to_owned(),
            label,
        });
    }
}

fn topology(plan: &Plan) -> (Vec<Node>, Vec<Edge>) {
    let mut graph = Graph::default();
    graph.node("clients", "kubectl, kubelets, pods".into());
    let entries = entry_points(&mut graph, plan);
    for (i, master) in plan.masters.iter().enumerate() {
        master_topology(&mut graph, plan, i, master, &entries);
    }
    (graph.nodes, graph.edges)
}

/// Where clients (and components going through the load balancer) enter, with the clients'
/// edges to it: the HAProxies (behind the virtual IP if there is one), or the first API
/// server when there is no load balancer.
fn entry_points(graph: &mut Graph, plan: &Plan) -> Vec<String> {
    let kubernetes_ca = Ca::Kubernetes.id();
    let lb_port = plan.load_balancer.bind_port;
    let mut entries = haproxy_nodes(graph, plan);
    if let (Some(vip), LoadBalancerMode::OnMasters) =
        (plan.load_balancer.vip, plan.load_balancer.mode)
    {
        graph.node("vip", format!("keepalived VIP {vip}:{lb_port}"));
        graph.edge("clients", "vip", format!("TLS {lb_port}, {kubernetes_ca}"));
        for entry in &entries {
            graph.edge("vip", entry, "VRRP holder".into());
        }
    } else {
        for entry in &entries {
            graph.edge(
                "clients",
                entry,
                format!("TLS {}, {kubernetes_ca}", plan.api.port),
            );
        }
    }
    if entries.is_empty() {
        entries.push("m0_api".into());
        graph.edge(
            "clients",
            "m0_api",
            format!("TLS {}, {kubernetes_ca}", plan.api.port),
        );
    }
    entries
}

/// One HAProxy node per load balancer host, or per master in on-masters mode; their ids.
fn haproxy_nodes(graph: &mut Graph, plan: &Plan) -> Vec<String> {
    let lb_port = plan.load_balancer.bind_port;
    let mut entries = Vec::new();
    match plan.load_balancer.mode {
        LoadBalancerMode::External => {
            for (i, lb) in plan.load_balancer.hosts.iter().enumerate() {
                let id = format!("lb{i}");
                graph.node(
                    id.clone(),
                    format!("haproxy on {} {}:{lb_port}", lb.name, lb.address),
                );
                entries.push(id);
            }
        }
        LoadBalancerMode::OnMasters => {
            for (i, m) in plan.masters.iter().enumerate() {
                let id = format!("m{i}_haproxy");
                graph.node(id.clone(), format!("haproxy on {} :{lb_port}", m.name));
                entries.push(id);
            }
        }
    }
    entries
}

/// Master `i`'s four programs, what reaches its API server, its etcd traffic, and where its
/// controller-manager and scheduler connect.
fn master_topology(graph: &mut Graph, plan: &Plan, i: usize, m: &Host, entries: &[String]) {
    let kubernetes_ca = Ca::Kubernetes.id();
    let api_port = plan.api.bind_port;
    let (client_port, peer_port) = (plan.etcd.client_port, plan.etcd.peer_port);
    for (suffix, label) in [
        (
            "api",
            format!("kube-apiserver on {} {}:{api_port}", m.name, m.address),
        ),
        (
            "etcd",
            format!("etcd {} :{client_port} :{peer_port}", m.name),
        ),
        ("cm", format!("kube-controller-manager on {}", m.name)),
        ("sched", format!("kube-scheduler on {}", m.name)),
    ] {
        graph.node(format!("m{i}_{suffix}"), label);
    }
    let check = plan.load_balancer.health_check;
    for entry in entries {
        if entry != &format!("m{i}_api") {
            graph.edge(
                entry,
                &format!("m{i}_api"),
                format!("TCP {api_port}, {check} check"),
            );
        }
    }
    etcd_edges(graph, plan, i);
    let component_target = match plan.api.components_via {
        ComponentsVia::Local => format!("m{i}_api"),
        _ => entries.first().cloned().unwrap_or_default(),
    };
    for component in ["cm", "sched"] {
        graph.edge(
            &format!("m{i}_{component}"),
            &component_target,
            format!("TLS, {kubernetes_ca}"),
        );
    }
}

/// Master `i`'s API server to every etcd member, and its etcd member to each later one.
fn etcd_edges(graph: &mut Graph, plan: &Plan, i: usize) {
    let etcd_ca = Ca::Etcd.effective(plan.pki.layout).id();
    let (client_port, peer_port) = (plan.etcd.client_port, plan.etcd.peer_port);
    for j in 0..plan.masters.len() {
        graph.edge(
            &format!("m{i}_api"),
            &format!("m{j}_etcd"),
            format!("mTLS {client_port}, {etcd_ca}"),
        );
        if j > i {
            graph.edge(
                &format!("m{i}_etcd"),
                &format!("m{j}_etcd"),
                format!("peer mTLS {peer_port}, {etcd_ca}"),
            );
        }
    }
}
