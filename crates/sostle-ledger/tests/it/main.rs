//! Reliability of the ledger with real processes: a writer killed with SIGKILL in the middle of

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! its work leaves a sound database holding every record it reported committed, and IDs are
//! never reused afterwards.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use sostle_ledger::Ledger;

fn now() -> jiff::Timestamp {
    "2026-05-11T21:00:00Z".parse().unwrap()
}

/// Not a test on its own: the child process of `killed_writer_loses_nothing_committed`. It files
/// trials with evidence as fast as it can and prints each id once its transaction committed.
#[test]
fn writer_child() {
    let Some(path) = std::env::var_os("SOSTLE_LEDGER_CHILD") else {
        return;
    };
    let mut l = Ledger::open(std::path::Path::new(&path)).unwrap();
    let big = serde_json::json!({"documents": [{"padding": "x".repeat(20_000)}]});
    loop {
        let t = l
            .file_trial("L2", 97, now(), &big, &serde_json::json!({}))
            .unwrap();
        l.add_evidence(
            &t.id,
            &[("falco".into(), "f".into(), big.clone())],
            now(),
            97,
        )
        .unwrap();
        println!("{}", t.id);
    }
}

#[test]
fn killed_writer_loses_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "writer_child", "--nocapture", "--test-threads=1"])
        .env("SOSTLE_LEDGER_CHILD", &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut committed = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while committed.len() < 60 {
        match lines.next() {
            Some(Ok(l)) if l.starts_with("TRB-CHAOS-") => committed.push(l),
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    // SIGKILL: no destructors, no cleanup, possibly mid-transaction.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        committed.len() >= 60,
        "the writer reported {} commits",
        committed.len()
    );
    let mut l = Ledger::open(&path).unwrap();
    assert_eq!(l.integrity_check().unwrap(), vec!["ok".to_string()]);
    let present: Vec<String> = l.trials().unwrap().into_iter().map(|t| t.id).collect();
    for id in &committed {
        assert!(
            present.contains(id),
            "{id} was reported committed but is missing"
        );
        assert_eq!(l.evidence(id).unwrap().len(), 1, "{id} lost its evidence");
    }
    let next = l
        .file_trial(
            "L2",
            97,
            now(),
            &serde_json::json!({}),
            &serde_json::json!({}),
        )
        .unwrap();
    assert!(!present.contains(&next.id), "{} was reused", next.id);
}
