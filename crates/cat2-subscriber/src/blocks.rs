//! Decoded blocks fetched on their own (small reads of chunks not cached yet), kept in a
//! bounded in-memory cache.

use std::sync::Arc;

/// Bytes of decoded blocks kept in memory.
const BLOCK_CACHE_BYTES: u64 = 64 << 20;

/// Decoded blocks a read uses, by (chunk, block).
pub(crate) type Blocks = std::collections::HashMap<(u64, u64), Arc<Vec<u8>>>;

/// (cache instance, chunk, block) → decoded bytes.
pub(crate) type BlockCache = quick_cache::sync::Cache<(u64, u64, u64), Arc<Vec<u8>>, BlockBytes>;

/// Weighs blocks by their bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockBytes;

impl quick_cache::Weighter<(u64, u64, u64), Arc<Vec<u8>>> for BlockBytes {
    fn weight(&self, _: &(u64, u64, u64), v: &Arc<Vec<u8>>) -> u64 {
        v.len() as u64 + 64
    }
}

/// An empty block cache of [`BLOCK_CACHE_BYTES`].
pub(crate) fn block_cache() -> BlockCache {
    BlockCache::with_weighter(1024, BLOCK_CACHE_BYTES, BlockBytes)
}
