//! Plan + certificates → the files of the bundle: systemd units with the guide's settings
//! translated for the target Kubernetes, kubeconfigs, HAProxy, keepalived,
//! encryption config, etcdctl settings and the bundle's README. Every text file comes from an
//! askama template in `templates/`; this module only decides what goes into them.
//!
//! A host's files are first laid out from the plan alone ([`host_layout`]), and made from
//! certificates only when that host is written, so a bundle of thousands of hosts never
//! holds more than a few hosts' files at once.
//!
//! This file owns the file specs, each role's host layout and the `admin/` files; `paths`
//! says where files live on a host, `kubeconfigs` makes every kubeconfig, `load_balancer`
//! HAProxy's and keepalived's configurations, `units` every systemd unit, `nodes` a node's
//! kubelet and kube-proxy files and `readme` the bundle's README.

pub(crate) mod changes;
mod firewall;
mod kubeconfigs;
mod load_balancer;
mod nodes;
pub(crate) mod paths;
mod readme;
mod units;

use askama::Template;
use base64::Engine;

use crate::layout::{FileKind, HostListing, Role};
use crate::pki::{
    Ca, CaCertificate, CertSet, IdentityId, LeafCertificate, CLUSTER_ADMINS_GROUP,
    KUBELET_CLIENT_USER,
};
use crate::plan::{Host, LoadBalancerMode, Plan, ServerRole};
use crate::template::render_template;
use crate::Error;
use kubeconfigs::Kubeconfig;
pub(crate) use units::{host_unit_specs, initial_cluster_members};

#[derive(Template)]
#[template(path = "encryption-config.yaml", escape = "none")]
struct EncryptionConfig {
    writer: &'static str,
    /// Each provider and its key, base64, the writer first.
    providers: Vec<(&'static str, String)>,
}

/// One ClusterRoleBinding of `admin/bootstrap/`.
#[derive(Template)]
#[template(path = "cluster-role-binding.yaml", escape = "none")]
struct ClusterRoleBinding<'a> {
    purpose: &'a str,
    cluster: &'a str,
    name: &'a str,
    role: &'a str,
    subject_kind: &'a str,
    subject: &'a str,
}

#[derive(Template)]
#[template(path = "etcdctl.env", escape = "none")]
struct EtcdctlEnv<'a> {
    cluster: &'a str,
    endpoints: String,
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// How a file's contents are made. Decided from the plan alone, so a host's file list is
/// known before any of its certificates are issued.
pub(crate) enum Contents {
    CaCert(Ca),
    /// The Kubernetes CA's key (kube-controller-manager signs kubelet certificates with it).
    CaKey,
    /// The Kubernetes CA certificate that signs, alone.
    SigningCa,
    Cert(IdentityId),
    Key(IdentityId),
    ServiceAccountKey,
    ServiceAccountPublic,
    EncryptionConfig,
    Kubeconfig(Kubeconfig),
    Unit(units::Unit),
    /// Rendered from the plan alone.
    Text(Vec<u8>),
}

/// One file a host gets: where, what kind, and how to make it.
pub(crate) struct FileSpec {
    pub(crate) target: String,
    pub(crate) kind: FileKind,
    pub(crate) contents: Contents,
}

/// The certificates one host's files are made from: those every host shares (CAs, shared
/// client certificates, service-account and encryption keys) and the host's own.
pub(crate) struct HostCerts<'a> {
    pub(crate) shared: &'a CertSet,
    pub(crate) own: Vec<LeafCertificate>,
}

impl HostCerts<'_> {
    fn leaf(&self, id: &str) -> Result<&LeafCertificate, Error> {
        self.own
            .iter()
            .find(|l| l.identity.id == id)
            .or_else(|| self.shared.leaf(id))
            .ok_or_else(|| Error::MissingKey {
                identity: id.to_owned(),
            })
    }
}

impl FileSpec {
    fn new(target: impl Into<String>, kind: FileKind, contents: Contents) -> FileSpec {
        FileSpec {
            target: target.into(),
            kind,
            contents,
        }
    }

