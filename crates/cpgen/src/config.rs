//! The raw configuration: `cluster.toml` as written, every user value with its source span,
//! nothing resolved or checked beyond TOML syntax and value types. Values of the wrong type
//! and unknown keys are collected (all of them, in TOML's words, with a hint) rather than
//! stopping at the first; a wrong-typed value is left out, so the rest is still validated.

use std::io::Read;
use std::ops::Range;

use camino::{Utf8Path, Utf8PathBuf};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::de::{DeArray, DeTable, DeValue};
use toml::Spanned;

use std::collections::HashMap;

use crate::diag::{did_you_mean, Code, Diagnostic, Location, Report};
use crate::spec::{self, ClusterSpec, HostSpec, Origins};
use crate::Error;

/// A string value and where it was written.
pub(crate) type Text = Spanned<String>;
/// An integer value and where it was written.
pub(crate) type Int = Spanned<i64>;
/// A list of strings and where it was written.
pub(crate) type TextList = Spanned<Vec<Text>>;
/// A boolean value and where it was written.
pub(crate) type Flag = Spanned<bool>;

/// `cluster.toml` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub(crate) struct RawConfig {
    pub cluster: Option<Spanned<RawCluster>>,
    pub network: Option<Spanned<RawNetwork>>,
    pub api: Option<Spanned<RawApi>>,
    #[serde(default)]
    pub masters: Vec<Spanned<RawHost>>,
    pub load_balancer: Option<Spanned<RawLoadBalancer>>,
    pub etcd: Option<Spanned<RawEtcd>>,
    pub pki: Option<Spanned<RawPki>>,
    #[serde(default)]
    pub workers: Vec<Spanned<RawHost>>,
    pub control_plane: Option<Spanned<RawControlPlane>>,
    pub kubelet: Option<Spanned<RawKubelet>>,
}

/// `[control_plane]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub(crate) struct RawControlPlane {
    pub workloads: Option<Flag>,
}

/// `[kubelet]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub(crate) struct RawKubelet {
    pub container_runtime_endpoint: Option<Text>,
}

/// `[cluster]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub(crate) struct RawCluster {
    pub name: Option<Text>,
    pub kubernetes_version: Option<Text>,
    pub dns_domain: Option<Text>,
}

/// `[network]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub(crate) struct RawNetwork {
    pub service_cidr: Option<Text>,
    pub pod_cidr: Option<Text>,
    pub node_port_range: Option<Text>,
    pub host_cidrs: Option<TextList>,
}

/// `[api]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub(crate) struct RawApi {
    pub endpoint: Option<Text>,
    pub port: Option<Int>,
    pub bind_port: Option<Int>,
    pub extra_sans: Option<TextList>,
    pub components_via: Option<Text>,
    pub admission_plugins: Option<TextList>,
    pub authorization_modes: Option<TextList>,
}

/// One `[[masters]]`, `[[workers]]` or `[[load_balancer.hosts]]` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub(crate) struct RawHost {
    pub name: Option<Text>,
    pub address: Option<Text>,
}

/// `[load_balancer]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub(crate) struct RawLoadBalancer {
    pub mode: Option<Text>,
    pub bind_port: Option<Int>,
    pub health_check: Option<Text>,
    pub vip: Option<Text>,
    pub vip_interface: Option<Text>,
    #[serde(default)]
    pub hosts: Vec<Spanned<RawHost>>,
}

/// `[etcd]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub(crate) struct RawEtcd {
    pub client_port: Option<Int>,
    pub peer_port: Option<Int>,
    pub initial_cluster_token: Option<Text>,
    pub data_dir: Option<Text>,
    pub extra_sans: Option<TextList>,
}

/// `[pki]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub(crate) struct RawPki {
    pub key_algorithm: Option<Text>,
    pub service_account_key_algorithm: Option<Text>,
    pub ca_validity_days: Option<Int>,
    pub cert_validity_days: Option<Int>,
    pub layout: Option<Text>,
    pub encryption_provider: Option<Text>,
}

/// The largest `cluster.toml` cpgen reads (4 MiB).
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// A parsed (not yet validated) configuration and the text it came from.
#[derive(Debug)]
pub struct Config {
    source_name: String,
    source: String,
    raw: RawConfig,
    parse_findings: Vec<Diagnostic>,
    /// Where the values left out for their type were: see [`Config::wrong_typed_within`].
    wrong_typed: Vec<String>,
}

