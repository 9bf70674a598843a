//! Ledger operations on both backends side by side, in one run: the embedded SQLite file (WAL,
//! `synchronous = FULL`) and a real PostgreSQL server on loopback (started by the bench, as the
//! tests start it). Each operation is one transaction as the commands run it: filing a trial,
//! adding evidence, registering a witness; and loading the snapshot `sostle test` uses from a
//! ledger of 10,000 trials (10,000 witnesses, 2,500 profiles).
//! Run: `cargo bench -p sostle-ledger --bench ledger`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use sostle_core::layer::Layer;
use sostle_core::trial::{Charge, EvidenceKind, Subject};
use sostle_ledger::{Error, Ledger, Location, Snapshot};
use sostle_test_support::postgres::Pg;

/// One Deployment of about 2 kB.
fn subject() -> Subject {
    Subject {
        documents: vec![json!({"kind": "Deployment", "spec": {"x": "y".repeat(2000)}})],
        ..Subject::default()
    }
}

fn fill(l: &mut Ledger, trials: usize) {
    let now: jiff::Timestamp = "2026-05-11T21:00:00Z".parse().unwrap();
    let subject = subject();
    l.atomically(|tx| {
        for i in 0..trials {
            let t = tx.file_trial(Layer::L2, 97, now, &subject, &Charge::default())?;
            tx.register_witness(&format!("sha256:{i:064x}"), "Kay", &json!({}), now)?;
            if i % 4 == 0 {
                tx.add_profile(&t.id, &format!("img:{i}"), now, |id| {
                    Ok((
                        json!({"profile_id": id, "sostle_layers_authorized": ["L2"]}),
                        "sig".into(),
                    ))
                })?;
            }
        }
        Ok::<_, Error>(())
    })
    .unwrap();
}

fn ops(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let pg = Pg::start();
    let now: jiff::Timestamp = "2026-05-11T21:00:00Z".parse().unwrap();
    let subject = subject();
    let pg_db = |name: &str| {
        pg.sql("postgres", &format!("CREATE DATABASE {name}"));
        Location::Postgres(pg.url(name))
    };
    let backends = [
        (
            "sqlite",
            Location::File(dir.path().join("ledger.db")),
            Location::File(dir.path().join("big.db")),
        ),
        ("postgres", pg_db("ops"), pg_db("big")),
    ];
    for (name, ops, big) in backends {
        let mut g = c.benchmark_group(format!("ledger/{name}"));
        let mut l = Ledger::open(&ops).unwrap();
        g.bench_function("file_trial", |b| {
            b.iter(|| {
                l.atomically(|tx| tx.file_trial(Layer::L2, 97, now, &subject, &Charge::default()))
                    .unwrap()
            })
        });
        let t = l
            .atomically(|tx| tx.file_trial(Layer::L2, 97, now, &subject, &Charge::default()))
            .unwrap();
        g.bench_function("add_evidence", |b| {
            b.iter(|| {
                l.atomically(|tx| {
                    tx.add_evidence(
                        &t.id,
                        &[(EvidenceKind::Falco, "f".into(), json!({"events": 3}))],
                        now,
                        97,
                    )
                })
                .unwrap()
            })
        });
        let mut n = 0u64;
        g.bench_function("register_witness", |b| {
            b.iter(|| {
                n += 1;
                l.atomically(|tx| {
                    tx.register_witness(&format!("sha256:{n:064x}"), "Kay", &json!({}), now)
                })
                .unwrap()
            })
        });
        let mut q = Ledger::open(&big).unwrap();
        fill(&mut q, 10_000);
        g.sample_size(20);
        g.bench_function("snapshot_load_10000_trials", |b| {
            b.iter(|| Snapshot::load(&q).unwrap())
        });
        g.finish();
    }
}

criterion_group!(benches, ops);
criterion_main!(benches);
