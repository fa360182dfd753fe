//! Facts about Kubernetes releases that cpgen's output depends on: which admission plugins
//! and authorization modes kube-apiserver knows in each supported minor. Taken from the
//! kube-apiserver reference and release notes.

/// An admission plugin and the minors that have it.
#[derive(Debug, Clone, Copy)]
pub struct AdmissionPlugin {
    /// The name `--enable-admission-plugins` takes.
    pub name: &'static str,
    /// First minor that has it (`0`: older than any minor cpgen supports).
    pub since: u16,
    /// First minor that no longer has it (`None`: still present).
    pub removed_in: Option<u16>,
}

const fn plugin(name: &'static str) -> AdmissionPlugin {
    AdmissionPlugin {
        name,
        since: 0,
        removed_in: None,
    }
}

/// Every admission plugin kube-apiserver 1.25+ has known.
pub const ADMISSION_PLUGINS: &[AdmissionPlugin] = &[
    plugin("AlwaysAdmit"),
    plugin("AlwaysDeny"),
    plugin("AlwaysPullImages"),
    plugin("CertificateApproval"),
    plugin("CertificateSigning"),
    plugin("CertificateSubjectRestriction"),
    plugin("ClusterTrustBundleAttest"),
    plugin("DefaultIngressClass"),
    plugin("DefaultStorageClass"),
    plugin("DefaultTolerationSeconds"),
    plugin("DenyServiceExternalIPs"),
    plugin("EventRateLimit"),
    plugin("ExtendedResourceToleration"),
    plugin("ImagePolicyWebhook"),
    plugin("LimitPodHardAntiAffinityTopology"),
    plugin("LimitRanger"),
    AdmissionPlugin {
        name: "MutatingAdmissionPolicy",
        since: 32,
        removed_in: None,
    },
    plugin("MutatingAdmissionWebhook"),
    plugin("NamespaceAutoProvision"),
    plugin("NamespaceExists"),
    plugin("NamespaceLifecycle"),
    plugin("NodeRestriction"),
    plugin("OwnerReferencesPermissionEnforcement"),
    plugin("PersistentVolumeClaimResize"),
    AdmissionPlugin {
        name: "PersistentVolumeLabel",
        since: 0,
        removed_in: Some(31),
    },
    plugin("PodNodeSelector"),
    plugin("PodSecurity"),
    AdmissionPlugin {
        name: "PodSecurityPolicy",
        since: 0,
        removed_in: Some(25),
    },
    plugin("PodTolerationRestriction"),
    plugin("Priority"),
    plugin("ResourceQuota"),
    plugin("RuntimeClass"),
    AdmissionPlugin {
        name: "SecurityContextDeny",
        since: 0,
        removed_in: Some(30),
    },
    plugin("ServiceAccount"),
    plugin("StorageObjectInUseProtection"),
    plugin("TaintNodesByCondition"),
    plugin("ValidatingAdmissionPolicy"),
    plugin("ValidatingAdmissionWebhook"),
];

impl AdmissionPlugin {
    /// True when kube-apiserver 1.`minor` has this plugin.
    pub fn exists_in(&self, minor: u16) -> bool {
        self.since <= minor && self.removed_in.is_none_or(|removed| minor < removed)
    }
}

/// Looks a plugin up by exact name.
pub fn admission_plugin(name: &str) -> Option<&'static AdmissionPlugin> {
    ADMISSION_PLUGINS.iter().find(|p| p.name == name)
}

/// `--authorization-mode` values.
pub const AUTHORIZATION_MODES: &[&str] = &[
    "AlwaysAllow",
    "AlwaysDeny",
    "ABAC",
    "Webhook",
    "RBAC",
    "Node",
];

/// The guide's admission plugins plus NodeRestriction, which the guide's `Node`
/// authorization mode needs to be meaningful.
pub const DEFAULT_ADMISSION_PLUGINS: &[&str] = &[
    "NamespaceLifecycle",
    "ServiceAccount",
    "LimitRanger",
    "ResourceQuota",
    "DefaultStorageClass",
    "NodeRestriction",
];

/// The guide's authorization modes.
pub const DEFAULT_AUTHORIZATION_MODES: &[&str] = &["Node", "RBAC"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_plugins_are_gone_from_later_minors() {
        let psp = admission_plugin("PodSecurityPolicy").unwrap();
        assert!(!psp.exists_in(29));
        let scd = admission_plugin("SecurityContextDeny").unwrap();
        assert!(scd.exists_in(29) && !scd.exists_in(30));
        let map = admission_plugin("MutatingAdmissionPolicy").unwrap();
        assert!(!map.exists_in(31) && map.exists_in(32));
        assert!(DEFAULT_ADMISSION_PLUGINS
            .iter()
            .all(|p| admission_plugin(p).is_some_and(|p| (29..=34).all(|m| p.exists_in(m)))));
    }
}
