//! One HDF5 dataset as a Blosc2 n-d array: its metadata (0.2.0's `info` shape), its chunks
//! made on demand one at a time, and an etag that changes exactly when its content does.
//!
//! How chunks are made (spec §7.1, with 0.2.0's weak points fixed):
//! - Blosc2-filtered datasets (filter 32026 alone): each HDF5 chunk is a Blosc2 frame holding
//!   one chunk, served verbatim (read without libhdf5, no decompression).
//! - Any other dataset: libhdf5 reads the chunk's box (its filters decoded; unallocated chunks
//!   read as the fill value), which is laid out in Blosc2 blocks, padded with zeros, and
//!   compressed with the cparams the metadata announces. Contiguous and compact datasets get
//!   a chunk shape chosen for them. Chunk `n` is always the `n`-th chunk in C order of the
//!   chunk grid (0.2.0 used HDF5's storage order, wrong for sparse datasets).

use std::path::PathBuf;
use std::sync::Arc;

use cat2_array::ChunkLayout;
use cat2_format::embedded::{self, EmbeddedFrame};
use cat2_format::{CParams, FormatError, Kind, Layer, Meta};
use cat2_proto::meta::ArrayMeta;
use hdf5::Extents;
use hdf5::filters::Filter;

use crate::H5File;

mod decoded;
mod make;
mod unfilter;
use crate::ffi::{self, BLOSC2_FILTER};
use crate::types::numpy_dtype;

/// Largest HDF5 chunk served (each request makes one whole in memory).
const MAX_CHUNK_BYTES: u64 = 256 << 20;
/// Most bytes a one-chunk Blosc2 frame may add to its chunk (header, index, trailer).
pub(crate) const MAX_FRAME_OVERHEAD: u64 = 1 << 20;
/// Stored chunks looked at to find the Blosc2 parameters of a dataset.
const PROBE_CHUNKS: u64 = 4096;

/// How the chunks of a dataset are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// libhdf5 reads each chunk's box; we compress it.
    Convert,
    /// Each HDF5 chunk is a one-chunk Blosc2 frame whose chunk fits as it is.
    Verbatim,
    /// Blosc2 frames whose chunk does not fit the array's block layout as it is (a 1-d
    /// super-chunk with blocks that do not divide the chunk): decoded and compressed again.
    Recompress,
}

/// A dataset of an open HDF5 file, ready to make its chunks (shared with the chunk makers).
#[derive(Debug, Clone)]
pub(crate) struct H5Dataset(pub(crate) Arc<Inner>);

impl std::ops::Deref for H5Dataset {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// What an [`H5Dataset`] knows.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) file: Arc<H5File>,
    pub(crate) name: String,
    pub(crate) label: PathBuf,
    pub(crate) plan: Plan,
    pub(crate) layout: ChunkLayout,
    pub(crate) cparams: CParams,
    /// One item of fill value, in the file type (zeros when undefined).
    pub(crate) fill: Vec<u8>,
    /// Per chunk of a chunked dataset, where its stored bytes were and their digest when the
    /// version was opened (set once, by the etag): every chunk made is checked against it.
    pub(crate) stored: std::sync::OnceLock<Vec<Stored>>,
    /// This version's id for decoded chunks kept a moment ([`decoded`]), and its gate.
    pub(crate) id: u64,
    pub(crate) gate: std::sync::Mutex<()>,
    /// Set when this dataset's chunks are decoded here, not by libhdf5 ([`unfilter`]).
    pub(crate) unfilter: Option<unfilter::Pipeline>,
}

/// A stored HDF5 chunk as it was when its version was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stored {
    /// Where it was (`None`: never written).
    pub(crate) loc: Option<ffi::ChunkLoc>,
    /// xxh3-64 of its stored bytes.
    pub(crate) digest: u64,
}

/// What describing a dataset gives: the chunk maker, its metadata and its etag.
pub(crate) struct Described {
    pub(crate) source: H5Dataset,
    pub(crate) meta: Meta,
    pub(crate) etag: String,
}

fn skip(reason: impl Into<String>) -> FormatError {
    FormatError::BadMetadata {
        path: PathBuf::new(),
        reason: reason.into(),
    }
}

