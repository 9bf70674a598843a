//! `sostle webhook` as a real process over TLS on loopback, with curl (a real HTTPS client that
//! checks the certificate against the CA): certificate and config hot reload, signed profiles,
//! SIGTERM while requests are in flight. And the CLI and the webhook agree on every corpus
//! document.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{json_of, root};

pub use crate::registry_harness::{certs, free_port};

pub struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start(dir: &Path, extra: &[&str]) -> Server {
    let port = free_port();
    let mut args = vec![
        "webhook".to_string(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--tls-cert".into(),
        "server.pem".into(),
        "--tls-key".into(),
        "server.key".into(),
    ];
    if !extra.contains(&"--reload-interval") {
        args.extend(["--reload-interval".to_string(), "1".to_string()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let child = Command::new(env!("CARGO_BIN_EXE_sostle"))
        .args(&args)
        .current_dir(dir)
        .env_remove("SOSTLE_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("webhook.log")).unwrap(),
        ))
        .spawn()
        .unwrap();
    let s = Server {
        child,
        port,
        dir: dir.to_path_buf(),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if s.curl("ca.pem", &["/healthz"]).0 == "ok" {
            return s;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "webhook did not start: {}",
        std::fs::read_to_string(dir.join("webhook.log")).unwrap_or_default()
    );
}

impl Server {
    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        self.child.wait().unwrap()
    }

    /// What it logged so far.
    pub fn logged(&self) -> String {
        std::fs::read_to_string(self.dir.join("webhook.log")).unwrap_or_default()
    }

    /// curl with certificate checking against `ca`; returns (body, exit status).
    fn curl(&self, ca: &str, args: &[&str]) -> (String, i32) {
        let path = args.first().copied().unwrap_or("/");
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sS",
            "--max-time",
            "20",
            "--cacert",
            ca,
            &format!("https://localhost:{}{path}", self.port),
        ]);
        cmd.args(&args[1..]).current_dir(&self.dir);
        let out = cmd.output().unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            out.status.code().unwrap_or(-1),
        )
    }

    pub fn post(&self, path: &str, body_file: &Path) -> serde_json::Value {
        let (out, code) = self.curl(
            "ca.pem",
            &[
                path,
                "-H",
                "content-type: application/json",
                "--data-binary",
                &format!("@{}", body_file.display()),
            ],
        );
        assert_eq!(code, 0, "{out}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("webhook.log")).unwrap_or_default()
    }
}

/// curl POSTing `body` (a file in `dir`) to `path` in the background, output piped.
fn post_in_background(dir: &Path, port: u16, path: &str, body: &str, extra: &[&str]) -> Child {
    Command::new("curl")
        .args(["-sS", "--max-time", "30", "--cacert", "ca.pem"])
        .args(extra)
        .args(["-H", "content-type: application/json", "--data-binary"])
        .arg(format!("@{body}"))
        .arg(format!("https://localhost:{port}{path}"))
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
}

fn fixture(name: &str) -> PathBuf {
    root()
        .join("../shared/fixtures/admission/wrapped-v1")
        .join(name)
}

#[test]
fn tls_with_a_checked_certificate_and_hot_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certs(d, "ca", "server");
    std::fs::write(
        d.join("sostle.yaml"),
        "apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\n",
    )
    .unwrap();
    let s = start(d, &["--config", "sostle.yaml"]);
    // A client that does not trust the CA refuses the connection.
    certs(d, "other-ca", "unused");
    assert_ne!(s.curl("other-ca.pem", &["/healthz"]).1, 0);
    let v = s.post("/validate/L0", &fixture("privileged_container.json"));
    assert_eq!(v["response"]["allowed"], false);
    // Config reload: disabling both failing policies admits the same request, no restart.
    std::fs::write(d.join("sostle.yaml"), "apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\nsuite:\n  policies:\n    deny_no_limits: {enabled: false}\n    deny_privileged: {enabled: false}\n").unwrap();
    wait_until("config reload", || {
        s.post("/validate/L0", &fixture("privileged_container.json"))["response"]["allowed"] == true
    });
    // A broken config is refused; the last good one stays.
    std::fs::write(
        d.join("sostle.yaml"),
        "apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\ncrew: 7\n",
    )
    .unwrap();
    wait_until("refused reload in metrics", || {
        s.curl("ca.pem", &["/metrics"])
            .0
            .contains("sostle_webhook_reloads_total{result=\"error\"}")
    });
    assert_eq!(
        s.post("/validate/L0", &fixture("privileged_container.json"))["response"]["allowed"],
        true
    );
    // Certificate reload: a new certificate from a new CA is served without a restart.
    certs(d, "ca2", "server2");
    std::fs::copy(d.join("server2.key"), d.join("server.key")).unwrap();
    std::fs::copy(d.join("server2.pem"), d.join("server.pem")).unwrap();
    wait_until("certificate reload", || {
        s.curl("ca2.pem", &["/healthz"]).0 == "ok"
    });
    assert_ne!(
        s.curl("ca.pem", &["/healthz"]).1,
        0,
        "the old CA no longer verifies"
    );
    assert!(
        s.log().contains("serving certificate reloaded"),
        "{}",
        s.log()
    );
}

