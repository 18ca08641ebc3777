//! The subscriber's one error type, mapped once to HTTP (`{"detail": …}` with a status).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cat2_client::ClientError;
use cat2_format::FormatError;
use cat2_proto::ErrorCode;

/// A failed API call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// Malformed input: bad path, bad slice, bad parameter.
    #[error("{0}")]
    BadRequest(String),
    /// Unknown root or dataset, or not subscribed.
    #[error("{0}")]
    NotFound(String),
    /// Upstream (publisher, NATS) unreachable.
    #[error("{0}")]
    Unavailable(String),
    /// Over a bound (memory budget, a busy publisher): ask again shortly (`Retry-After`).
    #[error("{0}")]
    Busy(String),
    /// Upstream did not answer in time.
    #[error("{0}")]
    Timeout(String),
    /// A bug or an unexpected local failure (details are logged, not returned).
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) | ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        match e.code() {
            ErrorCode::BadRequest => ApiError::BadRequest(e.to_string()),
            ErrorCode::NotFound => ApiError::NotFound(e.to_string()),
            ErrorCode::Timeout => ApiError::Timeout(format!("upstream timeout: {e}")),
            ErrorCode::Unavailable | ErrorCode::Stale => {
                ApiError::Unavailable(format!("upstream unavailable: {e}"))
            }
            ErrorCode::Busy => ApiError::Busy(format!("upstream busy: {e}")),
            ErrorCode::Internal => ApiError::Unavailable(format!("upstream error: {e}")),
        }
    }
}

impl From<FormatError> for ApiError {
    fn from(e: FormatError) -> Self {
        match e {
            FormatError::Slice(s) => ApiError::BadRequest(s.to_string()),
            FormatError::TooLarge { .. } => ApiError::BadRequest(e.to_string()),
            FormatError::NoSuchChunk { .. } => ApiError::BadRequest(e.to_string()),
            FormatError::ChunkUnavailable { .. } | FormatError::Changed { .. } => {
                ApiError::Unavailable(e.to_string())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(detail) = &self {
            tracing::error!(error = %detail, "internal error");
        }
        let body = axum::Json(cat2_proto::rest::ErrorReply {
            detail: self.to_string(),
        });
        if let ApiError::Busy(_) = &self {
            // Busy is brief: a second is enough for results in flight to drain.
            return (status, [(axum::http::header::RETRY_AFTER, "1")], body).into_response();
        }
        (status, body).into_response()
    }
}