impl Config {
    /// Reads and parses a configuration file. A missing or unreadable file is
    /// [`Error::Read`]; bytes that are not UTF-8 are [`Error::NotText`]; bad TOML is
    /// [`Error::Invalid`].
    pub fn from_path(path: &Utf8Path) -> Result<Config, Error> {
        let read_error = |source| Error::Read {
            path: path.to_owned(),
            source,
        };
        if path.is_dir() {
            return Err(read_error(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "it is a directory, not a cluster.toml",
            )));
        }
        // A FIFO would block the read forever and a device (/dev/zero) never end it.
        let metadata = std::fs::metadata(path).map_err(read_error)?;
        if !metadata.is_file() {
            return Err(read_error(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "it is not a regular file (a FIFO, socket or device), not a cluster.toml",
            )));
        }
        // Bounded before reading: a cluster description is a few kilobytes, even with
        // thousands of hosts, and a runaway file should not fill memory.
        let too_large = |size| Error::TooLarge {
            path: path.to_owned(),
            size,
            limit: MAX_CONFIG_BYTES,
        };
        if metadata.len() > MAX_CONFIG_BYTES {
            return Err(too_large(metadata.len()));
        }
        // And bounded while reading, as the file may grow between the two.
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes))
            .map_err(read_error)?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(too_large(bytes.len() as u64));
        }
        let text = String::from_utf8(bytes).map_err(|e| Error::NotText {
            path: path.to_owned(),
            offset: e.utf8_error().valid_up_to(),
        })?;
        Config::parse(path.as_str(), &text)
    }

    /// Parses configuration text; `source_name` names it in diagnostics. Bad TOML syntax is
    /// [`Error::Invalid`]; a value of the wrong type or an unknown key is a finding in
    /// [`Config::parse_findings`], and a wrong-typed value is left out of the values the rules see.
    pub fn parse(source_name: &str, text: &str) -> Result<Config, Error> {
        if holds_secrets(text) {
            // No snippet, no value: the file's lines are key material.
            let finding = Diagnostic::error(
                Code::NotAConfig,
                "this holds private keys (a cpgen secrets file or a key), not a cluster description; none of it is shown",
            )
            .help("give the cluster.toml; its secrets file is found beside it, or named with --secrets");
            return Err(Error::Invalid(Box::new(Report::new(
                source_name,
                "",
                vec![finding],
            ))));
        }
        let invalid = |findings| Error::Invalid(Box::new(Report::new(source_name, text, findings)));
        let (mut document, syntax_errors) = DeTable::parse_recoverable(text);
        // Only the first syntax error: after it, the parser's recovery guesses, and its
        // later complaints are often about text that is fine.
        if let Some(first) = syntax_errors.first() {
            return Err(invalid(vec![toml_error(first, text)]));
        }
        // Types are checked here rather than left to serde, which stops at the first
        // mismatch and names it in Rust's words; the mismatched values are removed so that
        // the rest still deserializes and is validated in the same run.
        let mut types = TypeCheck::default();
        types.table(document.get_mut(), "", "");
        let mut ignored = Vec::new();
        let raw = serde_ignored::deserialize(toml::Deserializer::from(document.clone()), |path| {
            ignored.push(key_path(&path))
        });
        let raw = raw.map_err(|e| invalid(vec![toml_error(&e, text)]))?;
        let mut parse_findings = types.findings;
        parse_findings.extend(
            ignored
                .iter()
                .map(|path| unknown_key(document.get_ref(), path)),
        );
        parse_findings.sort_by_key(|d| d.primary.as_ref().and_then(|l| l.span()).map(|s| s.start));
        Ok(Config {
            source_name: source_name.to_owned(),
            source: text.to_owned(),
            raw,
            parse_findings,
            wrong_typed: types.dropped,
        })
    }

    /// The raw values as written.
    #[cfg(test)]
    pub(crate) fn raw(&self) -> &RawConfig {
        &self.raw
    }

    /// The name of the source in diagnostics (usually its path).
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Findings of the parse that do not stop validation (wrong types, unknown keys).
    pub fn parse_findings(&self) -> &[Diagnostic] {
        &self.parse_findings
    }

    /// Whether a value at `path`, or anywhere under it, was written but left out of
    /// the values the rules see for its type. `path` is dotted, with the indices of the arrays:
    /// `masters.0.name` is the `name` of the first master. Rules use it so
    /// that a value reported as wrong-typed is not reported again as missing.
    pub fn wrong_typed_within(&self, path: &str) -> bool {
        spec::wrong_typed_within(&self.wrong_typed, path)
    }

    /// The description as plain values, without where each was written: the same
    /// [`ClusterSpec`] code could build, and which validates the same.
    pub fn to_spec(&self) -> ClusterSpec {
        self.spec_and_origins().0
    }

    /// The spec and the span of every value in it, by field path, for the rules.
    pub(crate) fn spec_and_origins(&self) -> (ClusterSpec, Origins) {
        let mut places = Places::default();
        let spec = places.config(&self.raw);
        (spec, Origins::of_text(places.0, self.wrong_typed.clone()))
    }

    /// The default secrets file beside a config file: `<dir>/<stem>.secrets.toml`.
    pub fn default_secrets_path(config_path: &Utf8Path) -> Utf8PathBuf {
        let stem = config_path.file_stem().unwrap_or("cluster");
        config_path.with_file_name(format!("{stem}.secrets.toml"))
    }
}

/// The spans of a raw config by field path, collected while its values are copied into a
/// [`ClusterSpec`]: the one place that knows both shapes.
#[derive(Default)]
struct Places(HashMap<String, Location>);

impl Places {
    fn at(&mut self, path: String, span: Range<usize>) {
        self.0.insert(path, Location::Span(span));
    }

