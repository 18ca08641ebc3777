//! Making the chunks of an HDF5 dataset (see the parent module), on the chunk makers'
//! threads ([`crate::pool`]).

use std::sync::Arc;

use cat2_array::{ChunkLayout, Selection};
use cat2_format::embedded::{self, EmbeddedFrame};
use cat2_format::{ChunkSource, FormatError};

use super::{H5Dataset, Inner, MAX_FRAME_OVERHEAD, Plan};
use crate::{H5File, ffi};

impl Inner {
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn file(&self) -> &Arc<H5File> {
        &self.file
    }

    pub(crate) fn fill(&self) -> &[u8] {
        &self.fill
    }

    pub(crate) fn layout(&self) -> &ChunkLayout {
        &self.layout
    }

    fn unreadable(&self, n: u64, reason: impl Into<String>) -> FormatError {
        FormatError::Unreadable {
            path: self.label.clone(),
            nchunk: n,
            reason: reason.into(),
        }
    }

    /// Checks that chunk `n` is stored where and as it was when this version was opened:
    /// `loc` is where libhdf5 says it is now (after the read). A file rewritten in place
    /// fails here even within one tick of its modification time.
    fn verify(&self, n: u64, loc: Option<ffi::ChunkLoc>) -> Result<(), FormatError> {
        self.verify_read(n, loc, None)
    }

    /// [`Inner::verify`], with the stored bytes already read (`raw`: digested instead of read
    /// again).
    fn verify_read(
        &self,
        n: u64,
        loc: Option<ffi::ChunkLoc>,
        raw: Option<&[u8]>,
    ) -> Result<(), FormatError> {
        let Some(was) = self.stored.get().and_then(|s| s.get(n as usize)) else {
            return Ok(());
        };
        let changed = || FormatError::Changed {
            path: self.file.path().to_owned(),
        };
        if was.loc != loc {
            return Err(changed());
        }
        if let Some(loc) = loc {
            let digest = match raw {
                Some(raw) => xxhash_rust::xxh3::xxh3_64(raw),
                None => {
                    crate::etag::digest_range(self, self.file.chunk_offset(loc.addr), loc.size)?
                }
            };
            if digest != was.digest {
                return Err(changed());
            }
        }
        Ok(())
    }

    /// The outcome of a libhdf5 read of chunk `n` (starting at `start`), checked against the
    /// version: a read that failed or succeeded while the file was rewritten is stale.
    fn checked(
        &self,
        n: u64,
        ds: &hdf5::Dataset,
        start: &[u64],
        read: Result<(), ffi::H5Error>,
    ) -> Result<(), FormatError> {
        let loc = self.location(n, ds, start);
        let verified = loc.and_then(|loc| self.verify(n, loc));
        match (read, verified) {
            (_, Err(e @ FormatError::Changed { .. })) => Err(e),
            (Err(e), _) => {
                self.file.check_unchanged()?;
                Err(self.unreadable(n, format!("{} (a filter missing or failing?)", e.0)))
            }
            (Ok(()), v) => v,
        }
    }

    /// Where libhdf5 says chunk `n` (starting at `start`) of `ds` is stored.
    fn location(
        &self,
        n: u64,
        ds: &hdf5::Dataset,
        start: &[u64],
    ) -> Result<Option<ffi::ChunkLoc>, FormatError> {
        if self.stored.get().is_none() {
            return Ok(None);
        }
        ffi::chunk_location(ds.id(), start).map_err(|e| self.unreadable(n, e.0))
    }

    /// The box of chunk `n` inside the array: where it starts, and its extent.
    fn region(&self, n: u64) -> (Vec<u64>, Vec<u64>) {
        let start = self.layout.chunk_start(n);
        let count = start
            .iter()
            .zip(self.layout.chunks())
            .zip(self.layout.shape())
            .map(|((s, c), d)| (*c).min(d - s))
            .collect();
        (start, count)
    }

    /// Lays the C-order `data` of chunk `n`'s box out in blocks (zero padding) and
    /// compresses it.
    fn pack(
        &self,
        n: u64,
        start: &[u64],
        count: &[u64],
        data: &[u8],
    ) -> Result<Vec<u8>, FormatError> {
        let itemsize = self.layout.itemsize();
        let mut chunk = vec![0u8; self.layout.chunk_nitems() as usize * itemsize];
        let ranges = start.iter().zip(count).map(|(s, c)| *s..s + c).collect();
        let sel = Selection::from_ranges(ranges, self.layout.shape())?;
        self.layout
            .copy_selection_to_chunk(n, &sel, data, &mut chunk)?;
        embedded::compress_chunk(&chunk, &self.cparams)
    }

