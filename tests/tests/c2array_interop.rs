//! python-blosc2's `C2Array` (the latest release, in the test venv) against a cat2
//! subscriber: slices, coordinate lists (GET and the long-list POST), raw chunks, `Proxy`,
//! lazy expressions and reductions, `blosc2.open(URLPath)`, and 400s for what cat2 does not
//! implement (`tests/python/check_c2array.py`).

use std::path::Path;

use cat2_e2e::cluster::{Cluster, subscribe};
use cat2_e2e::run_python;

#[tokio::test(flavor = "multi_thread")]
async fn c2array_reads_cat2_as_it_reads_caterva2() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    run_python("check_c2array.py", &[Path::new("write"), &root]);
    let mut c = Cluster::new(&[]);
    let _bro = c.broker();
    let _publ = c.publisher("arrays", &root, "a", false);
    let sub = c.subscriber(10.0);
    let base = format!("http://{}", sub.http.clone().unwrap());
    subscribe(&cat2_e2e::http(), &base, "arrays").await;
    let base = format!("{base}/");
    let said = tokio::task::spawn_blocking(move || {
        run_python(
            "check_c2array.py",
            &[
                Path::new("check"),
                Path::new(&base),
                Path::new("arrays"),
                &root,
            ],
        )
    })
    .await
    .unwrap();
    println!("{said}");
    assert!(said.contains("ok 2-d mask refused"), "{said}");
}
