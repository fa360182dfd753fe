//! The audit rules: each reads the parsed hosts and key material and adds findings.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::material::{self, signed_by, CertInfo, Material};
use super::model::{self, url_host, HostModel, Unit};
use super::source::Tree;
use super::{Code, Finding, Validity};
use crate::bundle::Bundle;
use crate::diag::counted;
use crate::pki::Secrets;
use crate::plan::{ComponentsVia, PkiLayout, Plan, ServerRole};
use crate::types::KeyAlgorithm;
use crate::Error;

/// Runs every rule; returns how many certificates were checked.
pub(super) fn run(
    tree: &Tree,
    plan: Option<&Plan>,
    at: OffsetDateTime,
    findings: &mut Vec<Finding>,
) -> usize {
    let (hosts, problems) = model::hosts(tree);
    for (file, problem) in problems {
        findings.push(Finding::error(
            Code::Unparseable,
            &file,
            problem,
            "regenerate the kubeconfig",
        ));
    }
    let material = material::collect(tree, &hosts, findings);
    let masters: Vec<&HostModel> = hosts
        .iter()
        .filter(|h| h.unit("kube-apiserver").is_some() || h.unit("etcd").is_some())
        .collect();
    // Every name and address a master answers on, so a bundle with thousands of hosts is
    // audited in linear time.
    let mut master_names = BTreeMap::new();
    for master in &masters {
        master_names.insert(master.name.clone(), *master);
        if let Some(address) = master
            .unit("kube-apiserver")
            .and_then(|u| u.flag("advertise-address"))
        {
            master_names.insert(address.to_owned(), *master);
        }
        let urls = master
            .unit("etcd")
            .and_then(|u| u.flag("advertise-client-urls"))
            .unwrap_or_default();
        for host in urls.split(',').filter_map(url_host) {
            master_names.insert(host.to_owned(), *master);
        }
    }
    let by_name = hosts
        .iter()
        .filter(|h| h.name != "admin")
        .map(|h| (h.name.as_str(), h))
        .collect();
    let audit = Audit {
        tree,
        hosts: &hosts,
        by_name,
        masters,
        master_names,
        material: &material,
        findings,
    };
    audit.run(plan, at);
    super::leaks::run(tree, &material, findings);
    material.certs.len()
}

struct Audit<'a> {
    tree: &'a Tree,
    hosts: &'a [HostModel],
    masters: Vec<&'a HostModel>,
    master_names: BTreeMap<String, &'a HostModel>,
    /// Every host but `admin/` by name.
    by_name: HashMap<&'a str, &'a HostModel>,
    material: &'a Material,
    findings: &'a mut Vec<Finding>,
}

const LEAF_RENEWAL: &str =
    "renew it: `cpgen renew CLUSTER.toml`, then `cpgen bundle CLUSTER.toml -o OUT.tar.gz --force`";
const LEAF_RENEWAL_SOON: &str = "renew it soon: `cpgen renew CLUSTER.toml`, then `cpgen bundle CLUSTER.toml -o OUT.tar.gz --force`";
const CA_REPLACEMENT: &str = "replace the CA and re-issue everything it signed: a new CA means re-bootstrapping every node that trusts it, unless a staged rotation (nodes trust the old and the new CA while certificates are re-issued, then the old one is dropped) keeps the cluster running";
const CA_REPLACEMENT_SOON: &str = "plan the CA's replacement now: a new CA means re-issuing everything it signed and re-bootstrapping every node that trusts it, unless a staged rotation (nodes trust the old and the new CA while certificates are re-issued, then the old one is dropped) keeps the cluster running";

/// Unit flags that name a certificate and the key that goes with it.
const CERT_KEY_FLAGS: &[(&str, &str)] = &[
    ("cert-file", "key-file"),
    ("peer-cert-file", "peer-key-file"),
    ("tls-cert-file", "tls-private-key-file"),
    ("etcd-certfile", "etcd-keyfile"),
    ("kubelet-client-certificate", "kubelet-client-key"),
    ("proxy-client-cert-file", "proxy-client-key-file"),
    ("cluster-signing-cert-file", "cluster-signing-key-file"),
    (
        "service-account-key-file",
        "service-account-signing-key-file",
    ),
];

/// Unit flags that name a CA certificate.
const CA_FLAGS: &[&str] = &[
    "trusted-ca-file",
    "peer-trusted-ca-file",
    "client-ca-file",
    "etcd-cafile",
    "requestheader-client-ca-file",
    "root-ca-file",
    "cluster-signing-cert-file",
];

