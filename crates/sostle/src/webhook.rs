//! `sostle webhook`: serve `sostle_webhook::router()` over TLS (rustls), reload config, profiles
//! and the certificate when their files change, drain on SIGTERM.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Context};
use axum_server::tls_rustls::RustlsConfig;
use sostle_core::layer::LayerSet;
use sostle_webhook::{AppState, Settings};

use crate::cli::{LogFormat, WebhookArgs};

/// A cheap fingerprint of files: (path, modified, length) of each (directories: their entries).
fn fingerprint(paths: &[&Path]) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    let mut out = Vec::new();
    for p in paths {
        let mut push = |q: &Path| {
            let m = std::fs::metadata(q).ok();
            out.push((
                q.to_path_buf(),
                m.as_ref().and_then(|m| m.modified().ok()),
                m.map_or(0, |m| m.len()),
            ));
        };
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            push(p);
            for e in entries {
                push(&e);
            }
        } else {
            push(p);
        }
    }
    out
}

pub fn run(args: WebhookArgs) -> anyhow::Result<u8> {
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false);
    match args.log_format {
        LogFormat::Json => subscriber.json().init(),
        LogFormat::Text => subscriber.with_ansi(false).init(),
    }
    let fail_open = LayerSet::parse_items(args.fail_open.split(','))
        .map_err(|m| anyhow!("--fail-open: {m}"))?;
    let settings = Settings {
        config_path: args.config.clone(),
        profiles_dir: args.profiles.clone(),
        public_key: args.public_key.clone(),
        // The environment's secret; the config's is read with the config, at every reload.
        token_secret: crate::env_token_secret(),
        eval_timeout: Duration::from_millis(args.eval_timeout_ms),
        max_concurrency: args.max_concurrency,
        fail_open,
        inline_max_bytes: args.inline_max_bytes,
    };
    let state = AppState::new(settings).map_err(anyhow::Error::msg)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args, state))?;
    Ok(0)
}

async fn serve(args: WebhookArgs, state: Arc<AppState>) -> anyhow::Result<()> {
    let tls = RustlsConfig::from_pem_file(&args.tls_cert, &args.tls_key)
        .await
        .with_context(|| {
            format!(
                "TLS certificate {} / key {}",
                args.tls_cert.display(),
                args.tls_key.display()
            )
        })?;
    let handle = axum_server::Handle::new();
    // Reload on change (and at once on SIGHUP).
    {
        let state = state.clone();
        let tls = tls.clone();
        let (cert, key) = (args.tls_cert.clone(), args.tls_key.clone());
        let watched: Vec<PathBuf> = [
            args.config.clone(),
            args.profiles.clone(),
            args.public_key.clone(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let interval = Duration::from_secs(args.reload_interval.max(1));
        // Registered before serving, so a SIGHUP never meets the default action (exit).
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        tokio::spawn(async move {
            let refs = |v: &[PathBuf]| {
                v.iter()
                    .map(PathBuf::as_path)
                    .map(Path::to_path_buf)
                    .collect::<Vec<_>>()
            };
            let mut seen = fingerprint(
                &refs(&watched)
                    .iter()
                    .map(PathBuf::as_path)
                    .collect::<Vec<_>>(),
            );
            let mut seen_tls = fingerprint(&[cert.as_path(), key.as_path()]);
            loop {
                let forced = match hup.as_mut() {
                    Some(h) => tokio::select! {
                        _ = tokio::time::sleep(interval) => false,
                        _ = h.recv() => true,
                    },
                    None => {
                        tokio::time::sleep(interval).await;
                        false
                    }
                };
                let now = fingerprint(&watched.iter().map(PathBuf::as_path).collect::<Vec<_>>());
                if forced || now != seen {
                    seen = now;
                    let s = state.clone();
                    let _ = tokio::task::spawn_blocking(move || s.reload()).await;
                }
                let now_tls = fingerprint(&[cert.as_path(), key.as_path()]);
                if forced || now_tls != seen_tls {
                    seen_tls = now_tls;
                    match tls.reload_from_pem_file(&cert, &key).await {
                        Ok(()) => {
                            state.metrics.reload("certificate");
                            tracing::info!("serving certificate reloaded");
                        }
                        Err(e) => {
                            state.metrics.reload("certificate_error");
                            state.metrics.error("certificate");
                            tracing::error!(error = %e, "new certificate refused; keeping the previous one");
                        }
                    }
                }
            }
        });
    }
    // SIGTERM (and Ctrl-C): stop being ready, stop accepting, drain in-flight requests.
    {
        let handle = handle.clone();
        let state = state.clone();
        let drain = Duration::from_secs(args.drain_seconds);
        let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::spawn(async move {
            let Some(mut term) = term else { return };
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
            tracing::info!("shutting down: draining in-flight requests");
            state.set_ready(false);
            handle.graceful_shutdown(Some(drain));
        });
    }
    tracing::info!(listen = %args.listen, "sostle webhook serving");
    let app = sostle_webhook::router(state);
    axum_server::bind_rustls(args.listen, tls)
        .handle(handle)
        .serve(app.into_make_service())
        .await
        .with_context(|| format!("serving on {}", args.listen))?;
    tracing::info!("stopped");
    Ok(())
}
