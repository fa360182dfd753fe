//! Client certificates carry the identity their file is for. Kubernetes authorizes a client
//! by its certificate's CN (user) and O (groups), so a certificate copied over another's file
//! (the break-glass `system:masters` one as kube-proxy's, another node's as this node's
//! kubelet's) hands that program another identity while every signature still checks.

use crate::diag::{Code, Diagnostic};
use crate::pki::SUPER_ADMINS_GROUP;
use crate::render::paths::*;
use crate::verify::material::CertInfo;

use super::{unsafe_setting, Audit};

/// The identity a client certificate at a host path is for: CN and O, `{host}` standing for
/// the host's name.
const CLIENT_FILES: [(&str, &str, Option<&str>); 7] = [
    (ETCD_CLIENT, "kube-apiserver-etcd-client", None),
    (KUBELET_CLIENT, "kube-apiserver-kubelet-client", None),
    (FRONT_PROXY_CLIENT, "front-proxy-client", None),
    (CONTROLLER_MANAGER, "system:kube-controller-manager", None),
    (SCHEDULER, "system:kube-scheduler", None),
    (KUBELET, "system:node:{host}", Some("system:nodes")),
    (KUBE_PROXY, "system:kube-proxy", Some("system:node-proxier")),
];

/// The serving certificate of a node's kubelet names the node, as its client one does.
const NODE_SERVING: (&str, &str) = (KUBELET_SERVER, "system:node:{host}");

/// CNs of the identities cpgen issues to people and tools, never to a host's program.
const OPERATOR_NAMES: [&str; 3] = ["admin", "super-admin", "kube-etcd-healthcheck-client"];

/// True when `name` is an identity cpgen issues: a certificate carrying it where another is
/// expected was moved there. A name cpgen never issues (a hand-made bundle's own naming) is
/// left to the operator.
fn is_cpgen_identity(name: &str) -> bool {
    name.starts_with("system:node:")
        || OPERATOR_NAMES.contains(&name)
        || CLIENT_FILES.iter().any(|(_, cn, _)| *cn == name)
}

fn described(cert: &CertInfo) -> String {
    match cert.organizations.as_slice() {
        [] => format!("CN {}", cert.common_name),
        groups => format!("CN {}, O {}", cert.common_name, groups.join(", ")),
    }
}

/// The finding about the certificate at `path` on `host`, if its identity is not the file's.
fn identity_finding(path: &str, host: &str, local: &str, cert: &CertInfo) -> Option<Diagnostic> {
    let help = "restore the certificate cpgen issued for this file (build the bundle again)";
    if cert.organizations.iter().any(|o| o == SUPER_ADMINS_GROUP) {
        return Some(unsafe_setting(
            path,
            format!("a {SUPER_ADMINS_GROUP} certificate on a host ({}): it bypasses RBAC and cannot be revoked", described(cert)),
            "keep system:masters to admin/super-admin.kubeconfig, off every host; give the program its own identity",
        ));
    }
    if cert.common_names.len() > 1 {
        return Some(unsafe_setting(
            path,
            format!(
                "the subject has {} CNs ({}): Kubernetes takes the last, tools show the first",
                cert.common_names.len(),
                cert.common_names.join(", ")
            ),
            help,
        ));
    }
    let (cn, groups) = CLIENT_FILES
        .iter()
        .find(|(file, _, _)| *file == local)
        .map(|(_, cn, o)| (*cn, o.map_or_else(Vec::new, |o| vec![o.to_owned()])))
        .or_else(|| (local == NODE_SERVING.0).then(|| (NODE_SERVING.1, Vec::new())))?;
    let expected_cn = cn.replace("{host}", host);
    if cert.common_name == expected_cn && cert.organizations == groups {
        return None;
    }
    if !is_cpgen_identity(&cert.common_name) {
        return None;
    }
    let expected = if groups.is_empty() {
        format!("CN {expected_cn}")
    } else {
        format!("CN {expected_cn}, O {}", groups.join(", "))
    };
    Some(Diagnostic::file_error(
        Code::UnexpectedCertificate,
        path,
        format!(
            "carries {}, another identity cpgen issues; this file is for {expected}",
            described(cert)
        ),
        help,
    ))
}

impl Audit<'_> {
    /// Every certificate on a host: no `system:masters`, and each client certificate (and a
    /// kubelet's serving one) carries the identity of its file.
    pub(super) fn certificate_identities(&mut self) {
        let mut found = Vec::new();
        for (path, cert) in &self.material.certs {
            let Some((host, local)) = path
                .strip_prefix("hosts/")
                .and_then(|rest| rest.split_once('/'))
            else {
                continue;
            };
            if cert.is_ca {
                continue;
            }
            found.extend(identity_finding(path, host, &format!("/{local}"), cert));
        }
        self.findings.extend(found);
    }
}
