//! The `[cluster]` names and the host lists: each host's name and address, and no name or address
//! used twice.

use std::collections::HashMap;

use crate::diag::{Code, Diagnostic};
use crate::spec::HostSpec;
use crate::types::{HostAddress, HostName, NameError};

use super::{Draft, DraftHost, HostKind, Rules};

impl Rules<'_> {
    pub(super) fn hosts(&mut self, hosts: &[HostSpec], kind: HostKind) -> Vec<DraftHost> {
        let entries = hosts.iter().enumerate();
        entries.map(|(i, host)| self.host(host, kind, i)).collect()
    }

    fn host(&mut self, host: &HostSpec, kind: HostKind, index: usize) -> DraftHost {
        let entry = format!("{}[{index}]", kind.key());
        let at = |key: &str| format!("{entry}.{key}");
        for (key, value) in [("name", &host.name), ("address", &host.address)] {
            // Dropped values are recorded by their index in the list as kept.
            let dropped = format!("{}.{index}.{key}", kind.key());
            if value.is_none() && !self.origins.wrong_typed_within(&dropped) {
                self.push(
                    Diagnostic::error(
                        Code::MissingKey,
                        format!("this {} entry has no `{key}`", kind.table()),
                    )
                    .at(self.origins.get(&entry), format!("`{key}` missing"))
                    .help(format!("add `{key} = \"...\"` to the entry")),
                );
            }
        }
        let name = host
            .name
            .as_ref()
            .and_then(|name| self.host_name(&at("name"), name));
        let address = host.address.as_ref().and_then(|address| {
            address
                .parse::<HostAddress>()
                .map_err(|e| {
                    self.push(
                        Diagnostic::error(Code::InvalidAddress, e.to_string())
                            .at(self.origins.get(&at("address")), "not a machine address")
                            .help("give the machine's IPv4 or IPv6 address, e.g. \"10.10.10.80\""),
                    )
                })
                .ok()
        });
        DraftHost {
            kind,
            name,
            address,
            span: self.origins.get(&entry),
            name_span: self.origins.get(&at("name")),
            address_span: self.origins.get(&at("address")),
        }
    }

    fn host_name(&mut self, path: &str, name: &str) -> Option<HostName> {
        match name.parse::<HostName>() {
            Ok(parsed) => Some(parsed),
            Err(e) => {
                let lower = name.to_ascii_lowercase().replace('_', "-");
                let help = match (&e, lower.parse::<HostName>()) {
                    (NameError::BadChar(_), Ok(fixed)) => format!("did you mean \"{fixed}\"?"),
                    _ => "host names are DNS-1123: lowercase letters, digits, `-` and `.`, at most 63 characters between dots".to_owned(),
                };
                self.push(
                    Diagnostic::error(
                        Code::InvalidName,
                        format!("`{name}` is not a valid host name: {e}"),
                    )
                    .at(self.origins.get(path), "invalid host name")
                    .help(help),
                );
                None
            }
        }
    }

    /// A certificate's CN holds at most 64 characters (RFC 5280's upper bound, which
    /// strict clients enforce): an etcd member's is its name, a node's kubelet's
    /// `system:node:` and its name.
    pub(super) fn names_fit_certificates(&mut self, draft: &Draft) {
        const CN_MAX: usize = 64;
        const NODE_PREFIX: &str = "system:node:";
        let nodes_on_masters = draft.workloads_on_masters;
        let limited = draft
            .masters
            .iter()
            .map(|m| (m, nodes_on_masters))
            .chain(draft.workers.iter().map(|w| (w, true)));
        for (host, node) in limited {
            let Some(name) = &host.name else {
                continue;
            };
            let (limit, whose) = if node {
                (
                    CN_MAX - NODE_PREFIX.len(),
                    "its kubelet's certificates name it as `system:node:<name>`",
                )
            } else {
                (CN_MAX, "its etcd certificates name it")
            };
            let length = name.as_str().len();
            if length > limit {
                self.push(
                    Diagnostic::error(Code::InvalidName, format!("host name `{name}` has {length} characters; {whose}, and a certificate's CN holds at most {CN_MAX}"))
                        .at(host.name_span.clone(), "too long for a certificate")
                        .help(format!("use a name of at most {limit} characters")),
                );
            }
        }
    }

    pub(super) fn unique_hosts(&mut self, draft: &Draft) {
        let hosts: Vec<&DraftHost> = draft.hosts().collect();
        let mut names: HashMap<&HostName, &DraftHost> = HashMap::new();
        let mut addresses: HashMap<HostAddress, &DraftHost> = HashMap::new();
        for host in &hosts {
            if let Some(name) = &host.name {
                if let Some(first) = names.get(name) {
                    self.push(
                        Diagnostic::error(
                            Code::DuplicateName,
                            format!("host name `{name}` is used twice"),
                        )
                        .at(host.name_span.clone(), "used again here")
                        .also(
                            first.name_span.clone(),
                            format!("first used here, in {}", first.kind.table()),
                        )
                        .help("every machine needs its own name; give this one another"),
                    );
                } else {
                    names.insert(name, host);
                }
            }
            if let Some(address) = host.address {
                if let Some(first) = addresses.get(&address) {
                    self.push(
                        Diagnostic::error(Code::DuplicateAddress, format!("address {address} is used twice"))
                            .at(host.address_span.clone(), "used again here")
                            .also(first.address_span.clone(), format!("first used here, in {}", first.kind.table()))
                            .help("every machine needs its own address; a load balancer on a master is mode = \"on-masters\""),
                    );
                } else {
                    addresses.insert(address, host);
                }
            }
        }
        if let Some(Some(vip)) = draft.vip {
            if let Some(host) = hosts.iter().find(|h| h.address == Some(vip)) {
                self.push(
                    Diagnostic::error(
                        Code::DuplicateAddress,
                        format!("the virtual IP {vip} is also the address of a machine"),
                    )
                    .at(draft.vip_span.clone(), "virtual IP")
                    .also(host.address_span.clone(), "this machine's address")
                    .help("keepalived moves the VIP between masters, so it must be a free address"),
                );
            }
        }
    }
}
