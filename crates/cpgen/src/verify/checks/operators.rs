//! Operator files: the encryption config and `admin/etcdctl.env`.

use crate::diag::{Code, Diagnostic};

use super::{has_plain_url, Audit};

impl Audit<'_> {
    /// What the encryption config and `admin/etcdctl.env` say: encryption at rest on, and
    /// etcdctl only over TLS with the bundle's certificates.
    pub(super) fn operator_settings(&mut self) {
        let mut found = Vec::new();
        for (path, entry) in &self.tree.files {
            let text = String::from_utf8_lossy(&entry.data);
            let problems = if path.ends_with("/encryption-config.yaml") {
                encryption_problems(&text)
            } else if path == "admin/etcdctl.env" {
                etcdctl_env_problems(&text)
            } else {
                continue;
            };
            found.extend(problems.into_iter().map(|problem| {
                Diagnostic::file_error(
                    Code::UnsafeSetting,
                    path,
                    problem,
                    "restore the file cpgen wrote (build the bundle again)",
                )
            }));
        }
        self.findings.extend(found);
    }
}

/// Why an EncryptionConfiguration leaves Secrets unencrypted: a resource list whose first
/// provider, the one new data is written with, is `identity`, or that has none.
fn encryption_problems(text: &str) -> Vec<String> {
    let Ok(config) = serde_saphyr::from_str::<serde_json::Value>(text) else {
        return vec!["not an EncryptionConfiguration kube-apiserver can read".to_owned()];
    };
    let Some(resources) = config["resources"].as_array() else {
        return vec!["no resources: nothing is encrypted at rest".to_owned()];
    };
    resources
        .iter()
        .enumerate()
        .filter_map(|(index, resource)| {
            let first = resource["providers"]
                .as_array()
                .and_then(|providers| providers.first())
                .and_then(|provider| provider.as_object())
                .and_then(|provider| provider.keys().next().cloned());
            match first.as_deref() {
                Some("identity") => Some(format!(
                    "resources[{index}]: identity is the first provider, so new Secrets are written to etcd unencrypted"
                )),
                None => Some(format!("resources[{index}] has no provider")),
                Some(_) => None,
            }
        })
        .collect()
}

/// The settings etcdctl reads from `admin/etcdctl.env` that cpgen writes; any other
/// (`ETCDCTL_INSECURE_SKIP_TLS_VERIFY`, `ETCDCTL_INSECURE_TRANSPORT`, ...) weakens TLS.
const ETCDCTL_SETTINGS: &[&str] = &[
    "ETCDCTL_API",
    "ETCDCTL_ENDPOINTS",
    "ETCDCTL_CACERT",
    "ETCDCTL_CERT",
    "ETCDCTL_KEY",
];

fn etcdctl_env_problems(text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            problems.push(format!("`{line}` is not a NAME=value setting"));
            continue;
        };
        if !ETCDCTL_SETTINGS.contains(&name.trim()) {
            problems.push(format!("{} is not a setting cpgen writes: it can turn off TLS checks or send etcdctl elsewhere", name.trim()));
        } else if name.trim() == "ETCDCTL_ENDPOINTS" && has_plain_url(value) {
            problems.push(format!(
                "ETCDCTL_ENDPOINTS={value} has a URL that is not https://"
            ));
        }
    }
    problems
}
