//! A [`BundleDiff`] as text (a block per host) and as JSON; every path, host and name comes
//! from an untrusted bundle and goes through `diag::escape`.

use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{BundleDiff, CertChange, CertReason, FileChange, ModeChange, Part, PartDiff};
use crate::diag::{counted, escape};

/// The text report: a block per part, then a one-line summary.
pub(super) fn text(diff: &BundleDiff) -> String {
    if diff.is_empty() {
        return format!(
            "the bundles are the same: {}, byte for byte and mode for mode\n",
            counted(diff.files, "file")
        );
    }
    let mut out = String::new();
    for part in &diff.parts {
        block(part, &mut out);
    }
    out.push_str(&summary(diff));
    out
}

fn block(diff: &PartDiff, out: &mut String) {
    out.push_str(&match &diff.part {
        Part::Host(host) => format!("host {}:\n", escape(host)),
        Part::Admin => "admin/:\n".to_owned(),
        Part::TopLevel => "top-level files:\n".to_owned(),
    });
    // One list in path order, as `git status` shows a tree.
    let mut lines: Vec<(&str, String)> = Vec::new();
    lines.extend(
        diff.added
            .iter()
            .map(|p| (p.as_str(), format!("  + {}\n", escape(p)))),
    );
    lines.extend(
        diff.removed
            .iter()
            .map(|p| (p.as_str(), format!("  - {}\n", escape(p)))),
    );
    lines.extend(diff.changed.iter().map(|c| (c.path.as_str(), changed(c))));
    lines.sort();
    for (_, line) in lines {
        out.push_str(&line);
    }
    let units = &diff.units;
    if units.daemon_reload {
        out.push_str("  daemon-reload: unit files changed\n");
    }
    for (what, names) in [
        ("restart", &units.restart),
        ("start", &units.start),
        ("stop", &units.stop),
    ] {
        if !names.is_empty() {
            let names: Vec<String> = names
                .iter()
                .map(|n| escape(n.as_str()).into_owned())
                .collect();
            out.push_str(&format!("  {what}: {}\n", names.join(", ")));
        }
    }
}

fn changed(change: &FileChange) -> String {
    let mode = match (change.mode, change.contents) {
        (Some(ModeChange { old, new }), true) => format!(" (mode {old:04o} -> {new:04o})"),
        (Some(ModeChange { old, new }), false) => format!(" (mode only: {old:04o} -> {new:04o})"),
        (None, _) => String::new(),
    };
    let mut out = format!("  ~ {}{mode}\n", escape(&change.path));
    for cert in &change.certificates {
        certificate(cert, &mut out);
    }
    out
}

fn certificate(cert: &CertChange, out: &mut String) {
    let indent = "      ";
    let field = cert
        .field
        .as_deref()
        .map_or_else(String::new, |f| format!("{}: ", escape(f)));
    let reasons: Vec<&str> = cert.reasons.iter().map(|r| r.word()).collect();
    out.push_str(&format!(
        "{indent}{field}certificate re-issued: {}\n",
        reasons.join(", ")
    ));
    for (what, sans) in [("added", &cert.sans_added), ("removed", &cert.sans_removed)] {
        if !sans.is_empty() {
            let sans: Vec<String> = sans.iter().map(|s| escape(s).into_owned()).collect();
            out.push_str(&format!("{indent}SANs {what}: {}\n", sans.join(", ")));
        }
    }
    if cert.reasons.contains(&CertReason::Validity) {
        out.push_str(&format!(
            "{indent}NotAfter: {} -> {}\n",
            time(cert.old_not_after),
            time(cert.new_not_after)
        ));
    }
    if cert.reasons.contains(&CertReason::Issuer) {
        let issuer = if cert.old_issuer == cert.new_issuer {
            format!(
                "{}, but another CA: its name or its key differs",
                common_name(&cert.new_issuer)
            )
        } else {
            format!(
                "{} -> {}",
                common_name(&cert.old_issuer),
                common_name(&cert.new_issuer)
            )
        };
        out.push_str(&format!("{indent}issuer: {issuer}\n"));
    }
}

/// An issuer's CN for text, `(no CN)` when it has none.
fn common_name(name: &str) -> std::borrow::Cow<'_, str> {
    if name.is_empty() {
        "(no CN)".into()
    } else {
        escape(name)
    }
}

