//! Hooks for cpgen's own integration tests, benches and fuzz targets (feature
//! `test-support`, off by default): the parts they look inside that are not the library's
//! API — issuance and key handling, the verifier's reader, the plan's dials and settings,
//! the streaming emitter and Kubernetes' flag tables. Tools use the public API instead; these
//! may change without notice.

use time::OffsetDateTime;

pub use crate::bundle::stream::{emit, Sink};
pub use crate::kubernetes::flag_exists;
pub use crate::pki::identities::{leaf_identities, Identity, Usage, SERVICE_ACCOUNT_KEY};
pub use crate::pki::issue::{issue, Authority, CaCertificate, CertSet, LeafCertificate, BACKDATE};
pub use crate::pki::keys::{generate_pem, PrivateKey, PublicKeyInfo};
pub use crate::plan::{ComponentsVia, Dial, Origin, PkiLayout, ServerRole};
pub use crate::verify::source::{read_archive, Entry, Tree, MAX_FILE, MAX_TOTAL};

use crate::diag::Diagnostic;
use crate::types::{KeyAlgorithm, Port};
use crate::verify::VerifyReport;
use crate::Plan;

/// Audits a bundle already in memory; `findings` are those of reading it.
pub fn verify_tree(
    tree: &Tree,
    plan: Option<&Plan>,
    at: OffsetDateTime,
    findings: Vec<Diagnostic>,
) -> VerifyReport {
    crate::verify::verify_tree(tree, plan, at, findings)
}

/// Every way a client reaches a server in `plan`.
pub fn dials(plan: &Plan) -> Vec<Dial> {
    plan.dials()
}

/// The plan's PKI layout.
pub fn pki_layout(plan: &Plan) -> PkiLayout {
    plan.pki.layout
}

/// Where the plan's controller-manager and scheduler kubeconfigs point.
pub fn components_via(plan: &Plan) -> ComponentsVia {
    plan.api.components_via
}

/// The port kube-apiserver binds on each master.
pub fn api_bind_port(plan: &Plan) -> Port {
    plan.api.bind_port
}

/// Sets the algorithm of every key the plan asks for (the fast one makes property tests
/// quick).
pub fn set_key_algorithms(plan: &mut Plan, algorithm: KeyAlgorithm) {
    plan.pki.key_algorithm = algorithm;
    plan.pki.service_account_key_algorithm = algorithm;
}

/// Forgets which file the plan was read from, as a plan of a spec built in code has none.
pub fn forget_config_file(plan: &mut Plan) {
    plan.config_sha256 = None;
}
