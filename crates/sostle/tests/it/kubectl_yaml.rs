//! #24 item 2: sostle reads a manifest as kubectl reads it. The real `kubectl` is the oracle:
//! 2,400 generated manifests (YAML 1.1 booleans in every spelling, octal-, hex-, sexagesimal-
//! and float-looking numbers, `---` with trailing text and comments, `...`, comments, tabs,
//! BOMs, CRLF, anchors and merge keys `<<`, explicit tags, flow style, JSON) go through `kubectl
//! create --dry-run=client -o json` against the real API server, and every object kubectl would
//! send must be the object sostle judges (numbers compared as numbers); a file kubectl refuses
//! must be an error for sostle too. Then the whole corpus, through the same decoder
//! (`kubectl annotate --local`, which needs no server to know the corpus' CRD kinds).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value as J;

use crate::control_plane::ControlPlane;

/// A small deterministic generator (SplitMix64), so a failure names a reproducible case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
    fn chance(&mut self, in_n: u64) -> bool {
        self.next() % in_n == 0
    }
}

/// Booleans in every spelling YAML 1.1 and its tags allow (and null, which a pointer takes).
const BOOLS: &[&str] = &[
    "y",
    "Y",
    "yes",
    "Yes",
    "YES",
    "n",
    "N",
    "no",
    "No",
    "NO",
    "on",
    "On",
    "ON",
    "off",
    "Off",
    "OFF",
    "true",
    "True",
    "TRUE",
    "false",
    "False",
    "FALSE",
    "!!bool \"yes\"",
    "!!bool y",
    "!!bool \"off\"",
    "~",
    "null",
    "Null",
];

/// Text that resolves to a string: quoted words and numbers, words that only look like
/// booleans, sexagesimal- and date-looking plain scalars, tags.
const STRINGS: &[&str] = &[
    "\"y\"",
    "'yes'",
    "\"true\"",
    "'off'",
    "!!str yes",
    "!!str true",
    "!!str 012",
    "yEs",
    "oN",
    "tRUE",
    "nO",
    "\"012\"",
    "'0x1F'",
    "1:20",
    "190:20:30",
    "2001-12-14",
    "2001-12-14t21:59:43.10-05:00",
    "2001-12-14 21:59:43.10",
    "latest",
    "nginx:1.25",
    "registry:5000/app",
    "a b",
    "'it''s'",
    "\"tab\\there\"",
    "!custom x",
    "_1",
    "\"14134725141734693\"",
    "14134725141734693x",
    "1e400",
    "0x",
    "- x",
    "yes please",
    "\"\"",
    "''",
];

/// Numbers of every look: octal, hex, binary, underscores, exponents, beyond int64.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "+1",
    "012",
    "0o12",
    "0x1F",
    "0X1f",
    "0b101",
    "-0b11",
    "08",
    "1_000",
    "1e3",
    "1E-2",
    ".5",
    "-.5",
    "1.",
    "6.8523015e+5",
    "685.230_15e+03",
    "14134725141734693",
    "18446744073709551615",
    "9223372036854775807",
    "-9223372036854775808",
    "!!float 1",
    "!!int \"12\"",
    "0x_1F",
    "+0x10",
];

/// What JSON cannot carry, and tags a value does not match: kubectl refuses these.
const REFUSED: &[&str] = &[".inf", "-.Inf", ".NaN", "!!bool \"1\"", "!!int yes"];

/// Resource quantities as numbers and strings.
const QUANTITIES: &[&str] = &[
    "100m", "\"1\"", "1", "0.5", "1e3", "012", "0x10", "1_000", "\"250m\"", "64Mi", "1Gi", ".5",
    "+1", "1E2", "2",
];

