//! Paths to the tools `scripts/setup` installs into the git-ignored `.tools/` folder.

use std::path::{Path, PathBuf};

/// Hint printed when a tool is missing.
pub const INSTALL_HINT: &str = "run `scripts/setup` at the workspace root (it installs nats-server and the \
     Python venv into .tools/), or put nats-server >= 2.10 on PATH";

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the testkit crate lives at crates/cat2-testkit")
        .to_path_buf()
}

/// The nats-server binary: `$CAT2_NATS_SERVER`, else `.tools/bin/nats-server`, else the first
/// `nats-server` on `PATH`.
///
/// # Errors
/// A message with an install hint when none is found.
pub fn nats_server() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("CAT2_NATS_SERVER") {
        return Ok(PathBuf::from(p));
    }
    let local = workspace_root().join(".tools/bin/nats-server");
    if local.exists() {
        return Ok(local);
    }
    find_on_path("nats-server").ok_or_else(|| format!("nats-server not found: {INSTALL_HINT}"))
}

/// The interop Python (with python-blosc2, numpy, h5py): `.tools/venv/bin/python`.
///
/// # Errors
/// A message with an install hint when the venv is missing.
pub fn python() -> Result<PathBuf, String> {
    let p = workspace_root().join(".tools/venv/bin/python");
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "interop venv not found at {}: {INSTALL_HINT}",
            p.display()
        ))
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
