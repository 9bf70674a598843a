//! The config as the webhook's ConfigMap carries it: key and certificate files put inline.

use std::path::Path;

use serde_json::Value as J;

/// The config as the webhook's ConfigMap carries it: the file as written, unless it names key
/// files in `crew[].keys` — those cannot be read inside the pod, so the keys' PEM is put inline
/// (the file was loaded and validated before, so every path reads).
pub fn config_for_cluster(path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Read(path.display().to_string(), e))?;
    let loaded = sostle_core::manifest::load(&text);
    let Some(doc) = loaded.documents.first() else {
        return Ok(text);
    };
    let mut json = doc.root.to_json();
    let read = sostle_webhook::key_file_reader(path);
    let mut inlined = false;
    let mut inline = |slot: &mut J| -> Result<(), ConfigError> {
        let Some(k) = slot.as_str() else {
            return Ok(());
        };
        if k.trim_start().starts_with("-----BEGIN") {
            return Ok(());
        }
        let pem = read(k.trim())
            .map_err(|m| ConfigError::Key(path.display().to_string(), m.to_string()))?;
        *slot = J::String(pem);
        inlined = true;
        Ok(())
    };
    if let Some(crew) = json.get_mut("crew").and_then(J::as_array_mut) {
        for member in crew {
            for key in member
                .get_mut("keys")
                .and_then(J::as_array_mut)
                .into_iter()
                .flatten()
            {
                inline(key)?;
            }
        }
    }
    for k in json
        .get_mut("locks")
        .and_then(|l| l.get_mut("keys"))
        .and_then(J::as_array_mut)
        .into_iter()
        .flatten()
    {
        inline(k)?;
    }
    // Image signers' keys and Fulcio roots, Rekor keys and registry CAs: files too.
    if let Some(images) = json.get_mut("images") {
        for signer in images
            .get_mut("signers")
            .and_then(J::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(k) = signer.get_mut("key") {
                inline(k)?;
            }
            for r in signer
                .get_mut("fulcioRoots")
                .and_then(J::as_array_mut)
                .into_iter()
                .flatten()
            {
                inline(r)?;
            }
        }
        for k in images
            .get_mut("rekorKeys")
            .and_then(J::as_array_mut)
            .into_iter()
            .flatten()
        {
            inline(k)?;
        }
        if let Some(reg) = images.get_mut("registries") {
            for c in reg
                .get_mut("ca")
                .and_then(J::as_array_mut)
                .into_iter()
                .flatten()
            {
                inline(c)?;
            }
        }
    }
    if !inlined {
        return Ok(text);
    }
    let yaml = serde_saphyr::to_string(&json).map_err(|e| ConfigError::Yaml(e.to_string()))?;
    Ok(format!(
        "# {} with the key and certificate files inline (the pod cannot read them)\n{yaml}",
        path.display()
    ))
}

/// Why the config could not be prepared for the cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file did not read.
    #[error("{0}: {1}")]
    Read(String, #[source] std::io::Error),
    /// A key or certificate file it names did not read.
    #[error("{0}: {1}")]
    Key(String, String),
    /// The inlined config did not write as YAML.
    #[error("cannot write YAML: {0}")]
    Yaml(String),
}
