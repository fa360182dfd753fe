//! The PKI table (README, "PKI and the secrets file") as data: every certificate authority and every leaf
//! identity of a plan, with subject, usage, signer and SANs. Nothing here touches keys.

use serde::Serialize;

use crate::error::ImportProblem;
use crate::plan::{PkiLayout, Plan, ServerRole};
use crate::types::{HostName, San};

/// One of the three certificate authorities a cluster may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ca {
    /// Signs the API server, its clients and the components.
    Kubernetes,
    /// Signs etcd servers and etcd clients.
    Etcd,
    /// Signs the aggregation layer's front-proxy client.
    FrontProxy,
}

impl Ca {
    /// All three, in order.
    pub const ALL: [Ca; 3] = [Ca::Kubernetes, Ca::Etcd, Ca::FrontProxy];

    /// The name `import-ca --which` takes.
    pub fn name(self) -> &'static str {
        match self {
            Ca::Kubernetes => "kubernetes",
            Ca::Etcd => "etcd",
            Ca::FrontProxy => "front-proxy",
        }
    }

    /// The key's name in the secrets file and the file stem in the bundle.
    pub fn id(self) -> &'static str {
        match self {
            Ca::Kubernetes => "ca",
            Ca::Etcd => "etcd-ca",
            Ca::FrontProxy => "front-proxy-ca",
        }
    }

    /// The CA certificate's common name.
    pub fn common_name(self) -> &'static str {
        match self {
            Ca::Kubernetes => "kubernetes",
            Ca::Etcd => "etcd-ca",
            Ca::FrontProxy => "front-proxy-ca",
        }
    }

    /// The CA that really signs for this role under `layout`: with one shared CA, the
    /// Kubernetes CA signs everything.
    pub fn effective(self, layout: PkiLayout) -> Ca {
        match layout {
            PkiLayout::SharedCa => Ca::Kubernetes,
            _ => self,
        }
    }

    /// The distinct CAs of a layout.
    pub fn all_in(layout: PkiLayout) -> Vec<Ca> {
        let mut cas: Vec<Ca> = Ca::ALL.iter().map(|ca| ca.effective(layout)).collect();
        cas.dedup();
        cas
    }
}

impl std::str::FromStr for Ca {
    type Err = ImportProblem;

    fn from_str(s: &str) -> Result<Ca, ImportProblem> {
        Ca::ALL
            .into_iter()
            .find(|ca| ca.name() == s)
            .ok_or_else(|| ImportProblem::UnknownCa(s.to_owned()))
    }
}

/// What a leaf certificate may be used for (extended key usage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Usage {
    /// TLS server authentication.
    Server,
    /// TLS client authentication.
    Client,
    /// Both (etcd members are servers to clients and clients to their peers).
    ServerAndClient,
}

impl Usage {
    /// A stable name for the usage, e.g. in what a serial is derived from.
    pub fn tag(self) -> &'static str {
        match self {
            Usage::Server => "server",
            Usage::Client => "client",
            Usage::ServerAndClient => "server+client",
        }
    }
}

/// One leaf certificate of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// Unique name: the key's name in the secrets file, e.g. `apiserver/kubem00`.
    pub id: String,
    /// The file stem in the bundle: `X.pem` and `X-key.pem`.
    pub file_stem: &'static str,
    /// The host it belongs to, for per-host certificates.
    pub host: Option<HostName>,
    /// Subject CN.
    pub common_name: String,
    /// Subject O (Kubernetes reads it as the group).
    pub organization: Option<&'static str>,
    /// Which CA signs it (before the layout maps it).
    pub signer: Ca,
    /// Extended key usage.
    pub usage: Usage,
    /// subjectAltNames (servers only).
    pub sans: Vec<San>,
}

/// The name of a leaf identity: its key's name in the secrets file and how its certificate
/// is found. Per-host names are `<stem>/<host>`, made only here, so the issuer and the
/// renderer cannot spell one differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdentityId(String);

impl IdentityId {
    /// An identity every host shares, e.g. `etcd-client`.
    pub(crate) fn shared(name: &'static str) -> IdentityId {
        IdentityId(name.to_owned())
    }

    /// The serving certificate of `role` on master `host`.
    pub(crate) fn server(role: ServerRole, host: &HostName) -> IdentityId {
        IdentityId::of_host(role.identity(), host)
    }

    /// Worker `host`'s kubelet client certificate.
    pub(crate) fn kubelet(host: &HostName) -> IdentityId {
        IdentityId::of_host("kubelet", host)
    }

    /// Worker `host`'s kubelet serving certificate.
    pub(crate) fn kubelet_server(host: &HostName) -> IdentityId {
        IdentityId::of_host("kubelet-server", host)
    }

    fn of_host(stem: &str, host: &HostName) -> IdentityId {
        IdentityId(format!("{stem}/{host}"))
    }