    /// The items of chunk `n`'s box (C order), read by libhdf5 and checked.
    fn read_box(&self, n: u64, start: &[u64], count: &[u64]) -> Result<Vec<u8>, FormatError> {
        let bytes = count.iter().product::<u64>() as usize * self.layout.itemsize();
        let mut data = vec![0u8; bytes];
        self.file.with(|h5| {
            let ds = h5
                .dataset(&self.name)
                .map_err(|e| self.unreadable(n, e.to_string()))?;
            let read = ffi::read_region(ds.id(), start, count, &mut data);
            self.checked(n, &ds, start, read)
        })?;
        Ok(data)
    }

    /// The items of chunk `n`'s box (C order): decoded here when its filters allow
    /// ([`super::unfilter`]), by libhdf5 otherwise.
    fn chunk_box(&self, n: u64) -> Result<Vec<u8>, FormatError> {
        let (start, count) = self.region(n);
        let Some(pipeline) = self.unfilter.filter(|_| self.stored.get().is_some()) else {
            return self.read_box(n, &start, &count);
        };
        let loc = self.stored_at(n)?;
        let Some(loc) = loc else {
            self.verify(n, None)?;
            let items = count.iter().product::<u64>() as usize;
            return Ok(self.fill.repeat(items));
        };
        let itemsize = self.layout.itemsize();
        let dims = self.layout.chunks();
        let full = dims.iter().product::<u64>() * itemsize as u64;
        if loc.size > super::unfilter::max_stored(full) {
            return Err(self.unreadable(n, "a stored chunk larger than deflate can make it"));
        }
        // Read and checked without libhdf5's lock: the bytes the etag covers, or stale.
        let mut raw = vec![0u8; loc.size as usize];
        self.file
            .pread(&mut raw, self.file.chunk_offset(loc.addr))?;
        self.verify_read(n, Some(loc), Some(&raw))?;
        let whole = pipeline
            .decode(&raw, loc.filter_mask, itemsize, full as usize)
            .map_err(|e| self.unreadable(n, e))?;
        clip(&whole, dims, &count, itemsize)
    }

    fn convert(&self, n: u64) -> Result<Vec<u8>, FormatError> {
        let (start, count) = self.region(n);
        let data = self.chunk_box(n)?;
        self.pack(n, &start, &count, &data)
    }

    fn fill_chunk(&self, n: u64) -> Result<Vec<u8>, FormatError> {
        let (start, count) = self.region(n);
        let items = count.iter().product::<u64>() as usize;
        self.pack(n, &start, &count, &self.fill.repeat(items))
    }

    /// A whole HDF5 chunk (its full chunk shape, C order) cut to the part inside the array.
    fn pack_full(&self, n: u64, full: &[u8]) -> Result<Vec<u8>, FormatError> {
        let (start, count) = self.region(n);
        let itemsize = self.layout.itemsize();
        let dims = self.layout.chunks();
        let want = dims.iter().product::<u64>() as usize * itemsize;
        if full.len() < want {
            return Err(self.unreadable(n, "stored chunk is shorter than its shape"));
        }
        let clipped = clip(full, dims, &count, itemsize)?;
        self.pack(n, &start, &count, &clipped)
    }

    /// Where libhdf5 says chunk `n` is stored now (`None`: never written).
    fn stored_at(&self, n: u64) -> Result<Option<ffi::ChunkLoc>, FormatError> {
        let (start, _) = self.region(n);
        self.file.with(|h5| {
            let ds = h5
                .dataset(&self.name)
                .map_err(|e| self.unreadable(n, e.to_string()))?;
            ffi::chunk_location(ds.id(), &start).map_err(|e| self.unreadable(n, e.0))
        })
    }

    fn blosc2(&self, n: u64, buf: &mut Vec<u8>) -> Result<(), FormatError> {
        let loc = self.stored_at(n)?;
        let Some(loc) = loc else {
            self.verify(n, None)?;
            *buf = self.fill_chunk(n)?;
            return Ok(());
        };
        let made = self.blosc2_stored(n, loc, buf);
        // Checked after reading: what was read is what the etag covers.
        self.verify(n, Some(loc))?;
        made
    }

