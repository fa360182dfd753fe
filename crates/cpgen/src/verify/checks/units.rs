//! systemd units: the programs they run, the flags cpgen writes (and those it never leaves out),
//! and unit settings that open the control plane.

use crate::diag::{Code, Diagnostic};
use crate::verify::model::Unit;

use super::{has_plain_url, unsafe_setting, Audit};

/// The units cpgen writes, by file name, with the one program each runs.
/// The flags cpgen writes for each program: any other (`--token-auth-file`,
/// `--authorization-config`, etcd's `--config-file`, which makes etcd ignore every other
/// flag) changes who may do what, so verify allows none.
const UNIT_FLAGS: &[(&str, &[&str])] = &[
    (
        "etcd",
        &[
            "advertise-client-urls",
            "cert-file",
            "client-cert-auth",
            "data-dir",
            "initial-advertise-peer-urls",
            "initial-cluster",
            "initial-cluster-state",
            "initial-cluster-token",
            "key-file",
            "listen-client-urls",
            "listen-peer-urls",
            "name",
            "peer-cert-file",
            "peer-client-cert-auth",
            "peer-key-file",
            "peer-trusted-ca-file",
            "trusted-ca-file",
        ],
    ),
    (
        "kube-apiserver",
        &[
            "advertise-address",
            "allow-privileged",
            "authorization-mode",
            "bind-address",
            "client-ca-file",
            "enable-admission-plugins",
            "encryption-provider-config",
            "endpoint-reconciler-type",
            "etcd-cafile",
            "etcd-certfile",
            "etcd-keyfile",
            "etcd-servers",
            "kubelet-certificate-authority",
            "kubelet-client-certificate",
            "kubelet-client-key",
            "kubelet-preferred-address-types",
            "proxy-client-cert-file",
            "proxy-client-key-file",
            "requestheader-allowed-names",
            "requestheader-client-ca-file",
            "requestheader-extra-headers-prefix",
            "requestheader-group-headers",
            "requestheader-username-headers",
            "secure-port",
            "service-account-issuer",
            "service-account-key-file",
            "service-account-signing-key-file",
            "service-cluster-ip-range",
            "service-node-port-range",
            "tls-cert-file",
            "tls-private-key-file",
            "v",
        ],
    ),
    (
        "kube-controller-manager",
        &[
            "allocate-node-cidrs",
            "authentication-kubeconfig",
            "authorization-kubeconfig",
            "bind-address",
            "client-ca-file",
            "cluster-cidr",
            "cluster-name",
            "cluster-signing-cert-file",
            "cluster-signing-key-file",
            "controllers",
            "kubeconfig",
            "leader-elect",
            "requestheader-client-ca-file",
            "root-ca-file",
            "service-account-private-key-file",
            "service-cluster-ip-range",
            "use-service-account-credentials",
            "v",
        ],
    ),
    (
        "kube-scheduler",
        &[
            "authentication-kubeconfig",
            "authorization-kubeconfig",
            "bind-address",
            "kubeconfig",
            "leader-elect",
            "v",
        ],
    ),
    (
        "kubelet",
        &["config", "hostname-override", "kubeconfig", "node-ip", "v"],
    ),
    ("kube-proxy", &["config"]),
];

/// Flags whose absence opens the component: kube-apiserver without
/// `--authorization-mode` allows every request, without `--client-ca-file` or its TLS pair
/// it authenticates no client; etcd without certificate auth serves anyone.
const REQUIRED_FLAGS: &[(&str, &[&str])] = &[
    (
        "etcd",
        &[
            "client-cert-auth",
            "peer-client-cert-auth",
            "trusted-ca-file",
            "peer-trusted-ca-file",
            "cert-file",
            "key-file",
            "peer-cert-file",
            "peer-key-file",
        ],
    ),
    (
        "kube-apiserver",
        &[
            "authorization-mode",
            "client-ca-file",
            "tls-cert-file",
            "tls-private-key-file",
            "etcd-cafile",
            "etcd-certfile",
            "etcd-keyfile",
        ],
    ),
    // Without its file the kubelet serves anyone anonymously, with AlwaysAllow.
    ("kubelet", &["config", "kubeconfig"]),
    ("kube-proxy", &["config"]),
];

const UNIT_COMMANDS: &[(&str, &str)] = &[
    ("etcd.service", "/usr/bin/etcd"),
    ("kube-apiserver.service", "/usr/bin/kube-apiserver"),
    (
        "kube-controller-manager.service",
        "/usr/bin/kube-controller-manager",
    ),
    ("kube-scheduler.service", "/usr/bin/kube-scheduler"),
    ("kubelet.service", "/usr/bin/kubelet"),
    ("kube-proxy.service", "/usr/bin/kube-proxy"),
];

