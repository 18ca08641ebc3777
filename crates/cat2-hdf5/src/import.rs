//! `cat2import HDF5_FILE ROOT_DIR` (spec §7.2, with 0.2.0's weak points fixed): every group
//! becomes a directory, every dataset that can be represented a `.b2nd` file made by the same
//! mapping the publisher serves (Blosc2 chunks copied verbatim, others compressed once), with
//! its attributes as vlmeta. The target must not exist; each file is written under a hidden
//! name and renamed when complete, so a failure never leaves a partial dataset.

use std::path::{Path, PathBuf};

use cat2_format::{CacheFile, FormatError};

use crate::Converted;

/// Converts the HDF5 file `src` into the new root directory `dst` (what `listing` lists;
/// soft-linked datasets are copied under each name), calling `progress(done, total)` in
/// chunks.
///
/// # Errors
/// When `dst` exists or cannot be created, or `src` cannot be opened. Failures of single
/// datasets are reported in [`Converted::failed`].
pub fn import(
    src: &Path,
    dst: &Path,
    listing: crate::Listing,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Converted, FormatError> {
    crate::must_not_exist(dst, "root directory")?;
    let root = crate::open_root(src, listing)?;
    std::fs::create_dir_all(dst).map_err(FormatError::from_io(dst))?;
    for g in &root.groups {
        let dir = dst.join(g);
        std::fs::create_dir_all(&dir).map_err(FormatError::from_io(&dir))?;
    }
    let total: u64 = root.datasets.iter().map(|d| d.dataset.nchunks()).sum();
    let mut done = 0;
    let mut out = Converted::default();
    for d in &root.datasets {
        let path = dst.join(&d.path);
        match write_one(&d.dataset, &path, &mut |n| progress(done + n, total)) {
            Ok(()) => out.written += 1,
            Err(e) => {
                tracing::error!(dataset = %d.path, error = %e, "cannot import dataset");
                out.failed.push((d.path.clone(), e.to_string()));
            }
        }
        done += d.dataset.nchunks();
        progress(done, total);
    }
    Ok(out)
}

fn part_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("dataset");
    path.with_file_name(format!(".{name}.part"))
}

fn write_one(
    ds: &cat2_format::Dataset,
    path: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<(), FormatError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(FormatError::from_io(dir))?;
    }
    let part = part_path(path);
    let result = (|| {
        let mut file = CacheFile::create(&part, ds.meta())?;
        // As many chunks made at once as there are chunk makers (each is one core's work
        // when libhdf5 is not involved), written in order.
        let width = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
        let mut n = 0;
        while n < ds.nchunks() {
            let batch = n..(n + width).min(ds.nchunks());
            let made: Vec<Result<Vec<u8>, FormatError>> = std::thread::scope(|s| {
                let makers: Vec<_> = batch
                    .clone()
                    .map(|i| {
                        s.spawn(move || {
                            let mut buf = Vec::new();
                            ds.raw_chunk_into(i, &mut buf).map(|()| buf)
                        })
                    })
                    .collect();
                makers
                    .into_iter()
                    .map(|m| m.join().unwrap_or_else(|_| Err(stopped())))
                    .collect()
            });
            for (i, buf) in batch.zip(made) {
                file.put(i, &buf?)?;
                progress(i + 1);
            }
            n += width;
        }
        file.flush()?;
        drop(file);
        std::fs::rename(&part, path).map_err(FormatError::from_io(path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result
}

fn stopped() -> FormatError {
    FormatError::Unreadable {
        path: "(cat2import)".into(),
        nchunk: 0,
        reason: "a chunk maker stopped".into(),
    }
}
