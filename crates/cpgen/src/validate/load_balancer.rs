//! The `[load_balancer]` section: the VIP and its interface, the balancer's shape for its mode, and
//! a VIP keepalived can carry on the masters' network.

use crate::diag::{Code, Diagnostic};
use crate::plan::LoadBalancerMode;
use crate::spec::{defaults, LoadBalancerSpec};
use crate::types::{Cidr, HostAddress};

use super::{Draft, DraftHost, Rules};

impl Rules<'_> {
    pub(super) fn vip(&mut self, lb: &LoadBalancerSpec) -> Option<Option<HostAddress>> {
        match &lb.vip {
            Some(vip) if !vip.trim().is_empty() => self
                .parse_at(
                    "load_balancer.vip",
                    vip,
                    Code::InvalidAddress,
                    "give a free address in the masters' network, e.g. \"10.10.10.100\"",
                )
                .map(Some),
            _ => Some(None),
        }
    }

    /// A Linux interface name: 1 to 15 characters, no `/`, whitespace or `%`.
    pub(super) fn vip_interface(&mut self, value: &Option<String>) -> Option<String> {
        let name = value.as_deref().unwrap_or(defaults::VIP_INTERFACE);
        let valid = (1..=15).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b));
        if valid {
            return Some(name.to_owned());
        }
        self.push(
            Diagnostic::error(Code::InvalidInterface, format!("`{name}` is not a network interface name"))
                .at(self.origins.get("load_balancer.vip_interface"), "invalid interface")
                .help("give the masters' interface that carries their address, e.g. \"eth0\" or \"ens3\" (at most 15 characters)"),
        );
        None
    }

    pub(super) fn load_balancer_shape(&mut self, draft: &Draft) {
        match draft.lb_mode {
            Some(LoadBalancerMode::External) if matches!(draft.vip, Some(Some(_))) => self.push(
                Diagnostic::error(Code::VipMisuse, "a virtual IP needs keepalived on the masters, which only mode = \"on-masters\" runs")
                    .at(self.origins.get("load_balancer.vip"), "VIP in external mode")
                    .also(self.origins.get("load_balancer.mode"), "external mode")
                    .help("set mode = \"on-masters\", or remove `vip` and point api.endpoint at your load balancer"),
            ),
            Some(LoadBalancerMode::OnMasters) if !draft.lb_hosts.is_empty() => self.push(
                Diagnostic::error(Code::UnusedLoadBalancerHosts, "load balancer hosts are listed, but mode = \"on-masters\" runs HAProxy on the masters")
                    .at(draft.lb_hosts.first().and_then(|h| h.span.clone()), "would be ignored")
                    .also(self.origins.get("load_balancer.mode"), "on-masters mode")
                    .help("remove the [[load_balancer.hosts]] entries, or set mode = \"external\""),
            ),
            _ => {}
        }
    }

    /// An endpoint that names one of several load balancers loses the API with that one
    /// machine, as the default endpoint would (CP701).
    pub(super) fn one_of_several_balancers(&mut self, draft: &Draft, balancer: &DraftHost) {
        if self.origins.get("api.endpoint").is_none() {
            // The default: CP701 has already said so.
            return;
        }
        let others: Vec<String> = draft
            .lb_hosts
            .iter()
            .filter(|h| !std::ptr::eq(*h, balancer))
            .filter_map(|h| h.name.as_ref().map(|n| format!("`{n}`")))
            .collect();
        let name = balancer.name.as_ref().map_or_else(
            || "one load balancer".to_owned(),
            |n| format!("load balancer `{n}`"),
        );
        self.push(
            Diagnostic::warning(
                Code::NoLoadBalancer,
                format!("the API endpoint is not highly available: clients dial {name} only, although {} also balance the API", others.join(", ")),
            )
            .at(self.origins.get("api.endpoint"), "one load balancer")
            .help("set `api.endpoint` to a DNS name that resolves to every load balancer"),
        );
    }

    /// keepalived moves the VIP between the masters' own interfaces, so it must be an
    /// address of a network the masters are on. Without `host_cidrs` that network is taken
    /// to be the /24 (IPv4) or /64 (IPv6) around each master.
    pub(super) fn vip_network(&mut self, draft: &Draft) {
        let Some(vip) = draft.vip.flatten() else {
            return;
        };
        let networks: Vec<Cidr> = draft
            .masters
            .iter()
            .filter_map(|m| m.address)
            .filter_map(|a| {
                let ip = a.ip();
                draft
                    .host_cidrs
                    .iter()
                    .map(|(c, _)| *c)
                    .find(|c| c.contains(ip))
                    .or_else(|| Cidr::around(ip, if ip.is_ipv4() { 24 } else { 64 }))
            })
            .collect();
        if let Some(network) = networks.iter().find(|n| n.contains(vip.ip())) {
            self.vip_not_a_host_address(draft, vip, *network);
            return;
        }
        if networks.is_empty() {
            return;
        }
        let mut shown: Vec<String> = networks.iter().map(ToString::to_string).collect();
        shown.dedup();
        let assumed = if draft.host_cidrs.is_empty() {
            " (a /24 or /64 around each master, as network.host_cidrs is not set)"
        } else {
            ""
        };
        self.push(
            Diagnostic::warning(
                Code::VipOutsideMasterNetwork,
                format!("the virtual IP {vip} is in no network of the masters: {}{assumed}", shown.join(", ")),
            )
            .at(draft.vip_span.clone(), "virtual IP")
            .also(self.origins.get("network.host_cidrs"), "host networks")
            .help("keepalived can only raise the VIP on a master's own network: pick a free address there, or set network.host_cidrs if the masters' network is larger"),
        );
    }

    /// The VIP must be a usable host address of its network: not the network's own address, nor
    /// IPv4's broadcast address, which no interface can own.
    fn vip_not_a_host_address(&mut self, draft: &Draft, vip: HostAddress, network: Cidr) {
        let net = network.net();
        let which = if vip.ip() == net.network() && net.prefix_len() < net.max_prefix_len() {
            "network address"
        } else if vip.ip().is_ipv4() && vip.ip() == net.broadcast() && net.prefix_len() < 31 {
            "broadcast address"
        } else {
            return;
        };
        self.push(
            Diagnostic::warning(
                Code::VipOutsideMasterNetwork,
                format!("the virtual IP {vip} is the {which} of the masters' network {network}"),
            )
            .at(draft.vip_span.clone(), "virtual IP")
            .help("keepalived needs a free host address of that network: pick one no machine uses"),
        );
    }
}
