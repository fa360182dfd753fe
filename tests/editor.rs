//! What operators' tools read from cpgen, checked by those tools: the JSON Schema by Python's
//! `jsonschema` (on each TOML file turned into JSON by Python's own `tomllib`), the bash
//! completion by bash, the man pages by groff, the version by git.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use util::{code, cpgen, stderr, stdout};

/// The Python of the test environment `scripts/test` makes, with `jsonschema`.
fn python() -> PathBuf {
    let venv = util::root().join("target/pkilint-venv/bin/python");
    let ready = Command::new(&venv)
        .args(["-c", "import jsonschema"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ready,
        "jsonschema is not installed: run scripts/test, which installs the PyPI package into target/pkilint-venv"
    );
    venv
}

/// Validates each TOML file against the schema: `ok`, `invalid: <reason>` or
/// `unreadable: <reason>` (not TOML at all), one line per file, in order.
const VALIDATE: &str = r#"
import json, sys, tomllib
import jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft7Validator.check_schema(schema)
validator = jsonschema.Draft7Validator(schema)
for path in sys.argv[2:]:
    try:
        document = tomllib.load(open(path, "rb"))
    except Exception as e:
        print(f"unreadable: {e}".replace("\n", " "))
        continue
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    if errors:
        print("invalid: " + errors[0].message.replace("\n", " "))
    else:
        print("ok")
"#;

/// The verdict of `jsonschema` on each file, under cpgen's schema.
fn verdicts(files: &[PathBuf]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("cluster.schema.json");
    let out = cpgen(&["schema"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    std::fs::write(&schema, out.stdout).unwrap();
    let out = Command::new(python())
        .arg("-c")
        .arg(VALIDATE)
        .arg(&schema)
        .args(files)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), files.len(), "{lines:?}");
    lines
}

fn tomls_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_and_the_starter_config_pass_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let starter = dir.path().join("cluster.toml");
    let out = cpgen(&["init", starter.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut files = tomls_in(&util::root().join("examples"));
    assert!(files.len() >= 5, "{files:?}");
    files.push(starter);
    for (file, verdict) in files.iter().zip(verdicts(&files)) {
        assert_eq!(verdict, "ok", "{}", file.display());
    }
}

#[test]
fn wrong_types_unknown_keys_and_unknown_values_fail_the_schema_and_check() {
    let masters = "[[masters]]\nname = \"m0\"\naddress = \"10.10.10.80\"\n";
    let cases = [
        (
            "[control_plane]\nworkloads = \"true\"\n",
            "is not of type 'boolean'",
        ),
        ("[api]\nport = \"6443\"\n", "is not of type 'integer'"),
        (
            "[api]\nextra_sans = \"k8s.example\"\n",
            "is not of type 'array'",
        ),
        (
            "[etcd]\nclient_port = 70000\n",
            "is greater than the maximum",
        ),
        ("[pki]\nlayout = \"one-ca\"\n", "is not one of"),
        (
            "[pki]\nservice_account_key_algorithm = \"ed25519\"\n",
            "is not one of",
        ),
        ("[load_balancer]\nmode = \"keepalived\"\n", "is not one of"),
        (
            "[cluster]\nkubernetes_version = \"1.28\"\n",
            "does not match",
        ),
        (
            "[api]\nadmission_plugins = [\"NodeRestrictions\"]\n",
            "is not one of",
        ),
        (
            "[kubelet]\nruntime = \"containerd\"\n",
            "Additional properties",
        ),
        (
            "[network]\nservice_cidrs = \"10.0.0.0/16\"\n",
            "Additional properties",
        ),
        (
            "[loadbalancer]\nmode = \"external\"\n",
            "Additional properties",
        ),
        (
            "[api]\nauthorization_modes = [\"AlwaysAllow\"]\n",
            "is not one of",
        ),
        ("[api]\nauthorization_modes = []\n", "should be non-empty"),
        (
            "[api]\nadmission_plugins = [\"PodSecurityPolicy\"]\n",
            "is not one of",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, (text, _)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("case{i}.toml"));
        std::fs::write(&path, format!("{text}{masters}")).unwrap();
        files.push(path);
    }
    let host_key = dir.path().join("host-key.toml");
    std::fs::write(
        &host_key,
        "[[masters]]\nname = \"m0\"\naddress = \"10.10.10.80\"\nip = \"10.10.10.80\"\n",
    )
    .unwrap();
    files.push(host_key);
    let no_address = dir.path().join("no-address.toml");
    std::fs::write(&no_address, "[[masters]]\nname = \"m0\"\n").unwrap();
    files.push(no_address);
    let expected = cases
        .iter()
        .map(|(_, why)| *why)
        .chain(["Additional properties", "'address' is a required property"]);
    for ((file, verdict), why) in files.iter().zip(verdicts(&files)).zip(expected) {
        assert!(
            verdict.starts_with("invalid: ") && verdict.contains(why),
            "{}: {verdict}",
            file.display()
        );
        // cpgen's own parser refuses each of them too.
        let out = cpgen(&["check", file.to_str().unwrap()]);
        assert_eq!(code(&out), 1, "{}: {}", file.display(), stderr(&out));
    }
}

#[test]
fn the_invalid_configs_of_wrong_types_and_unknown_keys_fail_the_schema() {
    let invalid = tomls_in(&util::root().join("tests/invalid"));
    let results = verdicts(&invalid);
    let verdict = |name: &str| {
        invalid
            .iter()
            .zip(&results)
            .find(|(path, _)| path.file_stem().is_some_and(|s| s == name))
            .map(|(_, verdict)| verdict.clone())
            .unwrap_or_else(|| panic!("no tests/invalid/{name}.toml"))
    };
    for name in [
        "CP002-wrong-type",
        "CP003-unknown-key",
        "CP004-missing-key",
        "CP005-unknown-value",
    ] {
        assert!(
            verdict(name).starts_with("invalid: "),
            "{name}: {}",
            verdict(name)
        );
    }
    // Syntax errors are not TOML for any reader.
    assert!(verdict("CP001-toml-syntax").starts_with("unreadable: "));
    // Rules that relate values are beyond a schema: these pass it, and `check` finds them.
    for name in ["CP202-cidr-overlap", "CP402-even-etcd-members"] {
        assert_eq!(verdict(name), "ok", "{name}");
    }
}

#[test]
fn bash_loads_the_completion_and_completes_subcommands() {
    let out = cpgen(&["completions", "bash"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("cpgen.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    // Load it, show the registration, and complete `cpgen ver` as readline would.
    let session = format!(
        "source {}\ncomplete -p cpgen\nCOMP_WORDS=(cpgen ver); COMP_CWORD=1; COMP_LINE='cpgen ver'; COMP_POINT=9\n\
         $(complete -p cpgen | sed -E 's/.*-F ([^ ]+).*/\\1/') cpgen ver cpgen\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display()
    );
    let out = Command::new("bash")
        .args(["--noprofile", "--norc", "-c", &session])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("complete ") && text.lines().next().is_some_and(|l| l.ends_with(" cpgen")),
        "{text}"
    );
    assert!(text.lines().any(|l| l == "verify"), "{text}");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = cpgen(&["completions", shell]);
        assert_eq!(code(&out), 0, "{shell}");
        assert!(stdout(&out).contains("rotate"), "{shell}");
    }
}

#[test]
fn groff_renders_every_man_page_without_a_warning() {
    // An unknown page lists every page there is.
    let out = cpgen(&["man", "nonsense"]);
    assert_eq!(code(&out), 2);
    let subcommands: Vec<String> = stderr(&out)
        .split_once("pages exist for: ")
        .map(|(_, list)| list.trim().split(", ").map(str::to_owned).collect())
        .unwrap_or_default();
    assert!(subcommands.len() >= 10, "{subcommands:?}");
    let pages = std::iter::once(None).chain(subcommands.iter().map(|s| Some(s.as_str())));
    for page in pages {
        let mut args = vec!["man"];
        args.extend(page);
        let out = cpgen(&args);
        assert_eq!(code(&out), 0, "{page:?}: {}", stderr(&out));
        let title = page.map_or("cpgen".to_owned(), |s| format!("cpgen-{s}"));
        assert!(
            stdout(&out).starts_with(&format!(
                ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n.TH {title} 1"
            )),
            "{}",
            stdout(&out)
        );
        let mut groff = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        groff.stdin.take().unwrap().write_all(&out.stdout).unwrap();
        let rendered = groff.wait_with_output().unwrap();
        assert!(rendered.status.success(), "{page:?}");
        assert_eq!(stderr(&rendered), "", "{page:?}");
    }
    assert!(subcommands.iter().any(|s| s == "bundle"), "{subcommands:?}");
}

#[test]
fn a_full_disk_under_stdout_is_an_error_not_a_truncated_success() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cpgen"))
        .arg("schema")
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot write to standard output"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_version_names_the_commit_it_was_built_from() {
    let out = cpgen(&["--version"]);
    assert_eq!(code(&out), 0);
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(util::root())
        .output()
        .unwrap();
    let commit = if head.status.success() {
        stdout(&head).trim().to_owned()
    } else {
        "unknown".to_owned()
    };
    assert_eq!(
        stdout(&out),
        format!("cpgen {} (commit {commit})\n", env!("CARGO_PKG_VERSION"))
    );
}
