//! The bundle: files with mode, owner and kind by relative path, its `manifest.json`, and
//! where they go — a [`Sink`]: a directory tree, a byte-reproducible `.tar.gz` (sorted
//! entries, mtime 0, uid/gid 0, fixed gzip header), or an in-memory [`Bundle`]. A plan's
//! bundle is streamed into a sink host by host ([`emit`]); both disk writers never leave a
//! half-written output and never replace an existing one unless asked.

mod gzip;
pub(crate) mod manifest;
mod stream;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

use crate::atomic::{parent_dir, write_with, Existing};
use crate::pki::Secrets;
use crate::plan::Plan;
use crate::types::HostName;
use crate::Error;
use manifest::{Header, Manifest, ManifestEntry, MANIFEST};
pub use stream::{emit, emit_with_progress};

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

/// Where a bundle's entries go, in the order of the archive: every directory first, then
/// every file by path. [`emit`] writes a plan's bundle into any sink host by host.
pub trait Sink {
    /// A directory (relative, no trailing `/`), before any file.
    fn directory(&mut self, path: &str) -> Result<(), Error>;
    /// A file at `path`, in sorted order.
    fn file(&mut self, path: &str, file: BundleFile) -> Result<(), Error>;
}

/// An in-memory bundle collects what it is sent.
impl Sink for Bundle {
    fn directory(&mut self, _path: &str) -> Result<(), Error> {
        // Directories follow from the files' paths, see [`Bundle::directories`].
        Ok(())
    }

    fn file(&mut self, path: &str, file: BundleFile) -> Result<(), Error> {
        self.files.insert(path.to_owned(), file);
        Ok(())
    }
}

impl Bundle {
    /// The whole bundle of a plan, in memory: issues the PKI from `secrets` (which must
    /// hold every key, see [`Secrets::fill`]), renders every file and adds the manifest.
    /// Pure: the same inputs give the same bundle. To write a large cluster, [`write_tar_gz`]
    /// and [`write_dir`] stream instead.
    pub fn build(plan: &Plan, secrets: &Secrets) -> Result<Bundle, Error> {
        let mut bundle = Bundle::default();
        emit(plan, secrets, &mut bundle)?;
        Ok(bundle)
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
        self.files.insert(
            host_path(host, target),
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
            add_parents(&mut dirs, path);
        }
        dirs
    }

    /// Replaces `manifest.json` with one for the files now in the bundle (after changing
    /// some by hand, say).
    pub fn with_manifest(mut self) -> Result<Bundle, Error> {
        let header = self
            .files
            .remove(MANIFEST)
            .map(|old| Header::read(&old.contents))
            .unwrap_or_default();
        let mut manifest = Manifest::new(header);
        for (path, file) in &self.files {
            manifest.add(ManifestEntry::of(path, file));
        }
        let file = manifest.into_file()?;
        self.files.insert(MANIFEST.to_owned(), file);
        Ok(self)
    }

    /// Sends every entry to `sink`, in archive order.
    fn replay(&self, sink: &mut impl Sink) -> Result<(), Error> {
        for dir in self.directories() {
            sink.directory(&dir)?;
        }
        for (path, file) in &self.files {
            sink.file(path, file.clone())?;
        }
        Ok(())
    }

    /// The bundle as a reproducible `.tar.gz`: the same bundle gives the same bytes anywhere.
    pub fn to_tar_gz(&self) -> Result<Vec<u8>, Error> {
        let mut sink = TarGzSink::new(Vec::new());
        self.replay(&mut sink)?;
        sink.finish()
    }

    /// Writes the `.tar.gz` to `path`, as [`write_tar_gz`] does.
    pub fn write_tar_gz(&self, path: &Utf8Path, force: bool) -> Result<(), Error> {
        tar_gz_into(path, force, |sink| self.replay(sink))
    }

    /// Writes the bundle as a directory tree at `dir`, as [`write_dir`] does.
    pub fn write_dir(&self, dir: &Utf8Path, force: bool) -> Result<(), Error> {
        dir_into(dir, force, |sink| self.replay(sink))
    }
}

/// The bundle path of a host's file at `target`.
pub(crate) fn host_path(host: &HostName, target: &str) -> String {
    format!("hosts/{host}/{}", target.trim_start_matches('/'))
}

/// Adds every parent directory of `path` to `dirs`.
fn add_parents(dirs: &mut BTreeSet<String>, path: &str) {
    let mut parent = Utf8Path::new(path).parent();
    while let Some(dir) = parent.filter(|d| !d.as_str().is_empty()) {
        if !dirs.insert(dir.to_string()) {
            break;
        }
        parent = dir.parent();
    }
}

/// Writes a plan's bundle as a `.tar.gz` at `path`, one host at a time: the archive goes
/// straight to a temporary file (mode 0600 from the start: it holds private keys) that is
/// renamed into place when complete. An existing file is replaced only with `force`; a
/// symbolic link never. Returns how many files the bundle has.
pub fn write_tar_gz(
    plan: &Plan,
    secrets: &Secrets,
    path: &Utf8Path,
    force: bool,
) -> Result<usize, Error> {
    write_tar_gz_with_progress(plan, secrets, path, force, &|_, _| {})
}

