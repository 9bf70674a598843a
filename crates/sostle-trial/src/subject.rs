//! A trial's subject read from files: every document as JSON, with its file and digest.

use std::path::PathBuf;

use serde_json::Value as J;
use sostle_check::Source;
use sostle_core::manifest;

use crate::TrialError;

/// One document read from the subject's files.
#[derive(Debug)]
pub struct SubjectDoc {
    /// The file (or `-`).
    pub file: String,
    /// The document number in it.
    pub document: usize,
    /// The object.
    pub object: J,
    /// `sha256` hex of its canonical JSON.
    pub sha256: String,
}

/// Reads manifests: every document as JSON, with its file and digest.
pub fn read_subject(paths: &[PathBuf]) -> Result<Vec<SubjectDoc>, TrialError> {
    let mut errors = Vec::new();
    let sources = sostle_check::collect_sources(paths, &mut errors);
    if let Some(e) = errors.first() {
        return Err(TrialError::Input(format!("{}: {}", e.file, e.message)));
    }
    let mut out = Vec::new();
    for src in &sources {
        let bytes = match src {
            Source::File(p) => {
                std::fs::read(p).map_err(|e| TrialError::Input(format!("{}: {e}", p.display())))?
            }
            Source::Stdin(b) | Source::Rendered { bytes: b, .. } => b.to_vec(),
        };
        let loaded = manifest::load_bytes(&bytes);
        if let Some(e) = loaded.errors.first() {
            let m = format!("{}:{}:{}: {}", src.name(), e.line, e.col, e.message);
            return Err(TrialError::Input(m));
        }
        for d in loaded.documents {
            let object = d.root.to_json();
            let sha256 = sostle_core::digest::sha256_hex(
                sostle_core::digest::canonical_json(&object).as_bytes(),
            );
            out.push(SubjectDoc {
                file: src.name(),
                document: d.index,
                object,
                sha256,
            });
        }
    }
    if out.is_empty() {
        return Err(TrialError::Input(format!(
            "no Kubernetes objects in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(out)
}
