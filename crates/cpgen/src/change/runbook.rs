//! The runbook of a change to a running cluster (`changes.json`): the steps an operator, or
//! the playbook, takes in order, each with the exact command line. Commands run from the
//! bundle's root on the operator's machine: etcdctl with the bundle's admin certificates,
//! kubectl with its admin kubeconfig, systemctl on a host over ssh.

use serde::Serialize;

use super::members::{Member, Move};

/// The admin files the commands use, relative to the bundle's root.
const ETCDCTL_TLS: &str = "--cacert=admin/etcd-ca.pem --cert=admin/etcd-healthcheck-client.pem \
                           --key=admin/etcd-healthcheck-client-key.pem";
const ADMIN_KUBECONFIG: &str = "admin/admin.kubeconfig";

/// etcd refuses a reconfiguration until every member has been up a few seconds, and a
/// learner cannot be promoted before it has caught up: each such command retries, for at
/// most this many seconds.
const RETRY_SECONDS: u32 = 300;

/// What a step does, with its own fields, as `changes.json` names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub(crate) enum Action {
    /// Copy the host's files from `hosts/<host>/` onto it.
    Install { host: String },
    /// Add a member to etcd before it starts.
    EtcdMemberAdd {
        host: String,
        member: String,
        peer_urls: Vec<String>,
        learner: bool,
    },
    /// Make a learner a voting member once it has caught up.
    EtcdMemberPromote { host: String, member: String },
    /// Remove a member from etcd before it stops.
    EtcdMemberRemove { host: String, member: String },
    /// Start a unit.
    Start { host: String, unit: String },
    /// Restart a unit whose files changed.
    Restart { host: String, unit: String },
    /// Stop a unit for good.
    Stop { host: String, unit: String },
    /// Wait until a service answers.
    Wait { host: String, check: Check },
}

impl Action {
    /// The action's name in `changes.json`.
    pub(crate) fn word(&self) -> &'static str {
        match self {
            Action::Install { .. } => "install",
            Action::EtcdMemberAdd { .. } => "etcd-member-add",
            Action::EtcdMemberPromote { .. } => "etcd-member-promote",
            Action::EtcdMemberRemove { .. } => "etcd-member-remove",
            Action::Start { .. } => "start",
            Action::Restart { .. } => "restart",
            Action::Stop { .. } => "stop",
            Action::Wait { .. } => "wait",
        }
    }

    /// The host the step is about.
    pub(crate) fn host(&self) -> &str {
        match self {
            Action::Install { host }
            | Action::EtcdMemberAdd { host, .. }
            | Action::EtcdMemberPromote { host, .. }
            | Action::EtcdMemberRemove { host, .. }
            | Action::Start { host, .. }
            | Action::Restart { host, .. }
            | Action::Stop { host, .. }
            | Action::Wait { host, .. } => host,
        }
    }
}

/// What a `wait` step waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Check {
    /// The host's etcd member answers a health check.
    EtcdHealthy,
    /// The host's kube-apiserver is ready.
    ApiserverReady,
    /// The API answers through the host's load balancer.
    LoadBalancerReady,
}

/// One step of the runbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Step {
    #[serde(flatten)]
    pub(crate) action: Action,
    /// The address the step reaches the machine at (a member that moves is stopped at its
    /// old address), so the playbook acts where the command does.
    pub(crate) address: String,
    /// The line an operator pastes, from the bundle's root.
    pub(crate) command: String,
    /// Why this step is here, in words.
    pub(crate) why: String,
}

/// The services of a master besides etcd, in start order.
const CONTROL_PLANE: [&str; 3] = [
    "kube-apiserver.service",
    "kube-controller-manager.service",
    "kube-scheduler.service",
];

/// The ports the health checks dial.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ports {
    /// etcd's client port.
    pub(crate) etcd_client: u16,
    /// kube-apiserver's secure port on a master.
    pub(crate) apiserver: u16,
    /// The load balancer's port.
    pub(crate) load_balancer: u16,
}

/// A machine as the commands reach it: its host name and its address. The address is
/// the one the step is about: a member that moves is stopped at its old address and
/// started at its new one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct At<'a> {
    /// The host's name.
    pub(crate) host: &'a str,
    /// Its address as a URL's host (IPv6 in brackets).
    pub(crate) url_host: &'a str,
}

