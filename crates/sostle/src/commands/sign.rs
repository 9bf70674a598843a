//! `sostle key generate|import`, `sostle sign`, `sostle verify-image`: cosign's formats, done by
//! `sostle-sign`; this file resolves flags, calls it and prints.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use sostle_sign::keys;
use sostle_sign::payload::SimpleSigning;
use sostle_sign::registry::{Credentials, Options, Registry};
use sostle_sign::{RekorKey, SignatureLayer, Signer, Trust};

use crate::cli::{
    ImageVerifyFormat as VerifyFormat, KeyCommand, RegistryArgs, SignArgs, VerifyImageArgs,
};

/// The password for cosign keys: `COSIGN_PASSWORD`, which must be set (it may be empty).
fn password(for_what: &str) -> anyhow::Result<Vec<u8>> {
    match std::env::var_os(keys::PASSWORD_ENV) {
        Some(p) => Ok(p.into_encoded_bytes()),
        None => bail!(
            "{for_what}: set {} to the key's password (an empty value is allowed, as with cosign)",
            keys::PASSWORD_ENV
        ),
    }
}

/// Reads a private key for signing: cosign's encrypted key (password from COSIGN_PASSWORD) or
/// a plain PKCS#8 PEM. Errors name the file.
pub fn read_private_key(path: &Path) -> anyhow::Result<p256::ecdsa::SigningKey> {
    let pem = std::fs::read(path).with_context(|| format!("--key {}", path.display()))?;
    let password = if keys::is_encrypted(&pem) {
        password(&format!("--key {}", path.display()))?
    } else {
        Vec::new()
    };
    keys::load_private_key(&pem, &password).map_err(|e| anyhow!("--key {}: {e}", path.display()))
}

fn write_key_pair(
    dir: &Path,
    key: &p256::ecdsa::SigningKey,
    stem: &str,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    let key_path = dir.join(format!("{stem}.key"));
    let pub_path = dir.join(format!("{stem}.pub"));
    for p in [&key_path, &pub_path] {
        if p.exists() {
            bail!("{} exists; refusing to overwrite a key", p.display());
        }
    }
    let password = password("the new key")?;
    let pem = keys::encrypt_private_key(key, &password).map_err(|e| anyhow!("{e}"))?;
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key_path)
            .with_context(|| format!("{}", key_path.display()))?;
        f.write_all(pem.as_bytes())?;
    }
    std::fs::write(&pub_path, keys::public_key_pem(key.verifying_key()))
        .with_context(|| format!("{}", pub_path.display()))?;
    Ok((key_path, pub_path))
}

/// `sostle key generate|import`.
pub fn key(cmd: KeyCommand) -> anyhow::Result<u8> {
    let (key_path, pub_path) = match cmd {
        KeyCommand::Generate { out } => write_key_pair(&out, &keys::generate(), "cosign")?,
        KeyCommand::Import { file, out } => {
            let pem = std::fs::read(&file).with_context(|| format!("{}", file.display()))?;
            let key =
                keys::load_importable_key(&pem).map_err(|e| anyhow!("{}: {e}", file.display()))?;
            write_key_pair(&out, &key, "import-cosign")?
        }
    };
    println!("{}\n{}", key_path.display(), pub_path.display());
    Ok(crate::exit::OK)
}

/// A registry client from the registry flags.
pub(crate) fn registry(args: &RegistryArgs) -> anyhow::Result<Registry> {
    let mut ca = Vec::new();
    for f in &args.registry_ca {
        let pem = std::fs::read(f).with_context(|| format!("--registry-ca {}", f.display()))?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            bail!("--registry-ca {}: not a PEM certificate", f.display());
        }
        ca.push(pem);
    }
    if args.registry_timeout == 0 {
        bail!("--registry-timeout: must be at least 1 second");
    }
    Registry::new(Options {
        insecure: args.insecure_registry.clone(),
        extra_ca_pem: ca,
        timeout: Duration::from_secs(args.registry_timeout),
        credentials: Credentials::DockerConfig,
    })
    .map_err(|e| anyhow!("{e}"))
}

