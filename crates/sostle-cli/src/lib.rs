//! The command line, as clap types. The doc comments are the help text: the first line is what
//! `-h` shows, the rest is added by `--help`. A crate of its own (uv's `uv-cli`), so the binary
//! only dispatches: a command's flags are here, its settings are resolved in the binary's
//! `settings.rs`, its work is done by the libraries.
//!
//! `missing_docs` is allowed here alone: a doc comment on a clap type *is* its help text, and
//! on flattened groups and subcommand fields clap would fold it into the help; every flag and
//! command a user sees is documented (the generated docs/commands.md shows them all).
#![allow(missing_docs)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use sostle_core::Layer;

/// Layered policy trials for Kubernetes workloads.
///
/// sostle checks manifests against a layer-aware policy suite (layers L0–L7 and the
/// chaos-trial namespace), with exact file:line:column for every finding. One engine serves
/// the CLI (for CI and laptops) and the admission webhook (in the cluster).
#[derive(Debug, Parser)]
#[command(
    name = "sostle",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check manifests against their layer's gate and the policy suite.
    ///
    /// Reads files, directories (recursively: .yaml, .yml, .json, in sorted order) and `-`
    /// (stdin). Multi-document YAML and `kind: List` are split into resources. A resource's
    /// layer comes from --sostle-layer, else from its namespace's `sostle-layer` label (on a
    /// Namespace object in the input), else from the namespace name (`sostle-l<N>-*`,
    /// `chaos-trial`); resources with no layer are reported as unlayered and never denied.
    ///
    /// Exit status: 0 no failures (warnings allowed); 1 any failure; with --fail-on-warn, 1 for
    /// warnings only and 2 for failures; 3 when the run had an error (unreadable or unparsable
    /// input, bad config, bad flag) — after every other input was still checked and reported.
    Test(TestArgs),
    /// Write, explain and list exemptions (time-, owner-, resource-, reason-bound, reviewed,
    /// witnessed).
    ///
    /// An exemption is seven `sostle.eose.ca/exempt-*` annotations on the exempted resource. It is
    /// honoured only when every condition of SPEC §6 holds; otherwise every failing condition is
    /// reported. There are no permanent waivers.
    #[command(subcommand)]
    Exempt(ExemptCommand),
    /// Run a workload through a trial on the chaos pool: charge, burst, spiral, verdict.
    ///
    /// Trials live in the embedded ledger (`.sostle/ledger.db`, or --ledger / SOSTLE_LEDGER).
    /// A trial TRB-CHAOS-NNN is filed by `charge` and never reused.
    #[command(subcommand)]
    Trial(TrialCommand),
    /// Lock a trial's image with a signed MECIPOL profile (the verdict must be MECIPOL-LOCKED).
    ///
    /// Writes profile-NNN.json (the canonical JSON that is signed) and profile-NNN.json.sig
    /// (base64 DER ECDSA P-256) to --out (default .sostle/profiles) and records both in the ledger.
    Lock {
        /// The trial.
        trial: String,
        /// The signing key: cosign.key (password from COSIGN_PASSWORD) or a PKCS#8 PEM.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Directory for the profile and its signature.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Also attach each profile to its image in the registry, as `cosign attest` does: a
        /// DSSE-signed in-toto Statement (predicate type https://sostle.eose.ca/mecipol/v1)
        /// at `sha256-<hex>.att`, for the digest the trial ran (from the live pod's imageID or
        /// Trivy's RepoDigests, else the registry's answer for the tag).
        #[arg(long)]
        attach: bool,
        #[command(flatten)]
        registry: RegistryArgs,
        #[command(flatten)]
        rekor: RekorArgs,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Rewrite a manifest for its layer with a lock: namespace, no chaos scheduling, lock labels.
    ///
    /// Refuses a layer the profile does not authorize (L6 always), an image the profile does not
    /// lock, and a downgrade (a profile older than the workload's current lock).
    Promote {
        /// Manifest files.
        #[arg(value_name = "FILE", required = true)]
        paths: Vec<PathBuf>,
        /// Target layer.
        #[arg(value_parser = layer_arg, long, value_name = "LAYER")]
        to: Layer,
        /// The MECIPOL profile (`profile-NNN`).
        #[arg(long)]
        profile: String,
        /// Print YAML (with a comment naming the lock) or JSON (a `v1/List`, for `kubectl
        /// apply -f -` and scripts).
        #[arg(long, short = 'o', value_enum, default_value = "yaml")]
        output: PromoteFormat,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Make and import signing keys in cosign's formats.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Sign an image the way cosign does, in its registry.
    ///
    /// Resolves a tag to its digest, signs cosign's simple-signing payload for that digest
    /// (ECDSA P-256, SHA-256) and stores it as a layer of the OCI manifest tagged
    /// `sha256-<hex>.sig` in the image's repository, beside any signatures already there.
    /// `cosign verify --key cosign.pub` accepts it. Credentials come from the Docker config
    /// (DOCKER_CONFIG or ~/.docker/config.json); the key's password from COSIGN_PASSWORD.
    Sign(SignArgs),
    /// Verify an image's cosign signatures by a key or a keyless identity.
    ///
    /// Fetches the signatures stored at `sha256-<hex>.sig`, checks each (the signature over the
    /// exact payload bytes, the payload's digest against the image's, the signer) and prints
    /// which verified and why the others did not. Exit 0 when one verifies, 1 when none does,
    /// 3 on a run error (registry unreachable, a key that cannot be read).
    VerifyImage(VerifyImageArgs),
    /// Spawn, list, warm and reap trendals: crew-owned agent workloads per layer.
    #[command(subcommand)]
    Trendal(TrendalCommand),
    /// Create, upgrade and move ledgers (SQLite files, PostgreSQL databases).
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Run policy unit tests: a yang manifest that must violate a policy, a yin one that must pass.
    ///
    /// Each case file (YAML) holds `policy` (a native id or rego:<namespace>/<rule>), `yang`,
    /// `yin`, and optionally `note`, `layer`, `now`. Prints both manifests' witness hashes (SHA-256
    /// of their canonical JSON) and the epoch day; exit 1 when any case stays open. Replaces
    /// `conftest verify` for user Rego policies (--policy).
    Verify(VerifyArgs),
    /// The suite as Rego files that conftest runs unchanged.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Write the cluster side: layer namespaces, the spot chaos pool, the webhook.
    ///
    /// `--out DIR` writes a ready-to-apply tree with a README (namespaces.yaml, webhook.yaml,
    /// chaos-pool/az.sh, chaos-pool/main.tf); `--print PART` prints one part to stdout.
    Bootstrap(BootstrapArgs),
    /// Serve the admission webhook over TLS: the same engine, at the cluster door.
    ///
    /// Routes: POST /validate/{layer} and /mutate/{layer} ({layer} = L0…L7 or trial; the
    /// ValidatingWebhookConfiguration has one entry per layer selected by the namespace label
    /// sostle-layer), GET /healthz, /readyz, /metrics (Prometheus). Config, profiles and the
    /// certificate reload on change without a restart (a bad new config is refused and the old one
    /// kept); SIGHUP reloads at once; SIGTERM stops taking requests and drains those in flight.
    Webhook(WebhookArgs),
    /// Issue and verify SOSTLE tokens (the L4 gate).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Kay's approval of a workload for a Kay-gated layer (L5): sign it with a `kay` key.
    ///
    /// Signs, for each workload in FILE, `sostle-kay-approval/v1|NS|KIND|NAME|sha256:<pod
    /// template>|EXPIRES` and prints the two annotations (`sostle.eose.ca/kay-approval`,
    /// `sostle.eose.ca/kay-approval-expires`), or writes them into the YAML with --write. The
    /// approval holds only for the pod template signed: a changed image, command or privilege
    /// needs a new one. The key must be registered for a crew member with role `kay`.
    Approve(ApproveArgs),
    /// Measure sostle over a corpus: parse-only beside the whole check, in one run.
    ///
    /// Prints wall times for a single-threaded parse-only pass, a parallel parse-only pass and
    /// the whole check (parse, evaluate every layer's suite, JSON report) over the same files,
    /// with ratios. Use it on ../shared/corpus; see docs/performance.md.
    Bench(BenchArgs),
}

/// `--parser`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputParser {
    /// YAML (which includes JSON).
    Yaml,
    /// JSON only.
    Json,
}

