//! Interop with python-blosc2, both ways: arrays python writes (every dtype, several codecs and
//! filters, vlmeta) read back with equal metadata, data and slices; files and buffers we write
//! (cache files filled out of order, result encodings) open in python-blosc2 with equal data.

use std::path::{Path, PathBuf};

use cat2_array::{Selection, SliceSpec};
use cat2_e2e::run_python;
use cat2_format::{CacheFile, Dataset, encode};
use serde_json::Value;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Datasets python wrote: (path, expected metadata, raw data).
fn python_datasets(dir: &Path) -> Vec<(PathBuf, Value, Vec<u8>)> {
    run_python("write_arrays.py", &[dir]);
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            let meta: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            let ext = if meta["kind"] == "array" {
                "b2nd"
            } else {
                "b2frame"
            };
            let raw = std::fs::read(p.with_extension("raw")).unwrap();
            out.push((p.with_extension(ext), meta, raw));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(out.len(), 25, "python wrote every case");
    out
}

#[test]
fn python_written_datasets_read_back_equal() {
    let dir = tempfile::tempdir().unwrap();
    for (path, want, raw) in python_datasets(dir.path()) {
        let name = path.display().to_string();
        let ds = Dataset::open(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let info = ds.info("x");
        let schunk = if want["kind"] == "array" {
            for k in ["shape", "chunks", "blocks", "dtype"] {
                assert_eq!(info[k], want[k], "{name}: {k}");
            }
            &info["schunk"]
        } else {
            &info
        };
        for k in ["nbytes", "cbytes", "nchunks", "chunksize"] {
            assert_eq!(schunk[k], want[k], "{name}: {k}");
        }
        assert_eq!(schunk["cparams"]["codec"], want["codec"], "{name}: codec");
        assert_eq!(
            schunk["cparams"]["typesize"], want["typesize"],
            "{name}: typesize"
        );
        if want["kind"] == "array" {
            for k in ["filters", "filters_meta", "blocksize"] {
                assert_eq!(schunk["cparams"][k], want[k], "{name}: {k}");
            }
        }
        assert_eq!(schunk["vlmeta"], want["vlmeta"], "{name}: vlmeta");
        let all = Selection::all(ds.layout().shape());
        assert_eq!(ds.read(&all).unwrap(), raw, "{name}: data");
        for n in 0..ds.nchunks() {
            assert!(
                !ds.chunk_is_uninit(n).unwrap(),
                "{name}: chunk {n} is filled"
            );
        }
        for s in want["slices"].as_array().into_iter().flatten() {
            let spec = SliceSpec::parse(s["slice"].as_str().unwrap()).unwrap();
            let sel = Selection::new(&spec, ds.layout().shape()).unwrap();
            assert_eq!(
                serde_json::json!(sel.shape()),
                s["shape"],
                "{name}[{spec}]: shape"
            );
            assert_eq!(
                ds.read(&sel).unwrap(),
                hex(s["raw"].as_str().unwrap()),
                "{name}[{spec}]: data"
            );
        }
    }
}

#[test]
fn python_uninitialised_arrays_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    python_datasets(dir.path());
    let path = dir.path().join("uninit.b2nd.x");
    let ds = Dataset::open_as(&path, cat2_format::Kind::Array).unwrap();
    assert_eq!(ds.nchunks(), 3);
    for n in 0..3 {
        assert!(ds.chunk_is_uninit(n).unwrap(), "chunk {n}");
    }
    let all = Selection::all(ds.layout().shape());
    assert!(matches!(
        ds.read(&all),
        Err(cat2_format::FormatError::ChunkUnavailable { .. })
    ));
}

