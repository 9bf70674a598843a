//! The OCI registry signatures live in, through `oci-client` (no hand-rolled HTTP).
//!
//! Where cosign keeps them: in the image's repository, an OCI image manifest tagged
//! `sha256-<hex>.sig`, one layer per signature (media type
//! `application/vnd.dev.cosign.simplesigning.v1+json`, the payload as the blob, the signature
//! and its certificate, chain and Rekor bundle as layer annotations). Signing appends a layer to
//! that manifest rather than replacing it.
//!
//! Registries as users have them: credentials from `DOCKER_CONFIG` / `~/.docker/config.json`
//! (and its credential helpers), basic and bearer-token flows, TLS with the system roots plus
//! extra CAs, plain HTTP only for hosts named insecure, and a time limit on every call.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt as _;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{IMAGE_CONFIG_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::payload::{
    BUNDLE_ANNOTATION, CERTIFICATE_ANNOTATION, CHAIN_ANNOTATION, MAX_PAYLOAD, MEDIA_TYPE,
    SIGNATURE_ANNOTATION,
};
use crate::verify::SignatureLayer;

/// The largest signature manifest read (cosign's hold a few layers of annotations).
pub const MAX_MANIFEST: usize = 4 * 1024 * 1024;
/// The most signature layers read from one manifest.
pub const MAX_SIGNATURES: usize = 64;

/// How to reach registries.
#[derive(Debug, Clone)]
pub struct Options {
    /// Hosts (`host:port`) spoken to over plain HTTP; every other host needs TLS.
    pub insecure: Vec<String>,
    /// Extra CA certificates (PEM) trusted beside the system roots.
    pub extra_ca_pem: Vec<Vec<u8>>,
    /// The limit on each registry call (connect, request and reading the answer).
    pub timeout: Duration,
    /// Where credentials come from.
    pub credentials: Credentials,
}

/// Where registry credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// None: anonymous pulls only.
    Anonymous,
    /// The Docker config as docker finds it: `$DOCKER_CONFIG/config.json`, else
    /// `~/.docker/config.json` (with its `credHelpers` and `credsStore`).
    DockerConfig,
    /// The Docker config in this directory.
    DockerConfigIn(std::path::PathBuf),
}

impl Default for Options {
    fn default() -> Options {
        Options {
            insecure: Vec::new(),
            extra_ca_pem: Vec::new(),
            timeout: Duration::from_secs(10),
            credentials: Credentials::DockerConfig,
        }
    }
}

/// A registry call that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The image reference does not parse.
    #[error("`{0}` is not an image reference ({1})")]
    Reference(String, String),
    /// The registry did not answer in time.
    #[error("registry {0} did not answer within {1} s")]
    Timeout(String, u64),
    /// The registry could not be reached or refused the connection.
    #[error("registry {0} unreachable: {1}")]
    Unreachable(String, String),
    /// The registry said no (authentication, not found, a server error).
    #[error("registry {0}: {1}")]
    Refused(String, String),
    /// The registry answered with something that is not what the protocol says.
    #[error("registry {0} answered badly: {1}")]
    Bad(String, String),
    /// The credentials in the Docker config cannot be read.
    #[error("credentials for {0}: {1}")]
    Credentials(String, String),
    /// The TLS settings cannot be used.
    #[error("TLS: {0}")]
    Tls(String),
}

impl RegistryError {
    /// Whether the registry could not be asked at all (so a cached verdict may stand in).
    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            RegistryError::Timeout(..) | RegistryError::Unreachable(..)
        ) || matches!(self, RegistryError::Refused(_, m) if m.starts_with("server error 5"))
    }
}

/// An image named by digest: the reference users wrote and what it resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The reference as written (normalised: `docker.io/library/…` for short names).
    pub reference: String,
    /// The registry host.
    pub registry: String,
    /// The repository, without registry, tag or digest.
    pub repository: String,
    /// `sha256:<hex>` of the manifest.
    pub digest: String,
}

impl Resolved {
    /// `registry/repository@digest`.
    pub fn by_digest(&self) -> String {
        format!("{}/{}@{}", self.registry, self.repository, self.digest)
    }

