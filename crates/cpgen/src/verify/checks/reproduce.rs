//! The bundle rebuilt from its config and secrets, byte for byte (CP834).

use crate::bundle::Bundle;
use crate::diag::{Code, Diagnostic};
use crate::pki::Secrets;
use crate::plan::Plan;
use crate::verify::source::Tree;
use crate::Error;

/// Every file that `plan` and `secrets` do not build exactly as the bundle has it: changed
/// (contents or mode), missing or added. The secrets are only read: a key they lack is an
/// error ([`Error::MissingKey`]), never generated.
pub(in crate::verify) fn rebuild(
    tree: &Tree,
    plan: &Plan,
    secrets: &Secrets,
) -> Result<Vec<Diagnostic>, Error> {
    let built = Bundle::build(plan, secrets)?;
    let mut found = Vec::new();
    let help = "the bundle is not what the config and secrets build: build it again with `cpgen bundle CLUSTER.toml -o OUT.tar.gz --force`, and find out who changed it";
    for (path, file) in built.files() {
        let message = match tree.files.get(path) {
            None => "missing: the config and secrets build it, the bundle lacks it".to_owned(),
            Some(entry) if entry.data != file.contents => {
                let at = entry
                    .data
                    .iter()
                    .zip(&file.contents)
                    .position(|(a, b)| a != b)
                    .unwrap_or_else(|| entry.data.len().min(file.contents.len()));
                format!(
                    "differs from what the config and secrets build, from byte {at} on ({} bytes, built: {})",
                    entry.data.len(),
                    file.contents.len()
                )
            }
            Some(entry) if entry.mode & 0o7777 != file.mode() => format!(
                "mode {:04o} differs from what the config and secrets build ({:04o})",
                entry.mode & 0o7777,
                file.mode()
            ),
            Some(_) => continue,
        };
        found.push(Diagnostic::file_error(
            Code::NotReproduced,
            path,
            message,
            help,
        ));
    }
    for path in tree.files.keys() {
        if built.get(path).is_none() {
            found.push(Diagnostic::file_error(
                Code::NotReproduced,
                path,
                "added: the config and secrets do not build this file",
                help,
            ));
        }
    }
    Ok(found)
}
