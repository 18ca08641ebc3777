//! Chunk layout of a b2nd array: the chunk grid, the block grid inside a chunk, and the copies
//! between a decompressed chunk and a C-order buffer.
//!
//! A b2nd chunk is padded to whole blocks and stores its blocks in C order over the block grid,
//! each block itself in C order (c-blosc2's `README_B2ND_FORMAT.rst`). Chunks are numbered in C
//! order over the chunk grid. A super-chunk is the 1-d case where a block is the whole chunk.

use std::ops::Range;

use crate::{LayoutError, Selection};

/// Most chunks a dataset may have (2^24: a chunk index of 128 MiB in memory).
pub const MAX_CHUNKS: u64 = 1 << 24;

/// Shape, chunk shape, block shape and item size of an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkLayout {
    shape: Vec<u64>,
    chunks: Vec<u64>,
    blocks: Vec<u64>,
    itemsize: usize,
}

impl ChunkLayout {
    /// Validates and builds a layout.
    ///
    /// # Errors
    /// [`LayoutError`] when the ranks differ, the item size is zero, a chunk or block dimension
    /// is zero for a non-empty dimension, or a block is larger than its chunk.
    pub fn new(
        shape: Vec<u64>,
        chunks: Vec<u64>,
        blocks: Vec<u64>,
        itemsize: usize,
    ) -> Result<Self, LayoutError> {
        if chunks.len() != shape.len() || blocks.len() != shape.len() {
            return Err(LayoutError::Rank {
                shape: shape.len(),
                chunks: chunks.len(),
                blocks: blocks.len(),
            });
        }
        if itemsize == 0 {
            return Err(LayoutError::ItemSize);
        }
        for d in 0..shape.len() {
            let empty = shape[d] == 0;
            if (!empty && (chunks[d] == 0 || blocks[d] == 0)) || blocks[d] > chunks[d] {
                return Err(LayoutError::Dimension {
                    dim: d,
                    shape: shape[d],
                    chunk: chunks[d],
                    block: blocks[d],
                });
            }
        }
        // Every product the layout computes later must fit: bound them once here.
        let too_big = || LayoutError::TooLarge;
        let isz = itemsize as u64;
        let mut total = isz;
        let mut chunk_bytes = isz;
        let mut nchunks = 1u64;
        for d in 0..shape.len() {
            total = total.checked_mul(shape[d]).ok_or_else(too_big)?;
            let ext = if blocks[d] == 0 {
                0
            } else {
                chunks[d].div_ceil(blocks[d]) * blocks[d]
            };
            chunk_bytes = chunk_bytes.checked_mul(ext).ok_or_else(too_big)?;
            let g = if shape[d] == 0 {
                0
            } else {
                shape[d].div_ceil(chunks[d])
            };
            nchunks = nchunks.checked_mul(g).ok_or_else(too_big)?;
        }
        if total > i64::MAX as u64 || chunk_bytes > i32::MAX as u64 || nchunks > MAX_CHUNKS {
            return Err(too_big());
        }
        Ok(Self {
            shape,
            chunks,
            blocks,
            itemsize,
        })
    }

    /// The 1-d layout of a super-chunk of `nitems` items, `chunk_items` per chunk.
    ///
    /// # Errors
    /// As [`ChunkLayout::new`].
    pub fn new_items(nitems: u64, chunk_items: u64, itemsize: usize) -> Result<Self, LayoutError> {
        Self::new(vec![nitems], vec![chunk_items], vec![chunk_items], itemsize)
    }

    /// Array shape.
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// Chunk shape.
    pub fn chunks(&self) -> &[u64] {
        &self.chunks
    }

    /// Block shape.
    pub fn blocks(&self) -> &[u64] {
        &self.blocks
    }

    /// Bytes per item.
    pub fn itemsize(&self) -> usize {
        self.itemsize
    }

    /// Number of chunks along each dimension.
    pub fn grid(&self) -> Vec<u64> {
        self.shape
            .iter()
            .zip(&self.chunks)
            .map(|(&s, &c)| if s == 0 { 0 } else { s.div_ceil(c) })
            .collect()
    }

    /// Total number of chunks.
    pub fn nchunks(&self) -> u64 {
        self.grid().iter().product()
    }

