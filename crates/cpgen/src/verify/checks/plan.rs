//! The bundle against a config (CP831): cluster, hosts, addresses, roles, ports, endpoint, key
//! algorithm, CA layout and release.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::diag::counted;
use crate::diag::{Code, Diagnostic};
use crate::plan::{ComponentsVia, EtcdJoin, Host, PkiLayout, Plan};
use crate::types::KeyAlgorithm;
use crate::verify::model::{url_host, HostModel};
use crate::verify::source::Tree;

use super::{is_loopback, Audit};
use crate::bundle::manifest::{Header, Member, MANIFEST};

const NOT_BUILT_FROM: &str = "this bundle was not built from this config: verify it with the config it was built from, or build it again with `cpgen bundle CLUSTER.toml -o OUT.tar.gz --force`";

/// The port of `scheme://host:port/...`.
fn url_port(url: &str) -> Option<u16> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next()?;
    authority.rsplit_once(':')?.1.parse().ok()
}

/// The same address, however it is written (`fd00::1` and `fd00:0::1` are one).
fn same_address(a: &str, b: &str) -> bool {
    match (a.parse::<std::net::IpAddr>(), b.parse::<std::net::IpAddr>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// How the certificate reader names the key of each algorithm the config can ask for.
fn algorithm_name(algorithm: KeyAlgorithm) -> &'static str {
    match algorithm {
        KeyAlgorithm::EcdsaP256 => "ECDSA P-256",
        KeyAlgorithm::EcdsaP384 => "ECDSA P-384",
        KeyAlgorithm::Rsa2048 => "RSA-2048",
        KeyAlgorithm::Rsa3072 => "RSA-3072",
        KeyAlgorithm::Rsa4096 => "RSA-4096",
        KeyAlgorithm::Ed25519 => "Ed25519",
    }
}

fn join(set: &BTreeSet<String>) -> String {
    set.iter().map(String::as_str).collect::<Vec<_>>().join(",")
}

/// The Kubernetes release the bundle's README says it was made for.
fn readme_version(tree: &Tree) -> Option<String> {
    let text = String::from_utf8_lossy(&tree.files.get("README.md")?.data).into_owned();
    let rest = text.split_once("for Kubernetes ")?.1;
    let version: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect();
    let version = version.trim_end_matches('.');
    (!version.is_empty()).then(|| version.to_owned())
}

impl Audit<'_> {
    /// The bundle against the config given: the same cluster, hosts, addresses, roles,
    /// ports, endpoint, key algorithm, CA layout and Kubernetes release.
    pub(super) fn against_plan(&mut self, plan: &Plan) {
        let mut out = Mismatches::default();
        self.manifest_against(plan, &mut out);
        self.hosts_against(plan, &mut out);
        let header = self.manifest_header();
        let joins = header.etcd_joins();
        for master in &plan.masters {
            let Some(host) = self.host(master.name.as_str()) else {
                continue;
            };
            let join = joins.get(master.name.as_str());
            etcd_against(plan, master, host, join, &mut out);
            apiserver_against(plan, master, host, &mut out);
        }
        self.kubeconfigs_against(plan, &mut out);
        self.algorithm_against(plan, &mut out);
        self.layout_against(plan, &mut out);
        self.release_against(plan, &mut out);
        self.findings.extend(out.0);
    }

    /// The cluster's name and members in `manifest.json`.
    fn manifest_against(&self, plan: &Plan, out: &mut Mismatches) {
        if !self.tree.files.contains_key(MANIFEST) {
            return;
        }
        let header = self.manifest_header();
        let cluster = header.cluster();
        if cluster != plan.cluster.name.as_str() {
            out.add(
                MANIFEST,
                format!(
                    "cluster {} in manifest.json, {} in the config",
                    if cluster.is_empty() {
                        "(none)"
                    } else {
                        cluster
                    },
                    plan.cluster.name
                ),
            );
        }
        members_against(header.members(), Header::of(plan).members(), out);
    }
}

/// The members `manifest.json` lists (`got`) against those the config makes (`expected`).
fn members_against(got: &[Member], expected: &[Member], out: &mut Mismatches) {
    let got_members: HashMap<&str, &Member> = got.iter().map(|m| (m.name.as_str(), m)).collect();
    let expected_names: HashSet<&str> = expected.iter().map(|m| m.name.as_str()).collect();
    for want in expected {
        let Some(got) = got_members.get(want.name.as_str()) else {
            out.add(
                MANIFEST,
                format!(
                    "the config has member {} ({}), manifest.json does not",
                    want.name, want.address
                ),
            );
            continue;
        };
        if !same_address(&got.address, &want.address) {
            out.add(
                MANIFEST,
                format!(
                    "member {} has address {} in manifest.json, {} in the config",
                    want.name, got.address, want.address
                ),
            );
        }
        if got.roles != want.roles {
            out.add(
                MANIFEST,
                format!(
                    "member {} has roles [{}] in manifest.json, [{}] in the config",
                    want.name,
                    got.roles.join(", "),
                    want.roles.join(", ")
                ),
            );
        }
    }
    for got in got {
        if !expected_names.contains(got.name.as_str()) {
            out.add(
                MANIFEST,
                format!(
                    "member {} ({}) is in manifest.json, the config has no such host",
                    got.name, got.address
                ),
            );
        }
    }
}

