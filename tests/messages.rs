//! Messages that lead somewhere: every command cpgen suggests runs as printed, and a refusal
//! says how to get past it. Each test runs the real binary in its own directory.

mod util;

use std::path::Path;
use std::process::Output;

/// The first `` `cpgen …` `` command in `text`, split into its arguments (after `cpgen`).
fn suggested(text: &str, start: &str) -> Vec<String> {
    let from = text
        .find(&format!("`{start}"))
        .unwrap_or_else(|| panic!("no `{start}` in {text}"));
    let rest = &text[from + 1..];
    let command = &rest[..rest.find('`').unwrap()];
    command
        .split_whitespace()
        .skip(1)
        .map(str::to_owned)
        .collect()
}

fn run_as_printed(dir: &Path, command: &[String]) -> Output {
    let args: Vec<&str> = command.iter().map(String::as_str).collect();
    util::cpgen_in(dir, &args)
}

#[test]
fn an_existing_bundle_is_refused_with_the_flag_that_replaces_it() {
    let dir = util::dir_with_config("separate-cas");
    let first = util::cpgen_in(dir.path(), &["bundle", "cluster.toml", "-o", "b.tar.gz"]);
    assert_eq!(first.status.code(), Some(0), "{}", util::stderr(&first));
    let again = util::cpgen_in(dir.path(), &["bundle", "cluster.toml", "-o", "b.tar.gz"]);
    assert_eq!(again.status.code(), Some(2));
    let text = util::stderr(&again);
    assert!(text.contains("b.tar.gz already exists"), "{text}");
    assert!(text.contains("--force"), "{text}");
    let forced = util::cpgen_in(
        dir.path(),
        &["bundle", "cluster.toml", "-o", "b.tar.gz", "--force"],
    );
    assert_eq!(forced.status.code(), Some(0), "{}", util::stderr(&forced));

    let init = util::cpgen_in(dir.path(), &["init", "cluster.toml"]);
    assert_eq!(init.status.code(), Some(2));
    let command = suggested(&util::stderr(&init), "cpgen init");
    let out = run_as_printed(dir.path(), &command);
    assert_eq!(out.status.code(), Some(0), "{}", util::stderr(&out));
}

#[test]
fn renew_suggests_a_bundle_command_that_runs_as_printed() {
    let dir = util::dir_with_config("separate-cas");
    let out = util::cpgen_in(dir.path(), &["bundle", "cluster.toml", "-o", "b.tar.gz"]);
    assert_eq!(out.status.code(), Some(0), "{}", util::stderr(&out));
    let renew = util::cpgen_in(dir.path(), &["renew", "cluster.toml"]);
    assert_eq!(renew.status.code(), Some(0), "{}", util::stderr(&renew));
    let command = suggested(&util::stderr(&renew), "cpgen bundle");
    assert!(
        command.iter().any(|a| a == "-o" || a == "--out-dir"),
        "{command:?}"
    );
    let out = run_as_printed(dir.path(), &command);
    assert_eq!(out.status.code(), Some(0), "{}", util::stderr(&out));
}

#[test]
fn verify_against_a_newer_config_says_which_bundle_command_fixes_it() {
    let dir = util::dir_with_config("separate-cas");
    let out = util::cpgen_in(dir.path(), &["bundle", "cluster.toml", "--out-dir", "tree"]);
    assert_eq!(out.status.code(), Some(0), "{}", util::stderr(&out));
    // A master moves; the bundle on disk is now stale.
    let text = std::fs::read_to_string(dir.path().join("cluster.toml")).unwrap();
    let moved = text.replace("10.10.10.82", "10.10.10.83");
    assert_ne!(text, moved);
    std::fs::write(dir.path().join("cluster.toml"), moved).unwrap();
    let stale = util::cpgen_in(dir.path(), &["verify", "tree", "--config", "cluster.toml"]);
    assert_eq!(stale.status.code(), Some(1));
    let report = util::stdout(&stale);
    assert!(report.contains("CP805"), "{report}");
    assert!(!report.contains("re-issue"), "{report}");
    let command = suggested(&report, "cpgen bundle");
    assert_eq!(
        command,
        ["bundle", "cluster.toml", "--out-dir", "tree", "--force"]
    );
    let out = run_as_printed(dir.path(), &command);
    assert_eq!(out.status.code(), Some(0), "{}", util::stderr(&out));
    let fresh = util::cpgen_in(dir.path(), &["verify", "tree", "--config", "cluster.toml"]);
    assert_eq!(fresh.status.code(), Some(0), "{}", util::stdout(&fresh));
}

/// True for what a terminal would act on: C0 controls but newline and tab, DEL, C1 controls.
fn has_terminal_control(text: &str) -> bool {
    text.chars()
        .any(|c| (c.is_control() && c != '\n' && c != '\t') || ('\u{7f}'..='\u{9f}').contains(&c))
}

