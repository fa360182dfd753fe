//! `cpgen check` and `cpgen init` as a user runs them.

mod util;

use std::collections::BTreeSet;
use std::path::Path;

use util::{assert_golden, code, cpgen, stderr, stdout};

const EXAMPLES: [&str; 5] = [
    "examples/seed-ha.toml",
    "examples/separate-cas.toml",
    "examples/on-masters-vip.toml",
    "examples/ipv6.toml",
    "examples/workloads.toml",
];

#[test]
fn every_example_passes() {
    for example in EXAMPLES {
        let out = cpgen(&["check", example]);
        assert_eq!(code(&out), 0, "{example}: {}", stderr(&out));
        assert!(
            !stderr(&out).contains("error["),
            "{example}: {}",
            stderr(&out)
        );
        assert!(
            stdout(&out).contains("tolerates 1 failed member"),
            "{example}: {}",
            stdout(&out)
        );
    }
}

#[test]
fn the_guide_example_plans_the_guides_cluster() {
    let out = cpgen(&["check", "examples/seed-ha.toml"]);
    let plan = stdout(&out);
    for line in [
        "kubem00 10.10.10.80 (master)",
        "etcd (clients)           10.10.10.80:2379",
        "kube-apiserver           0.0.0.0:6443",
        "kubernetes 10.10.10.2 (load-balancer)",
        "haproxy                  0.0.0.0:6443",
        "pki: shared-ca, rsa-2048 keys",
    ] {
        assert!(plan.contains(line), "missing {line:?} in\n{plan}");
    }
    let apiserver = plan
        .lines()
        .find(|l| l.contains("apiserver on kubem01"))
        .unwrap();
    for san in [
        "kubernetes.default.svc.cluster.local",
        "10.32.0.1",
        "10.10.10.81",
        "10.10.10.2",
    ] {
        assert!(apiserver.contains(san), "{san} missing: {apiserver}");
    }
    assert!(
        !apiserver.contains("10.10.10.80"),
        "another master's address leaked: {apiserver}"
    );
    // The guide's one warning: a shared CA lets every cluster client into etcd.
    assert!(stderr(&out).contains("warning[CP504]"));
}

