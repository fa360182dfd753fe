//! Facts about Kubernetes releases that cpgen's output depends on: which admission plugins
//! and authorization modes kube-apiserver knows in each supported minor. Taken from the
//! kube-apiserver reference and release notes.

/// An admission plugin and the minors that have it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdmissionPlugin {
    /// The name `--enable-admission-plugins` takes.
    pub(crate) name: &'static str,
    /// First minor that has it (`0`: older than any minor cpgen supports).
    pub(crate) since: u16,
    /// First minor that no longer has it (`None`: still present).
    pub(crate) removed_in: Option<u16>,
}

const fn plugin(name: &'static str) -> AdmissionPlugin {
    AdmissionPlugin {
        name,
        since: 0,
        removed_in: None,
    }
}

/// Every admission plugin kube-apiserver 1.25+ has known.
pub(crate) const ADMISSION_PLUGINS: &[AdmissionPlugin] = &[
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
    pub(crate) fn exists_in(&self, minor: u16) -> bool {
        self.since <= minor && self.removed_in.is_none_or(|removed| minor < removed)
    }
}

/// Looks a plugin up by exact name.
pub(crate) fn admission_plugin(name: &str) -> Option<&'static AdmissionPlugin> {
    ADMISSION_PLUGINS.iter().find(|p| p.name == name)
}

/// `--authorization-mode` values.
pub(crate) const AUTHORIZATION_MODES: &[&str] = &[
    "AlwaysAllow",
    "AlwaysDeny",
    "ABAC",
    "Webhook",
    "RBAC",
    "Node",
];

/// The flags cpgen's units pass, per component and minor. Only the tests read them (every
/// flag a unit carries must exist in the minor it is for), so they are built only for tests.
#[cfg(feature = "test-support")]
mod flags {
    use crate::types::KubernetesVersion;

    /// A command-line flag of a Kubernetes component and the minors that accept it.
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct Flag {
        /// Without the leading `--`.
        pub(crate) name: &'static str,
        /// First minor that no longer accepts it (`None`: still accepted).
        pub(crate) removed_in: Option<u16>,
    }

    /// Removed before the oldest minor cpgen supports; the exact release does not matter here.
    const GONE: Option<u16> = Some(KubernetesVersion::OLDEST.minor() - 1);

    const fn kept(name: &'static str) -> Flag {
        Flag {
            name,
            removed_in: None,
        }
    }

    const fn removed(name: &'static str, minor: Option<u16>) -> Flag {
        Flag {
            name,
            removed_in: minor,
        }
    }

    /// The components whose flags cpgen emits, with their flag tables.
    pub(crate) const COMPONENT_FLAGS: &[(&str, &[Flag])] = &[
        ("kube-apiserver", KUBE_APISERVER_FLAGS),
        ("kube-controller-manager", KUBE_CONTROLLER_MANAGER_FLAGS),
        ("kube-scheduler", KUBE_SCHEDULER_FLAGS),
        ("kubelet", KUBELET_FLAGS),
        ("kube-proxy", KUBE_PROXY_FLAGS),
    ];

    /// kube-apiserver flags cpgen emits, and the removed ones the guide used.
    pub(crate) const KUBE_APISERVER_FLAGS: &[Flag] = &[
        removed("admission-control", GONE),
        removed("enable-swagger-ui", GONE),
        removed("insecure-bind-address", Some(24)),
        removed("insecure-port", Some(24)),
        kept("advertise-address"),
        kept("allow-privileged"),
        kept("authorization-mode"),
        kept("bind-address"),
        kept("client-ca-file"),
        kept("enable-admission-plugins"),
        kept("encryption-provider-config"),
        kept("endpoint-reconciler-type"),
        kept("etcd-cafile"),
        kept("etcd-certfile"),
        kept("etcd-keyfile"),
        kept("etcd-servers"),
        kept("kubelet-certificate-authority"),
        kept("kubelet-client-certificate"),
        kept("kubelet-client-key"),
        kept("kubelet-preferred-address-types"),
        kept("proxy-client-cert-file"),
        kept("proxy-client-key-file"),
        kept("requestheader-allowed-names"),
        kept("requestheader-client-ca-file"),
        kept("requestheader-extra-headers-prefix"),
        kept("requestheader-group-headers"),
        kept("requestheader-username-headers"),
        kept("secure-port"),
        kept("service-account-issuer"),
        kept("service-account-key-file"),
        kept("service-account-signing-key-file"),
        kept("service-cluster-ip-range"),
        kept("service-node-port-range"),
        kept("tls-cert-file"),
        kept("tls-private-key-file"),
        kept("v"),
    ];

    /// kube-controller-manager flags cpgen emits, and the removed ones the guide used.
    pub(crate) const KUBE_CONTROLLER_MANAGER_FLAGS: &[Flag] = &[
        removed("address", Some(24)),
        removed("port", Some(24)),
        kept("allocate-node-cidrs"),
        kept("authentication-kubeconfig"),
        kept("authorization-kubeconfig"),
        kept("bind-address"),
        kept("client-ca-file"),
        kept("cluster-cidr"),
        kept("cluster-name"),
        kept("cluster-signing-cert-file"),
        kept("cluster-signing-key-file"),
        kept("controllers"),
        kept("kubeconfig"),
        kept("leader-elect"),
        kept("requestheader-client-ca-file"),
        kept("root-ca-file"),
        kept("service-account-private-key-file"),
        kept("service-cluster-ip-range"),
        kept("use-service-account-credentials"),
        kept("v"),
    ];

    /// kube-scheduler flags cpgen emits, and the removed ones the guide used.
    pub(crate) const KUBE_SCHEDULER_FLAGS: &[Flag] = &[
        removed("address", Some(24)),
        removed("port", Some(24)),
        kept("authentication-kubeconfig"),
        kept("authorization-kubeconfig"),
        kept("bind-address"),
        kept("kubeconfig"),
        kept("leader-elect"),
        kept("v"),
    ];

    /// kubelet flags cpgen emits (everything else is in its KubeletConfiguration), and the
    /// removed ones hand-written units of the guide's era carry.
    pub(crate) const KUBELET_FLAGS: &[Flag] = &[
        removed("network-plugin", Some(24)),
        removed("container-runtime", Some(27)),
        kept("config"),
        kept("hostname-override"),
        kept("kubeconfig"),
        kept("node-ip"),
        kept("v"),
    ];

    /// kube-proxy flags cpgen emits: its KubeProxyConfiguration holds the rest.
    pub(crate) const KUBE_PROXY_FLAGS: &[Flag] = &[kept("config")];

    /// True when `component` 1.`minor` accepts `--flag`; false for unknown flags too.
    pub fn flag_exists(component: &str, flag: &str, minor: u16) -> bool {
        COMPONENT_FLAGS
            .iter()
            .find(|(name, _)| *name == component)
            .and_then(|(_, flags)| flags.iter().find(|f| f.name == flag))
            .is_some_and(|f| f.removed_in.is_none_or(|removed| minor < removed))
    }
}

#[cfg(feature = "test-support")]
pub use flags::flag_exists;

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
        // The default list must be valid in every supported minor.
        assert!(crate::spec::defaults::ADMISSION_PLUGINS
            .iter()
            .all(|p| admission_plugin(p).is_some_and(|p| (29..=34).all(|m| p.exists_in(m)))));
    }
}
