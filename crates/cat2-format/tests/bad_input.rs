//! Bad files give typed errors, never a panic.

use std::io::Write;
use std::path::Path;

use cat2_format::{Dataset, FormatError};

fn example(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../root-example")
        .join(name)
}

#[test]
fn truncated_b2nd() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(example("ds-1d.b2nd")).unwrap();
    for cut in [
        1,
        10,
        40,
        100,
        good.len() / 2,
        good.len() - 30,
        good.len() - 1,
    ] {
        let p = dir.path().join(format!("t{cut}.b2nd"));
        std::fs::write(&p, &good[..cut]).unwrap();
        match Dataset::open(&p) {
            Err(FormatError::NotBlosc2 { .. } | FormatError::BadMetadata { .. }) => {}
            Err(e) => panic!("cut {cut}: unexpected error {e}"),
            // c-blosc2 may accept a frame cut inside chunk data; reading must then fail cleanly.
            Ok(ds) => {
                let all = cat2_array::Selection::all(ds.layout().shape());
                assert!(
                    ds.read(&all).is_err(),
                    "cut {cut}: read a truncated file without error"
                );
            }
        }
    }
}

#[test]
fn random_bytes_empty_files_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = 12345u32;
    let junk: Vec<u8> = (0..4096)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    let p = dir.path().join("junk.b2nd");
    std::fs::write(&p, &junk).unwrap();
    assert!(matches!(
        Dataset::open(&p),
        Err(FormatError::NotBlosc2 { .. })
    ));
    let p = dir.path().join("empty.b2nd");
    std::fs::write(&p, b"").unwrap();
    assert!(matches!(
        Dataset::open(&p),
        Err(FormatError::NotBlosc2 { .. })
    ));
    let p = dir.path().join("empty.b2frame");
    std::fs::write(&p, b"").unwrap();
    assert!(matches!(
        Dataset::open(&p),
        Err(FormatError::NotBlosc2 { .. })
    ));
    assert!(matches!(
        Dataset::open(&dir.path().join("missing.b2nd")),
        Err(FormatError::Io { .. })
    ));
    assert!(matches!(
        Dataset::open(&dir.path().join("missing.txt")),
        Err(FormatError::Io { .. })
    ));
    let sub = dir.path().join("sub.b2nd");
    std::fs::create_dir(&sub).unwrap();
    assert!(Dataset::open(&sub).is_err());
    let sub = dir.path().join("subdir");
    std::fs::create_dir(&sub).unwrap();
    assert!(matches!(Dataset::open(&sub), Err(FormatError::Io { .. })));
}

#[test]
fn content_that_does_not_match_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("array.b2frame");
    std::fs::copy(example("ds-1d.b2nd"), &p).unwrap();
    assert!(matches!(
        Dataset::open(&p),
        Err(FormatError::NotAFrame { .. })
    ));
    let p = dir.path().join("frame.b2nd");
    std::fs::copy(example("ds-hello.b2frame"), &p).unwrap();
    assert!(matches!(
        Dataset::open(&p),
        Err(FormatError::NotAnArray { .. })
    ));
}

#[test]
fn chunk_numbers_past_the_end() {
    let ds = Dataset::open(&example("ds-1d.b2nd")).unwrap();
    assert!(matches!(
        ds.raw_chunk(10),
        Err(FormatError::NoSuchChunk {
            nchunk: 10,
            nchunks: 10
        })
    ));
    assert!(matches!(
        ds.chunk_is_uninit(u64::MAX),
        Err(FormatError::NoSuchChunk { .. })
    ));
    let f = Dataset::open(&example("README.md")).unwrap();
    assert!(matches!(
        f.raw_chunk(1),
        Err(FormatError::NoSuchChunk { .. })
    ));
}

/// Every byte of valid files flipped three ways: opening and reading never crash (c-blosc2
/// alone segfaults on many of these; the frame is checked in Rust first). Errors, or other
/// values when a flip hits compressed data, are both fine.
#[test]
fn every_byte_flipped_never_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let mut opened = 0;
    for file in [
        "ds-1d.b2nd",
        "dir1/ds-2d.b2nd",
        "ds-hello.b2frame",
        "ds-sc-attr.b2nd",
    ] {
        let good = std::fs::read(example(file)).unwrap();
        let p = dir.path().join(Path::new(file).file_name().unwrap());
        for i in 0..good.len() {
            for xor in [0x01u8, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[i] ^= xor;
                std::fs::write(&p, &bad).unwrap();
                if let Ok(ds) = Dataset::open(&p) {
                    opened += 1;
                    let all = cat2_array::Selection::all(ds.layout().shape());
                    let _ = ds.read(&all);
                    for n in 0..ds.nchunks() {
                        let _ = ds.raw_chunk(n);
                        let _ = ds.chunk_is_uninit(n);
                    }
                }
            }
        }
    }
    assert!(opened > 0, "flips inside chunk data still open");
}

/// A file rewritten in place (`cp new.b2nd x.b2nd`: same inode, new bytes) while open is
/// never read through the old index: reads of chunks and of blocks say it changed, so no
/// answer mixes the two versions; a fresh open reads the new version right.
#[test]
fn a_file_rewritten_in_place_is_not_read_with_its_old_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.b2nd");
    let (old, new): (Vec<u8>, Vec<u8>) = (
        (0..1u32 << 16).map(|i| (i % 251) as u8).collect(),
        vec![7u8; 1 << 16],
    );
    let write = |p: &Path, data: &[u8]| {
        cat2_format::encode::write_b2nd_file(
            p,
            "|u1",
            &[1 << 16],
            &[1 << 12],
            &[1 << 10],
            data,
            &[],
        )
        .unwrap();
    };
    write(&path, &old);
    let newer = dir.path().join("new.b2nd");
    write(&newer, &new);
    let ds = Dataset::open(&path).unwrap();
    let mut buf = Vec::new();
    ds.raw_chunk_into(3, &mut buf).unwrap();
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
    std::fs::copy(&newer, &path).unwrap();
    let same = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
    assert_eq!(ino, same, "rewritten in place");
    assert!(matches!(
        ds.raw_chunk_into(3, &mut buf),
        Err(FormatError::Changed { .. })
    ));
    assert!(matches!(
        ds.one_block(3, 1),
        Err(FormatError::Changed { .. })
    ));
    let fresh = Dataset::open(&path).unwrap();
    let all = cat2_array::Selection::all(fresh.layout().shape());
    assert_eq!(fresh.read(&all).unwrap(), new);

    // Plain files too: their chunks are read and compressed on the fly.
    let txt = dir.path().join("notes.txt");
    std::fs::write(&txt, vec![b'a'; 3 << 20]).unwrap();
    let plain = Dataset::open(&txt).unwrap();
    plain.raw_chunk(0).unwrap();
    std::fs::write(&txt, vec![b'b'; 3 << 20]).unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&txt)
        .unwrap()
        .write_all(b"more")
        .unwrap();
    assert!(matches!(
        plain.raw_chunk(0),
        Err(FormatError::Changed { .. })
    ));
}
