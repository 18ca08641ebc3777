//! Typed requests to the broker and publishers, with timeouts and error mapping.

use std::collections::HashSet;
use std::time::Duration;

use async_nats::{HeaderMap, StatusCode};
use bytes::Bytes;
use cat2_proto::msg::{
    self, BlocksRequest, ChunksRequest, Info, InfoRequest, List, Register, Registered, Roots,
};
use cat2_proto::{DatasetPath, ErrorCode, RootName, subject};
use futures::StreamExt;
use serde::de::DeserializeOwned;

/// Largest chunk a publisher may announce (Blosc2 chunks are below 2 GiB).
const MAX_CHUNK_BYTES: u64 = 1 << 31;

/// A failed request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// No answer within the timeout.
    #[error("no answer from {subject} within {timeout:?}")]
    Timeout {
        /// The subject asked.
        subject: String,
        /// The timeout.
        timeout: Duration,
    },
    /// Nobody serves the subject, or NATS is unreachable.
    #[error("{0}")]
    Unavailable(String),
    /// The service answered with an error.
    #[error("{message}")]
    Remote {
        /// Its code.
        code: ErrorCode,
        /// Its description.
        message: String,
    },
    /// An answer that does not follow the protocol.
    #[error("protocol error from {subject}: {message}")]
    Protocol {
        /// The subject asked.
        subject: String,
        /// What is wrong.
        message: String,
    },
}

impl ClientError {
    /// The error's code (→ HTTP status).
    pub fn code(&self) -> ErrorCode {
        match self {
            ClientError::Timeout { .. } => ErrorCode::Timeout,
            ClientError::Unavailable(_) => ErrorCode::Unavailable,
            ClientError::Remote { code, .. } => *code,
            ClientError::Protocol { .. } => ErrorCode::Unavailable,
        }
    }
}

/// A typed cat2 client on a NATS connection (cheap to clone).
#[derive(Debug, Clone)]
pub struct Client {
    nats: async_nats::Client,
    timeout: Duration,
}

/// A NATS micro-service error for `code` (ADR-32 headers carry the code and the text): what
/// [`Client`] reads back as [`ClientError::Remote`] with the same code.
pub fn service_error(code: ErrorCode, text: &str) -> async_nats::service::error::Error {
    async_nats::service::error::Error {
        status: text.to_owned(),
        code: code.status().into(),
    }
}

/// The error carried by a service reply, if any (ADR-32 headers): the decoder of
/// [`service_error`].
pub fn remote_error(headers: Option<&HeaderMap>) -> Option<ClientError> {
    let h = headers?;
    let code = h
        .get("Nats-Service-Error-Code")?
        .as_str()
        .parse::<u16>()
        .unwrap_or(500);
    let message = h
        .get("Nats-Service-Error")
        .map_or_else(String::new, |v| v.as_str().to_owned());
    Some(ClientError::Remote {
        code: ErrorCode::from_status(code),
        message,
    })
}

impl Client {
    /// Wraps a connection; every request waits at most `timeout`.
    pub fn new(nats: async_nats::Client, timeout: Duration) -> Self {
        Self { nats, timeout }
    }

    /// The underlying connection.
    pub fn nats(&self) -> &async_nats::Client {
        &self.nats
    }

    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn request<T: DeserializeOwned>(
        &self,
        what: &'static str,
        subject: String,
        payload: Bytes,
    ) -> Result<T, ClientError> {
        let req = async_nats::Request::new()
            .payload(payload)
            .timeout(Some(self.timeout));
        let timed_out = || ClientError::Timeout {
            subject: subject.clone(),
            timeout: self.timeout,
        };
        // The whole call is bounded: sending can wait too (e.g. while reconnecting).
        let reply =
            tokio::time::timeout(self.timeout, self.nats.send_request(subject.clone(), req))
                .await
                .map_err(|_| timed_out())?
                .map_err(|e| match e.kind() {
                    async_nats::RequestErrorKind::TimedOut => timed_out(),
                    async_nats::RequestErrorKind::NoResponders => {
                        ClientError::Unavailable(format!("nobody serves {subject}"))
                    }
                    _ => ClientError::Unavailable(format!("nats: {e}")),
                })?;
        if let Some(e) = remote_error(reply.headers.as_ref()) {
            return Err(e);
        }
        cat2_proto::decode(what, &reply.payload).map_err(|e| ClientError::Protocol {
            subject,
            message: e.to_string(),
        })
    }

