//! Opening the datasets of a root directory: `.b2nd` arrays, `.b2frame` super-chunks, and any
//! other file as a super-chunk of bytes compressed on the fly.

use std::path::{Path, PathBuf};

use cat2_array::{ChunkLayout, Selection};

use crate::FormatError;
use crate::chunk;
use crate::ffi::{self, Schunk};
use crate::frame::Frame;
use crate::plain::PlainFile;
use cat2_proto::meta::{ArrayMeta, Kind, Meta};

/// An open dataset, shared by any number of threads (reads are positioned, c-blosc2 is only
/// used to parse metadata at open).
pub struct Dataset {
    path: PathBuf,
    meta: Meta,
    layout: ChunkLayout,
    source: Source,
    /// The file as it was when its index (or length) was read (see [`Dataset::unchanged`]).
    stamp: Option<Stamp>,
}

/// What a file was when it was opened: a rewrite in place (`cp new.b2nd x.b2nd`, not a
/// rename) changes its length or modification time, however far it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    len: u64,
    mtime: (i64, i64),
}

impl Stamp {
    fn of(md: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            ino: md.ino(),
            len: md.len(),
            mtime: (md.mtime(), md.mtime_nsec()),
        }
    }
}

enum Source {
    Blosc2(Frame),
    File(Box<PlainFile>),
    External(Box<dyn ChunkSource>),
}

/// Where the chunks of a dataset that is not a Blosc2 file come from (e.g. an HDF5 dataset,
/// converted chunk by chunk). Called from any thread, on the blocking pool.
pub trait ChunkSource: Send + Sync {
    /// Writes the compressed bytes of chunk `nchunk` (a complete Blosc2 chunk of
    /// `meta.chunk_nbytes(nchunk)` bytes) into `buf`, replacing what it held.
    ///
    /// # Errors
    /// [`FormatError::Unreadable`] naming the chunk and why it cannot be made.
    fn chunk_into(&self, nchunk: u64, buf: &mut Vec<u8>) -> Result<(), FormatError>;

    /// Block `block` of chunk `nchunk` as a one-block chunk and its uncompressed size, made
    /// without the rest of the chunk; `None` (the default) when only whole chunks are made (the
    /// block is then cut out of one).
    ///
    /// # Errors
    /// As [`ChunkSource::chunk_into`].
    fn block(&self, nchunk: u64, block: u64) -> Result<Option<(Vec<u8>, usize)>, FormatError> {
        let _ = (nchunk, block);
        Ok(None)
    }
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset")
            .field("path", &self.path)
            .field("kind", &self.meta.kind)
            .finish()
    }
}

/// The kind a file name implies: `.b2nd` an array, `.b2frame` a super-chunk, anything else a
/// plain file.
pub fn kind_of(path: &Path) -> Kind {
    match path.extension().and_then(|e| e.to_str()) {
        Some("b2nd") => Kind::Array,
        Some("b2frame") => Kind::Frame,
        _ => Kind::File,
    }
}

impl Dataset {
    /// Opens the dataset at `path`, of the kind its name implies.
    ///
    /// # Errors
    /// [`FormatError::Io`] when the file cannot be read, [`FormatError::NotBlosc2`] for a
    /// `.b2nd`/`.b2frame` that is not a valid frame, [`FormatError::NotAnArray`] /
    /// [`FormatError::NotAFrame`] when the content does not match the name, and
    /// [`FormatError::BadMetadata`] for an unusable `b2nd` metalayer.
    pub fn open(path: &Path) -> Result<Self, FormatError> {
        Self::open_as(path, kind_of(path))
    }