impl At<'_> {
    /// The address, without an IPv6 address's brackets.
    fn address(&self) -> &str {
        self.url_host.trim_start_matches('[').trim_end_matches(']')
    }

    /// `ssh root@ADDRESS`.
    fn ssh(&self) -> String {
        format!("ssh root@{}", self.address())
    }
}

/// Builds the steps.
pub(crate) struct Runbook {
    steps: Vec<Step>,
    ports: Ports,
    /// etcd's data directory: a joining machine's must be empty.
    data_dir: String,
}

impl Runbook {
    pub(crate) fn new(ports: Ports, data_dir: &str) -> Self {
        Runbook {
            steps: Vec::new(),
            ports,
            data_dir: data_dir.to_owned(),
        }
    }

    pub(crate) fn into_steps(self) -> Vec<Step> {
        self.steps
    }

    fn push(&mut self, at: At<'_>, action: Action, command: String, why: impl Into<String>) {
        self.steps.push(Step {
            action,
            address: at.address().to_owned(),
            command,
            why: why.into(),
        });
    }

    /// Copies a host's files onto it, owned by root whoever unpacked the bundle, without
    /// touching the directories that exist (`/`, `/etc`).
    pub(crate) fn install(&mut self, at: At<'_>, why: &str) {
        self.install_then(at, "", why);
    }

    /// [`Runbook::install`], after `first` runs on the machine.
    fn install_then(&mut self, at: At<'_>, first: &str, why: &str) {
        let host = at.host;
        let command = format!(
            "tar --owner=0 --group=0 --numeric-owner -C hosts/{host} -cf - . | {} '{first}tar --no-overwrite-dir -C / -xpf - && systemctl daemon-reload'",
            at.ssh()
        );
        self.push(
            at,
            Action::Install {
                host: host.to_owned(),
            },
            command,
            why,
        );
    }

    /// Starts, restarts or stops `unit` on `host`.
    pub(crate) fn unit(&mut self, verb: Verb, at: At<'_>, unit: &str, why: &str) {
        let host = at.host;
        let (action, systemctl) = match verb {
            Verb::Start => (
                Action::Start {
                    host: host.to_owned(),
                    unit: unit.to_owned(),
                },
                format!("systemctl enable --now {unit}"),
            ),
            Verb::Restart => (
                Action::Restart {
                    host: host.to_owned(),
                    unit: unit.to_owned(),
                },
                format!("systemctl restart {unit}"),
            ),
            Verb::Stop => (
                Action::Stop {
                    host: host.to_owned(),
                    unit: unit.to_owned(),
                },
                format!("systemctl disable --now {unit}"),
            ),
        };
        let command = format!("{} '{systemctl}'", at.ssh());
        self.push(at, action, command, why);
    }

    /// Waits until `check` holds on `host`.
    pub(crate) fn wait(&mut self, at: At<'_>, check: Check) {
        let (host, address) = (at.host, at.url_host);
        let readyz = |port: u16| {
            format!(
                "kubectl --kubeconfig {ADMIN_KUBECONFIG} --server https://{address}:{port} get --raw /readyz"
            )
        };
        let probe = match check {
            Check::EtcdHealthy => format!(
                "{} endpoint health",
                etcdctl(&format!("https://{address}:{}", self.ports.etcd_client))
            ),
            Check::ApiserverReady => readyz(self.ports.apiserver),
            Check::LoadBalancerReady => readyz(self.ports.load_balancer),
        };
        let why = match check {
            Check::EtcdHealthy => "the next step needs this member healthy",
            Check::ApiserverReady => "one apiserver at a time: the next host waits for this one",
            Check::LoadBalancerReady => "the load balancer forwards to the new set of apiservers",
        };
        self.push(
            at,
            Action::Wait {
                host: host.to_owned(),
                check,
            },
            retrying(&probe),
            why,
        );
    }

    /// The steps of one membership move.
    pub(crate) fn member(&mut self, change: &Move) {
        match change {
            Move::Join { member, voters } => self.join(member, voters),
            Move::Leave { member, voters } => self.leave(member, voters),
        }
    }

