//! End to end, real binaries: every service's `/metrics` passes `promtool check metrics` and
//! counts the work done, and `/healthz` says 200 while a service can work, 503 within 2 s
//! of losing NATS.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cat2_e2e::cluster::{Cluster, subscribe, wait_until};
use cat2_e2e::get_json;

fn example() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../root-example")
}

/// `/metrics` of the service at `addr`, in the classic text format.
async fn metrics(http: &reqwest::Client, addr: &str) -> String {
    let r = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    r.text().await.unwrap()
}

/// A sample's value (no labels).
fn value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

/// `promtool check metrics` (Debian's prometheus package, installed by scripts/setup).
fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package: run scripts/setup)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn health(http: &reqwest::Client, addr: &str) -> u16 {
    http.get(format!("http://{addr}/healthz"))
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_the_work_and_health_follows_nats() {
    let mut c = Cluster::new(&[]);
    let bro = c.broker();
    let publ = c.publisher("foo", &example(), "a", true);
    let sub = c.subscriber(5.0);
    let (bro_at, pub_at, sub_at) = (
        bro.http.clone().unwrap(),
        publ.http.clone().unwrap(),
        sub.http.clone().unwrap(),
    );
    let base = format!("http://{sub_at}");
    let http = cat2_e2e::http();
    subscribe(&http, &base, "foo").await;
    for at in [&bro_at, &pub_at, &sub_at] {
        wait_until("healthy", Duration::from_secs(10), || async {
            (health(&http, at).await == 200).then_some(())
        })
        .await;
    }

    // A whole download fetches every chunk once; a second one fetches none.
    let (_, info) = get_json(&http, &format!("{base}/api/info/foo/dir1/ds-3d.b2nd")).await;
    let nchunks = info["schunk"]["nchunks"].as_f64().unwrap();
    let before = metrics(&http, &sub_at).await;
    let fetched0 = value(&before, "cat2_sub_chunks_fetched_total");
    for _ in 0..2 {
        let (s, url) = get_json(&http, &format!("{base}/api/download/foo/dir1/ds-3d.b2nd")).await;
        assert_eq!(s, 200);
        let r = http.get(url.as_str().unwrap()).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    let after = metrics(&http, &sub_at).await;
    assert_eq!(
        value(&after, "cat2_sub_chunks_fetched_total") - fetched0,
        nchunks
    );
    assert!(
        value(&after, "cat2_sub_chunk_hits_total") >= nchunks,
        "{after}"
    );
    assert!(value(&after, "cat2_sub_fetched_bytes_total") > 0.0);
    assert!(value(&after, "process_resident_memory_bytes") > 1e6);
    assert_eq!(value(&after, "cat2_nats_connected"), 1.0);
    assert!(
        after.contains("cat2_sub_http_responses_total{code=\"200\"}"),
        "{after}"
    );
    promtool_check(&after);
    let p = metrics(&http, &pub_at).await;
    assert!(value(&p, "cat2_pub_datasets") >= 8.0, "{p}");
    assert!(
        p.contains("cat2_pub_requests_total{endpoint=\"chunks\"}"),
        "{p}"
    );
    promtool_check(&p);
    assert!(value(&after, "cat2_sub_cache_files") >= 1.0, "{after}");
    assert!(value(&after, "cat2_sub_cache_bytes") > 0.0, "{after}");
    // A publisher without its HTTP routes still serves /metrics and /healthz on --ops.
    let quiet = c.publisher_with("foo", &example(), "b", false, &["--ops", "127.0.0.1:0"]);
    let quiet_at = quiet.http.clone().unwrap();
    let q = metrics(&http, &quiet_at).await;
    assert!(value(&q, "cat2_pub_datasets") >= 8.0, "{q}");
    wait_until(
        "quiet publisher healthy",
        Duration::from_secs(10),
        || async { (health(&http, &quiet_at).await == 200).then_some(()) },
    )
    .await;
    let list = http
        .get(format!("http://{quiet_at}/api/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 404, "no 0.2.0 routes on --ops");
    let b = metrics(&http, &bro_at).await;
    assert_eq!(value(&b, "cat2_bro_roots_online"), 1.0, "{b}");
    promtool_check(&b);

    // NATS goes away: every service says so within 2 s.
    c.nats.stop();
    let t = Instant::now();
    for at in [&bro_at, &pub_at, &sub_at, &quiet_at] {
        wait_until("unhealthy", Duration::from_secs(2), || async {
            (health(&http, at).await == 503).then_some(())
        })
        .await;
    }
    println!("503 after {:?}", t.elapsed());
    assert!(t.elapsed() <= Duration::from_secs(2));
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// Kills the Prometheus server on drop.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_prometheus_scrapes_all_three_services() {
    let mut c = Cluster::new(&[]);
    let bro = c.broker();
    let publ = c.publisher("foo", &example(), "a", true);
    let sub = c.subscriber(5.0);
    let base = format!("http://{}", sub.http.clone().unwrap());
    let http = cat2_e2e::http();
    subscribe(&http, &base, "foo").await;
    let (s, _) = cat2_e2e::fetch(&http, &base, "foo/ds-1d.b2nd", "0:1000").await;
    assert_eq!(s, 200);

    let targets: Vec<String> = [&bro, &publ, &sub]
        .iter()
        .map(|p| format!("'{}'", p.http.clone().unwrap()))
        .collect();
    let conf = c.path("prometheus.yml");
    std::fs::write(
        &conf,
        format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\n\
             scrape_configs:\n  - job_name: cat2\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        ),
    )
    .unwrap();
    let port = free_port();
    let log = std::fs::File::create(c.path("prometheus.log")).unwrap();
    let _prom = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", conf.display()))
            .arg(format!("--storage.tsdb.path={}", c.path("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus (Debian's package: run scripts/setup)"),
    );
    let query = |q: &'static str| {
        let http = http.clone();
        async move {
            // Not up yet is not an error: asked again.
            let url = format!("http://127.0.0.1:{port}/api/v1/query?query={q}");
            let r = http.get(url).send().await.ok()?;
            let v: serde_json::Value = r.json().await.ok()?;
            v["data"]["result"].as_array().cloned()
        }
    };
    wait_until("all three targets up", Duration::from_secs(30), || async {
        let up = query("up").await?;
        let live = up.iter().filter(|r| r["value"][1] == "1").count();
        (live == 3).then_some(())
    })
    .await;
    let fetched = query("cat2_sub_chunks_fetched_total").await.unwrap();
    let n: f64 = fetched[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(n >= 1.0, "{fetched:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_official_nats_services_client_finds_all_three() {
    let mut c = Cluster::new(&[]);
    let _bro = c.broker();
    let _publ = c.publisher("foo", &example(), "a", false);
    let _sub = c.subscriber(5.0);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("js/services.mjs");
    let url = c.nats.url().to_owned();
    let found = wait_until("three services discovered", Duration::from_secs(20), || {
        let (script, url) = (script.clone(), url.clone());
        async move {
            let out = tokio::process::Command::new("node")
                .arg(&script)
                .arg(&url)
                .output()
                .await
                .expect("node (tests/js needs Node.js and scripts/setup's npm install)");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            (v.as_array()?.len() == 3).then_some(v)
        }
    })
    .await;
    let by_name = |n: &str| {
        found
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == n)
            .unwrap_or_else(|| panic!("no {n} in {found}"))
            .clone()
    };
    let publ = by_name("cat2-publisher");
    assert_eq!(publ["metadata"]["root"], "foo");
    let subjects: Vec<&str> = publ["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["subject"].as_str())
        .collect();
    for verb in ["list", "info", "chunks", "blocks"] {
        assert!(
            subjects.contains(&format!("cat2.v1.root.foo.{verb}").as_str()),
            "{subjects:?}"
        );
    }
    assert!(publ["stats"]["endpoints"].is_array(), "{publ}");
    let bro = by_name("cat2-broker");
    assert!(bro["endpoints"].as_array().unwrap().len() >= 2, "{bro}");
    by_name("cat2-subscriber");
}
