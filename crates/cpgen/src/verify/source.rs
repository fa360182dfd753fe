//! Reading a bundle — a `.tar.gz` or a directory in the bundle layout — into memory, never
//! writing anything to disk. Hostile input (paths escaping the root, links, devices, huge
//! entries, archive bombs, garbage) is reported as findings and skipped.
//!
//! An archive is read the way GNU `tar xzf` extracts it, so the tree audited is the tree a
//! machine gets: every gzip member, and a later entry replacing an earlier one of the same
//! path.

use std::collections::BTreeMap;
use std::io::{BufRead, Read};

use camino::Utf8Path;

use crate::diag::{Code, Diagnostic};
use crate::Error;

/// No single file of a control-plane bundle comes near this.
pub const MAX_FILE: u64 = 32 << 20;
/// Nor does a whole bundle.
pub const MAX_TOTAL: u64 = 256 << 20;

/// One file read from the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Permission bits as stored (tar header or filesystem).
    pub mode: u32,
    /// Contents.
    pub data: Vec<u8>,
}

/// Every regular file of the bundle by its relative path (`hosts/kubem00/etc/...`).
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// The files.
    pub files: BTreeMap<String, Entry>,
}

/// Reads `path`: a directory, or a (gzipped) tar archive.
pub(crate) fn read_bundle(path: &Utf8Path, findings: &mut Vec<Diagnostic>) -> Result<Tree, Error> {
    let metadata = std::fs::metadata(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    if !metadata.is_dir() && !metadata.is_file() {
        // Opening a FIFO blocks until a writer comes; a device such as /dev/zero never ends.
        findings.push(hostile(
            "(bundle)",
            "it is a FIFO, socket or device, not a bundle file or directory; not read",
        ));
        return Ok(Tree::default());
    }
    if metadata.is_dir() {
        let mut tree = Tree::default();
        let mut total = 0;
        read_dir(path, "", &mut tree, &mut total, findings).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        return Ok(tree);
    }
    let file = std::fs::File::open(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(read_archive(file, findings))
}

fn read_dir(
    root: &Utf8Path,
    prefix: &str,
    tree: &mut Tree,
    total: &mut u64,
    findings: &mut Vec<Diagnostic>,
) -> std::io::Result<()> {
    let dir = root.join(prefix);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let Ok(name) = entry.file_name().into_string() else {
            findings.push(hostile(
                &format!("{prefix}{}", entry.file_name().to_string_lossy()),
                "its name is not UTF-8",
            ));
            continue;
        };
        let relative = format!("{prefix}{name}");
        // symlink_metadata: a link is reported, never followed out of the bundle.
        let metadata = std::fs::symlink_metadata(dir.join(&name))?;
        if metadata.is_dir() {
            findings.extend(unsafe_mode(&relative, mode_of(&metadata), "directory"));
            read_dir(root, &format!("{relative}/"), tree, total, findings)?;
        } else if !metadata.is_file() {
            findings.push(hostile(
                &relative,
                "it is a link or special file, not a regular file",
            ));
        } else if metadata.len() > MAX_FILE {
            findings.push(hostile(
                &relative,
                &format!(
                    "it is {} bytes, far larger than any bundle file",
                    metadata.len()
                ),
            ));
        } else if *total + metadata.len() > MAX_TOTAL {
            findings.push(hostile(
                &relative,
                "the bundle is larger than 256 MiB; the rest was not read",
            ));
            return Ok(());
        } else {
            *total += metadata.len();
            let data = std::fs::read(dir.join(&name))?;
            tree.files.insert(
                relative,
                Entry {
                    mode: mode_of(&metadata),
                    data,
                },
            );
        }
    }
    Ok(())
}

#[cfg(unix)]
fn mode_of(metadata: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn mode_of(_metadata: &std::fs::Metadata) -> u32 {
    0o644
}

/// Reads a tar archive, gzipped or not, from memory or a file.
pub fn read_archive(reader: impl Read, findings: &mut Vec<Diagnostic>) -> Tree {
    // A bundle compresses to less than it holds, so the input has the same bound; without
    // it, a file of empty gzip members would be read to its end, however long.
    let mut reader = std::io::BufReader::new(reader.take(MAX_TOTAL + 1));
    let gzipped = matches!(reader.fill_buf(), Ok(buf) if buf.starts_with(&GZIP_MAGIC));
    if !gzipped {
        let (tree, rest) = read_tar(reader, findings);
        if let Some(mut rest) = rest {
            after_the_end(&mut rest, findings);
        }
        return tree;
    }
    // Counting the decompressed bytes stops a gzip bomb early.
    let members = Members {
        current: Some(flate2::bufread::GzDecoder::new(reader)),
        trailing: false,
    };
    let (tree, rest) = read_tar(members.take(MAX_TOTAL + 1), findings);
    let Some(mut rest) = rest else {
        return tree;
    };
    after_the_end(&mut rest, findings);
    if rest.into_inner().trailing {
        findings.push(hostile(
            "(archive)",
            "bytes that are not gzip follow the last gzip member (`gzip -t` warns of trailing garbage)",
        ));
    }
    tree
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The decompressed bytes of every gzip member in turn, as `gzip -d` and `tar xzf` read
/// them; notes bytes after the last member that do not start another.
struct Members<R: BufRead> {
    current: Option<flate2::bufread::GzDecoder<R>>,
    trailing: bool,
}

impl<R: BufRead> Read for Members<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let Some(decoder) = self.current.as_mut() else {
                return Ok(0);
            };
            let n = decoder.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let Some(finished) = self.current.take() else {
                return Ok(0);
            };
            let mut input = finished.into_inner();
            let next = input.fill_buf()?;
            if next.is_empty() {
                return Ok(0);
            }
            if !next.starts_with(&GZIP_MAGIC) {
                self.trailing = true;
                return Ok(0);
            }
            self.current = Some(flate2::bufread::GzDecoder::new(input));
        }
    }
}

