//! Cache files: a Blosc2 contiguous frame created with another dataset's metadata and all its
//! chunks UNINIT, then filled with raw chunks one by one, in any order.
//!
//! c-blosc2's `update_chunk` rewrites (decompresses, recompresses, writes) the whole chunk
//! offsets index on every call, so filling N chunks costs O(N²). Here the frame is written
//! directly (c-blosc2's `README_CFRAME_FORMAT.rst`): the offsets index and the trailer are kept
//! in memory, a [`CacheFile::put`] appends the chunk where the index was and nothing else, and
//! [`CacheFile::flush`] writes the index, the trailer and the two header fields that change
//! (frame length, compressed size) once per batch. Filling N chunks then costs O(N) plus one
//! index write per flush.
//!
//! Between a `put` and the next `flush` the file on disk is not a valid frame: callers read
//! chunks through [`CacheFile::raw_chunk`] (which uses the in-memory index), and flush before
//! anyone else opens the file. A crash in that window leaves a file that [`CacheFile::open`]
//! rejects; the owner then recreates it (the chunks are refetched, nothing wrong is served).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use blosc2::chunk::Encoder;
use blosc2::{CParams as SafeCParams, CompressAlgo, Filter, SplitMode};
use cat2_array::{ChunkLayout, Selection};

use crate::FormatError;
use crate::chunk::{self, ChunkHeader, HEADER_LEN};
use crate::dataset::Dataset;
use crate::ffi::{self, SPECIAL_UNINIT};
use cat2_proto::meta::{Kind, Meta};

/// Offsets of frame header fields (msgpack, big-endian), see `README_CFRAME_FORMAT.rst`.
const HEADER_SIZE_AT: usize = 0x0B;
const FRAME_LEN_AT: usize = 0x10;
const NBYTES_AT: usize = 0x1E;
const CBYTES_AT: usize = 0x27;
const FIXED_HEADER: usize = 0x2F;

/// A cache file being filled.
#[derive(Debug)]
pub struct CacheFile {
    path: PathBuf,
    file: File,
    meta: Meta,
    layout: ChunkLayout,
    header_len: u64,
    /// End of the chunk data: where the next chunk goes, and where the index is written.
    data_end: u64,
    /// Per chunk: its offset from the end of the header, or a negative special marker.
    offsets: Vec<i64>,
    /// The trailer (variable-length metalayers), position-independent, rewritten verbatim.
    trailer: Vec<u8>,
    filled: u64,
    dirty: bool,
}

