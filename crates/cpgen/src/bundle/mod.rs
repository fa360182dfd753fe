//! The bundle: files with mode, owner and kind by relative path, its `manifest.json`, and
//! where they go — a sink: a directory tree, a byte-reproducible `.tar.gz` (sorted
//! entries, mtime 0, uid/gid 0, fixed gzip header), or an in-memory [`Bundle`]. A plan's
//! bundle is streamed into a sink host by host (`emit`); both disk writers never leave a
//! half-written output and never replace an existing one unless asked.

mod gzip;
pub(crate) mod manifest;
pub(crate) mod stream;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use camino::{Utf8Path, Utf8PathBuf};

pub use crate::atomic::Leftover;
use crate::atomic::{
    found, parent_dir, refusal, refuse_symlink, temp_builder, write_with, Existing, Found,
    OLD_TREE, TEMP_TREE,
};
pub use crate::layout::FileKind;
use crate::layout::{host_path, DIR_MODE};
use crate::pki::Secrets;
use crate::plan::Plan;
use crate::types::HostName;
use crate::Error;
use manifest::{Header, Manifest, ManifestEntry, MANIFEST};
pub(crate) use stream::{emit, Sink};

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
        emit(plan, secrets, &mut bundle, &|_, _| {})?;
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
    pub fn write_tar_gz(&self, path: &Utf8Path, mode: WriteMode) -> Result<(), Error> {
        tar_gz_into(path, mode, |sink| self.replay(sink))
    }

    /// Writes the bundle as a directory tree at `dir`, as [`write_dir`] does.
    pub fn write_dir(&self, dir: &Utf8Path, mode: WriteMode) -> Result<(), Error> {
        dir_into(dir, mode, |sink| self.replay(sink))
    }
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

/// What a writer does when its output already exists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WriteMode {
    /// Refuse ([`Error::AlreadyExists`]): nothing is overwritten by accident.
    #[default]
    CreateNew,
    /// Replace a previous bundle (a `.tar.gz`, or a tree with cpgen's `manifest.json`),
    /// never anything else (`cpgen bundle --force`).
    Replace,
}

/// Whether a bundle is written as one archive or as a directory tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// A reproducible `.tar.gz`.
    TarGz,
    /// A directory tree, built beside its place and renamed into it.
    Directory,
}

/// How [`write_tar_gz`] and [`write_dir`] write.
#[derive(Clone, Copy, Default)]
pub struct WriteOptions<'a> {
    /// What to do when the output exists.
    pub mode: WriteMode,
    /// Called with `(hosts written, hosts)` after each batch of hosts, e.g. to drive a
    /// progress bar; from the writing thread.
    pub progress: Option<&'a (dyn Fn(usize, usize) + Sync)>,
}

impl WriteOptions<'_> {
    fn progress(&self) -> &(dyn Fn(usize, usize) + Sync) {
        self.progress.unwrap_or(&|_, _| {})
    }
}

/// Writes a plan's bundle as a `.tar.gz` at `path`, one host at a time: the archive goes
/// straight to a temporary file (mode 0600 from the start: it holds private keys) that is
/// renamed into place when complete. An existing file is replaced only with
/// [`WriteMode::Replace`]; a symbolic link never. Returns how many files the bundle has.
pub fn write_tar_gz(
    plan: &Plan,
    secrets: &Secrets,
    path: &Utf8Path,
    options: &WriteOptions<'_>,
) -> Result<usize, Error> {
    tar_gz_into(path, options.mode, |sink| {
        emit(plan, secrets, sink, options.progress())
    })
}

/// Writes a plan's bundle as a directory tree at `dir`, one host at a time, built beside it
/// and renamed into place. An existing `dir` is replaced only with [`WriteMode::Replace`].
/// Returns how many files the bundle has.
pub fn write_dir(
    plan: &Plan,
    secrets: &Secrets,
    dir: &Utf8Path,
    options: &WriteOptions<'_>,
) -> Result<usize, Error> {
    dir_into(dir, options.mode, |sink| {
        emit(plan, secrets, sink, options.progress())
    })
}

