//! The admission webhook (SPEC §10): AdmissionReview v1 in, the engine's decision out — the
//! same decision `sostle test` reaches on the same object.
//!
//! `router()` serves `POST /validate/{layer}`, `POST /mutate/{layer}`, `GET /healthz`,
//! `GET /readyz` and `GET /metrics`. The layer comes from the path: the API server calls the
//! webhook entry whose `namespaceSelector` matched the namespace's `sostle-layer` label, so no
//! lookup is needed per request. Each request takes a semaphore permit and is evaluated on a
//! blocking thread with a time cap below the API server's timeout; errors map to HTTP in one
//! place ([`ApiError`]); an internal failure denies at L3 and above and admits with a warning
//! below (configurable). Config and signed MECIPOL profiles are swapped in atomically by
//! [`AppState::reload`]; a bad new config is refused and the old one kept.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use jiff::Timestamp;
use kube_core::admission::{AdmissionRequest, Operation};
use kube_core::{ApiResource, DynamicResourceScope, ObjectMeta, Resource, TypeMeta};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde_json::{json, Value as J};
use sostle_core::eval::{LockRegistry, NoLabels, UNGOVERNED};
use sostle_core::exemption::PREFIX as EXEMPT_PREFIX;
use sostle_core::layer::LayerSet;
use sostle_core::mecipol::{LockProblem, LockSet, Profile};
use sostle_core::policies::{Group, Workload};
use sostle_core::yaml::{Entry, Node, Pos, Value};
use sostle_core::{Config, Engine, EvalContext, Layer, Outcome};

/// Largest AdmissionReview body accepted (larger: 413).
pub const MAX_BODY: usize = 3 * 1024 * 1024;
/// Stack of the threads that decode and evaluate reviews: the decoder recurses once per level
/// of nesting (at most `sostle_core::yaml::MAX_JSON_DEPTH`), and debug builds use far larger
/// frames than release ones; the memory is reserved, not used, until needed.
pub const STACK_SIZE: usize = 8 << 20;
/// Longest warning sent back (the API server shows them to `kubectl` users).
pub const MAX_WARNING: usize = 120;

/// How the webhook runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The SostleConfig file, if any (else the built-in default).
    pub config_path: Option<PathBuf>,
    /// Directory of signed MECIPOL profiles (`profile-NNN.json` + `.json.sig`).
    pub profiles_dir: Option<PathBuf>,
    /// Public key (SPKI PEM) the profiles must verify against.
    pub public_key: Option<PathBuf>,
    /// Token secret for the L4 gate.
    pub token_secret: Option<Vec<u8>>,
    /// Time cap on one evaluation (keep it below the webhook's `timeoutSeconds`).
    pub eval_timeout: Duration,
    /// Concurrent evaluations.
    pub max_concurrency: usize,
    /// Layers at which an internal error admits (with a warning) instead of denying.
    pub fail_open: LayerSet,
    /// Reviews up to this many bytes are evaluated on the request's own task: the native
    /// engine is linear in the object and allocation-light, so a small object costs microseconds
    /// and the hand-off to a blocking thread would cost more than the work. Larger reviews go to
    /// the blocking pool under the semaphore and the time cap. 0 sends every review there.
    pub inline_max_bytes: usize,
}

/// What the server and the manifests that point the API server at it must agree on, in one
/// place (`sostle bootstrap` writes its webhook configurations from these).
pub mod door {
    use sostle_core::layer::LayerSet;
    use sostle_core::Layer;

    /// The port the server listens on in the cluster.
    pub const PORT: u16 = 8443;
    /// The route of the Namespace entry (layer labels only for `layers.writers`).
    pub const NAMESPACES_ROUTE: &str = "/validate/namespaces";

    /// Layers at which an internal error admits with a warning, and whose webhook entries are
    /// `failurePolicy: Ignore`: L0–L2. The others fail closed.
    pub fn fail_open() -> LayerSet {
        LayerSet::range(0, 2)
    }

    /// The route of a layer's entry: `/validate/L3`, `/mutate/trial`.
    pub fn route(kind: &str, layer: Layer) -> String {
        format!("/{kind}/{}", layer.as_str())
    }

    /// The API server's `timeoutSeconds` for a layer's entry: short where a slow answer is
    /// admitted anyway (fail open), longer where it would deny.
    pub fn timeout_seconds(layer: Layer) -> u32 {
        if fail_open().contains(layer) {
            2
        } else {
            5
        }
    }

    /// The time an image's signature check may take within a request: 60 % of the entry's
    /// timeout, so the evaluation and the answer still fit.
    pub fn image_budget(layer: Layer) -> std::time::Duration {
        std::time::Duration::from_millis(u64::from(timeout_seconds(layer)) * 600)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            config_path: None,
            profiles_dir: None,
            public_key: None,
            token_secret: None,
            eval_timeout: Duration::from_millis(1500),
            max_concurrency: 64,
            fail_open: door::fail_open(),
            inline_max_bytes: 16 * 1024,
        }
    }
}

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
pub fn load(settings: &Settings) -> Result<Loaded, String> {
    load_observed(settings, Arc::new(sostle_sign::checker::Silent), None)
}

