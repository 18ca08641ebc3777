//! `download DATASET [OUTDIR]`: the two-step download of spec §4.4, and unpacking of plain
//! files, which subscribers serve as Blosc2 super-chunks named `<name>.b2`.

use std::io::{IsTerminal, Write};
use std::path::{Component, Path, PathBuf};

use cat2_format::{Dataset, FormatError, Kind};
use cat2_proto::rest::DownloadReply;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Url;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::{Api, CliError, DownloadArgs};

/// Downloads a dataset to `OUTDIR/DATASET` (`OUTDIR` defaults to the current directory) and
/// prints the path written. Plain files arrive as `<path>.b2` and are unpacked to `<path>`.
///
/// The dataset path is checked before anything is written: it must stay inside `OUTDIR`.
/// Data is written to `<file>.part` first and renamed when complete.
///
/// # Errors
/// [`CliError::UnsafePath`] for a path that leaves `OUTDIR`, request and file errors, and
/// `.b2` files that are not valid super-chunks.
pub async fn cmd_download(
    args: &DownloadArgs,
    api: &Api,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let dest = destination(args.outdir.as_deref(), &args.dataset)?;
    let reply: DownloadReply = api.get_json("download", &args.dataset).await?;
    let url = download_url(api, &args.dataset, &reply)?;
    let packed = url.path().ends_with(".b2");
    let dir = parent_dir(&dest);
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(CliError::io(dir))?;
    let target = if packed {
        with_suffix(&dest, ".b2")
    } else {
        dest.clone()
    };
    let resp = api.get_stream(url).await?;
    save(resp, &target).await?;
    if packed {
        let (src, dst) = (target.clone(), dest.clone());
        tokio::task::spawn_blocking(move || unpack(&src, &dst)).await??;
        tokio::fs::remove_file(&target)
            .await
            .map_err(CliError::io(&target))?;
    }
    if args.json {
        writeln!(out, "{}", Value::from(dest.display().to_string()))?;
    } else {
        writeln!(out, "{}", dest.display())?;
    }
    Ok(())
}

/// Where `dataset` goes under `outdir` (relative to the current directory without one).
///
/// # Errors
/// [`CliError::UnsafePath`] for an empty or absolute path, one with `.` or `..` parts, or one
/// ending in `/`.
pub(crate) fn destination(outdir: Option<&Path>, dataset: &str) -> Result<PathBuf, CliError> {
    crate::api::path_parts(dataset)?;
    let rel = Path::new(dataset);
    let unsafe_path = || CliError::UnsafePath {
        path: dataset.to_owned(),
    };
    if dataset.ends_with('/') || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(unsafe_path());
    }
    Ok(match outdir {
        Some(dir) => dir.join(rel),
        None => rel.to_path_buf(),
    })
}

