//! cpgen compiles one typed description of a highly-available Kubernetes control plane
//! (`cluster.toml`) into a validated plan and a reproducible, verified bundle: the PKI,
//! systemd units, kubeconfigs, HAProxy and keepalived configuration, a manifest, and Ansible
//! and NixOS glue.
//!
//! The data flow is one-directional, and only the first read and the final write touch
//! the filesystem:
//!
//! ```text
//! cluster.toml --Config::from_path--> Config --validate--> Plan (or every diagnostic at once)
//! Rust code --spec::ClusterSpec--> ClusterSpec --validate--> Plan (the same rules)
//! secrets.toml --Secrets::load_or_create--> Secrets (every private key, issue times)
//! Plan + Secrets --bundle::write_tar_gz / write_dir--> disk, streamed host by host
//! Plan + Secrets --Bundle::build--> Bundle (in memory, for tools and tests)
//! bundle on disk --verify::verify_path--> findings
//! ```
//!
//! The main flow, end to end:
//!
//! ```
//! use cpgen::{bundle::Bundle, pki::Secrets, Config};
//! use time::macros::datetime;
//!
//! let text = r#"
//! [api]
//! endpoint = "127.0.1.80"
//! [[masters]]
//! name = "kubem00"
//! address = "127.0.1.80"
//! "#;
//! let checked = Config::parse("cluster.toml", text)?.validate()?;
//! assert_eq!(checked.plan.etcd_failure_tolerance(), 0);
//!
//! // New secrets: every key the plan needs (in a real tool, load_or_create keeps them).
//! let mut secrets = Secrets::new(datetime!(2026-01-01 00:00:00 UTC))?;
//! secrets.fill(&checked.plan, &cpgen::pki::FillOptions::default())?;
//! let bundle = Bundle::build(&checked.plan, &secrets)?;
//! assert!(bundle.get("hosts/kubem00/etc/systemd/system/etcd.service").is_some());
//!
//! // Same inputs, same bytes.
//! assert_eq!(bundle.to_tar_gz()?, Bundle::build(&checked.plan, &secrets)?.to_tar_gz()?);
//!
//! // And a bundle cpgen made passes its own audit.
//! // Written host by host, it is the same bundle.
//! let dir = tempfile::tempdir().expect("temporary directory");
//! let out = camino::Utf8PathBuf::try_from(dir.path().join("bundle")).expect("UTF-8 path");
//! let options = cpgen::bundle::WriteOptions::default(); // never overwrites, no progress
//! let files = cpgen::bundle::write_dir(&checked.plan, &secrets, &out, &options)?;
//! assert_eq!(files, bundle.files().count());
//! let against = cpgen::verify::VerifyOptions { plan: Some(&checked.plan), secrets: Some(&secrets) };
//! let report = cpgen::verify::verify_path(&out, datetime!(2026-02-01 00:00:00 UTC), &against)?;
//! assert!(!report.has_errors(), "{}", report.render());
//! # Ok::<(), cpgen::Error>(())
//! ```
//!
//! The same cluster can be built in code, without a file: a [`spec::ClusterSpec`] holds every
//! key as a plain value and is checked by the same rules, with the same defaults. A finding
//! then names the field (`masters[1]`) instead of a line:
//!
//! ```
//! use cpgen::diag::Code;
//! use cpgen::spec::ClusterSpec;
//! use cpgen::Error;
//!
//! let spec = ClusterSpec::new("kubernetes")
//!     .endpoint("127.0.1.80")
//!     .master("kubem00", "127.0.1.80");
//! let checked = spec.validate()?;
//! assert_eq!(checked.plan.etcd_failure_tolerance(), 0);
//!
//! // Wrong values are findings of the rules, not type errors: two etcd members are CP402.
//! let Err(Error::Invalid(report)) = spec.master("kubem01", "127.0.1.81").validate() else {
//!     panic!("two masters validated");
//! };
//! let even = &report.diagnostics()[0];
//! assert_eq!(even.code, Code::EvenEtcdMembers);
//! let place = even.primary.as_ref().and_then(|label| label.path());
//! assert_eq!(place.map(|path| path.as_str()), Some("masters"));
//! assert!(report.render(cpgen::diag::Style::Plain).contains("--> masters: member 2 of 2"));
//! # Ok::<(), cpgen::Error>(())
//! ```
//!
//! Invalid input is never a panic: [`Error::Invalid`] carries a [`Report`] with every
//! finding, each with a stable code, the place in the file and a fix.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub)]
// Items the integration tests reach into (issuance, the verifier's reader, the plan's dials)
// are declared `pub` and exported only through `test_support`; without that feature they
// are unreachable by design. CI builds with it (the root package's dev-dependency), so the
// lint still checks every other item there.
#![cfg_attr(not(feature = "test-support"), allow(unreachable_pub))]
// The library reports through return values; only the binary prints or panics.
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

/// A `#[non_exhaustive]` enum of stable finding codes with their `CPnnn` ids and kebab-case
/// names; configuration findings and verify findings each have one.
macro_rules! stable_codes {
    ($(#[$doc:meta])* $name:ident; $($variant:ident = $id:literal, $slug:literal;)*) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        #[allow(missing_docs)]
        pub enum $name { $($variant,)* }

        impl $name {
            /// Every code, in id order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The stable id, e.g. `CP402`.
            pub fn id(self) -> &'static str {
                match self { $($name::$variant => $id,)* }
            }

            /// A short kebab-case name, e.g. `even-etcd-members`.
            pub fn slug(self) -> &'static str {
                match self { $($name::$variant => $slug,)* }
            }
        }
    };
}

mod atomic;
pub mod build;
pub mod bundle;
pub mod change;
pub mod config;
mod deploy;
pub mod diag;
pub mod diff;
mod error;
pub mod init;
mod kubernetes;
mod layout;
pub mod pki;
mod plan;
pub mod probe;
mod render;
pub mod schema;
pub mod spec;
mod template;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod types;
pub mod validate;
pub mod verify;

pub use config::Config;
pub use diag::{Diagnostic, Report, Severity};
pub use error::Error;
pub use plan::{Host, Plan, Summary};
pub use validate::Checked;
