//! Pure n-dimensional geometry of cat2, with no I/O: Caterva2 slice strings, selections,
//! b2nd chunk and block layouts, and NumPy dtypes.
//!
//! # Layout
//! - [`slice`]: parsing and printing slice strings (`"1, 2:4"`).
//! - [`selection`]: a slice resolved against a shape (numpy semantics, Caterva2's 1-d item
//!   semantics for super-chunks).
//! - [`layout`]: which chunks a selection touches, and copies between decompressed chunks
//!   (block-major, padded) and C-order buffers.
//! - [`fancy`]: coordinate selections (index lists), read as boxes and gathered.
//! - [`dtype`]: NumPy dtype strings, item sizes and display names.
//!
//! The b2nd layout is c-blosc2's `README_B2ND_FORMAT.rst` and `README_B2ND_METALAYER.rst`.

pub mod dtype;
pub mod fancy;
pub mod layout;
pub mod selection;
pub mod slice;

pub use dtype::{DType, Field};
pub use layout::{ChunkLayout, MAX_CHUNKS};
pub use selection::Selection;
pub use slice::{SliceItem, SliceSpec};

/// A slice string that cannot be parsed or applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SliceError {
    /// A part is not an integer, a range `a:b`, or `a:b:1`.
    #[error("invalid slice part {part:?}: expected an integer or start:stop")]
    Syntax {
        /// The offending part.
        part: String,
    },
    /// A part has a step other than 1.
    #[error("invalid slice part {part:?}: only step 1 is supported")]
    Step {
        /// The offending part.
        part: String,
    },
    /// More parts than dimensions.
    #[error("too many indices: {given} given for {ndim} dimension(s)")]
    TooManyIndices {
        /// Parts given.
        given: usize,
        /// Dimensions of the dataset.
        ndim: usize,
    },
    /// An integer index outside its dimension.
    #[error("index {index} is out of range for dimension {dim} of length {len}")]
    IndexOutOfRange {
        /// The index as given.
        index: i64,
        /// The dimension.
        dim: usize,
        /// Its length.
        len: u64,
    },
}

/// An inconsistent shape, chunk shape and block shape, or a buffer of the wrong size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// Shape, chunks and blocks have different ranks.
    #[error("rank mismatch: shape {shape}, chunks {chunks}, blocks {blocks}")]
    Rank {
        /// Rank of the shape.
        shape: usize,
        /// Rank of the chunk shape.
        chunks: usize,
        /// Rank of the block shape.
        blocks: usize,
    },
    /// Item size zero.
    #[error("item size must not be zero")]
    ItemSize,
    /// A chunk or block dimension is zero, or a block is larger than its chunk.
    #[error("dimension {dim}: shape {shape}, chunk {chunk}, block {block} are inconsistent")]
    Dimension {
        /// The dimension.
        dim: usize,
        /// Its length.
        shape: u64,
        /// Chunk length.
        chunk: u64,
        /// Block length.
        block: u64,
    },
    /// Sizes past what a Blosc2 dataset can hold (2^63 bytes, 2 GiB chunks, 2^28 chunks).
    #[error("dataset too large: sizes overflow what Blosc2 can store")]
    TooLarge,
    /// A buffer is shorter than the layout needs.
    #[error("buffer too short: needed {needed} bytes, got {got}")]
    Buffer {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        got: usize,
    },
}

/// A string that is not a NumPy dtype.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported dtype {dtype:?}")]
pub struct DTypeError {
    /// The string.
    pub dtype: String,
}
