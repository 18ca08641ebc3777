//! Optional REST authentication (off unless tokens are configured): every `/api/*` and
//! `/files/*` request must carry one of the configured tokens, as `Authorization: Bearer
//! TOKEN` (scripts, `cat2cli --token`) or as Caterva2's `c2subauth` cookie (what python-blosc2
//! sends with `auth_token="c2subauth=TOKEN"`). Anything else is `401 {"detail":
//! "Unauthorized"}`, as Caterva2 answers. `/metrics` and `/healthz` stay open for monitoring.
//!
//! The configuration holds SHA-256 digests of the tokens, never the tokens (`auth_tokens =
//! "sha256:<hex>, …"`; `printf %s TOKEN | sha256sum` makes one). Tokens are long random
//! secrets, so a plain hash is enough (a password hash buys nothing for them); digests are
//! compared in constant time, all of them every time.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The SHA-256 digests of the accepted tokens (none: authentication off).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tokens(pub Vec<[u8; 32]>);

impl Tokens {
    /// Parses `sha256:<64 hex digits>` entries separated by commas or spaces.
    ///
    /// # Errors
    /// An entry that is not such a digest, named.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for e in text.split([',', ' ', '\n']).filter(|e| !e.is_empty()) {
            let hex = e
                .strip_prefix("sha256:")
                .filter(|h| h.len() == 64)
                .ok_or_else(|| format!("{e:?} is not sha256:<64 hex digits>"))?;
            let mut d = [0u8; 32];
            for (i, b) in d.iter_mut().enumerate() {
                *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                    .map_err(|_| format!("{e:?} is not sha256:<64 hex digits>"))?;
            }
            out.push(d);
        }
        Ok(Self(out))
    }

    /// The entry for `token` in [`Tokens::parse`]'s form.
    pub fn digest_of(token: &str) -> String {
        let d = Sha256::digest(token.as_bytes());
        let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }

    /// Whether authentication is on.
    pub fn enabled(&self) -> bool {
        !self.0.is_empty()
    }

    fn accepts(&self, token: &[u8]) -> bool {
        let d: [u8; 32] = Sha256::digest(token).into();
        // Every digest compared, without stopping at a match.
        self.0
            .iter()
            .fold(subtle::Choice::from(0), |ok, t| ok | t.ct_eq(&d))
            .into()
    }
}

/// The token a request carries: a bearer token, else the `c2subauth` cookie.
fn presented(h: &HeaderMap) -> Option<&[u8]> {
    if let Some(t) = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(t.trim().as_bytes());
    }
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("c2subauth="))
        .map(str::as_bytes)
}

/// The middleware: passes requests with an accepted token, answers the others 401.
pub(crate) async fn require(
    State(tokens): State<Arc<Tokens>>,
    req: Request,
    next: Next,
) -> Response {
    if !tokens.enabled() || presented(req.headers()).is_some_and(|t| tokens.accepts(t)) {
        return next.run(req).await;
    }
    let mut resp = (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({"detail": "Unauthorized"})),
    )
        .into_response();
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_parse_and_match() {
        let entry = Tokens::digest_of("s3cret");
        // As `printf %s s3cret | sha256sum` prints it.
        assert_eq!(
            entry,
            "sha256:1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0"
        );
        let t = Tokens::parse(&format!("{entry}, {}", Tokens::digest_of("other"))).unwrap();
        assert_eq!(t.0.len(), 2);
        assert!(t.accepts(b"s3cret") && t.accepts(b"other") && !t.accepts(b"s3cre"));
        assert!(Tokens::parse("md5:abc").is_err());
        assert!(Tokens::parse("sha256:zz").is_err());
        assert!(!Tokens::parse("").unwrap().enabled());
    }
}