#[test]
fn event_loops_serve_http1_over_many_connections() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certs(d, "ca", "server");
    let s = start(d, &["--threads", "2"]);
    // ALPN offers HTTP/1.1 only: a client that prefers HTTP/2 is answered in HTTP/1.1.
    let (version, code) = s.curl(
        "ca.pem",
        &[
            "/healthz",
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version}",
        ],
    );
    assert_eq!((version.as_str(), code), ("1.1", 0));
    // 24 clients at once, each a connection of its own: every one is answered, and both
    // event loops took connections (the accept loop hands each to the least busy).
    let body = fixture("privileged_container.json").display().to_string();
    let clients: Vec<_> = (0..24)
        .map(|_| post_in_background(d, s.port, "/validate/L3", &body, &[]))
        .collect();
    for c in clients {
        assert_eq!(json_of(c, "a client")["response"]["allowed"], false);
    }
    let metrics = s.curl("ca.pem", &["/metrics"]).0;
    for event_loop in ["0", "1"] {
        let line = format!("sostle_webhook_connections_total{{event_loop=\"{event_loop}\"}} ");
        let count: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .unwrap_or_else(|| panic!("no {line} in {metrics}"))
            .trim()
            .parse()
            .unwrap();
        assert!(
            count >= 5,
            "loop {event_loop} took only {count} of 26 connections"
        );
    }
    assert!(s.log().contains("threads=2"), "{}", s.log());
}

#[test]
fn signed_profiles_are_verified_and_bad_ones_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certs(d, "ca", "server");
    // Make a real lock: key, a profile signed by sostle lock (through the cycle's building blocks).
    let ledger = d.join("ledger.db");
    let run = |now: &str, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sostle"))
            .args(args)
            .current_dir(root())
            .env("SOSTLE_LEDGER", &ledger)
            .env("SOSTLE_NOW", now)
            .env("COSIGN_PASSWORD", "")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(
        "2026-05-11T09:00:00Z",
        &["key", "generate", "--out", d.join("keys").to_str().unwrap()],
    );
    run(
        "2026-05-11T09:00:00Z",
        &[
            "trial",
            "charge",
            "examples/mefine-static/fixed",
            "--target",
            "L2",
        ],
    );
    run("2026-05-11T09:05:00Z", &["trial", "burst", "TRB-CHAOS-001"]);
    run(
        "2026-05-12T09:30:00Z",
        &[
            "trial",
            "spiral",
            "TRB-CHAOS-001",
            "--falco",
            "examples/mefine-static/evidence/falco.jsonl",
            "--trivy",
            "examples/mefine-static/evidence/trivy.json",
        ],
    );
    run(
        "2026-05-12T10:00:00Z",
        &[
            "lock",
            "TRB-CHAOS-001",
            "--key",
            d.join("keys/cosign.key").to_str().unwrap(),
            "--out",
            d.join("profiles").to_str().unwrap(),
        ],
    );
    // A forged profile: same signature, edited content.
    let good = std::fs::read_to_string(d.join("profiles/profile-001.json")).unwrap();
    std::fs::write(
        d.join("profiles/profile-002.json"),
        good.replace("profile-001", "profile-002")
            .replace("\"L2\",", "\"L2\",\"L6\","),
    )
    .unwrap();
    std::fs::copy(
        d.join("profiles/profile-001.json.sig"),
        d.join("profiles/profile-002.json.sig"),
    )
    .unwrap();
    let s = start(
        d,
        &["--profiles", "profiles", "--public-key", "keys/cosign.pub"],
    );
    let log = s.log();
    assert!(
        log.contains("profile refused") && log.contains("profile-002"),
        "{log}"
    );
    let metrics = s.curl("ca.pem", &["/metrics"]).0;
    assert!(
        metrics.contains("sostle_webhook_profiles_loaded 1"),
        "{metrics}"
    );
    // A workload at L3 running the locked image, labelled as promote labels it: the lock check
    // passes. (Deployed by Kay, whose identity the built-in crew register names.)
    let object = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "m", "namespace": "sostle-l3-crew",
            "labels": {"crew-member": "Kay", "gamma1": "14134725141734693", "mecipol-locked": "true"},
            "annotations": {"mecipol-image": "eosefleetacrdev.azurecr.io/mefine-static:day97-v144", "mecipol-profile": "profile-001",
                            "sostle.eose.ca/trendal": "TRENDAL-L3-YONE-BOSUN-001", "sostle.eose.ca/trendal-warmth": "0.9"}},
        "spec": {"securityContext": {"runAsNonRoot": true}, "containers": [{"name": "web", "image": "eosefleetacrdev.azurecr.io/mefine-static:day97-v144",
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}, "securityContext": {"readOnlyRootFilesystem": true},
            "livenessProbe": {"exec": {"command": ["true"]}}}]}
    });
    let review = |obj: &serde_json::Value| {
        serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u1", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "resource": {"group": "", "version": "v1", "resource": "pods"},
        "name": "m", "namespace": "sostle-l3-crew", "operation": "CREATE", "userInfo": {"username": "kayyo@pemos.ca"}, "object": obj}})
    };
    let f = d.join("req.json");
    std::fs::write(&f, review(&object).to_string()).unwrap();
    let v = s.post("/validate/L3", &f);
    assert_eq!(v["response"]["allowed"], true, "{v}");
    // Another image with the same labels holds no lock: denied.
    let other = serde_json::to_string(&object)
        .unwrap()
        .replace("mefine-static:day97-v144", "mefine-static:day99-v999");
    std::fs::write(
        &f,
        review(&serde_json::from_str(&other).unwrap()).to_string(),
    )
    .unwrap();
    let v = s.post("/validate/L3", &f);
    assert_eq!(v["response"]["allowed"], false);
    assert!(
        v["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("holds no MECIPOL lock"),
        "{v}"
    );
}

