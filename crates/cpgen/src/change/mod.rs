//! Day 2: the bundle for a change to a running cluster (`cpgen bundle --previous`). The
//! config states the target; the deployed bundle says what runs now. Out comes the target's
//! bundle, in which joining etcd members join a running cluster, plus its runbook
//! (`changes.json`): members join and leave one at a time, changed services restart host by
//! host.

mod members;
mod runbook;

use std::collections::{BTreeMap, BTreeSet};

use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;
use time::OffsetDateTime;

use crate::bundle::manifest::{Header, MANIFEST};
use crate::bundle::{Bundle, FileKind};
use crate::diag::{Code, Diagnostic, Severity};
use crate::diff::{self, BundleDiff};
pub use crate::error::PreviousProblem;
use crate::layout::{CHANGES, README};
use crate::pki::{Authority, Ca, Secrets};
use crate::plan::{EtcdJoin, JoinState, Plan};
use crate::render::changes::{changes_section, RunbookLine};
use crate::render::paths::{
    trust_file_ca, APISERVER_UNIT, ETCD_UNIT, HAPROXY_UNIT, KEEPALIVED_UNIT, SA_PUB, SYSTEMD, UNITS,
};
use crate::verify::source::{read_bundle, Entry, Tree};
use crate::verify::{parse_unit, verify_tree};
use crate::Error;

use members::{Member, Move, Unsafe};
use runbook::{At, Check, Ports, Runbook, Step, Verb};

/// The bundle that runs now, read and audited.
#[derive(Debug)]
pub struct Deployed {
    path: Utf8PathBuf,
    tree: Tree,
    header: Header,
}

impl Deployed {
    /// Reads the deployed bundle at `path` (a `.tar.gz` or a directory) and audits it as of
    /// `at`: one that does not verify is refused, as a change computed from it could not be
    /// trusted. Expired certificates are no reason to refuse: renewing them is a change.
    pub fn read(path: &Utf8Path, at: OffsetDateTime) -> Result<Deployed, Error> {
        let refuse = |problem| Error::Previous {
            path: path.to_owned(),
            problem,
        };
        let mut findings = Vec::new();
        let tree = read_bundle(path, &mut findings)?;
        let report = verify_tree(&tree, None, at, findings);
        let errors: Vec<Diagnostic> = report
            .findings
            .into_iter()
            .filter(|f| f.severity == Severity::Error && f.code != Code::Expired)
            .collect();
        if !errors.is_empty() {
            return Err(refuse(PreviousProblem::DoesNotVerify(errors)));
        }
        let Some(manifest) = tree.files.get(MANIFEST) else {
            return Err(refuse(PreviousProblem::NoManifest));
        };
        let header = Header::read(&manifest.data);
        Ok(Deployed {
            path: path.to_owned(),
            tree,
            header,
        })
    }

    /// Refuses another cluster's config or secrets file before a key is added to the file:
    /// the CAs the secrets make must be the ones the deployed bundle's members trust (a
    /// new CA is a rotation, which has its own command).
    pub fn check_secrets(&self, plan: &Plan, secrets: &Secrets) -> Result<(), Error> {
        let refuse = |problem| Error::Previous {
            path: self.path.clone(),
            problem,
        };
        if self.header.cluster() != plan.cluster.name.as_str() {
            return Err(refuse(PreviousProblem::OtherCluster {
                deployed: self.header.cluster().to_owned(),
                config: plan.cluster.name.to_string(),
            }));
        }
        if let Some(ca) = Ca::all_in(plan.pki.layout)
            .into_iter()
            .find(|ca| secrets.public_key(ca.id()).is_err())
        {
            return Err(refuse(PreviousProblem::NoCaKey { ca: ca.name() }));
        }
        let certs = Authority::new(plan, secrets)?.cert_set(Vec::new())?;
        for (path, entry) in &self.tree.files {
            let target = match trust_of(path) {
                Some(Trust::Ca(ca)) => certs.trust(ca),
                Some(Trust::ServiceAccount) => Some(certs.service_account_public_pem.as_str()),
                None => continue,
            };
            let target = target.map(str::as_bytes).unwrap_or_default();
            trust_step(&entry.data, target).map_err(|step| {
                refuse(match step {
                    TrustStep::Disjoint => PreviousProblem::OtherCa { file: path.clone() },
                    TrustStep::DeployedSignerDropped => PreviousProblem::RotationSkipped {
                        file: path.clone(),
                        deployed_first: true,
                    },
                    TrustStep::SignerNotYetTrusted => PreviousProblem::RotationSkipped {
                        file: path.clone(),
                        deployed_first: false,
                    },
                })
            })?;
        }
        Ok(())
    }

