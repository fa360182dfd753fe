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

/// One file's line. Kept compact (a bundle of 10,000 workers has 100,000 of them) and
/// formatted only when serialized.
#[derive(Serialize)]
pub(crate) struct ManifestEntry {
    pub(crate) path: String,
    host: Option<String>,
    target: Option<String>,
    #[serde(serialize_with = "octal")]
    mode: u32,
    owner: &'static str,
    #[serde(serialize_with = "hex_digest")]
    sha256: [u8; 32],
    kind: FileKind,
}

impl ManifestEntry {
    /// The entry of `file` at `path` (hashes its contents).
    pub(crate) fn of(path: &str, file: &BundleFile) -> ManifestEntry {
        ManifestEntry {
            path: path.to_owned(),
            host: file.host.as_ref().map(ToString::to_string),
            target: file.target.clone(),
            mode: file.mode(),
            owner: OWNER,
            sha256: Sha256::digest(&file.contents).into(),
            kind: file.kind,
        }
    }
}

impl Manifest {
    /// How many files it lists.
    pub(crate) fn len(&self) -> usize {
        self.files.len()
    }

    /// Adds the next file, in path order.
    pub(crate) fn add(&mut self, entry: ManifestEntry) {
        self.files.push(entry);
    }

    /// The manifest as a bundle file.
    pub(crate) fn into_file(mut self) -> Result<BundleFile, Error> {
        self.format_version = 1;
        // About 300 bytes a line; sized up front rather than doubled into.
        let mut json = Vec::with_capacity(64 + self.files.len() * 320);
        serde_json::to_writer_pretty(&mut json, &self)
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

fn octal<S: serde::Serializer>(mode: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{mode:04o}"))
}

fn hex_digest<S: serde::Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(bytes))
}

/// Lowercase hex, as the manifest writes digests.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|byte| {
            [
                DIGITS[usize::from(byte >> 4)],
                DIGITS[usize::from(byte & 0xf)],
            ]
        })
        .map(char::from)
        .collect()
}
