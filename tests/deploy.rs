//! Deployment glue run for real: the Ansible playbook (syntax check, then a local run into
//! a temporary root), the NixOS module (evaluated by nix-instantiate), and a downstream crate
//! whose build.rs uses `cpgen::build`.

mod util;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cpgen::bundle::Bundle;
use cpgen::Plan;

fn bundle_of(example: &str) -> (Plan, Bundle, tempfile::TempDir) {
    let plan = util::plan_from(&util::example_text(example));
    let bundle = util::fresh_bundle(&plan);
    let dir = tempfile::tempdir().unwrap();
    bundle
        .write_dir(
            camino::Utf8Path::from_path(&dir.path().join("bundle")).unwrap(),
            cpgen::bundle::WriteMode::CreateNew,
        )
        .unwrap();
    (plan, bundle, dir)
}

fn run(command: &mut Command, package: &str) -> Output {
    let program = command.get_program().to_string_lossy().into_owned();
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}); install the Debian package `{package}` (scripts/test does)"))
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Every regular file under `root`: relative path → (mode, contents).
fn tree(root: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned();
                let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                files.insert(relative, (mode, std::fs::read(&path).unwrap()));
            }
        }
    }
    files
}

fn ansible(bundle_root: &Path, home: &Path) -> Command {
    let mut command = Command::new("ansible-playbook");
    command
        .current_dir(bundle_root)
        .env("HOME", home)
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_LOCAL_TEMP", home.join("ansible-tmp"))
        .args([
            "-i",
            "deploy/ansible/inventory.ini",
            "deploy/ansible/playbook.yml",
        ]);
    command
}

#[test]
fn the_playbook_installs_every_hosts_tree_with_its_modes() {
    for example in ["on-masters-vip", "ipv6"] {
        let (plan, bundle, dir) = bundle_of(example);
        let bundle_root = dir.path().join("bundle");
        let check = run(
            ansible(&bundle_root, dir.path()).arg("--syntax-check"),
            "ansible-core",
        );
        assert!(check.status.success(), "{example}: {}", text(&check));

        let root = dir.path().join("root");
        let out = run(
            ansible(&bundle_root, dir.path())
                .args(["-c", "local", "--skip-tags", "services"])
                .arg(format!(
                    "-e cpgen_root={}/{{{{ inventory_hostname }}}}",
                    root.display()
                )),
            "ansible-core",
        );
        assert!(out.status.success(), "{example}: {}", text(&out));
        let hosts: Vec<&str> = plan.hosts().map(|h| h.name().as_str()).collect();
        for host in hosts {
            let expected: BTreeMap<String, (u32, Vec<u8>)> = bundle
                .files()
                .filter(|(_, f)| f.host.as_ref().is_some_and(|h| h.as_str() == host))
                .map(|(_, f)| {
                    (
                        f.target.clone().unwrap().trim_start_matches('/').to_owned(),
                        (f.mode(), f.contents.clone()),
                    )
                })
                .collect();
            let installed = tree(&root.join(host));
            let names =
                |m: &BTreeMap<String, (u32, Vec<u8>)>| m.keys().cloned().collect::<Vec<_>>();
            assert_eq!(
                names(&installed),
                names(&expected),
                "{example} {host}: the file lists differ"
            );
            for (path, (mode, contents)) in &expected {
                assert_eq!(installed[path].0, *mode, "{example} {host} {path}: mode");
                assert!(
                    installed[path].1 == *contents,
                    "{example} {host} {path}: contents"
                );
            }
        }
    }
}