impl Audit<'_> {
    fn run(mut self, plan: Option<&Plan>, at: OffsetDateTime) {
        self.missing_files();
        self.kubeconfig_references();
        self.key_pairs();
        self.chains_and_usages();
        self.san_coverage(plan);
        self.validity(at);
        self.manifest();
        self.key_modes();
        self.etcd_members();
        self.shared_ca();
        self.named_hosts();
        self.unsafe_settings();
        self.unit_commands();
        self.unexpected_files();
        self.operator_settings();
        self.unused_signing_keys();
        if let Some(plan) = plan {
            self.against_plan(plan);
        }
    }

    fn push(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    fn masters(&self) -> impl Iterator<Item = &HostModel> {
        self.masters.iter().copied()
    }

    /// Every absolute path a unit flag or kubeconfig names, with where it is named.
    fn named_paths(&self) -> Vec<(String, String)> {
        let mut named = Vec::new();
        for host in self.hosts {
            for unit in &host.units {
                for (flag, value) in &unit.flags {
                    if value.starts_with('/') && flag != "data-dir" && !value.contains(',') {
                        named.push((host.bundle_path(value), format!("{} --{flag}", unit.file)));
                    }
                }
            }
            for (path, kubeconfig) in &host.kubeconfigs {
                let files = kubeconfig
                    .clusters
                    .iter()
                    .filter_map(|c| c.entry.certificate_authority.clone())
                    .chain(
                        kubeconfig
                            .users
                            .iter()
                            .flat_map(|u| {
                                [
                                    u.entry.client_certificate.clone(),
                                    u.entry.client_key.clone(),
                                ]
                            })
                            .flatten(),
                    );
                for file in files {
                    named.push((host.bundle_path(&file), path.clone()));
                }
            }
        }
        named
    }

    fn missing_files(&mut self) {
        for (path, named_in) in self.named_paths() {
            if !self.tree.files.contains_key(&path) {
                self.push(Finding::error(
                    Code::MissingFile,
                    &path,
                    format!("named in {named_in}, but not in the host's tree"),
                    "copy the file to the host or fix the path",
                ));
            }
        }
    }

    fn kubeconfig_references(&mut self) {
        let mut found = Vec::new();
        for host in self.hosts {
            for (path, k) in &host.kubeconfigs {
                let context = k.contexts.iter().find(|c| c.name == k.current_context);
                let Some(context) = context else {
                    found.push((
                        path.clone(),
                        format!("current-context `{}` names no context", k.current_context),
                    ));
                    continue;
                };
                if !k.clusters.iter().any(|c| c.name == context.entry.cluster) {
                    found.push((
                        path.clone(),
                        format!(
                            "context `{}` names cluster `{}`, which is not defined",
                            context.name, context.entry.cluster
                        ),
                    ));
                }
                if !k.users.iter().any(|u| u.name == context.entry.user) {
                    found.push((
                        path.clone(),
                        format!(
                            "context `{}` names user `{}`, which is not defined",
                            context.name, context.entry.user
                        ),
                    ));
                }
            }
        }
        for (path, message) in found {
            self.push(Finding::error(
                Code::DanglingReference,
                &path,
                message,
                "make current-context, the context's cluster and its user name entries that exist",
            ));
        }
    }

    /// Certificate/key pairs: named together in a unit or kubeconfig, or `X.pem` beside
    /// `X-key.pem` (`X.pub` beside `X.key`).
    fn pairs(&self) -> BTreeSet<(String, String)> {
        let mut pairs = BTreeSet::new();
        for host in self.hosts {
            for unit in &host.units {
                for (cert_flag, key_flag) in CERT_KEY_FLAGS {
                    if let (Some(cert), Some(key)) = (unit.flag(cert_flag), unit.flag(key_flag)) {
                        pairs.insert((host.bundle_path(cert), host.bundle_path(key)));
                    }
                }
            }
            for (path, k) in &host.kubeconfigs {
                for user in &k.users {
                    let cert = match (
                        &user.entry.client_certificate,
                        &user.entry.client_certificate_data,
                    ) {
                        (Some(file), _) => host.bundle_path(file),
                        (None, Some(_)) => format!("{path}#{}.client-certificate-data", user.name),
                        _ => continue,
                    };
                    let key = match (&user.entry.client_key, &user.entry.client_key_data) {
                        (Some(file), _) => host.bundle_path(file),
                        (None, Some(_)) => format!("{path}#{}.client-key-data", user.name),
                        _ => continue,
                    };
                    pairs.insert((cert, key));
                }
            }
        }
        for key in self.material.keys.keys() {
            let partner = key
                .strip_suffix("-key.pem")
                .map(|stem| format!("{stem}.pem"))
                .or_else(|| key.strip_suffix(".key").map(|stem| format!("{stem}.pub")));
            if let Some(partner) = partner.filter(|p| self.tree.files.contains_key(p)) {
                pairs.insert((partner, key.clone()));
            }
        }
        pairs
    }

    fn key_pairs(&mut self) {
        let mut found = Vec::new();
        for (cert, key) in self.pairs() {
            let public = self
                .material
                .certs
                .get(&cert)
                .map(|c| &c.public_key)
                .or_else(|| self.material.public_keys.get(&cert));
            if let (Some(public), Some(private)) = (public, self.material.keys.get(&key)) {
                if public != private {
                    found.push((key, cert));
                }
            }
        }
        for (key, cert) in found {
            self.push(Finding::error(
                Code::KeyMismatch,
                &key,
                format!("this key does not belong to {cert}: their public keys differ"),
                "put the key that was issued with the certificate in place, or re-issue both",
            ));
        }
    }

    fn cert(&self, id: &str) -> Option<&CertInfo> {
        self.material.certs.get(id)
    }

    /// (leaf, CA, role, named in): the CA a leaf must chain to, taken from the units and
    /// kubeconfigs that use both.
    fn chains(&self) -> Vec<(String, String, Role, String)> {
        let mut chains = Vec::new();
        let client_cas: Vec<String> = self
            .masters()
            .filter_map(|m| {
                m.unit("kube-apiserver")?
                    .flag("client-ca-file")
                    .map(|f| m.bundle_path(f))
            })
            .collect();
        for host in self.hosts {
            let etcd = host.unit("etcd");
            let api = host.unit("kube-apiserver");
            let path = |flag: &str, unit: Option<&model::Unit>| {
                unit.and_then(|u| u.flag(flag)).map(|f| host.bundle_path(f))
            };
            let mut add = |leaf: Option<String>, ca: Option<String>, role: Role, named: &str| {
                if let (Some(leaf), Some(ca)) = (leaf, ca) {
                    chains.push((leaf, ca, role, named.to_owned()));
                }
            };
            let etcd_clients_ca =
                path("etcd-cafile", api).or_else(|| path("trusted-ca-file", etcd));
            add(
                path("cert-file", etcd),
                etcd_clients_ca,
                Role::Server,
                "etcd --cert-file",
            );
            add(
                path("peer-cert-file", etcd),
                path("peer-trusted-ca-file", etcd),
                Role::Peer,
                "etcd --peer-cert-file",
            );
            let etcd_trust = path("trusted-ca-file", etcd).or_else(|| {
                self.masters().find_map(|m| {
                    m.unit("etcd")?
                        .flag("trusted-ca-file")
                        .map(|f| m.bundle_path(f))
                })
            });
            add(
                path("etcd-certfile", api),
                etcd_trust,
                Role::Client,
                "kube-apiserver --etcd-certfile",
            );
            add(
                path("kubelet-client-certificate", api),
                path("client-ca-file", api),
                Role::Client,
                "kube-apiserver --kubelet-client-certificate",
            );
            add(
                path("proxy-client-cert-file", api),
                path("requestheader-client-ca-file", api),
                Role::Client,
                "kube-apiserver --proxy-client-cert-file",
            );
            for (kpath, k) in &host.kubeconfigs {
                for cluster in &k.clusters {
                    let ca = match (
                        &cluster.entry.certificate_authority,
                        &cluster.entry.certificate_authority_data,
                    ) {
                        (Some(file), _) => host.bundle_path(file),
                        (None, Some(_)) => {
                            format!("{kpath}#{}.certificate-authority-data", cluster.name)
                        }
                        _ => continue,
                    };
                    // The API server this kubeconfig reaches presents its serving certificate.
                    for server in self.apiserver_certs_reached(host, &cluster.entry.server) {
                        add(
                            Some(server),
                            Some(ca.clone()),
                            Role::Server,
                            &format!("{kpath} (server)"),
                        );
                    }
                }
                for user in &k.users {
                    let cert = match (
                        &user.entry.client_certificate,
                        &user.entry.client_certificate_data,
                    ) {
                        (Some(file), _) => host.bundle_path(file),
                        (None, Some(_)) => format!("{kpath}#{}.client-certificate-data", user.name),
                        _ => continue,
                    };
                    let ca = path("client-ca-file", api).or_else(|| client_cas.first().cloned());
                    add(Some(cert), ca, Role::Client, kpath);
                }
            }
        }
        chains
    }

    fn chains_and_usages(&mut self) {
        let mut found = Vec::new();
        let mut cas = BTreeSet::new();
        for host in self.hosts {
            for unit in &host.units {
                for flag in CA_FLAGS {
                    if let Some(file) = unit.flag(flag) {
                        cas.insert(host.bundle_path(file));
                    }
                }
            }
        }
        let mut leaves = BTreeSet::new();
        let chains = self.chains();
        // Signature checks dominate a large audit; they run on every core, in order.
        // Signature checks dominate a large audit; each distinct (certificate, CA) pair is
        // checked once (a worker's kube-proxy.pem is the same bytes on every worker), on
        // every core.
        let signed: HashMap<(&[u8], &[u8]), bool> = {
            use rayon::prelude::*;
            let pairs: HashSet<(&[u8], &[u8])> = chains
                .iter()
                .filter_map(|(leaf_id, ca_id, _, _)| {
                    Some((
                        self.cert(leaf_id)?.der.as_slice(),
                        self.cert(ca_id)?.der.as_slice(),
                    ))
                })
                .collect();
            pairs
                .into_par_iter()
                .map(|(leaf, ca)| ((leaf, ca), signed_by(leaf, ca)))
                .collect()
        };
        for (leaf_id, ca_id, role, named) in chains {
            cas.insert(ca_id.clone());
            leaves.insert(leaf_id.clone());
            let (Some(leaf), Some(ca)) = (self.cert(&leaf_id), self.cert(&ca_id)) else {
                continue;
            };
            let leaf_and_ca = (leaf.der.as_slice(), ca.der.as_slice());
            if !signed.get(&leaf_and_ca).copied().unwrap_or(true) {
                found.push(Finding::error(
                    Code::WrongIssuer,
                    &leaf_id,
                    format!(
                        "issued by `{}`, but {named} trusts `{}` ({ca_id})",
                        leaf.issuer, ca.subject
                    ),
                    "re-issue it from the CA its peers trust, or point the unit at the right CA",
                ));
            }
            if let Some(problem) = role.misfit(leaf) {
                found.push(Finding::error(
                    Code::WrongUsage,
                    &leaf_id,
                    format!("{problem} ({named})"),
                    role.help(),
                ));
            }
        }
        for ca_id in &cas {
            let Some(ca) = self.cert(ca_id) else { continue };
            if !ca.is_ca {
                found.push(Finding::error(
                    Code::WrongUsage,
                    ca_id,
                    "used as a CA, but it is not one (basicConstraints lack CA:TRUE)".into(),
                    "point the unit or kubeconfig at the CA certificate",
                ));
            } else if ca.key_cert_sign == Some(false) {
                found.push(Finding::error(
                    Code::WrongUsage,
                    ca_id,
                    "a CA whose keyUsage lacks keyCertSign cannot sign certificates".into(),
                    "re-create the CA with keyCertSign",
                ));
            }
        }
        for leaf_id in leaves.difference(&cas) {
            if self.cert(leaf_id).is_some_and(|c| c.is_ca) {
                found.push(Finding::error(
                    Code::WrongUsage,
                    leaf_id,
                    "a leaf certificate with CA:TRUE: anyone holding its key can mint certificates"
                        .into(),
                    "re-issue it with CA:FALSE",
                ));
            }
        }
        self.findings.extend(found);
    }

    /// The apiserver serving certificates a client of `url` on `host` may be answered with.
    fn apiserver_certs_reached(&self, host: &HostModel, url: &str) -> Vec<String> {
        let Some(target) = url_host(url) else {
            return Vec::new();
        };
        let serving = |m: &HostModel| {
            m.unit("kube-apiserver")?
                .flag("tls-cert-file")
                .map(|f| m.bundle_path(f))
        };
        let loopback = target == "localhost"
            || target
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if loopback {
            return serving(host).into_iter().collect();
        }
        if let Some(master) = self.master_at(target) {
            return serving(master).into_iter().collect();
        }
        // Anything else is a load balancer, which may hand the connection to any master.
        self.masters().filter_map(serving).collect()
    }

    /// The master whose own name or address `target` is.
    fn master_at(&self, target: &str) -> Option<&HostModel> {
        self.master_names.get(target).copied()
    }

    /// (target dialled, serving certificate, who dials).
    fn inferred_dials(&self) -> Vec<(String, String, String)> {
        let mut dials = Vec::new();
        for host in self.hosts {
            if let Some(etcd) = host.unit("etcd") {
                for (urls_flag, cert_flag) in [
                    ("advertise-client-urls", "cert-file"),
                    ("initial-advertise-peer-urls", "peer-cert-file"),
                ] {
                    if let (Some(urls), Some(cert)) = (etcd.flag(urls_flag), etcd.flag(cert_flag)) {
                        for url in urls.split(',') {
                            dials.extend(url_host(url).map(|t| {
                                (
                                    t.to_owned(),
                                    host.bundle_path(cert),
                                    format!("{} --{urls_flag}", etcd.file),
                                )
                            }));
                        }
                    }
                }
            }
            if let Some(urls) = host
                .unit("kube-apiserver")
                .and_then(|u| u.flag("etcd-servers"))
            {
                for target in urls.split(',').filter_map(url_host) {
                    let cert = self
                        .master_at(target)
                        .and_then(|m| m.unit("etcd")?.flag("cert-file").map(|f| m.bundle_path(f)));
                    dials.extend(cert.map(|c| {
                        (
                            target.to_owned(),
                            c,
                            format!("hosts/{}: kube-apiserver --etcd-servers", host.name),
                        )
                    }));
                }
            }
            for (path, k) in &host.kubeconfigs {
                for cluster in &k.clusters {
                    let Some(target) = url_host(&cluster.entry.server) else {
                        continue;
                    };
                    for cert in self.apiserver_certs_reached(host, &cluster.entry.server) {
                        dials.push((
                            target.to_owned(),
                            cert,
                            format!("{path} server: {}", cluster.entry.server),
                        ));
                    }
                }
            }
            for (name, target, _) in &host.haproxy_servers {
                let cert = self.master_at(target).and_then(|m| {
                    m.unit("kube-apiserver")?
                        .flag("tls-cert-file")
                        .map(|f| m.bundle_path(f))
                });
                dials.extend(cert.map(|c| {
                    (
                        target.clone(),
                        c,
                        format!("hosts/{}: haproxy server {name}", host.name),
                    )
                }));
            }
        }
        dials
    }

    /// With a plan: exactly the names and addresses its clients dial.
    fn planned_dials(&self, plan: &Plan) -> Vec<(String, String, String)> {
        let mut dials = Vec::new();
        for dial in plan.dials() {
            for (i, master) in plan.masters.iter().enumerate() {
                if dial.master.is_some_and(|m| m != i) {
                    continue;
                }
                let Some(host) = self.hosts.iter().find(|h| h.name == master.name.as_str()) else {
                    continue;
                };
                let (program, flag) = match dial.role {
                    ServerRole::Apiserver => ("kube-apiserver", "tls-cert-file"),
                    ServerRole::EtcdServer => ("etcd", "cert-file"),
                };
                if let Some(cert) = host.unit(program).and_then(|u| u.flag(flag)) {
                    dials.push((
                        dial.target.to_string(),
                        host.bundle_path(cert),
                        dial.client.to_owned(),
                    ));
                }
            }
        }
        dials
    }

    fn san_coverage(&mut self, plan: Option<&Plan>) {
        let dials = match plan {
            Some(plan) => self.planned_dials(plan),
            None => self.inferred_dials(),
        };
        let mut missing: BTreeMap<(String, String), String> = BTreeMap::new();
        for (target, cert_id, who) in dials {
            if self.cert(&cert_id).is_some_and(|c| !c.covers(&target)) {
                missing.entry((cert_id, target)).or_insert(who);
            }
        }
        // Against a config, a missing SAN means the bundle predates the config: cpgen
        // computes every SAN a client dials, so building again is the whole fix.
        let help = if plan.is_some() {
            "the bundle was not built from this config: build it again with `cpgen bundle CLUSTER.toml -o OUT.tar.gz --force`"
        } else {
            "re-issue the certificate with that name or address among its SANs"
        };
        for ((cert_id, target), who) in missing {
            self.push(Finding::error(
                Code::SanNotCovered,
                &cert_id,
                format!(
                    "{target} is dialled by {who}, but this certificate's SANs do not cover it"
                ),
                help,
            ));
        }
    }

    fn validity(&mut self, at: OffsetDateTime) {
        // When each CA (by subject) ends: a leaf cut to its CA's end cannot be renewed past it.
        let mut ca_ends: HashMap<&str, OffsetDateTime> = HashMap::new();
        for cert in self.material.certs.values().filter(|c| c.is_ca) {
            let end = ca_ends
                .entry(cert.subject.as_str())
                .or_insert(cert.not_after);
            *end = (*end).min(cert.not_after);
        }
        let mut found = Vec::new();
        for (id, cert) in &self.material.certs {
            let ca_ends_first = ca_ends
                .get(cert.issuer.as_str())
                .is_some_and(|end| *end <= cert.not_after);
            // `cpgen renew` re-issues leaves only; a CA is replaced, which every node must
            // learn to trust, and so is the CA of a leaf that ends with it.
            let (renew, renew_soon) = if cert.is_ca || ca_ends_first {
                (CA_REPLACEMENT, CA_REPLACEMENT_SOON)
            } else {
                (LEAF_RENEWAL, LEAF_RENEWAL_SOON)
            };
            match Validity::at(cert.not_before, cert.not_after, at) {
                Validity::Valid => {}
                Validity::Expired => found.push(Finding::error(
                    Code::Expired,
                    id,
                    format!("expired at {}", rfc3339(cert.not_after)),
                    renew,
                )),
                Validity::NotYetValid => found.push(Finding::error(
                    Code::Expired,
                    id,
                    format!("not valid until {}", rfc3339(cert.not_before)),
                    "check the clock of the machine that issued it",
                )),
                Validity::ExpiresSoon => found.push(Finding::warning(
                    Code::ExpiresSoon,
                    id,
                    format!(
                        "expires at {}, in {} days",
                        rfc3339(cert.not_after),
                        (cert.not_after - at).whole_days()
                    ),
                    renew_soon,
                )),
            }
        }
        self.findings.extend(found);
    }

    fn manifest(&mut self) {
        let Some(entry) = self.tree.files.get("manifest.json") else {
            return;
        };
        #[derive(serde::Deserialize)]
        struct Manifest {
            files: Vec<ManifestEntry>,
        }
        #[derive(serde::Deserialize)]
        struct ManifestEntry {
            path: String,
            mode: String,
            sha256: String,
        }
        let manifest: Manifest = match serde_json::from_slice(&entry.data) {
            Ok(m) => m,
            Err(e) => {
                self.push(Finding::error(
                    Code::ManifestMismatch,
                    "manifest.json",
                    format!("does not parse: {e}"),
                    "regenerate the bundle",
                ));
                return;
            }
        };
        let mut listed = BTreeSet::new();
        let mut found = Vec::new();
        for item in &manifest.files {
            listed.insert(item.path.as_str());
            let Some(file) = self.tree.files.get(&item.path) else {
                found.push(Finding::error(
                    Code::ManifestMismatch,
                    &item.path,
                    "listed in manifest.json but missing".into(),
                    "restore the file from the bundle",
                ));
                continue;
            };
            let sha = crate::bundle::manifest::hex(&Sha256::digest(&file.data));
            if sha != item.sha256 {
                found.push(Finding::error(Code::ManifestMismatch, &item.path, "its contents differ from manifest.json (sha256)".into(), "something changed it after cpgen wrote it: restore it or regenerate the bundle"));
            }
            if u32::from_str_radix(&item.mode, 8).ok() != Some(file.mode & 0o7777) {
                found.push(Finding::error(
                    Code::ManifestMismatch,
                    &item.path,
                    format!(
                        "mode {:04o}, but manifest.json says {}",
                        file.mode & 0o7777,
                        item.mode
                    ),
                    &format!("chmod {} it", item.mode),
                ));
            }
        }
        for path in self
            .tree
            .files
            .keys()
            .filter(|p| *p != "manifest.json" && !listed.contains(p.as_str()))
        {
            found.push(Finding::error(
                Code::ManifestMismatch,
                path,
                "not listed in manifest.json".into(),
                "remove it, or regenerate the bundle",
            ));
        }
        self.findings.extend(found);
    }

    fn key_modes(&mut self) {
        let mut found = Vec::new();
        for (path, entry) in &self.tree.files {
            found.extend(super::source::unsafe_mode(path, entry.mode, "file"));
            let text = String::from_utf8_lossy(&entry.data);
            let secret = text.contains("PRIVATE KEY-----")
                || text.contains("client-key-data")
                || text.contains("EncryptionConfiguration");
            if secret && entry.mode & 0o077 != 0 {
                found.push(Finding::error(
                    Code::KeyReadable,
                    path,
                    format!(
                        "holds key material but has mode {:04o}: other users can read it",
                        entry.mode & 0o777
                    ),
                    "chmod 600 it",
                ));
            }
        }
        self.findings.extend(found);
    }

    fn etcd_members(&mut self) {
        let mut found = Vec::new();
        for host in self.hosts {
            let Some(etcd) = host.unit("etcd") else {
                continue;
            };
            let Some(cluster) = etcd.flag("initial-cluster") else {
                continue;
            };
            let members = cluster.split(',').filter(|m| !m.is_empty()).count();
            if members % 2 == 0 {
                found.push(Finding::error(
                    Code::EvenEtcdMembers,
                    &etcd.file,
                    format!("--initial-cluster has {members} members: they tolerate {} failure(s), no more than {} would", (members.saturating_sub(1)) / 2, members - 1),
                    "run an odd number of etcd members",
                ));
            }
        }
        self.findings.extend(found);
    }

    fn shared_ca(&mut self) {
        let mut found = Vec::new();
        for host in self.masters() {
            let ca = |program: &str, flag: &str| {
                host.unit(program)?.flag(flag).map(|f| host.bundle_path(f))
            };
            let (Some(etcd_ca), Some(client_ca)) = (
                ca("etcd", "trusted-ca-file"),
                ca("kube-apiserver", "client-ca-file"),
            ) else {
                continue;
            };
            let same = match (self.cert(&etcd_ca), self.cert(&client_ca)) {
                (Some(a), Some(b)) => a.der == b.der,
                _ => false,
            };
            if same {
                found.push(Finding::warning(
                    Code::SharedCa,
                    &etcd_ca,
                    "etcd trusts the CA that signs every Kubernetes client certificate: any kubelet's certificate can read and write etcd".into(),
                    "give etcd a CA of its own (cpgen's layout = \"separate-cas\")",
                ));
            }
        }
        self.findings.extend(found);
    }
}