    /// Opens the dataset at `path` as `kind`, whatever its name (e.g. a `.b2` super-chunk).
    ///
    /// # Errors
    /// As [`Dataset::open`].
    pub fn open_as(path: &Path, kind: Kind) -> Result<Self, FormatError> {
        if kind == Kind::File {
            // Before the length is read, as for frames below.
            let stamp = Stamp::of(&std::fs::metadata(path).map_err(FormatError::io(path))?);
            let plain = PlainFile::open(path)?;
            let meta = plain.meta().clone();
            let layout = meta.layout()?;
            return Ok(Self {
                path: path.into(),
                meta,
                layout,
                source: Source::File(Box::new(plain)),
                stamp: Some(stamp),
            });
        }
        // c-blosc2 reports a missing file and a corrupt one alike: tell them apart first.
        // Taken before the index is read: a rewrite from here on is seen by `unchanged`.
        let stamp = Stamp::of(&std::fs::metadata(path).map_err(FormatError::io(path))?);
        // c-blosc2 trusts the lengths a frame declares: check them first, and read chunks
        // ourselves through the checked index; c-blosc2 only parses the metadata.
        let frame = Frame::open(path, false)?;
        let meta = read_meta(&mut Schunk::open(path)?, path, kind)?;
        refuse_unit_shuffle(&meta, path)?;
        if u64::try_from(meta.nchunks).ok() != Some(frame.nchunks()) {
            return Err(bad(path, "the chunk index does not match the header"));
        }
        let layout = meta.layout().map_err(|e| bad(path, &e.to_string()))?;
        Ok(Self {
            path: path.into(),
            meta,
            layout,
            source: Source::Blosc2(frame),
            stamp: Some(stamp),
        })
    }

    /// Checks, after a read, that the file is still what its index describes. A write
    /// updates the modification time before its bytes are visible, so when the file was
    /// rewritten in place before or during a read, this sees it: the read may mix versions
    /// and is refused ([`FormatError::Changed`]) until the next rescan opens the new one.
    fn unchanged(&self) -> Result<(), FormatError> {
        let file = match &self.source {
            Source::Blosc2(f) => &f.file,
            Source::File(p) => p.file(),
            Source::External(_) => return Ok(()),
        };
        if let Some(stamp) = &self.stamp {
            let now = file.metadata().map_err(FormatError::io(&self.path))?;
            if Stamp::of(&now) != *stamp {
                return Err(FormatError::Changed {
                    path: self.path.clone(),
                });
            }
        }
        Ok(())
    }

