//! The label pass before the main one: a resource's layer may depend on a Namespace object
//! anywhere in the input (its `sostle-layer` label). The files that may declare a Namespace (a
//! byte scan for `kind: Namespace` in any YAML or JSON spelling) are parsed once for those
//! labels; small inputs keep their bytes for the main pass.

use std::collections::HashMap;

use rayon::prelude::*;
use sostle_core::eval::namespace_object_layer;
use sostle_core::{manifest, Layer};

use crate::findings::Source;
use crate::read::read_source;

/// Whether `bytes` may hold a Namespace object: a `kind` key whose value is `Namespace` — in
/// block or flow style or JSON, quoted or not, with a tag (`!!str`) or an anchor (`&k`) before
/// it, on the same line or the next. A cheap byte scan, so only those files are parsed before
/// the main pass (CRDs say "Namespace" in their prose a lot). Not seen: a kind given by an
/// alias (`kind: *k`) or spelled with escapes; such a Namespace is judged, but its label does not
/// set other files' layers (docs/decisions.md).
fn declares_namespace(bytes: &[u8]) -> bool {
    const NS: &[u8] = b"Namespace";
    let is_space = |c: u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    for i in memchr::memmem::find_iter(bytes, NS) {
        let after = bytes.get(i + NS.len()).copied();
        if !matches!(
            after,
            None | Some(b'"' | b'\'' | b' ' | b'\t' | b'\r' | b'\n' | b',' | b'}')
        ) {
            continue;
        }
        // Walk back over quotes, spaces and newlines, then tags and anchors, to the colon.
        let mut j = i;
        let back = |j: &mut usize| {
            while *j > 0
                && bytes
                    .get(*j - 1)
                    .is_some_and(|c| is_space(*c) || *c == b'"' || *c == b'\'')
            {
                *j -= 1;
            }
        };
        back(&mut j);
        // A tag or an anchor: a run of non-space bytes starting with `!` or `&`.
        for _ in 0..2 {
            let mut k = j;
            while k > 0
                && bytes
                    .get(k - 1)
                    .is_some_and(|c| !is_space(*c) && *c != b':')
            {
                k -= 1;
            }
            if k < j && matches!(bytes.get(k), Some(b'!' | b'&')) {
                j = k;
                back(&mut j);
            }
        }
        if j == 0 || bytes.get(j - 1) != Some(&b':') {
            continue;
        }
        j -= 1;
        back(&mut j);
        if bytes.get(..j).is_some_and(|b| b.ends_with(b"kind")) {
            return true;
        }
    }
    false
}

/// An input up to this size is read once: the label pass keeps its bytes for the main pass.
/// A larger one is read twice, so memory stays flat.
const KEEP_BYTES: usize = 16 << 20;

/// The labels, and the bytes of the files for the main pass when the whole input fits in
/// [`KEEP_BYTES`] (else none).
pub(crate) type Prescan = (HashMap<String, Layer>, Vec<Option<Vec<u8>>>);

/// One file's labels, and its bytes when kept.
type FileLabels = (Vec<(String, Layer)>, Option<Vec<u8>>);

pub(crate) fn namespace_labels(sources: &[Source]) -> Prescan {
    let kept = std::sync::atomic::AtomicUsize::new(0);
    let found: Vec<FileLabels> = sources
        .par_iter()
        .map(|src| {
            let Ok(bytes) = read_source(src) else {
                return (Vec::new(), None);
            };
            let labels = namespace_labels_of(&bytes);
            let keep = match bytes {
                std::borrow::Cow::Owned(b)
                    if kept.fetch_add(b.len(), std::sync::atomic::Ordering::Relaxed) + b.len()
                        <= KEEP_BYTES =>
                {
                    Some(b)
                }
                _ => None,
            };
            (labels, keep)
        })
        .collect();
    let fits = kept.load(std::sync::atomic::Ordering::Relaxed) <= KEEP_BYTES;
    let mut labels = HashMap::new();
    let mut cache = Vec::with_capacity(found.len());
    for (found, keep) in found {
        for (ns, l) in found {
            labels.entry(ns).or_insert(l);
        }
        cache.push(keep.filter(|_| fits));
    }
    (labels, cache)
}

