//! `sostle policy push | pull` and `sostle test --policy oci://REF`: conftest's policy bundles
//! (`sostle_sign::bundle`) in a registry, with the flags resolved here.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use sostle_sign::bundle::{self, Pulled};

use crate::cli::RegistryArgs;

/// `sostle policy push DIR REF [--data DIR]`.
pub fn push(
    dir: &Path,
    to: &str,
    data: Option<&Path>,
    registry: &RegistryArgs,
) -> anyhow::Result<u8> {
    let within = |d: &Path| format!("{}", d.display());
    let rego = sostle_rego::policy_files(dir).with_context(|| within(dir))?;
    let data_dir = data.unwrap_or(dir);
    let docs = sostle_rego::data_files(data_dir).with_context(|| within(data_dir))?;
    let files = bundle::bundle(dir, data, &rego, &docs)?;
    let (policies, data_files) = (rego.len(), docs.len());
    let client = crate::commands::sign::registry(registry)?;
    let rt = crate::commands::sign::runtime()?;
    let to = bundle::reference(to);
    let pushed = rt.block_on(bundle::push(&client, &to, files))?;
    println!("pushed {to} ({policies} policies, {data_files} data files): {pushed}");
    Ok(crate::exit::OK)
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
    let mut trusted = Vec::with_capacity(keys.len());
    for k in keys {
        let pem = std::fs::read(k).with_context(|| format!("--policy-key {}", k.display()))?;
        let key = sostle_sign::keys::load_public_key(&pem)
            .map_err(|e| anyhow!("--policy-key {}: {e}", k.display()))?;
        trusted.push((k.display().to_string(), key));
    }
    Ok(rt.block_on(bundle::fetch(
        &client,
        &bundle::reference(from),
        dir,
        &trusted,
    ))?)
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
        bundle::reference(from),
        p.digest,
        p.policies.len(),
        p.data.len()
    );
    Ok(crate::exit::OK)
}