#[test]
fn the_playbook_starts_services_in_order_under_one_tag() {
    let (_, bundle, _) = bundle_of("separate-cas");
    let playbook =
        String::from_utf8_lossy(&bundle.get("deploy/ansible/playbook.yml").unwrap().contents)
            .into_owned();
    let position = |needle: &str| {
        playbook
            .find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in\n{playbook}"))
    };
    assert!(position("name: etcd") < position("name: kube-apiserver"));
    assert!(position("name: kube-apiserver") < position("name: kube-controller-manager"));
    assert!(position("name: kube-scheduler") < position("name: haproxy"));
    // Four start plays and two rolls (masters, then the load balancer machine).
    assert_eq!(playbook.matches("tags: [services]").count(), 6);
    let inventory =
        String::from_utf8_lossy(&bundle.get("deploy/ansible/inventory.ini").unwrap().contents)
            .into_owned();
    assert!(
        inventory.contains("[masters]\nkubem00 ansible_host=10.10.10.80"),
        "{inventory}"
    );
    assert!(
        inventory.contains("[load_balancers]\nkubernetes ansible_host=10.10.10.2"),
        "{inventory}"
    );
}

/// A stand-in for nixpkgs' `lib` and `pkgs`: the module needs only these, so
/// nix-instantiate can evaluate it without a nixpkgs checkout (none can be fetched here).
const NIX_STUBS: &str = r#"
  lib = {
    mkOption = option: option;
    mkIf = condition: value: if condition then value else { };
    types = { str = "str"; };
    concatStringsSep = builtins.concatStringsSep;
    concatMap = f: list: builtins.concatLists (map f list);
    mapAttrs = builtins.mapAttrs;
  };
  pkgs = { etcd = "/nix/store/etcd"; kubernetes = "/nix/store/kubernetes"; haproxy = "/nix/store/haproxy"; keepalived = "/nix/store/keepalived"; };
"#;

fn nix_eval(module: &Path, host: &str) -> serde_json::Value {
    let expression = format!(
        "let {NIX_STUBS} config = {{ networking.hostName = \"{host}\"; services.cpgen.bundle = \"/srv/bundle\"; }}; \
         in (import {} {{ inherit lib pkgs config; }}).config",
        module.display()
    );
    let out = run(
        Command::new("nix-instantiate").args(["--eval", "--strict", "--json", "-E", &expression]),
        "nix-bin",
    );
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_nixos_module_evaluates_to_each_hosts_files_and_services() {
    let (plan, bundle, dir) = bundle_of("on-masters-vip");
    let module: PathBuf = dir.path().join("bundle/deploy/nix/module.nix");
    let parse = run(
        Command::new("nix-instantiate").arg("--parse").arg(&module),
        "nix-bin",
    );
    assert!(parse.status.success(), "{}", text(&parse));

    let master = plan.masters()[1].name().as_str();
    let config = nix_eval(&module, master);
    let rules: Vec<&str> = config["systemd"]["tmpfiles"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let host_files: Vec<_> = bundle
        .files()
        .filter(|(_, f)| f.host.as_ref().is_some_and(|h| h.as_str() == master))
        .filter(|(_, f)| {
            !f.target
                .as_deref()
                .unwrap()
                .starts_with("/etc/systemd/system/")
        })
        .collect();
    for (path, file) in &host_files {
        let target = file.target.as_deref().unwrap();
        assert!(
            rules.contains(&format!("C+ {target} - - - - /srv/bundle/{path}").as_str()),
            "no copy rule for {path}"
        );
        assert!(
            rules.contains(&format!("z {target} {:04o} root root -", file.mode()).as_str()),
            "no mode rule for {path}"
        );
    }
    let services = config["systemd"]["services"].as_object().unwrap();
    let names: Vec<&str> = services.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "etcd",
            "haproxy",
            "keepalived",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler"
        ]
    );
    let etcd = services["etcd"]["serviceConfig"]["ExecStart"]
        .as_str()
        .unwrap();
    let unit = String::from_utf8_lossy(
        &bundle
            .get(&format!("hosts/{master}/etc/systemd/system/etcd.service"))
            .unwrap()
            .contents,
    )
    .into_owned();
    let joined = unit.replace("\\\n", " ");
    let exec = joined
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .unwrap();
    let unit_args: Vec<&str> = exec.split_whitespace().skip(1).collect();
    assert_eq!(
        etcd,
        format!("/nix/store/etcd/bin/etcd {}", unit_args.join(" ")),
        "the service runs the generated unit's arguments"
    );
    assert_eq!(
        services["kube-apiserver"]["serviceConfig"]["Type"],
        "notify"
    );

    // A machine that is not in the cluster gets nothing.
    let stranger = nix_eval(&module, "not-in-this-cluster");
    assert_eq!(stranger, serde_json::json!({}));
}