/// A value for a field of type `group`: nearly always of that type (so kubectl's typed
/// decoding takes it), now and then anything at all.
fn of(r: &mut Rng, group: &[&'static str]) -> &'static str {
    if r.chance(25) {
        let all = [BOOLS, STRINGS, NUMBERS, REFUSED];
        let g = all[(r.next() % 4) as usize];
        return r.pick(g);
    }
    r.pick(group)
}

fn separator(r: &mut Rng) -> &'static str {
    r.pick(&[
        "---",
        "---",
        "---#",
        "--- # a comment",
        "---\t",
        "--- ",
        "---   #x",
        "--- text",
        "----",
        "--- |",
    ])
}

/// One generated case: a file of one to three documents.
fn case(i: usize, r: &mut Rng) -> String {
    let mut out = String::new();
    if r.chance(25) {
        out.push('\u{feff}');
    }
    if r.chance(6) {
        out.push_str("# leading comment\n");
    }
    if r.chance(8) {
        out.push_str("---\n");
    }
    let docs = 1 + (r.next() % 3) as usize;
    for d in 0..docs {
        if d > 0 {
            out.push_str(separator(r));
            out.push('\n');
        }
        let name = format!("c{i:04}-{d}");
        match r.next() % 10 {
            0 => {
                // JSON.
                let privileged = r.pick(&["true", "false", "null", "\"true\""]);
                let _ = writeln!(
                    out,
                    "{{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {{\"name\": \"{name}\", \"labels\": {{\"a\": \"b\"}}}}, \"spec\": {{\"containers\": [{{\"name\": \"c\", \"image\": \"x:1\", \"securityContext\": {{\"privileged\": {privileged}}}}}]}}}}"
                );
            }
            1 => {
                // Flow style throughout.
                let _ = writeln!(
                    out,
                    "{{apiVersion: v1, kind: Pod, metadata: {{name: {name}, labels: {{gamma1: {}, on: {}}}}}, spec: {{containers: [{{name: c, image: {}, securityContext: {{privileged: {}, readOnlyRootFilesystem: {}}}}}]}}}}",
                    flow_safe(of(r, STRINGS)),
                    flow_safe(of(r, STRINGS)),
                    flow_safe(of(r, STRINGS)),
                    flow_safe(of(r, BOOLS)),
                    flow_safe(of(r, BOOLS))
                );
            }
            2 => {
                // Anchors, aliases and merge keys.
                let _ = write!(
                    out,
                    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: &l\n    team: {}\n    crew-member: {}\n  annotations:\n    note: {}\n    <<: *l\n    team: {}\nspec:\n  containers:\n  - &c\n    name: c\n    image: {}\n    securityContext: &sc\n      privileged: {}\n  - <<: *c\n    name: d\n    securityContext:\n      readOnlyRootFilesystem: {}\n      <<: [*sc, {{privileged: {}, runAsUser: {}}}]\n",
                    of(r, STRINGS),
                    of(r, STRINGS),
                    of(r, STRINGS),
                    of(r, STRINGS),
                    of(r, STRINGS),
                    of(r, BOOLS),
                    of(r, BOOLS),
                    of(r, BOOLS),
                    of(r, &["0", "1000", "012", "0x10", "0b101", "1_000", "+1", "-1"])
                );
            }
            3 => {
                // A ConfigMap whose keys are YAML 1.1 words and numbers.
                // Two keys that resolve differently (a key twice is a duplicate: kubectl keeps
                // the last, sostle refuses the document; docs/yaml-parser.md).
                let (k1, k2) = loop {
                    let (a, b) = (key(r), key(r));
                    if resolved_key(a) != resolved_key(b)
                        && resolved_key(a) != "plain"
                        && resolved_key(b) != "plain"
                    {
                        break (a, b);
                    }
                };
                let _ = write!(
                    out,
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  {k1}: {}\n  {k2}: {}\n  plain: {}\n",
                    of(r, STRINGS),
                    of(r, STRINGS),
                    of(r, STRINGS)
                );
            }
            _ => {
                // A block-style Pod with the fields the policies read.
                let nl = if r.chance(7) { "\r\n" } else { "\n" };
                let end = if r.chance(9) { "\t# trailing" } else { "" };
                let lines = [
                    "apiVersion: v1".to_string(),
                    "kind: Pod".into(),
                    "metadata:".into(),
                    format!("  name: {name}"),
                    format!(
                        "  namespace: {}",
                        r.pick(&["sostle-l3-crew", "chaos-trial", "default"])
                    ),
                    "  labels:".into(),
                    format!("    gamma1: {}", of(r, STRINGS)),
                    format!("    mecipol-locked: {}", of(r, STRINGS)),
                    format!("    kay-approved: {}{end}", of(r, STRINGS)),
                    "  annotations:".into(),
                    format!("    mecipol-image: {}", of(r, STRINGS)),
                    "spec:".into(),
                    format!("  hostNetwork: {}", of(r, BOOLS)),
                    "  containers:".into(),
                    "  - name: app".into(),
                    format!("    image: {}", of(r, STRINGS)),
                    "    resources:".into(),
                    "      limits:".into(),
                    format!("        cpu: {}", of(r, QUANTITIES)),
                    format!("        memory: {}", of(r, QUANTITIES)),
                    "    securityContext:".into(),
                    format!("      privileged: {}", of(r, BOOLS)),
                    format!("      readOnlyRootFilesystem: {}", of(r, BOOLS)),
                    format!(
                        "      runAsUser: {}",
                        of(
                            r,
                            &["0", "1000", "012", "0x10", "0b101", "1_000", "+1", "~"]
                        )
                    ),
                    "    livenessProbe:".into(),
                    format!("      exec: {{command: [{}]}}", flow_safe(of(r, STRINGS))),
                ];
                for (k, l) in lines.iter().enumerate() {
                    if k == 6 && r.chance(20) {
                        // A tab where indentation belongs: a syntax error for both.
                        out.push('\t');
                    }
                    out.push_str(l);
                    out.push_str(nl);
                    if r.chance(40) {
                        out.push_str("  # a comment line");
                        out.push_str(nl);
                    }
                }
            }
        }
        if r.chance(12) {
            out.push_str("...\n");
        }
    }
    out
}

/// What a key of [`key`] becomes in JSON (as sigs.k8s.io/yaml writes it).
fn resolved_key(k: &str) -> &str {
    match k {
        "y" | "on" | "true" => "true",
        "No" => "false",
        "012" | "'1'" => {
            if k == "012" {
                "10"
            } else {
                "1"
            }
        }
        "0x10" => "16",
        "1e3" => "1000",
        "\"quoted\"" => "quoted",
        other => other,
    }
}

fn key(r: &mut Rng) -> &'static str {
    r.pick(&[
        "y",
        "on",
        "No",
        "true",
        "012",
        "0x10",
        "1e3",
        "1.5",
        "plainkey",
        "\"quoted\"",
        "'1'",
    ])
}

