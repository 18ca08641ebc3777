//! Dataset etags that change exactly when the content served can: a 128-bit xxh3 of the
//! metadata (shape, chunks, dtype, cparams, attributes), the fill value and every stored byte
//! of the dataset, read raw (no filters run). HDF5 rewrites chunks and contiguous data in place,
//! so storage addresses and sizes alone would miss changes; the file's modification time would
//! announce every dataset when one changed (0.2.0's weak point). Computed when a file version
//! is opened, off the request path.
//!
//! The same pass keeps each stored chunk's place and xxh3-64 digest ([`Stored`]): a chunk
//! made later is checked against them (see `dataset/make.rs`), so a file rewritten in place
//! while it is read gives a stale error, never bytes of two versions under one etag, even
//! when the rewrite falls within one tick of the file's modification time.

use cat2_format::{FormatError, Meta};
use hdf5::dataset::Layout;
use xxhash_rust::xxh3::Xxh3;

use crate::dataset::{Inner as H5Dataset, Stored};
use crate::ffi;

/// Bytes hashed per read.
const PIECE: u64 = 4 << 20;

/// The etag of `src` (open as `ds`), described by `meta`.
pub(crate) fn of(src: &H5Dataset, ds: &hdf5::Dataset, meta: &Meta) -> Result<String, FormatError> {
    let mut h = Xxh3::new();
    h.update(&cat2_proto::encode(meta));
    h.update(src.fill());
    let mut buf = Vec::new();
    match ds.layout() {
        Layout::Chunked => {
            let layout = src.layout();
            let mut stored = Vec::with_capacity(layout.nchunks() as usize);
            for n in 0..layout.nchunks() {
                let start = layout.chunk_start(n);
                let loc = ffi::chunk_location(ds.id(), &start).map_err(|e| bad(src, e.0))?;
                let mut digest = 0;
                match loc {
                    None => h.update(b"unallocated"),
                    Some(loc) => {
                        h.update(&loc.filter_mask.to_le_bytes());
                        h.update(&loc.size.to_le_bytes());
                        let at = src.file().chunk_offset(loc.addr);
                        digest = hash_range(src, &mut h, &mut buf, at, loc.size)?;
                    }
                }
                stored.push(Stored { loc, digest });
            }
            // Set once, by the only pass over this version.
            let _ = src.stored.set(stored);
        }
        Layout::Contiguous => match ffi::contiguous_offset(ds.id()) {
            Some(addr) => {
                hash_range(src, &mut h, &mut buf, addr, ds.storage_size())?;
            }
            None => h.update(b"unallocated"),
        },
        _ => {
            // Compact (at most 64 KiB, in the object header): read it whole.
            let shape = src.layout().shape().to_vec();
            let n: u64 = shape.iter().product();
            let mut data = vec![0u8; n as usize * src.layout().itemsize()];
            let start = vec![0; shape.len()];
            ffi::read_region(ds.id(), &start, &shape, &mut data).map_err(|e| bad(src, e.0))?;
            h.update(&data);
        }
    }
    Ok(format!("h5-{:032x}", h.digest128()))
}

/// Adds `len` bytes at `addr` to `h`; returns their own xxh3-64.
fn hash_range(
    src: &H5Dataset,
    h: &mut Xxh3,
    buf: &mut Vec<u8>,
    addr: u64,
    len: u64,
) -> Result<u64, FormatError> {
    let mut own = Xxh3::new();
    let mut at = 0;
    while at < len {
        let n = PIECE.min(len - at) as usize;
        buf.resize(n, 0);
        src.file().pread(buf, addr + at)?;
        h.update(buf);
        own.update(buf);
        at += n as u64;
    }
    Ok(own.digest())
}

/// xxh3-64 of `len` bytes at `addr` of the file (as [`hash_range`] computed them).
pub(crate) fn digest_range(src: &H5Dataset, addr: u64, len: u64) -> Result<u64, FormatError> {
    let mut own = Xxh3::new();
    let mut buf = Vec::new();
    let mut at = 0;
    while at < len {
        let n = PIECE.min(len - at) as usize;
        buf.resize(n, 0);
        src.file().pread(&mut buf, addr + at)?;
        own.update(&buf);
        at += n as u64;
    }
    Ok(own.digest())
}

fn bad(src: &H5Dataset, reason: String) -> FormatError {
    FormatError::BadMetadata {
        path: src.file().path().join(src.name()),
        reason,
    }
}