    /// The tag cosign stores signatures under: `sha256-<hex>.sig`.
    pub fn signature_tag(&self) -> String {
        self.tag(Kind::Signatures)
    }

    /// The tag cosign stores attestations under: `sha256-<hex>.att`.
    pub fn attestation_tag(&self) -> String {
        self.tag(Kind::Attestations)
    }

    fn tag(&self, kind: Kind) -> String {
        format!("{}.{}", self.digest.replacen(':', "-", 1), kind.suffix())
    }

    fn tag_ref(&self, kind: Kind) -> Reference {
        Reference::with_tag(
            self.registry.clone(),
            self.repository.clone(),
            self.tag(kind),
        )
    }
}

/// What a cosign tag beside an image holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `.sig`: simple-signing payloads.
    Signatures,
    /// `.att`: DSSE envelopes.
    Attestations,
}

impl Kind {
    fn suffix(self) -> &'static str {
        match self {
            Kind::Signatures => "sig",
            Kind::Attestations => "att",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Kind::Signatures => "signature manifest",
            Kind::Attestations => "attestation manifest",
        }
    }
}

/// An attestation layer: the envelope and the predicate type its annotation claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationLayer {
    /// The DSSE envelope JSON.
    pub envelope: Vec<u8>,
    /// The `predicateType` annotation (a hint: the signed statement decides).
    pub predicate_type: Option<String>,
}

/// What reading an attestation manifest found.
#[derive(Debug, Clone, Default)]
pub struct Attestations {
    /// Envelopes read.
    pub layers: Vec<AttestationLayer>,
    /// Layers that could not be read, with the reason.
    pub unreadable: Vec<String>,
}

/// A client for the registries images name.
pub struct Registry {
    client: Client,
    options: Options,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// An OCI image manifest, as far as signatures need it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    config: Descriptor,
    /// The layers: one signature each.
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    annotations: Option<BTreeMap<String, String>>,
}

/// A content descriptor.
#[derive(Debug, Serialize, Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type.
    pub media_type: String,
    /// The size in bytes, as the manifest claims.
    pub size: i64,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Annotations (a signature layer's signature, certificate, chain, bundle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Why a signature or attestation manifest cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Larger than [`MAX_MANIFEST`] (its size in bytes).
    #[error("{0} bytes, above the {MAX_MANIFEST} read")]
    TooLarge(usize),
    /// Not an OCI image manifest.
    #[error("not an OCI manifest ({0})")]
    Json(String),
    /// A schema version other than 2.
    #[error("schemaVersion {0}, not 2")]
    SchemaVersion(u32),
}

/// Why one layer of a signature or attestation manifest cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LayerError {
    /// A media type other than cosign's simple-signing payload.
    #[error("media type {0} is not {MEDIA_TYPE}")]
    MediaType(String),
    /// The descriptor claims a negative size.
    #[error("a negative size")]
    NegativeSize,
    /// The descriptor claims more than [`MAX_PAYLOAD`] bytes.
    #[error("{0} bytes, above the {MAX_PAYLOAD} a payload may have")]
    TooLarge(usize),
    /// The signature annotation is missing.
    #[error("no {SIGNATURE_ANNOTATION} annotation")]
    NoSignature,
    /// The blob's digest (`sha256:<hex>`) is not the layer's.
    #[error("the blob's digest is {0}, not the layer's")]
    Digest(String),
    /// The blob cannot be fetched.
    #[error(transparent)]
    Fetch(#[from] RegistryError),
}

/// Decodes a signature manifest (at most [`MAX_MANIFEST`] bytes of OCI image manifest JSON).
pub fn decode_manifest(body: &[u8]) -> Result<Manifest, ManifestError> {
    if body.len() > MAX_MANIFEST {
        return Err(ManifestError::TooLarge(body.len()));
    }
    let m: Manifest =
        serde_json::from_slice(body).map_err(|e| ManifestError::Json(e.to_string()))?;
    if m.schema_version != 2 {
        return Err(ManifestError::SchemaVersion(m.schema_version));
    }
    Ok(m)
}

