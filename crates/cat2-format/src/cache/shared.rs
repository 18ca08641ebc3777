//! A [`CacheFile`] shared by threads, with its locking inside: reads run together; a chunk is
//! stored in three steps (room reserved and then committed under the write lock, briefly;
//! the bytes written under the read lock), so writing a big chunk never holds off readers;
//! chunks are verified before ([`CacheFile::verify_parts`]), outside any lock.
//!
//! Every method blocks (file I/O under a `std` lock): call them on a blocking pool.

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError};

use super::{CacheFile, Snapshot, Verified};
use crate::FormatError;

/// A cache file and its lock.
#[derive(Debug)]
pub struct SharedCache {
    file: RwLock<CacheFile>,
}

impl SharedCache {
    /// Shares `file`.
    pub fn new(file: CacheFile) -> Self {
        Self {
            file: RwLock::new(file),
        }
    }

    /// The file, for reading (alongside other readers).
    pub fn read(&self) -> RwLockReadGuard<'_, CacheFile> {
        self.file.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The file for reading if no writer holds it: never blocks, so it may be used on async
    /// workers for in-memory lookups (which chunks are filled).
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, CacheFile>> {
        match self.file.try_read() {
            Ok(g) => Some(g),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    fn write(&self) -> RwLockWriteGuard<'_, CacheFile> {
        self.file.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores a chunk verified (outside any lock) by [`CacheFile::verify_parts`], part by part
    /// as it arrived (never joined). A chunk already filled is left as it is. Not durable
    /// until [`SharedCache::flush`].
    ///
    /// # Errors
    /// [`FormatError::NoSuchChunk`]; I/O errors.
    pub fn store(&self, chunk: &Verified<'_>) -> Result<(), FormatError> {
        let slot = self.write().reserve(chunk)?;
        if let Some(slot) = slot {
            self.read().write_slot(&slot, chunk)?;
            self.write().commit(slot)?;
        }
        Ok(())
    }

    /// Makes what was stored durable and the file a valid frame (see [`CacheFile::flush`]).
    ///
    /// # Errors
    /// I/O and codec errors.
    pub fn flush(&self) -> Result<(), FormatError> {
        self.write().flush()
    }

    /// Drops chunk `nchunk` (to be fetched again) if it is still the copy stored at offset
    /// `at` (another reader may have fetched it again meanwhile), durably.
    ///
    /// # Errors
    /// I/O errors.
    pub fn forget_stored(&self, nchunk: u64, at: u64) -> Result<(), FormatError> {
        let mut f = self.write();
        f.forget_stored(nchunk, at)?;
        f.flush()
    }

    /// The file's state, flushed and checked complete (see [`CacheFile::snapshot`]).
    ///
    /// # Errors
    /// I/O errors.
    pub fn snapshot(&self) -> Result<Option<Snapshot>, FormatError> {
        self.write().snapshot()
    }
}
