//! The Kubernetes release: one cpgen emits flags for.

use crate::diag::{Code, Diagnostic};
use crate::spec::defaults;
use crate::types::KubernetesVersion;

use super::Rules;

impl Rules<'_> {
    pub(super) fn version(&mut self, value: &Option<String>) -> Option<KubernetesVersion> {
        let path = "cluster.kubernetes_version";
        let range = format!(
            "{} to {}",
            KubernetesVersion::OLDEST,
            KubernetesVersion::NEWEST
        );
        let version = self.text(
            path,
            value,
            Some(KubernetesVersion::new(defaults::KUBERNETES_MINOR)),
            Code::UnsupportedVersion,
            &format!("cpgen supports Kubernetes {range}"),
        )?;
        if !version.is_supported() {
            self.push(
                Diagnostic::error(
                    Code::UnsupportedVersion,
                    format!("Kubernetes {version} is not supported"),
                )
                .at(self.origins.get(path), "unsupported version")
                .help(format!(
                    "cpgen emits flags for Kubernetes {range}; choose one of those"
                )),
            );
            return None;
        }
        Some(version)
    }
}