/// Describes dataset `name` (a hard path) of `file`, listed as `listed`. A
/// [`FormatError::BadMetadata`] says why it cannot be represented.
pub(crate) fn describe(
    file: &Arc<H5File>,
    name: &str,
    listed: &str,
    listing: crate::Listing,
) -> Result<Described, FormatError> {
    file.with(|h5| {
        let ds = h5
            .dataset(name)
            .map_err(|e| skip(format!("cannot open: {e}")))?;
        let shape: Vec<u64> = match ds.space().and_then(|s| s.extents()) {
            Ok(Extents::Null) => return Err(skip("an empty (null) dataspace")),
            Ok(Extents::Scalar) => Vec::new(),
            Ok(Extents::Simple(s)) => s.dims().iter().map(|&d| d as u64).collect(),
            Err(e) => return Err(skip(format!("cannot read its dataspace: {e}"))),
        };
        if shape.len() > cat2_proto::meta::MAX_DIM {
            return Err(skip(format!(
                "{} dimensions (Blosc2 has at most 8)",
                shape.len()
            )));
        }
        let (ty, file_layout) = ffi::dataset_type(ds.id()).map_err(|e| skip(e.0))?;
        let dtype = numpy_dtype(&ty).map_err(skip)?;
        if listing == crate::Listing::Caterva2 && dtype.starts_with('[') {
            return Err(skip(
                "a compound type (not listed in Caterva2 0.2.0's listing; see --hdf5-listing)",
            ));
        }
        let itemsize = ty.size();
        if matches!(ds.layout(), hdf5::dataset::Layout::Virtual) {
            return Err(skip("a virtual dataset (its data lives in other datasets)"));
        }
        if ffi::has_external_storage(ds.id()).map_err(|e| skip(e.0))? {
            return Err(skip(
                "its data lives in external files (not followed: they may be anywhere)",
            ));
        }
        let filters = ds.filters();
        let blosc2 = matches!(filters.as_slice(), [Filter::User(BLOSC2_FILTER, _)]);
        if blosc2 && !file_layout {
            // Raw chunks hold the file's padded layout, and libhdf5 here cannot decode them.
            return Err(skip(
                "Blosc2-filtered compound items with padding (not NumPy's packed layout)",
            ));
        }
        if !blosc2 {
            check_filters(&filters)?;
        }
        let h5_chunks: Option<Vec<u64>> = ds.chunk().map(|c| c.iter().map(|&v| v as u64).collect());
        let chunks = match &h5_chunks {
            Some(c) => c.clone(),
            None => cat2_format::encode::auto_chunks(&shape, itemsize)
                .0
                .into_iter()
                .map(|c| c.max(1))
                .collect(),
        };
        let chunk_bytes = chunks
            .iter()
            .product::<u64>()
            .saturating_mul(itemsize as u64);
        if chunk_bytes > MAX_CHUNK_BYTES {
            return Err(skip(format!(
                "chunks of {chunk_bytes} bytes (at most 1 GiB)"
            )));
        }
        let fill = ffi::fill_value(ds.id(), itemsize)
            .map_err(|e| skip(e.0))?
            .unwrap_or_else(|| vec![0; itemsize]);
        let (plan, blocks, cparams) = if blosc2 {
            blosc2_plan(file, &ds, &shape, &chunks, itemsize, &filters)?
        } else {
            let blocks = cat2_format::encode::auto_blocks(&chunks, itemsize);
            (Plan::Convert, blocks, embedded::default_cparams(itemsize))
        };
        let layout = ChunkLayout::new(shape.clone(), chunks.clone(), blocks.clone(), itemsize)
            .map_err(|e| skip(e.to_string()))?;
        let cparams = CParams {
            typesize: itemsize as i32,
            blocksize: layout.block_bytes() as i32,
            ..cparams
        };
        let chunksize = layout.chunk_nitems() * itemsize as u64;
        let nchunks = layout.nchunks();
        let b2nd = embedded::b2nd_metalayer(&shape, &chunks, &blocks, &dtype)?;
        let meta = Meta {
            kind: Kind::Array,
            array: Some(ArrayMeta {
                shape,
                chunks,
                blocks,
                dtype,
            }),
            chunksize: i32::try_from(chunksize).map_err(|_| skip("chunks too large"))?,
            nbytes: (chunksize * nchunks) as i64,
            cbytes: ds.storage_size() as i64,
            nchunks: nchunks as i64,
            contiguous: false,
            cparams: cparams.clone(),
            metalayers: vec![b2nd],
            vlmeta: attributes(&ds, listed),
        };
        meta.validate().map_err(|e| skip(e.to_string()))?;
        let source = H5Dataset(Arc::new(Inner {
            file: file.clone(),
            name: name.to_owned(),
            label: file.path().join(listed),
            plan,
            layout,
            cparams,
            fill,
            stored: std::sync::OnceLock::new(),
            id: decoded::new_id(),
            gate: std::sync::Mutex::new(()),
            // Raw chunks hold the file type, which is what is served unless padding is packed.
            unfilter: if plan == Plan::Convert && file_layout && h5_chunks.is_some() {
                unfilter::pipeline(&filters)
            } else {
                None
            },
        }));
        let etag = crate::etag::of(&source, &ds, &meta)?;
        Ok(Described { source, meta, etag })
    })
}

/// Filters libhdf5 must decode for us: each must be available here.
fn check_filters(filters: &[Filter]) -> Result<(), FormatError> {
    for f in filters {
        let id = match f {
            Filter::SZip(..) => 4,
            Filter::User(id, _) => *id,
            _ => continue,
        };
        if !ffi::filter_available(id) {
            let what = if id == BLOSC2_FILTER {
                "the Blosc2 filter combined with other filters".to_owned()
            } else {
                format!("HDF5 filter {id}, which this libhdf5 does not have")
            };
            return Err(skip(what));
        }
    }
    Ok(())
}

