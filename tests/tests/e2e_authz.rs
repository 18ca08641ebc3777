//! NATS authorization made by `cat2-nats-auth`: the services work with their own users, and
//! nats-server itself refuses what a rogue client tries with another role's credentials or
//! none (design: sites-and-ops.md §B.1): registering or moving roots, answering a root's
//! requests, spoofing changes and root events, reading other clients' replies, and reflecting
//! a publisher's replies to a subject of its choosing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cat2_e2e::cluster::{Cluster, bin, subscribe, wait_until};
use cat2_proto::ErrorCode;
use tokio::sync::mpsc;

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../root-example")
}

/// Runs `cat2-nats-auth` into `dir/auth` and returns that directory.
fn generate(dir: &Path) -> PathBuf {
    let out = dir.join("auth");
    let run = std::process::Command::new(bin("cat2-nats-auth"))
        .args(["--out", &out.display().to_string()])
        .args(["--publisher", "foo", "--subscriber", "default", "--monitor"])
        .args(["--cost", "4"])
        .output()
        .expect("run cat2-nats-auth");
    assert!(run.status.success(), "{run:?}");
    out
}

/// `[nats]` user and password of a generated `<user>.toml`.
fn credentials(auth: &Path, user: &str) -> (String, String, String) {
    let text = std::fs::read_to_string(auth.join(format!("{user}.toml"))).unwrap();
    let s = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k} = \"")))
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or_else(|| panic!("{k} in {user}.toml"))
            .to_owned()
    };
    (s("user"), s("password"), s("inbox_prefix"))
}

/// A client with `user`'s credentials whose server errors (permission violations) arrive on
/// the returned channel.
async fn client(
    url: &str,
    auth: &Path,
    user: &str,
) -> (async_nats::Client, mpsc::UnboundedReceiver<String>) {
    let (name, password, prefix) = credentials(auth, user);
    let (tx, rx) = mpsc::unbounded_channel();
    let nats = async_nats::ConnectOptions::with_user_and_password(name, password)
        .custom_inbox_prefix(prefix)
        .event_callback(move |e| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(e.to_string());
            }
        })
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("{user} connects: {e}"));
    (nats, rx)
}

/// Waits for a permission violation naming `subject` among `errors`.
async fn refused(errors: &mut mpsc::UnboundedReceiver<String>, subject: &str) {
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = errors.recv().await {
            let e = e.to_lowercase();
            if e.contains("permissions violation") && e.contains(&subject.to_lowercase()) {
                return;
            }
        }
    })
    .await;
    assert!(found.is_ok(), "no permission violation for {subject}");
}