/// Checks what a layer descriptor claims before its blob is fetched: cosign's media type, a
/// payload-sized size, a signature annotation. Returns the size to read.
pub fn check_descriptor(layer: &Descriptor) -> Result<usize, LayerError> {
    if layer.media_type != MEDIA_TYPE {
        return Err(LayerError::MediaType(layer.media_type.clone()));
    }
    let size = usize::try_from(layer.size).map_err(|_| LayerError::NegativeSize)?;
    if size > MAX_PAYLOAD {
        return Err(LayerError::TooLarge(size));
    }
    if !layer
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(SIGNATURE_ANNOTATION))
    {
        return Err(LayerError::NoSignature);
    }
    Ok(size)
}

/// The signature a layer holds, given its fetched blob (whose digest must be the layer's).
pub fn signature_layer(layer: &Descriptor, blob: Vec<u8>) -> Result<SignatureLayer, LayerError> {
    check_descriptor(layer)?;
    let got = format!("sha256:{:x}", sha2::Sha256::digest(&blob));
    if got != layer.digest {
        return Err(LayerError::Digest(got));
    }
    let ann = layer.annotations.clone().unwrap_or_default();
    Ok(SignatureLayer {
        payload: blob,
        signature: ann.get(SIGNATURE_ANNOTATION).cloned().unwrap_or_default(),
        certificate: ann.get(CERTIFICATE_ANNOTATION).cloned(),
        chain: ann.get(CHAIN_ANNOTATION).cloned(),
        bundle: ann.get(BUNDLE_ANNOTATION).cloned(),
    })
}

/// What reading a signature manifest found: the layers that could be read, and why others
/// could not (each a refusal of that signature, never a silent skip).
#[derive(Debug, Clone, Default)]
pub struct Signatures {
    /// The `.sig` manifest's digest, if there is one.
    pub manifest: Option<String>,
    /// Signatures read.
    pub layers: Vec<SignatureLayer>,
    /// Layers that could not be read, with the reason.
    pub unreadable: Vec<String>,
}

impl Registry {
    /// A client with `options`.
    pub fn new(options: Options) -> Result<Registry, RegistryError> {
        crate::install_crypto_provider();
        let extra_root_certificates = options
            .extra_ca_pem
            .iter()
            .map(|pem| Certificate {
                encoding: CertificateEncoding::Pem,
                data: pem.clone(),
            })
            .collect();
        let config = ClientConfig {
            protocol: if options.insecure.is_empty() {
                ClientProtocol::Https
            } else {
                ClientProtocol::HttpsExcept(options.insecure.clone())
            },
            extra_root_certificates,
            read_timeout: Some(options.timeout),
            connect_timeout: Some(options.timeout),
            user_agent: concat!("sostle/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        Ok(Registry {
            client: Client::new(config),
            options,
        })
    }

    fn auth(&self, registry: &str) -> Result<RegistryAuth, RegistryError> {
        use docker_credential::{CredentialRetrievalError as E, DockerCredential};
        let server = if registry == "docker.io" {
            "https://index.docker.io/v1/"
        } else {
            registry
        };
        let found = match &self.options.credentials {
            Credentials::Anonymous => return Ok(RegistryAuth::Anonymous),
            Credentials::DockerConfig => docker_credential::get_credential(server),
            Credentials::DockerConfigIn(dir) => {
                match std::fs::File::open(dir.join("config.json")) {
                    Ok(f) => docker_credential::get_credential_from_reader(f, server),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(E::ConfigNotFound),
                    Err(e) => {
                        return Err(RegistryError::Credentials(
                            registry.into(),
                            format!("{}: {e}", dir.join("config.json").display()),
                        ))
                    }
                }
            }
        };
        match found {
            Ok(DockerCredential::UsernamePassword(u, p)) => Ok(RegistryAuth::Basic(u, p)),
            // An identity token (ACR's `az acr login`) is exchanged at the token service with
            // the null user, as `docker login` does for ACR.
            Ok(DockerCredential::IdentityToken(t)) => Ok(RegistryAuth::Basic(
                "00000000-0000-0000-0000-000000000000".into(),
                t,
            )),
            Err(E::ConfigNotFound | E::NoCredentialConfigured | E::ConfigReadError) => {
                Ok(RegistryAuth::Anonymous)
            }
            Err(e) => Err(RegistryError::Credentials(registry.into(), e.to_string())),
        }
    }