#[test]
fn sigterm_drains_requests_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certs(d, "ca", "server");
    let s = start(d, &[]);
    // A ~600 KB review sent at 200 KB/s is still uploading when SIGTERM arrives.
    let mut body: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("privileged_container.json")).unwrap())
            .unwrap();
    body["request"]["object"]["metadata"]["annotations"]["padding"] =
        serde_json::json!("x".repeat(600_000));
    std::fs::write(d.join("big.json"), body.to_string()).unwrap();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            post_in_background(
                d,
                s.port,
                "/validate/L0",
                "big.json",
                &["--limit-rate", "200K"],
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    let pid = s.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    for c in clients {
        let v = json_of(c, "a request in flight was dropped");
        assert_eq!(v["response"]["uid"], "1299d386-525b-4032-98ae-1949f69f9cfc");
    }
    let mut s = s;
    let status = s.child.wait().unwrap();
    assert!(status.success(), "{}", s.log());
    assert!(s.log().contains("draining"));
}

#[test]
fn cli_and_webhook_agree_on_every_corpus_document() {
    use sostle_webhook::{load, parse_review, validate, Settings};
    let loaded = load(&Settings::default()).unwrap();
    let now = jiff::Timestamp::from_second(1_790_000_000).unwrap();
    for layer in ["L3", "trial"] {
        let out = Command::new(env!("CARGO_BIN_EXE_sostle"))
            .args([
                "test",
                "--hidden",
                "-o",
                "json",
                "--sostle-layer",
                layer,
                "--now",
                &now.to_string(),
                "../shared/corpus",
            ])
            .current_dir(root())
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        // CLI verdict per (file, document): denied when any result fails.
        let mut cli: std::collections::BTreeMap<(String, u64), bool> = Default::default();
        for r in report["results"].as_array().unwrap() {
            let key = (
                r["file"].as_str().unwrap().to_string(),
                r["document"].as_u64().unwrap(),
            );
            let denied = cli.entry(key).or_insert(false);
            *denied |= r["outcome"] == "fail";
        }
        let mut compared = 0;
        for ((file, doc), cli_denied) in &cli {
            let text = std::fs::read_to_string(root().join(file)).unwrap();
            let loaded_docs = sostle_core::manifest::load(&text);
            let Some(d) = loaded_docs
                .documents
                .iter()
                .find(|d| d.index as u64 == *doc)
            else {
                continue;
            };
            let object = d.root.to_json();
            let ns = object["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string();
            if sostle_core::namespace::UNGOVERNED.contains(&ns.as_str()) {
                continue;
            }
            let body = serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
                "uid": "u", "kind": {"group": "", "version": "v1", "kind": object["kind"].as_str().unwrap_or("Unknown")},
                "resource": {"group": "", "version": "v1", "resource": "x"}, "namespace": ns, "operation": "CREATE",
                "userInfo": {"username": "ci"}, "object": object}});
            let Ok(req) = parse_review(body.to_string().as_bytes()) else {
                // Objects the API server itself would reject (e.g. non-string label values) never reach a webhook.
                continue;
            };
            let l = sostle_core::Layer::parse(layer).unwrap();
            let d = validate(&loaded, l, &req, now, None, None);
            assert_eq!(
                !d.allowed, *cli_denied,
                "{file} document {doc} at {layer}: webhook says {}, CLI says {}",
                d.allowed, !cli_denied
            );
            compared += 1;
        }
        assert!(
            compared > 2400,
            "compared only {compared} documents at {layer}"
        );
    }
}