    /// Registers (or heartbeats) a publisher with the broker.
    ///
    /// # Errors
    /// [`ClientError`]: the broker is down (`Unavailable`/`Timeout`) or refused (`Remote`).
    pub async fn register(&self, reg: &Register) -> Result<Registered, ClientError> {
        self.request(
            "registered",
            subject::broker_register(&reg.root),
            cat2_proto::encode(reg).into(),
        )
        .await
    }

    /// The broker's roots.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn roots(&self) -> Result<Roots, ClientError> {
        let mut all = Roots {
            roots: Vec::new(),
            next: None,
        };
        let mut page = cat2_proto::msg::RootsPage::default();
        // Bounded: a broker that keeps saying "more" cannot keep us here.
        for _ in 0..10_000 {
            let body = Bytes::from(cat2_proto::encode(&page));
            let got: Roots = self.request("roots", subject::broker_roots(), body).await?;
            all.roots.extend(got.roots);
            match got.next {
                Some(after) if page.after.as_ref() != Some(&after) => page.after = Some(after),
                _ => return Ok(all),
            }
        }
        Ok(all)
    }

    /// The datasets of `root`.
    ///
    /// # Errors
    /// [`ClientError`]: `Unavailable` when no publisher of `root` is up.
    pub async fn list(&self, root: &RootName) -> Result<List, ClientError> {
        self.request("list", subject::root_list(root), Bytes::new())
            .await
    }

    /// The metadata of `path` in `root`, or just its etag when `if_none_match` is current.
    ///
    /// # Errors
    /// [`ClientError`]: `Remote(NotFound)` for an unknown dataset.
    pub async fn info(
        &self,
        root: &RootName,
        path: &DatasetPath,
        if_none_match: Option<String>,
    ) -> Result<Info, ClientError> {
        let req = InfoRequest {
            path: path.clone(),
            if_none_match,
        };
        self.request(
            "info",
            subject::root_info(root),
            cat2_proto::encode(&req).into(),
        )
        .await
    }

    /// Asks a publisher of `root` for raw chunks; they arrive on the returned stream.
    ///
    /// # Errors
    /// `Unavailable` when NATS is unreachable.
    pub async fn chunks(
        &self,
        root: &RootName,
        mut req: ChunksRequest,
    ) -> Result<ChunkStream, ClientError> {
        req.max_part = self.max_part(req.max_part);
        let ids = req.chunks.clone();
        self.stream(subject::root_chunks(root), cat2_proto::encode(&req), ids)
            .await
    }

    /// Asks a publisher of `root` for single blocks of one chunk, each a one-block chunk
    /// (numbered by block on the stream).
    ///
    /// # Errors
    /// `Unavailable` when NATS is unreachable.
    pub async fn blocks(
        &self,
        root: &RootName,
        mut req: BlocksRequest,
    ) -> Result<ChunkStream, ClientError> {
        req.max_part = self.max_part(req.max_part);
        let ids = req.blocks.clone();
        self.stream(subject::root_blocks(root), cat2_proto::encode(&req), ids)
            .await
    }

    fn max_part(&self, asked: u64) -> u64 {
        let max_payload = self.nats.server_info().max_payload as u64;
        if max_payload > 0 {
            max_payload.min(asked.max(1))
        } else {
            asked
        }
    }

    async fn stream(
        &self,
        subject: String,
        payload: Vec<u8>,
        ids: Vec<u64>,
    ) -> Result<ChunkStream, ClientError> {
        let inbox = self.nats.new_inbox();
        let sub = self
            .nats
            .subscribe(inbox.clone())
            .await
            .map_err(|e| ClientError::Unavailable(format!("nats: {e}")))?;
        self.nats
            .publish_with_reply(subject.clone(), inbox, payload.into())
            .await
            .map_err(|e| ClientError::Unavailable(format!("nats: {e}")))?;
        Ok(ChunkStream {
            sub,
            pending: ids.into_iter().collect(),
            current: None,
            timeout: self.timeout,
            subject,
        })
    }
}

