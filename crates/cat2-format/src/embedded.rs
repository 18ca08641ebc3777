//! Blosc2 data inside other containers: frames embedded in another file (each chunk of a
//! Blosc2-filtered HDF5 dataset is one, as hdf5plugin and `cat2export` write them), chunks
//! compressed with given parameters, and the one-chunk frames that wrap them.

use std::fs::File;
use std::path::Path;

use cat2_proto::meta::{CParams, Kind, Layer, Meta};

use crate::FormatError;
use crate::chunk::ChunkHeader;
use crate::ffi::{self, Schunk};
use crate::frame::Frame;

/// A contiguous frame of `len` bytes at an offset of a file, checked before anything of it is
/// trusted.
#[derive(Debug)]
pub struct EmbeddedFrame {
    frame: Frame,
    offset: u64,
}

impl EmbeddedFrame {
    /// Checks the frame at `offset` of `file` (the file at `path`).
    ///
    /// # Errors
    /// [`FormatError::NotBlosc2`] when those bytes are not a well-formed frame.
    pub fn open(path: &Path, file: File, offset: u64, len: u64) -> Result<Self, FormatError> {
        Ok(Self {
            frame: Frame::open_region(path, file, offset, len)?,
            offset,
        })
    }

    /// Number of chunks.
    pub fn nchunks(&self) -> u64 {
        self.frame.nchunks()
    }

    /// The special value of chunk `n` (1 zeros, 2 NaNs, 4 uninitialised) when nothing is
    /// stored for it: c-blosc2 stores all-zero chunks so.
    pub fn special(&self, n: u64) -> Option<u8> {
        self.frame.special(n)
    }

    /// Stored chunk `n` verbatim into `buf`; `false` for a special chunk (nothing stored).
    ///
    /// # Errors
    /// [`FormatError::NoSuchChunk`]; [`FormatError::BadChunk`] for a corrupt index; I/O.
    pub fn chunk_into(&self, n: u64, buf: &mut Vec<u8>) -> Result<bool, FormatError> {
        self.frame.stored_chunk_into(n, buf)
    }

    /// Block `b` of chunk `n` (holding `expected` bytes in blocks of `block_bytes`) as a
    /// one-block chunk and its uncompressed size, read alone; `None` when it must be read whole.
    ///
    /// # Errors
    /// [`FormatError::NoSuchChunk`]; [`FormatError::BadChunk`]; I/O errors.
    pub fn one_block(
        &self,
        n: u64,
        expected: i64,
        block_bytes: usize,
        b: u64,
    ) -> Result<Option<(Vec<u8>, usize)>, FormatError> {
        self.frame.one_block(n, expected, block_bytes, b)
    }

    /// The frame's metadata (parsed by c-blosc2 once the structure is checked): an array when
    /// it has a `b2nd` metalayer, a super-chunk otherwise.
    ///
    /// # Errors
    /// [`FormatError::NotBlosc2`] / [`FormatError::BadMetadata`].
    pub fn meta(&self) -> Result<Meta, FormatError> {
        // Parsed from the bytes checked, read through the same descriptor (the path may name
        // another file by now).
        let len = usize::try_from(self.frame.len).map_err(|_| FormatError::NotBlosc2 {
            path: self.frame.path.clone(),
        })?;
        let mut bytes = vec![0u8; len];
        {
            use std::os::unix::fs::FileExt;
            self.frame
                .file
                .read_exact_at(&mut bytes, self.offset)
                .map_err(FormatError::from_io(&self.frame.path))?;
        }
        let mut schunk = Schunk::from_buffer(&bytes)?;
        let kind = if schunk.metalayers().iter().any(|m| m.name == "b2nd") {
            Kind::Array
        } else {
            Kind::Frame
        };
        crate::dataset::read_meta(&mut schunk, &self.frame.path, kind)
    }
}

/// cat2's cparams for data it compresses itself: ZSTD level 1 with shuffle (python-blosc2's
/// defaults), for items of `typesize` bytes.
pub fn default_cparams(typesize: usize) -> CParams {
    ffi::default_cparams(i32::try_from(typesize).unwrap_or(1))
}

/// Compresses `data` (the chunk's bytes as Blosc2 stores them: blocks in order) into one
/// chunk with `cparams`.
///
/// # Errors
/// [`FormatError::TooLarge`] past Blosc2's 2 GiB chunk limit; codec errors.
pub fn compress_chunk(data: &[u8], cparams: &CParams) -> Result<Vec<u8>, FormatError> {
    ffi::compress_chunk(data, cparams)
}

/// A special chunk (1 zeros, 2 NaNs, 4 uninitialised) of `nbytes` bytes of `typesize`-byte
/// items.
///
/// # Errors
/// c-blosc2 errors.
pub fn special_chunk(special: u8, nbytes: i32, typesize: i32) -> Result<Vec<u8>, FormatError> {
    ffi::special_chunk(special, nbytes, typesize)
}

/// The `b2nd` metalayer of an array of this geometry, as c-blosc2 writes it.
///
/// # Errors
/// [`FormatError::BadMetadata`] for ranks that disagree or sizes out of range.
pub fn b2nd_metalayer(
    shape: &[u64],
    chunks: &[u64],
    blocks: &[u64],
    dtype: &str,
) -> Result<Layer, FormatError> {
    Ok(Layer {
        name: "b2nd".into(),
        content: ffi::b2nd_metalayer(shape, chunks, blocks, dtype)?,
    })
}

/// A contiguous frame holding `chunk` (checked here) as its only chunk, with `cparams` and
/// fixed `metalayers` (a `b2nd` one makes it an array of the chunk's shape).
///
/// # Errors
/// [`FormatError::BadChunk`] when `chunk` is not a sound chunk; c-blosc2 errors.
pub fn one_chunk_frame(
    cparams: &CParams,
    metalayers: &[Layer],
    chunk: &[u8],
) -> Result<Vec<u8>, FormatError> {
    let h = ChunkHeader::parse(0, chunk)?;
    if h.cbytes as usize != chunk.len() {
        return Err(FormatError::BadChunk {
            nchunk: 0,
            reason: "length does not match its header".into(),
        });
    }
    ffi::one_chunk_frame(cparams, metalayers, chunk)
}