    fn text(&mut self, path: &str, value: &Option<Text>) -> Option<String> {
        let value = value.as_ref()?;
        self.at(path.to_owned(), value.span());
        Some(value.get_ref().clone())
    }

    fn int(&mut self, path: &str, value: &Option<Int>) -> Option<i64> {
        let value = value.as_ref()?;
        self.at(path.to_owned(), value.span());
        Some(*value.get_ref())
    }

    fn flag(&mut self, path: &str, value: &Option<Flag>) -> Option<bool> {
        let value = value.as_ref()?;
        self.at(path.to_owned(), value.span());
        Some(*value.get_ref())
    }

    fn list(&mut self, path: &str, value: &Option<TextList>) -> Option<Vec<String>> {
        let list = value.as_ref()?;
        self.at(path.to_owned(), list.span());
        let items = list.get_ref().iter().enumerate();
        Some(
            items
                .map(|(i, item)| {
                    self.at(format!("{path}[{i}]"), item.span());
                    item.get_ref().clone()
                })
                .collect(),
        )
    }

    /// A section as written, or its defaults when absent.
    fn section<'r, T: Default + Clone>(
        &mut self,
        path: &str,
        value: &'r Option<Spanned<T>>,
    ) -> std::borrow::Cow<'r, T> {
        match value {
            Some(written) => {
                self.at(path.to_owned(), written.span());
                std::borrow::Cow::Borrowed(written.get_ref())
            }
            None => std::borrow::Cow::Owned(T::default()),
        }
    }

    /// An array of tables has no span of its own: the list as a whole is placed at its last
    /// entry, where a finding about its length (two masters) points.
    fn hosts(&mut self, path: &str, hosts: &[Spanned<RawHost>]) -> Vec<HostSpec> {
        if let Some(last) = hosts.last() {
            self.at(path.to_owned(), last.span());
        }
        let entries = hosts.iter().enumerate();
        entries
            .map(|(i, host)| {
                let entry = format!("{path}[{i}]");
                self.at(entry.clone(), host.span());
                let raw = host.get_ref();
                HostSpec {
                    name: self.text(&format!("{entry}.name"), &raw.name),
                    address: self.text(&format!("{entry}.address"), &raw.address),
                }
            })
            .collect()
    }

    fn config(&mut self, raw: &RawConfig) -> ClusterSpec {
        let mut spec = ClusterSpec::default();
        let cluster = self.section("cluster", &raw.cluster);
        spec.cluster.name = self.text("cluster.name", &cluster.name);
        spec.cluster.kubernetes_version =
            self.text("cluster.kubernetes_version", &cluster.kubernetes_version);
        spec.cluster.dns_domain = self.text("cluster.dns_domain", &cluster.dns_domain);
        let network = self.section("network", &raw.network);
        let n = &mut spec.network;
        n.service_cidr = self.text("network.service_cidr", &network.service_cidr);
        n.pod_cidr = self.text("network.pod_cidr", &network.pod_cidr);
        n.node_port_range = self.text("network.node_port_range", &network.node_port_range);
        n.host_cidrs = self.list("network.host_cidrs", &network.host_cidrs);
        let api = self.section("api", &raw.api);
        let a = &mut spec.api;
        a.endpoint = self.text("api.endpoint", &api.endpoint);
        a.port = self.int("api.port", &api.port);
        a.bind_port = self.int("api.bind_port", &api.bind_port);
        a.extra_sans = self.list("api.extra_sans", &api.extra_sans);
        a.components_via = self.text("api.components_via", &api.components_via);
        a.admission_plugins = self.list("api.admission_plugins", &api.admission_plugins);
        a.authorization_modes = self.list("api.authorization_modes", &api.authorization_modes);
        spec.masters = self.hosts("masters", &raw.masters);
        let lb = self.section("load_balancer", &raw.load_balancer);
        let l = &mut spec.load_balancer;
        l.mode = self.text("load_balancer.mode", &lb.mode);
        l.bind_port = self.int("load_balancer.bind_port", &lb.bind_port);
        l.health_check = self.text("load_balancer.health_check", &lb.health_check);
        l.vip = self.text("load_balancer.vip", &lb.vip);
        l.vip_interface = self.text("load_balancer.vip_interface", &lb.vip_interface);
        l.hosts = self.hosts("load_balancer.hosts", &lb.hosts);
        let etcd = self.section("etcd", &raw.etcd);
        let e = &mut spec.etcd;
        e.client_port = self.int("etcd.client_port", &etcd.client_port);
        e.peer_port = self.int("etcd.peer_port", &etcd.peer_port);
        e.initial_cluster_token =
            self.text("etcd.initial_cluster_token", &etcd.initial_cluster_token);
        e.data_dir = self.text("etcd.data_dir", &etcd.data_dir);
        e.extra_sans = self.list("etcd.extra_sans", &etcd.extra_sans);
        let pki = self.section("pki", &raw.pki);
        let p = &mut spec.pki;
        p.key_algorithm = self.text("pki.key_algorithm", &pki.key_algorithm);
        p.service_account_key_algorithm = self.text(
            "pki.service_account_key_algorithm",
            &pki.service_account_key_algorithm,
        );
        p.ca_validity_days = self.int("pki.ca_validity_days", &pki.ca_validity_days);
        p.cert_validity_days = self.int("pki.cert_validity_days", &pki.cert_validity_days);
        p.layout = self.text("pki.layout", &pki.layout);
        p.encryption_provider = self.text("pki.encryption_provider", &pki.encryption_provider);
        spec.workers = self.hosts("workers", &raw.workers);
        let control_plane = self.section("control_plane", &raw.control_plane);
        spec.control_plane.workloads =
            self.flag("control_plane.workloads", &control_plane.workloads);
        let kubelet = self.section("kubelet", &raw.kubelet);
        spec.kubelet.container_runtime_endpoint = self.text(
            "kubelet.container_runtime_endpoint",
            &kubelet.container_runtime_endpoint,
        );
        spec
    }
}

