//! View parameters as they appear in URLs: parsed and checked once against the dataset's shape,
//! and written back in one canonical order (the render cache keys on it, and a copied URL
//! means the same view everywhere).
//!
//! `view=image|stack|line|table`, `axes=D0,D1` (the displayed dimensions, rows first),
//! `idx=I,…` (an index for each other dimension, in order), `cmap`, `scale`, `vmin`, `vmax`,
//! `cplx` (complex as abs|phase|re|im), `max` (samples per axis), `budget=full`, and for tables
//! `rows=A:B`, `cols=C:D`.

use std::ops::Range;

use cat2_view::{Colormap, Complex, Scale};

use super::WebError;

/// A query string's pairs, in order (names may repeat: `roots=a&roots=b`).
#[derive(Debug, Default, Clone)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        Self(
            form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The last value of `k` (empty values count as absent).
    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(n, v)| n == k && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn all(&self, k: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, v)| n == k && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// What a dataset page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Image,
    Stack,
    Line,
    Table,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Image => "image",
            Kind::Stack => "stack",
            Kind::Line => "line",
            Kind::Table => "table",
        }
    }

    fn parse(s: &str) -> Result<Self, WebError> {
        Ok(match s {
            "image" => Kind::Image,
            "stack" => Kind::Stack,
            "line" => Kind::Line,
            "table" => Kind::Table,
            _ => {
                return Err(WebError::bad(format!(
                    "unknown view {s:?} (image, stack, line, table)"
                )));
            }
        })
    }

    /// How many dimensions it displays.
    fn naxes(self, ndim: usize) -> usize {
        match self {
            Kind::Image | Kind::Stack => 2,
            Kind::Line => 1,
            Kind::Table => ndim.min(2),
        }
    }
}

/// Most samples per displayed axis of an image.
pub(crate) const MAX_SAMPLES: u64 = 2048;
/// Default samples per axis of an image.
pub(crate) const DEFAULT_SAMPLES: u64 = 768;
/// Largest table window side.
const MAX_TABLE: u64 = 200;

/// A checked view of one dataset.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct View {
    pub(crate) kind: Kind,
    /// Displayed dimensions, rows first.
    pub(crate) axes: Vec<usize>,
    /// One index per dimension (those of displayed ones unused, 0).
    pub(crate) idx: Vec<u64>,
    pub(crate) cmap: Colormap,
    pub(crate) scale: Scale,
    pub(crate) vmin: Option<f64>,
    pub(crate) vmax: Option<f64>,
    pub(crate) cplx: Complex,
    pub(crate) max: u64,
    pub(crate) full: bool,
    /// The window shown along the displayed axes (tables: the page; images: the zoom).
    pub(crate) rows: Range<u64>,
    pub(crate) cols: Range<u64>,
    /// The dataset's shape.
    pub(crate) shape: Vec<u64>,
}

fn num<T: std::str::FromStr>(what: &str, s: &str) -> Result<T, WebError> {
    s.trim()
        .parse()
        .map_err(|_| WebError::bad(format!("{what} must be a number, got {s:?}")))
}

/// A window `START:STOP` along a dimension of `len` (either end may be left out); `cap` bounds
/// its length (tables), `default` is its length when none is given.
fn window(
    what: &str,
    s: Option<&str>,
    len: u64,
    default: u64,
    cap: Option<u64>,
) -> Result<Range<u64>, WebError> {
    let r = match s {
        None => 0..default.min(len),
        Some(s) => {
            let (a, b) = s
                .split_once(':')
                .ok_or_else(|| WebError::bad(format!("{what} must be START:STOP, got {s:?}")))?;
            let a: u64 = if a.trim().is_empty() {
                0
            } else {
                num(what, a)?
            };
            let b: u64 = if b.trim().is_empty() {
                len
            } else {
                num(what, b)?
            };
            a.min(len)..b.min(len).max(a.min(len))
        }
    };
    if let Some(cap) = cap.filter(|&c| r.end - r.start > c) {
        return Err(WebError::bad(format!(
            "{what} spans {} items, at most {cap} are shown at once",
            r.end - r.start
        )));
    }
    Ok(r)
}

