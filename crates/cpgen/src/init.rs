//! `cpgen init`: the commented starter configuration, and writing it without ever replacing
//! an existing file.

use askama::Template;
use camino::Utf8Path;

use crate::spec::defaults;
use crate::types::KubernetesVersion;
use crate::Error;

/// The starter writes every default out; the template takes them from [`defaults`], so the
/// starter cannot drift from what validation fills in.
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
        default_version: KubernetesVersion::new(defaults::KUBERNETES_MINOR),
        oldest: KubernetesVersion::OLDEST,
        newest: KubernetesVersion::NEWEST,
    };
    crate::template::render_text(&starter, "starter-cluster.toml")
}

/// Writes the starter configuration to `path`. The file appears complete or not at all, and
/// an existing file is never replaced ([`Error::AlreadyExists`]); a device node, FIFO,
/// directory or symbolic link there is refused as what it is.
pub fn write_starter_config(path: &Utf8Path) -> Result<(), Error> {
    let text = starter_config()?;
    crate::atomic::refuse_non_regular(path)?;
    if path.exists() {
        return Err(Error::AlreadyExists {
            path: path.to_owned(),
        });
    }
    crate::atomic::write_file(path, text.as_bytes(), crate::atomic::Existing::Keep)?;
    // A starter config holds no secret: readable like any other config file.
    set_readable(path)
}

#[cfg(unix)]
fn set_readable(path: &Utf8Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).map_err(|source| {
        Error::Write {
            path: path.to_owned(),
            source,
        }
    })
}

#[cfg(not(unix))]
fn set_readable(_path: &Utf8Path) -> Result<(), Error> {
    Ok(())
}