/// Checks, before any key is made, that a bundle may be written at `path` (a tree or a `.tar.gz`, as `kind` says), as [`write_tar_gz`] and [`write_dir`] check again when they
/// write; and that it is none of `protected` (with what each is, e.g. `("c.toml", "the
/// configuration")`), nor, for a tree, a directory holding one of them. Paths are compared
/// resolved (`..`, symbolic links in the directories) and files by device and inode (hard
/// links), so no spelling of a protected path gets past. A protected path need not exist
/// yet (a secrets file about to be created).
pub fn check_output(
    path: &Utf8Path,
    kind: OutputKind,
    mode: WriteMode,
    protected: &[(&Utf8Path, &str)],
) -> Result<(), Error> {
    refuse_symlink(path)?;
    if kind == OutputKind::Directory {
        refuse_current_dir(path)?;
        refuse_dot_name(path)?;
    }
    refuse_protected(path, kind, protected)?;
    match kind {
        OutputKind::Directory => dir_target(path, mode).map(drop),
        OutputKind::TarGz => file_target(path, mode).map(drop),
    }
}

/// Every leftover of an interrupted run in the directories of `paths` (see
/// [`Leftover`]): what is cpgen's own and older than `started` is removed, the rest
/// reported.
pub fn clean_stale(paths: &[&Utf8Path], started: std::time::SystemTime) -> Vec<Leftover> {
    let mut seen = Vec::new();
    let mut found = Vec::new();
    for path in paths {
        let dir = parent_dir(path);
        let key = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.as_std_path().to_owned());
        if !seen.contains(&key) {
            seen.push(key);
            found.extend(crate::atomic::clean_stale(dir, started));
        }
    }
    found
}

/// `path` made absolute with `..` and symbolic links resolved; for a path that does not
/// exist yet, its directory resolved.
fn resolved(path: &Utf8Path) -> Option<std::path::PathBuf> {
    if let Ok(full) = std::fs::canonicalize(path) {
        return Some(full);
    }
    let dir = std::fs::canonicalize(parent_dir(path)).ok()?;
    Some(dir.join(path.file_name()?))
}

