//! The ledger's behaviour, one set of tests run against both backends: the embedded SQLite file
//! and a real PostgreSQL server on loopback (`sostle_test_support::postgres`). Numbers are consecutive and never
//! reused, racing writers queue, a failed or interrupted operation leaves nothing behind,
//! foreign files and databases are refused untouched, and `copy` moves a history over.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};

use serde_json::json;
use sostle_core::layer::Layer;
use sostle_core::trial::{Charge, EvidenceKind, Subject, TrialVerdict};
use sostle_ledger::{Error, Ledger, Location, NewTrendal, Snapshot};
use sostle_test_support::postgres::{self, Pg};
use sostle_test_support::registry;

fn now() -> jiff::Timestamp {
    "2026-05-11T21:00:00Z".parse().unwrap()
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Sqlite,
    Postgres,
}

/// A fresh, empty ledger location of one backend.
struct Fixture {
    _dir: tempfile::TempDir,
    location: Location,
}

impl Fixture {
    fn new(kind: Kind) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let location = match kind {
            Kind::Sqlite => Location::File(dir.path().join("ledger.db")),
            Kind::Postgres => Location::Postgres(Pg::shared().database()),
        };
        Fixture {
            _dir: dir,
            location,
        }
    }

    fn open(&self) -> Ledger {
        Ledger::open(&self.location).unwrap()
    }

    /// Runs SQL behind the ledger's back.
    fn raw(&self, sql: &str) {
        match &self.location {
            Location::File(p) => {
                rusqlite::Connection::open(p)
                    .unwrap()
                    .execute_batch(sql)
                    .unwrap();
            }
            Location::Postgres(u) => {
                Pg::shared().sql(&Pg::db_of(u), sql);
            }
        }
    }
}

/// Each listed test runs as `NAME::sqlite` and `NAME::postgres`.
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(super::Kind::Sqlite)
            }
            #[test]
            fn postgres() {
                super::$name(super::Kind::Postgres)
            }
        }
    )*};
}

both!(
    ids_are_sequential_and_never_reused,
    four_digits_after_999,
    a_failed_filing_takes_its_number_back,
    every_record_reads_back_as_written,
    racing_writers_get_consecutive_numbers,
    racing_first_opens_migrate_once,
    a_newer_schema_is_refused,
    a_ledger_that_is_not_there_is_not_created_by_open_existing,
    a_witness_time_that_does_not_decode_is_an_error,
);

/// Files an empty trial at L2.
fn try_file(tx: &sostle_ledger::Tx<'_>) -> sostle_ledger::Result<sostle_ledger::Trial> {
    tx.file_trial(
        Layer::L2,
        97,
        now(),
        &Subject::default(),
        &Charge::default(),
    )
}

fn file(tx: &sostle_ledger::Tx<'_>) -> String {
    try_file(tx).unwrap().id
}

fn file_one(l: &mut Ledger) -> String {
    l.atomically(|tx| Ok::<_, Error>(file(tx))).unwrap()
}

fn ids_are_sequential_and_never_reused(kind: Kind) {
    let f = Fixture::new(kind);
    let mut l = f.open();
    assert_eq!(
        (file_one(&mut l), file_one(&mut l)),
        ("TRB-CHAOS-001".to_string(), "TRB-CHAOS-002".to_string())
    );
    drop(l);
    let mut l = f.open();
    assert_eq!(file_one(&mut l), "TRB-CHAOS-003");
}

fn four_digits_after_999(kind: Kind) {
    let f = Fixture::new(kind);
    let mut l = f.open();
    f.raw("INSERT INTO counters(name, value) VALUES ('trial', 998)");
    assert_eq!(file_one(&mut l), "TRB-CHAOS-999");
    assert_eq!(file_one(&mut l), "TRB-CHAOS-1000");
}

