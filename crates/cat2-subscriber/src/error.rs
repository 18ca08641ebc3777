//! The subscriber's one error type: a kind ([`ErrorCode`], mapped to HTTP by the one table in
//! cat2-proto), a detail for the client, and the cause it came from, kept for the logs.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cat2_client::ClientError;
use cat2_format::FormatError;
use cat2_proto::ErrorCode;

type Cause = Arc<dyn std::error::Error + Send + Sync>;

/// A failed API call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{detail}")]
pub struct ApiError {
    kind: ErrorCode,
    detail: String,
    #[source]
    cause: Option<Cause>,
}

impl ApiError {
    /// An error of `kind` told to the client as `detail`.
    pub fn new(kind: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            cause: None,
        }
    }

    /// Malformed input: bad path, bad slice, bad parameter (400).
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, detail)
    }

    /// Unknown root or dataset, or not subscribed (404).
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, detail)
    }

    /// Upstream (publisher, NATS) unreachable or unusable (503).
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, detail)
    }

    /// Over a bound (memory budget, a busy publisher): ask again shortly (503 with
    /// `Retry-After`).
    pub fn busy(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Busy, detail)
    }

    /// Upstream did not answer in time (504).
    pub fn timeout(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Timeout, detail)
    }

    /// A bug or an unexpected local failure (500): the client is told "internal error", the
    /// log gets `e`.
    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::Internal, e.to_string())
    }

    /// The same error, remembering what caused it.
    #[must_use]
    pub fn caused_by(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.cause = Some(Arc::new(cause));
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorCode {
        self.kind
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<ClientError> for ApiError {
    /// The hop from a publisher or the broker to a REST client: what the publisher calls its
    /// own failure (stale, internal) is an unavailable upstream to the subscriber's clients.
    fn from(e: ClientError) -> Self {
        let (kind, detail) = match e.code() {
            ErrorCode::BadRequest => (ErrorCode::BadRequest, e.to_string()),
            ErrorCode::NotFound => (ErrorCode::NotFound, e.to_string()),
            ErrorCode::Timeout => (ErrorCode::Timeout, format!("upstream timeout: {e}")),
            ErrorCode::Unavailable | ErrorCode::Stale => {
                (ErrorCode::Unavailable, format!("upstream unavailable: {e}"))
            }
            ErrorCode::Busy => (ErrorCode::Busy, format!("upstream busy: {e}")),
            ErrorCode::Internal => (ErrorCode::Unavailable, format!("upstream error: {e}")),
        };
        Self::new(kind, detail).caused_by(e)
    }
}

impl From<FormatError> for ApiError {
    fn from(e: FormatError) -> Self {
        let kind = match &e {
            FormatError::Slice(_)
            | FormatError::TooLarge { .. }
            | FormatError::NoSuchChunk { .. } => ErrorCode::BadRequest,
            FormatError::ChunkUnavailable { .. } | FormatError::Changed { .. } => {
                ErrorCode::Unavailable
            }
            _ => ErrorCode::Internal,
        };
        let detail = match &e {
            FormatError::Slice(s) => s.to_string(),
            other => other.to_string(),
        };
        Self::new(kind, detail).caused_by(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = if self.kind == ErrorCode::Internal {
            tracing::error!(error = %self.detail, cause = ?self.cause, "internal error");
            "internal error".to_owned()
        } else {
            self.detail
        };
        let body = axum::Json(cat2_proto::rest::ErrorReply { detail });
        if self.kind == ErrorCode::Busy {
            // Busy is brief: a second is enough for results in flight to drain.
            return (status, [(axum::http::header::RETRY_AFTER, "1")], body).into_response();
        }
        (status, body).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_causes_survive_the_hop() {
        let remote = ClientError::Remote {
            code: ErrorCode::Busy,
            message: "publisher busy".into(),
        };
        let e = ApiError::from(remote);
        assert_eq!(e.kind(), ErrorCode::Busy);
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        let cause = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(cause.as_deref(), Some("publisher busy"));
        let stale = ClientError::Remote {
            code: ErrorCode::Stale,
            message: "changed".into(),
        };
        assert_eq!(ApiError::from(stale).kind(), ErrorCode::Unavailable);
    }

    #[test]
    fn internal_details_stay_in_the_log() {
        let r = ApiError::internal("disk on fire").into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let r = ApiError::busy("full").into_response();
        assert_eq!(r.headers()[axum::http::header::RETRY_AFTER], "1");
    }
}
