//! PKI: key pairs, chains and usages, SANs against what clients dial, validity, and one CA shared
//! by etcd and Kubernetes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use time::OffsetDateTime;

use crate::diag::{Code, Diagnostic};
use crate::plan::{Plan, ServerRole};
use crate::verify::material::{signed_by, CertInfo};
use crate::verify::model::{self, url_host, HaproxyServer, HostModel};
use crate::verify::Validity;

use super::Audit;

const LEAF_RENEWAL: &str =
    "renew it: `cpgen renew CLUSTER.toml`, then `cpgen bundle CLUSTER.toml -o OUT.tar.gz --force`";
const LEAF_RENEWAL_SOON: &str = "renew it soon: `cpgen renew CLUSTER.toml`, then `cpgen bundle CLUSTER.toml -o OUT.tar.gz --force`";
const CA_REPLACEMENT: &str = "replace the CA: once it has expired, no staged rotation keeps the cluster running (what it signed is refused already); a new CA means re-issuing everything it signed and re-bootstrapping every node that trusts it";
const CA_REPLACEMENT_SOON: &str = "rotate the CA now, while it is valid, without downtime: `cpgen rotate start --which kubernetes|etcd|front-proxy CLUSTER.toml`, then issue and finish, each stage's bundle rolled out host by host (see the README's rotation section)";

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
            for k in &host.kubeconfigs {
                let path = &k.path;
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

    pub(super) fn key_pairs(&mut self) {
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
            self.push(Diagnostic::file_error(
                Code::KeyMismatch,
                &key,
                format!("this key does not belong to {cert}: their public keys differ"),
                "put the key that was issued with the certificate in place, or re-issue both",
            ));
        }
    }

    /// The CA each leaf must chain to, taken from the units and kubeconfigs that use both.
    fn chains(&self) -> Vec<Chain> {
        let client_cas: Vec<String> = self
            .masters()
            .filter_map(|m| {
                m.unit("kube-apiserver")?
                    .flag("client-ca-file")
                    .map(|f| m.bundle_path(f))
            })
            .collect();
        let mut chains = Vec::new();
        for host in self.hosts {
            chains.extend(self.unit_chains(host));
            chains.extend(self.kubeconfig_chains(host, &client_cas));
        }
        chains
    }

    /// The chains the units of `host` name: a certificate flag and the CA flag that checks
    /// it.
    fn unit_chains(&self, host: &HostModel) -> Vec<Chain> {
        let etcd = host.unit("etcd");
        let api = host.unit("kube-apiserver");
        let path = |flag: &str, unit: Option<&model::Unit>| {
            unit.and_then(|u| u.flag(flag)).map(|f| host.bundle_path(f))
        };
        let etcd_clients_ca = path("etcd-cafile", api).or_else(|| path("trusted-ca-file", etcd));
        let etcd_trust = path("trusted-ca-file", etcd).or_else(|| {
            self.masters().find_map(|m| {
                m.unit("etcd")?
                    .flag("trusted-ca-file")
                    .map(|f| m.bundle_path(f))
            })
        });
        [
            (
                path("cert-file", etcd),
                etcd_clients_ca,
                Role::Server,
                "etcd --cert-file",
            ),
            (
                path("peer-cert-file", etcd),
                path("peer-trusted-ca-file", etcd),
                Role::Peer,
                "etcd --peer-cert-file",
            ),
            (
                path("etcd-certfile", api),
                etcd_trust,
                Role::Client,
                "kube-apiserver --etcd-certfile",
            ),
            (
                path("kubelet-client-certificate", api),
                path("client-ca-file", api),
                Role::Client,
                "kube-apiserver --kubelet-client-certificate",
            ),
            (
                path("proxy-client-cert-file", api),
                path("requestheader-client-ca-file", api),
                Role::Client,
                "kube-apiserver --proxy-client-cert-file",
            ),
        ]
        .into_iter()
        .filter_map(|(leaf, ca, role, named)| Some(Chain::of(leaf?, ca?, role, named)))
        .collect()
    }

    /// The chains the kubeconfigs of `host` name: the serving certificate of each API
    /// server reached to the cluster's CA, and each user's certificate to the apiserver's
    /// client CA.
    fn kubeconfig_chains(&self, host: &HostModel, client_cas: &[String]) -> Vec<Chain> {
        let client_ca = host
            .unit("kube-apiserver")
            .and_then(|u| u.flag("client-ca-file"))
            .map(|f| host.bundle_path(f))
            .or_else(|| client_cas.first().cloned());
        let mut chains = Vec::new();
        for k in &host.kubeconfigs {
            let kpath = &k.path;
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
                    chains.push(Chain::of(
                        server,
                        ca.clone(),
                        Role::Server,
                        &format!("{kpath} (server)"),
                    ));
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
                if let Some(ca) = &client_ca {
                    chains.push(Chain::of(cert, ca.clone(), Role::Client, kpath));
                }
            }
        }
        chains
    }

    pub(super) fn chains_and_usages(&mut self) {
        let chains = self.chains();
        let mut cas: BTreeSet<String> = self.cas_named_by_units();
        cas.extend(chains.iter().map(|chain| chain.ca.clone()));
        let leaves: BTreeSet<String> = chains.iter().map(|chain| chain.leaf.clone()).collect();
        let mut found = self.chain_findings(&chains);
        found.extend(cas.iter().filter_map(|ca| self.ca_misfit(ca)));
        for leaf_id in leaves.difference(&cas) {
            if self.cert(leaf_id).is_some_and(|c| c.is_ca) {
                found.push(Diagnostic::file_error(
                    Code::WrongUsage,
                    leaf_id,
                    "a leaf certificate with CA:TRUE: anyone holding its key can mint certificates",
                    "re-issue it with CA:FALSE",
                ));
            }
        }
        self.findings.extend(found);
    }

    /// Every file a unit's CA flag names.
    fn cas_named_by_units(&self) -> BTreeSet<String> {
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
        cas
    }

    /// Each chain's leaf must be signed by its CA and fit its role.
    fn chain_findings(&self, chains: &[Chain]) -> Vec<Diagnostic> {
        let signed = self.signatures(chains);
        let mut found = Vec::new();
        for Chain {
            leaf: leaf_id,
            ca: ca_id,
            role,
            named_in: named,
        } in chains
        {
            let (Some(leaf), Some(ca)) = (self.cert(leaf_id), self.cert(ca_id)) else {
                continue;
            };
            let leaf_and_ca = (leaf.der.as_slice(), ca.der.as_slice());
            if !signed.get(&leaf_and_ca).copied().unwrap_or(true) {
                found.push(Diagnostic::file_error(
                    Code::WrongIssuer,
                    leaf_id,
                    format!(
                        "issued by `{}`, but {named} trusts `{}` ({ca_id})",
                        leaf.issuer, ca.subject
                    ),
                    "re-issue it from the CA its peers trust, or point the unit at the right CA",
                ));
            }
            if let Some(problem) = role.misfit(leaf) {
                found.push(Diagnostic::file_error(
                    Code::WrongUsage,
                    leaf_id,
                    format!("{problem} ({named})"),
                    role.help(),
                ));
            }
        }
        found
    }

    /// Whether each chain's leaf is signed by its CA. Signature checks dominate a large
    /// audit; each distinct (certificate, CA) pair is checked once (a worker's
    /// kube-proxy.pem is the same bytes on every worker), on every core.
    fn signatures(&self, chains: &[Chain]) -> HashMap<(&[u8], &[u8]), bool> {
        use rayon::prelude::*;
        let pairs: HashSet<(&[u8], &[u8])> = chains
            .iter()
            .filter_map(|chain| {
                Some((
                    self.cert(&chain.leaf)?.der.as_slice(),
                    self.cert(&chain.ca)?.der.as_slice(),
                ))
            })
            .collect();
        pairs
            .into_par_iter()
            .map(|(leaf, ca)| ((leaf, ca), signed_by(leaf, ca)))
            .collect()
    }

    /// What is wrong with the certificate at `ca_id` as a CA, if anything.
    fn ca_misfit(&self, ca_id: &str) -> Option<Diagnostic> {
        let ca = self.cert(ca_id)?;
        if !ca.is_ca {
            Some(Diagnostic::file_error(
                Code::WrongUsage,
                ca_id,
                "used as a CA, but it is not one (basicConstraints lack CA:TRUE)",
                "point the unit or kubeconfig at the CA certificate",
            ))
        } else if ca.key_cert_sign == Some(false) {
            Some(Diagnostic::file_error(
                Code::WrongUsage,
                ca_id,
                "a CA whose keyUsage lacks keyCertSign cannot sign certificates",
                "re-create the CA with keyCertSign",
            ))
        } else {
            None
        }
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

    /// Who dials which name or address, and the serving certificate that answers.
    fn inferred_dials(&self) -> Vec<Dial> {
        let mut dials = Vec::new();
        for host in self.hosts {
            if let Some(etcd) = host.unit("etcd") {
                for (urls_flag, cert_flag) in [
                    ("advertise-client-urls", "cert-file"),
                    ("initial-advertise-peer-urls", "peer-cert-file"),
                ] {
                    if let (Some(urls), Some(cert)) = (etcd.flag(urls_flag), etcd.flag(cert_flag)) {
                        for url in urls.split(',') {
                            dials.extend(url_host(url).map(|t| Dial {
                                target: t.to_owned(),
                                cert: host.bundle_path(cert),
                                who: format!("{} --{urls_flag}", etcd.file),
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
                    dials.extend(cert.map(|c| Dial {
                        target: target.to_owned(),
                        cert: c,
                        who: format!("hosts/{}: kube-apiserver --etcd-servers", host.name),
                    }));
                }
            }
            for k in &host.kubeconfigs {
                let path = &k.path;
                for cluster in &k.clusters {
                    let Some(target) = url_host(&cluster.entry.server) else {
                        continue;
                    };
                    for cert in self.apiserver_certs_reached(host, &cluster.entry.server) {
                        dials.push(Dial {
                            target: target.to_owned(),
                            cert,
                            who: format!("{path} server: {}", cluster.entry.server),
                        });
                    }
                }
            }
            for HaproxyServer {
                name, host: target, ..
            } in &host.haproxy_servers
            {
                let cert = self.master_at(target).and_then(|m| {
                    m.unit("kube-apiserver")?
                        .flag("tls-cert-file")
                        .map(|f| m.bundle_path(f))
                });
                dials.extend(cert.map(|c| Dial {
                    target: target.clone(),
                    cert: c,
                    who: format!("hosts/{}: haproxy server {name}", host.name),
                }));
            }
        }
        dials
    }

    /// With a plan: exactly the names and addresses its clients dial.
    fn planned_dials(&self, plan: &Plan) -> Vec<Dial> {
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
                    ServerRole::EtcdPeer => ("etcd", "peer-cert-file"),
                };
                if let Some(cert) = host.unit(program).and_then(|u| u.flag(flag)) {
                    dials.push(Dial {
                        target: dial.target.to_string(),
                        cert: host.bundle_path(cert),
                        who: dial.client.to_owned(),
                    });
                }
            }
        }
        dials
    }

    pub(super) fn san_coverage(&mut self, plan: Option<&Plan>) {
        let dials = match plan {
            Some(plan) => self.planned_dials(plan),
            None => self.inferred_dials(),
        };
        let mut missing: BTreeMap<(String, String), String> = BTreeMap::new();
        for Dial {
            target,
            cert: cert_id,
            who,
        } in dials
        {
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
            self.push(Diagnostic::file_error(
                Code::CertificateSanNotCovered,
                &cert_id,
                format!(
                    "{target} is dialled by {who}, but this certificate's SANs do not cover it"
                ),
                help,
            ));
        }
    }

    pub(super) fn validity(&mut self, at: OffsetDateTime) {
        // When each CA (by subject) ends: a leaf cut to its CA's end cannot be renewed past it.
        let mut ca_ends: HashMap<&str, OffsetDateTime> = HashMap::new();
        for cert in self.material.certs.values().filter(|c| c.is_ca) {
            let end = ca_ends
                .entry(cert.subject.as_str())
                .or_insert(cert.not_after);
            *end = (*end).min(cert.not_after);
        }
        let mut found = Vec::new();
        // A trust file's further CAs are trusted as much as its first (during a rotation,
        // the other generation).
        let extras = self.material.stacks.iter().flat_map(|(file, stack)| {
            let trust = stack.first().is_some_and(|first| first.is_ca);
            stack
                .iter()
                .enumerate()
                .skip(1)
                .filter(move |_| trust)
                .map(move |(index, cert)| (format!("{file}#{}", index + 1), cert))
        });
        let certs = self
            .material
            .certs
            .iter()
            .map(|(id, cert)| (id.clone(), cert))
            .chain(extras);
        for (id, cert) in certs {
            let id = &id;
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
                Validity::Expired => found.push(Diagnostic::file_error(
                    Code::Expired,
                    id,
                    format!("expired at {}", rfc3339(cert.not_after)),
                    renew,
                )),
                Validity::NotYetValid => found.push(Diagnostic::file_error(
                    Code::Expired,
                    id,
                    format!("not valid until {}", rfc3339(cert.not_before)),
                    "check the clock of the machine that issued it",
                )),
                Validity::ExpiresSoon => found.push(Diagnostic::file_warning(
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

    pub(super) fn shared_ca(&mut self) {
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
            // Any CA in both, a rotation's other generation included.
            let clients = self.trusted(&client_ca);
            let same = self
                .trusted(&etcd_ca)
                .iter()
                .any(|a| clients.iter().any(|b| a.der == b.der));
            if same {
                found.push(Diagnostic::file_warning(
                    Code::BundleSharedCa,
                    &etcd_ca,
                    "etcd trusts the CA that signs every Kubernetes client certificate: any kubelet's certificate can read and write etcd",
                    "give etcd a CA of its own (cpgen's layout = \"separate-cas\")",
                ));
            }
        }
        self.findings.extend(found);
    }
}

/// A leaf and the CA it must chain to, with where the two are named together.
struct Chain {
    leaf: String,
    ca: String,
    role: Role,
    named_in: String,
}

impl Chain {
    /// `leaf` must chain to `ca` in `role`, as `named_in` (a unit's flag, a kubeconfig)
    /// says.
    fn of(leaf: String, ca: String, role: Role, named_in: &str) -> Chain {
        Chain {
            leaf,
            ca,
            role,
            named_in: named_in.to_owned(),
        }
    }
}

/// A name or address a client dials, the serving certificate that answers it, and who dials.
struct Dial {
    target: String,
    cert: String,
    who: String,
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