fn a_failed_filing_takes_its_number_back(kind: Kind) {
    let f = Fixture::new(kind);
    let mut l = f.open();
    let e = l
        .atomically(|tx| {
            let id = file(tx);
            assert_eq!(id, "TRB-CHAOS-001");
            // Evidence for a trial that does not exist fails the whole operation.
            tx.add_evidence(
                "TRB-CHAOS-404",
                &[(EvidenceKind::Falco, "f".into(), json!({}))],
                now(),
                97,
            )?;
            Ok::<_, Error>(id)
        })
        .unwrap_err();
    assert!(e.to_string().contains("TRB-CHAOS-404"), "{e}");
    assert!(
        l.trials().unwrap().is_empty(),
        "the failed filing left a trial"
    );
    assert_eq!(
        file_one(&mut l),
        "TRB-CHAOS-001",
        "the number was not taken back"
    );
}

/// Writes one of every record and reads everything back, as JSON.
fn script(l: &mut Ledger) -> serde_json::Value {
    let subject = Subject {
        images: vec!["ghcr.io/eose/mefine:1.4".into()],
        documents: vec![json!({"kind": "Deployment", "n": 1.5, "s": "ünïcode ✓"})],
        ..Subject::default()
    };
    let t = l
        .atomically(|tx| {
            let t = tx.file_trial(
                Layer::L3,
                97,
                now(),
                &subject,
                &Charge {
                    at_target: [("fail".to_string(), 2)].into(),
                    ..Charge::default()
                },
            )?;
            tx.add_fingerprint(
                &t.id,
                &["deny_latest_tag".into(), "deny_root".into()],
                now(),
            )?;
            tx.add_fingerprint(&t.id, &["ignored: first record wins".into()], now())?;
            tx.add_evidence(
                &t.id,
                &[(EvidenceKind::Charge, "charge".into(), json!({"x": 1}))],
                now(),
                97,
            )?;
            Ok::<_, Error>(t)
        })
        .unwrap();
    let later: jiff::Timestamp = "2026-05-12T09:30:00Z".parse().unwrap();
    let burst = l
        .atomically(|tx| {
            tx.burst(&t.id, later)?;
            tx.burst(&t.id, now())
        })
        .unwrap();
    assert_eq!(
        burst.burst_at.map(|b| b.to_string()).as_deref(),
        Some("2026-05-12T09:30:00Z"),
        "a second burst keeps the first time"
    );
    l.atomically(|tx| {
        tx.add_evidence(
            &t.id,
            &[
                (
                    EvidenceKind::Falco,
                    "falco.json".into(),
                    json!({"events": []}),
                ),
                (
                    EvidenceKind::Trivy,
                    "trivy.json".into(),
                    json!({"critical": 0}),
                ),
            ],
            later,
            98,
        )?;
        tx.set_verdict(&t.id, TrialVerdict::Spiraling, false, later)?;
        tx.set_verdict(&t.id, TrialVerdict::MecipolLocked, true, later)?;
        tx.register_witness("sha256:aa", "Kay", &json!({"reason": "r"}), now())?;
        tx.register_witness("sha256:aa", "Rick", &json!({"reason": "other"}), later)?;
        let p = tx.add_profile(&t.id, "ghcr.io/eose/mefine:1.4", later, |id| {
            Ok((
                json!({"profile_id": id, "sostle_layers_authorized": ["L3"]}),
                "c2ln".into(),
            ))
        })?;
        assert_eq!(p.id, "profile-001");
        let tr = tx.add_trendal("TRENDAL-L3-YONE-BOSUN", later, |_| NewTrendal {
            layer: Layer::L3,
            silo: "yone".into(),
            crew: "Bosun".into(),
            spiral: Some("BOSUN+RICK".into()),
            trial: Some(t.id.clone()),
            warmth: 0.75,
            namespace: "sostle-l3".into(),
            manifest: json!({"kind": "Deployment"}),
        })?;
        assert_eq!(tr.id, "TRENDAL-L3-YONE-BOSUN-001");
        tx.warm_trendal(&tr.id, 0.25)?;
        tx.reap_trendal(&tr.id, "warmth 0.25 below the 0.5 floor", later)?;
        Ok::<_, Error>(())
    })
    .unwrap();
    let e = l
        .atomically(|tx| tx.warm_trendal("TRENDAL-L3-YONE-BOSUN-001", 0.9))
        .unwrap_err();
    assert!(e.to_string().contains("active trendal"), "{e}");
    assert!(matches!(l.trial("TRB-CHAOS-404"), Err(Error::NotFound(_))));
    let evidence: Vec<_> = l
        .evidence(&t.id)
        .unwrap()
        .into_iter()
        .map(|mut e| {
            e.id = 0; // PostgreSQL's identity and SQLite's AUTOINCREMENT agree only on order
            e
        })
        .collect();
    json!({
        "trials": l.trials().unwrap(),
        "states": l.trial_states().unwrap(),
        "evidence": evidence,
        "fingerprints": l.fingerprints().unwrap(),
        "witnesses": l.witnesses().unwrap(),
        "profiles": l.profiles().unwrap(),
        "trendals": l.trendals().unwrap(),
    })
}