    /// The name as the secrets file has it.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// The group of `admin/admin.kubeconfig`: cluster administrators through a
/// ClusterRoleBinding (`admin/bootstrap/`), which can be revoked, unlike `system:masters`.
pub(crate) const CLUSTER_ADMINS_GROUP: &str = "cpgen:cluster-admins";
/// The group that bypasses RBAC: only the break-glass `admin/super-admin.kubeconfig` has it.
pub(crate) const SUPER_ADMINS_GROUP: &str = "system:masters";
/// The user kube-apiserver is to the kubelets, bound to `system:kubelet-api-admin`.
pub(crate) const KUBELET_CLIENT_USER: &str = "kube-apiserver-kubelet-client";

/// The key name of the service-account signing key in the secrets file.
pub const SERVICE_ACCOUNT_KEY: &str = "service-account";

fn leaf(
    id: &str,
    file_stem: &'static str,
    common_name: &str,
    organization: Option<&'static str>,
    signer: Ca,
    usage: Usage,
) -> Identity {
    Identity {
        id: id.to_owned(),
        file_stem,
        host: None,
        common_name: common_name.to_owned(),
        organization,
        signer,
        usage,
        sans: Vec::new(),
    }
}

/// Every leaf identity of the plan, in a fixed order: per-master server certificates, the
/// shared client certificates, then per-worker ones.
pub fn leaf_identities(plan: &Plan) -> Vec<Identity> {
    let mut identities = Vec::new();
    for certificate in plan.server_certificates() {
        let (file_stem, common_name, signer, usage) = match certificate.role {
            // etcd's gRPC gateway dials its own member with the serving certificate as a
            // client certificate, so it keeps clientAuth.
            ServerRole::EtcdServer => (
                "etcd-server",
                certificate.host.to_string(),
                Ca::Etcd,
                Usage::ServerAndClient,
            ),
            ServerRole::EtcdPeer => (
                "etcd-peer",
                certificate.host.to_string(),
                Ca::Etcd,
                Usage::ServerAndClient,
            ),
            ServerRole::Apiserver => (
                "apiserver",
                "kube-apiserver".to_owned(),
                Ca::Kubernetes,
                Usage::Server,
            ),
        };
        identities.push(Identity {
            id: IdentityId::server(certificate.role, &certificate.host).0,
            file_stem,
            host: Some(certificate.host.clone()),
            common_name,
            organization: None,
            signer,
            usage,
            sans: certificate.sans,
        });
    }
    use Usage::Client;
    identities.extend([
        leaf(
            "etcd-client",
            "etcd-client",
            "kube-apiserver-etcd-client",
            None,
            Ca::Etcd,
            Client,
        ),
        leaf(
            "kubelet-client",
            "kubelet-client",
            KUBELET_CLIENT_USER,
            None,
            Ca::Kubernetes,
            Client,
        ),
        leaf(
            "front-proxy-client",
            "front-proxy-client",
            "front-proxy-client",
            None,
            Ca::FrontProxy,
            Client,
        ),
        leaf(
            "controller-manager",
            "controller-manager",
            "system:kube-controller-manager",
            None,
            Ca::Kubernetes,
            Client,
        ),
        leaf(
            "scheduler",
            "scheduler",
            "system:kube-scheduler",
            None,
            Ca::Kubernetes,
            Client,
        ),
        leaf(
            "admin",
            "admin",
            "admin",
            Some(CLUSTER_ADMINS_GROUP),
            Ca::Kubernetes,
            Client,
        ),
        leaf(
            "super-admin",
            "super-admin",
            "super-admin",
            Some(SUPER_ADMINS_GROUP),
            Ca::Kubernetes,
            Client,
        ),
        leaf(
            "etcd-healthcheck-client",
            "etcd-healthcheck-client",
            "kube-etcd-healthcheck-client",
            None,
            Ca::Etcd,
            Client,
        ),
    ]);
    if plan.nodes().next().is_some() {
        identities.push(leaf(
            "kube-proxy",
            "kube-proxy",
            "system:kube-proxy",
            Some("system:node-proxier"),
            Ca::Kubernetes,
            Client,
        ));
    }
    for node in plan.nodes() {
        let user = format!("system:node:{}", node.name);
        let mut client = leaf(
            IdentityId::kubelet(&node.name).as_str(),
            "kubelet",
            &user,
            Some("system:nodes"),
            Ca::Kubernetes,
            Client,
        );
        client.host = Some(node.name.clone());
        let mut serving = leaf(
            IdentityId::kubelet_server(&node.name).as_str(),
            "kubelet-server",
            &user,
            None,
            Ca::Kubernetes,
            Usage::Server,
        );
        serving.host = Some(node.name.clone());
        serving.sans = vec![
            San::Dns(node.name.as_dns_name().clone()),
            San::Ip(node.address.ip()),
        ];
        identities.extend([client, serving]);
    }
    identities
}
