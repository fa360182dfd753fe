//! Issuing the guide's PKI (the hand-built guide takes about 1.7 s with cfssl, 3.1 s with plain openssl):
//! once with the keys already in the secrets file, once generating every key.

use std::hint::black_box;

use cpgen::pki::Secrets;
use cpgen::types::KeyAlgorithm;
use cpgen::Config;
use criterion::{criterion_group, criterion_main, Criterion};
use time::macros::datetime;

fn guide_plan() -> cpgen::Plan {
    let text = include_str!("../examples/seed-ha.toml");
    match Config::parse("seed-ha.toml", text).and_then(|c| c.validate()) {
        Ok(checked) => checked.plan,
        Err(e) => panic!("the guide's example must be valid: {e}"),
    }
}

fn issue_guide_pki(c: &mut Criterion) {
    let plan = guide_plan();
    let now = datetime!(2026-01-01 00:00:00 UTC);
    let mut filled = Secrets::new(now).unwrap();
    filled
        .fill(&plan, &cpgen::pki::FillOptions::default())
        .unwrap();

    let mut group = c.benchmark_group("guide-pki-rsa2048");
    group.sample_size(10);
    group.bench_function("existing-keys", |b| {
        b.iter(|| cpgen::test_support::issue(black_box(&plan), black_box(&filled)).unwrap())
    });
    group.bench_function("fresh-keys", |b| {
        b.iter(|| {
            let mut secrets = Secrets::new(now).unwrap();
            secrets
                .fill(black_box(&plan), &cpgen::pki::FillOptions::default())
                .unwrap();
            cpgen::test_support::issue(&plan, &secrets).unwrap()
        })
    });
    group.finish();
}

/// One RSA-2048 key, the unit of the key-generation floor that `benches/compare.sh` holds a
/// fresh bundle against (keys x this / cores). Prime search makes single keys vary a lot,
/// hence the larger sample.
fn one_rsa_key(c: &mut Criterion) {
    let mut group = c.benchmark_group("keygen");
    group.sample_size(60);
    group.measurement_time(std::time::Duration::from_secs(8));
    group.bench_function("rsa-2048", |b| {
        b.iter(|| cpgen::test_support::generate_pem(KeyAlgorithm::Rsa2048).unwrap())
    });
    group.finish();
}

criterion_group!(benches, issue_guide_pki, one_rsa_key);
criterion_main!(benches);
