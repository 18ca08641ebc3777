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

/// A download (no deadline) that waits on a chunk whose fetch a slice request started (with
/// the slice's deadline) keeps its own terms: when the slice's fetch gives up, the download
/// fetches the chunk itself and completes once the publisher answers again.
#[tokio::test(flavor = "multi_thread")]
async fn a_download_waiting_on_a_slices_fetch_keeps_its_own_deadline() {
    let mut c = Cluster::new(&[]);
    let root = c.path("one");
    std::fs::create_dir_all(&root).unwrap();
    let data: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    cat2_e2e::write_one_chunk_b2nd(&root.join("one.b2nd"), &data);
    let _bro = c.broker();
    let publ = c.publisher("one", &root, "a", false);
    let timeout = 3.0;
    let sub = c.subscriber(timeout);
    let base = format!("http://{}", sub.http.clone().unwrap());
    let http = cat2_e2e::http();
    subscribe(&http, &base, "one").await;
    // A small read: the cache is open, its one chunk still missing.
    let (status, _) = fetch(&http, &base, "one/one.b2nd", "0:10").await;
    assert_eq!(status, 200);

    let nats = async_nats::connect(c.nats.url()).await.unwrap();
    let name = cat2_proto::RootName::new("one").unwrap();
    let mut requests = nats
        .subscribe(cat2_proto::subject::root_chunks(&name))
        .await
        .unwrap();
    nats.flush().await.unwrap();
    let pid = publ.pid().unwrap().to_string();
    signal(&pid, "-STOP");
    let slice = {
        let (http, base) = (http.clone(), base.clone());
        tokio::spawn(async move { fetch(&http, &base, "one/one.b2nd", "").await })
    };
    // The slice's fetch of the chunk is on the wire: the download waits on it.
    tokio::time::timeout(
        Duration::from_secs(20),
        futures::StreamExt::next(&mut requests),
    )
    .await
    .expect("the slice's chunk request")
    .expect("a message");
    let download = {
        let (http, base) = (http.clone(), base.clone());
        tokio::spawn(async move {
            let r = http
                .get(format!("{base}/files/one/one.b2nd"))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.bytes().await.unwrap_or_default())
        })
    };
    let (status, _) = slice.await.unwrap();
    assert!(status >= 500, "the slice ran out of time: {status}");
    signal(&pid, "-CONT");
    let (status, body) = download.await.unwrap();
    assert_eq!(status, 200, "the download kept its own deadline");
    assert!(cat2_e2e::decode_frame(&body).1 == data, "downloaded bytes");
}

/// A bad timeout, on the command line or in the configuration file, is refused with a
/// message naming it (it used to be ignored silently).
#[test]
fn a_bad_timeout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("c.toml");
    let flag = |bad: &str| vec![format!("--timeout={bad}")];
    let in_conf = |bad: &str| {
        std::fs::write(&conf, format!("[subscriber]\ntimeout = {bad}\n")).unwrap();
        vec!["--conf".to_owned(), conf.display().to_string()]
    };
    for (bad, args, names) in [
        ("-1", flag("-1"), "--timeout"),
        ("0", flag("0"), "--timeout"),
        ("NaN", flag("NaN"), "--timeout"),
        ("inf", flag("inf"), "--timeout"),
        ("1e30", flag("1e30"), "--timeout"),
        ("0 (file)", in_conf("0"), "[subscriber] timeout"),
        ("\"x\" (file)", in_conf("\"x\""), "[subscriber] timeout"),
        (
            "lots",
            vec!["--fetch-buffer=lots".to_owned()],
            "--fetch-buffer",
        ),
    ] {
        let mut child = std::process::Command::new(cat2_e2e::cluster::bin("cat2sub"))
            .args(&args)
            .args(["--http", "127.0.0.1:0", "--nats", "nats://127.0.0.1:1"])
            .arg("--statedir")
            .arg(dir.path())
            .current_dir(dir.path())
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if Instant::now() > deadline {
                child.kill().unwrap();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        let status = status.unwrap_or_else(|| panic!("timeout {bad}: still running"));
        assert!(!status.success(), "timeout {bad}: exited 0");
        let why = if names == "--fetch-buffer" {
            "size"
        } else {
            "seconds"
        };
        assert!(
            err.contains(names) && err.contains(why),
            "{names} {bad}: {err}"
        );
    }
}
