//! A node's files: the kubelet and kube-proxy, each with its certificates, kubeconfig,
//! configuration file and unit. Workers are nodes; masters are too with
//! `control_plane.workloads`, registered with the control plane's `NoSchedule` taint.

use askama::Template;

use super::paths::*;
use super::{kubeconfigs, pair, units, Contents, FileSpec};
use crate::layout::FileKind;
use crate::pki::{Ca, IdentityId};
use crate::plan::{
    wildcard_and_loopback, Host, Plan, KUBELET_HEALTHZ_PORT, KUBELET_PORT, KUBE_PROXY_HEALTHZ_PORT,
    KUBE_PROXY_METRICS_PORT,
};
use crate::template::render_template;
use crate::types::url_host;
use crate::Error;

/// The files each configuration file names (as the templates write them).
pub(super) const CONFIG_READS: [(&str, &[&str]); 2] = [
    (KUBELET_CONFIG, &[CA, KUBELET_SERVER, KUBELET_SERVER_KEY]),
    (KUBE_PROXY_CONFIG, &[KUBE_PROXY_KUBECONFIG]),
];

#[derive(Template)]
#[template(path = "kubelet-config.yaml", escape = "none")]
struct KubeletConfig<'a> {
    cluster: &'a str,
    node: &'a str,
    address: String,
    port: u16,
    healthz_address: String,
    healthz_port: u16,
    client_ca: &'a str,
    tls_cert: &'a str,
    tls_key: &'a str,
    runtime_endpoint: &'a str,
    cluster_domain: &'a str,
    cluster_dns: String,
    control_plane: bool,
}

#[derive(Template)]
#[template(path = "kube-proxy-config.yaml", escape = "none")]
struct KubeProxyConfig<'a> {
    cluster: &'a str,
    node: &'a str,
    kubeconfig: &'a str,
    cluster_cidr: String,
    healthz: String,
    metrics: String,
}

/// Every file of `node`'s kubelet and kube-proxy. A master has the cluster CA already; a
/// worker gets it here.
pub(super) fn node_files(plan: &Plan, node: &Host, master: bool) -> Result<Vec<FileSpec>, Error> {
    let mut files = Vec::new();
    if !master {
        files.push(FileSpec::new(
            CA,
            FileKind::Certificate,
            Contents::CaCert(Ca::Kubernetes),
        ));
    }
    let name = &node.name;
    files.extend(pair(IdentityId::kubelet(name), KUBELET, KUBELET_KEY));
    files.extend(pair(
        IdentityId::kubelet_server(name),
        KUBELET_SERVER,
        KUBELET_SERVER_KEY,
    ));
    files.extend(pair(
        IdentityId::shared("kube-proxy"),
        KUBE_PROXY,
        KUBE_PROXY_KEY,
    ));
    files.extend(kubeconfigs::node_kubeconfigs(plan, node));
    files.push(FileSpec::new(
        KUBELET_CONFIG,
        FileKind::Config,
        Contents::Text(kubelet_config(plan, node, master)?),
    ));
    files.push(FileSpec::new(
        KUBE_PROXY_CONFIG,
        FileKind::Config,
        Contents::Text(kube_proxy_config(plan, node)?),
    ));
    files.extend(super::unit_files(units::node_unit_specs(node)));
    Ok(files)
}

fn kubelet_config(plan: &Plan, node: &Host, master: bool) -> Result<Vec<u8>, Error> {
    let (_, loopback) = wildcard_and_loopback(node.address.ip());
    let config = KubeletConfig {
        cluster: plan.cluster.name.as_str(),
        node: node.name.as_str(),
        address: node.address.to_string(),
        port: KUBELET_PORT.get(),
        healthz_address: loopback.to_string(),
        healthz_port: KUBELET_HEALTHZ_PORT.get(),
        client_ca: CA,
        tls_cert: KUBELET_SERVER,
        tls_key: KUBELET_SERVER_KEY,
        runtime_endpoint: plan.nodes.container_runtime_endpoint.as_str(),
        cluster_domain: plan.cluster.dns_domain.as_str(),
        cluster_dns: plan.nodes.cluster_dns.to_string(),
        control_plane: master,
    };
    render_template(&config, "kubelet-config.yaml")
}

fn kube_proxy_config(plan: &Plan, node: &Host) -> Result<Vec<u8>, Error> {
    let (any, loopback) = wildcard_and_loopback(node.address.ip());
    let config = KubeProxyConfig {
        cluster: plan.cluster.name.as_str(),
        node: node.name.as_str(),
        kubeconfig: KUBE_PROXY_KUBECONFIG,
        cluster_cidr: plan.network.pod_cidr.to_string(),
        healthz: format!("{}:{}", url_host(any), KUBE_PROXY_HEALTHZ_PORT),
        metrics: format!("{}:{}", url_host(loopback), KUBE_PROXY_METRICS_PORT),
    };
    render_template(&config, "kube-proxy-config.yaml")
}
