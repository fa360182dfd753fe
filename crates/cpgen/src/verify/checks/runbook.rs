//! A change bundle's runbook (`changes.json`): each step's command has the shape cpgen writes
//! for its action, so a hand-edited runbook cannot hand the operator's shell another program
//! (CP833). The runbook comes from the deployed bundle, so no rebuild can prove it; its shape
//! is what can be held.

use std::net::IpAddr;

use serde_json::Value;

use crate::diag::{Code, Diagnostic};
use crate::layout::CHANGES;
use crate::render::paths::{HAPROXY_UNIT, KEEPALIVED_UNIT, UNITS};
use crate::types::HostName;

use super::Audit;

/// The units a step may start, restart or stop: cpgen's and the packages' it configures.
const PACKAGED_UNITS: [&str; 2] = [HAPROXY_UNIT, KEEPALIVED_UNIT];

impl Audit<'_> {
    pub(super) fn runbook(&mut self) {
        let Some(entry) = self.tree.files.get(CHANGES) else {
            return;
        };
        let steps = serde_json::from_slice::<Value>(&entry.data)
            .ok()
            .and_then(|v| v.get("steps")?.as_array().cloned());
        let Some(steps) = steps else {
            self.push(Diagnostic::file_error(
                Code::Unparseable,
                CHANGES,
                "not a runbook: no list of steps",
                "build the bundle again with `cpgen bundle --previous`",
            ));
            return;
        };
        let mut found = Vec::new();
        for (index, step) in steps.iter().enumerate() {
            if let Err(problem) = step_shape(step) {
                found.push(Diagnostic::file_error(
                    Code::UnexpectedCommand,
                    CHANGES,
                    format!("step {}: {problem}", index + 1),
                    "a runbook's commands are cpgen's own: build the bundle again with `cpgen bundle --previous`, and find out who changed it",
                ));
            }
        }
        self.findings.extend(found);
    }
}

/// Why `step` is not one cpgen writes.
fn step_shape(step: &Value) -> Result<(), String> {
    let text = |key: &str| step.get(key).and_then(Value::as_str);
    let (Some(action), Some(host), Some(address), Some(command)) = (
        text("action"),
        text("host"),
        text("address"),
        text("command"),
    ) else {
        return Err("a step needs an action, a host, an address and a command".to_owned());
    };
    if host.parse::<HostName>().is_err() {
        return Err(format!("`{host}` is no host name"));
    }
    address_shape(address)?;
    // The playbook acts at the step's address, the operator's command at its own: the two
    // must be one machine.
    let reached = match action {
        "install" => install_shape(host, command)?,
        "start" | "restart" | "stop" => {
            unit_shape(action, text("unit").unwrap_or_default(), command)?
        }
        "etcd-member-add" | "etcd-member-promote" | "etcd-member-remove" | "wait" => {
            return retry_shape(command)
        }
        other => return Err(format!("unknown action `{other}`")),
    };
    if reached == address {
        Ok(())
    } else {
        Err(format!(
            "the command reaches {reached}, the step says it acts at {address}"
        ))
    }
}

/// `tar ... -C hosts/HOST -cf - . | ssh root@IP '[aside && ]tar ... -C / -xpf - && systemctl daemon-reload'`;
/// the address it reaches.
fn install_shape<'c>(host: &str, command: &'c str) -> Result<&'c str, String> {
    let head =
        format!("tar --owner=0 --group=0 --numeric-owner -C hosts/{host} -cf - . | ssh root@");
    let tail = "tar --no-overwrite-dir -C / -xpf - && systemctl daemon-reload'";
    let rest = command
        .strip_prefix(&head)
        .and_then(|rest| rest.strip_suffix(tail))
        .ok_or_else(|| {
            format!("an install that is not cpgen's copy of hosts/{host}/: `{command}`")
        })?;
    let (address, first) = rest
        .split_once(" '")
        .ok_or_else(|| format!("an install to no address: `{command}`"))?;
    address_shape(address)?;
    if first.is_empty() {
        return Ok(address);
    }
    // The joining member's old data, set aside: `if [ -e D/member ]; then mv D D.before-join; fi && `.
    let dir = first
        .strip_prefix("if [ -e ")
        .and_then(|r| r.split_once("/member ]; then mv "))
        .map(|(dir, _)| dir)
        .ok_or_else(|| format!("an install that runs more than cpgen's: `{command}`"))?;
    let aside = format!("if [ -e {dir}/member ]; then mv {dir} {dir}.before-join; fi && ");
    let plain = dir.starts_with('/')
        && dir
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
    if first == aside && plain {
        Ok(address)
    } else {
        Err(format!(
            "an install that runs more than cpgen's: `{command}`"
        ))
    }
}