/// How a leaf is used, which decides the extended key usage it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Server,
    Client,
    Peer,
}

impl Role {
    fn misfit(self, cert: &CertInfo) -> Option<String> {
        if cert.is_ca {
            return Some("a CA certificate used as a leaf".into());
        }
        let (server, client) = cert.eku?;
        match self {
            Role::Server if !server => Some(
                "used as a server certificate, but its extendedKeyUsage lacks serverAuth".into(),
            ),
            Role::Client if !client => Some(
                "used as a client certificate, but its extendedKeyUsage lacks clientAuth".into(),
            ),
            Role::Peer if !(server && client) => {
                Some("used for etcd peer traffic, which needs serverAuth and clientAuth".into())
            }
            _ => None,
        }
    }

    fn help(self) -> &'static str {
        match self {
            Role::Server => "re-issue it with serverAuth",
            Role::Client => "re-issue it with clientAuth",
            Role::Peer => "re-issue it with serverAuth and clientAuth",
        }
    }
}

/// A time as people and tools read it: `2026-12-07T00:23:03Z`.
fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// The units cpgen writes, by file name, with the one program each runs.
/// The flags cpgen writes for each program: any other (`--token-auth-file`,
/// `--authorization-config`, etcd's `--config-file`, which makes etcd ignore every other
/// flag) changes who may do what, so verify allows none.
const UNIT_FLAGS: &[(&str, &[&str])] = &[
    (
        "etcd",
        &[
            "advertise-client-urls",
            "cert-file",
            "client-cert-auth",
            "data-dir",
            "initial-advertise-peer-urls",
            "initial-cluster",
            "initial-cluster-state",
            "initial-cluster-token",
            "key-file",
            "listen-client-urls",
            "listen-peer-urls",
            "name",
            "peer-cert-file",
            "peer-client-cert-auth",
            "peer-key-file",
            "peer-trusted-ca-file",
            "trusted-ca-file",
        ],
    ),
    (
        "kube-apiserver",
        &[
            "advertise-address",
            "allow-privileged",
            "authorization-mode",
            "bind-address",
            "client-ca-file",
            "enable-admission-plugins",
            "encryption-provider-config",
            "endpoint-reconciler-type",
            "etcd-cafile",
            "etcd-certfile",
            "etcd-keyfile",
            "etcd-servers",
            "kubelet-client-certificate",
            "kubelet-client-key",
            "proxy-client-cert-file",
            "proxy-client-key-file",
            "requestheader-allowed-names",
            "requestheader-client-ca-file",
            "requestheader-extra-headers-prefix",
            "requestheader-group-headers",
            "requestheader-username-headers",
            "secure-port",
            "service-account-issuer",
            "service-account-key-file",
            "service-account-signing-key-file",
            "service-cluster-ip-range",
            "service-node-port-range",
            "tls-cert-file",
            "tls-private-key-file",
            "v",
        ],
    ),
    (
        "kube-controller-manager",
        &[
            "allocate-node-cidrs",
            "authentication-kubeconfig",
            "authorization-kubeconfig",
            "bind-address",
            "client-ca-file",
            "cluster-cidr",
            "cluster-name",
            "cluster-signing-cert-file",
            "cluster-signing-key-file",
            "controllers",
            "kubeconfig",
            "leader-elect",
            "requestheader-client-ca-file",
            "root-ca-file",
            "service-account-private-key-file",
            "service-cluster-ip-range",
            "use-service-account-credentials",
            "v",
        ],
    ),
    (
        "kube-scheduler",
        &[
            "authentication-kubeconfig",
            "authorization-kubeconfig",
            "bind-address",
            "kubeconfig",
            "leader-elect",
            "v",
        ],
    ),
];

