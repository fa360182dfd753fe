//! Deployment glue in every bundle: an Ansible inventory, per-host variables (each file with
//! the units that read it) and a playbook that installs each host's files, starts services in
//! order, restarts exactly the units whose files changed (masters one at a time, with health
//! waits) or follows `changes.json`; and a NixOS module that installs one host's files and
//! declares its services.

mod readers;

use std::collections::BTreeSet;
use std::fmt;

use askama::Template;

use crate::layout::FileKind;
use crate::layout::{HostListing, Role};
use crate::plan::{LoadBalancerMode, Plan};
use crate::render::host_unit_specs;
use crate::template::render_template;
use crate::Error;
use readers::{readers, runs_haproxy, runs_keepalived, Readers, UnitName};

struct InventoryHost {
    name: String,
    address: String,
}

struct Group {
    name: &'static str,
    hosts: Vec<InventoryHost>,
}

#[derive(Template)]
#[template(path = "ansible/inventory.ini", escape = "none")]
struct Inventory<'a> {
    cluster: &'a str,
    groups: Vec<Group>,
}

struct HostFile {
    path: String,
    mode: String,
    /// The units that read the file, restarted when an install changes it.
    units: Vec<UnitName>,
}

#[derive(Template)]
#[template(path = "ansible/host_vars.yml", escape = "none")]
struct HostVars<'a> {
    host: &'a str,
    /// What the health waits after a restart on this host ask: etcd's client URL (masters).
    etcd_endpoint: Option<String>,
    /// The URL whose `/readyz` says this host serves the API again (masters: the apiserver;
    /// load balancer machines: HAProxy's front end).
    ready_url: Option<String>,
    dirs: Vec<String>,
    files: &'a [HostFile],
}

/// A health check the roll waits for after restarting a unit, before the next host.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    Etcd,
    Ready,
}

/// A unit the roll may restart, in the order it restarts them on one host.
struct RollUnit {
    name: &'static str,
    wait: Option<Wait>,
}

/// One group's restarts, one host at a time.
struct Roll {
    name: &'static str,
    hosts: &'static str,
    units: Vec<RollUnit>,
}

struct Step {
    name: &'static str,
    hosts: &'static str,
    /// Whether systemd reloads its units first: at the first step on these hosts.
    reload: bool,
    services: Vec<&'static str>,
}

/// The tasks of one step of `changes.json`, included by the playbook's last play.
#[derive(Template)]
#[template(path = "ansible/changes-step.yml", escape = "none")]
struct ChangesStep;

#[derive(Template)]
#[template(path = "ansible/playbook.yml", escape = "none")]
struct Playbook<'a> {
    cluster: &'a str,
    steps: Vec<Step>,
    rolls: Vec<Roll>,
}

/// Text inside a Nix double-quoted string, escaped.
struct Nix(String);

impl fmt::Display for Nix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let escaped = self
            .0
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace("${", "\\${");
        f.write_str(&escaped)
    }
}

struct NixFile {
    path: Nix,
    mode: String,
}

struct NixUnit {
    name: &'static str,
    description: Nix,
    after: Vec<Nix>,
    wants: Vec<Nix>,
    service_type: &'static str,
    package: &'static str,
    program: &'static str,
    args: Vec<Nix>,
}

struct NixHost {
    name: String,
    files: Vec<NixFile>,
    units: Vec<NixUnit>,
}

#[derive(Template)]
#[template(path = "nix/module.nix", escape = "none")]
struct NixModule<'a> {
    cluster: &'a str,
    hosts: Vec<NixHost>,
}

/// Every host of the plan with its role group.
fn grouped_hosts(plan: &Plan) -> Vec<Group> {
    let hosts = |list: &[crate::plan::Host]| {
        list.iter()
            .map(|h| InventoryHost {
                name: h.name.to_string(),
                address: h.address.to_string(),
            })
            .collect::<Vec<_>>()
    };
    let mut groups = vec![Group {
        name: "masters",
        hosts: hosts(&plan.masters),
    }];
    if !plan.load_balancer.hosts.is_empty() {
        groups.push(Group {
            name: "load_balancers",
            hosts: hosts(&plan.load_balancer.hosts),
        });
    }
    if !plan.workers.is_empty() {
        groups.push(Group {
            name: "workers",
            hosts: hosts(&plan.workers),
        });
    }
    groups
}

