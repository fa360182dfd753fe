//! The load balancer's files: `haproxy.cfg` (on the load balancer hosts, or on every master
//! in on-masters mode) and, with a virtual IP, each master's `keepalived.conf`.

use askama::Template;

use super::paths::{HAPROXY_CFG, KEEPALIVED_CONF};
use super::{Contents, FileSpec};
use crate::layout::FileKind;
use crate::plan::{HealthCheck, Host, LoadBalancerMode, Plan};
use crate::template::render_template;
use crate::Error;

struct Backend {
    name: String,
    address: String,
}

#[derive(Template)]
#[template(path = "haproxy.cfg", escape = "none")]
struct HaproxyCfg<'a> {
    cluster: &'a str,
    health_check: HealthCheck,
    https_check: bool,
    bind: String,
    servers: Vec<Backend>,
}

#[derive(Template)]
#[template(path = "keepalived.conf", escape = "none")]
struct KeepalivedConf<'a> {
    host: &'a str,
    address: String,
    vip: String,
    interface: &'a str,
    router_id: u8,
    priority: usize,
    peers: Vec<String>,
}

/// `haproxy.cfg`, the same on every host that runs HAProxy.
pub(super) fn haproxy_file(plan: &Plan) -> Result<FileSpec, Error> {
    Ok(FileSpec::new(
        HAPROXY_CFG,
        FileKind::Config,
        Contents::Text(haproxy_cfg(plan)?),
    ))
}

/// What a master runs for the load balancer: nothing in external mode; HAProxy in
/// on-masters mode, and keepalived too when there is a virtual IP.
pub(super) fn master_files(plan: &Plan, master: &Host) -> Result<Vec<FileSpec>, Error> {
    let mut files = Vec::new();
    if plan.load_balancer.mode == LoadBalancerMode::OnMasters {
        files.push(haproxy_file(plan)?);
        if plan.load_balancer.vip.is_some() {
            let keepalived = Contents::Text(keepalived_conf(plan, master)?);
            files.push(FileSpec::new(KEEPALIVED_CONF, FileKind::Config, keepalived));
        }
    }
    Ok(files)
}

fn haproxy_cfg(plan: &Plan) -> Result<Vec<u8>, Error> {
    let ipv6 = plan
        .masters
        .first()
        .is_some_and(|m| m.address.ip().is_ipv6());
    let port = plan.load_balancer.bind_port;
    let cfg = HaproxyCfg {
        cluster: plan.cluster.name.as_str(),
        health_check: plan.load_balancer.health_check,
        https_check: plan.load_balancer.health_check == HealthCheck::HttpsReadyz,
        // `:::PORT v4v6` takes IPv6 and IPv4 clients; `:PORT` (the guide's) IPv4 only.
        bind: if ipv6 {
            format!(":::{port} v4v6")
        } else {
            format!(":{port}")
        },
        servers: plan
            .masters
            .iter()
            .map(|m| Backend {
                name: m.name.to_string(),
                address: format!("{}:{}", m.address.url_host(), plan.api.bind_port),
            })
            .collect(),
    };
    render_template(&cfg, "haproxy.cfg")
}

fn keepalived_conf(plan: &Plan, master: &Host) -> Result<Vec<u8>, Error> {
    let index = plan.masters.iter().position(|m| m == master).unwrap_or(0);
    let conf = KeepalivedConf {
        host: master.name.as_str(),
        address: master.address.to_string(),
        vip: plan
            .load_balancer
            .vip
            .map(|v| v.to_string())
            .unwrap_or_default(),
        interface: &plan.load_balancer.vip_interface,
        router_id: virtual_router_id(plan),
        // Earlier masters are preferred; the VIP moves only when their HAProxy is gone.
        priority: 150usize.saturating_sub(index),
        peers: plan
            .masters
            .iter()
            .filter(|m| *m != master)
            .map(|m| m.address.to_string())
            .collect(),
    };
    render_template(&conf, "keepalived.conf")
}

/// A VRRP router id (1–255) derived from the cluster name, so two clusters on one network
/// segment are unlikely to collide while the same cluster always gets the same id.
fn virtual_router_id(plan: &Plan) -> u8 {
    let sum = plan.cluster.name.as_str().bytes().fold(0u32, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(u32::from(b))
    });
    u8::try_from(sum % 254 + 1).unwrap_or(51)
}
