//! `cat2-bench`: cat2 against Caterva2 0.2.0, side by side, on the same machine and data.
//!
//! `cargo build --release --bins && target/release/cat2-bench [--reps N] [--out BENCHMARKS.md]
//! [--no-reference]` (the last for quick runs of ours alone, printed only: the reference
//! takes minutes);
//! `cat2-bench --load http://HOST:PORT` runs only the 8-connection load (for profiling)
//!
//! Makes the `bench` root (cube, random, many) with cat2's own writer, starts our deployment
//! (nats-server, cat2bro, cat2pub, cat2sub) and the reference one
//! (`../shared/compat/start-reference.sh`), measures the same REST calls against both,
//! alternating, and prints (and writes) one table of medians. It prints; it does not assert.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cat2_e2e::bench::{make_data, median};
use cat2_e2e::cluster::{Cluster, Proc, wait_until};

struct Side {
    base: String,
}

/// GETs `url`, consuming the body as it streams in (as a download client writing to disk
/// would, without collecting it in memory): time and bytes.
async fn get(http: &reqwest::Client, url: &str) -> (Duration, usize) {
    let t = Instant::now();
    let mut r = http
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    let mut n = 0;
    while let Some(part) = r.chunk().await.unwrap() {
        n += part.len();
    }
    (t.elapsed(), n)
}

