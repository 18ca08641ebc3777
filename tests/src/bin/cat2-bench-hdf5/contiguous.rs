//! `--contiguous-gb G`: a contiguous (unchunked) float64 dataset of about G GB, which cat2
//! serves in chunks it chooses, each read by hyperslab when asked for: the publisher's peak
//! RSS over its scan and a cold full download through the subscriber (target: under 200 MB
//! for 2 GB, whatever the dataset's size).

use std::path::Path;

use cat2_e2e::cluster::{Cluster, Proc};

use crate::{Row, download, peak_rss, python, row, subscribe};

/// Smooth float64 planes, written 16 at a time (bounded memory), contiguous layout.
const MAKE: &str = r#"
import os, sys, numpy as np, h5py
path, n = sys.argv[1], int(sys.argv[2])
tmp = path + ".tmp"
with h5py.File(tmp, "w") as f:
    ds = f.create_dataset("data", shape=(n, 512, 512), dtype="f8")
    j = np.sin(np.arange(512) * 0.03)[:, None]
    k = np.cos(np.arange(512) * 0.02)[None, :]
    for i0 in range(0, n, 16):
        i = np.arange(i0, min(n, i0 + 16))
        ds[i0:i0 + len(i)] = np.sin(i * 0.05)[:, None, None] + j + k
os.replace(tmp, path)
"#;

/// Serves the file with a publisher of its own and downloads it cold: the table's rows.
pub(crate) async fn measure(
    c: &mut Cluster,
    data: &Path,
    gb: f64,
    http: &reqwest::Client,
    sub: &Proc,
) -> Vec<Row> {
    let planes = ((gb * 1e9) / (512.0 * 512.0 * 8.0)).round().max(1.0) as usize;
    let bytes = planes * 512 * 512 * 8;
    let path = data.join(format!("contig-{planes}.h5"));
    if !path.exists() {
        std::fs::create_dir_all(data).expect("bench-data/hdf5");
        eprintln!("making {} ...", path.display());
        python(MAKE, &[&path.display().to_string(), &planes.to_string()]);
    }
    let publ = c.publisher("h5contig", &path, "contig", false);
    let base = format!("http://{}", sub.http.clone().expect("an address"));
    subscribe(http, &base, "h5contig").await;
    let (t, n) = download(http, &base, "h5contig").await;
    eprintln!(
        "contiguous {} MB: cold download {:.2} s, {} MB",
        bytes / 1_000_000,
        t.as_secs_f64(),
        n / 1_000_000
    );
    let rss = peak_rss(publ.pid().expect("cat2pub running")) as f64 / 1e6;
    let name = format!(
        "contig.h5 (float64 {planes}×512×512, contiguous, {} MB)",
        bytes / 1_000_000
    );
    vec![
        row(
            format!("{name}: cold full download (s)"),
            t.as_secs_f64(),
            f64::NAN,
            "",
        ),
        row(
            format!("{name}: publisher peak RSS (MB)"),
            rss,
            f64::NAN,
            "≤ 200 MB",
        ),
    ]
}
