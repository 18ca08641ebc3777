//! The blocks inside one Blosc2 chunk (c-blosc2's `README_CHUNK_FORMAT.rst`, "Blocks").
//!
//! Two things are done here without decoding a chunk whole:
//! - [`check`]: a structural check of a chunk that came from elsewhere, cheap enough for every
//!   chunk received: its header, and for every block its start and the lengths of its
//!   compressed streams, must lie inside the chunk. Decoding then never reads outside the
//!   buffer; a chunk whose streams hold garbage fails when a block of it is decoded.
//! - [`StoredChunk`]: reads single blocks of a chunk stored in a file, fetching only the
//!   header, the block starts and that block's bytes (a 64×64 window of a 5 MB chunk reads
//!   some 100 KB, not 5 MB). The block is decoded as a one-block chunk made of the original
//!   header and its bytes verbatim; layouts where blocks are not independent (delta filter,
//!   dictionaries) or not worth it (one block, special chunks) decode the chunk whole.

use crate::FormatError;
use crate::chunk::{self, ChunkHeader, HEADER_LEN};

/// `flags` (byte 2): the chunk is stored as it is (no codec, no block starts).
const MEMCPYED: u8 = 0x02;
/// `flags`: the extended (Blosc2) header, with filters and `blosc2_flags`.
const EXTENDED: u8 = 0x05;
/// `flags`: each block is one stream (else `typesize` streams).
const DONT_SPLIT: u8 = 0x10;
/// `flags`: delta filter (Blosc1 style).
const DELTA: u8 = 0x08;
/// `blosc2_flags` (byte 31): a dictionary follows the block starts.
const USE_DICT: u8 = 0x01;
/// `blosc2_flags`: a lazy chunk (metadata only, never stored data).
const LAZY: u8 = 0x08;
/// `blosc2_flags`: instrumented codec output (statistics, not data).
const INSTRUMENTED: u8 = 0x80;
/// Delta filter code in the extended header's filter pipeline.
const FILTER_DELTA: u8 = 3;

fn i32_at(b: &[u8], o: usize) -> i32 {
    i32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

fn bad(nchunk: u64, reason: impl Into<String>) -> FormatError {
    FormatError::BadChunk {
        nchunk,
        reason: reason.into(),
    }
}

/// Whether blocks of a chunk with header `head` decode on their own (no delta filter, no
/// dictionary, a plain extended header).
fn blocks_independent(head: &[u8]) -> bool {
    let flags = head[2];
    flags & EXTENDED == EXTENDED
        && flags & DELTA == 0
        && !head[16..22].contains(&FILTER_DELTA)
        && head[31] & (USE_DICT | LAZY | INSTRUMENTED) == 0
        && chunk::special_of_flags(head[31]) == 0
}

/// A chunk as the parts it arrived in (one part for a contiguous chunk), read without
/// joining them.
pub(crate) struct Segmented<'a, P> {
    parts: &'a [P],
    /// Where each part starts.
    starts: Vec<usize>,
    len: usize,
}

impl<'a, P: AsRef<[u8]>> Segmented<'a, P> {
    /// The chunk made of `parts`, in order.
    pub(crate) fn new(parts: &'a [P]) -> Self {
        let mut starts = Vec::with_capacity(parts.len());
        let mut len = 0usize;
        for p in parts {
            starts.push(len);
            len += p.as_ref().len();
        }
        Self { parts, starts, len }
    }

    /// Total bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Copies `out.len()` bytes from `off` into `out`; `false` past the end.
    fn copy(&self, off: usize, out: &mut [u8]) -> bool {
        if off.checked_add(out.len()).is_none_or(|end| end > self.len) {
            return false;
        }
        let mut i = self.starts.partition_point(|s| *s <= off).saturating_sub(1);
        let (mut at, mut done) = (off, 0);
        while done < out.len() {
            let Some(part) = self.parts.get(i) else {
                return false;
            };
            let part = part.as_ref();
            let from = at - self.starts[i];
            let n = (part.len() - from).min(out.len() - done);
            out[done..done + n].copy_from_slice(&part[from..from + n]);
            done += n;
            at += n;
            i += 1;
        }
        true
    }