    /// Chunk `n` made from its stored Blosc2 frame at `loc`.
    fn blosc2_stored(
        &self,
        n: u64,
        loc: ffi::ChunkLoc,
        buf: &mut Vec<u8>,
    ) -> Result<(), FormatError> {
        let itemsize = self.layout.itemsize();
        let full_bytes = self.layout.chunks().iter().product::<u64>() * itemsize as u64;
        let at = self.file.chunk_offset(loc.addr);
        if loc.filter_mask & 1 != 0 {
            // The filter was skipped for this chunk: its bytes are the plain items.
            if loc.size != full_bytes {
                return Err(self.unreadable(n, "an unfiltered chunk of the wrong size"));
            }
            let mut raw = vec![0u8; loc.size as usize];
            self.file.pread(&mut raw, at)?;
            *buf = self.pack_full(n, &raw)?;
            return Ok(());
        }
        if loc.size > full_bytes + MAX_FRAME_OVERHEAD {
            return Err(
                self.unreadable(n, "a stored chunk larger than a Blosc2 frame of it can be")
            );
        }
        let frame = EmbeddedFrame::open(self.file.path(), self.file.raw_clone()?, at, loc.size)
            .map_err(|_| self.unreadable(n, "the stored chunk is not a Blosc2 frame"))?;
        if frame.nchunks() != 1 {
            return Err(self.unreadable(n, "the stored frame does not hold exactly one chunk"));
        }
        let expected = self.layout.chunk_nitems() as usize * itemsize;
        if !frame.chunk_into(0, buf)? {
            // c-blosc2 stores all-zero (or all-NaN) chunks as a mark, not as bytes.
            return match frame.special(0) {
                Some(s @ (1 | 2)) => {
                    let nbytes = i32::try_from(expected).map_err(|_| self.unreadable(n, "size"))?;
                    *buf = embedded::special_chunk(s, nbytes, self.cparams.typesize)?;
                    self.file.check_unchanged()
                }
                _ => {
                    *buf = self.fill_chunk(n)?;
                    self.file.check_unchanged()
                }
            };
        }
        self.file.check_unchanged()?;
        let h = cat2_format::chunk::ChunkHeader::parse(n, buf)?;
        if self.plan == Plan::Verbatim {
            let ts = if self.cparams.typesize > 255 {
                1
            } else {
                self.cparams.typesize
            };
            if h.nbytes as usize == expected
                && h.blocksize == self.cparams.blocksize
                && i32::from(h.typesize) == ts
            {
                return Ok(());
            }
            if self.layout.shape().len() > 1 {
                return Err(self.unreadable(
                    n,
                    "written with other Blosc2 parameters than the dataset's first chunk",
                ));
            }
        }
        // A 1-d super-chunk frame's chunk: the plain items of the whole HDF5 chunk.
        if u64::try_from(h.nbytes).ok() != Some(full_bytes) {
            return Err(self.unreadable(n, "a stored chunk of the wrong size"));
        }
        let full = cat2_format::chunk::decompress_standalone(buf)
            .map_err(|e| self.unreadable(n, e.to_string()))?;
        *buf = self.pack_full(n, &full)?;
        Ok(())
    }
}

/// A C-order box of `dims` as a one-chunk, one-block layout (whose chunk bytes are then the
/// box in C order), and the sub-box `count` at its origin: the project's chunk copies do the
/// box copies.
fn box_layout(
    dims: &[u64],
    count: &[u64],
    itemsize: usize,
) -> Result<(ChunkLayout, Selection), FormatError> {
    let layout = ChunkLayout::new(dims.to_vec(), dims.to_vec(), dims.to_vec(), itemsize)?;
    let sel = Selection::from_ranges(count.iter().map(|c| 0..*c).collect(), dims)?;
    Ok((layout, sel))
}

/// The sub-box `count` at `offset` of a C-order box `dims`.
fn sub_box(
    full: &[u8],
    dims: &[u64],
    offset: &[u64],
    count: &[u64],
    itemsize: usize,
) -> Result<Vec<u8>, FormatError> {
    let layout = ChunkLayout::new(dims.to_vec(), dims.to_vec(), dims.to_vec(), itemsize)?;
    let ranges = offset.iter().zip(count).map(|(o, c)| *o..o + c).collect();
    let sel = Selection::from_ranges(ranges, dims)?;
    let mut out = vec![0u8; count.iter().product::<u64>() as usize * itemsize];
    layout.copy_from_chunk(0, full, &sel, &mut out)?;
    Ok(out)
}

