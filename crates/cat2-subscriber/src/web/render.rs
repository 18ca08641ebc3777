//! Views rendered from the read path: images (PNG), lines (SVG) and tables, each reading only
//! the boxes its [`cat2_view::plan`] names (whole blocks skipped when it is decimated), within
//! the decode budget, and holding a lease of the memory budget while it works.

use std::sync::Arc;

use bytes::Bytes;
use cat2_array::{DType, Selection};
use cat2_view::plan::{Plan, plan};
use cat2_view::{Norm, Numeric, image, line};
use futures::{StreamExt, TryStreamExt};

use super::WebError;
use super::query::View;
use crate::ApiError;
use crate::cached::Cached;
use crate::sub::Sub;

/// Rendered images kept (their bytes): a page and the `<img>` it holds render once.
const RENDERS_BYTES: u64 = 64 << 20;
/// Boxes read at once for one view.
const PARALLEL_READS: usize = 8;
/// Most samples a line reads (then min/max decimated to the plot's width).
const LINE_SAMPLES: u64 = 1 << 20;

/// A rendered image and what it took.
#[derive(Debug)]
pub(crate) struct Image {
    pub(crate) png: Bytes,
    pub(crate) width: u64,
    pub(crate) height: u64,
    /// The domain drawn (first and last colour), if any value could be drawn.
    pub(crate) domain: Option<(f64, f64)>,
    /// Stride along the rows and columns.
    pub(crate) strides: [u64; 2],
    pub(crate) decoded: u64,
    pub(crate) decimated: bool,
}

#[derive(Clone, Copy)]
pub(crate) struct ImageBytes;

impl quick_cache::Weighter<String, Arc<Image>> for ImageBytes {
    fn weight(&self, k: &String, v: &Arc<Image>) -> u64 {
        (v.png.len() + k.len() + 128) as u64
    }
}

/// The cache of rendered images, by cache instance and canonical view.
pub(crate) struct Renders(quick_cache::sync::Cache<String, Arc<Image>, ImageBytes>);

impl Renders {
    pub(crate) fn new() -> Self {
        Self(quick_cache::sync::Cache::with_weighter(
            1024,
            RENDERS_BYTES,
            ImageBytes,
        ))
    }
}

/// The dataset's dtype, parsed: a super-chunk's items are bytes, or opaque `|V` items of its
/// typesize.
pub(crate) fn dtype(c: &Cached) -> Result<DType, WebError> {
    let s = match &c.meta.array {
        Some(a) => a.dtype.clone(),
        None if c.layout.itemsize() > 1 => format!("|V{}", c.layout.itemsize()),
        None => "|u1".to_owned(),
    };
    DType::parse(&s).map_err(|e| WebError::bad(e.to_string()))
}

/// The first `limit` bytes of a plain file (or super-chunk) and its whole length.
pub(crate) async fn head_bytes(
    sub: &Arc<Sub>,
    path: &str,
    c: &Arc<Cached>,
    limit: u64,
) -> Result<(Vec<u8>, u64), WebError> {
    let n = c.layout.shape().first().copied().unwrap_or(0);
    let items = (limit / c.layout.itemsize().max(1) as u64).min(n);
    let sel = Selection::from_ranges(std::iter::once(0..items).collect(), &[n])
        .map_err(|e| WebError::bad(e.to_string()))?;
    let data = read_boxes(sub, path, c.clone(), vec![sel])
        .await?
        .pop()
        .unwrap_or_default();
    Ok((data, n * c.layout.itemsize() as u64))
}