fn same_file(a: &Utf8Path, b: &Utf8Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn refuse_protected(
    path: &Utf8Path,
    kind: OutputKind,
    protected: &[(&Utf8Path, &str)],
) -> Result<(), Error> {
    let Some(out) = resolved(path) else {
        return Ok(());
    };
    for (other, what) in protected {
        let Some(other_full) = resolved(other) else {
            continue;
        };
        let is = other_full == out || same_file(path, other);
        let holds = kind == OutputKind::Directory && other_full.starts_with(&out);
        if is || holds {
            return Err(refusal(
                path,
                format!(
                    "it {} {what} {other}; --force replaces only a bundle cpgen wrote",
                    if is { "is" } else { "holds" }
                ),
            ));
        }
    }
    Ok(())
}

/// Refuses a tree output spelled with a last `.` or `..` (`D/.`): the tree is renamed into
/// place, and no directory can be renamed by such a name.
fn refuse_dot_name(dir: &Utf8Path) -> Result<(), Error> {
    let last = dir.as_str().trim_end_matches('/').rsplit('/').next();
    if matches!(last, Some("." | "..")) {
        return Err(refusal(
            dir,
            "its last part is `.` or `..`; name the bundle directory itself (`out`, not `out/.`)",
        ));
    }
    Ok(())
}

/// Refuses a directory that is or holds the current directory: replacing it would pull
/// the ground from under the user (and `.` cannot be renamed at all).
fn refuse_current_dir(dir: &Utf8Path) -> Result<(), Error> {
    let here = std::env::current_dir().and_then(std::fs::canonicalize);
    if let (Ok(here), Ok(dir_full)) = (here, std::fs::canonicalize(dir)) {
        if here.starts_with(&dir_full) {
            return Err(refusal(
                dir,
                "it is or holds the current directory; --force replaces only a bundle cpgen wrote",
            ));
        }
    }
    Ok(())
}

/// What is at a `.tar.gz` output, if cpgen may write there: nothing, a previous archive
/// (with [`WriteMode::Replace`]), or a character device or FIFO, which is written into.
fn file_target(path: &Utf8Path, mode: WriteMode) -> Result<Found, Error> {
    let found = found(path)?;
    match found {
        Found::Nothing | Found::Stream(_) => Ok(found),
        Found::Symlink => Err(Error::Symlink {
            path: path.to_owned(),
        }),
        Found::Regular if mode == WriteMode::CreateNew => Err(Error::AlreadyExists {
            path: path.to_owned(),
        }),
        Found::Regular if looks_like_gzip(path) => Ok(found),
        Found::Regular => Err(refusal(
            path,
            "it is not a .tar.gz (no gzip header), so not a bundle cpgen wrote; --force replaces only a previous bundle",
        )),
        other => Err(refusal(
            path,
            format!(
                "it is {}, not a .tar.gz file; cpgen writes an archive only to a regular file, a character device or a FIFO",
                other.describe()
            ),
        )),
    }
}

/// Empty, or starting with the gzip magic bytes.
fn looks_like_gzip(path: &Utf8Path) -> bool {
    use std::io::Read;
    let mut head = Vec::with_capacity(2);
    std::fs::File::open(path)
        .and_then(|file| file.take(2).read_to_end(&mut head))
        .is_ok()
        && (head.is_empty() || head == [0x1f, 0x8b])
}

/// What is at a tree output, if cpgen may write there: nothing, or (with [`WriteMode::Replace`]) an empty
/// directory or one holding a `manifest.json` cpgen wrote.
fn dir_target(dir: &Utf8Path, mode: WriteMode) -> Result<Found, Error> {
    refuse_current_dir(dir)?;
    let found = found(dir)?;
    match found {
        Found::Nothing => Ok(found),
        Found::Symlink => Err(Error::Symlink {
            path: dir.to_owned(),
        }),
        Found::Directory if mode == WriteMode::CreateNew => Err(Error::AlreadyExists {
            path: dir.to_owned(),
        }),
        Found::Directory if is_empty_dir(dir) || is_bundle_dir(dir) => Ok(found),
        Found::Directory => Err(refusal(
            dir,
            "it is a directory that is not a cpgen bundle (no manifest.json of cpgen's); not even --force replaces it",
        )),
        other => Err(refusal(
            dir,
            format!("it is {}, not a bundle directory", other.describe()),
        )),
    }
}

fn is_empty_dir(dir: &Utf8Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none())
}

/// Holds a `manifest.json` (a regular file) whose generator is cpgen.
fn is_bundle_dir(dir: &Utf8Path) -> bool {
    let manifest = dir.join(MANIFEST);
    let regular = std::fs::symlink_metadata(&manifest).is_ok_and(|m| m.file_type().is_file());
    regular
        && std::fs::read(&manifest)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .is_some_and(|json| json["generator"]["name"] == env!("CARGO_PKG_NAME"))
}

fn tar_gz_into<T>(
    path: &Utf8Path,
    mode: WriteMode,
    fill: impl FnOnce(&mut TarGzSink<std::io::BufWriter<&mut std::fs::File>>) -> Result<T, Error>,
) -> Result<T, Error> {
    refuse_symlink(path)?;
    let into_archive = |file: &mut std::fs::File| {
        let mut sink = TarGzSink::new(std::io::BufWriter::new(file));
        let made = fill(&mut sink)?;
        sink.finish()?
            .into_inner()
            .map_err(|e| write_error(path)(e.into_error()))?;
        Ok(made)
    };
    match file_target(path, mode)? {
        // Like tar: `-o /dev/null` discards, `-o FIFO` feeds a reader; nothing is replaced.
        Found::Stream(_) => into_archive(&mut open_stream(path)?),
        _ if mode == WriteMode::Replace => write_with(path, Existing::Replace, into_archive),
        _ => write_with(path, Existing::Keep, into_archive),
    }
}

/// Opens a character device or FIFO for writing, never creating or truncating anything,
/// and checks on the open file that it still is one.
fn open_stream(path: &Utf8Path) -> Result<std::fs::File, Error> {
    use rustix::fs::{Mode, OFlags};
    use std::os::unix::fs::FileTypeExt;
    let fd = rustix::fs::open(
        path.as_std_path(),
        OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| write_error(path)(e.into()))?;
    let file = std::fs::File::from(fd);
    let kind = file.metadata().map_err(write_error(path))?.file_type();
    if kind.is_char_device() || kind.is_fifo() {
        Ok(file)
    } else {
        Err(refusal(path, "it changed while cpgen opened it"))
    }
}

