//! End to end, real binaries on a real nats-server: the README quickstart steps through
//! Caterva2's REST API, bad input, NATS service discovery and connection names, clean stops.

use std::time::Duration;

use cat2_e2e::cluster::{Cluster, subscribe, wait_until};
use cat2_e2e::{decode_frame, fetch, get_json, get_reply};
use cat2_proto::rest::{
    DownloadReply, ErrorReply, ListReply, RootReply, RootsReply, SUBSCRIBED, SubscribeReply,
    UrlReply,
};
use serde_json::json;

fn example() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../root-example")
}

#[tokio::test(flavor = "multi_thread")]
async fn quickstart_through_the_rest_api() {
    let mut c = Cluster::new(&["-m", "-1"]);
    let _bro = c.broker();
    let publ = c.publisher("foo", &example(), "a", true);
    let sub = c.subscriber(10.0);
    let base = format!("http://{}", sub.http.clone().unwrap());
    let pub_http = publ.http.clone().unwrap();
    let http = cat2_e2e::http();

    let roots = wait_until("foo announced", Duration::from_secs(10), || async {
        let (_, v) = get_json(&http, &format!("{base}/api/roots")).await;
        v.get("foo").is_some().then_some(v)
    })
    .await;
    // The wire form Caterva2's clients parse, checked once as JSON; typed replies below.
    assert_eq!(
        roots["foo"],
        json!({"name": "foo", "http": pub_http, "subscribed": null, "online": true})
    );

    let r = http
        .post(format!("{base}/api/subscribe/foo"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<SubscribeReply>().await.unwrap(), SUBSCRIBED);
    let (_, roots) = get_reply::<RootsReply>(&http, &format!("{base}/api/roots")).await;
    assert_eq!(
        roots.unwrap()["foo"],
        RootReply {
            name: "foo".into(),
            http: pub_http.clone(),
            subscribed: Some(true),
            online: true
        }
    );

    let (_, names) = get_reply::<ListReply>(&http, &format!("{base}/api/list/foo")).await;
    let mut names = names.unwrap();
    names.sort();
    assert_eq!(
        names,
        [
            "README.md",
            "dir1/ds-2d.b2nd",
            "dir1/ds-3d.b2nd",
            "dir2/ds-4d.b2nd",
            "ds-1d-b.b2nd",
            "ds-1d.b2nd",
            "ds-hello.b2frame",
            "ds-sc-attr.b2nd"
        ]
    );
    let (_, urls) = get_reply::<UrlReply>(&http, &format!("{base}/api/url/foo")).await;
    assert_eq!(urls.unwrap(), [format!("http://{pub_http}")]);

    let (s, info) = get_json(&http, &format!("{base}/api/info/foo/ds-1d.b2nd")).await;
    assert_eq!(s, 200);
    assert_eq!(info["shape"], json!([1000]));
    assert_eq!(info["schunk"]["cbytes"], json!(0), "nothing cached yet");
    let (_, info) = get_json(&http, &format!("{base}/api/info/foo/ds-sc-attr.b2nd")).await;
    assert_eq!(
        info["schunk"]["vlmeta"],
        json!({"a": 1, "b": "foo", "c": 123.456})
    );

    // A slice fetches only the chunks it needs.
    let body = http
        .get(format!(
            "{base}/api/fetch/foo/ds-1d.b2nd?slice_=10:20&prefer_schunk=true"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(body.status(), 200);
    let (shape, data) = decode_frame(&body.bytes().await.unwrap());
    assert_eq!(shape, vec![10]);
    assert_eq!(
        data,
        (10..20i64).flat_map(i64::to_le_bytes).collect::<Vec<u8>>()
    );
    // A small read fetches only the blocks it needs: nothing is cached on disk...
    let (_, info) = get_json(&http, &format!("{base}/api/info/foo/ds-1d.b2nd")).await;
    assert_eq!(info["schunk"]["cbytes"], 0, "{info}");
    // ...a read of most of a chunk caches that chunk.
    let (status, body) = fetch(&http, &base, "foo/ds-1d.b2nd", "0:60").await;
    assert_eq!(status, 200);
    let (_, data) = decode_frame(&body);
    assert_eq!(
        data,
        (0..60i64).flat_map(i64::to_le_bytes).collect::<Vec<u8>>()
    );
    let (_, info) = get_json(&http, &format!("{base}/api/info/foo/ds-1d.b2nd")).await;
    let cached = info["schunk"]["cbytes"].as_i64().unwrap();
    assert!(cached > 0 && cached < 1000, "one chunk cached: {cached}");

    // n-d slices, whitespace, empty results.
    let r = http
        .get(format!(
            "{base}/api/fetch/foo/dir1/ds-2d.b2nd?slice_=%20:2,%20:8"
        ))
        .send()
        .await
        .unwrap();
    let (shape, data) = decode_frame(&r.bytes().await.unwrap());
    assert_eq!(shape, vec![2, 8]);
    let want: Vec<u8> = [0u16, 1, 2, 3, 4, 5, 6, 7, 20, 21, 22, 23, 24, 25, 26, 27]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(data, want);
    let r = http
        .get(format!(
            "{base}/api/fetch/foo/dir1/ds-2d.b2nd?slice_=10:20&prefer_schunk=false"
        ))
        .send()
        .await
        .unwrap();
    let (shape, data) = decode_frame(&r.bytes().await.unwrap());
    assert_eq!((shape, data.len()), (vec![0, 20], 0));

    // Bytes: a single chunk for 0.2.0 clients, a super-chunk frame for 2024.x ones.
    let r = http
        .get(format!(
            "{base}/api/fetch/foo/README.md?slice_=0:4&prefer_schunk=true"
        ))
        .send()
        .await
        .unwrap();
    let b = r.bytes().await.unwrap();
    assert_eq!(
        cat2_format::chunk::decompress_standalone(&b).unwrap(),
        b"This"
    );
    let r = http
        .get(format!("{base}/api/fetch/foo/ds-hello.b2frame?slice_=1:5"))
        .send()
        .await
        .unwrap();
    assert_eq!(decode_frame(&r.bytes().await.unwrap()).1, b"ello");

    // A whole dataset for a 2024.x client: the cache file itself.
    let r = http
        .get(format!("{base}/api/fetch/foo/dir2/ds-4d.b2nd"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"ds-4d.b2nd\""
    );
    let (shape, data) = decode_frame(&r.bytes().await.unwrap());
    assert_eq!((shape, data.len()), (vec![2, 3, 4, 5], 120 * 16));

    // Download: fills the cache, then /files serves a complete frame.
    let (_, url) =
        get_reply::<DownloadReply>(&http, &format!("{base}/api/download/foo/README.md")).await;
    let url = url.unwrap();
    assert_eq!(url, format!("{base}/files/foo/README.md.b2"));
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(
        decode_frame(&r.bytes().await.unwrap()).1,
        cat2_format::example::README.as_bytes()
    );
    let (_, url) = get_json(&http, &format!("{base}/api/download/foo/dir1/ds-3d.b2nd")).await;
    let r = http.get(url.as_str().unwrap()).send().await.unwrap();
    let (shape, data) = decode_frame(&r.bytes().await.unwrap());
    assert_eq!(shape, vec![3, 4, 5]);
    assert_eq!(
        data,
        (0..60u8)
            .flat_map(|v| f32::from(v).to_le_bytes())
            .collect::<Vec<u8>>()
    );

    // One byte range, HEAD, conditions on the entity tag.
    let url = url.as_str().unwrap();
    let r = http.get(url).send().await.unwrap();
    let tag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert!(
        tag.starts_with('"') && tag.len() > 4,
        "a strong entity tag: {tag}"
    );
    let whole = r.bytes().await.unwrap();
    let n = whole.len();
    for (range, want) in [
        ("bytes=0-9", 0..10),
        (&format!("bytes=10-{}", n - 1) as &str, 10..n),
        ("bytes=-7", n - 7..n),
        (&format!("bytes=5-{}", n + 100), 5..n),
        (&format!("bytes=-{}", n + 100), 0..n),
    ] {
        let r = http.get(url).header("range", range).send().await.unwrap();
        assert_eq!(r.status(), 206, "{range}");
        assert_eq!(
            r.headers()["content-range"],
            format!("bytes {}-{}/{n}", want.start, want.end - 1).as_str()
        );
        assert_eq!(r.bytes().await.unwrap(), whole[want], "{range}");
    }
    let r = http.get(url).header("range", format!("bytes={n}-")).send();
    let r = r.await.unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes */{n}").as_str()
    );
    // Several ranges: one multipart/byteranges answer, sorted, overlapping and touching
    // ranges merged, each part byte-exact.
    let r = http
        .get(url)
        .header("range", format!("bytes=20-29,0-1,4-5,6-8,25-33,{}-", n - 3))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap_or_else(|| panic!("{ct}"))
        .to_owned();
    let declared: usize = r.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = r.bytes().await.unwrap();
    assert_eq!(body.len(), declared);
    let mut expect = Vec::new();
    for (a, b) in [(0, 1), (4, 8), (20, 33), (n - 3, n - 1)] {
        expect.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Type: application/octet-stream\r\n\
                 Content-Range: bytes {a}-{b}/{n}\r\n\r\n"
            )
            .as_bytes(),
        );
        expect.extend_from_slice(&whole[a..=b]);
        expect.extend_from_slice(b"\r\n");
    }
    expect.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    assert_eq!(body, expect);
    // Other units, malformed values, a stale If-Range: the whole file.
    for (range, if_range) in [
        ("items=0-5", None),
        ("bytes=x", None),
        ("bytes=0-9", Some("\"another\"")),
    ] {
        let mut r = http.get(url).header("range", range);
        if let Some(v) = if_range {
            r = r.header("if-range", v);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 200, "{range} {if_range:?}");
        assert_eq!(r.bytes().await.unwrap(), whole, "{range} {if_range:?}");
    }
    let r = http
        .get(url)
        .header("range", "bytes=0-9")
        .header("if-range", &tag);
    assert_eq!(r.send().await.unwrap().status(), 206);
    let r = http
        .head(url)
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], n.to_string().as_str());
    assert!(r.bytes().await.unwrap().is_empty());
    let r = http
        .get(url)
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = http
        .get(url)
        .header("if-match", "\"another\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    let r = http.get(url).header("if-match", &tag).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap(), whole);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_clear_errors() {
    let mut c = Cluster::new(&[]);
    let _bro = c.broker();
    let _publ = c.publisher("foo", &example(), "a", false);
    let sub = c.subscriber(5.0);
    let base = format!("http://{}", sub.http.clone().unwrap());
    let http = cat2_e2e::http();
    subscribe(&http, &base, "foo").await;
    // Traversal, sent raw (HTTP clients normalise dot segments away): 400, never a file.
    for path in [
        "/api/info/foo/%2E%2E/%2E%2E/sub/db.json",
        "/api/fetch/foo/../../sub/db.json",
        "/files/foo/%2e%2e/x.b2nd",
        "/api/info/%2E%2E/x.b2nd",
    ] {
        let (status, body) = raw_get(sub.http.as_deref().unwrap(), path).await;
        assert!(status == 400 || status == 404, "{path}: {status} {body}");
        assert!(body.contains("detail"), "{path}: {body}");
    }
    let cases: &[(&str, u16)] = &[
        ("/api/info//etc/passwd", 400),
        ("/api/info/foo/nope.b2nd", 404),
        ("/api/info/nope/x.b2nd", 404),
        ("/api/list/nope", 404),
        ("/api/list/a.b", 400),
        ("/api/fetch/foo/ds-1d.b2nd?slice_=abc", 400),
        ("/api/fetch/foo/ds-1d.b2nd?slice_=::2", 400),
        ("/api/fetch/foo/ds-1d.b2nd?slice_=1000", 400),
        ("/api/fetch/foo/ds-1d.b2nd?slice_=1,2", 400),
        (
            "/api/fetch/foo/ds-1d.b2nd?slice_=0:1&prefer_schunk=maybe",
            400,
        ),
        ("/api/fetch/foo/README.md?slice_=0,1", 400),
        ("/files/foo/README.md", 404),
        ("/files/foo/../../sub/db.json", 404),
        ("/no/such/route", 404),
    ];
    for (path, status) in cases {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        let got = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap_or(serde_json::Value::Null);
        assert_eq!(got, *status, "{path}: {body}");
        assert!(
            body["detail"].is_string(),
            "{path}: JSON detail, got {body}"
        );
    }
    let r = http
        .post(format!("{base}/api/subscribe/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<ErrorReply>().await.unwrap().detail,
        "nope not known by the broker"
    );

    // Rogue messages on NATS change nothing.
    let nats = async_nats::connect(c.nats.url()).await.unwrap();
    for subject in [
        "cat2.v1.broker.events",
        "cat2.v1.root.foo.changes",
        "cat2.v1.root.foo.chunks",
        "cat2.v1.broker.register.foo",
    ] {
        nats.publish(subject, bytes::Bytes::from_static(b"\xc1\xff garbage"))
            .await
            .unwrap();
    }
    let reply = nats
        .request("cat2.v1.root.foo.info", bytes::Bytes::from_static(b"junk"))
        .await
        .unwrap();
    assert_eq!(
        reply
            .headers
            .unwrap()
            .get("Nats-Service-Error-Code")
            .unwrap()
            .as_str(),
        "400"
    );
    nats.flush().await.unwrap();
    let r = http
        .get(format!("{base}/api/fetch/foo/ds-1d.b2nd?slice_=5"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        decode_frame(&r.bytes().await.unwrap()).1,
        5i64.to_le_bytes()
    );
}

/// A GET sent byte for byte, without URL normalisation.
async fn raw_get(addr: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

#[tokio::test(flavor = "multi_thread")]
async fn services_are_discoverable_named_and_stop_cleanly() {
    let mut c = Cluster::new(&["-m", "-1"]);
    let mut bro = c.broker();
    let mut publ = c.publisher("foo", &example(), "a", false);
    let mut sub = c.subscriber(5.0);
    let nats = async_nats::connect(c.nats.url()).await.unwrap();
    let names = wait_until(
        "three services answer $SRV.PING",
        Duration::from_secs(10),
        || async {
            let inbox = nats.new_inbox();
            let mut replies = nats.subscribe(inbox.clone()).await.ok()?;
            nats.publish_with_reply("$SRV.PING", inbox, bytes::Bytes::new())
                .await
                .ok()?;
            let mut names = std::collections::BTreeSet::new();
            while let Ok(Some(m)) = tokio::time::timeout(
                Duration::from_millis(300),
                futures::StreamExt::next(&mut replies),
            )
            .await
            {
                let v: serde_json::Value = serde_json::from_slice(&m.payload).ok()?;
                assert!(
                    v["version"]
                        .as_str()
                        .is_some_and(|s| s.split('.').count() == 3),
                    "semver: {v}"
                );
                names.insert(v["name"].as_str()?.to_owned());
            }
            (names.len() == 3).then_some(names)
        },
    )
    .await;
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["cat2-broker", "cat2-publisher", "cat2-subscriber"]
    );
    let connz = format!("http://127.0.0.1:{}/connz", c.nats.monitor_port().unwrap());
    let http = cat2_e2e::http();
    let (_, v) = get_json(&http, &connz).await;
    let conns: Vec<String> = v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str().map(String::from))
        .collect();
    for want in ["cat2bro", "cat2pub foo", "cat2sub default"] {
        assert!(conns.iter().any(|n| n == want), "{want} in {conns:?}");
    }
    let took = sub.terminate();
    assert!(
        took < Duration::from_secs(2),
        "subscriber took {took:?} to stop"
    );
    // Even with NATS gone, the others stop within 2 s.
    c.nats.stop();
    for (what, p) in [("publisher", &mut publ), ("broker", &mut bro)] {
        let took = p.terminate();
        assert!(
            took < Duration::from_secs(2),
            "{what} took {took:?} to stop without NATS"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_requests_for_one_chunk_fetch_it_once() {
    let mut c = Cluster::new(&[]);
    let root = c.path("once");
    std::fs::create_dir_all(&root).unwrap();
    let data: Vec<u8> = (0..4_000_000u32).flat_map(u32::to_le_bytes).collect();
    cat2_format::encode::write_b2nd_file(
        &root.join("a.b2nd"),
        "<u4",
        &[4_000_000],
        &[1_000_000],
        &[100_000],
        &data,
        &[],
    )
    .unwrap();
    let _bro = c.broker();
    let _publ = c.publisher("once", &root, "a", false);
    let sub = c.subscriber(10.0);
    let base = format!("http://{}", sub.http.clone().unwrap());
    let http = cat2_e2e::http();
    subscribe(&http, &base, "once").await;
    let fetches = (0..8).map(|i| {
        let (http, base) = (http.clone(), base.clone());
        tokio::spawn(async move {
            // Most of chunk 1 (small reads fetch blocks instead: see the next test).
            let url = format!(
                "{base}/api/fetch/once/a.b2nd?slice_={}:{}&prefer_schunk=true",
                1_000_000 + i,
                1_900_000 + i
            );
            let r = http.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            decode_frame(&r.bytes().await.unwrap()).1
        })
    });
    for (i, f) in futures::future::join_all(fetches)
        .await
        .into_iter()
        .enumerate()
    {
        let start = (1_000_000 + i) * 4;
        assert!(f.unwrap() == data[start..start + 3_600_000], "read {i}");
    }
    // The publisher's own statistics ($SRV.STATS, ADR-32): one chunk request served.
    let nats = async_nats::connect(c.nats.url()).await.unwrap();
    assert_eq!(requests_reach(&nats, "chunks", 1).await, 1);
}

/// The publisher's count of requests to `endpoint` once it reaches `n` (it counts a request
/// after its reply is sent, so a moment after the requester got it).
async fn requests_reach(nats: &async_nats::Client, endpoint: &str, n: u64) -> u64 {
    wait_until(
        &format!("{n} {endpoint} requests counted"),
        Duration::from_secs(10),
        || async {
            let got = publisher_requests(nats, endpoint).await;
            (got >= n).then_some(got)
        },
    )
    .await
}

/// The publisher's count of requests to one of its endpoints (`$SRV.STATS`, ADR-32).
async fn publisher_requests(nats: &async_nats::Client, endpoint: &str) -> u64 {
    let stats = nats
        .request("$SRV.STATS.cat2-publisher", bytes::Bytes::new())
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&stats.payload).unwrap();
    v["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == endpoint)
        .and_then(|e| e["num_requests"].as_u64())
        .unwrap_or_else(|| panic!("no endpoint {endpoint}: {v}"))
}

/// A small read of an uncached chunk asks the publisher for the blocks it needs, not the
/// chunk; with `--prefetch-chunks` the chunk is then cached whole in the background.
#[tokio::test(flavor = "multi_thread")]
async fn small_reads_fetch_blocks_not_chunks() {
    let mut c = Cluster::new(&[]);
    let root = c.path("blk");
    std::fs::create_dir_all(&root).unwrap();
    let data: Vec<u8> = (0..400_000u32)
        .flat_map(|v| (v.wrapping_mul(2_654_435_761) >> 7).to_le_bytes())
        .collect();
    cat2_format::encode::write_b2nd_file(
        &root.join("a.b2nd"),
        "<u4",
        &[400, 1000],
        &[200, 1000],
        &[10, 1000],
        &data,
        &[],
    )
    .unwrap();
    let _bro = c.broker();
    let _publ = c.publisher("blk", &root, "a", false);
    let mut sub = c.subscriber(10.0);
    let http = cat2_e2e::http();
    let nats = async_nats::connect(c.nats.url()).await.unwrap();
    for prefetch in [false, true] {
        let base = format!("http://{}", sub.http.clone().unwrap());
        subscribe(&http, &base, "blk").await;
        let (chunks0, blocks0) = (
            publisher_requests(&nats, "chunks").await,
            publisher_requests(&nats, "blocks").await,
        );
        // Rows 215..225 of chunk 1 (blocks 1 and 2 of its 20), columns 3..9.
        let (status, body) = fetch(&http, &base, "blk/a.b2nd", "215:225,3:9").await;
        assert_eq!(status, 200);
        let (shape, got) = decode_frame(&body);
        assert_eq!(shape, vec![10, 6]);
        let want: Vec<u8> = (215..225)
            .flat_map(|i| data[(i * 1000 + 3) * 4..(i * 1000 + 9) * 4].to_vec())
            .collect();
        assert_eq!(got, want);
        assert_eq!(
            requests_reach(&nats, "blocks", blocks0 + 1).await,
            blocks0 + 1
        );
        let info_url = format!("{base}/api/info/blk/a.b2nd");
        if prefetch {
            wait_until(
                "chunk 1 cached in the background",
                Duration::from_secs(10),
                || async {
                    let (_, info) = get_json(&http, &info_url).await;
                    (info["schunk"]["cbytes"].as_i64() > Some(0)).then_some(())
                },
            )
            .await;
            assert_eq!(
                requests_reach(&nats, "chunks", chunks0 + 1).await,
                chunks0 + 1
            );
        } else {
            assert_eq!(publisher_requests(&nats, "chunks").await, chunks0);
            let (_, info) = get_json(&http, &info_url).await;
            assert_eq!(info["schunk"]["cbytes"], 0, "nothing cached: {info}");
            // Again: served from the blocks kept in memory, no new request.
            let (_, body) = fetch(&http, &base, "blk/a.b2nd", "215:225,3:9").await;
            assert_eq!(decode_frame(&body).1, want);
            assert_eq!(publisher_requests(&nats, "blocks").await, blocks0 + 1);
            sub.terminate();
            std::fs::remove_dir_all(c.path("sub")).ok();
            sub = c.subscriber_with(10.0, &["--prefetch-chunks"]);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_quickstart_steps() {
    let mut c = Cluster::new(&[]);
    let _bro = c.broker();
    let _publ = c.publisher("foo", &example(), "a", true);
    let sub = c.subscriber(10.0);
    let host = sub.http.clone().unwrap();
    let out = c.path("downloads");
    let cli = |args: &[&str]| {
        let o = std::process::Command::new(cat2_e2e::cluster::bin("cat2cli"))
            .arg("--host")
            .arg(&host)
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    wait_until("foo announced", Duration::from_secs(10), || async {
        let (code, stdout, _) = cli(&["roots"]);
        (code == Some(0) && stdout.lines().any(|l| l == "foo")).then_some(())
    })
    .await;
    assert_eq!(cli(&["subscribe", "foo"]).1.trim(), "Ok");
    assert!(cli(&["roots"]).1.lines().any(|l| l == "foo (subscribed)"));
    assert!(
        cli(&["list", "foo"])
            .1
            .lines()
            .any(|l| l == "foo/dir1/ds-2d.b2nd")
    );
    assert!(cli(&["url", "foo"]).1.starts_with("http://127.0.0.1:"));
    let (code, info, _) = cli(&["info", "foo/ds-1d.b2nd", "--json"]);
    assert_eq!(code, Some(0));
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["shape"], json!([1000]));
    let (code, shown, _) = cli(&["show", "foo/ds-1d.b2nd[10:15]"]);
    assert_eq!((code, shown.trim()), (Some(0), "[10 11 12 13 14]"));
    let (_, json, _) = cli(&["show", "foo/ds-1d.b2nd[10:15]", "--json"]);
    assert_eq!(json.trim(), "[10,11,12,13,14]");
    assert_eq!(
        cli(&["show", "foo/README.md"]).1,
        cat2_format::example::README.to_owned() + "\n"
    );
    let (code, _, _) = cli(&["download", "foo/dir1/ds-2d.b2nd", out.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    let got = std::fs::read(out.join("foo/dir1/ds-2d.b2nd")).unwrap();
    assert_eq!(
        decode_frame(&got).1,
        (0..200u16).flat_map(u16::to_le_bytes).collect::<Vec<u8>>()
    );
    let (code, _, _) = cli(&["download", "foo/README.md", out.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    assert_eq!(
        std::fs::read_to_string(out.join("foo/README.md")).unwrap(),
        cat2_format::example::README
    );
    let (code, _, err) = cli(&["show", "foo/ds-1d.b2nd[::2]"]);
    assert_eq!(code, Some(1));
    assert!(err.starts_with("Error: "), "{err}");
    let (code, _, err) = cli(&["info", "foo/nope.b2nd"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("Not Found"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_secured_nats_server() {
    let mut c = Cluster::new(&["--auth", "s3cret-token"]);
    // Services run in the cluster directory and read its ./caterva2.toml.
    std::fs::write(
        c.path("caterva2.toml"),
        "[nats]\ntoken = \"s3cret-token\"\n",
    )
    .unwrap();
    let _bro = c.broker();
    let _publ = c.publisher("foo", &example(), "a", false);
    let sub = c.subscriber(5.0);
    let base = format!("http://{}", sub.http.clone().unwrap());
    let http = cat2_e2e::http();
    wait_until(
        "subscribed through the secured server",
        Duration::from_secs(10),
        || async {
            let r = http
                .post(format!("{base}/api/subscribe/foo"))
                .send()
                .await
                .ok()?;
            (r.status() == 200).then_some(())
        },
    )
    .await;
    let r = http
        .get(format!(
            "{base}/api/fetch/foo/ds-1d.b2nd?slice_=7&prefer_schunk=true"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        decode_frame(&r.bytes().await.unwrap()).1,
        7i64.to_le_bytes()
    );
    let anonymous = async_nats::ConnectOptions::new()
        .connect(c.nats.url())
        .await;
    assert!(anonymous.is_err(), "the server does require the token");
}