/// Reads what follows the tar end-of-archive marker: zero padding in any archive tar
/// writes. Anything else is hidden from `tar x` but extracted by `tar x --ignore-zeros`.
fn after_the_end(rest: &mut impl Read, findings: &mut Vec<Diagnostic>) {
    match zeros_only(rest) {
        Ok(true) => {}
        Ok(false) => findings.push(hostile(
            "(archive)",
            "data follows the tar end-of-archive marker: `tar x` skips it, `tar x --ignore-zeros` extracts it",
        )),
        Err(e) => findings.push(hostile(
            "(archive)",
            &format!("the archive is damaged after its last entry: {e}"),
        )),
    }
}

/// True when `reader` holds nothing but zero bytes to its end.
fn zeros_only(reader: &mut impl Read) -> std::io::Result<bool> {
    let mut buf = [0u8; 8192];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(true);
        }
        if buf[..n].iter().any(|b| *b != 0) {
            return Ok(false);
        }
    }
}

/// Reads the entries of a tar stream; gives the stream back, past the end-of-archive
/// marker, when it was read to the end without damage.
fn read_tar<R: Read>(reader: R, findings: &mut Vec<Diagnostic>) -> (Tree, Option<R>) {
    let mut tree = Tree::default();
    let mut total = 0u64;
    let mut archive = tar::Archive::new(reader);
    let entries = match archive.entries() {
        Ok(entries) => entries,
        Err(e) => {
            findings.push(hostile(
                "(archive)",
                &format!("not a readable tar archive: {e}"),
            ));
            return (tree, None);
        }
    };
    let mut intact = true;
    for entry in entries {
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(_) => {
                // The tar reader's own message quotes the header's bytes (its name and
                // checksum fields): for a key or a secrets file given by mistake, key
                // material. Nothing of the input is repeated.
                findings.push(hostile(
                    "(archive)",
                    "the archive is damaged or not a tar.gz: a tar header does not parse",
                ));
                intact = false;
                break;
            }
        };
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        // `tar -C bundle .` archives the root itself as `./`: nothing to read, nothing wrong.
        let is_root = raw_path
            .split('/')
            .all(|part| part.is_empty() || part == ".");
        if is_root && entry.header().entry_type().is_dir() {
            continue;
        }
        let Some(path) = safe_path(&raw_path) else {
            findings.push(hostile(
                &raw_path,
                "its path leaves the bundle (absolute or `..`); not read",
            ));
            continue;
        };
        if let Some(problem) = unknown_extension(&mut entry) {
            findings.push(hostile(&path, &problem));
            continue;
        }
        findings.extend(owner_findings(&path, &mut entry));
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            findings.extend(directory_findings(&path, &entry));
            continue;
        }
        if !kind.is_file() {
            findings.push(hostile(
                &path,
                "it is a link or special file, not a regular file; not read",
            ));
            continue;
        }
        // The size that counts is the one tar reads (a PAX `size` record overrides the
        // header's), and only the bytes read are trusted, never a claim.
        let size = entry.size();
        if size > MAX_FILE {
            findings.push(hostile(
                &path,
                &format!("it claims {size} bytes, far larger than any bundle file; not read"),
            ));
            continue;
        }
        let mode = entry.header().mode().unwrap_or(0) & 0o7777;
        let mut data = Vec::new();
        if let Err(e) = (&mut entry).take(MAX_FILE + 1).read_to_end(&mut data) {
            findings.push(hostile(&path, &format!("cannot be read: {e}")));
            intact = false;
            break;
        }
        if data.len() as u64 > MAX_FILE {
            findings.push(hostile(
                &path,
                "it is larger than 32 MiB, far larger than any bundle file; not read",
            ));
            continue;
        }
        total += data.len() as u64;
        if total > MAX_TOTAL {
            findings.push(hostile(
                &path,
                "the bundle is larger than 256 MiB; the rest was not read",
            ));
            intact = false;
            break;
        }
        if tree
            .files
            .insert(path.clone(), Entry { mode, data })
            .is_some()
        {
            findings.push(Diagnostic::file_error(
                Code::DuplicateEntry,
                &path,
                "the archive holds this path more than once: tar extracts each in turn and \
                 the last one stays, which is the one audited here"
                    .to_owned(),
                "rebuild the bundle with cpgen: an archive it writes never repeats a path",
            ));
        }
    }
    if !intact {
        return (tree, None);
    }
    (tree, Some(archive.into_inner()))
}

