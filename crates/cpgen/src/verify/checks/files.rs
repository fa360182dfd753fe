//! The bundle's files: paths that units and kubeconfigs name, the manifest, modes, files cpgen
//! never writes, signing keys left where nothing uses them.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use crate::diag::{Code, Diagnostic};

use super::Audit;

impl Audit<'_> {
    /// Every absolute path a unit flag, kubeconfig or node configuration names, with where
    /// it is named.
    fn named_paths(&self) -> Vec<(String, String)> {
        let mut named = Vec::new();
        for host in self.hosts {
            for unit in &host.units {
                for (flag, value) in &unit.flags {
                    if value.starts_with('/') && flag != "data-dir" && !value.contains(',') {
                        named.push((host.bundle_path(value), format!("{} --{flag}", unit.file)));
                    }
                }
            }
            for kubeconfig in &host.kubeconfigs {
                let path = &kubeconfig.path;
                let files = kubeconfig
                    .clusters
                    .iter()
                    .filter_map(|c| c.entry.certificate_authority.clone())
                    .chain(
                        kubeconfig
                            .users
                            .iter()
                            .flat_map(|u| {
                                [
                                    u.entry.client_certificate.clone(),
                                    u.entry.client_key.clone(),
                                ]
                            })
                            .flatten(),
                    );
                for file in files {
                    named.push((host.bundle_path(&file), path.clone()));
                }
            }
            for config in &host.component_configs {
                for (key, file) in super::nodes::named_files(config) {
                    named.push((host.bundle_path(file), format!("{} {key}", config.path)));
                }
            }
        }
        named
    }

    pub(super) fn missing_files(&mut self) {
        for (path, named_in) in self.named_paths() {
            if !self.tree.files.contains_key(&path) {
                self.push(Diagnostic::file_error(
                    Code::MissingFile,
                    &path,
                    format!("named in {named_in}, but not in the host's tree"),
                    "copy the file to the host or fix the path",
                ));
            }
        }
    }

    pub(super) fn manifest(&mut self) {
        let Some(entry) = self.tree.files.get("manifest.json") else {
            return;
        };
        #[derive(serde::Deserialize)]
        struct Manifest {
            files: Vec<ManifestEntry>,
        }
        #[derive(serde::Deserialize)]
        struct ManifestEntry {
            path: String,
            mode: String,
            sha256: String,
        }
        let manifest: Manifest = match serde_json::from_slice(&entry.data) {
            Ok(m) => m,
            Err(e) => {
                self.push(Diagnostic::file_error(
                    Code::ManifestMismatch,
                    "manifest.json",
                    format!("does not parse: {e}"),
                    "regenerate the bundle",
                ));
                return;
            }
        };
        let mut listed = BTreeSet::new();
        let mut found = Vec::new();
        for item in &manifest.files {
            listed.insert(item.path.as_str());
            let Some(file) = self.tree.files.get(&item.path) else {
                found.push(Diagnostic::file_error(
                    Code::ManifestMismatch,
                    &item.path,
                    "listed in manifest.json but missing",
                    "restore the file from the bundle",
                ));
                continue;
            };
            let sha = crate::bundle::manifest::hex(&Sha256::digest(&file.data));
            if sha != item.sha256 {
                found.push(Diagnostic::file_error(Code::ManifestMismatch, &item.path, "its contents differ from manifest.json (sha256)", "something changed it after cpgen wrote it: restore it or regenerate the bundle"));
            }
            if u32::from_str_radix(&item.mode, 8).ok() != Some(file.mode & 0o7777) {
                found.push(Diagnostic::file_error(
                    Code::ManifestMismatch,
                    &item.path,
                    format!(
                        "mode {:04o}, but manifest.json says {}",
                        file.mode & 0o7777,
                        item.mode
                    ),
                    format!("chmod {} it", item.mode),
                ));
            }
        }
        for path in self
            .tree
            .files
            .keys()
            .filter(|p| *p != "manifest.json" && !listed.contains(p.as_str()))
        {
            found.push(Diagnostic::file_error(
                Code::ManifestMismatch,
                path,
                "not listed in manifest.json",
                "remove it, or regenerate the bundle",
            ));
        }
        self.findings.extend(found);
    }

    pub(super) fn key_modes(&mut self) {
        let mut found = Vec::new();
        for (path, entry) in &self.tree.files {
            found.extend(crate::verify::source::unsafe_mode(path, entry.mode, "file"));
            let text = String::from_utf8_lossy(&entry.data);
            let secret = text.contains("PRIVATE KEY-----")
                || text.contains("client-key-data")
                || text.contains("EncryptionConfiguration");
            if secret && entry.mode & 0o077 != 0 {
                found.push(Diagnostic::file_error(
                    Code::KeyReadable,
                    path,
                    format!(
                        "holds key material but has mode {:04o}: other users can read it",
                        entry.mode & 0o777
                    ),
                    "chmod 600 it",
                ));
            }
        }
        self.findings.extend(found);
    }

    /// Files at paths cpgen never writes: tar installs them all the same.
    pub(super) fn unexpected_files(&mut self) {
        let found: Vec<Diagnostic> = self
            .tree
            .files
            .keys()
            .filter(|path| !crate::verify::known_paths::is_expected(path))
            .map(|path| {
                Diagnostic::file_error(
                    Code::UnexpectedFile,
                    path,
                    "a file cpgen never writes: installing the bundle puts it on the machine unchecked",
                    "remove it, or rebuild the bundle with cpgen; find out who added it",
                )
            })
            .collect();
        self.findings.extend(found);
    }

    /// A CA key or the service-account key only where a unit of the host uses it: anywhere
    /// else it lets that machine sign certificates or tokens for the whole cluster.
    pub(super) fn unused_signing_keys(&mut self) {
        let mut found = Vec::new();
        for host in self.hosts.iter().filter(|h| h.name != "admin") {
            let used: BTreeSet<&str> = host
                .units
                .iter()
                .flat_map(|unit| unit.flags.values().map(String::as_str))
                .collect();
            let prefix = format!("hosts/{}/", host.name);
            let signing_keys = self.tree.files.keys().filter_map(|path| {
                let local = path.strip_prefix(&prefix)?;
                let name = local.rsplit('/').next()?;
                (name == "sa.key" || name.ends_with("ca-key.pem")).then_some((path, local))
            });
            for (path, local) in signing_keys {
                if !used.contains(format!("/{local}").as_str()) {
                    found.push(Diagnostic::file_error(
                        Code::LeakedKey,
                        path,
                        format!("a signing key no unit of {} uses: whoever reads it there can sign for the whole cluster", host.name),
                        "remove it from this host, treat it as exposed and replace the CA or key",
                    ));
                }
            }
        }
        self.findings.extend(found);
    }
}