#[test]
fn files_and_buffers_we_write_open_in_python() {
    let src_dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut manifest = Vec::new();
    let mut add = |file: &str, how: &str, raw: &[u8], extra: Value| {
        let raw_name = format!("{file}.expect");
        std::fs::write(out.path().join(&raw_name), raw).unwrap();
        let mut e = serde_json::json!({"file": file, "how": how, "expect_raw": raw_name});
        if let (Some(e), Some(x)) = (e.as_object_mut(), extra.as_object()) {
            e.extend(x.clone());
        }
        manifest.push(e);
    };
    // Cache files of every python-written dataset, filled in reverse order.
    for (path, want, raw) in python_datasets(src_dir.path()) {
        let src = Dataset::open(&path).unwrap();
        let file = path.file_name().unwrap().to_str().unwrap().to_owned();
        let mut cache = CacheFile::create(&out.path().join(&file), src.meta()).unwrap();
        for n in (0..src.nchunks()).rev() {
            cache.put(n, &src.raw_chunk(n).unwrap()).unwrap();
            if n % 2 == 0 {
                cache.flush().unwrap();
            }
        }
        cache.flush().unwrap();
        let mut extra = serde_json::json!({"vlmeta": want["vlmeta"]});
        if want["kind"] == "array" {
            extra["dtype"] = want["dtype"].clone();
            extra["shape"] = want["shape"].clone();
        }
        add(&file, "open", &raw, extra);
    }
    // A plain file's cache (.b2), as the subscriber serves it for download.
    let text = b"line one\nline two\n".repeat(100_000);
    let plain = src_dir.path().join("notes.txt");
    std::fs::write(&plain, &text).unwrap();
    let src = Dataset::open(&plain).unwrap();
    assert_eq!(src.nchunks(), 2);
    let mut cache = CacheFile::create(&out.path().join("notes.txt.b2"), src.meta()).unwrap();
    for n in [1, 0] {
        cache.put(n, &src.raw_chunk(n).unwrap()).unwrap();
    }
    cache.flush().unwrap();
    add("notes.txt.b2", "open", &text, serde_json::json!({}));
    // Result encodings.
    let data: Vec<u8> = (0..200u16).flat_map(u16::to_le_bytes).collect();
    std::fs::write(
        out.path().join("r2d.cframe"),
        encode::b2nd_cframe("<u2", &[10, 20], &data).unwrap(),
    )
    .unwrap();
    add(
        "r2d.cframe",
        "cframe",
        &data,
        serde_json::json!({"dtype": "uint16", "shape": [10, 20]}),
    );
    std::fs::write(
        out.path().join("r0.cframe"),
        encode::b2nd_cframe("<i4", &[0, 20], &[]).unwrap(),
    )
    .unwrap();
    add(
        "r0.cframe",
        "cframe",
        &[],
        serde_json::json!({"dtype": "int32", "shape": [0, 20]}),
    );
    let s: Vec<u8> = b"foobar".repeat(7);
    std::fs::write(
        out.path().join("rs.cframe"),
        encode::b2nd_cframe("|S6", &[7], &s).unwrap(),
    )
    .unwrap();
    add(
        "rs.cframe",
        "cframe",
        &s,
        serde_json::json!({"dtype": "|S6", "shape": [7]}),
    );
    let big: Vec<u8> = (0..3_000_000u32).flat_map(u32::to_le_bytes).collect();
    std::fs::write(
        out.path().join("rbig.cframe"),
        encode::b2nd_cframe("<u4", &[1000, 3000], &big).unwrap(),
    )
    .unwrap();
    add(
        "rbig.cframe",
        "cframe",
        &big,
        serde_json::json!({"dtype": "uint32", "shape": [1000, 3000]}),
    );
    std::fs::write(
        out.path().join("rb.schunk"),
        encode::schunk_cframe(1, &text).unwrap(),
    )
    .unwrap();
    add("rb.schunk", "schunk_cframe", &text, serde_json::json!({}));
    std::fs::write(
        out.path().join("rb.chunk"),
        encode::single_chunk(1, b"Hello world!").unwrap(),
    )
    .unwrap();
    add("rb.chunk", "chunk", b"Hello world!", serde_json::json!({}));
    std::fs::write(
        out.path().join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    let said = run_python("check_ours.py", &[out.path()]);
    assert!(
        said.starts_with(&format!("ok {}", manifest.len())),
        "{said}"
    );
}
