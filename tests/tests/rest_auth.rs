//! REST authentication with the real binaries: `cat2sub --auth-tokens` (SHA-256 digests)
//! refuses requests without a token (401, Caterva2's body), `cat2cli --token` and
//! python-blosc2's `C2Array(auth_token="c2subauth=TOKEN")` get in.

use std::path::Path;
use std::process::Command;

use cat2_e2e::cluster::{Cluster, bin};
use cat2_e2e::run_python;

fn example() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../root-example")
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_guard_the_rest_api() {
    let token = "9f3c1b2a-long-random-token";
    // `printf %s $TOKEN | sha256sum`, as the README says to make it.
    let digest = "sha256:9753eb9c71ca0a68adccc881ec5ac316c05c7470d40173c82aaa178e7f88863e";
    let mut c = Cluster::new(&[]);
    let _bro = c.broker();
    let _publ = c.publisher("foo", &example(), "a", false);
    let sub = c.subscriber_with(10.0, &["--auth-tokens", digest]);
    let host = sub.http.clone().unwrap();
    let http = cat2_e2e::http();
    let r = http
        .get(format!("http://{host}/api/roots"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.text().await.unwrap(), r#"{"detail":"Unauthorized"}"#);
    let cli = |args: &[&str]| {
        Command::new(bin("cat2cli"))
            .args(["--host", &host])
            .args(args)
            .env_remove("CAT2_TOKEN")
            .output()
            .unwrap()
    };
    let denied = cli(&["roots"]);
    assert_eq!(denied.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&denied.stderr).contains("Unauthorized"));
    // Subscribe with the token (retrying until the publisher is announced).
    cat2_e2e::cluster::wait_until("subscribed", std::time::Duration::from_secs(15), || async {
        cli(&["--token", token, "subscribe", "foo"])
            .status
            .success()
            .then_some(())
    })
    .await;
    let shown = cli(&["--token", token, "show", "foo/dir1/ds-2d.b2nd[0, 0:3]"]);
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), "[0 1 2]");
    let said = tokio::task::spawn_blocking(move || {
        let base = format!("http://{host}/");
        run_python(
            "check_token.py",
            &[
                Path::new(&base),
                Path::new("foo/dir1/ds-2d.b2nd"),
                Path::new(token),
            ],
        )
    })
    .await
    .unwrap();
    assert!(said.contains("ok 401 without"), "{said}");
}
