//! End to end with the real programs: the generated bundle, unchanged but for the path
//! prefix, brings up a three-member etcd cluster with mutual TLS, and a real HAProxy in front
//! of three TLS stand-ins for kube-apiserver (no Kubernetes binary installs here) that serve
//! the generated apiserver certificates and check client certificates against the generated
//! CA. Every process is started here and killed by PID when its guard drops, also when a
//! test fails. Each scenario gets its own ports, so tests run in parallel.

mod util;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use cpgen::bundle::Bundle;
use cpgen::{Config, Plan};
use util::etcd::Daemon;

const MASTERS: [(&str, &str); 3] = [
    ("kubem00", "127.0.1.80"),
    ("kubem01", "127.0.1.81"),
    ("kubem02", "127.0.1.82"),
];
const LB_ADDRESS: &str = "127.0.1.2";

type Outcome = Result<(), String>;

/// A block of ports no other scenario of this run uses.
#[derive(Clone, Copy)]
struct Ports {
    etcd_client: u16,
    etcd_peer: u16,
    apiserver: u16,
    haproxy: u16,
}

/// Ports no other test holds on any address a cluster uses. Each test binary numbers its
/// clusters from the same start, and cargo-nextest runs the binaries of several tests (and
/// other checkouts may run theirs) at once: a port is taken only after binding it on every
/// address succeeds, and the start depends on the process.
fn fresh_ports() -> Ports {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // 21000-29999: below the NodePort range (30000-32767), which cpgen refuses for these.
    let start = (std::process::id() % 90) as u16;
    loop {
        let slot = (start + NEXT.fetch_add(1, Ordering::SeqCst)) % 90;
        let base = 21000 + 100 * slot;
        let ports = Ports {
            etcd_client: base + 79,
            etcd_peer: base + 80,
            apiserver: base + 43,
            haproxy: base + 44,
        };
        let addresses = MASTERS
            .iter()
            .map(|(_, a)| *a)
            .chain([LB_ADDRESS, "127.0.1.3"]);
        let free = addresses.into_iter().all(|address| {
            [
                ports.etcd_client,
                ports.etcd_peer,
                ports.apiserver,
                ports.haproxy,
            ]
            .iter()
            .all(|port| std::net::TcpListener::bind((address, *port)).is_ok())
        });
        if free {
            return ports;
        }
    }
}

fn config_text(
    layout: &str,
    ports: Ports,
    lb_address: &str,
    member_addresses: &[&str; 3],
) -> String {
    let mut text = format!(
        "[cluster]\nname = \"e2e\"\n\
         [api]\nendpoint = \"{LB_ADDRESS}\"\nport = {lb}\nbind_port = {api}\n\
         [load_balancer]\nbind_port = {lb}\nhealth_check = \"https-readyz\"\n\
         [[load_balancer.hosts]]\nname = \"lb\"\naddress = \"{lb_address}\"\n\
         [etcd]\nclient_port = {client}\npeer_port = {peer}\n\
         [pki]\nlayout = \"{layout}\"\n",
        lb = ports.haproxy,
        api = ports.apiserver,
        client = ports.etcd_client,
        peer = ports.etcd_peer,
    );
    for ((name, _), address) in MASTERS.iter().zip(member_addresses) {
        text.push_str(&format!(
            "[[masters]]\nname = \"{name}\"\naddress = \"{address}\"\n"
        ));
    }
    text
}

fn plan_from(text: &str) -> Plan {
    Config::parse("e2e.toml", text)
        .and_then(|c| c.validate())
        .unwrap()
        .plan
}

/// What to break, to show that the tests notice.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    None,
    /// kubem01's etcd certificate lacks its address.
    EtcdMemberSan,
    /// The apiserver certificates lack the load balancer's address.
    LoadBalancerSan,
    /// kubem02 is listed at a wrong peer URL in every `--initial-cluster`.
    InitialCluster,
}

/// A bundle for the loopback cluster, written with the real directory writer.
struct Cluster {
    dir: tempfile::TempDir,
    ports: Ports,
    layout: &'static str,
    plan: Plan,
    secrets: cpgen::pki::Secrets,
}