impl CacheFile {
    /// Creates a cache file at `path` with `meta`'s metadata and every chunk UNINIT. The file
    /// appears atomically (written aside, then renamed). An existing file is replaced.
    ///
    /// # Errors
    /// [`FormatError::BadMetadata`] for inconsistent metadata; I/O and c-blosc2 errors.
    pub fn create(path: &Path, meta: &Meta) -> Result<Self, FormatError> {
        meta.validate()?;
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("cache");
        let tmp = path.with_file_name(format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let made = ffi::create_uninit(
            &tmp,
            &meta.cparams,
            meta.chunksize,
            meta.nbytes,
            &meta.metalayers,
            &meta.vlmeta,
        )
        .and_then(|()| std::fs::rename(&tmp, path).map_err(FormatError::io(path)));
        if let Err(e) = made {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        Self::open(path, meta.kind)
    }

    /// Opens an existing cache file, of the given kind (cache files of plain files are
    /// super-chunks named `<name>.b2`).
    ///
    /// # Errors
    /// [`FormatError::NotBlosc2`] / [`FormatError::BadMetadata`] when it is not a complete,
    /// consistent frame (e.g. after a crash between `put` and `flush`).
    pub fn open(path: &Path, kind: Kind) -> Result<Self, FormatError> {
        let kind = if kind == Kind::File {
            Kind::Frame
        } else {
            kind
        };
        let ds = Dataset::open_as(path, kind)?;
        let mut meta = ds.meta().clone();
        let layout = ds.layout().clone();
        drop(ds);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(FormatError::io(path))?;
        let corrupt = |reason: &str| FormatError::BadMetadata {
            path: path.into(),
            reason: reason.to_owned(),
        };
        let mut head = [0u8; FIXED_HEADER];
        file.read_exact_at(&mut head, 0)
            .map_err(FormatError::io(path))?;
        if head[HEADER_SIZE_AT - 1] != 0xd2
            || head[FRAME_LEN_AT - 1] != 0xcf
            || head[NBYTES_AT - 1] != 0xd3
            || head[CBYTES_AT - 1] != 0xd3
        {
            return Err(corrupt("unexpected frame header layout"));
        }
        let be = |at: usize, n: usize| {
            head[at..at + n]
                .iter()
                .fold(0u64, |a, b| (a << 8) | u64::from(*b))
        };
        let header_len = be(HEADER_SIZE_AT, 4);
        let frame_len = be(FRAME_LEN_AT, 8);
        let nbytes = be(NBYTES_AT, 8);
        let cbytes = be(CBYTES_AT, 8);
        let file_len = file.metadata().map_err(FormatError::io(path))?.len();
        if frame_len != file_len {
            return Err(corrupt("frame length does not match the file size"));
        }
        let data_end = header_len
            .checked_add(cbytes)
            .filter(|e| *e <= file_len)
            .ok_or_else(|| corrupt("sizes"))?;
        let nchunks = usize::try_from(meta.nchunks).map_err(|_| corrupt("nchunks"))?;
        let (offsets, index_len) = if nbytes == 0 || nchunks == 0 {
            (Vec::new(), 0)
        } else {
            read_index(&file, path, data_end, nchunks)?
        };
        let trailer_at = data_end + index_len;
        let mut trailer =
            vec![0u8; usize::try_from(file_len.saturating_sub(trailer_at)).unwrap_or(0)];
        file.read_exact_at(&mut trailer, trailer_at)
            .map_err(FormatError::io(path))?;
        let filled = offsets.iter().filter(|&&o| o >= 0).count() as u64;
        meta.cbytes = cbytes as i64;
        Ok(Self {
            path: path.into(),
            file,
            meta,
            layout,
            header_len,
            data_end,
            offsets,
            trailer,
            filled,
            dirty: false,
        })
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Metadata, with `cbytes` counting what is cached so far.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The chunk layout.
    pub fn layout(&self) -> &ChunkLayout {
        &self.layout
    }

    /// Number of chunks.
    pub fn nchunks(&self) -> u64 {
        self.offsets.len() as u64
    }

    /// Number of chunks filled so far.
    pub fn filled(&self) -> u64 {
        self.filled
    }

    /// Whether every chunk is filled.
    pub fn is_complete(&self) -> bool {
        self.filled == self.nchunks()
    }

    /// Whether chunk `nchunk` is filled (false past the end).
    pub fn is_filled(&self, nchunk: u64) -> bool {
        usize::try_from(nchunk)
            .ok()
            .and_then(|n| self.offsets.get(n))
            .is_some_and(|&o| o >= 0)
    }

    /// The chunks `sel` needs that are not filled yet, in increasing order.
    pub fn missing(&self, sel: &Selection) -> Vec<u64> {
        self.layout
            .chunks_touching(sel)
            .into_iter()
            .filter(|&n| !self.is_filled(n))
            .collect()
    }

    /// Stores the raw compressed chunk `nchunk`, after checking its header declares exactly
    /// its length and the uncompressed size this dataset's chunk `nchunk` has. Re-putting a
    /// filled chunk replaces it. Not durable until [`CacheFile::flush`].
    ///
    /// # Errors
    /// [`FormatError::NoSuchChunk`], [`FormatError::BadChunk`] (the file is left as it was);
    /// I/O errors.
    pub fn put(&mut self, nchunk: u64, raw: &[u8]) -> Result<(), FormatError> {
        let expected = self.meta.chunk_nbytes(nchunk)?;
        let h = ChunkHeader::parse(nchunk, raw)?;
        if i64::from(h.nbytes) != expected {
            return Err(FormatError::BadChunk {
                nchunk,
                reason: format!("holds {} bytes, expected {expected}", h.nbytes),
            });
        }
        if h.special == SPECIAL_UNINIT {
            return Err(FormatError::BadChunk {
                nchunk,
                reason: "an uninitialised chunk".into(),
            });
        }
        self.file
            .write_all_at(raw, self.data_end)
            .map_err(FormatError::io(&self.path))?;
        let n = nchunk as usize;
        if self.offsets[n] < 0 {
            self.filled += 1;
        }
        self.offsets[n] = (self.data_end - self.header_len) as i64;
        self.data_end += raw.len() as u64;
        self.dirty = true;
        Ok(())
    }

    /// Writes the index, the trailer and the header: afterwards the file is a valid frame
    /// that c-blosc2 (and python-blosc2) open.
    ///
    /// # Errors
    /// I/O and codec errors.
    pub fn flush(&mut self) -> Result<(), FormatError> {
        if !self.dirty {
            return Ok(());
        }
        let raw: Vec<u8> = self.offsets.iter().flat_map(|o| o.to_le_bytes()).collect();
        let index = compress_index(&raw)?;
        let io = FormatError::io(&self.path);
        let mut tail = Vec::with_capacity(index.len() + self.trailer.len());
        tail.extend_from_slice(&index);
        tail.extend_from_slice(&self.trailer);
        let frame_len = self.data_end + tail.len() as u64;
        let cbytes = self.data_end - self.header_len;
        let result = self
            .file
            .write_all_at(&tail, self.data_end)
            .and_then(|()| self.file.set_len(frame_len))
            .and_then(|()| {
                self.file
                    .write_all_at(&frame_len.to_be_bytes(), FRAME_LEN_AT as u64)
            })
            .and_then(|()| {
                self.file
                    .write_all_at(&cbytes.to_be_bytes(), CBYTES_AT as u64)
            });
        result.map_err(io)?;
        self.meta.cbytes = cbytes as i64;
        self.dirty = false;
        Ok(())
    }

    /// The raw bytes of chunk `nchunk`, or `None` when it is not filled.
    ///
    /// # Errors
    /// [`FormatError::NoSuchChunk`]; I/O errors; [`FormatError::BadChunk`] when the stored
    /// header is inconsistent.
    pub fn raw_chunk(&self, nchunk: u64) -> Result<Option<Vec<u8>>, FormatError> {
        let off = *usize::try_from(nchunk)
            .ok()
            .and_then(|n| self.offsets.get(n))
            .ok_or(FormatError::NoSuchChunk {
                nchunk,
                nchunks: self.nchunks(),
            })?;
        if off < 0 {
            return Ok(None);
        }
        let at = self.header_len + off as u64;
        let mut head = [0u8; HEADER_LEN];
        self.file
            .read_exact_at(&mut head, at)
            .map_err(FormatError::io(&self.path))?;
        let cbytes = i32::from_le_bytes([head[12], head[13], head[14], head[15]]);
        let len = usize::try_from(cbytes)
            .ok()
            .filter(|l| *l >= HEADER_LEN && (at + *l as u64) <= self.data_end);
        let len = len.ok_or_else(|| FormatError::BadChunk {
            nchunk,
            reason: "stored chunk header is corrupt".into(),
        })?;
        let mut buf = vec![0u8; len];
        self.file
            .read_exact_at(&mut buf, at)
            .map_err(FormatError::io(&self.path))?;
        Ok(Some(buf))
    }

    /// Reads the items of `sel` in C order.
    ///
    /// # Errors
    /// [`FormatError::ChunkUnavailable`] when a needed chunk is not filled; decoding errors.
    pub fn read(&self, sel: &Selection) -> Result<Vec<u8>, FormatError> {
        let itemsize = self.layout.itemsize();
        let total = usize::try_from(sel.nitems())
            .ok()
            .and_then(|n| n.checked_mul(itemsize));
        let mut out = vec![
            0u8;
            total.ok_or(FormatError::TooLarge {
                bytes: u64::MAX,
                what: "memory"
            })?
        ];
        for n in self.layout.chunks_touching(sel) {
            let raw = self
                .raw_chunk(n)?
                .ok_or(FormatError::ChunkUnavailable { nchunk: n })?;
            let data = chunk::decompress(n, &raw, self.meta.chunk_nbytes(n)?)?;
            self.layout.copy_from_chunk(n, &data, sel, &mut out)?;
        }
        Ok(out)
    }
}

fn read_index(
    file: &File,
    path: &Path,
    at: u64,
    nchunks: usize,
) -> Result<(Vec<i64>, u64), FormatError> {
    let corrupt = |reason: &str| FormatError::BadMetadata {
        path: path.into(),
        reason: reason.to_owned(),
    };
    let mut head = [0u8; HEADER_LEN];
    file.read_exact_at(&mut head, at)
        .map_err(|_| corrupt("truncated chunk index"))?;
    let len = i32::from_le_bytes([head[12], head[13], head[14], head[15]]);
    let len = usize::try_from(len).map_err(|_| corrupt("chunk index size"))?;
    let mut raw = vec![0u8; len];
    file.read_exact_at(&mut raw, at)
        .map_err(|_| corrupt("truncated chunk index"))?;
    let bytes = chunk::decompress(0, &raw, nchunks as i64 * 8)
        .map_err(|_| corrupt("unreadable chunk index"))?;
    let offsets = bytes
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().expect("8-byte chunks")))
        .collect();
    Ok((offsets, len as u64))
}

/// Compresses the offsets index as c-blosc2 does (BloscLZ, shuffle, 16 KiB blocks, no split).
fn compress_index(raw: &[u8]) -> Result<Vec<u8>, FormatError> {
    let mut p = SafeCParams::default();
    p.compressor(CompressAlgo::Blosclz)
        .clevel(5)
        .nthreads(1)
        .splitmode(SplitMode::Never)
        .blocksize(Some(16 * 1024));
    p.typesize(8)?;
    p.filters(&[Filter::ByteShuffle])?;
    Ok(Encoder::new(p)?.compress(raw)?.into_bytes().into_vec())
}
