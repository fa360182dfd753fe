//! `cpgen probe` of a cluster of 5 masters and 300 workers whose every host is dead: the
//! masters refuse connections, and each kubelet port accepts TCP but never answers TLS. The
//! target: such a probe costs about (endpoints / parallel dials) timeouts, not one timeout per
//! endpoint (300 ms each here).

use std::net::TcpListener;

use camino::Utf8Path;
use cpgen::bundle::{Bundle, WriteMode};
use cpgen::probe::{probe_path, ProbeOptions, Status};
use cpgen::Config;
use criterion::{criterion_group, criterion_main, Criterion};

const WORKERS: usize = 300;

fn worker_address(i: usize) -> String {
    format!("127.0.{}.{}", 4 + i / 250, 1 + i % 250)
}

fn config() -> String {
    let mut text = String::from(
        "[cluster]\nname = \"bench\"\n[api]\nendpoint = \"127.0.3.1\"\n\
         [pki]\nkey_algorithm = \"ecdsa-p256\"\n",
    );
    for i in 0..5 {
        text.push_str(&format!(
            "[[masters]]\nname = \"m{i}\"\naddress = \"127.0.3.{}\"\n",
            i + 1
        ));
    }
    for i in 0..WORKERS {
        text.push_str(&format!(
            "[[workers]]\nname = \"w{i}\"\naddress = \"{}\"\n",
            worker_address(i)
        ));
    }
    text
}

fn dead_cluster(c: &mut Criterion) {
    let plan = match Config::parse("bench.toml", &config()).and_then(|c| c.validate()) {
        Ok(checked) => checked.plan,
        Err(e) => panic!("bench config must be valid: {e}"),
    };
    let mut secrets = cpgen::pki::Secrets::new(time::OffsetDateTime::now_utc()).unwrap();
    secrets
        .fill(&plan, &cpgen::pki::FillOptions::default())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = Utf8Path::from_path(dir.path()).unwrap().join("bundle");
    Bundle::build(&plan, &secrets)
        .unwrap()
        .write_dir(&out, WriteMode::CreateNew)
        .unwrap();
    // Never accepted, never answered: each dial waits for its timeout.
    let _silent: Vec<TcpListener> = (0..WORKERS)
        .map(|i| TcpListener::bind((worker_address(i).as_str(), 10250)).unwrap())
        .collect();
    let options = ProbeOptions {
        timeout: "300ms".parse().unwrap(),
        ..ProbeOptions::default()
    };
    let mut group = c.benchmark_group("probe");
    group.sample_size(10);
    group.bench_function("5 masters + 300 workers, all dead", |b| {
        b.iter(|| {
            let report = probe_path(&out, &options).unwrap();
            assert!(report
                .endpoints
                .iter()
                .all(|e| e.status == Status::Unreachable));
            report
        })
    });
    group.finish();
}

criterion_group!(benches, dead_cluster);
criterion_main!(benches);
