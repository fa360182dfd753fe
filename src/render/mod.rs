//! Plan + certificates → the files of the bundle: systemd units with the guide's settings
//! translated for the target Kubernetes (DESIGN.md §6), kubeconfigs, HAProxy, keepalived,
//! encryption config, etcdctl settings and the bundle's README. Every text file comes from an
//! askama template in `templates/`; this module only decides what goes into them.

mod readme;
mod units;

pub(crate) use units::master_unit_specs;

use askama::Template;
use base64::Engine;

use crate::bundle::{Bundle, FileKind};
use crate::pki::{Ca, CertSet};
use crate::plan::{
    wildcard_and_loopback, ComponentsVia, HealthCheck, Host, LoadBalancerMode, Plan,
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
struct Kubeconfig<'a> {
    purpose: &'a str,
    cluster: &'a str,
    server: &'a str,
    user: &'a str,
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

/// Renders a template into a text file's contents. askama drops a template file's final
/// newline, and POSIX text files (and `systemd-analyze`) want one, so it is put back.
pub(crate) fn render_text(template: &impl Template, name: &'static str) -> Result<String, Error> {
    let mut text = template.render().map_err(|source| Error::Render {
        template: name,
        source,
    })?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

pub(crate) fn render_template(
    template: &impl Template,
    name: &'static str,
) -> Result<Vec<u8>, Error> {
    render_text(template, name).map(String::into_bytes)
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Every file of the bundle but `manifest.json` (see [`Bundle::with_manifest`]).
pub(crate) fn render(plan: &Plan, certs: &CertSet) -> Result<Bundle, Error> {
    let mut bundle = Bundle::default();
    for master in &plan.masters {
        master_files(&mut bundle, plan, certs, master)?;
    }
    if plan.load_balancer.mode == LoadBalancerMode::External {
        let haproxy = haproxy_cfg(plan)?;
        for host in &plan.load_balancer.hosts {
            bundle.insert_host_file(
                &host.name,
                paths::HAPROXY_CFG,
                FileKind::Config,
                haproxy.clone(),
            );
        }
    }
    for worker in &plan.workers {
        worker_files(&mut bundle, plan, certs, worker)?;
    }
    admin_files(&mut bundle, plan, certs)?;
    crate::deploy::add_deploy_files(&mut bundle, plan)?;
    bundle.insert(
        "README.md",
        FileKind::Readme,
        readme::render(plan, &bundle)?,
    );
    Ok(bundle)
}

fn ca_pem(certs: &CertSet, ca: Ca) -> Result<Vec<u8>, Error> {
    certs
        .ca(ca)
        .map(|c| c.cert_pem.clone().into_bytes())
        .ok_or_else(|| Error::MissingKey {
            identity: ca.id().to_owned(),
        })
}

/// The certificate and key of `id`, as (cert, key) bytes.
fn leaf_pems(certs: &CertSet, id: &str) -> Result<(Vec<u8>, Vec<u8>), Error> {
    certs
        .leaf(id)
        .map(|l| {
            (
                l.cert_pem.clone().into_bytes(),
                l.key_pem.clone().into_bytes(),
            )
        })
        .ok_or_else(|| Error::MissingKey {
            identity: id.to_owned(),
        })
}

fn insert_pair(
    bundle: &mut Bundle,
    host: &Host,
    certs: &CertSet,
    id: &str,
    cert_path: &str,
    key_path: &str,
) -> Result<(), Error> {
    let (cert, key) = leaf_pems(certs, id)?;
    bundle.insert_host_file(&host.name, cert_path, FileKind::Certificate, cert);
    bundle.insert_host_file(&host.name, key_path, FileKind::PrivateKey, key);
    Ok(())
}

fn master_files(
    bundle: &mut Bundle,
    plan: &Plan,
    certs: &CertSet,
    master: &Host,
) -> Result<(), Error> {
    use paths::*;
    let layout = plan.pki.layout;
    let name = &master.name;
    bundle.insert_host_file(
        name,
        ETCD_CA,
        FileKind::Certificate,
        ca_pem(certs, Ca::Etcd.effective(layout))?,
    );
    insert_pair(
        bundle,
        master,
        certs,
        &format!("etcd-server/{name}"),
        ETCD_SERVER,
        ETCD_SERVER_KEY,
    )?;
    insert_pair(
        bundle,
        master,
        certs,
        "etcd-client",
        ETCD_CLIENT,
        ETCD_CLIENT_KEY,
    )?;
    bundle.insert_host_file(
        name,
        CA,
        FileKind::Certificate,
        ca_pem(certs, Ca::Kubernetes)?,
    );
    let ca_key = certs
        .ca(Ca::Kubernetes)
        .map(|c| c.key_pem.clone().into_bytes())
        .unwrap_or_default();
    bundle.insert_host_file(name, CA_KEY, FileKind::PrivateKey, ca_key);
    insert_pair(
        bundle,
        master,
        certs,
        &format!("apiserver/{name}"),
        APISERVER,
        APISERVER_KEY,
    )?;
    insert_pair(
        bundle,
        master,
        certs,
        "kubelet-client",
        KUBELET_CLIENT,
        KUBELET_CLIENT_KEY,
    )?;
    bundle.insert_host_file(
        name,
        FRONT_PROXY_CA,
        FileKind::Certificate,
        ca_pem(certs, Ca::FrontProxy.effective(layout))?,
    );
    insert_pair(
        bundle,
        master,
        certs,
        "front-proxy-client",
        FRONT_PROXY_CLIENT,
        FRONT_PROXY_CLIENT_KEY,
    )?;
    bundle.insert_host_file(
        name,
        SA_KEY,
        FileKind::PrivateKey,
        certs.service_account_key_pem.clone().into_bytes(),
    );
    bundle.insert_host_file(
        name,
        SA_PUB,
        FileKind::Certificate,
        certs.service_account_public_pem.clone().into_bytes(),
    );
    let encryption = EncryptionConfig {
        key: base64(&certs.encryption_key),
    };
    bundle.insert_host_file(
        name,
        ENCRYPTION_CONFIG,
        FileKind::Secret,
        render_template(&encryption, "encryption-config.yaml")?,
    );
    insert_pair(
        bundle,
        master,
        certs,
        "controller-manager",
        CONTROLLER_MANAGER,
        CONTROLLER_MANAGER_KEY,
    )?;
    insert_pair(bundle, master, certs, "scheduler", SCHEDULER, SCHEDULER_KEY)?;
    let component_server = match plan.api.components_via {
        ComponentsVia::Local => format!(
            "https://{}:{}",
            url_host(wildcard_and_loopback(master.address.ip()).1),
            plan.api.bind_port
        ),
        _ => plan.api_url(),
    };
    for (path, user, cert, key, purpose) in [
        (
            CONTROLLER_MANAGER_KUBECONFIG,
            "system:kube-controller-manager",
            CONTROLLER_MANAGER,
            CONTROLLER_MANAGER_KEY,
            "kube-controller-manager",
        ),
        (
            SCHEDULER_KUBECONFIG,
            "system:kube-scheduler",
            SCHEDULER,
            SCHEDULER_KEY,
            "kube-scheduler",
        ),
    ] {
        let identity = ClientFiles {
            user,
            cert,
            key,
            purpose,
        };
        insert_kubeconfig(bundle, plan, master, &component_server, path, &identity)?;
    }
    for unit in units::master_units(plan, master)? {
        bundle.insert_host_file(
            name,
            &format!("{SYSTEMD}/{}", unit.file_name),
            FileKind::SystemdUnit,
            unit.text,
        );
    }
    if plan.load_balancer.mode == LoadBalancerMode::OnMasters {
        bundle.insert_host_file(name, HAPROXY_CFG, FileKind::Config, haproxy_cfg(plan)?);
        if plan.load_balancer.vip.is_some() {
            bundle.insert_host_file(
                name,
                KEEPALIVED_CONF,
                FileKind::Config,
                keepalived_conf(plan, master)?,
            );
        }
    }
    Ok(())
}

/// A component's client identity, by the paths its kubeconfig names.
struct ClientFiles<'a> {
    user: &'a str,
    cert: &'static str,
    key: &'static str,
    purpose: &'a str,
}

/// Adds a kubeconfig that names its certificate files on `host` (the guide's form).
fn insert_kubeconfig(
    bundle: &mut Bundle,
    plan: &Plan,
    host: &Host,
    server: &str,
    path: &str,
    client: &ClientFiles<'_>,
) -> Result<(), Error> {
    let kubeconfig = Kubeconfig {
        purpose: &format!("kubeconfig of {} on {}", client.purpose, host.name),
        cluster: plan.cluster.name.as_str(),
        server,
        user: client.user,
        ca: Source::Path(paths::CA),
        cert: Source::Path(client.cert),
        key: Source::Path(client.key),
    };
    bundle.insert_host_file(
        &host.name,
        path,
        FileKind::Kubeconfig,
        render_template(&kubeconfig, "kubeconfig.yaml")?,
    );
    Ok(())
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

fn worker_files(
    bundle: &mut Bundle,
    plan: &Plan,
    certs: &CertSet,
    worker: &Host,
) -> Result<(), Error> {
    use paths::*;
    let name = &worker.name;
    bundle.insert_host_file(
        name,
        CA,
        FileKind::Certificate,
        ca_pem(certs, Ca::Kubernetes)?,
    );
    insert_pair(
        bundle,
        worker,
        certs,
        &format!("kubelet/{name}"),
        KUBELET,
        KUBELET_KEY,
    )?;
    insert_pair(
        bundle,
        worker,
        certs,
        &format!("kubelet-server/{name}"),
        KUBELET_SERVER,
        KUBELET_SERVER_KEY,
    )?;
    insert_pair(
        bundle,
        worker,
        certs,
        "kube-proxy",
        KUBE_PROXY,
        KUBE_PROXY_KEY,
    )?;
    let server = plan.api_url();
    let node = format!("system:node:{name}");
    for (path, user, cert, key, purpose) in [
        (
            KUBELET_KUBECONFIG,
            node.as_str(),
            KUBELET,
            KUBELET_KEY,
            "kubelet",
        ),
        (
            KUBE_PROXY_KUBECONFIG,
            "system:kube-proxy",
            KUBE_PROXY,
            KUBE_PROXY_KEY,
            "kube-proxy",
        ),
    ] {
        let identity = ClientFiles {
            user,
            cert,
            key,
            purpose,
        };
        insert_kubeconfig(bundle, plan, worker, &server, path, &identity)?;
    }
    Ok(())
}

fn admin_files(bundle: &mut Bundle, plan: &Plan, certs: &CertSet) -> Result<(), Error> {
    let (admin_cert, admin_key) = leaf_pems(certs, "admin")?;
    let kubeconfig = Kubeconfig {
        purpose: "kubeconfig of the cluster administrator (system:masters); keep it private",
        cluster: plan.cluster.name.as_str(),
        server: &plan.api_url(),
        user: "admin",
        ca: Source::Data(base64(&ca_pem(certs, Ca::Kubernetes)?)),
        cert: Source::Data(base64(&admin_cert)),
        key: Source::Data(base64(&admin_key)),
    };
    bundle.insert(
        "admin/admin.kubeconfig",
        FileKind::Secret,
        render_template(&kubeconfig, "kubeconfig.yaml")?,
    );
    let endpoints: Vec<String> = plan
        .masters
        .iter()
        .map(|m| format!("https://{}:{}", m.address.url_host(), plan.etcd.client_port))
        .collect();
    let env = EtcdctlEnv {
        cluster: plan.cluster.name.as_str(),
        endpoints: endpoints.join(","),
    };
    bundle.insert(
        "admin/etcdctl.env",
        FileKind::Config,
        render_template(&env, "etcdctl.env")?,
    );
    bundle.insert(
        "admin/etcd-ca.pem",
        FileKind::Certificate,
        ca_pem(certs, Ca::Etcd.effective(plan.pki.layout))?,
    );
    let (cert, key) = leaf_pems(certs, "etcd-healthcheck-client")?;
    bundle.insert(
        "admin/etcd-healthcheck-client.pem",
        FileKind::Certificate,
        cert,
    );
    bundle.insert(
        "admin/etcd-healthcheck-client-key.pem",
        FileKind::PrivateKey,
        key,
    );
    Ok(())
}