/// The files of a host: path on the host without the leading `/`, mode, and the units that
/// read it.
fn host_files(listed: &HostListing<'_>, readers: &Readers) -> Vec<HostFile> {
    listed
        .files
        .iter()
        .map(|(target, kind)| HostFile {
            path: target.trim_start_matches('/').to_owned(),
            mode: format!("{:04o}", kind.mode()),
            units: readers
                .get(target)
                .map(|units| units.iter().copied().collect())
                .unwrap_or_default(),
        })
        .collect()
}

/// The host variables of `listed`'s health waits: etcd's client URL and the `/readyz` URL.
fn health_urls(plan: &Plan, listed: &HostListing<'_>) -> (Option<String>, Option<String>) {
    let address = listed.host.address.url_host();
    match listed.role {
        Role::Master => (
            Some(format!("https://{address}:{}", plan.etcd.client_port)),
            Some(format!("https://{address}:{}", plan.api.bind_port)),
        ),
        Role::LoadBalancer => (
            None,
            Some(format!(
                "https://{address}:{}",
                plan.load_balancer.bind_port
            )),
        ),
        Role::Worker => (None, None),
    }
}

/// The restarts of a running cluster, group by group: the masters' units in start order,
/// each host healthy before the next; then the load balancer machines.
fn rolls(plan: &Plan) -> Vec<Roll> {
    let unit = |name, wait| RollUnit { name, wait };
    let mut masters = vec![
        unit("etcd", Some(Wait::Etcd)),
        unit("kube-apiserver", Some(Wait::Ready)),
        unit("kube-controller-manager", None),
        unit("kube-scheduler", None),
    ];
    if runs_haproxy(plan, Role::Master) {
        masters.push(unit("haproxy", None));
    }
    if runs_keepalived(plan, Role::Master) {
        masters.push(unit("keepalived", None));
    }
    if plan.masters_are_nodes() {
        masters.extend(node_units());
    }
    let mut rolls = vec![Roll {
        name: "Restart what changed on the masters, one at a time",
        hosts: "masters",
        units: masters,
    }];
    if runs_haproxy(plan, Role::LoadBalancer) && !plan.load_balancer.hosts.is_empty() {
        rolls.push(Roll {
            name: "Restart what changed on the load balancers, one at a time",
            hosts: "load_balancers",
            units: vec![unit("haproxy", Some(Wait::Ready))],
        });
    }
    if !plan.workers.is_empty() {
        rolls.push(Roll {
            name: "Restart what changed on the workers, one at a time",
            hosts: "workers",
            units: node_units(),
        });
    }
    rolls
}

/// A node's units as the rolls restart them. Neither has a wait: a node's pods keep running
/// while its kubelet or kube-proxy restarts.
fn node_units() -> Vec<RollUnit> {
    ["kubelet", "kube-proxy"]
        .map(|name| RollUnit { name, wait: None })
        .into()
}

/// The start order that keeps each component able to reach what it needs: etcd everywhere at once, then the API servers, then the
/// components, then the load balancer.
fn steps(plan: &Plan) -> Vec<Step> {
    let mut steps = vec![
        Step {
            name: "Start etcd on every master at once",
            hosts: "masters",
            reload: true,
            services: vec!["etcd"],
        },
        Step {
            name: "Start kube-apiserver",
            hosts: "masters",
            reload: false,
            services: vec!["kube-apiserver"],
        },
        Step {
            name: "Start kube-controller-manager and kube-scheduler",
            hosts: "masters",
            reload: false,
            services: vec!["kube-controller-manager", "kube-scheduler"],
        },
    ];
    match plan.load_balancer.mode {
        LoadBalancerMode::OnMasters => {
            let mut services = vec!["haproxy"];
            if plan.load_balancer.vip.is_some() {
                services.push("keepalived");
            }
            steps.push(Step {
                name: "Start the load balancer on every master",
                hosts: "masters",
                reload: false,
                services,
            });
        }
        _ if !plan.load_balancer.hosts.is_empty() => {
            steps.push(Step {
                name: "Start the load balancer",
                hosts: "load_balancers",
                reload: true,
                services: vec!["haproxy"],
            });
        }
        _ => {}
    }
    let nodes = match (plan.masters_are_nodes(), plan.workers.is_empty()) {
        (true, true) => Some("masters"),
        (true, false) => Some("masters:workers"),
        (false, false) => Some("workers"),
        (false, true) => None,
    };
    if let Some(hosts) = nodes {
        // Last: a kubelet registers through the API endpoint, which the load balancer serves.
        steps.push(Step {
            name: "Start kubelet and kube-proxy on every node",
            hosts,
            reload: true,
            services: vec!["kubelet", "kube-proxy"],
        });
    }
    steps
}