/// The sub-box `count` at the origin of a C-order box `dims`.
fn clip(full: &[u8], dims: &[u64], count: &[u64], itemsize: usize) -> Result<Vec<u8>, FormatError> {
    let mut out = vec![0u8; count.iter().product::<u64>() as usize * itemsize];
    if count == dims {
        let n = out.len();
        let src = full.get(..n).ok_or(cat2_array::LayoutError::Buffer {
            needed: n,
            got: full.len(),
        })?;
        out.copy_from_slice(src);
    } else if !out.is_empty() {
        let (layout, sel) = box_layout(dims, count, itemsize)?;
        layout.copy_from_chunk(0, full, &sel, &mut out)?;
    }
    Ok(out)
}

/// The C-order box `count` placed at the origin of a zeroed C-order box `dims` (the inverse
/// of [`clip`]).
fn unclip(
    data: &[u8],
    count: &[u64],
    dims: &[u64],
    itemsize: usize,
) -> Result<Vec<u8>, FormatError> {
    let mut out = vec![0u8; dims.iter().product::<u64>() as usize * itemsize];
    if count == dims {
        let n = out.len();
        let src = data.get(..n).ok_or(cat2_array::LayoutError::Buffer {
            needed: n,
            got: data.len(),
        })?;
        out.copy_from_slice(src);
    } else if !count.contains(&0) {
        let (layout, sel) = box_layout(dims, count, itemsize)?;
        layout.copy_selection_to_chunk(0, &sel, data, &mut out)?;
    }
    Ok(out)
}

impl Inner {
    /// Block `b` of chunk `n` of a converted dataset, read alone: libhdf5 decodes the HDF5
    /// chunk (filters work on whole chunks) but only the block's box is copied out and
    /// compressed, not the whole chunk.
    fn convert_block(&self, n: u64, b: u64) -> Result<(Vec<u8>, usize), FormatError> {
        let l = &self.layout;
        let itemsize = l.itemsize();
        let per_dim: Vec<u64> = l
            .chunks()
            .iter()
            .zip(l.blocks())
            .map(|(c, bl)| c.div_ceil(*bl))
            .collect();
        let nblocks: u64 = per_dim.iter().product();
        if b >= nblocks {
            return Err(self.unreadable(n, format!("no block {b}")));
        }
        let mut rem = b;
        let mut bcoords = vec![0u64; per_dim.len()];
        for d in (0..per_dim.len()).rev() {
            bcoords[d] = rem % per_dim[d];
            rem /= per_dim[d];
        }
        let cstart = l.chunk_start(n);
        let start: Vec<u64> = cstart
            .iter()
            .zip(&bcoords)
            .zip(l.blocks())
            .map(|((s, c), bl)| s + c * bl)
            .collect();
        // The block's box: inside the array and inside the chunk (blocks past either are
        // padding).
        let count: Vec<u64> = start
            .iter()
            .zip(l.blocks())
            .zip(l.shape())
            .zip(cstart.iter().zip(l.chunks()))
            .map(|(((s, bl), d), (cs, c))| {
                (*bl)
                    .min(d.saturating_sub(*s))
                    .min((cs + c).saturating_sub(*s))
            })
            .collect();
        let nitems: u64 = count.iter().product();
        let mut data = vec![0u8; nitems as usize * itemsize];
        let whole_chunk = l.chunk_nitems() as usize * itemsize;
        if nitems > 0 && self.stored.get().is_some() && whole_chunk <= super::decoded::MAX_ENTRY {
            // Chunked: libhdf5 decodes the whole chunk anyway; decoded once for all its blocks.
            let (cs, cc) = self.region(n);
            let whole =
                super::decoded::get_or_decode(self.id, n, &self.gate, || self.chunk_box(n))?;
            let offset: Vec<u64> = start.iter().zip(&cs).map(|(s, c)| s - c).collect();
            data = sub_box(&whole, &cc, &offset, &count, itemsize)?;
        } else if nitems > 0 {
            self.file.with(|h5| {
                let ds = h5
                    .dataset(&self.name)
                    .map_err(|e| self.unreadable(n, e.to_string()))?;
                let read = ffi::read_region(ds.id(), &start, &count, &mut data);
                self.checked(n, &ds, &cstart, read)
            })?;
        }
        let block = unclip(&data, &count, l.blocks(), itemsize)?;
        let raw = embedded::compress_chunk(&block, &self.cparams)?;
        Ok((raw, block.len()))
    }
}

