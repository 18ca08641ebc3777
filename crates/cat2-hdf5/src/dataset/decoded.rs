//! Decoded HDF5 chunks kept for a moment. libhdf5's filters work on whole chunks, so each
//! block of one chunk that a small read asks for (a 64×64 window may touch four) would inflate
//! the whole chunk again. The last decoded chunks stay here, under one byte budget for the
//! process, and a chunk being decoded is decoded once for every block asked of it meanwhile.
//! Entries belong to one version of one dataset (a fresh id per open version), whose bytes
//! were checked when decoded, so they never mix versions.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use cat2_format::FormatError;

/// Bytes of decoded chunks kept, all datasets together.
const BUDGET: usize = 64 << 20;
/// Largest decoded chunk kept (bigger ones are read block by block).
pub(crate) const MAX_ENTRY: usize = 32 << 20;

/// A fresh id for one version of one dataset.
pub(crate) fn new_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

type Key = (u64, u64);
/// Entries, least recently used first.
type Entries = Vec<(Key, Arc<Vec<u8>>)>;

fn cache() -> &'static Mutex<Entries> {
    static C: Mutex<Entries> = Mutex::new(Vec::new());
    &C
}

fn lookup(key: Key) -> Option<Arc<Vec<u8>>> {
    let mut c = cache().lock().unwrap_or_else(PoisonError::into_inner);
    let i = c.iter().position(|(k, _)| *k == key)?;
    // Most recently used last.
    let e = c.remove(i);
    let data = e.1.clone();
    c.push(e);
    Some(data)
}

fn insert(key: Key, data: Arc<Vec<u8>>) {
    let mut c = cache().lock().unwrap_or_else(PoisonError::into_inner);
    c.retain(|(k, _)| *k != key);
    c.push((key, data));
    let mut total: usize = c.iter().map(|(_, d)| d.len()).sum();
    while total > BUDGET && c.len() > 1 {
        total -= c.remove(0).1.len();
    }
}

/// Chunk `n` of dataset version `id`, decoded by `decode` unless it is here; `gate` (one per
/// dataset version) makes concurrent callers wait for one decode instead of repeating it.
pub(crate) fn get_or_decode(
    id: u64,
    n: u64,
    gate: &Mutex<()>,
    decode: impl FnOnce() -> Result<Vec<u8>, FormatError>,
) -> Result<Arc<Vec<u8>>, FormatError> {
    let key = (id, n);
    if let Some(d) = lookup(key) {
        return Ok(d);
    }
    let _one = gate.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(d) = lookup(key) {
        return Ok(d);
    }
    let data = Arc::new(decode()?);
    if data.len() <= MAX_ENTRY {
        insert(key, data.clone());
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_once_and_keeps_within_budget() {
        let gate = Mutex::new(());
        let id = new_id();
        let mut calls = 0;
        for _ in 0..3 {
            let d = get_or_decode(id, 7, &gate, || {
                calls += 1;
                Ok(vec![1; 10])
            })
            .unwrap();
            assert_eq!(*d, vec![1; 10]);
        }
        assert_eq!(calls, 1, "decoded once");
        let other = new_id();
        assert_ne!(other, id);
        for n in 0..5 {
            get_or_decode(other, n, &gate, || Ok(vec![0; 20 << 20])).unwrap();
        }
        let kept: usize = cache().lock().unwrap().iter().map(|(_, d)| d.len()).sum();
        assert!(kept <= BUDGET, "{kept} bytes kept");
        let failed = get_or_decode(new_id(), 0, &gate, || {
            Err(FormatError::Changed { path: "x".into() })
        });
        assert!(failed.is_err(), "errors are not kept");
    }
}