    /// The etcd members it runs, in the manifest's order, with how each joined.
    fn etcd_members(&self) -> Vec<(Member, Option<EtcdJoin>)> {
        let with_etcd = self
            .header
            .members()
            .iter()
            .filter(|m| m.roles.iter().any(|r| r == "etcd"));
        with_etcd
            .filter_map(|m| {
                let path = format!("hosts/{}{SYSTEMD}/{ETCD_UNIT}", m.name);
                let entry = self.tree.files.get(&path)?;
                let unit = parse_unit(&path, &String::from_utf8_lossy(&entry.data))?;
                let peer_url = unit.flag("initial-advertise-peer-urls")?.to_owned();
                let url_host = peer_url
                    .strip_prefix("https://")
                    .and_then(|rest| rest.rsplit_once(':'))
                    .map(|(host, _)| host.to_owned())?;
                let member = Member {
                    name: m.name.clone(),
                    peer_url,
                    client_url: unit.flag("advertise-client-urls")?.to_owned(),
                    url_host,
                };
                let state = match unit.flag("initial-cluster-state") {
                    Some("existing") => JoinState::Existing,
                    _ => JoinState::New,
                };
                let join = unit.flag("initial-cluster").map(|cluster| EtcdJoin {
                    state,
                    initial_cluster: cluster.to_owned(),
                });
                Some((member, join))
            })
            .collect()
    }
}

/// Masters added or removed since a secrets file was made, as its keys show: without the
/// deployed bundle, a bundle would bootstrap them as a new cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MembershipSinceSecrets {
    /// Masters that got their keys just now.
    pub added: Vec<String>,
    /// Masters with keys that the config no longer has.
    pub removed: Vec<String>,
}

impl MembershipSinceSecrets {
    /// The change, if any: `new_keys` are the identities that filling `secrets` for `plan`
    /// added (an existing file's; a new file has no history).
    pub fn of(plan: &Plan, secrets: &Secrets, new_keys: &[String]) -> Option<Self> {
        let masters: BTreeSet<&str> = plan.masters.iter().map(|m| m.name.as_str()).collect();
        let known = secrets.etcd_member_names();
        let added: Vec<String> = masters
            .iter()
            .filter(|m| new_keys.iter().any(|k| k.ends_with(&format!("/{m}"))))
            .map(|m| (*m).to_owned())
            .collect();
        let removed: Vec<String> = known
            .into_iter()
            .filter(|k| !masters.contains(k.as_str()))
            .collect();
        (!added.is_empty() || !removed.is_empty())
            .then_some(MembershipSinceSecrets { added, removed })
    }
}

/// The etcd member a master of `plan` is.
fn planned_member(plan: &Plan, name: &str, url_host: &str) -> Member {
    Member {
        name: name.to_owned(),
        peer_url: format!("https://{url_host}:{}", plan.etcd.peer_port),
        client_url: format!("https://{url_host}:{}", plan.etcd.client_port),
        url_host: url_host.to_owned(),
    }
}