/// Flags whose absence opens the component: kube-apiserver without
/// `--authorization-mode` allows every request, without `--client-ca-file` or its TLS pair
/// it authenticates no client; etcd without certificate auth serves anyone.
const REQUIRED_FLAGS: &[(&str, &[&str])] = &[
    (
        "etcd",
        &[
            "client-cert-auth",
            "peer-client-cert-auth",
            "trusted-ca-file",
            "peer-trusted-ca-file",
            "cert-file",
            "key-file",
            "peer-cert-file",
            "peer-key-file",
        ],
    ),
    (
        "kube-apiserver",
        &[
            "authorization-mode",
            "client-ca-file",
            "tls-cert-file",
            "tls-private-key-file",
            "etcd-cafile",
            "etcd-certfile",
            "etcd-keyfile",
        ],
    ),
];

const UNIT_COMMANDS: &[(&str, &str)] = &[
    ("etcd.service", "/usr/bin/etcd"),
    ("kube-apiserver.service", "/usr/bin/kube-apiserver"),
    (
        "kube-controller-manager.service",
        "/usr/bin/kube-controller-manager",
    ),
    ("kube-scheduler.service", "/usr/bin/kube-scheduler"),
];

const NOT_BUILT_FROM: &str = "this bundle was not built from this config: verify it with the config it was built from, or build it again with `cpgen bundle CLUSTER.toml -o OUT.tar.gz --force`";

