//! How cpgen's cost grows: validate + render the guide's cluster with existing keys, fresh
//! issuance per key algorithm, and a cluster with 1,000 workers.

use std::hint::black_box;

use cpgen::bundle::Bundle;
use cpgen::pki::Secrets;
use cpgen::{Config, Plan};
use criterion::{criterion_group, criterion_main, Criterion};
use time::macros::datetime;

fn plan(text: &str) -> Plan {
    match Config::parse("bench.toml", text).and_then(|c| c.validate()) {
        Ok(checked) => checked.plan,
        Err(e) => panic!("bench config must be valid: {e}"),
    }
}

fn guide_text() -> String {
    include_str!("../examples/seed-ha.toml").to_owned()
}

fn with_workers(count: usize) -> String {
    let mut text = include_str!("../examples/separate-cas.toml").replace(
        "host_cidrs = [\"10.10.10.0/24\"]",
        "host_cidrs = [\"10.10.0.0/16\"]",
    );
    for i in 0..count {
        text.push_str(&format!(
            "[[workers]]\nname = \"node{i}\"\naddress = \"10.10.{}.{}\"\n",
            20 + i / 250,
            1 + i % 250
        ));
    }
    text
}

fn fresh(plan: &Plan) -> Secrets {
    let mut secrets = Secrets::new(datetime!(2026-01-01 00:00:00 UTC)).unwrap();
    secrets
        .fill(plan, &cpgen::pki::FillOptions::default())
        .unwrap();
    secrets
}

fn render_existing(c: &mut Criterion) {
    let text = guide_text();
    let secrets = fresh(&plan(&text));
    c.bench_function("guide/validate+render, existing keys", |b| {
        b.iter(|| {
            let plan = plan(black_box(&text));
            Bundle::build(&plan, &secrets).unwrap().to_tar_gz().unwrap()
        })
    });
}

fn fresh_per_algorithm(c: &mut Criterion) {
    let mut group = c.benchmark_group("guide/fresh keys + bundle");
    group.sample_size(10);
    for algorithm in [
        "ecdsa-p256",
        "ecdsa-p384",
        "ed25519",
        "rsa-2048",
        "rsa-3072",
        "rsa-4096",
    ] {
        let text = guide_text().replace(
            "key_algorithm = \"rsa-2048\"",
            &format!(
                "key_algorithm = \"{algorithm}\"\nservice_account_key_algorithm = \"ecdsa-p256\""
            ),
        );
        let plan = plan(&text);
        group.bench_function(algorithm, |b| {
            b.iter(|| Bundle::build(&plan, &fresh(&plan)).unwrap())
        });
    }
    group.finish();
}

fn workers(c: &mut Criterion) {
    let plan = plan(&with_workers(1000));
    let mut group = c.benchmark_group("1000 workers");
    group.sample_size(10);
    group.bench_function("fresh ecdsa-p256 keys + bundle", |b| {
        b.iter(|| Bundle::build(&plan, &fresh(&plan)).unwrap())
    });
    let secrets = fresh(&plan);
    group.bench_function("existing keys, bundle", |b| {
        b.iter(|| Bundle::build(&plan, &secrets).unwrap())
    });
    group.finish();
}

criterion_group!(benches, render_existing, fresh_per_algorithm, workers);
criterion_main!(benches);
