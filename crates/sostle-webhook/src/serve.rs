//! Serving [`crate::router()`] over TLS (rustls): reload config, profiles and the certificate
//! when their files change, drain on SIGTERM.
//!
//! Serving is thread-per-core: one accept loop hands each new connection to the event-loop
//! thread with the fewest open connections, and each such thread runs its own single-threaded
//! tokio runtime, so all of a connection's requests are read, evaluated and answered on one
//! core — no work stealing, no cross-thread wake-ups, warm caches (docs/webhook.md has the
//! measurements that chose this over one shared multi-threaded runtime). HTTP/1.1 only: the
//! API server then opens one connection per concurrent call, which the Service spreads over the
//! replicas and each replica over its cores (one HTTP/2 connection would pin to one core).

use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum_server::tls_rustls::RustlsConfig;

use crate::AppState;

/// Where and how the webhook serves.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The serving certificate (PEM), reloaded when it changes.
    pub tls_cert: PathBuf,
    /// Its key (PEM).
    pub tls_key: PathBuf,
    /// Event-loop threads (default: one per core).
    pub threads: Option<usize>,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub drain: Duration,
    /// How often the watched files are checked (at least a second).
    pub reload_interval: Duration,
    /// The files whose change reloads the state: the config, the profiles directory, the
    /// public key (the key files the config names are watched too).
    pub watched: Vec<PathBuf>,
    /// What one client may hold: the body-read timeout, the connection cap, the header size.
    pub bounds: Bounds,
}

/// What the server lets a client hold (SPEC §10): a request body must arrive whole within
/// `body_read_timeout`, at most `max_connections` connections are open at once (more are closed
/// as they are accepted), a request's header section is at most `max_header_bytes`, and the
/// bodies being read, all connections together, hold at most `body_budget` bytes (a request
/// that would go past it is answered 503 at once and its connection closed). A stalled or
/// oversized request is closed, never buffered without bound.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Longest a request's body may take to arrive, from its header's end.
    pub body_read_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Largest header section (and so hyper's read buffer), at least 8 KiB.
    pub max_header_bytes: usize,
    /// Most bytes of request bodies held at once, over all connections.
    pub body_budget: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            body_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_header_bytes: 64 * 1024,
            body_budget: 96 * 1024 * 1024,
        }
    }
}

/// Reads a request's body under the [`Bounds`]: within the timeout, within the size limit,
/// within the shared budget; answers 408, 413 or 503 (with `Connection: close`) otherwise.
async fn bounded_body(
    bounds: Bounds,
    budget: Arc<tokio::sync::Semaphore>,
    state: Arc<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::StatusCode;
    use futures_util::StreamExt;
    let refuse = |status: StatusCode, why: &'static str| {
        state.metrics.error(why);
        let mut r = axum::response::Response::new(axum::body::Body::from(why));
        *r.status_mut() = status;
        r.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
        r
    };
    let (parts, body) = req.into_parts();
    let mut stream = body.into_data_stream();
    let deadline = tokio::time::Instant::now() + bounds.body_read_timeout;
    let mut buf: Vec<u8> = Vec::new();
    let mut held: Vec<tokio::sync::OwnedSemaphorePermit> = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => return refuse(StatusCode::REQUEST_TIMEOUT, "body_read_timeout"),
            Ok(None) => break,
            Ok(Some(Err(_))) => return refuse(StatusCode::BAD_REQUEST, "body_read"),
            Ok(Some(Ok(chunk))) => {
                if buf.len().saturating_add(chunk.len()) > crate::MAX_BODY {
                    return refuse(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
                }
                // The budget is counted in KiB (a semaphore's permits are u32).
                let kib = u32::try_from(chunk.len().div_ceil(1024)).unwrap_or(u32::MAX);
                match budget.clone().try_acquire_many_owned(kib) {
                    Ok(p) => held.push(p),
                    Err(_) => return refuse(StatusCode::SERVICE_UNAVAILABLE, "body_budget"),
                }
                buf.extend_from_slice(&chunk);
            }
        }
    }
    let req = axum::extract::Request::from_parts(parts, axum::body::Body::from(buf));
    let response = next.run(req).await;
    drop(held);
    response
}

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The certificate or key cannot be read or used.
    #[error("TLS certificate {} / key {}: {error}", cert.display(), key.display())]
    Tls {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// The address cannot be listened on.
    #[error("listening on {addr}: {error}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// What the system said.
        error: std::io::Error,
    },
    /// An event-loop thread or its runtime could not start.
    #[error("starting an event loop: {0}")]
    Thread(std::io::Error),
    /// Waiting for the event loops to end failed.
    #[error("waiting for the event loops: {0}")]
    Join(String),
}

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