impl Inner {
    /// Block `b` of chunk `n` of a Blosc2-filtered dataset, cut from the stored chunk without
    /// decoding it; `None` when the chunk must be read whole (unwritten, special, unfiltered,
    /// or its blocks do not decode alone).
    fn verbatim_block(&self, n: u64, b: u64) -> Result<Option<(Vec<u8>, usize)>, FormatError> {
        let loc = self.stored_at(n)?;
        let itemsize = self.layout.itemsize();
        let full_bytes = self.layout.chunks().iter().product::<u64>() * itemsize as u64;
        let Some(loc) = loc.filter(|l| l.filter_mask & 1 == 0) else {
            return Ok(None);
        };
        if loc.size > full_bytes + MAX_FRAME_OVERHEAD {
            return Ok(None);
        }
        let at = self.file.chunk_offset(loc.addr);
        let frame = EmbeddedFrame::open(self.file.path(), self.file.raw_clone()?, at, loc.size)
            .map_err(|_| self.unreadable(n, "the stored chunk is not a Blosc2 frame"))?;
        if frame.nchunks() != 1 {
            return Ok(None);
        }
        let expected = self.layout.chunk_nitems() as i64 * itemsize as i64;
        let one = frame
            .one_block(0, expected, self.layout.block_bytes(), b)
            .map_err(|e| self.unreadable(n, e.to_string()))?;
        // Checked after reading: what was read is what the etag covers.
        self.verify(n, Some(loc))?;
        Ok(one)
    }
}

impl ChunkSource for H5Dataset {
    fn chunk_into(&self, nchunk: u64, buf: &mut Vec<u8>) -> Result<(), FormatError> {
        let nchunks = self.layout.nchunks();
        if nchunk >= nchunks {
            return Err(FormatError::NoSuchChunk { nchunk, nchunks });
        }
        let me = self.0.clone();
        *buf = crate::pool::run(move || {
            let mut out = Vec::new();
            match me.plan {
                Plan::Convert => out = me.convert(nchunk)?,
                Plan::Verbatim | Plan::Recompress => me.blosc2(nchunk, &mut out)?,
            }
            Ok(out)
        })?;
        Ok(())
    }

    fn block(&self, nchunk: u64, block: u64) -> Result<Option<(Vec<u8>, usize)>, FormatError> {
        let nchunks = self.layout.nchunks();
        if nchunk >= nchunks {
            return Err(FormatError::NoSuchChunk { nchunk, nchunks });
        }
        if self.layout.shape().is_empty() {
            return Ok(None);
        }
        let me = self.0.clone();
        match self.plan {
            Plan::Convert => crate::pool::run(move || me.convert_block(nchunk, block)).map(Some),
            Plan::Verbatim => crate::pool::run(move || me.verbatim_block(nchunk, block)),
            Plan::Recompress => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::clip;

    #[test]
    fn unclips_boxes() {
        let data: Vec<u8> = (1..=6).collect();
        assert_eq!(
            super::unclip(&data, &[2, 3], &[3, 4], 1).unwrap(),
            [1, 2, 3, 0, 4, 5, 6, 0, 0, 0, 0, 0]
        );
        assert_eq!(super::unclip(&data, &[0, 3], &[2, 2], 1).unwrap(), [0; 4]);
        let full: Vec<u8> = (0..12).collect();
        let back = super::clip(
            &super::unclip(&data, &[2, 3], &[3, 4], 1).unwrap(),
            &[3, 4],
            &[2, 3],
            1,
        )
        .unwrap();
        assert_eq!(back, data);
        assert_eq!(super::unclip(&full, &[3, 4], &[3, 4], 1).unwrap(), full);
    }

    #[test]
    fn cuts_sub_boxes() {
        let full: Vec<u8> = (0..12).collect();
        assert_eq!(
            super::sub_box(&full, &[3, 4], &[1, 1], &[2, 2], 1).unwrap(),
            [5, 6, 9, 10]
        );
        assert_eq!(
            super::sub_box(&full, &[3, 4], &[0, 0], &[3, 4], 1).unwrap(),
            full
        );
        assert!(super::sub_box(&full, &[3, 4], &[2, 0], &[2, 1], 1).is_err());
    }

    #[test]
    fn clips_boxes() {
        let full: Vec<u8> = (0..12).collect();
        assert_eq!(
            clip(&full, &[3, 4], &[2, 3], 1).unwrap(),
            [0, 1, 2, 4, 5, 6]
        );
        assert_eq!(clip(&full, &[12], &[5], 1).unwrap(), [0, 1, 2, 3, 4]);
        assert_eq!(clip(&full, &[2, 3], &[1, 2], 2).unwrap(), [0, 1, 2, 3]);
        assert_eq!(clip(&full, &[3, 4], &[3, 4], 1).unwrap(), full);
    }
}