/// A small runtime for the registry calls of one command.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the I/O runtime")
}

/// Logs a signature over `payload` in the Rekor of `args`, else of the config's `rekor`
/// section (nothing when neither names one). A log that cannot be reached is a warning unless
/// required; a refusal or an answer that does not verify is an error.
pub(crate) fn log_in_rekor(
    args: &crate::cli::RekorArgs,
    config: &sostle_core::config::RekorSpec,
    payload: &[u8],
    signature_b64: &str,
    key: &p256::ecdsa::VerifyingKey,
    timeout: Duration,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<Option<sostle_sign::rekor::Logged>> {
    let Some(url) = args.rekor_url.as_ref().or(config.url.as_ref()) else {
        return Ok(None);
    };
    let log_key = match (&args.rekor_key, &config.key) {
        (Some(f), _) => {
            let pem = std::fs::read(f).with_context(|| format!("--rekor-key {}", f.display()))?;
            Some(
                RekorKey::from_pem(&pem)
                    .map_err(|e| anyhow!("--rekor-key {}: {e}", f.display()))?,
            )
        }
        (None, Some(pem)) => {
            Some(RekorKey::from_pem(pem.as_bytes()).map_err(|e| anyhow!("rekor.key: {e}"))?)
        }
        (None, None) => None,
    };
    let required = args.rekor_required || config.required;
    let entry =
        sostle_sign::rekor::hashedrekord(payload, signature_b64, &keys::public_key_pem(key));
    match rt.block_on(sostle_sign::rekor::upload(
        url,
        &entry,
        log_key.as_ref(),
        timeout,
    )) {
        Ok(logged) => Ok(Some(logged)),
        Err(e @ sostle_sign::rekor::RekorError::Unavailable(..)) if !required => {
            eprintln!("warning: {e}; not logged (--rekor-required makes this an error)");
            Ok(None)
        }
        Err(e) => bail!("{e}"),
    }
}

/// `sostle sign IMAGE --key FILE`.
pub fn sign(args: &SignArgs) -> anyhow::Result<u8> {
    let key = read_private_key(&args.key)?;
    let client = registry(&args.registry)?;
    let rt = runtime()?;
    let image = rt
        .block_on(client.resolve(&args.image))
        .map_err(|e| anyhow!("{e}"))?;
    // cosign names the repository, not the tag, in the payload.
    let reference = format!("{}/{}", image.registry, image.repository);
    let payload = SimpleSigning::new(&reference, &image.digest).to_bytes();
    let sig: p256::ecdsa::DerSignature = key.sign(&payload);
    let mut layer = SignatureLayer {
        payload,
        signature: base64::engine::general_purpose::STANDARD.encode(sig.as_bytes()),
        ..SignatureLayer::default()
    };
    let config = crate::settings::config(args.config.as_deref())?;
    if let Some(bundle) = log_in_rekor(
        &args.rekor,
        &config.rekor,
        &layer.payload,
        &layer.signature,
        key.verifying_key(),
        Duration::from_secs(args.registry.registry_timeout),
        &rt,
    )? {
        layer.bundle = Some(bundle.bundle);
        eprintln!("logged in Rekor: {}", bundle.entry_url);
    }
    let manifest = rt
        .block_on(client.push_signature(&image, &layer))
        .map_err(|e| anyhow!("{e}"))?;
    println!(
        "signed {} with key {}\nstored at {}/{}:{} ({manifest})",
        image.by_digest(),
        keys::key_id(key.verifying_key()),
        image.registry,
        image.repository,
        image.signature_tag()
    );
    Ok(crate::exit::OK)
}

#[derive(serde::Serialize)]
struct VerifyReport {
    image: String,
    digest: String,
    signatures: String,
    verified: Vec<Verified>,
    refused: Vec<Refused>,
}

#[derive(serde::Serialize)]
struct Verified {
    signature: usize,
    #[serde(flatten)]
    verified: sostle_sign::Verified,
}

#[derive(serde::Serialize)]
struct Refused {
    signature: Option<usize>,
    reason: String,
}

/// `sostle verify-image IMAGE (--key FILE | keyless flags)`.
pub fn verify_image(args: &VerifyImageArgs) -> anyhow::Result<u8> {
    let mut trust = Trust::default();
    if let Some(k) = &args.key {
        let pem = std::fs::read(k).with_context(|| format!("--key {}", k.display()))?;
        let key = keys::load_public_key(&pem).map_err(|e| anyhow!("--key {}: {e}", k.display()))?;
        trust.signers.push(Signer::Key {
            name: k.display().to_string(),
            key,
        });
    }
    if let Some(identity) = &args.certificate_identity {
        let issuer = args
            .certificate_oidc_issuer
            .clone()
            .ok_or_else(|| anyhow!("--certificate-identity needs --certificate-oidc-issuer"))?;
        let mut roots = Vec::new();
        for f in &args.fulcio_root {
            let pem = std::fs::read(f).with_context(|| format!("--fulcio-root {}", f.display()))?;
            let certs = x509_cert::Certificate::load_pem_chain(&pem).map_err(|e| {
                anyhow!("--fulcio-root {}: not PEM certificates ({e})", f.display())
            })?;
            roots.extend(certs);
        }
        trust.signers.push(Signer::Keyless {
            name: identity.clone(),
            identity: identity.clone(),
            issuer,
            roots,
        });
    }
    if let Some(r) = &args.rekor_key {
        let pem = std::fs::read(r).with_context(|| format!("--rekor-key {}", r.display()))?;
        trust.rekor.push(
            RekorKey::from_pem(&pem).map_err(|e| anyhow!("--rekor-key {}: {e}", r.display()))?,
        );
    }
    let client = registry(&args.registry)?;
    let rt = runtime()?;
    let image = rt
        .block_on(client.resolve(&args.image))
        .map_err(|e| anyhow!("{e}"))?;
    let sigs = rt
        .block_on(client.signatures(&image))
        .map_err(|e| anyhow!("{e}"))?;
    let mut report = VerifyReport {
        image: image.by_digest(),
        digest: image.digest.clone(),
        signatures: format!(
            "{}/{}:{}",
            image.registry,
            image.repository,
            image.signature_tag()
        ),
        verified: Vec::new(),
        refused: Vec::new(),
    };
    for (i, l) in sigs.layers.iter().enumerate() {
        match sostle_sign::verify(l, &image.digest, &trust) {
            Ok(v) => report.verified.push(Verified {
                signature: i + 1,
                verified: v,
            }),
            Err(reason) => report.refused.push(Refused {
                signature: Some(i + 1),
                reason: reason.to_string(),
            }),
        }
    }
    for u in &sigs.unreadable {
        report.refused.push(Refused {
            signature: None,
            reason: u.clone(),
        });
    }
    let mut out = std::io::stdout().lock();
    match args.output {
        VerifyFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        VerifyFormat::Human => {
            let total = sigs.layers.len() + sigs.unreadable.len();
            if total == 0 {
                writeln!(
                    out,
                    "{}: no signatures (nothing at {})",
                    report.image, report.signatures
                )?;
            } else {
                writeln!(
                    out,
                    "{}: {} of {total} signatures verified",
                    report.image,
                    report.verified.len()
                )?;
            }
            for v in &report.verified {
                let when = v
                    .verified
                    .integrated_time
                    .and_then(|t| jiff::Timestamp::from_second(t).ok())
                    .map(|t| format!(", logged {t}"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "  ok      signature {}: {} (docker-reference {}{when})",
                    v.signature, v.verified.by, v.verified.docker_reference
                )?;
            }
            for r in &report.refused {
                match r.signature {
                    Some(n) => writeln!(out, "  refused signature {n}: {}", r.reason)?,
                    None => writeln!(out, "  refused {}", r.reason)?,
                }
            }
        }
    }
    Ok(if report.verified.is_empty() {
        crate::exit::FAIL
    } else {
        crate::exit::OK
    })
}
