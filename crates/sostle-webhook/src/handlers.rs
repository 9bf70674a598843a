//! The routes: validate, mutate, Namespace relabelling, health and metrics; each review decoded,
//! decided on a blocking thread within the time cap, and answered.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use jiff::Timestamp;
use kube_core::admission::{AdmissionRequest, Operation};
use sostle_core::Layer;

use crate::{
    chaos_patch, check_images, clip, door, parse_review, validate, validate_namespace,
    AdmissionObject, ApiError, AppState, Decision, ImageResults, RequestLabels, MAX_BODY,
};

/// The router with every route.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(door::NAMESPACES_ROUTE, post(namespaces_handler))
        .route("/validate/{layer}", post(review_handler::<false>))
        .route("/mutate/{layer}", post(review_handler::<true>))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_handler))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

pub(crate) async fn readyz(State(s): State<Arc<AppState>>) -> Response {
    if s.ready.load(Ordering::SeqCst) {
        "ready".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "draining").into_response()
    }
}

pub(crate) async fn metrics_handler(State(s): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

/// The AdmissionReview v1 answer, written straight to bytes.
pub(crate) fn review_response(uid: &str, d: &Decision) -> Vec<u8> {
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

pub(crate) fn operation_name(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

/// `/validate/{layer}` (`MUTATE` false) and `/mutate/{layer}` (true).
pub(crate) async fn review_handler<const MUTATE: bool>(
    State(s): State<Arc<AppState>>,
    UrlPath(layer): UrlPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    handle(s, layer, body, MUTATE).await
}

pub(crate) async fn namespaces_handler(
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
pub(crate) fn answer(
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

pub(crate) async fn handle(
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
        if matches!(req.operation, Operation::Create | Operation::Update) {
            if let Some(obj) = req.object.as_ref() {
                if layer == Layer::Trial {
                    d.patch = chaos_patch(&obj.tree);
                }
                let loaded = s.loaded();
                d.patch.extend(
                    crate::decide::pin_patch(&loaded, layer, &obj.tree, door::image_budget(layer))
                        .await,
                );
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
            validate_now(&loaded, layer, &req, images.as_ref())
        } else {
            drop(loaded);
            validate_blocking(&s, layer, req, images).await
        }
    };
    Ok(answer(&s, layer.as_str(), op, &uid, &decision, started))
}

/// Decides a review now, with the loaded state's token secret.
fn validate_now(
    loaded: &crate::Loaded,
    layer: Layer,
    req: &AdmissionRequest<AdmissionObject>,
    images: Option<&ImageResults>,
) -> Decision {
    validate(
        loaded,
        layer,
        req,
        Timestamp::now(),
        loaded.token_secret.as_deref(),
        images,
    )
}

/// Evaluates a large review on a blocking thread, within the time cap; a failure follows the
/// layer's fail-open rule.
pub(crate) async fn validate_blocking(
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
                validate_now(&loaded, layer, &req, images.as_ref())
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
