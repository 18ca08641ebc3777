//! An HDF5 file as a root, end to end with the real binaries: datasets written by h5py are
//! listed, described, sliced (small reads by blocks too) and downloaded through the
//! subscriber equal to h5py's values, and when one dataset of the file changes in place, only
//! that dataset is announced as changed and its new data is served.

use std::time::Duration;

use cat2_e2e::cluster::{Cluster, subscribe, wait_until};
use cat2_e2e::{decode_frame, fetch, get_json, run_python};
use cat2_proto::msg::Change;
use cat2_proto::{RootName, subject};
use futures::StreamExt;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn an_hdf5_root_is_served_and_only_changed_datasets_are_announced() {
    let mut c = Cluster::new(&[]);
    let dir = c.path("data");
    run_python("write_hdf5.py", &[&dir]);
    let want: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let file = dir.join("cases.h5");
    let _bro = c.broker();
    let _publ = c.publisher("h5", &file, "a", false);
    let sub = c.subscriber(10.0);
    let base = format!("http://{}", sub.http.clone().unwrap());
    let http = cat2_e2e::http();
    subscribe(&http, &base, "h5").await;

    let (_, list) = get_json(&http, &format!("{base}/api/list/h5")).await;
    assert_eq!(list, want["order"], "listed in 0.2.0's order");
    let raw =
        |p: &str| std::fs::read(dir.join(want["datasets"][p]["raw"].as_str().unwrap())).unwrap();
    for p in [
        "blosc2/nd.b2nd",
        "sparse/filled.b2nd",
        "floats/f8_fletcher.b2nd",
        "ints/be_i4.b2nd",
        "scalars/S.b2nd",
        "compound/padded.b2nd",
        "compound/nested.b2nd",
        "links/grp/c8.b2nd",
    ] {
        let (_, info) = get_json(&http, &format!("{base}/api/info/h5/{p}")).await;
        assert_eq!(info["shape"], want["datasets"][p]["shape"], "{p}");
        let (status, body) = fetch(&http, &base, &format!("h5/{p}"), "").await;
        assert_eq!(status, 200, "{p}");
        assert!(decode_frame(&body).1 == raw(p), "{p}: fetched whole");
    }
    // A small read of a big converted chunk (by blocks) and a download.
    let big = "contiguous.b2nd";
    let (status, body) = fetch(&http, &base, &format!("h5/{big}"), "3:5,10:13").await;
    assert_eq!(status, 200);
    let all = raw(big);
    let row = |r: usize| &all[(r * 700 + 10) * 8..(r * 700 + 13) * 8];
    assert_eq!(decode_frame(&body).1, [row(3), row(4)].concat());
    let (_, url) = get_json(&http, &format!("{base}/api/download/h5/blosc2/d1.b2nd")).await;
    let file_bytes = http
        .get(url.as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(
        decode_frame(&file_bytes).1 == raw("blosc2/d1.b2nd"),
        "downloaded file"
    );

    // One dataset changes in place: only it is announced, and its new data is served.
    let nats = async_nats::connect(c.nats.url()).await.unwrap();
    let root = RootName::new("h5").unwrap();
    let mut changes = nats.subscribe(subject::root_changes(&root)).await.unwrap();
    nats.flush().await.unwrap();
    run_python("modify_hdf5.py", &[&file]);
    wait_until("new value served", Duration::from_secs(10), || async {
        let (s, b) = fetch(&http, &base, "h5/ints/i4.b2nd", "0:1,0:1").await;
        (s == 200 && decode_frame(&b).1 == 12345i32.to_le_bytes()).then_some(())
    })
    .await;
    let mut announced = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(300), changes.next()).await {
        let ch: Change = cat2_proto::decode("change", &m.payload).unwrap();
        announced.push(ch.path);
    }
    assert!(!announced.is_empty(), "the change was announced");
    assert!(
        announced.iter().all(|p| p == "ints/i4.b2nd"),
        "only the changed dataset is announced: {announced:?}"
    );
    // The others are still served from the new version of the file.
    let (status, body) = fetch(&http, &base, "h5/ints/u2.b2nd", "").await;
    assert_eq!(status, 200);
    assert!(decode_frame(&body).1 == raw("ints/u2.b2nd"));
}
