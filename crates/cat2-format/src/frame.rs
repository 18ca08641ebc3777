//! A structural check of a contiguous frame file, in safe Rust, before c-blosc2 parses it.
//!
//! c-blosc2 trusts a frame's declared lengths (header, trailer, chunk index): a flipped byte
//! in them makes it read out of bounds and crash the process. Publishers open files they did
//! not write, so every frame is checked here first: lengths against the file size, the
//! metalayer index, the trailer, and every entry of the chunk index
//! (`README_CFRAME_FORMAT.rst`).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use cat2_array::{ChunkLayout, Selection};

use crate::FormatError;
use crate::blocks::StoredChunk;
use crate::chunk::{self, HEADER_LEN};

const HEADER_MINLEN: u64 = 87;
const TRAILER_MINLEN: u64 = 25;
const TRAILER_LEN_OFFSET: u64 = 22;
/// Largest header accepted (metalayers live there; b2nd's is a few hundred bytes).
const MAX_HEADER: u64 = 1 << 24;
/// Largest trailer accepted (vlmeta lives there).
const MAX_TRAILER: u64 = 1 << 28;

fn be(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |a, x| (a << 8) | u64::from(*x))
}

/// A contiguous frame file, checked, with its chunk index in memory. Reads raw chunks with
/// positioned reads (`&self`: any number of threads at once).
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    pub(crate) header_len: u64,
    /// End of the chunk data (where the index starts).
    pub(crate) data_end: u64,
    /// Per chunk: offset from the end of the header, or a negative special marker.
    pub(crate) offsets: Vec<i64>,
    /// The trailer bytes (position-independent).
    pub(crate) trailer: Vec<u8>,
    pub(crate) nbytes: i64,
    pub(crate) chunksize: i32,
    pub(crate) typesize: i32,
    /// Where the frame starts in the file (0 but for frames embedded in other files, such as
    /// the Blosc2 chunks of an HDF5 dataset).
    pub(crate) base: u64,
    /// The frame's length when it was checked.
    pub(crate) len: u64,
}

/// Positioned read of `buf.len()` bytes at `at` of the frame starting at `base`.
fn read_at(
    file: &File,
    path: &Path,
    base: u64,
    buf: &mut [u8],
    at: u64,
) -> Result<(), FormatError> {
    let pos = base
        .checked_add(at)
        .ok_or_else(|| FormatError::NotBlosc2 { path: path.into() })?;
    file.read_exact_at(buf, pos).map_err(FormatError::io(path))
}

impl Frame {
    /// Opens and checks the frame file at `path` (for writing too when `writable`).
    ///
    /// # Errors
    /// [`FormatError::NotBlosc2`] for anything that is not a well-formed contiguous frame.
    pub(crate) fn open(path: &Path, writable: bool) -> Result<Self, FormatError> {
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .map_err(FormatError::io(path))?;
        let len = file.metadata().map_err(FormatError::io(path))?.len();
        Self::check(path, file, 0, len)
    }

    /// Checks the frame of `len` bytes embedded at `base` in `file` (read only).
    ///
    /// # Errors
    /// As [`Frame::open`].
    pub(crate) fn open_region(
        path: &Path,
        file: File,
        base: u64,
        len: u64,
    ) -> Result<Self, FormatError> {
        Self::check(path, file, base, len)
    }

