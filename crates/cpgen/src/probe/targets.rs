//! The endpoints a bundle describes, read from the files that will run them: etcd's
//! advertised client and peer URLs and kube-apiserver's advertised address from the units,
//! HAProxy's listeners and keepalived's virtual IP from their configs, the kubelet of every
//! host with a kubelet serving certificate, and the server the admin kubeconfig dials. Each
//! endpoint comes with the certificates the bundle means it to serve and the CAs that sign
//! them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use base64::Engine;

use super::dial::{Address, Identity};
use super::Service;
use crate::bundle::manifest::{Header, MANIFEST};
use crate::plan::KUBELET_PORT;
use crate::render::paths;
use crate::verify::source::Tree;
use crate::verify::{host_models, kubeconfig_server, CertInfo, Unit};

/// The read-only identity etcd's health checks use.
const ETCD_PROBE_CLIENT: (&str, &str) = (
    paths::ETCD_HEALTHCHECK_CLIENT,
    paths::ETCD_HEALTHCHECK_CLIENT_KEY,
);

/// One endpoint to dial, and what the bundle says it serves.
pub(super) struct Target {
    /// The bundle host it runs on (`endpoint` for the API endpoint, `vip` for a virtual IP).
    pub(super) host: String,
    pub(super) service: Service,
    pub(super) address: Address,
    pub(super) port: u16,
    /// The certificates the bundle gives it, each with the host it is on (behind a load
    /// balancer: every kube-apiserver's).
    pub(super) expected: Vec<(String, CertInfo)>,
    /// The CAs a client of it trusts, as the bundle's trust file lists them (both
    /// generations during a rotation).
    pub(super) trust: Vec<CertInfo>,
    /// The client identity presented where the server asks for one.
    pub(super) identity: Option<std::sync::Arc<Identity>>,
}

/// An endpoint the bundle means to exist but names no way to dial: a unit without the flag,
/// a URL that is not `https://HOST:PORT`. Reported, never skipped in silence.
pub(super) struct Gap {
    pub(super) host: String,
    pub(super) service: Service,
    /// What the bundle says instead, in words.
    pub(super) why: String,
}

impl Target {
    /// `https://ADDRESS:PORT`.
    pub(super) fn url(&self) -> String {
        format!("https://{}:{}", self.address, self.port)
    }
}

/// Every endpoint of the bundle `tree`, once each, in a stable order, and those it means
/// to have but gives no address for.
pub(super) fn targets(tree: &Tree) -> (Vec<Target>, Vec<Gap>) {
    let reader = Reader { tree };
    let etcd_identity = reader.identity(ETCD_PROBE_CLIENT).map(std::sync::Arc::new);
    let addresses = reader.host_addresses();
    let (endpoint, api_trust) = reader.admin_endpoint();
    let mut targets = Vec::new();
    let mut gaps = Vec::new();
    let mut apiservers = Vec::new();
    // What fronts the apiservers serves one of theirs, whichever it forwards to.
    let mut fronts: Vec<(String, Service, Address, u16)> = Vec::new();
    let (hosts, _) = host_models(tree);
    for model in hosts.iter().filter(|h| h.name != "admin") {
        let host = &model.name;
        if let Some(unit) = model.unit("etcd") {
            let (found, missing) = etcd_targets(&reader, host, unit, etcd_identity.as_ref());
            targets.extend(found);
            gaps.extend(missing);
        }
        if let Some(unit) = model.unit("kube-apiserver") {
            let expected = unit
                .flag("tls-cert-file")
                .and_then(|path| reader.first_certificate(host, path));
            let address = unit.flag("advertise-address").and_then(ip_of);
            let port = unit.flag("secure-port").and_then(|p| p.parse().ok());
            if address.is_none() || port.is_none() {
                gaps.push(Gap {
                    host: host.clone(),
                    service: Service::KubeApiserver,
                    why: format!(
                        "its unit gives no address and port to dial (--advertise-address={}, --secure-port={})",
                        unit.flag("advertise-address").unwrap_or("(none)"),
                        unit.flag("secure-port").unwrap_or("(none)")
                    ),
                });
            }
            if let (Some(address), Some(port)) = (address, port) {
                let expected: Vec<_> = expected.map(|c| (host.clone(), c)).into_iter().collect();
                apiservers.extend(expected.iter().cloned());
                targets.push(Target {
                    host: host.clone(),
                    service: Service::KubeApiserver,
                    address: Address::Ip(address),
                    port,
                    expected,
                    trust: api_trust.clone(),
                    identity: None,
                });
            }
        }
        if let Some(kubelet) = reader.first_certificate(host, paths::KUBELET_SERVER) {
            if let Some(address) = addresses.get(host) {
                targets.push(Target {
                    host: host.clone(),
                    service: Service::Kubelet,
                    address: Address::Ip(*address),
                    port: KUBELET_PORT.get(),
                    expected: vec![(host.clone(), kubelet)],
                    trust: reader.certificates(host, paths::CA),
                    identity: None,
                });
            }
        }
        let Some(config) = model.haproxy_config.as_deref().and_then(|p| reader.text(p)) else {
            continue;
        };
        let vip = reader
            .text(&model.bundle_path(paths::KEEPALIVED_CONF))
            .and_then(|conf| keepalived_vip(&conf));
        for (address, port) in haproxy_binds(&config) {
            let address = match address.or_else(|| addresses.get(host).copied()) {
                Some(address) => Address::Ip(address),
                None => continue,
            };
            fronts.push((host.clone(), Service::LoadBalancer, address, port));
            if let Some(vip) = vip {
                fronts.push((
                    "vip".to_owned(),
                    Service::LoadBalancer,
                    Address::Ip(vip),
                    port,
                ));
            }
        }
    }
    if let Some((address, port)) = endpoint {
        fronts.push(("endpoint".to_owned(), Service::ApiEndpoint, address, port));
    }
    let mut dialled: BTreeSet<(Address, u16)> = targets
        .iter()
        .map(|t| (t.address.clone(), t.port))
        .collect();
    for (host, service, address, port) in fronts {
        if dialled.insert((address.clone(), port)) {
            targets.push(Target {
                host,
                service,
                address,
                port,
                expected: apiservers.clone(),
                trust: api_trust.clone(),
                identity: None,
            });
        }
    }
    (targets, gaps)
}

