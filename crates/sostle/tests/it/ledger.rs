//! The commands on a shared PostgreSQL ledger (a real server on loopback, pg_harness.rs): the
//! whole trial cycle prints what it prints on SQLite, sixteen CI runners charging at once get
//! sixteen consecutive numbers, a server killed mid-run loses no committed trial and leaves none
//! half-filed, `ledger migrate` / `ledger copy`, and where the password comes from.

use std::process::{Command, Stdio};

use sostle_ledger::{Ledger, Location};

use crate::pg_harness::{Pg, PASSWORD, USER};
use crate::{root, sostle_with, Run};

fn at(ledger: &str, now: &str, args: &[&str]) -> Run {
    sostle_with(
        &root(),
        args,
        &[("SOSTLE_LEDGER", ledger), ("SOSTLE_NOW", now)],
        None,
    )
}

const NOW: &str = "2026-05-11T09:00:00Z";

fn charge_command(ledger: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sostle"));
    c.args([
        "trial",
        "charge",
        "examples/mefine-static/deployment.yaml",
        "--target",
        "L2",
        "-o",
        "json",
    ])
    .current_dir(root())
    .env("SOSTLE_LEDGER", ledger)
    .env("SOSTLE_NOW", NOW)
    .env_remove("SOSTLE_CONFIG")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    c
}

