//! Selections: a slice spec resolved against a shape, as one half-open range per dimension.

use std::ops::Range;

use crate::{SliceError, SliceItem, SliceSpec};

/// A rectangular selection of an n-d array: one range per dimension, plus which dimensions an
/// integer index dropped from the result shape (numpy semantics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    ranges: Vec<Range<u64>>,
    dropped: Vec<bool>,
}

impl Selection {
    /// Selects the whole of `shape`.
    pub fn all(shape: &[u64]) -> Self {
        Self {
            ranges: shape.iter().map(|&n| 0..n).collect(),
            dropped: vec![false; shape.len()],
        }
    }

    /// Builds a selection from explicit ranges (none dropped).
    ///
    /// # Errors
    /// [`SliceError::IndexOutOfRange`] when a range ends past its dimension.
    pub fn from_ranges(ranges: Vec<Range<u64>>, shape: &[u64]) -> Result<Self, SliceError> {
        if ranges.len() != shape.len() {
            return Err(SliceError::TooManyIndices {
                given: ranges.len(),
                ndim: shape.len(),
            });
        }
        for (dim, (r, &n)) in ranges.iter().zip(shape).enumerate() {
            if r.end > n || r.start > r.end {
                return Err(SliceError::IndexOutOfRange {
                    index: r.end as i64,
                    dim,
                    len: n,
                });
            }
        }
        let dropped = vec![false; ranges.len()];
        Ok(Self { ranges, dropped })
    }

    /// Resolves `spec` against an n-d `shape` as numpy does: negative indices count from the
    /// end, range bounds are clipped, an integer index drops its dimension, and dimensions the
    /// spec does not mention are whole.
    ///
    /// # Errors
    /// [`SliceError::TooManyIndices`] for more items than dimensions, and
    /// [`SliceError::IndexOutOfRange`] for an integer index outside its dimension.
    pub fn new(spec: &SliceSpec, shape: &[u64]) -> Result<Self, SliceError> {
        let items = spec.items();
        if items.len() > shape.len() {
            return Err(SliceError::TooManyIndices {
                given: items.len(),
                ndim: shape.len(),
            });
        }
        let mut sel = Self::all(shape);
        for (dim, (item, &len)) in items.iter().zip(shape).enumerate() {
            match *item {
                SliceItem::Index(i) => {
                    let idx = resolve_index(i, len).ok_or(SliceError::IndexOutOfRange {
                        index: i,
                        dim,
                        len,
                    })?;
                    sel.ranges[dim] = idx..idx + 1;
                    sel.dropped[dim] = true;
                }
                SliceItem::Range { start, stop } => sel.ranges[dim] = clip_range(start, stop, len),
            }
        }
        Ok(sel)
    }

    /// Resolves `spec` against a 1-d sequence of `nitems` items, as Caterva2 does for
    /// super-chunks and plain files: an integer `i` selects the one item `i..i+1`, keeping
    /// the dimension.
    ///
    /// # Errors
    /// [`SliceError::TooManyIndices`] for more than one item, and
    /// [`SliceError::IndexOutOfRange`] for an integer index outside the sequence.
    pub fn new_items(spec: &SliceSpec, nitems: u64) -> Result<Self, SliceError> {
        let mut sel = Self::new(spec, &[nitems])?;
        sel.dropped[0] = false;
        Ok(sel)
    }

    /// One range per dimension of the array.
    pub fn ranges(&self) -> &[Range<u64>] {
        &self.ranges
    }

    /// Number of dimensions of the array (not of the result).
    pub fn ndim(&self) -> usize {
        self.ranges.len()
    }

    /// Lengths of the ranges, one per array dimension (dropped ones are 1).
    pub fn extent(&self) -> Vec<u64> {
        self.ranges.iter().map(|r| r.end - r.start).collect()
    }