/// Output formats of `sostle test` (one per printer of `sostle-printer`).
pub use sostle_printer::Format;

/// The user-policy flags of `sostle test` and `sostle verify` (conftest's).
#[derive(Debug, Clone, Default, Args)]
pub struct RegoArgs {
    /// User Rego policies: directories (walked), `.rego` files, or (with `sostle test`)
    /// `oci://REF`, a bundle in a registry as `conftest push` stores it; repeatable, as
    /// conftest's -p. Rules deny,
    /// violation, warn (and `_suffix` forms) and exception judge every document, whatever its
    /// layer; `sostle verify` runs their `test_*` rules as unit tests, as `conftest verify` and
    /// `opa test` do, and its cases may name their rules (rego:<namespace>/<rule>). Default for
    /// `sostle test`: ./policy when it exists (and is not sostle's own suite, which the native
    /// engine already runs), or what conftest.toml says.
    #[arg(long, short = 'p', value_name = "PATH")]
    pub policy: Vec<PathBuf>,
    /// Rego namespaces (packages) to evaluate; globs allowed. Default: main. (`sostle verify`
    /// runs unit tests in every namespace, as conftest verify does.)
    #[arg(long, short = 'n', value_name = "NS")]
    pub namespace: Vec<String>,
    /// Evaluate every namespace of the user policies.
    #[arg(long)]
    pub all_namespaces: bool,
    /// Data for the user policies: JSON or YAML files, or directories of them, merged into
    /// `data`.
    #[arg(long, short = 'd', value_name = "PATH")]
    pub data: Vec<PathBuf>,
    /// Builtin errors (a bad regex, a type error in a builtin) fail the run instead of leaving
    /// the expression undefined (regorus's strict mode; conftest's --show-builtin-errors).
    #[arg(long, alias = "show-builtin-errors")]
    pub strict: bool,
}

