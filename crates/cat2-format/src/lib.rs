//! Blosc2 datasets as Caterva2 shares them, synchronously. All FFI of cat2 lives here (in
//! [`ffi`](crate) only), so everything else is safe Rust.
//!
//! # Layout
//! - `dataset`: open `.b2nd` arrays, `.b2frame` super-chunks and plain files ([`Dataset`]);
//!   raw chunks exactly as stored, UNINIT checks, reading selections.
//! - `plain`: plain files as super-chunks of bytes compressed chunk by chunk, in bounded memory.
//! - [`Meta`] (everything but the chunks, and Caterva2's `info` JSON) is defined in
//!   `cat2-proto`, since it travels between services; this crate reads and writes it.
//! - `cache`: [`CacheFile`], a frame created empty from a [`Meta`] and filled chunk by chunk
//!   in any order, in O(1) I/O per chunk.
//! - `encode`: results as b2nd cframes, super-chunk cframes or single chunks (spec §4.3).
//! - [`embedded`]: Blosc2 frames inside other files (HDF5 chunks), chunks compressed with given
//!   parameters, one-chunk frames; [`ChunkSource`]: datasets whose chunks are made elsewhere.
//! - `chunk`: chunk headers, validation and (de)compression; `blocks`: the structural check of
//!   received chunks and single blocks read from stored chunks.
//!
//! Formats: c-blosc2's `README_CFRAME_FORMAT.rst`, `README_CHUNK_FORMAT.rst`,
//! `README_B2ND_FORMAT.rst` and `README_B2ND_METALAYER.rst`.
//!
//! Everything here blocks (file I/O, compression): async callers use `spawn_blocking`.

mod blocks;
mod cache;
pub mod chunk;
mod dataset;
pub mod digest;
pub mod embedded;
pub mod encode;
mod error;
pub mod example;
mod ffi;
mod frame;
mod plain;

pub use blocks::decode_one_block;
pub use cache::{CacheFile, SharedCache, Slot, Snapshot, Verified};
pub use cat2_proto::meta::{ArrayMeta, CParams, Kind, Layer, Meta};
pub use dataset::{ChunkSource, Dataset, kind_of};
pub use error::FormatError;
pub use plain::{PLAIN_CHUNKSIZE, plain_cparams};