    /// Items in one decompressed chunk, padding to whole blocks included (Caterva2's
    /// `chunkshape` of an NDArray's schunk).
    pub fn chunk_nitems(&self) -> u64 {
        self.chunks
            .iter()
            .zip(&self.blocks)
            .map(|(&c, &b)| if b == 0 { 0 } else { c.div_ceil(b) * b })
            .product()
    }

    /// Chunk indices (C order) that `sel` touches, in increasing order. Empty when the
    /// selection selects nothing.
    pub fn chunks_touching(&self, sel: &Selection) -> Vec<u64> {
        let ranges: Vec<Range<u64>> = sel
            .ranges()
            .iter()
            .zip(&self.chunks)
            .map(|(r, &c)| {
                if r.start >= r.end {
                    0..0
                } else {
                    r.start / c..(r.end - 1) / c + 1
                }
            })
            .collect();
        let grid = self.grid();
        let mut out = Vec::new();
        for_each_index(&ranges, |coords| out.push(linear(coords, &grid)));
        out
    }

    /// Chunk coordinates of chunk `nchunk` in the chunk grid.
    pub fn chunk_coords(&self, nchunk: u64) -> Vec<u64> {
        unlinear(nchunk, &self.grid())
    }

    /// Item coordinates where chunk `nchunk` starts.
    pub fn chunk_start(&self, nchunk: u64) -> Vec<u64> {
        self.chunk_coords(nchunk)
            .iter()
            .zip(&self.chunks)
            .map(|(c, s)| c * s)
            .collect()
    }

    /// Copies the part of `sel` that chunk `nchunk` holds from the decompressed `chunk` into
    /// `out`, a C-order buffer of `sel`'s extent.
    ///
    /// # Errors
    /// [`LayoutError::Buffer`] when `chunk` or `out` is too short for what must be copied.
    pub fn copy_from_chunk(
        &self,
        nchunk: u64,
        chunk: &[u8],
        sel: &Selection,
        out: &mut [u8],
    ) -> Result<(), LayoutError> {
        self.for_each_run(nchunk, sel, |src, dst, len| {
            let from = chunk.get(src..src + len).ok_or(LayoutError::Buffer {
                needed: src + len,
                got: chunk.len(),
            })?;
            let got = out.len();
            out.get_mut(dst..dst + len)
                .ok_or(LayoutError::Buffer {
                    needed: dst + len,
                    got,
                })?
                .copy_from_slice(from);
            Ok(())
        })
    }

    /// Bytes of one block (the unit a chunk is decompressed by).
    pub fn block_bytes(&self) -> usize {
        self.blocks.iter().product::<u64>() as usize * self.itemsize
    }

    /// The blocks of chunk `nchunk` that `sel` needs, in increasing order.
    ///
    /// # Errors
    /// [`LayoutError::Rank`] when `sel` has another rank.
    pub fn blocks_touching(&self, nchunk: u64, sel: &Selection) -> Result<Vec<u64>, LayoutError> {
        let bb = self.block_bytes().max(1);
        let mut blocks = Vec::new();
        self.for_each_run(nchunk, sel, |src, _, _| {
            let b = (src / bb) as u64;
            if blocks.last() != Some(&b) {
                blocks.push(b);
            }
            Ok(())
        })?;
        blocks.sort_unstable();
        blocks.dedup();
        Ok(blocks)
    }

    /// Copies the part of `sel` that chunk `nchunk` holds into `out` (a C-order buffer of
    /// `sel`'s extent), asking `block(i)` for the decompressed bytes of only the blocks it
    /// needs, each once: a small selection of a big chunk decompresses a few blocks, not the
    /// chunk.
    ///
    /// # Errors
    /// The first error of `block`, or [`LayoutError::Buffer`] when a block or `out` is short.
    pub fn copy_from_blocks<E: From<LayoutError>>(
        &self,
        nchunk: u64,
        sel: &Selection,
        out: &mut [u8],
        mut block: impl FnMut(u64) -> Result<Vec<u8>, E>,
    ) -> Result<(), E> {
        let bb = self.block_bytes().max(1);
        let mut runs = Vec::new();
        self.for_each_run(nchunk, sel, |src, dst, len| {
            runs.push((src, dst, len));
            Ok(())
        })?;
        let mut current: Option<(usize, Vec<u8>)> = None;
        for (src, dst, len) in runs {
            let b = src / bb;
            if current.as_ref().is_none_or(|(cb, _)| *cb != b) {
                current = Some((b, block(b as u64)?));
            }
            let data = &current.as_ref().expect("just set").1;
            let at = src - b * bb;
            let from = data.get(at..at + len).ok_or(LayoutError::Buffer {
                needed: at + len,
                got: data.len(),
            })?;
            let got = out.len();
            out.get_mut(dst..dst + len)
                .ok_or(LayoutError::Buffer {
                    needed: dst + len,
                    got,
                })?
                .copy_from_slice(from);
        }
        Ok(())
    }

