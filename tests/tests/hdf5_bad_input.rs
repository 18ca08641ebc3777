//! HDF5 roots given bad input: a dataset whose filter libhdf5 lacks is skipped (named, with
//! the reason) while the others are served; truncated and corrupt files give errors, never a
//! crash or made-up bytes; a file that is not HDF5 is not taken for one.

use cat2_array::Selection;
use cat2_e2e::run_python;

#[test]
fn a_missing_filter_skips_that_dataset_only() {
    let dir = tempfile::tempdir().unwrap();
    run_python("write_hdf5_bad.py", &[dir.path()]);
    let root = cat2_hdf5::open_root(&dir.path().join("filters.h5")).unwrap();
    let names: Vec<&str> = root.datasets.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(names, ["plain.b2nd"]);
    let all = root.datasets[0]
        .dataset
        .read(&Selection::all(&[1000]))
        .unwrap();
    assert_eq!(
        all,
        (0..1000i32).flat_map(i32::to_le_bytes).collect::<Vec<u8>>()
    );
}

#[test]
fn truncated_and_corrupt_files_give_errors_not_garbage() {
    let dir = tempfile::tempdir().unwrap();
    run_python("write_hdf5.py", &[dir.path()]);
    let good = std::fs::read(dir.path().join("cases.h5")).unwrap();
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for cut in [good.len() / 2, good.len() * 9 / 10, 4096] {
        cases.push((format!("truncated at {cut}"), good[..cut].to_vec()));
    }
    for at in (600..good.len()).step_by(good.len() / 7) {
        let mut bad = good.clone();
        for b in &mut bad[at..(at + 256).min(good.len())] {
            *b ^= 0x5a;
        }
        cases.push((format!("corrupt at {at}"), bad));
    }
    for (what, bytes) in &cases {
        let mut failed_reads = 0;
        let path = dir.path().join("bad.h5");
        std::fs::write(&path, bytes).unwrap();
        // Opening either fails or lists what can still be described; every read of what is
        // listed returns data or an error (no crash, no panic).
        let Ok(root) = cat2_hdf5::open_root(&path) else {
            println!("{what}: refused");
            continue;
        };
        for d in &root.datasets {
            let shape = d.dataset.layout().shape().to_vec();
            if d.dataset.read(&Selection::all(&shape)).is_err() {
                failed_reads += 1;
            }
            for n in 0..d.dataset.nchunks() {
                let _ = d.dataset.raw_chunk(n);
            }
        }
        println!(
            "{what}: {} datasets listed, {failed_reads} failed reads",
            root.datasets.len()
        );
        // A truncated file is refused whole, or what lies past its end fails to read.
        assert!(
            !what.starts_with("truncated") || failed_reads > 0,
            "{what}: opened, and every read succeeded"
        );
    }
    std::fs::write(dir.path().join("not.h5"), b"not an HDF5 file at all").unwrap();
    assert!(!cat2_hdf5::is_hdf5(&dir.path().join("not.h5")));
    assert!(cat2_hdf5::open_root(&dir.path().join("not.h5")).is_err());
}
