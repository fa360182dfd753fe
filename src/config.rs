//! The raw configuration: `cluster.toml` as written, every user value with its source span,
//! nothing resolved or checked beyond TOML syntax and value types. Unknown keys are
//! collected (all of them, with a "did you mean" hint) rather than stopping at the first.

use std::ops::Range;

use camino::{Utf8Path, Utf8PathBuf};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::diag::{did_you_mean, Code, Diagnostic, Report};
use crate::Error;

/// A string value and where it was written.
pub type Text = Spanned<String>;
/// An integer value and where it was written.
pub type Int = Spanned<i64>;
/// A list of strings and where it was written.
pub type TextList = Spanned<Vec<Text>>;

/// `cluster.toml` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub struct RawConfig {
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
}

/// `[cluster]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub struct RawCluster {
    pub name: Option<Text>,
    pub kubernetes_version: Option<Text>,
    pub dns_domain: Option<Text>,
}

/// `[network]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub struct RawNetwork {
    pub service_cidr: Option<Text>,
    pub pod_cidr: Option<Text>,
    pub node_port_range: Option<Text>,
    pub host_cidrs: Option<TextList>,
}

/// `[api]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub struct RawApi {
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
pub struct RawHost {
    pub name: Option<Text>,
    pub address: Option<Text>,
}

/// `[load_balancer]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub struct RawLoadBalancer {
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
pub struct RawEtcd {
    pub client_port: Option<Int>,
    pub peer_port: Option<Int>,
    pub initial_cluster_token: Option<Text>,
    pub data_dir: Option<Text>,
}

/// `[pki]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub struct RawPki {
    pub key_algorithm: Option<Text>,
    pub service_account_key_algorithm: Option<Text>,
    pub ca_validity_days: Option<Int>,
    pub cert_validity_days: Option<Int>,
    pub layout: Option<Text>,
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
        // Bounded before reading: a cluster description is a few kilobytes, even with
        // thousands of hosts, and a runaway file should not fill memory.
        let size = std::fs::metadata(path).map_err(read_error)?.len();
        if size > MAX_CONFIG_BYTES {
            return Err(Error::TooLarge {
                path: path.to_owned(),
                size,
                limit: MAX_CONFIG_BYTES,
            });
        }
        let bytes = std::fs::read(path).map_err(read_error)?;
        let text = String::from_utf8(bytes).map_err(|e| Error::NotText {
            path: path.to_owned(),
            offset: e.utf8_error().valid_up_to(),
        })?;
        Config::parse(path.as_str(), &text)
    }

    /// Parses configuration text; `source_name` names it in diagnostics.
    pub fn parse(source_name: &str, text: &str) -> Result<Config, Error> {
        let invalid = |findings| Error::Invalid(Box::new(Report::new(source_name, text, findings)));
        let (document, syntax_errors) = DeTable::parse_recoverable(text);
        // Only the first syntax error: after it, the parser's recovery guesses, and its
        // later complaints are often about text that is fine.
        if let Some(first) = syntax_errors.first() {
            return Err(invalid(vec![toml_error(first)]));
        }
        let mut ignored = Vec::new();
        let raw = serde_ignored::deserialize(toml::Deserializer::from(document.clone()), |path| {
            ignored.push(key_path(&path))
        });
        let raw = raw.map_err(|e| invalid(vec![toml_error(&e)]))?;
        let mut parse_findings: Vec<Diagnostic> = ignored
            .iter()
            .map(|path| unknown_key(document.get_ref(), path))
            .collect();
        parse_findings.sort_by_key(|d| d.primary.as_ref().map(|l| l.span.start));
        Ok(Config {
            source_name: source_name.to_owned(),
            source: text.to_owned(),
            raw,
            parse_findings,
        })
    }

    /// The raw values as written.
    pub fn raw(&self) -> &RawConfig {
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

    /// Findings of the parse that do not stop validation (unknown keys).
    pub fn parse_findings(&self) -> &[Diagnostic] {
        &self.parse_findings
    }

    /// The default secrets file beside a config file: `<dir>/<stem>.secrets.toml`.
    pub fn default_secrets_path(config_path: &Utf8Path) -> Utf8PathBuf {
        let stem = config_path.file_stem().unwrap_or("cluster");
        config_path.with_file_name(format!("{stem}.secrets.toml"))
    }
}

fn toml_error(e: &toml::de::Error) -> Diagnostic {
    let is_syntax = !e.message().starts_with("invalid type");
    let (code, label) = if is_syntax {
        (Code::TomlSyntax, "TOML syntax error")
    } else {
        (Code::WrongType, "wrong type")
    };
    Diagnostic::error(code, e.message().trim_end().to_owned())
        .at(e.span(), label)
        .help(if is_syntax {
            "see https://toml.io for the syntax; strings need quotes, tables need [brackets]"
        } else {
            "see the config reference in README.md for the type of each key"
        })
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
            s => format!("unknown key `{key}` in [{s}]"),
        },
    )
    .at(key_span(document, path), "not a cpgen setting");
    let elsewhere = SECTIONS
        .iter()
        .find(|(other, _)| *other != section && fields_at(other).contains(&key));
    diagnostic = if let Some(suggestion) = did_you_mean(key, known.iter().copied()) {
        diagnostic.help(format!("did you mean `{suggestion}`?"))
    } else if let Some((other, _)) = elsewhere {
        diagnostic.help(format!("`{key}` belongs in [{other}]"))
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

/// Every table of the schema, by its dotted name.
const SECTIONS: &[(&str, FieldList)] = &[
    ("", fields_of::<RawConfig>),
    ("cluster", fields_of::<RawCluster>),
    ("network", fields_of::<RawNetwork>),
    ("api", fields_of::<RawApi>),
    ("masters", fields_of::<RawHost>),
    ("workers", fields_of::<RawHost>),
    ("load_balancer", fields_of::<RawLoadBalancer>),
    ("load_balancer.hosts", fields_of::<RawHost>),
    ("etcd", fields_of::<RawEtcd>),
    ("pki", fields_of::<RawPki>),
];

/// The keys a table accepts; empty for a path that is not a table of the schema.
fn fields_at(section: &str) -> &'static [&'static str] {
    SECTIONS
        .iter()
        .find(|(name, _)| *name == section)
        .map_or(&[], |(_, fields)| fields())
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
            &text[endpont.primary.as_ref().unwrap().span.clone()],
            "endpont"
        );
        assert_eq!(endpont.help.as_deref(), Some("did you mean `endpoint`?"));
        let adress = &findings[1];
        assert_eq!(
            &text[adress.primary.as_ref().unwrap().span.clone()],
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
    fn wrong_types_and_bad_syntax_are_diagnostics() {
        for (text, code) in [
            ("[api]\nport = \"x\"\n", Code::WrongType),
            ("[api\n", Code::TomlSyntax),
        ] {
            let Err(Error::Invalid(report)) = Config::parse("c.toml", text) else {
                panic!("{text} parsed")
            };
            assert_eq!(report.diagnostics()[0].code, code, "{text}");
        }
    }
}