async fn download(http: &reqwest::Client, base: &str, ds: &str) -> (Duration, usize) {
    let t = Instant::now();
    let r = http
        .get(format!("{base}/api/download/bench/{ds}"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "download {ds}: {}", r.status());
    let url: String = r.json().await.unwrap();
    let (_, n) = get(http, &url).await;
    (t.elapsed(), n)
}

async fn subscribe(http: &reqwest::Client, base: &str) {
    wait_until("bench subscribed", Duration::from_secs(120), || async {
        let r = http
            .post(format!("{base}/api/subscribe/bench"))
            .send()
            .await
            .ok()?;
        r.status().is_success().then_some(())
    })
    .await;
}

fn window(r: usize) -> String {
    // One 64x64 window of one plane, in chunk r of the cube's 6x2x2 grid.
    let (ci, cj, ck) = ((r / 4) % 6, (r / 2) % 2, r % 2);
    format!(
        "{}, {}:{}, {}:{}",
        ci * 64 + 3,
        cj * 256 + 17,
        cj * 256 + 81,
        ck * 256 + 29,
        ck * 256 + 93
    )
}

fn proc_cpu_rss(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    (
        ticks / 100.0,
        cat2_e2e::bench::proc_status_bytes(pid, "VmHWM"),
    )
}

struct Reference {
    state: PathBuf,
    compat: PathBuf,
}

impl Reference {
    fn restart_sub(&self) {
        let ok = std::process::Command::new("bash")
            .arg(self.compat.join("restart-sub.sh"))
            .arg(&self.state)
            .arg("--wipe")
            .status()
            .unwrap();
        assert!(ok.success(), "restart-sub.sh failed");
    }

    fn sub_pid(&self) -> u32 {
        std::fs::read_to_string(self.state.join("pids/sub.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(self.compat.join("stop-reference.sh"))
            .arg(&self.state)
            .status();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The transport floors: the cube's compressed bytes through a loopback socket, and through
/// nats-server as 1 MiB messages (one publisher, one subscriber).
async fn floors(cluster: &Cluster, bytes: usize) -> (f64, f64) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let rx = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0;
        while n < bytes {
            n += s.read(&mut buf).unwrap();
        }
    });
    let block = vec![7u8; 1 << 20];
    let t = Instant::now();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let mut sent = 0;
    while sent < bytes {
        let k = block.len().min(bytes - sent);
        s.write_all(&block[..k]).unwrap();
        sent += k;
    }
    rx.join().unwrap();
    let tcp = t.elapsed().as_secs_f64();

    let publ = async_nats::connect(cluster.nats.url()).await.unwrap();
    let subc = async_nats::connect(cluster.nats.url()).await.unwrap();
    let mut sub = subc.subscribe("bench.floor").await.unwrap();
    subc.flush().await.unwrap();
    let payload = bytes::Bytes::from(vec![7u8; (1 << 20) - 1024]);
    let count = bytes.div_ceil(payload.len());
    let t = Instant::now();
    let recv = tokio::spawn(async move {
        for _ in 0..count {
            futures::StreamExt::next(&mut sub).await.unwrap();
        }
    });
    for _ in 0..count {
        publ.publish("bench.floor", payload.clone()).await.unwrap();
    }
    publ.flush().await.unwrap();
    recv.await.unwrap();
    (tcp, t.elapsed().as_secs_f64())
}

/// Random small slices from 8 connections for `secs`: successes/s, p50, p99 (s), errors.
/// 64 downloads of the cube at once, with [`concurrency`]'s slicing alongside: wall time,
/// the subscriber's (process `pid`) peak RSS, and failed requests.
async fn crowd(http: &reqwest::Client, base: &str, pid: u32) -> (f64, u64, usize) {
    let t = Instant::now();
    let downloads: Vec<_> = (0..64)
        .map(|_| {
            let (http, base) = (http.clone(), base.to_owned());
            // A failed download panics in its task: counted below.
            tokio::spawn(async move { download(&http, &base, "cube.b2nd").await })
        })
        .collect();
    let (_, _, _, mut failed) = concurrency(http, base, 10).await;
    for d in downloads {
        failed += usize::from(d.await.is_err());
    }
    let (_, hwm) = proc_cpu_rss(pid);
    (t.elapsed().as_secs_f64(), hwm, failed)
}

async fn concurrency(http: &reqwest::Client, base: &str, secs: u64) -> (f64, f64, f64, usize) {
    let stop = Instant::now() + Duration::from_secs(secs);
    let tasks = (0..8).map(|w| {
        let (http, base) = (http.clone(), base.to_owned());
        tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            let mut x = 12345u64 + w;
            while Instant::now() < stop {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let (i, j, k) = ((x >> 20) % 384, (x >> 30) % 448, (x >> 40) % 448);
                let url = format!(
                    "{base}/api/fetch/bench/cube.b2nd?slice_={i},{j}:{},{k}:{}&prefer_schunk=true",
                    j + 64,
                    k + 64
                );
                let t = Instant::now();
                let ok = match http.get(&url).send().await {
                    Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                    Ok(r) => {
                        if errors == 0 {
                            let status = r.status();
                            let body = r.text().await.unwrap_or_default();
                            eprintln!("{url}: {status} {body}");
                        }
                        false
                    }
                    Err(e) => {
                        if errors == 0 {
                            eprintln!("{url}: {e}");
                        }
                        false
                    }
                };
                if ok {
                    lat.push(t.elapsed().as_secs_f64());
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        })
    });
    let mut all: Vec<f64> = Vec::new();
    let mut errors = 0;
    for t in futures::future::join_all(tasks).await {
        let (lat, e) = t.unwrap_or_default();
        all.extend(lat);
        errors += e;
    }
    all.sort_by(f64::total_cmp);
    let n = all.len().max(1);
    let at = |q: usize| {
        all.get((n * q / 100).min(n - 1))
            .copied()
            .unwrap_or(f64::NAN)
    };
    (all.len() as f64 / secs as f64, at(50), at(99), errors)
}

/// cat2 against Caterva2 0.2.0, side by side: prints one table of medians and writes it.
#[derive(clap::Parser)]
#[command(version)]
struct Args {
    /// Repetitions of each measure (medians are reported; the cold `many` download runs once).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Where to write the table, relative to the repository's top [default: BENCHMARKS.md,
    /// nowhere with --no-reference].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Ours alone (the reference's cold download of `many.b2nd` takes minutes); the table is
    /// printed, not written, unless --out is given.
    #[arg(long)]
    no_reference: bool,
    /// Only the 8-connection load, against a running subscriber at this base URL holding the
    /// `bench` root (for profiling).
    #[arg(long, value_name = "http://HOST:PORT")]
    load: Option<String>,
}

#[tokio::main]
async fn main() {
    let args = <Args as clap::Parser>::parse();
    let reps = args.reps;
    let out = args
        .out
        .or_else(|| (!args.no_reference).then(|| "BENCHMARKS.md".into()));
    if let Some(base) = &args.load {
        let (q, p50, p99, e) = concurrency(&reqwest::Client::new(), base, 10).await;
        println!(
            "{q:.1} slices/s, p50 {:.3} ms, p99 {:.3} ms, {e} failed",
            p50 * 1e3,
            p99 * 1e3
        );
        let scratch = tempfile::tempdir().unwrap();
        if let Some(f) = cat2_e2e::wrk::run(base, 10, scratch.path()) {
            println!(
                "wrk: {:.1} slices/s, p50 {:.3} ms, p99 {:.3} ms, {} failed",
                f.rate,
                f.p50 * 1e3,
                f.p99 * 1e3,
                f.failed
            );
        }
        return;
    }
    let top = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let data = top.join("bench-data/v2");
    let with_reference = !args.no_reference;
    make_data(&data);
    let compat = std::env::var_os("CAT2_SHARED")
        .map_or_else(|| top.join("../shared"), PathBuf::from)
        .join("compat");

    // Ours.
    let mut c = Cluster::new(&[]);
    let _bro = c.broker();
    let _publ = c.publisher("bench", &data, "a", false);
    let mut sub: Proc = c.subscriber(60.0);
    let ours_base = |p: &Proc| format!("http://{}", p.http.clone().unwrap());
    // Reference (left out with `--no-reference`, for quick runs of ours alone).
    let (bro_p, pub_p, sub_p) = (free_port(), free_port(), free_port());
    let reference = with_reference.then(|| {
        let state = c.path("reference");
        eprintln!("starting the reference Caterva2 0.2.0 deployment (copies the data) ...");
        let st = std::process::Command::new("bash")
            .arg(compat.join("start-reference.sh"))
            .arg(&state)
            .arg(format!("bench={}@127.0.0.1:{pub_p}", data.display()))
            .env("BRO", format!("127.0.0.1:{bro_p}"))
            .env("SUB", format!("127.0.0.1:{sub_p}"))
            .env("WITH_HDF5", "0")
            .env("START_TIMEOUT", "600")
            .status()
            .unwrap();
        assert!(st.success(), "start-reference.sh failed");
        Reference { state, compat }
    });
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    let mut sides = vec![Side {
        base: ours_base(&sub),
    }];
    if with_reference {
        sides.push(Side {
            base: format!("http://127.0.0.1:{sub_p}"),
        });
    }
    for s in &sides {
        subscribe(&http, &s.base).await;
    }

    // 1-2: cold and warm small slices, alternating A/B.
    let (mut cold, mut warm) = ([vec![], vec![]], [vec![], vec![]]);
    for r in 0..reps.max(3) {
        for (i, s) in sides.iter().enumerate() {
            let url = format!(
                "{}/api/fetch/bench/cube.b2nd?slice_={}&prefer_schunk=true",
                s.base,
                window(r)
            );
            cold[i].push(get(&http, &url).await.0.as_secs_f64());
            warm[i].push(get(&http, &url).await.0.as_secs_f64());
        }
    }
    // 3-4, 6: cold and warm full downloads from wiped caches; peak RSS and CPU of the subscriber.
    let mut rows: Vec<(String, [f64; 2], &str, &str)> = Vec::new();
    rows.push((
        "cold small slice (ms)".into(),
        [median(cold[0].clone()) * 1e3, median(cold[1].clone()) * 1e3],
        "≤ 1/10",
        "ms",
    ));
    rows.push((
        "warm small slice (ms)".into(),
        [median(warm[0].clone()) * 1e3, median(warm[1].clone()) * 1e3],
        "≤ 1/10, < 2 ms",
        "ms",
    ));
    let mut cube_bytes = 0usize;
    for ds in ["cube.b2nd", "many.b2nd"] {
        let (mut coldd, mut warmd, mut rss, mut cpu) =
            ([vec![], vec![]], [vec![], vec![]], [0u64; 2], [f64::NAN; 2]);
        // The reference takes minutes per cold download of `many` (10 000 sequential pulls).
        let dl_reps = if ds == "many.b2nd" { 1 } else { reps };
        for _ in 0..dl_reps {
            for i in 0..sides.len() {
                let (base, pid) = if i == 0 {
                    sub.terminate();
                    std::fs::remove_dir_all(c.path("sub")).ok();
                    sub = c.subscriber(60.0);
                    (ours_base(&sub), sub.pid().unwrap())
                } else if let Some(reference) = &reference {
                    reference.restart_sub();
                    (sides[1].base.clone(), reference.sub_pid())
                } else {
                    continue;
                };
                subscribe(&http, &base).await;
                let (cpu0, _) = proc_cpu_rss(pid);
                let (t, n) = download(&http, &base, ds).await;
                let (cpu1, hwm) = proc_cpu_rss(pid);
                coldd[i].push(t.as_secs_f64());
                rss[i] = rss[i].max(hwm);
                cpu[i] = (cpu1 - cpu0).max(if cpu[i].is_nan() { 0.0 } else { cpu[i] });
                if ds == "cube.b2nd" {
                    cube_bytes = n;
                }
                warmd[i].push(download(&http, &base, ds).await.0.as_secs_f64());
            }
        }
        rows.push((
            format!("cold full download {ds} (s)"),
            [median(coldd[0].clone()), median(coldd[1].clone())],
            if ds == "cube.b2nd" {
                "≤ 1/5, ≤ 2× NATS floor"
            } else {
                "per chunk ≤ cube's"
            },
            "s",
        ));
        rows.push((
            format!("warm full download {ds} (s)"),
            [median(warmd[0].clone()), median(warmd[1].clone())],
            if ds == "cube.b2nd" { "≤ 1/4" } else { "" },
            "s",
        ));
        rows.push((
            format!("subscriber peak RSS, cold {ds} (MB)"),
            [
                rss[0] as f64 / 1e6,
                if with_reference {
                    rss[1] as f64 / 1e6
                } else {
                    f64::NAN
                },
            ],
            if ds == "cube.b2nd" { "≤ 200 MB" } else { "" },
            "MB",
        ));
        rows.push((
            format!("subscriber CPU, cold {ds} (s)"),
            [cpu[0], cpu[1]],
            "",
            "s",
        ));
        for r in &rows[rows.len() - 4..] {
            eprintln!("{}: cat2 {:.3}, caterva2 {:.3}", r.0, r.1[0], r.1[1]);
        }
    }
    // 64 cold downloads of the cube at once while 8 connections slice it: the subscriber's
    // memory stays within its budgets, and nothing fails.
    sub.terminate();
    std::fs::remove_dir_all(c.path("sub")).ok();
    sub = c.subscriber(60.0);
    subscribe(&http, &ours_base(&sub)).await;
    let (wall, rss, failed) = crowd(&http, &ours_base(&sub), sub.pid().unwrap()).await;
    for (name, v, target, unit) in [
        (
            "64 cold cube downloads + 8 slicing: subscriber peak RSS (MB)",
            rss as f64 / 1e6,
            "≤ 400 MB",
            "MB",
        ),
        (
            "64 cold cube downloads + 8 slicing: failed requests",
            failed as f64,
            "0",
            "",
        ),
        ("64 cold cube downloads: wall time (s)", wall, "", "s"),
    ] {
        eprintln!("{name}: cat2 {v:.3}");
        rows.push((name.into(), [v, f64::NAN], target, unit));
    }
    // 5: concurrency, on a warm cache: the subscribers were last restarted empty for `many`,
    // so both download the cube again first.
    let ours_base_now = ours_base(&sub);
    download(&http, &ours_base_now, "cube.b2nd").await;
    if let Some(s) = sides.get(1) {
        download(&http, &s.base, "cube.b2nd").await;
    }
    let (q0, p50_0, p99_0, e0) = concurrency(&http, &ours_base_now, 10).await;
    let (q1, p50_1, p99_1, e1) = match sides.get(1) {
        Some(s) => concurrency(&http, &s.base, 10).await,
        None => (f64::NAN, f64::NAN, f64::NAN, 0),
    };
    rows.push(("8-connection slices/s".into(), [q0, q1], "≥ 20×", "/s"));
    rows.push((
        "8-connection p50 (ms)".into(),
        [p50_0 * 1e3, p50_1 * 1e3],
        "",
        "ms",
    ));
    rows.push((
        "8-connection p99 (ms)".into(),
        [p99_0 * 1e3, p99_1 * 1e3],
        "< 20 ms",
        "ms",
    ));
    rows.push((
        "8-connection failed requests".into(),
        [e0 as f64, e1 as f64],
        "",
        "",
    ));
    // The same load from a C load generator (no figure when wrk is missing).
    let scratch = c.path("wrk");
    std::fs::create_dir_all(&scratch).unwrap();
    let by_wrk = |base: &str| {
        let f = cat2_e2e::wrk::run(base, 10, &scratch);
        let nan = f64::NAN;
        f.map_or([nan; 4], |f| {
            [f.rate, f.p50 * 1e3, f.p99 * 1e3, f.failed as f64]
        })
    };
    let w0 = by_wrk(&ours_base_now);
    let w1 = sides.get(1).map_or([f64::NAN; 4], |s| by_wrk(&s.base));
    for (i, (name, target, unit)) in [
        ("wrk, 8 connections: slices/s", "≥ 20×", "/s"),
        ("wrk, 8 connections: p50 (ms)", "", "ms"),
        ("wrk, 8 connections: p99 (ms)", "< 20 ms", "ms"),
        ("wrk, 8 connections: failed requests", "", ""),
    ]
    .into_iter()
    .enumerate()
    {
        eprintln!("{name}: cat2 {:.3}, caterva2 {:.3}", w0[i], w1[i]);
        rows.push((name.into(), [w0[i], w1[i]], target, unit));
    }
    let (tcp, nats) = floors(&c, cube_bytes).await;
    rows.push((
        "limit: cube's compressed bytes over loopback TCP (s)".into(),
        [tcp, f64::NAN],
        "",
        "s",
    ));
    rows.push((
        "limit: the same through nats-server, 1 MiB messages (s)".into(),
        [nats, f64::NAN],
        "",
        "s",
    ));

    let mut table = String::from(
        "| figure | cat2 | Caterva2 0.2.0 | cat2 / Caterva2 | target |\n| --- | --- | --- | --- | --- |\n",
    );
    for (name, [a, b], target, _) in &rows {
        let ratio = if b.is_finite() && *b != 0.0 {
            format!("{:.3}", a / b)
        } else {
            "".into()
        };
        let fb = if b.is_finite() {
            format!("{b:.3}")
        } else {
            "".into()
        };
        table.push_str(&format!(
            "| {name} | {a:.3} | {fb} | {ratio} | {target} |\n"
        ));
    }
    println!("{table}");
    let machine = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let md = format!(
        "# Benchmarks\n\ncat2 against Caterva2 0.2.0 on the same machine, data and REST calls (medians of {reps} \
         repetitions, alternating A/B; cold = subscriber cache wiped and restarted).\n\n\
         Machine: {machine}, {cores} cores. Data: `cube.b2nd` float32 384×512×512 (chunks 64×256×256, blocks 1×128×256), \
         `random.b2nd` float64 3200×4096 (chunks 256×4096, blocks 4×4096), `many.b2nd` int64 10 240 000 (10 000 chunks of 1024).\n\n\
         The 8-connection rows: 10 s of 64×64 windows at random offsets of random planes of the warm cube, \
         from our client (in this process), then from `wrk` (2 threads, a C load generator).\n\n\
         Reproduce: `scripts/setup && cargo build --release --bins && target/release/cat2-bench --reps {reps}`\n\n{table}"
    );
    if let Some(out) = out {
        std::fs::write(top.join(&out), md).unwrap();
        eprintln!("wrote {}", out.display());
    }
}
