//! The JSON Schema of `cluster.toml` (draft-07, which taplo and the "Even Better TOML" editor
//! extension read), for editors that complete and check a config as it is typed.
//!
//! Nothing in it is written by hand: the shape, the types and the descriptions are derived
//! from [`ClusterSpec`] (its doc comments), the values a key takes from the types that parse
//! it (the settings spelled as one of a few words, [`KeyAlgorithm`], the supported Kubernetes
//! releases, the admission plugins and authorization modes cpgen knows), the defaults from
//! the constants validation uses. A unit test holds its keys and their TOML types to the parser's own table, so the
//! schema cannot drift from what `cpgen check` reads.

use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

use crate::kubernetes::{ADMISSION_PLUGINS, AUTHORIZATION_MODES};
use crate::plan::{
    Choice, ComponentsVia, EncryptionProvider, HealthCheck, LoadBalancerMode, PkiLayout,
};
use crate::spec::{defaults, ClusterSpec};
use crate::types::{KeyAlgorithm, KubernetesVersion};
use crate::validate::{unusable_mode, unusable_plugin};

/// What the schema cannot say, in its description.
const DESCRIPTION: &str = "A highly-available Kubernetes control plane, as cpgen reads it from cluster.toml. The schema checks keys, types, the values of the keys that take one of a few, and number ranges. The spelling of names, addresses, CIDRs and paths, and the rules that relate several values (an odd number of etcd members, CIDRs that must not overlap, every name a client dials in its server's certificate, listeners that must not collide, addresses inside host_cidrs, plugins of the chosen Kubernetes release) stay with `cpgen check`, which reports each with its code.";

/// The JSON Schema of `cluster.toml`.
pub fn cluster_schema() -> Value {
    let generator = SchemaSettings::draft07()
        .with(|settings| settings.inline_subschemas = true)
        .into_generator();
    let mut schema = generator.into_root_schema_for::<ClusterSpec>().to_value();
    drop_required(&mut schema);
    drop_null(&mut schema);
    if let Some(root) = schema.as_object_mut() {
        root.insert("title".into(), json!("cpgen cluster.toml"));
        root.insert("description".into(), json!(DESCRIPTION));
        root.insert("required".into(), json!(["masters"]));
    }
    set(&mut schema, "masters", "minItems", json!(1));
    set(&mut schema, "api.authorization_modes", "minItems", json!(1));
    for hosts in ["masters", "workers", "load_balancer.hosts"] {
        if let Some(items) = at(&mut schema, &format!("{hosts}[]")) {
            items.insert("required".into(), json!(["name", "address"]));
        }
    }
    for (path, values) in choices() {
        set(&mut schema, path, "enum", json!(values));
    }
    set(
        &mut schema,
        "cluster.kubernetes_version",
        "pattern",
        json!(version_pattern()),
    );
    for (path, value) in default_values() {
        set(&mut schema, path, "default", value);
    }
    for (path, minimum, maximum) in ranges() {
        set(&mut schema, path, "minimum", json!(minimum));
        set(&mut schema, path, "maximum", json!(maximum));
    }
    schema
}