#[derive(Debug, Args)]
pub struct Common {
    /// SostleConfig file (YAML); the built-in default reproduces the seed.
    #[arg(long, env = "SOSTLE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Evaluate as of this instant (RFC 3339) instead of the system clock.
    #[arg(long, env = "SOSTLE_NOW", value_name = "RFC3339")]
    pub now: Option<String>,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The layer approved for (its gate must be Kay's approval: L5 by default).
    #[arg(value_name = "LAYER", value_parser = layer_arg)]
    pub layer: Layer,
    /// Manifest files.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Kay's signing key: cosign.key (password from COSIGN_PASSWORD) or a PKCS#8 PEM.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// When the approval ends (RFC 3339); default: the config's exemption maxDays from now.
    #[arg(long, value_name = "RFC3339")]
    pub expires: Option<String>,
    /// Write the annotations into the files (YAML, block-style annotations).
    #[arg(long)]
    pub write: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Files, directories, or `-` for stdin.
    ///
    /// Directories are walked like ripgrep walks them: `.gitignore`, `.ignore` and
    /// `.sostleignore` are honoured and hidden entries skipped; `.yaml`, `.yml` and `.json` files
    /// are read. A file named here is always read. Documents without `kind` (workflows, values
    /// files, kustomizations without kind) are skipped and counted, not errors. The `templates/`
    /// of a Helm chart (a directory with `Chart.yaml`) are not read: see --render-charts.
    #[arg(value_name = "PATH", required_unless_present = "kustomize")]
    pub paths: Vec<PathBuf>,
    /// Judge as this requester, as the door judges the identity the API server authenticated:
    /// `user:NAME` or `serviceaccount:NAMESPACE/NAME`. The L3 gate (and L4, L5 on it) then
    /// holds only when the requester acts for the crew member the workload names (the
    /// config's `crew[].subjects`). Without it the label alone is judged.
    #[arg(long = "as", value_name = "SUBJECT")]
    pub as_subject: Option<String>,
    /// A group of the `--as` requester (repeatable).
    #[arg(long = "as-group", value_name = "GROUP", requires = "as_subject")]
    pub as_group: Vec<String>,
    /// Walk hidden files and directories too.
    #[arg(long)]
    pub hidden: bool,
    /// Do not honour .gitignore, .ignore or .sostleignore files.
    #[arg(long)]
    pub no_ignore: bool,
    /// Leave out paths matching this glob (gitignore syntax; repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Leave out files whose path matches this regular expression (conftest's --ignore; named
    /// files included, stdin never).
    #[arg(long, value_name = "REGEX")]
    pub ignore: Option<String>,
    /// All inputs as one: user rules judge an array of `{path, contents}` of every document
    /// (conftest's --combine), reported as the input `Combined`; sostle's suite still judges
    /// each object.
    #[arg(long)]
    pub combine: bool,
    /// How to read the inputs: yaml (YAML and JSON, the default) or json (JSON only), as
    /// conftest's --parser; other conftest parsers are not Kubernetes formats sostle reads.
    #[arg(long, value_enum, value_name = "PARSER")]
    pub parser: Option<InputParser>,
    /// Render each Helm chart found with `helm template` (default values) and check the output;
    /// findings name the template (from helm's `# Source:` comments) and the output line.
    #[arg(long)]
    pub render_charts: bool,
    /// Check the output of `kustomize build DIR` (or `kubectl kustomize DIR`); repeatable.
    /// Findings name the overlay and the file each object came from, where known.
    #[arg(long, value_name = "DIR")]
    pub kustomize: Vec<PathBuf>,
    /// List the skipped (not Kubernetes) files and documents.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Judge every resource at this layer (L0…L7 or trial), whatever its namespace.
    #[arg(value_parser = layer_arg, long, value_name = "LAYER")]
    pub sostle_layer: Option<Layer>,
    /// Output format (conftest's names are accepted too: stdout = conftest, table, azuredevops).
    /// Default: human (or conftest.toml's `output`).
    #[arg(long, short = 'o', value_enum)]
    pub output: Option<Format>,
    /// Exit 1 on warnings alone, and 2 on failures.
    #[arg(long)]
    pub fail_on_warn: bool,
    /// Exit 0 even when policies fail (run errors still exit 3), as conftest's --no-fail.
    #[arg(long)]
    pub no_fail: bool,
    /// No colour, whatever the terminal (also NO_COLOR).
    #[arg(long)]
    pub no_color: bool,
    /// Print only failures and warnings (conftest --quiet): no passes, no summary when clean.
    #[arg(long)]
    pub quiet: bool,
    /// Leave conftest `exception` results out of the output (they still do not fail).
    #[arg(long)]
    pub suppress_exceptions: bool,
    /// Check image signatures at the registry, as the webhook does (deny_unsigned_image).
    ///
    /// Needs the config's `images.signers`; layers require them as `images.require` says
    /// (default L3–L7). Off by default: CI often has no registry access. Credentials come from
    /// the Docker config; an unreachable registry fails the image.
    #[arg(long)]
    pub verify_images: bool,
    #[command(flatten)]
    pub rego: RegoArgs,
    /// With `--policy oci://REF`: require a cosign signature on the bundle by this public key
    /// (repeatable: any of them) before its policies are used.
    #[arg(long, value_name = "FILE")]
    pub policy_key: Vec<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Time cap on one document's user-policy evaluation, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub rego_timeout_ms: u64,
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub ledger: LedgerArgs,
}

/// Where the ledger is.
#[derive(Debug, Args)]
pub struct LedgerArgs {
    /// The ledger: an SQLite file, or a PostgreSQL database a team shares
    /// (`postgres://user@host/db`; password from the URL, PGPASSWORD or ~/.pgpass). Else the
    /// config's `ledger.url`, else .sostle/ledger.db (for `test`, only when it exists).
    #[arg(long, env = "SOSTLE_LEDGER", value_name = "PATH|URL")]
    pub ledger: Option<String>,
}

/// Output formats of the trial commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TrialFormat {
    /// For people.
    Human,
    /// JSON (field names documented in docs/trials.md).
    Json,
    /// YAML manifests (burst).
    Yaml,
}

