//! What `cpgen bundle` and `cpgen init` may write over, remove or rename, and what they must
//! never touch: the project (config, secrets file, their directories), device nodes and
//! FIFOs; concurrent runs sharing one secrets file; a secrets file of another user; the
//! temporary files a killed run leaves behind.

mod util;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CA: &str = "hosts/kubem00/etc/kubernetes/pki/ca.pem";

fn run(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = util::cpgen_in(dir, args);
    (util::code(&out), util::stderr(&out))
}

/// Names in `dir` that start with `.cpgen-`.
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".cpgen-"))
        .collect()
}

fn mknod_null(path: &Path) {
    // The same device as /dev/null, made inside the test's own directory.
    let status = Command::new("mknod")
        .arg(path)
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    assert!(status.success(), "mknod (the tests run as root)");
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

fn is_char_device(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .map(|m| m.file_type().is_char_device())
        .unwrap_or(false)
}

/// A project with its secrets file made by a first bundle.
fn project() -> tempfile::TempDir {
    let dir = util::dir_with_config("separate-cas");
    let (code, err) = run(dir.path(), &["bundle", "cluster.toml", "-o", "b.tar.gz"]);
    assert_eq!(code, 0, "{err}");
    dir
}

#[test]
fn force_never_replaces_the_config_the_secrets_or_a_directory_holding_them() {
    let dir = project();
    let root = dir.path();
    let config = std::fs::read(root.join("cluster.toml")).unwrap();
    let secrets = std::fs::read(root.join("cluster.secrets.toml")).unwrap();
    let unchanged = || {
        assert_eq!(std::fs::read(root.join("cluster.toml")).unwrap(), config);
        assert_eq!(
            std::fs::read(root.join("cluster.secrets.toml")).unwrap(),
            secrets
        );
    };
    let absolute = root.to_str().unwrap();
    for (args, why) in [
        (vec!["-o", "cluster.secrets.toml"], "secrets file"),
        (vec!["-o", "cluster.toml"], "configuration"),
        (vec!["-o", "./sub/../cluster.toml"], "configuration"),
        (vec!["--out-dir", "."], "current directory"),
    ] {
        std::fs::create_dir_all(root.join("sub")).unwrap();
        let mut all = vec!["bundle", "cluster.toml"];
        all.extend(&args);
        all.push("--force");
        let (code, err) = run(root, &all);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(why), "{args:?}: {err}");
        unchanged();
        assert!(temporaries(root).is_empty(), "{:?}", temporaries(root));
    }

    // Not the current directory, but the one holding the config and the secrets file.
    let out = util::cpgen(&[
        "bundle",
        root.join("cluster.toml").to_str().unwrap(),
        "--out-dir",
        absolute,
        "--force",
    ]);
    assert_eq!(util::code(&out), 2, "{}", util::stderr(&out));
    assert!(util::stderr(&out).contains("configuration"));
    unchanged();

    // The config reached through a hard link or a symlinked directory is still the config.
    std::fs::hard_link(root.join("cluster.toml"), root.join("linked.tar.gz")).unwrap();
    std::os::unix::fs::symlink(root, root.join("here")).unwrap();
    for out in ["linked.tar.gz", "here/cluster.toml"] {
        let (code, err) = run(root, &["bundle", "cluster.toml", "-o", out, "--force"]);
        assert_eq!(code, 2, "{out}: {err}");
        assert!(err.contains("configuration"), "{out}: {err}");
        unchanged();
    }

    // A secrets file that would be created inside the directory being replaced.
    let (code, err) = run(root, &["bundle", "cluster.toml", "--out-dir", "tree"]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = run(
        root,
        &[
            "bundle",
            "cluster.toml",
            "--secrets",
            "tree/s.toml",
            "--out-dir",
            "tree",
            "--force",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("secrets file"), "{err}");
    assert!(!root.join("tree/s.toml").exists());
}

#[test]
fn out_dir_parent_of_the_project_is_refused() {
    let outer = tempfile::tempdir().unwrap();
    let proj = outer.path().join("proj");
    std::fs::create_dir(&proj).unwrap();
    std::fs::write(
        proj.join("cluster.toml"),
        util::example_text("separate-cas"),
    )
    .unwrap();
    let outer_path = outer.path().to_str().unwrap();
    for out_dir in ["..", outer_path] {
        let (code, err) = run(
            &proj,
            &["bundle", "cluster.toml", "--out-dir", out_dir, "--force"],
        );
        assert_eq!(code, 2, "{out_dir}: {err}");
        assert!(err.contains("current directory"), "{out_dir}: {err}");
        assert!(proj.join("cluster.toml").is_file(), "{out_dir}");
        assert!(temporaries(outer.path()).is_empty());
        assert!(temporaries(&proj).is_empty());
    }
}

#[test]
fn force_replaces_only_a_previous_bundle() {
    let dir = project();
    let root = dir.path();
    std::fs::create_dir(root.join("notes")).unwrap();
    std::fs::write(root.join("notes/todo.txt"), "keep me").unwrap();
    std::fs::write(root.join("plain"), "keep me too").unwrap();
    std::fs::write(root.join("notes.txt"), "and me").unwrap();
    for (args, why) in [
        (["--out-dir", "notes"], "not a cpgen bundle"),
        (["--out-dir", "plain"], "not a bundle directory"),
        (["-o", "notes.txt"], "not a .tar.gz"),
    ] {
        for force in [false, true] {
            let mut all = vec!["bundle", "cluster.toml"];
            all.extend(args);
            if force {
                all.push("--force");
            }
            let (code, err) = run(root, &all);
            assert_eq!(code, 2, "{args:?}: {err}");
            if force || args[0] == "--out-dir" && args[1] == "plain" {
                assert!(err.contains(why), "{args:?} force={force}: {err}");
            }
        }
    }
    assert_eq!(
        std::fs::read_to_string(root.join("notes/todo.txt")).unwrap(),
        "keep me"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("plain")).unwrap(),
        "keep me too"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("notes.txt")).unwrap(),
        "and me"
    );
    assert!(temporaries(root).is_empty(), "{:?}", temporaries(root));

    // A previous bundle, a file or a tree, is replaced, and nothing is left beside it.
    for args in [["-o", "b.tar.gz"], ["--out-dir", "tree"]] {
        let mut all = vec!["bundle", "cluster.toml"];
        all.extend(args);
        let (code, err) = run(root, &all);
        assert!(code == 0 || args[0] == "-o", "{err}");
        all.push("--force");
        let (code, err) = run(root, &all);
        assert_eq!(code, 0, "{args:?}: {err}");
    }
    assert!(root.join("tree/manifest.json").is_file());
    assert!(temporaries(root).is_empty(), "{:?}", temporaries(root));
}