fn nix_units(plan: &Plan, host: &crate::plan::Host, role: Role) -> Vec<NixUnit> {
    let nix = |s: &str| Nix(s.to_owned());
    let mut units = Vec::new();
    for (file_name, unit) in host_unit_specs(plan, host, role) {
        let program = unit.program();
        units.push(NixUnit {
            name: file_name.trim_end_matches(".service"),
            description: nix(unit.description),
            after: unit.after.iter().map(|a| nix(a)).collect(),
            wants: unit.wants.iter().map(|w| nix(w)).collect(),
            service_type: if unit.notify { "notify" } else { "simple" },
            package: if program == "etcd" {
                "etcd"
            } else {
                "kubernetes"
            },
            program,
            args: unit
                .flags
                .iter()
                .map(|f| Nix(format!("--{}={}", f.name, f.value)))
                .collect(),
        });
    }
    if runs_haproxy(plan, role) {
        units.push(NixUnit {
            name: "haproxy",
            description: nix("HAProxy in front of the kube-apiservers"),
            after: vec![nix("network-online.target")],
            wants: vec![nix("network-online.target")],
            service_type: "notify",
            package: "haproxy",
            program: "haproxy",
            args: ["-Ws", "-f", "/etc/haproxy/haproxy.cfg"].map(nix).into(),
        });
    }
    if runs_keepalived(plan, role) {
        units.push(NixUnit {
            name: "keepalived",
            description: nix("keepalived: the API virtual IP"),
            after: vec![nix("network-online.target"), nix("haproxy.service")],
            wants: vec![nix("network-online.target")],
            service_type: "simple",
            package: "keepalived",
            program: "keepalived",
            args: [
                "--dont-fork",
                "--log-console",
                "-f",
                "/etc/keepalived/keepalived.conf",
            ]
            .map(nix)
            .into(),
        });
    }
    units
}

/// `deploy/ansible/` and `deploy/nix/` for the hosts of `listing`.
pub(crate) fn deploy_files(
    plan: &Plan,
    listing: &[HostListing<'_>],
) -> Result<Vec<(String, FileKind, Vec<u8>)>, Error> {
    let cluster = plan.cluster.name.as_str();
    let groups = grouped_hosts(plan);
    let mut nix_hosts = Vec::new();
    let mut files = Vec::new();
    for listed in listing {
        let name = listed.host.name.as_str();
        let host_files = host_files(listed, &readers(plan, listed.host, listed.role));
        let (etcd_endpoint, ready_url) = health_urls(plan, listed);
        let dirs: BTreeSet<String> = host_files
            .iter()
            .filter_map(|f| f.path.rsplit_once('/').map(|(dir, _)| dir.to_owned()))
            .collect();
        let host_vars = HostVars {
            host: name,
            etcd_endpoint,
            ready_url,
            dirs: dirs.into_iter().collect(),
            files: &host_files,
        };
        files.push((
            format!("deploy/ansible/host_vars/{name}.yml"),
            FileKind::Deploy,
            render_template(&host_vars, "ansible/host_vars.yml")?,
        ));
        nix_hosts.push(NixHost {
            name: name.to_owned(),
            // NixOS owns /etc/systemd/system; the module declares those units instead.
            files: host_files
                .iter()
                .filter(|f| !f.path.starts_with("etc/systemd/system/"))
                .map(|f| NixFile {
                    path: Nix(f.path.clone()),
                    mode: f.mode.clone(),
                })
                .collect(),
            units: nix_units(plan, listed.host, listed.role),
        });
    }
    let inventory = Inventory { cluster, groups };
    files.push((
        "deploy/ansible/inventory.ini".to_owned(),
        FileKind::Deploy,
        render_template(&inventory, "ansible/inventory.ini")?,
    ));
    let playbook = Playbook {
        cluster,
        steps: steps(plan),
        rolls: rolls(plan),
    };
    files.push((
        "deploy/ansible/playbook.yml".to_owned(),
        FileKind::Deploy,
        render_template(&playbook, "ansible/playbook.yml")?,
    ));
    files.push((
        "deploy/ansible/changes-step.yml".to_owned(),
        FileKind::Deploy,
        render_template(&ChangesStep, "ansible/changes-step.yml")?,
    ));
    let module = NixModule {
        cluster,
        hosts: nix_hosts,
    };
    files.push((
        "deploy/nix/module.nix".to_owned(),
        FileKind::Deploy,
        render_template(&module, "nix/module.nix")?,
    ));
    Ok(files)
}
