//! `sostle webhook`: resolve the flags into the webhook's settings and serving options, set up
//! logging, and run `sostle_webhook::serve` (TLS, thread-per-core, reloads, drain on SIGTERM).

use std::time::Duration;

use anyhow::anyhow;
use sostle_core::layer::LayerSet;
use sostle_webhook::{AppState, Settings};

use crate::cli::{LogFormat, WebhookArgs};

pub fn run(args: WebhookArgs) -> anyhow::Result<u8> {
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false);
    match args.log_format {
        LogFormat::Json => subscriber.json().init(),
        LogFormat::Text => subscriber.with_ansi(false).init(),
    }
    let fail_open = match &args.fail_open {
        Some(layers) => {
            LayerSet::parse_items(layers.split(',')).map_err(|m| anyhow!("--fail-open: {m}"))?
        }
        None => sostle_webhook::door::fail_open(),
    };
    let settings = Settings {
        config_path: args.config.clone(),
        profiles_dir: args.profiles.clone(),
        public_key: args.public_key.clone(),
        // The environment's secret; the config's is read with the config, at every reload.
        token_secret: crate::settings::env_token_secret()?,
        eval_timeout: Duration::from_millis(args.eval_timeout_ms),
        max_concurrency: args.max_concurrency,
        fail_open,
        inline_max_bytes: args.inline_max_bytes,
    };
    let state = AppState::new(settings)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The control runtime (accept loop, reloads, signals); requests are served on the
    // event-loop threads `serve` starts.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let opts = sostle_webhook::serve::ServeOptions {
        listen: args.listen,
        tls_cert: args.tls_cert.clone(),
        tls_key: args.tls_key.clone(),
        threads: args.threads,
        drain: Duration::from_secs(args.drain_seconds),
        reload_interval: Duration::from_secs(args.reload_interval),
        watched: [args.config, args.profiles, args.public_key]
            .into_iter()
            .flatten()
            .collect(),
        bounds: sostle_webhook::serve::Bounds {
            body_read_timeout: Duration::from_secs(args.body_read_timeout),
            max_connections: args.max_connections,
            max_header_bytes: args.max_header_bytes,
            body_budget: args.body_budget_mib.saturating_mul(1024 * 1024),
        },
    };
    runtime.block_on(sostle_webhook::serve::serve(opts, state))?;
    Ok(crate::exit::OK)
}
