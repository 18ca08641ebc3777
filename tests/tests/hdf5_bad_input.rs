//! HDF5 roots given bad input: a dataset whose filter libhdf5 lacks is skipped (named, with
//! the reason) while the others are served; truncated and corrupt files give errors, never a
//! crash or made-up bytes; a file that is not HDF5 is not taken for one.

use cat2_array::Selection;
use std::path::Path;

use cat2_e2e::run_python;

#[test]
fn a_missing_filter_skips_that_dataset_only() {
    let dir = tempfile::tempdir().unwrap();
    run_python("write_hdf5_bad.py", &[dir.path()]);
    let root =
        cat2_hdf5::open_root(&dir.path().join("filters.h5"), cat2_hdf5::Listing::Full).unwrap();
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
        let Ok(root) = cat2_hdf5::open_root(&path, cat2_hdf5::Listing::Full) else {
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
    assert!(cat2_hdf5::open_root(&dir.path().join("not.h5"), cat2_hdf5::Listing::Full).is_err());
}

/// Every dataset's bytes, chunk by chunk, or the first error.
fn read_chunks(root: &cat2_hdf5::Root) -> Result<Vec<Vec<u8>>, cat2_format::FormatError> {
    let mut out = Vec::new();
    for d in &root.datasets {
        for n in 0..d.dataset.nchunks() {
            out.push(cat2_format::chunk::decompress_standalone(
                &d.dataset.raw_chunk(n)?,
            )?);
        }
    }
    Ok(out)
}

#[test]
fn a_file_rewritten_while_read_never_mixes_versions() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("live.h5");
    let f = file.to_str().unwrap();
    run_python("rewrite_hdf5.py", &[Path::new("write"), &file]);
    let root = cat2_hdf5::open_root(&file, cat2_hdf5::Listing::Full).unwrap();
    let first = read_chunks(&root).unwrap();
    // Another process rewrites both datasets in place, again and again, while they are read:
    // every read of the version opened gives that version's bytes, or a stale error.
    let mut writer = cat2_e2e::python_command("rewrite_hdf5.py", &["inplace", f, "30"])
        .spawn()
        .unwrap();
    let (mut good, mut stale) = (0, 0);
    loop {
        let done = writer.try_wait().unwrap();
        for d in &root.datasets {
            for n in 0..d.dataset.nchunks() {
                match d.dataset.raw_chunk(n) {
                    Ok(raw) => {
                        let got = cat2_format::chunk::decompress_standalone(&raw).unwrap();
                        let i = root.datasets.iter().position(|x| x.path == d.path).unwrap();
                        let at = i * d.dataset.nchunks() as usize + n as usize;
                        assert!(
                            got == first[at],
                            "{} chunk {n}: bytes of another version",
                            d.path
                        );
                        good += 1;
                    }
                    Err(cat2_format::FormatError::Changed { .. }) => stale += 1,
                    Err(e) => panic!("{} chunk {n}: {e}", d.path),
                }
            }
        }
        if let Some(status) = done {
            assert!(status.success(), "writer failed");
            break;
        }
    }
    println!("while rewritten: {good} chunks of the opened version, {stale} stale");
    assert!(
        matches!(
            read_chunks(&root),
            Err(cat2_format::FormatError::Changed { .. })
        ),
        "after the rewrites, the old version is stale"
    );
    // A new version renamed over the file: the open version keeps reading right.
    run_python("rewrite_hdf5.py", &[Path::new("write"), &file]);
    let root = cat2_hdf5::open_root(&file, cat2_hdf5::Listing::Full).unwrap();
    run_python("rewrite_hdf5.py", &[Path::new("rename"), &file]);
    assert!(
        read_chunks(&root).unwrap() == first,
        "renamed over: old version intact"
    );
    let new = cat2_hdf5::open_root(&file, cat2_hdf5::Listing::Full).unwrap();
    assert!(
        read_chunks(&new).unwrap() != first,
        "the new version is the new file"
    );
}

#[test]
fn a_chunk_whose_filter_fails_is_an_error_naming_dataset_and_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.h5");
    run_python("rewrite_hdf5.py", &[Path::new("write"), &file]);
    run_python("rewrite_hdf5.py", &[Path::new("corrupt"), &file]);
    let root = cat2_hdf5::open_root(&file, cat2_hdf5::Listing::Full).unwrap();
    for d in &root.datasets {
        for n in 0..d.dataset.nchunks() {
            let got = d.dataset.raw_chunk(n);
            if n != 1 {
                let chunk = cat2_format::chunk::decompress_standalone(&got.unwrap()).unwrap();
                assert_eq!(chunk.len(), 50 * 60 * 8, "{} chunk {n}", d.path);
                continue;
            }
            // Deflate fails (cat2 inflates gzip chunks itself); a damaged Blosc2 chunk fails its checks or decoding.
            let err = match got {
                Err(e) => e,
                Ok(raw) => cat2_format::chunk::decompress_standalone(&raw).unwrap_err(),
            };
            let msg = err.to_string();
            println!("{}: {msg}", d.path);
            assert!(
                !matches!(err, cat2_format::FormatError::Changed { .. }),
                "{}: a damaged chunk is not a changed file",
                d.path
            );
            if d.path == "gz.b2nd" {
                assert!(msg.contains("gz") && msg.contains("chunk 1"), "{msg}");
            }
        }
    }
}