#[derive(Debug, Subcommand)]
pub enum TrialCommand {
    /// Evaluate a subject against the target layer and the trial namespace; file TRB-CHAOS-NNN.
    ///
    /// Lists the exemptions the subject would need and what must be fixed, and the PELEGO
    /// novelty of its failure pattern.
    Charge {
        /// Manifest files or directories.
        #[arg(value_name = "FILE", required = true)]
        paths: Vec<PathBuf>,
        /// The layer the subject is meant for.
        #[arg(value_parser = layer_arg, long, value_name = "LAYER")]
        target: Layer,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value = "human")]
        output: TrialFormat,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Print the trial manifest (chaos-trial, chaos tolerations, pool: chaos) and start the window.
    Burst {
        /// The trial.
        trial: String,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value = "yaml")]
        output: TrialFormat,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Ingest evidence: Falco JSON lines, Trivy JSON, Kubernetes events, the live pod spec.
    ///
    /// Every input is read and checked before anything is recorded: a malformed file is reported
    /// with its line and changes nothing in the ledger.
    Spiral {
        /// The trial.
        trial: String,
        /// Falco events (json_output), one JSON object per line.
        #[arg(long, value_name = "FILE")]
        falco: Option<PathBuf>,
        /// Trivy JSON report (repeatable).
        #[arg(long, value_name = "FILE")]
        trivy: Vec<PathBuf>,
        /// `kubectl get events -o json`.
        #[arg(long, value_name = "FILE")]
        events: Option<PathBuf>,
        /// The live pod spec (`kubectl get pod -o yaml`), or `-` for stdin.
        #[arg(long, value_name = "FILE")]
        live: Option<PathBuf>,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value = "human")]
        output: TrialFormat,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Reach the verdict: MECIPOL-LOCKED, EXEMPTIONS-PENDING, DENY-HARD or SPIRALING.
    ///
    /// Exit status 0 for MECIPOL-LOCKED and SPIRALING, 1 for EXEMPTIONS-PENDING and DENY-HARD.
    Verdict {
        /// The trial.
        trial: String,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value = "human")]
        output: TrialFormat,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Show a trial record with every phase (JSON).
    Show {
        /// The trial.
        trial: String,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// List trials.
    List {
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value = "human")]
        output: TrialFormat,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make an ECDSA P-256 key pair as `cosign generate-key-pair` does.
    ///
    /// Writes cosign.key (ENCRYPTED SIGSTORE PRIVATE KEY: scrypt N=32768 r=8 p=1,
    /// nacl/secretbox over PKCS#8; mode 0600) and cosign.pub (PKIX PEM). The password is
    /// COSIGN_PASSWORD, which must be set (empty is allowed, as with cosign).
    Generate {
        /// Directory to write the keys to.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Turn a PKCS#8 or SEC1 P-256 PEM key into a cosign key, as `cosign import-key-pair`.
    ///
    /// Writes import-cosign.key (encrypted with COSIGN_PASSWORD) and import-cosign.pub.
    Import {
        /// The PEM private key (`PRIVATE KEY` or `EC PRIVATE KEY`).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Directory to write the keys to.
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
    },
}