    /// The file's bytes when the plan alone makes them (units, kubeconfigs naming files,
    /// configuration files), so verify can rebuild them from a config without its secrets;
    /// `None` for key material and what embeds it.
    pub(crate) fn plan_contents(&self) -> Option<Result<Vec<u8>, Error>> {
        match &self.contents {
            Contents::Kubeconfig(kubeconfig) => {
                Some(render_template(kubeconfig, "kubeconfig.yaml"))
            }
            Contents::Unit(unit) => Some(render_template(unit, "systemd/unit.service")),
            Contents::Text(text) => Some(Ok(text.clone())),
            _ => None,
        }
    }

    /// The file's bytes.
    pub(crate) fn contents(&self, certs: &HostCerts<'_>) -> Result<Vec<u8>, Error> {
        if let Some(from_plan) = self.plan_contents() {
            return from_plan;
        }
        Ok(match &self.contents {
            Contents::CaCert(ca) => ca_pem(certs.shared, *ca)?,
            Contents::CaKey => signing_kubernetes_ca(certs.shared)?
                .key_pem
                .clone()
                .into_bytes(),
            Contents::SigningCa => signing_kubernetes_ca(certs.shared)?
                .cert_pem
                .clone()
                .into_bytes(),
            Contents::Cert(id) => certs.leaf(id.as_str())?.cert_pem.clone().into_bytes(),
            Contents::Key(id) => certs.leaf(id.as_str())?.key_pem.clone().into_bytes(),
            Contents::ServiceAccountKey => certs.shared.service_account_key_pem.clone().into(),
            Contents::ServiceAccountPublic => {
                certs.shared.service_account_public_pem.clone().into()
            }
            Contents::EncryptionConfig => {
                let providers: Vec<(&'static str, String)> = certs
                    .shared
                    .encryption
                    .iter()
                    .map(|(name, key)| (*name, base64(key)))
                    .collect();
                let encryption = EncryptionConfig {
                    writer: providers.first().map_or("identity", |(name, _)| name),
                    providers,
                };
                render_template(&encryption, "encryption-config.yaml")?
            }
            Contents::Kubeconfig(_) | Contents::Unit(_) | Contents::Text(_) => {
                return Err(Error::Internal(
                    "a file the plan alone makes was not rendered from it",
                ))
            }
        })
    }
}

/// The files of one host, sorted by path.
pub(crate) fn host_layout(plan: &Plan, host: &Host, role: Role) -> Result<Vec<FileSpec>, Error> {
    let mut files = match role {
        Role::Master => master_layout(plan, host)?,
        Role::LoadBalancer if plan.load_balancer.mode == LoadBalancerMode::External => {
            vec![load_balancer::haproxy_file(plan)?]
        }
        Role::LoadBalancer | Role::Worker => Vec::new(),
    };
    if role.is_node(plan) {
        files.extend(nodes::node_files(plan, host, role == Role::Master)?);
    }
    files.sort_by(|a, b| a.target.cmp(&b.target));
    Ok(files)
}

/// The files that go to no host and that the renderer makes: `admin/` and the README, which
/// lists every host's files (`listing`, in [`crate::layout::hosts`] order). `deploy/` is
/// the deployment glue's, so the writer asks it separately.
pub(crate) fn shared_files(
    plan: &Plan,
    certs: &CertSet,
    listing: &[HostListing<'_>],
) -> Result<Vec<(String, FileKind, Vec<u8>)>, Error> {
    let mut files = admin_files(plan, certs)?;
    files.push((
        crate::layout::README.to_owned(),
        FileKind::Readme,
        readme::render(plan, listing, &certs.rotations)?,
    ));
    Ok(files)
}

/// The files a kubeconfig or component configuration at `path` names, and what those name in
/// turn, so whoever reads it reads them too; empty for any other path.
pub(crate) fn files_named_by(path: &str) -> Vec<&'static str> {
    let mut named = kubeconfigs::kubeconfig_reads(path);
    for (config, names) in nodes::CONFIG_READS {
        if config == path {
            for name in names {
                named.push(name);
                named.extend(kubeconfigs::kubeconfig_reads(name));
            }
        }
    }
    named
}

/// The Kubernetes CA that signs (the new one from a rotation's `issue` on).
fn signing_kubernetes_ca(certs: &CertSet) -> Result<&CaCertificate, Error> {
    certs.ca(Ca::Kubernetes).ok_or_else(|| Error::MissingKey {
        identity: Ca::Kubernetes.id().to_owned(),
    })
}

/// What a trust file of `ca`'s role holds: its certificate, or both generations during a
/// rotation, the signing one first.
fn ca_pem(certs: &CertSet, ca: Ca) -> Result<Vec<u8>, Error> {
    certs
        .trust(ca)
        .map(|pem| pem.as_bytes().to_vec())
        .ok_or_else(|| Error::MissingKey {
            identity: ca.id().to_owned(),
        })
}

/// A certificate every host shares (the admin's, etcd's health-check client's), by id.
fn shared_leaf<'a>(certs: &'a CertSet, id: &str) -> Result<&'a LeafCertificate, Error> {
    certs.leaf(id).ok_or_else(|| Error::MissingKey {
        identity: id.to_owned(),
    })
}

