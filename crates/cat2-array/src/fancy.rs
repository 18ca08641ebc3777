//! Coordinate ("fancy") selections as python-blosc2's `C2Array` sends them (`indices=`): per
//! dimension an integer, a range or a list of integers, with NumPy's result shape. At most one
//! dimension may be a list: then NumPy keeps the list's dimension where it is, in the list's
//! order, repeats included. The list is read as a few boxes (runs of nearby indices), each a
//! plain [`Selection`], and the result is gathered from them.

use std::ops::Range;

use crate::{Selection, SliceError};

/// One dimension of a coordinate selection, resolved against its length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Axis {
    /// One index (the dimension is dropped from the result).
    Index(u64),
    /// A range (kept).
    Range(Range<u64>),
    /// A list of indices (kept, `len` long).
    List(Vec<u64>),
}

/// A coordinate selection over an array of `shape`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fancy {
    axes: Vec<Axis>,
}

/// A negative index counts from the end; anything outside `0..len` is an error.
pub fn resolve_index(i: i64, dim: usize, len: u64) -> Result<u64, SliceError> {
    let r = if i < 0 {
        i64::try_from(len).ok().and_then(|l| l.checked_add(i))
    } else {
        Some(i)
    };
    match r.and_then(|r| u64::try_from(r).ok()) {
        Some(r) if r < len => Ok(r),
        _ => Err(SliceError::IndexOutOfRange { index: i, dim, len }),
    }
}

impl Fancy {
    /// The selection of `axes` over `shape` (dimensions not given are whole ranges).
    ///
    /// # Errors
    /// More axes than dimensions; lists in more than one dimension (NumPy broadcasts them
    /// together, which cat2 does not do: refused rather than answered otherwise); indices or
    /// ranges outside their dimension.
    pub fn new(mut axes: Vec<Axis>, shape: &[u64]) -> Result<Self, SliceError> {
        if axes.len() > shape.len() {
            return Err(SliceError::TooManyIndices {
                given: axes.len(),
                ndim: shape.len(),
            });
        }
        axes.extend(shape[axes.len()..].iter().map(|&n| Axis::Range(0..n)));
        let lists = axes.iter().filter(|a| matches!(a, Axis::List(_))).count();
        if lists > 1 {
            return Err(SliceError::Syntax {
                part: "index lists in more than one dimension (not supported)".to_owned(),
            });
        }
        for (dim, (a, &len)) in axes.iter().zip(shape).enumerate() {
            let bad = |index: u64| SliceError::IndexOutOfRange {
                index: i64::try_from(index).unwrap_or(i64::MAX),
                dim,
                len,
            };
            match a {
                Axis::Index(i) if *i >= len => return Err(bad(*i)),
                Axis::Range(r) if r.end > len || r.start > r.end => return Err(bad(r.end)),
                Axis::List(l) => {
                    if let Some(&i) = l.iter().find(|&&i| i >= len) {
                        return Err(bad(i));
                    }
                }
                _ => {}
            }
        }
        Ok(Self { axes })
    }

    /// The result's shape, as NumPy gives it (integer dimensions dropped).
    pub fn shape(&self) -> Vec<u64> {
        self.axes
            .iter()
            .filter_map(|a| match a {
                Axis::Index(_) => None,
                Axis::Range(r) => Some(r.end - r.start),
                Axis::List(l) => Some(l.len() as u64),
            })
            .collect()
    }

    /// Items in the result.
    pub fn nitems(&self) -> u64 {
        self.shape().iter().product()
    }

    /// The dimension given as a list, if any.
    pub fn list_dim(&self) -> Option<usize> {
        self.list().map(|(d, _)| d)
    }

    fn list(&self) -> Option<(usize, &[u64])> {
        self.axes.iter().enumerate().find_map(|(d, a)| match a {
            Axis::List(l) => Some((d, l.as_slice())),
            _ => None,
        })
    }

    /// The boxes to read: runs of the list's distinct indices whose gaps are under `gap`
    /// (a chunk's extent along that dimension reads little more than asked), the other
    /// dimensions as given. Without a list, one box.
    pub fn boxes(&self, shape: &[u64], gap: u64) -> Result<Vec<Selection>, SliceError> {
        let ranges = |d: Option<(usize, Range<u64>)>| {
            self.axes
                .iter()
                .enumerate()
                .map(|(i, a)| match (a, &d) {
                    (_, Some((ld, r))) if *ld == i => r.clone(),
                    (Axis::Index(x), _) => *x..x + 1,
                    (Axis::Range(r), _) => r.clone(),
                    (Axis::List(_), _) => 0..0,
                })
                .collect::<Vec<_>>()
        };
        let Some((d, list)) = self.list() else {
            return Ok(vec![Selection::from_ranges(ranges(None), shape)?]);
        };
        let mut distinct = list.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        let mut runs: Vec<Range<u64>> = Vec::new();
        for i in distinct {
            match runs.last_mut() {
                Some(r) if i - r.end < gap.max(1) => r.end = i + 1,
                _ => runs.push(i..i + 1),
            }
        }
        runs.into_iter()
            .map(|r| Selection::from_ranges(ranges(Some((d, r))), shape))
            .collect()
    }

