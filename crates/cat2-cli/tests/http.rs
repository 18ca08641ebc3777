//! The commands against a tiny fake subscriber speaking raw HTTP/1.1 on a local port.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use cat2_cli::{
    Api, CliError, DownloadArgs, JsonArgs, PathArgs, RootArgs, ShowArgs, UrlArgs, cmd_download,
    cmd_info, cmd_list, cmd_roots, cmd_show, cmd_subscribe, cmd_url,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const README: &[u8] = b"# Example root\n\nThis is a plain file, served as a super-chunk.\n";

/// A fake subscriber: its address and the request lines it received.
struct Fake {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let log = log.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let line = head.lines().next().unwrap_or_default().to_owned();
                    log.lock().unwrap().push(line.clone());
                    let (status, body) = route(&line, addr);
                    let reply = format!(
                        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = sock.write_all(reply.as_bytes()).await;
                    let _ = sock.write_all(&body).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Self { addr, seen }
    }

    fn api(&self) -> Api {
        Api::new(&self.addr.to_string()).unwrap()
    }

    fn last_request(&self) -> String {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default()
    }
}

fn ds_2d() -> Vec<u8> {
    let data: Vec<u8> = (0u16..8).flat_map(u16::to_le_bytes).collect();
    cat2_format::encode::b2nd_cframe("<u2", &[2, 4], &data).unwrap()
}

