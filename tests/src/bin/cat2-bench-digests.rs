//! `cat2-bench-digests`: what checking every reply against its publisher's digests costs.
//!
//! `cargo build --release --bins && target/release/cat2-bench-digests [--reps N] [--out FILE]`
//!
//! The bench root (`bench-data/v2`, as `cat2-bench` makes it) is served twice on one
//! nats-server: as `bench` by a publisher that digests it (the default) and as `plain` by one
//! run with `--digests off`, whose subscribers therefore check nothing. Figures, medians of
//! `--reps` (each repetition restarts the subscriber with an empty cache and downloads both,
//! alternating which goes first):
//! - cold full download of `cube.b2nd` (403 MB, 24 chunks of 16 MiB in 128 blocks) and of
//!   `many.b2nd` (10 000 chunks of 8 KiB), checked and unchecked, and their ratio (target:
//!   checked ≤ 1.10 × unchecked);
//! - the publisher's digest pass over each file, timed in this process (`Dataset::digests`,
//!   what a publisher runs once per version when it opens it).
//!
//! It prints one markdown table (and appends it to `--out`); it does not assert.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cat2_e2e::bench::{make_data, median};
use cat2_e2e::cluster::{Cluster, Proc, wait_until};

/// Checked against unchecked cold downloads.
#[derive(clap::Parser)]
#[command(version)]
struct Args {
    /// Repetitions (medians are reported).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Append the table to this markdown file.
    #[arg(long)]
    out: Option<PathBuf>,
}

async fn download(http: &reqwest::Client, base: &str, path: &str) -> f64 {
    let t = Instant::now();
    let r = http
        .get(format!("{base}/api/download/{path}"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "download {path}: {}", r.status());
    let url: String = r.json().await.unwrap();
    let mut r = http.get(&url).send().await.unwrap();
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    while r.chunk().await.unwrap().is_some() {}
    t.elapsed().as_secs_f64()
}

async fn subscribe(http: &reqwest::Client, base: &str, root: &str) {
    wait_until(root, Duration::from_secs(300), || async {
        let r = http
            .post(format!("{base}/api/subscribe/{root}"))
            .send()
            .await
            .ok()?;
        r.status().is_success().then_some(())
    })
    .await;
}

/// Seconds of the digest pass over `file`, and the bytes it read (the chunks as stored).
fn digest_pass(file: &Path) -> (f64, u64) {
    let ds = cat2_format::Dataset::open(file).unwrap();
    let t = Instant::now();
    let d = ds.digests().unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert!(d.is_some(), "{} has digests", file.display());
    let stored = (0..ds.nchunks())
        .map(|n| ds.raw_chunk(n).unwrap().len() as u64)
        .sum();
    (secs, stored)
}

#[tokio::main]
async fn main() {
    let args: Args = clap::Parser::parse();
    let top = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let data = top.join("bench-data/v2");
    make_data(&data);
    let files = ["cube.b2nd", "many.b2nd"];
    let mut rows: Vec<(String, f64, f64, String)> = Vec::new();
    for f in files {
        let (secs, stored) = digest_pass(&data.join(f));
        eprintln!(
            "digest pass {f}: {secs:.3} s over {} MB",
            stored / 1_000_000
        );
        rows.push((
            format!(
                "publisher digest pass over {f} ({} MB stored) (s)",
                stored / 1_000_000
            ),
            secs,
            f64::NAN,
            String::new(),
        ));
    }

    let mut c = Cluster::new(&[]);
    let _bro = c.broker();
    let _checked = c.publisher("bench", &data, "a", false);
    let _plain = c.publisher_with("plain", &data, "b", false, &["--digests", "off"]);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    let mut sub: Option<Proc> = None;
    // [file][checked, unchecked]
    let mut t = vec![[Vec::new(), Vec::new()]; files.len()];
    for r in 0..args.reps {
        if let Some(mut s) = sub.take() {
            s.terminate();
        }
        std::fs::remove_dir_all(c.path("sub")).ok();
        let s = c.subscriber(600.0);
        let base = format!("http://{}", s.http.clone().unwrap());
        sub = Some(s);
        subscribe(&http, &base, "bench").await;
        subscribe(&http, &base, "plain").await;
        for (i, f) in files.iter().enumerate() {
            let order = if r % 2 == 0 { [0, 1] } else { [1, 0] };
            for side in order {
                let root = ["bench", "plain"][side];
                let secs = download(&http, &base, &format!("{root}/{f}")).await;
                eprintln!("rep {r} {f} {root}: {secs:.3} s");
                t[i][side].push(secs);
            }
        }
    }
    for (i, f) in files.iter().enumerate() {
        let checked = median(t[i][0].clone());
        let unchecked = median(t[i][1].clone());
        rows.push((
            format!("cold full download {f}: checked / unchecked (s)"),
            checked,
            unchecked,
            format!("{:.3} (target ≤ 1.10)", checked / unchecked),
        ));
    }
    let mut md = format!(
        "\n## Digests (`cat2-bench-digests`)\n\nMedians of {} repetitions; cold = subscriber \
         cache wiped and restarted; unchecked = the same files from a publisher run with \
         `--digests off`.\n\n| figure | value | unchecked | ratio |\n| --- | --- | --- | --- |\n",
        args.reps
    );
    for (name, a, b, ratio) in rows {
        let b = if b.is_nan() {
            String::new()
        } else {
            format!("{b:.3}")
        };
        md.push_str(&format!("| {name} | {a:.3} | {b} | {ratio} |\n"));
    }
    print!("{md}");
    if let Some(out) = args.out {
        cat2_e2e::append_section(&out, &md);
    }
}