fn dir_into<T>(
    dir: &Utf8Path,
    mode: WriteMode,
    fill: impl FnOnce(&mut DirSink) -> Result<T, Error>,
) -> Result<T, Error> {
    refuse_symlink(dir)?;
    let existing = dir_target(dir, mode)?;
    let staging = temp_builder(TEMP_TREE)
        .tempdir_in(parent_dir(dir))
        .map_err(write_error(dir))?;
    let root = Utf8Path::from_path(staging.path()).ok_or_else(|| Error::Write {
        path: dir.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "temporary path is not UTF-8",
        ),
    })?;
    // Held while the tree is built: the next run's clean-up leaves a locked tree alone.
    let _lock = crate::atomic::lock_directory(root)?;
    let made = fill(&mut DirSink {
        root: root.to_owned(),
    })?;
    set_mode(root.as_std_path(), DIR_MODE).map_err(write_error(root))?;
    let staged = Utf8PathBuf::from(root);
    let _ = staging.keep();
    let moved = if existing == Found::Directory {
        replace_dir(&staged, dir)
    } else {
        match rename_new(&staged, dir) {
            // Another run wrote the bundle meanwhile: with --force, it is replaced like
            // one that was there from the start, after the same checks.
            Err(Error::AlreadyExists { .. })
                if mode == WriteMode::Replace
                    && dir_target(dir, mode).is_ok_and(|found| found == Found::Directory) =>
            {
                replace_dir(&staged, dir)
            }
            moved => moved,
        }
    };
    if moved.is_err() {
        let _ = std::fs::remove_dir_all(&staged);
    }
    moved?;
    Ok(made)
}

/// Moves the tree at `staged` to `dir`, where nothing may be: one that appeared meanwhile
/// is not replaced.
fn rename_new(staged: &Utf8Path, dir: &Utf8Path) -> Result<(), Error> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    match renameat_with(
        CWD,
        staged.as_std_path(),
        CWD,
        dir.as_std_path(),
        RenameFlags::NOREPLACE,
    ) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::EXIST | rustix::io::Errno::NOTEMPTY) => Err(Error::AlreadyExists {
            path: dir.to_owned(),
        }),
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
            std::fs::rename(staged, dir).map_err(write_error(dir))
        }
        Err(e) => Err(write_error(dir)(e.into())),
    }
}

/// Swaps the tree at `staged` with the bundle at `dir` in one step, then removes the old
/// one; where the filesystem cannot swap, the old bundle is moved aside first.
fn replace_dir(staged: &Utf8Path, dir: &Utf8Path) -> Result<(), Error> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    let old = match renameat_with(
        CWD,
        staged.as_std_path(),
        CWD,
        dir.as_std_path(),
        RenameFlags::EXCHANGE,
    ) {
        Ok(()) => staged.to_owned(),
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
            let aside = temp_builder(OLD_TREE)
                .tempdir_in(parent_dir(dir))
                .map_err(write_error(dir))?
                .keep();
            let aside =
                Utf8PathBuf::try_from(aside).map_err(|e| write_error(dir)(e.into_io_error()))?;
            std::fs::rename(dir, &aside).map_err(write_error(dir))?;
            std::fs::rename(staged, dir).map_err(write_error(dir))?;
            aside
        }
        Err(e) => return Err(write_error(dir)(e.into())),
    };
    match std::fs::remove_dir_all(&old) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(write_error(&old)(e)),
        _ => Ok(()),
    }
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
pub(crate) struct TarGzSink<W: Write> {
    tar: tar::Builder<gzip::ParallelGz<W>>,
}

impl<W: Write> TarGzSink<W> {
    /// Starts an archive written to `out`.
    pub(crate) fn new(out: W) -> TarGzSink<W> {
        let mut tar = tar::Builder::new(gzip::ParallelGz::new(out));
        tar.mode(tar::HeaderMode::Deterministic);
        TarGzSink { tar }
    }

    /// Ends the archive and gives back the writer.
    pub(crate) fn finish(self) -> Result<W, Error> {
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
