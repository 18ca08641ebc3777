//! Cross-crate tests of cat2 (in `tests/`): a real nats-server, and interop with python-blosc2
//! driven from the tests. This library holds what those tests share.

pub mod bench;
pub mod cluster;
pub mod wrk;

use std::path::Path;
use std::process::Command;

/// Runs one of the Python scripts of `tests/python/` with the interop venv and returns its
/// stdout.
///
/// # Panics
/// When the venv is missing (with an install hint) or the script fails: a test failure.
pub fn run_python(script: &str, args: &[&Path]) -> String {
    let python = cat2_testkit::tools::python().unwrap_or_else(|e| panic!("{e}"));
    let out = python_command(script, args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The command that runs `tests/python/<script>` with `args` in the test venv (to spawn it).
///
/// # Panics
/// When the venv's Python is missing.
pub fn python_command<S: AsRef<std::ffi::OsStr>>(script: &str, args: &[S]) -> Command {
    let python = cat2_testkit::tools::python().unwrap_or_else(|e| panic!("{e}"));
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(script);
    let mut c = Command::new(&python);
    c.arg(&path).args(args);
    c
}

/// Writes `data` as a 1-d `|u1` b2nd array of one chunk, in blocks of 64 KiB.
///
/// # Panics
/// When the file cannot be written.
pub fn write_one_chunk_b2nd(path: &Path, data: &[u8]) {
    let n = data.len() as u64;
    cat2_format::encode::write_b2nd_file(path, "|u1", &[n], &[n], &[1 << 16], data, &[])
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Decodes a Blosc2 frame (a `/api/fetch` reply or a downloaded file): its shape (empty for
/// super-chunks) and all its bytes.
///
/// # Panics
/// When the bytes are not a frame.
pub fn decode_frame(bytes: &[u8]) -> (Vec<u64>, Vec<u8>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = dir.path().join("x.frame");
    std::fs::write(&p, bytes).expect("write");
    let ds = cat2_format::Dataset::open_as(&p, cat2_format::Kind::Array)
        .or_else(|_| cat2_format::Dataset::open_as(&p, cat2_format::Kind::Frame))
        .expect("a Blosc2 frame");
    let shape = ds
        .meta()
        .array
        .as_ref()
        .map(|a| a.shape.clone())
        .unwrap_or_default();
    let all = cat2_array::Selection::all(ds.layout().shape());
    (shape, ds.read(&all).expect("readable frame"))
}

/// An HTTP client for the tests: a request that hangs fails the test instead of hanging CI.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .expect("an HTTP client")
}

/// GETs `/api/fetch/{path}?slice_={slice}&prefer_schunk=true` from the subscriber at `base`:
/// status and body.
pub async fn fetch(http: &reqwest::Client, base: &str, path: &str, slice: &str) -> (u16, Vec<u8>) {
    let r = http
        .get(format!(
            "{base}/api/fetch/{path}?slice_={slice}&prefer_schunk=true"
        ))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

/// GETs `url`: status and its typed reply (one of `cat2_proto::rest`'s), or the error
/// reply's detail when the status is not 2xx or the body is not that type.
pub async fn get_reply<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> (u16, Result<T, String>) {
    let (status, body) = get_json(http, url).await;
    let reply = match serde_json::from_value::<T>(body.clone()) {
        Ok(t) if (200..300).contains(&status) => Ok(t),
        _ => Err(
            serde_json::from_value::<cat2_proto::rest::ErrorReply>(body.clone())
                .map_or_else(|_| body.to_string(), |e| e.detail),
        ),
    };
    (status, reply)
}

/// GETs `url`: status and JSON body (`null` when not JSON).
pub async fn get_json(http: &reqwest::Client, url: &str) -> (u16, serde_json::Value) {
    let r = http
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = r.status().as_u16();
    let body = r.bytes().await.unwrap_or_default();
    (
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

/// Appends a bench's markdown section to `out` (as the section of BENCHMARKS.md it owns).
///
/// # Panics
/// When `out` cannot be written (a bench's failure to report).
pub fn append_section(out: &std::path::Path, md: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)
        .unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    std::io::Write::write_all(&mut f, md.as_bytes())
        .unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    eprintln!("appended to {}", out.display());
}
