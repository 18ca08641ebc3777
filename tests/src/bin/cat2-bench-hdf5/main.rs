//! `cat2-bench-hdf5`: cat2's HDF5 roots against Caterva2 0.2.0's HDF5 publisher, side by side,
//! on the same machine and files.
//!
//! `cargo build --release --bins && target/release/cat2-bench-hdf5 [--reps N] [--scale F]
//! [--out FILE] [--no-reference] [--contiguous-gb G]`
//!
//! Two files are made once (with h5py, from the interop venv `.tools/venv`) under the git-ignored
//! `bench-data/hdf5/`: `deflate-N.h5`, one float32 `data` of N×512×512 (N = 400 at scale 1,
//! ~400 MB uncompressed; chunks 16×256×256, gzip level 1 + shuffle), and `blosc2-M.h5`, one float32
//! `data` of M×512×512 (M = 100, ~100 MB; chunks 10×256×256, hdf5plugin's Blosc2 filter, LZ4
//! level 5 + shuffle). Each file is served as its own root, by `cat2pub` (on nats-server, with
//! cat2bro and cat2sub) and by the reference (`../shared/compat/start-reference.sh`, one
//! publisher per file). Figures, medians of `--reps`:
//! - cold small slice: one 1×64×64 window, just after the subscriber was restarted with an empty
//!   cache; each repetition reads a window in another HDF5 chunk, so publisher-side caches do not
//!   help either;
//! - cold full download: `/api/download/<root>/data.b2nd`, then the returned URL, streamed;
//! - publisher peak RSS: VmHWM of the publisher process over the whole run (its start included);
//! - for the Blosc2 file, the NATS floor: its stored bytes through nats-server as 1 MiB messages
//!   between two clients (cat2 forwards those chunks untouched, so this bounds its download);
//! - for the deflate file, the conversion rate of `cat2import` against h5py reading each chunk
//!   plus python-blosc2 compressing it (ZSTD level 1, shuffle: what cat2 announces), in this run;
//! - with `--contiguous-gb G`, a contiguous float64 dataset of ~G GB (`contiguous.rs`): cold
//!   download and the publisher's peak RSS (cat2 alone: the reference loads such datasets whole).
//!
//! The services are taken from next to this program (`target/release/`), as `cat2-bench` does.
//! It prints one markdown table (and appends it to `--out`); it does not assert. Progress goes to
//! stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cat2_e2e::cluster::{Cluster, Proc, bin, wait_until};

/// cat2's HDF5 roots against Caterva2 0.2.0's HDF5 publisher: prints one table of medians.
#[derive(clap::Parser)]
#[command(version)]
struct Args {
    /// Repetitions of each measure (medians are reported).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Scales the first dimension of both files (1 = ~400 MB deflate, ~100 MB Blosc2); e.g.
    /// 0.25 for a quick run. Files of each size are made once and kept.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Appends the table (with the sizes used) to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// cat2 alone (no reference deployment needed); conversion rates and floors still run.
    #[arg(long)]
    no_reference: bool,
    /// Also serves a contiguous float64 dataset of this many GB (0: not): the publisher's
    /// peak RSS over its cold download (made once under bench-data/hdf5/).
    #[arg(long, default_value_t = 0.0)]
    contiguous_gb: f64,
}

mod contiguous;

/// One served file.
struct File {
    /// Short name for the table, also the root's name (`h5<kind>`).
    kind: &'static str,
    path: PathBuf,
    /// Planes (first dimension) and planes per HDF5 chunk.
    planes: usize,
    chunk_planes: usize,
}

impl File {
    fn root(&self) -> String {
        format!("h5{}", self.kind)
    }

    fn uncompressed(&self) -> usize {
        self.planes * 512 * 512 * 4
    }