/// How to reach registries.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Trust this CA certificate (PEM) for registries, beside the system roots (repeatable).
    #[arg(long, value_name = "FILE")]
    pub registry_ca: Vec<PathBuf>,
    /// Speak plain HTTP to this registry (`host:port`; repeatable). Everything else needs TLS.
    #[arg(long, value_name = "HOST")]
    pub insecure_registry: Vec<String>,
    /// Limit on each registry call, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub registry_timeout: u64,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The image: `registry/repository:tag` or `…@sha256:<hex>`.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The private key: cosign.key (password from COSIGN_PASSWORD) or a PKCS#8 PEM.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    #[command(flatten)]
    pub rekor: RekorArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// SostleConfig file: its `rekor` section (url, key, required) when the flags give none.
    #[arg(long, env = "SOSTLE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The transparency log.
#[derive(Debug, Clone, Args)]
pub struct RekorArgs {
    /// Log the signature in this Rekor (a hashedrekord entry): `sign` stores cosign's bundle
    /// annotation with it, `lock` writes the entry's URL as the profile's rekor_entry. Default:
    /// the config's `rekor.url`; with neither nothing is logged (cosign's --tlog-upload=false)
    /// and rekor_entry stays null.
    #[arg(long, value_name = "URL", env = "SOSTLE_REKOR_URL")]
    pub rekor_url: Option<String>,
    /// The Rekor public key: the log's SignedEntryTimestamp must verify with it.
    #[arg(long, value_name = "FILE")]
    pub rekor_key: Option<PathBuf>,
    /// Fail when Rekor cannot be reached (by default the signature is kept unlogged, with a
    /// warning).
    #[arg(long, requires = "rekor_url")]
    pub rekor_required: bool,
}

/// Output of `sostle promote`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PromoteFormat {
    /// YAML documents.
    Yaml,
    /// One JSON `List`.
    Json,
}

/// Output of `sostle verify-image`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImageVerifyFormat {
    /// A line per signature.
    Human,
    /// One JSON object: image, digest, verified, refused.
    Json,
}

#[derive(Debug, Args)]
pub struct VerifyImageArgs {
    /// The image: `registry/repository:tag` or `…@sha256:<hex>`.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The public key signatures must verify with (cosign.pub).
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "certificate_identity",
        conflicts_with = "certificate_identity"
    )]
    pub key: Option<PathBuf>,
    /// Keyless: the identity (email or URI) the Fulcio certificate must name, exactly.
    #[arg(long, value_name = "ID", requires_all = ["certificate_oidc_issuer", "fulcio_root", "rekor_key"])]
    pub certificate_identity: Option<String>,
    /// Keyless: the OIDC issuer the certificate must record, exactly.
    #[arg(long, value_name = "URL")]
    pub certificate_oidc_issuer: Option<String>,
    /// Keyless: the Fulcio root certificate(s) (PEM) the certificate must chain to.
    #[arg(long, value_name = "FILE")]
    pub fulcio_root: Vec<PathBuf>,
    /// The Rekor public key: bundles are verified offline with it (a keyless signature's time
    /// comes from its bundle, so keyless needs it).
    #[arg(long, value_name = "FILE")]
    pub rekor_key: Option<PathBuf>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "human")]
    pub output: ImageVerifyFormat,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a token for a crew member at a layer.
    ///
    /// The secret comes from SOSTLE_TOKEN_SECRET, else from `tokens.secret` in the config.
    /// Prints the token alone, ready for `kubectl label … sostle-token=<token>`.
    Issue {
        /// Crew member (crew name or identity).
        #[arg(long)]
        crew: String,
        /// Layer the token admits to.
        #[arg(value_parser = layer_arg, long)]
        layer: Layer,
        /// When the token expires (RFC 3339).
        #[arg(long, value_name = "RFC3339")]
        expires: String,
        #[command(flatten)]
        common: Common,
    },
    /// Verify a token for a crew member at a layer; exit 1 with the reason when refused.
    Verify {
        /// The token.
        token: String,
        /// Crew member (crew name or identity).
        #[arg(long)]
        crew: String,
        /// Layer it is presented at.
        #[arg(value_parser = layer_arg, long)]
        layer: Layer,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Directory (or file) to measure.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    /// Repetitions of each measurement (the best is reported).
    #[arg(long, default_value_t = 5)]
    pub iterations: u32,
}

/// The values an exemption is made of.
#[derive(Debug, Args)]
pub struct ExemptValues {
    /// The exempted resource, `<namespace>/<name>`.
    #[arg(long, value_name = "NS/NAME")]
    pub resource: String,
    /// Policies to exempt, comma-separated.
    #[arg(long, value_name = "P1,P2")]
    pub policies: String,
    /// Why: must start with the trial id, `TRB-CHAOS-NNN …`.
    #[arg(long)]
    pub reason: String,
    /// When it ends (RFC 3339), at most 30 days ahead (config: exemptions.maxDays).
    #[arg(long, value_name = "RFC3339")]
    pub expires: String,
    /// The crew member who owns it.
    #[arg(long)]
    pub owner: String,
    /// The approver who reviewed it (crew name or identity; not the owner, except at L0).
    #[arg(long)]
    pub reviewed: String,
}

