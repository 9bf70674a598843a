//! Ledger operations on a real file (WAL, immediate transactions), each as one operation:
//! filing a trial, adding evidence, registering a witness, loading the snapshot `sostle test`
//! uses. Run: `cargo bench -p sostle-ledger --bench ledger`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use sostle_ledger::{Ledger, Snapshot};

fn ops(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::open(&dir.path().join("ledger.db")).unwrap();
    let now: jiff::Timestamp = "2026-05-11T21:00:00Z".parse().unwrap();
    let subject = json!({"documents": [{"kind": "Deployment", "spec": {"x": "y".repeat(2000)}}]});
    let mut g = c.benchmark_group("ledger");
    g.bench_function("file_trial", |b| {
        b.iter(|| l.file_trial("L2", 97, now, &subject, &json!({})).unwrap())
    });
    let t = l.file_trial("L2", 97, now, &subject, &json!({})).unwrap();
    g.bench_function("add_evidence", |b| {
        b.iter(|| {
            l.add_evidence(
                &t.id,
                &[("falco".into(), "f".into(), json!({"events": 3}))],
                now,
                97,
            )
            .unwrap()
        })
    });
    let mut n = 0u64;
    g.bench_function("register_witness", |b| {
        b.iter(|| {
            n += 1;
            l.register_witness(&format!("sha256:{n:064x}"), "Kay", &json!({}), now)
                .unwrap()
        })
    });
    // A ledger the size of a busy quarter: 200 trials, 200 witnesses, 50 profiles.
    let mut q = Ledger::open(&dir.path().join("quarter.db")).unwrap();
    for i in 0..200 {
        let t = q.file_trial("L2", 97, now, &subject, &json!({})).unwrap();
        q.register_witness(&format!("sha256:{i:064x}"), "Kay", &json!({}), now)
            .unwrap();
        if i % 4 == 0 {
            q.add_profile(&t.id, &format!("img:{i}"), now, |id| {
                Ok((
                    json!({"profile_id": id, "sostle_layers_authorized": ["L2"]}),
                    "sig".into(),
                ))
            })
            .unwrap();
        }
    }
    g.bench_function("snapshot_load_200_trials", |b| {
        b.iter(|| Snapshot::load(&q).unwrap())
    });
    g.finish();
}

criterion_group!(benches, ops);
criterion_main!(benches);
