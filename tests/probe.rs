//! `cpgen probe` against a running loopback cluster: a real three-member etcd, TLS stand-ins
//! for the apiservers and a kubelet (`openssl s_server` with the bundle's certificates) and
//! the real HAProxy from the bundle. The cluster is first exactly the bundle; after `cpgen
//! renew` and a new bundle, everything drifts; a member restarted with the new files is ok
//! again; a stopped member, a listener that never speaks TLS and a server with another CA's
//! certificate are each named, within the timeout.

mod util;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use util::etcd::{etcdctl, free_ports, start_haproxy, Daemon, Machines};

const MASTERS: [(&str, &str); 3] = [
    ("pm0", "127.0.1.130"),
    ("pm1", "127.0.1.131"),
    ("pm2", "127.0.1.132"),
];
const LB: (&str, &str) = ("plb", "127.0.1.133");
const WORKER: (&str, &str) = ("pw0", "127.0.1.134");
const KUBELET_PORT: u16 = 10250;

struct Ports {
    etcd_client: u16,
    etcd_peer: u16,
    apiserver: u16,
    lb: u16,
}

fn config(ports: &Ports) -> String {
    let mut text = format!(
        "[cluster]\nname = \"probe\"\n\
         [api]\nendpoint = \"{lb}\"\nport = {lb_port}\nbind_port = {api}\n\
         [load_balancer]\nbind_port = {lb_port}\n\
         [[load_balancer.hosts]]\nname = \"{lb_name}\"\naddress = \"{lb}\"\n\
         [etcd]\nclient_port = {client}\npeer_port = {peer}\n\
         [[workers]]\nname = \"{worker}\"\naddress = \"{worker_address}\"\n",
        lb = LB.1,
        lb_name = LB.0,
        lb_port = ports.lb,
        api = ports.apiserver,
        client = ports.etcd_client,
        peer = ports.etcd_peer,
        worker = WORKER.0,
        worker_address = WORKER.1,
    );
    for (name, address) in MASTERS {
        text.push_str(&format!(
            "[[masters]]\nname = \"{name}\"\naddress = \"{address}\"\n"
        ));
    }
    text
}

/// The running stand-ins, by name, killed when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    ports: Ports,
    machines: Machines,
    daemons: BTreeMap<String, Daemon>,
}

