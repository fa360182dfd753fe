//! Writing a file so that it appears complete or not at all: a temporary file (mode 0600
//! from its creation) in the same directory, flushed to disk, then renamed into place.

use std::io::Write;

use camino::Utf8Path;

use crate::Error;

/// What to do when the target already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Existing {
    /// Refuse with [`Error::AlreadyExists`] (decided by the rename itself, so no race).
    Keep,
    /// Replace it.
    Replace,
}

/// The directory a path's temporary sibling goes in.
pub(crate) fn parent_dir(path: &Utf8Path) -> &Utf8Path {
    match path.parent() {
        Some(dir) if !dir.as_str().is_empty() => dir,
        _ => Utf8Path::new("."),
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
/// write it in pieces; nothing appears at `path` unless `fill` succeeds.
pub(crate) fn write_with<T>(
    path: &Utf8Path,
    existing: Existing,
    fill: impl FnOnce(&mut std::fs::File) -> Result<T, Error>,
) -> Result<T, Error> {
    crate::bundle::refuse_symlink(path)?;
    let write_error = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".cpgen-")
        .tempfile_in(parent_dir(path))
        .map_err(write_error)?;
    let made = fill(temp.as_file_mut())?;
    temp.as_file().sync_all().map_err(write_error)?;
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
