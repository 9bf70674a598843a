//! Policies in an OCI registry, in conftest's artifact format (`conftest push` / `pull`): one
//! layer per `.rego` file (`application/vnd.cncf.openpolicyagent.policy.layer.v1+rego`) and per
//! data file (`…data.layer.v1+json`), each titled with its path, under oras's empty config. So
//! `sostle policy push` is read by `conftest pull`, and what `conftest push` stored is read by
//! `sostle policy pull` and `sostle test --policy oci://REF` — which can first require a cosign
//! signature on the bundle (`--policy-key`, made with `sostle sign` or `cosign sign`).

use std::path::{Component, Path, PathBuf};

use crate::registry::{ArtifactFile, Registry};

/// The config oras writes for an artifact of no known type, as conftest pushes it.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.unknown.config.v1+json";
/// A Rego policy file.
pub const POLICY_MEDIA_TYPE: &str = "application/vnd.cncf.openpolicyagent.policy.layer.v1+rego";
/// A data document (JSON or YAML, stored as written).
pub const DATA_MEDIA_TYPE: &str = "application/vnd.cncf.openpolicyagent.data.layer.v1+json";

/// Why a bundle could not be pushed or pulled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The directory to push holds no policy.
    #[error("no .rego files in {0}")]
    NoPolicies(String),
    /// The registry refused or failed.
    #[error("{0}")]
    Registry(String),
    /// No signature by a required key verified: the bundle, the keys, and why each failed.
    #[error("policy bundle {bundle} has no signature by {keys}{why}")]
    Unsigned {
        /// The bundle, by digest.
        bundle: String,
        /// The keys, as named.
        keys: String,
        /// ` (why; why)`, or nothing.
        why: String,
    },
    /// What the reference names is no policy bundle.
    #[error("{0} is not a policy bundle (config {1}, no {POLICY_MEDIA_TYPE} layer)")]
    NotABundle(String, String),
    /// A layer's title would write outside the directory.
    #[error("layer title `{0}` is not a relative path inside the bundle; refusing to write it")]
    Title(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BundleError + '_ {
    move |source| BundleError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// `oci://host/repo:tag` → `host/repo:tag`, `:latest` when no tag or digest is given.
pub fn reference(r: &str) -> String {
    let r = r.strip_prefix("oci://").unwrap_or(r);
    let last = r.rsplit('/').next().unwrap_or(r);
    if last.contains(':') || last.contains('@') {
        r.to_string()
    } else {
        format!("{r}:latest")
    }
}

/// A bundle to push: the `.rego` files found under `dir` and the data files found under `data`
/// (default: `dir`), each titled with its path from there.
pub fn bundle(
    dir: &Path,
    data: Option<&Path>,
    rego: &[PathBuf],
    docs: &[PathBuf],
) -> Result<Vec<ArtifactFile>, BundleError> {
    if rego.is_empty() {
        return Err(BundleError::NoPolicies(dir.display().to_string()));
    }
    let mut out = Vec::new();
    for (paths, base, media_type) in [
        (rego, dir, POLICY_MEDIA_TYPE),
        (docs, data.unwrap_or(dir), DATA_MEDIA_TYPE),
    ] {
        for p in paths {
            out.push(ArtifactFile {
                media_type: media_type.to_string(),
                title: title(base, p),
                bytes: std::fs::read(p).map_err(io(p))?,
            });
        }
    }
    Ok(out)
}

/// Pushes a bundle to `to`; the digest reference it was stored under.
pub async fn push(
    client: &Registry,
    to: &str,
    files: Vec<ArtifactFile>,
) -> Result<String, BundleError> {
    let pushed = client
        .push_artifact(to, CONFIG_MEDIA_TYPE, b"{}".to_vec(), files)
        .await
        .map_err(|e| BundleError::Registry(e.to_string()))?;
    Ok(pushed.by_digest())
}

/// A file's title: its path from the pushed directory's parent (`policy/lib/k8s.rego` for
/// `/src/policy`, `data/teams/x.yaml` for `--data /src/data`), so a bundle pulls into the same
/// tree wherever it was pushed from. Never an absolute path, which oras (and so `conftest pull`)
/// refuses.
fn title(base: &Path, file: &Path) -> String {
    let root = if base.is_dir() {
        base
    } else {
        base.parent().unwrap_or(base)
    };
    let name = if base.is_dir() {
        base.file_name().map(PathBuf::from).unwrap_or_default()
    } else {
        PathBuf::new()
    };
    let rel = file.strip_prefix(root).unwrap_or(file);
    name.join(rel)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Where a layer's title puts it under `dir`; a title that would leave `dir` is refused.
fn place(dir: &Path, title: &str) -> Result<PathBuf, BundleError> {
    let rel = Path::new(title);
    let ok = !title.is_empty()
        && rel
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !ok {
        return Err(BundleError::Title(title.to_string()));
    }
    Ok(dir.join(rel))
}

/// A pulled bundle: where its files went.
#[derive(Debug, Default)]
pub struct Pulled {
    /// The manifest digest read.
    pub digest: String,
    /// Policy files written.
    pub policies: Vec<PathBuf>,
    /// Data files written.
    pub data: Vec<PathBuf>,
    /// The directory the data files share (the data directory that was pushed): `-d` on it
    /// loads them as `-d` on the original did (OPA loads a file under its directory's path).
    pub data_root: Option<PathBuf>,
}

/// Fetches the bundle at `from` into `dir`; with `keys` (named as given), only after one of its
/// cosign signatures verifies with one of them.
pub async fn fetch(
    client: &Registry,
    from: &str,
    dir: &Path,
    keys: &[(String, p256::ecdsa::VerifyingKey)],
) -> Result<Pulled, BundleError> {
    let registry = |e: String| BundleError::Registry(e);
    let resolved = client
        .resolve(from)
        .await
        .map_err(|e| registry(e.to_string()))?;
    if !keys.is_empty() {
        let mut trust = crate::Trust::default();
        for (name, key) in keys {
            trust.signers.push(crate::Signer::Key {
                name: name.clone(),
                key: *key,
            });
        }
        let sigs = client
            .signatures(&resolved)
            .await
            .map_err(|e| registry(e.to_string()))?;
        let mut why = Vec::new();
        let verified =
            sigs.layers
                .iter()
                .any(|l| match crate::verify(l, &resolved.digest, &trust) {
                    Ok(_) => true,
                    Err(e) => {
                        why.push(e.to_string());
                        false
                    }
                });
        if !verified {
            why.extend(sigs.unreadable.iter().map(ToString::to_string));
            return Err(BundleError::Unsigned {
                bundle: resolved.by_digest(),
                keys: keys
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                why: if why.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", why.join("; "))
                },
            });
        }
    }
    let (config, files) = client
        .pull_artifact(&resolved)
        .await
        .map_err(|e| registry(e.to_string()))?;
    if config != CONFIG_MEDIA_TYPE && !files.iter().any(|f| f.media_type == POLICY_MEDIA_TYPE) {
        return Err(BundleError::NotABundle(resolved.by_digest(), config));
    }
    write_bundle(dir, resolved.digest.clone(), files)
}

/// Writes pulled files under `dir`, each where its title puts it.
fn write_bundle(
    dir: &Path,
    digest: String,
    files: Vec<ArtifactFile>,
) -> Result<Pulled, BundleError> {
    let mut out = Pulled {
        digest,
        ..Pulled::default()
    };
    let mut data_dirs: Option<Vec<String>> = None;
    for f in files {
        let path = place(dir, &f.title)?;
        if f.media_type == DATA_MEDIA_TYPE {
            let parts: Vec<String> = f.title.split('/').map(str::to_string).collect();
            let parent = parts
                .get(..parts.len().saturating_sub(1))
                .unwrap_or(&[])
                .to_vec();
            data_dirs = Some(match data_dirs {
                None => parent,
                Some(common) => common
                    .into_iter()
                    .zip(parent)
                    .take_while(|(a, b)| a == b)
                    .map(|(a, _)| a)
                    .collect(),
            });
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, &f.bytes).map_err(io(&path))?;
        match f.media_type.as_str() {
            POLICY_MEDIA_TYPE => out.policies.push(path),
            DATA_MEDIA_TYPE => out.data.push(path),
            _ => {}
        }
    }
    out.data_root = data_dirs.map(|d| d.iter().fold(dir.to_path_buf(), |p, c| p.join(c)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn titles_stay_inside_the_directory() {
        let d = Path::new("/tmp/pulled");
        assert_eq!(
            place(d, "policy/main.rego").ok(),
            Some(d.join("policy/main.rego"))
        );
        assert_eq!(place(d, "./a.rego").ok(), Some(d.join("./a.rego")));
        for bad in ["../escape.rego", "policy/../../x", "/etc/passwd", ""] {
            assert!(place(d, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn titles_are_relative_to_the_pushed_directory() {
        let dir = std::env::temp_dir().join(format!("sostle-title-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("policy/lib")).unwrap();
        let f = dir.join("policy/lib/k8s.rego");
        std::fs::write(&f, "package lib.k8s\n").unwrap();
        assert_eq!(title(&dir.join("policy"), &f), "policy/lib/k8s.rego");
        assert_eq!(title(&f, &f), "k8s.rego");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn references_get_latest_when_they_name_no_tag() {
        assert_eq!(
            reference("oci://127.0.0.1:5000/p/team"),
            "127.0.0.1:5000/p/team:latest"
        );
        assert_eq!(
            reference("127.0.0.1:5000/p/team:v1"),
            "127.0.0.1:5000/p/team:v1"
        );
        assert_eq!(
            reference("ghcr.io/p/team@sha256:ab"),
            "ghcr.io/p/team@sha256:ab"
        );
    }
}