impl Cluster {
    fn new() -> Cluster {
        let addresses: Vec<&str> = MASTERS.iter().map(|(_, a)| *a).chain([LB.1]).collect();
        let (etcd_client, etcd_peer) = free_ports(&addresses, 0);
        let (apiserver, lb) = free_ports(&addresses, 2);
        let dir = tempfile::tempdir().unwrap();
        let machines = Machines::new(dir.path());
        Cluster {
            dir,
            ports: Ports {
                etcd_client,
                etcd_peer,
                apiserver,
                lb,
            },
            machines,
            daemons: BTreeMap::new(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cpgen(&self, args: &[&str]) -> Output {
        util::cpgen_in(self.dir.path(), args)
    }

    fn bundle(&self, out: &str) {
        let made = self.cpgen(&["bundle", "probe.toml", "--out-dir", out]);
        assert_eq!(util::code(&made), 0, "{}", util::stderr(&made));
    }

    /// `openssl s_server` at `address:port` with `cert` and `key`, answering any GET.
    fn serve_tls(&mut self, name: &str, address: &str, port: u16, cert: &Path, key: &Path) {
        self.daemons.remove(name);
        let args: Vec<String> = [
            "s_server",
            "-quiet",
            "-www",
            "-accept",
            &format!("{address}:{port}"),
            "-cert",
            cert.to_str().unwrap(),
            "-key",
            key.to_str().unwrap(),
        ]
        .map(str::to_owned)
        .to_vec();
        let log = self.path(&format!("{name}.log"));
        let daemon = Daemon::spawn("openssl", "openssl", &args, self.dir.path(), &log);
        self.daemons.insert(name.to_owned(), daemon);
        wait_for_listener(address, port);
    }

    /// A master's apiserver stand-in with the files of the bundle `out`.
    fn serve_apiserver(&mut self, out: &str, host: &str, address: &str) {
        let pki = self
            .path(out)
            .join("hosts")
            .join(host)
            .join("etc/kubernetes/pki");
        let port = self.ports.apiserver;
        self.serve_tls(
            &format!("apiserver-{host}"),
            address,
            port,
            &pki.join("apiserver.pem"),
            &pki.join("apiserver-key.pem"),
        );
    }

    fn start_haproxy(&mut self, out: &str) {
        let cfg = self
            .path(out)
            .join("hosts")
            .join(LB.0)
            .join("etc/haproxy/haproxy.cfg");
        let daemon = start_haproxy(&cfg, self.dir.path(), &self.path("haproxy.log"));
        self.daemons.insert("haproxy".to_owned(), daemon);
        wait_for_listener(LB.1, self.ports.lb);
    }

    fn etcd_endpoints(&self) -> Vec<String> {
        MASTERS
            .iter()
            .map(|(_, a)| format!("https://{a}:{}", self.ports.etcd_client))
            .collect()
    }

    fn wait_for_etcd(&self, bundle: &str) {
        let endpoints = self.etcd_endpoints();
        let start = Instant::now();
        loop {
            match etcdctl(&self.path(bundle), &endpoints, &["endpoint", "health"]) {
                Ok(_) => return,
                Err(e) if start.elapsed() > Duration::from_secs(30) => {
                    panic!("etcd did not come up: {e}\n{}", self.machines.logs())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(300)),
            }
        }
    }

    /// `cpgen probe BUNDLE --format json ARGS`, bounded by `timeout` so a hang fails the
    /// test instead of stalling it: the statuses by (host, service), and the exit code.
    fn probe(&self, bundle: &str, args: &[&str]) -> (BTreeMap<(String, String), Value>, i32) {
        let out = Command::new("timeout")
            .arg("60")
            .arg(env!("CARGO_BIN_EXE_cpgen"))
            .args(["probe", bundle, "--format", "json"])
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        let json: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", util::stderr(&out)));
        let endpoints = json["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let key = (
                    e["host"].as_str().unwrap().to_owned(),
                    e["service"].as_str().unwrap().to_owned(),
                );
                (key, e.clone())
            })
            .collect();
        assert_eq!(json["valid"], Value::Bool(util::code(&out) == 0));
        (endpoints, util::code(&out))
    }
}

fn wait_for_listener(address: &str, port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect((address, port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nothing listens on {address}:{port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn statuses(endpoints: &BTreeMap<(String, String), Value>) -> BTreeMap<(String, String), String> {
    endpoints
        .iter()
        .map(|(key, e)| (key.clone(), e["status"].as_str().unwrap().to_owned()))
        .collect()
}

fn key(host: &str, service: &str) -> (String, String) {
    (host.to_owned(), service.to_owned())
}

#[test]
fn probe_tells_a_running_cluster_from_its_bundle() {
    let mut cluster = Cluster::new();
    std::fs::write(cluster.path("probe.toml"), config(&cluster.ports)).unwrap();
    cluster.bundle("b1");
    for (host, address) in MASTERS {
        cluster.machines.install(&cluster.path("b1"), host);
        cluster.machines.start_etcd(host);
        cluster.serve_apiserver("b1", host, address);
    }
    let worker_pki = |out: &str| {
        cluster
            .path(out)
            .join("hosts")
            .join(WORKER.0)
            .join("var/lib/kubelet/pki")
    };
    let kubelet = worker_pki("b1");
    cluster.serve_tls(
        "kubelet",
        WORKER.1,
        KUBELET_PORT,
        &kubelet.join("kubelet-server.pem"),
        &kubelet.join("kubelet-server-key.pem"),
    );
    cluster.start_haproxy("b1");
    cluster.wait_for_etcd("b1");

    // The running cluster is the bundle: every endpoint, each once.
    let (endpoints, code) = cluster.probe("b1", &[]);
    let mut expected = BTreeMap::new();
    for (host, _) in MASTERS {
        for service in ["etcd-client", "etcd-peer", "kube-apiserver"] {
            expected.insert(key(host, service), "ok".to_owned());
        }
    }
    expected.insert(key(LB.0, "load-balancer"), "ok".to_owned());
    expected.insert(key(WORKER.0, "kubelet"), "ok".to_owned());
    assert_eq!(statuses(&endpoints), expected, "{endpoints:#?}");
    assert_eq!(
        code,
        0,
        "{}",
        util::stdout(&cluster.cpgen(&["probe", "b1"]))
    );
    for (service, endpoint) in &endpoints {
        let detail = endpoint["detail"].as_str().unwrap();
        assert!(detail.ends_with(": the bundle's"), "{service:?}: {detail}");
    }
    let pm0_client = &endpoints[&key("pm0", "etcd-client")];
    assert_eq!(
        pm0_client["endpoint"],
        format!("https://127.0.1.130:{}", cluster.ports.etcd_client)
    );
    // etcd answered its health request through the bundle's health-check identity; the
    // apiserver stand-in and HAProxy answered theirs.
    for service in [
        key("pm0", "etcd-client"),
        key("pm1", "kube-apiserver"),
        key(LB.0, "load-balancer"),
    ] {
        assert_eq!(
            endpoints[&service]["health"]["answer"], "HTTP 200",
            "{service:?}"
        );
    }

    // Held to the config it was built from; another cluster's config makes the bundle
    // unsound, and the probe fails however well the endpoints answer.
    let (_, code) = cluster.probe("b1", &["--config", "probe.toml"]);
    assert_eq!(code, 0);
    let other = config(&cluster.ports).replace("name = \"probe\"", "name = \"other\"");
    std::fs::write(cluster.path("other.toml"), other).unwrap();
    let (endpoints, code) = cluster.probe("b1", &["--config", "other.toml"]);
    assert_eq!(code, 1);
    assert!(statuses(&endpoints).values().all(|s| s == "ok"));
    let text = util::stdout(&cluster.cpgen(&["probe", "b1", "--config", "other.toml"]));
    assert!(text.contains("the bundle itself does not verify"), "{text}");

    // A bundle edited to send pm0's etcd clients elsewhere: with its config, probe names
    // the endpoint and does not dial the stranger.
    let stranger = std::net::TcpListener::bind(("127.0.1.139", 0)).unwrap();
    stranger.set_nonblocking(true).unwrap();
    let moved = cluster.path("moved");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(cluster.path("b1"))
        .arg(&moved)
        .status()
        .unwrap();
    assert!(copied.success());
    let unit = moved.join("hosts/pm0/etc/systemd/system/etcd.service");
    let text = std::fs::read_to_string(&unit).unwrap().replace(
        &format!(
            "--advertise-client-urls=https://127.0.1.130:{}",
            cluster.ports.etcd_client
        ),
        &format!(
            "--advertise-client-urls=https://127.0.1.139:{}",
            stranger.local_addr().unwrap().port()
        ),
    );
    std::fs::write(&unit, text).unwrap();
    util::redo_manifest(&moved);
    let (endpoints, code) = cluster.probe("moved", &["--config", "probe.toml", "--only", "pm0"]);
    assert_eq!(code, 1);
    let client = &endpoints[&key("pm0", "etcd-client")];
    assert_eq!(
        (client["status"].as_str(), client["endpoint"].as_str()),
        (Some("unreachable"), Some("(none)"))
    );
    assert!(client["detail"]
        .as_str()
        .unwrap()
        .contains("no address of the config: not dialled"));
    assert_eq!(
        stranger.accept().map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::WouldBlock),
        "probe dialled the address the config does not have"
    );

    // Renewed on disk, not loaded: every endpoint drifts, older, with the fix.
    let later = (time::OffsetDateTime::now_utc() + time::Duration::minutes(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let renewed = cluster.cpgen(&["renew", "probe.toml", "--at", &later]);
    assert_eq!(util::code(&renewed), 0, "{}", util::stderr(&renewed));
    cluster.bundle("b2");
    let (endpoints, code) = cluster.probe("b2", &[]);
    assert_eq!(code, 1);
    for (service, endpoint) in &endpoints {
        assert_eq!(endpoint["status"], "drift", "{service:?}: {endpoint:#}");
        assert_eq!(endpoint["drift"], "older", "{service:?}");
        assert_ne!(endpoint["served"]["serial"], endpoint["expected"]["serial"]);
    }
    assert!(endpoints[&key("pm1", "etcd-client")]["fix"]
        .as_str()
        .unwrap()
        .contains("on pm1: install this bundle's files, then `systemctl restart etcd.service`"));
    let text = cluster.cpgen(&["probe", "b2"]);
    assert_eq!(util::code(&text), 1);
    let text = util::stdout(&text);
    assert!(text.contains("from the bundle's CA but older"), "{text}");
    assert!(text.ends_with("11 endpoints: 11 drift\n"), "{text}");

    // pm0's member restarted with the new files: it alone is ok.
    cluster.machines.stop_etcd("pm0");
    cluster.machines.install(&cluster.path("b2"), "pm0");
    cluster.machines.start_etcd("pm0");
    cluster.wait_for_etcd("b2");
    let (endpoints, _) = cluster.probe("b2", &[]);
    for (service, status) in statuses(&endpoints) {
        let restarted = service.0 == "pm0" && service.1.starts_with("etcd-");
        assert_eq!(
            status,
            if restarted { "ok" } else { "drift" },
            "{service:?}"
        );
    }

    // A stopped member, a listener that never speaks TLS, another CA's certificate.
    cluster.machines.stop_etcd("pm1");
    cluster.daemons.remove("kubelet");
    let silent = std::net::TcpListener::bind((WORKER.1, KUBELET_PORT)).unwrap();
    util::openssl_ca(cluster.dir.path(), "foreign", "someone-else", 30);
    cluster.serve_tls(
        "apiserver-pm2",
        MASTERS[2].1,
        cluster.ports.apiserver,
        &cluster.path("foreign.pem"),
        &cluster.path("foreign-key.pem"),
    );
    let (endpoints, code) = cluster.probe("b2", &["--timeout", "1s"]);
    assert_eq!(code, 1);
    let status = statuses(&endpoints);
    assert_eq!(status[&key("pm1", "etcd-client")], "unreachable");
    assert_eq!(status[&key("pm1", "etcd-peer")], "unreachable");
    assert!(endpoints[&key("pm1", "etcd-client")]["detail"]
        .as_str()
        .unwrap()
        .contains("connection refused"));
    assert_eq!(status[&key(WORKER.0, "kubelet")], "unreachable");
    assert_eq!(
        endpoints[&key(WORKER.0, "kubelet")]["detail"],
        "no answer within 1s"
    );
    assert_eq!(status[&key("pm2", "kube-apiserver")], "foreign");
    // pm2's foreign certificate does not name its address either.
    assert_eq!(
        endpoints[&key("pm2", "kube-apiserver")]["missing_sans"],
        serde_json::json!([MASTERS[2].1])
    );
    assert_eq!(status[&key("pm0", "etcd-client")], "ok");
    assert_eq!(status[&key("pm2", "etcd-client")], "drift");
    drop(silent);

    // Only the hosts asked for; a host the bundle does not have is a usage error.
    let (endpoints, _) = cluster.probe("b2", &["--only", "pm0"]);
    assert_eq!(
        endpoints
            .keys()
            .map(|(h, _)| h.as_str())
            .collect::<Vec<_>>(),
        ["pm0", "pm0", "pm0"]
    );
    let unknown = cluster.cpgen(&["probe", "b2", "--only", "nosuch"]);
    assert_eq!(util::code(&unknown), 2, "{}", util::stderr(&unknown));
    assert!(util::stderr(&unknown).contains("no endpoint on host nosuch"));

    // The gauges a textfile collector reads.
    let metrics = cluster.cpgen(&["probe", "b2", "--format", "prometheus", "--only", "pm0"]);
    let metrics = util::stdout(&metrics);
    let series = format!(
        "cpgen_probe_status{{endpoint=\"https://127.0.1.130:{}\",host=\"pm0\",service=\"etcd-client\",status=\"ok\"}} 1\n",
        cluster.ports.etcd_client
    );
    assert!(metrics.contains(&series), "{metrics}");
    assert!(metrics.contains("# TYPE cpgen_probe_certificate_expiry_seconds gauge\n"));
}