    async fn timed<T>(
        &self,
        registry: &str,
        f: impl std::future::Future<Output = Result<T, OciDistributionError>>,
    ) -> Result<T, RegistryError> {
        match tokio::time::timeout(self.options.timeout, f).await {
            Err(_) => Err(RegistryError::Timeout(
                registry.into(),
                self.options.timeout.as_secs(),
            )),
            Ok(r) => r.map_err(|e| classify(registry, e, self.options.timeout.as_secs())),
        }
    }

    /// Parses `image` and resolves it to a digest: a digest reference as written, a tag by
    /// asking the registry (HEAD of the manifest, as cosign does).
    pub async fn resolve(&self, image: &str) -> Result<Resolved, RegistryError> {
        let r: Reference = image.parse().map_err(|e: oci_client::ParseError| {
            RegistryError::Reference(image.into(), e.to_string())
        })?;
        let registry = r.resolve_registry().to_string();
        let digest = match r.digest() {
            Some(d) => d.to_string(),
            None => {
                let auth = self.auth(&registry)?;
                self.timed(&registry, self.client.fetch_manifest_digest(&r, &auth))
                    .await?
            }
        };
        if !crate::payload::is_sha256_digest(&digest) {
            return Err(RegistryError::Bad(
                registry,
                format!("the manifest digest `{digest}` is not sha256"),
            ));
        }
        Ok(Resolved {
            reference: r.whole(),
            registry,
            repository: r.repository().to_string(),
            digest,
        })
    }

    async fn tagged_manifest(
        &self,
        image: &Resolved,
        kind: Kind,
        op: RegistryOperation,
    ) -> Result<Option<(Manifest, String)>, RegistryError> {
        let sig = image.tag_ref(kind);
        let auth = self.auth(&image.registry)?;
        if op == RegistryOperation::Push {
            self.timed(&image.registry, self.client.auth(&sig, &auth, op))
                .await?;
        }
        let got = self
            .timed(
                &image.registry,
                self.client
                    .pull_manifest_raw(&sig, &auth, &[OCI_IMAGE_MEDIA_TYPE]),
            )
            .await;
        let (body, digest) = match got {
            Ok(x) => x,
            Err(RegistryError::Refused(_, m)) if m.starts_with("not found") => return Ok(None),
            Err(e) => return Err(e),
        };
        let m = decode_manifest(&body).map_err(|e| {
            RegistryError::Bad(
                image.registry.clone(),
                format!("{} {} is {e}", kind.what(), image.tag(kind)),
            )
        })?;
        Ok(Some((m, digest)))
    }

    /// The signatures stored for `image` (none when there is no `.sig` manifest).
    pub async fn signatures(&self, image: &Resolved) -> Result<Signatures, RegistryError> {
        let Some((m, digest)) = self
            .tagged_manifest(image, Kind::Signatures, RegistryOperation::Pull)
            .await?
        else {
            return Ok(Signatures::default());
        };
        let mut out = Signatures {
            manifest: Some(digest),
            ..Signatures::default()
        };
        let repo = image.tag_ref(Kind::Signatures);
        for layer in capped(&m.layers, &mut out.unreadable) {
            match self.layer(&repo, &image.registry, layer).await {
                Ok(l) => out.layers.push(l),
                Err(why) => out
                    .unreadable
                    .push(format!("layer {}: {why}", layer.digest)),
            }
        }
        Ok(out)
    }

    async fn layer(
        &self,
        repo: &Reference,
        registry: &str,
        layer: &Descriptor,
    ) -> Result<SignatureLayer, LayerError> {
        let size = check_descriptor(layer)?;
        let blob = self.blob(repo, registry, layer, size, MAX_PAYLOAD).await?;
        signature_layer(layer, blob)
    }