/// Reads `sels` of `c` (fetching what is not cached: blocks alone for small boxes), in order.
pub(crate) async fn read_boxes(
    sub: &Arc<Sub>,
    path: &str,
    c: Arc<Cached>,
    sels: Vec<Selection>,
) -> Result<Vec<Vec<u8>>, ApiError> {
    let itemsize = c.layout.itemsize() as u64;
    let total: u64 = sels.iter().map(|s| s.nitems() * itemsize).sum();
    let deadline = tokio::time::Instant::now() + sub.cfg.timeout;
    let chunk = u64::try_from(c.meta.chunksize).unwrap_or(0);
    // Items read plus, per read at once, a chunk being decoded.
    let need = total.saturating_add(chunk.saturating_mul(PARALLEL_READS as u64));
    let _lease = crate::api::lease(sub, need.min(sub.results.bytes()), deadline).await?;
    futures::stream::iter(sels)
        .map(|sel| {
            let c = c.clone();
            async move {
                let (c, blocks) = match sub.fetch_blocks(&c, &sel, deadline).await {
                    Some(b) => (c, b),
                    None => (
                        crate::api::ensure_sel(sub, path, c, &sel, Some(deadline)).await?,
                        Default::default(),
                    ),
                };
                sub.read(&c, sel, Some(deadline), blocks, |data, _| Ok(data))
                    .await
            }
        })
        .buffered(PARALLEL_READS)
        .try_collect()
        .await
}

fn budget(sub: &Sub, v: &View) -> u64 {
    let b = sub.cfg.web_decode_budget;
    if v.full { b.saturating_mul(8) } else { b }
}

/// The planned reads of `v` (an image or a line) on `c`.
fn view_plan(sub: &Sub, c: &Cached, v: &View, max: u64) -> Result<Plan, WebError> {
    let shape = c.layout.shape();
    let index: Vec<Option<u64>> = (0..shape.len())
        .map(|d| (!v.axes.contains(&d)).then_some(v.idx[d]))
        .collect();
    let windows = [v.rows.clone(), v.cols.clone()];
    let shown: Vec<(usize, std::ops::Range<u64>)> =
        v.axes.iter().zip(windows).map(|(&d, w)| (d, w)).collect();
    Ok(plan(&c.layout, &index, &shown, max, budget(sub, v))?)
}

/// Reads what `p` plans and converts the samples to numbers.
async fn samples(
    sub: &Arc<Sub>,
    path: &str,
    c: &Arc<Cached>,
    p: &Plan,
    n: Numeric,
) -> Result<Vec<f64>, WebError> {
    let data = read_boxes(sub, path, c.clone(), p.reads.clone()).await?;
    let plan = p.clone();
    let itemsize = c.layout.itemsize();
    tokio::task::spawn_blocking(move || -> Result<Vec<f64>, WebError> {
        Ok(n.all(&plan.gather(&data, itemsize)?))
    })
    .await
    .map_err(|e| WebError::from(ApiError::internal(e)))?
}

/// The image of `v` on `c`, rendered once per cache instance and view.
pub(crate) async fn image(
    sub: &Arc<Sub>,
    renders: &Renders,
    path: &str,
    c: &Arc<Cached>,
    v: &View,
) -> Result<Arc<Image>, WebError> {
    let key = format!("{}|{}|{}", c.id, path, v.image_query());
    if let Some(hit) = renders.0.get(&key) {
        return Ok(hit);
    }
    let n = Numeric::new(&dtype(c)?, v.cplx)?;
    let p = view_plan(sub, c, v, v.max)?;
    let (h, w) = (p.shown[0].len(), p.shown[1].len());
    if h == 0 || w == 0 {
        return Err(WebError::bad("this view has no items to draw"));
    }
    let values = samples(sub, path, c, &p, n).await?;
    let (vmin, vmax, scale, cmap) = (v.vmin, v.vmax, v.scale, v.cmap);
    let img = tokio::task::spawn_blocking(move || -> Result<Image, WebError> {
        let auto = Norm::auto(&values, scale);
        let lo = vmin.or(auto.map(|a| a.0));
        let hi = vmax.or(auto.map(|a| a.1));
        let domain = lo.zip(hi);
        let (lo, hi) = domain.unwrap_or((0.0, 1.0));
        let png = image::heatmap_png(w as u32, h as u32, &values, &Norm::new(lo, hi, scale), cmap)?;
        Ok(Image {
            png: Bytes::from(png),
            width: w,
            height: h,
            domain,
            strides: [p.shown[0].stride, p.shown[1].stride],
            decoded: p.decoded,
            decimated: p.decimated,
        })
    })
    .await
    .map_err(|e| WebError::from(ApiError::internal(e)))??;
    let img = Arc::new(img);
    renders.0.insert(key, img.clone());
    Ok(img)
}