fn route(line: &str, addr: SocketAddr) -> (&'static str, Vec<u8>) {
    let ok = |s: &str| ("200 OK", s.as_bytes().to_vec());
    let target = line.split(' ').nth(1).unwrap_or_default();
    match (line.split(' ').next().unwrap_or_default(), target) {
        ("GET", "/api/roots") => ok(
            r#"{"foo":{"name":"foo","http":"localhost:8001","subscribed":true},"bar":{"name":"bar","http":"localhost:8100","subscribed":null}}"#,
        ),
        ("POST", "/api/subscribe/foo") => ok(r#""Ok""#),
        ("POST", "/api/subscribe/nope") => (
            "404 Not Found",
            br#"{"detail":"nope not known by the broker"}"#.to_vec(),
        ),
        ("GET", "/api/list/foo") => ok(r#"["README.md","dir1/ds-2d.b2nd"]"#),
        ("GET", "/api/url/foo") => ok(r#"["http://localhost:8001"]"#),
        ("GET", "/api/info/foo/README.md") => ok(r#"{"nbytes":63,"vlmeta":{}}"#),
        ("GET", t) if t.starts_with("/api/fetch/foo/dir1/ds-2d.b2nd") => ("200 OK", ds_2d()),
        ("GET", t) if t.starts_with("/api/fetch/foo/README.md") => (
            "200 OK",
            cat2_format::encode::single_chunk(1, &README[2..9]).unwrap(),
        ),
        ("GET", "/api/download/foo/README.md") => {
            ok(&format!(r#""http://{addr}/files/foo/README.md.b2""#))
        }
        ("GET", "/files/foo/README.md.b2") => (
            "200 OK",
            cat2_format::encode::schunk_cframe(1, README).unwrap(),
        ),
        ("GET", "/api/download/foo/dir1/ds-2d.b2nd") => {
            ok(&format!(r#""http://{addr}/files/foo/dir1/ds-2d.b2nd""#))
        }
        ("GET", "/files/foo/dir1/ds-2d.b2nd") => ("200 OK", ds_2d()),
        _ => (
            "500 Internal Server Error",
            b"Internal Server Error".to_vec(),
        ),
    }
}

/// Runs a command into a buffer: its output as text, or its error.
macro_rules! run {
    ($cmd:ident, $args:expr, $api:expr) => {{
        let mut out = Vec::new();
        let r = $cmd(&$args, &$api, &mut out).await;
        r.map(|()| String::from_utf8(out).unwrap())
    }};
}

#[tokio::test]
async fn json_commands() {
    let fake = Fake::start().await;
    let api = fake.api();
    let plain = JsonArgs { json: false };
    let text = run!(cmd_roots, plain, api);
    assert_eq!(text.unwrap(), "foo (subscribed)\nbar\n");
    let sub = RootArgs {
        root: "foo".into(),
        json: false,
    };
    let text = run!(cmd_subscribe, sub, api);
    assert_eq!(text.unwrap(), "Ok\n");
    let sub = RootArgs {
        root: "foo".into(),
        json: true,
    };
    let text = run!(cmd_subscribe, sub, api);
    assert_eq!(text.unwrap(), "\"Ok\"\n");
    let list = RootArgs {
        root: "foo".into(),
        json: false,
    };
    let text = run!(cmd_list, list, api);
    assert_eq!(text.unwrap(), "foo/README.md\nfoo/dir1/ds-2d.b2nd\n");
    let url = UrlArgs {
        path: "foo".into(),
        json: true,
        fetch: false,
    };
    let text = run!(cmd_url, url, api);
    assert_eq!(text.unwrap(), "[\"http://localhost:8001\"]\n");
    // Caterva2 2024.x's form: the dataset at this subscriber, no request made.
    let url = UrlArgs {
        path: "foo/dir1/ds-2d.b2nd".into(),
        json: false,
        fetch: true,
    };
    let text = run!(cmd_url, url, api).unwrap();
    assert!(text.ends_with("/api/fetch/foo/dir1/ds-2d.b2nd\n"), "{text}");
    let info = PathArgs {
        path: "foo/README.md".into(),
        json: false,
    };
    let text = run!(cmd_info, info, api);
    let text = text.unwrap();
    assert!(
        text.starts_with("Getting info for foo/README.md\n{\n  \"nbytes\": 63"),
        "{text}"
    );
}

#[tokio::test]
async fn errors() {
    let fake = Fake::start().await;
    let api = fake.api();
    let sub = RootArgs {
        root: "nope".into(),
        json: false,
    };
    let r = run!(cmd_subscribe, sub, api);
    match r {
        Err(CliError::Status {
            status: 404,
            message,
        }) => {
            assert_eq!(message, "nope not known by the broker");
        }
        other => panic!("{other:?}"),
    }
    let info = PathArgs {
        path: "foo/broken".into(),
        json: false,
    };
    let r = run!(cmd_info, info, api);
    assert_eq!(r.unwrap_err().to_string(), "500 Internal Server Error");

    // Nothing listens on a port just released.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = Api::new(&l.local_addr().unwrap().to_string()).unwrap();
    drop(l);
    let plain = JsonArgs { json: false };
    let r = run!(cmd_roots, plain, dead);
    assert!(matches!(r, Err(CliError::Request(_))));
}

#[tokio::test]
async fn show_sends_slices_and_decodes() {
    let fake = Fake::start().await;
    let api = fake.api();
    let show = ShowArgs {
        dataset: "foo/dir1/ds-2d.b2nd[0:2, 4:8]".into(),
        json: false,
    };
    let text = run!(cmd_show, show, api);
    assert_eq!(text.unwrap(), "[[0 1 2 3]\n [4 5 6 7]]\n", "NumPy's text");
    assert_eq!(
        fake.last_request(),
        "GET /api/fetch/foo/dir1/ds-2d.b2nd?slice_=0%3A2%2C+4%3A8&prefer_schunk=true HTTP/1.1"
    );
    let show = ShowArgs {
        dataset: "foo/README.md".into(),
        json: false,
    };
    let text = run!(cmd_show, show, api);
    assert_eq!(text.unwrap(), "Example\n");
    assert_eq!(
        fake.last_request(),
        "GET /api/fetch/foo/README.md?prefer_schunk=true HTTP/1.1"
    );
    let show = ShowArgs {
        dataset: "foo/README.md[2:9]".into(),
        json: true,
    };
    let text = run!(cmd_show, show, api);
    assert_eq!(text.unwrap(), "\"Example\"\n");
}

#[tokio::test]
async fn downloads() {
    let fake = Fake::start().await;
    let api = fake.api();
    let dir = tempfile::tempdir().unwrap();
    let args = DownloadArgs {
        dataset: "foo/README.md".into(),
        outdir: Some(dir.path().to_path_buf()),
        json: false,
    };
    let text = run!(cmd_download, args, api);
    let dest = dir.path().join("foo/README.md");
    assert_eq!(text.unwrap(), format!("{}\n", dest.display()));
    assert_eq!(std::fs::read(&dest).unwrap(), README);
    let mut names: Vec<_> = std::fs::read_dir(dir.path().join("foo"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["README.md"]);

    let args = DownloadArgs {
        dataset: "foo/dir1/ds-2d.b2nd".into(),
        outdir: Some(dir.path().to_path_buf()),
        json: true,
    };
    let text = run!(cmd_download, args, api);
    let dest = dir.path().join("foo/dir1/ds-2d.b2nd");
    let expected = serde_json::Value::from(dest.display().to_string()).to_string();
    assert_eq!(text.unwrap(), format!("{expected}\n"));
    assert_eq!(std::fs::read(&dest).unwrap(), ds_2d());

    let before = fake.seen.lock().unwrap().len();
    let args = DownloadArgs {
        dataset: "foo/../../etc/x".into(),
        outdir: Some(dir.path().to_path_buf()),
        json: false,
    };
    let r = run!(cmd_download, args, api);
    assert!(matches!(r, Err(CliError::UnsafePath { .. })));
    assert_eq!(fake.seen.lock().unwrap().len(), before, "no request made");
}

#[tokio::test]
async fn binary_exit_codes() {
    let fake = Fake::start().await;
    let host = fake.addr.to_string();
    let cli = |args: &'static [&'static str]| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_cat2cli"))
            .arg("--host")
            .arg(&host)
            .args(args)
            .output()
    };
    let ok = cli(&["roots", "--json"]).await.unwrap();
    assert!(ok.status.success());
    let v: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(v["foo"]["http"], "localhost:8001");
    let err = cli(&["subscribe", "nope"]).await.unwrap();
    assert_eq!(err.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&err.stderr),
        "Error: nope not known by the broker\n"
    );
    assert!(err.stdout.is_empty());
    // Twice the same output, as Caterva2's test_cli checks.
    let a = cli(&["show", "foo/dir1/ds-2d.b2nd"]).await.unwrap();
    let b = cli(&["show", "foo/dir1/ds-2d.b2nd"]).await.unwrap();
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
}