    /// A member joins on a new machine (a new name, or a name at a new address): its files,
    /// its place in etcd, then its control plane.
    fn join(&mut self, member: &Member, voters: &[Member]) {
        let host = &member.name;
        let at = member.at();
        let before: Vec<&Member> = voters.iter().filter(|v| v.name != *host).collect();
        let endpoints = client_urls(&before);
        // etcd starts a member added by `member add` only from an empty data directory; a
        // machine that ran a member before (a re-addressed one) keeps its old data aside.
        let aside = format!(
            "if [ -e {dir}/member ]; then mv {dir} {dir}.before-join; fi && ",
            dir = self.data_dir
        );
        self.install_then(
            at,
            &aside,
            "the joining member's files must be in place before it starts, with an empty data directory",
        );
        let etcd = Etcdctl::new(&endpoints, &member.peer_url);
        let listed = etcd.listed();
        let add = format!(
            "{} member add {host} --peer-urls={} --learner",
            etcdctl(&endpoints),
            member.peer_url
        );
        self.push(
            at,
            Action::EtcdMemberAdd {
                host: host.clone(),
                member: host.clone(),
                peer_urls: vec![member.peer_url.clone()],
                learner: true,
            },
            retrying(&format!("{listed} || {add}")),
            "a member is added before it starts, as a learner: it does not vote, so the quorum \
             does not grow, until it has caught up",
        );
        self.unit(
            Verb::Start,
            at,
            "etcd.service",
            "its unit says --initial-cluster-state=existing and the membership at its join",
        );
        let promoted = format!("{} | grep -q \", false\\$\"", etcd.line());
        let promote = etcd.by_id("promote");
        self.push(
            at,
            Action::EtcdMemberPromote {
                host: host.clone(),
                member: host.clone(),
            },
            retrying(&format!("{promoted} || {promote}")),
            "etcd promotes a learner only once it is in sync with the leader: retried until then",
        );
        self.wait(at, Check::EtcdHealthy);
        for unit in CONTROL_PLANE {
            self.unit(Verb::Start, at, unit, "the new master's control plane");
        }
        self.wait(at, Check::ApiserverReady);
    }

    fn leave(&mut self, member: &Member, voters: &[Member]) {
        let host = &member.name;
        let at = member.at();
        for unit in CONTROL_PLANE.iter().rev() {
            self.unit(
                Verb::Stop,
                at,
                unit,
                "the leaving master's control plane stops first",
            );
        }
        let endpoints = client_urls(&voters.iter().collect::<Vec<_>>());
        let etcd = Etcdctl::new(&endpoints, &member.peer_url);
        let gone = format!("! {}", etcd.listed());
        let remove = etcd.by_id("remove");
        self.push(
            at,
            Action::EtcdMemberRemove {
                host: host.clone(),
                member: host.clone(),
            },
            retrying(&format!("{gone} || {remove}")),
            "a member is removed before it stops, so the quorum shrinks while it still answers",
        );
        self.unit(
            Verb::Stop,
            at,
            "etcd.service",
            "removed from the cluster: stopped for good; its data directory and keys (/etc/etcd/pki, /etc/kubernetes/pki, the encryption config) can be wiped",
        );
    }
}

/// `start`, `restart` or `stop`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Start,
    Restart,
    Stop,
}

fn client_urls(members: &[&Member]) -> String {
    members
        .iter()
        .map(|m| m.client_url.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// etcdctl lines about one member, found by its peer URL: etcd's member commands take its
/// hexadecimal id, and an added member has no name until it starts.
struct Etcdctl {
    base: String,
    peer_url: String,
}

impl Etcdctl {
    fn new(endpoints: &str, peer_url: &str) -> Etcdctl {
        Etcdctl {
            base: etcdctl(endpoints),
            peer_url: peer_url.to_owned(),
        }
    }

    /// `member list`, one member a line: `id, status, name, peer URLs, client URLs, learner`.
    fn list(&self) -> String {
        format!("{} member list", self.base)
    }

    /// True when the member is in the list.
    fn listed(&self) -> String {
        format!("{} | grep -qF \", {}, \"", self.list(), self.peer_url)
    }

    /// The member's line of the list.
    fn line(&self) -> String {
        format!("{} | grep -F \", {}, \"", self.list(), self.peer_url)
    }

    /// `member VERB ID`.
    fn by_id(&self, verb: &str) -> String {
        format!(
            "{} member {verb} $({} | cut -d, -f1)",
            self.base,
            self.line()
        )
    }
}

fn etcdctl(endpoints: &str) -> String {
    format!("etcdctl --endpoints={endpoints} {ETCDCTL_TLS}")
}

/// `command`, retried every 2 seconds until it succeeds, for at most [`RETRY_SECONDS`].
fn retrying(command: &str) -> String {
    format!("timeout {RETRY_SECONDS} sh -c 'until {command}; do sleep 2; done'")
}