/// Nothing arrived on `sub` up to now: `observer` round-trips to the server after `rogue`'s
/// message was handled (both flushed), so a delivered message would already be queued.
async fn nothing_delivered(
    rogue: &async_nats::Client,
    observer: &async_nats::Client,
    sub: &mut async_nats::Subscriber,
) {
    use futures::StreamExt as _;
    rogue.flush().await.unwrap();
    observer.flush().await.unwrap();
    let got = tokio::time::timeout(Duration::from_millis(1), sub.next()).await;
    assert!(got.is_err(), "delivered: {got:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_generated_users_services_work_and_rogues_are_refused_by_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let auth = generate(dir.path());
    let server_conf = dir.path().join("server.conf");
    // Include paths are relative to the including file.
    std::fs::write(&server_conf, "include \"auth/auth.conf\"\n").unwrap();
    let mut c = Cluster::new(&["-c", &server_conf.display().to_string()]);
    let url = c.nats.url().to_owned();
    let conf = |u: &str| auth.join(format!("{u}.toml")).display().to_string();
    let _bro = c.broker_with("bro", &["--conf", &conf("bro")]);
    let _publ = c.publisher_with("foo", &example(), "a", false, &["--conf", &conf("pub-foo")]);
    let sub = c.subscriber_with(10.0, &["--conf", &conf("sub-default")]);
    let base = format!("http://{}", sub.http.clone().unwrap());
    let http = cat2_e2e::http();

    // The services work with their own users.
    subscribe(&http, &base, "foo").await;
    let want = std::fs::read(example().join("ds-1d.b2nd")).unwrap();
    let got = http
        .get(format!("{base}/files/foo/ds-1d.b2nd"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    let got = got.bytes().await.unwrap();
    assert_eq!(got.len(), want.len());
    let roots_before = http
        .get(format!("{base}/api/roots"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !c.nats.log().contains("Violation"),
        "services hit violations:\n{}",
        c.nats.log()
    );

    // No credentials: refused at connection.
    assert!(
        async_nats::ConnectOptions::new()
            .connect(&url)
            .await
            .is_err(),
        "a client without credentials connected"
    );

    // A rogue holding the subscriber's credentials, watched by a client with them too.
    let (rogue, mut errors) = client(&url, &auth, "sub-default").await;
    let (observer, _) = client(&url, &auth, "sub-default").await;
    let junk = bytes::Bytes::from_static(b"\x80");

    // Spoofed changes and root events are not delivered.
    for subject in ["cat2.v1.root.foo.changes", "cat2.v1.broker.events"] {
        let mut watch = observer.subscribe(subject).await.unwrap();
        observer.flush().await.unwrap();
        rogue.publish(subject, junk.clone()).await.unwrap();
        refused(&mut errors, subject).await;
        nothing_delivered(&rogue, &observer, &mut watch).await;
    }
    // Registering roots (new ones or moving foo) is refused.
    for subject in [
        "cat2.v1.broker.register.foo",
        "cat2.v1.broker.register.evil",
    ] {
        rogue.publish(subject, junk.clone()).await.unwrap();
        refused(&mut errors, subject).await;
    }
    // Joining foo's queue group to answer its chunk requests, or reading others' replies.
    for subject in ["cat2.v1.root.foo.chunks", "_INBOX.>"] {
        let _s = rogue
            .queue_subscribe(subject, "cat2-root-foo".into())
            .await
            .unwrap();
        rogue.flush().await.ok();
        refused(&mut errors, subject).await;
    }

    // A rogue holding foo's publisher credentials cannot register another root, and the
    // broker refuses a body that names another root than the subject.
    let (rogue_pub, mut pub_errors) = client(&url, &auth, "pub-foo").await;
    rogue_pub
        .publish("cat2.v1.broker.register.bar", junk.clone())
        .await
        .unwrap();
    refused(&mut pub_errors, "cat2.v1.broker.register.bar").await;
    // So are field sizes: an address of 1000 bytes is refused.
    for (root, http) in [
        ("bar", "evil.example:9".to_owned()),
        ("foo", "x".repeat(1000)),
    ] {
        let forged = cat2_proto::msg::Register {
            root: cat2_proto::RootName::new(root).unwrap(),
            publisher: "rogue".into(),
            http: Some(http),
        };
        let reply = rogue_pub
            .request(
                "cat2.v1.broker.register.foo",
                cat2_proto::encode(&forged).into(),
            )
            .await
            .unwrap();
        let code = cat2_client::remote_error(reply.headers.as_ref()).map(|e| e.code());
        assert_eq!(code, Some(ErrorCode::BadRequest), "{reply:?}");
    }

    // Reflection: a chunk request whose replies should go to a subject of the rogue's choice
    // makes the publisher's publishes fail there, not deliver.
    let req = cat2_proto::msg::ChunksRequest {
        path: cat2_proto::DatasetPath::new("ds-1d.b2nd").unwrap(),
        etag: "any".into(),
        chunks: vec![0],
        max_part: 1 << 20,
    };
    rogue
        .publish_with_reply(
            "cat2.v1.root.foo.chunks",
            "victim.inbox",
            cat2_proto::encode(&req).into(),
        )
        .await
        .unwrap();
    rogue.flush().await.unwrap();
    wait_until(
        "the publisher's reflected reply refused",
        Duration::from_secs(10),
        || async {
            c.nats
                .log()
                .contains("user:pub-foo\" - Publish Violation - Subject \"victim.inbox\"")
                .then_some(())
        },
    )
    .await;

    // The registry did not move, and data is still right.
    let roots_after = http
        .get(format!("{base}/api/roots"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(roots_after, roots_before);
    let again = http
        .get(format!("{base}/files/foo/ds-1d.b2nd"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(again, got);
}
