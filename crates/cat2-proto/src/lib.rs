//! The cat2 wire protocol: everything two cat2 processes say to each other over NATS, defined
//! once. No I/O, no async: services and clients build subjects and encode messages with it.
//!
//! # Layout
//! - [`subject`]: subject builders (`cat2.v1.<service>.<verb>`); wildcards only where we
//!   subscribe.
//! - [`msg`]: request/reply and event messages (msgpack, named fields), plus header names.
//! - [`meta`]: dataset metadata ([`Meta`]) and Caterva2's `info` JSON (spec §2.5).
//! - [`name`]: validated root names and dataset paths.
//! - [`msgpack`]: vlmeta values to JSON and back.
//! - [`rest`]: the subscriber's REST replies (Caterva2's JSON), shared by server and clients.
//!
//! # Subjects
//!
//! | subject | kind | payload → reply |
//! | --- | --- | --- |
//! | `cat2.v1.broker.register.<root>` | request (broker service) | [`msg::Register`] → [`msg::Registered`] |
//! | `cat2.v1.broker.roots` | request (broker service) | empty → [`msg::Roots`] |
//! | `cat2.v1.broker.events` | publish (broker) | [`msg::RootEvent`] |
//! | `cat2.v1.root.<root>.list` | request (publisher service, queue group) | empty → [`msg::List`] |
//! | `cat2.v1.root.<root>.info` | request (publisher service, queue group) | [`msg::InfoRequest`] → [`msg::Info`] |
//! | `cat2.v1.root.<root>.chunks` | request (publisher service, queue group) | [`msg::ChunksRequest`] → raw chunk parts |
//! | `cat2.v1.root.<root>.blocks` | request (publisher service, queue group) | [`msg::BlocksRequest`] → one-block chunks, same format |
//! | `cat2.v1.root.<root>.changes` | publish (publisher) | [`msg::Change`] |
//! | `cat2.v1.root.<root>.state` | publish (publisher) | [`msg::RootState`] |
//! | `cat2.v1.sub.<id>.status` | request (subscriber service) | empty → [`msg::SubscriberStatus`] |
//!
//! Chunk replies are streams of messages to the request's reply subject, one or more per
//! chunk: the raw compressed chunk split into parts that fit the server's `max_payload`, each
//! with the headers [`msg::HDR_CHUNK`] (chunk number), [`msg::HDR_PART`] (`i/n`) and, on the
//! first part, [`msg::HDR_SIZE`] (total bytes). Errors use the NATS micro-service headers
//! `Nats-Service-Error` / `Nats-Service-Error-Code` with an [`ErrorCode`] (ADR-32).
//!
//! Every service is a NATS micro service (ADR-32), discoverable with `$SRV.PING/INFO/STATS`.

pub mod meta;
pub mod msg;
pub mod msgpack;
pub mod name;
pub mod rest;
pub mod subject;

pub use meta::{ArrayMeta, CParams, Kind, Layer, Meta};
pub use name::{DatasetPath, RootName};

/// Protocol version, part of every subject.
pub const PROTOCOL_VERSION: u32 = 1;

/// What went wrong, as one code shared by NATS service errors and HTTP statuses.
///
/// Services answer with a code and a text; clients turn the code back into this type, so the
/// kind of an error survives every hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Malformed request (bad path, bad slice, bad message).
    BadRequest,
    /// Unknown root or dataset.
    NotFound,
    /// The dataset changed since the etag the request named.
    Stale,
    /// Upstream did not answer in time.
    Timeout,
    /// Upstream unreachable (no publisher, NATS down).
    Unavailable,
    /// The service is at its bound of requests or bytes in flight: ask again (another
    /// member of the queue group may answer), after a pause.
    Busy,
    /// A bug or an unexpected failure.
    Internal,
}

impl ErrorCode {
    /// Every code with its NATS service error code (ADR-32) and its HTTP status: the one
    /// table both directions of both wire forms read.
    const TABLE: [(ErrorCode, u16, u16); 7] = [
        (ErrorCode::BadRequest, 400, 400),
        (ErrorCode::NotFound, 404, 404),
        (ErrorCode::Stale, 409, 409),
        (ErrorCode::Timeout, 504, 504),
        (ErrorCode::Unavailable, 503, 503),
        // HTTP clients know an overloaded server as 503 with Retry-After; on NATS the code
        // must differ from Unavailable, since Busy is retried and Unavailable is not.
        (ErrorCode::Busy, 429, 503),
        (ErrorCode::Internal, 500, 500),
    ];

    /// The NATS service error code of this error.
    pub fn status(self) -> u16 {
        Self::TABLE
            .iter()
            .find(|t| t.0 == self)
            .map_or(500, |t| t.1)
    }

    /// The HTTP status a REST API answers this error with.
    pub fn http_status(self) -> u16 {
        Self::TABLE
            .iter()
            .find(|t| t.0 == self)
            .map_or(500, |t| t.2)
    }

    /// The code of a NATS service error code (unknown codes are internal).
    pub fn from_status(status: u16) -> Self {
        Self::TABLE
            .iter()
            .find(|t| t.1 == status)
            .map_or(ErrorCode::Internal, |t| t.0)
    }
}

/// Metadata that does not describe a consistent dataset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetaError {
    /// A field contradicts another.
    #[error("invalid dataset metadata: {0}")]
    Invalid(String),
    /// Inconsistent shapes.
    #[error(transparent)]
    Layout(#[from] cat2_array::LayoutError),
    /// Unsupported dtype.
    #[error(transparent)]
    DType(#[from] cat2_array::DTypeError),
    /// A chunk number past the end.
    #[error("chunk {nchunk} does not exist (the dataset has {nchunks} chunks)")]
    NoSuchChunk {
        /// Requested chunk.
        nchunk: u64,
        /// Number of chunks.
        nchunks: u64,
    },
}

/// A message that cannot be decoded.
#[derive(Debug, thiserror::Error)]
#[error("malformed {what} message: {source}")]
pub struct DecodeError {
    /// Which message.
    pub what: &'static str,
    /// Why.
    pub source: rmp_serde::decode::Error,
}

/// Encodes a message as msgpack with named fields.
pub fn encode<T: serde::Serialize>(msg: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(msg).expect("protocol messages always serialize")
}

/// Decodes a msgpack message.
///
/// # Errors
/// [`DecodeError`] for bytes that are not this message.
pub fn decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, DecodeError> {
    rmp_serde::from_slice(bytes).map_err(|source| DecodeError { what, source })
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn error_codes_survive_the_wire() {
        for (code, _, _) in ErrorCode::TABLE {
            assert_eq!(ErrorCode::from_status(code.status()), code);
        }
        assert_eq!(ErrorCode::Busy.http_status(), 503);
        assert_eq!(ErrorCode::from_status(418), ErrorCode::Internal);
    }
}