impl Audit<'_> {
    /// Every host of the config in the bundle, and no other.
    fn hosts_against(&self, plan: &Plan, out: &mut Mismatches) {
        let planned: Vec<(&crate::plan::Host, crate::layout::Role)> =
            crate::layout::hosts(plan).collect();
        let planned_names: HashSet<&str> = planned.iter().map(|(h, _)| h.name.as_str()).collect();
        for host in self.hosts.iter().filter(|h| h.name != "admin") {
            if !planned_names.contains(host.name.as_str()) {
                out.add(
                    &format!("hosts/{}/", host.name),
                    format!(
                        "hosts/{}/ is in the bundle, the config has no host {}",
                        host.name, host.name
                    ),
                );
            }
        }
        for (host, role) in &planned {
            if self.host(host.name.as_str()).is_none() {
                out.add(
                    &format!("hosts/{}/", host.name),
                    format!(
                        "the config has {} {} ({}), the bundle has no hosts/{}/",
                        role.label(),
                        host.name,
                        host.address,
                        host.name
                    ),
                );
            }
        }
    }

    /// The API endpoint and port each kubeconfig dials.
    fn kubeconfigs_against(&self, plan: &Plan, out: &mut Mismatches) {
        let api_url = plan.api_url();
        for host in self.hosts {
            for kubeconfig in &host.kubeconfigs {
                let path = &kubeconfig.path;
                for cluster in &kubeconfig.clusters {
                    let server = &cluster.entry.server;
                    let local = url_host(server).is_some_and(is_loopback);
                    let components_local = plan.api.components_via == ComponentsVia::Local;
                    if local && components_local {
                        if url_port(server) != Some(plan.api.bind_port.get()) {
                            out.add(
                                path,
                                format!(
                                    "it dials {server}, the config's api bind_port is {}",
                                    plan.api.bind_port
                                ),
                            );
                        }
                    } else if *server != api_url {
                        out.add(
                            path,
                            format!("it dials {server}, the config's API endpoint is {api_url}"),
                        );
                    }
                }
            }
        }
    }

    /// The key algorithm of every leaf certificate.
    fn algorithm_against(&self, plan: &Plan, out: &mut Mismatches) {
        let want = algorithm_name(plan.pki.key_algorithm);
        let mut other: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (id, cert) in &self.material.certs {
            if !cert.is_ca && cert.algorithm != want {
                other.entry(&cert.algorithm).or_default().push(id);
            }
        }
        for (algorithm, ids) in other {
            let Some(first) = ids.first() else {
                continue;
            };
            let more = match ids.len() {
                1 => String::new(),
                n => format!(" ({} in all)", counted(n, "certificate")),
            };
            out.add(
                first,
                format!(
                    "a certificate with an {algorithm} key{more}, the config's key_algorithm is {} ({want})",
                    plan.pki.key_algorithm
                ),
            );
        }
    }

    /// One CA for etcd and Kubernetes, or a CA each.
    fn layout_against(&self, plan: &Plan, out: &mut Mismatches) {
        let layouts = self.masters().find_map(|m| {
            let ca = |program: &str, flag: &str| {
                m.unit(program)?
                    .flag(flag)
                    .and_then(|f| self.cert(&m.bundle_path(f)))
            };
            let etcd = ca("etcd", "trusted-ca-file")?;
            let kubernetes = ca("kube-apiserver", "client-ca-file")?;
            let file = m.bundle_path(m.unit("etcd")?.flag("trusted-ca-file")?);
            Some((file, etcd.der == kubernetes.der))
        });
        if let Some((file, shared)) = layouts {
            let (got, said) = if shared {
                (PkiLayout::SharedCa, "etcd trusts the Kubernetes CA")
            } else {
                (PkiLayout::SeparateCas, "etcd has a CA of its own")
            };
            if got != plan.pki.layout {
                out.add(
                    &file,
                    format!(
                        "{said} (layout {got}), the config's layout is {}",
                        plan.pki.layout
                    ),
                );
            }
        }
    }

    /// The Kubernetes release the README names.
    fn release_against(&self, plan: &Plan, out: &mut Mismatches) {
        if let Some(version) = readme_version(self.tree) {
            let want = plan.cluster.kubernetes_version.to_string();
            if version != want {
                out.add(
                    "README.md",
                    format!(
                        "made for Kubernetes {version}, the config's kubernetes_version is {want}"
                    ),
                );
            }
        }
    }
}

/// CP831 findings, all with the same help.
#[derive(Default)]
struct Mismatches(Vec<Diagnostic>);

