//! Property tests: no input — random bytes or a mangled example — makes parsing or
//! validation panic, and every finding points inside the text it is about.

use cpgen::{Config, Error};
use proptest::prelude::*;

const EXAMPLES: [&str; 4] = [
    include_str!("../examples/seed-ha.toml"),
    include_str!("../examples/separate-cas.toml"),
    include_str!("../examples/on-masters-vip.toml"),
    include_str!("../examples/ipv6.toml"),
];

/// Parses and validates, and checks what any outcome must satisfy.
fn check_any(text: &str) {
    let report = match Config::parse("fuzz.toml", text).and_then(|c| c.validate()) {
        Ok(checked) => {
            assert!(!checked.report.has_errors());
            // A valid plan always summarizes.
            let _ = checked.plan.summary().to_string();
            checked.report
        }
        Err(Error::Invalid(report)) => {
            assert!(
                report.has_errors(),
                "rejected without an error:\n{}",
                report.render(cpgen::diag::Style::Plain)
            );
            *report
        }
        Err(other) => panic!("unexpected error kind for text input: {other}"),
    };
    for d in report.diagnostics() {
        for label in d.primary.iter().chain(&d.secondary) {
            let span = label.span().expect("a finding on a file points into it");
            assert!(span.start <= span.end && span.end <= text.len(), "{d:?}");
            assert!(text.is_char_boundary(span.start) && text.is_char_boundary(span.end));
        }
    }
    let _ = report.render(cpgen::diag::Style::Plain);
    let _ = report.to_json();
}

/// One edit of a config: delete, duplicate or replace a slice, or swap two lines.
#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, String),
    DuplicateLine(usize),
    SwapLines(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(at, len)| Edit::Delete(at, len)),
        (any::<usize>(), "[\\[\\]=\"#,.0-9a-z_: \n-]{0,12}|\\PC{0,4}")
            .prop_map(|(at, s)| Edit::Insert(at, s)),
        any::<usize>().prop_map(Edit::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
    ]
}

fn floor_boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &str, edit: &Edit) -> String {
    match edit {
        Edit::Delete(at, len) => {
            let start = floor_boundary(text, at % (text.len() + 1));
            let end = floor_boundary(text, start + len);
            format!("{}{}", &text[..start], &text[end..])
        }
        Edit::Insert(at, s) => {
            let at = floor_boundary(text, at % (text.len() + 1));
            format!("{}{s}{}", &text[..at], &text[at..])
        }
        Edit::DuplicateLine(i) | Edit::SwapLines(i, _) if text.lines().count() == 0 => {
            let _ = i;
            text.to_owned()
        }
        Edit::DuplicateLine(i) => {
            let mut lines: Vec<&str> = text.lines().collect();
            let i = i % lines.len();
            lines.insert(i, lines[i]);
            lines.join("\n")
        }
        Edit::SwapLines(a, b) => {
            let mut lines: Vec<&str> = text.lines().collect();
            let n = lines.len();
            lines.swap(a % n, b % n);
            lines.join("\n")
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_any(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn mangled_examples_never_panic(example in 0usize..4, edits in proptest::collection::vec(edit(), 1..6)) {
        let mut text = EXAMPLES[example].to_owned();
        for e in &edits {
            text = apply(&text, e);
        }
        check_any(&text);
    }
}

#[test]
fn every_example_validates_as_a_library_call() {
    for text in EXAMPLES {
        let checked = Config::parse("example.toml", text)
            .and_then(|c| c.validate())
            .unwrap();
        assert_eq!(checked.plan.etcd_failure_tolerance(), 1);
    }
}
