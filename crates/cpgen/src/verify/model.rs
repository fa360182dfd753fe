//! What a bundle says about itself: the flags of each host's units, its kubeconfigs and its
//! HAProxy backends, parsed from text that may have been written by hand.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::source::Tree;

/// A systemd unit's ExecStart: program and flags.
#[derive(Debug, Clone, Default)]
pub(super) struct Unit {
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
    /// `--flag value` and `--flag=value`, by flag name without dashes.
    pub(super) flags: BTreeMap<String, String>,
}

impl Unit {
    /// The value of `--name`.
    pub(super) fn flag(&self, name: &str) -> Option<&str> {
        self.flags.get(name).map(String::as_str)
    }
}

/// A kubeconfig, as far as cpgen reads one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub(super) struct Kubeconfig {
    /// `clusters:`.
    pub(super) clusters: Vec<Named<ClusterEntry>>,
    /// `users:`.
    pub(super) users: Vec<Named<UserEntry>>,
    /// `contexts:`.
    pub(super) contexts: Vec<Named<ContextEntry>>,
    /// `current-context:`.
    pub(super) current_context: String,
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
pub(super) struct HostModel {
    /// Host name (`admin` for the operator's files).
    pub(super) name: String,
    /// Units by program.
    pub(super) units: Vec<Unit>,
    /// Kubeconfigs by path inside the bundle.
    pub(super) kubeconfigs: Vec<(String, Kubeconfig)>,
    /// HAProxy `server` lines: (name, host, port).
    pub(super) haproxy_servers: Vec<(String, String, u16)>,
    /// The bundle path of its HAProxy config, if it has one.
    pub(super) haproxy_config: Option<String>,
    /// Bundle paths of systemd files that are not a unit directly in
    /// `/etc/systemd/system/` (drop-ins, units elsewhere).
    pub(super) other_systemd_files: Vec<String>,
}

impl HostModel {
    /// The unit running `program`.
    pub(super) fn unit(&self, program: &str) -> Option<&Unit> {
        self.units.iter().find(|u| u.program == program)
    }

    /// `hosts/<name>/` or `admin/`'s prefix for a path on this host.
    pub(super) fn bundle_path(&self, absolute: &str) -> String {
        if self.name == "admin" {
            absolute.trim_start_matches('/').to_owned()
        } else {
            format!("hosts/{}/{}", self.name, absolute.trim_start_matches('/'))
        }
    }
}

/// Why a file could not be understood.
pub(super) type ParseProblem = (String, String);

/// Every host's units, kubeconfigs and HAProxy backends.
pub(super) fn hosts(tree: &Tree) -> (Vec<HostModel>, Vec<ParseProblem>) {
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
            match serde_saphyr::from_str::<Kubeconfig>(&text) {
                Ok(kubeconfig) => model.kubeconfigs.push((path.clone(), kubeconfig)),
                Err(e) => problems.push((
                    path.clone(),
                    format!("not a kubeconfig: {}", first_line(&e.to_string())),
                )),
            }
        } else if local.ends_with("haproxy.cfg") {
            model.haproxy_servers.extend(haproxy_servers(&text));
            model.haproxy_config = Some(path.clone());
        }
    }
    (hosts.into_values().collect(), problems)
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// The ExecStart of a unit, continuation lines joined; `None` without one.
pub(super) fn parse_unit(file: &str, text: &str) -> Option<Unit> {
    let joined = text.replace("\\\r\n", " ").replace("\\\n", " ");
    let mut exec = None;
    let mut extra_directives = Vec::new();
    for line in joined.lines().map(str::trim) {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        // An empty `ExecStart=` resets the list: cpgen never writes one, so it is kept
        // among the extra directives rather than hiding the unit's real command.
        if key == "ExecStart" && exec.is_none() && !value.trim().is_empty() {
            exec = Some(value);
        } else if key.starts_with("Exec") || key.starts_with("Environment") {
            extra_directives.push(line.to_owned());
        }
    }
    let mut words = exec?.split_whitespace().peekable();
    let command = words.next()?.to_owned();
    let program = command.trim_start_matches(['-', '@', '+', '!', ':']);
    let program = program.rsplit('/').next().unwrap_or(program).to_owned();
    let mut flags = BTreeMap::new();
    while let Some(word) = words.next() {
        let Some(flag) = word.strip_prefix("--") else {
            continue;
        };
        match flag.split_once('=') {
            Some((name, value)) => {
                flags.insert(name.to_owned(), value.to_owned());
            }
            None => {
                let value = words
                    .next_if(|next| !next.starts_with("--"))
                    .unwrap_or("true");
                flags.insert(flag.to_owned(), value.to_owned());
            }
        }
    }
    Some(Unit {
        file: file.to_owned(),
        program,
        command,
        extra_directives,
        flags,
    })
}

/// `server NAME HOST:PORT ...` lines of an HAProxy config.
fn haproxy_servers(text: &str) -> Vec<(String, String, u16)> {
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
            Some((name, host, port.parse().ok()?))
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
                "Environment=ETCD_AUTO_TLS=true",
                "ExecStart=",
                "ExecStartPre=/bin/true"
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
            ("secure_kubem00".into(), "10.10.10.80".into(), 6443)
        );
        assert_eq!(servers[1].1, "fd00::1");
    }
}
