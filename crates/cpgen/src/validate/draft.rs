//! The first pass: every value of a spec parsed on its own into a `Draft` (so one bad value never
//! hides another), and the `Plan` assembled from a draft in which everything parsed.

use crate::diag::Code;
use crate::plan::{
    Api, ClusterSettings, Etcd, Host, LoadBalancer, LoadBalancerMode, MasterPorts, Network, Nodes,
    Pki, Plan,
};
use crate::spec::{defaults, ClusterSpec};

use super::network::Networks;
use super::{Draft, DraftHost, HostKind, Rules};

impl Rules<'_> {
    pub(super) fn draft(&mut self, spec: &ClusterSpec) -> Draft {
        let masters = self.hosts(&spec.masters, HostKind::Master);
        let workers = self.hosts(&spec.workers, HostKind::Worker);
        let lb = &spec.load_balancer;
        let lb_hosts = self.hosts(&lb.hosts, HostKind::LoadBalancer);
        let cluster = &spec.cluster;
        let name_help = "names are DNS-1123: lowercase letters, digits, `-` and `.`";
        let cluster_name = self.text(
            "cluster.name",
            &cluster.name,
            defaults::CLUSTER_NAME.parse().ok(),
            Code::InvalidName,
            name_help,
        );
        let version = self.version(&cluster.kubernetes_version);
        let dns_domain = self.text(
            "cluster.dns_domain",
            &cluster.dns_domain,
            defaults::DNS_DOMAIN.parse().ok(),
            Code::InvalidName,
            name_help,
        );
        let ipv6 = masters
            .iter()
            .find_map(|m| m.address)
            .is_some_and(|a| a.ip().is_ipv6());
        let Networks {
            service_cidr,
            pod_cidr,
            node_port_range,
            host_cidrs,
        } = self.network(&spec.network, ipv6);
        let lb_mode = self.choice("load_balancer.mode", &lb.mode, defaults::LB_MODE);
        let lb_bind_default = if lb_mode == Some(LoadBalancerMode::OnMasters) {
            defaults::LB_BIND_PORT_ON_MASTERS
        } else {
            defaults::LB_BIND_PORT_EXTERNAL
        };
        let lb_bind_port = self.port("load_balancer.bind_port", lb.bind_port, lb_bind_default);
        let health_check = self.choice(
            "load_balancer.health_check",
            &lb.health_check,
            defaults::HEALTH_CHECK,
        );
        let vip = self.vip(lb);
        let api = &spec.api;
        let api_bind_port = self.port("api.bind_port", api.bind_port, defaults::API_BIND_PORT);
        let has_balancer = lb_mode == Some(LoadBalancerMode::OnMasters) || !lb_hosts.is_empty();
        let api_port_default = if has_balancer {
            lb_bind_port
        } else {
            api_bind_port
        };
        let api_port = match api_port_default {
            Some(default) => self.port("api.port", api.port, default.get()),
            None => self.port("api.port", api.port, defaults::API_BIND_PORT),
        };
        let endpoint = self.endpoint(api, lb_mode, vip.flatten(), &lb_hosts, &masters);
        let etcd = &spec.etcd;
        let pki = &spec.pki;
        let key_algorithm = self.key_algorithm(
            "pki.key_algorithm",
            &pki.key_algorithm,
            defaults::KEY_ALGORITHM.parse().ok(),
        );
        let cluster_token = self.cluster_token(etcd, cluster_name.as_ref());
        let sa_key_algorithm = match key_algorithm {
            Some(alg) => self.key_algorithm(
                "pki.service_account_key_algorithm",
                &pki.service_account_key_algorithm,
                Some(alg),
            ),
            None => None,
        };
        Draft {
            cluster_name,
            version,
            dns_domain,
            service_cidr,
            pod_cidr,
            node_port_range,
            host_cidrs,
            endpoint,
            api_port,
            api_bind_port,
            extra_sans: self.extra_sans("api.extra_sans", &api.extra_sans),
            components_via: self.choice(
                "api.components_via",
                &api.components_via,
                defaults::COMPONENTS_VIA,
            ),
            admission_plugins: self.admission_plugins(&api.admission_plugins, version),
            authorization_modes: self.authorization_modes(&api.authorization_modes),
            masters,
            lb_hosts,
            workers,
            lb_mode,
            lb_bind_port,
            health_check,
            vip,
            vip_span: self.origins.get("load_balancer.vip"),
            vip_interface: self.vip_interface(&lb.vip_interface),
            etcd_client_port: self.port(
                "etcd.client_port",
                etcd.client_port,
                defaults::ETCD_CLIENT_PORT,
            ),
            etcd_peer_port: self.port("etcd.peer_port", etcd.peer_port, defaults::ETCD_PEER_PORT),
            cluster_token,
            data_dir: self.data_dir(&etcd.data_dir),
            etcd_extra_sans: self.extra_sans("etcd.extra_sans", &etcd.extra_sans),
            key_algorithm,
            sa_key_algorithm,
            ca_validity: self.validity(
                "pki.ca_validity_days",
                pki.ca_validity_days,
                defaults::CA_VALIDITY_DAYS,
            ),
            cert_validity: self.validity(
                "pki.cert_validity_days",
                pki.cert_validity_days,
                defaults::CERT_VALIDITY_DAYS,
            ),
            layout: self.choice("pki.layout", &pki.layout, defaults::PKI_LAYOUT),
            encryption_provider: self.choice(
                "pki.encryption_provider",
                &pki.encryption_provider,
                defaults::ENCRYPTION_PROVIDER,
            ),
            workloads_on_masters: spec
                .control_plane
                .workloads
                .unwrap_or(defaults::CONTROL_PLANE_WORKLOADS),
            runtime_endpoint: self.text(
                "kubelet.container_runtime_endpoint",
                &spec.kubelet.container_runtime_endpoint,
                defaults::CONTAINER_RUNTIME_ENDPOINT.parse().ok(),
                Code::InvalidRuntimeEndpoint,
                "containerd's is unix:///run/containerd/containerd.sock, CRI-O's unix:///var/run/crio/crio.sock",
            ),
        }
    }
}