/// PAX records GNU tar acts on beyond the path, size and times: sparse maps
/// (`GNU.sparse.name` renames the entry, `GNU.sparse.map` rewrites its data), extended
/// attributes (`SCHILY.xattr.security.capability` grants capabilities), a link target, a
/// charset. cpgen writes no PAX record, and a reader that ignores one audits another file
/// than tar extracts, so any of them makes the entry hostile.
fn unknown_extension<R: Read>(entry: &mut tar::Entry<'_, R>) -> Option<String> {
    let extensions = match entry.pax_extensions() {
        Ok(Some(extensions)) => extensions,
        Ok(None) => return None,
        Err(e) => return Some(format!("its PAX header is damaged: {e}; not read")),
    };
    for extension in extensions {
        let Ok(extension) = extension else {
            return Some("its PAX header is damaged; not read".to_owned());
        };
        let key = String::from_utf8_lossy(extension.key_bytes()).into_owned();
        let value = String::from_utf8_lossy(extension.value_bytes()).into_owned();
        let harmless = match key.as_str() {
            "path" | "size" | "mtime" | "atime" | "ctime" => true,
            "uid" | "gid" => value == "0",
            "uname" | "gname" => value.is_empty() || value == "root",
            _ => false,
        };
        if !harmless {
            return Some(format!(
                "a PAX record `{key}={value}` that GNU tar acts on and cpgen never writes \
                 (sparse files rename and rewrite an entry, xattrs grant capabilities); not read"
            ));
        }
    }
    None
}