    fn i32_at(&self, off: usize) -> Option<i32> {
        let mut b = [0u8; 4];
        self.copy(off, &mut b).then(|| i32::from_le_bytes(b))
    }

    /// The bytes, joined (copied unless there is one part).
    pub(crate) fn contiguous(&self) -> std::borrow::Cow<'a, [u8]> {
        match self.parts {
            [one] => std::borrow::Cow::Borrowed(one.as_ref()),
            parts => {
                std::borrow::Cow::Owned(parts.iter().flat_map(|p| p.as_ref()).copied().collect())
            }
        }
    }
}

/// Checks chunk `nchunk` (which must hold `expected` bytes) without decoding it: `Ok(true)`
/// when its header is safe and every block start and stream length lies inside it,
/// `Ok(false)` for layouts this walk does not cover (Blosc1 headers, dictionaries): callers
/// then decode it to know.
///
/// # Errors
/// [`FormatError::BadChunk`] for a chunk that is certainly unusable (bad header, unsafe
/// codec, wrong size, lazy or instrumented); [`FormatError::ChunkUnavailable`] for an
/// UNINIT chunk.
pub(crate) fn check<P: AsRef<[u8]>>(
    nchunk: u64,
    raw: &Segmented<'_, P>,
    expected: i64,
) -> Result<bool, FormatError> {
    let len = raw.len();
    let mut head = [0u8; HEADER_LEN];
    if !raw.copy(0, &mut head) {
        return Err(bad(
            nchunk,
            format!("{len} bytes is shorter than a chunk header"),
        ));
    }
    let h = ChunkHeader::parse_head(nchunk, &head, len)?;
    // c-blosc2 refuses such headers (found by the `chunk` fuzz target).
    if h.typesize == 0 {
        return Err(bad(nchunk, "a chunk header with typesize 0"));
    }
    if h.nbytes > 0 && !(1..=h.nbytes).contains(&h.blocksize) {
        return Err(bad(
            nchunk,
            format!("a block size of {} for {} bytes", h.blocksize, h.nbytes),
        ));
    }
    if i64::from(h.nbytes) != expected {
        return Err(bad(
            nchunk,
            format!("holds {} bytes, expected {expected}", h.nbytes),
        ));
    }
    if head[2] & EXTENDED != EXTENDED {
        return Ok(false);
    }
    let flags2 = head[31];
    if flags2 & (LAZY | INSTRUMENTED) != 0 {
        return Err(bad(nchunk, "a lazy or instrumented chunk holds no data"));
    }
    match h.special {
        0 => {}
        crate::ffi::SPECIAL_UNINIT => return Err(FormatError::ChunkUnavailable { nchunk }),
        // Small, and c-blosc2 is pickier about their headers than their size says (the
        // `chunk` fuzz target found a zeros chunk with a block size past its bytes): proven
        // by decoding them.
        _ => return Ok(false),
    }
    let nbytes = h.nbytes as usize;
    if head[2] & MEMCPYED != 0 {
        return Ok(len == HEADER_LEN + nbytes);
    }
    if flags2 & USE_DICT != 0 || nbytes == 0 || h.blocksize <= 0 {
        return Ok(false);
    }
    let bs = h.blocksize as usize;
    let nblocks = nbytes.div_ceil(bs);
    let leftover = nbytes % bs;
    let data_start = HEADER_LEN + 4 * nblocks;
    if data_start > len {
        return Ok(false);
    }
    let split = head[2] & DONT_SPLIT == 0;
    for j in 0..nblocks {
        let Some(mut pos) = raw
            .i32_at(HEADER_LEN + 4 * j)
            .and_then(|s| usize::try_from(s).ok())
        else {
            return Ok(false);
        };
        if pos < data_start || pos >= len {
            return Ok(false);
        }
        let leftover_block = j + 1 == nblocks && leftover > 0;
        let nstreams = if split && !leftover_block {
            usize::from(h.typesize.max(1))
        } else {
            1
        };
        for _ in 0..nstreams {
            let Some(csize) = raw.i32_at(pos) else {
                return Ok(false);
            };
            pos += 4;
            pos = match csize {
                0 => pos,
                c if c < 0 => pos + 1,
                c => pos + c as usize,
            };
            if pos > len {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Single blocks of one chunk stored in a file, read through `read(offset, len)` (offsets
/// from the chunk's start; the reader keeps reads inside the chunk data).
pub(crate) struct StoredChunk<R> {
    nchunk: u64,
    expected: i64,
    block_bytes: usize,
    read: R,
    head: Option<[u8; HEADER_LEN]>,
    bstarts: Option<Vec<i32>>,
    whole: Option<Vec<u8>>,
}

impl<R: Fn(u64, usize) -> Result<Vec<u8>, FormatError>> StoredChunk<R> {
    /// Chunk `nchunk`, holding `expected` bytes in blocks of `block_bytes` (the layout's).
    pub(crate) fn new(nchunk: u64, expected: i64, block_bytes: usize, read: R) -> Self {
        Self {
            nchunk,
            expected,
            block_bytes,
            read,
            head: None,
            bstarts: None,
            whole: None,
        }
    }

    fn head(&mut self) -> Result<[u8; HEADER_LEN], FormatError> {
        if let Some(h) = self.head {
            return Ok(h);
        }
        let b = (self.read)(0, HEADER_LEN)?;
        let h: [u8; HEADER_LEN] = b
            .as_slice()
            .try_into()
            .map_err(|_| bad(self.nchunk, "short chunk header"))?;
        self.head = Some(h);
        Ok(h)
    }

    fn decode_whole(&mut self, b: u64, cbytes: usize) -> Result<Vec<u8>, FormatError> {
        if self.whole.is_none() {
            self.whole = Some((self.read)(0, cbytes)?);
        }
        let raw = self.whole.as_deref().unwrap_or_default();
        chunk::decompress_block(self.nchunk, raw, self.expected, b, self.block_bytes)
    }

    /// The decompressed bytes of block `b` (the last one may be short).
    ///
    /// # Errors
    /// [`FormatError::BadChunk`] when the chunk does not decode; I/O errors.
    pub(crate) fn block(&mut self, b: u64) -> Result<Vec<u8>, FormatError> {
        match self.one_block(b)? {
            Some((one, blk)) => chunk::decompress(self.nchunk, &one, blk as i64),
            None => {
                let cbytes = self.cbytes()?;
                self.decode_whole(b, cbytes)
            }
        }
    }

    fn cbytes(&mut self) -> Result<usize, FormatError> {
        let head = self.head()?;
        usize::try_from(i32_at(&head, 12))
            .ok()
            .filter(|c| *c >= HEADER_LEN)
            .ok_or_else(|| bad(self.nchunk, "stored chunk header is corrupt"))
    }

    /// Block `b` as a chunk of its own (its compressed bytes verbatim under the chunk's
    /// header) and its uncompressed size; `None` when blocks of this chunk do not decode
    /// alone (delta filter, dictionary, special or one-block chunks): decode it whole.
    ///
    /// # Errors
    /// [`FormatError::BadChunk`] for a header or block start that does not fit; I/O errors.
    pub(crate) fn one_block(&mut self, b: u64) -> Result<Option<(Vec<u8>, usize)>, FormatError> {
        let head = self.head()?;
        let cbytes = self.cbytes()?;
        let nbytes = i32_at(&head, 4);
        if i64::from(nbytes) != self.expected {
            return Err(bad(
                self.nchunk,
                format!("holds {nbytes} bytes, expected {}", self.expected),
            ));
        }
        let (nbytes, bs) = (nbytes as usize, i32_at(&head, 8));
        if bs <= 0 || bs as usize != self.block_bytes || !blocks_independent(&head) {
            return Ok(None);
        }
        let bs = bs as usize;
        let nblocks = nbytes.div_ceil(bs);
        let Some(first) = usize::try_from(b).ok().filter(|b| *b < nblocks) else {
            return Err(bad(self.nchunk, format!("no block {b}")));
        };
        let start = first * bs;
        let blk = bs.min(nbytes - start);
        let memcpyed = head[2] & MEMCPYED != 0;
        let body = if memcpyed {
            if cbytes != HEADER_LEN + nbytes {
                return Err(bad(self.nchunk, "stored chunk header is corrupt"));
            }
            (self.read)((HEADER_LEN + start) as u64, blk)?
        } else {
            if nblocks == 1 {
                return Ok(None);
            }
            if self.bstarts.is_none() {
                let raw = (self.read)(HEADER_LEN as u64, 4 * nblocks)?;
                self.bstarts = Some(raw.chunks_exact(4).map(|c| i32_at(c, 0)).collect());
            }
            let bstarts = self.bstarts.as_deref().unwrap_or_default();
            let from = bstarts.get(first).copied().unwrap_or(-1);
            // A block ends where the next one (in the chunk's byte order) starts.
            let to = bstarts
                .iter()
                .copied()
                .filter(|s| *s > from)
                .min()
                .map_or(cbytes, |s| s as usize);
            let data_start = HEADER_LEN + 4 * nblocks;
            let Some(from) = usize::try_from(from)
                .ok()
                .filter(|f| *f >= data_start && *f < to && to <= cbytes)
            else {
                return Err(bad(
                    self.nchunk,
                    format!("block {b} lies outside the chunk"),
                ));
            };
            (self.read)(from as u64, to - from)?
        };
        Ok(Some((
            one_block_chunk(&head, blk, bs, memcpyed, &body)?,
            blk,
        )))
    }
}

/// A chunk of one block: `head` (the original chunk's header) with the block's sizes, then
/// (unless memcpyed) one block start, then `body` verbatim. c-blosc2 wants blocksize <=
/// nbytes, so a short last block becomes a whole block of its own size; being a leftover it
/// was one stream: say so.
fn one_block_chunk(
    head: &[u8; HEADER_LEN],
    blk: usize,
    bs: usize,
    memcpyed: bool,
    body: &[u8],
) -> Result<Vec<u8>, FormatError> {
    let starts = if memcpyed { 0 } else { 4 };
    let total =
        i32::try_from(HEADER_LEN + starts + body.len()).map_err(|_| bad(0, "block too large"))?;
    let mut one = Vec::with_capacity(HEADER_LEN + starts + body.len());
    one.extend_from_slice(head);
    one[4..8].copy_from_slice(&(blk as i32).to_le_bytes());
    one[8..12].copy_from_slice(&(blk as i32).to_le_bytes());
    one[12..16].copy_from_slice(&total.to_le_bytes());
    if blk < bs {
        one[2] |= DONT_SPLIT;
    }
    if !memcpyed {
        one.extend_from_slice(&((HEADER_LEN + 4) as i32).to_le_bytes());
    }
    one.extend_from_slice(body);
    Ok(one)
}

/// Checks and decodes a one-block chunk received from a publisher (`expected` bytes).
///
/// # Errors
/// [`FormatError::BadChunk`] when it is not a sound chunk of that size.
pub fn decode_one_block(raw: &[u8], expected: usize) -> Result<Vec<u8>, FormatError> {
    let expected = expected as i64;
    match check(0, &Segmented::new(&[raw]), expected) {
        Ok(_) => chunk::decompress(0, raw, expected),
        Err(FormatError::ChunkUnavailable { .. }) => Err(bad(0, "an uninitialised block")),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`check`] of `raw` whole, and cut into uneven parts (which must agree).
    fn check1(raw: &[u8], n: i64) -> Result<bool, FormatError> {
        let whole = check(0, &Segmented::new(&[raw]), n);
        for size in [1, 7, 4096, 7777] {
            let parts: Vec<&[u8]> = raw.chunks(size).collect();
            let cut = check(0, &Segmented::new(&parts), n);
            assert_eq!(format!("{cut:?}"), format!("{whole:?}"), "parts of {size}");
        }
        whole
    }

    fn reader(raw: &[u8]) -> impl Fn(u64, usize) -> Result<Vec<u8>, FormatError> + '_ {
        move |o, l| {
            raw.get(o as usize..o as usize + l)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| bad(0, "read past the chunk"))
        }
    }

    #[test]
    fn blocks_read_alone_equal_the_whole_chunk() {
        // Smooth floats (compressible), several blocks, a short last one; split and not.
        let data: Vec<u8> = (0..300_001u32)
            .flat_map(|i| ((i as f32 * 0.001).sin()).to_le_bytes())
            .collect();
        for clevel in [0, 1, 5] {
            let raw = chunk::compress_blocks(&data, 4, clevel, 64 << 10).unwrap();
            assert!(check1(&raw, data.len() as i64).unwrap());
            let mut sc = StoredChunk::new(0, data.len() as i64, 64 << 10, reader(&raw));
            let nblocks = data.len().div_ceil(64 << 10);
            for b in 0..nblocks {
                let want = &data[b * (64 << 10)..((b + 1) * (64 << 10)).min(data.len())];
                assert_eq!(
                    sc.block(b as u64).unwrap(),
                    want,
                    "clevel {clevel} block {b}"
                );
                let (one, blk) = sc.one_block(b as u64).unwrap().unwrap();
                assert_eq!(decode_one_block(&one, blk).unwrap(), want);
                assert!(decode_one_block(&one, blk + 1).is_err());
                assert!(decode_one_block(&one[..one.len() - 1], blk).is_err());
            }
            assert!(sc.block(nblocks as u64).is_err());
        }
    }

    #[test]
    fn headers_c_blosc2_refuses_are_refused() {
        // Found by `fuzz/fuzz_targets/chunk.rs`: c-blosc2 cannot decode it.
        let raw = [
            0x01, 0x00, 0x0f, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0xf9, 0x01, 0x20, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x20,
        ];
        assert!(check1(&raw, 4096).is_err());
        // Found next: a zeros chunk whose block size (32 MiB) is past its 4096 bytes.
        let raw = [
            0x01, 0x9a, 0x25, 0x40, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x20, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x4f,
            0x00, 0x00, 0x00, 0x10,
        ];
        assert!(check1(&raw, 4096).is_err());
        assert!(decode_one_block(&raw, 4096).is_err());
    }

    #[test]
    fn structure_check_catches_lengths_not_contents() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i / 7).to_le_bytes())
            .collect();
        let raw = chunk::compress_blocks(&data, 4, 5, 16 << 10).unwrap();
        let n = data.len() as i64;
        assert!(check1(&raw, n).unwrap());
        assert!(check1(&raw, n + 4).is_err());
        assert!(check1(&raw[..raw.len() - 1], n).is_err());
        // A block start pointing past the end: not proven sound.
        let mut far = raw.clone();
        far[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&(raw.len() as i32 + 9).to_le_bytes());
        assert!(!check1(&far, n).unwrap());
        // A stream length running past the end: not proven sound either.
        let mut long = raw.clone();
        let s = i32_at(&raw, HEADER_LEN) as usize;
        long[s..s + 4].copy_from_slice(&i32::MAX.to_le_bytes());
        assert!(!check1(&long, n).unwrap());
        // Garbage inside a stream keeps the structure: decoding finds it (no crash).
        let mut junk = raw.clone();
        let last = raw.len() - 8;
        for b in &mut junk[last - 64..last] {
            *b ^= 0xa5;
        }
        let mut sc = StoredChunk::new(0, n, 16 << 10, reader(&junk));
        let nblocks = data.len().div_ceil(16 << 10) as u64;
        let _ = (0..nblocks).map(|b| sc.block(b)).collect::<Vec<_>>();
    }
}
