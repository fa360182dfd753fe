//! The bundle: a sorted map of relative paths to files with mode, owner and kind, its
//! `manifest.json`, and the two writers — a directory tree and a byte-reproducible `.tar.gz`
//! (sorted entries, mtime 0, uid/gid 0, fixed gzip header). Both writers never leave a
//! half-written output and never replace an existing one unless asked.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::atomic::{parent_dir, write_file, Existing};
use crate::pki::{self, Secrets};
use crate::plan::Plan;
use crate::render;
use crate::types::HostName;
use crate::Error;

/// What a file is; decides its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum FileKind {
    Certificate,
    PrivateKey,
    /// Not a key, but holds one (embedded in a kubeconfig, the encryption key).
    Secret,
    SystemdUnit,
    Kubeconfig,
    Config,
    Readme,
    Manifest,
    Deploy,
}

impl FileKind {
    /// 0600 for anything holding key material, 0644 for the rest.
    pub fn mode(self) -> u32 {
        match self {
            FileKind::PrivateKey | FileKind::Secret => 0o600,
            _ => 0o644,
        }
    }
}

/// Mode of every directory in the bundle.
pub const DIR_MODE: u32 = 0o755;
/// Owner of every file.
pub const OWNER: &str = "root:root";

/// One file of the bundle. Its contents are wiped from memory when it is dropped (many are
/// private keys), and `Debug` shows only their length.
#[derive(Clone, PartialEq, Eq)]
pub struct BundleFile {
    /// What it is.
    pub kind: FileKind,
    /// The host it is for, if it goes to a host.
    pub host: Option<HostName>,
    /// The absolute path on that host.
    pub target: Option<String>,
    /// Contents.
    pub contents: Vec<u8>,
}

impl Drop for BundleFile {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.contents);
    }
}

impl std::fmt::Debug for BundleFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleFile")
            .field("kind", &self.kind)
            .field("target", &self.target)
            .field("bytes", &self.contents.len())
            .finish_non_exhaustive()
    }
}

impl BundleFile {
    /// Permission bits.
    pub fn mode(&self) -> u32 {
        self.kind.mode()
    }
}

/// Every file of the bundle by its path inside the bundle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bundle {
    files: BTreeMap<String, BundleFile>,
}

#[derive(Serialize)]
struct Manifest<'a> {
    format_version: u32,
    files: Vec<ManifestEntry<'a>>,
}

#[derive(Serialize)]
struct ManifestEntry<'a> {
    path: &'a str,
    host: Option<&'a str>,
    target: Option<&'a str>,
    mode: String,
    owner: &'static str,
    sha256: String,
    kind: FileKind,
}

impl Bundle {
    /// The whole bundle of a plan: issues the PKI from `secrets` (which must hold every key,
    /// see [`Secrets::fill`]), renders every file and adds the manifest. Pure: the same
    /// inputs give the same bundle.
    pub fn build(plan: &Plan, secrets: &Secrets) -> Result<Bundle, Error> {
        let certs = pki::issue(plan, secrets)?;
        render::render(plan, &certs)?.with_manifest()
    }

    /// Adds a file that goes to `host` at the absolute path `target`; in the bundle it is
    /// `hosts/<host>/<target without the leading />`.
    pub fn insert_host_file(
        &mut self,
        host: &HostName,
        target: &str,
        kind: FileKind,
        contents: Vec<u8>,
    ) {
        let relative = target.trim_start_matches('/');
        self.files.insert(
            format!("hosts/{host}/{relative}"),
            BundleFile {
                kind,
                host: Some(host.clone()),
                target: Some(target.to_owned()),
                contents,
            },
        );
    }

    /// Adds a file that belongs to no host (admin/, deploy/, README.md).
    pub fn insert(&mut self, path: &str, kind: FileKind, contents: Vec<u8>) {
        self.files.insert(
            path.to_owned(),
            BundleFile {
                kind,
                host: None,
                target: None,
                contents,
            },
        );
    }

    /// Every file, sorted by path.
    pub fn files(&self) -> impl Iterator<Item = (&str, &BundleFile)> {
        self.files.iter().map(|(path, file)| (path.as_str(), file))
    }

