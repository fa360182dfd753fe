//! Writing a file so that it appears complete or not at all: a temporary file (mode 0600
//! from its creation) in the same directory, flushed to disk, then renamed into place.
//!
//! Only regular files are ever replaced: a rename over a device node or a FIFO would
//! destroy it (`-o /dev/null` as root). Every temporary file is named after one pattern
//! ([`is_own_temporary`]) and holds an advisory lock while it exists, so a later run can
//! tell what an interrupted run left behind from what a running one is writing.

use std::io::Write;
use std::os::unix::fs::FileTypeExt;

use camino::{Utf8Path, Utf8PathBuf};

use crate::Error;

/// What to do when the target already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Existing {
    /// Refuse with [`Error::AlreadyExists`] (decided by the rename itself, so no race).
    Keep,
    /// Replace it.
    Replace,
}

/// Every temporary name starts with this.
const TEMP_PREFIX: &str = ".cpgen-";
/// A file being written.
pub(crate) const TEMP_FILE: &str = ".cpgen-tmp-";
/// A bundle tree being built.
pub(crate) const TEMP_TREE: &str = ".cpgen-stage-";
/// A replaced bundle tree being removed.
pub(crate) const OLD_TREE: &str = ".cpgen-old-";
/// Random characters after the prefix: long enough that no name of the user's matches.
const TEMP_RANDOM: usize = 12;

/// A builder for a temporary entry named `prefix` (one of the constants above) and random
/// characters.
pub(crate) fn temp_builder(prefix: &'static str) -> tempfile::Builder<'static, 'static> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix).rand_bytes(TEMP_RANDOM);
    builder
}

/// True for exactly the names cpgen gives its temporary entries, and for no other.
pub(crate) fn is_own_temporary(name: &str) -> bool {
    [TEMP_FILE, TEMP_TREE, OLD_TREE].iter().any(|prefix| {
        name.strip_prefix(prefix).is_some_and(|random| {
            random.len() == TEMP_RANDOM && random.bytes().all(|b| b.is_ascii_alphanumeric())
        })
    })
}

/// Waits for and takes an exclusive advisory lock on directory `dir`, held until the
/// returned descriptor is dropped. A directory rather than a lock file beside the secrets
/// file: nothing is left behind, and the lock does not depend on the file, which is
/// replaced by a rename.
pub(crate) fn lock_directory(dir: &Utf8Path) -> Result<std::os::fd::OwnedFd, Error> {
    use rustix::fs::{Mode, OFlags};
    let read_error = |source| Error::Read {
        path: dir.to_owned(),
        source,
    };
    let fd = rustix::fs::open(
        dir.as_std_path(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| read_error(e.into()))?;
    lock(&fd, Wait::Block).map_err(read_error)?;
    Ok(fd)
}

/// Whether [`lock`] waits for a lock another process holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Until it is released.
    Block,
    /// Not at all: `Ok(false)` at once.
    Try,
}

/// Takes an exclusive advisory lock on an open file or directory; with [`Wait::Try`],
/// returns `Ok(false)` when another process holds it.
pub(crate) fn lock(fd: impl std::os::fd::AsFd, wait: Wait) -> std::io::Result<bool> {
    use rustix::fs::FlockOperation;
    let operation = match wait {
        Wait::Block => FlockOperation::LockExclusive,
        Wait::Try => FlockOperation::NonBlockingLockExclusive,
    };
    match rustix::fs::flock(fd, operation) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) if wait == Wait::Try => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The directory a path's temporary sibling goes in.
pub(crate) fn parent_dir(path: &Utf8Path) -> &Utf8Path {
    match path.parent() {
        Some(dir) if !dir.as_str().is_empty() => dir,
        _ => Utf8Path::new("."),
    }
}

/// What is at a path, without following a symbolic link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    Nothing,
    Regular,
    Directory,
    Symlink,
    /// A character device or a FIFO: written into, never replaced.
    Stream(&'static str),
    /// A block device or a socket: never touched.
    Other(&'static str),
}

impl Found {
    /// What it is, in words.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Found::Nothing => "nothing",
            Found::Regular => "a regular file",
            Found::Directory => "a directory",
            Found::Symlink => "a symbolic link",
            Found::Stream(what) | Found::Other(what) => what,
        }
    }
}