    /// A layer's blob, at most `max` bytes, checked against its digest.
    async fn blob(
        &self,
        repo: &Reference,
        registry: &str,
        layer: &Descriptor,
        size: usize,
        max: usize,
    ) -> Result<Vec<u8>, LayerError> {
        let oci = oci_client::manifest::OciDescriptor {
            media_type: layer.media_type.clone(),
            digest: layer.digest.clone(),
            size: layer.size,
            urls: None,
            annotations: None,
            artifact_type: None,
        };
        let fetch = async {
            let mut s = self.client.pull_blob_stream(repo, &oci).await?;
            // Sized by what arrives, not by what the descriptor claims: a claimed size is only
            // a hint, and at most the first 64 KiB of it is reserved up front.
            let mut buf = Vec::with_capacity(size.min(64 * 1024));
            while let Some(chunk) = s.stream.next().await {
                let chunk = chunk.map_err(OciDistributionError::IoError)?;
                if buf.len().saturating_add(chunk.len()) > max {
                    return Err(OciDistributionError::GenericError(Some(format!(
                        "the blob is larger than the {max} bytes read"
                    ))));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(buf)
        };
        let blob = self.timed(registry, fetch).await?;
        let got = format!("sha256:{:x}", sha2::Sha256::digest(&blob));
        if got != layer.digest {
            return Err(LayerError::Digest(got));
        }
        Ok(blob)
    }

    /// The attestations stored for `image` (none when there is no `.att` manifest).
    pub async fn attestations(&self, image: &Resolved) -> Result<Attestations, RegistryError> {
        let Some((m, _)) = self
            .tagged_manifest(image, Kind::Attestations, RegistryOperation::Pull)
            .await?
        else {
            return Ok(Attestations::default());
        };
        let mut out = Attestations::default();
        let repo = image.tag_ref(Kind::Attestations);
        for layer in capped(&m.layers, &mut out.unreadable) {
            if layer.media_type != crate::attest::MEDIA_TYPE {
                out.unreadable.push(format!(
                    "layer {}: media type {} is not {}",
                    layer.digest,
                    layer.media_type,
                    crate::attest::MEDIA_TYPE
                ));
                continue;
            }
            let size = match usize::try_from(layer.size) {
                Ok(s) if s <= crate::attest::MAX_ENVELOPE => s,
                _ => {
                    out.unreadable.push(format!(
                        "layer {}: {} bytes, above the {} an envelope may have",
                        layer.digest,
                        layer.size,
                        crate::attest::MAX_ENVELOPE
                    ));
                    continue;
                }
            };
            match self
                .blob(
                    &repo,
                    &image.registry,
                    layer,
                    size,
                    crate::attest::MAX_ENVELOPE,
                )
                .await
            {
                Ok(envelope) => out.layers.push(AttestationLayer {
                    envelope,
                    predicate_type: layer
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get("predicateType"))
                        .cloned(),
                }),
                Err(why) => out
                    .unreadable
                    .push(format!("layer {}: {why}", layer.digest)),
            }
        }
        Ok(out)
    }

    /// Stores a DSSE envelope as a new layer of `image`'s attestation manifest, as `cosign
    /// attest` does. Returns the manifest's digest.
    pub async fn push_attestation(
        &self,
        image: &Resolved,
        envelope: &[u8],
        predicate_type: &str,
    ) -> Result<String, RegistryError> {
        let mut annotations = BTreeMap::new();
        annotations.insert(SIGNATURE_ANNOTATION.to_string(), String::new());
        annotations.insert("predicateType".to_string(), predicate_type.to_string());
        self.append_layer(
            image,
            Kind::Attestations,
            crate::attest::MEDIA_TYPE,
            envelope.to_vec(),
            annotations,
        )
        .await
    }

    /// Stores `sig` as a new layer of `image`'s signature manifest (created if there is none;
    /// an identical layer already there is not added twice). Returns the manifest's digest.
    pub async fn push_signature(
        &self,
        image: &Resolved,
        sig: &SignatureLayer,
    ) -> Result<String, RegistryError> {
        let mut annotations = BTreeMap::new();
        annotations.insert(SIGNATURE_ANNOTATION.to_string(), sig.signature.clone());
        for (k, v) in [
            (CERTIFICATE_ANNOTATION, &sig.certificate),
            (CHAIN_ANNOTATION, &sig.chain),
            (BUNDLE_ANNOTATION, &sig.bundle),
        ] {
            if let Some(v) = v {
                annotations.insert(k.to_string(), v.clone());
            }
        }
        self.append_layer(
            image,
            Kind::Signatures,
            MEDIA_TYPE,
            sig.payload.clone(),
            annotations,
        )
        .await
    }

    /// Appends a layer (`blob`, with `annotations`) to the manifest at `image`'s `kind` tag,
    /// creating it if there is none; an identical layer is not added twice.
    async fn append_layer(
        &self,
        image: &Resolved,
        kind: Kind,
        media_type: &str,
        blob: Vec<u8>,
        annotations: BTreeMap<String, String>,
    ) -> Result<String, RegistryError> {
        let existing = self
            .tagged_manifest(image, kind, RegistryOperation::Push)
            .await?;
        let repo = image.tag_ref(kind);
        let digest = format!("sha256:{:x}", sha2::Sha256::digest(&blob));
        let new = Descriptor {
            media_type: media_type.into(),
            size: i64::try_from(blob.len()).unwrap_or(i64::MAX),
            digest: digest.clone(),
            annotations: Some(annotations),
        };
        let mut layers = existing.map(|(m, _)| m.layers).unwrap_or_default();
        // The same signature again (same payload, same signature bytes) is stored once; one that
        // now carries more (a Rekor bundle a log signs anew on each answer) replaces it.
        let sig_of = |d: &Descriptor| {
            d.annotations
                .as_ref()
                .and_then(|a| a.get(SIGNATURE_ANNOTATION).cloned())
        };
        match layers
            .iter()
            .position(|l| l.digest == new.digest && sig_of(l) == sig_of(&new))
        {
            Some(i) => {
                let more = |d: &Descriptor| d.annotations.as_ref().map_or(0, BTreeMap::len);
                if more(&new) > layers.get(i).map_or(0, more) {
                    if let Some(slot) = layers.get_mut(i) {
                        *slot = new;
                    }
                }
            }
            None => layers.push(new),
        }
        self.timed(&image.registry, self.client.push_blob(&repo, blob, &digest))
            .await?;
        // The config go-containerregistry writes for such an image: the layers as diff IDs.
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "",
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>()},
            "config": {}
        }))
        .unwrap_or_default();
        let config_digest = format!("sha256:{:x}", sha2::Sha256::digest(&config));
        let config_size = i64::try_from(config.len()).unwrap_or(i64::MAX);
        self.timed(
            &image.registry,
            self.client.push_blob(&repo, config, &config_digest),
        )
        .await?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(OCI_IMAGE_MEDIA_TYPE.into()),
            config: Descriptor {
                media_type: IMAGE_CONFIG_MEDIA_TYPE.into(),
                size: config_size,
                digest: config_digest,
                annotations: None,
            },
            layers,
            annotations: None,
        };
        self.push_manifest(&repo, &image.registry, &manifest).await
    }
}

