//! `cat2-bench-wan`: cat2 across a WAN link. The hub (a 3-node NATS cluster with the broker
//! and a publisher) and a remote site (a leaf server and a subscriber) are joined by a link
//! shaped in user space (`--mbit`, `--delay-ms` one way; `tc netem` is not available on the
//! machines this runs on), and the figures a remote user sees are printed as a table:
//! cold small slice, cold download against the link floor, a 10 000-chunk file, small reads
//! while a bulk download fills the link (with the default fetch buffer, and one sized to the
//! link), and the bytes that crossed the link.
//!
//! `cargo build --release --bins && target/release/cat2-bench-wan`

use std::path::Path;
use std::time::{Duration, Instant};

use cat2_e2e::cluster::{Cluster, Proc, subscribe, wait_until};
use cat2_testkit::NatsSite;
use cat2_testkit::link::Shape;

#[derive(Debug, clap::Parser)]
#[command(name = "cat2-bench-wan", about = "cat2 across a shaped WAN link")]
struct Args {
    /// Link bandwidth, Mbit/s each way.
    #[arg(long, default_value_t = 100)]
    mbit: u64,
    /// One-way delay, ms (the RTT is twice this).
    #[arg(long, default_value_t = 25)]
    delay_ms: u64,
    /// Cold small slices measured (each of another chunk).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// The fetch buffer of the second small-reads run, bytes [default: 2 × bandwidth × RTT,
    /// at least 1 MiB].
    #[arg(long)]
    buffer: Option<u64>,
    /// Append the table to this file (as a "WAN" section of BENCHMARKS.md, say).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

/// Incompressible float32 128×256×256 in 16 chunks of 32×128×128 (blocks of 1×64×128).
fn write_cube(path: &Path, seed: u64) {
    let mut x = seed | 1;
    let data: Vec<u8> = (0..128 * 256 * 256 / 2)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect();
    cat2_format::encode::write_b2nd_file(
        path,
        "<f4",
        &[128, 256, 256],
        &[32, 128, 128],
        &[1, 64, 128],
        &data,
        &[],
    )
    .unwrap();
}

/// int64 `0..n` in chunks of `chunk` (one block each).
fn write_ints(path: &Path, n: u64, chunk: u64) {
    let data: Vec<u8> = (0..n as i64).flat_map(i64::to_le_bytes).collect();
    cat2_format::encode::write_b2nd_file(path, "<i8", &[n], &[chunk], &[chunk], &data, &[])
        .unwrap();
}

async fn get(http: &reqwest::Client, url: &str) -> usize {
    let mut r = http.get(url).send().await.unwrap();
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    let mut n = 0;
    while let Some(part) = r.chunk().await.unwrap() {
        n += part.len();
    }
    n
}

/// A whole download: seconds.
async fn download(http: &reqwest::Client, base: &str, ds: &str) -> f64 {
    let t = Instant::now();
    let r = http
        .get(format!("{base}/api/download/wan/{ds}"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "download {ds}: {}", r.status());
    let url: String = r.json().await.unwrap();
    get(http, &url).await;
    t.elapsed().as_secs_f64()
}

/// One slice: seconds.
async fn slice(http: &reqwest::Client, base: &str, ds: &str, s: &str) -> f64 {
    let t = Instant::now();
    let (status, _) = cat2_e2e::fetch(http, base, &format!("wan/{ds}"), s).await;
    assert_eq!(status, 200, "{ds}[{s}]");
    t.elapsed().as_secs_f64()
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or(f64::NAN)
}

/// Small cold reads of `probe.b2nd` (chunk `first`, `first + 1`, …) every 50 ms while `bulk`
/// downloads: their p95, seconds.
async fn under_bulk(http: &reqwest::Client, base: &str, bulk: &str, first: u64) -> (f64, f64) {
    let (h, b, name) = (http.clone(), base.to_owned(), bulk.to_owned());
    let bulk = tokio::spawn(async move { download(&h, &b, &name).await });
    let mut lat = Vec::new();
    let mut k = first;
    while !bulk.is_finished() {
        lat.push(
            slice(
                http,
                base,
                "probe.b2nd",
                &format!("{}:{}", k * 100, k * 100 + 10),
            )
            .await,
        );
        k += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = bulk.await.unwrap();
    if std::env::var_os("CAT2_BENCH_VERBOSE").is_some() {
        let ms: Vec<u64> = lat.iter().map(|s| (s * 1e3) as u64).collect();
        eprintln!("small reads (ms): {ms:?}");
    }
    (percentile(lat, 0.95), took)
}

fn subscriber(c: &mut Cluster, url: &str, extra: &[&str]) -> (Proc, String) {
    c.connect_to(url);
    let sub = c.subscriber_with(30.0, extra);
    let base = format!("http://{}", sub.http.clone().unwrap());
    (sub, base)
}

#[tokio::main]
async fn main() {
    let args = <Args as clap::Parser>::parse();
    let shape = Shape {
        delay: Duration::from_millis(args.delay_ms),
        bits_per_second: Some(args.mbit * 1_000_000),
    };
    let rtt_ms = 2 * args.delay_ms;
    eprintln!("making data…");
    let mut c = Cluster::new(&[]);
    let root = c.path("wan");
    std::fs::create_dir_all(&root).unwrap();
    for (i, name) in ["cube", "bulk1", "bulk2"].iter().enumerate() {
        write_cube(&root.join(format!("{name}.b2nd")), 0x9E37_79B9 + i as u64);
    }
    write_ints(&root.join("probe.b2nd"), 100_000, 100);
    write_ints(&root.join("many.b2nd"), 10_240_000, 1024);
    let cube_bytes = std::fs::metadata(root.join("cube.b2nd")).unwrap().len();

    let site = NatsSite::start_shaped(shape);
    c.connect_to(site.hub[0].url());
    let _bro = c.broker();
    let _publ = c.publisher("wan", &root, "a", false);
    let http = cat2_e2e::http();
    let (mut sub, base) = subscriber(&mut c, site.leaf.url(), &[]);
    subscribe(&http, &base, "wan").await;
    wait_until("wan listed", Duration::from_secs(30), || async {
        let (s, _) = cat2_e2e::get_json(&http, &format!("{base}/api/info/wan/many.b2nd")).await;
        (s == 200).then_some(())
    })
    .await;

    let mut rows: Vec<(String, f64, String)> = Vec::new();
    let floor = cube_bytes as f64 * 8.0 / shape.bits_per_second.unwrap_or(1) as f64;
    rows.push((
        "link: cube's compressed bytes / bandwidth (s)".into(),
        floor,
        String::new(),
    ));

    let mut cold = Vec::new();
    for r in 0..args.reps {
        // A 64×64 window of a plane, in chunk r: its blocks alone cross the link.
        let (i, j) = (r % 4 * 32 + 5, r / 4 % 2 * 128 + 9);
        cold.push(
            slice(
                &http,
                &base,
                "cube.b2nd",
                &format!("{i}, {j}:{}, 3:67", j + 64),
            )
            .await,
        );
    }
    let cold_ms = percentile(cold, 0.5) * 1e3;
    rows.push((
        "cold small slice (ms)".into(),
        cold_ms,
        format!("≤ 2 RTT + 30 = {} ms", 2 * rtt_ms + 30),
    ));

    let down0 = site.link.bytes().1;
    let t = download(&http, &base, "cube.b2nd").await;
    let crossed = site.link.bytes().1 - down0;
    rows.push((
        "cold full download cube (s)".into(),
        t,
        format!("≤ 1.15 × floor = {:.2} s", floor * 1.15),
    ));
    rows.push(("  … / link floor".into(), t / floor, "≤ 1.15".into()));
    rows.push((
        "  … bytes across the link / compressed size".into(),
        crossed as f64 / cube_bytes as f64,
        String::new(),
    ));
    let t = download(&http, &base, "many.b2nd").await;
    rows.push((
        "cold full download many (10 000 chunks) (s)".into(),
        t,
        "≤ 0.5 s".into(),
    ));

    let (p95, took) = under_bulk(&http, &base, "bulk1.b2nd", 0).await;
    rows.push((
        "small cold read p95 during a bulk download, fetch buffer 64MiB (ms)".into(),
        p95 * 1e3,
        "≤ 300 ms".into(),
    ));
    rows.push(("  … the bulk download (s)".into(), took, String::new()));
    sub.terminate();
    // About twice bandwidth × RTT.
    let buffer = args
        .buffer
        .unwrap_or((2 * args.mbit * 1_000_000 / 8 * rtt_ms / 1000).max(1 << 20))
        .to_string();
    let (_sub, base) = subscriber(&mut c, site.leaf.url(), &["--fetch-buffer", &buffer]);
    let (p95, took) = under_bulk(&http, &base, "bulk2.b2nd", 500).await;
    rows.push((
        format!("small cold read p95 during a bulk download, fetch buffer {buffer} B (ms)"),
        p95 * 1e3,
        "≤ 300 ms".into(),
    ));
    rows.push(("  … the bulk download (s)".into(), took, String::new()));

    let mut table = String::from("| figure | cat2 | target |\n| --- | --- | --- |\n");
    for (name, v, target) in rows {
        table.push_str(&format!("| {name} | {v:.3} | {target} |\n"));
    }
    let md = format!(
        "\n## Across a WAN link\n\nA remote site (leaf server and subscriber) joined to the hub \
         (3-node cluster, broker, publisher) by a leaf link of {} Mbit/s and {rtt_ms} ms RTT, \
         shaped in user space. Data: float32 128×256×256 incompressible cubes (16 chunks of \
         2 MiB), `many` int64 10 240 000 (10 000 chunks), small reads of 10 int64 of the \
         1000-chunk `probe`. Caterva2 0.2.0 over the same link is not measured yet.\n\n\
         Reproduce: `cargo build --release --bins && target/release/cat2-bench-wan --mbit {} \
         --delay-ms {}`\n\n{table}",
        args.mbit, args.mbit, args.delay_ms
    );
    println!("{md}");
    if let Some(out) = &args.out {
        cat2_e2e::append_section(out, &md);
    }
}
