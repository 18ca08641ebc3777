//! Which items a view reads, so that what it decodes stays within a budget.
//!
//! A view shows one or two dimensions of an array (the others fixed at an index), at most
//! `max` samples along each: a stride `s = ceil(extent / max)`. What it costs is not the
//! samples but the Blosc2 blocks they fall in, all decoded whole. Blocks touched by a grid of
//! samples are, per dimension, the block intervals its samples fall in, so the cost is the
//! product of those counts times the block's bytes. While that is over the budget, the stride
//! of the dimension that saves most blocks grows to the next multiple of its block extent:
//! then whole blocks are skipped rather than pixels. The reads are one box per run of samples
//! inside one block interval (one box per dimension when no interval is skipped).

use std::ops::Range;

use cat2_array::{ChunkLayout, Selection};

use crate::ViewError;

/// Most boxes one view reads.
pub const MAX_READS: usize = 4096;

/// One displayed dimension: the samples `start, start + stride, …` below `end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// The array dimension.
    pub dim: usize,
    /// The range shown (a zoom window or the whole dimension).
    pub range: Range<u64>,
    /// Items between samples.
    pub stride: u64,
}

impl Shown {
    /// The samples taken.
    pub fn len(&self) -> u64 {
        let n = self.range.end.saturating_sub(self.range.start);
        n.div_ceil(self.stride.max(1))
    }

    /// Whether no sample is taken.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn samples(&self) -> impl Iterator<Item = u64> + '_ {
        (self.range.start..self.range.end).step_by(self.stride.max(1) as usize)
    }
}

/// What a view reads: its displayed dimensions (rows first), the boxes to read, and what
/// decoding them costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The displayed dimensions, in display order (rows then columns, or one for a line).
    pub shown: Vec<Shown>,
    /// The boxes to read, each a selection of every dimension (none dropped).
    pub reads: Vec<Selection>,
    /// Bytes of blocks decoding the reads takes.
    pub decoded: u64,
    /// Whether a stride was raised past `max`'s to meet the budget.
    pub decimated: bool,
}

/// Block interval of index `x` along `d` (blocks are laid out inside each chunk).
fn interval(l: &ChunkLayout, d: usize, x: u64) -> u64 {
    let c = l.chunks()[d].max(1);
    let b = l.blocks()[d].max(1);
    (x / c) * c.div_ceil(b) + (x % c) / b
}

fn intervals(l: &ChunkLayout, s: &Shown) -> u64 {
    let mut n = 0;
    let mut last = None;
    for x in s.samples() {
        let i = interval(l, s.dim, x);
        if last != Some(i) {
            n += 1;
            last = Some(i);
        }
    }
    n
}