fn every_record_reads_back_as_written(kind: Kind) {
    let f = Fixture::new(kind);
    let got = script(&mut f.open());
    assert_eq!(
        got["trials"][0]["subject"]["documents"][0]["s"],
        "ünïcode ✓"
    );
    assert_eq!(got["trials"][0]["verdict"], "MECIPOL-LOCKED");
    assert_eq!(got["trials"][0]["closed_at"], "2026-05-12T09:30:00Z");
    assert_eq!(got["states"], json!([["TRB-CHAOS-001", false]]));
    let kinds: Vec<&str> = got["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["charge", "falco", "trivy"]);
    assert_eq!(
        got["fingerprints"],
        json!([["TRB-CHAOS-001", ["deny_latest_tag", "deny_root"]]])
    );
    assert_eq!(
        got["witnesses"][0]["registered_by"], "Kay",
        "the first registration wins"
    );
    assert_eq!(got["witnesses"].as_array().unwrap().len(), 1);
    assert_eq!(got["profiles"][0]["profile"]["profile_id"], "profile-001");
    assert_eq!(got["trendals"][0]["state"], "reaped");
    assert_eq!(got["trendals"][0]["warmth"], 0.25);
    assert_eq!(
        got["trendals"][0]["reap_reason"],
        "warmth 0.25 below the 0.5 floor"
    );
}

#[test]
fn both_backends_read_back_the_same_records() {
    let a = script(&mut Fixture::new(Kind::Sqlite).open());
    let b = script(&mut Fixture::new(Kind::Postgres).open());
    assert_eq!(a, b);
}

fn racing_writers_get_consecutive_numbers(kind: Kind) {
    let f = Fixture::new(kind);
    drop(f.open()); // created before the race: the race is for numbers
    let barrier = Arc::new(Barrier::new(16));
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let barrier = barrier.clone();
                let loc = f.location.clone();
                s.spawn(move || {
                    let mut l = Ledger::open(&loc).unwrap();
                    barrier.wait();
                    file_one(&mut l)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ids = ids;
    ids.sort();
    let want: Vec<String> = (1..=16).map(|i| format!("TRB-CHAOS-{i:03}")).collect();
    assert_eq!(ids, want);
}

fn racing_first_opens_migrate_once(kind: Kind) {
    let f = Fixture::new(kind);
    let barrier = Arc::new(Barrier::new(8));
    std::thread::scope(|s| {
        for _ in 0..8 {
            let barrier = barrier.clone();
            let loc = f.location.clone();
            s.spawn(move || {
                barrier.wait();
                let l = Ledger::open(&loc).unwrap();
                assert_eq!(l.schema_version().unwrap(), sostle_ledger::SCHEMA_VERSION);
            });
        }
    });
    assert_eq!(file_one(&mut f.open()), "TRB-CHAOS-001");
}

fn a_newer_schema_is_refused(kind: Kind) {
    let f = Fixture::new(kind);
    drop(f.open());
    f.raw(match kind {
        Kind::Sqlite => "PRAGMA user_version = 99",
        Kind::Postgres => "UPDATE sostle_ledger SET value = '99' WHERE key = 'schema_version'",
    });
    let e = Ledger::open(&f.location).unwrap_err();
    assert!(matches!(e, Error::TooNew { found: 99, .. }), "{e}");
    assert!(e.to_string().contains("upgrade sostle"), "{e}");
}

fn a_ledger_that_is_not_there_is_not_created_by_open_existing(kind: Kind) {
    let f = Fixture::new(kind);
    let e = Ledger::open_existing(&f.location).unwrap_err();
    // Not "… is not in the ledger" (that is a record): it says there is no ledger, and how to
    // make one.
    assert!(matches!(e, Error::NoLedger(_)), "{e}");
    assert!(e.to_string().contains("sostle ledger migrate"), "{e}");
    assert!(!e.to_string().contains("is not in the ledger"), "{e}");
    // Still nothing there: open_existing created no table.
    let e = Ledger::open_existing(&f.location).unwrap_err();
    assert!(matches!(e, Error::NoLedger(_)), "{e}");
}

fn a_witness_time_that_does_not_decode_is_an_error(kind: Kind) {
    let f = Fixture::new(kind);
    let l = f.open();
    f.raw("INSERT INTO witnesses(hash, registered_at, registered_by, vals) VALUES ('sha256:bb', 'yesterday', 'Kay', '{}')");
    let e = Snapshot::load(&l).unwrap_err();
    assert!(
        e.to_string().contains("sha256:bb") && e.to_string().contains("yesterday"),
        "{e}"
    );
}

#[test]
fn foreign_files_are_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.db");
    std::fs::write(&text, b"these are my notes, not a database").unwrap();
    let e = Ledger::open(&Location::File(text.clone())).unwrap_err();
    assert!(matches!(e, Error::Foreign { .. }), "{e}");
    assert_eq!(
        std::fs::read(&text).unwrap(),
        b"these are my notes, not a database"
    );
    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE photos (id INTEGER)")
        .unwrap();
    let before = std::fs::read(&other).unwrap();
    let e = Ledger::open(&Location::File(other.clone())).unwrap_err();
    assert!(e.to_string().contains("not a sostle ledger"), "{e}");
    assert_eq!(std::fs::read(&other).unwrap(), before);
}

#[test]
fn a_database_of_another_application_is_refused_and_untouched() {
    let pg = Pg::shared();
    let url = pg.database();
    let db = Pg::db_of(&url);
    pg.sql(
        &db,
        "CREATE TABLE photos (id INTEGER); INSERT INTO photos VALUES (7)",
    );
    let e = Ledger::open(&Location::Postgres(url.clone())).unwrap_err();
    assert!(matches!(e, Error::Foreign { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("not a sostle ledger") && msg.contains("another application"),
        "{msg}"
    );
    assert!(
        !msg.contains(postgres::PASSWORD),
        "the password leaked into {msg}"
    );
    assert_eq!(
        pg.sql(
            &db,
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ),
        "1"
    );
    assert_eq!(pg.sql(&db, "SELECT id FROM photos"), "7");
    // A sostle_ledger table naming another application is refused too.
    let url = pg.database();
    let db = Pg::db_of(&url);
    pg.sql(&db, "CREATE TABLE sostle_ledger (key TEXT PRIMARY KEY, value TEXT); INSERT INTO sostle_ledger VALUES ('application', 'other')");
    let e = Ledger::open(&Location::Postgres(url)).unwrap_err();
    assert!(matches!(e, Error::Foreign { .. }), "{e}");
}

#[test]
fn a_wrong_password_or_a_dead_server_is_a_clear_error() {
    let pg = Pg::shared();
    let url = pg.database().replace(postgres::PASSWORD, "wrong");
    let e = Ledger::open(&Location::Postgres(url))
        .unwrap_err()
        .to_string();
    assert!(e.contains("password authentication failed"), "{e}");
    assert!(!e.contains("wrong"), "the password leaked into {e}");
    let dead = format!(
        "postgres://sostle@127.0.0.1:{}/x?sslmode=disable&connect_timeout=5",
        postgres::free_port()
    );
    let t = std::time::Instant::now();
    let e = Ledger::open(&Location::Postgres(dead))
        .unwrap_err()
        .to_string();
    assert!(e.contains("ledger postgres://sostle@127.0.0.1:"), "{e}");
    assert!(e.to_lowercase().contains("connect"), "{e}");
    assert!(t.elapsed() < std::time::Duration::from_secs(30));
    let e = Ledger::open(&Location::Postgres(
        "postgres://sostle@127.0.0.1:1/x?sslmode=sometimes".into(),
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("sslmode"), "{e}");
}

#[test]
fn tls_is_verified_against_the_given_root() {
    let pg = Pg::start_tls();
    let ca = pg.ca.clone().unwrap();
    let base = format!(
        "postgres://{}:{}@127.0.0.1:{}/postgres",
        postgres::USER,
        postgres::PASSWORD,
        pg.port
    );
    for mode in ["require", "verify-full"] {
        let l = Ledger::open(&Location::Postgres(format!(
            "{base}?sslmode={mode}&sslrootcert={}",
            ca.display()
        )))
        .unwrap_or_else(|e| panic!("sslmode={mode}: {e}"));
        assert_eq!(l.schema_version().unwrap(), 1);
    }
    // Another CA's root: the server's certificate does not verify.
    let other = pg.dir().join("other");
    std::fs::create_dir(&other).unwrap();
    registry::certs(&other, "ca", "tls");
    let e = Ledger::open(&Location::Postgres(format!(
        "{base}?sslmode=require&sslrootcert={}",
        other.join("ca.pem").display()
    )))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("certificate") || e.contains("UnknownIssuer"),
        "{e}"
    );
    // A root file that is not PEM is named.
    let junk = pg.dir().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let e = Ledger::open(&Location::Postgres(format!(
        "{base}?sslmode=require&sslrootcert={}",
        junk.display()
    )))
    .unwrap_err()
    .to_string();
    assert!(e.contains("junk.pem"), "{e}");
}

#[test]
fn a_session_sees_its_own_tls_connection() {
    // pg_stat_ssl, asked through a ledger connection, reports TLS for that very session.
    let pg = Pg::start_tls();
    let url = format!(
        "postgres://{}:{}@127.0.0.1:{}/postgres?sslmode=require&sslrootcert={}&application_name=tls-probe",
        postgres::USER,
        postgres::PASSWORD,
        pg.port,
        pg.ca.as_ref().unwrap().display()
    );
    let l = Ledger::open(&Location::Postgres(url)).unwrap();
    let seen = pg.sql(
        "postgres",
        "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid WHERE a.application_name = 'tls-probe'",
    );
    assert_eq!(seen, "t");
    drop(l);
}

// ---- copy ----

#[test]
fn copy_moves_a_history_and_can_be_repeated() {
    let from = Fixture::new(Kind::Sqlite);
    let to = Fixture::new(Kind::Postgres);
    let mut src = from.open();
    let written = script(&mut src);
    let mut dst = to.open();
    let r = dst.copy_from(&src).unwrap();
    let copied: Vec<(String, u64, u64)> = r
        .tables
        .iter()
        .map(|t| (t.table.clone(), t.copied, t.present))
        .collect();
    assert_eq!(
        copied,
        [
            ("trials".to_string(), 1, 0),
            ("evidence".into(), 3, 0),
            ("fingerprints".into(), 1, 0),
            ("witnesses".into(), 1, 0),
            ("profiles".into(), 1, 0),
            ("trendals".into(), 1, 0)
        ]
    );
    let read = |l: &Ledger| {
        json!({"trials": l.trials().unwrap(), "evidence": l.evidence("TRB-CHAOS-001").unwrap(),
               "fingerprints": l.fingerprints().unwrap(), "witnesses": l.witnesses().unwrap(),
               "profiles": l.profiles().unwrap(), "trendals": l.trendals().unwrap()})
    };
    assert_eq!(read(&dst), read(&src), "the copy differs from its source");
    assert_eq!(read(&dst)["trials"], written["trials"]);
    // Again: everything is already there, nothing changes.
    let r = dst.copy_from(&src).unwrap();
    assert!(r.tables.iter().all(|t| t.copied == 0), "{r:?}");
    assert_eq!(r.tables.iter().map(|t| t.present).sum::<u64>(), 8);
    // Numbers continue after the copied history, evidence ids too.
    let (t, e) = dst
        .atomically(|tx| {
            let t = file(tx);
            tx.add_evidence(
                &t,
                &[(EvidenceKind::Charge, "c".into(), json!({}))],
                now(),
                97,
            )?;
            let p = tx.add_profile(&t, "img", now(), |id| {
                Ok((json!({"profile_id": id}), "s".into()))
            })?;
            Ok::<_, Error>((t, p.id))
        })
        .unwrap();
    assert_eq!((t.as_str(), e.as_str()), ("TRB-CHAOS-002", "profile-002"));
    let max_src = src
        .evidence("TRB-CHAOS-001")
        .unwrap()
        .iter()
        .map(|e| e.id)
        .max()
        .unwrap();
    assert!(dst.evidence("TRB-CHAOS-002").unwrap()[0].id > max_src);
}

#[test]
fn copy_refuses_a_conflicting_history_and_copies_nothing() {
    let from = Fixture::new(Kind::Sqlite);
    let to = Fixture::new(Kind::Postgres);
    let mut src = from.open();
    file_one(&mut src);
    file_one(&mut src);
    let mut dst = to.open();
    // The target filed its own TRB-CHAOS-001, at another layer.
    dst.atomically(|tx| {
        tx.file_trial(
            Layer::L5,
            99,
            now(),
            &Subject::default(),
            &Charge::default(),
        )
    })
    .unwrap();
    let e = dst.copy_from(&src).unwrap_err();
    assert!(matches!(e, Error::Conflict(_)), "{e}");
    assert!(
        e.to_string().contains("trial TRB-CHAOS-001")
            && e.to_string().contains("nothing was copied"),
        "{e}"
    );
    let ids: Vec<String> = dst.trials().unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(
        ids,
        ["TRB-CHAOS-001"],
        "TRB-CHAOS-002 was copied despite the conflict"
    );
    assert_eq!(dst.trial("TRB-CHAOS-001").unwrap().target, Layer::L5);
}

#[test]
fn copy_back_to_sqlite_works_too() {
    let from = Fixture::new(Kind::Postgres);
    let to = Fixture::new(Kind::Sqlite);
    let mut src = from.open();
    script(&mut src);
    let mut dst = to.open();
    dst.copy_from(&src).unwrap();
    assert_eq!(
        serde_json::to_value(dst.profiles().unwrap()).unwrap(),
        serde_json::to_value(src.profiles().unwrap()).unwrap()
    );
    assert_eq!(file_one(&mut dst), "TRB-CHAOS-002");
}

// ---- processes killed, servers killed ----

/// Not a test on its own: the child process of the kill tests. It files trials with their
/// evidence (one transaction each) as fast as it can and prints each id once committed.
#[test]
fn writer_child() {
    let Some(location) = std::env::var("SOSTLE_LEDGER_CHILD").ok() else {
        return;
    };
    let mut l = Ledger::open(&Location::parse(&location)).unwrap();
    let big = json!({"documents": [{"padding": "x".repeat(20_000)}]});
    let subject = Subject {
        documents: vec![json!({"padding": "x".repeat(20_000)})],
        ..Subject::default()
    };
    loop {
        let r = l.atomically(|tx| {
            let t = tx.file_trial(Layer::L2, 97, now(), &subject, &Charge::default())?;
            tx.add_evidence(
                &t.id,
                &[(EvidenceKind::Falco, "f".into(), big.clone())],
                now(),
                97,
            )?;
            Ok::<_, Error>(t.id)
        });
        match r {
            Ok(id) => println!("{id}"),
            Err(e) => {
                eprintln!("writer: {e}");
                std::process::exit(2);
            }
        }
    }
}

/// The writer, the ids it reported first, and the reader of the rest (joined once it exits).
type Writer = (
    std::process::Child,
    Vec<String>,
    std::thread::JoinHandle<Vec<String>>,
);

fn spawn_writer(location: &str) -> Writer {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "writer_child", "--nocapture", "--test-threads=1"])
        .env("SOSTLE_LEDGER_CHILD", location)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut committed = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while committed.len() < 40 {
        match lines.next() {
            Some(Ok(l)) if l.starts_with("TRB-CHAOS-") => committed.push(l),
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    assert!(
        committed.len() >= 40,
        "the writer reported {} commits",
        committed.len()
    );
    // Keep reading so the child never blocks on a full pipe; every id it prints counts.
    let rest = std::thread::spawn(move || {
        lines
            .map_while(Result::ok)
            .filter(|l| l.starts_with("TRB-CHAOS-"))
            .collect()
    });
    (child, committed, rest)
}

/// After a crash: every reported commit is there with its evidence, no trial is there without
/// its evidence, and the next number is new.
fn nothing_lost_nothing_half(l: &mut Ledger, committed: &[String]) {
    let present: Vec<String> = l.trials().unwrap().into_iter().map(|t| t.id).collect();
    for id in committed {
        assert!(
            present.contains(id),
            "{id} was reported committed but is missing"
        );
    }
    for id in &present {
        assert_eq!(
            l.evidence(id).unwrap().len(),
            1,
            "{id} is half-filed: its evidence is missing"
        );
    }
    let next = file_one(l);
    assert!(!present.contains(&next), "{next} was reused");
}

#[test]
fn a_killed_writer_loses_nothing_committed_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let (mut child, mut committed, rest) = spawn_writer(path.to_str().unwrap());
    // SIGKILL: no destructors, no cleanup, possibly mid-transaction.
    child.kill().unwrap();
    child.wait().unwrap();
    committed.extend(rest.join().unwrap());
    let mut l = Ledger::open(&Location::File(path)).unwrap();
    assert_eq!(l.integrity_check().unwrap(), vec!["ok".to_string()]);
    nothing_lost_nothing_half(&mut l, &committed);
}

#[test]
fn a_killed_writer_loses_nothing_committed_postgres() {
    let url = Pg::shared().database();
    let (mut child, mut committed, rest) = spawn_writer(&url);
    child.kill().unwrap();
    child.wait().unwrap();
    committed.extend(rest.join().unwrap());
    nothing_lost_nothing_half(
        &mut Ledger::open(&Location::Postgres(url)).unwrap(),
        &committed,
    );
}

#[test]
fn a_server_killed_mid_run_fails_the_writer_clearly_and_loses_nothing_committed() {
    let pg = Pg::start();
    let url = pg.url("postgres");
    let (mut child, mut committed, rest) = spawn_writer(&url);
    pg.stop_immediate();
    // The writer notices and exits with the ledger's error, not a panic or a hang.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the writer hung after the server died"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("writer: ledger postgres://sostle@127.0.0.1:"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !stderr.contains(postgres::PASSWORD),
        "the password leaked: {stderr}"
    );
    committed.extend(rest.join().unwrap());
    pg.start_server();
    let mut l = Ledger::open(&Location::Postgres(url)).unwrap();
    nothing_lost_nothing_half(&mut l, &committed);
}

#[test]
fn a_connection_lost_between_commands_is_an_error_not_a_hang() {
    let pg = Pg::start();
    let mut l = Ledger::open(&Location::Postgres(pg.url("postgres"))).unwrap();
    file_one(&mut l);
    pg.stop_immediate();
    let e = l.atomically(try_file).unwrap_err().to_string();
    assert!(e.starts_with("ledger postgres://sostle@127.0.0.1:"), "{e}");
    assert!(e.contains("connection") || e.contains("terminating"), "{e}");
    let e = l.trials().unwrap_err().to_string();
    assert!(e.contains("connection"), "{e}");
}

#[test]
fn pgpass_lines_match_as_libpq_matches_them() {
    use sostle_ledger::postgres::pgpass_lookup;
    let file = "# comment\n\
                db.example:5432:ledger:ci:first\n\
                *:*:ledger:ci:wild\\:card\\\\\n\
                127.0.0.1:6543:*:*:any-db\n";
    assert_eq!(
        pgpass_lookup(file, "db.example", "5432", "ledger", "ci").as_deref(),
        Some("first")
    );
    assert_eq!(
        pgpass_lookup(file, "other", "5432", "ledger", "ci").as_deref(),
        Some("wild:card\\")
    );
    assert_eq!(
        pgpass_lookup(file, "127.0.0.1", "6543", "x", "y").as_deref(),
        Some("any-db")
    );
    assert_eq!(pgpass_lookup(file, "127.0.0.1", "6544", "x", "y"), None);
    assert_eq!(pgpass_lookup("short:line\n", "short", "line", "", ""), None);
}

/// A ledger file written by this version's commands (the mefine-static cycle, a trendal, a
/// witness), checked in: every later version must keep opening it, reading every record, and
/// copying it to PostgreSQL unchanged.
const LEDGER_V1: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ledger-v1.db");

#[test]
fn a_ledger_file_written_by_schema_1_keeps_opening_and_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    std::fs::copy(LEDGER_V1, &path).unwrap();
    let l = Ledger::open(&Location::File(path)).unwrap();
    assert_eq!(l.schema_version().unwrap(), sostle_ledger::SCHEMA_VERSION);
    let trials: Vec<(String, Option<String>)> = l
        .trials()
        .unwrap()
        .into_iter()
        .map(|t| (t.id, t.verdict.map(|v| v.as_str().to_string())))
        .collect();
    assert_eq!(
        trials,
        [
            ("TRB-CHAOS-001".to_string(), Some("DENY-HARD".to_string())),
            ("TRB-CHAOS-002".into(), Some("MECIPOL-LOCKED".into())),
            ("TRB-CHAOS-003".into(), None)
        ]
    );
    let kinds: Vec<String> = l
        .evidence("TRB-CHAOS-002")
        .unwrap()
        .into_iter()
        .map(|e| e.kind.to_string())
        .collect();
    assert!(
        kinds.contains(&"falco".to_string()) && kinds.contains(&"lock".to_string()),
        "{kinds:?}"
    );
    let p = l.profile("profile-001").unwrap();
    assert_eq!(p.profile["profile_id"], "profile-001");
    assert_eq!(p.trial, "TRB-CHAOS-002");
    assert_eq!(l.fingerprints().unwrap().len(), 3);
    assert_eq!(l.witnesses().unwrap().len(), 1);
    assert_eq!(l.trendals().unwrap()[0].id, "TRENDAL-L2-YONE-BOSUN-001");
    Snapshot::load(&l).unwrap();
    // And moves to PostgreSQL whole.
    let mut pg = Fixture::new(Kind::Postgres).open();
    let r = pg.copy_from(&l).unwrap();
    assert_eq!(r.tables.iter().map(|t| t.present).sum::<u64>(), 0);
    assert_eq!(
        serde_json::to_value(pg.trials().unwrap()).unwrap(),
        serde_json::to_value(l.trials().unwrap()).unwrap()
    );
    assert_eq!(
        serde_json::to_value(pg.profiles().unwrap()).unwrap(),
        serde_json::to_value(l.profiles().unwrap()).unwrap()
    );
}