/// What `manifest.json` says of the cluster; absent in a hand-made bundle.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct ManifestHeader {
    cluster: Option<String>,
    members: Vec<Member>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
struct Member {
    name: String,
    address: String,
    roles: Vec<String>,
}

/// What a host named by another file must have to play its part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Some file.
    Files,
    /// An etcd unit.
    Etcd,
    /// A kube-apiserver unit.
    Apiserver,
    /// An HAProxy config.
    Haproxy,
    /// A kube-apiserver unit or an HAProxy config: something a kubeconfig can dial.
    Api,
}

/// Go's boolean flag values that mean true.
fn flag_true(value: &str) -> bool {
    matches!(value, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

/// The port of `scheme://host:port/...`.
fn url_port(url: &str) -> Option<u16> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next()?;
    authority.rsplit_once(':')?.1.parse().ok()
}

fn is_loopback(target: &str) -> bool {
    target == "localhost"
        || target
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An address as one text however it is written (`fd00:0::1` is `fd00::1`); a name as is.
fn canonical(target: &str) -> String {
    target
        .parse::<std::net::IpAddr>()
        .map_or_else(|_| target.to_owned(), |ip| ip.to_string())
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

impl<'a> Audit<'a> {
    fn manifest_header(&self) -> ManifestHeader {
        self.tree
            .files
            .get("manifest.json")
            .and_then(|entry| serde_json::from_slice(&entry.data).ok())
            .unwrap_or_default()
    }

    fn host(&self, name: &str) -> Option<&'a HostModel> {
        self.by_name.get(name).copied()
    }

    /// The host a name or address that a file dials belongs to: a master by what its units
    /// advertise, a manifest member by name or address, or a host of that name.
    fn resolve(&self, target: &str, members: &HashMap<String, String>) -> Option<String> {
        if let Some(master) = self.master_at(target) {
            return Some(master.name.clone());
        }
        if let Some(member) = members.get(&canonical(target)) {
            return Some(member.clone());
        }
        self.host(target).map(|h| h.name.clone())
    }

    /// What host `name` lacks of `need`, in words; `None` when it has it.
    fn lacks(&self, name: &str, need: Need) -> Option<String> {
        let Some(host) = self.host(name) else {
            return Some(format!("the bundle has no hosts/{name}/"));
        };
        let (has, what) = match need {
            Need::Files => (true, ""),
            Need::Etcd => (host.unit("etcd").is_some(), "an etcd unit"),
            Need::Apiserver => (
                host.unit("kube-apiserver").is_some(),
                "a kube-apiserver unit",
            ),
            Need::Haproxy => (host.haproxy_config.is_some(), "an HAProxy config"),
            Need::Api => (
                host.unit("kube-apiserver").is_some() || host.haproxy_config.is_some(),
                "a kube-apiserver unit or an HAProxy config",
            ),
        };
        (!has).then(|| format!("hosts/{name}/ has no {what}"))
    }

    /// Every host the bundle's own files name must be in it with the files its part needs:
    /// a bundle with a master cut out (its tree deleted, the manifest redone) would
    /// otherwise verify clean while etcd, the apiservers and HAProxy still count on it.
    fn named_hosts(&mut self) {
        let members = self.manifest_header().members;
        // Each member by its name and by its address, so that each lookup is one step.
        let by_member: HashMap<String, String> = members
            .iter()
            .flat_map(|m| {
                [
                    (m.name.clone(), m.name.clone()),
                    (canonical(&m.address), m.name.clone()),
                ]
            })
            .collect();
        let mut found = Vec::new();
        let mut missing = |file: &str, what: String, lack: String| {
            found.push(Finding::error(
                Code::MissingHost,
                file,
                format!("{what}, but {lack}"),
                "the bundle is incomplete: build it again, or restore the host's files",
            ));
        };
        for host in self.hosts {
            if let Some(etcd) = host.unit("etcd") {
                let cluster = etcd.flag("initial-cluster").unwrap_or_default();
                for member in cluster.split(',').filter(|m| !m.is_empty()) {
                    let (name, url) = member.split_once('=').unwrap_or((member, ""));
                    let resolved = if self.host(name).is_some() {
                        Some(name.to_owned())
                    } else {
                        url_host(url).and_then(|t| self.resolve(t, &by_member))
                    };
                    let lack = match resolved {
                        Some(resolved) => self.lacks(&resolved, Need::Etcd),
                        None => Some(format!("the bundle has no hosts/{name}/")),
                    };
                    if let Some(lack) = lack {
                        missing(
                            &etcd.file,
                            format!("--initial-cluster names etcd member {name} ({url})"),
                            lack,
                        );
                    }
                }
            }
            if let Some(api) = host.unit("kube-apiserver") {
                let servers = api.flag("etcd-servers").unwrap_or_default();
                for url in servers.split(',').filter(|u| !u.is_empty()) {
                    let Some(target) = url_host(url) else {
                        continue;
                    };
                    if is_loopback(target) {
                        if let Some(lack) = self.lacks(&host.name, Need::Etcd) {
                            missing(&api.file, format!("--etcd-servers names {url}"), lack);
                        }
                        continue;
                    }
                    let lack = match self.resolve(target, &by_member) {
                        Some(resolved) => self.lacks(&resolved, Need::Etcd),
                        None => Some(format!("{target} is no host of the bundle")),
                    };
                    if let Some(lack) = lack {
                        missing(&api.file, format!("--etcd-servers names {url}"), lack);
                    }
                }
            }
            if let Some(config) = &host.haproxy_config {
                for (name, target, port) in &host.haproxy_servers {
                    let lack = match self.resolve(target, &by_member) {
                        Some(resolved) => self.lacks(&resolved, Need::Apiserver),
                        None => Some(format!("{target} is no host of the bundle")),
                    };
                    if let Some(lack) = lack {
                        missing(
                            config,
                            format!("HAProxy's server {name} is {target}:{port}"),
                            lack,
                        );
                    }
                }
            }
            for (path, kubeconfig) in &host.kubeconfigs {
                for cluster in &kubeconfig.clusters {
                    let server = &cluster.entry.server;
                    let Some(target) = url_host(server) else {
                        continue;
                    };
                    let lack = if is_loopback(target) {
                        if host.name == "admin" {
                            continue;
                        }
                        self.lacks(&host.name, Need::Api)
                    } else {
                        // A name or address that is no host is a balancer outside the
                        // bundle (a VIP, a cloud load balancer): nothing to look for.
                        let Some(resolved) = self.resolve(target, &by_member) else {
                            continue;
                        };
                        self.lacks(&resolved, Need::Api)
                    };
                    if let Some(lack) = lack {
                        missing(path, format!("it dials {server}"), lack);
                    }
                }
            }
        }
        for member in &members {
            let roles = &member.roles;
            let mut needs = Vec::new();
            if roles.iter().any(|r| r == "master") {
                needs.push(Need::Apiserver);
            }
            if roles.iter().any(|r| r == "etcd") {
                needs.push(Need::Etcd);
            }
            if roles.iter().any(|r| r == "load-balancer") {
                needs.push(Need::Haproxy);
            }
            if needs.is_empty() {
                needs.push(Need::Files);
            }
            for need in needs {
                if let Some(lack) = self.lacks(&member.name, need) {
                    missing(
                        "manifest.json",
                        format!(
                            "member {} ({}, {}) is listed",
                            member.name,
                            member.address,
                            roles.join(", ")
                        ),
                        lack,
                    );
                    if self.host(&member.name).is_none() {
                        break;
                    }
                }
            }
        }
        self.findings.extend(found);
    }

    /// Settings that open the control plane to anyone who can reach it.
    fn unsafe_settings(&mut self) {
        let mut found = Vec::new();
        let mut unsafe_setting = |file: &str, message: String, help: &str| {
            found.push(Finding::error(Code::UnsafeSetting, file, message, help));
        };
        for host in self.hosts {
            for unit in &host.units {
                match unit.program.as_str() {
                    "kube-apiserver" => {
                        let client_ca = unit.flag("client-ca-file");
                        let header_ca = unit.flag("requestheader-client-ca-file");
                        if header_ca.is_some() && header_ca == client_ca {
                            unsafe_setting(
                                &unit.file,
                                "--requestheader-client-ca-file is --client-ca-file: any client of the cluster may send X-Remote-User and act as anyone".into(),
                                "trust the front-proxy CA for request headers, as cpgen writes it",
                            );
                        }
                        if unit
                            .flag("requestheader-allowed-names")
                            .is_some_and(|names| names.trim().is_empty())
                        {
                            unsafe_setting(
                                &unit.file,
                                "--requestheader-allowed-names is empty: every certificate of the request-header CA may send X-Remote-User and act as anyone".into(),
                                "allow front-proxy-client only, as cpgen writes it",
                            );
                        }
                        let modes = unit.flag("authorization-mode").unwrap_or_default();
                        if modes.split(',').any(|m| m.trim() == "AlwaysAllow") {
                            unsafe_setting(
                                &unit.file,
                                format!("--authorization-mode={modes} includes AlwaysAllow: every authenticated request is allowed"),
                                "use --authorization-mode=Node,RBAC",
                            );
                        }
                        if unit.flag("anonymous-auth").is_some_and(flag_true) {
                            unsafe_setting(
                                &unit.file,
                                "--anonymous-auth=true: requests without credentials are served as system:anonymous".into(),
                                "remove --anonymous-auth=true",
                            );
                        }
                        if let Some(servers) = unit
                            .flag("etcd-servers")
                            .filter(|servers| has_plain_url(servers))
                        {
                            unsafe_setting(
                                &unit.file,
                                format!("--etcd-servers={servers} has a URL that is not https://: the cluster's data travels in clear text without authentication"),
                                "dial etcd over https://",
                            );
                        }
                    }
                    "etcd" => {
                        for flag in ["client-cert-auth", "peer-client-cert-auth"] {
                            let message = match unit.flag(flag) {
                                Some(value) if flag_true(value) => continue,
                                Some(value) => format!("--{flag}={value}"),
                                None => format!("--{flag} is not set (etcd's default is false)"),
                            };
                            unsafe_setting(
                                &unit.file,
                                format!("{message}: etcd accepts connections without a certificate its CA signed"),
                                &format!("set --{flag}=true"),
                            );
                        }
                        for flag in ["auto-tls", "peer-auto-tls"] {
                            if unit.flag(flag).is_some_and(flag_true) {
                                unsafe_setting(
                                    &unit.file,
                                    format!("--{flag}=true: etcd makes itself a certificate nobody can check"),
                                    &format!("remove --{flag}"),
                                );
                            }
                        }
                        for (flag, value) in &unit.flags {
                            if has_plain_url(value) {
                                unsafe_setting(
                                    &unit.file,
                                    format!("--{flag}={value} has a URL that is not https:// (http://, unix://): etcd traffic without TLS, so without certificate authentication"),
                                    "use https:// URLs",
                                );
                            }
                        }
                    }
                    _ => {}
                }
            }
            for (path, kubeconfig) in &host.kubeconfigs {
                for key in &kubeconfig.unexpected_keys {
                    unsafe_setting(
                        path,
                        format!("{key}: a kubeconfig setting cpgen does not write (a credential, a proxy, another server name?)"),
                        "restore the kubeconfig cpgen wrote; cpgen's authenticate with a client certificate and trust one CA",
                    );
                }
                for cluster in &kubeconfig.clusters {
                    let entry = &cluster.entry;
                    if entry.certificate_authority.is_none()
                        && entry.certificate_authority_data.is_none()
                    {
                        unsafe_setting(
                            path,
                            format!("cluster {}: no certificate-authority: the client trusts every CA of the machine", cluster.name),
                            "give the cluster's CA, as cpgen's kubeconfigs do",
                        );
                    }
                    if cluster.entry.insecure_skip_tls_verify {
                        unsafe_setting(
                            path,
                            format!("cluster {}: insecure-skip-tls-verify: true: the client accepts any server", cluster.name),
                            "remove insecure-skip-tls-verify and give the cluster's CA",
                        );
                    }
                    if cluster
                        .entry
                        .server
                        .to_ascii_lowercase()
                        .starts_with("http://")
                    {
                        unsafe_setting(
                            path,
                            format!(
                                "cluster {}: server {} is http://: credentials in clear text to any server",
                                cluster.name, cluster.entry.server
                            ),
                            "dial the API over https://",
                        );
                    }
                }
                for user in &kubeconfig.users {
                    for (present, what) in [
                        (user.entry.exec.is_some(), "exec"),
                        (user.entry.auth_provider.is_some(), "auth-provider"),
                    ] {
                        if present {
                            unsafe_setting(
                                path,
                                format!("user {}: an {what} plugin: the client runs a program the bundle chose", user.name),
                                "remove the plugin; cpgen's kubeconfigs authenticate with a client certificate",
                            );
                        }
                    }
                }
            }
        }
        self.findings.extend(found);
    }

    /// What the encryption config and `admin/etcdctl.env` say: encryption at rest on, and
    /// etcdctl only over TLS with the bundle's certificates.
    fn operator_settings(&mut self) {
        let mut found = Vec::new();
        for (path, entry) in &self.tree.files {
            let text = String::from_utf8_lossy(&entry.data);
            let problems = if path.ends_with("/encryption-config.yaml") {
                encryption_problems(&text)
            } else if path == "admin/etcdctl.env" {
                etcdctl_env_problems(&text)
            } else {
                continue;
            };
            found.extend(problems.into_iter().map(|problem| {
                Finding::error(
                    Code::UnsafeSetting,
                    path,
                    problem,
                    "restore the file cpgen wrote (build the bundle again)",
                )
            }));
        }
        self.findings.extend(found);
    }

    /// Files at paths cpgen never writes: tar installs them all the same.
    fn unexpected_files(&mut self) {
        let found: Vec<Finding> = self
            .tree
            .files
            .keys()
            .filter(|path| !super::layout::is_expected(path))
            .map(|path| {
                Finding::error(
                    Code::UnexpectedFile,
                    path,
                    "a file cpgen never writes: installing the bundle puts it on the machine unchecked".into(),
                    "remove it, or rebuild the bundle with cpgen; find out who added it",
                )
            })
            .collect();
        self.findings.extend(found);
    }

    /// A CA key or the service-account key only where a unit of the host uses it: anywhere
    /// else it lets that machine sign certificates or tokens for the whole cluster.
    fn unused_signing_keys(&mut self) {
        let mut found = Vec::new();
        for host in self.hosts.iter().filter(|h| h.name != "admin") {
            let used: BTreeSet<&str> = host
                .units
                .iter()
                .flat_map(|unit| unit.flags.values().map(String::as_str))
                .collect();
            let prefix = format!("hosts/{}/", host.name);
            let signing_keys = self.tree.files.keys().filter_map(|path| {
                let local = path.strip_prefix(&prefix)?;
                let name = local.rsplit('/').next()?;
                (name == "sa.key" || name.ends_with("ca-key.pem")).then_some((path, local))
            });
            for (path, local) in signing_keys {
                if !used.contains(format!("/{local}").as_str()) {
                    found.push(Finding::error(
                        Code::LeakedKey,
                        path,
                        format!("a signing key no unit of {} uses: whoever reads it there can sign for the whole cluster", host.name),
                        "remove it from this host, treat it as exposed and replace the CA or key",
                    ));
                }
            }
        }
        self.findings.extend(found);
    }

    /// Units run exactly the programs cpgen writes them for, with nothing before, after or
    /// around them; a systemd file cpgen does not write can change what runs.
    fn unit_commands(&mut self) {
        let mut found = Vec::new();
        let help = "restore the unit cpgen wrote (build the bundle again); run anything else outside the bundle";
        for host in self.hosts {
            for unit in &host.units {
                let name = unit.file.rsplit('/').next().unwrap_or_default();
                match UNIT_COMMANDS.iter().find(|(file, _)| *file == name) {
                    Some((_, expected)) if unit.command != *expected => found.push(Finding::error(
                        Code::UnexpectedCommand,
                        &unit.file,
                        format!("ExecStart runs {}, not {expected}", unit.command),
                        help,
                    )),
                    Some(_) => {}
                    None => found.push(Finding::error(
                        Code::UnexpectedCommand,
                        &unit.file,
                        format!("a unit cpgen does not write, running {}", unit.command),
                        help,
                    )),
                }
                for directive in &unit.extra_directives {
                    found.push(Finding::error(
                        Code::UnexpectedCommand,
                        &unit.file,
                        format!("{directive}: a directive cpgen does not write (it writes one ExecStart and no other command, environment or sandbox setting)"),
                        help,
                    ));
                }
                found.extend(Self::unit_flag_findings(unit, help));
            }
            for file in &host.other_systemd_files {
                found.push(Finding::error(
                    Code::UnexpectedCommand,
                    file,
                    "a systemd file cpgen does not write: a drop-in or unit can change or add what runs on the host".into(),
                    help,
                ));
            }
        }
        self.findings.extend(found);
    }

    /// Flags outside what cpgen writes for the program, security flags left out, repeated
    /// flags, stray arguments, and text systemd reads differently from its look.
    fn unit_flag_findings(unit: &Unit, help: &str) -> Vec<Finding> {
        let error =
            |message: String| Finding::error(Code::UnexpectedCommand, &unit.file, message, help);
        let mut found: Vec<Finding> = unit.oddities.iter().map(|odd| error(odd.clone())).collect();
        let lookup = |table: &[(&str, &'static [&'static str])]| {
            table
                .iter()
                .find(|(program, _)| *program == unit.program)
                .map_or(&[][..], |(_, flags)| *flags)
        };
        let allowed = lookup(UNIT_FLAGS);
        for name in unit
            .flags
            .keys()
            .filter(|name| !allowed.contains(&name.as_str()))
        {
            found.push(error(format!(
                "--{name} is not a flag cpgen writes for {}: it can change who may do what",
                unit.program
            )));
        }
        for name in lookup(REQUIRED_FLAGS)
            .iter()
            .filter(|name| unit.flag(name).is_none())
        {
            found.push(Finding::error(
            Code::UnsafeSetting,
            &unit.file,
            format!("--{name} is missing: {} falls back to a default that lets clients in unchecked", unit.program),
            help,
        ));
        }
        for name in &unit.repeated {
            found.push(error(format!(
                "--{name} is given more than once: the last one wins, whatever the first says"
            )));
        }
        for argument in &unit.arguments {
            found.push(error(format!(
                "`{argument}` is an argument cpgen does not write"
            )));
        }
        found
    }

    /// The bundle against the config given: the same cluster, hosts, addresses, roles,
    /// ports, endpoint, key algorithm, CA layout and Kubernetes release.
    fn against_plan(&mut self, plan: &Plan) {
        let mut found = Vec::new();
        let mut mismatch = |file: &str, message: String| {
            found.push(Finding::error(
                Code::PlanMismatch,
                file,
                message,
                NOT_BUILT_FROM,
            ));
        };
        let header = self.manifest_header();
        if let Some(cluster) = header.cluster.as_deref() {
            if cluster != plan.cluster.name.as_str() {
                mismatch(
                    "manifest.json",
                    format!(
                        "cluster {cluster} in manifest.json, {} in the config",
                        plan.cluster.name
                    ),
                );
            }
        }
        if self.tree.files.contains_key("manifest.json") {
            let expected: Vec<Member> =
                serde_json::to_value(crate::bundle::manifest::Header::of(plan))
                    .ok()
                    .and_then(|v| serde_json::from_value::<ManifestHeader>(v).ok())
                    .map(|h| h.members)
                    .unwrap_or_default();
            let got_members: HashMap<&str, &Member> = header
                .members
                .iter()
                .map(|m| (m.name.as_str(), m))
                .collect();
            let expected_names: HashSet<&str> = expected.iter().map(|m| m.name.as_str()).collect();
            for want in &expected {
                match got_members.get(want.name.as_str()) {
                    None => mismatch(
                        "manifest.json",
                        format!(
                            "the config has member {} ({}), manifest.json does not",
                            want.name, want.address
                        ),
                    ),
                    Some(got) => {
                        if !same_address(&got.address, &want.address) {
                            mismatch(
                                "manifest.json",
                                format!(
                                    "member {} has address {} in manifest.json, {} in the config",
                                    want.name, got.address, want.address
                                ),
                            );
                        }
                        if got.roles != want.roles {
                            mismatch(
                                "manifest.json",
                                format!(
                                    "member {} has roles [{}] in manifest.json, [{}] in the config",
                                    want.name,
                                    got.roles.join(", "),
                                    want.roles.join(", ")
                                ),
                            );
                        }
                    }
                }
            }
            for got in &header.members {
                if !expected_names.contains(got.name.as_str()) {
                    mismatch(
                        "manifest.json",
                        format!(
                            "member {} ({}) is in manifest.json, the config has no such host",
                            got.name, got.address
                        ),
                    );
                }
            }
        }
        let planned: Vec<(&crate::plan::Host, crate::layout::Role)> =
            crate::layout::hosts(plan).collect();
        let planned_names: HashSet<&str> = planned.iter().map(|(h, _)| h.name.as_str()).collect();
        for host in self.hosts.iter().filter(|h| h.name != "admin") {
            if !planned_names.contains(host.name.as_str()) {
                mismatch(
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
                mismatch(
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
        for master in &plan.masters {
            let Some(host) = self.host(master.name.as_str()) else {
                continue;
            };
            let address = master.address.ip().to_string();
            match host.unit("etcd") {
                None => mismatch(
                    &format!("hosts/{}/", master.name),
                    format!(
                        "the config makes {} a master, but hosts/{}/ has no etcd unit",
                        master.name, master.name
                    ),
                ),
                Some(etcd) => {
                    if let Some(name) = etcd.flag("name").filter(|n| *n != master.name.as_str()) {
                        mismatch(
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
                                mismatch(
                                    &etcd.file,
                                    format!("--{flag} has port {got}, the config's etcd {what} is {port}"),
                                );
                            }
                        }
                    }
                    let want: BTreeSet<String> = plan
                        .masters
                        .iter()
                        .map(|m| {
                            format!(
                                "{}=https://{}:{}",
                                m.name,
                                m.address.url_host(),
                                plan.etcd.peer_port
                            )
                        })
                        .collect();
                    if let Some(cluster) = etcd.flag("initial-cluster") {
                        let got: BTreeSet<String> = cluster
                            .split(',')
                            .filter(|m| !m.is_empty())
                            .map(str::to_owned)
                            .collect();
                        for member in got.difference(&want) {
                            mismatch(
                                &etcd.file,
                                format!("--initial-cluster has {member}, which the config's masters do not make ({})", join(&want)),
                            );
                        }
                        for member in want.difference(&got) {
                            mismatch(
                                &etcd.file,
                                format!("--initial-cluster lacks {member}, which the config's masters make (it has {})", join(&got)),
                            );
                        }
                    }
                    for flag in ["advertise-client-urls", "initial-advertise-peer-urls"] {
                        for url in etcd.flag(flag).unwrap_or_default().split(',') {
                            if let Some(got) = url_host(url)
                                .filter(|h| !h.is_empty() && !same_address(h, &address))
                            {
                                mismatch(
                                    &etcd.file,
                                    format!("--{flag} advertises {got}, the config's address of {} is {address}", master.name),
                                );
                            }
                        }
                    }
                }
            }
            match host.unit("kube-apiserver") {
                None => mismatch(
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
                        mismatch(
                            &api.file,
                            format!("--advertise-address is {got}, the config's address of {} is {address}", master.name),
                        );
                    }
                    let want: BTreeSet<String> = plan
                        .masters
                        .iter()
                        .map(|m| {
                            format!("https://{}:{}", m.address.url_host(), plan.etcd.client_port)
                        })
                        .collect();
                    if let Some(servers) = api.flag("etcd-servers") {
                        let got: BTreeSet<String> = servers
                            .split(',')
                            .filter(|u| !u.is_empty())
                            .map(str::to_owned)
                            .collect();
                        if got != want {
                            mismatch(
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
                        mismatch(
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
        let api_url = plan.api_url();
        for host in self.hosts {
            for (path, kubeconfig) in &host.kubeconfigs {
                for cluster in &kubeconfig.clusters {
                    let server = &cluster.entry.server;
                    let local = url_host(server).is_some_and(is_loopback);
                    let components_local = plan.api.components_via == ComponentsVia::Local;
                    if local && components_local {
                        if url_port(server) != Some(plan.api.bind_port.get()) {
                            mismatch(
                                path,
                                format!(
                                    "it dials {server}, the config's api bind_port is {}",
                                    plan.api.bind_port
                                ),
                            );
                        }
                    } else if *server != api_url {
                        mismatch(
                            path,
                            format!("it dials {server}, the config's API endpoint is {api_url}"),
                        );
                    }
                }
            }
        }
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
            mismatch(
                first,
                format!(
                    "a certificate with an {algorithm} key{more}, the config's key_algorithm is {} ({want})",
                    plan.pki.key_algorithm
                ),
            );
        }
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
                mismatch(
                    &file,
                    format!(
                        "{said} (layout {got}), the config's layout is {}",
                        plan.pki.layout
                    ),
                );
            }
        }
        if let Some(version) = readme_version(self.tree) {
            let want = plan.cluster.kubernetes_version.to_string();
            if version != want {
                mismatch(
                    "README.md",
                    format!(
                        "made for Kubernetes {version}, the config's kubernetes_version is {want}"
                    ),
                );
            }
        }
        self.findings.extend(found);
    }
}

/// Every file that `plan` and `secrets` do not build exactly as the bundle has it: changed
/// (contents or mode), missing or added. The secrets are only read: a key they lack is an
/// error ([`Error::MissingKey`]), never generated.
pub(super) fn rebuild(tree: &Tree, plan: &Plan, secrets: &Secrets) -> Result<Vec<Finding>, Error> {
    let built = Bundle::build(plan, secrets)?;
    let mut found = Vec::new();
    let help = "the bundle is not what the config and secrets build: build it again with `cpgen bundle CLUSTER.toml -o OUT.tar.gz --force`, and find out who changed it";
    for (path, file) in built.files() {
        let message = match tree.files.get(path) {
            None => "missing: the config and secrets build it, the bundle lacks it".to_owned(),
            Some(entry) if entry.data != file.contents => {
                let at = entry
                    .data
                    .iter()
                    .zip(&file.contents)
                    .position(|(a, b)| a != b)
                    .unwrap_or_else(|| entry.data.len().min(file.contents.len()));
                format!(
                    "differs from what the config and secrets build, from byte {at} on ({} bytes, built: {})",
                    entry.data.len(),
                    file.contents.len()
                )
            }
            Some(entry) if entry.mode & 0o7777 != file.mode() => format!(
                "mode {:04o} differs from what the config and secrets build ({:04o})",
                entry.mode & 0o7777,
                file.mode()
            ),
            Some(_) => continue,
        };
        found.push(Finding::error(Code::NotReproduced, path, message, help));
    }
    for path in tree.files.keys() {
        if built.get(path).is_none() {
            found.push(Finding::error(
                Code::NotReproduced,
                path,
                "added: the config and secrets do not build this file".into(),
                help,
            ));
        }
    }
    Ok(found)
}

/// True when a comma-separated list of URLs (or `name=URL` members) has one that is not
/// `https://`.
fn has_plain_url(value: &str) -> bool {
    value
        .split(',')
        .map(|item| item.split_once('=').map_or(item, |(_, url)| url).trim())
        .filter(|item| item.contains("://"))
        .any(|url| !url.to_ascii_lowercase().starts_with("https://"))
}

/// Why an EncryptionConfiguration leaves Secrets unencrypted: a resource list whose first
/// provider, the one new data is written with, is `identity`, or that has none.
fn encryption_problems(text: &str) -> Vec<String> {
    let Ok(config) = serde_saphyr::from_str::<serde_json::Value>(text) else {
        return vec!["not an EncryptionConfiguration kube-apiserver can read".to_owned()];
    };
    let Some(resources) = config["resources"].as_array() else {
        return vec!["no resources: nothing is encrypted at rest".to_owned()];
    };
    resources
        .iter()
        .enumerate()
        .filter_map(|(index, resource)| {
            let first = resource["providers"]
                .as_array()
                .and_then(|providers| providers.first())
                .and_then(|provider| provider.as_object())
                .and_then(|provider| provider.keys().next().cloned());
            match first.as_deref() {
                Some("identity") => Some(format!(
                    "resources[{index}]: identity is the first provider, so new Secrets are written to etcd unencrypted"
                )),
                None => Some(format!("resources[{index}] has no provider")),
                Some(_) => None,
            }
        })
        .collect()
}

/// The settings etcdctl reads from `admin/etcdctl.env` that cpgen writes; any other
/// (`ETCDCTL_INSECURE_SKIP_TLS_VERIFY`, `ETCDCTL_INSECURE_TRANSPORT`, ...) weakens TLS.
const ETCDCTL_SETTINGS: &[&str] = &[
    "ETCDCTL_API",
    "ETCDCTL_ENDPOINTS",
    "ETCDCTL_CACERT",
    "ETCDCTL_CERT",
    "ETCDCTL_KEY",
];

fn etcdctl_env_problems(text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            problems.push(format!("`{line}` is not a NAME=value setting"));
            continue;
        };
        if !ETCDCTL_SETTINGS.contains(&name.trim()) {
            problems.push(format!("{} is not a setting cpgen writes: it can turn off TLS checks or send etcdctl elsewhere", name.trim()));
        } else if name.trim() == "ETCDCTL_ENDPOINTS" && has_plain_url(value) {
            problems.push(format!(
                "ETCDCTL_ENDPOINTS={value} has a URL that is not https://"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expected_commands_are_those_cpgen_writes() {
        let config =
            crate::Config::parse("t.toml", include_str!("../../../../examples/seed-ha.toml"))
                .and_then(|c| c.validate())
                .map(|c| c.plan);
        let Ok(plan) = config else {
            panic!("the seed-ha example is valid")
        };
        let specs = crate::render::master_unit_specs(&plan, &plan.masters[0]);
        let written: Vec<(&str, &str)> = specs
            .iter()
            .map(|(file, unit)| (*file, unit.binary))
            .collect();
        assert_eq!(written, UNIT_COMMANDS);
    }

    #[test]
    fn the_allowed_flags_are_those_cpgen_writes() {
        for example in ["seed-ha", "separate-cas", "on-masters-vip", "ipv6"] {
            let path = format!(
                "{}/../../examples/{example}.toml",
                env!("CARGO_MANIFEST_DIR")
            );
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let Ok(checked) = crate::Config::parse(&path, &text).and_then(|c| c.validate()) else {
                panic!("{example} is valid")
            };
            for (_, unit) in
                crate::render::master_unit_specs(&checked.plan, &checked.plan.masters[0])
            {
                let allowed = UNIT_FLAGS
                    .iter()
                    .find(|(program, _)| *program == unit.program())
                    .map_or(&[][..], |(_, flags)| *flags);
                let mut written: Vec<&str> = unit.flags.iter().map(|f| f.name).collect();
                written.sort_unstable();
                let mut allowed = allowed.to_vec();
                allowed.sort_unstable();
                assert_eq!(written, allowed, "{example}: {}", unit.program());
            }
        }
    }

    #[test]
    fn ports_of_urls() {
        assert_eq!(url_port("https://10.0.0.1:2379"), Some(2379));
        assert_eq!(url_port("https://[fd00::1]:2380/x"), Some(2380));
        assert_eq!(url_port("https://kubernetes"), None);
    }
}