fn address_shape(address: &str) -> Result<(), String> {
    address
        .parse::<IpAddr>()
        .map(drop)
        .map_err(|_| format!("`{address}` is no address"))
}

/// `ssh root@IP 'systemctl VERB UNIT'`; the address it reaches.
fn unit_shape<'c>(action: &str, unit: &str, command: &'c str) -> Result<&'c str, String> {
    if !UNITS.contains(&unit) && !PACKAGED_UNITS.contains(&unit) {
        return Err(format!("`{unit}` is no unit cpgen runs"));
    }
    let verb = match action {
        "start" => "enable --now",
        "restart" => "restart",
        _ => "disable --now",
    };
    let rest = command
        .strip_prefix("ssh root@")
        .and_then(|r| r.strip_suffix(&format!(" 'systemctl {verb} {unit}'")))
        .ok_or_else(|| format!("a {action} that is not `systemctl {verb} {unit}`: `{command}`"))?;
    address_shape(rest)?;
    Ok(rest)
}

/// `timeout 300 sh -c 'until CHECK; do sleep 2; done'`, where CHECK chains only etcdctl's
/// member and health commands, kubectl's readyz, grep and cut.
fn retry_shape(command: &str) -> Result<(), String> {
    let inner = command
        .strip_prefix("timeout 300 sh -c 'until ")
        .and_then(|r| r.strip_suffix("; do sleep 2; done'"))
        .ok_or_else(|| format!("not cpgen's retry loop: `{command}`"))?;
    let allowed = |c: char| c.is_ascii_alphanumeric() || " ,:/._=-|!$()\"[]\\".contains(c);
    if let Some(c) = inner.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "`{}` in a retried command: `{command}`",
            c.escape_default()
        ));
    }
    let segments = inner
        .split("||")
        .flat_map(|s| s.split('|'))
        .flat_map(|s| s.split("$("))
        .flat_map(|s| s.split(')'))
        .map(|s| s.trim().trim_start_matches('!').trim())
        .filter(|s| !s.is_empty());
    for segment in segments {
        segment_shape(segment).map_err(|problem| format!("{problem}: `{command}`"))?;
    }
    Ok(())
}

fn segment_shape(segment: &str) -> Result<(), String> {
    let words: Vec<&str> = segment.split_whitespace().collect();
    let plain: Vec<&str> = words
        .iter()
        .skip(1)
        .copied()
        .filter(|w| !w.starts_with('-'))
        .collect();
    let ok = match words.first().copied() {
        Some("etcdctl") => matches!(
            plain.as_slice(),
            ["member", "list"]
                | ["member", "add", _]
                | ["member", "promote"]
                | ["member", "remove"]
                | ["endpoint", "health"]
        ),
        Some("kubectl") => {
            segment.starts_with("kubectl --kubeconfig admin/admin.kubeconfig --server https://")
                && segment.ends_with(" get --raw /readyz")
                && words.len() == 8
        }
        Some("grep") => words
            .get(1)
            .is_some_and(|f| ["-q", "-F", "-qF"].contains(f)),
        Some("cut") => segment == "cut -d, -f1",
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("`{segment}` is no command of cpgen's runbook"))
    }
}
