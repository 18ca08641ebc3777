//! Reading selections from cache files, and healing them: chunks are checked structurally
//! when they arrive (cheap), so a chunk whose compressed bytes are garbage is found when a
//! block of it is decoded. It is then dropped from the cache (marked UNINIT, the file stays
//! a valid frame), fetched again, and the read retried once.

use std::sync::Arc;

use cat2_array::Selection;
use cat2_format::FormatError;
use tokio::time::Instant;

use crate::ApiError;
use crate::sub::{Cached, Sub};

/// What one read on the blocking pool gives back.
enum Read<T, F> {
    Done(Result<T, ApiError>),
    /// Chunk `n` failed to decode: the reader hands back what it was given.
    Corrupt(u64, String, Selection, F),
}

impl Sub {
    /// Reads `sel` (whose chunks are cached) from `c` and hands the items to `then`, both on
    /// the blocking pool.
    pub(crate) async fn read<T, F>(
        self: &Arc<Self>,
        c: &Arc<Cached>,
        sel: Selection,
        deadline: Option<Instant>,
        then: F,
    ) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(Vec<u8>, &Selection) -> Result<T, ApiError> + Send + 'static,
    {
        match read_once(c, sel, then).await? {
            Read::Done(r) => r,
            Read::Corrupt(n, reason, sel, then) => {
                tracing::warn!(root = %c.root, path = %c.rel, chunk = n, reason = %reason,
                    "a cached chunk failed to decode; fetching it again");
                self.forget(c, n).await?;
                self.ensure(c, vec![n], deadline).await?;
                match read_once(c, sel, then).await? {
                    Read::Done(r) => r,
                    Read::Corrupt(n, reason, ..) => {
                        self.forget(c, n).await?;
                        Err(ApiError::Unavailable(format!(
                            "chunk {n} of {}/{} does not decode: {reason}",
                            c.root, c.rel
                        )))
                    }
                }
            }
        }
    }

    /// Drops chunk `n` of `c` from the cache (durably).
    async fn forget(&self, c: &Arc<Cached>, n: u64) -> Result<(), ApiError> {
        let cc = c.clone();
        tokio::task::spawn_blocking(move || {
            let mut f = cc.write_file();
            f.forget(n)?;
            f.flush()
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)
    }
}

async fn read_once<T, F>(c: &Arc<Cached>, sel: Selection, then: F) -> Result<Read<T, F>, ApiError>
where
    T: Send + 'static,
    F: FnOnce(Vec<u8>, &Selection) -> Result<T, ApiError> + Send + 'static,
{
    let c = c.clone();
    tokio::task::spawn_blocking(move || {
        let read = c.read_file().read(&sel);
        match read {
            Ok(data) => Read::Done(then(data, &sel)),
            Err(FormatError::BadChunk { nchunk, reason }) => {
                Read::Corrupt(nchunk, reason, sel, then)
            }
            Err(e) => Read::Done(Err(e.into())),
        }
    })
    .await
    .map_err(ApiError::internal)
}
