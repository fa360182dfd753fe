//! Kubeconfigs: references between their entries, and settings that trust any server or run a
//! program.

use crate::diag::{Code, Diagnostic};
use crate::verify::model::Kubeconfig;

use super::{unsafe_setting, Audit};

impl Audit<'_> {
    pub(super) fn kubeconfig_references(&mut self) {
        let mut found = Vec::new();
        for host in self.hosts {
            for k in &host.kubeconfigs {
                let path = &k.path;
                let context = k.contexts.iter().find(|c| c.name == k.current_context);
                let Some(context) = context else {
                    found.push((
                        path.clone(),
                        format!("current-context `{}` names no context", k.current_context),
                    ));
                    continue;
                };
                if !k.clusters.iter().any(|c| c.name == context.entry.cluster) {
                    found.push((
                        path.clone(),
                        format!(
                            "context `{}` names cluster `{}`, which is not defined",
                            context.name, context.entry.cluster
                        ),
                    ));
                }
                if !k.users.iter().any(|u| u.name == context.entry.user) {
                    found.push((
                        path.clone(),
                        format!(
                            "context `{}` names user `{}`, which is not defined",
                            context.name, context.entry.user
                        ),
                    ));
                }
            }
        }
        for (path, message) in found {
            self.push(Diagnostic::file_error(
                Code::DanglingReference,
                &path,
                message,
                "make current-context, the context's cluster and its user name entries that exist",
            ));
        }
    }
}

/// Kubeconfig settings cpgen never writes that trust any server, skip the CA or run a
/// program: each hands the client to whoever controls the network or the file.
pub(super) fn unsafe_settings(path: &str, kubeconfig: &Kubeconfig) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    for key in &kubeconfig.unexpected_keys {
        found.push(unsafe_setting(
            path,
            format!("{key}: a kubeconfig setting cpgen does not write (a credential, a proxy, another server name?)"),
            "restore the kubeconfig cpgen wrote; cpgen's authenticate with a client certificate and trust one CA",
        ));
    }
    for cluster in &kubeconfig.clusters {
        let entry = &cluster.entry;
        if entry.certificate_authority.is_none() && entry.certificate_authority_data.is_none() {
            found.push(unsafe_setting(
                path,
                format!("cluster {}: no certificate-authority: the client trusts every CA of the machine", cluster.name),
                "give the cluster's CA, as cpgen's kubeconfigs do",
            ));
        }
        if cluster.entry.insecure_skip_tls_verify {
            found.push(unsafe_setting(
                path,
                format!(
                    "cluster {}: insecure-skip-tls-verify: true: the client accepts any server",
                    cluster.name
                ),
                "remove insecure-skip-tls-verify and give the cluster's CA",
            ));
        }
        if cluster
            .entry
            .server
            .to_ascii_lowercase()
            .starts_with("http://")
        {
            found.push(unsafe_setting(
                path,
                format!(
                    "cluster {}: server {} is http://: credentials in clear text to any server",
                    cluster.name, cluster.entry.server
                ),
                "dial the API over https://",
            ));
        }
    }
    for user in &kubeconfig.users {
        for (present, what) in [
            (user.entry.exec.is_some(), "exec"),
            (user.entry.auth_provider.is_some(), "auth-provider"),
        ] {
            if present {
                found.push(unsafe_setting(
                    path,
                    format!(
                        "user {}: an {what} plugin: the client runs a program the bundle chose",
                        user.name
                    ),
                    "remove the plugin; cpgen's kubeconfigs authenticate with a client certificate",
                ));
            }
        }
    }
    found
}
