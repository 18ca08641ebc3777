//! `cat2import` and `cat2export`, the real binaries: round trips that decode equal both ways
//! (checked by h5py, hdf5plugin and python-blosc2), Blosc2 chunks copied without
//! recompression, `<U` arrays exported, a non-zero exit and a message on failure.

use std::path::Path;
use std::process::Command;

use cat2_e2e::cluster::bin;
use cat2_e2e::run_python;
use cat2_format::Dataset;

fn run(tool: &str, a: &Path, b: &Path) -> (bool, String) {
    let out = Command::new(bin(tool)).arg(a).arg(b).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn raw_chunks(path: &Path) -> Vec<Vec<u8>> {
    let ds = Dataset::open(path).unwrap();
    (0..ds.nchunks())
        .map(|n| ds.raw_chunk(n).unwrap())
        .collect()
}

#[test]
fn root_example_round_trips_through_hdf5() {
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../root-example");
    let h5 = dir.path().join("ex.h5");
    let (ok, err) = run("cat2export", &example, &h5);
    assert!(ok, "cat2export failed: {err}");
    run_python("check_h5_tools.py", &[Path::new("export"), &h5, &example]);
    let back = dir.path().join("back");
    let (ok, err) = run("cat2import", &h5, &back);
    assert!(ok, "cat2import failed: {err}");
    run_python("check_h5_tools.py", &[Path::new("import"), &h5, &back]);
    // n-d arrays go both ways without recompression: the very same chunks.
    for rel in ["dir1/ds-2d.b2nd", "dir1/ds-3d.b2nd", "dir2/ds-4d.b2nd"] {
        assert_eq!(
            raw_chunks(&example.join(rel)),
            raw_chunks(&back.join(rel)),
            "{rel}"
        );
    }
    // The target must not exist (and is left as it was).
    let before = std::fs::read(&h5).unwrap();
    let (ok, err) = run("cat2export", &example, &h5);
    assert!(!ok && err.contains("must not exist"), "{err}");
    assert_eq!(std::fs::read(&h5).unwrap(), before);
    let (ok, err) = run("cat2import", &h5, &back);
    assert!(!ok && err.contains("must not exist"), "{err}");
    let (ok, err) = run(
        "cat2import",
        &dir.path().join("missing.h5"),
        &dir.path().join("x"),
    );
    assert!(!ok && err.contains("cat2import:"), "{err}");
    assert!(!dir.path().join("x").exists(), "nothing created on failure");
    let not_h5 = example.join("README.md");
    let (ok, err) = run("cat2import", &not_h5, &dir.path().join("y"));
    assert!(!ok && err.contains("HDF5"), "{err}");
}

#[test]
fn h5py_files_round_trip_through_a_root() {
    let dir = tempfile::tempdir().unwrap();
    run_python("write_hdf5.py", &[dir.path()]);
    let cases = dir.path().join("cases.h5");
    let root = dir.path().join("root");
    let (ok, err) = run("cat2import", &cases, &root);
    assert!(ok, "cat2import failed: {err}");
    run_python("check_h5_tools.py", &[Path::new("import"), &cases, &root]);
    // Blosc2 chunks of the HDF5 file are copied as they are.
    let served = cat2_hdf5::open_root(&cases, cat2_hdf5::Listing::Full).unwrap();
    for d in served
        .datasets
        .iter()
        .filter(|d| d.path.starts_with("blosc2/"))
    {
        let imported = raw_chunks(&root.join(&d.path));
        let direct: Vec<Vec<u8>> = (0..d.dataset.nchunks())
            .map(|n| d.dataset.raw_chunk(n).unwrap())
            .collect();
        assert_eq!(imported, direct, "{}", d.path);
    }
    let again = dir.path().join("again.h5");
    let (ok, err) = run("cat2export", &root, &again);
    assert!(ok, "cat2export failed: {err}");
    run_python("check_h5_tools.py", &[Path::new("export"), &again, &root]);
}
