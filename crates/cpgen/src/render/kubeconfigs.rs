//! The kubeconfigs in a bundle: those of the components on a host, which name their
//! certificate files there (the guide's form), and the administrator's under `admin/`,
//! which embeds its certificates.

use askama::Template;

use super::paths::*;
use super::{base64, ca_pem, shared_leaf, Contents, FileSpec};
use crate::layout::FileKind;
use crate::pki::{Ca, CertSet, CLUSTER_ADMINS_GROUP, SUPER_ADMINS_GROUP};
use crate::plan::{wildcard_and_loopback, ComponentsVia, Host, Plan};
use crate::types::url_host;
use crate::Error;

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

/// A component's client identity, by the paths its kubeconfig names.
struct ClientFiles<'a> {
    /// Where the kubeconfig itself goes.
    kubeconfig: &'static str,
    user: &'a str,
    cert: &'static str,
    key: &'static str,
    purpose: &'a str,
}

/// The client identities of controller-manager and scheduler on every master.
const MASTER_CLIENTS: [ClientFiles<'static>; 2] = [
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
];

/// The files a component's kubeconfig at `path` names (CA, certificate, key), so whoever
/// reads the kubeconfig reads them too; empty for any other path.
pub(super) fn kubeconfig_reads(path: &str) -> Vec<&'static str> {
    let node_clients = [
        (KUBELET_KUBECONFIG, KUBELET, KUBELET_KEY),
        (KUBE_PROXY_KUBECONFIG, KUBE_PROXY, KUBE_PROXY_KEY),
    ];
    MASTER_CLIENTS
        .iter()
        .map(|client| (client.kubeconfig, client.cert, client.key))
        .chain(node_clients)
        .filter(|(kubeconfig, _, _)| *kubeconfig == path)
        .flat_map(|(_, cert, key)| [CA, cert, key])
        .collect()
}

/// The kubeconfigs of controller-manager and scheduler on `master`.
pub(super) fn master_kubeconfigs(plan: &Plan, master: &Host) -> [FileSpec; 2] {
    let server = match plan.api.components_via {
        ComponentsVia::Local => format!(
            "https://{}:{}",
            url_host(wildcard_and_loopback(master.address.ip()).1),
            plan.api.bind_port
        ),
        _ => plan.api_url(),
    };
    MASTER_CLIENTS.map(|client| kubeconfig(plan, master, &server, &client))
}

/// The kubeconfigs of kubelet and kube-proxy on `node`.
pub(super) fn node_kubeconfigs(plan: &Plan, node_host: &Host) -> [FileSpec; 2] {
    let server = plan.api_url();
    let node = format!("system:node:{}", node_host.name);
    [
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
    ]
    .map(|client| kubeconfig(plan, node_host, &server, &client))
}

/// A kubeconfig that names its certificate files on `host` (the guide's form).
fn kubeconfig(plan: &Plan, host: &Host, server: &str, client: &ClientFiles<'_>) -> FileSpec {
    let kubeconfig = Kubeconfig {
        purpose: format!("kubeconfig of {} on {}", client.purpose, host.name),
        cluster: plan.cluster.name.to_string(),
        server: server.to_owned(),
        user: client.user.to_owned(),
        ca: Source::Path(CA),
        cert: Source::Path(client.cert),
        key: Source::Path(client.key),
    };
    FileSpec::new(
        client.kubeconfig,
        FileKind::Kubeconfig,
        Contents::Kubeconfig(kubeconfig),
    )
}

/// `admin/admin.kubeconfig`: the cluster administrator's (a group RBAC binds, so it can be
/// revoked), with its certificates embedded so it works from any machine.
pub(super) fn admin_kubeconfig(plan: &Plan, certs: &CertSet) -> Result<Kubeconfig, Error> {
    operator_kubeconfig(
        plan,
        certs,
        "admin",
        &format!("kubeconfig of the cluster administrator (group {CLUSTER_ADMINS_GROUP}, bound to cluster-admin by admin/bootstrap/); keep it private"),
    )
}

/// `admin/super-admin.kubeconfig`: `system:masters`, which RBAC cannot restrict or revoke:
/// for the RBAC bootstrap and for when RBAC is broken.
pub(super) fn super_admin_kubeconfig(plan: &Plan, certs: &CertSet) -> Result<Kubeconfig, Error> {
    operator_kubeconfig(
        plan,
        certs,
        "super-admin",
        &format!("break-glass kubeconfig ({SUPER_ADMINS_GROUP}: bypasses RBAC, cannot be revoked); use it to apply admin/bootstrap/ or when RBAC is broken, keep it offline, never copy it to a host"),
    )
}

fn operator_kubeconfig(
    plan: &Plan,
    certs: &CertSet,
    id: &str,
    purpose: &str,
) -> Result<Kubeconfig, Error> {
    let leaf = shared_leaf(certs, id)?;
    Ok(Kubeconfig {
        purpose: purpose.to_owned(),
        cluster: plan.cluster.name.to_string(),
        server: plan.api_url(),
        user: id.to_owned(),
        ca: Source::Data(base64(&ca_pem(certs, Ca::Kubernetes)?)),
        cert: Source::Data(base64(leaf.cert_pem.as_bytes())),
        key: Source::Data(base64(leaf.key_pem.as_bytes())),
    })
}
