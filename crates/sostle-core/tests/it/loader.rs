//! Properties of the loader on untrusted bytes: it never panics, every position it reports is
//! inside the input, and every key's position points at that key's text.

use proptest::prelude::*;
use sostle_core::manifest::{self, Node, Value};

fn check_positions(node: &Node, lines: &[&str], problems: &mut Vec<String>) {
    let mut work = vec![node];
    while let Some(n) = work.pop() {
        match &n.value {
            Value::Map(entries) => {
                for e in entries {
                    let line = lines
                        .get(e.key_pos.line as usize - 1)
                        .copied()
                        .unwrap_or("");
                    let rest: String = line.chars().skip(e.key_pos.col as usize - 1).collect();
                    let bare = rest.trim_start_matches(['"', '\'']);
                    // An empty key is reported by the parser as `~` at the `:`.
                    // Keys with whitespace may have been folded across lines; check the rest.
                    let plain = !e
                        .key
                        .chars()
                        .any(|c| c.is_whitespace() || c == '"' || c == '\'' || c == '\\');
                    if &*e.key != "~" && plain && !bare.starts_with(&*e.key) {
                        problems.push(format!(
                            "key {:?} at {:?} reads {:?}",
                            e.key, e.key_pos, rest
                        ));
                    }
                    work.push(&e.value);
                }
            }
            Value::Seq(items) => work.extend(items),
            _ => {}
        }
    }
}

const SAMPLE: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {a: b, \"c\": 'd'}\nspec:\n  template:\n    spec:\n      containers:\n      - name: x\n        image: y:1\n        args: [a, b]\n";

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, rng_seed: proptest::test_runner::RngSeed::Fixed(0x5057_4c45), .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let l = manifest::load_bytes(&bytes);
        for e in &l.errors {
            prop_assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn mutated_manifests_never_panic(cut in 0usize..SAMPLE.len(), insert in "[-:{}\\[\\]&*!|>#'\" \n\tA-Za-z0-9]{0,8}") {
        let mut s = SAMPLE.to_string();
        let cut = (0..=cut).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
        s.insert_str(cut, &insert);
        let l = manifest::load(&s);
        let lines: Vec<&str> = s.lines().collect();
        for d in &l.documents {
            let mut problems = Vec::new();
            if d.root.pos.line > 0 {
                check_positions(&d.root, &lines, &mut problems);
            }
            prop_assert!(problems.is_empty(), "{:?}\n{}", problems, s);
        }
        for e in &l.errors {
            prop_assert!(e.line as usize <= lines.len() + 1, "error line {} beyond input", e.line);
        }
    }
}

#[test]
fn key_positions_on_the_whole_corpus() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    let mut stack = vec![root];
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files += 1;
                let text = std::fs::read_to_string(&p).unwrap();
                let lines: Vec<&str> = text.lines().collect();
                let l = manifest::load(&text);
                let mut problems = Vec::new();
                for d in &l.documents {
                    check_positions(&d.root, &lines, &mut problems);
                }
                assert!(
                    problems.is_empty(),
                    "{}: {:?}",
                    p.display(),
                    &problems[..problems.len().min(3)]
                );
            }
        }
    }
    assert_eq!(files, 1682);
}
