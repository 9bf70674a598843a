//! Measures YAML parser candidates on ../shared/corpus: speed, files refused, and behaviour on
//! an alias bomb, 20,000-deep nesting and duplicate keys. Output feeds docs/yaml-parser.md.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut v: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    for p in v {
        if p.is_dir() {
            files(&p, out)
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push(p)
        }
    }
}

type Candidate = (&'static str, fn(&str) -> Result<usize, String>);

fn serde_yaml_value(s: &str) -> Result<usize, String> {
    let mut n = 0;
    for d in serde_yaml::Deserializer::from_str(s) {
        <serde_yaml::Value as serde::Deserialize>::deserialize(d).map_err(|e| e.to_string())?;
        n += 1;
    }
    Ok(n)
}

fn saphyr_events(s: &str) -> Result<usize, String> {
    let mut p = saphyr_parser::Parser::new_from_str(s);
    let mut n = 0;
    while let Some(r) = p.next_event() {
        r.map_err(|e| e.to_string())?;
        n += 1;
    }
    Ok(n)
}

fn granit_events(s: &str) -> Result<usize, String> {
    let mut p = granit_parser::Parser::new_from_str(s);
    let mut n = 0;
    while let Some(r) = p.next_event() {
        r.map_err(|e| e.to_string())?;
        n += 1;
    }
    Ok(n)
}

fn yaml_rust2_events(s: &str) -> Result<usize, String> {
    let mut p = yaml_rust2::parser::Parser::new_from_str(s);
    let mut n = 0;
    loop {
        match p.next_token() {
            Ok((yaml_rust2::parser::Event::StreamEnd, _)) => return Ok(n),
            Ok(_) => n += 1,
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn serde_saphyr_json(s: &str) -> Result<usize, String> {
    serde_saphyr::from_multiple::<serde_json::Value>(s).map(|v| v.len()).map_err(|e| e.to_string())
}

fn short(r: Result<usize, String>, took: Duration) -> String {
    let t = format!("{:.0} ms", took.as_secs_f64() * 1e3);
    match r {
        Ok(n) => format!("accepted ({n} items, {t})"),
        Err(e) => format!("refused ({}, {t})", e.chars().take(70).collect::<String>()),
    }
}

fn main() {
    // `parser-compare serde-yaml-once DIR`: read and parse every file once with serde_yaml on one
    // thread, as a whole command — the baseline `hyperfine` runs beside `sostle test`.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serde-yaml-once") {
        let mut fs = Vec::new();
        files(Path::new(args.get(2).map_or("../../../shared/corpus", String::as_str)), &mut fs);
        let mut docs = 0;
        for p in &fs {
            let text = std::fs::read_to_string(p).unwrap();
            docs += serde_yaml_value(&text).unwrap_or(0);
        }
        println!("{docs} documents");
        return;
    }
    let mut fs = Vec::new();
    files(Path::new("../../../shared/corpus"), &mut fs);
    let texts: Vec<String> = fs.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
    println!("{} files, {} bytes", texts.len(), texts.iter().map(String::len).sum::<usize>());
    let candidates: [Candidate; 5] = [
        ("serde_yaml Value", serde_yaml_value),
        ("saphyr-parser events", saphyr_events),
        ("granit-parser events", granit_events),
        ("yaml-rust2 events", yaml_rust2_events),
        ("serde-saphyr json Value", serde_saphyr_json),
    ];
    for (name, f) in candidates {
        let mut best = Duration::MAX;
        let mut refused = Vec::new();
        for round in 0..3 {
            let t = Instant::now();
            for (i, s) in texts.iter().enumerate() {
                if f(s).is_err() && round == 0 {
                    refused.push(fs[i].display().to_string());
                }
            }
            best = best.min(t.elapsed());
        }
        println!("{name:<26} {:>7.1} ms  refused {} files", best.as_secs_f64() * 1e3, refused.len());
        for r in refused.iter().filter(|r| !r.contains("openshift") && !r.contains("kafka") && !r.contains("quobyte") && !r.contains("scaleio") && !r.contains("configmaps-new")) {
            println!("    also refused: {r}");
        }
    }
    let mut bomb = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let refs: Vec<String> = (0..10).map(|_| format!("*a{}", i - 1)).collect();
        bomb.push_str(&format!("a{i}: &a{i} [{}]\n", refs.join(", ")));
    }
    let deep_flow = format!("a: {}", "[".repeat(20_000));
    let deep_block: String = (0..20_000).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
    let dup = "a: 1\nb: 2\na: 3\n";
    for (what, input) in [("alias bomb (10^9 nodes)", bomb.as_str()), ("20,000-deep flow", deep_flow.as_str()), ("20,000-deep block", deep_block.as_str()), ("duplicate key", dup)] {
        println!("{what}:");
        for (name, f) in candidates {
            let t = Instant::now();
            let r = f(input);
            println!("    {name:<26} {}", short(r, t.elapsed()));
        }
    }
}
