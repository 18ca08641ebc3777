//! Chunk and block replies from publishers: a chunk (in parts, as it arrives) is checked
//! against its dataset's metadata before anything of it is trusted, and only a chunk that
//! passes is decoded (c-blosc2 never disagrees with the check about its header); a one-block reply is checked and decoded as the subscriber does.
#![no_main]

use std::sync::OnceLock;

use cat2_format::{CacheFile, Dataset, Meta};
use libfuzzer_sys::fuzz_target;

/// A u16 64×64 array of 2 chunks of 8 blocks (kept for the whole run).
fn meta() -> &'static Meta {
    static M: OnceLock<Meta> = OnceLock::new();
    M.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("a.b2nd");
        let data: Vec<u8> = (0..4096u16).flat_map(u16::to_le_bytes).collect();
        cat2_format::encode::write_b2nd_file(&p, "<u2", &[64, 64], &[32, 64], &[4, 64], &data, &[])
            .expect("an example array");
        Dataset::open(&p).expect("it opens").meta().clone()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, raw)) = data.split_first() else {
        return;
    };
    let n = u64::from(head & 1);
    let cut = usize::from(head >> 1).min(raw.len());
    let parts = [&raw[..cut], &raw[cut..]];
    if CacheFile::verify_parts(meta(), n, &parts).is_ok() {
        let whole = raw.to_vec();
        // The structure check proves lengths, not contents: decoding may still fail on a
        // stream's bytes (an error, never a crash), but never on a header it let through.
        match cat2_format::chunk::decompress_standalone(&whole) {
            Ok(out) => assert_eq!(out.len(), 32 * 64 * 2),
            Err(e) => assert!(!format!("{e:?}").contains("InvalidHeader"), "{e:?}"),
        }
    }
    let _ = cat2_format::decode_one_block(raw, 4 * 64 * 2);
});
