//! What the requests share: the config, engine and signed profiles loaded (and reloaded
//! atomically), and the state handed to every handler.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use sostle_core::mecipol::{LockSet, Profile};
use sostle_core::{Config, Engine};

use crate::{LoadError, Metrics, Settings};

/// What one load of config and profiles produced.
#[derive(Debug)]
pub struct Loaded {
    /// The engine.
    pub engine: Engine,
    /// The verified locks, when a profiles directory is configured (without one the lock
    /// check is static, as in the CLI without a ledger).
    pub locks: Option<LockSet>,
    /// Profiles refused at load (file and reason).
    pub refused: Vec<(String, String)>,
    /// The token secret: `Settings::token_secret` (the environment), else the config's.
    pub token_secret: Option<Vec<u8>>,
    /// The key files the config's `crew[].keys` named (watched for changes like the config).
    pub key_files: Vec<PathBuf>,
    /// The registry checker: image signatures (when the config's `images` policy requires
    /// them) and MECIPOL attestations (when `locks` are read from registries).
    pub images: Option<Arc<sostle_sign::checker::Checker>>,
}

/// Loads config and profiles; nothing is applied unless everything needed loads.
pub fn load(settings: &Settings) -> Result<Loaded, LoadError> {
    load_observed(settings, Arc::new(sostle_sign::checker::Silent), None)
}

/// [`load`], with image checks reported to `observe`; the checker of `previous` (and so its
/// cache) is kept when the `images` policy did not change.
pub fn load_observed(
    settings: &Settings,
    observe: Arc<dyn sostle_sign::checker::Observe>,
    previous: Option<&Loaded>,
) -> Result<Loaded, LoadError> {
    let read_keys = std::cell::RefCell::new(Vec::new());
    let config = match &settings.config_path {
        None => Config::default(),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|error| LoadError::Read {
                path: p.clone(),
                error,
            })?;
            let reader = key_file_reader(p);
            let recording = |name: &str| {
                read_keys.borrow_mut().push(key_path(p, name));
                reader(name)
            };
            Config::from_yaml_with(&text, &recording).map_err(|e| LoadError::Config {
                path: p.clone(),
                line: e.line,
                col: e.col,
                message: e.to_string(),
            })?
        }
    };
    let (profiles, refused) = match &settings.profiles_dir {
        None => (Vec::new(), Vec::new()),
        Some(dir) => {
            let key = settings.public_key.as_ref().ok_or(LoadError::NoPublicKey)?;
            load_profiles(dir, key)?
        }
    };
    let token_secret = settings
        .token_secret
        .clone()
        .or_else(|| config.token_secret.clone().map(String::into_bytes));
    let images = if !config.images.enabled() && !config.locks.from_registry() {
        None
    } else if let Some(same) = previous
        .and_then(|p| p.images.as_ref())
        .filter(|c| c.policy() == (&config.images, &config.locks))
    {
        Some(same.clone())
    } else {
        let checker = sostle_sign::checker::Checker::new(&config.images, &config.locks, observe)
            .map_err(|e| LoadError::Registry {
                path: settings.config_path.clone(),
                message: e.to_string(),
            })?;
        Some(Arc::new(checker))
    };
    Ok(Loaded {
        locks: settings
            .profiles_dir
            .as_ref()
            .map(|_| LockSet::new(profiles)),
        images,
        engine: Engine::new(Arc::new(config)),
        refused,
        token_secret,
        key_files: read_keys.into_inner(),
    })
}

/// Why a stored profile is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The profile file cannot be read.
    #[error("{0}")]
    Read(std::io::Error),
    /// Its `.sig` file cannot be read.
    #[error("no signature ({}: {error})", path.display())]
    NoSignature {
        /// The signature file.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// The signature does not verify, or the profile does not decode.
    #[error("{0}")]
    Refused(sostle_core::mecipol::ProfileRefusal),
}

/// Reads a key file named in a config's `crew[].keys`: a relative path is relative to the
/// directory of the config file (so a config and its keys move together).
pub fn key_file_reader(
    config_path: &Path,
) -> impl Fn(&str) -> Result<String, sostle_core::config::KeyReadError> + '_ {
    move |name: &str| {
        let full = key_path(config_path, name);
        std::fs::read_to_string(&full)
            .map_err(|error| sostle_core::config::KeyReadError::Unreadable { path: full, error })
    }
}

/// Where a key file named in a config is: relative to the config file's directory.
pub(crate) fn key_path(config_path: &Path, name: &str) -> PathBuf {
    let p = Path::new(name);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        config_path
            .parent()
            .unwrap_or_else(|| Path::new(""))
            .join(p)
    }
}