/// One chunk as it arrived: its parts in order, never copied into one buffer (the receiver
/// writes them where they go).
pub type Parts = Vec<Bytes>;

/// Chunks arriving for one [`Client::chunks`] request, each complete with all its parts.
#[derive(Debug)]
pub struct ChunkStream {
    sub: async_nats::Subscriber,
    pending: HashSet<u64>,
    /// The chunk being received: number, next part index, part count, parts so far, bytes.
    current: Option<(u64, u64, u64, Parts, u64)>,
    timeout: Duration,
    subject: String,
}

impl ChunkStream {
    fn protocol(&self, message: impl Into<String>) -> ClientError {
        ClientError::Protocol {
            subject: self.subject.clone(),
            message: message.into(),
        }
    }

    /// The next complete chunk, `None` once every requested chunk arrived.
    ///
    /// # Errors
    /// `Timeout` when the publisher goes silent for the timeout, `Remote` for its errors,
    /// `Protocol` for malformed parts. After an error the stream is done.
    pub async fn next(&mut self) -> Option<Result<(u64, Parts), ClientError>> {
        loop {
            if self.pending.is_empty() {
                return None;
            }
            let msg = match tokio::time::timeout(self.timeout, self.sub.next()).await {
                Err(_) => {
                    return Some(self.fail(ClientError::Timeout {
                        subject: self.subject.clone(),
                        timeout: self.timeout,
                    }));
                }
                Ok(None) => {
                    return Some(
                        self.fail(ClientError::Unavailable("nats connection closed".into())),
                    );
                }
                Ok(Some(m)) => m,
            };
            if msg.status == Some(StatusCode::NO_RESPONDERS) {
                let e = ClientError::Unavailable(format!("nobody serves {}", self.subject));
                return Some(self.fail(e));
            }
            if let Some(e) = remote_error(msg.headers.as_ref()) {
                return Some(self.fail(e));
            }
            match self.accept(msg) {
                Err(e) => return Some(self.fail(e)),
                Ok(Some(done)) => return Some(Ok(done)),
                Ok(None) => {}
            }
        }
    }

    fn fail(&mut self, e: ClientError) -> Result<(u64, Parts), ClientError> {
        self.pending.clear();
        Err(e)
    }

    /// Takes one part; returns a chunk (its parts, not joined) when it completes one.
    fn accept(&mut self, msg: async_nats::Message) -> Result<Option<(u64, Parts)>, ClientError> {
        let h = msg
            .headers
            .as_ref()
            .ok_or_else(|| self.protocol("chunk part without headers"))?;
        let get = |k: &str| h.get(k).map(|v| v.as_str().to_owned());
        let n: u64 = get(msg::HDR_CHUNK)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| self.protocol("bad chunk header"))?;
        let part = get(msg::HDR_PART).ok_or_else(|| self.protocol("missing part header"))?;
        let (i, count) = part
            .split_once('/')
            .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
            .filter(|(i, c)| i < c)
            .ok_or_else(|| self.protocol(format!("bad part header {part:?}")))?;
        if !self.pending.contains(&n) {
            return Err(self.protocol(format!("unrequested chunk {n}")));
        }
        if count == 1 {
            self.pending.remove(&n);
            return Ok(Some((n, vec![msg.payload])));
        }
        if i == 0 {
            let size: u64 = get(msg::HDR_SIZE)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| self.protocol("missing size"))?;
            if size > MAX_CHUNK_BYTES {
                return Err(self.protocol(format!("chunk of {size} bytes")));
            }
            let len = msg.payload.len() as u64;
            self.current = Some((n, 1, count, vec![msg.payload], len));
            return Ok(None);
        }
        let Some((cn, next, ccount, parts, len)) = self.current.as_mut() else {
            return Err(self.protocol("part before the first part"));
        };
        *len += msg.payload.len() as u64;
        if *cn != n || *next != i || *ccount != count || *len > MAX_CHUNK_BYTES {
            return Err(self.protocol(format!("out-of-order part {i}/{count} of chunk {n}")));
        }
        parts.push(msg.payload);
        *next += 1;
        if *next < count {
            return Ok(None);
        }
        let (n, _, _, parts, _) = self.current.take().expect("just matched");
        self.pending.remove(&n);
        Ok(Some((n, parts)))
    }
}
