//! Frame files (a publisher's `.b2nd` / `.b2frame` files, a subscriber's cache on disk): the
//! structure is checked before c-blosc2 parses anything, and whatever opens reads without
//! crashing.
#![no_main]

use cat2_format::{Dataset, Kind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = dir.path().join("x.b2nd");
    std::fs::write(&p, data).expect("write");
    for kind in [Kind::Array, Kind::Frame] {
        let Ok(ds) = Dataset::open_as(&p, kind) else {
            continue;
        };
        let mut buf = Vec::new();
        for n in 0..ds.nchunks().min(4) {
            let _ = ds.raw_chunk_into(n, &mut buf);
        }
        let nbytes = ds.layout().shape().iter().product::<u64>() * ds.layout().itemsize() as u64;
        if nbytes <= 1 << 20 {
            let _ = ds.read(&cat2_array::Selection::all(ds.layout().shape()));
        }
    }
});