/// [`write_tar_gz`], reporting hosts written as [`emit_with_progress`] does.
pub fn write_tar_gz_with_progress(
    plan: &Plan,
    secrets: &Secrets,
    path: &Utf8Path,
    force: bool,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<usize, Error> {
    tar_gz_into(path, force, |sink| {
        emit_with_progress(plan, secrets, sink, progress)
    })
}

/// Writes a plan's bundle as a directory tree at `dir`, one host at a time, built beside it
/// and renamed into place. An existing `dir` is replaced only with `force`. Returns how
/// many files the bundle has.
pub fn write_dir(
    plan: &Plan,
    secrets: &Secrets,
    dir: &Utf8Path,
    force: bool,
) -> Result<usize, Error> {
    write_dir_with_progress(plan, secrets, dir, force, &|_, _| {})
}

/// [`write_dir`], reporting hosts written as [`emit_with_progress`] does.
pub fn write_dir_with_progress(
    plan: &Plan,
    secrets: &Secrets,
    dir: &Utf8Path,
    force: bool,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<usize, Error> {
    dir_into(dir, force, |sink| {
        emit_with_progress(plan, secrets, sink, progress)
    })
}

fn tar_gz_into<T>(
    path: &Utf8Path,
    force: bool,
    fill: impl FnOnce(&mut TarGzSink<std::io::BufWriter<&mut std::fs::File>>) -> Result<T, Error>,
) -> Result<T, Error> {
    refuse_symlink(path)?;
    if !force && path.exists() {
        return Err(Error::AlreadyExists {
            path: path.to_owned(),
        });
    }
    let existing = if force {
        Existing::Replace
    } else {
        Existing::Keep
    };
    write_with(path, existing, |file| {
        let mut sink = TarGzSink::new(std::io::BufWriter::new(file));
        let made = fill(&mut sink)?;
        sink.finish()?
            .into_inner()
            .map_err(|e| write_error(path)(e.into_error()))?;
        Ok(made)
    })
}

fn dir_into<T>(
    dir: &Utf8Path,
    force: bool,
    fill: impl FnOnce(&mut DirSink) -> Result<T, Error>,
) -> Result<T, Error> {
    refuse_symlink(dir)?;
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
    let made = fill(&mut DirSink {
        root: root.to_owned(),
    })?;
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
    Ok(made)
}

fn write_error(path: &Utf8Path) -> impl Fn(std::io::Error) -> Error {
    let path = path.to_owned();
    move |source| Error::Write {
        path: path.clone(),
        source,
    }
}

/// Writes entries into a reproducible `.tar.gz` as they come: mtime 0, uid/gid 0, fixed
/// gzip header, so the same entries give the same bytes anywhere.
pub struct TarGzSink<W: Write> {
    tar: tar::Builder<gzip::ParallelGz<W>>,
}

impl<W: Write> TarGzSink<W> {
    /// Starts an archive written to `out`.
    pub fn new(out: W) -> TarGzSink<W> {
        let mut tar = tar::Builder::new(gzip::ParallelGz::new(out));
        tar.mode(tar::HeaderMode::Deterministic);
        TarGzSink { tar }
    }

    /// Ends the archive and gives back the writer.
    pub fn finish(self) -> Result<W, Error> {
        self.tar
            .into_inner()
            .map_err(archive_error)?
            .finish()
            .map_err(archive_error)
    }
}

fn archive_error(source: std::io::Error) -> Error {
    Error::Write {
        path: Utf8PathBuf::from("<archive>"),
        source,
    }
}

impl<W: Write> Sink for TarGzSink<W> {
    fn directory(&mut self, path: &str) -> Result<(), Error> {
        let mut header = header(DIR_MODE, 0);
        header.set_entry_type(tar::EntryType::Directory);
        self.tar
            .append_data(&mut header, format!("{path}/"), std::io::empty())
            .map_err(archive_error)
    }

    fn file(&mut self, path: &str, file: BundleFile) -> Result<(), Error> {
        let mut header = header(file.mode(), file.contents.len() as u64);
        self.tar
            .append_data(&mut header, path, file.contents.as_slice())
            .map_err(archive_error)
    }
}

/// Writes entries into a directory tree under `root`.
struct DirSink {
    root: Utf8PathBuf,
}

impl Sink for DirSink {
    fn directory(&mut self, path: &str) -> Result<(), Error> {
        let path = self.root.join(path);
        std::fs::create_dir_all(&path).map_err(write_error(&path))?;
        set_mode(path.as_std_path(), DIR_MODE).map_err(write_error(&path))
    }

    fn file(&mut self, path: &str, file: BundleFile) -> Result<(), Error> {
        let path = self.root.join(path);
        write_new(path.as_std_path(), &file.contents, file.mode()).map_err(write_error(&path))
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