    fn check(path: &Path, file: File, base: u64, len: u64) -> Result<Self, FormatError> {
        let not = || FormatError::NotBlosc2 { path: path.into() };
        if len < HEADER_MINLEN + TRAILER_MINLEN {
            return Err(not());
        }
        let mut fixed = [0u8; HEADER_MINLEN as usize];
        read_at(&file, path, base, &mut fixed, 0)?;
        let markers = [
            (10, 0xd2),
            (15, 0xcf),
            (29, 0xd3),
            (38, 0xd3),
            (47, 0xd2),
            (52, 0xd2),
            (57, 0xd2),
        ];
        if fixed[0] & 0xf0 != 0x90
            || &fixed[2..10] != b"b2frame\0"
            || markers.iter().any(|&(i, m)| fixed[i] != m)
        {
            return Err(not());
        }
        // A contiguous frame (type 0), at most 6 filters.
        if fixed[26] != 0 || fixed[70] > 6 {
            return Err(not());
        }
        let header_len = be(&fixed[11..15]);
        let frame_len = be(&fixed[16..24]);
        let nbytes = be(&fixed[30..38]) as i64;
        let cbytes = be(&fixed[39..47]) as i64;
        let typesize = be(&fixed[48..52]) as i32;
        let blocksize = be(&fixed[53..57]) as i32;
        let chunksize = be(&fixed[58..62]) as i32;
        if frame_len != len
            || !(HEADER_MINLEN..=MAX_HEADER.min(len - TRAILER_MINLEN)).contains(&header_len)
        {
            return Err(not());
        }
        if nbytes < 0
            || cbytes < 0
            || typesize <= 0
            || blocksize < 0
            || (nbytes > 0 && chunksize <= 0)
        {
            return Err(not());
        }
        let mut header = vec![0u8; header_len as usize];
        read_at(&file, path, base, &mut header, 0)?;
        check_layers(&header, 91, 16).ok_or_else(not)?;

        let trailer_len = {
            let mut b = [0u8; 4];
            read_at(&file, path, base, &mut b, len - TRAILER_LEN_OFFSET)?;
            be(&b)
        };
        let data_end = header_len.checked_add(cbytes as u64).ok_or_else(not)?;
        if !(TRAILER_MINLEN..=MAX_TRAILER).contains(&trailer_len) || data_end + trailer_len > len {
            return Err(not());
        }
        let trailer_at = len - trailer_len;
        let mut trailer = vec![0u8; trailer_len as usize];
        read_at(&file, path, base, &mut trailer, trailer_at)?;
        if trailer[0] & 0xf0 != 0x90 {
            return Err(not());
        }
        check_layers(&trailer, 6, 8192).ok_or_else(not)?;

        let mut offsets = Vec::new();
        if nbytes > 0 {
            let nchunks = (nbytes as u64).div_ceil(chunksize as u64);
            if nchunks > cat2_array::MAX_CHUNKS || data_end + HEADER_LEN as u64 > trailer_at {
                return Err(not());
            }
            let mut head = [0u8; HEADER_LEN];
            read_at(&file, path, base, &mut head, data_end)?;
            let index_len = u64::from(u32::from_le_bytes([head[12], head[13], head[14], head[15]]));
            if data_end + index_len != trailer_at {
                return Err(not());
            }
            let mut index = vec![0u8; index_len as usize];
            read_at(&file, path, base, &mut index, data_end)?;
            let raw = chunk::decompress(0, &index, nchunks as i64 * 8).map_err(|_| not())?;
            offsets = raw
                .chunks_exact(8)
                .map(|o| i64::from_le_bytes(o.try_into().expect("8-byte chunks")))
                .collect();
            for &o in &offsets {
                let bad_special = o < 0 && !matches!(special_of_offset(o), 1 | 2 | 4);
                if bad_special
                    || (o >= 0 && (o as u64).saturating_add(HEADER_LEN as u64) > cbytes as u64)
                {
                    return Err(not());
                }
            }
        } else if trailer_at != header_len {
            // Without chunks, c-blosc2 looks for the trailer right after the header.
            return Err(not());
        }
        Ok(Self {
            path: path.into(),
            file,
            header_len,
            data_end,
            offsets,
            trailer,
            nbytes,
            chunksize,
            typesize,
            base,
            len,
        })
    }

    /// Number of chunks.
    pub(crate) fn nchunks(&self) -> u64 {
        self.offsets.len() as u64
    }

    /// The special value chunk `n` is coded as in the index (1 zeros, 2 NaNs, 4 uninit), or
    /// `None` when it is stored. `None` past the end too.
    pub(crate) fn special(&self, n: u64) -> Option<u8> {
        let o = *self.offsets.get(usize::try_from(n).ok()?)?;
        (o < 0).then(|| special_of_offset(o))
    }

    /// Uncompressed bytes of chunk `n` (the last one may be short).
    fn chunk_nbytes(&self, n: u64) -> i64 {
        let full = i64::from(self.chunksize);
        if n + 1 == self.nchunks() {
            self.nbytes - full * (self.nchunks() as i64 - 1)
        } else {
            full
        }
    }

    /// The stored bytes of chunk `n`, `None` for a special chunk.
    ///
    /// # Errors
    /// [`FormatError::NoSuchChunk`]; [`FormatError::BadChunk`] when the stored chunk header
    /// does not fit the frame; I/O errors.
    pub(crate) fn stored_chunk(&self, n: u64) -> Result<Option<Vec<u8>>, FormatError> {
        let mut buf = Vec::new();
        Ok(self.stored_chunk_into(n, &mut buf)?.then_some(buf))
    }

    /// [`Frame::stored_chunk`] into `buf` (its capacity and length reused: bytes beyond its
    /// length are zeroed first, the rest overwritten); `false` for a special chunk.
    ///
    /// # Errors
    /// As [`Frame::stored_chunk`].
    pub(crate) fn stored_chunk_into(&self, n: u64, buf: &mut Vec<u8>) -> Result<bool, FormatError> {
        let Some(at) = self.stored_at(n)? else {
            return Ok(false);
        };
        let mut head = [0u8; HEADER_LEN];
        read_at(&self.file, &self.path, self.base, &mut head, at)?;
        let cbytes = i32::from_le_bytes([head[12], head[13], head[14], head[15]]);
        let len = usize::try_from(cbytes)
            .ok()
            .filter(|l| *l >= HEADER_LEN && at + *l as u64 <= self.data_end);
        let len = len.ok_or_else(|| FormatError::BadChunk {
            nchunk: n,
            reason: "stored chunk header is corrupt".into(),
        })?;
        if buf.len() >= len {
            buf.truncate(len);
        } else {
            buf.resize(len, 0);
        }
        read_at(&self.file, &self.path, self.base, buf, at)?;
        Ok(true)
    }

