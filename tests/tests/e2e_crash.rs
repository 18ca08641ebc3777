//! `kill -9` of the subscriber at random points of cache fills: after each restart, every
//! dataset reads exactly as its source, whatever the kill left on disk (the cache files'
//! durability policy is in `cat2-format`'s `cache` module).

use std::time::Duration;

use cat2_e2e::cluster::{Cluster, subscribe};
use cat2_e2e::fetch;

/// Random bytes (they do not compress: filling takes real writes).
fn random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 56) as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_fills_never_serves_wrong_bytes() {
    // CAT2_CRASH_KILLS=50 for the long run; 12 by default to keep the suite fast.
    let kills: usize = std::env::var("CAT2_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    eprintln!("seed {seed}, {kills} kills");
    let mut c = Cluster::new(&[]);
    let root = c.path("r");
    std::fs::create_dir_all(&root).unwrap();
    let (chunks, chunk) = (64u64, 64u64 << 10);
    let n = chunks * chunk;
    let sources: Vec<Vec<u8>> = (0..kills)
        .map(|i| {
            let data = random(n as usize, seed ^ (i as u64 + 1));
            cat2_format::encode::write_b2nd_file(
                &root.join(format!("d{i}.b2nd")),
                "|u1",
                &[n],
                &[chunk],
                &[chunk],
                &data,
                &[],
            )
            .unwrap();
            data
        })
        .collect();
    let _bro = c.broker();
    let _publ = c.publisher("r", &root, "a", false);
    let http = cat2_e2e::http();
    let mut rng = seed;
    let mut torn = 0;
    for i in 0..sources.len() {
        let mut sub = c.subscriber(20.0);
        let base = format!("http://{}", sub.http.clone().unwrap());
        subscribe(&http, &base, "r").await;
        // A whole download and a slice fill dataset i; the kill lands somewhere in them.
        for path in [
            format!("/files/r/d{i}.b2nd"),
            format!("/api/fetch/r/d{i}.b2nd?slice_=100000:3000000&prefer_schunk=true"),
        ] {
            let (http, url) = (http.clone(), format!("{base}{path}"));
            tokio::spawn(async move { http.get(url).send().await.map(|r| r.bytes()) });
        }
        rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        // Random kill point, not synchronisation: anywhere from before the first chunk
        // arrives to after the fill.
        tokio::time::sleep(Duration::from_micros((rng >> 33) % 150_000)).await;
        sub.kill();

        // Restarted over whatever is on disk: this dataset and every one before read right.
        let sub = c.subscriber(20.0);
        let base = format!("http://{}", sub.http.clone().unwrap());
        subscribe(&http, &base, "r").await;
        for (j, src) in sources.iter().enumerate().take(i + 1) {
            let (status, body) = fetch(&http, &base, &format!("r/d{j}.b2nd"), "").await;
            assert_eq!(status, 200, "d{j} after kill {i} (seed {seed})");
            assert!(
                cat2_e2e::decode_frame(&body).1 == *src,
                "d{j} after kill {i} differs from its source (seed {seed}); log:\n{}",
                sub.log()
            );
        }
        torn += usize::from(sub.log().contains("cache file unusable"));
        drop(sub);
    }
    // How many kills left a torn file (found and made again): the others fell before the
    // first chunk or after a flush.
    eprintln!("{torn} of {kills} kills left a torn cache file");
}
