//! Dataset etags that change exactly when the content served can: a 128-bit xxh3 of the
//! metadata (shape, chunks, dtype, cparams, attributes), the fill value and every stored byte
//! of the dataset, read raw (no filters run). HDF5 rewrites chunks and contiguous data in place,
//! so storage addresses and sizes alone would miss changes; the file's modification time would
//! announce every dataset when one changed (0.2.0's weak point). Computed when a file version
//! is opened, off the request path.

use cat2_format::{FormatError, Meta};
use hdf5::dataset::Layout;
use xxhash_rust::xxh3::Xxh3;

use crate::dataset::Inner as H5Dataset;
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
            for n in 0..layout.nchunks() {
                let start = layout.chunk_start(n);
                let loc = ffi::chunk_location(ds.id(), &start).map_err(|e| bad(src, e.0))?;
                match loc {
                    None => h.update(b"unallocated"),
                    Some(loc) => {
                        h.update(&loc.filter_mask.to_le_bytes());
                        h.update(&loc.size.to_le_bytes());
                        hash_range(
                            src,
                            &mut h,
                            &mut buf,
                            src.file().chunk_offset(loc.addr),
                            loc.size,
                        )?;
                    }
                }
            }
        }
        Layout::Contiguous => match ffi::contiguous_offset(ds.id()) {
            Some(addr) => hash_range(src, &mut h, &mut buf, addr, ds.storage_size())?,
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

fn hash_range(
    src: &H5Dataset,
    h: &mut Xxh3,
    buf: &mut Vec<u8>,
    addr: u64,
    len: u64,
) -> Result<(), FormatError> {
    let mut at = 0;
    while at < len {
        let n = PIECE.min(len - at) as usize;
        buf.resize(n, 0);
        src.file().pread(buf, addr + at)?;
        h.update(buf);
        at += n as u64;
    }
    Ok(())
}

fn bad(src: &H5Dataset, reason: String) -> FormatError {
    FormatError::BadMetadata {
        path: src.file().path().join(src.name()),
        reason,
    }
}
