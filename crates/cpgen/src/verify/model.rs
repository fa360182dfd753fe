//! What a bundle says about itself: the flags of each host's units, its kubeconfigs and its
//! HAProxy backends, parsed from text that may have been written by hand.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::source::Tree;
use crate::diag::{Code, Diagnostic};

/// A systemd unit's ExecStart: program and flags.
#[derive(Debug, Clone, Default)]
pub(crate) struct Unit {
    /// Path inside the bundle.
    pub(super) file: String,
    /// Program basename, e.g. `etcd`, `kube-apiserver`.
    pub(super) program: String,
    /// ExecStart's first word as written, prefixes (`-`, `!`, `+`, `@`) included.
    pub(super) command: String,
    /// Every other directive that makes systemd run a command or sets the environment the
    /// program reads its settings from (`ExecStartPre=...`, a second `ExecStart=`,
    /// `Environment=...`), as written.
    pub(super) extra_directives: Vec<String>,
    /// `--flag value` and `--flag=value`, by flag name without dashes; the last of a
    /// repeated flag, as the program reads it.
    pub(super) flags: BTreeMap<String, String>,
    /// Words after the program that are not flags.
    pub(super) arguments: Vec<String>,
    /// Flags given more than once.
    pub(super) repeated: Vec<String>,
    /// What systemd reads differently from the text's look (comments inside continued
    /// lines, escapes it refuses, `%` specifiers).
    pub(super) oddities: Vec<String>,
}

impl Unit {
    /// The value of `--name`.
    pub(crate) fn flag(&self, name: &str) -> Option<&str> {
        self.flags.get(name).map(String::as_str)
    }

    /// Every absolute path among the flags' values, a comma-separated list's items included:
    /// the files the program reads.
    pub(crate) fn absolute_paths(&self) -> impl Iterator<Item = &str> {
        self.flags
            .values()
            .flat_map(|value| value.split(','))
            .filter(|item| item.starts_with('/'))
    }
}

/// A kubeconfig, as far as cpgen reads one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub(super) struct Kubeconfig {
    /// Where it is in the bundle.
    #[serde(skip)]
    pub(super) path: String,
    /// `clusters:`.
    pub(super) clusters: Vec<Named<ClusterEntry>>,
    /// `users:`.
    pub(super) users: Vec<Named<UserEntry>>,
    /// `contexts:`.
    pub(super) contexts: Vec<Named<ContextEntry>>,
    /// `current-context:`.
    pub(super) current_context: String,
    /// Keys cpgen never writes (`token`, `proxy-url`, `tls-server-name`, ...), as
    /// `users[admin].token`.
    #[serde(skip)]
    pub(super) unexpected_keys: Vec<String>,
}

/// The keys a kubeconfig of cpgen's has, level by level: anything else can add a
/// credential (`token`, `username`), send the traffic elsewhere (`proxy-url`) or change
/// what the server's certificate must say (`tls-server-name`).
const KUBECONFIG_KEYS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "apiVersion",
            "kind",
            "clusters",
            "contexts",
            "users",
            "current-context",
            "preferences",
        ],
    ),
    ("clusters", &["name", "cluster"]),
    (
        "cluster",
        &[
            "server",
            "certificate-authority",
            "certificate-authority-data",
        ],
    ),
    ("contexts", &["name", "context"]),
    ("context", &["cluster", "user"]),
    ("users", &["name", "user"]),
    (
        "user",
        &[
            "client-certificate",
            "client-certificate-data",
            "client-key",
            "client-key-data",
        ],
    ),
];

impl Kubeconfig {
    /// The kubeconfig at `path` of the bundle, from its text: read once as YAML, then taken
    /// apart into what cpgen writes and the keys it never writes.
    fn parse(path: &str, text: &str) -> Result<Kubeconfig, String> {
        let value = serde_saphyr::from_str::<serde_json::Value>(text)
            .map_err(|e| first_line(&e.to_string()).to_owned())?;
        let mut unexpected_keys = Vec::new();
        unexpected_keys_in(&value, "", "", &mut unexpected_keys);
        let kubeconfig = serde_json::from_value::<Kubeconfig>(value)
            .map_err(|e| first_line(&e.to_string()).to_owned())?;
        Ok(Kubeconfig {
            path: path.to_owned(),
            unexpected_keys,
            ..kubeconfig
        })
    }
}