/// Go's boolean flag values that mean true.
fn flag_true(value: &str) -> bool {
    matches!(value, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

/// Settings of one unit that let clients in unchecked or send traffic in clear text.
fn unit_unsafe_settings(unit: &Unit) -> Vec<Diagnostic> {
    match unit.program.as_str() {
        "kube-apiserver" => apiserver_unsafe_settings(unit),
        "etcd" => etcd_unsafe_settings(unit),
        _ => Vec::new(),
    }
}

/// Request-header trust open to any client, AlwaysAllow, anonymous requests, etcd in clear
/// text.
fn apiserver_unsafe_settings(unit: &Unit) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    let client_ca = unit.flag("client-ca-file");
    let header_ca = unit.flag("requestheader-client-ca-file");
    if header_ca.is_some() && header_ca == client_ca {
        found.push(unsafe_setting(
            &unit.file,
            "--requestheader-client-ca-file is --client-ca-file: any client of the cluster may send X-Remote-User and act as anyone".into(),
            "trust the front-proxy CA for request headers, as cpgen writes it",
        ));
    }
    if unit
        .flag("requestheader-allowed-names")
        .is_some_and(|names| names.trim().is_empty())
    {
        found.push(unsafe_setting(
            &unit.file,
            "--requestheader-allowed-names is empty: every certificate of the request-header CA may send X-Remote-User and act as anyone".into(),
            "allow front-proxy-client only, as cpgen writes it",
        ));
    }
    let modes = unit.flag("authorization-mode").unwrap_or_default();
    if modes.split(',').any(|m| m.trim() == "AlwaysAllow") {
        found.push(unsafe_setting(
            &unit.file,
            format!("--authorization-mode={modes} includes AlwaysAllow: every authenticated request is allowed"),
            "use --authorization-mode=Node,RBAC",
        ));
    }
    if unit.flag("anonymous-auth").is_some_and(flag_true) {
        found.push(unsafe_setting(
            &unit.file,
            "--anonymous-auth=true: requests without credentials are served as system:anonymous"
                .into(),
            "remove --anonymous-auth=true",
        ));
    }
    if let Some(servers) = unit
        .flag("etcd-servers")
        .filter(|servers| has_plain_url(servers))
    {
        found.push(unsafe_setting(
            &unit.file,
            format!("--etcd-servers={servers} has a URL that is not https://: the cluster's data travels in clear text without authentication"),
            "dial etcd over https://",
        ));
    }
    found
}

/// Clients or peers without certificates, self-made certificates, traffic without TLS.
fn etcd_unsafe_settings(unit: &Unit) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    for flag in ["client-cert-auth", "peer-client-cert-auth"] {
        let message = match unit.flag(flag) {
            Some(value) if flag_true(value) => continue,
            Some(value) => format!("--{flag}={value}"),
            None => format!("--{flag} is not set (etcd's default is false)"),
        };
        found.push(unsafe_setting(
            &unit.file,
            format!("{message}: etcd accepts connections without a certificate its CA signed"),
            &format!("set --{flag}=true"),
        ));
    }
    for flag in ["auto-tls", "peer-auto-tls"] {
        if unit.flag(flag).is_some_and(flag_true) {
            found.push(unsafe_setting(
                &unit.file,
                format!("--{flag}=true: etcd makes itself a certificate nobody can check"),
                &format!("remove --{flag}"),
            ));
        }
    }
    for (flag, value) in &unit.flags {
        if has_plain_url(value) {
            found.push(unsafe_setting(
                &unit.file,
                format!("--{flag}={value} has a URL that is not https:// (http://, unix://): etcd traffic without TLS, so without certificate authentication"),
                "use https:// URLs",
            ));
        }
    }
    found
}