impl Draft {
    pub(super) fn hosts(&self) -> impl Iterator<Item = &DraftHost> {
        self.masters
            .iter()
            .chain(&self.lb_hosts)
            .chain(&self.workers)
    }

    pub(super) fn master_ports(&self) -> Option<MasterPorts> {
        Some(MasterPorts {
            etcd_client: self.etcd_client_port?,
            etcd_peer: self.etcd_peer_port?,
            apiserver: self.api_bind_port?,
            haproxy: match self.lb_mode? {
                LoadBalancerMode::OnMasters => Some(self.lb_bind_port?),
                LoadBalancerMode::External => None,
            },
            node: self.workloads_on_masters,
        })
    }

    /// The plan, if every value parsed.
    pub(super) fn assemble(self) -> Option<Plan> {
        let hosts = |list: Vec<DraftHost>| -> Option<Vec<Host>> {
            list.into_iter()
                .map(|h| {
                    Some(Host {
                        name: h.name?,
                        address: h.address?,
                    })
                })
                .collect()
        };
        let service_cidr = self.service_cidr?;
        Some(Plan {
            config_sha256: None,
            cluster: ClusterSettings {
                name: self.cluster_name?,
                kubernetes_version: self.version?,
                dns_domain: self.dns_domain?,
            },
            network: Network {
                service_cidr,
                pod_cidr: self.pod_cidr?,
                node_port_range: self.node_port_range?,
                host_cidrs: self.host_cidrs.into_iter().map(|(c, _)| c).collect(),
            },
            api: Api {
                endpoint: self.endpoint?,
                port: self.api_port?,
                bind_port: self.api_bind_port?,
                extra_sans: self.extra_sans?,
                components_via: self.components_via?,
                admission_plugins: self.admission_plugins,
                authorization_modes: self.authorization_modes,
            },
            masters: hosts(self.masters)?,
            load_balancer: LoadBalancer {
                mode: self.lb_mode?,
                bind_port: self.lb_bind_port?,
                health_check: self.health_check?,
                vip: self.vip?,
                vip_interface: self.vip_interface?,
                hosts: hosts(self.lb_hosts)?,
            },
            workers: hosts(self.workers)?,
            etcd: Etcd {
                client_port: self.etcd_client_port?,
                peer_port: self.etcd_peer_port?,
                initial_cluster_token: self.cluster_token?,
                data_dir: self.data_dir?,
                extra_sans: self.etcd_extra_sans?,
                joins: Default::default(),
            },
            pki: Pki {
                key_algorithm: self.key_algorithm?,
                service_account_key_algorithm: self.sa_key_algorithm?,
                ca_validity: self.ca_validity?,
                cert_validity: self.cert_validity?,
                layout: self.layout?,
                encryption_provider: self.encryption_provider?,
            },
            nodes: Nodes {
                on_masters: self.workloads_on_masters,
                container_runtime_endpoint: self.runtime_endpoint?,
                // Validation refuses a service CIDR without a 10th address.
                cluster_dns: service_cidr.nth_host(10)?,
            },
        })
    }
}