/// Serves `state`'s router over TLS until SIGTERM (or Ctrl-C), then drains: thread-per-core
/// event loops, certificate and config reloads on change (and on SIGHUP).
pub async fn serve(opts: ServeOptions, state: Arc<AppState>) -> Result<(), ServeError> {
    let tls = RustlsConfig::from_config(tls_config(&opts.tls_cert, &opts.tls_key).await?);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    spawn_reloader(&opts, state.clone(), tls.clone());
    spawn_stopper(state.clone(), stop);
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|error| ServeError::Listen {
            addr: opts.listen,
            error,
        })?;
    let threads = opts
        .threads
        .unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
        .max(1);
    let bounds = opts.bounds;
    let app = app(state.clone(), bounds, stopped.clone());
    let conn = Conn {
        tls,
        app,
        stopped: stopped.clone(),
        open: Arc::new(AtomicUsize::new(0)),
        max_header_bytes: bounds.max_header_bytes,
    };
    let (loops, joins) = start_loops(threads, &conn, opts.drain)?;
    tracing::info!(listen = %opts.listen, threads, "sostle webhook serving");
    accept(&listener, &loops, &state, bounds.max_connections, stopped).await;
    // Stop accepting; each loop finishes its in-flight requests (up to the drain time).
    drop(listener);
    drop(loops);
    tokio::task::spawn_blocking(move || {
        for j in joins {
            let _ = j.join();
        }
    })
    .await
    .map_err(|e| ServeError::Join(e.to_string()))?;
    tracing::info!("stopped");
    Ok(())
}

/// The fingerprint of the watched files and the key files the config names.
fn watched_fingerprint(
    watched: &[PathBuf],
    keys: &[PathBuf],
) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    fingerprint(
        &watched
            .iter()
            .chain(keys.iter())
            .map(PathBuf::as_path)
            .collect::<Vec<_>>(),
    )
}

/// Reloads the state when the watched files change and the certificate when its files do, and
/// both at once on SIGHUP.
fn spawn_reloader(opts: &ServeOptions, state: Arc<AppState>, tls: RustlsConfig) {
    let (cert, key) = (opts.tls_cert.clone(), opts.tls_key.clone());
    let watched = opts.watched.clone();
    let interval = opts.reload_interval.max(Duration::from_secs(1));
    // Registered before serving, so a SIGHUP never meets the default action (exit).
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    tokio::spawn(async move {
        let mut seen = watched_fingerprint(&watched, &state.loaded().key_files);
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
            // The key files the config names are watched too (a rotated or revoked
            // reviewer key takes effect without touching the config).
            let keys = state.loaded().key_files.clone();
            let now = watched_fingerprint(&watched, &keys);
            if forced || now != seen {
                seen = now;
                let s = state.clone();
                let _ = tokio::task::spawn_blocking(move || s.reload()).await;
            }
            let now_tls = fingerprint(&[cert.as_path(), key.as_path()]);
            if forced || now_tls != seen_tls {
                seen_tls = now_tls;
                reload_certificate(&state, &tls, &cert, &key).await;
            }
        }
    });
}