fn unexpected_keys_in(value: &serde_json::Value, level: &str, at: &str, found: &mut Vec<String>) {
    let allowed = KUBECONFIG_KEYS
        .iter()
        .find(|(name, _)| *name == level)
        .map_or(&[][..], |(_, keys)| *keys);
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                let here = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                if !allowed.contains(&key.as_str()) {
                    found.push(here);
                } else if matches!(
                    key.as_str(),
                    "clusters" | "contexts" | "users" | "cluster" | "context" | "user"
                ) {
                    unexpected_keys_in(inner, key, &here, found);
                }
            }
        }
        serde_json::Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                unexpected_keys_in(item, level, &format!("{at}[{index}]"), found);
            }
        }
        _ => {}
    }
}

/// `- name: X` plus the entry under `cluster:`, `user:` or `context:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(super) struct Named<T> {
    /// Its name.
    pub(super) name: String,
    /// The entry (under `cluster:`, `user:` or `context:`).
    #[serde(alias = "cluster", alias = "user", alias = "context")]
    pub(super) entry: T,
}

/// A cluster entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub(super) struct ClusterEntry {
    /// `server:`.
    pub(super) server: String,
    /// `certificate-authority:` (path).
    pub(super) certificate_authority: Option<String>,
    /// `certificate-authority-data:` (base64 PEM).
    pub(super) certificate_authority_data: Option<String>,
    /// `insecure-skip-tls-verify:`.
    pub(super) insecure_skip_tls_verify: bool,
}

/// A user entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub(super) struct UserEntry {
    /// `client-certificate:`.
    pub(super) client_certificate: Option<String>,
    /// `client-certificate-data:`.
    pub(super) client_certificate_data: Option<String>,
    /// `client-key:`.
    pub(super) client_key: Option<String>,
    /// `client-key-data:`.
    pub(super) client_key_data: Option<String>,
    /// `exec:`, a credential plugin: a program the client runs.
    pub(super) exec: Option<serde::de::IgnoredAny>,
    /// `auth-provider:`, a plugin too.
    pub(super) auth_provider: Option<serde::de::IgnoredAny>,
}

/// A context entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(super) struct ContextEntry {
    /// `cluster:`.
    pub(super) cluster: String,
    /// `user:`.
    pub(super) user: String,
}

/// The parsed pieces of one host (or of `admin/`).
#[derive(Debug, Clone, Default)]
pub(crate) struct HostModel {
    /// Host name (`admin` for the operator's files).
    pub(crate) name: String,
    /// Units by program.
    pub(super) units: Vec<Unit>,
    /// Kubeconfigs, each knowing its path in the bundle.
    pub(super) kubeconfigs: Vec<Kubeconfig>,
    /// HAProxy `server` lines.
    pub(super) haproxy_servers: Vec<HaproxyServer>,
    /// The bundle path of its HAProxy config, if it has one.
    pub(crate) haproxy_config: Option<String>,
    /// The kubelet's and kube-proxy's configuration files.
    pub(super) component_configs: Vec<ComponentConfig>,
    /// Bundle paths of systemd files that are not a unit directly in
    /// `/etc/systemd/system/` (drop-ins, units elsewhere).
    pub(super) other_systemd_files: Vec<String>,
}

impl HostModel {
    /// The unit running `program`.
    pub(crate) fn unit(&self, program: &str) -> Option<&Unit> {
        self.units.iter().find(|u| u.program == program)
    }

    /// `hosts/<name>/` or `admin/`'s prefix for a path on this host.
    pub(crate) fn bundle_path(&self, absolute: &str) -> String {
        if self.name == "admin" {
            absolute.trim_start_matches('/').to_owned()
        } else {
            format!("hosts/{}/{}", self.name, absolute.trim_start_matches('/'))
        }
    }
}

/// Which program reads a component configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ComponentKind {
    Kubelet,
    KubeProxy,
}

/// A KubeletConfiguration or KubeProxyConfiguration, as YAML read into a tree of values.
#[derive(Debug, Clone)]
pub(super) struct ComponentConfig {
    /// Where it is in the bundle.
    pub(super) path: String,
    pub(super) kind: ComponentKind,
    pub(super) value: serde_json::Value,
}

impl ComponentConfig {
    /// The value at a dotted path of keys (`authentication.anonymous.enabled`).
    pub(super) fn get(&self, dotted: &str) -> Option<&serde_json::Value> {
        dotted
            .split('.')
            .try_fold(&self.value, |value, key| value.get(key))
    }

    /// The string at a dotted path.
    pub(super) fn text(&self, dotted: &str) -> Option<&str> {
        self.get(dotted).and_then(serde_json::Value::as_str)
    }
}