impl View {
    /// The view `p` asks for on a dataset of `shape`, `default` when it names none.
    pub(crate) fn parse(p: &Params, shape: &[u64], default: Kind) -> Result<Self, WebError> {
        let ndim = shape.len();
        let kind = p
            .get("view")
            .map(Kind::parse)
            .transpose()?
            .unwrap_or(default);
        let naxes = kind.naxes(ndim);
        if ndim < naxes || (kind == Kind::Line && ndim == 0) {
            return Err(WebError::bad(format!(
                "a {} view needs {naxes} dimensions, this dataset has {ndim}",
                kind.name()
            )));
        }
        // `axes=1,2`, or one `axes` per displayed role (the page's form has a select each).
        let named = p.all("axes").join(",");
        let axes: Vec<usize> = match Some(named.as_str()).filter(|a| !a.is_empty()) {
            Some(a) => a
                .split(',')
                .map(|d| num::<usize>("axes", d))
                .collect::<Result<_, _>>()?,
            None => (ndim - naxes..ndim).collect(),
        };
        if axes.len() != naxes
            || axes.iter().any(|&d| d >= ndim)
            || (naxes == 2 && axes[0] == axes[1])
        {
            return Err(WebError::bad(format!(
                "axes must name {naxes} distinct dimensions below {ndim}"
            )));
        }
        let others: Vec<usize> = (0..ndim).filter(|d| !axes.contains(d)).collect();
        // `idx=I,…`, or (from the page's form, which cannot join fields) `iD=I` per dimension.
        let given: Vec<u64> = match p.get("idx") {
            Some(s) => s
                .split(',')
                .map(|i| num::<u64>("idx", i))
                .collect::<Result<_, _>>()?,
            None => others
                .iter()
                .map(|d| {
                    let k = format!("i{d}");
                    p.get(&k).map_or(Ok(0), |v| num::<u64>(&k, v))
                })
                .collect::<Result<_, _>>()?,
        };
        if given.len() != others.len() {
            return Err(WebError::bad(format!(
                "idx needs {} indices (dimensions {others:?}), got {}",
                others.len(),
                given.len()
            )));
        }
        let mut idx = vec![0u64; ndim];
        for (&d, &i) in others.iter().zip(&given) {
            if i >= shape[d] {
                return Err(WebError::bad(format!(
                    "index {i} is out of range for dimension {d} of size {}",
                    shape[d]
                )));
            }
            idx[d] = i;
        }
        let f = |k: &str| p.get(k).map(|v| num::<f64>(k, v)).transpose();
        let (vmin, vmax) = (f("vmin")?, f("vmax")?);
        let max = p
            .get("max")
            .map(|v| num::<u64>("max", v))
            .transpose()?
            .unwrap_or(DEFAULT_SAMPLES)
            .clamp(1, MAX_SAMPLES);
        // Tables show a small window; images and lines all of their axes unless zoomed.
        let (dr, dc, cap) = match kind {
            Kind::Table => (20, 10, Some(MAX_TABLE)),
            _ => (u64::MAX, u64::MAX, None),
        };
        let (rows, cols) = match axes.as_slice() {
            [r, c] => (
                window("rows", p.get("rows"), shape[*r], dr, cap)?,
                window("cols", p.get("cols"), shape[*c], dc, cap)?,
            ),
            [r] => (window("rows", p.get("rows"), shape[*r], dr, cap)?, 0..1),
            _ => (0..1, 0..1),
        };
        Ok(Self {
            kind,
            axes,
            idx,
            cmap: p
                .get("cmap")
                .map(Colormap::parse)
                .transpose()?
                .unwrap_or_default(),
            scale: p
                .get("scale")
                .map(Scale::parse)
                .transpose()?
                .unwrap_or_default(),
            vmin: vmin.filter(|v| v.is_finite()),
            vmax: vmax.filter(|v| v.is_finite()),
            cplx: p
                .get("cplx")
                .map(Complex::parse)
                .transpose()?
                .unwrap_or_default(),
            max,
            full: p.get("budget") == Some("full"),
            rows,
            cols,
            shape: shape.to_vec(),
        })
    }

    /// Whether the rows (or columns) window is all of its axis.
    fn whole(&self, k: usize) -> bool {
        let r = if k == 0 { &self.rows } else { &self.cols };
        self.axes
            .get(k)
            .is_none_or(|&d| r.start == 0 && r.end == self.shape[d])
    }

    /// The dimensions not displayed (those `idx` names), in order.
    pub(crate) fn others(&self) -> Vec<usize> {
        (0..self.idx.len())
            .filter(|d| !self.axes.contains(d))
            .collect()
    }

