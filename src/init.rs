//! `cpgen init`: the commented starter configuration, and writing it without ever replacing
//! an existing file.

use std::io::Write;

use askama::Template;
use camino::Utf8Path;

use crate::types::KubernetesVersion;
use crate::Error;

#[derive(Template)]
#[template(path = "starter-cluster.toml", escape = "none")]
struct Starter {
    default_version: KubernetesVersion,
    oldest: KubernetesVersion,
    newest: KubernetesVersion,
}

/// The starter `cluster.toml`: the guide's topology with cpgen's recommended settings.
pub fn starter_config() -> Result<String, Error> {
    let starter = Starter {
        default_version: KubernetesVersion::new(31),
        oldest: KubernetesVersion::OLDEST,
        newest: KubernetesVersion::NEWEST,
    };
    crate::render::render_text(&starter, "starter-cluster.toml")
}

/// Writes the starter configuration to `path`. The file appears complete or not at all, and
/// an existing file is never replaced ([`Error::AlreadyExists`]).
pub fn write_starter_config(path: &Utf8Path) -> Result<(), Error> {
    let text = starter_config()?;
    let write_error = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    if path.exists() {
        return Err(Error::AlreadyExists {
            path: path.to_owned(),
        });
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_str().is_empty() => dir,
        _ => Utf8Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".cpgen-init")
        .tempfile_in(dir)
        .map_err(write_error)?;
    temp.write_all(text.as_bytes()).map_err(write_error)?;
    temp.as_file().sync_all().map_err(write_error)?;
    temp.persist_noclobber(path)
        .map_err(|e| match e.error.kind() {
            std::io::ErrorKind::AlreadyExists => Error::AlreadyExists {
                path: path.to_owned(),
            },
            _ => write_error(e.error),
        })?;
    Ok(())
}