    /// Where stored chunk `n` starts in the file; `None` for a special chunk.
    fn stored_at(&self, n: u64) -> Result<Option<u64>, FormatError> {
        let off = *usize::try_from(n)
            .ok()
            .and_then(|i| self.offsets.get(i))
            .ok_or(FormatError::NoSuchChunk {
                nchunk: n,
                nchunks: self.nchunks(),
            })?;
        Ok((off >= 0).then(|| self.header_len + off as u64))
    }

    /// Positioned reads inside stored chunk `n` (at `at`), kept inside the chunk data.
    fn reader(&self, n: u64, at: u64) -> impl Fn(u64, usize) -> Result<Vec<u8>, FormatError> + '_ {
        move |o: u64, len: usize| {
            let from = at.saturating_add(o);
            if from.saturating_add(len as u64) > self.data_end {
                return Err(FormatError::BadChunk {
                    nchunk: n,
                    reason: "stored chunk runs past the chunk data".into(),
                });
            }
            let mut buf = vec![0u8; len];
            read_at(&self.file, &self.path, self.base, &mut buf, from)?;
            Ok(buf)
        }
    }

    /// Block `b` of chunk `n` as a one-block chunk (see [`StoredChunk::one_block`]) and its
    /// uncompressed size; `None` when it must be read whole (special chunks too).
    ///
    /// # Errors
    /// [`FormatError::NoSuchChunk`]; [`FormatError::BadChunk`]; I/O errors.
    pub(crate) fn one_block(
        &self,
        n: u64,
        expected: i64,
        block_bytes: usize,
        b: u64,
    ) -> Result<Option<(Vec<u8>, usize)>, FormatError> {
        match self.stored_at(n)? {
            None => Ok(None),
            Some(at) => StoredChunk::new(n, expected, block_bytes, self.reader(n, at)).one_block(b),
        }
    }

    /// Copies the part of `sel` that chunk `n` (holding `expected` bytes) holds into `out`,
    /// reading and decoding only the blocks it needs.
    ///
    /// # Errors
    /// [`FormatError::ChunkUnavailable`] for an UNINIT chunk; decoding and I/O errors.
    pub(crate) fn copy_chunk(
        &self,
        layout: &ChunkLayout,
        n: u64,
        expected: i64,
        sel: &Selection,
        out: &mut [u8],
    ) -> Result<(), FormatError> {
        let bb = layout.block_bytes();
        let Some(at) = self.stored_at(n)? else {
            let raw = self.raw_chunk(n)?;
            return layout.copy_from_blocks(n, sel, out, |b| {
                chunk::decompress_block(n, &raw, expected, b, bb)
            });
        };
        let read = self.reader(n, at);
        let mut stored = StoredChunk::new(n, expected, bb, read);
        layout.copy_from_blocks(n, sel, out, |b| stored.block(b))
    }

    /// The bytes of chunk `n` as c-blosc2's `get_chunk` gives them: stored chunks verbatim,
    /// special ones as their 32-byte special chunk.
    ///
    /// # Errors
    /// As [`Frame::stored_chunk`].
    pub(crate) fn raw_chunk(&self, n: u64) -> Result<Vec<u8>, FormatError> {
        match self.stored_chunk(n)? {
            Some(c) => Ok(c),
            None => {
                let special = self.special(n).unwrap_or(crate::ffi::SPECIAL_UNINIT);
                let nbytes =
                    i32::try_from(self.chunk_nbytes(n)).map_err(|_| FormatError::BadChunk {
                        nchunk: n,
                        reason: "chunk too large".into(),
                    })?;
                crate::ffi::special_chunk(special, nbytes, self.typesize)
            }
        }
    }
}

/// The special value of a negative index entry (c-blosc2: bit 63 set, value in byte 7).
pub(crate) fn special_of_offset(o: i64) -> u8 {
    ((o as u64 >> 56) & 0x7f) as u8
}

/// Checks a metalayer index (`93 cd idx_size de nmeta {name: d2 offset}`) at `at` in `buf`
/// and that every content (`c6 len bytes`) lies inside `buf`.
fn check_layers(buf: &[u8], at: usize, max: usize) -> Option<()> {
    let get = |i: usize| buf.get(i).copied();
    // The map of names to offsets opens right after the 2-byte index size.
    if get(at)? != 0xde {
        return None;
    }
    let n = be(buf.get(at + 1..at + 3)?) as usize;
    if n > max {
        return None;
    }
    let mut p = at + 3;
    for _ in 0..n {
        let tag = get(p)?;
        if tag & 0xe0 != 0xa0 {
            return None;
        }
        p += 1 + usize::from(tag & 0x1f);
        if get(p)? != 0xd2 {
            return None;
        }
        let off = i32::try_from(be(buf.get(p + 1..p + 5)?)).ok()?;
        p += 5;
        let off = usize::try_from(off).ok()?;
        if get(off)? != 0xc6 {
            return None;
        }
        let clen = i32::try_from(be(buf.get(off + 1..off + 5)?)).ok()?;
        let end = off
            .checked_add(5)?
            .checked_add(usize::try_from(clen).ok()?)?;
        if end > buf.len() {
            return None;
        }
    }
    Some(())
}