    fn join<T: ToString>(v: impl IntoIterator<Item = T>) -> String {
        v.into_iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The image parameters, canonical (what `/web/img` and the render cache use).
    pub(crate) fn image_query(&self) -> String {
        let mut q = format!(
            "axes={}&idx={}&cmap={}&scale={}&cplx={}&max={}",
            Self::join(&self.axes),
            Self::join(self.others().iter().map(|&d| self.idx[d])),
            self.cmap.name(),
            self.scale.name(),
            self.cplx.name(),
            self.max
        );
        if let Some(v) = self.vmin {
            q.push_str(&format!("&vmin={v}"));
        }
        if let Some(v) = self.vmax {
            q.push_str(&format!("&vmax={v}"));
        }
        if self.full {
            q.push_str("&budget=full");
        }
        if self.kind != Kind::Table {
            if !self.whole(0) {
                q.push_str(&format!("&rows={}:{}", self.rows.start, self.rows.end));
            }
            if !self.whole(1) {
                q.push_str(&format!("&cols={}:{}", self.cols.start, self.cols.end));
            }
        }
        q
    }

    /// The page URL's query for this view.
    pub(crate) fn page_query(&self) -> String {
        let mut q = format!("view={}&{}", self.kind.name(), self.image_query());
        if self.kind == Kind::Table {
            q.push_str(&format!(
                "&rows={}:{}&cols={}:{}",
                self.rows.start, self.rows.end, self.cols.start, self.cols.end
            ));
        }
        q
    }

    /// The same view with `f` applied.
    pub(crate) fn with(&self, f: impl FnOnce(&mut View)) -> View {
        let mut v = self.clone();
        f(&mut v);
        v
    }

    /// Caterva2's slice string of what is displayed (`1,:,:`; `:` per whole displayed axis,
    /// `a:b` per windowed one).
    pub(crate) fn slice_text(&self) -> String {
        Self::join(
            (0..self.idx.len()).map(|d| match self.axes.iter().position(|&a| a == d) {
                Some(k) if self.whole(k) => ":".to_owned(),
                Some(k) => {
                    let r = if k == 0 { &self.rows } else { &self.cols };
                    format!("{}:{}", r.start, r.end)
                }
                None => self.idx[d].to_string(),
            }),
        )
    }

    /// The selection of what is displayed (windows included, no decimation; the dimensions
    /// an index fixes dropped, as in Caterva2's `slice_`): what slice downloads hold.
    pub(crate) fn selection(&self) -> Result<cat2_array::Selection, WebError> {
        let spec = cat2_array::SliceSpec::parse(&self.slice_text())
            .map_err(|e| WebError::bad(e.to_string()))?;
        cat2_array::Selection::new(&spec, &self.shape).map_err(|e| WebError::bad(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Params {
        Params::parse(Some(s))
    }

    #[test]
    fn defaults_and_round_trip() {
        let v = View::parse(&p(""), &[3, 4, 5], Kind::Image).unwrap();
        assert_eq!(v.axes, vec![1, 2]);
        assert_eq!(v.slice_text(), "0,:,:");
        let q = v.with(|v| v.idx[0] = 2).page_query();
        assert!(q.contains("idx=2"), "{q}");
        let back = View::parse(&p(&q), &[3, 4, 5], Kind::Table).unwrap();
        assert_eq!(back.kind, Kind::Image);
        assert_eq!(back.idx, vec![2, 0, 0]);
        let remap = View::parse(&p("axes=0,2&idx=3"), &[3, 4, 5], Kind::Image).unwrap();
        assert_eq!(remap.slice_text(), ":,3,:");
        // The page's form: one `axes` per role, one `iD` per other dimension.
        let form = View::parse(&p("axes=0&axes=2&i1=3&i0=9"), &[3, 4, 5], Kind::Image).unwrap();
        assert_eq!(form, remap);
        let zoom = View::parse(&p("rows=1:3&cols=:2"), &[3, 4, 5], Kind::Image).unwrap();
        assert_eq!(zoom.slice_text(), "0,1:3,0:2");
        assert!(zoom.image_query().ends_with("&rows=1:3&cols=0:2"));
        assert_eq!(zoom.selection().unwrap().shape(), vec![2, 2]);
        let t = View::parse(&p("view=table"), &[3, 40, 50], Kind::Image).unwrap();
        assert_eq!((t.rows, t.cols), (0..20, 0..10));
    }

    #[test]
    fn bad_input_is_a_clear_400() {
        for q in [
            "idx=3",
            "idx=a",
            "axes=1,1",
            "axes=0,9",
            "view=movie",
            "cmap=jet",
            "idx=1,2",
        ] {
            let e = View::parse(&p(q), &[3, 4, 5], Kind::Image).unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{q}");
        }
        assert!(View::parse(&p("view=line"), &[], Kind::Table).is_err());
        // A table window is bounded; an image's is the zoom, as large as the axis.
        assert!(View::parse(&p("rows=0:500&view=table"), &[3, 400, 5], Kind::Image).is_err());
        assert!(View::parse(&p("rows=0:500"), &[3, 400, 5], Kind::Image).is_ok());
    }
}
