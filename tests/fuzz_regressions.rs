//! Replays the fuzz targets' committed seeds and every past fuzzing finding through the same
//! properties the fuzzers check, so a fixed bug stays fixed without a fuzzer.

mod properties;
mod util;

fn replay(target: &str, property: fn(&[u8])) {
    let mut replayed = 0;
    for dir in ["seeds", "regressions"] {
        let path = util::root().join("fuzz").join(dir).join(target);
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries {
            let file = entry.unwrap().path();
            let data = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| property(&data));
            assert!(
                outcome.is_ok(),
                "{target}: {} fails its property",
                file.display()
            );
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no seeds for {target}");
}

#[test]
fn config_inputs() {
    replay("config", properties::config);
}

#[test]
fn secrets_inputs() {
    replay("secrets", properties::secrets);
}

#[test]
fn archive_inputs() {
    replay("verify_archive", properties::verify_archive);
}

#[test]
fn pem_inputs() {
    replay("verify_pem", properties::verify_pem);
}