impl Audit<'_> {
    /// Settings that open the control plane to anyone who can reach it: in units, then in
    /// kubeconfigs, host by host.
    pub(super) fn unsafe_settings(&mut self) {
        let mut found = Vec::new();
        for host in self.hosts {
            for unit in &host.units {
                found.extend(unit_unsafe_settings(unit));
            }
            for kubeconfig in &host.kubeconfigs {
                let path = &kubeconfig.path;
                found.extend(super::kubeconfigs::unsafe_settings(path, kubeconfig));
            }
        }
        self.findings.extend(found);
    }

    /// Units run exactly the programs cpgen writes them for, with nothing before, after or
    /// around them; a systemd file cpgen does not write can change what runs.
    pub(super) fn unit_commands(&mut self) {
        let mut found = Vec::new();
        let help = "restore the unit cpgen wrote (build the bundle again); run anything else outside the bundle";
        for host in self.hosts {
            for unit in &host.units {
                let name = unit.file.rsplit('/').next().unwrap_or_default();
                match UNIT_COMMANDS.iter().find(|(file, _)| *file == name) {
                    Some((_, expected)) if unit.command != *expected => {
                        found.push(Diagnostic::file_error(
                            Code::UnexpectedCommand,
                            &unit.file,
                            format!("ExecStart runs {}, not {expected}", unit.command),
                            help,
                        ))
                    }
                    Some(_) => {}
                    None => found.push(Diagnostic::file_error(
                        Code::UnexpectedCommand,
                        &unit.file,
                        format!("a unit cpgen does not write, running {}", unit.command),
                        help,
                    )),
                }
                for directive in &unit.extra_directives {
                    found.push(Diagnostic::file_error(
                        Code::UnexpectedCommand,
                        &unit.file,
                        format!("{directive}: a directive cpgen does not write (it writes one ExecStart and no other command, environment or sandbox setting)"),
                        help,
                    ));
                }
                found.extend(Self::unit_flag_findings(unit, help));
            }
            for file in &host.other_systemd_files {
                found.push(Diagnostic::file_error(
                    Code::UnexpectedCommand,
                    file,
                    "a systemd file cpgen does not write: a drop-in or unit can change or add what runs on the host",
                    help,
                ));
            }
        }
        self.findings.extend(found);
    }

    /// Flags outside what cpgen writes for the program, security flags left out, repeated
    /// flags, stray arguments, and text systemd reads differently from its look.
    fn unit_flag_findings(unit: &Unit, help: &str) -> Vec<Diagnostic> {
        let error = |message: String| {
            Diagnostic::file_error(Code::UnexpectedCommand, &unit.file, message, help)
        };
        let mut found: Vec<Diagnostic> =
            unit.oddities.iter().map(|odd| error(odd.clone())).collect();
        let lookup = |table: &[(&str, &'static [&'static str])]| {
            table
                .iter()
                .find(|(program, _)| *program == unit.program)
                .map_or(&[][..], |(_, flags)| *flags)
        };
        let allowed = lookup(UNIT_FLAGS);
        for name in unit
            .flags
            .keys()
            .filter(|name| !allowed.contains(&name.as_str()))
        {
            found.push(error(format!(
                "--{name} is not a flag cpgen writes for {}: it can change who may do what",
                unit.program
            )));
        }
        for name in lookup(REQUIRED_FLAGS)
            .iter()
            .filter(|name| unit.flag(name).is_none())
        {
            found.push(Diagnostic::file_error(
            Code::UnsafeSetting,
            &unit.file,
            format!("--{name} is missing: {} falls back to a default that lets clients in unchecked", unit.program),
            help,
        ));
        }
        for name in &unit.repeated {
            found.push(error(format!(
                "--{name} is given more than once: the last one wins, whatever the first says"
            )));
        }
        for argument in &unit.arguments {
            found.push(error(format!(
                "`{argument}` is an argument cpgen does not write"
            )));
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expected_commands_are_those_cpgen_writes() {
        let config = crate::Config::parse(
            "t.toml",
            include_str!("../../../../../examples/seed-ha.toml"),
        )
        .and_then(|c| c.validate())
        .map(|c| c.plan);
        let Ok(mut plan) = config else {
            panic!("the seed-ha example is valid")
        };
        plan.nodes.on_masters = true;
        let specs =
            crate::render::host_unit_specs(&plan, &plan.masters[0], crate::layout::Role::Master);
        let written: Vec<(&str, &str)> = specs
            .iter()
            .map(|(file, unit)| (*file, unit.binary))
            .collect();
        assert_eq!(written, UNIT_COMMANDS);
    }

    #[test]
    fn the_allowed_flags_are_those_cpgen_writes() {
        for example in ["seed-ha", "separate-cas", "on-masters-vip", "ipv6"] {
            let path = format!(
                "{}/../../examples/{example}.toml",
                env!("CARGO_MANIFEST_DIR")
            );
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let Ok(mut checked) = crate::Config::parse(&path, &text).and_then(|c| c.validate())
            else {
                panic!("{example} is valid")
            };
            checked.plan.nodes.on_masters = true;
            let plan = &checked.plan;
            let units =
                crate::render::host_unit_specs(plan, &plan.masters[0], crate::layout::Role::Master);
            assert_eq!(units.len(), UNIT_COMMANDS.len(), "{example}");
            for (_, unit) in units {
                let allowed = UNIT_FLAGS
                    .iter()
                    .find(|(program, _)| *program == unit.program())
                    .map_or(&[][..], |(_, flags)| *flags);
                let mut written: Vec<&str> = unit.flags.iter().map(|f| f.name).collect();
                written.sort_unstable();
                let mut allowed = allowed.to_vec();
                allowed.sort_unstable();
                assert_eq!(written, allowed, "{example}: {}", unit.program());
            }
        }
    }
}