fn cycle(ledger: Option<&str>) -> String {
    let mut cmd = Command::new("sh");
    cmd.arg(root().join("examples/mefine-static/cycle.sh"))
        .arg(env!("CARGO_BIN_EXE_sostle"))
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env_remove("SOSTLE_LEDGER");
    if let Some(l) = ledger {
        cmd.env("SOSTLE_LEDGER", l);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The run's temporary directory is the one thing that differs between two runs.
    let mut masked = String::new();
    for line in stdout.lines() {
        let line = match line.find("/tmp/") {
            Some(i) => {
                let rest = &line[i..];
                let end = rest.find("/profiles/").unwrap_or(rest.len());
                format!("{}TMP{}", &line[..i], &rest[end..])
            }
            None => line.to_string(),
        };
        masked.push_str(&line);
        masked.push('\n');
    }
    masked
}

#[test]
fn the_mefine_static_cycle_on_postgres_prints_what_it_prints_on_sqlite() {
    let on_sqlite = cycle(None);
    let url = Pg::shared().database();
    let on_postgres = cycle(Some(&url));
    assert!(
        on_postgres.contains("TRB-CHAOS-002: MECIPOL-LOCKED")
            && on_postgres.contains("mecipol-profile: profile-001")
            && on_postgres.contains("PELEGO novelty: known (first seen in TRB-CHAOS-001)"),
        "{on_postgres}"
    );
    assert_eq!(on_postgres, on_sqlite);
    // And the records are in the database, for the next runner to see.
    let l = Ledger::open_existing(&Location::Postgres(url)).unwrap();
    let ids: Vec<String> = l.trials().unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(ids, ["TRB-CHAOS-001", "TRB-CHAOS-002", "TRB-CHAOS-003"]);
    assert_eq!(l.profiles().unwrap().len(), 1);
}

#[test]
fn sixteen_runners_charging_at_once_get_sixteen_consecutive_ids() {
    let url = Pg::shared().database();
    assert_eq!(at(&url, NOW, &["ledger", "migrate"]).code, 0);
    let children: Vec<_> = (0..16)
        .map(|_| charge_command(&url).spawn().unwrap())
        .collect();
    let mut ids: Vec<String> = children
        .into_iter()
        .map(|c| {
            crate::json_of(c, "a concurrent charge")["trial"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    ids.sort();
    let want: Vec<String> = (1..=16).map(|n| format!("TRB-CHAOS-{n:03}")).collect();
    assert_eq!(ids, want);
}

#[test]
fn a_server_killed_during_charges_loses_no_committed_trial_and_leaves_none_half_filed() {
    let pg = Pg::start();
    let url = pg.url("postgres");
    assert_eq!(at(&url, NOW, &["ledger", "migrate"]).code, 0);
    // Four runners charging in a loop; the server dies under them.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let runners: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut filed = Vec::new();
                let mut failures = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let out = charge_command(&url).output().unwrap();
                    if out.status.success() {
                        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                        filed.push(v["trial"].as_str().unwrap().to_string());
                    } else {
                        failures.push((
                            out.status.code(),
                            String::from_utf8_lossy(&out.stderr).into_owned(),
                        ));
                        break;
                    }
                }
                (filed, failures)
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let n: u32 = pg
            .sql("postgres", "SELECT count(*) FROM trials")
            .parse()
            .unwrap();
        if n >= 12 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "charges did not get going"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    pg.stop_immediate();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut filed = Vec::new();
    let mut failures = Vec::new();
    for r in runners {
        let (f, e) = r.join().unwrap();
        filed.extend(f);
        failures.extend(e);
    }
    for (code, stderr) in &failures {
        assert_eq!(*code, Some(3), "{stderr}");
        assert!(
            stderr.contains(&format!("127.0.0.1:{}", pg.port)),
            "{stderr}"
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains(PASSWORD),
            "{stderr}"
        );
    }
    pg.start_server();
    let l = Ledger::open_existing(&Location::Postgres(url)).unwrap();
    let present: Vec<String> = l.trials().unwrap().into_iter().map(|t| t.id).collect();
    for id in &filed {
        assert!(
            present.contains(id),
            "{id} was reported filed but is missing"
        );
    }
    let fingerprinted: Vec<String> = l.fingerprints().unwrap().into_iter().map(|f| f.0).collect();
    for id in &present {
        let kinds: Vec<String> = l
            .evidence(id)
            .unwrap()
            .into_iter()
            .map(|e| e.kind.to_string())
            .collect();
        assert_eq!(kinds, ["charge"], "{id} is half-filed");
        assert!(fingerprinted.contains(id), "{id} has no fingerprint");
    }
    let mut sorted = present.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), present.len(), "a number was used twice");
}

#[test]
fn ledger_copy_moves_a_laptops_history_to_the_team_database() {
    let dir = tempfile::tempdir().unwrap();
    let laptop = dir.path().join("laptop.db");
    let laptop = laptop.to_str().unwrap();
    for _ in 0..2 {
        assert_eq!(
            charge_command(laptop).output().unwrap().status.code(),
            Some(0)
        );
    }
    let team = Pg::shared().database();
    let r = at(&team, NOW, &["ledger", "copy", laptop, &team]);
    assert_eq!(r.code, 0, "{}", r.snapshot());
    assert!(
        r.stdout
            .contains("trials             2 copied,      0 already there"),
        "{}",
        r.stdout
    );
    assert!(
        !r.stdout.contains(PASSWORD),
        "the password leaked: {}",
        r.stdout
    );
    // Repeated: nothing new.
    let r = at(&team, NOW, &["ledger", "copy", laptop, &team, "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.snapshot());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        v["tables"][0],
        serde_json::json!({"table": "trials", "copied": 0, "present": 2})
    );
    // The team ledger carries on from there.
    let out = charge_command(&team).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["trial"], "TRB-CHAOS-003");
    let list = at(&team, NOW, &["trial", "list"]);
    assert_eq!(list.code, 0, "{}", list.snapshot());
    for id in ["TRB-CHAOS-001", "TRB-CHAOS-002", "TRB-CHAOS-003"] {
        assert!(list.stdout.contains(id), "{}", list.stdout);
    }
    // Another laptop that filed its own TRB-CHAOS-001 conflicts: refused, nothing copied.
    let other = dir.path().join("other.db");
    let other = other.to_str().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sostle"))
        .args([
            "trial",
            "charge",
            "examples/mefine-static/fixed/deployment.yaml",
            "--target",
            "L2",
        ])
        .current_dir(root())
        .env("SOSTLE_LEDGER", other)
        .env("SOSTLE_NOW", "2026-05-13T09:00:00Z")
        .output()
        .unwrap();
    assert!(out.status.success());
    let r = at(&team, NOW, &["ledger", "copy", other, &team]);
    assert_eq!(r.code, 1, "{}", r.snapshot());
    assert!(
        r.stderr
            .contains("refused: ledger copy: trial TRB-CHAOS-001 differs"),
        "{}",
        r.stderr
    );
    // A FROM that does not exist is an error, and is not created.
    let missing = dir.path().join("missing.db");
    let r = at(
        &team,
        NOW,
        &["ledger", "copy", missing.to_str().unwrap(), &team],
    );
    assert_eq!(r.code, 3, "{}", r.snapshot());
    assert!(!missing.exists());
}

#[test]
fn ledger_migrate_creates_the_schema_once_and_refuses_other_databases() {
    let pg = Pg::shared();
    let url = pg.database();
    let r = at(&url, NOW, &["ledger", "migrate"]);
    assert_eq!(r.code, 0, "{}", r.snapshot());
    assert!(r.stdout.contains("schema version 1"), "{}", r.stdout);
    assert!(
        !r.stdout.contains(PASSWORD),
        "the password leaked: {}",
        r.stdout
    );
    let r = at(&url, NOW, &["ledger", "migrate"]);
    assert_eq!(r.code, 0, "{}", r.snapshot());
    // `sostle test --ledger` on an empty database says how to make one, and creates nothing.
    let empty = pg.database();
    let r = at(
        &empty,
        NOW,
        &["test", "examples/mefine-static/deployment.yaml"],
    );
    assert_eq!(r.code, 3, "{}", r.snapshot());
    assert!(r.stderr.contains("sostle ledger migrate"), "{}", r.stderr);
    // The database is named once, not "ledger URL: ledger URL: …" (#24).
    assert_eq!(
        r.stderr.matches(Pg::db_of(&empty).as_str()).count(),
        1,
        "{}",
        r.stderr
    );
    assert_eq!(
        pg.sql(
            &Pg::db_of(&empty),
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ),
        "0"
    );
    let foreign = pg.database();
    pg.sql(&Pg::db_of(&foreign), "CREATE TABLE invoices (id INTEGER)");
    let r = at(&foreign, NOW, &["ledger", "migrate"]);
    assert_eq!(r.code, 3, "{}", r.snapshot());
    assert!(r.stderr.contains("is not a sostle ledger"), "{}", r.stderr);
}

#[test]
fn the_password_comes_from_the_url_pgpassword_or_pgpass() {
    let pg = Pg::shared();
    let with = pg.database();
    let db = Pg::db_of(&with);
    let without = pg.url_without_password(&db);
    let home = tempfile::tempdir().unwrap();
    let home_s = home.path().to_str().unwrap();
    let list = |extra: &[(&str, &str)]| {
        let mut env = vec![("SOSTLE_LEDGER", without.as_str()), ("HOME", home_s)];
        env.extend_from_slice(extra);
        sostle_with(&root(), &["trial", "list"], &env, None)
    };
    // No password anywhere: the server's refusal, named.
    let r = list(&[]);
    assert_eq!(r.code, 3, "{}", r.snapshot());
    assert!(r.stderr.contains("password"), "{}", r.stderr);
    let r = list(&[("PGPASSWORD", PASSWORD)]);
    assert_eq!(r.code, 0, "{}", r.snapshot());
    let pgpass = home.path().join(".pgpass");
    std::fs::write(
        &pgpass,
        format!(
            "# team ledger\n127.0.0.1:{}:{db}:{USER}:{PASSWORD}\n",
            pg.port
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = list(&[]);
    assert_eq!(r.code, 0, "{}", r.snapshot());
    // libpq's rule: a password file others can read is ignored, with a warning.
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = list(&[]);
    assert_eq!(r.code, 3, "{}", r.snapshot());
    assert!(
        r.stderr.contains("has group or world access"),
        "{}",
        r.stderr
    );
    // PGPASSFILE points elsewhere.
    let elsewhere = home.path().join("ci.pgpass");
    std::fs::write(&elsewhere, format!("*:*:*:{USER}:{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = list(&[("PGPASSFILE", elsewhere.to_str().unwrap())]);
    assert_eq!(r.code, 0, "{}", r.snapshot());
}

#[test]
fn the_config_names_the_team_ledger_and_the_flag_wins() {
    let url = Pg::shared().database();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sostle.yaml");
    std::fs::write(
        &config,
        format!("apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\nledger:\n  url: \"{url}\"\n"),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let r = sostle_with(
        &root(),
        &[
            "trial",
            "charge",
            "examples/mefine-static/deployment.yaml",
            "--target",
            "L2",
            "--config",
            cfg,
        ],
        &[("SOSTLE_NOW", NOW)],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.snapshot());
    assert!(r.stdout.contains("TRB-CHAOS-001 filed"), "{}", r.stdout);
    let l = Ledger::open_existing(&Location::Postgres(url)).unwrap();
    assert_eq!(
        l.trials().unwrap().len(),
        1,
        "the charge did not go to the configured ledger"
    );
    // --ledger wins over the config.
    let file = dir.path().join("mine.db");
    let r = sostle_with(
        &root(),
        &[
            "trial",
            "list",
            "--config",
            cfg,
            "--ledger",
            file.to_str().unwrap(),
        ],
        &[("SOSTLE_NOW", NOW)],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.snapshot());
    assert!(!r.stdout.contains("TRB-CHAOS-001"), "{}", r.stdout);
    assert!(file.exists());
}

#[test]
fn eight_runners_charging_a_ledger_that_does_not_exist_yet_all_file() {
    // No ledger before the race: creating it (WAL switch, schema) is part of it. SQLite answers
    // BUSY at once to a journal-mode change while another connection has the file open, and a
    // reader could see a half-created ledger as foreign; both are handled on open.
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("new/ledger.db");
    let ledger = ledger.to_str().unwrap();
    let children: Vec<_> = (0..8)
        .map(|_| charge_command(ledger).spawn().unwrap())
        .collect();
    let mut ids: Vec<String> = children
        .into_iter()
        .map(|c| {
            crate::json_of(c, "a charge racing to create the ledger")["trial"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    ids.sort();
    let want: Vec<String> = (1..=8).map(|n| format!("TRB-CHAOS-{n:03}")).collect();
    assert_eq!(ids, want);
}
