//! Single Blosc2 chunks: header fields (c-blosc2's `README_CHUNK_FORMAT.rst`), validation of
//! chunks that came from elsewhere, and (de)compression through the safe `blosc2` crate.

use blosc2::chunk::{Chunk, Encoder};
use blosc2::util::CowVec;
use blosc2::{CParams as SafeCParams, CompressAlgo, Filter, SplitMode};

use crate::FormatError;

/// Length of a Blosc2 extended chunk header.
pub const HEADER_LEN: usize = 32;

/// The sizes a chunk header declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkHeader {
    /// Format version (byte 0).
    pub version: u8,
    /// Item size (byte 3).
    pub typesize: u8,
    /// Uncompressed bytes.
    pub nbytes: i32,
    /// Block size.
    pub blocksize: i32,
    /// Compressed bytes, header included.
    pub cbytes: i32,
    /// Special value (0 none, 1 zeros, 2 NaNs, 3 a repeated value, 4 uninitialised).
    pub special: u8,
}

/// The special value encoded in a chunk's flags byte (offset 31).
pub(crate) fn special_of_flags(flags: u8) -> u8 {
    (flags & 0b0111_0000) >> 4
}

impl ChunkHeader {
    /// Parses the header of `bytes`.
    ///
    /// # Errors
    /// [`FormatError::BadChunk`] when `bytes` is shorter than a header or declares sizes that
    /// do not match its length.
    pub fn parse(nchunk: u64, bytes: &[u8]) -> Result<Self, FormatError> {
        let head = bytes
            .get(..HEADER_LEN)
            .ok_or_else(|| FormatError::BadChunk {
                nchunk,
                reason: format!("{} bytes is shorter than a chunk header", bytes.len()),
            })?;
        Self::parse_head(nchunk, head, bytes.len())
    }

    /// Parses the header `head` (the first [`HEADER_LEN`] bytes) of a chunk of `len` bytes.
    ///
    /// # Errors
    /// As [`ChunkHeader::parse`].
    pub fn parse_head(nchunk: u64, head: &[u8], len: usize) -> Result<Self, FormatError> {
        let bad = |reason: String| FormatError::BadChunk { nchunk, reason };
        let bytes = head
            .get(..HEADER_LEN)
            .filter(|_| len >= HEADER_LEN)
            .ok_or_else(|| bad(format!("{len} bytes is shorter than a chunk header")))?;
        let i32_at =
            |o: usize| i32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
        let h = Self {
            version: bytes[0],
            typesize: bytes[3],
            nbytes: i32_at(4),
            blocksize: i32_at(8),
            cbytes: i32_at(12),
            special: special_of_flags(bytes[31]),
        };
        if h.version == 0 || h.version > 5 {
            return Err(bad(format!("unknown chunk format version {}", h.version)));
        }
        if usize::try_from(h.cbytes).ok() != Some(len) {
            return Err(bad(format!(
                "header says {} compressed bytes, got {len}",
                h.cbytes
            )));
        }
        if h.nbytes < 0 || h.blocksize < 0 {
            return Err(bad("negative size".into()));
        }
        check_codec_and_filters(bytes).map_err(bad)?;
        Ok(h)
    }
}

/// Refuses chunks whose codec or filters c-blosc2 would load as a plugin at run time (it then
/// calls `dlopen` and may run Python): only what c-blosc2 carries itself is decoded.
fn check_codec_and_filters(bytes: &[u8]) -> Result<(), String> {
    use cat2_proto::meta::{SAFE_CODECS, SAFE_FILTERS};
    let flags = bytes[2];
    let extended = flags & 0x05 == 0x05;
    match flags >> 5 {
        0 | 1 | 3 | 4 => {}
        6 if extended && SAFE_CODECS.contains(&bytes[22]) => {}
        c => return Err(format!("unsupported codec (format {c})")),
    }
    if extended {
        if let Some(f) = bytes[16..22].iter().find(|f| !SAFE_FILTERS.contains(f)) {
            return Err(format!("unsupported filter {f}"));
        }
    }
    Ok(())
}

/// Checks chunk `nchunk`'s header (safe codec, `expected` bytes, not uninitialised) and wraps
/// it for decoding.
fn open_chunk(
    nchunk: u64,
    raw: &[u8],
    expected: i64,
) -> Result<(ChunkHeader, Chunk<'_>), FormatError> {
    crate::ffi::init();
    let h = ChunkHeader::parse(nchunk, raw)?;
    if i64::from(h.nbytes) != expected {
        return Err(FormatError::BadChunk {
            nchunk,
            reason: format!("holds {} bytes, expected {expected}", h.nbytes),
        });
    }
    if h.special == crate::ffi::SPECIAL_UNINIT {
        return Err(FormatError::ChunkUnavailable { nchunk });
    }
    let chunk =
        Chunk::from_compressed(CowVec::Borrowed(raw)).map_err(|e| FormatError::BadChunk {
            nchunk,
            reason: format!("not a Blosc2 chunk ({e:?})"),
        })?;
    Ok((h, chunk))
}

/// Decompresses chunk `nchunk`, checking it yields `expected` bytes.
pub(crate) fn decompress(nchunk: u64, raw: &[u8], expected: i64) -> Result<Vec<u8>, FormatError> {
    let (_, chunk) = open_chunk(nchunk, raw, expected)?;
    chunk.decompress().map_err(|e| FormatError::BadChunk {
        nchunk,
        reason: format!("cannot decompress ({e:?})"),
    })
}