impl Mismatches {
    fn add(&mut self, file: &str, message: String) {
        self.0.push(Diagnostic::file_error(
            Code::PlanMismatch,
            file,
            message,
            NOT_BUILT_FROM,
        ));
    }
}

/// A master's etcd unit: its name, ports, members and advertised addresses.
fn etcd_against(
    plan: &Plan,
    master: &Host,
    host: &HostModel,
    recorded: Option<&EtcdJoin>,
    out: &mut Mismatches,
) {
    let address = master.address.ip().to_string();
    match host.unit("etcd") {
        None => out.add(
            &format!("hosts/{}/", master.name),
            format!(
                "the config makes {} a master, but hosts/{}/ has no etcd unit",
                master.name, master.name
            ),
        ),
        Some(etcd) => {
            if let Some(name) = etcd.flag("name").filter(|n| *n != master.name.as_str()) {
                out.add(
                    &etcd.file,
                    format!("--name is {name}, the config's master is {}", master.name),
                );
            }
            for (flag, port, what) in [
                (
                    "advertise-client-urls",
                    plan.etcd.client_port,
                    "client_port",
                ),
                ("listen-client-urls", plan.etcd.client_port, "client_port"),
                (
                    "initial-advertise-peer-urls",
                    plan.etcd.peer_port,
                    "peer_port",
                ),
                ("listen-peer-urls", plan.etcd.peer_port, "peer_port"),
            ] {
                for url in etcd.flag(flag).unwrap_or_default().split(',') {
                    if let Some(got) = url_port(url).filter(|p| *p != port.get()) {
                        out.add(
                            &etcd.file,
                            format!("--{flag} has port {got}, the config's etcd {what} is {port}"),
                        );
                    }
                }
            }
            // A member that joined a running cluster lists the membership at its join, which
            // manifest.json records (and CP810 holds the unit to); one that bootstrapped
            // lists every master.
            let want: BTreeSet<String> = match recorded {
                Some(join) => join.initial_cluster.split(',').map(str::to_owned).collect(),
                None => crate::render::initial_cluster_members(plan)
                    .into_iter()
                    .collect(),
            };
            if let Some(cluster) = etcd.flag("initial-cluster") {
                let got: BTreeSet<String> = cluster
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect();
                for member in got.difference(&want) {
                    out.add(
                        &etcd.file,
                        format!("--initial-cluster has {member}, which the config's masters do not make ({})", join(&want)),
                    );
                }
                for member in want.difference(&got) {
                    out.add(
                        &etcd.file,
                        format!("--initial-cluster lacks {member}, which the config's masters make (it has {})", join(&got)),
                    );
                }
            }
            for flag in ["advertise-client-urls", "initial-advertise-peer-urls"] {
                for url in etcd.flag(flag).unwrap_or_default().split(',') {
                    if let Some(got) =
                        url_host(url).filter(|h| !h.is_empty() && !same_address(h, &address))
                    {
                        out.add(
                            &etcd.file,
                            format!("--{flag} advertises {got}, the config's address of {} is {address}", master.name),
                        );
                    }
                }
            }
        }
    }
}

/// A master's kube-apiserver unit: its address, etcd servers and port.
fn apiserver_against(plan: &Plan, master: &Host, host: &HostModel, out: &mut Mismatches) {
    let address = master.address.ip().to_string();
    match host.unit("kube-apiserver") {
        None => out.add(
            &format!("hosts/{}/", master.name),
            format!(
                "the config makes {} a master, but hosts/{}/ has no kube-apiserver unit",
                master.name, master.name
            ),
        ),
        Some(api) => {
            if let Some(got) = api
                .flag("advertise-address")
                .filter(|a| !same_address(a, &address))
            {
                out.add(
                    &api.file,
                    format!(
                        "--advertise-address is {got}, the config's address of {} is {address}",
                        master.name
                    ),
                );
            }
            let want: BTreeSet<String> = plan
                .masters
                .iter()
                .map(|m| format!("https://{}:{}", m.address.url_host(), plan.etcd.client_port))
                .collect();
            if let Some(servers) = api.flag("etcd-servers") {
                let got: BTreeSet<String> = servers
                    .split(',')
                    .filter(|u| !u.is_empty())
                    .map(str::to_owned)
                    .collect();
                if got != want {
                    out.add(
                        &api.file,
                        format!(
                            "--etcd-servers is {}, the config's masters make {}",
                            join(&got),
                            join(&want)
                        ),
                    );
                }
            }
            if let Some(got) = api
                .flag("secure-port")
                .filter(|p| p.parse::<u16>().ok() != Some(plan.api.bind_port.get()))
            {
                out.add(
                    &api.file,
                    format!(
                        "--secure-port is {got}, the config's api bind_port is {}",
                        plan.api.bind_port
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_of_urls() {
        assert_eq!(url_port("https://10.0.0.1:2379"), Some(2379));
        assert_eq!(url_port("https://[fd00::1]:2380/x"), Some(2380));
        assert_eq!(url_port("https://kubernetes"), None);
    }
}