/// Flow collections end at `,` `]` `}`: those scalars are quoted there.
fn flow_safe(s: &'static str) -> String {
    if s.contains([',', '[', ']', '{', '}', '#'])
        || s.starts_with('!') && s.contains(' ') && s.contains('"')
    {
        return s.to_string();
    }
    if s.contains(' ') && !s.starts_with(['"', '\'', '!']) {
        return format!("\"{s}\"");
    }
    s.to_string()
}

/// Numbers compared as numbers (kubectl writes `1e3` as 1000, sostle's tree keeps 1000.0).
fn same(a: &J, b: &J) -> bool {
    match (a, b) {
        (J::Number(x), J::Number(y)) => x.as_f64() == y.as_f64(),
        (J::Array(x), J::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// kubectl's objects in a stream of JSON values (each object as printed, Lists opened).
fn objects(stdout: &str) -> Vec<J> {
    let mut out = Vec::new();
    for v in serde_json::Deserializer::from_str(stdout).into_iter::<J>() {
        let v = v.unwrap();
        if v["kind"] == "List" {
            out.extend(v["items"].as_array().cloned().unwrap_or_default());
        } else {
            out.push(v);
        }
    }
    out
}

/// The files kubectl named in its errors.
fn refused_files(stderr: &str, dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let d = dir.display().to_string();
    for line in stderr.lines() {
        if let Some(at) = line.find(&d) {
            let rest = &line[at + d.len() + 1..];
            let file: String = rest
                .chars()
                .take_while(|c| !matches!(c, ':' | '"' | ' '))
                .collect();
            out.entry(file).or_insert_with(|| line.to_string());
        }
    }
    out
}

/// After `annotate --local` added and we removed its annotation, an object that had none
/// has `annotations: {}` (and `metadata: {}`): empty ones are dropped on both sides.
fn tidy(o: &mut J) {
    let Some(m) = o.get_mut("metadata").and_then(J::as_object_mut) else {
        return;
    };
    if m.get("annotations")
        .is_some_and(|a| a.is_null() || a.as_object().is_some_and(|a| a.is_empty()))
    {
        m.remove("annotations");
    }
    if m.is_empty() {
        o.as_object_mut().unwrap().remove("metadata");
    }
}

/// Compares, file by file, what kubectl printed with what sostle reads; returns the
/// disagreements.
fn compare(
    dir: &Path,
    files: &[String],
    kubectl_objects: &[J],
    refused: &BTreeMap<String, String>,
    strip: Option<&str>,
) -> Vec<String> {
    let mut by_name: BTreeMap<String, Vec<J>> = BTreeMap::new();
    for o in kubectl_objects {
        let mut o = o.clone();
        if let Some(key) = strip {
            if let Some(a) = o["metadata"]["annotations"].as_object_mut() {
                a.remove(key);
            }
            tidy(&mut o);
        }
        let name = format!(
            "{}/{}/{}",
            o["kind"].as_str().unwrap_or(""),
            o["metadata"]["namespace"].as_str().unwrap_or(""),
            o["metadata"]["name"].as_str().unwrap_or("")
        );
        by_name.entry(name).or_default().push(o);
    }
    let mut problems = Vec::new();
    let mut ours_all: BTreeMap<String, Vec<J>> = BTreeMap::new();
    for f in files {
        let bytes = std::fs::read(dir.join(f)).unwrap();
        let loaded = sostle_core::manifest::load_bytes(&bytes);
        let kubectl_refused = refused.contains_key(f);
        // What kubectl refuses never reaches the cluster, so sostle may judge it or not. What
        // kubectl reads, sostle reads without an error — but a key written twice: kubectl keeps
        // the last value (and sostle judges that value), and sostle reports it too (server-side
        // apply refuses it).
        if let Some(e) = loaded
            .errors
            .iter()
            .find(|e| !e.message.contains("duplicate key"))
        {
            if !kubectl_refused {
                problems.push(format!("{f}: sostle reports {e:?}, kubectl reads it"));
            }
        }
        for d in &loaded.documents {
            let mut o = d.root.to_json();
            if strip.is_some() {
                tidy(&mut o);
            } else if o["metadata"].is_object() && o["metadata"].get("namespace").is_none() {
                // `kubectl create` puts an object without a namespace in its context's, here
                // `default`.
                o["metadata"]["namespace"] = J::from("default");
            }
            if o.get("kind").is_none() || o.get("apiVersion").is_none() {
                continue;
            }
            let name = format!(
                "{}/{}/{}",
                o["kind"].as_str().unwrap_or(""),
                o["metadata"]["namespace"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().unwrap_or("")
            );
            ours_all.entry(name).or_default().push(o);
        }
        if kubectl_refused {
            continue;
        }
    }
    // Every object kubectl sends is one sostle judges, the same.
    for (name, theirs) in &by_name {
        let Some(ours) = ours_all.get(name) else {
            problems.push(format!("{name}: kubectl sends it, sostle does not read it"));
            continue;
        };
        for t in theirs {
            if !ours.iter().any(|o| same(o, t)) {
                problems.push(format!(
                    "{name}: kubectl sends\n  {t}\nsostle reads\n  {}",
                    ours[0]
                ));
            }
        }
    }
    problems
}

#[test]
fn sostle_reads_generated_manifests_as_kubectl_create_sends_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // KEEP_CASES=DIR keeps a copy of the generated files to look at.
    let keep = std::env::var_os("KEEP_CASES");
    let mut r = Rng(0x5057_4c45_0024_0002);
    let mut files = Vec::new();
    for i in 0..2400 {
        let f = format!("case-{i:04}.yaml");
        let text = case(i, &mut r);
        if let Some(k) = &keep {
            std::fs::create_dir_all(k).unwrap();
            std::fs::write(Path::new(k).join(&f), &text).unwrap();
        }
        std::fs::write(d.join(&f), text).unwrap();
        files.push(f);
    }
    let cp = ControlPlane::start();
    let run = cp.kubectl(
        &[
            "create",
            "--dry-run=client",
            "--validate=false",
            "-o",
            "json",
            "-f",
            d.to_str().unwrap(),
        ],
        None,
    );
    let theirs = objects(&run.stdout);
    let refused = refused_files(&run.stderr, d);
    assert!(
        theirs.len() > 2000,
        "kubectl sent only {} objects: {}",
        theirs.len(),
        &run.stderr[..run.stderr.len().min(2000)]
    );
    assert!(
        !refused.is_empty(),
        "the generator makes files kubectl refuses too"
    );
    let problems = compare(d, &files, &theirs, &refused, None);
    assert!(
        problems.is_empty(),
        "{} disagreements over {} files ({} objects, {} files refused by kubectl); the first:\n{}",
        problems.len(),
        files.len(),
        theirs.len(),
        refused.len(),
        problems
            .iter()
            .take(std::env::var("SHOW_ALL").map_or(8, |_| 100_000))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn sostle_reads_the_corpus_as_kubectl_does() {
    let corpus = crate::root().join("../shared/corpus");
    let mut files = Vec::new();
    for e in walk(&corpus) {
        let rel = e.strip_prefix(&corpus).unwrap().display().to_string();
        files.push(rel);
    }
    assert!(files.len() > 1600, "{}", files.len());
    // `annotate --local` reads files with the same decoder as `create`, and needs no server to
    // know the corpus' custom resource kinds; the annotation it adds is taken off again.
    let run = crate::run(
        std::process::Command::new("kubectl")
            .args(["annotate", "--local", "-R", "-o", "json", "-f"])
            .arg(&corpus)
            .arg("sostle-oracle=1")
            .env("KUBECONFIG", "/dev/null"),
        None,
    );
    let theirs = objects(&run.stdout);
    let refused = refused_files(&run.stderr, &corpus);
    assert!(
        theirs.len() > 2000,
        "kubectl read {} objects: {}",
        theirs.len(),
        &run.stderr[..run.stderr.len().min(2000)]
    );
    let problems = compare(&corpus, &files, &theirs, &refused, Some("sostle-oracle"));
    assert!(
        problems.is_empty(),
        "{} disagreements over the corpus ({} objects); the first:\n{}",
        problems.len(),
        theirs.len(),
        problems
            .iter()
            .take(std::env::var("SHOW_ALL").map_or(8, |_| 100_000))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            ) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The table the kubectl-differential fuzz target composes from (fuzz/kubectl-tokens.json,
/// recorded from the real kubectl by scripts/record-kubectl-tokens.py): each spelling, in each
/// form kubectl accepted, reads the same in sostle. A guard that needs no kubectl, so a change
/// to the loader that drifts from the recording fails here too.
#[test]
fn every_recorded_kubectl_reading_of_a_scalar_spelling_holds() {
    let table: J = serde_json::from_str(
        &std::fs::read_to_string(crate::root().join("fuzz/kubectl-tokens.json")).unwrap(),
    )
    .unwrap();
    let tokens = table["tokens"].as_array().unwrap();
    assert!(tokens.len() > 90, "{}", tokens.len());
    let mut problems = Vec::new();
    let head = "apiVersion: v1\nkind: Probe\nmetadata:\n  name: t\nspec:\n";
    for t in tokens {
        let text = t["token"].as_str().unwrap();
        for (form, body, read) in [
            (
                "value",
                format!("  value: {text}\n"),
                &(|s: &J| s["value"].clone()) as &dyn Fn(&J) -> J,
            ),
            ("flow", format!("  flow: [{text}]\n"), &|s: &J| {
                s["flow"][0].clone()
            }),
            ("key", format!("  keys:\n    {text}: 1\n"), &|s: &J| {
                J::from(
                    s["keys"]
                        .as_object()
                        .and_then(|m| m.keys().next().cloned())
                        .unwrap_or_default(),
                )
            }),
        ] {
            let loaded = sostle_core::manifest::load(&format!("{head}{body}"));
            // A form kubectl refuses (recorded null) never reaches a cluster: not compared.
            if let Some(want) = t[form].get("v") {
                match loaded.documents.first() {
                    Some(d) if loaded.errors.is_empty() => {
                        let got = read(&d.root.to_json()["spec"]);
                        if !same(&got, want) {
                            problems
                                .push(format!("{text:?} as {form}: kubectl {want}, sostle {got}"));
                        }
                    }
                    _ => problems.push(format!(
                        "{text:?} as {form}: kubectl reads it, sostle: {:?}",
                        loaded.errors
                    )),
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
