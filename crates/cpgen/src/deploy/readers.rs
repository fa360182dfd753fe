//! Which systemd units read each file of a host: a unit reads its own unit file, every path
//! among its flags' values and what a kubeconfig among them names; HAProxy and keepalived,
//! whose units come with their packages, read their configs. The playbook restarts exactly
//! the units that read a file an install changed.

use std::collections::{BTreeMap, BTreeSet};

use crate::layout::Role;
use crate::plan::{Host, LoadBalancerMode, Plan};
use crate::render::paths::{HAPROXY_CFG, KEEPALIVED_CONF, SYSTEMD};
use crate::render::{files_named_by, host_unit_specs};

/// A unit's name without `.service`, as the playbook's handlers name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct UnitName(pub(super) &'static str);

/// Absolute path on the host → the units that read it.
pub(super) type Readers = BTreeMap<String, BTreeSet<UnitName>>;

/// True when `role` runs HAProxy under `plan`.
pub(super) fn runs_haproxy(plan: &Plan, role: Role) -> bool {
    match plan.load_balancer.mode {
        LoadBalancerMode::OnMasters => role == Role::Master,
        _ => role == Role::LoadBalancer,
    }
}

/// True when `role` runs keepalived under `plan`: the virtual IP lives on the masters.
pub(super) fn runs_keepalived(plan: &Plan, role: Role) -> bool {
    role == Role::Master
        && plan.load_balancer.mode == LoadBalancerMode::OnMasters
        && plan.load_balancer.vip.is_some()
}

/// Every file of `host` some unit reads, with those units.
pub(super) fn readers(plan: &Plan, host: &Host, role: Role) -> Readers {
    let mut readers = Readers::new();
    let mut add = |path: &str, unit: UnitName| {
        readers.entry(path.to_owned()).or_default().insert(unit);
    };
    for (file_name, unit) in host_unit_specs(plan, host, role) {
        let name = UnitName(unit.program());
        add(&format!("{SYSTEMD}/{file_name}"), name);
        // Values such as `--etcd-servers` list several words; a path is one of them.
        let words = unit.flags.iter().flat_map(|flag| flag.value.split(','));
        for path in words.filter(|word| word.starts_with('/')) {
            add(path, name);
            for named in files_named_by(path) {
                add(named, name);
            }
        }
    }
    if runs_haproxy(plan, role) {
        add(HAPROXY_CFG, UnitName("haproxy"));
    }
    if runs_keepalived(plan, role) {
        add(KEEPALIVED_CONF, UnitName("keepalived"));
    }
    readers
}

impl std::fmt::Display for UnitName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units_of<'a>(readers: &'a Readers, path: &str) -> Vec<&'a str> {
        readers
            .get(path)
            .map(|units| units.iter().map(|unit| unit.0).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_kubeconfigs_certificates_feed_the_unit_that_names_the_kubeconfig() {
        let config =
            crate::Config::parse("t.toml", include_str!("../../../../examples/seed-ha.toml"))
                .and_then(|c| c.validate())
                .map(|c| c.plan);
        let Ok(plan) = config else {
            panic!("the seed-ha example is valid")
        };
        let master = readers(&plan, &plan.masters[0], Role::Master);
        assert_eq!(
            units_of(&master, "/var/lib/kube-scheduler/pki/scheduler.pem"),
            ["kube-scheduler"]
        );
        assert_eq!(
            units_of(&master, "/etc/kubernetes/pki/ca.pem"),
            [
                "kube-apiserver",
                "kube-controller-manager",
                "kube-scheduler"
            ]
        );
        assert_eq!(
            units_of(&master, "/etc/systemd/system/etcd.service"),
            ["etcd"]
        );
        // HAProxy runs on the load balancer machine in this example, not on the masters.
        assert!(units_of(&master, HAPROXY_CFG).is_empty());
        let balancer = readers(&plan, &plan.load_balancer.hosts[0], Role::LoadBalancer);
        assert_eq!(units_of(&balancer, HAPROXY_CFG), ["haproxy"]);
    }

    #[test]
    fn a_nodes_files_feed_its_kubelet_and_kube_proxy_through_their_configurations() {
        let config = crate::Config::parse(
            "t.toml",
            include_str!("../../../../examples/workloads.toml"),
        )
        .and_then(|c| c.validate())
        .map(|c| c.plan);
        let Ok(plan) = config else {
            panic!("the workloads example is valid")
        };
        let worker = readers(&plan, &plan.workers[0], Role::Worker);
        // The serving pair is named only inside config.yaml, the proxy's only inside the
        // kubeconfig its config.yaml names.
        assert_eq!(
            units_of(&worker, "/var/lib/kubelet/pki/kubelet-server-key.pem"),
            ["kubelet"]
        );
        assert_eq!(
            units_of(&worker, "/var/lib/kube-proxy/pki/kube-proxy.pem"),
            ["kube-proxy"]
        );
        assert_eq!(
            units_of(&worker, "/etc/kubernetes/pki/ca.pem"),
            ["kube-proxy", "kubelet"]
        );
        let master = readers(&plan, &plan.masters[0], Role::Master);
        assert_eq!(
            units_of(&master, "/etc/kubernetes/pki/ca.pem"),
            [
                "kube-apiserver",
                "kube-controller-manager",
                "kube-proxy",
                "kube-scheduler",
                "kubelet"
            ]
        );
    }
}
