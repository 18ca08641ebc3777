//! The format layer's error type.

use std::path::PathBuf;

use cat2_array::{DTypeError, LayoutError, SliceError};

/// What can go wrong reading or writing a dataset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// An operating-system I/O error.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// c-blosc2 cannot open the file as a Blosc2 frame (truncated, corrupt, not Blosc2).
    #[error("{path} is not a valid Blosc2 frame")]
    NotBlosc2 {
        /// The file.
        path: PathBuf,
    },
    /// A `.b2nd` file without a `b2nd` metalayer.
    #[error("{path} is a Blosc2 super-chunk, not an n-d array (.b2nd)")]
    NotAnArray {
        /// The file.
        path: PathBuf,
    },
    /// A `.b2frame` file that holds an n-d array.
    #[error("{path} holds an n-d array: it should be named .b2nd, not .b2frame")]
    NotAFrame {
        /// The file.
        path: PathBuf,
    },
    /// Metadata that does not describe a consistent dataset.
    #[error("invalid metadata in {path}: {reason}")]
    BadMetadata {
        /// The file (or a description of the source).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An inconsistent layout.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// An unsupported dtype.
    #[error(transparent)]
    DType(#[from] DTypeError),
    /// A slice that does not apply.
    #[error(transparent)]
    Slice(#[from] SliceError),
    /// A chunk number past the end.
    #[error("chunk {nchunk} does not exist (the dataset has {nchunks} chunks)")]
    NoSuchChunk {
        /// Requested chunk.
        nchunk: u64,
        /// Number of chunks.
        nchunks: u64,
    },
    /// A chunk not yet filled in a cache file.
    #[error("chunk {nchunk} is not available yet")]
    ChunkUnavailable {
        /// The chunk.
        nchunk: u64,
    },
    /// Bytes that are not a valid Blosc2 chunk for this dataset.
    #[error("invalid chunk {nchunk}: {reason}")]
    BadChunk {
        /// The chunk.
        nchunk: u64,
        /// What is wrong.
        reason: String,
    },
    /// A chunk its source cannot produce (an HDF5 filter missing or failing, a file changed
    /// while it was read): the dataset and chunk are named, no bytes are made up.
    #[error("chunk {nchunk} of {path} cannot be read: {reason}")]
    Unreadable {
        /// The dataset (its file, or file and name inside it).
        path: PathBuf,
        /// The chunk.
        nchunk: u64,
        /// Why.
        reason: String,
    },
    /// A c-blosc2 call failed.
    #[error("blosc2 {op} failed with code {code}")]
    Blosc2 {
        /// The operation.
        op: &'static str,
        /// c-blosc2's return code.
        code: i64,
    },
    /// A cache file that changed on disk while it was being streamed whole (a chunk of it
    /// was dropped to be fetched again).
    #[error("{path} changed while it was being read")]
    Changed {
        /// The file.
        path: PathBuf,
    },
    /// A result too large for the requested encoding.
    #[error("result of {bytes} bytes is too large for {what}")]
    TooLarge {
        /// Size of the result.
        bytes: u64,
        /// The encoding or limit.
        what: &'static str,
    },
}

impl FormatError {
    /// Maps an I/O error on `path` (for callers doing their own file work around ours).
    pub fn from_io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        Self::io(path)
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| FormatError::Io { path, source }
    }

    pub(crate) fn blosc2(op: &'static str, code: impl Into<i64>) -> Self {
        FormatError::Blosc2 {
            op,
            code: code.into(),
        }
    }
}

impl From<cat2_proto::MetaError> for FormatError {
    fn from(e: cat2_proto::MetaError) -> Self {
        match e {
            cat2_proto::MetaError::Layout(l) => FormatError::Layout(l),
            cat2_proto::MetaError::DType(d) => FormatError::DType(d),
            cat2_proto::MetaError::NoSuchChunk { nchunk, nchunks } => {
                FormatError::NoSuchChunk { nchunk, nchunks }
            }
            other => FormatError::BadMetadata {
                path: "(metadata)".into(),
                reason: other.to_string(),
            },
        }
    }
}

impl From<blosc2::Error> for FormatError {
    fn from(e: blosc2::Error) -> Self {
        FormatError::Blosc2 {
            op: "chunk codec",
            code: i64::from(e as i32),
        }
    }
}