    /// A dataset whose chunks come from `source`, described by `meta` (checked here), named
    /// `path` in errors and logs.
    ///
    /// # Errors
    /// [`FormatError::BadMetadata`] when `meta` is inconsistent.
    pub fn from_source(
        path: PathBuf,
        meta: Meta,
        source: Box<dyn ChunkSource>,
    ) -> Result<Self, FormatError> {
        meta.validate().map_err(|e| bad(&path, &e.to_string()))?;
        let layout = meta.layout().map_err(|e| bad(&path, &e.to_string()))?;
        Ok(Self {
            path,
            meta,
            layout,
            source: Source::External(source),
            stamp: None,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its metadata.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// Its chunk layout.
    pub fn layout(&self) -> &ChunkLayout {
        &self.layout
    }

    /// Number of chunks.
    pub fn nchunks(&self) -> u64 {
        u64::try_from(self.meta.nchunks).unwrap_or(0)
    }

    /// Caterva2's `info` JSON, with `urlpath` as given (callers decide what to reveal).
    pub fn info(&self, urlpath: &str) -> serde_json::Value {
        self.meta.info(urlpath)
    }

    fn check_index(&self, nchunk: u64) -> Result<i64, FormatError> {
        let nchunks = self.nchunks();
        if nchunk >= nchunks {
            return Err(FormatError::NoSuchChunk { nchunk, nchunks });
        }
        Ok(nchunk as i64)
    }

    /// The compressed bytes of chunk `nchunk` exactly as stored (plain files: compressed now,
    /// deterministically).
    ///
    /// # Errors
    /// [`FormatError::NoSuchChunk`] past the end; I/O and c-blosc2 errors.
    pub fn raw_chunk(&self, nchunk: u64) -> Result<Vec<u8>, FormatError> {
        self.check_index(nchunk)?;
        match &self.source {
            Source::Blosc2(f) => {
                let raw = f.raw_chunk(nchunk);
                self.unchanged()?;
                raw
            }
            Source::File(p) => {
                let raw = p.chunk(nchunk);
                self.unchanged()?;
                raw
            }
            Source::External(s) => {
                let mut buf = Vec::new();
                s.chunk_into(nchunk, &mut buf)?;
                Ok(buf)
            }
        }
    }

    /// [`Dataset::raw_chunk`] into `buf`, reusing its memory (a fresh multi-MB buffer per
    /// chunk costs page faults and zeroing).
    ///
    /// # Errors
    /// As [`Dataset::raw_chunk`].
    pub fn raw_chunk_into(&self, nchunk: u64, buf: &mut Vec<u8>) -> Result<(), FormatError> {
        self.check_index(nchunk)?;
        match &self.source {
            Source::Blosc2(f) => {
                // Checked first: a read through a stale index may fail for that reason.
                let stored = f.stored_chunk_into(nchunk, buf);
                self.unchanged()?;
                if stored? {
                    return Ok(());
                }
            }
            Source::External(s) => return s.chunk_into(nchunk, buf),
            Source::File(_) => {}
        }
        *buf = self.raw_chunk(nchunk)?;
        Ok(())
    }

    /// Block `block` of chunk `nchunk` as a Blosc2 chunk of its own (its compressed bytes
    /// verbatim) and its uncompressed size, for small reads of big chunks; `None` when the
    /// chunk's blocks do not decode alone (delta filter, dictionary, special chunks, plain
    /// files): read the whole chunk.
    ///
    /// # Errors
    /// [`FormatError::NoSuchChunk`]; [`FormatError::BadChunk`] for a bad block number or a
    /// corrupt chunk; I/O errors.
    pub fn one_block(
        &self,
        nchunk: u64,
        block: u64,
    ) -> Result<Option<(Vec<u8>, usize)>, FormatError> {
        self.check_index(nchunk)?;
        let expected = self.meta.chunk_nbytes(nchunk)?;
        match &self.source {
            Source::Blosc2(f) => {
                let one = f.one_block(nchunk, expected, self.layout.block_bytes(), block);
                self.unchanged()?;
                one
            }
            Source::File(_) => Ok(None),
            // Made whole anyway: cut the block out of it (small reads still move little).
            Source::External(s) => {
                if let Some(one) = s.block(nchunk, block)? {
                    return Ok(Some(one));
                }
                let mut raw = Vec::new();
                s.chunk_into(nchunk, &mut raw)?;
                let read = |o: u64, l: usize| {
                    raw.get(o as usize..(o as usize).saturating_add(l))
                        .map(<[u8]>::to_vec)
                        .ok_or_else(|| FormatError::BadChunk {
                            nchunk,
                            reason: "read past the chunk".into(),
                        })
                };
                crate::blocks::StoredChunk::new(nchunk, expected, self.layout.block_bytes(), read)
                    .one_block(block)
            }
        }
    }

    /// Whether chunks are made by another container's reader ([`Dataset::from_source`]), not
    /// read from a Blosc2 or plain file.
    pub(crate) fn is_external(&self) -> bool {
        matches!(self.source, Source::External(_))
    }

    /// Whether chunk `nchunk` is the special UNINIT value (not yet filled, spec §1.5).
    ///
    /// # Errors
    /// [`FormatError::NoSuchChunk`] past the end; c-blosc2 errors.
    pub fn chunk_is_uninit(&self, nchunk: u64) -> Result<bool, FormatError> {
        self.check_index(nchunk)?;
        match &self.source {
            Source::Blosc2(f) => Ok(f.special(nchunk) == Some(ffi::SPECIAL_UNINIT)),
            Source::File(_) | Source::External(_) => Ok(false),
        }
    }

    /// Reads the items of `sel` in C order (the selection's extent).
    ///
    /// # Errors
    /// [`FormatError::ChunkUnavailable`] when a needed chunk is UNINIT; decoding errors.
    pub fn read(&self, sel: &Selection) -> Result<Vec<u8>, FormatError> {
        let itemsize = self.layout.itemsize();
        let total = usize::try_from(sel.nitems())
            .ok()
            .and_then(|n| n.checked_mul(itemsize));
        let total = total.ok_or(FormatError::TooLarge {
            bytes: u64::MAX,
            what: "memory",
        })?;
        let mut out = vec![0u8; total];
        for n in self.layout.chunks_touching(sel) {
            let expected = self.meta.chunk_nbytes(n)?;
            if let Source::Blosc2(f) = &self.source {
                f.copy_chunk(&self.layout, n, expected, sel, &mut out)?;
                continue;
            }
            let raw = self.raw_chunk(n)?;
            let bb = self.layout.block_bytes();
            self.layout.copy_from_blocks(n, sel, &mut out, |b| {
                chunk::decompress_block(n, &raw, expected, b, bb)
            })?;
        }
        Ok(out)
    }
}

fn bad(path: &Path, reason: &str) -> FormatError {
    FormatError::BadMetadata {
        path: path.into(),
        reason: reason.to_owned(),
    }
}

pub(crate) fn read_meta(schunk: &mut Schunk, path: &Path, kind: Kind) -> Result<Meta, FormatError> {
    let h = schunk.header();
    let metalayers = schunk.metalayers();
    let vlmeta = schunk.vlmeta()?;
    let b2nd = metalayers.iter().find(|m| m.name == "b2nd");
    let mut array = match (kind, b2nd) {
        (Kind::Array, Some(m)) => Some(parse_b2nd_meta(&m.content).map_err(|r| bad(path, &r))?),
        (Kind::Array, None) => return Err(FormatError::NotAnArray { path: path.into() }),
        (_, Some(_)) => return Err(FormatError::NotAFrame { path: path.into() }),
        (_, None) => None,
    };
    if let Some(a) = array.as_mut().filter(|a| a.dtype.is_empty()) {
        a.dtype = format!("|V{}", h.cparams.typesize);
    }
    let meta = Meta {
        kind,
        array,
        chunksize: h.chunksize,
        nbytes: h.nbytes,
        cbytes: h.cbytes,
        nchunks: h.nchunks,
        contiguous: h.contiguous,
        cparams: h.cparams,
        metalayers,
        vlmeta,
    };
    meta.validate().map_err(|e| bad(path, &e.to_string()))?;
    Ok(meta)
}

/// Decodes the `b2nd` metalayer: `[version, ndim, shape, chunkshape, blockshape, dtype_format,
/// dtype]` (c-blosc2's `README_B2ND_METALAYER.rst`; version-0 layers may lack the dtype, which
/// then defaults to raw bytes of the typesize).
pub(crate) fn parse_b2nd_meta(content: &[u8]) -> Result<ArrayMeta, String> {
    let v =
        rmpv::decode::read_value(&mut &content[..]).map_err(|e| format!("b2nd metalayer: {e}"))?;
    let items = v.as_array().ok_or("b2nd metalayer is not a list")?;
    let ints = |i: usize| -> Result<Vec<u64>, String> {
        items
            .get(i)
            .and_then(|x| x.as_array())
            .ok_or(format!("b2nd metalayer item {i} is not a list"))?
            .iter()
            .map(|x| {
                x.as_u64()
                    .ok_or(format!("b2nd metalayer item {i} has a non-integer"))
            })
            .collect()
    };
    let ndim = items
        .get(1)
        .and_then(rmpv::Value::as_u64)
        .ok_or("b2nd metalayer without ndim")?;
    let (shape, chunks, blocks) = (ints(2)?, ints(3)?, ints(4)?);
    if [shape.len(), chunks.len(), blocks.len()]
        .iter()
        .any(|&l| l as u64 != ndim)
    {
        return Err("b2nd metalayer ranks disagree".into());
    }
    let dtype = match items.get(6) {
        Some(d) => d.as_str().ok_or("b2nd dtype is not a string")?.to_owned(),
        None => String::new(),
    };
    if let Some(fmt) = items.get(5).and_then(rmpv::Value::as_u64) {
        if fmt != 0 {
            return Err(format!("unsupported b2nd dtype format {fmt}"));
        }
    }
    Ok(ArrayMeta {
        shape,
        chunks,
        blocks,
        dtype,
    })
}

/// c-blosc2 3 lets the shuffle filter move units other than the item (its `filters_meta`;
/// python-blosc2 4 shuffles `<U` strings by their 4-byte characters). The c-blosc2 2.21
/// linked here ignores that meta and would unshuffle by the item: wrong bytes, silently. Such
/// datasets are refused until cat2 links c-blosc2 3.
fn refuse_unit_shuffle(meta: &Meta, path: &Path) -> Result<(), FormatError> {
    let cp = &meta.cparams;
    let unit = cp
        .filters
        .iter()
        .zip(&cp.filters_meta)
        .find(|(f, m)| **f == 1 && **m != 0 && i32::from(**m) != cp.typesize);
    match unit {
        Some((_, m)) => Err(bad(
            path,
            &format!(
                "its chunks are shuffled in {m}-byte units (c-blosc2 3, python-blosc2 4), \
                 which this build's c-blosc2 2.21 cannot decode"
            ),
        )),
        None => Ok(()),
    }
}
