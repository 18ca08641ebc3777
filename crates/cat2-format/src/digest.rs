//! Digests of chunks and blocks as a publisher serves them ([`cat2_proto::msg::Digests`]):
//! made here from the source when a publisher opens a version, and checked here by
//! subscribers before a reply is stored or served. One function computes both sides, so
//! they cannot drift apart.
//!
//! BLAKE3 (cut to 128 bits), not the xxh3 used for local change detection: a member of the
//! queue group that wants a forged chunk accepted must find other bytes with the same digest
//! (a second preimage), which BLAKE3 makes infeasible and a non-cryptographic hash does not
//! promise. It runs at GB/s per core, a small share of a chunk's trip (BENCHMARKS.md).
//!
//! Datasets made on the fly from other containers (HDF5 roots) get no digests yet: their
//! chunks do not exist until asked for, and digesting them at open would mean converting the
//! whole file.

use cat2_proto::msg::{DIGEST_ALGO, DIGEST_LEN, Digests, NO_DIGEST};

use crate::{Dataset, FormatError, Meta};

/// Most digest bytes one dataset's [`Digests`] may hold: they travel inside its `info`
/// reply, under NATS's 1 MiB default `max_payload` with room for the metadata. Past it,
/// block digests are left out (small reads fetch whole chunks); past it with chunk digests
/// alone, the dataset has none (16 384 chunks fit).
pub const MAX_DIGEST_BYTES: usize = 256 << 10;

/// The digest of bytes received in `parts` (hashed as they are, not joined).
pub fn digest<P: AsRef<[u8]>>(parts: &[P]) -> [u8; DIGEST_LEN] {
    let mut h = blake3::Hasher::new();
    for p in parts {
        h.update(p.as_ref());
    }
    let mut out = [0u8; DIGEST_LEN];
    out.copy_from_slice(&h.finalize().as_bytes()[..DIGEST_LEN]);
    out
}

/// Whether `parts` are the bytes `expected` digests ([`NO_DIGEST`] matches nothing).
pub fn matches<P: AsRef<[u8]>>(expected: &[u8], parts: &[P]) -> bool {
    expected != NO_DIGEST && expected == digest(parts)
}

/// Blocks per chunk in a dataset's block digests: every chunk counts its blocks as its
/// largest (a short last chunk's missing blocks get [`NO_DIGEST`]).
pub fn blocks_per_chunk(meta: &Meta) -> u64 {
    let chunk = u64::try_from(meta.chunksize).unwrap_or(0);
    let block = meta.layout().map_or(0, |l| l.block_bytes() as u64).max(1);
    chunk.div_ceil(block).max(1)
}

impl Dataset {
    /// This version's digests: every chunk as [`Dataset::raw_chunk_into`] serves it and,
    /// when a chunk has several blocks and they fit [`MAX_DIGEST_BYTES`], every block as
    /// [`Dataset::one_block`] serves it. `None` for datasets made on the fly, or with more
    /// chunks than fit. Reads the whole dataset (blocking).
    ///
    /// # Errors
    /// I/O errors, and [`FormatError::Changed`] when the file changed during the pass (a
    /// rescan then opens the new version).
    pub fn digests(&self) -> Result<Option<Digests>, FormatError> {
        let nchunks = self.nchunks();
        let chunk_bytes = usize::try_from(nchunks)
            .ok()
            .and_then(|n| n.checked_mul(DIGEST_LEN))
            .filter(|b| *b <= MAX_DIGEST_BYTES);
        let Some(chunk_bytes) = chunk_bytes.filter(|_| !self.is_external()) else {
            return Ok(None);
        };
        let mut chunks = Vec::with_capacity(chunk_bytes);
        let mut buf = Vec::new();
        for n in 0..nchunks {
            match self.raw_chunk_into(n, &mut buf) {
                Ok(()) => chunks.extend_from_slice(&digest(&[&buf])),
                Err(e) => chunks.extend_from_slice(&unreadable(e)?),
            }
        }
        let bpc = blocks_per_chunk(self.meta());
        let block_bytes = nchunks
            .checked_mul(bpc)
            .and_then(|b| usize::try_from(b).ok())
            .and_then(|b| b.checked_mul(DIGEST_LEN))
            .filter(|b| bpc > 1 && chunk_bytes + b <= MAX_DIGEST_BYTES);
        let mut blocks = Vec::with_capacity(block_bytes.unwrap_or(0));
        if block_bytes.is_some() {
            for n in 0..nchunks {
                for b in 0..bpc {
                    let d = match self.one_block(n, b) {
                        Ok(Some((one, _))) => digest(&[&one]),
                        Ok(None) => NO_DIGEST,
                        Err(e) => unreadable(e)?,
                    };
                    blocks.extend_from_slice(&d);
                }
            }
        }
        Ok(Some(Digests {
            algo: DIGEST_ALGO.into(),
            chunks,
            blocks,
        }))
    }
}

/// What a chunk or block that cannot be served gets ([`NO_DIGEST`]: any reply for it is
/// refused), or the error when the file itself failed.
fn unreadable(e: FormatError) -> Result<[u8; DIGEST_LEN], FormatError> {
    match e {
        FormatError::ChunkUnavailable { .. }
        | FormatError::BadChunk { .. }
        | FormatError::NoSuchChunk { .. } => Ok(NO_DIGEST),
        e => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode;

    #[test]
    fn digests_cover_every_chunk_and_block_as_served() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.b2nd");
        // 40×40 int32 in 20×20 chunks of 10×10 blocks: 4 chunks of 4 blocks.
        let data: Vec<u8> = (0..1600i32).flat_map(i32::to_le_bytes).collect();
        encode::write_b2nd_file(&path, "<i4", &[40, 40], &[20, 20], &[10, 10], &data, &[]).unwrap();
        let ds = Dataset::open(&path).unwrap();
        let d = ds.digests().unwrap().unwrap();
        assert!(d.fits(4, 4), "{} {}", d.chunks.len(), d.blocks.len());
        for n in 0..4 {
            let raw = ds.raw_chunk(n).unwrap();
            assert!(matches(d.chunk(n).unwrap(), &[&raw]));
            // Parts as they arrive hash as the whole.
            let (a, b) = raw.split_at(raw.len() / 3);
            assert!(matches(d.chunk(n).unwrap(), &[a, b]));
            // Another chunk's bytes, or a flipped byte, do not.
            assert!(!matches(d.chunk((n + 1) % 4).unwrap(), &[&raw]));
            let mut bad = raw.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert!(!matches(d.chunk(n).unwrap(), &[&bad]));
            for b in 0..4 {
                let (one, _) = ds.one_block(n, b).unwrap().unwrap();
                assert!(matches(d.block(n, b, 4).unwrap(), &[&one]));
                assert!(!matches(d.block(n, (b + 1) % 4, 4).unwrap(), &[&one]));
            }
        }
        assert!(!matches(&NO_DIGEST, &[b"anything"]));
    }
}