/// [`load`], with image checks reported to `observe`; the checker of `previous` (and so its
/// cache) is kept when the `images` policy did not change.
pub fn load_observed(
    settings: &Settings,
    observe: Arc<dyn sostle_sign::checker::Observe>,
    previous: Option<&Loaded>,
) -> Result<Loaded, String> {
    let read_keys = std::cell::RefCell::new(Vec::new());
    let config = match &settings.config_path {
        None => Config::default(),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            let reader = key_file_reader(p);
            let recording = |name: &str| {
                read_keys.borrow_mut().push(key_path(p, name));
                reader(name)
            };
            Config::from_yaml_with(&text, &recording)
                .map_err(|e| format!("{}:{}:{}: invalid config: {e}", p.display(), e.line, e.col))?
        }
    };
    let (profiles, refused) = match &settings.profiles_dir {
        None => (Vec::new(), Vec::new()),
        Some(dir) => {
            let key = settings
                .public_key
                .as_ref()
                .ok_or_else(|| "--profiles needs --public-key to verify them".to_string())?;
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
            .map_err(|e| {
                let file = settings
                    .config_path
                    .as_ref()
                    .map(|p| format!("{}: ", p.display()))
                    .unwrap_or_default();
                format!("{file}invalid config: {e}")
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

/// Reads a key file named in a config's `crew[].keys`: a relative path is relative to the
/// directory of the config file (so a config and its keys move together).
pub fn key_file_reader(config_path: &Path) -> impl Fn(&str) -> Result<String, String> + '_ {
    move |name: &str| {
        let full = key_path(config_path, name);
        std::fs::read_to_string(&full)
            .map_err(|e| format!("cannot read key {}: {e}", full.display()))
    }
}

/// Where a key file named in a config is: relative to the config file's directory.
fn key_path(config_path: &Path, name: &str) -> PathBuf {
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
pub fn load_profiles(dir: &Path, public_key: &Path) -> Result<LoadedProfiles, String> {
    use p256::pkcs8::DecodePublicKey;
    let pem = std::fs::read_to_string(public_key)
        .map_err(|e| format!("{}: {e}", public_key.display()))?;
    let key = p256::ecdsa::VerifyingKey::from_public_key_pem(&pem)
        .map_err(|e| format!("{}: not a P-256 public key ({e})", public_key.display()))?;
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
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
        let check = || -> Result<Profile, String> {
            let bytes = std::fs::read(&path).map_err(|e| e.to_string())?;
            let sig_path = PathBuf::from(format!("{name}.sig"));
            let b64 = std::fs::read_to_string(&sig_path)
                .map_err(|e| format!("no signature ({}: {e})", sig_path.display()))?;
            sostle_core::mecipol::verify_stored(&bytes, &b64, &key)
        };
        match check() {
            Ok(p) => ok.push(p),
            Err(why) => {
                tracing::error!(profile = %name, reason = %why, "profile refused");
                refused.push((name, why));
            }
        }
    }
    ok.sort_by_key(|p| {
        p.id.strip_prefix("profile-")
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    });
    Ok((ok, refused))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    layer: &'static str,
    operation: &'static str,
    verdict: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoopLabels {
    event_loop: u64,
}

/// Prometheus metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Histogram,
    reloads: Family<ResultLabels, Counter>,
    errors: Family<KindLabels, Counter>,
    profiles: Gauge,
    connections: Family<LoopLabels, Counter>,
    /// What image signature checks do (shared with the checker).
    pub images: Arc<ImageMetrics>,
}

/// Metrics of image signature checks: cache results, registry latency and failures, verdicts.
#[derive(Debug)]
pub struct ImageMetrics {
    cache: Family<ResultLabels, Counter>,
    registry: Histogram,
    registry_errors: Counter,
    verdicts: Family<ResultLabels, Counter>,
}

impl sostle_sign::checker::Observe for ImageMetrics {
    fn cache(&self, result: &'static str) {
        self.cache
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
    }

    fn registry(&self, seconds: f64, ok: bool) {
        self.registry.observe(seconds);
        if !ok {
            self.registry_errors.inc();
        }
    }

    fn verdict(&self, result: &'static str) {
        self.verdicts
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
    }
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("sostle_webhook");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Histogram::new([
            0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0,
        ]);
        let reloads = Family::<ResultLabels, Counter>::default();
        let errors = Family::<KindLabels, Counter>::default();
        let profiles = Gauge::default();
        let connections = Family::<LoopLabels, Counter>::default();
        registry.register(
            "connections",
            "Connections accepted, by the event loop that serves them",
            connections.clone(),
        );
        registry.register(
            "requests",
            "Admission requests by layer, operation and verdict",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to answer an admission request",
            latency.clone(),
        );
        registry.register(
            "reloads",
            "Config/profile/certificate reloads by result",
            reloads.clone(),
        );
        registry.register("errors", "Errors by kind", errors.clone());
        let images = Arc::new(ImageMetrics {
            cache: Family::default(),
            registry: Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            registry_errors: Counter::default(),
            verdicts: Family::default(),
        });
        registry.register(
            "image_cache",
            "Image signature verdicts by cache result (hit, miss, stale: served during an outage)",
            images.cache.clone(),
        );
        registry.register(
            "registry_request_duration_seconds",
            "Time of registry calls made to check image signatures",
            images.registry.clone(),
        );
        registry.register(
            "registry_errors",
            "Registry calls that failed",
            images.registry_errors.clone(),
        );
        registry.register(
            "image_verifications",
            "Image signature checks by result (verified, unsigned, unavailable)",
            images.verdicts.clone(),
        );
        registry.register(
            "profiles_loaded",
            "Verified MECIPOL profiles in use",
            profiles.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            reloads,
            errors,
            profiles,
            connections,
            images,
        }
    }

    /// Counts a connection handed to event loop `event_loop`.
    pub fn connection(&self, event_loop: usize) {
        self.connections
            .get_or_create(&LoopLabels {
                event_loop: event_loop as u64,
            })
            .inc();
    }

    /// Counts an error of `kind`.
    pub fn error(&self, kind: &str) {
        self.errors
            .get_or_create(&KindLabels { kind: kind.into() })
            .inc();
    }

    /// Counts a reload with `result` (`ok`, `error`, `certificate`).
    pub fn reload(&self, result: &str) {
        self.reloads
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Shared state of all requests.
#[derive(Debug)]
pub struct AppState {
    current: RwLock<Arc<Loaded>>,
    /// Settings.
    pub settings: Settings,
    /// Metrics.
    pub metrics: Metrics,
    permits: Arc<tokio::sync::Semaphore>,
    ready: AtomicBool,
}

impl AppState {
    /// Builds the state from a first successful load.
    pub fn new(settings: Settings) -> Result<Arc<AppState>, String> {
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
    pub fn reload(&self) -> Result<(), String> {
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

/// Errors of the HTTP layer, mapped to status codes in one place.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The body is not an AdmissionReview v1 with a request.
    #[error("malformed AdmissionReview: {0}")]
    BadRequest(String),
    /// The path names no layer.
    #[error("unknown layer `{0}`: use L0…L7 or trial")]
    UnknownLayer(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::UnknownLayer(_) => StatusCode::NOT_FOUND,
        };
        (
            code,
            [(header::CONTENT_TYPE, "application/json")],
            json!({"error": self.to_string()}).to_string(),
        )
            .into_response()
    }
}

/// The router with every route.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(door::NAMESPACES_ROUTE, post(namespaces_handler))
        .route("/validate/{layer}", post(validate_handler))
        .route("/mutate/{layer}", post(mutate_handler))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_handler))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn readyz(State(s): State<Arc<AppState>>) -> Response {
    if s.ready.load(Ordering::SeqCst) {
        "ready".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "draining").into_response()
    }
}

async fn metrics_handler(State(s): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

/// A decision on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Admit?
    pub allowed: bool,
    /// Why not (each failure with its fix).
    pub message: String,
    /// Warnings (each ≤ 120 characters).
    pub warnings: Vec<String>,
    /// JSONPatch operations (mutation).
    pub patch: Vec<J>,
}

impl Decision {
    fn allow() -> Decision {
        Decision {
            allowed: true,
            message: String::new(),
            warnings: Vec::new(),
            patch: Vec::new(),
        }
    }
}

fn clip(s: String) -> String {
    if s.chars().count() <= MAX_WARNING {
        return s;
    }
    let mut out: String = s.chars().take(MAX_WARNING - 1).collect();
    out.push('…');
    out
}

/// The object of an admission request, read straight from the body into the engine's tree
/// (no `serde_json::Value` in between). It is the `T` of kube-core's
/// [`AdmissionRequest`]; [`Resource::meta`] carries the name, generateName and namespace
/// only (labels, annotations and everything else are read from [`tree`](Self::tree), so
/// nothing is copied twice). An object whose metadata the API server could not have sent (a
/// non-string label, say) does not decode.
#[derive(Debug, Clone)]
pub struct AdmissionObject {
    /// The whole object.
    pub tree: Node,
    meta: ObjectMeta,
}

impl AdmissionObject {
    /// Wraps a tree (a JSON object), reading its metadata.
    pub fn from_tree(tree: Node) -> Result<AdmissionObject, String> {
        if tree.as_map().is_none() {
            return Err(format!(
                "the object is a {}, expected a mapping",
                tree.type_name()
            ));
        }
        let mut meta = ObjectMeta::default();
        if let Some(m) = tree
            .get("metadata")
            .filter(|m| !matches!(m.value, Value::Null))
        {
            if m.as_map().is_none() {
                return Err(format!(
                    "metadata is a {}, expected a mapping",
                    m.type_name()
                ));
            }
            let text = |key: &str| -> Result<Option<String>, String> {
                match m.get(key).map(|n| &n.value) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::Str(s)) => Ok(Some(s.to_string())),
                    Some(_) => Err(format!("metadata.{key} is not a string")),
                }
            };
            meta.name = text("name")?;
            meta.namespace = text("namespace")?;
            meta.generate_name = text("generateName")?;
            for key in ["labels", "annotations"] {
                let Some(map) = m.get(key).filter(|n| !matches!(n.value, Value::Null)) else {
                    continue;
                };
                let entries = map.as_map().ok_or_else(|| {
                    format!(
                        "metadata.{key} is a {}, expected a mapping",
                        map.type_name()
                    )
                })?;
                if let Some(e) = entries.iter().find(|e| e.value.as_str().is_none()) {
                    return Err(format!("metadata.{key}.{} is not a string", e.key));
                }
            }
        }
        Ok(AdmissionObject { tree, meta })
    }
}

