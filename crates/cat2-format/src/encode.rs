//! Encodings of a selection's result (spec §4.3): a b2nd cframe (n-d results, zero-size ones
//! included), a super-chunk cframe (bytes results), or a single Blosc2 chunk.

use std::path::Path;

use crate::FormatError;
use crate::chunk;
use crate::ffi::{self, NdSpec};
use cat2_proto::meta::Layer;

/// Largest chunk cat2 makes for results: 4 MiB.
const RESULT_CHUNK_BYTES: u64 = 4 << 20;
/// Largest block cat2 makes for results: 256 KiB.
const RESULT_BLOCK_BYTES: u64 = 256 << 10;

/// Compression of results: LZ4, shuffle, level 5. Results go to clients near the
/// subscriber, so compressing fast matters more than compressing small (ZSTD took a tenth of
/// the subscriber's CPU serving small slices, measured with `perf`).
fn result_cparams(typesize: i32) -> cat2_proto::meta::CParams {
    cat2_proto::meta::CParams {
        codec: blosc2_rs_sys::BLOSC_LZ4 as u8,
        clevel: 5,
        ..ffi::default_cparams(typesize)
    }
}

/// Halves the largest dimension of `shape` until its items take at most `limit` bytes.
fn shrink(mut shape: Vec<u64>, itemsize: u64, limit: u64) -> Vec<u64> {
    while shape.iter().product::<u64>().saturating_mul(itemsize) > limit {
        let Some((i, _)) = shape.iter().enumerate().max_by_key(|(_, v)| **v) else {
            break;
        };
        if shape[i] <= 1 {
            break;
        }
        shape[i] = shape[i].div_ceil(2);
    }
    shape
}

/// Chunk and block shapes for a result of `shape` (whole result in one chunk when it fits).
pub fn auto_chunks(shape: &[u64], itemsize: usize) -> (Vec<u64>, Vec<u64>) {
    let chunks = shrink(shape.to_vec(), itemsize as u64, RESULT_CHUNK_BYTES);
    let blocks = shrink(chunks.clone(), itemsize as u64, RESULT_BLOCK_BYTES);
    (chunks, blocks)
}

/// Block shape for chunks of `chunks` (at most 256 KiB per block, as for results).
pub fn auto_blocks(chunks: &[u64], itemsize: usize) -> Vec<u64> {
    shrink(chunks.to_vec(), itemsize as u64, RESULT_BLOCK_BYTES)
}

/// Encodes `data` (C order, `dtype` as b2nd stores it) as a b2nd contiguous frame that
/// python-blosc2's `ndarray_from_cframe` reads.
///
/// # Errors
/// [`FormatError::BadMetadata`] when `data` does not match `shape` and `dtype`; c-blosc2 errors.
pub fn b2nd_cframe(dtype: &str, shape: &[u64], data: &[u8]) -> Result<Vec<u8>, FormatError> {
    let itemsize = cat2_array::DType::parse(dtype)?.itemsize();
    check_len(shape, itemsize, data)?;
    let (chunks, blocks) = auto_chunks(shape, itemsize);
    let nd = NdSpec {
        shape,
        chunks: &chunks,
        blocks: &blocks,
        dtype,
    };
    let cp = result_cparams(itemsize as i32);
    ffi::write_b2nd(None, &nd, &cp, data, &[])?
        .ok_or_else(|| FormatError::blosc2("b2nd_to_cframe", -1))
}

/// Encodes bytes (whole items of `typesize`) as a super-chunk contiguous frame that
/// python-blosc2's `schunk_from_cframe` reads.
///
/// # Errors
/// c-blosc2 errors.
pub fn schunk_cframe(typesize: usize, data: &[u8]) -> Result<Vec<u8>, FormatError> {
    let ts = typesize.max(1);
    let chunksize = (RESULT_CHUNK_BYTES as usize / ts).max(1) * ts;
    let cp = result_cparams(ts as i32);
    ffi::write_schunk(None, &cp, chunksize, data, &[])?
        .ok_or_else(|| FormatError::blosc2("schunk_to_buffer", -1))
}

/// Encodes bytes as one Blosc2 chunk (`blosc2.compress2`), limited to 2 GiB.
///
/// # Errors
/// [`FormatError::TooLarge`] past the limit.
pub fn single_chunk(typesize: usize, data: &[u8]) -> Result<Vec<u8>, FormatError> {
    chunk::compress(data, typesize, 1)
}

/// Writes a `.b2nd` file with the given geometry, ZSTD/shuffle level-1 compression (python-
/// blosc2's defaults) and user attributes (`vlmeta`, values msgpack-encoded).
///
/// # Errors
/// [`FormatError::BadMetadata`] when the data does not fit the shape; c-blosc2 errors.
pub fn write_b2nd_file(
    path: &Path,
    dtype: &str,
    shape: &[u64],
    chunks: &[u64],
    blocks: &[u64],
    data: &[u8],
    vlmeta: &[(String, serde_json::Value)],
) -> Result<(), FormatError> {
    let itemsize = cat2_array::DType::parse(dtype)?.itemsize();
    check_len(shape, itemsize, data)?;
    let layers: Vec<Layer> = vlmeta
        .iter()
        .map(|(k, v)| Layer {
            name: k.clone(),
            content: cat2_proto::msgpack::from_json(v),
        })
        .collect();
    let nd = NdSpec {
        shape,
        chunks,
        blocks,
        dtype,
    };
    ffi::write_b2nd(
        Some(path),
        &nd,
        &ffi::default_cparams(itemsize as i32),
        data,
        &layers,
    )
    .map(drop)
}

/// Writes a `.b2frame` super-chunk file of `chunksize`-byte chunks.
///
/// # Errors
/// c-blosc2 errors.
pub fn write_frame_file(
    path: &Path,
    typesize: usize,
    chunksize: usize,
    data: &[u8],
) -> Result<(), FormatError> {
    ffi::write_schunk(
        Some(path),
        &ffi::default_cparams(typesize as i32),
        chunksize,
        data,
        &[],
    )
    .map(drop)
}

fn check_len(shape: &[u64], itemsize: usize, data: &[u8]) -> Result<(), FormatError> {
    let n = shape
        .iter()
        .try_fold(itemsize as u64, |a, &d| a.checked_mul(d));
    if n != Some(data.len() as u64) {
        return Err(FormatError::BadMetadata {
            path: "(result)".into(),
            reason: format!(
                "{} bytes do not fill shape {shape:?} of {itemsize}-byte items",
                data.len()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod unicode_tests {
    #[test]
    fn unicode_frames_round_trip() {
        let data: Vec<u8> = "hé\0\0x\0\0\0it's"
            .chars()
            .flat_map(|c| (c as u32).to_le_bytes())
            .collect();
        let frame = super::b2nd_cframe("<U4", &[3], &data).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("u.b2nd");
        std::fs::write(&p, &frame).unwrap();
        let ds = crate::Dataset::open(&p).unwrap();
        assert_eq!(ds.meta().array.as_ref().unwrap().dtype, "<U4");
        let back = ds.read(&cat2_array::Selection::all(&[3])).unwrap();
        assert_eq!(back, data);
    }
}
