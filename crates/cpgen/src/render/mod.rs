//! Plan + certificates → the files of the bundle: systemd units with the guide's settings
//! translated for the target Kubernetes, kubeconfigs, HAProxy, keepalived,
//! encryption config, etcdctl settings and the bundle's README. Every text file comes from an
//! askama template in `templates/`; this module only decides what goes into them.
//!
//! A host's files are first laid out from the plan alone ([`host_layout`]), and made from
//! certificates only when that host is written, so a bundle of thousands of hosts never
//! holds more than a few hosts' files at once.

mod readme;
mod units;

use crate::template::render_template;
pub(crate) use units::{initial_cluster_members, master_unit_specs};

use askama::Template;
use base64::Engine;

use crate::layout::{FileKind, HostListing, Role};
use crate::pki::{Ca, CertSet, IdentityId, LeafCertificate};
use crate::plan::{
    wildcard_and_loopback, ComponentsVia, HealthCheck, Host, LoadBalancerMode, Plan, ServerRole,
};
use crate::types::url_host;
use crate::Error;

/// Where every file lives on a host (absolute paths, as the units and kubeconfigs name them).
pub(crate) mod paths {
    /// etcd's CA certificate on a master.
    pub(crate) const ETCD_CA: &str = "/etc/etcd/pki/ca.pem";
    /// The member's serving and peer certificate.
    pub(crate) const ETCD_SERVER: &str = "/etc/etcd/pki/etcd-server.pem";
    /// Its key.
    pub(crate) const ETCD_SERVER_KEY: &str = "/etc/etcd/pki/etcd-server-key.pem";
    /// kube-apiserver's etcd client certificate.
    pub(crate) const ETCD_CLIENT: &str = "/etc/etcd/pki/etcd-client.pem";
    /// Its key.
    pub(crate) const ETCD_CLIENT_KEY: &str = "/etc/etcd/pki/etcd-client-key.pem";
    /// The Kubernetes CA certificate.
    pub(crate) const CA: &str = "/etc/kubernetes/pki/ca.pem";
    /// The Kubernetes CA key (controller-manager signs kubelet certificates with it).
    pub(crate) const CA_KEY: &str = "/etc/kubernetes/pki/ca-key.pem";
    /// kube-apiserver's serving certificate.
    pub(crate) const APISERVER: &str = "/etc/kubernetes/pki/apiserver.pem";
    /// Its key.
    pub(crate) const APISERVER_KEY: &str = "/etc/kubernetes/pki/apiserver-key.pem";
    /// kube-apiserver's client certificate towards kubelets.
    pub(crate) const KUBELET_CLIENT: &str = "/etc/kubernetes/pki/kubelet-client.pem";
    /// Its key.
    pub(crate) const KUBELET_CLIENT_KEY: &str = "/etc/kubernetes/pki/kubelet-client-key.pem";
    /// The front-proxy CA certificate.
    pub(crate) const FRONT_PROXY_CA: &str = "/etc/kubernetes/pki/front-proxy-ca.pem";
    /// kube-apiserver's front-proxy client certificate.
    pub(crate) const FRONT_PROXY_CLIENT: &str = "/etc/kubernetes/pki/front-proxy-client.pem";
    /// Its key.
    pub(crate) const FRONT_PROXY_CLIENT_KEY: &str =
        "/etc/kubernetes/pki/front-proxy-client-key.pem";
    /// The service-account signing key.
    pub(crate) const SA_KEY: &str = "/etc/kubernetes/pki/sa.key";
    /// Its public key.
    pub(crate) const SA_PUB: &str = "/etc/kubernetes/pki/sa.pub";
    /// Encryption at rest.
    pub(crate) const ENCRYPTION_CONFIG: &str = "/etc/kubernetes/encryption-config.yaml";
    /// kube-controller-manager's kubeconfig.
    pub(crate) const CONTROLLER_MANAGER_KUBECONFIG: &str =
        "/var/lib/kube-controller-manager/kubeconfig";
    /// Its client certificate.
    pub(crate) const CONTROLLER_MANAGER: &str =
        "/var/lib/kube-controller-manager/pki/controller-manager.pem";
    /// Its key.
    pub(crate) const CONTROLLER_MANAGER_KEY: &str =
        "/var/lib/kube-controller-manager/pki/controller-manager-key.pem";
    /// kube-scheduler's kubeconfig.
    pub(crate) const SCHEDULER_KUBECONFIG: &str = "/var/lib/kube-scheduler/kubeconfig";
    /// Its client certificate.
    pub(crate) const SCHEDULER: &str = "/var/lib/kube-scheduler/pki/scheduler.pem";
    /// Its key.
    pub(crate) const SCHEDULER_KEY: &str = "/var/lib/kube-scheduler/pki/scheduler-key.pem";
    /// HAProxy's configuration.
    pub(crate) const HAPROXY_CFG: &str = "/etc/haproxy/haproxy.cfg";
    /// keepalived's configuration.
    pub(crate) const KEEPALIVED_CONF: &str = "/etc/keepalived/keepalived.conf";
    /// Where systemd units go.
    pub(crate) const SYSTEMD: &str = "/etc/systemd/system";
    /// A worker's kubelet kubeconfig.
    pub(crate) const KUBELET_KUBECONFIG: &str = "/var/lib/kubelet/kubeconfig";
    /// A worker's kubelet client certificate.
    pub(crate) const KUBELET: &str = "/var/lib/kubelet/pki/kubelet.pem";
    /// Its key.
    pub(crate) const KUBELET_KEY: &str = "/var/lib/kubelet/pki/kubelet-key.pem";
    /// A worker's kubelet serving certificate.
    pub(crate) const KUBELET_SERVER: &str = "/var/lib/kubelet/pki/kubelet-server.pem";
    /// Its key.
    pub(crate) const KUBELET_SERVER_KEY: &str = "/var/lib/kubelet/pki/kubelet-server-key.pem";
    /// A worker's kube-proxy kubeconfig.
    pub(crate) const KUBE_PROXY_KUBECONFIG: &str = "/var/lib/kube-proxy/kubeconfig";
    /// Its client certificate.
    pub(crate) const KUBE_PROXY: &str = "/var/lib/kube-proxy/pki/kube-proxy.pem";
    /// Its key.
    pub(crate) const KUBE_PROXY_KEY: &str = "/var/lib/kube-proxy/pki/kube-proxy-key.pem";
}

