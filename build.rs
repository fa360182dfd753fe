//! Records the git commit the `cpgen` binary is built from, for `cpgen --version`. A build
//! outside a git checkout (a source tarball) says `unknown`, unless the packager sets
//! `CPGEN_COMMIT`.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=CPGEN_COMMIT");
    let commit = std::env::var("CPGEN_COMMIT")
        .ok()
        .or_else(git_commit)
        .filter(|commit| !commit.is_empty() && commit.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=CPGEN_COMMIT={commit}");
    // HEAD names the branch, the branch's file (or packed-refs) its commit: a new commit or
    // a checkout changes one of them, and the version is read again.
    for watched in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if Path::new(watched).exists() {
            println!("cargo:rerun-if-changed={watched}");
        }
    }
}

fn git_commit() -> Option<String> {
    let output = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(String::from_utf8(output.stdout).ok()?.trim().to_owned())
}