/// One file of an OCI artifact (a policy bundle): its media type, its title (the
/// `org.opencontainers.image.title` annotation, the file's path) and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactFile {
    /// The layer's media type.
    pub media_type: String,
    /// The path it is stored under.
    pub title: String,
    /// Its contents.
    pub bytes: Vec<u8>,
}

/// The annotation that names a layer's file, as oras and conftest write it.
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";

/// The largest artifact file read.
pub const MAX_ARTIFACT_FILE: usize = 16 * 1024 * 1024;

/// The most files read from one artifact.
pub const MAX_ARTIFACT_FILES: usize = 4096;

/// The most bytes read from one artifact, all its files together (a policy bundle is a few
/// hundred KiB; 4,096 layers of 16 MiB each would be 64 GiB).
pub const MAX_ARTIFACT_TOTAL: usize = 64 * 1024 * 1024;

impl Registry {
    /// Pushes `manifest` (an OCI image manifest) to `r`; its digest.
    async fn push_manifest(
        &self,
        r: &Reference,
        registry: &str,
        manifest: &Manifest,
    ) -> Result<String, RegistryError> {
        let body = serde_json::to_vec(manifest).unwrap_or_default();
        let digest = format!("sha256:{:x}", sha2::Sha256::digest(&body));
        let content_type = reqwest::header::HeaderValue::from_static(OCI_IMAGE_MEDIA_TYPE);
        self.timed(
            registry,
            self.client.push_manifest_raw(r, body, content_type),
        )
        .await?;
        Ok(digest)
    }

