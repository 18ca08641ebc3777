//! The `bench` root the benchmarks share, written by cat2's own writer.

use std::path::Path;

/// The median of `v` (NaN when empty).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

/// Makes the `bench` root in `dir` (once: kept between runs): `cube.b2nd`, float32
/// 384×512×512 (403 MB, chunks 64×256×256, blocks 1×128×256), `random.b2nd` (float64
/// 3200×4096) and `many.b2nd` (10 240 000 int64 in chunks of 1024).
///
/// # Panics
/// When the files cannot be written.
pub fn make_data(dir: &Path) {
    if dir.join("many.b2nd").exists() {
        return;
    }
    std::fs::create_dir_all(dir).unwrap();
    eprintln!("making the bench root in {} ...", dir.display());
    let (a, b, c) = (384usize, 512usize, 512usize);
    let sa: Vec<f32> = (0..a).map(|i| (i as f32 * 0.05).sin()).collect();
    let sb: Vec<f32> = (0..b).map(|j| (j as f32 * 0.03).sin()).collect();
    let sc: Vec<f32> = (0..c).map(|k| (k as f32 * 0.02).cos()).collect();
    let mut cube = Vec::with_capacity(a * b * c * 4);
    for x in &sa {
        for y in &sb {
            for z in &sc {
                cube.extend_from_slice(&(x + y + z).to_le_bytes());
            }
        }
    }
    let w =
        |name: &str, dtype: &str, shape: &[u64], chunks: &[u64], blocks: &[u64], data: &[u8]| {
            cat2_format::encode::write_b2nd_file(
                &dir.join(name),
                dtype,
                shape,
                chunks,
                blocks,
                data,
                &[],
            )
            .unwrap();
        };
    // Blocks are left to Blosc2: what python-blosc2's `compute_chunks_blocks` picks for these
    // chunks with its default cparams (ZSTD level 1, shuffle), fixed here so every machine
    // benchmarks the same files.
    w(
        "cube.b2nd",
        "<f4",
        &[384, 512, 512],
        &[64, 256, 256],
        &[1, 128, 256],
        &cube,
    );
    drop(cube);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let random: Vec<u8> = (0..3200 * 4096)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 11) as f64 / (1u64 << 53) as f64).to_le_bytes()
        })
        .collect();
    w(
        "random.b2nd",
        "<f8",
        &[3200, 4096],
        &[256, 4096],
        &[4, 4096],
        &random,
    );
    let many: Vec<u8> = (0..10_240_000i64).flat_map(i64::to_le_bytes).collect();
    w("many.b2nd", "<i8", &[10_240_000], &[1024], &[1024], &many);
}

/// A size field of `/proc/PID/status` (`VmHWM`, `VmRSS`, …) in bytes; 0 when the process is
/// gone.
pub fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}