impl<'de> serde::Deserialize<'de> for AdmissionObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let tree = Node::deserialize(d)?;
        AdmissionObject::from_tree(tree).map_err(serde::de::Error::custom)
    }
}

impl Resource for AdmissionObject {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn kind(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.kind.as_str().into()
    }

    fn group(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.group.as_str().into()
    }

    fn version(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.version.as_str().into()
    }

    fn plural(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

/// Decodes an AdmissionReview v1 body into its request, in one pass: kube-core's
/// [`AdmissionRequest`] with the object read straight into the engine's tree (with sonic-rs,
/// chosen by measurement: docs/performance.md). The object's
/// `apiVersion` and `kind` are filled in from the request when absent (real API servers send
/// objects without them; captured requests show it), and so is the namespace of a namespaced
/// object. A body that does not decode is skimmed for its version so a v1beta1 or foreign body
/// gets a clear 400.
pub fn parse_review(body: &[u8]) -> Result<AdmissionRequest<AdmissionObject>, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Review {
        #[serde(default)]
        api_version: Option<String>,
        #[serde(default)]
        kind: Option<String>,
        #[serde(default)]
        request: Option<AdmissionRequest<AdmissionObject>>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Head {
        #[serde(default)]
        api_version: Option<String>,
        #[serde(default)]
        kind: Option<String>,
    }
    let version_error = |av: Option<&str>, kind: Option<&str>| {
        ApiError::BadRequest(format!(
            "expected admission.k8s.io/v1 AdmissionReview, got {} {}",
            av.unwrap_or("no apiVersion"),
            kind.unwrap_or("no kind")
        ))
    };
    let is_v1 = |av: Option<&str>, kind: Option<&str>| {
        av == Some("admission.k8s.io/v1") && kind == Some("AdmissionReview")
    };
    match sonic_rs::from_slice::<Review>(body) {
        Ok(review) => {
            let (av, kind) = (review.api_version, review.kind);
            if !is_v1(av.as_deref(), kind.as_deref()) {
                return Err(version_error(av.as_deref(), kind.as_deref()));
            }
            let mut req = review
                .request
                .ok_or_else(|| ApiError::BadRequest("no request".into()))?;
            req.types = TypeMeta {
                api_version: av.unwrap_or_default(),
                kind: kind.unwrap_or_default(),
            };
            if let Some(o) = req.object.as_mut() {
                complete(o, &req.kind, req.namespace.as_deref());
            }
            if let Some(o) = req.old_object.as_mut() {
                complete(o, &req.kind, None);
            }
            Ok(req)
        }
        Err(e) => match serde_json::from_slice::<Head>(body) {
            Ok(h) if !is_v1(h.api_version.as_deref(), h.kind.as_deref()) => {
                Err(version_error(h.api_version.as_deref(), h.kind.as_deref()))
            }
            // The decoder's first line names the problem and its line and column (the lines
            // after it draw the spot, which a JSON error field does not need).
            _ => Err(ApiError::BadRequest(
                e.to_string().lines().next().unwrap_or_default().to_string(),
            )),
        },
    }
}

/// Fills in `apiVersion` and `kind` from the request when the object lacks them, and the
/// namespace the API server is admitting it into.
fn complete(o: &mut AdmissionObject, gvk: &kube_core::GroupVersionKind, namespace: Option<&str>) {
    let Value::Map(entries) = &mut o.tree.value else {
        return;
    };
    let is_str = |entries: &[Entry], key: &str| {
        entries
            .iter()
            .any(|e| &*e.key == key && matches!(e.value.value, Value::Str(_)))
    };
    let set = |entries: &mut Vec<Entry>, key: &str, text: String| {
        let value = Node::new(Value::Str(text.into()), Pos::default());
        match entries.iter_mut().find(|e| &*e.key == key) {
            Some(e) => e.value = value,
            None => entries.push(Entry {
                key: key.into(),
                key_pos: Pos::default(),
                value,
            }),
        }
    };
    if !is_str(entries, "kind") {
        set(entries, "kind", gvk.kind.clone());
    }
    if !is_str(entries, "apiVersion") {
        let av = if gvk.group.is_empty() {
            gvk.version.clone()
        } else {
            format!("{}/{}", gvk.group, gvk.version)
        };
        set(entries, "apiVersion", av);
    }
    if let Some(ns) = namespace {
        // A missing or null `metadata`, or `metadata.namespace`, is filled in alike.
        let meta = match entries.iter().position(|e| &*e.key == "metadata") {
            Some(i) => entries.get_mut(i).map(|e| &mut e.value),
            None => {
                entries.push(Entry {
                    key: "metadata".into(),
                    key_pos: Pos::default(),
                    value: Node::new(Value::Null, Pos::default()),
                });
                entries.last_mut().map(|e| &mut e.value)
            }
        };
        let Some(meta) = meta else { return };
        if matches!(meta.value, Value::Null) {
            meta.value = Value::Map(Vec::new());
        }
        if let Value::Map(meta) = &mut meta.value {
            let value = Node::new(Value::Str(ns.into()), Pos::default());
            match meta.iter_mut().find(|e| &*e.key == "namespace") {
                Some(e) if matches!(e.value.value, Value::Null) => e.value = value,
                Some(_) => return,
                None => meta.push(Entry {
                    key: "namespace".into(),
                    key_pos: Pos::default(),
                    value,
                }),
            }
            o.meta.namespace = Some(ns.to_string());
        }
    }
}

/// The annotations of an object (strings: checked when it was decoded).
fn annotations(obj: Option<&AdmissionObject>) -> impl Iterator<Item = (&str, &str)> {
    obj.and_then(|o| o.tree.get_path(&["metadata", "annotations"]))
        .and_then(Node::as_map)
        .unwrap_or_default()
        .iter()
        .filter_map(|e| Some((&*e.key, e.value.as_str()?)))
}

/// The exemption annotations of an object.
fn exempt_annotations(obj: Option<&AdmissionObject>) -> BTreeMap<&str, &str> {
    annotations(obj)
        .filter(|(k, _)| k.starts_with(EXEMPT_PREFIX))
        .collect()
}

/// The images of a workload's containers of every sort, each once.
fn images(root: &Node) -> Vec<&str> {
    let kind = root.get("kind").and_then(Node::as_str).unwrap_or("");
    // Only the kinds the engine treats as workloads (a custom resource shaped like one is not).
    if sostle_core::eval::pod_spec_at(kind).is_none() {
        return Vec::new();
    }
    let workload = Workload::new(root, kind, &mut Vec::new());
    let mut out: Vec<&str> = Vec::new();
    for c in workload.containers(&[Group::Init, Group::Regular, Group::Ephemeral]) {
        if let Some(i) = c.image() {
            if !out.contains(&i) {
                out.push(i);
            }
        }
    }
    out
}

/// The signature checks made for one request's images (before the evaluation, which does no
/// I/O): image → check, and whether the layer fails open when a registry cannot be asked.
#[derive(Debug, Clone, Default)]
pub struct ImageResults {
    /// Per image as written in the object.
    pub checks: BTreeMap<String, sostle_core::images::ImageCheck>,
    /// Whether an unavailable registry admits with a warning (the layer fails open).
    pub fail_open: bool,
    /// The locks read from the images' registries, when locks live there.
    pub locks: Option<sostle_core::mecipol::RegistryLocks>,
}

impl sostle_core::images::ImageSignatures for ImageResults {
    fn check(&self, image: &str, _layer: Layer) -> Option<sostle_core::images::ImageCheck> {
        self.checks.get(image).cloned()
    }
}

/// Checks the signatures of the object's images when `layer` requires them: every image at
/// once, each within `budget` (an image whose registry does not answer in time is
/// unavailable). `None` when nothing is required (or the request is not judged at all).
pub async fn check_images(
    loaded: &Loaded,
    layer: Layer,
    req: &AdmissionRequest<AdmissionObject>,
    fail_open: bool,
    budget: Duration,
) -> Option<ImageResults> {
    let checker = loaded.images.as_ref()?;
    if !matches!(req.operation, Operation::Create | Operation::Update)
        || req
            .namespace
            .as_deref()
            .is_some_and(|ns| UNGOVERNED.contains(&ns))
    {
        return None;
    }
    let root = &req.object.as_ref()?.tree;
    let list = images(root);
    let want_signatures = checker.required(layer);
    // Locks only where deny_no_mecipol_image judges, for the new object's images and, on
    // UPDATE, the old one's (the downgrade check needs the current lock).
    let want_locks = checker.reads_locks()
        && loaded
            .engine
            .config()
            .policy("deny_no_mecipol_image")
            .is_some_and(|p| p.enabled && p.layers.contains(layer));
    if !want_signatures && !want_locks {
        return None;
    }
    let mut lock_images: Vec<&str> = Vec::new();
    if want_locks {
        lock_images.extend(list.iter().copied());
        if let Some(old) = req.old_object.as_ref() {
            for i in images(&old.tree) {
                if !lock_images.contains(&i) {
                    lock_images.push(i);
                }
            }
        }
    }
    let late = |image: &str| {
        format!(
            "image {image}: the registry did not answer within {} ms",
            budget.as_millis()
        )
    };
    let signatures = async {
        if !want_signatures {
            return Vec::new();
        }
        futures_util::future::join_all(list.iter().map(|image| async move {
            let c = match tokio::time::timeout(budget, checker.check(image, layer)).await {
                Ok(c) => c,
                Err(_) => Some(sostle_core::images::ImageCheck::Unavailable(late(image))),
            };
            (image.to_string(), c)
        }))
        .await
    };
    let locks = async {
        futures_util::future::join_all(lock_images.iter().map(|image| async move {
            let f = match tokio::time::timeout(budget, checker.locks(image)).await {
                Ok(f) => f,
                Err(_) => Err(late(image)),
            };
            (image.to_string(), f)
        }))
        .await
    };
    let (signatures, locks) = futures_util::future::join(signatures, locks).await;
    let registry_locks = want_locks.then(|| {
        let mut rl = sostle_core::mecipol::RegistryLocks::default();
        for (image, found) in locks {
            match found {
                Ok(f) => {
                    rl.set.profiles.extend(f.profiles);
                    if !f.refused.is_empty() {
                        rl.refused.insert(image, f.refused);
                    }
                }
                Err(why) => {
                    rl.unavailable.insert(image, why);
                }
            }
        }
        rl
    });
    Some(ImageResults {
        checks: signatures
            .into_iter()
            .filter_map(|(i, c)| Some((i, c?)))
            .collect(),
        fail_open,
        locks: registry_locks,
    })
}

/// Decides a validation request at `layer` — the same engine and the same rules as
/// `sostle test --sostle-layer <layer>`, plus what only admission can see: the user who
/// writes exemption annotations, and the old object's lock on UPDATE.
pub fn validate(
    loaded: &Loaded,
    layer: Layer,
    req: &AdmissionRequest<AdmissionObject>,
    now: Timestamp,
    token_secret: Option<&[u8]>,
    signatures: Option<&ImageResults>,
) -> Decision {
    if matches!(req.operation, Operation::Delete | Operation::Connect) {
        return Decision::allow();
    }
    if req
        .namespace
        .as_deref()
        .is_some_and(|ns| UNGOVERNED.contains(&ns))
    {
        return Decision::allow();
    }
    let Some(obj) = req.object.as_ref() else {
        return Decision::allow();
    };
    let root = &obj.tree;
    let ctx = EvalContext {
        now,
        layer_override: Some(layer),
        namespaces: &NoLabels,
        token_secret,
        locks: match signatures.and_then(|s| s.locks.as_ref()) {
            Some(registry) => Some(registry as &dyn LockRegistry),
            None => loaded.locks.as_ref().map(|l| l as &dyn LockRegistry),
        },
        ledger: None,
    };
    let mut report = loaded.engine.evaluate(root, &ctx);
    if let Some(checks) = signatures {
        if let Some(r) =
            sostle_core::images::signature_result(root, layer, checks, checks.fail_open)
        {
            report.results.push(r);
        }
    }
    // Every failure, with its fix, in one message ("; " between them), written in place.
    let mut message = String::new();
    // Parts are pushed as they are (no formatting machinery: this runs for every failure of
    // every request).
    let mut fail = |parts: &[&str]| {
        if !message.is_empty() {
            message.push_str("; ");
        }
        for p in parts {
            message.push_str(p);
        }
    };
    let mut warnings = Vec::new();
    for r in &report.results {
        match r.outcome {
            Outcome::Fail => {
                for v in &r.violations {
                    fail(&[&r.policy, ": ", &v.message, " (fix: ", &v.fix, ")"]);
                }
                if r.violations.is_empty() {
                    fail(&[&r.policy, " failed"]);
                }
                // An exemption was there but not honoured: say why, once per policy.
                if let Some(j) = r.exemption.as_deref() {
                    fail(&[
                        &r.policy,
                        " exemption not honoured: ",
                        &j.problems.join("; "),
                    ]);
                }
            }
            Outcome::Warn => {
                for v in &r.violations {
                    warnings.push(clip([&*r.policy, ": ", &v.message].concat()));
                }
            }
            Outcome::Exempted => {
                for w in r.exemption.iter().flat_map(|j| &j.warnings) {
                    warnings.push(clip(format!("{} exemption {w}", r.policy)));
                }
            }
            _ => {}
        }
    }
    if matches!(req.operation, Operation::Update) {
        // Exemptions cannot be self-granted: only configured writers may add or change them.
        let before = exempt_annotations(req.old_object.as_ref());
        let after = exempt_annotations(Some(obj));
        let changed: Vec<&str> = after
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(*v))
            .map(|(k, _)| *k)
            .collect();
        let user = req.user_info.username.as_deref().unwrap_or_default();
        let groups = req.user_info.groups.clone().unwrap_or_default();
        if !changed.is_empty()
            && !Config::listed(&loaded.engine.config().exemption_writers, user, &groups)
        {
            fail(&[
                "exemption annotations changed by ",
                user,
                ", who is not in exemptions.writers: ",
                &changed.join(", "),
            ]);
        }
        // A downgrade: the new image's lock is older than the old object's lock.
        let old_profile = annotations(req.old_object.as_ref())
            .find(|(k, _)| *k == "mecipol-profile")
            .map(|(_, v)| v);
        let lock_registry: Option<&dyn LockRegistry> =
            match signatures.and_then(|s| s.locks.as_ref()) {
                Some(registry) => Some(registry),
                None => loaded.locks.as_ref().map(|l| l as &dyn LockRegistry),
            };
        if let (Some(old_profile), Some(locks)) = (old_profile, lock_registry) {
            for image in images(root) {
                for p in locks.check(image, layer, Some(old_profile)) {
                    if let LockProblem::Downgrade { .. } = p {
                        let p = p.to_string();
                        fail(&["deny_no_mecipol_image: ", &p]);
                    }
                }
            }
        }
    }
    let allowed = message.is_empty();
    Decision {
        allowed,
        message,
        warnings,
        patch: Vec::new(),
    }
}

fn escape_pointer(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// The JSONPatch that adds the chaos scheduling to a trial workload; empty when it is already
/// there (idempotent).
pub fn chaos_patch(obj: &Node) -> Vec<J> {
    let kind = obj.get("kind").and_then(Node::as_str).unwrap_or("");
    let Some(at) = sostle_core::eval::pod_spec_at(kind) else {
        return Vec::new();
    };
    let base = at.pointer;
    let Some(spec) = obj.get_path(at.keys).filter(|s| s.as_map().is_some()) else {
        return Vec::new();
    };
    let mut ops = Vec::new();
    let wanted = sostle_core::trial::chaos_tolerations();
    match spec.get("tolerations").and_then(Node::as_seq) {
        None => {
            ops.push(json!({"op": "add", "path": format!("{base}/tolerations"), "value": wanted}))
        }
        Some(have) => {
            for t in wanted {
                let same = |x: &Node, key: &str| {
                    x.get(key).and_then(Node::as_str) == t.get(key).and_then(J::as_str)
                };
                let present = have
                    .iter()
                    .any(|x| same(x, "key") && same(x, "value") && same(x, "effect"));
                if !present {
                    ops.push(
                        json!({"op": "add", "path": format!("{base}/tolerations/-"), "value": t}),
                    );
                }
            }
        }
    }
    match spec.get("nodeSelector").filter(|n| n.as_map().is_some()) {
        None => ops.push(json!({"op": "add", "path": format!("{base}/nodeSelector"), "value": {"pool": "chaos"}})),
        Some(sel) if sel.get("pool").and_then(Node::as_str) != Some("chaos") => {
            ops.push(json!({"op": "add", "path": format!("{base}/nodeSelector/{}", escape_pointer("pool")), "value": "chaos"}));
        }
        Some(_) => {}
    }
    ops
}

/// The AdmissionReview v1 answer, written straight to bytes.
fn review_response(uid: &str, d: &Decision) -> Vec<u8> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Review<'a> {
        api_version: &'static str,
        kind: &'static str,
        response: Answer<'a>,
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer<'a> {
        uid: &'a str,
        allowed: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<Status<'a>>,
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        warnings: &'a [String],
        #[serde(skip_serializing_if = "Option::is_none")]
        patch_type: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        patch: Option<String>,
    }
    #[derive(serde::Serialize)]
    struct Status<'a> {
        code: u16,
        reason: &'static str,
        message: &'a str,
    }
    let patch = (!d.patch.is_empty()).then(|| {
        let json = serde_json::to_vec(&d.patch).unwrap_or_default();
        base64::engine::general_purpose::STANDARD.encode(json)
    });
    let review = Review {
        api_version: "admission.k8s.io/v1",
        kind: "AdmissionReview",
        response: Answer {
            uid,
            allowed: d.allowed,
            status: (!d.allowed).then_some(Status {
                code: 403,
                reason: "Forbidden",
                message: &d.message,
            }),
            warnings: &d.warnings,
            patch_type: patch.as_ref().map(|_| "JSONPatch"),
            patch,
        },
    };
    sonic_rs::to_vec(&review).unwrap_or_default()
}

