//! HDF5 files written by h5py (and hdf5plugin for Blosc2 chunks) served as roots: every case
//! of `tests/python/write_hdf5.py` is listed in Caterva2 0.2.0's order with the dtype, shape,
//! chunks and attributes 0.2.0 would give it, and reads whole and in boxes equal to h5py's
//! values (sparse chunks, edge chunks, every filter, byte orders, scalars); datasets that cannot
//! be represented are skipped.

use std::path::Path;

use cat2_array::Selection;
use cat2_e2e::run_python;
use serde_json::Value;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The items of box `sel` of a C-order array of `shape` (reference, item by item).
fn extract(raw: &[u8], shape: &[u64], sel: &Selection, itemsize: usize) -> Vec<u8> {
    let ext = sel.extent();
    let n: u64 = ext.iter().product();
    let mut out = Vec::with_capacity(n as usize * itemsize);
    for i in 0..n {
        let mut rem = i;
        let mut idx = vec![0u64; ext.len()];
        for d in (0..ext.len()).rev() {
            idx[d] = sel.ranges()[d].start + rem % ext[d];
            rem /= ext[d];
        }
        let mut off = 0u64;
        for d in 0..shape.len() {
            off = off * shape[d] + idx[d];
        }
        let at = off as usize * itemsize;
        out.extend_from_slice(&raw[at..at + itemsize]);
    }
    out
}

/// Deterministic pseudo-random boxes (xorshift), a few per dataset.
fn boxes(shape: &[u64], seed: u64, n: usize) -> Vec<Selection> {
    let mut s = seed | 1;
    let mut next = move |m: u64| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s % m.max(1)
    };
    (0..n)
        .map(|_| {
            let ranges = shape
                .iter()
                .map(|&d| {
                    let a = next(d + 1);
                    let b = next(d + 1);
                    a.min(b)..a.max(b)
                })
                .collect();
            Selection::from_ranges(ranges, shape).unwrap()
        })
        .collect()
}

fn cases(dir: &Path) -> Value {
    run_python("write_hdf5.py", &[dir]);
    serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap()
}

#[test]
fn h5py_files_are_served_as_h5py_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let want = cases(dir.path());
    let root =
        cat2_hdf5::open_root(&dir.path().join("cases.h5"), cat2_hdf5::Listing::Full).unwrap();
    let order: Vec<&str> = root.datasets.iter().map(|d| d.path.as_str()).collect();
    let want_order: Vec<&str> = want["order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        order, want_order,
        "listing (0.2.0's order, unsupported ones skipped)"
    );
    let mut etags = std::collections::HashMap::new();
    for d in &root.datasets {
        let w = &want["datasets"][&d.path];
        let meta = d.dataset.meta();
        let a = meta.array.as_ref().unwrap();
        assert_eq!(
            cat2_array::DType::parse(&a.dtype).unwrap(),
            cat2_array::DType::parse(w["dtype"].as_str().unwrap()).unwrap(),
            "{}: dtype {}",
            d.path,
            a.dtype
        );
        let shape: Vec<u64> = serde_json::from_value(w["shape"].clone()).unwrap();
        assert_eq!(a.shape, shape, "{}: shape", d.path);
        if let Some(c) = w["chunks"].as_array() {
            let c: Vec<u64> = c.iter().map(|v| v.as_u64().unwrap()).collect();
            assert_eq!(a.chunks, c, "{}: HDF5 chunks kept", d.path);
        }
        let vl: Vec<(String, Vec<u8>)> = meta
            .vlmeta
            .iter()
            .map(|l| (l.name.clone(), l.content.clone()))
            .collect();
        let want_vl: Vec<(String, Vec<u8>)> = w["vlmeta"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), hex(v.as_str().unwrap())))
            .collect();
        assert_eq!(vl, want_vl, "{}: vlmeta packed as 0.2.0 packs it", d.path);
        let raw = std::fs::read(dir.path().join(w["raw"].as_str().unwrap())).unwrap();
        let all = d.dataset.read(&Selection::all(&shape)).unwrap();
        assert!(all == raw, "{}: whole dataset differs from h5py's", d.path);
        let itemsize = d.dataset.layout().itemsize();
        for sel in boxes(&shape, d.path.len() as u64 * 7919, 6) {
            let got = d.dataset.read(&sel).unwrap();
            assert!(
                got == extract(&raw, &shape, &sel, itemsize),
                "{}: box {:?} differs",
                d.path,
                sel.ranges()
            );
        }
        // Blocks as the publisher sends them for small reads decode to the chunk's bytes
        // (first and last chunk: edges and padding), each made alone where it can be.
        let n = d.dataset.nchunks();
        for c in [0, n.saturating_sub(1)].into_iter().filter(|_| n > 0) {
            let chunk = d.dataset.raw_chunk(c).unwrap();
            let whole = cat2_format::chunk::decompress_standalone(&chunk).unwrap();
            let bb = d.dataset.layout().block_bytes();
            for b in 0..whole.len().div_ceil(bb.max(1)) as u64 {
                if let Some((one, size)) = d.dataset.one_block(c, b).unwrap() {
                    let block = cat2_format::decode_one_block(&one, size).unwrap();
                    let at = b as usize * bb;
                    assert_eq!(
                        block,
                        whole[at..at + size],
                        "{}: chunk {c} block {b}",
                        d.path
                    );
                }
            }
        }
        // Etags name contents: only a soft link's alias of a dataset shares its etag.
        if let Some((other, other_raw)) = etags.insert(d.etag.clone(), (d.path.clone(), raw)) {
            let raw = &etags[&d.etag].1;
            assert!(
                other_raw == *raw && d.path.starts_with("links/"),
                "{}: same etag as {other} for other content",
                d.path
            );
        }
    }
    // Caterva2 0.2.0's listing: hard links only, no compounds (what its suite checks).
    let old =
        cat2_hdf5::open_root(&dir.path().join("cases.h5"), cat2_hdf5::Listing::Caterva2).unwrap();
    let old_order: Vec<&str> = old.datasets.iter().map(|d| d.path.as_str()).collect();
    let want_old: Vec<&str> = want_order
        .iter()
        .copied()
        .filter(|p| !p.starts_with("links/") && !p.starts_with("compound/"))
        .collect();
    assert_eq!(old_order, want_old, "Caterva2 0.2.0 listing");
    // Reopening the same file gives the same etags.
    let again =
        cat2_hdf5::open_root(&dir.path().join("cases.h5"), cat2_hdf5::Listing::Full).unwrap();
    for (a, b) in root.datasets.iter().zip(&again.datasets) {
        assert_eq!(a.etag, b.etag, "{}: etag stable", a.path);
    }
}