/// Where a kubeconfig takes a certificate or key from.
#[derive(Debug, Clone)]
enum Source {
    /// A file on the host.
    Path(&'static str),
    /// Embedded, base64.
    Data(String),
}

#[derive(Template)]
#[template(path = "kubeconfig/kubeconfig.yaml", escape = "none")]
pub(crate) struct Kubeconfig {
    purpose: String,
    cluster: String,
    server: String,
    user: String,
    ca: Source,
    cert: Source,
    key: Source,
}

struct Backend {
    name: String,
    address: String,
}

#[derive(Template)]
#[template(path = "haproxy.cfg", escape = "none")]
struct HaproxyCfg<'a> {
    cluster: &'a str,
    health_check: HealthCheck,
    https_check: bool,
    bind: String,
    servers: Vec<Backend>,
}

#[derive(Template)]
#[template(path = "keepalived.conf", escape = "none")]
struct KeepalivedConf<'a> {
    host: &'a str,
    address: String,
    vip: String,
    interface: &'a str,
    router_id: u8,
    priority: usize,
    peers: Vec<String>,
}

#[derive(Template)]
#[template(path = "encryption-config.yaml", escape = "none")]
struct EncryptionConfig {
    key: String,
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

    /// The file's bytes.
    pub(crate) fn contents(&self, certs: &HostCerts<'_>) -> Result<Vec<u8>, Error> {
        Ok(match &self.contents {
            Contents::CaCert(ca) => ca_pem(certs.shared, *ca)?,
            Contents::CaKey => certs
                .shared
                .ca(Ca::Kubernetes)
                .map(|c| c.key_pem.clone().into_bytes())
                .ok_or_else(|| Error::MissingKey {
                    identity: Ca::Kubernetes.id().to_owned(),
                })?,
            Contents::Cert(id) => certs.leaf(id.as_str())?.cert_pem.clone().into_bytes(),
            Contents::Key(id) => certs.leaf(id.as_str())?.key_pem.clone().into_bytes(),
            Contents::ServiceAccountKey => certs.shared.service_account_key_pem.clone().into(),
            Contents::ServiceAccountPublic => {
                certs.shared.service_account_public_pem.clone().into()
            }
            Contents::EncryptionConfig => {
                let encryption = EncryptionConfig {
                    key: base64(&certs.shared.encryption_key),
                };
                render_template(&encryption, "encryption-config.yaml")?
            }
            Contents::Kubeconfig(kubeconfig) => render_template(kubeconfig, "kubeconfig.yaml")?,
            Contents::Unit(unit) => render_template(unit, "systemd/unit.service")?,
            Contents::Text(text) => text.clone(),
        })
    }
}

/// The files of one host, sorted by path.
pub(crate) fn host_layout(plan: &Plan, host: &Host, role: Role) -> Result<Vec<FileSpec>, Error> {
    let mut files = match role {
        Role::Master => master_layout(plan, host)?,
        Role::LoadBalancer if plan.load_balancer.mode == LoadBalancerMode::External => {
            vec![FileSpec::new(
                paths::HAPROXY_CFG,
                FileKind::Config,
                Contents::Text(haproxy_cfg(plan)?),
            )]
        }
        Role::LoadBalancer => Vec::new(),
        Role::Worker => worker_layout(plan, host),
    };
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
        "README.md".to_owned(),
        FileKind::Readme,
        readme::render(plan, listing)?,
    ));
    Ok(files)
}