#[derive(Debug, Subcommand)]
pub enum ExemptCommand {
    /// Print the seven annotations for a new exemption, witness hash included.
    ///
    /// Refuses (exit 1, with every reason) an exemption that would not be honoured at the
    /// resource's layer. The layer comes from --layer, else from the namespace (name pattern or
    /// config). With --approve-key (the reviewer's private key) it also prints the eighth
    /// annotation, the signed approval; without it the reviewer adds that with `exempt approve`.
    New {
        #[command(flatten)]
        values: ExemptValues,
        /// The layer the resource runs at.
        #[arg(value_parser = layer_arg, long, value_name = "LAYER")]
        layer: Option<Layer>,
        /// The reviewer's private key (PKCS#8 PEM, e.g. cosign.key from `sostle key generate`):
        /// sign the witness and print `sostle.eose.ca/exempt-approval` too.
        #[arg(long, value_name = "FILE")]
        approve_key: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Explain every exemption found in manifests: honoured or not, why, days left.
    ///
    /// Exit status: 0 when every listed exemption is honoured or unused, 1 when any is refused,
    /// 3 on a run error.
    Check {
        /// Files, directories, or `-` for stdin.
        #[arg(value_name = "PATH", required = true)]
        paths: Vec<PathBuf>,
        /// Judge every resource at this layer.
        #[arg(value_parser = layer_arg, long, value_name = "LAYER")]
        sostle_layer: Option<Layer>,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// List every exemption with its state: active, expiring (≤ 7 days), expired, orphaned
    /// (applies to another resource), unused (the policy passes anyway) or refused.
    List {
        /// Files, directories, or `-` for stdin.
        #[arg(value_name = "PATH", required = true)]
        paths: Vec<PathBuf>,
        /// Judge every resource at this layer.
        #[arg(value_parser = layer_arg, long, value_name = "LAYER")]
        sostle_layer: Option<Layer>,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value = "human")]
        output: ListFormat,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Register an exemption's witness hash in the ledger.
    ///
    /// With a ledger in use, `sostle test` honours only exemptions whose witness is registered,
    /// and `max_days` counts from the registration.
    Witness {
        #[command(flatten)]
        values: ExemptValues,
        /// Who registers it (registered crew).
        #[arg(long)]
        by: String,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Sign the exemptions in manifests as their reviewer: the approval annotation.
    ///
    /// For every resource with exemption annotations, checks that the witness matches the
    /// values and that the key is registered for the `reviewed` crew member (`crew[].keys`),
    /// then signs the witness (ECDSA P-256, SHA-256; base64 DER) and prints
    /// `sostle.eose.ca/exempt-approval` for it — or, with --write, puts it into the file under the
    /// witness (replacing an older approval). Exit 1 when any could not be approved.
    /// Anyone can check an approval: `openssl dgst -sha256 -verify cosign.pub -signature SIG.der`
    /// over the witness bytes (`printf %s sha256:…`).
    Approve {
        /// Manifest files holding exemptions.
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
        /// The reviewer's private key (PKCS#8 PEM).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Write the approval into each file instead of printing it.
        #[arg(long)]
        write: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Print the witness hash of the values alone (for scripts).
    ///
    /// The same hash is `printf 'sostle-exemption/v1\napplies-to=%s\nexempt-from=%s\nexpires=%s\nowner=%s\nreason=%s\nreviewed=%s\n' … | sha256sum`.
    Hash {
        #[command(flatten)]
        values: ExemptValues,
    },
}

/// Output formats of `sostle exempt list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// A table.
    Human,
    /// A JSON array.
    Json,
}

#[derive(Debug, Args)]
pub struct WebhookArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:8443", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// Serving certificate (PEM chain).
    #[arg(long, value_name = "FILE")]
    pub tls_cert: PathBuf,
    /// Serving key (PEM).
    #[arg(long, value_name = "FILE")]
    pub tls_key: PathBuf,
    /// SostleConfig file.
    #[arg(long, env = "SOSTLE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of signed MECIPOL profiles (profile-NNN.json + .json.sig).
    #[arg(long, value_name = "DIR")]
    pub profiles: Option<PathBuf>,
    /// Public key (PEM) the profiles must verify against.
    #[arg(long, value_name = "FILE")]
    pub public_key: Option<PathBuf>,
    /// Time cap on one evaluation, in milliseconds (keep it below the webhook timeout).
    #[arg(long, default_value_t = 1500)]
    pub eval_timeout_ms: u64,
    /// Concurrent evaluations.
    #[arg(long, default_value_t = 64)]
    pub max_concurrency: usize,
    /// Reviews up to this many bytes are evaluated inline (microseconds); larger ones on the
    /// blocking pool under the time cap. 0: always the blocking pool.
    #[arg(long, default_value_t = 16384)]
    pub inline_max_bytes: usize,
    /// Layers at which an internal error admits with a warning (others deny). Default: those
    /// whose webhook entries bootstrap writes with `failurePolicy: Ignore`, L0-L2.
    #[arg(long, value_name = "LAYERS")]
    pub fail_open: Option<String>,
    /// How often to look for changed config, profiles and certificates, in seconds.
    #[arg(long, default_value_t = 2)]
    pub reload_interval: u64,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Seconds to drain in-flight requests after SIGTERM.
    #[arg(long, default_value_t = 25)]
    pub drain_seconds: u64,
    /// Event-loop threads; each serves its own connections, and new connections go to the one
    /// with the fewest (default: one per CPU).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Seconds a request's body may take to arrive; a slower one is answered 408 and its
    /// connection closed.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub body_read_timeout: u64,
    /// Most connections open at once; more are closed as they are accepted.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_connections: usize,
    /// Largest request header section, in bytes (at least 8192).
    #[arg(long, default_value_t = 65536, value_name = "BYTES")]
    pub max_header_bytes: usize,
    /// Most MiB of request bodies held at once over all connections; a request past it is
    /// answered 503 at once (at least one largest body, 3 MiB).
    #[arg(long, default_value_t = 96, value_name = "MiB")]
    pub body_budget_mib: usize,
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line per event, for people.
    Text,
    /// One JSON object per event.
    Json,
}

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// Directory to write the tree to.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print one part to stdout instead.
    #[arg(long, value_enum)]
    pub print: Option<BootstrapPart>,
    /// AKS cluster name (else `cluster.name` in the config).
    #[arg(long)]
    pub cluster: Option<String>,
    /// Resource group (else `cluster.resourceGroup` in the config).
    #[arg(long)]
    pub resource_group: Option<String>,
    /// The sostle image the webhook Deployment runs (pinned).
    #[arg(long, default_value = "ghcr.io/eose/sostle:0.1.0")]
    pub image: String,
    /// Run the image by this digest (`sha256:…`, e.g. from `sostle sign` or a build):
    /// the Deployment names `REPOSITORY@DIGEST`, so the cluster runs exactly what was signed.
    #[arg(long, value_name = "DIGEST")]
    pub image_digest: Option<String>,
    /// SostleConfig file (also shipped in the webhook's ConfigMap).
    #[arg(long, env = "SOSTLE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Point the webhook configurations at this base URL instead of the in-cluster Service
    /// (an API server that cannot reach Services, a test control plane):
    /// `https://127.0.0.1:8443`, each entry's route appended. Needs --webhook-ca.
    #[arg(long, value_name = "URL", requires = "webhook_ca")]
    pub webhook_url: Option<String>,
    /// The CA of the webhook's serving certificate (PEM), put in every entry's caBundle (with
    /// --webhook-url; instead of cert-manager's injection).
    #[arg(long, value_name = "FILE", requires = "webhook_url")]
    pub webhook_ca: Option<PathBuf>,
}