/// Units, by file name, as files in [`paths::SYSTEMD`].
fn unit_files(units: Vec<(&'static str, units::Unit)>) -> impl Iterator<Item = FileSpec> {
    units.into_iter().map(|(file_name, unit)| {
        FileSpec::new(
            format!("{}/{file_name}", paths::SYSTEMD),
            FileKind::SystemdUnit,
            Contents::Unit(unit),
        )
    })
}

/// A certificate and its key at `cert_path` and `key_path`.
fn pair(id: IdentityId, cert_path: &str, key_path: &str) -> [FileSpec; 2] {
    [
        FileSpec::new(cert_path, FileKind::Certificate, Contents::Cert(id.clone())),
        FileSpec::new(key_path, FileKind::PrivateKey, Contents::Key(id)),
    ]
}

fn master_layout(plan: &Plan, master: &Host) -> Result<Vec<FileSpec>, Error> {
    let mut files = master_shared_files(plan);
    files.extend(master_certificates(master));
    files.extend(kubeconfigs::master_kubeconfigs(plan, master));
    files.extend(unit_files(units::master_unit_specs(plan, master)));
    files.extend(load_balancer::master_files(plan, master)?);
    Ok(files)
}

/// What every master shares: the CA certificates (and the Kubernetes CA's key), the
/// service-account key pair and the encryption config.
fn master_shared_files(plan: &Plan) -> Vec<FileSpec> {
    use paths::*;
    let layout = plan.pki.layout;
    let ca = |path, ca: Ca| FileSpec::new(path, FileKind::Certificate, Contents::CaCert(ca));
    vec![
        ca(ETCD_CA, Ca::Etcd.effective(layout)),
        ca(CA, Ca::Kubernetes),
        FileSpec::new(CA_KEY, FileKind::PrivateKey, Contents::CaKey),
        FileSpec::new(CA_SIGNING, FileKind::Certificate, Contents::SigningCa),
        ca(FRONT_PROXY_CA, Ca::FrontProxy.effective(layout)),
        FileSpec::new(SA_KEY, FileKind::PrivateKey, Contents::ServiceAccountKey),
        FileSpec::new(
            SA_PUB,
            FileKind::Certificate,
            Contents::ServiceAccountPublic,
        ),
        FileSpec::new(
            ENCRYPTION_CONFIG,
            FileKind::Secret,
            Contents::EncryptionConfig,
        ),
    ]
}

/// A master's own certificates and keys, and the client pairs of its components.
fn master_certificates(master: &Host) -> Vec<FileSpec> {
    use paths::*;
    let name = &master.name;
    let mut files = Vec::new();
    for (id, cert, key) in [
        (
            IdentityId::server(ServerRole::EtcdServer, name),
            ETCD_SERVER,
            ETCD_SERVER_KEY,
        ),
        (
            IdentityId::server(ServerRole::EtcdPeer, name),
            ETCD_PEER,
            ETCD_PEER_KEY,
        ),
        (
            IdentityId::shared("etcd-client"),
            ETCD_CLIENT,
            ETCD_CLIENT_KEY,
        ),
        (
            IdentityId::server(ServerRole::Apiserver, name),
            APISERVER,
            APISERVER_KEY,
        ),
        (
            IdentityId::shared("kubelet-client"),
            KUBELET_CLIENT,
            KUBELET_CLIENT_KEY,
        ),
        (
            IdentityId::shared("front-proxy-client"),
            FRONT_PROXY_CLIENT,
            FRONT_PROXY_CLIENT_KEY,
        ),
        (
            IdentityId::shared("controller-manager"),
            CONTROLLER_MANAGER,
            CONTROLLER_MANAGER_KEY,
        ),
        (IdentityId::shared("scheduler"), SCHEDULER, SCHEDULER_KEY),
    ] {
        files.extend(pair(id, cert, key));
    }
    files
}

/// The RBAC the admin identities need, applied once with the super-admin kubeconfig.
fn bootstrap_files(plan: &Plan) -> Result<Vec<(String, FileKind, Vec<u8>)>, Error> {
    let cluster = plan.cluster.name.as_str();
    let bindings = [
        (
            paths::BOOTSTRAP_CLUSTER_ADMINS,
            ClusterRoleBinding {
                purpose: "Members of the admin kubeconfig's group are cluster administrators through RBAC: revocable, unlike system:masters.",
                cluster,
                name: CLUSTER_ADMINS_GROUP,
                role: "cluster-admin",
                subject_kind: "Group",
                subject: CLUSTER_ADMINS_GROUP,
            },
        ),
        (
            paths::BOOTSTRAP_KUBELET_CLIENT,
            ClusterRoleBinding {
                purpose: "kube-apiserver reaches the kubelets (logs, exec, port-forward) as this user, with no more than the kubelet API.",
                cluster,
                name: "cpgen:apiserver-kubelet-client",
                role: "system:kubelet-api-admin",
                subject_kind: "User",
                subject: KUBELET_CLIENT_USER,
            },
        ),
    ];
    bindings
        .iter()
        .map(|(path, binding)| {
            Ok((
                (*path).to_owned(),
                FileKind::Config,
                render_template(binding, "cluster-role-binding.yaml")?,
            ))
        })
        .collect()
}

fn admin_files(plan: &Plan, certs: &CertSet) -> Result<Vec<(String, FileKind, Vec<u8>)>, Error> {
    let kubeconfig = kubeconfigs::admin_kubeconfig(plan, certs)?;
    let super_admin = kubeconfigs::super_admin_kubeconfig(plan, certs)?;
    let endpoints: Vec<String> = plan
        .masters
        .iter()
        .map(|m| format!("https://{}:{}", m.address.url_host(), plan.etcd.client_port))
        .collect();
    let env = EtcdctlEnv {
        cluster: plan.cluster.name.as_str(),
        endpoints: endpoints.join(","),
    };
    let healthcheck = shared_leaf(certs, "etcd-healthcheck-client")?;
    let file = |path: &str, kind, contents| (path.to_owned(), kind, contents);
    let mut files = vec![
        file(
            paths::ADMIN_KUBECONFIG,
            FileKind::Secret,
            render_template(&kubeconfig, "kubeconfig.yaml")?,
        ),
        file(
            paths::SUPER_ADMIN_KUBECONFIG,
            FileKind::Secret,
            render_template(&super_admin, "kubeconfig.yaml")?,
        ),
        file(
            paths::ETCDCTL_ENV,
            FileKind::Config,
            render_template(&env, "etcdctl.env")?,
        ),
        file(
            paths::ADMIN_ETCD_CA,
            FileKind::Certificate,
            ca_pem(certs, Ca::Etcd.effective(plan.pki.layout))?,
        ),
        file(
            paths::ETCD_HEALTHCHECK_CLIENT,
            FileKind::Certificate,
            healthcheck.cert_pem.clone().into_bytes(),
        ),
        file(
            paths::ETCD_HEALTHCHECK_CLIENT_KEY,
            FileKind::PrivateKey,
            healthcheck.key_pem.clone().into_bytes(),
        ),
    ];
    files.extend(bootstrap_files(plan)?);
    Ok(files)
}