fn etcd_targets(
    reader: &Reader<'_>,
    host: &str,
    unit: &Unit,
    identity: Option<&std::sync::Arc<Identity>>,
) -> (Vec<Target>, Vec<Gap>) {
    let sides = [
        (
            Service::EtcdClient,
            "advertise-client-urls",
            "cert-file",
            "trusted-ca-file",
        ),
        (
            Service::EtcdPeer,
            "initial-advertise-peer-urls",
            "peer-cert-file",
            "peer-trusted-ca-file",
        ),
    ];
    let mut targets = Vec::new();
    let mut gaps = Vec::new();
    for (service, urls, cert, ca) in sides {
        let expected: Vec<_> = unit
            .flag(cert)
            .and_then(|path| reader.first_certificate(host, path))
            .map(|c| (host.to_owned(), c))
            .into_iter()
            .collect();
        let trust = unit
            .flag(ca)
            .map(|path| reader.certificates(host, path))
            .unwrap_or_default();
        let listed = unit.flag(urls).unwrap_or_default();
        if listed.is_empty() {
            gaps.push(Gap {
                host: host.to_owned(),
                service,
                why: format!("its etcd unit has no --{urls}"),
            });
        }
        for url in listed.split(',').filter(|url| !url.is_empty()) {
            let Some((address, port)) = https_address(url) else {
                gaps.push(Gap {
                    host: host.to_owned(),
                    service,
                    why: format!("its etcd unit's --{urls} lists {url}, not https://HOST:PORT"),
                });
                continue;
            };
            targets.push(Target {
                host: host.to_owned(),
                service,
                address,
                port,
                expected: expected.clone(),
                trust: trust.clone(),
                identity: identity.cloned(),
            });
        }
    }
    (targets, gaps)
}

/// Reads the files of a bundle tree by host.
struct Reader<'a> {
    tree: &'a Tree,
}

impl Reader<'_> {
    fn data(&self, path: &str) -> Option<&[u8]> {
        self.tree.files.get(path).map(|e| e.data.as_slice())
    }

    /// The file at bundle path `path`, as text.
    fn text(&self, path: &str) -> Option<String> {
        self.data(path)
            .map(|data| String::from_utf8_lossy(data).into_owned())
    }

    /// Every certificate of the file at `path` on `host`, in order.
    fn certificates(&self, host: &str, path: &str) -> Vec<CertInfo> {
        let bundle_path = format!("hosts/{host}/{}", path.trim_start_matches('/'));
        self.data(&bundle_path)
            .map(pem_certificates)
            .unwrap_or_default()
    }

    fn first_certificate(&self, host: &str, path: &str) -> Option<CertInfo> {
        self.certificates(host, path).into_iter().next()
    }

    /// Each member's address, from the manifest.
    fn host_addresses(&self) -> BTreeMap<String, IpAddr> {
        let Some(manifest) = self.data(MANIFEST) else {
            return BTreeMap::new();
        };
        Header::read(manifest)
            .members()
            .iter()
            .filter_map(|m| Some((m.name.clone(), m.address.parse().ok()?)))
            .collect()
    }

    /// The server the admin kubeconfig dials, and the CAs it trusts.
    fn admin_endpoint(&self) -> (Option<(Address, u16)>, Vec<CertInfo>) {
        let Some((server, ca_data)) = self.data(paths::ADMIN_KUBECONFIG).and_then(|data| {
            kubeconfig_server(paths::ADMIN_KUBECONFIG, &String::from_utf8_lossy(data))
        }) else {
            return (None, Vec::new());
        };
        let trust = ca_data
            .and_then(|b64| {
                base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .ok()
            })
            .map(|pem| pem_certificates(&pem))
            .unwrap_or_default();
        (https_address(&server), trust)
    }

    /// A certificate and key pair of `admin/`, as a client identity.
    fn identity(&self, (cert, key): (&str, &str)) -> Option<Identity> {
        let chain: Vec<Vec<u8>> = pem::parse_many(self.data(cert)?)
            .ok()?
            .into_iter()
            .filter(|block| block.tag() == "CERTIFICATE")
            .map(pem::Pem::into_contents)
            .collect();
        let key = pem::parse(self.data(key)?).ok()?;
        (!chain.is_empty()).then(|| Identity {
            chain,
            key_label: key.tag().to_owned(),
            key_der: zeroize::Zeroizing::new(key.into_contents()),
        })
    }
}

