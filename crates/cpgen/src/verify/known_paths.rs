//! The files a bundle cpgen writes can hold, by path: verify trusts a certificate or key
//! only in one of them, and anything else under `hosts/` would be installed on a machine
//! (`usr/bin/etcd`, `etc/ld.so.preload`, `root/.ssh/authorized_keys`) without any check
//! knowing what it does.

/// Paths on a host, below `hosts/<host>/`.
const HOST_FILES: &[&str] = &[
    "etc/etcd/pki/ca.pem",
    "etc/etcd/pki/etcd-client-key.pem",
    "etc/etcd/pki/etcd-client.pem",
    "etc/etcd/pki/etcd-server-key.pem",
    "etc/etcd/pki/etcd-server.pem",
    "etc/haproxy/haproxy.cfg",
    "etc/keepalived/keepalived.conf",
    "etc/kubernetes/encryption-config.yaml",
    "etc/kubernetes/pki/apiserver-key.pem",
    "etc/kubernetes/pki/apiserver.pem",
    "etc/kubernetes/pki/ca-key.pem",
    "etc/kubernetes/pki/ca.pem",
    "etc/kubernetes/pki/front-proxy-ca.pem",
    "etc/kubernetes/pki/front-proxy-client-key.pem",
    "etc/kubernetes/pki/front-proxy-client.pem",
    "etc/kubernetes/pki/kubelet-client-key.pem",
    "etc/kubernetes/pki/kubelet-client.pem",
    "etc/kubernetes/pki/sa.key",
    "etc/kubernetes/pki/sa.pub",
    "etc/systemd/system/etcd.service",
    "etc/systemd/system/kube-apiserver.service",
    "etc/systemd/system/kube-controller-manager.service",
    "etc/systemd/system/kube-scheduler.service",
    "var/lib/kube-controller-manager/kubeconfig",
    "var/lib/kube-controller-manager/pki/controller-manager-key.pem",
    "var/lib/kube-controller-manager/pki/controller-manager.pem",
    "var/lib/kube-proxy/kubeconfig",
    "var/lib/kube-proxy/pki/kube-proxy-key.pem",
    "var/lib/kube-proxy/pki/kube-proxy.pem",
    "var/lib/kube-scheduler/kubeconfig",
    "var/lib/kube-scheduler/pki/scheduler-key.pem",
    "var/lib/kube-scheduler/pki/scheduler.pem",
    "var/lib/kubelet/kubeconfig",
    "var/lib/kubelet/pki/kubelet-key.pem",
    "var/lib/kubelet/pki/kubelet-server-key.pem",
    "var/lib/kubelet/pki/kubelet-server.pem",
    "var/lib/kubelet/pki/kubelet.pem",
];

/// Paths outside `hosts/`, for the operator and the deployment tools.
const OTHER_FILES: &[&str] = &[
    "README.md",
    "manifest.json",
    "admin/admin.kubeconfig",
    "admin/etcd-ca.pem",
    "admin/etcd-healthcheck-client-key.pem",
    "admin/etcd-healthcheck-client.pem",
    "admin/etcdctl.env",
    "deploy/ansible/inventory.ini",
    "deploy/ansible/playbook.yml",
    "deploy/nix/module.nix",
];

/// True for a path a cpgen bundle can hold.
pub(super) fn is_expected(path: &str) -> bool {
    if OTHER_FILES.contains(&path) {
        return true;
    }
    if let Some(vars) = path.strip_prefix("deploy/ansible/host_vars/") {
        return vars.ends_with(".yml") && !vars.contains('/');
    }
    path.strip_prefix("hosts/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(_, local)| HOST_FILES.contains(&local))
}