/// tar run as root (the way a bundle is installed) gives each file the archive's owner:
/// by name when the name exists on the machine, else by number.
fn owner_findings<R: Read>(path: &str, entry: &mut tar::Entry<'_, R>) -> Vec<Diagnostic> {
    let header = entry.header();
    let mut found = Vec::new();
    for (what, id) in [("uid", header.uid()), ("gid", header.gid())] {
        match id {
            Ok(0) => {}
            Ok(id) => found.push(metadata_finding(
                path,
                format!("its {what} is {id}: `tar x` as root makes that user the owner"),
            )),
            Err(_) => found.push(metadata_finding(path, format!("its {what} is unreadable"))),
        }
    }
    for (what, name) in [
        ("user", header.username_bytes()),
        ("group", header.groupname_bytes()),
    ] {
        if let Some(name) = name.filter(|n| !n.is_empty() && *n != b"root") {
            found.push(metadata_finding(
                path,
                format!(
                    "its {what} name is `{}`: `tar x` as root makes that {what} the owner",
                    String::from_utf8_lossy(name)
                ),
            ));
        }
    }
    found
}

/// A directory tar creates: no data, and a mode no one else can write through.
fn directory_findings<R: Read>(path: &str, entry: &tar::Entry<'_, R>) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    if entry.size() > 0 {
        found.push(hostile(path, "a directory entry that carries data"));
    }
    let mode = entry.header().mode().unwrap_or(0) & 0o7777;
    found.extend(unsafe_mode(path, mode, "directory"));
    found
}

/// Setuid, setgid or sticky bits, or write access for group or others: cpgen writes
/// none of them, and any one lets another user change or run what the cluster trusts.
pub(super) fn unsafe_mode(path: &str, mode: u32, what: &str) -> Option<Diagnostic> {
    let problem = if mode & 0o7000 != 0 {
        "setuid, setgid or sticky bits"
    } else if mode & 0o022 != 0 {
        "write access for group or others"
    } else {
        return None;
    };
    Some(metadata_finding(
        path,
        format!("{what} mode {mode:04o} has {problem}: tar and install keep them"),
    ))
}

fn metadata_finding(path: &str, message: String) -> Diagnostic {
    Diagnostic::file_error(
        Code::UnsafeMetadata,
        path,
        message,
        "rebuild the bundle with cpgen, or repack it as root with `tar --owner=0 --group=0`; cpgen writes files 0600/0644 and directories 0755, owned by root",
    )
}

/// A relative path without `.`/`..`/empty components, or `None`.
fn safe_path(raw: &str) -> Option<String> {
    let trimmed = raw.trim_start_matches("./");
    if trimmed.starts_with('/') || trimmed.contains('\\') {
        return None;
    }
    let parts: Vec<&str> = trimmed.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() || parts.iter().any(|p| *p == ".." || *p == ".") {
        return None;
    }
    Some(parts.join("/"))
}

fn hostile(path: &str, problem: &str) -> Diagnostic {
    Diagnostic::file_error(
        Code::HostileEntry,
        path,
        problem.to_owned(),
        "rebuild the bundle with cpgen, or inspect where this archive came from",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_escape_are_refused() {
        assert_eq!(
            safe_path("hosts/a/etc/x.pem").as_deref(),
            Some("hosts/a/etc/x.pem")
        );
        assert_eq!(safe_path("./admin/x").as_deref(), Some("admin/x"));
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "hosts/../../x",
            "a/./b",
            "",
            "a\\..\\b",
        ] {
            assert_eq!(safe_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn garbage_is_a_finding_not_a_panic() {
        let mut findings = Vec::new();
        let tree = read_archive(&b"\x1f\x8bthis is not gzip at all"[..], &mut findings);
        assert!(tree.files.is_empty());
        assert!(
            findings.iter().any(|f| f.code == Code::HostileEntry),
            "{findings:?}"
        );
    }
}
