//! HDF5's deflate and shuffle filters undone here instead of by libhdf5, for the pipelines
//! most HDF5 files use (`gzip`, with or without `shuffle`).
//!
//! Why: Debian's libhdf5 is not thread-safe, so every call into it runs under one lock, and
//! a chunk inflated by libhdf5 holds that lock for the whole inflate: two chunk makers on two
//! cores inflate one after the other. Here the stored bytes are read with `pread`, checked
//! against the digest the version's etag recorded, and decoded on the chunk maker's own
//! thread, concurrently, with libdeflate (faster than zlib at inflating) and c-blosc2's SIMD
//! unshuffle. Any other pipeline (fletcher32, szip, lzf, scale-offset, n-bit, …) is left to
//! libhdf5.

use hdf5::filters::Filter;

/// A filter pipeline decoded here: where deflate and shuffle sit in it (their index is their
/// bit in a chunk's filter mask).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pipeline {
    shuffle: Option<u32>,
    deflate: u32,
}

/// The pipeline of `filters` when it is decoded here.
pub(crate) fn pipeline(filters: &[Filter]) -> Option<Pipeline> {
    match filters {
        [Filter::Deflate(_)] => Some(Pipeline {
            shuffle: None,
            deflate: 0,
        }),
        [Filter::Shuffle, Filter::Deflate(_)] => Some(Pipeline {
            shuffle: Some(0),
            deflate: 1,
        }),
        _ => None,
    }
}

/// Most bytes a stored chunk of `len` decoded bytes may take: zlib's worst-case expansion
/// (HDF5 stores a chunk unfiltered when deflate would make it larger, but allow for it).
pub(crate) fn max_stored(len: u64) -> u64 {
    len + len / 1000 + 64
}

impl Pipeline {
    /// The `len` bytes of items (of `itemsize`) that `stored` holds, filter mask `mask` (bit
    /// `i` set: filter `i` was skipped for this chunk).
    pub(crate) fn decode(
        &self,
        stored: &[u8],
        mask: u32,
        itemsize: usize,
        len: usize,
    ) -> Result<Vec<u8>, String> {
        let skipped = |i: u32| mask & (1 << i) != 0;
        let data = if skipped(self.deflate) {
            stored.to_vec()
        } else {
            let mut out = vec![0u8; len];
            let n = libdeflater::Decompressor::new()
                .zlib_decompress(stored, &mut out)
                .map_err(|e| format!("deflate stream does not decode: {e}"))?;
            out.truncate(n);
            out
        };
        if data.len() != len {
            return Err(format!(
                "the chunk decodes to {} bytes, not {len}",
                data.len()
            ));
        }
        match self.shuffle {
            Some(s) if !skipped(s) => {
                cat2_format::chunk::unshuffle(&data, itemsize).map_err(|e| e.to_string())
            }
            _ => Ok(data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deflated(data: &[u8]) -> Vec<u8> {
        let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::default());
        let mut out = vec![0u8; c.zlib_compress_bound(data.len())];
        let n = c.zlib_compress(data, &mut out).unwrap();
        out.truncate(n);
        out
    }

    #[test]
    fn decodes_deflate_and_shuffle_as_their_mask_says() {
        let items: Vec<u8> = (0..4000u32).flat_map(|v| v.to_le_bytes()).collect();
        let n = items.len() / 4;
        let mut shuffled = vec![0u8; items.len()];
        for i in 0..n {
            for j in 0..4 {
                shuffled[j * n + i] = items[i * 4 + j];
            }
        }
        let both = pipeline(&[Filter::Shuffle, Filter::Deflate(4)]).unwrap();
        let len = items.len();
        assert_eq!(both.decode(&deflated(&shuffled), 0, 4, len).unwrap(), items);
        // Deflate skipped for this chunk (mask bit 1): only unshuffled.
        assert_eq!(both.decode(&shuffled, 0b10, 4, len).unwrap(), items);
        let gzip = pipeline(&[Filter::Deflate(1)]).unwrap();
        assert_eq!(gzip.decode(&deflated(&items), 0, 4, len).unwrap(), items);
        // Wrong sizes and bad streams are errors, not garbage.
        assert!(gzip.decode(&deflated(&items), 0, 4, len - 4).is_err());
        assert!(gzip.decode(&deflated(&items[4..]), 0, 4, len).is_err());
        assert!(gzip.decode(&items[..100], 0, 4, len).is_err());
        assert!(pipeline(&[Filter::Deflate(1), Filter::Fletcher32]).is_none());
        assert!(pipeline(&[]).is_none());
    }
}
