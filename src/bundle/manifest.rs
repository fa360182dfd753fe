//! `manifest.json`: every other file of the bundle with host, target, mode, owner, sha256
//! and kind, in path order.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{BundleFile, FileKind, OWNER};
use crate::Error;

/// The manifest's path in the bundle; it sorts after `hosts/`, so it is written last.
pub(crate) const MANIFEST: &str = "manifest.json";

#[derive(Default, Serialize)]
pub(crate) struct Manifest {
    format_version: u32,
    files: Vec<ManifestEntry>,
}

/// One file's line.
#[derive(Serialize)]
pub(crate) struct ManifestEntry {
    pub(crate) path: String,
    host: Option<String>,
    target: Option<String>,
    mode: String,
    owner: &'static str,
    sha256: String,
    kind: FileKind,
}

impl ManifestEntry {
    /// The entry of `file` at `path` (hashes its contents).
    pub(crate) fn of(path: &str, file: &BundleFile) -> ManifestEntry {
        ManifestEntry {
            path: path.to_owned(),
            host: file.host.as_ref().map(ToString::to_string),
            target: file.target.clone(),
            mode: format!("{:04o}", file.mode()),
            owner: OWNER,
            sha256: hex(&Sha256::digest(&file.contents)),
            kind: file.kind,
        }
    }
}

impl Manifest {
    /// Adds the next file, in path order.
    pub(crate) fn add(&mut self, entry: ManifestEntry) {
        self.files.push(entry);
    }

    /// The manifest as a bundle file.
    pub(crate) fn into_file(mut self) -> Result<BundleFile, Error> {
        self.format_version = 1;
        let mut json = serde_json::to_vec_pretty(&self)
            .map_err(|_| Error::Internal("manifest serialization"))?;
        json.push(b'\n');
        Ok(BundleFile {
            kind: FileKind::Manifest,
            host: None,
            target: None,
            contents: json,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}