    /// The window of repetition `r`: one 64×64 piece of one plane, in another chunk along the
    /// first axis each time (wrapping when the file has fewer chunks than repetitions).
    fn window(&self, r: usize) -> String {
        let nchunks = self.planes / self.chunk_planes;
        let plane = (r % nchunks) * self.chunk_planes + self.chunk_planes / 2;
        format!("{plane},100:164,100:164")
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

/// Runs `script` with the interop venv's python and returns its stdout.
fn python(script: &str, args: &[&str]) -> String {
    let py = cat2_testkit::tools::python().unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(&py)
        .arg("-c")
        .arg(script)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", py.display()));
    assert!(out.status.success(), "python failed ({})", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Smooth values (a sum of sines) plus a little quantised noise: compressible, as measured data
/// usually is, but not trivially so. Written a chunk's planes at a time to bound memory.
const MAKE: &str = r#"
import os, sys, numpy as np, h5py, hdf5plugin
path, kind, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
tmp = path + ".tmp"
with h5py.File(tmp, "w") as f:
    if kind == "deflate":
        step = 16
        ds = f.create_dataset("data", shape=(n, 512, 512), dtype="f4", chunks=(step, 256, 256),
                              compression="gzip", compression_opts=1, shuffle=True)
    else:
        step = 10
        ds = f.create_dataset("data", shape=(n, 512, 512), dtype="f4", chunks=(step, 256, 256),
                              **hdf5plugin.Blosc2(cname="lz4", clevel=5, filters=hdf5plugin.Blosc2.SHUFFLE))
    j = np.sin(np.arange(512, dtype="f4") * 0.03)[:, None]
    k = np.cos(np.arange(512, dtype="f4") * 0.02)[None, :]
    rng = np.random.default_rng(42)
    for i0 in range(0, n, step):
        i = np.arange(i0, min(n, i0 + step), dtype="f4")
        block = np.sin(i * 0.05)[:, None, None] + j + k
        block += (rng.integers(0, 8, block.shape) * 1e-3).astype("f4")
        ds[i0:i0 + len(i)] = block
os.replace(tmp, path)
"#;

/// The dataset's stored (compressed) bytes.
const STORED: &str = r#"
import sys, h5py
print(h5py.File(sys.argv[1], "r")["data"].id.get_storage_size())
"#;

/// What `cat2import` does for a deflate dataset, with the Python tools: h5py reads each chunk,
/// python-blosc2 compresses it with the cparams cat2 announces. Prints seconds and bytes.
const CONVERT: &str = r#"
import sys, time, h5py, blosc2
ds = h5py.File(sys.argv[1], "r")["data"]
t = time.perf_counter()
n = 0
for s in ds.iter_chunks():
    a = ds[s]
    blosc2.compress2(a.tobytes(), typesize=4, codec=blosc2.Codec.ZSTD, clevel=1,
                     filters=[blosc2.Filter.SHUFFLE])
    n += a.nbytes
print(time.perf_counter() - t, n)
"#;

fn make_file(dir: &Path, kind: &'static str, planes: usize, chunk_planes: usize) -> File {
    let path = dir.join(format!("{kind}-{planes}.h5"));
    if !path.exists() {
        std::fs::create_dir_all(dir).expect("bench-data/hdf5");
        eprintln!("making {} ...", path.display());
        python(
            MAKE,
            &[&path.display().to_string(), kind, &planes.to_string()],
        );
    }
    File {
        kind,
        path,
        planes,
        chunk_planes,
    }
}

/// GETs `url`, consuming the body as it streams in (as a client writing to disk would): time
/// and bytes.
async fn get(http: &reqwest::Client, url: &str) -> (Duration, usize) {
    let t = Instant::now();
    let mut r = http
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    let mut n = 0;
    while let Some(part) = r.chunk().await.unwrap_or_else(|e| panic!("GET {url}: {e}")) {
        n += part.len();
    }
    (t.elapsed(), n)
}

/// `/api/download/{root}/data.b2nd`, then the URL it answers: the whole time, and bytes.
async fn download(http: &reqwest::Client, base: &str, root: &str) -> (Duration, usize) {
    let t = Instant::now();
    let url = format!("{base}/api/download/{root}/data.b2nd");
    let r = http
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    let file: String = r
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: not a JSON string: {e}"));
    let fetched = t.elapsed();
    let (_, n) = get(http, &file).await;
    if std::env::var_os("CAT2_BENCH_VERBOSE").is_some() {
        eprintln!(
            "  {root}: /api/download (all chunks cached) {:.3} s, then the file {:.3} s",
            fetched.as_secs_f64(),
            (t.elapsed() - fetched).as_secs_f64()
        );
    }
    (t.elapsed(), n)
}

/// Subscribes, retrying until the root is announced (a publisher scanning a large file first).
async fn subscribe(http: &reqwest::Client, base: &str, root: &str) {
    wait_until(
        &format!("{root} subscribed"),
        Duration::from_secs(600),
        || async {
            let r = http
                .post(format!("{base}/api/subscribe/{root}"))
                .send()
                .await
                .ok()?;
            r.status().is_success().then_some(())
        },
    )
    .await;
}

/// The peak resident set (VmHWM) of a process, in bytes (0 when it is gone).
fn peak_rss(pid: u32) -> u64 {
    cat2_e2e::bench::proc_status_bytes(pid, "VmHWM")
}

struct Reference {
    state: PathBuf,
    compat: PathBuf,
}

impl Reference {
    fn restart_sub(&self) {
        let ok = Command::new("bash")
            .arg(self.compat.join("restart-sub.sh"))
            .arg(&self.state)
            .arg("--wipe")
            .status()
            .expect("bash");
        assert!(ok.success(), "restart-sub.sh failed");
    }

    /// The pid start-reference.sh recorded for a service (`sub`, `pub.NAME`).
    fn pid(&self, name: &str) -> u32 {
        let f = self.state.join(format!("pids/{name}.pid"));
        std::fs::read_to_string(&f)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(self.compat.join("stop-reference.sh"))
            .arg(&self.state)
            .stdout(Stdio::null())
            .status();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// `bytes` through nats-server as 1 MiB messages, one publishing client and one subscribing
/// client: what moving the chunks costs at the least (cat2-bench's NATS floor).
async fn nats_floor(cluster: &Cluster, bytes: usize) -> f64 {
    let publ = async_nats::connect(cluster.nats.url())
        .await
        .expect("connect");
    let subc = async_nats::connect(cluster.nats.url())
        .await
        .expect("connect");
    let mut sub = subc.subscribe("bench.floor").await.expect("subscribe");
    subc.flush().await.expect("flush");
    let payload = bytes::Bytes::from(vec![7u8; (1 << 20) - 1024]);
    let count = bytes.div_ceil(payload.len());
    let t = Instant::now();
    let recv = tokio::spawn(async move {
        for _ in 0..count {
            futures::StreamExt::next(&mut sub).await.expect("a message");
        }
    });
    for _ in 0..count {
        publ.publish("bench.floor", payload.clone())
            .await
            .expect("publish");
    }
    publ.flush().await.expect("flush");
    recv.await.expect("receiver");
    t.elapsed().as_secs_f64()
}

/// `cat2import FILE <fresh dir>`: wall seconds (process start included).
fn cat2import(file: &Path, out: &Path) -> f64 {
    std::fs::remove_dir_all(out).ok();
    let t = Instant::now();
    let st = Command::new(bin("cat2import"))
        .arg(file)
        .arg(out)
        .stderr(Stdio::null())
        .status()
        .expect("cat2import");
    let secs = t.elapsed().as_secs_f64();
    assert!(st.success(), "cat2import {} failed: {st}", file.display());
    std::fs::remove_dir_all(out).ok();
    secs
}

/// A table row: two optional figures and the target.
struct Row {
    name: String,
    a: f64,
    b: f64,
    target: &'static str,
}

fn row(name: impl Into<String>, a: f64, b: f64, target: &'static str) -> Row {
    Row {
        name: name.into(),
        a,
        b,
        target,
    }
}

#[tokio::main]
async fn main() {
    let args = <Args as clap::Parser>::parse();
    let reps = args.reps.max(1);
    let top = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let data = top.join("bench-data/hdf5");
    let compat = std::env::var_os("CAT2_SHARED")
        .map_or_else(|| top.join("../shared"), PathBuf::from)
        .join("compat");
    // Whole HDF5 chunks only, so that every chunk is a full one.
    let planes =
        |base: f64, step: usize| ((base * args.scale / step as f64).round() as usize).max(1) * step;
    let files = [
        make_file(&data, "deflate", planes(400.0, 16), 16),
        make_file(&data, "blosc2", planes(100.0, 10), 10),
    ];
    let stored: Vec<usize> = files
        .iter()
        .map(|f| {
            python(STORED, &[&f.path.display().to_string()])
                .trim()
                .parse()
                .expect("a storage size")
        })
        .collect();
    for (f, s) in files.iter().zip(&stored) {
        eprintln!(
            "{}: {} MB uncompressed, {} MB stored",
            f.path.display(),
            f.uncompressed() / 1_000_000,
            s / 1_000_000
        );
    }

    // Ours: one publisher per file, so that each one's peak RSS is its file's.
    let mut c = Cluster::new(&[]);
    let _bro = c.broker();
    let pubs: Vec<Proc> = files
        .iter()
        .map(|f| c.publisher(&f.root(), &f.path, f.kind, false))
        .collect();
    let mut sub: Proc = c.subscriber(600.0);
    let ours_base = |p: &Proc| format!("http://{}", p.http.clone().expect("an address"));

    // The reference, on ports of its own.
    let sub_p = free_port();
    let reference = (!args.no_reference).then(|| {
        let state = c.path("reference");
        eprintln!("starting the reference Caterva2 0.2.0 deployment (copies the files) ...");
        let mut cmd = Command::new("bash");
        cmd.arg(compat.join("start-reference.sh")).arg(&state);
        for f in &files {
            cmd.arg(format!(
                "{}={}@127.0.0.1:{}",
                f.root(),
                f.path.display(),
                free_port()
            ));
        }
        let st = cmd
            .env("BRO", format!("127.0.0.1:{}", free_port()))
            .env("SUB", format!("127.0.0.1:{sub_p}"))
            .env("START_TIMEOUT", "600")
            // Its progress lines go with ours, so that stdout holds the table alone.
            .stdout(Stdio::from(std::io::stderr()))
            .status()
            .expect("bash");
        // Dropped (and stopped) on the way out even when it failed half-way.
        let r = Reference { state, compat };
        assert!(st.success(), "start-reference.sh failed");
        r
    });
    let ref_base = format!("http://127.0.0.1:{sub_p}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(1800))
        .build()
        .expect("an HTTP client");

    // Per side and file: cold slices, cold downloads. One wiped restart of the subscriber per
    // repetition and side serves both figures of both files: slices first, while nothing is
    // cached, then downloads (each root's own cache).
    let nsides = if reference.is_some() { 2 } else { 1 };
    let mut slice = vec![[vec![], vec![]]; files.len()];
    let mut full = vec![[vec![], vec![]]; files.len()];
    let mut full_bytes = vec![0usize; files.len()];
    for r in 0..reps {
        for side in 0..nsides {
            let base = if side == 0 {
                sub.terminate();
                std::fs::remove_dir_all(c.path("sub")).ok();
                sub = c.subscriber(600.0);
                ours_base(&sub)
            } else if let Some(reference) = &reference {
                reference.restart_sub();
                ref_base.clone()
            } else {
                unreachable!("one side without the reference")
            };
            for f in &files {
                subscribe(&http, &base, &f.root()).await;
            }
            for (i, f) in files.iter().enumerate() {
                let url = format!(
                    "{base}/api/fetch/{}/data.b2nd?slice_={}&prefer_schunk=true",
                    f.root(),
                    f.window(r)
                );
                let t = get(&http, &url).await.0.as_secs_f64();
                eprintln!(
                    "rep {r} side {side} {}: cold slice {:.1} ms",
                    f.kind,
                    t * 1e3
                );
                slice[i][side].push(t);
            }
            for (i, f) in files.iter().enumerate() {
                let (t, n) = download(&http, &base, &f.root()).await;
                eprintln!(
                    "rep {r} side {side} {}: cold download {:.2} s, {} MB",
                    f.kind,
                    t.as_secs_f64(),
                    n / 1_000_000
                );
                full[i][side].push(t.as_secs_f64());
                if side == 0 {
                    full_bytes[i] = n;
                }
            }
        }
    }
    // VmHWM covers the whole life of each publisher: its scan of the file at start and every
    // request since.
    let rss: Vec<[f64; 2]> = files
        .iter()
        .zip(&pubs)
        .map(|(f, p)| {
            let ours = peak_rss(p.pid().expect("cat2pub running")) as f64 / 1e6;
            let theirs = reference.as_ref().map_or(f64::NAN, |r| {
                peak_rss(r.pid(&format!("pub.{}", f.root()))) as f64 / 1e6
            });
            [ours, theirs]
        })
        .collect();
    drop(reference);

    // The Blosc2 file's floor: its stored bytes through nats-server.
    let mut floors = vec![];
    for _ in 0..reps {
        floors.push(nats_floor(&c, stored[1]).await);
    }
    let floor = median(floors);

    // The deflate file's conversion, cat2import against h5py + python-blosc2, alternating.
    let (mut ours_conv, mut py_conv) = (vec![], vec![]);
    let deflate = &files[0];
    for r in 0..reps {
        let t = cat2import(&deflate.path, &c.path("import"));
        let out = python(CONVERT, &[&deflate.path.display().to_string()]);
        let mut it = out.split_whitespace();
        let tp: f64 = it.next().and_then(|v| v.parse().ok()).expect("seconds");
        let n: usize = it.next().and_then(|v| v.parse().ok()).expect("bytes");
        assert_eq!(
            n,
            deflate.uncompressed(),
            "the Python loop read every chunk"
        );
        eprintln!("rep {r} conversion: cat2import {t:.2} s, h5py + python-blosc2 {tp:.2} s");
        ours_conv.push(deflate.uncompressed() as f64 / 1e6 / t);
        py_conv.push(deflate.uncompressed() as f64 / 1e6 / tp);
    }

    let mut rows = Vec::new();
    if args.contiguous_gb > 0.0 {
        rows.extend(contiguous::measure(&mut c, &data, args.contiguous_gb, &http, &sub).await);
    }
    for (i, f) in files.iter().enumerate() {
        let name = format!("{}.h5", f.kind);
        rows.push(row(
            format!("{name}: cold small slice (ms)"),
            median(slice[i][0].clone()) * 1e3,
            median(slice[i][1].clone()) * 1e3,
            "≤ 1/10",
        ));
        rows.push(row(
            format!("{name}: cold full download (s)"),
            median(full[i][0].clone()),
            median(full[i][1].clone()),
            "",
        ));
        rows.push(row(
            format!("{name}: publisher peak RSS (MB)"),
            rss[i][0],
            rss[i][1],
            "≤ 200 MB",
        ));
    }
    rows.push(row(
        "blosc2.h5: NATS floor, stored bytes as 1 MiB messages (s)",
        floor,
        f64::NAN,
        "",
    ));
    rows.push(row(
        "blosc2.h5: cold full download / NATS floor",
        median(full[1][0].clone()) / floor,
        f64::NAN,
        "≤ 2",
    ));
    rows.push(row(
        "deflate.h5: conversion rate (MB/s); 2nd column: h5py + python-blosc2",
        median(ours_conv),
        median(py_conv),
        "≥ 1/1.5 (0.67)",
    ));

    let cell = |v: f64| {
        if v.is_finite() {
            format!("{v:.3}")
        } else {
            String::new()
        }
    };
    let mut table = String::from(
        "| figure | cat2 | Caterva2 0.2.0 | cat2 / Caterva2 | target |\n| --- | --- | --- | --- | --- |\n",
    );
    for r in &rows {
        let ratio = if r.b.is_finite() && r.b != 0.0 {
            cell(r.a / r.b)
        } else {
            String::new()
        };
        table.push_str(&format!(
            "| {} | {} | {} | {ratio} | {} |\n",
            r.name,
            cell(r.a),
            cell(r.b),
            r.target
        ));
    }
    println!("{table}");
    if let Some(out) = &args.out {
        let sizes = files
            .iter()
            .zip(&stored)
            .map(|(f, s)| {
                format!(
                    "`{}.h5` float32 {}×512×512 (chunks {}×256×256), {} MB uncompressed, {} MB stored",
                    f.kind,
                    f.planes,
                    f.chunk_planes,
                    f.uncompressed() / 1_000_000,
                    s / 1_000_000
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let md = format!(
            "\n## HDF5 roots\n\nMedians of {reps} repetitions; cold = subscriber cache wiped and \
             restarted. Files: {sizes}. Downloaded: {} MB (deflate), {} MB (Blosc2).\n\n\
             Reproduce: `cargo build --release --bins && target/release/cat2-bench-hdf5 --reps {reps} \
             --scale {} --contiguous-gb {}`\n\n{table}",
            full_bytes[0] / 1_000_000,
            full_bytes[1] / 1_000_000,
            args.scale,
            args.contiguous_gb
        );
        cat2_e2e::append_section(out, &md);
    }
}