/// Every key whose values are a fixed set, with the set, from the types that parse it.
fn choices() -> Vec<(&'static str, Vec<&'static str>)> {
    fn names<T: Choice>() -> Vec<&'static str> {
        T::ALL.iter().map(|(name, _)| *name).collect()
    }
    let algorithms = KeyAlgorithm::ALL.iter().map(|(name, _)| *name);
    let signing = KeyAlgorithm::ALL
        .iter()
        .filter(|(_, a)| a.can_sign_service_accounts())
        .map(|(name, _)| *name);
    vec![
        ("api.components_via", names::<ComponentsVia>()),
        ("api.admission_plugins[]", {
            // Those of some supported release that a cluster of cpgen's can use.
            let supported = KubernetesVersion::OLDEST.minor()..=KubernetesVersion::NEWEST.minor();
            let mut plugins: Vec<&str> = ADMISSION_PLUGINS
                .iter()
                .filter(|p| supported.clone().any(|minor| p.exists_in(minor)))
                .filter(|p| unusable_plugin(p.name).is_none())
                .map(|p| p.name)
                .collect();
            plugins.sort_unstable();
            plugins.dedup();
            plugins
        }),
        (
            "api.authorization_modes[]",
            AUTHORIZATION_MODES
                .iter()
                .copied()
                .filter(|mode| unusable_mode(mode).is_none())
                .collect(),
        ),
        ("load_balancer.mode", names::<LoadBalancerMode>()),
        ("load_balancer.health_check", names::<HealthCheck>()),
        ("pki.key_algorithm", algorithms.collect()),
        ("pki.service_account_key_algorithm", signing.collect()),
        ("pki.layout", names::<PkiLayout>()),
        ("pki.encryption_provider", names::<EncryptionProvider>()),
    ]
}

/// `1.29` to `1.34`, with an optional `v` and patch release, as the parser takes them.
fn version_pattern() -> String {
    let minors: Vec<String> = (KubernetesVersion::OLDEST.minor()
        ..=KubernetesVersion::NEWEST.minor())
        .map(|minor| minor.to_string())
        .collect();
    format!("^v?1\\.({})(\\.[0-9]+)?$", minors.join("|"))
}

/// The defaults that do not depend on other keys (the service CIDR's, say, follows the
/// masters' IP family, and the API port the load balancer's).
fn default_values() -> Vec<(&'static str, Value)> {
    use defaults::*;
    vec![
        ("cluster.name", json!(CLUSTER_NAME)),
        (
            "cluster.kubernetes_version",
            json!(KubernetesVersion::new(KUBERNETES_MINOR).to_string()),
        ),
        ("cluster.dns_domain", json!(DNS_DOMAIN)),
        ("network.node_port_range", json!(NODE_PORT_RANGE)),
        ("api.bind_port", json!(API_BIND_PORT)),
        ("api.components_via", json!(COMPONENTS_VIA)),
        ("api.admission_plugins", json!(ADMISSION_PLUGINS)),
        ("api.authorization_modes", json!(AUTHORIZATION_MODES)),
        ("load_balancer.mode", json!(LB_MODE)),
        ("load_balancer.health_check", json!(HEALTH_CHECK)),
        ("load_balancer.vip_interface", json!(VIP_INTERFACE)),
        ("etcd.client_port", json!(ETCD_CLIENT_PORT)),
        ("etcd.peer_port", json!(ETCD_PEER_PORT)),
        ("etcd.data_dir", json!(ETCD_DATA_DIR)),
        ("pki.key_algorithm", json!(KEY_ALGORITHM)),
        ("pki.ca_validity_days", json!(CA_VALIDITY_DAYS)),
        ("pki.cert_validity_days", json!(CERT_VALIDITY_DAYS)),
        ("pki.layout", json!(PKI_LAYOUT)),
        ("pki.encryption_provider", json!(ENCRYPTION_PROVIDER)),
        ("control_plane.workloads", json!(CONTROL_PLANE_WORKLOADS)),
        (
            "kubelet.container_runtime_endpoint",
            json!(CONTAINER_RUNTIME_ENDPOINT),
        ),
    ]
}

/// The integer keys' bounds, as validation holds them.
fn ranges() -> Vec<(&'static str, i64, i64)> {
    let port = |path| (path, 1, i64::from(u16::MAX));
    let days = |path| (path, 1, 36_500);
    vec![
        port("api.port"),
        port("api.bind_port"),
        port("load_balancer.bind_port"),
        port("etcd.client_port"),
        port("etcd.peer_port"),
        days("pki.ca_validity_days"),
        days("pki.cert_validity_days"),
    ]
}