    /// The result (C order) gathered from `boxes` (as [`Fancy::boxes`] gave them, each with
    /// its items in C order).
    pub fn gather(&self, boxes: &[(Selection, Vec<u8>)], itemsize: usize) -> Vec<u8> {
        let Some((d, list)) = self.list() else {
            return boxes.first().map(|(_, b)| b.clone()).unwrap_or_default();
        };
        let ext = |s: &Selection| s.extent();
        let first = boxes.first().map(|(s, _)| ext(s)).unwrap_or_default();
        let outer: usize = first[..d].iter().product::<u64>() as usize;
        let inner = first[d + 1..].iter().product::<u64>() as usize * itemsize;
        let k = list.len();
        let mut out = vec![0u8; outer * k * inner];
        for (pos, &i) in list.iter().enumerate() {
            let Some((sel, data)) = boxes.iter().find(|(s, _)| s.ranges()[d].contains(&i)) else {
                continue;
            };
            let r = &sel.ranges()[d];
            let (len, j) = ((r.end - r.start) as usize, (i - r.start) as usize);
            for o in 0..outer {
                let from = (o * len + j) * inner;
                let to = (o * k + pos) * inner;
                out[to..to + inner].copy_from_slice(&data[from..from + inner]);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The box `sel` of a C-order array of `shape` holding 0, 1, 2, … (one byte each).
    fn read(sel: &Selection, shape: &[u64]) -> Vec<u8> {
        let ext = sel.extent();
        let n: u64 = ext.iter().product();
        (0..n)
            .map(|mut i| {
                let mut off = 0;
                let mut stride = 1;
                for d in (0..shape.len()).rev() {
                    off += (sel.ranges()[d].start + i % ext[d]) * stride;
                    i /= ext[d];
                    stride *= shape[d];
                }
                off as u8
            })
            .collect()
    }

    fn run(axes: Vec<Axis>, shape: &[u64], gap: u64) -> (Vec<u64>, Vec<u8>, usize) {
        let f = Fancy::new(axes, shape).unwrap();
        let boxes: Vec<_> = f
            .boxes(shape, gap)
            .unwrap()
            .into_iter()
            .map(|s| {
                let d = read(&s, shape);
                (s, d)
            })
            .collect();
        (f.shape(), f.gather(&boxes, 1), boxes.len())
    }

    #[test]
    fn lists_keep_their_order_and_repeats_as_numpy_does() {
        // a = arange(200).reshape(10, 20); a[[9, 0, 5, 0]]
        let (shape, got, nboxes) = run(vec![Axis::List(vec![9, 0, 5, 0])], &[10, 20], 1);
        assert_eq!(shape, [4, 20]);
        let want: Vec<u8> = [9u8, 0, 5, 0]
            .iter()
            .flat_map(|r| (0..20).map(move |c| r * 20 + c))
            .collect();
        assert_eq!(got, want);
        assert_eq!(nboxes, 3, "runs 0, 5, 9 apart");
        // The same with runs merged across gaps: one box, same answer.
        let (_, merged, n) = run(vec![Axis::List(vec![9, 0, 5, 0])], &[10, 20], 10);
        assert_eq!((merged, n), (want, 1));
        // a[2, [3, 1]] and a[1:3, [19, 0]]
        let (shape, got, _) = run(vec![Axis::Index(2), Axis::List(vec![3, 1])], &[10, 20], 1);
        assert_eq!((shape, got), (vec![2], vec![43, 41]));
        let (shape, got, _) = run(
            vec![Axis::Range(1..3), Axis::List(vec![19, 0])],
            &[10, 20],
            4,
        );
        assert_eq!((shape, got), (vec![2, 2], vec![39, 20, 59, 40]));
    }

    #[test]
    fn refuses_what_it_does_not_answer_exactly() {
        let two = vec![Axis::List(vec![1]), Axis::List(vec![2])];
        assert!(Fancy::new(two, &[3, 3]).is_err());
        assert!(Fancy::new(vec![Axis::List(vec![3])], &[3]).is_err());
        assert!(Fancy::new(vec![Axis::Index(0); 3], &[3, 3]).is_err());
        assert_eq!(resolve_index(-1, 0, 10), Ok(9));
        assert!(resolve_index(-11, 0, 10).is_err());
        assert!(resolve_index(10, 0, 10).is_err());
    }
}