    /// Fills the decompressed chunk `nchunk` (`chunk`, [`ChunkLayout::chunk_nitems`] items)
    /// from `array`, the whole array in C order. Padding is left as it was.
    ///
    /// # Errors
    /// [`LayoutError::Buffer`] when a buffer is too short.
    pub fn copy_to_chunk(
        &self,
        nchunk: u64,
        array: &[u8],
        chunk: &mut [u8],
    ) -> Result<(), LayoutError> {
        self.copy_selection_to_chunk(nchunk, &Selection::all(&self.shape), array, chunk)
    }

    /// Fills the decompressed chunk `nchunk` (`chunk`) with the part of `sel` it holds, from
    /// `data`, a C-order buffer of `sel`'s extent (the inverse of
    /// [`ChunkLayout::copy_from_chunk`]). Padding and items outside `sel` are left as they were.
    ///
    /// # Errors
    /// [`LayoutError::Buffer`] when a buffer is too short; [`LayoutError::Rank`].
    pub fn copy_selection_to_chunk(
        &self,
        nchunk: u64,
        sel: &Selection,
        data: &[u8],
        chunk: &mut [u8],
    ) -> Result<(), LayoutError> {
        self.for_each_run(nchunk, sel, |src, dst, len| {
            let from = data.get(dst..dst + len).ok_or(LayoutError::Buffer {
                needed: dst + len,
                got: data.len(),
            })?;
            let got = chunk.len();
            chunk
                .get_mut(src..src + len)
                .ok_or(LayoutError::Buffer {
                    needed: src + len,
                    got,
                })?
                .copy_from_slice(from);
            Ok(())
        })
    }

    /// Calls `f(chunk_offset, sel_offset, len)` (in bytes) for every contiguous run of items
    /// that chunk `nchunk` shares with `sel`.
    fn for_each_run(
        &self,
        nchunk: u64,
        sel: &Selection,
        mut f: impl FnMut(usize, usize, usize) -> Result<(), LayoutError>,
    ) -> Result<(), LayoutError> {
        let nd = self.shape.len();
        let isz = self.itemsize;
        if sel.ndim() != nd {
            return Err(LayoutError::Rank {
                shape: nd,
                chunks: sel.ndim(),
                blocks: nd,
            });
        }
        if nd == 0 {
            return if nchunk == 0 { f(0, 0, isz) } else { Ok(()) };
        }
        let origin: Vec<u64> = self
            .chunk_coords(nchunk)
            .iter()
            .zip(&self.chunks)
            .map(|(c, s)| c * s)
            .collect();
        // Intersection of the selection with the chunk, in chunk-local coordinates.
        let mut local = Vec::with_capacity(nd);
        for (((r, &o), &c), &n) in sel
            .ranges()
            .iter()
            .zip(&origin)
            .zip(&self.chunks)
            .zip(&self.shape)
        {
            let lo = r.start.max(o);
            let hi = r.end.min(o + c).min(n);
            if lo >= hi {
                return Ok(());
            }
            local.push(lo - o..hi - o);
        }
        let bgrid: Vec<u64> = self
            .chunks
            .iter()
            .zip(&self.blocks)
            .map(|(&c, &b)| c.div_ceil(b))
            .collect();
        let block_items: u64 = self.blocks.iter().product();
        let sel_extent = sel.extent();
        let brange: Vec<Range<u64>> = local
            .iter()
            .zip(&self.blocks)
            .map(|(r, &b)| r.start / b..(r.end - 1) / b + 1)
            .collect();
        let mut result = Ok(());
        for_each_index(&brange, |bc| {
            if result.is_err() {
                return;
            }
            let base = linear(bc, &bgrid) * block_items;
            // Part of the block inside the selection, chunk-local.
            let inner: Vec<Range<u64>> = (0..nd)
                .map(|d| {
                    let b0 = bc[d] * self.blocks[d];
                    local[d].start.max(b0)..local[d].end.min(b0 + self.blocks[d])
                })
                .collect();
            let run = (inner[nd - 1].end - inner[nd - 1].start) as usize * isz;
            let rows = &inner[..nd - 1];
            for_each_index(rows, |row| {
                if result.is_err() {
                    return;
                }
                let (mut src, mut dst) = (0u64, 0u64);
                for d in 0..nd {
                    let x = if d < nd - 1 { row[d] } else { inner[d].start };
                    src = src * self.blocks[d] + (x - bc[d] * self.blocks[d]);
                    dst = dst * sel_extent[d] + (origin[d] + x - sel.ranges()[d].start);
                }
                result = f((base + src) as usize * isz, dst as usize * isz, run);
            });
        });
        result
    }
}