/// Plans a view of `layout` with `index[d]` fixed where `Some` and the dimensions of `shown`
/// (each a range, rows first) displayed with at most `max` samples each, decoding at most
/// `budget` bytes.
///
/// # Errors
/// [`ViewError::Budget`] when even one block per dimension is over the budget or the view
/// needs more than [`MAX_READS`] boxes.
pub fn plan(
    layout: &ChunkLayout,
    index: &[Option<u64>],
    shown: &[(usize, Range<u64>)],
    max: u64,
    budget: u64,
) -> Result<Plan, ViewError> {
    let bb = layout.block_bytes() as u64;
    let max = max.max(1);
    let mut sh: Vec<Shown> = shown
        .iter()
        .map(|(dim, r)| Shown {
            dim: *dim,
            range: r.clone(),
            stride: (r.end.saturating_sub(r.start)).div_ceil(max).max(1),
        })
        .collect();
    let count = |s: &Shown| intervals(layout, s);
    // Fixed dimensions touch one interval each.
    let cost = |sh: &[Shown]| -> u64 {
        sh.iter()
            .map(count)
            .fold(bb, |a, n| a.saturating_mul(n.max(1)))
    };
    let mut decimated = false;
    while cost(&sh) > budget {
        // Raise the stride that saves most blocks to the next multiple of its block extent.
        let mut best: Option<(usize, u64, u64)> = None;
        for (k, s) in sh.iter().enumerate() {
            let b = layout.blocks()[s.dim].max(1);
            let next = (s.stride / b + 1) * b;
            if next >= s.range.end.saturating_sub(s.range.start).max(1) && s.len() <= 1 {
                continue;
            }
            let before = count(s);
            let after = count(&Shown {
                stride: next,
                ..s.clone()
            });
            let saved = before.saturating_sub(after);
            if saved > 0 && best.is_none_or(|(_, _, sv)| saved > sv) {
                best = Some((k, next, saved));
            }
        }
        let Some((k, next, _)) = best else {
            return Err(ViewError::Budget(format!(
                "this view decodes at least {} bytes, more than the decode budget of {budget}",
                cost(&sh)
            )));
        };
        sh[k].stride = next;
        decimated = true;
    }
    // Runs per displayed dimension: one when every interval of the span is touched.
    let runs: Vec<Vec<Range<u64>>> = sh
        .iter()
        .map(|s| {
            let mut runs: Vec<Range<u64>> = Vec::new();
            let mut last = None;
            for x in s.samples() {
                let i = interval(layout, s.dim, x);
                match runs.last_mut() {
                    Some(r) if last == Some(i) => r.end = x + 1,
                    _ => runs.push(x..x + 1),
                }
                last = Some(i);
            }
            let (Some(first), Some(lastr)) = (runs.first(), runs.last()) else {
                return runs;
            };
            let span = first.start..lastr.end;
            let all =
                interval(layout, s.dim, span.end - 1) - interval(layout, s.dim, span.start) + 1;
            if all == runs.len() as u64 {
                vec![span]
            } else {
                runs
            }
        })
        .collect();
    let nreads = runs.iter().map(Vec::len).product::<usize>();
    if nreads > MAX_READS {
        return Err(ViewError::Budget(format!(
            "this view needs {nreads} reads (at most {MAX_READS}): zoom in or lower the resolution"
        )));
    }
    let base: Vec<Range<u64>> = index
        .iter()
        .enumerate()
        .map(|(d, i)| match i {
            Some(i) => *i..*i + 1,
            None => 0..layout.shape()[d],
        })
        .collect();
    let mut reads = Vec::with_capacity(nreads);
    let mut pick = vec![0usize; runs.len()];
    if nreads > 0 {
        loop {
            let mut r = base.clone();
            for (k, s) in sh.iter().enumerate() {
                r[s.dim] = runs[k][pick[k]].clone();
            }
            reads.push(
                Selection::from_ranges(r, layout.shape())
                    .map_err(|e| ViewError::Size(e.to_string()))?,
            );
            let mut k = runs.len();
            loop {
                if k == 0 {
                    break;
                }
                k -= 1;
                pick[k] += 1;
                if pick[k] < runs[k].len() {
                    break;
                }
                pick[k] = 0;
                if k == 0 {
                    k = usize::MAX;
                    break;
                }
            }
            if k == usize::MAX || runs.is_empty() {
                break;
            }
        }
    }
    let decoded = cost(&sh);
    Ok(Plan {
        shown: sh,
        reads,
        decoded,
        decimated,
    })
}