fn time(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// `3 hosts changed: 4 files added, 7 changed, 0 removed; 5 units to restart`.
fn summary(diff: &BundleDiff) -> String {
    let sum = |count: fn(&PartDiff) -> usize| diff.parts.iter().map(count).sum::<usize>();
    let hosts = diff
        .parts
        .iter()
        .filter(|p| p.part.host().is_some())
        .count();
    let mut what = vec![counted(hosts, "host")];
    if diff.parts.iter().any(|p| p.part == Part::Admin) {
        what.push("admin/".to_owned());
    }
    if diff.parts.iter().any(|p| p.part == Part::TopLevel) {
        what.push("the top-level files".to_owned());
    }
    let what = match what.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => what.join(""),
    };
    let mut line = format!(
        "{what} changed: {} added, {} changed, {} removed; {} to restart",
        counted(sum(|p| p.added.len()), "file"),
        sum(|p| p.changed.len()),
        sum(|p| p.removed.len()),
        counted(sum(|p| p.units.restart.len()), "unit"),
    );
    for (what, count) in [
        ("start", sum(|p| p.units.start.len())),
        ("stop", sum(|p| p.units.stop.len())),
    ] {
        if count > 0 {
            line.push_str(&format!(", {count} to {what}"));
        }
    }
    line.push('\n');
    line
}

/// The JSON report: `{"same", "hosts": [...]}`.
pub(super) fn json(diff: &BundleDiff) -> Value {
    json!({
        "same": diff.is_empty(),
        "hosts": diff.parts.iter().map(part_json).collect::<Vec<_>>(),
    })
}

fn part_json(diff: &PartDiff) -> Value {
    let (host, part) = match &diff.part {
        Part::Host(host) => (escape(host).into_owned(), "host"),
        Part::Admin => ("admin".to_owned(), "admin"),
        Part::TopLevel => ("(top-level)".to_owned(), "top-level"),
    };
    let names = |names: &[super::UnitName]| -> Vec<String> {
        names
            .iter()
            .map(|n| escape(n.as_str()).into_owned())
            .collect()
    };
    json!({
        "host": host,
        "part": part,
        "added": strings(&diff.added),
        "removed": strings(&diff.removed),
        "changed": diff.changed.iter().map(change_json).collect::<Vec<_>>(),
        "restart": names(&diff.units.restart),
        "start": names(&diff.units.start),
        "stop": names(&diff.units.stop),
        "daemon_reload": diff.units.daemon_reload,
    })
}

fn change_json(change: &FileChange) -> Value {
    let mut object = Map::new();
    object.insert("path".to_owned(), escape(&change.path).into());
    object.insert("contents".to_owned(), change.contents.into());
    if let Some(ModeChange { old, new }) = change.mode {
        let mode = json!({"old": format!("{old:04o}"), "new": format!("{new:04o}")});
        object.insert("mode".to_owned(), mode);
    }
    let (own, embedded): (Vec<&CertChange>, Vec<&CertChange>) =
        change.certificates.iter().partition(|c| c.field.is_none());
    if let Some(cert) = own.first() {
        object.insert("certificate".to_owned(), cert_json(cert));
    }
    if !embedded.is_empty() {
        let embedded: Vec<Value> = embedded.into_iter().map(cert_json).collect();
        object.insert("embedded_certificates".to_owned(), embedded.into());
    }
    Value::Object(object)
}

fn cert_json(cert: &CertChange) -> Value {
    let mut value = json!({
        "reasons": cert.reasons.iter().map(|r| r.word()).collect::<Vec<_>>(),
        "sans_added": strings(&cert.sans_added),
        "sans_removed": strings(&cert.sans_removed),
        "old_not_after": time(cert.old_not_after),
        "new_not_after": time(cert.new_not_after),
        "old_serial": escape(&cert.old_serial),
        "new_serial": escape(&cert.new_serial),
        "old_issuer": escape(&cert.old_issuer),
        "new_issuer": escape(&cert.new_issuer),
    });
    if let (Some(field), Some(object)) = (&cert.field, value.as_object_mut()) {
        object.insert("field".to_owned(), escape(field).into());
    }
    value
}

fn strings(items: &[String]) -> Vec<String> {
    items.iter().map(|s| escape(s).into_owned()).collect()
}