/// Calls `f` with every multi-index of the box `ranges`, in C order. A box with an empty range
/// has no index; a zero-dimensional box has one (the empty index).
fn for_each_index(ranges: &[Range<u64>], mut f: impl FnMut(&[u64])) {
    if ranges.iter().any(|r| r.start >= r.end) {
        return;
    }
    let mut idx: Vec<u64> = ranges.iter().map(|r| r.start).collect();
    loop {
        f(&idx);
        let mut d = ranges.len();
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < ranges[d].end {
                break;
            }
            idx[d] = ranges[d].start;
        }
    }
}

fn linear(coords: &[u64], grid: &[u64]) -> u64 {
    coords.iter().zip(grid).fold(0, |acc, (c, g)| acc * g + c)
}

fn unlinear(mut n: u64, grid: &[u64]) -> Vec<u64> {
    let mut out = vec![0; grid.len()];
    for d in (0..grid.len()).rev() {
        if grid[d] > 0 {
            out[d] = n % grid[d];
            n /= grid[d];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SliceSpec;

    /// dir1/ds-2d.b2nd of root-example: (10,20) uint16 arange, chunks (5,5), blocks (2,3).
    fn ds2d() -> ChunkLayout {
        ChunkLayout::new(vec![10, 20], vec![5, 5], vec![2, 3], 2).unwrap()
    }

    fn arange_u16(n: u16) -> Vec<u8> {
        (0..n).flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn chunk_layout_matches_spec_example() {
        let l = ds2d();
        assert_eq!(l.nchunks(), 8);
        assert_eq!(l.chunk_nitems(), 36);
        let mut chunk = vec![0u8; 72];
        l.copy_to_chunk(0, &arange_u16(200), &mut chunk).unwrap();
        let items: Vec<u16> = chunk
            .chunks(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        assert_eq!(
            &items[..18],
            &[
                0, 1, 2, 20, 21, 22, 3, 4, 0, 23, 24, 0, 40, 41, 42, 60, 61, 62
            ]
        );
    }

    #[test]
    fn touching_chunks() {
        let l = ds2d();
        let s = Selection::new(&SliceSpec::parse("4:6, 4:6").unwrap(), l.shape()).unwrap();
        assert_eq!(l.chunks_touching(&s), vec![0, 1, 4, 5]);
        let s = Selection::new(&SliceSpec::parse("10:20").unwrap(), l.shape()).unwrap();
        assert!(l.chunks_touching(&s).is_empty());
        let z = ChunkLayout::new(vec![], vec![], vec![], 24).unwrap();
        assert_eq!(z.nchunks(), 1);
        assert_eq!(z.chunks_touching(&Selection::all(&[])), vec![0]);
        let e = ChunkLayout::new(vec![0, 20], vec![0, 20], vec![0, 20], 4).unwrap();
        assert_eq!(e.nchunks(), 0);
    }

    #[test]
    fn rejects_bad_layouts() {
        assert!(ChunkLayout::new(vec![10], vec![5, 5], vec![1], 1).is_err());
        assert!(ChunkLayout::new(vec![10], vec![0], vec![0], 1).is_err());
        assert!(ChunkLayout::new(vec![10], vec![5], vec![6], 1).is_err());
        assert!(ChunkLayout::new(vec![10], vec![5], vec![5], 0).is_err());
    }

    #[test]
    fn short_buffers_are_errors() {
        let l = ds2d();
        let mut out = vec![0u8; 4];
        let all = Selection::all(l.shape());
        assert!(l.copy_from_chunk(0, &[0u8; 72], &all, &mut out).is_err());
        let mut out = vec![0u8; 400];
        assert!(l.copy_from_chunk(0, &[0u8; 10], &all, &mut out).is_err());
    }
}
