//! The subscriber's REST API (spec §2.3) as seen by the client: URL building, error mapping
//! and JSON or byte replies.

use std::time::Duration;

use reqwest::{Response, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::CliError;

/// How long to wait for a connection, and then for each read of a reply.
const TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP client bound to one subscriber.
#[derive(Debug, Clone)]
pub struct Api {
    client: reqwest::Client,
    /// `http://host:port/` (any path prefix given with `--host` kept).
    base: Url,
}

impl Api {
    /// A client for the subscriber at `host`: `HOST:PORT`, or a full `http(s)://` URL.
    ///
    /// Connecting and each read time out after 30 s; there is no total timeout, so large
    /// downloads are fine.
    ///
    /// # Errors
    /// [`CliError::BadHost`] when `host` does not make a URL, [`CliError::Request`] when the
    /// HTTP client cannot be set up.
    pub fn new(host: &str) -> Result<Self, CliError> {
        Self::with_token(host, None)
    }

    /// [`Api::new`], sending `token` as `Authorization: Bearer TOKEN` on every request (for
    /// subscribers with `auth_tokens`).
    ///
    /// # Errors
    /// As [`Api::new`]; [`CliError::BadHost`] for a token that cannot be a header.
    pub fn with_token(host: &str, token: Option<&str>) -> Result<Self, CliError> {
        let bad = || CliError::BadHost {
            host: host.to_owned(),
        };
        let text = if host.contains("://") {
            host.to_owned()
        } else {
            format!("http://{host}/")
        };
        let base = Url::parse(&text).map_err(|_| bad())?;
        if base.cannot_be_a_base() || base.host_str().is_none_or(str::is_empty) {
            return Err(bad());
        }
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(t) = token {
            let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {t}"))
                .map_err(|_| bad())?;
            v.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(TIMEOUT)
            .read_timeout(TIMEOUT)
            .build()
            .map_err(|e| CliError::request(&e))?;
        Ok(Self { client, base })
    }

    /// The URL of `/api/<route>/<path>` (`/api/<route>` for an empty `path`), each part of
    /// `path` percent-encoded.
    ///
    /// # Errors
    /// [`CliError::UnsafePath`] for an absolute `path`, or one with `.`/`..` parts (which URLs
    /// would silently drop or resolve).
    pub fn url(&self, route: &str, path: &str) -> Result<Url, CliError> {
        let parts = if path.is_empty() {
            Vec::new()
        } else {
            path_parts(path)?
        };
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| CliError::BadHost {
                host: self.base.to_string(),
            })?
            .pop_if_empty()
            .extend(["api", route])
            .extend(parts);
        Ok(url)
    }

    /// `GET /api/<route>/<path>`, parsed as JSON into `T` (one of [`cat2_proto::rest`]'s
    /// replies, or a [`Value`]).
    ///
    /// # Errors
    /// Transport errors, error statuses, and replies that are not a `T`.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        route: &str,
        path: &str,
    ) -> Result<T, CliError> {
        let url = self.url(route, path)?;
        tracing::debug!(%url, "get");
        let resp = self.client.get(url.clone()).send().await;
        json_body(&url, check(resp.map_err(|e| CliError::request(&e))?).await?).await
    }

    /// `POST /api/<route>/<path>` without a body, parsed as JSON.
    ///
    /// # Errors
    /// As [`Api::get_json`].
    pub async fn post_json<T: DeserializeOwned>(
        &self,
        route: &str,
        path: &str,
    ) -> Result<T, CliError> {
        let url = self.url(route, path)?;
        tracing::debug!(%url, "post");
        let resp = self.client.post(url.clone()).send().await;
        json_body(&url, check(resp.map_err(|e| CliError::request(&e))?).await?).await
    }

    /// `GET /api/<route>/<path>?<query>`, the whole body as bytes.
    ///
    /// # Errors
    /// Transport errors and error statuses.
    pub async fn get_bytes(
        &self,
        route: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<u8>, CliError> {
        let mut url = self.url(route, path)?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        tracing::debug!(%url, "get");
        let resp = self.client.get(url).send().await;
        let resp = check(resp.map_err(|e| CliError::request(&e))?).await?;
        let body = resp.bytes().await.map_err(|e| CliError::request(&e))?;
        Ok(body.to_vec())
    }

    /// `GET url` (any URL, e.g. one `/api/download` returned), ready to be streamed.
    ///
    /// # Errors
    /// Transport errors and error statuses.
    pub async fn get_stream(&self, url: Url) -> Result<Response, CliError> {
        tracing::debug!(%url, "get (stream)");
        let resp = self.client.get(url).send().await;
        check(resp.map_err(|e| CliError::request(&e))?).await
    }
}

/// The `/`-separated parts of a dataset or root path, refusing what would escape it.
pub(crate) fn path_parts(path: &str) -> Result<Vec<&str>, CliError> {
    let parts: Vec<&str> = path.split('/').collect();
    if path.is_empty() || path.starts_with('/') || parts.iter().any(|p| matches!(*p, "." | "..")) {
        return Err(CliError::UnsafePath {
            path: path.to_owned(),
        });
    }
    Ok(parts)
}

/// Turns an error status into [`CliError::Status`], with FastAPI's `{"detail": …}` as message.
async fn check(resp: Response) -> Result<Response, CliError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = resp.bytes().await.unwrap_or_default();
    Err(CliError::Status {
        status: status.as_u16(),
        message: error_message(status, &body),
    })
}

