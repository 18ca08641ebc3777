//! Faults of the subscriber's core, end to end with the real binaries where processes matter
//! (a publisher that hangs, a subscriber restarted over its cache).

use std::time::{Duration, Instant};

use cat2_e2e::cluster::{Cluster, subscribe, wait_until};
use cat2_e2e::fetch;

/// Sends `signal` (`-STOP`, `-CONT`) to process `pid`.
fn signal(pid: &str, signal: &str) {
    let ok = std::process::Command::new("kill")
        .args([signal, pid])
        .status();
    assert!(ok.is_ok_and(|s| s.success()), "kill {signal} {pid}");
}

/// After a restart, the first open of a dataset whose cache file is torn asks its publisher
/// for metadata; when that publisher hangs, only that dataset waits: opening the datasets of
/// another root (or of the same root with sound files) does not queue behind it.
#[tokio::test(flavor = "multi_thread")]
async fn a_hung_publisher_does_not_stall_opening_other_datasets() {
    let mut c = Cluster::new(&[]);
    for r in ["a", "b"] {
        cat2_format::example::write_root_example(&c.path(r)).unwrap();
    }
    let _bro = c.broker();
    let pub_a = c.publisher("a", &c.path("a"), "a", false);
    let _pub_b = c.publisher("b", &c.path("b"), "b", false);
    let timeout = 8.0;
    let mut sub = c.subscriber(timeout);
    let base = format!("http://{}", sub.http.clone().unwrap());
    let http = cat2_e2e::http();
    for r in ["a", "b"] {
        subscribe(&http, &base, r).await;
        let (status, _) = fetch(&http, &base, &format!("{r}/ds-1d.b2nd"), "").await;
        assert_eq!(status, 200, "{r}");
    }
    sub.terminate();
    // Root a's cache file is torn (as a crash mid-fill leaves it) and its publisher hangs.
    let torn = c.path("sub/cache/a/ds-1d.b2nd");
    let len = std::fs::metadata(&torn).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&torn)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let pid = pub_a.pid().unwrap().to_string();
    signal(&pid, "-STOP");

    let sub = c.subscriber(timeout);
    let base = format!("http://{}", sub.http.clone().unwrap());
    let stuck = {
        let (http, base) = (http.clone(), base.clone());
        tokio::spawn(async move { fetch(&http, &base, "a/ds-1d.b2nd", "").await })
    };
    // The open of a's dataset is under way: it found the file torn and asked the publisher.
    wait_until(
        "a's torn cache file found",
        Duration::from_secs(20),
        || async { sub.log().contains("cache file unusable").then_some(()) },
    )
    .await;
    let t = Instant::now();
    let (status, _) = fetch(&http, &base, "b/ds-1d.b2nd", "").await;
    let took = t.elapsed();
    assert_eq!(status, 200);
    assert!(
        took < Duration::from_secs_f64(timeout / 4.0),
        "b's dataset waited {took:?} behind a's hung publisher"
    );
    signal(&pid, "-CONT");
    let (status, _) = stuck.await.unwrap();
    assert!(status == 200 || status >= 500, "a's dataset: {status}");
}
