//! `cat2-bench-web`: what the web client costs on the benchmark cube (float32 384×512×512,
//! 403 MB, blocks 1×128×256): a plane (`sel=i,:,:`) cold (its blocks fetched from the
//! publisher) and warm (its chunks cached, rendered afresh: a slider step), the same image
//! again (the render cache), side views that the decode budget decimates, and the
//! subscriber's RSS while scrubbing the whole stack.
//!
//! `cargo build --release --bins && target/release/cat2-bench-web [--reps N] [--out FILE]`
//! Times are measured by the client over loopback (the server's time plus a round trip of
//! tens of µs). It prints (and appends to `--out`); it does not assert.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cat2_e2e::bench::{make_data, median, proc_status_bytes};
use cat2_e2e::cluster::{Cluster, subscribe};

#[derive(clap::Parser)]
struct Args {
    /// Planes measured per figure.
    #[arg(long, default_value_t = 9)]
    reps: usize,
    /// A Markdown file the table is appended to.
    #[arg(long)]
    out: Option<PathBuf>,
}

struct Got {
    secs: f64,
    decoded: u64,
    stride: String,
    decimated: bool,
}

async fn img(http: &reqwest::Client, base: &str, q: &str) -> Got {
    let t = Instant::now();
    let r = http
        .get(format!("{base}/web/img/bench/cube.b2nd?{q}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{q}");
    let h = r.headers().clone();
    let _ = r.bytes().await.unwrap();
    let text = |k: &str| {
        h.get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    Got {
        secs: t.elapsed().as_secs_f64(),
        decoded: text("x-cat2-decoded-bytes").parse().unwrap_or(0),
        stride: text("x-cat2-stride"),
        decimated: text("x-cat2-decimated") == "true",
    }
}

/// Planes `3 + 40 i` for `i < reps` (each in its own block, mostly in other chunks).
async fn planes(http: &reqwest::Client, base: &str, reps: usize) -> Vec<Got> {
    let mut v = Vec::with_capacity(reps);
    for i in 0..reps {
        v.push(img(http, base, &format!("idx={}", 3 + 40 * i)).await);
    }
    v
}

#[tokio::main]
async fn main() {
    let args = <Args as clap::Parser>::parse();
    let reps = args.reps.max(3);
    let top = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let data = top.join("bench-data/v2");
    make_data(&data);
    let mut c = Cluster::new(&[]);
    let _bro = c.broker();
    let _publ = c.publisher("bench", &data, "a", false);
    let sub = c.subscriber(60.0);
    let base = format!("http://{}", sub.http.clone().unwrap());
    let pid = sub.pid().unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    subscribe(&http, &base, "bench").await;
    let mut rows: Vec<(String, String, &str)> = Vec::new();

    // Cold planes: each in a block not fetched before (planes 40 apart: other blocks, and
    // mostly other chunks).
    let cold = planes(&http, &base, reps).await;
    let ms = |v: &[Got]| median(v.iter().map(|g| g.secs).collect()) * 1e3;
    rows.push((
        "plane `i,:,:` cold: time (ms)".into(),
        format!("{:.1}", ms(&cold)),
        "≤ 300 ms",
    ));
    rows.push((
        "plane `i,:,:`: decoded bytes".into(),
        cold[0].decoded.to_string(),
        "~1 MiB",
    ));
    // The same image again: the render cache.
    let again = planes(&http, &base, reps).await;
    rows.push((
        "same plane again (render cache): time (ms)".into(),
        format!("{:.2}", ms(&again)),
        "",
    ));
    // Warm slider steps: the cube cached whole, each plane rendered afresh.
    let t = Instant::now();
    let r = http
        .get(format!("{base}/api/fetch/bench/cube.b2nd"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let _ = r.bytes().await.unwrap();
    eprintln!("cube cached in {:.2} s", t.elapsed().as_secs_f64());
    let before = proc_status_bytes(pid, "VmRSS");
    let mut steps = Vec::new();
    let mut peak = before;
    for i in 0..384u64 {
        // Planes the cold pass rendered are still in the render cache: left out.
        if i % 40 == 3 {
            continue;
        }
        steps.push(img(&http, &base, &format!("idx={i}")).await);
        peak = peak.max(proc_status_bytes(pid, "VmRSS"));
    }
    rows.push((
        "warm slider step (plane cached, rendered afresh): time (ms), median of 374".into(),
        format!("{:.2}", ms(&steps)),
        "≤ 50 ms",
    ));
    let mut sorted: Vec<f64> = steps.iter().map(|g| g.secs * 1e3).collect();
    sorted.sort_by(f64::total_cmp);
    rows.push((
        "warm slider step: p99 (ms)".into(),
        format!("{:.2}", sorted[sorted.len() * 99 / 100]),
        "",
    ));
    rows.push((
        "subscriber RSS growth scrubbing 0..383 (MiB)".into(),
        format!("{:.1}", peak.saturating_sub(before) as f64 / 1048576.0),
        "≤ 64 MiB",
    ));
    // Side views: over the budget at full resolution, so decimated with whole blocks skipped.
    for (name, q) in [
        ("side view `:,j,:`", "axes=0,2&idx=100"),
        ("side view `:,:,k`", "axes=0,1&idx=100"),
    ] {
        let g = img(&http, &base, q).await;
        rows.push((
            format!("{name} (warm): time (ms) / decoded bytes / stride / decimated"),
            format!(
                "{:.1} / {} / {} / {}",
                g.secs * 1e3,
                g.decoded,
                g.stride,
                g.decimated
            ),
            "decoded ≤ 64 MiB",
        ));
    }
    let mut md = String::from(
        "\n## Web client on the cube (`cat2-bench-web`)\n\n\
         float32 384×512×512 (403 MB, blocks 1×128×256), loopback NATS, release build; \
         times by the client over loopback.\n\n| figure | cat2 | target |\n| --- | --- | --- |\n",
    );
    for (name, v, target) in &rows {
        println!("{name}: {v}  (target {target})");
        md.push_str(&format!("| {name} | {v} | {target} |\n"));
    }
    if let Some(out) = &args.out {
        cat2_e2e::append_section(out, &md);
    }
}