#[test]
fn check_never_prints_control_characters_from_a_config_in_text_or_json() {
    let dir = tempfile::tempdir().unwrap();
    let name = "evil\u{1b}[2J.toml";
    // A raw C1 CSI in a host name (TOML allows it) and escapes in a key and a value.
    let config = "[api]\n\"\\u001b[31mkey\\u0007\" = 1\nport = \"x\\u001b]0;title\\u0007\"\n\
                  [[masters]]\nname = \"kube\u{9b}6n\"\naddress = \"10.0.0.1\"\n";
    std::fs::write(dir.path().join(name), config).unwrap();
    for format in ["text", "json"] {
        let out = util::cpgen_in(dir.path(), &["check", "--format", format, name]);
        assert_eq!(out.status.code(), Some(1), "{format}");
        for stream in [util::stdout(&out), util::stderr(&out)] {
            assert!(!has_terminal_control(&stream), "{format}: {stream:?}");
        }
        let shown = util::stdout(&out) + &util::stderr(&out);
        // Escaped, not dropped: the operator sees what the file holds.
        assert!(shown.contains(r"\u{9b}"), "{format}: {shown}");
        assert!(shown.contains(r"\x1b"), "{format}: {shown}");
    }
}

#[test]
fn renew_keeps_the_secrets_file_it_was_given_in_its_suggestion() {
    let dir = util::dir_with_config("separate-cas");
    std::fs::create_dir(dir.path().join("vault")).unwrap();
    let secrets = ["--secrets", "vault/s.toml"];
    let first = util::cpgen_in(
        dir.path(),
        &[
            &["bundle", "cluster.toml", "-o", "first.tar.gz"][..],
            &secrets,
        ]
        .concat(),
    );
    assert_eq!(first.status.code(), Some(0), "{}", util::stderr(&first));
    let renew = util::cpgen_in(
        dir.path(),
        &[&["renew", "cluster.toml"][..], &secrets].concat(),
    );
    assert_eq!(renew.status.code(), Some(0), "{}", util::stderr(&renew));
    let command = suggested(&util::stderr(&renew), "cpgen bundle");
    assert!(
        command
            .windows(2)
            .any(|w| w == ["--secrets", "vault/s.toml"]),
        "{command:?}"
    );
    let out = run_as_printed(dir.path(), &command);
    assert_eq!(out.status.code(), Some(0), "{}", util::stderr(&out));
    assert!(
        !util::stderr(&out).contains("created"),
        "{}",
        util::stderr(&out)
    );
    assert!(
        !dir.path().join("cluster.secrets.toml").exists(),
        "a second PKI was made"
    );
}

#[test]
fn renew_without_a_secrets_file_says_what_to_run_first() {
    let dir = util::dir_with_config("separate-cas");
    let renew = util::cpgen_in(dir.path(), &["renew", "cluster.toml"]);
    assert_eq!(renew.status.code(), Some(2));
    let command = suggested(&util::stderr(&renew), "cpgen bundle");
    let out = run_as_printed(dir.path(), &command);
    assert_eq!(out.status.code(), Some(0), "{}", util::stderr(&out));
    let again = util::cpgen_in(dir.path(), &["renew", "cluster.toml"]);
    assert_eq!(again.status.code(), Some(0), "{}", util::stderr(&again));
}

#[test]
fn paths_from_the_command_line_are_escaped_and_quoted() {
    let dir = util::dir_with_config("separate-cas");
    let hostile = "no\u{1b}[31mpe\u{7}\u{9b}";
    for args in [
        vec!["verify", hostile],
        vec!["certs", hostile],
        vec!["check", hostile],
        vec!["renew", hostile],
    ] {
        let out = util::cpgen_in(dir.path(), &args);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        let text = util::stderr(&out);
        assert!(!has_terminal_control(&text), "{args:?}: {text:?}");
        assert!(text.contains(r"\x1b[31m"), "{args:?}: {text}");
    }
    // A suggestion with a space in a path is one shell word.
    std::fs::create_dir(dir.path().join("sp dir")).unwrap();
    let out = util::cpgen_in(dir.path(), &["init", "sp dir/my cluster.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", util::stderr(&out));
    assert!(
        util::stderr(&out).contains("`cpgen check 'sp dir/my cluster.toml'`"),
        "{}",
        util::stderr(&out)
    );
    let again = util::cpgen_in(dir.path(), &["init", "sp dir/my cluster.toml"]);
    assert!(
        util::stderr(&again).contains("`cpgen init 'sp dir/new-cluster.toml'`"),
        "{}",
        util::stderr(&again)
    );
}