/// Decompresses block `block` (of `block_bytes` bytes; the last one may be short) of chunk
/// `nchunk`, which must hold `expected` bytes: only that block is decoded.
pub(crate) fn decompress_block(
    nchunk: u64,
    raw: &[u8],
    expected: i64,
    block: u64,
    block_bytes: usize,
) -> Result<Vec<u8>, FormatError> {
    let (h, chunk) = open_chunk(nchunk, raw, expected)?;
    let ts = chunk.typesize().max(1);
    let total = h.nbytes as usize;
    let start = (block as usize).saturating_mul(block_bytes).min(total);
    let end = start.saturating_add(block_bytes).min(total);
    // Blocks of delta-filtered chunks depend on the first block: decode the chunk whole.
    let extended = raw[2] & 0x05 == 0x05;
    let delta = raw[2] & 0x08 != 0 || (extended && raw[16..22].contains(&3));
    if delta || start % ts != 0 || end % ts != 0 {
        return decompress(nchunk, raw, expected).map(|all| all[start..end].to_vec());
    }
    chunk
        .items(start / ts..end / ts)
        .map_err(|e| FormatError::BadChunk {
            nchunk,
            reason: format!("cannot decompress ({e:?})"),
        })
}

/// Checks that chunk `nchunk` decodes to `expected` bytes, block by block (bounded memory).
pub(crate) fn verify(
    nchunk: u64,
    raw: &[u8],
    expected: i64,
    block_bytes: usize,
) -> Result<(), FormatError> {
    let bb = block_bytes.max(1);
    let nblocks = (expected.max(0) as usize).div_ceil(bb).max(1);
    if nblocks == 1 || expected < (4 << 20) {
        return decompress(nchunk, raw, expected).map(drop);
    }
    for b in 0..nblocks as u64 {
        decompress_block(nchunk, raw, expected, b, bb)?;
    }
    Ok(())
}

/// Decompresses a standalone chunk (e.g. a `/api/fetch` reply encoded as one chunk), with the
/// same checks as chunks read from files.
///
/// # Errors
/// [`FormatError::BadChunk`] for anything but a valid, safe Blosc2 chunk.
pub fn decompress_standalone(raw: &[u8]) -> Result<Vec<u8>, FormatError> {
    let h = ChunkHeader::parse(0, raw)?;
    decompress(0, raw, i64::from(h.nbytes))
}

/// `data` with HDF5's (and Blosc's) byte shuffle for items of `typesize` bytes undone.
///
/// # Errors
/// [`FormatError::TooLarge`] past 2 GiB; c-blosc2's errors.
pub fn unshuffle(data: &[u8], typesize: usize) -> Result<Vec<u8>, FormatError> {
    crate::ffi::unshuffle(data, typesize)
}

/// Compresses `data` into one chunk with ZSTD and shuffle (cat2's defaults for data it
/// compresses itself).
///
/// # Errors
/// [`FormatError::TooLarge`] past Blosc2's 2 GiB chunk limit; codec errors.
pub fn compress(data: &[u8], typesize: usize, clevel: u32) -> Result<Vec<u8>, FormatError> {
    compress_with(data, typesize, clevel, None)
}

/// [`compress`] with blocks of `blocksize` bytes (for tests of block-wise reads).
#[cfg(test)]
pub(crate) fn compress_blocks(
    data: &[u8],
    typesize: usize,
    clevel: u32,
    blocksize: usize,
) -> Result<Vec<u8>, FormatError> {
    compress_with(data, typesize, clevel, Some(blocksize))
}

fn compress_with(
    data: &[u8],
    typesize: usize,
    clevel: u32,
    blocksize: Option<usize>,
) -> Result<Vec<u8>, FormatError> {
    crate::ffi::init();
    if data.len() > (i32::MAX as usize) - HEADER_LEN {
        return Err(FormatError::TooLarge {
            bytes: data.len() as u64,
            what: "one Blosc2 chunk",
        });
    }
    let mut p = SafeCParams::default();
    p.compressor(CompressAlgo::Zstd)
        .clevel(clevel)
        .nthreads(1)
        .splitmode(SplitMode::ForwardCompat)
        .blocksize(blocksize);
    p.typesize(typesize.clamp(1, 255))?;
    p.filters(&[Filter::ByteShuffle])?;
    let mut enc = Encoder::new(p)?;
    Ok(enc.compress(data)?.into_bytes().into_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compress_round_trips_and_validates() {
        let data: Vec<u8> = (0..10_000u32).flat_map(|v| v.to_le_bytes()).collect();
        let c = compress(&data, 4, 5).unwrap();
        let h = ChunkHeader::parse(0, &c).unwrap();
        assert_eq!(h.nbytes as usize, data.len());
        assert_eq!(decompress(0, &c, data.len() as i64).unwrap(), data);
        assert!(decompress(0, &c, 5).is_err());
        assert!(ChunkHeader::parse(0, &c[..c.len() - 1]).is_err());
        assert!(ChunkHeader::parse(0, &[0u8; 10]).is_err());
        let mut plugin = c.clone();
        plugin[2] = (plugin[2] & 0x1f) | (6 << 5);
        plugin[22] = 37; // grok: a run-time plugin
        assert!(ChunkHeader::parse(0, &plugin).is_err());
        let mut filt = c.clone();
        filt[17] = 200;
        assert!(ChunkHeader::parse(0, &filt).is_err());
        let mut corrupt = c;
        for b in corrupt.iter_mut().skip(HEADER_LEN + 16) {
            *b ^= 0x5a;
        }
        assert!(decompress(0, &corrupt, data.len() as i64).is_err());
    }
}
