//! Writing Blosc2 chunks into HDF5 as hdf5plugin does (filter 32026): each HDF5 chunk is a
//! contiguous frame holding the one Blosc2 chunk, written directly (libhdf5 never runs the
//! filter), so data compressed once is never compressed again. 1-d datasets get plain
//! super-chunk frames and n-d ones `b2nd` frames of the chunk's shape, which is what
//! hdf5plugin's filter decodes.

use std::ffi::c_uint;

use cat2_format::embedded;
use cat2_format::{CParams, FormatError};

use crate::ffi::{self, BLOSC2_FILTER};

/// The geometry of a Blosc2-filtered dataset.
#[derive(Debug, Clone)]
pub(crate) struct Blosc2Layout {
    pub(crate) shape: Vec<u64>,
    pub(crate) chunks: Vec<u64>,
    pub(crate) blocks: Vec<u64>,
    /// NumPy type string (for the frames' `b2nd` metalayer).
    pub(crate) dtype: String,
    pub(crate) cparams: CParams,
}

fn h5err(what: &str) -> impl Fn(hdf5::Error) -> FormatError + '_ {
    move |e| FormatError::BadMetadata {
        path: what.into(),
        reason: e.to_string(),
    }
}

/// hdf5plugin's filter parameters: revision, blocksize, typesize, chunk bytes, clevel,
/// shuffle, codec, then rank and chunk shape for n-d datasets.
fn cd_values(l: &Blosc2Layout) -> Vec<c_uint> {
    let itemsize = l.cparams.typesize.max(1) as u64;
    let chunk_bytes = l.chunks.iter().product::<u64>() * itemsize;
    let shuffle = l
        .cparams
        .filters
        .iter()
        .copied()
        .filter(|f| matches!(f, 1 | 2))
        .max()
        .unwrap_or(0);
    let mut cd = vec![
        1,
        l.cparams.blocksize.max(0) as c_uint,
        itemsize as c_uint,
        chunk_bytes.min(u64::from(c_uint::MAX)) as c_uint,
        c_uint::from(l.cparams.clevel),
        c_uint::from(shuffle),
        c_uint::from(l.cparams.codec),
    ];
    if l.shape.len() > 1 {
        cd.push(l.shape.len() as c_uint);
        cd.extend(l.chunks.iter().map(|&c| c as c_uint));
    }
    cd
}

/// Creates dataset `name` in `group` with file type `dtype`, Blosc2-filtered, chunked as `l`.
pub(crate) fn create(
    group: &hdf5::Group,
    name: &str,
    dtype: &hdf5::Datatype,
    l: &Blosc2Layout,
) -> Result<hdf5::Dataset, FormatError> {
    ffi::declare_blosc2_filter().map_err(|e| FormatError::BadMetadata {
        path: name.into(),
        reason: e.0,
    })?;
    let shape: Vec<usize> = l.shape.iter().map(|&v| v as usize).collect();
    let chunks: Vec<usize> = l.chunks.iter().map(|&v| v as usize).collect();
    group
        .new_dataset_builder()
        .empty_as(dtype)
        .shape(shape)
        .chunk(chunks)
        .add_filter(BLOSC2_FILTER, &cd_values(l))
        .create(name)
        .map_err(h5err(name))
}

/// Writes `raw` (one Blosc2 chunk of `l`'s layout, blocks in order, checked by the caller) as
/// the HDF5 chunk starting at element `start`.
pub(crate) fn write_chunk(
    ds: &hdf5::Dataset,
    l: &Blosc2Layout,
    start: &[u64],
    raw: &[u8],
) -> Result<(), FormatError> {
    let layers = if l.shape.len() > 1 {
        vec![embedded::b2nd_metalayer(
            &l.chunks, &l.chunks, &l.blocks, &l.dtype,
        )?]
    } else {
        Vec::new()
    };
    let frame = embedded::one_chunk_frame(&l.cparams, &layers, raw)?;
    ffi::write_chunk(ds.id(), start, &frame).map_err(|e| FormatError::BadMetadata {
        path: ds.name().into(),
        reason: e.0,
    })
}
