//! End to end, real binaries, NATS without authorization: a rogue client joins a root's queue
//! group and answers every chunk and blocks request it gets with well-formed bytes of other
//! chunks and blocks (the attack digests exist for). Every download and slice still equals
//! the source; the subscriber's metrics count the forged replies it dropped; and nothing the
//! rogue sent is in the cache.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_nats::HeaderMap;
use cat2_e2e::cluster::{Cluster, subscribe};
use cat2_e2e::{decode_frame, fetch, get_json};
use cat2_format::Dataset;
use cat2_proto::msg::{self, BlocksRequest, ChunksRequest};
use cat2_proto::{RootName, subject};
use futures::StreamExt;

/// `many.b2nd`: i64 300 000 items in 300 chunks of 1000, blocks of 250 (8 KB chunks, so a
/// download is many small requests, each handed to the rogue or the publisher at random).
fn write_many(root: &Path) -> Vec<u8> {
    let data: Vec<u8> = (0..300_000i64)
        .flat_map(|i| (i * 7 - 3).to_le_bytes())
        .collect();
    cat2_format::encode::write_b2nd_file(
        &root.join("many.b2nd"),
        "<i8",
        &[300_000],
        &[1000],
        &[250],
        &data,
        &[],
    )
    .unwrap();
    data
}

/// Answers `payload` (a chunks or blocks request) on `reply` with other items' bytes.
async fn forge(nats: &async_nats::Client, ds: &Dataset, verb: &str, payload: &[u8], reply: String) {
    let items: Vec<(u64, Vec<u8>)> = if verb == "chunks" {
        let Ok(r) = cat2_proto::decode::<ChunksRequest>("chunks", payload) else {
            return;
        };
        let n = ds.nchunks();
        r.chunks
            .iter()
            .map(|&c| (c, ds.raw_chunk((c + 1) % n).unwrap()))
            .collect()
    } else {
        let Ok(r) = cat2_proto::decode::<BlocksRequest>("blocks", payload) else {
            return;
        };
        r.blocks
            .iter()
            .map(|&b| (b, ds.one_block(r.chunk, (b + 1) % 4).unwrap().unwrap().0))
            .collect()
    };
    for (id, bytes) in items {
        let mut h = HeaderMap::new();
        h.insert(msg::HDR_CHUNK, id.to_string().as_str());
        h.insert(msg::HDR_PART, "0/1");
        h.insert(msg::HDR_SIZE, bytes.len().to_string().as_str());
        if nats
            .publish_with_headers(reply.clone(), h, bytes.into())
            .await
            .is_err()
        {
            return;
        }
    }
    let _ = nats.flush().await;
}

/// `name` of the subscriber's `/metrics` summed over its labels matching `label`.
async fn metric(http: &reqwest::Client, base: &str, name: &str, label: &str) -> f64 {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rogue_in_the_queue_group_gets_no_forged_byte_served_or_cached() {
    let mut c = Cluster::new(&[]);
    let root = c.path("root");
    std::fs::create_dir_all(&root).unwrap();
    let data = write_many(&root);
    let _bro = c.broker();
    let _publ = c.publisher("foo", &root, "a", false);
    // A small fetch buffer: the download goes as ~40 requests of 8 chunks.
    let sub = c.subscriber_with(20.0, &["--fetch-buffer", "64KiB"]);
    let base = format!("http://{}", sub.http.clone().unwrap());
    let http = cat2_e2e::http();

    // The rogue: in foo's queue group for chunks and blocks, answering with other bytes.
    let ds = Arc::new(Dataset::open(&root.join("many.b2nd")).unwrap());
    let nats = async_nats::connect(c.nats.url()).await.unwrap();
    let name = RootName::new("foo").unwrap();
    let forged = Arc::new(AtomicU64::new(0));
    for verb in ["chunks", "blocks"] {
        let subj = subject::root_request(Some(&name), verb);
        let mut s = nats
            .queue_subscribe(subj, subject::root_queue_group(&name))
            .await
            .unwrap();
        let (nats, ds, forged) = (nats.clone(), ds.clone(), forged.clone());
        tokio::spawn(async move {
            while let Some(m) = s.next().await {
                let Some(reply) = m.reply.clone() else {
                    continue;
                };
                forged.fetch_add(1, Ordering::Relaxed);
                forge(&nats, &ds, verb, &m.payload, reply.to_string()).await;
            }
        });
    }
    nats.flush().await.unwrap();

    subscribe(&http, &base, "foo").await;
    // Small reads (blocks), one per chunk of the first 20.
    for i in 0..20u64 {
        let at = i * 1000 + 300;
        let (status, body) =
            fetch(&http, &base, "foo/many.b2nd", &format!("{at}:{}", at + 10)).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let (_, got) = decode_frame(&body);
        assert_eq!(
            got,
            data[at as usize * 8..(at as usize + 10) * 8],
            "slice at {at}"
        );
    }
    // The whole file.
    let (status, url) = get_json(&http, &format!("{base}/api/download/foo/many.b2nd")).await;
    assert_eq!(status, 200, "{url}");
    let file = http
        .get(url.as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let (_, got) = decode_frame(&file);
    assert!(got == data, "the download equals the source");
    let rogue = forged.load(Ordering::Relaxed);
    assert!(rogue > 0, "the rogue answered some requests");
    let dropped = metric(
        &http,
        &base,
        "cat2_sub_fetch_retries_total",
        "reason=\"digest\"",
    )
    .await;
    assert!(
        dropped >= 1.0,
        "forged chunk replies dropped: {dropped} (rogue answered {rogue})"
    );
    let blocks = metric(
        &http,
        &base,
        "cat2_sub_fetch_retries_total",
        "reason=\"block_digest\"",
    )
    .await;
    assert!(
        blocks >= 1.0,
        "forged block replies dropped: {blocks} (rogue answered {rogue})"
    );
    // The cache holds the publisher's chunks, byte for byte.
    let cached = c.path("sub/cache/foo/many.b2nd");
    let cached = Dataset::open(&cached).unwrap();
    for n in 0..ds.nchunks() {
        assert_eq!(
            cached.raw_chunk(n).unwrap(),
            ds.raw_chunk(n).unwrap(),
            "chunk {n}"
        );
    }
}