/// The target's bundle for a change from `deployed`, with `changes.json` and the runbook in
/// its README; refused for another cluster's bundle or a change etcd cannot make safely.
pub fn change_bundle(plan: &Plan, secrets: &Secrets, deployed: &Deployed) -> Result<Bundle, Error> {
    let refuse = |problem| Error::Previous {
        path: deployed.path.clone(),
        problem,
    };
    deployed.check_secrets(plan, secrets)?;
    let current = deployed.etcd_members();
    let target: Vec<Member> = plan
        .masters
        .iter()
        .map(|m| planned_member(plan, m.name.as_str(), &m.address.url_host()))
        .collect();
    let now: Vec<Member> = current.iter().map(|(m, _)| m.clone()).collect();
    let moves = members::moves(&now, &target).map_err(|unsafe_change| {
        refuse(match unsafe_change {
            Unsafe::LastMember { member } => PreviousProblem::LastMember { member },
            Unsafe::TwoMembers { member } => PreviousProblem::TwoMembers { member },
            Unsafe::AddressInUse {
                member,
                address,
                holder,
            } => PreviousProblem::AddressInUse {
                member,
                address,
                holder,
            },
        })
    })?;
    let mut changed = plan.clone();
    changed.etcd.joins = joins(&current, &moves);
    let mut bundle = Bundle::build(&changed, secrets)?;
    let difference = diff::diff_trees(&deployed.tree, &tree_of(&bundle));
    let steps = steps(&changed, deployed, &moves, &difference);
    let mut json = serde_json::to_vec_pretty(&Changes { steps: &steps })
        .map_err(|_| Error::Internal("the runbook does not serialize"))?;
    json.push(b'\n');
    bundle.insert(CHANGES, FileKind::Config, json);
    let readme = with_changes(
        bundle.get(README).map(|f| f.contents.as_slice()),
        &changed,
        &steps,
    )?;
    bundle.insert(README, FileKind::Readme, readme);
    bundle.with_manifest()
}

fn with_changes(readme: Option<&[u8]>, plan: &Plan, steps: &[Step]) -> Result<Vec<u8>, Error> {
    let lines: Vec<RunbookLine> = steps
        .iter()
        .map(|step| RunbookLine {
            action: step.action.word().to_owned(),
            host: step.action.host().to_owned(),
            why: step.why.clone(),
            command: step.command.clone(),
        })
        .collect();
    let mut text = readme.unwrap_or_default().to_vec();
    text.extend(changes_section(&lines, plan.etcd.data_dir.as_str())?.into_bytes());
    Ok(text)
}

#[derive(Serialize)]
struct Changes<'a> {
    steps: &'a [Step],
}

/// Each target member's join: a kept member keeps the one it has (etcd read it on its first
/// start; changing it would only restart it for nothing); a joining member joins the
/// running cluster with the membership at its join.
fn joins(current: &[(Member, Option<EtcdJoin>)], moves: &[Move]) -> BTreeMap<String, EtcdJoin> {
    let mut joins: BTreeMap<String, EtcdJoin> = current
        .iter()
        .filter_map(|(m, join)| Some((m.name.clone(), join.clone()?)))
        .collect();
    for change in moves {
        match change {
            Move::Join { member, voters } => {
                let cluster: Vec<String> = voters
                    .iter()
                    .map(|v| format!("{}={}", v.name, v.peer_url))
                    .collect();
                joins.insert(
                    member.name.clone(),
                    EtcdJoin {
                        state: JoinState::Existing,
                        initial_cluster: cluster.join(","),
                    },
                );
            }
            Move::Leave { member, .. } => {
                joins.remove(&member.name);
            }
        }
    }
    joins
}

/// The bundle's files as verify and diff read a tree.
fn tree_of(bundle: &Bundle) -> Tree {
    Tree {
        files: bundle
            .files()
            .map(|(path, file)| {
                let entry = Entry {
                    mode: file.mode(),
                    data: file.contents.clone(),
                };
                (path.to_owned(), entry)
            })
            .collect(),
    }
}