/// What is at `path`.
pub(crate) fn found(path: &Utf8Path) -> Result<Found, Error> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(source) => {
            return Err(Error::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    Ok(Found::of(&metadata))
}

impl Found {
    /// What `metadata` (not following a symbolic link) says is there.
    pub(crate) fn of(metadata: &std::fs::Metadata) -> Found {
        let kind = metadata.file_type();
        if kind.is_file() {
            Found::Regular
        } else if kind.is_dir() {
            Found::Directory
        } else if kind.is_symlink() {
            Found::Symlink
        } else if kind.is_char_device() {
            Found::Stream("a character device")
        } else if kind.is_fifo() {
            Found::Stream("a FIFO")
        } else if kind.is_block_device() {
            Found::Other("a block device")
        } else {
            Found::Other("a socket")
        }
    }
}

/// An error that says why cpgen will not write `path`.
pub(crate) fn refusal(path: &Utf8Path, why: impl Into<String>) -> Error {
    Error::Write {
        path: path.to_owned(),
        source: std::io::Error::other(why.into()),
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

/// Refuses anything at `path` that is neither absent nor a regular file.
pub(crate) fn refuse_non_regular(path: &Utf8Path) -> Result<(), Error> {
    match found(path)? {
        Found::Nothing | Found::Regular => Ok(()),
        Found::Symlink => Err(Error::Symlink {
            path: path.to_owned(),
        }),
        other => Err(refusal(
            path,
            format!(
                "it is {}, not a regular file; cpgen replaces only regular files",
                other.describe()
            ),
        )),
    }
}

/// Writes `contents` to `path` atomically. The file keeps the temporary file's mode, 0600.
pub(crate) fn write_file(
    path: &Utf8Path,
    contents: &[u8],
    existing: Existing,
) -> Result<(), Error> {
    write_with(path, existing, |file| {
        file.write_all(contents).map_err(|source| Error::Write {
            path: path.to_owned(),
            source,
        })
    })
}

/// Writes `path` atomically with `fill`, which gets the temporary file (mode 0600) and may
/// write it in pieces; nothing appears at `path` unless `fill` succeeds. Whatever is at
/// `path` must be a regular file.
pub(crate) fn write_with<T>(
    path: &Utf8Path,
    existing: Existing,
    fill: impl FnOnce(&mut std::fs::File) -> Result<T, Error>,
) -> Result<T, Error> {
    refuse_non_regular(path)?;
    let write_error = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    let mut temp = temp_builder(TEMP_FILE)
        .tempfile_in(parent_dir(path))
        .map_err(write_error)?;
    // Held until the file is closed: the next run's clean-up leaves a locked file alone.
    lock(temp.as_file(), Wait::Block).map_err(write_error)?;
    let made = fill(temp.as_file_mut())?;
    temp.as_file().sync_all().map_err(write_error)?;
    // Again right before the rename: something else may have appeared meanwhile.
    refuse_non_regular(path)?;
    match existing {
        Existing::Replace => temp
            .persist(path)
            .map(drop)
            .map_err(|e| write_error(e.error)),
        Existing::Keep => {
            temp.persist_noclobber(path)
                .map(drop)
                .map_err(|e| match e.error.kind() {
                    std::io::ErrorKind::AlreadyExists => Error::AlreadyExists {
                        path: path.to_owned(),
                    },
                    _ => write_error(e.error),
                })
        }
    }?;
    Ok(made)
}

/// An entry of a directory that looks like a temporary entry of cpgen, found by
/// the writers' clean-up of their outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Leftover {
    /// Left by an interrupted run, and removed.
    Removed(Utf8PathBuf),
    /// Starts like cpgen's temporary names but is left alone, and why.
    Kept {
        /// The entry.
        path: Utf8PathBuf,
        /// Why it was not removed.
        why: String,
    },
}

/// Finds the entries of `dir` named like cpgen's temporary entries. Those named exactly as
/// cpgen names them, made before `started` and not locked by a running cpgen are what an
/// interrupted run left behind: they are removed. Others starting with `.cpgen-` are
/// reported and left alone. A locked one, or one newer than `started`, belongs to a run in
/// progress and is not mentioned.
pub(crate) fn clean_stale(dir: &Utf8Path, started: std::time::SystemTime) -> Vec<Leftover> {
    let Ok(entries) = std::fs::read_dir(dir.as_std_path()) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with(TEMP_PREFIX))
        .collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|name| {
            let path = dir.join(&name);
            if !is_own_temporary(&name) {
                return Some(Leftover::Kept {
                    path,
                    why: "it is not named as cpgen names its temporary files".to_owned(),
                });
            }
            stale_entry(&path, &name, started)
        })
        .collect()
}

fn stale_entry(path: &Utf8Path, name: &str, started: std::time::SystemTime) -> Option<Leftover> {
    use rustix::fs::{Mode, OFlags};
    let kept = |why: String| {
        Some(Leftover::Kept {
            path: path.to_owned(),
            why,
        })
    };
    let metadata = std::fs::symlink_metadata(path).ok()?;
    let is_file = name.starts_with(TEMP_FILE);
    let found = Found::of(&metadata);
    let right_kind = if is_file {
        Found::Regular
    } else {
        Found::Directory
    };
    if found != right_kind {
        return kept(format!(
            "it is {}, which cpgen never leaves under this name",
            found.describe()
        ));
    }
    if metadata.modified().map_or(true, |at| at >= started) {
        return None;
    }
    let fd = rustix::fs::open(
        path.as_std_path(),
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    match lock(&fd, Wait::Try) {
        Ok(true) => {}
        // A running cpgen is writing it.
        _ => return None,
    }
    let removed = if is_file {
        std::fs::remove_file(path)
    } else {
        std::fs::remove_dir_all(path)
    };
    match removed {
        Ok(()) => Some(Leftover::Removed(path.to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => kept(format!("cannot remove it: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cpgen_s_own_temporary_names_are_recognised() {
        for own in [
            ".cpgen-tmp-Ab3dEf6hIj9L",
            ".cpgen-stage-000000000000",
            ".cpgen-old-abcdefghijkl",
        ] {
            assert!(is_own_temporary(own), "{own}");
        }
        for other in [
            ".cpgen-notes",
            ".cpgen-tmp-short",
            ".cpgen-tmp-Ab3dEf6hIj9L.bak",
            ".cpgen-tmp-Ab3dEf6hIj9/",
            "cpgen-tmp-Ab3dEf6hIj9L",
            ".cpgen-Ab3dEf",
            ".cpgen-bundleAb3dEf",
        ] {
            assert!(!is_own_temporary(other), "{other}");
        }
        let temp = temp_builder(TEMP_TREE).tempdir().unwrap();
        let name = temp.path().file_name().unwrap().to_str().unwrap();
        assert!(is_own_temporary(name), "{name}");
    }
}
