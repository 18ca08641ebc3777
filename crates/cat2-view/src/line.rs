//! 1-D profiles as SVG: min/max decimated to at most two points per pixel column, so a long
//! line keeps its peaks; NaN breaks the line.

use std::fmt::Write;

use crate::scale::Scale;
use crate::values::float_text;

const LEFT: f64 = 64.0;
const BOTTOM: f64 = 28.0;
const TOP: f64 = 10.0;
const RIGHT: f64 = 12.0;

/// Points kept from `values` for a plot `columns` wide: all of them when there are at most
/// `2 × columns`, else each column's min and max in index order. Each point is (index, value).
pub fn decimate(values: &[f64], columns: usize) -> Vec<(usize, f64)> {
    let n = values.len();
    let columns = columns.max(1);
    if n <= 2 * columns {
        return values.iter().copied().enumerate().collect();
    }
    let mut out = Vec::with_capacity(2 * columns);
    for c in 0..columns {
        let (a, b) = (
            c * n / columns,
            ((c + 1) * n / columns).max(c * n / columns + 1),
        );
        let mut lo: Option<(usize, f64)> = None;
        let mut hi: Option<(usize, f64)> = None;
        for (i, &v) in values.iter().enumerate().take(b).skip(a) {
            if !v.is_finite() {
                continue;
            }
            if lo.is_none_or(|(_, l)| v < l) {
                lo = Some((i, v));
            }
            if hi.is_none_or(|(_, h)| v > h) {
                hi = Some((i, v));
            }
        }
        match (lo, hi) {
            (Some(l), Some(h)) if l.0 == h.0 => out.push(l),
            (Some(l), Some(h)) if l.0 < h.0 => out.extend([l, h]),
            (Some(l), Some(h)) => out.extend([h, l]),
            _ => out.push((a, f64::NAN)),
        }
    }
    out
}

/// An SVG line plot of `values` (item `k` at array index `x0 + k·step`), `width`×`height`
/// pixels, y on `scale`. Ticks name the first and last index and the y domain.
pub fn line_svg(
    values: &[f64],
    x0: u64,
    step: u64,
    width: u32,
    height: u32,
    scale: Scale,
) -> String {
    let (w, h) = (f64::from(width.max(120)), f64::from(height.max(80)));
    let plot_w = w - LEFT - RIGHT;
    let plot_h = h - TOP - BOTTOM;
    let pts = decimate(values, plot_w as usize);
    let ys: Vec<Option<f64>> = pts.iter().map(|&(_, v)| scale.apply(v)).collect();
    let (lo, hi) = ys
        .iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let span = if hi > lo { hi - lo } else { 1.0 };
    let last = values.len().saturating_sub(1).max(1) as f64;
    let mut lines: Vec<String> = vec![String::new()];
    for (&(i, _), y) in pts.iter().zip(&ys) {
        match y {
            Some(y) => {
                let px = LEFT + i as f64 / last * plot_w;
                let py = TOP + (hi - y) / span * plot_h;
                let cur = lines.last_mut().expect("one line at least");
                let _ = write!(
                    cur,
                    "{}{px:.2},{py:.2}",
                    if cur.is_empty() { "" } else { " " }
                );
            }
            None if !lines.last().is_some_and(String::is_empty) => lines.push(String::new()),
            None => {}
        }
    }
    let inv = |t: f64| match scale {
        Scale::Linear => t,
        Scale::Log => 10f64.powf(t),
        Scale::Symlog => t.signum() * (10f64.powf(t.abs()) - 1.0),
        Scale::Sqrt => t * t,
    };
    let xl = x0 + (values.len().saturating_sub(1) as u64) * step;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="line-plot" role="img" width="{width}" height="{height}" viewBox="0 0 {w} {h}" data-points="{}">"#,
        pts.len()
    );
    let _ = write!(
        s,
        r#"<rect class="frame" x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="currentColor" stroke-opacity="0.4"/>"#
    );
    for l in lines.iter().filter(|l| !l.is_empty()) {
        let _ = write!(
            s,
            r##"<polyline class="data" fill="none" stroke="#1f77b4" stroke-width="1.5" points="{l}"/>"##
        );
    }
    let tick = |s: &mut String, x: f64, y: f64, anchor: &str, cls: &str, text: String| {
        let _ = write!(
            s,
            r#"<text class="{cls}" x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" font-size="11" fill="currentColor">{text}</text>"#
        );
    };
    tick(&mut s, LEFT, h - 8.0, "start", "xtick", x0.to_string());
    tick(
        &mut s,
        LEFT + plot_w,
        h - 8.0,
        "end",
        "xtick",
        xl.to_string(),
    );
    tick(
        &mut s,
        LEFT - 4.0,
        TOP + 10.0,
        "end",
        "ytick",
        float_text(inv(hi)),
    );
    tick(
        &mut s,
        LEFT - 4.0,
        TOP + plot_h,
        "end",
        "ytick",
        float_text(inv(lo)),
    );
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimation_keeps_extremes_in_order() {
        let v: Vec<f64> = (0..1000).map(f64::from).collect();
        let p = decimate(&v, 100);
        assert!(p.len() <= 200);
        assert_eq!(p.first(), Some(&(0, 0.0)));
        assert_eq!(p.last(), Some(&(999, 999.0)));
        assert!(p.windows(2).all(|w| w[0].0 < w[1].0));
        let mut spike = vec![0.0; 10_000];
        spike[4321] = 7.0;
        assert!(decimate(&spike, 50).contains(&(4321, 7.0)));
    }

    #[test]
    fn svg_points_and_ticks() {
        let v: Vec<f64> = (0..1000).map(f64::from).collect();
        let s = line_svg(&v, 0, 1, 600, 240, Scale::Linear);
        let points = s
            .split(" points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let xy: Vec<(f64, f64)> = points
            .split(' ')
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
        assert!(xy.len() <= 2 * 600);
        // SVG y grows downwards: index 0 lowest (largest y), 999 highest.
        let max_y = xy.iter().map(|p| p.1).fold(f64::MIN, f64::max);
        let min_y = xy.iter().map(|p| p.1).fold(f64::MAX, f64::min);
        assert_eq!(xy[0].1, max_y);
        assert_eq!(xy.last().unwrap().1, min_y);
        assert!(s.contains(">0</text>") && s.contains(">999</text>"));
        let gap = line_svg(&[1.0, f64::NAN, 2.0, 3.0], 0, 1, 300, 100, Scale::Linear);
        assert_eq!(gap.matches("<polyline").count(), 2);
    }
}