/// Every certificate of a PEM text that parses, in order.
fn pem_certificates(data: &[u8]) -> Vec<CertInfo> {
    pem::parse_many(data)
        .unwrap_or_default()
        .iter()
        .filter(|block| block.tag() == "CERTIFICATE")
        .filter_map(|block| CertInfo::parse(block.contents()).ok())
        .collect()
}

fn ip_of(text: &str) -> Option<IpAddr> {
    text.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// The address and port of `https://HOST:PORT[/...]`; a name stays a name, dialled as
/// clients dial it.
fn https_address(url: &str) -> Option<(Address, u16)> {
    let authority = url.trim().strip_prefix("https://")?.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    let port = port.parse().ok().filter(|port| *port != 0)?;
    let address = match ip_of(host) {
        Some(ip) => Address::Ip(ip),
        None if !host.is_empty() && !host.contains(['[', ']', '@']) => {
            Address::Name(host.to_ascii_lowercase())
        }
        None => return None,
    };
    Some((address, port))
}

/// The `bind ADDRESS:PORT` lines of an HAProxy config; `None` for a wildcard address (every
/// address of the host).
fn haproxy_binds(config: &str) -> Vec<(Option<IpAddr>, u16)> {
    config
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            if words.next()? != "bind" {
                return None;
            }
            let (host, port) = words.next()?.rsplit_once(':')?;
            let port = port.parse().ok()?;
            let host = ip_of(host).filter(|ip| !ip.is_unspecified());
            Some((host, port))
        })
        .collect()
}

/// The first address of keepalived's `virtual_ipaddress { ... }` block.
fn keepalived_vip(config: &str) -> Option<IpAddr> {
    let mut lines = config
        .lines()
        .skip_while(|l| !l.contains("virtual_ipaddress"));
    lines.next()?;
    let word = lines
        .find(|l| !l.trim().is_empty())?
        .split_whitespace()
        .next()?;
    ip_of(word.split('/').next()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            https_address("https://10.0.0.1:2379"),
            Some((Address::Ip("10.0.0.1".parse().unwrap()), 2379))
        );
        assert_eq!(
            https_address("https://[fd00::1]:6443/"),
            Some((Address::Ip("fd00::1".parse().unwrap()), 6443))
        );
        assert_eq!(
            https_address("https://Kubernetes:6443"),
            Some((Address::Name("kubernetes".to_owned()), 6443))
        );
        assert_eq!(https_address("http://10.0.0.1:2379"), None);
        assert_eq!(https_address("https://10.0.0.1"), None);
        assert_eq!(https_address("https://user@evil:1"), None);
    }

    #[test]
    fn an_endpoint_the_bundle_gives_no_address_for_is_a_gap() {
        let unit = "[Service]\nExecStart=/usr/bin/etcd --name=m0 \\\n  --advertise-client-urls=http://127.0.1.1:2379,https://127.0.1.1:0\n";
        let mut tree = Tree::default();
        tree.files.insert(
            "hosts/m0/etc/systemd/system/etcd.service".to_owned(),
            crate::verify::source::Entry {
                mode: 0o644,
                data: unit.as_bytes().to_vec(),
            },
        );
        let (targets, gaps) = targets(&tree);
        assert!(targets.is_empty());
        let why: Vec<(&str, &str)> = gaps
            .iter()
            .map(|g| (g.service.name(), g.why.as_str()))
            .collect();
        assert_eq!(
            why,
            [
                ("etcd-client", "its etcd unit's --advertise-client-urls lists http://127.0.1.1:2379, not https://HOST:PORT"),
                ("etcd-client", "its etcd unit's --advertise-client-urls lists https://127.0.1.1:0, not https://HOST:PORT"),
                ("etcd-peer", "its etcd unit has no --initial-advertise-peer-urls"),
            ]
        );
    }

    #[test]
    fn haproxy_and_keepalived() {
        let binds = haproxy_binds(
            "listen a\n    bind :6443\n    bind 10.0.0.5:8443 ssl\n  bind [::]:9443\n",
        );
        assert_eq!(
            binds,
            vec![
                (None, 6443),
                (Some("10.0.0.5".parse().unwrap()), 8443),
                (None, 9443)
            ]
        );
        let conf =
            "vrrp_instance x {\n    virtual_ipaddress {\n        10.10.10.100/24\n    }\n}\n";
        assert_eq!(keepalived_vip(conf), Some("10.10.10.100".parse().unwrap()));
        assert_eq!(keepalived_vip("nothing"), None);
    }
}
