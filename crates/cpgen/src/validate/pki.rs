//! The `[pki]` section: key algorithms, the rules between them and the layout, and the last check
//! that every dialled name is in the certificate it reaches.

use crate::diag::{did_you_mean, Code, Diagnostic};
use crate::plan::{uncovered_dials, PkiLayout, Plan};
use crate::types::KeyAlgorithm;

use super::listeners::origin_span;
use super::{quoted, Draft, Rules};

impl Rules<'_> {
    pub(super) fn key_algorithm(
        &mut self,
        path: &str,
        value: &Option<String>,
        default: Option<KeyAlgorithm>,
    ) -> Option<KeyAlgorithm> {
        let Some(given) = value else {
            return default;
        };
        match given.parse::<KeyAlgorithm>() {
            Ok(alg) => Some(alg),
            Err(e) => {
                let names = KeyAlgorithm::ALL.iter().map(|(n, _)| *n);
                let help = did_you_mean(given, names.clone()).map_or_else(
                    || format!("use one of: {}", quoted(&names.collect::<Vec<_>>())),
                    |s| format!("did you mean \"{s}\"?"),
                );
                self.push(
                    Diagnostic::error(Code::InvalidKeyAlgorithm, e.to_string())
                        .at(self.origins.get(path), "unknown algorithm")
                        .help(help),
                );
                None
            }
        }
    }

    pub(super) fn pki_rules(&mut self, draft: &Draft) {
        if let Some(alg) = draft
            .sa_key_algorithm
            .filter(|a| !a.can_sign_service_accounts())
        {
            let (at, key) = match self.origins.get("pki.service_account_key_algorithm") {
                Some(at) => (Some(at), "service_account_key_algorithm"),
                None => (self.origins.get("pki.key_algorithm"), "key_algorithm"),
            };
            self.push(
                Diagnostic::error(Code::ServiceAccountKeyAlgorithm, format!("the service-account key cannot be {alg}: kube-apiserver signs tokens with RSA or ECDSA keys only"))
                    .at(at, format!("`{key}` applies to the service-account key"))
                    .help("set pki.service_account_key_algorithm = \"ecdsa-p256\" (or an RSA size)"),
            );
        }
        if draft.layout == Some(PkiLayout::SharedCa) {
            self.push(
                Diagnostic::warning(Code::SharedCa, "with one shared CA, every client certificate of the cluster (each kubelet's, say) can read and write etcd")
                    .at(self.origins.get("pki.layout"), "shared CA")
                    .help("use layout = \"separate-cas\" unless you must match an existing cluster"),
            );
        }
        if let (Some(ca), Some(leaf)) = (draft.ca_validity, draft.cert_validity) {
            if leaf > ca {
                self.push(
                    Diagnostic::error(
                        Code::InvalidValidity,
                        format!(
                            "certificates valid {} days would outlive their CA ({} days)",
                            leaf.days(),
                            ca.days()
                        ),
                    )
                    .at(self.origins.get("pki.cert_validity_days"), "leaf validity")
                    .also(self.origins.get("pki.ca_validity_days"), "CA validity")
                    .help("make cert_validity_days at most ca_validity_days"),
                );
            }
        }
    }

    /// The last line of defence for the PKI: every name a client dials must be in the
    /// certificate it reaches. The SAN sets are built from the same plan, so a finding here
    /// means a dialled name could not be put into a certificate.
    pub(super) fn check_san_coverage(&mut self, plan: &Plan) {
        for (dial, master) in uncovered_dials(plan, &plan.server_certificates()) {
            self.push(
                Diagnostic::error(
                    Code::SanNotCovered,
                    format!(
                        "{} dial {} but the {} certificate of {master} would not carry it",
                        dial.client,
                        dial.target,
                        dial.role.identity()
                    ),
                )
                .at(origin_span(self.origins, dial.origin), "dialled here")
                .help("add it to api.extra_sans, or report a bug: cpgen should have added it"),
            );
        }
    }
}