    /// Pushes an OCI artifact to `reference` (a tag; `:latest` when none is given): the
    /// `config` blob with `config_media_type`, one layer per file, the image manifest, tagged.
    /// Returns what was pushed, resolved to the manifest's digest.
    pub async fn push_artifact(
        &self,
        reference: &str,
        config_media_type: &str,
        config: Vec<u8>,
        files: Vec<ArtifactFile>,
    ) -> Result<Resolved, RegistryError> {
        let r: Reference = reference.parse().map_err(|e: oci_client::ParseError| {
            RegistryError::Reference(reference.into(), e.to_string())
        })?;
        let registry = r.resolve_registry().to_string();
        if r.digest().is_some() {
            return Err(RegistryError::Reference(
                reference.into(),
                "push to a tag, not a digest".into(),
            ));
        }
        let auth = self.auth(&registry)?;
        self.timed(
            &registry,
            self.client.auth(&r, &auth, RegistryOperation::Push),
        )
        .await?;
        let mut layers = Vec::with_capacity(files.len());
        for f in files {
            let digest = format!("sha256:{:x}", sha2::Sha256::digest(&f.bytes));
            let size = i64::try_from(f.bytes.len()).unwrap_or(i64::MAX);
            self.timed(&registry, self.client.push_blob(&r, f.bytes, &digest))
                .await?;
            let mut annotations = BTreeMap::new();
            annotations.insert(TITLE_ANNOTATION.to_string(), f.title);
            layers.push(Descriptor {
                media_type: f.media_type,
                size,
                digest,
                annotations: Some(annotations),
            });
        }
        let config_digest = format!("sha256:{:x}", sha2::Sha256::digest(&config));
        let config_size = i64::try_from(config.len()).unwrap_or(i64::MAX);
        self.timed(&registry, self.client.push_blob(&r, config, &config_digest))
            .await?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(OCI_IMAGE_MEDIA_TYPE.into()),
            config: Descriptor {
                media_type: config_media_type.into(),
                size: config_size,
                digest: config_digest,
                annotations: None,
            },
            layers,
            annotations: None,
        };
        let digest = self.push_manifest(&r, &registry, &manifest).await?;
        Ok(Resolved {
            reference: r.whole(),
            registry,
            repository: r.repository().to_string(),
            digest,
        })
    }

    /// The files of the OCI artifact `image` (resolved to its digest): the config's media type
    /// and every layer that carries a title, each blob checked against its digest and capped
    /// in size. Layers without a title are not files and are left out, as oras does.
    pub async fn pull_artifact(
        &self,
        image: &Resolved,
    ) -> Result<(String, Vec<ArtifactFile>), RegistryError> {
        let r: Reference = format!("{}/{}@{}", image.registry, image.repository, image.digest)
            .parse()
            .map_err(|e: oci_client::ParseError| {
                RegistryError::Reference(image.by_digest(), e.to_string())
            })?;
        let auth = self.auth(&image.registry)?;
        let (body, _) = self
            .timed(
                &image.registry,
                self.client
                    .pull_manifest_raw(&r, &auth, &[OCI_IMAGE_MEDIA_TYPE]),
            )
            .await?;
        let got = format!("sha256:{:x}", sha2::Sha256::digest(&body));
        if got != image.digest {
            return Err(RegistryError::Bad(
                image.registry.clone(),
                format!("the manifest's digest is {got}, not {}", image.digest),
            ));
        }
        let m = decode_manifest(&body).map_err(|e| {
            RegistryError::Bad(
                image.registry.clone(),
                format!("{} is {e}", image.by_digest()),
            )
        })?;
        if m.layers.len() > MAX_ARTIFACT_FILES {
            return Err(RegistryError::Bad(
                image.registry.clone(),
                format!(
                    "{} has {} layers, above the {MAX_ARTIFACT_FILES} read",
                    image.by_digest(),
                    m.layers.len()
                ),
            ));
        }
        let claimed: i64 = m
            .layers
            .iter()
            .filter(|l| {
                l.annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(TITLE_ANNOTATION))
            })
            .map(|l| l.size.max(0))
            .fold(0i64, i64::saturating_add);
        if usize::try_from(claimed).map_or(true, |c| c > MAX_ARTIFACT_TOTAL) {
            return Err(RegistryError::Bad(
                image.registry.clone(),
                format!(
                    "{} claims {claimed} bytes of files, above the {MAX_ARTIFACT_TOTAL} read from one artifact",
                    image.by_digest()
                ),
            ));
        }
        let mut files = Vec::new();
        let mut total = 0usize;
        for layer in &m.layers {
            let Some(title) = layer
                .annotations
                .as_ref()
                .and_then(|a| a.get(TITLE_ANNOTATION))
            else {
                continue;
            };
            let size = usize::try_from(layer.size)
                .ok()
                .filter(|s| *s <= MAX_ARTIFACT_FILE)
                .ok_or_else(|| {
                    RegistryError::Bad(
                        image.registry.clone(),
                        format!(
                            "layer {title}: size {} is not within 0…{MAX_ARTIFACT_FILE}",
                            layer.size
                        ),
                    )
                })?;
            // What is left of the artifact's total bounds each file as it arrives, whatever the
            // descriptors claimed.
            let room = MAX_ARTIFACT_FILE.min(MAX_ARTIFACT_TOTAL.saturating_sub(total));
            let bytes = self
                .blob(&r, &image.registry, layer, size, room)
                .await
                .map_err(|e| {
                    RegistryError::Bad(image.registry.clone(), format!("layer {title}: {e}"))
                })?;
            total = total.saturating_add(bytes.len());
            files.push(ArtifactFile {
                media_type: layer.media_type.clone(),
                title: title.clone(),
                bytes,
            });
        }
        Ok((m.config.media_type, files))
    }
}