/// True for a secrets file or any text with a private key in it, whose lines must never be
/// quoted in a finding.
fn holds_secrets(text: &str) -> bool {
    let secrets_file = text.lines().any(|line| {
        let line = line.trim_start();
        line.starts_with("encryption_key") || line.starts_with("ca_issued_at")
    });
    secrets_file || (text.contains("-----BEGIN") && text.contains("PRIVATE KEY"))
}

fn toml_error(e: &toml::de::Error, text: &str) -> Diagnostic {
    let is_syntax = !e.message().starts_with("invalid type");
    let (code, label) = if is_syntax {
        (Code::TomlSyntax, "TOML syntax error")
    } else {
        (Code::WrongType, "wrong type")
    };
    // `[masters]` written once per entry is a duplicate table to TOML; what was meant is an
    // array of tables.
    let duplicated = e.span().and_then(|at| text.get(at)).map(str::trim);
    let list = SECTIONS.iter().find_map(|section| {
        section.kinds.iter().find_map(|(key, kind)| match kind {
            Kind::Tables(name) if duplicated == Some(*key) || duplicated == Some(*name) => {
                Some(*name)
            }
            _ => None,
        })
    });
    let help = match list {
        Some(name) if e.message().contains("duplicate key") => {
            format!("every entry of a list is its own `[[{name}]]`, with two brackets, each time")
        }
        _ if is_syntax => {
            "see https://toml.io for the syntax; strings need quotes, tables need [brackets]"
                .to_owned()
        }
        _ => "see the config reference in cpgen's README.md for the type of each key".to_owned(),
    };
    Diagnostic::error(code, e.message().trim_end().to_owned())
        .at(e.span(), label)
        .help(help)
}

/// One step of a path into the document.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Turns serde_ignored's path into plain steps, dropping the wrappers that `Spanned` and
/// `Option` add, which are not part of the document.
fn key_path(path: &serde_ignored::Path<'_>) -> Vec<Step> {
    use serde_ignored::Path;
    let mut steps = match path {
        Path::Root => return Vec::new(),
        Path::Seq { parent, .. }
        | Path::Map { parent, .. }
        | Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => key_path(parent),
    };
    match path {
        Path::Seq { index, .. } => steps.push(Step::Index(*index)),
        Path::Map { key, .. } if !key.starts_with("$__serde_spanned_private") => {
            steps.push(Step::Key(key.clone()))
        }
        _ => {}
    }
    steps
}

/// A diagnostic for an unknown key at `path`, pointing at the key in the source.
fn unknown_key(document: &DeTable<'_>, path: &[Step]) -> Diagnostic {
    // serde_ignored reports keys of tables only, so the last step is always a key.
    let (parents, key) = match path.split_last() {
        Some((Step::Key(key), parents)) => (parents, key.as_str()),
        _ => (path, "?"),
    };
    let section = section_name(parents);
    let known = fields_at(&section);
    let mut diagnostic = Diagnostic::error(
        Code::UnknownKey,
        match section.as_str() {
            "" => format!("unknown key `{key}`"),
            s => format!("unknown key `{key}` in {}", header(s)),
        },
    )
    .at(key_span(document, path), "not a cpgen setting");
    let elsewhere = SECTIONS
        .iter()
        .map(|other| other.name)
        .find(|other| *other != section && fields_at(other).contains(&key));
    diagnostic = if let Some(suggestion) = did_you_mean(key, known.iter().copied()) {
        diagnostic.help(format!(
            "did you mean `{}`?",
            written_as(&section, suggestion)
        ))
    } else if let Some(other) = elsewhere {
        diagnostic.help(format!("`{key}` belongs in {}", header(other)))
    } else {
        diagnostic.help(format!("known keys here: {}", known.join(", ")))
    };
    diagnostic
}

/// `load_balancer.hosts` for `[load_balancer, hosts, 0]`.
fn section_name(parents: &[Step]) -> String {
    parents
        .iter()
        .filter_map(|step| match step {
            Step::Key(k) => Some(k.as_str()),
            Step::Index(_) => None,
        })
        .collect::<Vec<_>>()
        .join(".")
}

type FieldList = fn() -> &'static [&'static str];