#[test]
fn a_device_node_is_written_into_never_replaced() {
    let dir = project();
    let root = dir.path();
    let node = root.join("null");
    mknod_null(&node);
    for force in [false, true] {
        let mut args = vec!["bundle", "cluster.toml", "-o", "null"];
        if force {
            args.push("--force");
        }
        let (code, err) = run(root, &args);
        assert_eq!(code, 0, "{err}");
        assert!(is_char_device(&node), "the device node was replaced");
    }
    let (code, err) = run(
        root,
        &["bundle", "cluster.toml", "--out-dir", "null", "--force"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(is_char_device(&node));
    let (code, err) = run(root, &["init", "null"]);
    assert_eq!(code, 2, "{err}");
    assert!(is_char_device(&node));
    // A device node as the secrets file is refused, not read and not replaced.
    let (code, err) = run(
        root,
        &[
            "bundle",
            "cluster.toml",
            "--secrets",
            "null",
            "-o",
            "x.tar.gz",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a regular file"), "{err}");
    assert!(is_char_device(&node));
    assert!(temporaries(root).is_empty(), "{:?}", temporaries(root));
}

#[test]
fn a_fifo_gets_the_archive_and_is_never_read_as_secrets() {
    let dir = project();
    let root = dir.path();
    let fifo = root.join("pipe");
    mkfifo(&fifo);
    let (sender, received) = std::sync::mpsc::channel();
    {
        let fifo = fifo.clone();
        std::thread::spawn(move || sender.send(std::fs::read(fifo).unwrap()));
    }
    let (code, err) = run(root, &["bundle", "cluster.toml", "-o", "pipe", "--force"]);
    assert_eq!(code, 0, "{err}");
    // A reader left waiting means the FIFO was replaced, not written into.
    let bytes = received
        .recv_timeout(Duration::from_secs(20))
        .expect("the archive went into the FIFO");
    assert_eq!(bytes.get(..2), Some(&[0x1f, 0x8b][..]), "a gzip stream");
    assert_eq!(bytes, std::fs::read(root.join("b.tar.gz")).unwrap());
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());

    // Reading secrets from a FIFO would hang: refused at once.
    let mut child = Command::new(env!("CARGO_BIN_EXE_cpgen"))
        .args([
            "bundle",
            "cluster.toml",
            "--secrets",
            "pipe",
            "-o",
            "y.tar.gz",
        ])
        .current_dir(root)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cpgen hangs reading secrets from a FIFO");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(2));
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
}

/// Starts four cpgen runs at once in `dir`, run `i` with `args(i)`, and checks that each
/// succeeds.
fn all_succeed_at_once(dir: &Path, args: impl Fn(usize) -> Vec<String>) {
    let children: Vec<_> = (0..4)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_cpgen"))
                .args(args(i))
                .current_dir(dir)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", util::stderr(&out));
    }
}

/// The kubernetes CA certificate in a bundle archive.
fn ca_of(archive: &Path) -> String {
    let mut findings = Vec::new();
    let tree =
        cpgen::test_support::read_archive(std::fs::File::open(archive).unwrap(), &mut findings);
    let pem = tree
        .files
        .get(CA)
        .unwrap_or_else(|| panic!("{} has no {CA}", archive.display()))
        .data
        .clone();
    String::from_utf8(pem).unwrap()
}

#[test]
fn concurrent_runs_share_one_pki() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // RSA keys make key generation long enough for the runs to overlap.
    let text = util::example_text("separate-cas") + "[pki]\nkey_algorithm = \"rsa-2048\"\n";
    std::fs::write(root.join("cluster.toml"), &text).unwrap();
    all_succeed_at_once(root, |i| {
        vec![
            "bundle".into(),
            "cluster.toml".into(),
            "-o".into(),
            format!("b{i}.tar.gz"),
        ]
    });
    let secrets_text = std::fs::read_to_string(root.join("cluster.secrets.toml")).unwrap();
    let secrets = cpgen::pki::Secrets::parse(&secrets_text).unwrap();
    let plan = util::plan_from(&text);
    let from_secrets = cpgen::bundle::Bundle::build(&plan, &secrets).unwrap();
    let expected = String::from_utf8(from_secrets.get(CA).unwrap().contents.clone()).unwrap();
    for i in 0..4 {
        assert_eq!(
            ca_of(&root.join(format!("b{i}.tar.gz"))),
            expected,
            "bundle {i} carries a CA whose key is not in the secrets file"
        );
    }
    assert!(temporaries(root).is_empty(), "{:?}", temporaries(root));
}

#[test]
fn a_secrets_file_of_another_user_is_refused_naming_the_owner() {
    let dir = project();
    let root = dir.path();
    let secrets = root.join("cluster.secrets.toml");
    let before = std::fs::read(&secrets).unwrap();
    std::os::unix::fs::chown(&secrets, Some(65534), Some(65534)).unwrap();
    let (code, err) = run(root, &["bundle", "cluster.toml", "-o", "c.tar.gz"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("owned by"), "{err}");
    assert!(err.contains("65534"), "{err}");
    assert!(!root.join("c.tar.gz").exists());
    assert_eq!(std::fs::read(&secrets).unwrap(), before);
    assert_eq!(std::fs::metadata(&secrets).unwrap().uid(), 65534);
}

#[test]
fn a_config_directory_writable_by_others_is_warned_about() {
    let dir = project();
    let root = dir.path();
    let (code, err) = run(root, &["bundle", "cluster.toml", "-o", "quiet.tar.gz"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("writable"), "{err}");
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (code, err) = run(root, &["bundle", "cluster.toml", "-o", "c.tar.gz"]);
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("warning:"), "{err}");
    assert!(err.contains("writable by group or others"), "{err}");
}

#[test]
fn stale_temporaries_of_a_killed_run_are_reported_and_removed() {
    let dir = project();
    let root = dir.path();
    let old_file = ".cpgen-tmp-Ab3dEf6hIj9L";
    let old_dir = ".cpgen-stage-Zy8xWv7uTs6R";
    let foreign = ".cpgen-notes";
    std::fs::write(root.join(old_file), "half an archive").unwrap();
    std::fs::create_dir(root.join(old_dir)).unwrap();
    std::fs::write(root.join(old_dir).join("key.pem"), "half a key").unwrap();
    std::fs::write(root.join(foreign), "mine, not cpgen's").unwrap();
    // One still in use by a running cpgen (it holds a lock on it) is left alone.
    let busy = ".cpgen-tmp-Busy0Busy1Bu";
    std::fs::write(root.join(busy), "being written").unwrap();
    // flock(2) locks belong to the open file: held here, they bind the cpgen child too.
    let holder = std::fs::File::open(root.join(busy)).unwrap();
    rustix::fs::flock(
        &holder,
        rustix::fs::FlockOperation::NonBlockingLockExclusive,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(50));

    let (code, err) = run(root, &["bundle", "cluster.toml", "-o", "next.tar.gz"]);
    drop(holder);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(old_file), "{err}");
    assert!(err.contains(old_dir), "{err}");
    assert!(!root.join(old_file).exists());
    assert!(!root.join(old_dir).exists());
    // Not cpgen's naming: reported, never removed.
    assert!(err.contains(foreign), "{err}");
    assert_eq!(
        std::fs::read_to_string(root.join(foreign)).unwrap(),
        "mine, not cpgen's"
    );
    assert!(root.join(busy).exists());
    assert!(!err.contains(busy), "{err}");
}

#[test]
fn concurrent_forced_runs_into_one_new_directory_all_succeed() {
    let dir = project();
    let root = dir.path();
    all_succeed_at_once(root, |_| {
        ["bundle", "cluster.toml", "--out-dir", "tree", "--force"]
            .map(String::from)
            .to_vec()
    });
    assert!(root.join("tree/manifest.json").is_file());
    assert!(temporaries(root).is_empty(), "{:?}", temporaries(root));
}

#[test]
fn an_out_dir_spelled_with_a_last_dot_is_refused_with_the_name_to_use() {
    let dir = project();
    let root = dir.path();
    let (code, err) = run(root, &["bundle", "cluster.toml", "--out-dir", "tree"]);
    assert_eq!(code, 0, "{err}");
    for spelled in ["./tree/.", "tree/./", "tree/x/.."] {
        let (code, err) = run(
            root,
            &["bundle", "cluster.toml", "--out-dir", spelled, "--force"],
        );
        assert_eq!(code, 2, "{spelled}: {err}");
        assert!(
            err.contains("name the bundle directory itself"),
            "{spelled}: {err}"
        );
        assert!(root.join("tree/manifest.json").is_file(), "{spelled}");
    }
}
