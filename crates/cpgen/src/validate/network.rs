//! The `[network]` section: service, pod and host CIDRs, the node-port range, the service CIDR's
//! size, and no two networks overlapping.

use crate::diag::{Code, Diagnostic};
use crate::spec::{defaults, NetworkSpec};
use crate::types::{Cidr, PortRange};

use super::{Draft, Rules, Span};

/// The `[network]` values, each as far as it parsed.
pub(super) struct Networks {
    pub(super) service_cidr: Option<Cidr>,
    pub(super) pod_cidr: Option<Cidr>,
    pub(super) node_port_range: Option<PortRange>,
    /// Each host CIDR with where it was given.
    pub(super) host_cidrs: Vec<(Cidr, Span)>,
}

impl Rules<'_> {
    pub(super) fn network(&mut self, network: &NetworkSpec, ipv6: bool) -> Networks {
        // The examples are the service defaults, so the help shows what cpgen itself picks.
        let help = format!(
            "write a network address and prefix, e.g. \"{}\" or \"{}\"",
            defaults::SERVICE_CIDR_V4,
            defaults::SERVICE_CIDR_V6
        );
        let (service_default, pod_default) = if ipv6 {
            (defaults::SERVICE_CIDR_V6, defaults::POD_CIDR_V6)
        } else {
            (defaults::SERVICE_CIDR_V4, defaults::POD_CIDR_V4)
        };
        let service = self.text(
            "network.service_cidr",
            &network.service_cidr,
            service_default.parse().ok(),
            Code::InvalidCidr,
            &help,
        );
        let pod = self.text(
            "network.pod_cidr",
            &network.pod_cidr,
            pod_default.parse().ok(),
            Code::InvalidCidr,
            &help,
        );
        let node_ports = self.text(
            "network.node_port_range",
            &network.node_port_range,
            defaults::NODE_PORT_RANGE.parse().ok(),
            Code::InvalidPortRange,
            &format!("write LOW-HIGH, e.g. \"{}\"", defaults::NODE_PORT_RANGE),
        );
        let host_cidrs = network
            .host_cidrs
            .iter()
            .flatten()
            .enumerate()
            .filter_map(|(i, c)| {
                let path = format!("network.host_cidrs[{i}]");
                let cidr = self.parse_at(&path, c, Code::InvalidCidr, &help)?;
                Some((cidr, self.origins.get(&path)))
            })
            .collect();
        if let Some(service) = service {
            self.service_cidr_size(service, self.origins.get("network.service_cidr"));
        }
        Networks {
            service_cidr: service,
            pod_cidr: pod,
            node_port_range: node_ports,
            host_cidrs,
        }
    }

    fn service_cidr_size(&mut self, service: Cidr, at: Span) {
        let prefix = service.net().prefix_len();
        // The smallest holds the cluster DNS service's address, the 10th, which every
        // kubelet's clusterDNS names.
        let (largest, smallest) = if service.is_ipv6() {
            (108, 124)
        } else {
            (12, 28)
        };
        let problem = if prefix < largest {
            format!(
                "service CIDR {service} is too large: kube-apiserver accepts at most /{largest}"
            )
        } else if prefix > smallest {
            format!("service CIDR {service} is too small to hold the service IPs and the cluster DNS address (the 10th)")
        } else {
            return;
        };
        self.push(
            Diagnostic::error(Code::ServiceCidrSize, problem)
                .at(at, "service CIDR")
                .help(format!("use a prefix from /{largest} to /{smallest}")),
        );
    }

    pub(super) fn cidr_overlaps(&mut self, draft: &Draft) {
        let mut named: Vec<(&str, Cidr, Span)> = Vec::new();
        if let Some(c) = draft.service_cidr {
            named.push(("service CIDR", c, self.origins.get("network.service_cidr")));
        }
        if let Some(c) = draft.pod_cidr {
            named.push(("pod CIDR", c, self.origins.get("network.pod_cidr")));
        }
        for (c, at) in &draft.host_cidrs {
            named.push(("host CIDR", *c, at.clone()));
        }
        for (i, (name, net, at)) in named.iter().enumerate() {
            for (other_name, other, other_at) in &named[..i] {
                if *name == "host CIDR" && *other_name == "host CIDR" || !net.overlaps(*other) {
                    continue;
                }
                self.push(
                    Diagnostic::error(Code::CidrOverlap, format!("{name} {net} overlaps the {other_name} {other}"))
                        .at(at.clone(), name.to_string())
                        .also(other_at.clone(), other_name.to_string())
                        .help("service, pod and host networks must be disjoint, or packets go to the wrong place"),
                );
            }
        }
    }
}
