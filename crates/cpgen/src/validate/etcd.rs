//! The `[etcd]` section: the member count, the initial cluster token and the data directory.

use camino::Utf8PathBuf;

use crate::diag::{Code, Diagnostic};
use crate::spec::{defaults, EtcdSpec};
use crate::types::DnsName;

use super::{Draft, Rules};

/// The most etcd members cpgen plans: etcd's guidance is 3, 5 or 7, and past 9 every
/// write waits on so many that the cluster gets slower and no safer.
const MAX_ETCD_MEMBERS: usize = 9;

impl Rules<'_> {
    pub(super) fn cluster_token(
        &mut self,
        etcd: &EtcdSpec,
        cluster: Option<&DnsName>,
    ) -> Option<String> {
        match &etcd.initial_cluster_token {
            // It goes into etcd's unit, where systemd expands `%` and `$`: a plain word only.
            Some(token)
                if token.is_empty()
                    || !token
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) =>
            {
                self.push(
                    Diagnostic::error(
                        Code::EmptyClusterToken,
                        "the etcd initial cluster token must be a non-empty word of letters, digits, `.`, `_` and `-`",
                    )
                    .at(
                        self.origins.get("etcd.initial_cluster_token"),
                        "empty, or another character",
                    )
                    .help("use a name unique to this cluster, e.g. \"kubernetes-etcd\""),
                );
                None
            }
            Some(token) => Some(token.clone()),
            None => Some(format!(
                "{}{}",
                cluster.map_or(defaults::CLUSTER_NAME, DnsName::as_str),
                defaults::CLUSTER_TOKEN_SUFFIX
            )),
        }
    }

    pub(super) fn data_dir(&mut self, value: &Option<String>) -> Option<Utf8PathBuf> {
        let dir = value.as_deref().unwrap_or(defaults::ETCD_DATA_DIR);
        let path = Utf8PathBuf::from(dir);
        // What the message promises, and nothing systemd would expand (`%h`, `$HOME`).
        let clean = path.is_absolute()
            && !path.components().any(|c| c.as_str() == "..")
            && dir
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
        if clean {
            return Some(path);
        }
        self.push(
            Diagnostic::error(
                Code::InvalidDataDir,
                format!(
                    "etcd data directory `{dir}` must be an absolute path of letters, digits, `/`, `.`, `_` and `-`, without `..`"
                ),
            )
            .at(self.origins.get("etcd.data_dir"), "invalid path")
            .help(format!("use e.g. \"{}\"", defaults::ETCD_DATA_DIR)),
        );
        None
    }

    pub(super) fn etcd_members(&mut self, draft: &Draft) {
        let n = draft.masters.len();
        // The count is at fault, not one entry: a file points at the last entry, code at
        // the list.
        let last = self.origins.get("masters");
        if n == 0 {
            // `[masters]` or `masters = 3` is reported as a wrong type, not as no masters.
            if !self.origins.wrong_typed_within("masters") {
                self.push(
                    Diagnostic::error(Code::NoMasters, "the cluster has no masters")
                        .at(Some(self.origins.absent("masters")), "no [[masters]] in this file")
                        .help("add a [[masters]] entry with `name` and `address` for each control-plane machine (3 for HA)"),
                );
            }
        } else if n > MAX_ETCD_MEMBERS {
            self.push(
                Diagnostic::error(
                    Code::TooManyEtcdMembers,
                    format!("{n} etcd members: past {MAX_ETCD_MEMBERS}, every write waits for so many of them ({} here) that the cluster gets slower and no safer", n / 2 + 1),
                )
                .at(last, format!("member {n} of {n}"))
                .help("use 3, 5 or 7 masters (etcd's guidance); more machines for the API belong in workers or behind the load balancer, not in etcd"),
            );
        } else if n.is_multiple_of(2) {
            let tolerance = (n - 1) / 2;
            self.push(
                Diagnostic::error(
                    Code::EvenEtcdMembers,
                    format!(
                        "even number of etcd members: {n} members need {} for quorum and tolerate {tolerance} failure{}, no more than {} member{} would",
                        n / 2 + 1,
                        if tolerance == 1 { "" } else { "s" },
                        n - 1,
                        if n - 1 == 1 { "" } else { "s" },
                    ),
                )
                .at(last, format!("member {n} of {n}"))
                .help(format!("use an odd number of masters: {} or {}", n - 1, n + 1)),
            );
        } else if n > 7 {
            self.push(
                Diagnostic::warning(
                    Code::LargeEtcdCluster,
                    format!(
                        "{n} etcd members: every write waits for {} of them",
                        n / 2 + 1
                    ),
                )
                .at(
                    last,
                    "beyond 7 members etcd gets slower without a practical gain",
                )
                .help("etcd recommends 3, 5 or 7 members"),
            );
        }
    }
}