/// schemars marks every field without a default required; in `cluster.toml` only the masters
/// (and each machine's name and address) are, which [`cluster_schema`] says itself.
fn drop_required(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("required");
            map.values_mut().for_each(drop_required);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_required),
        _ => {}
    }
}

/// TOML has no null: an `Option` field of the spec is a key that may be left out, never one
/// that may hold null, so `"type": ["string", "null"]` becomes `"type": "string"`; and Rust's
/// `int64` format goes.
fn drop_null(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if let [only] = types.as_slice() {
                    let only = only.clone();
                    map.insert("type".into(), only);
                }
            }
            // Rust's integer width says nothing about a TOML integer's range: `ranges` does.
            if map.get("format").is_some_and(|f| f == "int64") {
                map.remove("format");
            }
            map.values_mut().for_each(drop_null);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null),
        _ => {}
    }
}

/// The schema of the key at a dotted path (`load_balancer.mode`; `[]` for a list's items).
fn at<'a>(schema: &'a mut Value, path: &str) -> Option<&'a mut Map<String, Value>> {
    let mut here = schema;
    for key in path.split('.') {
        let (name, items) = match key.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (key, false),
        };
        here = here.get_mut("properties")?.get_mut(name)?;
        if items {
            here = here.get_mut("items")?;
        }
    }
    here.as_object_mut()
}

/// Sets `keyword` on the key at `path`; a path the schema lacks is a bug the tests find.
fn set(schema: &mut Value, path: &str, keyword: &str, value: Value) {
    if let Some(object) = at(schema, path) {
        object.insert(keyword.to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_patched_path_exists_in_the_schema() {
        let mut schema = cluster_schema();
        let paths = choices()
            .into_iter()
            .map(|(path, _)| path)
            .chain(default_values().into_iter().map(|(path, _)| path))
            .chain(ranges().into_iter().map(|(path, _, _)| path))
            .chain(["masters[]", "workers[]", "load_balancer.hosts[]"]);
        for path in paths {
            assert!(at(&mut schema, path).is_some(), "{path}");
        }
    }

    /// Every key of the schema with its TOML type, as `config` words them.
    fn keys(schema: &Value, prefix: &str, out: &mut Vec<(String, String)>) {
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            return;
        };
        for (key, property) in properties {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            let kind = match property["type"].as_str() {
                Some("object") => {
                    keys(property, &path, out);
                    format!("table {path}")
                }
                Some("array") if property["items"]["type"] == "object" => {
                    keys(&property["items"], &path, out);
                    format!("tables {path}")
                }
                Some("array") => "strings".to_owned(),
                Some(other) => other.to_owned(),
                None => "?".to_owned(),
            };
            out.push((path, kind));
        }
    }

    #[test]
    fn the_schema_has_exactly_the_parsers_keys_and_types() {
        let schema = cluster_schema();
        let mut from_schema = Vec::new();
        keys(&schema, "", &mut from_schema);
        from_schema.sort();
        let mut from_parser = crate::config::schema_keys();
        from_parser.sort();
        assert_eq!(from_schema, from_parser);
    }

    #[test]
    fn unknown_keys_are_refused_everywhere() {
        fn check(schema: &Value, path: &str) {
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                assert_eq!(schema["additionalProperties"], false, "{path}");
                for (key, property) in properties {
                    check(property, &format!("{path}.{key}"));
                    if let Some(items) = property.get("items") {
                        check(items, &format!("{path}.{key}[]"));
                    }
                }
            }
        }
        check(&cluster_schema(), "");
    }

    #[test]
    fn the_version_pattern_names_every_supported_minor_and_no_other() {
        let pattern = version_pattern();
        let alternatives = pattern
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(inside, _)| inside.split('|').collect::<Vec<_>>())
            .unwrap_or_default();
        let supported: Vec<String> = (KubernetesVersion::OLDEST.minor()
            ..=KubernetesVersion::NEWEST.minor())
            .map(|m| m.to_string())
            .collect();
        assert_eq!(alternatives, supported);
    }
}