fn operation_name(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

async fn validate_handler(
    State(s): State<Arc<AppState>>,
    UrlPath(layer): UrlPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    handle(s, layer, body, false).await
}

async fn namespaces_handler(
    State(s): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let req = match parse_review(&body) {
        Ok(r) => r,
        Err(e) => {
            s.metrics.error("bad_request");
            return Err(e);
        }
    };
    let decision = validate_namespace(s.loaded().engine.config(), &req);
    Ok(answer(
        &s,
        "namespaces",
        operation_name(&req.operation),
        &req.uid,
        &decision,
        started,
    ))
}

/// The answer to a review: counted by route, operation and verdict, timed, as AdmissionReview.
fn answer(
    s: &AppState,
    route: &'static str,
    op: &'static str,
    uid: &str,
    decision: &Decision,
    started: Instant,
) -> Response {
    let verdict = if !decision.allowed {
        "deny"
    } else if !decision.patch.is_empty() {
        "patch"
    } else if !decision.warnings.is_empty() {
        "warn"
    } else {
        "allow"
    };
    s.metrics
        .requests
        .get_or_create(&RequestLabels {
            layer: route,
            operation: op,
            verdict,
        })
        .inc();
    s.metrics.latency.observe(started.elapsed().as_secs_f64());
    tracing::debug!(%uid, route, operation = op, verdict, "admission");
    (
        [(header::CONTENT_TYPE, "application/json")],
        review_response(uid, decision),
    )
        .into_response()
}

/// The layer a Namespace object claims: its `sostle-layer` label as written, and the layer its
/// name maps to by the config (explicit assignment, a layer's namespace, the name pattern).
fn namespace_claims(
    config: &Config,
    obj: Option<&AdmissionObject>,
) -> (Option<String>, Option<Layer>) {
    let Some(o) = obj else {
        return (None, None);
    };
    let label = o
        .tree
        .get_path(&["metadata", "labels", "sostle-layer"])
        .and_then(Node::as_str)
        .map(str::to_string);
    let name = o
        .tree
        .get_path(&["metadata", "name"])
        .and_then(Node::as_str)
        .unwrap_or_default();
    (label, config.namespace_layer(name))
}

/// Decides a request on a Namespace (`/validate/namespaces`): adding, changing or removing its
/// `sostle-layer` label, or creating a namespace whose name puts it in a layer, is allowed only
/// to `layers.writers` (SPEC §10: a layer cannot be escaped, or entered, by relabelling).
/// Everything else about a Namespace is admitted.
pub fn validate_namespace(config: &Config, req: &AdmissionRequest<AdmissionObject>) -> Decision {
    if req.kind.kind != "Namespace"
        || !matches!(req.operation, Operation::Create | Operation::Update)
    {
        return Decision::allow();
    }
    let (new_label, new_by_name) = namespace_claims(config, req.object.as_ref());
    let (old_label, old_by_name) = namespace_claims(config, req.old_object.as_ref());
    let change = match req.operation {
        Operation::Create => match (&new_label, new_by_name) {
            (Some(l), _) => Some(format!("creates it with sostle-layer={l}")),
            (None, Some(l)) => Some(format!("creates it with a name of layer {l}")),
            (None, None) => None,
        },
        _ if new_label != old_label => Some(match (&old_label, &new_label) {
            (None, Some(n)) => format!("adds sostle-layer={n}"),
            (Some(o), None) => format!("removes sostle-layer={o}"),
            (Some(o), Some(n)) => format!("changes sostle-layer from {o} to {n}"),
            (None, None) => String::new(),
        }),
        _ if new_by_name != old_by_name => Some("changes the layer its name maps to".to_string()),
        _ => None,
    };
    let Some(change) = change else {
        return Decision::allow();
    };
    let user = req.user_info.username.as_deref().unwrap_or_default();
    let groups = req.user_info.groups.clone().unwrap_or_default();
    if Config::listed(&config.layer_writers, user, &groups) {
        return Decision::allow();
    }
    let name = req.name.as_str();
    Decision {
        allowed: false,
        message: format!(
            "namespace {name}: {user} {change}, and is not in layers.writers: a namespace's layer is changed only by a layer writer"
        ),
        warnings: Vec::new(),
        patch: Vec::new(),
    }
}

async fn mutate_handler(
    State(s): State<Arc<AppState>>,
    UrlPath(layer): UrlPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    handle(s, layer, body, true).await
}

async fn handle(
    s: Arc<AppState>,
    layer_text: String,
    body: Bytes,
    mutate: bool,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let layer = Layer::parse(&layer_text).ok_or(ApiError::UnknownLayer(layer_text))?;
    let req = match parse_review(&body) {
        Ok(r) => r,
        Err(e) => {
            s.metrics.error("bad_request");
            return Err(e);
        }
    };
    let uid = req.uid.clone();
    let op = operation_name(&req.operation);
    let decision = if mutate {
        let mut d = Decision::allow();
        if layer == Layer::Trial && matches!(req.operation, Operation::Create | Operation::Update) {
            if let Some(obj) = req.object.as_ref() {
                d.patch = chaos_patch(&obj.tree);
            }
        }
        d
    } else {
        let loaded = s.loaded();
        // Image signatures first (registry I/O, cached), then the evaluation, which does none.
        let images = match loaded.images {
            None => None,
            Some(_) => {
                check_images(
                    &loaded,
                    layer,
                    &req,
                    s.settings.fail_open.contains(layer),
                    door::image_budget(layer),
                )
                .await
            }
        };
        if body.len() <= s.settings.inline_max_bytes {
            validate(
                &loaded,
                layer,
                &req,
                Timestamp::now(),
                loaded.token_secret.as_deref(),
                images.as_ref(),
            )
        } else {
            drop(loaded);
            validate_blocking(&s, layer, req, images).await
        }
    };
    Ok(answer(&s, layer.as_str(), op, &uid, &decision, started))
}

/// Evaluates a large review on a blocking thread, within the time cap; a failure follows the
/// layer's fail-open rule.
async fn validate_blocking(
    s: &Arc<AppState>,
    layer: Layer,
    req: AdmissionRequest<AdmissionObject>,
    images: Option<ImageResults>,
) -> Decision {
    let uid = req.uid.clone();
    {
        // The time cap covers waiting for an evaluation slot and the evaluation itself.
        let state = s.clone();
        let job = async move {
            let permit = state.permits.clone().acquire_owned().await;
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let loaded = state.loaded();
                validate(
                    &loaded,
                    layer,
                    &req,
                    Timestamp::now(),
                    loaded.token_secret.as_deref(),
                    images.as_ref(),
                )
            })
            .await
        };
        match tokio::time::timeout(s.settings.eval_timeout, job).await {
            Ok(Ok(d)) => d,
            failed => {
                let why = match failed {
                    Err(_) => format!(
                        "no answer within {} ms",
                        s.settings.eval_timeout.as_millis()
                    ),
                    Ok(Err(e)) => format!("evaluation failed: {e}"),
                    Ok(Ok(_)) => String::new(),
                };
                s.metrics.error("internal");
                tracing::error!(%uid, %layer, reason = %why, "internal error");
                if s.settings.fail_open.contains(layer) {
                    Decision {
                        allowed: true,
                        message: String::new(),
                        warnings: vec![clip(format!(
                            "sostle could not check this object ({why}); admitted at {layer}"
                        ))],
                        patch: Vec::new(),
                    }
                } else {
                    Decision {
                        allowed: false,
                        message: format!(
                            "sostle could not check this object ({why}); denied at {layer}"
                        ),
                        warnings: Vec::new(),
                        patch: Vec::new(),
                    }
                }
            }
        }
    }
}