/// Builds `examples/build-script/` (copied, with `config` as its cluster.toml) against this
/// checkout of cpgen.
fn build_example(config: &str) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("cluster-constants");
    let copied = Command::new("cp")
        .arg("-r")
        .arg(util::root().join("examples/build-script"))
        .arg(&crate_dir)
        .status()
        .unwrap();
    assert!(copied.success());
    let manifest = crate_dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap().replace(
        "path = \"../../crates/cpgen\"",
        &format!(
            "path = {:?}",
            util::root().join("crates/cpgen").display().to_string()
        ),
    );
    std::fs::write(&manifest, text).unwrap();
    std::fs::write(crate_dir.join("cluster.toml"), config).unwrap();
    let _ = std::fs::remove_file(crate_dir.join("cluster.secrets.toml"));
    let output = Command::new(env!("CARGO"))
        // --locked: the example's Cargo.lock must be current, as a user's would be.
        .args(["run", "--quiet", "--offline", "--locked"])
        .current_dir(&crate_dir)
        // Its own target directory: the outer cargo holds the lock on ours.
        .env(
            "CARGO_TARGET_DIR",
            util::root().join("target/build-script-example"),
        )
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    (output, dir)
}

#[test]
fn a_build_script_compiles_the_clusters_constants_or_fails_on_its_diagnostics() {
    let valid =
        std::fs::read_to_string(util::root().join("examples/build-script/cluster.toml")).unwrap();
    let (out, dir) = build_example(&valid);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in [
        "cluster=example",
        "api=https://127.0.1.2:6443",
        "etcd=https://127.0.1.80:2379,https://127.0.1.81:2379,https://127.0.1.82:2379",
        "ca_first_line=-----BEGIN CERTIFICATE-----",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "{line:?} missing in\n{stdout}"
        );
    }
    assert!(
        dir.path()
            .join("cluster-constants/cluster.secrets.toml")
            .exists(),
        "the secrets file lives beside the config"
    );

    let invalid = valid.replace("address = \"127.0.1.81\"", "address = \"127.0.1.80\"");
    let (out, _dir) = build_example(&invalid);
    assert!(
        !out.status.success(),
        "an invalid cluster must fail the build"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error[CP103]"), "{stderr}");
    assert!(
        stderr.contains("cluster.toml:14:11"),
        "the error names file, line and column:\n{stderr}"
    );
}