/// One `server NAME HOST:PORT` line of an HAProxy config: a backend it forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HaproxyServer {
    /// The server's name in the config.
    pub(super) name: String,
    /// The host it dials, without IPv6 brackets.
    pub(super) host: String,
    /// The port it dials.
    pub(super) port: u16,
}

/// Every host's units, kubeconfigs and HAProxy backends, and a finding for each kubeconfig
/// that cannot be read.
pub(crate) fn hosts(tree: &Tree) -> (Vec<HostModel>, Vec<Diagnostic>) {
    let mut hosts: BTreeMap<String, HostModel> = BTreeMap::new();
    let mut problems = Vec::new();
    for (path, entry) in &tree.files {
        let (host, local) = match path
            .strip_prefix("hosts/")
            .and_then(|rest| rest.split_once('/'))
        {
            Some((host, local)) => (host.to_owned(), format!("/{local}")),
            None if path.starts_with("admin/") => ("admin".to_owned(), path.clone()),
            None => continue,
        };
        let model = hosts.entry(host.clone()).or_insert_with(|| HostModel {
            name: host,
            ..HostModel::default()
        });
        let text = String::from_utf8_lossy(&entry.data);
        let unit_file = local
            .strip_prefix("/etc/systemd/system/")
            .is_some_and(|name| name.ends_with(".service") && !name.contains('/'));
        if unit_file {
            if let Some(unit) = parse_unit(path, &text) {
                model.units.push(unit);
            }
        } else if local.contains("/systemd/") {
            model.other_systemd_files.push(path.clone());
        } else if local.ends_with("kubeconfig") {
            match Kubeconfig::parse(path, &text) {
                Ok(kubeconfig) => model.kubeconfigs.push(kubeconfig),
                Err(problem) => problems.push(Diagnostic::file_error(
                    Code::Unparseable,
                    path,
                    format!("not a kubeconfig: {problem}"),
                    "regenerate the kubeconfig",
                )),
            }
        } else if let Some(kind) = component_kind(&local) {
            match serde_saphyr::from_str::<serde_json::Value>(&text) {
                Ok(value) => model.component_configs.push(ComponentConfig {
                    path: path.clone(),
                    kind,
                    value,
                }),
                Err(e) => problems.push(Diagnostic::file_error(
                    Code::Unparseable,
                    path,
                    format!("not YAML: {}", first_line(&e.to_string())),
                    "regenerate the bundle",
                )),
            }
        } else if local.ends_with("haproxy.cfg") {
            model.haproxy_servers.extend(haproxy_servers(&text));
            model.haproxy_config = Some(path.clone());
        }
    }
    (hosts.into_values().collect(), problems)
}

/// The program whose configuration file lives at `local` on a host.
fn component_kind(local: &str) -> Option<ComponentKind> {
    use crate::render::paths::{KUBELET_CONFIG, KUBE_PROXY_CONFIG};
    match local {
        KUBELET_CONFIG => Some(ComponentKind::Kubelet),
        KUBE_PROXY_CONFIG => Some(ComponentKind::KubeProxy),
        _ => None,
    }
}

/// The files the kubeconfig at `path` names (`certificate-authority`, `client-certificate`,
/// `client-key`), as written; none when it does not parse.
pub(crate) fn kubeconfig_files(path: &str, text: &str) -> Vec<String> {
    let Ok(kubeconfig) = Kubeconfig::parse(path, text) else {
        return Vec::new();
    };
    let clusters = kubeconfig
        .clusters
        .into_iter()
        .filter_map(|cluster| cluster.entry.certificate_authority);
    let users = kubeconfig
        .users
        .into_iter()
        .flat_map(|user| [user.entry.client_certificate, user.entry.client_key])
        .flatten();
    clusters.chain(users).collect()
}

