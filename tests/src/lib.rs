//! Cross-crate tests of cat2 (in `tests/`): a real nats-server, and interop with python-blosc2
//! driven from the tests. This library holds what those tests share.

use std::path::Path;
use std::process::Command;

/// Runs one of the Python scripts of `tests/python/` with the interop venv and returns its
/// stdout.
///
/// # Panics
/// When the venv is missing (with an install hint) or the script fails: a test failure.
pub fn run_python(script: &str, args: &[&Path]) -> String {
    let python = cat2_testkit::tools::python().unwrap_or_else(|e| panic!("{e}"));
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(script);
    let out = Command::new(&python)
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