/// What a trust file of a bundle trusts.
enum Trust {
    Ca(Ca),
    /// `sa.pub`: the keys that check service-account tokens.
    ServiceAccount,
}

fn trust_of(path: &str) -> Option<Trust> {
    let service_account = path.starts_with("hosts/") && path.ends_with(SA_PUB);
    trust_file_ca(path)
        .map(Trust::Ca)
        .or(service_account.then_some(Trust::ServiceAccount))
}

/// Why a trust file cannot go from the deployed bundle's to the target's in one roll.
enum TrustStep {
    /// Nothing in common: another cluster's, or other secrets.
    Disjoint,
    /// What signs the deployed certificates (or tokens) is no longer trusted.
    DeployedSignerDropped,
    /// What signs the target's is not trusted by the deployed bundle yet.
    SignerNotYetTrusted,
}

/// While a bundle rolls out host by host, hosts of both bundles talk to each other: each
/// side's signer (the first certificate or key of a trust file) must be trusted by the
/// other. That is what makes a rotation's stages safe, and what a skipped stage breaks.
fn trust_step(deployed: &[u8], target: &[u8]) -> Result<(), TrustStep> {
    let blocks = |data: &[u8]| -> Vec<Vec<u8>> {
        pem::parse_many(data)
            .unwrap_or_default()
            .into_iter()
            .map(pem::Pem::into_contents)
            .collect()
    };
    let (deployed, target) = (blocks(deployed), blocks(target));
    if !deployed.iter().any(|d| target.contains(d)) {
        return Err(TrustStep::Disjoint);
    }
    match (deployed.first(), target.first()) {
        (Some(signer), _) if !target.contains(signer) => Err(TrustStep::DeployedSignerDropped),
        (_, Some(signer)) if !deployed.contains(signer) => Err(TrustStep::SignerNotYetTrusted),
        _ => Ok(()),
    }
}

/// The address of host `name`, as a URL's host: from the target, else from the deployed
/// bundle (a host that goes).
fn url_host(plan: &Plan, deployed: &Deployed, name: &str) -> String {
    let planned = plan
        .hosts()
        .find(|h| h.name.as_str() == name)
        .map(|h| h.address.url_host());
    let deployed = || {
        let member = deployed.header.members().iter().find(|m| m.name == name)?;
        let address = member.address.as_str();
        Some(if address.contains(':') {
            format!("[{address}]")
        } else {
            address.to_owned()
        })
    };
    planned.or_else(deployed).unwrap_or_else(|| name.to_owned())
}