/// Parts of the bootstrap tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BootstrapPart {
    /// The nine layer namespaces.
    Namespaces,
    /// The chaos pool as an `az aks nodepool add` script.
    Az,
    /// The chaos pool as Terraform.
    Terraform,
    /// The webhook's objects.
    Webhook,
    /// The suite as Rego (the files of `sostle policy export`, concatenated per file).
    Rego,
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Create the ledger's tables, or bring them to this sostle's schema.
    ///
    /// Every command migrates the ledger it opens; this does only that, so a database owner can
    /// run it once (e.g. before CI runners that lack DDL rights start). Migrations run in one
    /// transaction under an advisory lock: runners starting at once migrate once. A database
    /// or file that holds another application's tables is refused untouched.
    Migrate {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Copy every record of one ledger into another (e.g. a laptop's SQLite into the team's
    /// PostgreSQL), in one transaction.
    ///
    /// Records already in TO and identical are kept (the copy can be repeated); a record that
    /// differs from the one of the same name in TO (two ledgers that both filed TRB-CHAOS-001)
    /// is a conflict: nothing is copied, exit 1. Counters move to the larger of the two, so what
    /// TO files next follows both histories.
    Copy {
        /// The ledger to read (an SQLite file or a postgres:// URL); it must exist.
        #[arg(value_name = "FROM")]
        from: String,
        /// The ledger to write (created and migrated when missing).
        #[arg(value_name = "TO")]
        to: String,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value = "human")]
        output: LedgerFormat,
    },
}