    /// Shape of the result: the extent without the dimensions an integer index dropped.
    pub fn shape(&self) -> Vec<u64> {
        self.ranges
            .iter()
            .zip(&self.dropped)
            .filter(|(_, d)| !**d)
            .map(|(r, _)| r.end - r.start)
            .collect()
    }

    /// Number of selected items (saturating: shapes from elsewhere may be absurd, and a
    /// count this large is refused by every budget anyway).
    pub fn nitems(&self) -> u64 {
        self.extent().iter().fold(1, |n, &d| n.saturating_mul(d))
    }

    /// Whether the selection covers the whole of `shape` with no dimension dropped.
    pub fn is_whole(&self, shape: &[u64]) -> bool {
        self.ranges.len() == shape.len()
            && !self.dropped.iter().any(|d| *d)
            && self
                .ranges
                .iter()
                .zip(shape)
                .all(|(r, &n)| r.start == 0 && r.end == n)
    }
}

fn resolve_index(i: i64, len: u64) -> Option<u64> {
    let len_i = i64::try_from(len).ok()?;
    let idx = if i < 0 { i.checked_add(len_i)? } else { i };
    (0..len_i).contains(&idx).then_some(idx as u64)
}

fn clip_range(start: Option<i64>, stop: Option<i64>, len: u64) -> Range<u64> {
    let clip = |v: i64| -> u64 {
        if v < 0 {
            len.saturating_sub(v.unsigned_abs())
        } else {
            (v as u64).min(len)
        }
    };
    let a = start.map_or(0, clip);
    let b = stop.map_or(len, clip);
    a..b.max(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(s: &str, shape: &[u64]) -> Result<Selection, SliceError> {
        Selection::new(&SliceSpec::parse(s).unwrap(), shape)
    }

    #[test]
    fn item_counts_saturate() {
        // Found by the `slice` fuzz target: the product overflowed.
        let s = sel("", &[u64::MAX / 2, 5]).unwrap();
        assert_eq!(s.nitems(), u64::MAX);
    }

    #[test]
    fn numpy_semantics() {
        let s = sel("1, 2:4", &[10, 20, 5]).unwrap();
        assert_eq!(s.ranges(), &[1..2, 2..4, 0..5]);
        assert_eq!(s.shape(), vec![2, 5]);
        assert_eq!(sel("-1", &[10]).unwrap().ranges()[0], 9..10);
        assert_eq!(sel("-3:", &[10]).unwrap().ranges()[0], 7..10);
        assert_eq!(sel(":-30", &[10]).unwrap().ranges()[0], 0..0);
        assert_eq!(sel("10:20", &[10, 20]).unwrap().shape(), vec![0, 20]);
        assert_eq!(sel("5:2", &[10]).unwrap().shape(), vec![0]);
        assert_eq!(sel("", &[]).unwrap().shape(), Vec::<u64>::new());
        assert!(sel("", &[3, 4]).unwrap().is_whole(&[3, 4]));
        assert!(!sel("0", &[3]).unwrap().is_whole(&[3]));
    }

    #[test]
    fn errors() {
        assert!(matches!(
            sel("10", &[10]),
            Err(SliceError::IndexOutOfRange { index: 10, .. })
        ));
        assert!(matches!(
            sel("-11", &[10]),
            Err(SliceError::IndexOutOfRange { .. })
        ));
        assert!(matches!(
            sel("1,2", &[10]),
            Err(SliceError::TooManyIndices { .. })
        ));
        assert!(matches!(
            sel("0", &[]),
            Err(SliceError::TooManyIndices { .. })
        ));
        assert!(sel(&i64::MIN.to_string(), &[10]).is_err());
    }

    #[test]
    fn items_keep_their_dimension() {
        let s = Selection::new_items(&SliceSpec::parse("1").unwrap(), 100).unwrap();
        assert_eq!(s.shape(), vec![1]);
        assert!(Selection::new_items(&SliceSpec::parse("1,2").unwrap(), 100).is_err());
    }
}
