//! Cross-cutting rules: they compare values that each parsed on their own (the driver, and where
//! hosts' addresses sit among the networks and IP families).

use crate::diag::{Code, Diagnostic};
use crate::types::HostAddress;

use super::{Draft, Rules, Span};

/// An address of the plan, whose it is (in words) and where it was given.
struct Placed {
    who: String,
    address: HostAddress,
    at: Span,
}

impl Rules<'_> {
    pub(super) fn cross_check(&mut self, draft: &Draft) {
        self.etcd_members(draft);
        self.unique_hosts(draft);
        self.names_fit_certificates(draft);
        self.cidr_overlaps(draft);
        self.address_placement(draft);
        self.ip_families(draft);
        self.listener_collisions(draft);
        self.node_port_collisions(draft);
        self.load_balancer_shape(draft);
        self.endpoint_reaches_a_listener(draft);
        self.vip_network(draft);
        self.pki_rules(draft);
        self.webhooks_reachable(draft);
    }

    /// Every address the cluster's machines (and the VIP) answer on, with whose it is.
    fn addresses(&self, draft: &Draft) -> Vec<Placed> {
        let mut addresses: Vec<_> = draft
            .hosts()
            .filter_map(|h| {
                let name = h
                    .name
                    .as_ref()
                    .map_or_else(|| "a host".to_owned(), |n| format!("`{n}`"));
                Some(Placed {
                    who: name,
                    address: h.address?,
                    at: h.address_span.clone(),
                })
            })
            .collect();
        if let Some(Some(vip)) = draft.vip {
            addresses.push(Placed {
                who: "the virtual IP".to_owned(),
                address: vip,
                at: draft.vip_span.clone(),
            });
        }
        addresses
    }

    fn address_placement(&mut self, draft: &Draft) {
        for Placed { who, address, at } in self.addresses(draft) {
            let ip = address.ip();
            if !draft.host_cidrs.is_empty() && !draft.host_cidrs.iter().any(|(c, _)| c.contains(ip))
            {
                let cidrs: Vec<String> = draft
                    .host_cidrs
                    .iter()
                    .map(|(c, _)| c.to_string())
                    .collect();
                self.push(
                    Diagnostic::error(
                        Code::AddressOutsideHostCidrs,
                        format!("{who}'s address {ip} is outside the host networks"),
                    )
                    .at(at.clone(), "not in host_cidrs")
                    .also(self.origins.get("network.host_cidrs"), "the host networks")
                    .help(format!(
                        "fix the address or add its network to host_cidrs (now {})",
                        cidrs.join(", ")
                    )),
                );
            }
            for (kind, cidr, cidr_at) in [
                (
                    "service",
                    draft.service_cidr,
                    self.origins.get("network.service_cidr"),
                ),
                ("pod", draft.pod_cidr, self.origins.get("network.pod_cidr")),
            ] {
                if let Some(cidr) = cidr.filter(|c| c.contains(ip)) {
                    self.push(
                        Diagnostic::error(
                            Code::AddressInClusterCidr,
                            format!("{who}'s address {ip} is inside the {kind} CIDR {cidr}"),
                        )
                        .at(at.clone(), format!("inside the {kind} CIDR"))
                        .also(cidr_at, format!("{kind} CIDR"))
                        .help(format!(
                            "choose a {kind} CIDR that does not contain any machine"
                        )),
                    );
                }
            }
        }
    }

    fn ip_families(&mut self, draft: &Draft) {
        let Some(service) = draft.service_cidr else {
            return;
        };
        let family = |v6: bool| if v6 { "IPv6" } else { "IPv4" };
        let service_family = family(service.is_ipv6());
        if let Some(pod) = draft.pod_cidr.filter(|p| p.is_ipv6() != service.is_ipv6()) {
            self.push(
                Diagnostic::error(
                    Code::IpFamilyMismatch,
                    format!(
                        "pod CIDR {pod} is {} but the service CIDR is {service_family}",
                        family(pod.is_ipv6())
                    ),
                )
                .at(self.origins.get("network.pod_cidr"), "other IP family")
                .also(self.origins.get("network.service_cidr"), "service CIDR")
                .help("a single-stack cluster uses one IP family throughout"),
            );
        }
        let mut family_bound: Vec<(String, HostAddress, Span)> = draft
            .masters
            .iter()
            .filter_map(|m| {
                Some((
                    format!("master `{}`", m.name.as_ref()?),
                    m.address?,
                    m.address_span.clone(),
                ))
            })
            .collect();
        if let Some(Some(vip)) = draft.vip {
            family_bound.push(("the virtual IP".to_owned(), vip, draft.vip_span.clone()));
        }
        for (who, address, at) in family_bound {
            if address.ip().is_ipv6() != service.is_ipv6() {
                self.push(
                    Diagnostic::error(Code::IpFamilyMismatch, format!("{who} has {} address {address} but the service CIDR is {service_family}", family(address.ip().is_ipv6())))
                        .at(at, "other IP family")
                        .also(self.origins.get("network.service_cidr"), "service CIDR")
                        .help("kube-apiserver advertises its address in the `kubernetes` service, so both must be the same IP family"),
                );
            }
        }
        for worker in &draft.workers {
            let (Some(name), Some(address)) = (&worker.name, worker.address) else {
                continue;
            };
            if address.ip().is_ipv6() != service.is_ipv6() {
                self.push(
                    Diagnostic::error(Code::IpFamilyMismatch, format!("worker `{name}` has {} address {address} but the service CIDR is {service_family}", family(address.ip().is_ipv6())))
                        .at(worker.address_span.clone(), "other IP family")
                        .also(self.origins.get("network.service_cidr"), "service CIDR")
                        .help("a node's kubelet and kube-proxy work in the cluster's one IP family: its pods, services and cluster DNS"),
                );
            }
        }
    }
}
