//! The web client end to end: real binaries on a real nats-server, and Debian's Chromium
//! driven by playwright (`tests/python/web_browser.py`) through the acceptance list: search
//! flow, metadata, table cells, heatmap pixels, keyboard sliders, axis remap, a stack read one
//! plane at a time (the publisher's request counters), markdown never run, downloads, copied
//! URLs, no JavaScript, dark mode, errors, and every request on the subscriber's own host.
//! Screenshots of the main pages land in `target/web-screenshots/` as artefacts.

use std::path::{Path, PathBuf};

use cat2_e2e::cluster::{Cluster, wait_until};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../root-example")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// root-example plus a markdown file with a script in it, a uint8 stack (32 planes of
/// 128×128 holding their plane number, one plane per block, 4 per chunk) and a PNG file.
fn fixture(dir: &Path) {
    copy_dir(&example(), dir);
    std::fs::write(
        dir.join("notes.md"),
        "# Notes\n\n<script>window.__xss=1</script>\n\nSome *text*.\n",
    )
    .unwrap();
    let plane = 128 * 128;
    let data: Vec<u8> = (0..32u8)
        .flat_map(|i| std::iter::repeat_n(i * 8, plane))
        .collect();
    cat2_format::encode::write_b2nd_file(
        &dir.join("stack.b2nd"),
        "|u1",
        &[32, 128, 128],
        &[4, 128, 128],
        &[1, 128, 128],
        &data,
        &[],
    )
    .unwrap();
    let png = cat2_view::image::colorbar_png(cat2_view::Colormap::Viridis, 3);
    std::fs::write(dir.join("pixel.png"), png).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn web_client_in_headless_chromium() {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is needed (scripts/setup installs it)"
    );
    let mut c = Cluster::new(&[]);
    let root = c.path("root");
    fixture(&root);
    let _bro = c.broker();
    let publ = c.publisher("foo", &root, "a", true);
    let sub = c.subscriber(10.0);
    let base = format!("http://{}", sub.http.clone().unwrap());
    let pub_metrics = format!("http://{}/metrics", publ.http.clone().unwrap());
    // The subscriber knows the root once this succeeds; the browser then follows it itself.
    let http = cat2_e2e::http();
    wait_until(
        "foo announced",
        std::time::Duration::from_secs(15),
        || async {
            let r = http.get(format!("{base}/api/roots")).send().await.ok()?;
            let v: serde_json::Value = r.json().await.ok()?;
            v.get("foo").is_some().then_some(())
        },
    )
    .await;
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/web-screenshots");
    let out = tokio::task::spawn_blocking(move || {
        cat2_e2e::python_command(
            "web_browser.py",
            &[base.as_str(), &pub_metrics, &shots.display().to_string()],
        )
        .output()
        .expect("python runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser checks failed:\n{stdout}\nstderr:\n{}\nsubscriber log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        sub.log()
    );
}
