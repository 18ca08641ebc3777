//! `cat2cli show` prints arrays as NumPy prints them (what Caterva2's `cat2cli show` prints):
//! arrays of many dtypes written by python-blosc2, served through a subscriber, each printed
//! by the real `cat2cli` binary and compared with `str(array)` from NumPy in the same
//! venv. (`scripts/compat` compares with Caterva2 0.2.0's own `cat2cli` on root-example.)

use std::process::Command;

use cat2_e2e::cluster::{Cluster, bin, subscribe};
use cat2_e2e::run_python;

#[tokio::test(flavor = "multi_thread")]
async fn show_prints_what_numpy_prints() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cases");
    run_python("write_show_cases.py", &[&root]);
    let expected: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(root.join("expected.json")).unwrap())
            .unwrap();
    let mut c = Cluster::new(&[]);
    let _bro = c.broker();
    let _publ = c.publisher("np", &root, "a", false);
    let sub = c.subscriber(10.0);
    let host = sub.http.clone().unwrap();
    subscribe(&cat2_e2e::http(), &format!("http://{host}"), "np").await;
    let mut wrong = Vec::new();
    for (name, want) in &expected {
        let run = Command::new(bin("cat2cli"))
            .args(["--host", &host, "show", &format!("np/{name}.b2nd")])
            .output()
            .unwrap();
        assert!(run.status.success(), "{name}: {run:?}");
        let got = String::from_utf8_lossy(&run.stdout);
        let want = want.as_str().unwrap();
        if got.strip_suffix('\n') != Some(want) {
            wrong.push(format!("{name}:\n--- numpy\n{want}\n--- cat2cli\n{got}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // --json keeps the machine form.
    let run = Command::new(bin("cat2cli"))
        .args(["--host", &host, "show", "np/ints.b2nd", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "[[-5,12,300],[7,-1000,0]]"
    );
}