/// Output formats of `ledger copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LedgerFormat {
    /// For people.
    Human,
    /// JSON: `{"from", "to", "tables": [{"table", "copied", "present"}]}`.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum TrendalCommand {
    /// Spawn a trendal: register it in the ledger and print it (or its manifest).
    ///
    /// Refused with a reason: L6; warmth below the 0.5 floor (COLD); unknown crew or spiral
    /// members; L4 without --token; L5 without --kay-approved; L7 with MEGSCIFIAR gates closed; a
    /// manifest that would not pass its own layer's suite. With --trial-id the trendal runs on the
    /// chaos pool (tolerations injected); without, on the agents pool.
    Spawn(SpawnArgs),
    /// List trendals with warmth and state.
    List {
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: TrendalFormat,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Set a trendal's warmth (in [0, 1]).
    Warm {
        /// The trendal.
        id: String,
        /// New warmth.
        warmth: f64,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Expire trendals below the floor or whose trial closed; print what to `kubectl delete -f -`.
    Reap {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
}

/// Output formats of the trendal commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TrendalFormat {
    /// The seven lines of SPEC §8.
    Text,
    /// The trendal's manifest.
    Yaml,
    /// JSON.
    Json,
}

#[derive(Debug, Args)]
pub struct SpawnArgs {
    /// Layer (L0…L7).
    #[arg(value_parser = layer_arg, long, value_name = "LAYER")]
    pub sostle: Layer,
    /// Silo name.
    #[arg(long)]
    pub silo: String,
    /// Owning crew member (not needed at L0).
    #[arg(long)]
    pub crew: Option<String>,
    /// Crew spiral, members joined by `+` (e.g. BOSUN+RICK+CODY).
    #[arg(long)]
    pub crew_spiral: Option<String>,
    /// Trial to run under (on the chaos pool).
    #[arg(long, value_name = "TRB")]
    pub trial_id: Option<String>,
    /// Warmth in [0, 1]; below 0.5 a spawn is refused.
    #[arg(long)]
    pub warmth: f64,
    /// Namespace (default: the layer's).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Image (pinned).
    #[arg(long)]
    pub image: Option<String>,
    /// MECIPOL profile to attach (lock labels).
    #[arg(long)]
    pub profile: Option<String>,
    /// SOSTLE token (L4).
    #[arg(long)]
    pub token: Option<String>,
    /// Kay approved (L5).
    #[arg(long)]
    pub kay_approved: bool,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    pub output: TrendalFormat,
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub ledger: LedgerArgs,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Write the suite as Rego (package main, Rego v1) with config.rego and data.json.
    ///
    /// conftest runs them unchanged:
    /// conftest test --all-namespaces -p DIR -d DIR/data.json manifest.yaml
    /// Optional data: sostle.layer (else from the namespace), sostle.epoch_day (else from the
    /// clock), sostle.valid_tokens (L4 tokens already verified by `sostle token verify`).
    Export {
        /// Directory to write to.
        #[arg(value_name = "DIR")]
        out: PathBuf,
        /// SostleConfig to render into config.rego and data.json.
        #[arg(long, env = "SOSTLE_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Push a policy directory to an OCI registry as conftest does (`conftest push`).
    ///
    /// One layer per .rego file and per data file (JSON/YAML under --data, default DIR), each
    /// titled with its path; conftest's media types, oras's empty config. `conftest pull` and
    /// `sostle test --policy oci://REF` read it. Sign it with `sostle sign REF --key …` so
    /// `--policy-key` can require the signature.
    Push {
        /// The policy directory (or a .rego file).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Where: `registry/repository[:tag]` (`:latest` when none), `oci://` allowed.
        #[arg(value_name = "REF")]
        reference: String,
        /// Data files to include (default: those under DIR).
        #[arg(long, short = 'd', value_name = "DIR")]
        data: Option<PathBuf>,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Pull a policy bundle (pushed by `sostle policy push` or `conftest push`) into DIR.
    ///
    /// Files are written under DIR by their layer titles; a title that would leave DIR is
    /// refused. With --policy-key, only a bundle with a cosign signature by that key is pulled.
    Pull {
        /// `registry/repository[:tag|@digest]`, `oci://` allowed.
        #[arg(value_name = "REF")]
        reference: String,
        /// Directory to write to (created).
        #[arg(value_name = "DIR", default_value = "policy")]
        dir: PathBuf,
        /// Require a cosign signature on the bundle by this public key (repeatable: any).
        #[arg(long, value_name = "FILE")]
        policy_key: Vec<PathBuf>,
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Case files or directories (yin/yang cases).
    #[arg(value_name = "DIR", required_unless_present = "policy")]
    pub dirs: Vec<PathBuf>,
    #[command(flatten)]
    pub rego: RegoArgs,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "human")]
    pub output: VerifyFormat,
    #[command(flatten)]
    pub common: Common,
}

/// Output formats of `sostle verify`.
pub use sostle_printer::verify::VerifyFormat;

/// A layer flag's value: `L0`…`L7` (any case) or `trial`, parsed where the flags are.
fn layer_arg(s: &str) -> Result<Layer, NotALayer> {
    Layer::parse(s).ok_or_else(|| NotALayer(s.to_string()))
}

/// A layer flag's value that names no layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a layer; write L0…L7 or trial")]
pub struct NotALayer(pub String);
