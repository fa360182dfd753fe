//! Where every file lives on a host (absolute paths, as the units and kubeconfigs name them).

/// etcd's CA certificate on a master.
pub(crate) const ETCD_CA: &str = "/etc/etcd/pki/ca.pem";
/// The member's serving certificate, for its clients.
pub(crate) const ETCD_SERVER: &str = "/etc/etcd/pki/etcd-server.pem";
/// Its key.
pub(crate) const ETCD_SERVER_KEY: &str = "/etc/etcd/pki/etcd-server-key.pem";
/// The member's peer certificate (peer SANs only), for the other members.
pub(crate) const ETCD_PEER: &str = "/etc/etcd/pki/etcd-peer.pem";
/// Its key.
pub(crate) const ETCD_PEER_KEY: &str = "/etc/etcd/pki/etcd-peer-key.pem";
/// kube-apiserver's etcd client certificate.
pub(crate) const ETCD_CLIENT: &str = "/etc/etcd/pki/etcd-client.pem";
/// Its key.
pub(crate) const ETCD_CLIENT_KEY: &str = "/etc/etcd/pki/etcd-client-key.pem";
/// The Kubernetes CA certificate.
pub(crate) const CA: &str = "/etc/kubernetes/pki/ca.pem";
/// The Kubernetes CA key (controller-manager signs kubelet certificates with it).
pub(crate) const CA_KEY: &str = "/etc/kubernetes/pki/ca-key.pem";
/// The Kubernetes CA certificate that signs, alone: kube-controller-manager's signer takes
/// exactly one certificate, while `ca.pem` carries two during a rotation.
pub(crate) const CA_SIGNING: &str = "/etc/kubernetes/pki/ca-signing.pem";
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
pub(crate) const FRONT_PROXY_CLIENT_KEY: &str = "/etc/kubernetes/pki/front-proxy-client-key.pem";
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
/// A node's kubelet kubeconfig.
pub(crate) const KUBELET_KUBECONFIG: &str = "/var/lib/kubelet/kubeconfig";
/// A node's KubeletConfiguration.
pub(crate) const KUBELET_CONFIG: &str = "/var/lib/kubelet/config.yaml";
/// A node's kubelet client certificate.
pub(crate) const KUBELET: &str = "/var/lib/kubelet/pki/kubelet.pem";
/// Its key.
pub(crate) const KUBELET_KEY: &str = "/var/lib/kubelet/pki/kubelet-key.pem";
/// A node's kubelet serving certificate.
pub(crate) const KUBELET_SERVER: &str = "/var/lib/kubelet/pki/kubelet-server.pem";
/// Its key.
pub(crate) const KUBELET_SERVER_KEY: &str = "/var/lib/kubelet/pki/kubelet-server-key.pem";
/// A node's kube-proxy kubeconfig.
pub(crate) const KUBE_PROXY_KUBECONFIG: &str = "/var/lib/kube-proxy/kubeconfig";
/// A node's KubeProxyConfiguration.
pub(crate) const KUBE_PROXY_CONFIG: &str = "/var/lib/kube-proxy/config.yaml";
/// Its client certificate.
pub(crate) const KUBE_PROXY: &str = "/var/lib/kube-proxy/pki/kube-proxy.pem";
/// Its key.
pub(crate) const KUBE_PROXY_KEY: &str = "/var/lib/kube-proxy/pki/kube-proxy-key.pem";
/// The cluster administrator's kubeconfig (group `cpgen:cluster-admins`, bound by RBAC).
pub(crate) const ADMIN_KUBECONFIG: &str = "admin/admin.kubeconfig";
/// The break-glass kubeconfig (`system:masters`): for the RBAC bootstrap, or when RBAC is
/// broken; never copied to a host.
pub(crate) const SUPER_ADMIN_KUBECONFIG: &str = "admin/super-admin.kubeconfig";
/// etcdctl's settings.
pub(crate) const ETCDCTL_ENV: &str = "admin/etcdctl.env";
/// etcd's CA, for etcdctl.
pub(crate) const ADMIN_ETCD_CA: &str = "admin/etcd-ca.pem";
/// etcdctl's (and probe's) read-only etcd client certificate.
pub(crate) const ETCD_HEALTHCHECK_CLIENT: &str = "admin/etcd-healthcheck-client.pem";
/// Its key.
pub(crate) const ETCD_HEALTHCHECK_CLIENT_KEY: &str = "admin/etcd-healthcheck-client-key.pem";
/// The ClusterRoleBinding that makes the admin group cluster administrators.
pub(crate) const BOOTSTRAP_CLUSTER_ADMINS: &str = "admin/bootstrap/cluster-admins.yaml";
/// The ClusterRoleBinding that lets kube-apiserver use the kubelets' API.
pub(crate) const BOOTSTRAP_KUBELET_CLIENT: &str = "admin/bootstrap/apiserver-kubelet-client.yaml";

