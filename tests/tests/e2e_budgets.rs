//! Bounds under load, end to end: the subscriber's memory budget for results in flight and
//! the publisher's bound on requests served at once.

use std::io::{Read, Write};
use std::time::Duration;

use cat2_e2e::cluster::{Cluster, subscribe, wait_until};
use cat2_e2e::fetch;

/// A 1-d `|u1` array of `chunks` chunks of `chunk` bytes each, with varied content.
fn write_array(path: &std::path::Path, chunks: u64, chunk: u64) -> Vec<u8> {
    let n = chunks * chunk;
    // Random bytes: the cache file is as large as the data (it does not compress).
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let data: Vec<u8> = (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 56) as u8
        })
        .collect();
    cat2_format::encode::write_b2nd_file(
        path,
        "|u1",
        &[n],
        &[chunk],
        &[chunk.min(1 << 16)],
        &data,
        &[],
    )
    .unwrap();
    data
}

/// A slice that needs more than the whole budget is refused with a 400 that says what to do;
/// while a download whose client does not read holds the budget, slices wait, then get a 503
/// with `Retry-After`; once it is gone, they are served again.
#[tokio::test(flavor = "multi_thread")]
async fn the_memory_budget_refuses_then_holds_off_then_serves() {
    let mut c = Cluster::new(&[]);
    let root = c.path("r");
    std::fs::create_dir_all(&root).unwrap();
    let big = write_array(&root.join("big.b2nd"), 64, 1 << 20);
    let _bro = c.broker();
    let _publ = c.publisher("r", &root, "a", false);
    let sub = c.subscriber_with(5.0, &["--memory-budget", "4MiB"]);
    let addr = sub.http.clone().unwrap();
    let base = format!("http://{addr}");
    let http = cat2_e2e::http();
    subscribe(&http, &base, "r").await;

    // 2 MiB decoded + encoded + a 1 MiB chunk: more than 4 MiB.
    let r = http
        .get(format!(
            "{base}/api/fetch/r/big.b2nd?slice_=0:2097152&prefer_schunk=true"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let detail = r.text().await.unwrap();
    assert!(
        detail.contains("--memory-budget") && detail.contains("/api/download"),
        "{detail}"
    );
    // A small one is served, and right.
    let (status, body) = fetch(&http, &base, "r/big.b2nd", "1000:1100").await;
    assert_eq!(status, 200);
    assert_eq!(cat2_e2e::decode_frame(&body).1, big[1000..1100]);

    // A client that asks for the whole file and does not read it: the transfer stalls once
    // the socket buffers are full, holding the reads it made in the budget.
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    write!(slow, "GET /files/r/big.b2nd HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let mut first = [0u8; 12];
    slow.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    // A slice that needs most of the budget, until it gets `status`.
    let slice_until = |what: &'static str, status: u16| {
        let (http, url) = (
            http.clone(),
            format!("{base}/api/fetch/r/big.b2nd?slice_=0:600000&prefer_schunk=true"),
        );
        wait_until(what, Duration::from_secs(60), move || {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let r = http.get(url).send().await.ok()?;
                (r.status() == status).then_some(r)
            }
        })
    };
    // Sooner or later it finds the budget taken.
    let busy = slice_until("a slice held off by the budget", 503).await;
    assert_eq!(
        busy.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let detail = busy.text().await.unwrap();
    assert!(detail.contains("memory budget"), "{detail}");
    drop(slow);
    // The stalled transfer's bytes go back once its client is gone.
    let r = slice_until("the budget back", 200).await;
    let body = r.bytes().await.unwrap();
    assert_eq!(cat2_e2e::decode_frame(&body).1, big[..600_000]);
}

/// A publisher at its bound of requests answers the others "busy" at once (they do not pile
/// up as tasks), and a subscriber asking it again gets its data.
#[tokio::test(flavor = "multi_thread")]
async fn a_publisher_at_its_bound_answers_busy_and_subscribers_ask_again() {
    let mut c = Cluster::new(&[]);
    let root = c.path("r");
    std::fs::create_dir_all(&root).unwrap();
    let data = write_array(&root.join("many.b2nd"), 4096, 1024);
    let _bro = c.broker();
    let _publ = c.publisher_with(
        "r",
        &root,
        "a",
        false,
        &["--max-requests", "1", "--queue-wait", "0"],
    );
    let nats = async_nats::connect(c.nats.url()).await.unwrap();
    let client = cat2_client::Client::new(nats, Duration::from_secs(10));
    let name = cat2_proto::RootName::new("r").unwrap();
    let path = cat2_proto::DatasetPath::new("many.b2nd").unwrap();
    let etag = wait_until("the dataset listed", Duration::from_secs(20), || async {
        client.info(&name, &path, None).await.ok().map(|i| i.etag)
    })
    .await;
    // Eight requests for all 4096 chunks at once: one is served, the others (arriving while
    // it reads) are told busy.
    let mut streams = Vec::new();
    for _ in 0..8 {
        let req = cat2_proto::msg::ChunksRequest {
            path: path.clone(),
            etag: etag.clone(),
            chunks: (0..4096).collect(),
            max_part: 1 << 20,
        };
        streams.push(client.chunks(&name, req).await.unwrap());
    }
    let (mut served, mut busy) = (0, 0);
    for mut s in streams {
        let mut got = 0;
        while let Some(item) = s.next().await {
            match item {
                Ok(_) => got += 1,
                Err(e) => {
                    assert_eq!(e.code(), cat2_proto::ErrorCode::Busy, "{e}");
                    assert!(e.to_string().contains("ask again"), "{e}");
                    busy += 1;
                    break;
                }
            }
        }
        if got == 4096 {
            served += 1;
        }
    }
    assert!(served >= 1 && busy >= 1, "served {served}, busy {busy}");

    // Subscribers retry busy answers: concurrent reads all succeed, with the right bytes.
    let sub = c.subscriber(20.0);
    let base = format!("http://{}", sub.http.clone().unwrap());
    let http = cat2_e2e::http();
    subscribe(&http, &base, "r").await;
    let reads: Vec<_> = (0..8u64)
        .map(|i| {
            let (http, base) = (http.clone(), base.clone());
            let (a, b) = (i * 500_000, i * 500_000 + 300_000);
            tokio::spawn(async move {
                (
                    a,
                    b,
                    fetch(&http, &base, "r/many.b2nd", &format!("{a}:{b}")).await,
                )
            })
        })
        .collect();
    for r in reads {
        let (a, b, (status, body)) = r.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(
            cat2_e2e::decode_frame(&body).1,
            data[a as usize..b as usize]
        );
    }
}
