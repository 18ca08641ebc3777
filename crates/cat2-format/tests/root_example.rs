//! The committed `root-example/` is what `cat2-example` makes, and its `info` JSON matches
//! Caterva2 0.2.0's field by field (spec §2.5, captured in `fixtures/`).
//!
//! Compressed sizes (`cbytes`, `cratio`) are not compared: they depend on the codec library's
//! version (Caterva2's captures come from blosc2 2.5.1, we link c-blosc2 2.21), and `urlpath`
//! is a server-local path. Plain files use 1 MiB chunks, not blosc2 2.5.1's 16 MiB default,
//! so `README.md`'s `chunkshape`/`chunksize` differ by design.

use std::path::{Path, PathBuf};

use cat2_array::Selection;
use cat2_format::Dataset;

const FILES: &[&str] = &[
    "README.md",
    "ds-hello.b2frame",
    "ds-1d.b2nd",
    "ds-1d-b.b2nd",
    "ds-sc-attr.b2nd",
    "dir1/ds-2d.b2nd",
    "dir1/ds-3d.b2nd",
    "dir2/ds-4d.b2nd",
];

fn committed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../root-example")
}

fn read_all(path: &Path) -> (cat2_format::Meta, Vec<u8>) {
    let ds = Dataset::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let sel = Selection::all(ds.layout().shape());
    let data = ds.read(&sel).unwrap();
    (ds.meta().clone(), data)
}

#[test]
fn committed_files_equal_what_the_command_makes() {
    let fresh = tempfile::tempdir().unwrap();
    cat2_format::example::write_root_example(fresh.path()).unwrap();
    let mut listed: Vec<String> = walk(&committed());
    listed.sort();
    let mut expected: Vec<String> = FILES.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(
        listed, expected,
        "root-example holds exactly the 8 files of spec §5"
    );
    for f in FILES {
        let (m1, d1) = read_all(&committed().join(f));
        let (m2, d2) = read_all(&fresh.path().join(f));
        assert_eq!(d1, d2, "{f}: data");
        assert_eq!(m1.array, m2.array, "{f}: geometry and dtype");
        assert_eq!(m1.vlmeta, m2.vlmeta, "{f}: vlmeta");
        assert_eq!(
            (m1.nbytes, m1.nchunks, m1.chunksize),
            (m2.nbytes, m2.nchunks, m2.chunksize),
            "{f}"
        );
    }
}

#[test]
fn data_is_what_spec_section_5_says() {
    let (_, d) = read_all(&committed().join("ds-1d.b2nd"));
    let want: Vec<u8> = (0..1000i64).flat_map(i64::to_le_bytes).collect();
    assert_eq!(d, want);
    let (_, d) = read_all(&committed().join("ds-hello.b2frame"));
    assert_eq!(d, b"Hello world!".repeat(100));
    let (_, d) = read_all(&committed().join("README.md"));
    assert_eq!(d, cat2_format::example::README.as_bytes());
    let (_, d) = read_all(&committed().join("dir2/ds-4d.b2nd"));
    let c: Vec<f64> = d
        .chunks(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(&c[..6], &[0.0, 0.0, 1.0, 1.0, 2.0, 2.0]);
    assert_eq!(c.len(), 240);
}

#[test]
fn info_matches_caterva2_field_by_field() {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/info-caterva2-0.2.0.json")).unwrap();
    for f in FILES {
        let ds = Dataset::open(&committed().join(f)).unwrap();
        let mut ours = ds.info("(path)");
        let mut theirs = fixture[*f].clone();
        // Same keys in the same order, at both levels.
        let keys =
            |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&ours), keys(&theirs), "{f}: top-level keys");
        let (o, t) = if ours.get("schunk").is_some() {
            (&mut ours["schunk"], &mut theirs["schunk"])
        } else {
            (&mut ours, &mut theirs)
        };
        assert_eq!(keys(o), keys(t), "{f}: schunk keys");
        assert_eq!(
            keys(&o["cparams"]),
            keys(&t["cparams"]),
            "{f}: cparams keys"
        );
        let mut skip = vec!["cbytes", "cratio", "urlpath"];
        if *f == "README.md" {
            skip.extend(["chunkshape", "chunksize"]);
            assert_eq!(o["chunksize"], 1 << 20);
        }
        for k in skip {
            o.as_object_mut().unwrap().remove(k);
            t.as_object_mut().unwrap().remove(k);
        }
        assert_eq!(ours, theirs, "{f}");
    }
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            out.extend(walk(&p).into_iter().map(|s| format!("{name}/{s}")));
        } else {
            out.push(p.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    out
}