/// The `sostle-layer` labels of the Namespace objects of one input.
fn namespace_labels_of(bytes: &[u8]) -> Vec<(String, Layer)> {
    if !declares_namespace(bytes) {
        return Vec::new();
    }
    let loaded = manifest::load_bytes(bytes);
    loaded
        .documents
        .iter()
        .filter(|d| d.root.get("kind").and_then(manifest::Node::as_str) == Some("Namespace"))
        .filter_map(|d| {
            let name = d
                .root
                .get_path(&["metadata", "name"])
                .and_then(manifest::Node::as_str)?;
            match namespace_object_layer(&d.root) {
                Some(Ok(l)) => Some((name.to_string(), l)),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::declares_namespace;
    use proptest::prelude::*;

    /// A document that may be a Namespace, in one of the spellings YAML and JSON allow, among
    /// other keys.
    fn document() -> impl Strategy<Value = (String, bool)> {
        let kind = prop_oneof![
            Just(("kind: Namespace", true)),
            Just(("kind: \"Namespace\"", true)),
            Just(("kind: 'Namespace'", true)),
            Just(("kind: !!str Namespace", true)),
            Just(("kind: &k Namespace", true)),
            Just(("kind:\n  Namespace", true)),
            Just(("kind:   Namespace   ", true)),
            Just(("kind: Deployment", false)),
            Just(("kind: NamespaceList", false)),
            Just((
                "kind: ConfigMap\ndata:\n  note: the Namespace we use",
                false
            )),
        ];
        // Each other key at most once (a repeated key is an error, not a document).
        let filler = proptest::sample::subsequence(
            vec![
                "apiVersion: v1",
                "metadata:\n  name: a\n  labels: {sostle-layer: L3}",
                "# Namespace: a comment",
                "spec: {}",
            ],
            0..=4,
        );
        (kind, filler, any::<bool>()).prop_map(|((k, is_ns), fill, first)| {
            let mut lines: Vec<&str> = fill;
            if first {
                lines.insert(0, k);
            } else {
                lines.push(k);
            }
            (lines.join("\n") + "\n", is_ns)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, rng_seed: proptest::test_runner::RngSeed::Fixed(0x6e73), .. ProptestConfig::default() })]

        /// The scan never misses a Namespace the parser sees (it may say yes to more).
        #[test]
        fn the_scan_sees_every_namespace_the_parser_sees(docs in proptest::collection::vec(document(), 1..4)) {
            let text: String = docs.iter().map(|(d, _)| format!("---\n{d}")).collect();
            let parsed = sostle_core::manifest::load(&text);
            let has_ns = parsed.documents.iter().any(|d| {
                d.root.get("kind").and_then(sostle_core::manifest::Node::as_str) == Some("Namespace")
            });
            prop_assert_eq!(has_ns, docs.iter().any(|(_, ns)| *ns), "generator and parser disagree: {}", text);
            if has_ns {
                prop_assert!(declares_namespace(text.as_bytes()), "missed: {}", text);
            }
        }

        /// Arbitrary bytes never panic the scan.
        #[test]
        fn the_scan_takes_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = declares_namespace(&bytes);
        }
    }

    #[test]
    fn namespace_declarations_are_found_in_any_spelling() {
        for yes in [
            "kind: Namespace\n",
            "apiVersion: v1\nkind: \"Namespace\"\nmetadata: {name: a}",
            "- kind: 'Namespace'\n",
            "{apiVersion: v1, kind: Namespace, metadata: {name: a}}",
            "{\"kind\":\"Namespace\",\"apiVersion\":\"v1\"}",
            "{\n  \"kind\": \"Namespace\"\n}",
            "kind: Namespace",
            "kind: !!str Namespace\n",
            "kind: &k Namespace\n",
            "kind: !!str &k 'Namespace'\n",
            "kind:\n  Namespace\nmetadata: {name: a}\n",
        ] {
            assert!(declares_namespace(yes.as_bytes()), "{yes}");
        }
        for no in [
            "description: the Namespace of the target\n",
            "kind: NamespaceList\n",
            "kind: Deployment\n  namespaceSelector: {}\n",
            "subjects: [{kind: ServiceAccount, namespace: a}]",
            "",
        ] {
            assert!(!declares_namespace(no.as_bytes()), "{no}");
        }
    }
}