fn ca_pem(certs: &CertSet, ca: Ca) -> Result<Vec<u8>, Error> {
    certs
        .ca(ca)
        .map(|c| c.cert_pem.clone().into_bytes())
        .ok_or_else(|| Error::MissingKey {
            identity: ca.id().to_owned(),
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
    use paths::*;
    let layout = plan.pki.layout;
    let name = &master.name;
    let ca = |path, ca: Ca| FileSpec::new(path, FileKind::Certificate, Contents::CaCert(ca));
    let mut files = vec![
        ca(ETCD_CA, Ca::Etcd.effective(layout)),
        ca(CA, Ca::Kubernetes),
        FileSpec::new(CA_KEY, FileKind::PrivateKey, Contents::CaKey),
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
    ];
    for (id, cert, key) in [
        (
            IdentityId::server(ServerRole::EtcdServer, name),
            ETCD_SERVER,
            ETCD_SERVER_KEY,
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
    let component_server = match plan.api.components_via {
        ComponentsVia::Local => format!(
            "https://{}:{}",
            url_host(wildcard_and_loopback(master.address.ip()).1),
            plan.api.bind_port
        ),
        _ => plan.api_url(),
    };
    for client in [
        ClientFiles {
            kubeconfig: CONTROLLER_MANAGER_KUBECONFIG,
            user: "system:kube-controller-manager",
            cert: CONTROLLER_MANAGER,
            key: CONTROLLER_MANAGER_KEY,
            purpose: "kube-controller-manager",
        },
        ClientFiles {
            kubeconfig: SCHEDULER_KUBECONFIG,
            user: "system:kube-scheduler",
            cert: SCHEDULER,
            key: SCHEDULER_KEY,
            purpose: "kube-scheduler",
        },
    ] {
        files.push(kubeconfig(plan, master, &component_server, &client));
    }
    for (file_name, unit) in units::master_unit_specs(plan, master) {
        files.push(FileSpec::new(
            format!("{SYSTEMD}/{file_name}"),
            FileKind::SystemdUnit,
            Contents::Unit(unit),
        ));
    }
    if plan.load_balancer.mode == LoadBalancerMode::OnMasters {
        let haproxy = Contents::Text(haproxy_cfg(plan)?);
        files.push(FileSpec::new(HAPROXY_CFG, FileKind::Config, haproxy));
        if plan.load_balancer.vip.is_some() {
            let keepalived = Contents::Text(keepalived_conf(plan, master)?);
            files.push(FileSpec::new(KEEPALIVED_CONF, FileKind::Config, keepalived));
        }
    }
    Ok(files)
}

/// A component's client identity, by the paths its kubeconfig names.
struct ClientFiles<'a> {
    /// Where the kubeconfig itself goes.
    kubeconfig: &'static str,
    user: &'a str,
    cert: &'static str,
    key: &'static str,
    purpose: &'a str,
}

/// A kubeconfig that names its certificate files on `host` (the guide's form).
fn kubeconfig(plan: &Plan, host: &Host, server: &str, client: &ClientFiles<'_>) -> FileSpec {
    let kubeconfig = Kubeconfig {
        purpose: format!("kubeconfig of {} on {}", client.purpose, host.name),
        cluster: plan.cluster.name.to_string(),
        server: server.to_owned(),
        user: client.user.to_owned(),
        ca: Source::Path(paths::CA),
        cert: Source::Path(client.cert),
        key: Source::Path(client.key),
    };
    FileSpec::new(
        client.kubeconfig,
        FileKind::Kubeconfig,
        Contents::Kubeconfig(kubeconfig),
    )
}

fn haproxy_cfg(plan: &Plan) -> Result<Vec<u8>, Error> {
    let ipv6 = plan
        .masters
        .first()
        .is_some_and(|m| m.address.ip().is_ipv6());
    let port = plan.load_balancer.bind_port;
    let cfg = HaproxyCfg {
        cluster: plan.cluster.name.as_str(),
        health_check: plan.load_balancer.health_check,
        https_check: plan.load_balancer.health_check == HealthCheck::HttpsReadyz,
        // `:::PORT v4v6` takes IPv6 and IPv4 clients; `:PORT` (the guide's) IPv4 only.
        bind: if ipv6 {
            format!(":::{port} v4v6")
        } else {
            format!(":{port}")
        },
        servers: plan
            .masters
            .iter()
            .map(|m| Backend {
                name: m.name.to_string(),
                address: format!("{}:{}", m.address.url_host(), plan.api.bind_port),
            })
            .collect(),
    };
    render_template(&cfg, "haproxy.cfg")
}

fn keepalived_conf(plan: &Plan, master: &Host) -> Result<Vec<u8>, Error> {
    let index = plan.masters.iter().position(|m| m == master).unwrap_or(0);
    let conf = KeepalivedConf {
        host: master.name.as_str(),
        address: master.address.to_string(),
        vip: plan
            .load_balancer
            .vip
            .map(|v| v.to_string())
            .unwrap_or_default(),
        interface: &plan.load_balancer.vip_interface,
        router_id: virtual_router_id(plan),
        // Earlier masters are preferred; the VIP moves only when their HAProxy is gone.
        priority: 150usize.saturating_sub(index),
        peers: plan
            .masters
            .iter()
            .filter(|m| *m != master)
            .map(|m| m.address.to_string())
            .collect(),
    };
    render_template(&conf, "keepalived.conf")
}

/// A VRRP router id (1–255) derived from the cluster name, so two clusters on one network
/// segment are unlikely to collide while the same cluster always gets the same id.
fn virtual_router_id(plan: &Plan) -> u8 {
    let sum = plan.cluster.name.as_str().bytes().fold(0u32, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(u32::from(b))
    });
    u8::try_from(sum % 254 + 1).unwrap_or(51)
}

fn worker_layout(plan: &Plan, worker: &Host) -> Vec<FileSpec> {
    use paths::*;
    let name = &worker.name;
    let mut files = vec![FileSpec::new(
        CA,
        FileKind::Certificate,
        Contents::CaCert(Ca::Kubernetes),
    )];
    files.extend(pair(IdentityId::kubelet(name), KUBELET, KUBELET_KEY));
    files.extend(pair(
        IdentityId::kubelet_server(name),
        KUBELET_SERVER,
        KUBELET_SERVER_KEY,
    ));
    files.extend(pair(
        IdentityId::shared("kube-proxy"),
        KUBE_PROXY,
        KUBE_PROXY_KEY,
    ));
    let server = plan.api_url();
    let node = format!("system:node:{name}");
    for client in [
        ClientFiles {
            kubeconfig: KUBELET_KUBECONFIG,
            user: &node,
            cert: KUBELET,
            key: KUBELET_KEY,
            purpose: "kubelet",
        },
        ClientFiles {
            kubeconfig: KUBE_PROXY_KUBECONFIG,
            user: "system:kube-proxy",
            cert: KUBE_PROXY,
            key: KUBE_PROXY_KEY,
            purpose: "kube-proxy",
        },
    ] {
        files.push(kubeconfig(plan, worker, &server, &client));
    }
    files
}

fn admin_files(plan: &Plan, certs: &CertSet) -> Result<Vec<(String, FileKind, Vec<u8>)>, Error> {
    let leaf = |id: &str| {
        certs.leaf(id).ok_or_else(|| Error::MissingKey {
            identity: id.to_owned(),
        })
    };
    let admin = leaf("admin")?;
    let kubeconfig = Kubeconfig {
        purpose: "kubeconfig of the cluster administrator (system:masters); keep it private"
            .to_owned(),
        cluster: plan.cluster.name.to_string(),
        server: plan.api_url(),
        user: "admin".to_owned(),
        ca: Source::Data(base64(&ca_pem(certs, Ca::Kubernetes)?)),
        cert: Source::Data(base64(admin.cert_pem.as_bytes())),
        key: Source::Data(base64(admin.key_pem.as_bytes())),
    };
    let endpoints: Vec<String> = plan
        .masters
        .iter()
        .map(|m| format!("https://{}:{}", m.address.url_host(), plan.etcd.client_port))
        .collect();
    let env = EtcdctlEnv {
        cluster: plan.cluster.name.as_str(),
        endpoints: endpoints.join(","),
    };
    let healthcheck = leaf("etcd-healthcheck-client")?;
    let file = |path: &str, kind, contents| (path.to_owned(), kind, contents);
    Ok(vec![
        file(
            "admin/admin.kubeconfig",
            FileKind::Secret,
            render_template(&kubeconfig, "kubeconfig.yaml")?,
        ),
        file(
            "admin/etcdctl.env",
            FileKind::Config,
            render_template(&env, "etcdctl.env")?,
        ),
        file(
            "admin/etcd-ca.pem",
            FileKind::Certificate,
            ca_pem(certs, Ca::Etcd.effective(plan.pki.layout))?,
        ),
        file(
            "admin/etcd-healthcheck-client.pem",
            FileKind::Certificate,
            healthcheck.cert_pem.clone().into_bytes(),
        ),
        file(
            "admin/etcd-healthcheck-client-key.pem",
            FileKind::PrivateKey,
            healthcheck.key_pem.clone().into_bytes(),
        ),
    ])
}