/// The first cluster of the kubeconfig at `path`: its `server:` and its
/// `certificate-authority-data:` (base64 PEM), as written; `None` when it does not parse or
/// has no cluster.
pub(crate) fn kubeconfig_server(path: &str, text: &str) -> Option<(String, Option<String>)> {
    let cluster = Kubeconfig::parse(path, text)
        .ok()?
        .clusters
        .into_iter()
        .next()?;
    Some((
        cluster.entry.server,
        cluster.entry.certificate_authority_data,
    ))
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// The directives cpgen writes in a unit, by section: anything else can change what runs
/// or how (`ExecStartPre`, `Environment`, `BindReadOnlyPaths`, `RootDirectory`, `OnFailure`,
/// ...), so verify allows nothing else rather than chasing a list of dangerous ones.
/// With the values each may have (`None`: any text, as for a description). A dependency on
/// another unit pulls that unit in (`Wants=debug-shell.service` opens a root shell), so
/// those name only what cpgen names.
const UNIT_DIRECTIVES: &[(&str, &str, Option<&[&str]>)] = &[
    ("Unit", "Description", None),
    ("Unit", "Documentation", None),
    (
        "Unit",
        "After",
        Some(&[
            "network.target",
            "network-online.target",
            "etcd.service",
            "kube-apiserver.service",
        ]),
    ),
    ("Unit", "Wants", Some(&["network-online.target"])),
    ("Service", "Type", Some(&["notify"])),
    ("Service", "ExecStart", None),
    ("Service", "Restart", Some(&["on-failure"])),
    ("Service", "RestartSec", Some(&["5"])),
    ("Service", "LimitNOFILE", Some(&["65536"])),
    ("Install", "WantedBy", Some(&["multi-user.target"])),
];

/// True when cpgen writes `key=value` in `section`.
fn directive_allowed(section: &str, key: &str, value: &str) -> bool {
    UNIT_DIRECTIVES.iter().any(|(s, k, values)| {
        *s == section && *k == key && values.is_none_or(|values| values.contains(&value))
    })
}

/// One `Key=value` line of a unit, in its section.
struct Directive {
    section: String,
    key: String,
    value: String,
}

/// A unit's directives as systemd reads them, in order, with continuation lines joined the
/// way systemd joins them, and what systemd would read differently from the text's look.
fn unit_directives(text: &str) -> (Vec<Directive>, Vec<String>) {
    let mut directives = Vec::new();
    let mut oddities = Vec::new();
    let mut sections: Vec<String> = Vec::new();
    let mut section = String::new();
    let mut pending: Option<String> = None;
    // systemd ends a line at a lone carriage return or a NUL as at a line feed: a directive
    // after one would hide inside the value before it.
    let crlf = text.replace("\r\n", "\n");
    if crlf.contains(['\r', '\0']) {
        oddities.push(
            "a carriage return or NUL inside a line: systemd ends the line there, so what follows is a directive of its own".to_owned(),
        );
    }
    let text = crlf.replace(['\r', '\0'], "\n");
    for line in text.lines() {
        let trimmed = line.trim_start();
        if pending.is_some() && (trimmed.starts_with('#') || trimmed.starts_with(';')) {
            // systemd skips a comment inside a continued line and goes on with the next.
            oddities.push(format!(
                "a comment inside a continued line (`{}`): systemd skips it and keeps reading the line",
                trimmed.trim()
            ));
            continue;
        }
        let continued = ends_in_unescaped_backslash(line);
        let piece = if continued {
            &line[..line.len() - 1]
        } else {
            line
        };
        let logical = match pending.take() {
            Some(mut before) => {
                before.push(' ');
                before.push_str(piece);
                before
            }
            None => piece.to_owned(),
        };
        if continued {
            pending = Some(logical);
            continue;
        }
        let logical = logical.trim();
        if logical.is_empty() || logical.starts_with('#') || logical.starts_with(';') {
            continue;
        }
        if let Some(name) = logical.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            if sections.contains(&section) {
                oddities.push(format!(
                    "[{section}] appears twice; cpgen writes each section once"
                ));
            }
            sections.push(section.clone());
        } else if let Some((key, value)) = logical.split_once('=') {
            directives.push(Directive {
                section: section.clone(),
                key: key.trim().to_owned(),
                value: value.trim().to_owned(),
            });
        } else {
            oddities.push(format!("a line systemd does not understand: `{logical}`"));
        }
    }
    if let Some(rest) = pending {
        oddities.push(format!(
            "the file ends inside a continued line: `{}`",
            rest.trim()
        ));
    }
    (directives, oddities)
}

/// True when the line ends in a backslash that no other backslash escapes: systemd's rule
/// for a continuation (`\\` at the end is a literal backslash, and the line ends there).
fn ends_in_unescaped_backslash(line: &str) -> bool {
    let trailing = line.bytes().rev().take_while(|b| *b == b'\\').count();
    trailing % 2 == 1
}