/// The first [`MAX_SIGNATURES`] layers; the rest are noted as unread, not dropped silently.
fn capped<'a>(layers: &'a [Descriptor], unreadable: &mut Vec<String>) -> &'a [Descriptor] {
    if layers.len() > MAX_SIGNATURES {
        unreadable.push(format!(
            "{} more layers beyond the {MAX_SIGNATURES} read",
            layers.len() - MAX_SIGNATURES
        ));
    }
    layers.get(..MAX_SIGNATURES).unwrap_or(layers)
}

/// One message per failure, in words a person acts on.
fn classify(registry: &str, e: OciDistributionError, timeout: u64) -> RegistryError {
    use OciDistributionError as O;
    let r = registry.to_string();
    match e {
        O::RequestError(e) => {
            if e.is_timeout() {
                RegistryError::Timeout(r, timeout)
            } else if e.is_connect() {
                RegistryError::Unreachable(r, root_cause(&e))
            } else {
                RegistryError::Bad(r, root_cause(&e))
            }
        }
        O::UnauthorizedError { .. } | O::AuthenticationFailure(_) => RegistryError::Refused(
            r,
            "unauthorized: log in (docker login) or check the credentials in the Docker config"
                .into(),
        ),
        O::ImageManifestNotFoundError(_) => RegistryError::Refused(r, "not found".into()),
        O::RegistryError { envelope, .. } => {
            let not_found = envelope.errors.iter().any(|e| {
                matches!(
                    e.code,
                    oci_client::errors::OciErrorCode::ManifestUnknown
                        | oci_client::errors::OciErrorCode::NotFound
                        | oci_client::errors::OciErrorCode::NameUnknown
                        | oci_client::errors::OciErrorCode::BlobUnknown
                )
            });
            if not_found {
                RegistryError::Refused(r, "not found".into())
            } else {
                let msg: Vec<String> = envelope.errors.iter().map(|e| e.message.clone()).collect();
                RegistryError::Refused(r, msg.join("; "))
            }
        }
        O::ServerError { code: 404, .. } => RegistryError::Refused(r, "not found".into()),
        O::ServerError { code, message, .. } => {
            let text: String = message.chars().take(120).collect();
            let kind = if message.trim_start().starts_with('<') {
                "an HTML page, not the registry API".to_string()
            } else {
                text
            };
            if code >= 500 {
                RegistryError::Refused(r, format!("server error {code}: {kind}"))
            } else {
                RegistryError::Refused(r, format!("HTTP {code}: {kind}"))
            }
        }
        other => RegistryError::Bad(r, other.to_string()),
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
