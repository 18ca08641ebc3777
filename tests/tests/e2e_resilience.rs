//! End to end, real binaries on a real nats-server: chunks larger than `max_payload`, a
//! publisher replica dying mid-download, changes in a root, restarts of the subscriber and of
//! nats-server, and a publisher going away.

use std::path::Path;
use std::time::{Duration, Instant};

use cat2_e2e::cluster::{Cluster, subscribe, wait_until};
use cat2_e2e::{decode_frame, fetch, get_json};

/// Incompressible bytes.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn copy_example(to: &Path) {
    cat2_format::example::write_root_example(to).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_20_mib_chunk_crosses_a_1_mib_max_payload() {
    let mut c = Cluster::new(&[]);
    let root = c.path("big");
    std::fs::create_dir_all(&root).unwrap();
    let n = 20 << 20;
    let data = noise(n, 7);
    cat2_e2e::write_one_chunk_b2nd(&root.join("big.b2nd"), &data);
    let _bro = c.broker();
    let _publ = c.publisher("big", &root, "a", false);
    let sub = c.subscriber(20.0);
    let base = format!("http://{}", sub.http.clone().unwrap());
    let http = cat2_e2e::http();
    let nats = async_nats::connect(c.nats.url()).await.unwrap();
    assert_eq!(
        nats.server_info().max_payload,
        1 << 20,
        "server left at its 1 MiB default"
    );
    subscribe(&http, &base, "big").await;
    let (_, info) = get_json(&http, &format!("{base}/api/info/big/big.b2nd")).await;
    assert_eq!(info["schunk"]["nchunks"], 1);
    // Most of the chunk (a small read would fetch single blocks).
    let (status, body) = fetch(&http, &base, "big/big.b2nd", "1000:15001000").await;
    assert_eq!(status, 200);
    assert!(decode_frame(&body).1 == data[1000..15_001_000]);
    let (_, info) = get_json(&http, &format!("{base}/api/info/big/big.b2nd")).await;
    assert!(
        info["schunk"]["cbytes"].as_i64().unwrap() > (20 << 20) - 1024,
        "the whole chunk, verbatim: {info}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_publisher_replica_dies_mid_download_and_the_download_completes() {
    let mut c = Cluster::new(&[]);
    let root = c.path("two");
    std::fs::create_dir_all(&root).unwrap();
    let n = 48 << 20;
    let data = noise(n, 11);
    cat2_format::encode::write_b2nd_file(
        &root.join("data.b2nd"),
        "|u1",
        &[n as u64],
        &[512 << 10],
        &[64 << 10],
        &data,
        &[],
    )
    .unwrap();
    let _bro = c.broker();
    let mut a = c.publisher("two", &root, "a", false);
    let _b = c.publisher("two", &root, "b", false);
    let sub = c.subscriber(15.0);
    let base = format!("http://{}", sub.http.clone().unwrap());
    let http = cat2_e2e::http();
    subscribe(&http, &base, "two").await;
    let dl = {
        let (http, base) = (http.clone(), base.clone());
        tokio::spawn(
            async move { get_json(&http, &format!("{base}/api/download/two/data.b2nd")).await },
        )
    };
    wait_until("the download started", Duration::from_secs(10), || async {
        let (_, info) = get_json(&http, &format!("{base}/api/info/two/data.b2nd")).await;
        (info["schunk"]["cbytes"].as_i64().unwrap_or(0) > 0).then_some(())
    })
    .await;
    a.kill();
    let (status, url) = dl.await.unwrap();
    assert_eq!(status, 200, "{url}");
    let file = http
        .get(url.as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let (shape, got) = decode_frame(&file);
    assert_eq!(shape, vec![n as u64]);
    assert!(got == data, "downloaded data equals the source");
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_in_a_root_reach_the_subscriber_within_2_s() {
    let mut c = Cluster::new(&[]);
    let root = c.path("live");
    copy_example(&root);
    // Publisher and subscriber start before the broker: they wait for it by themselves.
    let _publ = c.publisher("live", &root, "a", false);
    let sub = c.subscriber(5.0);
    let _bro = c.broker();
    let base = format!("http://{}", sub.http.clone().unwrap());
    let http = cat2_e2e::http();
    subscribe(&http, &base, "live").await;
    let (status, before) = fetch(&http, &base, "live/ds-1d.b2nd", "0:3").await;
    assert_eq!(status, 200);
    assert_eq!(
        decode_frame(&before).1,
        (0..3i64).flat_map(i64::to_le_bytes).collect::<Vec<u8>>()
    );

    // Added.
    std::fs::write(root.join("new.txt"), b"fresh data").unwrap();
    let t = Instant::now();
    wait_until("new.txt listed", Duration::from_secs(2), || async {
        let (_, v) = get_json(&http, &format!("{base}/api/list/live")).await;
        v.as_array()?.iter().any(|p| p == "new.txt").then_some(())
    })
    .await;
    let (_, b) = fetch(&http, &base, "live/new.txt", "").await;
    assert_eq!(
        cat2_format::chunk::decompress_standalone(&b).unwrap(),
        b"fresh data"
    );
    println!("added: seen after {:?}", t.elapsed());

    // Modified (written aside, renamed in place, as careful writers do).
    let tmp = c.path("ds-1d.tmp.b2nd");
    let new: Vec<u8> = (0..1000i64)
        .map(|v| v * 10)
        .flat_map(i64::to_le_bytes)
        .collect();
    cat2_format::encode::write_b2nd_file(&tmp, "<i8", &[1000], &[100], &[10], &new, &[]).unwrap();
    std::fs::rename(&tmp, root.join("ds-1d.b2nd")).unwrap();
    let t = Instant::now();
    wait_until("modified data served", Duration::from_secs(2), || async {
        let (s, b) = fetch(&http, &base, "live/ds-1d.b2nd", "0:3").await;
        (s == 200 && decode_frame(&b).1 == new[..24]).then_some(())
    })
    .await;
    println!("modified: seen after {:?}", t.elapsed());

    // Deleted.
    std::fs::remove_file(root.join("dir1/ds-2d.b2nd")).unwrap();
    let t = Instant::now();
    wait_until("deleted dataset gone", Duration::from_secs(2), || async {
        let (s, _) = get_json(&http, &format!("{base}/api/info/live/dir1/ds-2d.b2nd")).await;
        (s == 404).then_some(())
    })
    .await;
    println!("deleted: seen after {:?}", t.elapsed());
    assert!(
        !c.path("sub/cache/live/dir1/ds-2d.b2nd").exists(),
        "its cache file is gone too"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn restarts_and_outages() {
    let mut c = Cluster::new(&[]);
    let root = c.path("r");
    copy_example(&root);
    let mut bro = c.broker();
    let mut publ = c.publisher("r", &root, "a", false);
    let mut sub = c.subscriber(2.0);
    let base = format!("http://{}", sub.http.clone().unwrap());
    let http = cat2_e2e::http();
    subscribe(&http, &base, "r").await;
    let (s, _) = fetch(&http, &base, "r/ds-1d.b2nd", "0:150").await;
    assert_eq!(s, 200);

    // The subscriber restarts: subscriptions and cache are kept.
    sub.terminate();
    let sub = c.subscriber(2.0);
    let base = format!("http://{}", sub.http.clone().unwrap());
    let (_, roots) = get_json(&http, &format!("{base}/api/roots")).await;
    assert_eq!(roots["r"]["subscribed"], true);
    let (s, _) = get_json(&http, &format!("{base}/api/list/r")).await;
    assert_eq!(s, 200);

    // The broker restarts: its registry is kept.
    bro.terminate();
    let _bro = c.broker();
    let nats = async_nats::connect(c.nats.url()).await.unwrap();
    let client = cat2_client::Client::new(nats, Duration::from_secs(2));
    let roots = wait_until(
        "the restarted broker answers",
        Duration::from_secs(10),
        || async { client.roots().await.ok() },
    )
    .await;
    assert!(
        roots.roots.iter().any(|r| r.name.as_str() == "r"),
        "{roots:?}"
    );

    // nats-server restarts: everyone reconnects by themselves.
    c.nats.restart();
    std::fs::write(root.join("after-restart.txt"), b"still here").unwrap();
    wait_until(
        "a change made after the NATS restart",
        Duration::from_secs(15),
        || async {
            let (_, v) = get_json(&http, &format!("{base}/api/list/r")).await;
            v.as_array()?
                .iter()
                .any(|p| p == "after-restart.txt")
                .then_some(())
        },
    )
    .await;
    let (s, b) = fetch(&http, &base, "r/ds-1d.b2nd", "500:502").await;
    assert_eq!(
        s, 200,
        "uncached chunks are fetched again after the NATS restart"
    );
    assert_eq!(
        decode_frame(&b).1,
        (500..502i64)
            .flat_map(i64::to_le_bytes)
            .collect::<Vec<u8>>()
    );

    // The publisher goes away: the root is shown offline, not forgotten; cached data is still
    // served; the rest is a 503 in time.
    publ.kill();
    wait_until("root shown offline", Duration::from_secs(8), || async {
        let (_, v) = get_json(&http, &format!("{base}/api/roots")).await;
        (v["r"]["online"] == false).then_some(())
    })
    .await;
    let (s, b) = fetch(&http, &base, "r/ds-1d.b2nd", "10:20").await;
    assert_eq!(s, 200, "cached chunks served without the publisher");
    assert_eq!(
        decode_frame(&b).1,
        (10..20i64).flat_map(i64::to_le_bytes).collect::<Vec<u8>>()
    );
    let t = Instant::now();
    let (s, body) = fetch(&http, &base, "r/ds-1d.b2nd", "900:910").await;
    let took = t.elapsed();
    assert!(
        s == 503 || s == 504,
        "uncached without a publisher: {s} {}",
        String::from_utf8_lossy(&body)
    );
    let detail: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(detail["detail"].is_string());
    assert!(
        took < Duration::from_secs(3),
        "answered within the 2 s timeout (+1 s): {took:?}"
    );
}

/// A chunk whose lengths are sound but whose compressed bytes are garbage (so it passes the
/// cheap check on arrival) is found when decoded: dropped from the cache, fetched again, and
/// reported as a 503 naming it, never served, while the rest of the dataset keeps working;
/// once the publisher's file is mended, the same read succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn a_chunk_that_does_not_decode_is_a_clear_503_and_heals() {
    let mut c = Cluster::new(&[]);
    let root = c.path("bad");
    std::fs::create_dir_all(&root).unwrap();
    let data: Vec<u8> = (0..400_000u32)
        .flat_map(|v| (v / 3).to_le_bytes())
        .collect();
    let write = |to: &Path| {
        cat2_format::encode::write_b2nd_file(
            to,
            "<u4",
            &[400, 1000],
            &[200, 1000],
            &[10, 1000],
            &data,
            &[],
        )
        .unwrap();
    };
    let file = root.join("a.b2nd");
    write(&file);
    // Garble the inside of chunk 1's first compressed stream, keeping every length.
    let chunk = cat2_format::Dataset::open(&file)
        .unwrap()
        .raw_chunk(1)
        .unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes
        .windows(chunk.len())
        .position(|w| w == chunk.as_slice())
        .unwrap();
    let start = i32::from_le_bytes(chunk[32..36].try_into().unwrap()) as usize;
    let csize = i32::from_le_bytes(chunk[start..start + 4].try_into().unwrap()) as usize;
    assert!(csize > 8);
    for b in &mut bytes[at + start + 4..at + start + 4 + csize] {
        *b = 0xff;
    }
    std::fs::write(&file, &bytes).unwrap();

    let _bro = c.broker();
    let _publ = c.publisher("bad", &root, "a", false);
    let sub = c.subscriber(10.0);
    let base = format!("http://{}", sub.http.clone().unwrap());
    let http = cat2_e2e::http();
    subscribe(&http, &base, "bad").await;
    // A small read (blocks) and a large one (the whole chunk): both a 503 naming the chunk.
    for slice in ["205:207, 0:5", "200:400"] {
        let (status, body) = fetch(&http, &base, "bad/a.b2nd", slice).await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 503, "{slice}: {text}");
        assert!(
            text.contains("chunk 1") && text.contains("decode"),
            "{text}"
        );
    }
    // Nothing of it stays cached; chunk 0 is fine.
    let (status, body) = fetch(&http, &base, "bad/a.b2nd", "0:200").await;
    assert_eq!(status, 200);
    assert!(decode_frame(&body).1 == data[..200 * 1000 * 4]);
    // The cache file is a valid frame holding chunk 0, chunk 1 uninitialised.
    let (_, info) = get_json(&http, &format!("{base}/api/info/bad/a.b2nd")).await;
    let cached =
        cat2_format::Dataset::open(Path::new(info["schunk"]["urlpath"].as_str().unwrap())).unwrap();
    assert!(!cached.chunk_is_uninit(0).unwrap());
    assert!(cached.chunk_is_uninit(1).unwrap(), "chunk 1 dropped");
    // The publisher's file is mended: the read succeeds.
    let tmp = c.path("a.b2nd");
    write(&tmp);
    std::fs::rename(&tmp, &file).unwrap();
    let (status, body) = wait_until(
        "the mended chunk served",
        Duration::from_secs(5),
        || async {
            let r = fetch(&http, &base, "bad/a.b2nd", "200:400").await;
            (r.0 == 200).then_some(r)
        },
    )
    .await;
    assert_eq!(status, 200);
    assert!(decode_frame(&body).1 == data[200 * 1000 * 4..]);
}
