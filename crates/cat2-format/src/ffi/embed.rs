//! c-blosc2 calls for Blosc2 data kept inside other containers (HDF5 datasets whose chunks are
//! Blosc2 frames, as hdf5plugin writes them): frames opened at an offset, chunks compressed
//! with given parameters, one-chunk frames, and `b2nd` metalayers.

use std::ptr::{self, NonNull};

use blosc2_rs_sys as sys;

use super::{Schunk, init, libc_free, new_schunk, raw_cparams};
use crate::FormatError;
use crate::chunk::HEADER_LEN;
use cat2_proto::meta::{CParams, Layer};

impl Schunk {
    /// Parses a frame held in memory (copied: the super-chunk owns its bytes). The caller
    /// checks the frame's structure first: c-blosc2 trusts it.
    pub(crate) fn from_buffer(bytes: &[u8]) -> Result<Self, FormatError> {
        init();
        let len = i64::try_from(bytes.len()).map_err(|_| FormatError::TooLarge {
            bytes: bytes.len() as u64,
            what: "a frame",
        })?;
        // SAFETY: `bytes` is valid for `len` bytes; with `copy` c-blosc2 keeps its own copy and
        // never writes through the pointer.
        let raw = unsafe { sys::blosc2_schunk_from_buffer(bytes.as_ptr().cast_mut(), len, true) };
        NonNull::new(raw)
            .map(Schunk)
            .ok_or_else(|| FormatError::NotBlosc2 {
                path: "(embedded frame)".into(),
            })
    }

    fn append_chunk(&mut self, chunk: &[u8]) -> Result<(), FormatError> {
        // SAFETY: with `copy` true c-blosc2 copies the chunk and never writes through the
        // pointer; it reads the chunk's own header for its length, which the caller checked.
        let rc = unsafe {
            sys::blosc2_schunk_append_chunk(self.0.as_ptr(), chunk.as_ptr().cast_mut(), true)
        };
        if rc < 0 {
            Err(FormatError::blosc2("append_chunk", rc as i32))
        } else {
            Ok(())
        }
    }
}

/// Compresses `data` into one Blosc2 chunk with `cp` (its codec, level, filters, typesize
/// and blocksize), on the calling thread.
pub(crate) fn compress_chunk(data: &[u8], cp: &CParams) -> Result<Vec<u8>, FormatError> {
    init();
    let len = i32::try_from(data.len())
        .ok()
        .filter(|l| *l <= i32::MAX - HEADER_LEN as i32 * 2)
        .ok_or(FormatError::TooLarge {
            bytes: data.len() as u64,
            what: "one Blosc2 chunk",
        })?;
    let mut raw = raw_cparams(cp);
    raw.nthreads = 1;
    // Typesizes above 255 do not fit the chunk header: compress such items as bytes.
    if raw.typesize > 255 {
        raw.typesize = 1;
    }
    // SAFETY: plain struct by value; the context is freed below.
    let ctx = unsafe { sys::blosc2_create_cctx(raw) };
    if ctx.is_null() {
        return Err(FormatError::blosc2("create_cctx", -1));
    }
    let mut out = vec![0u8; data.len() + sys::BLOSC2_MAX_OVERHEAD as usize];
    // SAFETY: `data` and `out` are valid for their lengths; c-blosc2 writes at most
    // `out.len()` bytes.
    let rc = unsafe {
        sys::blosc2_compress_ctx(
            ctx,
            data.as_ptr().cast(),
            len,
            out.as_mut_ptr().cast(),
            out.len() as i32,
        )
    };
    // SAFETY: created above, freed once.
    unsafe { sys::blosc2_free_ctx(ctx) };
    if rc <= 0 {
        return Err(FormatError::blosc2("compress_ctx", rc));
    }
    out.truncate(rc as usize);
    Ok(out)
}

/// The `b2nd` metalayer of an array, as c-blosc2 writes it.
pub(crate) fn b2nd_metalayer(
    shape: &[u64],
    chunks: &[u64],
    blocks: &[u64],
    dtype: &str,
) -> Result<Vec<u8>, FormatError> {
    let bad = |reason: &str| FormatError::BadMetadata {
        path: "(b2nd)".into(),
        reason: reason.to_owned(),
    };
    let ndim = i8::try_from(shape.len())
        .ok()
        .filter(|n| *n as usize <= cat2_proto::meta::MAX_DIM)
        .ok_or_else(|| bad("too many dimensions"))?;
    if chunks.len() != shape.len() || blocks.len() != shape.len() {
        return Err(bad("ranks disagree"));
    }
    let shape: Vec<i64> = shape
        .iter()
        .map(|&v| i64::try_from(v))
        .collect::<Result<_, _>>()
        .map_err(|_| bad("shape"))?;
    let chunks: Vec<i32> = chunks
        .iter()
        .map(|&v| i32::try_from(v))
        .collect::<Result<_, _>>()
        .map_err(|_| bad("chunks"))?;
    let blocks: Vec<i32> = blocks
        .iter()
        .map(|&v| i32::try_from(v))
        .collect::<Result<_, _>>()
        .map_err(|_| bad("blocks"))?;
    let dtype = std::ffi::CString::new(dtype).map_err(|_| bad("dtype"))?;
    let mut out: *mut u8 = ptr::null_mut();
    // SAFETY: the arrays hold `ndim` entries each; c-blosc2 allocates `out` with malloc.
    let len = unsafe {
        sys::b2nd_serialize_meta(
            ndim,
            shape.as_ptr(),
            chunks.as_ptr(),
            blocks.as_ptr(),
            dtype.as_ptr(),
            0,
            &mut out,
        )
    };
    if len < 0 || out.is_null() {
        return Err(FormatError::blosc2("b2nd_serialize_meta", len));
    }
    // SAFETY: on success `out` holds `len` bytes, ours to free.
    let v = unsafe { std::slice::from_raw_parts(out, len as usize) }.to_vec();
    unsafe { libc_free(out.cast()) };
    Ok(v)
}

/// A contiguous frame holding exactly one chunk (`chunk`, already compressed, checked by the
/// caller) with the given parameters and fixed metalayers: what hdf5plugin stores as each
/// HDF5 chunk of a Blosc2-filtered dataset.
pub(crate) fn one_chunk_frame(
    cp: &CParams,
    metalayers: &[Layer],
    chunk: &[u8],
) -> Result<Vec<u8>, FormatError> {
    let mut s = new_schunk(None, cp)?;
    for m in metalayers {
        s.add_meta(m)?;
    }
    s.append_chunk(chunk)?;
    s.serialize()
}