/// The plan, blocks and cparams of a Blosc2-filtered dataset, from its first stored chunk
/// (HDF5's filter parameters are less reliable than the frames themselves), or from the
/// filter parameters when no chunk is stored.
fn blosc2_plan(
    file: &Arc<H5File>,
    ds: &hdf5::Dataset,
    shape: &[u64],
    chunks: &[u64],
    itemsize: usize,
    filters: &[Filter],
) -> Result<(Plan, Vec<u64>, CParams), FormatError> {
    let probe = ChunkLayout::new(shape.to_vec(), chunks.to_vec(), chunks.to_vec(), itemsize)
        .map_err(|e| skip(e.to_string()))?;
    let chunk_bytes = probe.chunk_nitems() * itemsize as u64;
    // The first stored chunk among the first few (sparse datasets may have none there).
    for n in 0..probe.nchunks().min(PROBE_CHUNKS) {
        let start = probe.chunk_start(n);
        let Some(loc) = ffi::chunk_location(ds.id(), &start).map_err(|e| skip(e.0))? else {
            continue;
        };
        if loc.filter_mask & 1 != 0 || loc.size > chunk_bytes + MAX_FRAME_OVERHEAD {
            continue;
        }
        let at = file.chunk_offset(loc.addr);
        let frame = EmbeddedFrame::open(file.path(), file.raw_clone()?, at, loc.size)
            .map_err(|_| skip(format!("chunk {n} is not a Blosc2 frame")))?;
        let mut first = Vec::new();
        if frame.nchunks() != 1 || !frame.chunk_into(0, &mut first)? {
            continue;
        }
        let head = cat2_format::chunk::ChunkHeader::parse(n, &first)?;
        let inner = frame.meta()?;
        let cp = CParams {
            blocksize: head.blocksize,
            ..inner.cparams
        };
        return match &inner.array {
            Some(a) if a.chunks == chunks && a.shape == chunks => {
                Ok((Plan::Verbatim, a.blocks.clone(), cp))
            }
            Some(_) => Err(skip(
                "Blosc2 chunks holding arrays of another shape than the HDF5 chunks",
            )),
            None => {
                // 1-d super-chunk frames (hdf5plugin's for 1-d data): their chunk fits as it is
                // when its blocks divide it (blocksize from the chunk: the frame may say 0).
                let bs = u64::try_from(head.blocksize).unwrap_or(0);
                let fits = chunks.len() == 1
                    && bs > 0
                    && bs % itemsize as u64 == 0
                    && chunk_bytes % bs == 0
                    && u64::try_from(head.nbytes).ok() == Some(chunk_bytes);
                if fits {
                    Ok((Plan::Verbatim, vec![bs / itemsize as u64], cp))
                } else {
                    let blocks = cat2_format::encode::auto_blocks(chunks, itemsize);
                    Ok((Plan::Recompress, blocks, cp))
                }
            }
        };
    }
    // Nothing stored yet: hdf5plugin's parameters (clevel, shuffle, codec at 4, 5, 6).
    let cd = match filters {
        [Filter::User(_, cd)] => cd.clone(),
        _ => Vec::new(),
    };
    let mut cp = embedded::default_cparams(itemsize);
    if let (Some(&clevel), Some(&shuffle), Some(&codec)) = (cd.get(4), cd.get(5), cd.get(6)) {
        cp.clevel = clevel.min(9) as u8;
        cp.filters[5] = shuffle.min(2) as u8;
        if cat2_proto::meta::SAFE_CODECS.contains(&(codec as u8)) {
            cp.codec = codec as u8;
        }
    }
    let blocks = cat2_format::encode::auto_blocks(chunks, itemsize);
    Ok((Plan::Recompress, blocks, cp))
}

/// The dataset's attributes as vlmeta, in name order; those that cannot be packed are logged
/// and skipped.
fn attributes(ds: &hdf5::Dataset, name: &str) -> Vec<Layer> {
    let mut names = ds.attr_names().unwrap_or_default();
    names.sort();
    let mut out = Vec::new();
    for a in names {
        match ffi::read_attr(ds.id(), &a)
            .map_err(|e| e.0)
            .and_then(|v| crate::attrs::pack(&v))
        {
            Ok(content) if a.len() <= 31 && !a.contains('\0') => {
                out.push(Layer { name: a, content })
            }
            Ok(_) => {
                tracing::warn!(dataset = name, attribute = %a, "attribute name too long for Blosc2 vlmeta, skipped")
            }
            Err(e) => {
                tracing::warn!(dataset = name, attribute = %a, reason = %e, "attribute skipped")
            }
        }
    }
    out
}