#[test]
fn json_plan_has_hosts_quorum_and_sans() {
    let out = cpgen(&["check", "--format", "json", "examples/on-masters-vip.toml"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["valid"], true);
    assert_eq!(json["plan"]["etcd"]["failure_tolerance"], 1);
    assert_eq!(json["plan"]["etcd"]["quorum"], 2);
    assert_eq!(json["plan"]["api_url"], "https://10.10.10.100:8443");
    let master = &json["plan"]["hosts"][0];
    assert_eq!(master["name"], "kubem00");
    let sockets: Vec<&str> = master["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["socket"].as_str().unwrap())
        .collect();
    assert!(
        sockets.contains(&"0.0.0.0:8443") && sockets.contains(&"0.0.0.0:6443"),
        "{sockets:?}"
    );
    let sans = json["plan"]["certificates"][0]["sans"].as_array().unwrap();
    // A connection to the VIP or to any master's HAProxy may land on any apiserver.
    for san in [
        "10.10.10.100",
        "10.10.10.81",
        "10.10.10.82",
        "k8s.example.internal",
    ] {
        assert!(sans.iter().any(|s| s == san), "{san} missing from {sans:?}");
    }
}

#[test]
fn json_reports_findings_with_positions() {
    let out = cpgen(&[
        "check",
        "--format",
        "json",
        "tests/invalid/CP402-even-etcd-members.toml",
    ]);
    assert_eq!(code(&out), 1);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["valid"], false);
    let finding = &json["diagnostics"][0];
    assert_eq!(finding["code"], "CP402");
    assert_eq!(finding["severity"], "error");
    assert_eq!(finding["primary"]["line"], 13);
    assert_eq!(finding["primary"]["column"], 1);
}

/// Every config in tests/invalid/ renders exactly as its golden file, and exits 1 when it has
/// an error, 0 when it only warns.
#[test]
fn invalid_configs_match_their_golden_diagnostics() {
    let mut seen_codes = BTreeSet::new();
    for entry in std::fs::read_dir(util::root().join("tests/invalid")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let relative = format!("tests/invalid/{name}.toml");
        let out = cpgen(&["check", "--color", "never", &relative]);
        let rendered = stderr(&out);
        assert_golden(
            Path::new(&format!("golden/diagnostics/{name}.txt")),
            &rendered,
        );
        let expected_exit = if rendered.contains("error[") { 1 } else { 0 };
        assert_eq!(code(&out), expected_exit, "{relative}\n{rendered}");
        assert!(!rendered.contains('\u{1b}'), "colour in piped output");
        if let Some(code) = name.split('-').next().filter(|c| c.starts_with("CP")) {
            assert!(
                rendered.contains(&format!("[{code}]")),
                "{relative} does not report {code}:\n{rendered}"
            );
            assert!(
                rendered.contains(&format!("{relative}:")),
                "{relative} has no file:line:col\n{rendered}"
            );
            seen_codes.insert(code.to_owned());
        }
    }
    // Every rule has a config, except CP602, which no config can reach (unit-tested in plan).
    let missing: Vec<&str> = cpgen::diag::Code::ALL
        .iter()
        .filter(|c| !c.is_about_a_bundle())
        .map(|c| c.id())
        .filter(|id| *id != "CP602" && !seen_codes.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "no tests/invalid config for {missing:?}"
    );
}

#[test]
fn five_mistakes_are_reported_in_one_run() {
    let out = cpgen(&[
        "check",
        "--color",
        "never",
        "tests/invalid/five-mistakes.toml",
    ]);
    assert_eq!(code(&out), 1);
    let text = stderr(&out);
    for code in ["CP501", "CP202", "CP003", "CP102", "CP402"] {
        assert!(
            text.contains(&format!("error[{code}]")),
            "{code} missing:\n{text}"
        );
    }
    assert!(text.contains("5 errors, 0 warnings"), "{text}");
}

#[test]
fn duplicates_label_both_places() {
    let out = cpgen(&[
        "check",
        "--color",
        "never",
        "tests/invalid/CP102-duplicate-name.toml",
    ]);
    let text = stderr(&out);
    assert!(text.contains("used again here"), "{text}");
    assert!(text.contains("first used here"), "{text}");
}

#[test]
fn colour_is_used_only_when_asked_or_on_a_terminal() {
    let config = "tests/invalid/CP402-even-etcd-members.toml";
    assert!(stderr(&cpgen(&["check", config])).contains("error[CP402]"));
    assert!(!stderr(&cpgen(&["check", config])).contains('\u{1b}'));
    assert!(stderr(&cpgen(&["check", "--color", "always", config])).contains('\u{1b}'));
}

#[test]
fn unreadable_inputs_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("binary.toml");
    std::fs::write(&binary, [0u8, 159, 146, 150, 255, 0, 1, 2]).unwrap();
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let malformed = dir.path().join("malformed.toml");
    std::fs::write(&malformed, "[[masters]\nname = kubem00\n").unwrap();
    let missing = dir.path().join("missing.toml");
    let cases = [
        (binary.to_str().unwrap(), 1, "not a text file"),
        (empty.to_str().unwrap(), 1, "error[CP401]"),
        (malformed.to_str().unwrap(), 1, "error[CP001]"),
        (missing.to_str().unwrap(), 2, "cannot read"),
        (dir.path().to_str().unwrap(), 2, "is a directory"),
    ];
    for (path, expected, message) in cases {
        let out = cpgen(&["check", "--color", "never", path]);
        let text = stderr(&out);
        assert_eq!(code(&out), expected, "{path}: {text}");
        assert!(text.contains(message), "{path}: {text}");
        assert!(!text.contains("panicked"), "{path}: {text}");
        assert!(
            text.lines().count() <= 24,
            "more than a screen for {path}:\n{text}"
        );
    }
}

#[test]
fn init_writes_a_valid_config_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.toml");
    let path = path.to_str().unwrap();
    let out = cpgen(&["init", path]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let written = std::fs::read_to_string(path).unwrap();
    assert!(written.contains("[[masters]]"));
    // Editors find the schema through the first line.
    assert!(
        written.starts_with("#:schema ./cluster.schema.json\n# cluster.toml"),
        "{written}"
    );
    let out = cpgen(&["check", path]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).is_empty(),
        "the starter config should not even warn:\n{}",
        stderr(&out)
    );

    std::fs::write(path, "# mine\n").unwrap();
    let out = cpgen(&["init", path]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(path).unwrap(), "# mine\n");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "temporary files left behind");
}

#[test]
fn init_into_a_missing_directory_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/cluster.toml");
    let out = cpgen(&["init", path.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("cannot write"), "{}", stderr(&out));
}