/// The runbook: members that join (and members that move) first, then every other host
/// whose files changed, one at a time, then members that go, once nothing dials them.
fn steps(plan: &Plan, deployed: &Deployed, moves: &[Move], difference: &BundleDiff) -> Vec<Step> {
    let ports = Ports {
        etcd_client: plan.etcd.client_port.get(),
        apiserver: plan.api.bind_port.get(),
        load_balancer: plan.load_balancer.bind_port.get(),
    };
    let mut book = Runbook::new(ports, plan.etcd.data_dir.as_str());
    let target: BTreeMap<&str, Member> = plan
        .masters
        .iter()
        .map(|m| {
            (
                m.name.as_str(),
                planned_member(plan, m.name.as_str(), &m.address.url_host()),
            )
        })
        .collect();
    let goes = |change: &&Move| matches!(change, Move::Leave { member, .. } if !target.contains_key(member.name.as_str()));
    let parts: BTreeMap<&str, &diff::PartDiff> = difference
        .parts
        .iter()
        .filter_map(|part| Some((part.part.host()?, part)))
        .collect();
    let mut joined = BTreeSet::new();
    for change in moves.iter().filter(|c| !goes(c)) {
        book.member(change);
        if let Move::Join { member, .. } = change {
            joined.insert(member.name.as_str());
            // What else the new master runs (HAProxy and keepalived on masters).
            if let Some(part) = parts.get(member.name.as_str()) {
                for unit in part.units.start.iter().map(ToString::to_string) {
                    if unit != ETCD_UNIT && !UNITS.contains(&unit.as_str()) {
                        book.unit(
                            Verb::Start,
                            member.at(),
                            &unit,
                            "the new master's part of the load balancer",
                        );
                    }
                }
            }
        }
    }
    let leaving: BTreeSet<&str> = moves
        .iter()
        .filter(goes)
        .filter_map(|change| match change {
            Move::Leave { member, .. } => Some(member.name.as_str()),
            Move::Join { .. } => None,
        })
        .collect();
    // A machine that leaves the cluster (a load balancer) stops before the others restart
    // without it: the apiservers' new certificates no longer name it, and a keepalived that
    // stops first hands its VIP to a machine that stays.
    let in_plan: BTreeSet<&str> = plan.hosts().map(|h| h.name.as_str()).collect();
    let mut rolled: Vec<(&&str, &&diff::PartDiff)> = parts
        .iter()
        .filter(|(host, _)| !joined.contains(*host) && !leaving.contains(*host))
        .collect();
    rolled.sort_by_key(|(host, _)| in_plan.contains(**host));
    for (host, part) in rolled {
        let address = url_host(plan, deployed, host);
        let at = At {
            host,
            url_host: &address,
        };
        roll(&mut book, at, part);
    }
    // Once the roll is done, the members that stay answer at their new client URLs.
    for change in moves.iter().filter(goes) {
        book.member(&with_target_urls(change, &target));
    }
    book.into_steps()
}

/// `change` with each voter's client URL as the target has it.
fn with_target_urls(change: &Move, target: &BTreeMap<&str, Member>) -> Move {
    let update = |voters: &[Member]| -> Vec<Member> {
        voters
            .iter()
            .map(|v| {
                target
                    .get(v.name.as_str())
                    .cloned()
                    .unwrap_or_else(|| v.clone())
            })
            .collect()
    };
    match change {
        Move::Join { member, voters } => Move::Join {
            member: member.clone(),
            voters: update(voters),
        },
        Move::Leave { member, voters } => Move::Leave {
            member: member.clone(),
            voters: update(voters),
        },
    }
}

/// One host's part of the roll: its files, then each unit to stop, start or restart, with
/// a wait after the services others depend on.
fn roll(book: &mut Runbook, at: At<'_>, part: &diff::PartDiff) {
    let units = &part.units;
    if !part.added.is_empty() || !part.changed.is_empty() {
        book.install(at, "its files changed");
    }
    for unit in &units.stop {
        book.unit(
            Verb::Stop,
            at,
            &unit.to_string(),
            "the new bundle has no such unit on this host",
        );
    }
    let ordered = |names: &[diff::UnitName]| {
        let mut names: Vec<String> = names.iter().map(ToString::to_string).collect();
        names.sort_by_key(|n| UNITS.iter().position(|u| u == n).unwrap_or(UNITS.len()));
        names
    };
    for unit in ordered(&units.start) {
        book.unit(Verb::Start, at, &unit, "new on this host");
        wait_after(book, at, &unit);
    }
    for unit in ordered(&units.restart) {
        book.unit(Verb::Restart, at, &unit, "it, or a file it reads, changed");
        wait_after(book, at, &unit);
    }
}

/// The wait that lets the next host go: etcd healthy, the apiserver ready, the API through
/// a restarted load balancer.
fn wait_after(book: &mut Runbook, at: At<'_>, unit: &str) {
    match unit {
        ETCD_UNIT => book.wait(at, Check::EtcdHealthy),
        APISERVER_UNIT => book.wait(at, Check::ApiserverReady),
        HAPROXY_UNIT | KEEPALIVED_UNIT => book.wait(at, Check::LoadBalancerReady),
        _ => {}
    }
}