/// Splits a command line into words as systemd does: whitespace between words, `"..."`
/// and `'...'` quoting, C escapes (`\x63` is `c`), `%%` and `$$` for `%` and `$`. Returns
/// the words, or why the line cannot be read the same way by verify and systemd.
fn command_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(words);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match c {
                '"' | '\'' if quote.is_none() => quote = Some(c),
                c if Some(c) == quote => quote = None,
                c if c.is_whitespace() && quote.is_none() => break,
                '\\' => word.push(unescape(&mut chars)?),
                '%' | '$' if chars.peek() == Some(&c) => {
                    chars.next();
                    word.push(c);
                }
                '%' => return Err("a `%` specifier, which systemd replaces".to_owned()),
                c => word.push(c),
            }
        }
        if quote.is_some() {
            return Err("an unterminated quote".to_owned());
        }
        words.push(word);
    }
}

/// The character a C escape stands for, after its backslash.
fn unescape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<char, String> {
    let digits = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>, n: usize, radix| {
        let text: String = (0..n).filter_map(|_| chars.next()).collect();
        u32::from_str_radix(&text, radix)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| format!("an escape `{text}` systemd decodes differently"))
    };
    match chars.next() {
        Some('a') => Ok('\u{7}'),
        Some('b') => Ok('\u{8}'),
        Some('f') => Ok('\u{c}'),
        Some('n') => Ok('\n'),
        Some('r') => Ok('\r'),
        Some('t') => Ok('\t'),
        Some('v') => Ok('\u{b}'),
        Some('s') => Ok(' '),
        Some('x') => digits(chars, 2, 16),
        Some('u') => digits(chars, 4, 16),
        Some('U') => digits(chars, 8, 16),
        Some(c @ '0'..='7') => {
            let rest: String = (0..2).filter_map(|_| chars.next()).collect();
            u32::from_str_radix(&format!("{c}{rest}"), 8)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| "an octal escape systemd decodes differently".to_owned())
        }
        Some(c @ ('\\' | '"' | '\'')) => Ok(c),
        Some(c) => Err(format!("an escape `\\{c}` systemd refuses")),
        None => Err("a backslash at the end of the command".to_owned()),
    }
}

/// The ExecStart of a unit, read as systemd reads it; `None` without one.
pub(crate) fn parse_unit(file: &str, text: &str) -> Option<Unit> {
    let (directives, mut oddities) = unit_directives(text);
    let mut exec = None;
    let mut extra_directives = Vec::new();
    for Directive {
        section,
        key,
        value,
    } in directives
    {
        let allowed = directive_allowed(&section, &key, &value);
        // An empty `ExecStart=` resets the list: cpgen never writes one, so it is kept
        // among the extra directives rather than hiding the unit's real command.
        if key == "ExecStart" && section == "Service" && exec.is_none() && !value.is_empty() {
            exec = Some(value);
        } else if !allowed || key == "ExecStart" {
            extra_directives.push(format!("[{section}] {key}={value}"));
        }
    }
    let words = match command_words(&exec?) {
        Ok(words) => words,
        Err(problem) => {
            oddities.push(format!("ExecStart holds {problem}"));
            Vec::new()
        }
    };
    let mut words = words.into_iter().peekable();
    let command = words.next().unwrap_or_default();
    let program = command.trim_start_matches(['-', '@', '+', '!', ':']);
    let program = program.rsplit('/').next().unwrap_or(program).to_owned();
    let mut flags = BTreeMap::new();
    let mut arguments = Vec::new();
    let mut repeated = Vec::new();
    while let Some(word) = words.next() {
        // Go's flag package reads `-flag` as `--flag`.
        let Some(flag) = word.strip_prefix("--").or_else(|| word.strip_prefix('-')) else {
            arguments.push(word);
            continue;
        };
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name.to_owned(), value.to_owned()),
            None => {
                let value = words
                    .next_if(|next| !next.starts_with('-'))
                    .unwrap_or_else(|| "true".to_owned());
                (flag.to_owned(), value)
            }
        };
        // The last one wins in Go's flag package, as in this map.
        if flags.insert(name.clone(), value).is_some() {
            repeated.push(name);
        }
    }
    Some(Unit {
        file: file.to_owned(),
        program,
        command,
        extra_directives,
        flags,
        arguments,
        repeated,
        oddities,
    })
}

/// `server NAME HOST:PORT ...` lines of an HAProxy config.
fn haproxy_servers(text: &str) -> Vec<HaproxyServer> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            if words.next()? != "server" {
                return None;
            }
            let name = words.next()?.to_owned();
            let (host, port) = words.next()?.rsplit_once(':')?;
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            Some(HaproxyServer {
                name,
                host,
                port: port.parse().ok()?,
            })
        })
        .collect()
}