/// Stand-ins for systemctl, etcdctl and kubectl, first on `PATH`: each logs its arguments to
/// `CPGEN_LOG`, so the playbook runs for real while no service starts and nothing dials the
/// cluster's addresses. systemctl says every unit is loaded, enabled and active.
fn stand_ins(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = "echo \"$(basename \"$0\") $*\" >> \"$CPGEN_LOG\"";
    // Every host runs here, so no stand-in can tell whose unit is asked about: each says
    // active (a start is then a no-op; the step shows as its is-enabled query).
    let systemctl = format!(
        "#!/bin/sh\n{log}\ncase \"$1\" in\n  \
         show) printf 'Id=%s\\nNames=%s\\nLoadState=loaded\\nActiveState=active\\nUnitFileState=enabled\\n' \"$2\" \"$2\" ;;\n  \
         is-enabled) echo enabled ;;\nesac\nexit 0\n"
    );
    for (name, script) in [
        ("systemctl", systemctl),
        ("etcdctl", format!("#!/bin/sh\n{log}\nexit 0\n")),
        ("kubectl", format!("#!/bin/sh\n{log}\nexit 0\n")),
    ] {
        let path = bin.join(name);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

/// Runs the playbook of the bundle at `bundle` locally, every host into `root/<host>`, with
/// the stand-ins; returns what they logged, minus systemctl's queries.
fn play(bundle: &Path, root: &Path, work: &Path) -> Vec<String> {
    play_with_output(bundle, root, work).0
}

/// [`play`], with ansible's own output.
fn play_with_output(bundle: &Path, root: &Path, work: &Path) -> (Vec<String>, String) {
    let log = work.join("calls.log");
    let _ = std::fs::remove_file(&log);
    let path = format!(
        "{}:{}",
        stand_ins(work).display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = run(
        ansible(bundle, work)
            .env("PATH", path)
            .env("CPGEN_LOG", &log)
            .args(["-c", "local"])
            .arg(format!(
                "-e cpgen_root={}/{{{{ inventory_hostname }}}}",
                root.display()
            )),
        "ansible-core",
    );
    assert!(out.status.success(), "{}", text(&out));
    let calls = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with("systemctl show"))
        .map(str::to_owned)
        .collect();
    (calls, text(&out))
}

/// The calls of `log` that act: systemctl start/restart/stop, etcdctl and kubectl.
fn acts(log: &[String]) -> Vec<&str> {
    log.iter()
        .map(String::as_str)
        .filter(|l| !l.starts_with("systemctl daemon-reload"))
        .filter(|l| !l.starts_with("systemctl is-enabled"))
        .collect()
}

#[test]
fn a_second_bundle_restarts_exactly_the_units_whose_files_changed_one_master_at_a_time() {
    let dir = util::dir_with_config("seed-ha");
    let work = dir.path();
    let out = util::cpgen_in(work, &["bundle", "cluster.toml", "--out-dir", "v1"]);
    assert!(out.status.success(), "{}", util::stderr(&out));
    let root = work.join("root");

    // A first install starts everything in order and restarts nothing.
    let first = play(&work.join("v1"), &root, work);
    let enabled: Vec<&str> = first
        .iter()
        .filter_map(|l| l.strip_prefix("systemctl is-enabled "))
        .map(|l| l.trim_end_matches(" -l"))
        .collect();
    let mut order = enabled.clone();
    order.dedup();
    assert_eq!(
        order,
        [
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "haproxy"
        ]
    );
    assert_eq!(acts(&first), Vec::<&str>::new(), "nothing restarts");

    // One more SAN re-issues the apiservers' certificates; the health check rewrites
    // haproxy.cfg. Nothing else reads a changed file.
    let config = util::example_text("seed-ha")
        .replace("extra_sans = []", "extra_sans = [\"api.example.test\"]")
        .replace("health_check = \"tcp\"", "health_check = \"https-readyz\"");
    let out = util::bundle_config(work, &config, "cluster.secrets.toml", "v2", None);
    assert!(out.status.success(), "{}", util::stderr(&out));
    let out = util::cpgen(&[
        "diff",
        work.join("v1").to_str().unwrap(),
        work.join("v2").to_str().unwrap(),
        "--format",
        "json",
    ]);
    let diff: serde_json::Value = serde_json::from_str(&util::stdout(&out)).unwrap();
    let restarts_by_diff: Vec<String> = diff["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h["restart"].as_array().unwrap().clone())
        .map(|u| {
            format!(
                "systemctl restart {}",
                u.as_str().unwrap().trim_end_matches(".service")
            )
        })
        .collect();

    let second = play(&work.join("v2"), &root, work);
    let restarts: Vec<&str> = acts(&second)
        .into_iter()
        .filter(|l| l.starts_with("systemctl restart"))
        .collect();
    assert_eq!(
        restarts, restarts_by_diff,
        "the playbook restarts what diff says"
    );
    let readyz = |address: &str| {
        format!(
            "kubectl --kubeconfig admin/admin.kubeconfig --server https://{address}:6443 get --raw /readyz"
        )
    };
    assert_eq!(
        acts(&second),
        [
            "systemctl restart kube-apiserver".to_owned(),
            readyz("10.10.10.80"),
            "systemctl restart kube-apiserver".to_owned(),
            readyz("10.10.10.81"),
            "systemctl restart kube-apiserver".to_owned(),
            readyz("10.10.10.82"),
            "systemctl restart haproxy".to_owned(),
            readyz("10.10.10.2"),
        ],
        "one master at a time, each ready before the next"
    );
}

/// What a step of `changes.json` leaves in the stand-ins' log, one call it must make.
fn trace_of(step: &serde_json::Value) -> String {
    let field = |name: &str| step[name].as_str().unwrap_or_default().to_owned();
    match step["action"].as_str().unwrap() {
        "install" => "systemctl daemon-reload".to_owned(),
        "etcd-member-add" => format!("member add {}", field("member")),
        "etcd-member-promote" => "member promote".to_owned(),
        "etcd-member-remove" => "member list".to_owned(),
        // The stand-in says every unit is active: a start or stop shows as its query.
        "start" | "stop" => format!("systemctl is-enabled {}", field("unit")),
        "restart" => format!("systemctl restart {}", field("unit")),
        // The wait's own command line, as etcdctl or kubectl received it.
        "wait" => {
            let command = field("command");
            let start = command
                .find("etcdctl ")
                .or_else(|| command.find("kubectl "))
                .unwrap();
            let end = command[start..]
                .find(';')
                .map_or(command.len(), |e| start + e);
            command[start..end].to_owned()
        }
        other => panic!("unknown action {other}"),
    }
}

#[test]
fn with_changes_json_the_playbook_follows_its_steps_in_order() {
    let dir = util::dir_with_config("seed-ha");
    let work = dir.path();
    let out = util::cpgen_in(work, &["bundle", "cluster.toml", "--out-dir", "v1"]);
    assert!(out.status.success(), "{}", util::stderr(&out));
    let root = work.join("root");

    // kubem03 replaces kubem02, which the new inventory no longer lists.
    let config = util::example_text("seed-ha").replace(
        "name = \"kubem02\"\naddress = \"10.10.10.82\"",
        "name = \"kubem03\"\naddress = \"10.10.10.83\"",
    );
    let out = util::bundle_config(work, &config, "cluster.secrets.toml", "v2", Some("v1"));
    assert!(out.status.success(), "{}", util::stderr(&out));
    let changes: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.join("v2/changes.json")).unwrap()).unwrap();
    let steps = changes["steps"].as_array().unwrap();

    let (log, output) = play_with_output(&work.join("v2"), &root, work);
    // Every step's call, in the steps' order (a step may make more calls, e.g. etcdctl's
    // `member list` before `member add`).
    let mut rest = log.iter();
    for (index, step) in steps.iter().enumerate() {
        let trace = trace_of(step);
        assert!(
            rest.any(|call| call.contains(&trace)),
            "step {index} ({step}): no {trace:?} after the previous step's call in\n{}",
            log.join("\n")
        );
    }
    // The steps are the roll: nothing restarts or starts but what they say.
    let acted = |verb: &str| log.iter().filter(|l| l.starts_with(verb)).count();
    let stepped = |action: &str| steps.iter().filter(|s| s["action"] == action).count();
    assert_eq!(acted("systemctl restart"), stepped("restart"));
    // The start plays name units without `.service`; the steps with it.
    assert!(
        log.iter()
            .filter(|l| l.starts_with("systemctl is-enabled"))
            .all(|l| l.contains(".service")),
        "{}",
        log.join("\n")
    );
    // The new master's files are installed under its own root.
    assert!(root
        .join("kubem03/etc/systemd/system/etcd.service")
        .is_file());
    // The master that left is reached at its address, the others by their inventory names.
    assert!(
        output.contains("[localhost -> 10.10.10.82]")
            && output.contains("[localhost -> kubem03(10.10.10.83)]"),
        "{output}"
    );
    assert!(!output.contains("-> kubem02"), "{output}");
}