    /// The files of one host, by bundle path (a range of the sorted map, not a scan).
    pub fn host_files<'a>(
        &'a self,
        host: &str,
    ) -> impl Iterator<Item = (&'a str, &'a BundleFile)> + 'a {
        let prefix = format!("hosts/{host}/");
        self.files
            .range(prefix.clone()..)
            .take_while(move |(path, _)| path.starts_with(&prefix))
            .map(|(path, file)| (path.as_str(), file))
    }

    /// The file at `path`.
    pub fn get(&self, path: &str) -> Option<&BundleFile> {
        self.files.get(path)
    }

    /// Every directory that holds a file, parents included, sorted.
    pub fn directories(&self) -> BTreeSet<String> {
        let mut dirs = BTreeSet::new();
        for path in self.files.keys() {
            let mut parent = Utf8Path::new(path).parent();
            while let Some(dir) = parent.filter(|d| !d.as_str().is_empty()) {
                dirs.insert(dir.to_string());
                parent = dir.parent();
            }
        }
        dirs
    }

    /// Adds `manifest.json`: every other file with host, target, mode, owner, sha256, kind.
    pub fn with_manifest(mut self) -> Result<Bundle, Error> {
        self.files.remove("manifest.json");
        let files = self
            .files
            .iter()
            .map(|(path, file)| ManifestEntry {
                path,
                host: file.host.as_ref().map(HostName::as_str),
                target: file.target.as_deref(),
                mode: format!("{:04o}", file.mode()),
                owner: OWNER,
                sha256: hex(&Sha256::digest(&file.contents)),
                kind: file.kind,
            })
            .collect();
        let manifest = Manifest {
            format_version: 1,
            files,
        };
        let mut json = serde_json::to_vec_pretty(&manifest)
            .map_err(|_| Error::Internal("manifest serialization"))?;
        json.push(b'\n');
        self.insert("manifest.json", FileKind::Manifest, json);
        Ok(self)
    }

    /// The bundle as a reproducible `.tar.gz`: the same bundle gives the same bytes anywhere.
    pub fn to_tar_gz(&self) -> Result<Vec<u8>, Error> {
        let io = |source| Error::Write {
            path: Utf8PathBuf::from("<memory>"),
            source,
        };
        let gzip = flate2::GzBuilder::new()
            .mtime(0)
            .operating_system(255)
            .write(Vec::new(), flate2::Compression::new(6));
        let mut tar = tar::Builder::new(gzip);
        tar.mode(tar::HeaderMode::Deterministic);
        for dir in self.directories() {
            let mut header = header(DIR_MODE, 0);
            header.set_entry_type(tar::EntryType::Directory);
            tar.append_data(&mut header, format!("{dir}/"), std::io::empty())
                .map_err(io)?;
        }
        for (path, file) in &self.files {
            let mut header = header(file.mode(), file.contents.len() as u64);
            tar.append_data(&mut header, path, file.contents.as_slice())
                .map_err(io)?;
        }
        tar.into_inner().map_err(io)?.finish().map_err(io)
    }

    /// Writes the `.tar.gz` to `path` (temporary file, then rename), mode 0600 from the
    /// start because it holds private keys. An existing file is replaced only with `force`;
    /// a symbolic link never.
    pub fn write_tar_gz(&self, path: &Utf8Path, force: bool) -> Result<(), Error> {
        refuse_symlink(path)?;
        if !force && path.exists() {
            return Err(Error::AlreadyExists {
                path: path.to_owned(),
            });
        }
        let bytes = zeroize::Zeroizing::new(self.to_tar_gz()?);
        let existing = if force {
            Existing::Replace
        } else {
            Existing::Keep
        };
        write_file(path, &bytes, existing)
    }

    /// Writes the bundle as a directory tree at `dir`, built beside it and renamed into
    /// place. An existing `dir` is replaced only with `force`.
    pub fn write_dir(&self, dir: &Utf8Path, force: bool) -> Result<(), Error> {
        refuse_symlink(dir)?;
        let write_error = |path: &Utf8Path| {
            let path = path.to_owned();
            move |source| Error::Write { path, source }
        };
        if !force && dir.exists() {
            return Err(Error::AlreadyExists {
                path: dir.to_owned(),
            });
        }
        let staging = tempfile::Builder::new()
            .prefix(".cpgen-bundle")
            .tempdir_in(parent_dir(dir))
            .map_err(write_error(dir))?;
        let root = Utf8Path::from_path(staging.path()).ok_or_else(|| Error::Write {
            path: dir.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "temporary path is not UTF-8",
            ),
        })?;
        for sub in self.directories() {
            let path = root.join(&sub);
            std::fs::create_dir_all(&path).map_err(write_error(&path))?;
            set_mode(path.as_std_path(), DIR_MODE).map_err(write_error(&path))?;
        }
        for (relative, file) in &self.files {
            let path = root.join(relative);
            write_new(path.as_std_path(), &file.contents, file.mode())
                .map_err(write_error(&path))?;
        }
        set_mode(root.as_std_path(), DIR_MODE).map_err(write_error(root))?;
        let staged = staging.keep();
        if force && dir.exists() {
            let old = parent_dir(dir).join(format!(
                ".cpgen-old-{}",
                dir.file_name().unwrap_or("bundle")
            ));
            std::fs::rename(dir, &old).map_err(write_error(dir))?;
            std::fs::rename(&staged, dir).map_err(write_error(dir))?;
            std::fs::remove_dir_all(&old).map_err(write_error(&old))?;
        } else {
            std::fs::rename(&staged, dir).map_err(write_error(dir))?;
        }
        Ok(())
    }
}

/// Refuses to write through a symbolic link: it could point anywhere.
pub(crate) fn refuse_symlink(path: &Utf8Path) -> Result<(), Error> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_symlink() => Err(Error::Symlink {
            path: path.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Creates a new file with `mode` from the first byte on (no window in which a key is
/// readable by others), then writes it.
#[cfg(unix)]
fn write_new(path: &std::path::Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(contents)?;
    // The umask may have taken bits away from 0644; put the exact mode back.
    set_mode(path, mode)
}

#[cfg(not(unix))]
fn write_new(path: &std::path::Path, contents: &[u8], _mode: u32) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

fn header(mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    // Names are cosmetic for tar, but a fixed value keeps the archive reproducible.
    let _ = header.set_username("root");
    let _ = header.set_groupname("root");
    header
}

#[cfg(unix)]
fn set_mode(path: &std::path::Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &std::path::Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
