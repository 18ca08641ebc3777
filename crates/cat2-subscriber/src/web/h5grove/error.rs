//! h5grove's errors: `{"message": …}` with 404 for what is not there, 422 for bad
//! parameters (h5grove's code for every query argument it refuses), and the subscriber's own
//! 503/504 for upstream failures.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use cat2_proto::ErrorCode;
use serde_json::json;

use crate::ApiError;
use crate::web::WebError;

/// A failed h5grove request, answered as h5grove does.
#[derive(Debug)]
pub(super) struct H5Error {
    status: StatusCode,
    message: String,
    /// A busy subscriber: come back in a second (`Retry-After`, as the REST API says).
    retry: bool,
}

impl H5Error {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry: false,
        }
    }

    pub(super) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub(super) fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }
}

impl From<ApiError> for H5Error {
    fn from(e: ApiError) -> Self {
        let (status, message) = match e.kind() {
            // h5grove says 422 for every bad query argument.
            ErrorCode::BadRequest => (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
            ErrorCode::Internal => {
                tracing::error!(error = %e, "h5grove request failed");
                (e.status(), "internal error".to_owned())
            }
            _ => (e.status(), e.to_string()),
        };
        Self {
            status,
            message,
            retry: e.kind() == ErrorCode::Busy,
        }
    }
}

impl From<WebError> for H5Error {
    fn from(e: WebError) -> Self {
        let status = if e.status == StatusCode::BAD_REQUEST {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            e.status
        };
        Self::new(status, e.message)
    }
}

impl IntoResponse for H5Error {
    fn into_response(self) -> Response {
        let body = axum::Json(json!({ "message": self.message }));
        if self.retry {
            return (self.status, [(header::RETRY_AFTER, "1")], body).into_response();
        }
        (self.status, body).into_response()
    }
}