/// The URL in the JSON string `/api/download` returned.
fn download_url(api: &Api, dataset: &str, text: &str) -> Result<Url, CliError> {
    let bad = |reason: String| CliError::BadReply {
        url: api
            .url("download", dataset)
            .map_or_else(|_| dataset.to_owned(), |u| u.to_string()),
        reason,
    };
    let url = Url::parse(text).map_err(|e| bad(format!("invalid URL {text:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!("not an HTTP URL: {text:?}")));
    }
    Ok(url)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// A `<file>.part` being written, removed unless [`Part::finish`] renames it into place.
struct Part {
    path: PathBuf,
    done: bool,
}

impl Part {
    fn new(target: &Path) -> Self {
        Self {
            path: with_suffix(target, ".part"),
            done: false,
        }
    }

    fn finish(mut self, target: &Path) -> Result<(), CliError> {
        std::fs::rename(&self.path, target).map_err(CliError::io(target))?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A progress bar on stderr, only when stderr is a terminal.
fn progress(len: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = match len {
        Some(n) => (
            ProgressBar::new(n),
            "{wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        ),
        None => (
            ProgressBar::new_spinner(),
            "{spinner} {bytes} {bytes_per_sec}",
        ),
    };
    match ProgressStyle::with_template(template) {
        Ok(style) => bar.with_style(style),
        Err(_) => bar,
    }
}

/// Streams the body of `resp` to `target`.
async fn save(mut resp: reqwest::Response, target: &Path) -> Result<(), CliError> {
    let part = Part::new(target);
    let mut file = tokio::fs::File::create(&part.path)
        .await
        .map_err(CliError::io(&part.path))?;
    let bar = progress(resp.content_length());
    while let Some(bytes) = resp.chunk().await.map_err(|e| CliError::request(&e))? {
        file.write_all(&bytes)
            .await
            .map_err(CliError::io(&part.path))?;
        bar.inc(bytes.len() as u64);
    }
    file.flush().await.map_err(CliError::io(&part.path))?;
    drop(file);
    bar.finish_and_clear();
    part.finish(target)
}

/// Decompresses the super-chunk in `src` chunk by chunk into `dest` (blocking).
///
/// # Errors
/// [`CliError::Decode`] when `src` is not a valid super-chunk; file errors.
pub(crate) fn unpack(src: &Path, dest: &Path) -> Result<u64, CliError> {
    let ds = Dataset::open_as(src, Kind::Frame)?;
    let part = Part::new(dest);
    let file = std::fs::File::create(&part.path).map_err(CliError::io(&part.path))?;
    let mut w = std::io::BufWriter::new(file);
    let n = write_chunks(&ds, &mut w, &part.path)?;
    w.flush().map_err(CliError::io(&part.path))?;
    drop(w);
    part.finish(dest)?;
    Ok(n)
}

/// Writes the decompressed chunks of a super-chunk to `out` (which writes to `path`), checking
/// that they add up to the frame's `nbytes`; returns the bytes written.
pub(crate) fn write_chunks(
    ds: &Dataset,
    out: &mut impl Write,
    path: &Path,
) -> Result<u64, CliError> {
    let mut total = 0u64;
    for n in 0..ds.nchunks() {
        let raw = ds.raw_chunk(n)?;
        let data = cat2_format::chunk::decompress_standalone(&raw)?;
        out.write_all(&data).map_err(CliError::io(path))?;
        total += data.len() as u64;
    }
    if i64::try_from(total).ok() != Some(ds.meta().nbytes) {
        return Err(FormatError::BadMetadata {
            path: ds.path().into(),
            reason: format!(
                "chunks hold {total} bytes, the header says {}",
                ds.meta().nbytes
            ),
        }
        .into());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpacks_super_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let frame = cat2_format::encode::schunk_cframe(1, &data).unwrap();
        let src = dir.path().join("x.b2");
        std::fs::write(&src, &frame).unwrap();
        let dest = dir.path().join("x");
        assert_eq!(unpack(&src, &dest).unwrap(), data.len() as u64);
        assert_eq!(std::fs::read(&dest).unwrap(), data);
        assert!(!with_suffix(&dest, ".part").exists());

        std::fs::write(&src, b"not blosc2").unwrap();
        let bad = dir.path().join("bad");
        assert!(matches!(unpack(&src, &bad), Err(CliError::Decode(_))));
        assert!(!bad.exists() && !with_suffix(&bad, ".part").exists());
    }

    #[test]
    fn rejects_traversal() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "foo/../../x",
            "foo/..",
            "./foo",
            "foo/./x",
            "foo/",
        ] {
            assert!(
                matches!(destination(None, bad), Err(CliError::UnsafePath { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(
            destination(None, "foo/dir1/ds-2d.b2nd").unwrap(),
            Path::new("foo/dir1/ds-2d.b2nd")
        );
        assert_eq!(
            destination(Some(Path::new("/tmp/out")), "foo/a..b").unwrap(),
            Path::new("/tmp/out/foo/a..b")
        );
    }

    #[test]
    fn paths() {
        assert_eq!(parent_dir(Path::new("x")), Path::new("."));
        assert_eq!(parent_dir(Path::new("a/x")), Path::new("a"));
        assert_eq!(
            with_suffix(Path::new("a/R.md"), ".b2"),
            Path::new("a/R.md.b2")
        );
    }
}
