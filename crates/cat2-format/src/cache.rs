//! Cache files: a Blosc2 contiguous frame created with another dataset's metadata and all its
//! chunks UNINIT, then filled with raw chunks one by one, in any order.
//!
//! c-blosc2's `update_chunk` rewrites (decompresses, recompresses, writes) the whole chunk
//! index on every call, so filling N chunks costs O(N²). Here the frame is written directly
//! (c-blosc2's `README_CFRAME_FORMAT.rst`): the chunk index and the trailer are kept in memory,
//! [`CacheFile::put`] appends the chunk where the index was and nothing else, and
//! [`CacheFile::flush`] writes the index, the trailer and the two header fields that change
//! (frame length, compressed size) once per batch. Filling N chunks costs O(N) plus one index
//! write per flush.
//!
//! Between a `put` and the next `flush` the file on disk is not a valid frame: its header's
//! frame length is zeroed on the first `put`, so nobody (c-blosc2, python-blosc2, ourselves
//! after a crash) mistakes it for one. Meanwhile callers read chunks through
//! [`CacheFile::raw_chunk`], which uses the in-memory index. A crash in that window leaves a
//! file that [`CacheFile::open`] rejects; the owner recreates it and refetches.
//!
//! # Durability
//! The policy is "data before the index that names it", with the zeroed frame length as the
//! dirty marker: the marker is synced (`fdatasync`) before any chunk is written, and a flush
//! syncs chunks, index and trailer before it writes the frame length, then syncs that too.
//! So after a crash or a power loss a cache file either opens as a frame whose index names
//! only bytes that reached the disk, or does not open at all (and is made again); a new file
//! is synced before it is renamed into place, and its directory after. One or two syncs per
//! flush (a batch of chunks), not per chunk.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use blosc2::chunk::Encoder;
use blosc2::{CParams as SafeCParams, CompressAlgo, Filter, SplitMode};
use cat2_array::{ChunkLayout, Selection};
use cat2_proto::meta::{Kind, Meta};

use crate::FormatError;
use crate::blocks;
use crate::chunk;
use crate::dataset::Dataset;
use crate::ffi;
use crate::frame::Frame;

mod shared;
mod snapshot;

pub use shared::SharedCache;
pub use snapshot::Snapshot;

/// Offsets of the frame header fields a flush rewrites (msgpack, big-endian).
const FRAME_LEN_AT: u64 = 0x10;
const CBYTES_AT: u64 = 0x27;
/// An index entry marking an UNINIT chunk (bit 63 set, the special value in byte 7).
const UNINIT_OFFSET: i64 = ((1u64 << 63) | ((ffi::SPECIAL_UNINIT as u64) << 56)) as i64;

/// The index entry of a special chunk (1 zeros, 2 NaNs, 4 uninitialised).
const fn special_offset(special: u8) -> i64 {
    ((1u64 << 63) | ((special as u64) << 56)) as i64
}

/// Whether an index entry names a chunk (stored bytes, or all zeros / NaNs), not a hole.
fn is_stored(o: i64) -> bool {
    o != UNINIT_OFFSET && (o >= 0 || matches!(crate::frame::special_of_offset(o), 1 | 2))
}

/// The special value (1 zeros, 2 NaNs) of a verified chunk that is one, kept as an index
/// entry like c-blosc2 does: current c-blosc2 refuses frames whose first chunk is such a
/// chunk stored inline.
fn special_of(chunk: &Verified<'_>) -> Option<u8> {
    let head = chunk.parts.first()?;
    if chunk.len != chunk::HEADER_LEN || head.len() < chunk::HEADER_LEN {
        return None;
    }
    let s = crate::chunk::special_of_flags(head[31]);
    matches!(s, 1 | 2).then_some(s)
}

/// A chunk [`CacheFile::verify`] accepted, ready for [`CacheFile::put_verified`]: its bytes,
/// as the parts it arrived in.
#[derive(Debug, Clone)]
pub struct Verified<'a> {
    nchunk: u64,
    parts: Vec<&'a [u8]>,
    len: usize,
}

/// Room reserved for one chunk in a cache file ([`CacheFile::reserve`]).
#[derive(Debug)]
pub struct Slot {
    nchunk: usize,
    at: u64,
    len: usize,
}

/// A cache file being filled.
#[derive(Debug)]
pub struct CacheFile {
    frame: Frame,
    meta: Meta,
    layout: ChunkLayout,
    filled: u64,
    dirty: bool,
    /// Times the file on disk started to change (went from flushed to dirty).
    generation: u64,
}

