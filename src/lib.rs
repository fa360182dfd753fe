//! cpgen compiles one typed description of a highly-available Kubernetes control plane
//! (`cluster.toml`) into a validated plan, and later into a reproducible bundle of everything
//! a hand-built control plane needs.
//!
//! The data flow is one-directional:
//!
//! ```text
//! cluster.toml --parse--> Config (raw, spans kept) --validate--> Plan (resolved) or diagnostics
//! ```
//!
//! ```
//! let text = r#"
//! [[masters]]
//! name = "kubem00"
//! address = "127.0.1.80"
//! "#;
//! let config = cpgen::Config::parse("cluster.toml", text)?;
//! let checked = config.validate()?;
//! assert_eq!(checked.plan.masters.len(), 1);
//! assert_eq!(checked.plan.etcd_failure_tolerance(), 0);
//! # Ok::<(), cpgen::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub)]
// The library reports through return values; only the binary prints or panics.
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod bundle;
pub mod config;
pub mod diag;
mod error;
pub mod init;
pub mod kubernetes;
pub mod pki;
pub mod plan;
pub mod render;
pub mod types;
pub mod validate;
pub mod verify;

pub use config::Config;
pub use diag::{Diagnostic, Report, Severity};
pub use error::Error;
pub use plan::Plan;
pub use validate::Checked;