/// The host part of `https://host:port/...`, without IPv6 brackets.
pub(super) fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next()?;
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next();
    }
    Some(authority.rsplit_once(':').map_or(authority, |(h, _)| h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_parse_in_both_flag_styles_and_with_the_guides_missing_space() {
        let text = "[Service]\nExecStart=/usr/bin/etcd \\\n--name kubem00 \\\n--listen-client-urls https://10.0.0.1:2379\\\n--advertise-client-urls=https://10.0.0.1:2379 \\\n--debug=false\n";
        let unit = parse_unit("u", text).unwrap();
        assert_eq!(unit.program, "etcd");
        assert_eq!(unit.flag("name"), Some("kubem00"));
        assert_eq!(
            unit.flag("listen-client-urls"),
            Some("https://10.0.0.1:2379")
        );
        assert_eq!(
            unit.flag("advertise-client-urls"),
            Some("https://10.0.0.1:2379")
        );
    }

    #[test]
    fn commands_and_extra_directives_are_kept_as_written() {
        let text = "[Service]\nEnvironment=ETCD_AUTO_TLS=true\nExecStart=\nExecStart=!/usr/bin/etcd \\\n  --name=a\nExecStartPre=/bin/true\n#ExecStop=/bin/false\n";
        let unit = parse_unit("u", text).unwrap();
        assert_eq!(unit.command, "!/usr/bin/etcd");
        assert_eq!(unit.program, "etcd");
        assert_eq!(unit.flag("name"), Some("a"));
        assert_eq!(
            unit.extra_directives,
            [
                "[Service] Environment=ETCD_AUTO_TLS=true",
                "[Service] ExecStart=",
                "[Service] ExecStartPre=/bin/true"
            ]
        );
    }

    #[test]
    fn units_read_as_systemd_reads_them() {
        // A comment inside a continued line is skipped, and the line goes on.
        let unit = parse_unit(
            "u",
            "[Service]\nExecStart=/usr/bin/etcd \\\n#  --client-cert-auth=true \\\n  --name=a\n",
        )
        .unwrap();
        assert_eq!(unit.flag("client-cert-auth"), None);
        assert_eq!(unit.flag("name"), Some("a"));
        assert_eq!(unit.oddities.len(), 1, "{:?}", unit.oddities);
        // `\\` at the end is a literal backslash: the next line is a directive of its own.
        let unit = parse_unit(
            "u",
            "[Service]\nExecStart=/usr/bin/etcd --name=a \\\\\nExecStartPre=/bin/sh -c id\n",
        )
        .unwrap();
        assert_eq!(
            unit.extra_directives,
            ["[Service] ExecStartPre=/bin/sh -c id"]
        );
        // C escapes and quotes are decoded; the last of a repeated flag wins.
        let unit = parse_unit(
            "u",
            "[Service]\nExecStart=/usr/bin/etcd --client-cert-auth=true --\\x63lient-cert-auth=false \"--name=b c\"\n",
        )
        .unwrap();
        assert_eq!(unit.flag("client-cert-auth"), Some("false"));
        assert_eq!(unit.repeated, ["client-cert-auth"]);
        assert_eq!(unit.flag("name"), Some("b c"));
        // Directives cpgen never writes are kept, whatever they are.
        let unit = parse_unit(
            "u",
            "[Service]\nExecStart=/usr/bin/etcd\nBindReadOnlyPaths=/tmp/x:/usr/bin/etcd\n[Unit]\nOnFailure=x.service\n",
        )
        .unwrap();
        assert_eq!(
            unit.extra_directives,
            [
                "[Service] BindReadOnlyPaths=/tmp/x:/usr/bin/etcd",
                "[Unit] OnFailure=x.service"
            ]
        );
    }

    #[test]
    fn url_hosts() {
        assert_eq!(url_host("https://kubernetes:6443"), Some("kubernetes"));
        assert_eq!(url_host("https://[fd00::1]:6443/x"), Some("fd00::1"));
        assert_eq!(url_host("https://10.0.0.1"), Some("10.0.0.1"));
    }

    #[test]
    fn haproxy_backends() {
        let servers = haproxy_servers("listen x\n    server secure_kubem00 10.10.10.80:6443 check\n    server m1 [fd00::1]:6443 check\n");
        assert_eq!(
            servers[0],
            HaproxyServer {
                name: "secure_kubem00".into(),
                host: "10.10.10.80".into(),
                port: 6443
            }
        );
        assert_eq!(servers[1].host, "fd00::1");
    }
}