/// The TOML type a key takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Integer,
    Boolean,
    /// An array of strings.
    Strings,
    /// A table: the section of that dotted name.
    Table(&'static str),
    /// An array of tables, each the section of that dotted name.
    Tables(&'static str),
}

impl Kind {
    fn describe(self) -> String {
        match self {
            Kind::String => "a string".to_owned(),
            Kind::Integer => "an integer".to_owned(),
            Kind::Boolean => "a boolean (true or false)".to_owned(),
            Kind::Strings => "an array of strings".to_owned(),
            Kind::Table(section) => format!("a table ([{section}])"),
            Kind::Tables(section) => format!("an array of tables ([[{section}]])"),
        }
    }
}

/// One table of the schema: its dotted name, the keys its struct asks for, and the TOML
/// type of each key (checked against the struct by a unit test).
struct Section {
    name: &'static str,
    fields: FieldList,
    kinds: &'static [(&'static str, Kind)],
}

const HOST: &[(&str, Kind)] = &[("name", Kind::String), ("address", Kind::String)];

/// Every table of the schema.
const SECTIONS: &[Section] = &[
    Section {
        name: "",
        fields: fields_of::<RawConfig>,
        kinds: &[
            ("cluster", Kind::Table("cluster")),
            ("network", Kind::Table("network")),
            ("api", Kind::Table("api")),
            ("masters", Kind::Tables("masters")),
            ("load_balancer", Kind::Table("load_balancer")),
            ("etcd", Kind::Table("etcd")),
            ("pki", Kind::Table("pki")),
            ("workers", Kind::Tables("workers")),
            ("control_plane", Kind::Table("control_plane")),
            ("kubelet", Kind::Table("kubelet")),
        ],
    },
    Section {
        name: "control_plane",
        fields: fields_of::<RawControlPlane>,
        kinds: &[("workloads", Kind::Boolean)],
    },
    Section {
        name: "kubelet",
        fields: fields_of::<RawKubelet>,
        kinds: &[("container_runtime_endpoint", Kind::String)],
    },
    Section {
        name: "cluster",
        fields: fields_of::<RawCluster>,
        kinds: &[
            ("name", Kind::String),
            ("kubernetes_version", Kind::String),
            ("dns_domain", Kind::String),
        ],
    },
    Section {
        name: "network",
        fields: fields_of::<RawNetwork>,
        kinds: &[
            ("service_cidr", Kind::String),
            ("pod_cidr", Kind::String),
            ("node_port_range", Kind::String),
            ("host_cidrs", Kind::Strings),
        ],
    },
    Section {
        name: "api",
        fields: fields_of::<RawApi>,
        kinds: &[
            ("endpoint", Kind::String),
            ("port", Kind::Integer),
            ("bind_port", Kind::Integer),
            ("extra_sans", Kind::Strings),
            ("components_via", Kind::String),
            ("admission_plugins", Kind::Strings),
            ("authorization_modes", Kind::Strings),
        ],
    },
    Section {
        name: "masters",
        fields: fields_of::<RawHost>,
        kinds: HOST,
    },
    Section {
        name: "workers",
        fields: fields_of::<RawHost>,
        kinds: HOST,
    },
    Section {
        name: "load_balancer",
        fields: fields_of::<RawLoadBalancer>,
        kinds: &[
            ("mode", Kind::String),
            ("bind_port", Kind::Integer),
            ("health_check", Kind::String),
            ("vip", Kind::String),
            ("vip_interface", Kind::String),
            ("hosts", Kind::Tables("load_balancer.hosts")),
        ],
    },
    Section {
        name: "load_balancer.hosts",
        fields: fields_of::<RawHost>,
        kinds: HOST,
    },
    Section {
        name: "etcd",
        fields: fields_of::<RawEtcd>,
        kinds: &[
            ("client_port", Kind::Integer),
            ("peer_port", Kind::Integer),
            ("initial_cluster_token", Kind::String),
            ("data_dir", Kind::String),
            ("extra_sans", Kind::Strings),
        ],
    },
    Section {
        name: "pki",
        fields: fields_of::<RawPki>,
        kinds: &[
            ("key_algorithm", Kind::String),
            ("service_account_key_algorithm", Kind::String),
            ("ca_validity_days", Kind::Integer),
            ("cert_validity_days", Kind::Integer),
            ("layout", Kind::String),
            ("encryption_provider", Kind::String),
        ],
    },
];

fn section_at(name: &str) -> Option<&'static Section> {
    SECTIONS.iter().find(|section| section.name == name)
}

/// The keys a table accepts; empty for a path that is not a table of the schema.
fn fields_at(section: &str) -> &'static [&'static str] {
    section_at(section).map_or(&[], |section| (section.fields)())
}

fn kind_at(section: &str, key: &str) -> Option<Kind> {
    let kinds = section_at(section)?.kinds;
    kinds.iter().find(|(k, _)| *k == key).map(|(_, kind)| *kind)
}

/// How a key is written where it is suggested: a table as its header, so that a mistyped
/// `[master]` is told to write `[[masters]]`, not `masters`.
fn written_as(section: &str, key: &str) -> String {
    match kind_at(section, key) {
        Some(Kind::Table(name)) => format!("[{name}]"),
        Some(Kind::Tables(name)) => format!("[[{name}]]"),
        _ => key.to_owned(),
    }
}