/// Swaps in the certificate and key from their files; a pair that does not load is refused
/// and the previous one kept.
async fn reload_certificate(state: &AppState, tls: &RustlsConfig, cert: &Path, key: &Path) {
    match tls_config(cert, key).await {
        Ok(config) => {
            tls.reload_from_config(config);
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

/// On SIGTERM (and Ctrl-C): stop being ready, stop accepting, drain in-flight requests.
fn spawn_stopper(state: Arc<AppState>, stop: tokio::sync::watch::Sender<bool>) {
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::spawn(async move {
        // `stop` lives as long as this task: dropping it would read as "stop" everywhere.
        // A Ctrl-C that cannot be watched is an error at once, not a request to stop.
        let ctrl_c = async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        match term {
            Some(mut term) => tokio::select! {
                _ = term.recv() => {},
                _ = ctrl_c => {},
            },
            None => {
                tracing::warn!("SIGTERM cannot be watched; only Ctrl-C stops the webhook");
                ctrl_c.await;
            }
        }
        tracing::info!("shutting down: draining in-flight requests");
        state.set_ready(false);
        let _ = stop.send(true);
    });
}

/// The router with the body bounds, and `Connection: close` on every answer once stopping.
fn app(
    state: Arc<AppState>,
    bounds: Bounds,
    closing: tokio::sync::watch::Receiver<bool>,
) -> axum::Router {
    // Once stopping, every answer says `Connection: close`: the API server takes its next
    // request elsewhere instead of sending it on a kept-alive connection we are about to close.
    let budget = Arc::new(tokio::sync::Semaphore::new(
        (bounds.body_budget / 1024)
            .clamp(crate::MAX_BODY / 1024, tokio::sync::Semaphore::MAX_PERMITS),
    ));
    let body_state = state.clone();
    crate::router(state)
        .layer(axum::middleware::from_fn(move |req, next| {
            bounded_body(bounds, budget.clone(), body_state.clone(), req, next)
        }))
        .layer(axum::middleware::map_response(
            move |mut r: axum::response::Response| {
                let closing = closing.clone();
                async move {
                    if *closing.borrow() {
                        r.headers_mut().insert(
                            axum::http::header::CONNECTION,
                            axum::http::HeaderValue::from_static("close"),
                        );
                    }
                    r
                }
            },
        ))
}

/// Where the accept loop hands connections: each event loop's channel and its count of open
/// connections.
type Loops = Vec<(
    tokio::sync::mpsc::UnboundedSender<std::net::TcpStream>,
    Arc<AtomicUsize>,
)>;

/// Starts `threads` event-loop threads serving like `conn` (each with its own count of open
/// connections).
fn start_loops(
    threads: usize,
    conn: &Conn,
    drain: Duration,
) -> Result<(Loops, Vec<std::thread::JoinHandle<()>>), ServeError> {
    let mut loops = Vec::new();
    let mut joins = Vec::new();
    for i in 0..threads {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let open = Arc::new(AtomicUsize::new(0));
        let conn = Conn {
            open: open.clone(),
            ..conn.clone()
        };
        // Built here, so a loop that cannot start stops the webhook instead of leaving a
        // loop that takes connections and never serves them.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_stack_size(crate::STACK_SIZE)
            .build()
            .map_err(ServeError::Thread)?;
        joins.push(
            std::thread::Builder::new()
                .name(format!("sostle-loop-{i}"))
                .stack_size(crate::STACK_SIZE)
                .spawn(move || event_loop(runtime, rx, conn, drain))
                .map_err(ServeError::Thread)?,
        );
        loops.push((tx, open));
    }
    Ok((loops, joins))
}

/// Accepts connections and hands each to an event loop, until `stopped`.
async fn accept(
    listener: &tokio::net::TcpListener,
    loops: &Loops,
    state: &AppState,
    max_connections: usize,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let mut next = 0;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if hand_over(stream, loops, &mut next, state, max_connections).is_break() {
                        break;
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stopped.wait_for(|s| *s) => break,
        }
    }
}

/// Hands an accepted connection to the event loop with the fewest open connections (ties go
/// round, from `next`), or closes it past the connection cap. `Break` when there is no loop
/// to take it.
fn hand_over(
    stream: tokio::net::TcpStream,
    loops: &Loops,
    next: &mut usize,
    state: &AppState,
    max_connections: usize,
) -> ControlFlow<()> {
    // The connection cap: past it a new connection is closed at once.
    let open_now: usize = loops.iter().map(|(_, o)| o.load(Ordering::Relaxed)).sum();
    if open_now >= max_connections {
        state.metrics.error("connection_cap");
        tracing::warn!(
            open = open_now,
            cap = max_connections,
            "connection cap reached; connection closed"
        );
        drop(stream);
        return ControlFlow::Continue(());
    }
    let Ok(stream) = stream.into_std() else {
        return ControlFlow::Continue(());
    };
    // The loop with the fewest open connections takes it; ties go round.
    let n = loops.len().max(1);
    let Some(i) = (0..n).map(|k| (*next + k) % n).min_by_key(|&i| {
        loops
            .get(i)
            .map_or(usize::MAX, |(_, open)| open.load(Ordering::Relaxed))
    }) else {
        return ControlFlow::Break(());
    };
    *next = (i + 1) % n;
    let Some((tx, open)) = loops.get(i) else {
        return ControlFlow::Break(());
    };
    open.fetch_add(1, Ordering::Relaxed);
    if tx.send(stream).is_err() {
        // Only when a loop has ended (it panicked): the connection is closed.
        open.fetch_sub(1, Ordering::Relaxed);
        state.metrics.error("event_loop");
        tracing::error!(event_loop = i, "an event loop has ended; connection closed");
    } else {
        state.metrics.connection(i);
    }
    ControlFlow::Continue(())
}

/// The serving certificate as a rustls config that offers HTTP/1.1 only (see the module doc).
async fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    let loaded = RustlsConfig::from_pem_file(cert, key)
        .await
        .map_err(|error| ServeError::Tls {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            error,
        })?;
    let mut config = (*loaded.get_inner()).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What an event loop needs to serve a connection.
#[derive(Clone)]
struct Conn {
    tls: RustlsConfig,
    app: axum::Router,
    stopped: tokio::sync::watch::Receiver<bool>,
    /// Open connections on this loop (the accept loop balances on it).
    open: Arc<AtomicUsize>,
    /// hyper's read buffer, which bounds a request's header section.
    max_header_bytes: usize,
}

/// One event-loop thread: a single-threaded runtime serving the connections it is handed until
/// the accept loop stops, then draining them for up to `drain`.
fn event_loop(
    runtime: tokio::runtime::Runtime,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<std::net::TcpStream>,
    conn: Conn,
    drain: Duration,
) {
    runtime.block_on(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                stream = rx.recv() => match stream {
                    Some(stream) => {
                        conns.spawn(serve_connection(stream, conn.clone()));
                    }
                    None => break,
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        let drained =
            tokio::time::timeout(drain, async { while conns.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(
                left = conns.len(),
                "drain time over: closing the remaining connections"
            );
        }
        conns.shutdown().await;
    });
}

/// Counts a connection as open until it is dropped.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// TLS handshake (time-capped), then HTTP/1.1 until the client closes or the server stops
/// (the request in flight is answered first).
async fn serve_connection(stream: std::net::TcpStream, conn: Conn) {
    /// A client that has not finished its TLS handshake by then is dropped.
    const HANDSHAKE: Duration = Duration::from_secs(10);
    /// A connection that sends no complete request header for this long is closed.
    const HEADER_READ: Duration = Duration::from_secs(120);
    let _open = Open(conn.open.clone());
    let Ok(stream) = tokio::net::TcpStream::from_std(stream) else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let acceptor = tokio_rustls::TlsAcceptor::from(conn.tls.get_inner());
    let stream = match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            return;
        }
    };
    let service = hyper_util::service::TowerToHyperService::new(conn.app);
    // hyper's header-read timer also runs while a kept-alive connection waits for its next
    // request, so it is longer than Go's idle-connection timeout (90 s): the API server closes
    // an idle connection before we would, and never sends a POST on one we just closed.
    let http = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ)
        .max_buf_size(conn.max_header_bytes.max(8192))
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    tokio::pin!(http);
    let mut stopped = conn.stopped;
    tokio::select! {
        _ = http.as_mut() => return,
        _ = stopped.wait_for(|s| *s) => {}
    }
    // Closing an idle kept-alive connection races a POST the API server may be sending on it
    // (it does not retry a POST that met EOF). So a connection lingers after the stop: the
    // next request on it is answered, with `Connection: close`, and the connection ends; one
    // the client leaves idle is closed when the linger is over (drain time permitting).
    const LINGER: Duration = Duration::from_secs(5);
    if tokio::time::timeout(LINGER, http.as_mut()).await.is_ok() {
        return;
    }
    http.as_mut().graceful_shutdown();
    let _ = http.await;
}