impl Plan {
    /// The samples, row-major in display order, from the items of each read (`data[k]` holds
    /// `self.reads[k]` in C order).
    ///
    /// # Errors
    /// [`ViewError::Size`] when a read's bytes do not match its box.
    pub fn gather(&self, data: &[Vec<u8>], itemsize: usize) -> Result<Vec<u8>, ViewError> {
        let lens: Vec<usize> = self.shown.iter().map(|s| s.len() as usize).collect();
        let total: usize = lens.iter().product();
        let mut out = vec![0u8; total * itemsize];
        for (sel, bytes) in self.reads.iter().zip(data) {
            let ext = sel.extent();
            if bytes.len() as u64 != ext.iter().product::<u64>() * itemsize as u64 {
                return Err(ViewError::Size(format!(
                    "a read of {ext:?} gave {} bytes",
                    bytes.len()
                )));
            }
            // C-order strides of the box, in items.
            let mut strides = vec![1u64; ext.len()];
            for d in (0..ext.len().saturating_sub(1)).rev() {
                strides[d] = strides[d + 1] * ext[d + 1];
            }
            let r = sel.ranges();
            let axes: Vec<Vec<(usize, u64)>> = self
                .shown
                .iter()
                .map(|s| {
                    s.samples()
                        .enumerate()
                        .filter(|(_, x)| r[s.dim].contains(x))
                        .map(|(k, x)| (k, (x - r[s.dim].start) * strides[s.dim]))
                        .collect()
                })
                .collect();
            let mut put = |out_k: usize, src: u64| {
                let (o, s) = (out_k * itemsize, src as usize * itemsize);
                out[o..o + itemsize].copy_from_slice(&bytes[s..s + itemsize]);
            };
            match axes.as_slice() {
                [a] => a.iter().for_each(|&(k, off)| put(k, off)),
                [rows, cols] => {
                    for &(i, ro) in rows {
                        for &(j, co) in cols {
                            put(i * lens[1] + j, ro + co);
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The benchmark cube's layout: float32 384×512×512, chunks 64×256×256, blocks 1×128×256.
    fn cube() -> ChunkLayout {
        ChunkLayout::new(
            vec![384, 512, 512],
            vec![64, 256, 256],
            vec![1, 128, 256],
            4,
        )
        .unwrap()
    }

    #[test]
    fn a_plane_decodes_only_its_blocks() {
        let p = plan(
            &cube(),
            &[Some(7), None, None],
            &[(1, 0..512), (2, 0..512)],
            768,
            64 << 20,
        )
        .unwrap();
        assert_eq!(p.decoded, 1 << 20);
        assert!(!p.decimated);
        assert_eq!(p.reads.len(), 1);
        assert_eq!(p.shown[0].stride, 1);
    }

    #[test]
    fn over_budget_skips_whole_blocks() {
        // `:, j, :` touches 384 × 2 blocks (96 MiB): the z stride becomes 2 (48 MiB).
        let p = plan(
            &cube(),
            &[None, Some(3), None],
            &[(0, 0..384), (2, 0..512)],
            768,
            64 << 20,
        )
        .unwrap();
        assert!(p.decimated);
        assert_eq!(p.shown[0].stride, 2);
        assert_eq!(p.decoded, 48 << 20);
        assert_eq!(p.reads.len(), 192);
        assert!(p.reads.iter().all(|r| r.extent() == vec![1, 1, 512]));
        // A budget smaller than one block is refused.
        assert!(
            plan(
                &cube(),
                &[Some(0), None, None],
                &[(1, 0..512), (2, 0..512)],
                768,
                1000
            )
            .is_err()
        );
    }

    #[test]
    fn gather_picks_samples_in_display_order() {
        // 4×6 u8 array holding 0..24, chunks = blocks = 2×3, shown transposed (rows = dim 1)
        // with stride 2 on dim 1 after a budget of 2 blocks.
        let l = ChunkLayout::new(vec![4, 6], vec![2, 3], vec![2, 3], 1).unwrap();
        let p = plan(&l, &[None, None], &[(1, 0..6), (0, 0..4)], 8, 6 * 8).unwrap();
        let data: Vec<Vec<u8>> = p
            .reads
            .iter()
            .map(|s| {
                let r = s.ranges();
                let mut v = Vec::new();
                for i in r[0].clone() {
                    for j in r[1].clone() {
                        v.push((i * 6 + j) as u8);
                    }
                }
                v
            })
            .collect();
        let out = p.gather(&data, 1).unwrap();
        let rows = p.shown[0].len() as usize;
        let cols = p.shown[1].len() as usize;
        assert_eq!(out.len(), rows * cols);
        for (k, x) in p.shown[0].samples().enumerate() {
            for (m, y) in p.shown[1].samples().enumerate() {
                assert_eq!(out[k * cols + m], (y * 6 + x) as u8);
            }
        }
    }
}