impl CacheFile {
    /// Creates a cache file at `path` with `meta`'s metadata and every chunk UNINIT. The file
    /// appears atomically (written aside, checked, then renamed). An existing file is
    /// replaced only once the new one is known good.
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
        .and_then(|()| Self::open(&tmp, meta.kind))
        .and_then(|mut cache| {
            // The metalayers are copied verbatim: check that what c-blosc2 reads back
            // agrees with the metadata they came with, before the file replaces anything.
            let m = &cache.meta;
            let same_chunks = meta.nbytes == 0 || m.chunksize == meta.chunksize;
            if m.array != meta.array
                || (m.nchunks, m.nbytes) != (meta.nchunks, meta.nbytes)
                || !same_chunks
            {
                return Err(FormatError::BadMetadata {
                    path: path.into(),
                    reason: "the b2nd metalayer contradicts the metadata".into(),
                });
            }
            // Durable before it is named: after a power loss the path holds the old file or
            // this whole one, never a name without its bytes.
            cache.frame.file.sync_all().map_err(FormatError::io(&tmp))?;
            std::fs::rename(&tmp, path).map_err(FormatError::io(path))?;
            sync_dir(path)?;
            cache.frame.path = path.into();
            Ok(cache)
        });
        if made.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        made
    }

    /// Opens an existing cache file of a dataset of `kind` (cache files of plain files are
    /// super-chunks named `<name>.b2`).
    ///
    /// # Errors
    /// [`FormatError::NotBlosc2`] / [`FormatError::BadMetadata`] when it is not a complete,
    /// consistent frame (e.g. after a crash between `put` and `flush`).
    pub fn open(path: &Path, kind: Kind) -> Result<Self, FormatError> {
        let ds = Dataset::open_as(path, kind.stored_as())?;
        let meta = ds.meta().clone();
        let layout = ds.layout().clone();
        drop(ds);
        let frame = Frame::open(path, true)?;
        let filled = frame.offsets.iter().filter(|&&o| is_stored(o)).count() as u64;
        Ok(Self {
            frame,
            meta,
            layout,
            filled,
            dirty: false,
            generation: 0,
        })
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.frame.path
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
        self.frame.nchunks()
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
            .and_then(|n| self.frame.offsets.get(n))
            .is_some_and(|&o| is_stored(o))
    }

    /// The chunks `sel` needs that are not filled yet, in increasing order.
    pub fn missing(&self, sel: &Selection) -> Vec<u64> {
        self.layout
            .chunks_touching(sel)
            .into_iter()
            .filter(|&n| !self.is_filled(n))
            .collect()
    }

    /// Stores the raw compressed chunk `nchunk` after checking it decodes to exactly the size
    /// this dataset's chunk `nchunk` has ([`CacheFile::verify`]). Chunks of one version never
    /// change, so putting a chunk that is already filled does nothing. Not durable until
    /// [`CacheFile::flush`].
    ///
    /// # Errors
    /// [`FormatError::NoSuchChunk`], [`FormatError::BadChunk`] (the file is left as it was);
    /// I/O errors.
    pub fn put(&mut self, nchunk: u64, raw: &[u8]) -> Result<(), FormatError> {
        let checked = Self::verify(&self.meta, nchunk, raw)?;
        self.put_verified(checked)
    }

    /// Checks that `raw` is a whole, safe chunk `nchunk` of a dataset with `meta`: its header
    /// (size, codec, filters) and every block start and stream length, without decoding
    /// (cheap enough for every chunk received). Chunks whose layout that walk does not cover
    /// are decoded instead. Garbage inside a compressed stream passes; it fails when a block
    /// of it is decoded (the subscriber then drops the chunk, see [`CacheFile::forget`]).
    /// Needs no access to the file: callers verify outside their locks, then
    /// [`CacheFile::put_verified`] only writes.
    ///
    /// # Errors
    /// [`FormatError::NoSuchChunk`], [`FormatError::BadChunk`].
    pub fn verify<'a>(
        meta: &Meta,
        nchunk: u64,
        raw: &'a [u8],
    ) -> Result<Verified<'a>, FormatError> {
        Self::verify_parts(meta, nchunk, &[raw])
    }

    /// [`CacheFile::verify`] of a chunk given as the parts it arrived in, in order (never
    /// joined, unless its layout must be checked by decoding it).
    ///
    /// # Errors
    /// As [`CacheFile::verify`].
    pub fn verify_parts<'a, P: AsRef<[u8]> + ?Sized>(
        meta: &Meta,
        nchunk: u64,
        parts: &[&'a P],
    ) -> Result<Verified<'a>, FormatError> {
        let parts: Vec<&'a [u8]> = parts.iter().map(|p| (*p).as_ref()).collect();
        let expected = meta.chunk_nbytes(nchunk)?;
        let block_bytes = meta.layout().map_or(0, |l| l.block_bytes());
        let seg = blocks::Segmented::new(&parts);
        let len = seg.len();
        let checked = match blocks::check(nchunk, &seg, expected) {
            Ok(true) => Ok(()),
            Ok(false) => chunk::verify(nchunk, &seg.contiguous(), expected, block_bytes),
            Err(e) => Err(e),
        };
        match checked {
            Ok(()) => Ok(Verified { nchunk, parts, len }),
            Err(FormatError::ChunkUnavailable { .. }) => Err(FormatError::BadChunk {
                nchunk,
                reason: "an uninitialised chunk".into(),
            }),
            Err(e) => Err(e),
        }
    }

    /// Forgets chunk `nchunk` (marks it UNINIT again, e.g. after it failed to decode), so it
    /// is fetched anew. Its bytes stay in the file, unused. Not durable until
    /// [`CacheFile::flush`].
    ///
    /// # Errors
    /// [`FormatError::NoSuchChunk`]; I/O errors.
    pub fn forget(&mut self, nchunk: u64) -> Result<(), FormatError> {
        let n = usize::try_from(nchunk)
            .ok()
            .filter(|n| *n < self.frame.offsets.len())
            .ok_or(FormatError::NoSuchChunk {
                nchunk,
                nchunks: self.nchunks(),
            })?;
        if !is_stored(self.frame.offsets[n]) {
            return Ok(());
        }
        self.mark_dirty()?;
        self.frame.offsets[n] = UNINIT_OFFSET;
        self.filled -= 1;
        Ok(())
    }

    /// Where chunk `nchunk`'s bytes start in the file, when it is filled.
    pub fn stored_at(&self, nchunk: u64) -> Option<u64> {
        let f = &self.frame;
        let o = *f.offsets.get(usize::try_from(nchunk).ok()?)?;
        u64::try_from(o).ok().map(|o| o + f.header_len)
    }

    /// [`CacheFile::forget`]s chunk `nchunk` if it is still the one stored at `at` (two
    /// readers that saw it fail do not drop the copy fetched again in between).
    ///
    /// # Errors
    /// As [`CacheFile::forget`].
    pub fn forget_stored(&mut self, nchunk: u64, at: u64) -> Result<(), FormatError> {
        if self.stored_at(nchunk) == Some(at) {
            self.forget(nchunk)?;
        }
        Ok(())
    }

    fn mark_dirty(&mut self) -> Result<(), FormatError> {
        if !self.dirty {
            self.generation += 1;
            // Mark the frame torn until the next flush.
            let f = &self.frame;
            // Durable before any chunk lands where the old index was: a crash or power loss
            // from here on leaves a file that does not open as a frame (it is made again),
            // never one whose index names bytes that are not there.
            f.file
                .write_all_at(&0u64.to_be_bytes(), FRAME_LEN_AT)
                .and_then(|()| f.file.sync_data())
                .map_err(FormatError::io(&f.path))?;
            self.dirty = true;
        }
        Ok(())
    }

    /// Stores a chunk [`CacheFile::verify`] accepted (see [`CacheFile::put`]).
    ///
    /// # Errors
    /// [`FormatError::NoSuchChunk`] (verified against other metadata); I/O errors.
    pub fn put_verified(&mut self, chunk: Verified<'_>) -> Result<(), FormatError> {
        if let Some(slot) = self.reserve(&chunk)? {
            self.write_slot(&slot, &chunk)?;
            self.commit(slot)?;
        }
        Ok(())
    }

    /// Reserves room at the end of the chunk data for a verified chunk (`None` when it is
    /// filled already). With [`CacheFile::write_slot`] (`&self`: shared with readers) and
    /// [`CacheFile::commit`], big chunks are written without holding off readers.
    ///
    /// # Errors
    /// [`FormatError::NoSuchChunk`]; I/O errors.
    pub fn reserve(&mut self, chunk: &Verified<'_>) -> Result<Option<Slot>, FormatError> {
        let n = usize::try_from(chunk.nchunk)
            .ok()
            .filter(|n| *n < self.frame.offsets.len());
        let n = n.ok_or(FormatError::NoSuchChunk {
            nchunk: chunk.nchunk,
            nchunks: self.nchunks(),
        })?;
        if is_stored(self.frame.offsets[n]) {
            return Ok(None);
        }
        self.mark_dirty()?;
        if let Some(special) = special_of(chunk) {
            // Nothing to write: the index says what the chunk holds.
            self.frame.offsets[n] = special_offset(special);
            self.filled += 1;
            return Ok(None);
        }
        let at = self.frame.data_end;
        self.frame.data_end += chunk.len as u64;
        Ok(Some(Slot {
            nchunk: n,
            at,
            len: chunk.len,
        }))
    }

    /// Writes a chunk's bytes into its reserved slot.
    ///
    /// # Errors
    /// [`FormatError::BadChunk`] when `chunk` is not the one the slot was reserved for; I/O
    /// errors.
    pub fn write_slot(&self, slot: &Slot, chunk: &Verified<'_>) -> Result<(), FormatError> {
        if chunk.len != slot.len || chunk.nchunk != slot.nchunk as u64 {
            return Err(FormatError::BadChunk {
                nchunk: chunk.nchunk,
                reason: "not the chunk its slot was reserved for".into(),
            });
        }
        let f = &self.frame;
        let mut at = slot.at;
        for part in &chunk.parts {
            f.file
                .write_all_at(part, at)
                .map_err(FormatError::io(&f.path))?;
            at += part.len() as u64;
        }
        Ok(())
    }

    /// Points the index at a written slot (durable at the next [`CacheFile::flush`]). A flush
    /// may have run since the slot was reserved (another writer's): the file is dirty again.
    ///
    /// # Errors
    /// I/O errors.
    pub fn commit(&mut self, slot: Slot) -> Result<(), FormatError> {
        if !is_stored(self.frame.offsets[slot.nchunk]) {
            self.mark_dirty()?;
            let f = &mut self.frame;
            f.offsets[slot.nchunk] = (slot.at - f.header_len) as i64;
            self.filled += 1;
        }
        Ok(())
    }

    /// Whether chunks were put since the last flush (the file on disk is then not a valid
    /// frame).
    pub fn is_dirty(&self) -> bool {
        self.dirty
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
        let f = &mut self.frame;
        let raw: Vec<u8> = f.offsets.iter().flat_map(|o| o.to_le_bytes()).collect();
        let index = compress_index(&raw)?;
        let mut tail = Vec::with_capacity(index.len() + f.trailer.len());
        tail.extend_from_slice(&index);
        tail.extend_from_slice(&f.trailer);
        let frame_len = f.data_end + tail.len() as u64;
        let cbytes = f.data_end - f.header_len;
        // Chunks, index and trailer durable first, then the length that makes the file a
        // valid frame, durable too: the kernel may write pages back in any order, so without
        // the first sync a power loss could keep the length and lose what it covers.
        let result = f
            .file
            .write_all_at(&tail, f.data_end)
            .and_then(|()| f.file.set_len(frame_len))
            .and_then(|()| f.file.write_all_at(&cbytes.to_be_bytes(), CBYTES_AT))
            .and_then(|()| f.file.sync_data())
            .and_then(|()| f.file.write_all_at(&frame_len.to_be_bytes(), FRAME_LEN_AT))
            .and_then(|()| f.file.sync_data());
        result.map_err(FormatError::io(&f.path))?;
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
        self.frame.stored_chunk(nchunk)
    }

    /// Reads the items of `sel` in C order.
    ///
    /// # Errors
    /// [`FormatError::ChunkUnavailable`] when a needed chunk is not filled; decoding errors.
    pub fn read(&self, sel: &Selection) -> Result<Vec<u8>, FormatError> {
        self.read_using(sel, |_, _| None)
    }

    /// [`CacheFile::read`], taking the blocks of chunks not filled yet from `blocks(chunk,
    /// block)` (decoded blocks fetched on their own, for small reads).
    ///
    /// # Errors
    /// [`FormatError::ChunkUnavailable`] when a needed block is in neither; decoding errors.
    pub fn read_using(
        &self,
        sel: &Selection,
        mut blocks: impl FnMut(u64, u64) -> Option<Vec<u8>>,
    ) -> Result<Vec<u8>, FormatError> {
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
            if self.is_filled(n) {
                let expected = self.meta.chunk_nbytes(n)?;
                self.frame
                    .copy_chunk(&self.layout, n, expected, sel, &mut out)?;
            } else {
                self.layout.copy_from_blocks(n, sel, &mut out, |b| {
                    blocks(n, b).ok_or(FormatError::ChunkUnavailable { nchunk: n })
                })?;
            }
        }
        Ok(out)
    }
}

/// Compresses the chunk index as c-blosc2 does (BloscLZ, shuffle, 16 KiB blocks, no split).
/// Makes a rename into `path`'s directory durable.
fn sync_dir(path: &Path) -> Result<(), FormatError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(FormatError::io(dir))
}

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