/// Verified profiles, and refused ones with the reason.
pub type LoadedProfiles = (Vec<Profile>, Vec<(String, String)>);

/// Reads and verifies every `profile-*.json` in `dir`. A profile whose signature does not
/// verify is refused (returned with the reason), never used.
pub fn load_profiles(dir: &Path, public_key: &Path) -> Result<LoadedProfiles, LoadError> {
    use p256::pkcs8::DecodePublicKey;
    let pem = std::fs::read_to_string(public_key).map_err(|error| LoadError::Read {
        path: public_key.to_path_buf(),
        error,
    })?;
    let key =
        p256::ecdsa::VerifyingKey::from_public_key_pem(&pem).map_err(|e| LoadError::PublicKey {
            path: public_key.to_path_buf(),
            message: e.to_string(),
        })?;
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|error| LoadError::Read {
            path: dir.to_path_buf(),
            error,
        })?
        // An entry that cannot be read is a load error, not a profile silently left out.
        .map(|e| {
            e.map(|e| e.path()).map_err(|error| LoadError::Read {
                path: dir.to_path_buf(),
                error,
            })
        })
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("profile-") && n.ends_with(".json"))
        })
        .collect();
    names.sort();
    let mut ok = Vec::new();
    let mut refused = Vec::new();
    for path in names {
        let name = path.display().to_string();
        let check = || -> Result<Profile, ProfileError> {
            let bytes = std::fs::read(&path).map_err(ProfileError::Read)?;
            let sig_path = PathBuf::from(format!("{name}.sig"));
            let b64 =
                std::fs::read_to_string(&sig_path).map_err(|error| ProfileError::NoSignature {
                    path: sig_path,
                    error,
                })?;
            sostle_core::mecipol::verify_stored(&bytes, &b64, &key).map_err(ProfileError::Refused)
        };
        match check() {
            Ok(p) => ok.push(p),
            Err(why) => {
                tracing::error!(profile = %name, reason = %why, "profile refused");
                refused.push((name, why.to_string()));
            }
        }
    }
    ok.sort_by_key(|p| p.seq().unwrap_or(0));
    Ok((ok, refused))
}

/// Shared state of all requests.
#[derive(Debug)]
pub struct AppState {
    current: RwLock<Arc<Loaded>>,
    /// Settings.
    pub settings: Settings,
    /// Metrics.
    pub metrics: Metrics,
    pub(crate) permits: Arc<tokio::sync::Semaphore>,
    pub(crate) ready: AtomicBool,
}

impl AppState {
    /// Builds the state from a first successful load.
    pub fn new(settings: Settings) -> Result<Arc<AppState>, LoadError> {
        let metrics = Metrics::new();
        let loaded = load_observed(&settings, metrics.images.clone(), None)?;
        metrics.profiles.set(
            i64::try_from(loaded.locks.as_ref().map_or(0, |l| l.profiles.len()))
                .unwrap_or(i64::MAX),
        );
        for _ in &loaded.refused {
            metrics.error("profile_refused");
        }
        Ok(Arc::new(AppState {
            current: RwLock::new(Arc::new(loaded)),
            permits: Arc::new(tokio::sync::Semaphore::new(settings.max_concurrency.max(1))),
            settings,
            metrics,
            ready: AtomicBool::new(true),
        }))
    }

    /// The config and locks in use.
    pub fn loaded(&self) -> Arc<Loaded> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reloads config and profiles; on error the old ones stay and the error is returned.
    pub fn reload(&self) -> Result<(), LoadError> {
        let previous = self.loaded();
        match load_observed(&self.settings, self.metrics.images.clone(), Some(&previous)) {
            Ok(l) => {
                self.metrics.profiles.set(
                    i64::try_from(l.locks.as_ref().map_or(0, |x| x.profiles.len()))
                        .unwrap_or(i64::MAX),
                );
                for _ in &l.refused {
                    self.metrics.error("profile_refused");
                }
                match self.current.write() {
                    Ok(mut g) => *g = Arc::new(l),
                    Err(poisoned) => *poisoned.into_inner() = Arc::new(l),
                }
                self.metrics.reload("ok");
                tracing::info!("config and profiles reloaded");
                Ok(())
            }
            Err(e) => {
                self.metrics.reload("error");
                self.metrics.error("reload");
                tracing::error!(error = %e, "reload refused; keeping the previous config");
                Err(e)
            }
        }
    }

    /// Reserves one evaluation slot until the permit is dropped (maintenance drills and tests:
    /// with every slot held, requests hit the time cap and take the internal-error path).
    pub fn reserve_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }

    /// Marks the webhook not ready (draining).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }
}