impl Cluster {
    fn new(layout: &'static str, fault: Fault) -> Cluster {
        let ports = fresh_ports();
        let addresses = MASTERS.map(|(_, a)| a);
        let plan = plan_from(&config_text(layout, ports, LB_ADDRESS, &addresses));
        let yesterday = time::OffsetDateTime::now_utc() - time::Duration::days(1);
        let secrets = util::secrets_issued_at(&plan, yesterday);
        let mut bundle = Bundle::build(&plan, &secrets).unwrap();
        // A fault is a certificate issued, with the same keys and CAs, for a slightly
        // different cluster, or an edited unit.
        let swap_from = |bundle: &mut Bundle, other: &Plan, paths: &[String]| {
            let other = Bundle::build(other, &secrets).unwrap();
            for path in paths {
                let file = other.get(path).unwrap().clone();
                bundle.insert_host_file(
                    file.host.as_ref().unwrap(),
                    file.target.as_deref().unwrap(),
                    file.kind,
                    file.contents.clone(),
                );
            }
        };
        match fault {
            Fault::None => {}
            Fault::EtcdMemberSan => {
                let moved = ["127.0.1.80", "127.0.1.99", "127.0.1.82"];
                let other = plan_from(&config_text(layout, ports, LB_ADDRESS, &moved));
                swap_from(
                    &mut bundle,
                    &other,
                    &["hosts/kubem01/etc/etcd/pki/etcd-server.pem".to_owned()],
                );
            }
            Fault::LoadBalancerSan => {
                let other = plan_from(
                    &config_text(layout, ports, "127.0.1.3", &addresses).replace(
                        &format!("endpoint = \"{LB_ADDRESS}\""),
                        "endpoint = \"127.0.1.3\"",
                    ),
                );
                let paths: Vec<String> = MASTERS
                    .iter()
                    .map(|(m, _)| format!("hosts/{m}/etc/kubernetes/pki/apiserver.pem"))
                    .collect();
                swap_from(&mut bundle, &other, &paths);
            }
            Fault::InitialCluster => {
                for (m, _) in MASTERS {
                    let path = format!("hosts/{m}/etc/systemd/system/etcd.service");
                    let file = bundle.get(&path).unwrap().clone();
                    let text = String::from_utf8(file.contents.clone()).unwrap().replace(
                        &format!("kubem02=https://127.0.1.82:{}", ports.etcd_peer),
                        &format!("kubem02=https://127.0.1.83:{}", ports.etcd_peer),
                    );
                    bundle.insert_host_file(
                        file.host.as_ref().unwrap(),
                        file.target.as_deref().unwrap(),
                        file.kind,
                        text.into_bytes(),
                    );
                }
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let root = camino::Utf8PathBuf::from_path_buf(dir.path().join("bundle")).unwrap();
        bundle
            .write_dir(&root, cpgen::bundle::WriteMode::CreateNew)
            .unwrap();
        Cluster {
            dir,
            ports,
            layout,
            plan,
            secrets,
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    fn host_root(&self, host: &str) -> PathBuf {
        self.root().join("hosts").join(host)
    }

    fn log(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    /// The ExecStart of a generated unit, with every absolute file path moved under the
    /// host's tree; the binary and everything else stay as generated.
    fn exec_start(&self, host: &str, unit: &str) -> (String, Vec<String>) {
        let text =
            std::fs::read_to_string(self.host_root(host).join("etc/systemd/system").join(unit))
                .unwrap();
        let joined = text.replace("\\\n", " ");
        let exec = joined
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .unwrap();
        let mut words = exec.split_whitespace().map(str::to_owned);
        let binary = words.next().unwrap();
        let root = self.host_root(host);
        let args = words
            .map(|arg| match arg.split_once("=/") {
                Some((flag, path)) => format!("{flag}={}/{path}", root.display()),
                None => arg,
            })
            .collect();
        (binary, args)
    }
}

/// Retries `attempt` until it succeeds or `limit` passes; the last error explains a failure.
fn eventually<T>(
    limit: Duration,
    mut attempt: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let start = Instant::now();
    loop {
        match attempt() {
            Ok(value) => return Ok(value),
            Err(e) if start.elapsed() > limit => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

// ---- etcd ----

fn start_member(cluster: &Cluster, host: &str) -> Daemon {
    let (binary, args) = cluster.exec_start(host, "etcd.service");
    assert_eq!(binary, "/usr/bin/etcd");
    Daemon::spawn(
        &binary,
        "etcd-server",
        &args,
        &cluster.host_root(host),
        &cluster.log(host),
    )
}

/// etcdctl with the settings of `admin/etcdctl.env`, run from the bundle's root as the
/// README says, plus `extra` flags.
fn etcdctl(cluster: &Cluster, extra: &[&str]) -> Output {
    let env_file = std::fs::read_to_string(cluster.root().join("admin/etcdctl.env")).unwrap();
    let mut env: BTreeMap<&str, &str> = env_file
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .collect();
    // etcdctl refuses a flag that an environment variable also sets: flags win here.
    for flag in extra.iter().filter_map(|a| a.strip_prefix("--")) {
        let name = flag.split('=').next().unwrap_or(flag);
        env.remove(format!("ETCDCTL_{}", name.to_uppercase().replace('-', "_")).as_str());
    }
    Command::new("etcdctl")
        .envs(env)
        .args(["--dial-timeout=2s", "--command-timeout=4s"])
        .args(extra)
        .current_dir(cluster.root())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run etcdctl ({e}); install the Debian package `etcd-client`")
        })
}

fn etcdctl_ok(cluster: &Cluster, extra: &[&str]) -> Result<String, String> {
    let out = etcdctl(cluster, extra);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("etcdctl {}: {}", extra.join(" "), text(&out)))
    }
}

fn endpoint(cluster: &Cluster, address: &str) -> String {
    format!(
        "--endpoints=https://{address}:{}",
        cluster.ports.etcd_client
    )
}

fn leader(cluster: &Cluster) -> Result<usize, String> {
    let status = etcdctl_ok(cluster, &["endpoint", "status", "-w", "json"])?;
    let status: serde_json::Value = serde_json::from_str(&status).map_err(|e| e.to_string())?;
    let entries = status.as_array().ok_or("endpoint status is not a list")?;
    let leader_entry = entries
        .iter()
        .find(|e| e["Status"]["header"]["member_id"] == e["Status"]["leader"])
        .ok_or("no leader")?;
    let url = leader_entry["Endpoint"].as_str().ok_or("no endpoint")?;
    MASTERS
        .iter()
        .position(|(_, a)| url.contains(a))
        .ok_or_else(|| format!("unknown leader {url}"))
}

/// The whole etcd story of the guide, on the generated files.
fn etcd_scenario(cluster: &Cluster) -> Outcome {
    let mut members: Vec<Option<Daemon>> = MASTERS
        .iter()
        .map(|(h, _)| Some(start_member(cluster, h)))
        .collect();
    let logs = || {
        MASTERS
            .iter()
            .map(|(h, _)| std::fs::read_to_string(cluster.log(h)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let healthy = eventually(Duration::from_secs(20), || {
        etcdctl_ok(cluster, &["endpoint", "health"])
    });
    healthy.map_err(|e| format!("{e}\n--- etcd logs\n{}", tail(&logs())))?;

    let list = etcdctl_ok(cluster, &["member", "list", "-w", "json"])?;
    let list: serde_json::Value = serde_json::from_str(&list).map_err(|e| e.to_string())?;
    let mut names: Vec<&str> = list["members"]
        .as_array()
        .ok_or("no members")?
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    names.sort_unstable();
    if names != ["kubem00", "kubem01", "kubem02"] {
        return Err(format!("member list: {names:?}"));
    }
    etcdctl_ok(cluster, &["put", "guide", "stacked"])?;
    let value = etcdctl_ok(cluster, &["get", "guide", "--print-value-only"])?;
    if value.trim() != "stacked" {
        return Err(format!("get returned {value:?}"));
    }

    // Kill the leader: the two others keep quorum and accept writes.
    let dead = leader(cluster)?;
    if let Some(leader) = members[dead].take() {
        leader.stop();
    }
    let alive: Vec<String> = MASTERS
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != dead)
        .map(|(_, (_, a))| format!("https://{a}:{}", cluster.ports.etcd_client))
        .collect();
    let alive = format!("--endpoints={}", alive.join(","));
    eventually(Duration::from_secs(15), || {
        etcdctl_ok(cluster, &[&alive, "put", "while-down", "written"])
    })?;

    // Restart it with the same arguments: it rejoins and serves what was written meanwhile.
    members[dead] = Some(start_member(cluster, MASTERS[dead].0));
    let own = endpoint(cluster, MASTERS[dead].1);
    let caught_up = eventually(Duration::from_secs(20), || {
        let value = etcdctl_ok(cluster, &[&own, "get", "while-down", "--print-value-only"])?;
        if value.trim() == "written" {
            Ok(())
        } else {
            Err(format!("restarted member returned {value:?}"))
        }
    });
    caught_up.map_err(|e| format!("{e}\n--- etcd logs\n{}", tail(&logs())))?;

    // kube-apiserver's etcd client certificate, as its unit names it, is accepted.
    let m0 = cluster.host_root("kubem00");
    let apiserver_client = [
        format!("--cacert={}", m0.join("etc/etcd/pki/ca.pem").display()),
        format!(
            "--cert={}",
            m0.join("etc/etcd/pki/etcd-client.pem").display()
        ),
        format!(
            "--key={}",
            m0.join("etc/etcd/pki/etcd-client-key.pem").display()
        ),
    ];
    let mut args: Vec<&str> = apiserver_client.iter().map(String::as_str).collect();
    args.extend(["put", "/registry/probe", "from-apiserver"]);
    etcdctl_ok(cluster, &args)?;

    // A client certificate of the Kubernetes CA: refused with separate CAs, accepted (the
    // CP504 warning) with one shared CA.
    let kubelet_client = [
        format!("--cacert={}", m0.join("etc/etcd/pki/ca.pem").display()),
        format!(
            "--cert={}",
            m0.join("etc/kubernetes/pki/kubelet-client.pem").display()
        ),
        format!(
            "--key={}",
            m0.join("etc/kubernetes/pki/kubelet-client-key.pem")
                .display()
        ),
    ];
    let mut args: Vec<&str> = kubelet_client.iter().map(String::as_str).collect();
    args.extend(["get", "/registry/probe"]);
    let accepted = etcdctl(cluster, &args).status.success();
    match (cluster.layout, accepted) {
        ("separate-cas", true) => {
            return Err("etcd accepted a client certificate of the Kubernetes CA".into())
        }
        ("shared-ca", false) => {
            return Err("with one shared CA, etcd should accept every cluster client".into())
        }
        _ => {}
    }
    drop(members);
    Ok(())
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[test]
fn etcd_cluster_from_the_bundle_with_separate_cas() {
    let cluster = Cluster::new("separate-cas", Fault::None);
    etcd_scenario(&cluster).unwrap();
}

#[test]
fn etcd_cluster_from_the_bundle_with_a_shared_ca() {
    let cluster = Cluster::new("shared-ca", Fault::None);
    etcd_scenario(&cluster).unwrap();
}

// ---- HAProxy and the API server stand-ins ----

/// `openssl s_server` with the master's generated apiserver certificate and key, checking
/// any client certificate against the generated Kubernetes CA (anonymous requests are let
/// through, as kube-apiserver lets them reach /readyz), serving `readyz` → `ok`.
fn start_stand_in(cluster: &Cluster, host: &str, address: &str) -> Daemon {
    start_stand_in_from(cluster, &cluster.root(), host, address)
}

/// [`start_stand_in`] with the files of the bundle at `bundle`.
fn start_stand_in_from(cluster: &Cluster, bundle: &Path, host: &str, address: &str) -> Daemon {
    let pki = bundle.join("hosts").join(host).join("etc/kubernetes/pki");
    let www = cluster.dir.path().join(format!("www-{host}"));
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("readyz"), "ok").unwrap();
    let args: Vec<String> = [
        "s_server",
        "-quiet",
        "-WWW",
        "-verify",
        "1",
        "-verify_return_error",
        "-accept",
        &format!("{address}:{}", cluster.ports.apiserver),
        "-cert",
        pki.join("apiserver.pem").to_str().unwrap(),
        "-key",
        pki.join("apiserver-key.pem").to_str().unwrap(),
        "-CAfile",
        pki.join("ca.pem").to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec();
    Daemon::spawn(
        "openssl",
        "openssl",
        &args,
        &www,
        &cluster.log(&format!("stand-in-{host}")),
    )
}

fn start_haproxy(cluster: &Cluster) -> Daemon {
    let cfg = cluster.host_root("lb").join("etc/haproxy/haproxy.cfg");
    util::etcd::start_haproxy(&cfg, cluster.dir.path(), &cluster.log("haproxy"))
}

fn kubectl_readyz(kubeconfig: &Path) -> Result<(), String> {
    // `timeout`, not --request-timeout: that adds a query string the stand-in cannot serve.
    let out = Command::new("timeout")
        .args(["15", "kubectl", "--kubeconfig"])
        .arg(kubeconfig)
        .args(["get", "--raw", "/readyz"])
        .output()
        .map_err(|e| {
            format!("cannot run kubectl ({e}); install the Debian package `kubernetes-client`")
        })?;
    match String::from_utf8_lossy(&out.stdout).trim() {
        "ok" if out.status.success() => Ok(()),
        _ => Err(format!("kubectl get --raw /readyz: {}", text(&out))),
    }
}

fn load_balancer_scenario(cluster: &Cluster) -> Outcome {
    let mut stand_ins: Vec<Option<Daemon>> = MASTERS
        .iter()
        .map(|(h, a)| Some(start_stand_in(cluster, h, a)))
        .collect();
    let haproxy = start_haproxy(cluster);
    let admin = cluster.root().join("admin/admin.kubeconfig");
    eventually(Duration::from_secs(10), || kubectl_readyz(&admin))?;

    if cluster.layout == "separate-cas" {
        // A client certificate of another CA (etcd's) is refused by the API server.
        let foreign = cluster.dir.path().join("foreign.kubeconfig");
        let b64 = |path: &str| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .encode(std::fs::read(cluster.root().join(path)).unwrap())
        };
        let admin_text = std::fs::read_to_string(&admin).unwrap();
        let swapped = replace_field(
            &admin_text,
            "client-certificate-data",
            &b64("admin/etcd-healthcheck-client.pem"),
        );
        let swapped = replace_field(
            &swapped,
            "client-key-data",
            &b64("admin/etcd-healthcheck-client-key.pem"),
        );
        std::fs::write(&foreign, swapped).unwrap();
        if kubectl_readyz(&foreign).is_ok() {
            return Err("the stand-in accepted a client certificate of the etcd CA".into());
        }
    }

    // One API server dies: HAProxy retries elsewhere, no request is lost.
    if let Some(stand_in) = stand_ins[1].take() {
        stand_in.stop();
    }
    for i in 0..20 {
        kubectl_readyz(&admin).map_err(|e| format!("request {i} with kubem01 dead: {e}"))?;
    }
    // And the https-readyz health check marks it down (inter 10s x fall 2).
    eventually(Duration::from_secs(45), || {
        let log = std::fs::read_to_string(cluster.log("haproxy")).unwrap_or_default();
        if log.contains("kube-apiserver/kubem01 is DOWN") {
            Ok(())
        } else {
            Err(format!(
                "HAProxy never marked kubem01 down:\n{}",
                tail(&log)
            ))
        }
    })?;
    let log = std::fs::read_to_string(cluster.log("haproxy")).unwrap_or_default();
    for alive in ["kubem00", "kubem02"] {
        if log.contains(&format!("kube-apiserver/{alive} is DOWN")) {
            return Err(format!(
                "HAProxy marked the live {alive} down:\n{}",
                tail(&log)
            ));
        }
    }
    drop(haproxy);
    drop(stand_ins);
    Ok(())
}

fn replace_field(kubeconfig: &str, field: &str, value: &str) -> String {
    kubeconfig
        .lines()
        .map(|line| match line.split_once(&format!("{field}: ")) {
            Some((indent, _)) => format!("{indent}{field}: \"{value}\""),
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn haproxy_balances_the_api_servers_with_separate_cas() {
    let cluster = Cluster::new("separate-cas", Fault::None);
    load_balancer_scenario(&cluster).unwrap();
}

#[test]
fn haproxy_balances_the_api_servers_with_a_shared_ca() {
    let cluster = Cluster::new("shared-ca", Fault::None);
    load_balancer_scenario(&cluster).unwrap();
}

/// The Kubernetes CA rotates through its three stages behind the real HAProxy: at each
/// stage the API server stand-ins restart one at a time with the stage's bundle, and after
/// every restart kubectl with the admin kubeconfig of the previous stage and of the current
/// one gets through to every backend. After `finish`, the old CA's client certificate is
/// refused and a client that trusts only the old CA refuses the servers.
#[test]
fn kubectl_through_haproxy_keeps_working_while_the_kubernetes_ca_rotates() {
    use cpgen::pki::{Ca, Rotated, Stage};
    let cluster = Cluster::new("separate-cas", Fault::None);
    let mut secrets = cluster.secrets.clone();
    let v0 = cluster.root();
    let mut stand_ins: BTreeMap<&str, Daemon> = MASTERS
        .iter()
        .map(|(h, a)| (*h, start_stand_in(&cluster, h, a)))
        .collect();
    let _haproxy = start_haproxy(&cluster);
    let admin = |bundle: &Path| bundle.join("admin/admin.kubeconfig");
    eventually(Duration::from_secs(10), || kubectl_readyz(&admin(&v0))).unwrap();
    let mut previous = v0.clone();
    for stage in [Stage::Start, Stage::Issue, Stage::Finish] {
        let now = time::OffsetDateTime::now_utc();
        secrets
            .rotate(&cluster.plan, Rotated::Ca(Ca::Kubernetes), stage, now, None)
            .unwrap();
        let current = cluster.dir.path().join(stage.name());
        Bundle::build(&cluster.plan, &secrets)
            .unwrap()
            .write_dir(
                &camino::Utf8PathBuf::from_path_buf(current.clone()).unwrap(),
                cpgen::bundle::WriteMode::CreateNew,
            )
            .unwrap();
        for (host, address) in MASTERS {
            drop(stand_ins.remove(host));
            stand_ins.insert(host, start_stand_in_from(&cluster, &current, host, address));
            // Up before any request, so that no retry hides a backend that refuses.
            let port = cluster.ports.apiserver;
            eventually(Duration::from_secs(5), || {
                std::net::TcpStream::connect((address, port))
                    .map(drop)
                    .map_err(|e| e.to_string())
            })
            .unwrap();
            for client in [&previous, &current] {
                // Round robin over three backends: three requests reach each one.
                for i in 0..3 {
                    kubectl_readyz(&admin(client)).unwrap_or_else(|e| {
                        panic!(
                            "{stage} after {host} restarted, request {i} with {}: {e}",
                            client.display()
                        )
                    });
                }
            }
        }
        previous = current;
    }
    // The old generation, after finish: a client that trusts only the old CA refuses every
    // server, and the old CA's client certificate is refused by every server.
    for _ in 0..3 {
        assert!(kubectl_readyz(&admin(&v0)).is_err());
    }
    let old_client = cluster.dir.path().join("old-client.kubeconfig");
    let finished = std::fs::read_to_string(admin(&previous)).unwrap();
    let old = std::fs::read_to_string(admin(&v0)).unwrap();
    let field = |text: &str, name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{name}: ")))
            .unwrap()
            .trim_matches('"')
            .to_owned()
    };
    let mixed = ["client-certificate-data", "client-key-data"]
        .iter()
        .fold(finished.clone(), |text, name| {
            replace_field(&text, name, &field(&old, name))
        });
    assert_ne!(mixed, finished);
    std::fs::write(&old_client, mixed).unwrap();
    for _ in 0..3 {
        assert!(kubectl_readyz(&old_client).is_err());
    }
    kubectl_readyz(&admin(&previous)).unwrap();
}

/// The scenarios are not blind: each of three faults makes one of them fail, for the
/// reason the fault implies.
#[test]
fn broken_bundles_fail_the_scenarios() {
    std::thread::scope(|scope| {
        let etcd_san =
            scope.spawn(|| etcd_scenario(&Cluster::new("separate-cas", Fault::EtcdMemberSan)));
        let initial_cluster =
            scope.spawn(|| etcd_scenario(&Cluster::new("separate-cas", Fault::InitialCluster)));
        let lb_san = scope.spawn(|| {
            load_balancer_scenario(&Cluster::new("separate-cas", Fault::LoadBalancerSan))
        });
        for (name, handle, expected) in [
            ("etcd member SAN", etcd_san, "127.0.1.81"),
            ("--initial-cluster", initial_cluster, "127.0.1.82"),
            ("load balancer SAN", lb_san, "not 127.0.1.2"),
        ] {
            let outcome = handle.join().expect("scenario thread");
            let error = outcome.expect_err(&format!("the {name} fault went unnoticed"));
            eprintln!(
                "the {name} fault was noticed: {}",
                error.lines().next().unwrap_or_default()
            );
            assert!(
                error.contains(expected),
                "the {name} fault failed for another reason: {error}"
            );
        }
    });
}