#[test]
fn sighup_reloads_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certs(d, "ca", "server");
    std::fs::write(
        d.join("sostle.yaml"),
        "apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\n",
    )
    .unwrap();
    // A reload interval of an hour: only SIGHUP can bring the new config in within the test.
    let s = start(d, &["--config", "sostle.yaml", "--reload-interval", "3600"]);
    assert_eq!(
        s.post("/validate/L0", &fixture("privileged_container.json"))["response"]["allowed"],
        false
    );
    std::fs::write(
        d.join("sostle.yaml"),
        "apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\nsuite:\n  policies:\n    deny_no_limits: {enabled: false}\n    deny_privileged: {enabled: false}\n",
    )
    .unwrap();
    let pid = s.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    wait_until("SIGHUP reload", || {
        s.post("/validate/L0", &fixture("privileged_container.json"))["response"]["allowed"] == true
    });
}

/// #24 item 6: the webhook bounds what clients hold. Stalled bodies are answered 408 and closed
/// within the read timeout; past the body budget a request is answered 503 at once; past the
/// connection cap a new connection is closed; an oversized header is refused. The webhook still
/// answers a real review afterwards.
#[test]
fn stalled_bodies_oversized_headers_and_too_many_connections_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certs(d, "ca", "server");
    let helper = root().join("crates/sostle/tests/it/helpers/slow_client.py");
    let s = start(
        d,
        &[
            "--body-read-timeout",
            "2",
            "--max-connections",
            "12",
            "--body-budget-mib",
            "8",
        ],
    );
    let port = s.port().to_string();
    let client = |args: &[&str]| {
        let out = Command::new("python3")
            .arg(&helper)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // Six stalled 3 MiB bodies against an 8 MiB budget: two or so are held until the timeout
    // (408), the others refused at once (503); none is held past the timeout.
    let out = client(&["stall", &port, "6"]);
    let lines: Vec<(f64, String)> = out
        .lines()
        .map(|l| {
            let (t, rest) = l.split_once(' ').unwrap();
            (t.parse().unwrap(), rest.to_string())
        })
        .collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert!(
        lines.iter().all(|(t, _)| *t < 10.0),
        "held past the timeout: {out}"
    );
    let timed_out = lines.iter().filter(|(_, l)| l.contains(" 408 ")).count();
    // Refused at once: answered 503, or closed while the client was still sending (it then
    // sees the close, not the answer).
    let refused = lines
        .iter()
        .filter(|(_, l)| l.contains(" 503 ") || l.starts_with("REFUSED"))
        .count();
    assert!(
        timed_out >= 1 && refused >= 1 && timed_out + refused == 6,
        "{out}"
    );
    // The connection cap.
    let out = client(&["cap", &port, "12"]);
    assert!(out.starts_with("CLOSED"), "{out}");
    // An oversized header section.
    let out = client(&["header", &port]);
    assert!(
        out.starts_with("CLOSED") || out.contains(" 431 ") || out.starts_with("EOF"),
        "{out}"
    );
    // Still serving.
    assert_eq!(s.curl("ca.pem", &["/healthz"]).0, "ok");
    let metrics = s.curl("ca.pem", &["/metrics"]).0;
    for kind in ["body_read_timeout", "body_budget", "connection_cap"] {
        assert!(
            metrics.contains(&format!("kind=\"{kind}\"")),
            "{kind}: {metrics}"
        );
    }
}
