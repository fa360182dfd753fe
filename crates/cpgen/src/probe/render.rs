//! A [`ProbeReport`] as a table for people, as JSON (DESIGN.md §11) and as Prometheus text
//! exposition. Host names, subjects and network errors come from untrusted bundles and
//! servers: every string goes through `diag::escape`.

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

use super::{Endpoint, ProbeReport, Status};
use crate::diag::{counted, diagnostics_json, escape, Source};

/// The table, worst first: a line per endpoint, then what is wrong and its fix, then a
/// summary.
pub(super) fn text(report: &ProbeReport) -> String {
    let mut out = String::new();
    if !report.bundle_errors.is_empty() {
        out.push_str(&crate::verify::render_findings(&report.bundle_errors));
        out.push_str(&format!(
            "the bundle itself does not verify ({}): what the cluster serves is compared with a bundle that is not sound\n\n",
            counted(report.bundle_errors.len(), "error")
        ));
    }
    let rows: Vec<[String; 4]> = report
        .endpoints
        .iter()
        .map(|e| {
            [
                e.status.name().to_owned(),
                escape(&e.host).into_owned(),
                e.service.name().to_owned(),
                escape(&e.endpoint).into_owned(),
            ]
        })
        .collect();
    let header = ["STATUS", "HOST", "SERVICE", "ENDPOINT"].map(str::to_owned);
    let widths: Vec<usize> = (0..4)
        .map(|i| {
            std::iter::once(&header)
                .chain(&rows)
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |row: &[String; 4]| {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        format!("{}\n", cells.join("  ").trim_end())
    };
    out.push_str(&line(&header));
    for (endpoint, row) in report.endpoints.iter().zip(&rows) {
        out.push_str(&line(row));
        if !endpoint.is_ok() {
            out.push_str(&format!("    {}\n", escape(&endpoint.detail)));
            if let Some(health) = endpoint.health.as_ref().filter(|h| !h.ok) {
                out.push_str(&format!(
                    "    GET {} answered: {}\n",
                    health.path,
                    escape(&health.answer)
                ));
            }
            if let Some(fix) = &endpoint.fix {
                out.push_str(&format!("    fix: {}\n", escape(fix)));
            }
        }
    }
    out.push_str(&summary(report));
    out
}

fn summary(report: &ProbeReport) -> String {
    let counts: Vec<String> = Status::ALL
        .iter()
        .rev()
        .filter_map(|status| {
            let n = report
                .endpoints
                .iter()
                .filter(|e| e.status == *status)
                .count();
            (n > 0).then(|| format!("{n} {}", status.name()))
        })
        .collect();
    let troubled = report
        .endpoints
        .iter()
        .filter(|e| e.status == Status::Ok && !e.is_ok())
        .count();
    let mut line = format!(
        "{}: {}",
        counted(report.endpoints.len(), "endpoint"),
        if counts.is_empty() {
            "none".to_owned()
        } else {
            counts.join(", ")
        }
    );
    if troubled > 0 {
        line.push_str(&format!(
            " ({troubled} of the ok serve the bundle's certificate but fail their health request or do not name the address dialled)"
        ));
    }
    line.push('\n');
    line
}

/// `{"valid", "at", "endpoints": [...], "bundle_errors": [...]}`.
pub(super) fn json(report: &ProbeReport) -> Value {
    let mut endpoints = serde_json::to_value(&report.endpoints).unwrap_or(Value::Null);
    escape_strings(&mut endpoints);
    json!({
        "valid": report.all_ok(),
        "at": report.at.format(&Rfc3339).unwrap_or_default(),
        "endpoints": endpoints,
        "bundle_errors": diagnostics_json(&report.bundle_errors, &Source::default()),
    })
}

fn escape_strings(value: &mut Value) {
    match value {
        Value::String(text) => {
            if let std::borrow::Cow::Owned(escaped) = escape(text) {
                *text = escaped;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(escape_strings),
        Value::Object(fields) => fields.values_mut().for_each(escape_strings),
        _ => {}
    }
}

/// Gauges for a textfile collector: `cpgen_probe_status` (1 for the endpoint's status, 0
/// for the others, so an alert can name the status), `cpgen_probe_ok`,
/// `cpgen_probe_certificate_expiry_seconds` and `cpgen_probe_bundle_valid`.
pub(super) fn prometheus(report: &ProbeReport) -> String {
    let mut out = String::new();
    let mut family = |name: &str, help: &str, samples: Vec<(String, String)>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for (labels, value) in samples {
            if labels.is_empty() {
                out.push_str(&format!("{name} {value}\n"));
            } else {
                out.push_str(&format!("{name}{{{labels}}} {value}\n"));
            }
        }
    };
    let status = report
        .endpoints
        .iter()
        .flat_map(|e| {
            Status::ALL.iter().map(move |s| {
                (
                    format!("{},status=\"{}\"", labels(e), s.name()),
                    u8::from(e.status == *s).to_string(),
                )
            })
        })
        .collect();
    family(
        "cpgen_probe_status",
        "1 for the status the endpoint is in (ok, drift, unreachable, expired, foreign), 0 for the others.",
        status,
    );
    let ok = report
        .endpoints
        .iter()
        .map(|e| (labels(e), u8::from(e.is_ok()).to_string()))
        .collect();
    family(
        "cpgen_probe_ok",
        "1 when the endpoint serves the bundle's certificate, names the address dialled and answers its health request.",
        ok,
    );
    let expiry = report
        .endpoints
        .iter()
        .filter_map(|e| {
            let served = e.served.as_ref()?;
            Some((
                labels(e),
                (served.not_after - report.at).whole_seconds().to_string(),
            ))
        })
        .collect();
    family(
        "cpgen_probe_certificate_expiry_seconds",
        "Seconds until the served certificate expires (negative once it has).",
        expiry,
    );
    family(
        "cpgen_probe_bundle_valid",
        "1 when the bundle the cluster is compared with verifies.",
        vec![(
            String::new(),
            u8::from(report.bundle_errors.is_empty()).to_string(),
        )],
    );
    out
}

fn labels(endpoint: &Endpoint) -> String {
    format!(
        "endpoint=\"{}\",host=\"{}\",service=\"{}\"",
        label_value(&endpoint.endpoint),
        label_value(&endpoint.host),
        endpoint.service.name()
    )
}

/// A label value as the exposition format quotes it.
fn label_value(text: &str) -> String {
    // Control characters are escaped first, as everywhere: a .prom file gets `cat`.
    escape(text)
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_quoted_and_carry_no_control_characters() {
        let value = label_value("w\"0\\x\n\u{1b}[31m\u{7}");
        assert!(!value.chars().any(char::is_control), "{value}");
        assert!(value.starts_with("w\\\"0\\\\x"), "{value}");
    }
}
