//! Dates an operator must hear about: renewal times that make unusable certificates, and
//! CAs that end soon or before their leaves would. The real CLI, with real openssl CAs.

mod util;

use std::path::Path;
use std::process::Output;

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

fn from_now(offset: Duration) -> String {
    (OffsetDateTime::now_utc() + offset)
        .format(&Rfc3339)
        .unwrap()
}

#[test]
fn renewing_far_ahead_or_far_back_needs_a_flag_and_changes_nothing_without() {
    let dir = util::dir_with_config("separate-cas");
    let out = util::cpgen_in(dir.path(), &["bundle", "cluster.toml", "-o", "b.tar.gz"]);
    assert_eq!(out.status.code(), Some(0), "{}", util::stderr(&out));
    let secrets = dir.path().join("cluster.secrets.toml");
    for (at, flag) in [
        (from_now(Duration::days(300)), "--allow-future"),
        (from_now(Duration::days(-400)), "--allow-expired"),
    ] {
        let before = std::fs::read(&secrets).unwrap();
        let refused = util::cpgen_in(dir.path(), &["renew", "cluster.toml", "--at", &at]);
        assert_eq!(refused.status.code(), Some(2), "{at}");
        let text = util::stderr(&refused);
        assert!(text.contains(flag), "{at}: {text}");
        assert!(
            std::fs::read(&secrets).unwrap() == before,
            "{at} changed the secrets"
        );
        let meant = util::cpgen_in(dir.path(), &["renew", "cluster.toml", "--at", &at, flag]);
        assert_eq!(
            meant.status.code(),
            Some(0),
            "{at}: {}",
            util::stderr(&meant)
        );
    }
    // Within a day ahead is clock skew, not a mistake.
    let soon = from_now(Duration::hours(12));
    let out = util::cpgen_in(dir.path(), &["renew", "cluster.toml", "--at", &soon]);
    assert_eq!(out.status.code(), Some(0), "{}", util::stderr(&out));
}

/// A CA made by openssl that ends `days` from now.
fn short_lived_ca(dir: &Path, days: u32) {
    util::openssl_ca(dir, "ca", "short-ca", days);
}

/// `cpgen secrets import-ca` of `ca.pem` in `dir` as the etcd CA.
fn import_as_etcd_ca(dir: &Path) -> Output {
    util::cpgen_in(
        dir,
        &[
            "secrets",
            "import-ca",
            "--cert",
            "ca.pem",
            "--key",
            "ca-key.pem",
            "--which",
            "etcd",
            "--secrets",
            "cluster.secrets.toml",
        ],
    )
}

#[test]
fn a_ca_that_ends_soon_is_warned_at_import_and_bundle_with_its_date() {
    let dir = util::dir_with_config("separate-cas");
    short_lived_ca(dir.path(), 20);
    let end = (OffsetDateTime::now_utc() + Duration::days(20))
        .date()
        .to_string();
    let import = import_as_etcd_ca(dir.path());
    assert_eq!(import.status.code(), Some(0), "{}", util::stderr(&import));
    let text = util::stderr(&import);
    assert!(text.contains("warning: the etcd CA expires on"), "{text}");
    assert!(text.contains(&end), "{end} missing: {text}");

    let bundle = util::cpgen_in(dir.path(), &["bundle", "cluster.toml", "--out-dir", "tree"]);
    assert_eq!(bundle.status.code(), Some(0), "{}", util::stderr(&bundle));
    let text = util::stderr(&bundle);
    assert!(text.contains("the etcd CA expires on"), "{text}");
    assert!(
        text.contains("valid for 19 days instead of pki.cert_validity_days = 365")
            || text.contains("valid for 20 days instead of pki.cert_validity_days = 365"),
        "{text}"
    );
    // The Kubernetes CA is cpgen's own, ten years long: nothing to say about it.
    assert!(!text.contains("kubernetes CA"), "{text}");
    // And what it says is what the bundle holds.
    let certs = util::cpgen_in(dir.path(), &["certs", "tree", "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_slice(&certs.stdout).unwrap();
    let etcd_server = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["certificate"] == "hosts/kubem00/etc/etcd/pki/etcd-server.pem")
        .unwrap();
    assert!(etcd_server["expires"].as_str().unwrap().starts_with(&end));
    // verify warns that the leaf expires soon, and does not send the operator to `cpgen
    // renew`, which cannot move a leaf past its CA's end.
    let verify = util::cpgen_in(dir.path(), &["verify", "tree", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    let leaf = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "CP807" && d["file"] == "hosts/kubem00/etc/etcd/pki/etcd-server.pem")
        .unwrap_or_else(|| panic!("{report:#}"));
    let help = leaf["help"].as_str().unwrap();
    assert!(!help.contains("cpgen renew"), "{help}");
    assert!(help.contains("CA"), "{help}");
}

#[test]
fn leaves_issued_after_their_ca_ended_are_refused() {
    let dir = util::dir_with_config("separate-cas");
    short_lived_ca(dir.path(), 2);
    let import = import_as_etcd_ca(dir.path());
    assert_eq!(import.status.code(), Some(0), "{}", util::stderr(&import));
    let out = util::cpgen_in(dir.path(), &["bundle", "cluster.toml", "-o", "b.tar.gz"]);
    assert_eq!(out.status.code(), Some(0), "{}", util::stderr(&out));
    let secrets = dir.path().join("cluster.secrets.toml");
    let before = std::fs::read(&secrets).unwrap();
    let at = from_now(Duration::days(10));
    let out = util::cpgen_in(
        dir.path(),
        &["renew", "cluster.toml", "--at", &at, "--allow-future"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", util::stderr(&out));
    assert!(
        util::stderr(&out).contains("etcd CA"),
        "{}",
        util::stderr(&out)
    );
    assert!(
        std::fs::read(&secrets).unwrap() == before,
        "the secrets changed"
    );
}

#[test]
fn times_at_the_ends_of_the_calendar_are_clear_errors_not_panics() {
    let dir = util::dir_with_config("separate-cas");
    let out = util::cpgen_in(dir.path(), &["bundle", "cluster.toml", "-o", "b.tar.gz"]);
    assert_eq!(out.status.code(), Some(0), "{}", util::stderr(&out));
    for at in ["9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z"] {
        for flags in [&[][..], &["--allow-future", "--allow-expired"][..]] {
            let args = [&["renew", "cluster.toml", "--at", at][..], flags].concat();
            let out = util::cpgen_in(dir.path(), &args);
            let text = util::stderr(&out);
            assert!(matches!(out.status.code(), Some(1 | 2)), "{args:?}: {text}");
            assert!(!text.contains("panicked"), "{args:?}: {text}");
        }
    }
    // A hand-edited secrets file.
    let path = dir.path().join("cluster.secrets.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    for field in ["ca_issued_at", "issued_at"] {
        let edited: String = text
            .lines()
            .map(|line| {
                if line.starts_with(&format!("{field} = ")) {
                    format!("{field} = \"9999-12-31T00:00:00Z\"\n")
                } else {
                    format!("{line}\n")
                }
            })
            .collect();
        std::fs::write(&path, edited).unwrap();
        let out = util::cpgen_in(dir.path(), &["bundle", "cluster.toml", "-o", "c.tar.gz"]);
        let stderr = util::stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{field}: {stderr}");
        assert!(stderr.contains(&format!("`{field}`")), "{field}: {stderr}");
        assert!(!dir.path().join("c.tar.gz").exists());
    }
}