/// `detail` of a JSON error body (a string as is, anything else as JSON), else the status line.
pub(crate) fn error_message(status: reqwest::StatusCode, body: &[u8]) -> String {
    let detail = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|mut v| v.get_mut("detail").map(Value::take));
    match detail {
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => status.to_string(),
    }
}

async fn json_body<T: DeserializeOwned>(url: &Url, resp: Response) -> Result<T, CliError> {
    let body = resp.bytes().await.map_err(|e| CliError::request(&e))?;
    serde_json::from_slice(&body).map_err(|e| CliError::BadReply {
        url: url.to_string(),
        reason: format!("unexpected reply: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn urls_are_encoded_per_part() {
        let api = Api::new("localhost:8002").unwrap();
        let u = api.url("info", "foo/dir 1/a?b#c%.b2nd").unwrap();
        assert_eq!(
            u.as_str(),
            "http://localhost:8002/api/info/foo/dir%201/a%3Fb%23c%25.b2nd"
        );
        let api = Api::new("http://h:1/prefix/").unwrap();
        assert_eq!(
            api.url("list", "foo").unwrap().as_str(),
            "http://h:1/prefix/api/list/foo"
        );
        assert_eq!(
            api.url("roots", "").unwrap().as_str(),
            "http://h:1/prefix/api/roots"
        );
        for bad in ["/etc/passwd", "foo/../bar", "..", "foo/./x"] {
            assert!(
                matches!(api.url("info", bad), Err(CliError::UnsafePath { .. })),
                "{bad}"
            );
        }
        assert!(matches!(Api::new(""), Err(CliError::BadHost { .. })));
        assert!(matches!(Api::new("a b:c"), Err(CliError::BadHost { .. })));
    }

    #[test]
    fn error_messages() {
        let nf = StatusCode::NOT_FOUND;
        assert_eq!(
            error_message(nf, br#"{"detail":"Not subscribed to foo"}"#),
            "Not subscribed to foo"
        );
        assert_eq!(
            error_message(
                StatusCode::UNPROCESSABLE_ENTITY,
                br#"{"detail":[{"msg":"x"}]}"#
            ),
            r#"[{"msg":"x"}]"#
        );
        assert_eq!(
            error_message(StatusCode::INTERNAL_SERVER_ERROR, b"Internal Server Error"),
            "500 Internal Server Error"
        );
        assert_eq!(error_message(nf, b"[1]"), "404 Not Found");
    }
}