/// The line plot of `v` on `c` (SVG) and what it decoded.
pub(crate) async fn line(
    sub: &Arc<Sub>,
    path: &str,
    c: &Arc<Cached>,
    v: &View,
) -> Result<(String, u64), WebError> {
    let n = Numeric::new(&dtype(c)?, v.cplx)?;
    let p = view_plan(sub, c, v, LINE_SAMPLES)?;
    let values = samples(sub, path, c, &p, n).await?;
    let (x0, stride) = (p.shown[0].range.start, p.shown[0].stride);
    let scale = v.scale;
    let svg =
        tokio::task::spawn_blocking(move || line::line_svg(&values, x0, stride, 720, 260, scale))
            .await
            .map_err(|e| WebError::from(ApiError::internal(e)))?;
    Ok((svg, p.decoded))
}

/// A table column: its position (an index along the column axis, or a field's number) and
/// its header.
pub(crate) struct Col {
    pub(crate) at: u64,
    pub(crate) label: String,
}

/// A table window: row indices, columns and the cell texts (row-major).
pub(crate) struct Table {
    pub(crate) rows: Vec<u64>,
    /// None for a 1-d array of scalars (one value column).
    pub(crate) cols: Vec<Col>,
    pub(crate) cells: Vec<Vec<String>>,
}

/// The table window of `v` on `c`.
pub(crate) async fn table(
    sub: &Arc<Sub>,
    path: &str,
    c: &Arc<Cached>,
    v: &View,
) -> Result<Table, WebError> {
    let dt = dtype(c)?;
    let shape = c.layout.shape().to_vec();
    let mut ranges: Vec<std::ops::Range<u64>> = v.idx.iter().map(|&i| i..i + 1).collect();
    let rows: Vec<u64> = v.rows.clone().collect();
    let mut cols: Vec<Col> = Vec::new();
    match v.axes.as_slice() {
        [r, cc] => {
            ranges[*r] = v.rows.clone();
            ranges[*cc] = v.cols.clone();
            cols = v
                .cols
                .clone()
                .map(|j| Col {
                    at: j,
                    label: j.to_string(),
                })
                .collect();
        }
        [r] => ranges[*r] = v.rows.clone(),
        _ => {}
    }
    let sel = Selection::from_ranges(ranges, &shape).map_err(|e| WebError::bad(e.to_string()))?;
    if sel.nitems() == 0 {
        return Ok(Table {
            rows,
            cols,
            cells: vec![],
        });
    }
    let data = read_boxes(sub, path, c.clone(), vec![sel.clone()])
        .await?
        .pop()
        .unwrap_or_default();
    let transposed = matches!(v.axes.as_slice(), [r, cc] if r > cc);
    let (nr, nc) = (
        v.rows.end - v.rows.start,
        (v.cols.end - v.cols.start).max(1),
    );
    let size = dt.itemsize();
    let ncols = if v.axes.len() == 2 { nc } else { 1 };
    let item = |i: u64, j: u64| -> &[u8] {
        // The box is in array order: rows after columns when the axes are swapped.
        let k = if transposed {
            j * nr + i
        } else {
            i * ncols + j
        } as usize;
        data.get(k * size..(k + 1) * size).unwrap_or(&[])
    };
    let mut cells = Vec::with_capacity(nr as usize);
    match (&dt, v.axes.len()) {
        (DType::Struct(fields), 1) => {
            cols = fields
                .iter()
                .enumerate()
                .map(|(j, f)| Col {
                    at: j as u64,
                    label: f.name.clone(),
                })
                .collect();
            for i in 0..nr {
                cells.push(cat2_view::values::field_cells(fields, item(i, 0)));
            }
        }
        (_, 0) => cells.push(vec![cat2_view::values::cell(&dt, item(0, 0))]),
        _ => {
            for i in 0..nr {
                cells.push(
                    (0..ncols)
                        .map(|j| cat2_view::values::cell(&dt, item(i, j)))
                        .collect(),
                );
            }
        }
    }
    Ok(Table { rows, cols, cells })
}
