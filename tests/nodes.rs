//! A node's files as the programs that run them read them: every kubelet and kube-proxy
//! configuration of the `workloads` golden bundle parsed as YAML and held to what the issue
//! of complete nodes asks (a closed kubelet API, the node's own certificates, cluster DNS
//! from the service CIDR, the control plane's taint on masters only), and their
//! certificates checked by openssl.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

/// Inside the golden certificates' validity (issued 2026-01-01 for a year).
const AT: &str = "1769904000";

const MASTERS: [(&str, &str); 3] = [
    ("cp0", "10.20.0.10"),
    ("cp1", "10.20.0.11"),
    ("cp2", "10.20.0.12"),
];
const WORKERS: [(&str, &str); 2] = [("node0", "10.20.0.100"), ("node1", "10.20.0.101")];

fn host(name: &str) -> PathBuf {
    util::root().join("golden/workloads/hosts").join(name)
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str::<Value>(&text).unwrap()
}

/// The file a configuration names, on that host.
fn named(host_dir: &Path, value: &Value) -> PathBuf {
    let path = value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is no path"));
    host_dir.join(path.trim_start_matches('/'))
}

fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn subject(cert: &Path) -> String {
    let args = ["x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in"];
    openssl(&[&args[..], &[cert.to_str().unwrap()]].concat())
        .trim()
        .to_owned()
}

/// openssl accepts `cert` for `purpose` under the host's cluster CA.
fn verifies(host_dir: &Path, cert: &Path, purpose: &str) {
    let ca = host_dir.join("etc/kubernetes/pki/ca.pem");
    let out = openssl(&[
        "verify",
        "-attime",
        AT,
        "-purpose",
        purpose,
        "-CAfile",
        ca.to_str().unwrap(),
        cert.to_str().unwrap(),
    ]);
    assert!(out.trim().ends_with("OK"), "{out}");
}

#[test]
fn every_kubelet_serves_only_clients_the_api_server_authorizes() {
    for (name, address) in MASTERS.iter().chain(&WORKERS) {
        let dir = host(name);
        let config = yaml(&dir.join("var/lib/kubelet/config.yaml"));
        assert_eq!(config["kind"], "KubeletConfiguration", "{name}");
        assert_eq!(config["apiVersion"], "kubelet.config.k8s.io/v1beta1");
        assert_eq!(config["authentication"]["anonymous"]["enabled"], false);
        assert_eq!(config["authentication"]["webhook"]["enabled"], true);
        assert_eq!(config["authorization"]["mode"], "Webhook");
        assert_eq!(config["readOnlyPort"], 0);
        assert_eq!(config["cgroupDriver"], "systemd");
        assert_eq!(
            config["containerRuntimeEndpoint"],
            "unix:///var/run/crio/crio.sock"
        );
        // CoreDNS's address: the 10th of service_cidr 10.96.0.0/16.
        assert_eq!(config["clusterDNS"], json!(["10.96.0.10"]));
        assert_eq!(config["clusterDomain"], "cluster.local");
        assert_eq!(config["address"], *address);
        assert_eq!(config["port"], 10250);

        let client_ca = named(&dir, &config["authentication"]["x509"]["clientCAFile"]);
        assert_eq!(client_ca, dir.join("etc/kubernetes/pki/ca.pem"));
        let serving = named(&dir, &config["tlsCertFile"]);
        let key = named(&dir, &config["tlsPrivateKeyFile"]);
        assert!(key.is_file(), "{name}: {}", key.display());
        verifies(&dir, &serving, "sslserver");
        assert_eq!(subject(&serving), format!("subject=CN=system:node:{name}"));
        let sans = openssl(&[
            "x509",
            "-noout",
            "-ext",
            "subjectAltName",
            "-in",
            serving.to_str().unwrap(),
        ]);
        assert!(sans.contains(&format!("DNS:{name}")), "{sans}");
        assert!(sans.contains(&format!("IP Address:{address}")), "{sans}");
        // The key is the certificate's.
        assert_eq!(
            openssl(&[
                "x509",
                "-pubkey",
                "-noout",
                "-in",
                serving.to_str().unwrap()
            ]),
            openssl(&["pkey", "-pubout", "-in", key.to_str().unwrap()])
        );
    }
}

#[test]
fn only_the_masters_register_with_the_control_plane_taint() {
    for (name, _) in MASTERS {
        let config = yaml(&host(name).join("var/lib/kubelet/config.yaml"));
        assert_eq!(
            config["registerWithTaints"],
            json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]),
            "{name}"
        );
    }
    for (name, _) in WORKERS {
        let config = yaml(&host(name).join("var/lib/kubelet/config.yaml"));
        assert!(config.get("registerWithTaints").is_none(), "{name}");
    }
}

#[test]
fn kubelet_and_kube_proxy_reach_the_api_as_their_own_identities() {
    for (name, address) in MASTERS.iter().chain(&WORKERS) {
        let dir = host(name);
        let unit = std::fs::read_to_string(dir.join("etc/systemd/system/kubelet.service")).unwrap();
        assert!(
            unit.contains(&format!("--hostname-override={name} ")),
            "{unit}"
        );
        assert!(unit.contains(&format!("--node-ip={address} ")), "{unit}");
        assert!(
            unit.contains("--config=/var/lib/kubelet/config.yaml "),
            "{unit}"
        );

        let kubelet = yaml(&dir.join("var/lib/kubelet/kubeconfig"));
        let proxy_config = yaml(&dir.join("var/lib/kube-proxy/config.yaml"));
        assert_eq!(proxy_config["kind"], "KubeProxyConfiguration");
        assert_eq!(proxy_config["hostnameOverride"], *name);
        assert_eq!(proxy_config["clusterCIDR"], "10.244.0.0/16");
        assert_eq!(proxy_config["mode"], "iptables");
        let proxy = yaml(&named(
            &dir,
            &proxy_config["clientConnection"]["kubeconfig"],
        ));
        for (kubeconfig, expected) in [
            (
                &kubelet,
                format!("subject=CN=system:node:{name},O=system:nodes"),
            ),
            (
                &proxy,
                "subject=CN=system:kube-proxy,O=system:node-proxier".to_owned(),
            ),
        ] {
            assert_eq!(
                kubeconfig["clusters"][0]["cluster"]["server"],
                "https://api.apps.example.internal:6443"
            );
            let user = &kubeconfig["users"][0]["user"];
            let cert = named(&dir, &user["client-certificate"]);
            assert!(named(&dir, &user["client-key"]).is_file());
            verifies(&dir, &cert, "sslclient");
            assert_eq!(subject(&cert), expected);
        }
    }
}

#[test]
fn a_config_without_workloads_gives_the_masters_no_kubelet() {
    let masters = util::root().join("golden/seed-ha/hosts/kubem00");
    assert!(masters
        .join("etc/systemd/system/kube-apiserver.service")
        .is_file());
    for absent in [
        "etc/systemd/system/kubelet.service",
        "etc/systemd/system/kube-proxy.service",
        "var/lib/kubelet",
        "var/lib/kube-proxy",
    ] {
        assert!(!masters.join(absent).exists(), "{absent}");
    }
}
