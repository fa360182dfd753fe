//! The bundle rebuilt from its config and secrets, byte for byte (CP834).

use crate::bundle::{Bundle, FileKind};
use crate::diag::{Code, Diagnostic};
use crate::layout::{CHANGES, README};
use crate::pki::Secrets;
use crate::plan::Plan;
use crate::render::changes::{changes_section, RunbookLines};
use crate::verify::source::Tree;
use crate::Error;

/// What `plan` and `secrets` build for this bundle. A bundle that changes a running cluster
/// (`bundle --previous`) records how each etcd member joined, and carries the runbook
/// (`changes.json`): those come from the deployed bundle, which a rebuild does not have, so
/// they are taken as the bundle has them (the runbook's commands are held to their shapes
/// apart, CP833) and everything else, the README's "Changes" section included, is rebuilt
/// from them.
fn rebuilt(tree: &Tree, plan: &Plan, secrets: &Secrets) -> Result<Bundle, Error> {
    let plan = crate::verify::with_recorded_joins(tree, plan);
    let mut built = Bundle::build(&plan, secrets)?;
    let Some(changes) = tree.files.get(CHANGES) else {
        return Ok(built);
    };
    built.insert(CHANGES, FileKind::Config, changes.data.clone());
    if let Ok(runbook) = serde_json::from_slice::<RunbookLines>(&changes.data) {
        let mut readme = built
            .get(README)
            .map(|f| f.contents.clone())
            .unwrap_or_default();
        readme.extend(changes_section(&runbook.steps, plan.etcd.data_dir.as_str())?.into_bytes());
        built.insert(README, FileKind::Readme, readme);
    }
    built.with_manifest()
}

/// Every file that `plan` and `secrets` do not build exactly as the bundle has it: changed
/// (contents or mode), missing or added. The secrets are only read: a key they lack is an
/// error ([`Error::MissingKey`]), never generated.
pub(in crate::verify) fn rebuild(
    tree: &Tree,
    plan: &Plan,
    secrets: &Secrets,
) -> Result<Vec<Diagnostic>, Error> {
    let built = rebuilt(tree, plan, secrets)?;
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