/// "a string", "an integer", ... for a value as written, in TOML's names for its types.
fn found(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// The wrong-typed values of a document, found by walking it against [`SECTIONS`]; each is
/// reported and removed. Unknown keys are left for serde_ignored to report.
#[derive(Default)]
struct TypeCheck {
    findings: Vec<Diagnostic>,
    /// Where the removed values were: see [`Config::wrong_typed_within`].
    dropped: Vec<String>,
}

impl TypeCheck {
    /// Checks `table`, the section named `section`, found at dotted `path`.
    fn table(&mut self, table: &mut DeTable<'_>, section: &str, path: &str) {
        let mut drop = Vec::new();
        for (key, value) in table.iter_mut() {
            let name = key.get_ref().as_ref();
            let Some(kind) = kind_at(section, name) else {
                continue;
            };
            let path = join(path, name);
            if !self.value(value, kind, section, name, &path) {
                drop.push(name.to_owned());
                self.dropped.push(path);
            }
        }
        for key in drop {
            table.remove(key.as_str());
        }
    }

    /// Checks one value against its key's `kind`; false when it is to be removed.
    fn value(
        &mut self,
        value: &mut Spanned<DeValue<'_>>,
        kind: Kind,
        section: &str,
        key: &str,
        path: &str,
    ) -> bool {
        let span = value.span();
        // Only formatted for a finding: a file of thousands of hosts is checked key by key.
        let what = || match section {
            "" => format!("`{key}`"),
            s if section_is_array(s) => format!("`{key}` in [[{s}]]"),
            s => format!("`{key}` in [{s}]"),
        };
        match (kind, value.get_mut()) {
            (Kind::String, DeValue::String(_)) => true,
            (Kind::Boolean, DeValue::Boolean(_)) => true,
            (Kind::Integer, DeValue::Integer(n)) => {
                if i64::from_str_radix(n.as_str(), n.radix()).is_ok() {
                    return true;
                }
                self.findings.push(
                    Diagnostic::error(
                        Code::WrongType,
                        format!("{} is out of range for a TOML integer", what()),
                    )
                    .at(Some(span), "out of range")
                    .help("TOML integers are 64-bit: from -9223372036854775808 to 9223372036854775807"),
                );
                false
            }
            (Kind::Strings, DeValue::Array(items)) => {
                let old = std::mem::replace(items, DeArray::new());
                let mut kept = Vec::with_capacity(old.len());
                for (i, item) in old.into_iter().enumerate() {
                    if matches!(item.get_ref(), DeValue::String(_)) {
                        kept.push(item);
                        continue;
                    }
                    self.findings.push(
                        Diagnostic::error(
                            Code::WrongType,
                            format!(
                                "{} must be an array of strings, but item {} is {}",
                                what(),
                                i + 1,
                                found(item.get_ref())
                            ),
                        )
                        .at(Some(item.span()), "expected a string")
                        .help("put each item in quotes"),
                    );
                    self.dropped.push(format!("{path}[{i}]"));
                }
                *items = kept.into_iter().collect();
                true
            }
            (Kind::Table(name), DeValue::Table(table)) => {
                self.table(table, name, path);
                true
            }
            (Kind::Tables(name), DeValue::Array(entries)) => {
                let old = std::mem::replace(entries, DeArray::new());
                let mut kept = Vec::with_capacity(old.len());
                for (i, mut entry) in old.into_iter().enumerate() {
                    if let DeValue::Table(table) = entry.get_mut() {
                        self.table(table, name, &format!("{path}.{}", kept.len()));
                        kept.push(entry);
                        continue;
                    }
                    self.findings.push(
                        Diagnostic::error(
                            Code::WrongType,
                            format!(
                                "{} must be an array of tables, but entry {} is {}",
                                what(),
                                i + 1,
                                found(entry.get_ref())
                            ),
                        )
                        .at(Some(entry.span()), "expected a table")
                        .help(format!(
                            "write each entry as a `[[{name}]]` header with its keys below it"
                        )),
                    );
                    self.dropped.push(format!("{path}[{i}]"));
                }
                *entries = kept.into_iter().collect();
                true
            }
            (kind, other) => {
                let given = found(other);
                let help = match kind {
                    Kind::Tables(name) => {
                        format!("write `[[{name}]]`, with double brackets, above each entry")
                    }
                    Kind::Table(name) => format!("write the settings under a `[{name}]` header"),
                    Kind::Strings if matches!(other, DeValue::String(_)) => {
                        format!("write a list, even of one: `{key} = [\"...\"]`")
                    }
                    Kind::String if !matches!(other, DeValue::Table(_) | DeValue::Array(_)) => {
                        format!("put the value in quotes: `{key} = \"...\"`")
                    }
                    Kind::Integer if matches!(other, DeValue::String(_)) => {
                        "write the number without quotes".to_owned()
                    }
                    Kind::Boolean => {
                        format!("write `{key} = true` or `{key} = false`, without quotes")
                    }
                    _ => {
                        "see the config reference in README.md for the type of each key".to_owned()
                    }
                };
                self.findings.push(
                    Diagnostic::error(
                        Code::WrongType,
                        format!("{} must be {}, found {given}", what(), kind.describe()),
                    )
                    // A table's span is its header (or, for a dotted key, the key), so
                    // `[masters]` itself is underlined.
                    .at(Some(span), format!("expected {}", kind.describe()))
                    .help(help),
                );
                false
            }
        }
    }
}

/// Every key the parser reads, by dotted path, with its TOML type (`string`, `integer`,
/// `boolean`, `strings`, `table NAME`, `tables NAME`): what the JSON Schema of
/// `cluster.toml` is held to.
#[cfg(test)]
pub(crate) fn schema_keys() -> Vec<(String, String)> {
    SECTIONS
        .iter()
        .flat_map(|section| {
            section.kinds.iter().map(move |(key, kind)| {
                let kind = match kind {
                    Kind::String => "string".to_owned(),
                    Kind::Integer => "integer".to_owned(),
                    Kind::Boolean => "boolean".to_owned(),
                    Kind::Strings => "strings".to_owned(),
                    Kind::Table(name) => format!("table {name}"),
                    Kind::Tables(name) => format!("tables {name}"),
                };
                (join(section.name, key), kind)
            })
        })
        .collect()
}

/// Whether the section named `name` is the element of an array of tables.
/// A section as its header is written: `[api]`, and an entry of a list `[[masters]]`.
fn header(section: &str) -> String {
    if section_is_array(section) {
        format!("[[{section}]]")
    } else {
        format!("[{section}]")
    }
}

fn section_is_array(name: &str) -> bool {
    SECTIONS
        .iter()
        .flat_map(|section| section.kinds)
        .any(|(_, kind)| matches!(kind, Kind::Tables(n) if *n == name))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn key_span(document: &DeTable<'_>, path: &[Step]) -> Option<Range<usize>> {
    let (first, rest) = path.split_first()?;
    let Step::Key(key) = first else { return None };
    let (k, v) = document.iter().find(|(k, _)| k.get_ref() == key)?;
    if rest.is_empty() {
        return Some(k.span());
    }
    value_key_span(v.get_ref(), rest)
}

fn value_key_span(value: &DeValue<'_>, path: &[Step]) -> Option<Range<usize>> {
    match (value, path.first()?) {
        (DeValue::Table(table), Step::Key(_)) => key_span(table, path),
        (DeValue::Array(array), Step::Index(i)) => {
            let element = array.get(*i)?;
            value_key_span(element.get_ref(), path.get(1..)?)
        }
        _ => None,
    }
}

/// The field names a derived `Deserialize` struct asks for, read by handing it a
/// deserializer that records them. Keeps the "did you mean" lists in step with the structs.
fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct FieldNames<'a>(&'a mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for FieldNames<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("fields recorded"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_come_from_the_structs() {
        assert_eq!(fields_of::<RawHost>(), &["name", "address"]);
        assert!(fields_at("load_balancer").contains(&"health_check"));
        assert!(fields_at("nope").is_empty());
    }

    #[test]
    fn unknown_keys_are_all_reported_with_their_span_and_a_hint() {
        let text = "[api]\nendpont = \"x\"\n[[masters]]\nname = \"a\"\nadress = \"1.2.3.4\"\n[cluster]\nservice_cidr = \"10.0.0.0/16\"\n";
        let config = Config::parse("c.toml", text).unwrap();
        let findings = config.parse_findings();
        assert_eq!(findings.len(), 3, "{findings:#?}");
        let endpont = &findings[0];
        assert_eq!(endpont.code, Code::UnknownKey);
        assert_eq!(
            &text[endpont.primary.as_ref().unwrap().span().unwrap()],
            "endpont"
        );
        assert_eq!(endpont.help.as_deref(), Some("did you mean `endpoint`?"));
        let adress = &findings[1];
        assert_eq!(
            &text[adress.primary.as_ref().unwrap().span().unwrap()],
            "adress"
        );
        assert_eq!(
            findings[2].help.as_deref(),
            Some("`service_cidr` belongs in [network]")
        );
    }

    #[test]
    fn values_keep_their_spans() {
        let text = "[api]\nport = 6443\n";
        let config = Config::parse("c.toml", text).unwrap();
        let port = config
            .raw()
            .api
            .as_ref()
            .unwrap()
            .get_ref()
            .port
            .as_ref()
            .unwrap();
        assert_eq!(&text[port.span()], "6443");
    }

    #[test]
    fn bad_syntax_stops_the_parse_and_wrong_types_do_not() {
        let Err(Error::Invalid(report)) = Config::parse("c.toml", "[api\n") else {
            panic!("bad syntax parsed")
        };
        assert_eq!(report.diagnostics()[0].code, Code::TomlSyntax);
        let config = Config::parse("c.toml", "[api]\nport = \"x\"\nbind_port = 7443\n").unwrap();
        assert_eq!(config.parse_findings().len(), 1);
        assert_eq!(config.parse_findings()[0].code, Code::WrongType);
        let api = config.raw().api.as_ref().unwrap().get_ref();
        assert!(api.port.is_none(), "the wrong-typed value is left out");
        assert_eq!(api.bind_port.as_ref().map(|p| *p.get_ref()), Some(7443));
    }

    #[test]
    fn the_schema_has_every_field_of_the_structs_and_no_other() {
        for section in SECTIONS {
            let mut fields = (section.fields)().to_vec();
            let mut kinds: Vec<&str> = section.kinds.iter().map(|(key, _)| *key).collect();
            fields.sort_unstable();
            kinds.sort_unstable();
            assert_eq!(fields, kinds, "[{}]", section.name);
            for (key, kind) in section.kinds {
                if let Kind::Table(name) | Kind::Tables(name) = kind {
                    let expected = if section.name.is_empty() {
                        key.to_string()
                    } else {
                        format!("{}.{key}", section.name)
                    };
                    assert_eq!(*name, expected, "[{}] {key}", section.name);
                }
            }
        }
    }

    /// Writes a value of the schema's type for every key of `section`, recursing into
    /// tables, so that a wrong kind in the schema (an integer field listed as a string)
    /// makes serde reject the document.
    fn sample(section: &str, out: &mut String) {
        let mut tables = Vec::new();
        for (key, kind) in section_at(section).unwrap().kinds {
            match kind {
                Kind::String => out.push_str(&format!("{key} = \"x\"\n")),
                Kind::Integer => out.push_str(&format!("{key} = 1\n")),
                Kind::Boolean => out.push_str(&format!("{key} = true\n")),
                Kind::Strings => out.push_str(&format!("{key} = [\"x\"]\n")),
                Kind::Table(name) => tables.push(format!("[{name}]\n{}", sample_of(name))),
                Kind::Tables(name) => tables.push(format!("[[{name}]]\n{}", sample_of(name))),
            }
        }
        for table in tables {
            out.push_str(&table);
        }
    }

    fn sample_of(section: &str) -> String {
        let mut out = String::new();
        sample(section, &mut out);
        out
    }

    #[test]
    fn every_key_reaches_the_spec_at_the_same_path_as_in_code() {
        let text = sample_of("");
        let config = Config::parse("c.toml", &text).unwrap();
        let (spec, origins) = config.spec_and_origins();
        assert_eq!(spec.load_balancer.hosts.len(), 1);
        assert_eq!(spec.pki.ca_validity_days, Some(1));
        assert_eq!(spec.network.host_cidrs, Some(vec!["x".to_owned()]));
        // Every key of the file has a place, and code names the very same paths.
        let keys = SECTIONS.iter().flat_map(|section| {
            section
                .kinds
                .iter()
                .map(move |(key, _)| join(section.name, key))
        });
        let in_text = origins.paths();
        for key in keys.filter(|k| !k.contains("hosts") && !k.starts_with(['m', 'w'])) {
            assert!(in_text.contains(key.as_str()), "{key}");
        }
        assert!(in_text.contains("masters[0].address"));
        assert!(in_text.contains("load_balancer.hosts[0].name"));
        assert_eq!(in_text, Origins::of_code(&spec).paths());
    }

    #[test]
    fn a_value_of_the_schemas_type_for_every_key_deserializes() {
        let text = sample_of("");
        assert!(text.contains("[[load_balancer.hosts]]"), "{text}");
        let config = Config::parse("c.toml", &text).unwrap();
        assert_eq!(config.parse_findings(), [], "{text}");
        let raw = config.raw();
        assert_eq!(raw.masters.len(), 1);
        let lb = raw.load_balancer.as_ref().unwrap().get_ref();
        assert_eq!(lb.hosts.len(), 1);
        assert!(raw
            .pki
            .as_ref()
            .unwrap()
            .get_ref()
            .ca_validity_days
            .is_some());
        assert!(raw.network.as_ref().unwrap().get_ref().host_cidrs.is_some());
    }

    #[test]
    fn left_out_values_are_found_by_their_path_in_the_raw_config() {
        let text = "masters = [5, { name = 1, address = \"10.0.0.1\" }]\n[network]\nhost_cidrs = [\"10.0.0.0/8\", 2]\n";
        let config = Config::parse("c.toml", text).unwrap();
        assert_eq!(
            config.parse_findings().len(),
            3,
            "{:#?}",
            config.parse_findings()
        );
        // The second entry, as written, is the first left in the raw config.
        assert_eq!(config.raw().masters.len(), 1);
        assert!(config.wrong_typed_within("masters.0.name"));
        assert!(!config.wrong_typed_within("masters.0.address"));
        assert!(!config.wrong_typed_within("masters.1.name"));
        assert!(config.wrong_typed_within("masters"));
        assert!(config.wrong_typed_within("network"));
        assert!(config.wrong_typed_within("network.host_cidrs"));
        assert!(!config.wrong_typed_within("net"));
        assert!(!config.wrong_typed_within("workers"));
        let cidrs = config.raw().network.as_ref().unwrap().get_ref();
        assert_eq!(cidrs.host_cidrs.as_ref().unwrap().get_ref().len(), 1);
    }
}
