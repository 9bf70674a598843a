//! Errors of the HTTP layer, mapped to status codes in one place.

use std::path::{Path, PathBuf};

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

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

/// Why the config or the profiles did not load (nothing is applied then: at start the webhook
/// does not start, at a reload the previous state stays). Each message names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A file or directory could not be read.
    #[error("{}: {error}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// The config does not parse or validate.
    #[error("{}:{line}:{col}: invalid config: {message}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// 1-based line.
        line: u32,
        /// 1-based column.
        col: u32,
        /// What is wrong.
        message: String,
    },
    /// The config's `images` or `locks` settings cannot make a registry checker.
    #[error("{}invalid config: {message}", file_prefix(.path.as_deref()))]
    Registry {
        /// The config file, if one was given.
        path: Option<PathBuf>,
        /// What is wrong.
        message: String,
    },
    /// Profiles without a key to verify them.
    #[error("--profiles needs --public-key to verify them")]
    NoPublicKey,
    /// The public key is not a P-256 key.
    #[error("{}: not a P-256 public key ({message})", path.display())]
    PublicKey {
        /// The key file.
        path: PathBuf,
        /// What the decoder said.
        message: String,
    },
}

fn file_prefix(path: Option<&Path>) -> String {
    path.map(|p| format!("{}: ", p.display()))
        .unwrap_or_default()
}
