//! Walking a root directory: which datasets it holds and their etags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use cat2_proto::DatasetPath;

/// A dataset found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    /// Absolute path.
    pub(crate) path: PathBuf,
    /// `mtime_ns:size`: changes whenever the file does.
    pub(crate) etag: String,
}

/// Walks `root` (canonical): every regular file, by relative path. Hidden entries (`.name`),
/// temporary files (`~`, `.tmp`), symlinks leading out of the root and unreadable entries are
/// skipped: a root is what its owner publishes, not what an editor leaves behind.
pub(crate) fn scan(root: &Path) -> BTreeMap<String, Found> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out, 0);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Found>, depth: usize) {
    if depth > 64 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        tracing::warn!(dir = %dir.display(), "cannot read directory, skipped");
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') || name.ends_with('~') || name.ends_with(".tmp") {
            continue;
        }
        let path = entry.path();
        // Follow symlinks only while they stay inside the root.
        let Ok(real) = path.canonicalize() else {
            continue;
        };
        if !real.starts_with(root) {
            tracing::warn!(path = %path.display(), "symlink out of the root, skipped");
            continue;
        }
        let Ok(md) = std::fs::metadata(&real) else {
            continue;
        };
        if md.is_dir() {
            walk(root, &path, out, depth + 1);
        } else if md.is_file() {
            let Ok(rel) = path.strip_prefix(root) else {
                continue;
            };
            let Some(rel) = rel
                .to_str()
                .map(|r| r.replace(std::path::MAIN_SEPARATOR, "/"))
            else {
                continue;
            };
            if DatasetPath::new(&rel).is_err() {
                continue;
            }
            out.insert(
                rel,
                Found {
                    path: real,
                    etag: etag(&md),
                },
            );
        }
    }
}

/// The etag of a file: modification time in nanoseconds and size.
pub(crate) fn etag(md: &std::fs::Metadata) -> String {
    let mtime = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{mtime}:{}", md.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_and_skips() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("x.txt"), b"1").unwrap();
        std::fs::write(root.join("a/b/y.b2nd"), b"2").unwrap();
        std::fs::write(root.join(".hidden"), b"3").unwrap();
        std::fs::write(root.join("edit~"), b"4").unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.join("link")).unwrap();
        std::os::unix::fs::symlink(root.join("x.txt"), root.join("inside")).unwrap();
        let found = scan(&root);
        let names: Vec<&str> = found.keys().map(String::as_str).collect();
        assert_eq!(names, vec!["a/b/y.b2nd", "inside", "x.txt"]);
        assert!(found["x.txt"].etag.ends_with(":1"));
    }
}
