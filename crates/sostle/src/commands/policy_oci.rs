//! Policies in an OCI registry, in conftest's artifact format (`conftest push` / `pull`): one
//! layer per `.rego` file (`application/vnd.cncf.openpolicyagent.policy.layer.v1+rego`) and per
//! data file (`…data.layer.v1+json`), each titled with its path, under oras's empty config. So
//! `sostle policy push` is read by `conftest pull`, and what `conftest push` stored is read by
//! `sostle policy pull` and `sostle test --policy oci://REF` — which can first require a cosign
//! signature on the bundle (`--policy-key`, made with `sostle sign` or `cosign sign`).

use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use sostle_sign::registry::ArtifactFile;

use crate::cli::RegistryArgs;

/// The config oras writes for an artifact of no known type, as conftest pushes it.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.unknown.config.v1+json";
/// A Rego policy file.
pub const POLICY_MEDIA_TYPE: &str = "application/vnd.cncf.openpolicyagent.policy.layer.v1+rego";
/// A data document (JSON or YAML, stored as written).
pub const DATA_MEDIA_TYPE: &str = "application/vnd.cncf.openpolicyagent.data.layer.v1+json";

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

fn walk(dir: &Path, keep: &dyn Fn(&Path) -> bool, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if dir.is_file() {
        out.push(dir.to_path_buf());
        return Ok(());
    }
    let mut items: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("{}", dir.display()))?;
    items.sort();
    for p in items {
        if p.is_dir() {
            walk(&p, keep, out)?;
        } else if keep(&p) {
            out.push(p);
        }
    }
    Ok(())
}

fn has_ext(p: &Path, exts: &[&str]) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| exts.contains(&e))
}

/// `sostle policy push DIR REF [--data DIR]`.
pub fn push(
    dir: &Path,
    to: &str,
    data: Option<&Path>,
    registry: &RegistryArgs,
) -> anyhow::Result<u8> {
    let mut files = Vec::new();
    let mut rego = Vec::new();
    walk(dir, &|p| has_ext(p, &["rego"]), &mut rego)?;
    if rego.is_empty() {
        bail!("no .rego files in {}", dir.display());
    }
    let mut docs = Vec::new();
    walk(
        data.unwrap_or(dir),
        &|p| has_ext(p, &["json", "yaml", "yml"]),
        &mut docs,
    )?;
    for (paths, base, media_type) in [
        (&rego, dir, POLICY_MEDIA_TYPE),
        (&docs, data.unwrap_or(dir), DATA_MEDIA_TYPE),
    ] {
        for p in paths {
            files.push(ArtifactFile {
                media_type: media_type.to_string(),
                title: title(base, p),
                bytes: std::fs::read(p).with_context(|| format!("{}", p.display()))?,
            });
        }
    }
    let client = crate::commands::sign::registry(registry)?;
    let rt = crate::commands::sign::runtime()?;
    let to = reference(to);
    let pushed = rt
        .block_on(client.push_artifact(&to, CONFIG_MEDIA_TYPE, b"{}".to_vec(), files))
        .map_err(|e| anyhow!("{e}"))?;
    println!(
        "pushed {} ({} policies, {} data files): {}",
        to,
        rego.len(),
        docs.len(),
        pushed.by_digest()
    );
    Ok(crate::exit::OK)
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
fn place(dir: &Path, title: &str) -> anyhow::Result<PathBuf> {
    let rel = Path::new(title);
    let ok = !title.is_empty()
        && rel
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !ok {
        bail!(
            "layer title `{title}` is not a relative path inside the bundle; refusing to write it"
        );
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

/// Fetches the bundle at `from` into `dir`; with `keys`, only after one of its cosign
/// signatures verifies with one of them.
pub fn fetch(
    from: &str,
    dir: &Path,
    registry: &RegistryArgs,
    keys: &[PathBuf],
) -> anyhow::Result<Pulled> {
    let client = crate::commands::sign::registry(registry)?;
    let rt = crate::commands::sign::runtime()?;
    let from = reference(from);
    let resolved = rt
        .block_on(client.resolve(&from))
        .map_err(|e| anyhow!("{e}"))?;
    if !keys.is_empty() {
        let mut trust = sostle_sign::Trust::default();
        for k in keys {
            let pem = std::fs::read(k).with_context(|| format!("--policy-key {}", k.display()))?;
            let key = sostle_sign::keys::load_public_key(&pem)
                .map_err(|e| anyhow!("--policy-key {}: {e}", k.display()))?;
            trust.signers.push(sostle_sign::Signer::Key {
                name: k.display().to_string(),
                key,
            });
        }
        let sigs = rt
            .block_on(client.signatures(&resolved))
            .map_err(|e| anyhow!("{e}"))?;
        let mut why = Vec::new();
        let verified =
            sigs.layers
                .iter()
                .any(|l| match sostle_sign::verify(l, &resolved.digest, &trust) {
                    Ok(_) => true,
                    Err(e) => {
                        why.push(e.to_string());
                        false
                    }
                });
        if !verified {
            why.extend(sigs.unreadable.iter().cloned());
            bail!(
                "policy bundle {} has no signature by {}{}",
                resolved.by_digest(),
                keys.iter()
                    .map(|k| k.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                if why.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", why.join("; "))
                }
            );
        }
    }
    let (config, files) = rt
        .block_on(client.pull_artifact(&resolved))
        .map_err(|e| anyhow!("{e}"))?;
    if config != CONFIG_MEDIA_TYPE && !files.iter().any(|f| f.media_type == POLICY_MEDIA_TYPE) {
        bail!(
            "{} is not a policy bundle (config {config}, no {POLICY_MEDIA_TYPE} layer)",
            resolved.by_digest()
        );
    }
    let mut out = Pulled {
        digest: resolved.digest.clone(),
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
            std::fs::create_dir_all(parent).with_context(|| format!("{}", parent.display()))?;
        }
        std::fs::write(&path, &f.bytes).with_context(|| format!("{}", path.display()))?;
        match f.media_type.as_str() {
            POLICY_MEDIA_TYPE => out.policies.push(path),
            DATA_MEDIA_TYPE => out.data.push(path),
            _ => {}
        }
    }
    out.data_root = data_dirs.map(|d| d.iter().fold(dir.to_path_buf(), |p, c| p.join(c)));
    Ok(out)
}

/// `sostle policy pull REF DIR`.
pub fn pull(
    from: &str,
    dir: &Path,
    registry: &RegistryArgs,
    keys: &[PathBuf],
) -> anyhow::Result<u8> {
    let p = fetch(from, dir, registry, keys)?;
    for f in p.policies.iter().chain(&p.data) {
        println!("{}", f.display());
    }
    eprintln!(
        "pulled {} ({}): {} policies, {} data files",
        reference(from),
        p.digest,
        p.policies.len(),
        p.data.len()
    );
    Ok(crate::exit::OK)
}

#[cfg(test)]
mod tests {
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