#[test]
fn every_command_has_help() {
    for command in ["init", "check", "bundle"] {
        let out = cpgen(&[command, "--help"]);
        assert_eq!(code(&out), 0);
        assert!(
            stdout(&out).contains("Usage: cpgen"),
            "{command}: {}",
            stdout(&out)
        );
    }
    assert_eq!(
        code(&cpgen(&["check"])),
        2,
        "a missing argument is a usage error"
    );
}

/// Three masters, so that a config fragment placed before them validates on its own.
const THREE_MASTERS: &str = "
[[masters]]
name = \"kubem00\"
address = \"10.10.10.80\"

[[masters]]
name = \"kubem01\"
address = \"10.10.10.81\"

[[masters]]
name = \"kubem02\"
address = \"10.10.10.82\"

[[load_balancer.hosts]]
name = \"lb\"
address = \"10.10.10.2\"
";

/// [`THREE_MASTERS`] without the load balancer.
fn masters_only() -> &'static str {
    THREE_MASTERS
        .split("[[load_balancer.hosts]]")
        .next()
        .unwrap_or_default()
}

/// Every finding of `text` as (code, the text it points at, 1-based line, message, help).
fn findings_of(text: &str) -> Vec<(String, String, usize, String, String)> {
    let result = cpgen::Config::parse("t.toml", text).and_then(|c| c.validate());
    let report = match result {
        Err(cpgen::Error::Invalid(report)) => *report,
        Ok(checked) => checked.report,
        Err(other) => panic!("not a report: {other}"),
    };
    report
        .diagnostics()
        .iter()
        .map(|d| {
            let span = d.primary.as_ref().and_then(|l| l.span()).unwrap_or(0..0);
            let line = text[..span.start].matches('\n').count() + 1;
            (
                d.code.id().to_owned(),
                text[span].to_owned(),
                line,
                d.message.clone(),
                d.help.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn codes(findings: &[(String, String, usize, String, String)]) -> Vec<&str> {
    findings.iter().map(|f| f.0.as_str()).collect()
}

const SERDE_WORDS: [&str; 6] = [
    "invalid type",
    "i64",
    "map",
    "sequence",
    "floating point",
    "expected a string",
];

#[test]
fn every_wrong_type_is_reported_in_one_run_in_toml_words() {
    let text = format!(
        "[cluster]\nkubernetes_version = 1.31\nname = true\n\n[api]\nport = \"6443\"\nextra_sans = \"k8s.example\"\nendpont = \"k8s.example\"\n\n[network]\npod_cidr = \"10.300.0.0/16\"\n\n[etcd]\nclient_port = {{ port = 2379 }}\n{THREE_MASTERS}"
    );
    let findings = findings_of(&text);
    let wrong: Vec<_> = findings.iter().filter(|f| f.0 == "CP002").collect();
    let places: Vec<(&str, usize)> = wrong.iter().map(|f| (f.1.as_str(), f.2)).collect();
    assert_eq!(
        places,
        [
            ("1.31", 2),
            ("true", 3),
            ("\"6443\"", 6),
            ("\"k8s.example\"", 7),
            ("{ port = 2379 }", 14)
        ],
        "{findings:#?}"
    );
    let messages: Vec<&str> = wrong.iter().map(|f| f.3.as_str()).collect();
    assert_eq!(
        messages,
        [
            "`kubernetes_version` in [cluster] must be a string, found a float",
            "`name` in [cluster] must be a string, found a boolean",
            "`port` in [api] must be an integer, found a string",
            "`extra_sans` in [api] must be an array of strings, found a string",
            "`client_port` in [etcd] must be an integer, found a table",
        ]
    );
    for (_, _, _, message, help) in &wrong {
        for word in SERDE_WORDS {
            assert!(
                !message.contains(word) && !help.contains(word),
                "{message} / {help}"
            );
        }
    }
    // The rest of the file is still checked in the same run.
    assert!(codes(&findings).contains(&"CP003"), "{findings:#?}");
    assert!(codes(&findings).contains(&"CP201"), "{findings:#?}");
    assert_eq!(findings.len(), 7, "{findings:#?}");
}

#[test]
fn a_wrong_item_in_an_array_is_reported_and_the_others_still_checked() {
    let text =
        format!("[network]\nhost_cidrs = [\"10.10.10.0/24\", 1, \"bogus\"]\n{THREE_MASTERS}");
    let findings = findings_of(&text);
    assert_eq!(codes(&findings), ["CP002", "CP201"], "{findings:#?}");
    assert_eq!(findings[0].1, "1");
    assert_eq!(findings[0].2, 2);
    assert_eq!(
        findings[0].3,
        "`host_cidrs` in [network] must be an array of strings, but item 2 is an integer"
    );
    assert_eq!(findings[1].1, "\"bogus\"");
}

#[test]
fn an_array_of_tables_written_as_a_table_says_to_use_double_brackets() {
    let masters_table = "[masters]\nname = \"kubem00\"\naddress = \"10.10.10.80\"\n";
    let findings = findings_of(masters_table);
    // Not also "the cluster has no masters": there is one, written the wrong way.
    assert_eq!(codes(&findings), ["CP002"], "{findings:#?}");
    let (_, at, line, message, help) = &findings[0];
    assert_eq!((at.as_str(), *line), ("[masters]", 1));
    assert_eq!(
        message,
        "`masters` must be an array of tables ([[masters]]), found a table"
    );
    assert!(help.contains("`[[masters]]`"), "{help}");

    let findings = findings_of("masters = 3\n");
    assert_eq!(codes(&findings), ["CP002"], "{findings:#?}");
    assert_eq!(findings[0].1, "3");
    assert!(findings[0].4.contains("`[[masters]]`"), "{findings:#?}");

    for (text, at, expected) in [
        ("[workers]\nname = \"w\"\n", "[workers]", "[[workers]]"),
        (
            "[load_balancer.hosts]\nname = \"lb\"\n",
            "[load_balancer.hosts]",
            "[[load_balancer.hosts]]",
        ),
    ] {
        let findings = findings_of(&format!("{text}{}", masters_only()));
        let wrong: Vec<_> = findings.iter().filter(|f| f.0 == "CP002").collect();
        assert_eq!(wrong.len(), 1, "{text}: {findings:#?}");
        assert_eq!(wrong[0].1, at, "{text}");
        assert!(wrong[0].4.contains(expected), "{text}: {}", wrong[0].4);
    }
}

#[test]
fn a_mistyped_array_of_tables_key_suggests_its_header() {
    for (text, suggestion) in [
        ("[master]\nname = \"x\"\n", "did you mean `[[masters]]`?"),
        ("[[master]]\nname = \"x\"\n", "did you mean `[[masters]]`?"),
        ("[worker]\nname = \"x\"\n", "did you mean `[[workers]]`?"),
        ("[netwrok]\n", "did you mean `[network]`?"),
    ] {
        let findings = findings_of(&format!("{text}{THREE_MASTERS}"));
        assert_eq!(codes(&findings), ["CP003"], "{text}: {findings:#?}");
        assert_eq!(findings[0].4, suggestion, "{text}");
    }
}

#[test]
fn a_wrong_typed_value_is_not_reported_again_as_missing_or_defaulted() {
    // The unknown `zone` shows that checking went on past the wrong type.
    let text =
        format!("[[workers]]\nname = 5\naddress = \"10.10.10.90\"\nzone = \"a\"\n{THREE_MASTERS}");
    let findings = findings_of(&text);
    assert_eq!(codes(&findings), ["CP002", "CP003"], "{findings:#?}");
    assert_eq!((findings[0].1.as_str(), findings[0].2), ("5", 2));

    // Without the wrong-typed endpoint, cpgen would warn that it defaults to the first master.
    let findings = findings_of(&format!(
        "[api]\nendpoint = 6443\nbind_prt = 6443\n{}",
        masters_only()
    ));
    assert_eq!(codes(&findings), ["CP002", "CP003"], "{findings:#?}");
    let findings = findings_of(&format!("[api]\n{}", masters_only()));
    assert_eq!(codes(&findings), ["CP701"], "{findings:#?}");
}

#[test]
fn an_integer_too_large_for_toml_is_a_wrong_type() {
    let findings = findings_of(&format!(
        "[api]\nport = 99999999999999999999\nbind_prt = 6443\n{THREE_MASTERS}"
    ));
    assert_eq!(codes(&findings), ["CP002", "CP003"], "{findings:#?}");
    assert_eq!(findings[0].1, "99999999999999999999");
    assert_eq!(
        findings[0].3,
        "`port` in [api] is out of range for a TOML integer"
    );
}
