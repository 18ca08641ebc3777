//! The one error type of the command-line client.

use std::path::PathBuf;

/// Why a command failed. `main` prints it as `Error: <message>` and exits with code 1.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The configuration file cannot be used.
    #[error(transparent)]
    Config(#[from] cat2_client::ConfError),
    /// `--host` (or `subscriber.http`) does not make a usable URL.
    #[error("invalid subscriber address {host:?}")]
    BadHost {
        /// The address as given.
        host: String,
    },
    /// The server answered with an error status. `message` is the `detail` of its JSON body,
    /// or `<status> <reason>` when there is none.
    #[error("{message}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// What to print.
        message: String,
    },
    /// The request could not be made or its answer could not be read (connection refused,
    /// timeout, reset).
    #[error("{0}")]
    Request(String),
    /// A reply that is not what the API documents (bad JSON, unknown data encoding).
    #[error("unexpected reply from {url}: {reason}")]
    BadReply {
        /// The request URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A dataset path that is absolute, empty, or walks up with `..`.
    #[error("invalid dataset path {path:?}: it must be relative, without '.' or '..' parts")]
    UnsafePath {
        /// The path as given.
        path: String,
    },
    /// A local file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Writing the command's output failed (e.g. a closed pipe).
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// Blosc2 data that cannot be decoded.
    #[error("cannot decode Blosc2 data: {0}")]
    Decode(#[from] cat2_format::FormatError),
    /// A background decoding task failed.
    #[error("decoding task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl CliError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| CliError::Io { path, source }
    }

    /// A transport error as a sentence, with its causes (reqwest's own message is terse).
    pub(crate) fn request(e: &reqwest::Error) -> Self {
        let mut msg = if e.is_timeout() {
            "timed out".to_owned()
        } else if e.is_connect() {
            "cannot connect".to_owned()
        } else {
            "request failed".to_owned()
        };
        if let Some(url) = e.url() {
            msg.push_str(&format!(" ({url})"));
        }
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            msg.push_str(&format!(": {s}"));
            source = s.source();
        }
        CliError::Request(msg)
    }
}