/// Every file of `admin/`: the operator's, never installed on a host.
pub(crate) const ADMIN_FILES: &[&str] = &[
    ADMIN_KUBECONFIG,
    SUPER_ADMIN_KUBECONFIG,
    ETCDCTL_ENV,
    ADMIN_ETCD_CA,
    ETCD_HEALTHCHECK_CLIENT,
    ETCD_HEALTHCHECK_CLIENT_KEY,
    BOOTSTRAP_CLUSTER_ADMINS,
    BOOTSTRAP_KUBELET_CLIENT,
];

/// etcd's unit file name.
pub(crate) const ETCD_UNIT: &str = "etcd.service";
/// kube-apiserver's unit file name.
pub(crate) const APISERVER_UNIT: &str = "kube-apiserver.service";
/// kube-controller-manager's unit file name.
pub(crate) const CONTROLLER_MANAGER_UNIT: &str = "kube-controller-manager.service";
/// kube-scheduler's unit file name.
pub(crate) const SCHEDULER_UNIT: &str = "kube-scheduler.service";
/// The kubelet's unit file name (every node).
pub(crate) const KUBELET_UNIT: &str = "kubelet.service";
/// kube-proxy's unit file name (every node).
pub(crate) const KUBE_PROXY_UNIT: &str = "kube-proxy.service";

/// HAProxy's unit: the Debian package's, which [`HAPROXY_CFG`] configures.
pub(crate) const HAPROXY_UNIT: &str = "haproxy.service";
/// keepalived's unit: the Debian package's, which [`KEEPALIVED_CONF`] configures.
pub(crate) const KEEPALIVED_UNIT: &str = "keepalived.service";

/// Every unit cpgen writes, in [`SYSTEMD`], in start order.
pub(crate) const UNITS: [&str; 6] = [
    ETCD_UNIT,
    APISERVER_UNIT,
    CONTROLLER_MANAGER_UNIT,
    SCHEDULER_UNIT,
    KUBELET_UNIT,
    KUBE_PROXY_UNIT,
];

/// Every other file cpgen can put on a host: what verify accepts there.
pub(crate) const HOST_FILES: &[&str] = &[
    ETCD_CA,
    ETCD_SERVER,
    ETCD_SERVER_KEY,
    ETCD_PEER,
    ETCD_PEER_KEY,
    ETCD_CLIENT,
    ETCD_CLIENT_KEY,
    CA,
    CA_KEY,
    CA_SIGNING,
    APISERVER,
    APISERVER_KEY,
    KUBELET_CLIENT,
    KUBELET_CLIENT_KEY,
    FRONT_PROXY_CA,
    FRONT_PROXY_CLIENT,
    FRONT_PROXY_CLIENT_KEY,
    SA_KEY,
    SA_PUB,
    ENCRYPTION_CONFIG,
    CONTROLLER_MANAGER_KUBECONFIG,
    CONTROLLER_MANAGER,
    CONTROLLER_MANAGER_KEY,
    SCHEDULER_KUBECONFIG,
    SCHEDULER,
    SCHEDULER_KEY,
    HAPROXY_CFG,
    KEEPALIVED_CONF,
    KUBELET_KUBECONFIG,
    KUBELET_CONFIG,
    KUBELET,
    KUBELET_KEY,
    KUBELET_SERVER,
    KUBELET_SERVER_KEY,
    KUBE_PROXY_KUBECONFIG,
    KUBE_PROXY_CONFIG,
    KUBE_PROXY,
    KUBE_PROXY_KEY,
];

/// The CA whose trust file is at bundle path `path` (`hosts/<host>/...` or `admin/`), as the
/// renderer writes them: where a change and verify find each CA's trust.
pub(crate) fn trust_file_ca(path: &str) -> Option<crate::pki::Ca> {
    use crate::pki::Ca;
    let on_host = path.starts_with("hosts/");
    if path == "admin/etcd-ca.pem" || (on_host && path.ends_with(ETCD_CA)) {
        Some(Ca::Etcd)
    } else if on_host && path.ends_with(FRONT_PROXY_CA) {
        Some(Ca::FrontProxy)
    } else if on_host && path.ends_with(CA) {
        Some(Ca::Kubernetes)
    } else {
        None
    }
}
