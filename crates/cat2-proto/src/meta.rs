//! Dataset metadata: everything needed to describe a dataset (Caterva2's `info` JSON, spec §2.5)
//! and to create an empty copy of it (a subscriber cache file).

use serde::{Deserialize, Serialize};

use cat2_array::{ChunkLayout, DType};

use crate::MetaError;

/// Codecs c-blosc2 carries itself (BloscLZ, LZ4, LZ4HC, ZLIB, ZSTD, and the bundled NDLZ and
/// ZFP plugins). Others make c-blosc2 load plugins at run time: never for data from elsewhere.
pub const SAFE_CODECS: &[u8] = &[0, 1, 2, 4, 5, 32, 33, 34, 35];
/// Filters c-blosc2 carries itself (shuffle, bitshuffle, delta, trunc-prec, and the bundled
/// ndcell, ndmean, bytedelta and int-trunc plugins).
pub const SAFE_FILTERS: &[u8] = &[0, 1, 2, 3, 4, 32, 33, 35, 36];
/// Most fixed metalayers of a frame (c-blosc2 holds 16).
pub const MAX_METALAYERS: usize = 15;
/// Most variable-length metalayers accepted.
pub const MAX_VLMETA: usize = 1024;
/// Longest metalayer name (c-blosc2's limit).
const MAX_LAYER_NAME: usize = 31;

fn check_layers(layers: &[Layer], max: usize) -> Result<(), String> {
    if layers.len() > max {
        return Err(format!("{} entries, at most {max}", layers.len()));
    }
    let mut names = std::collections::HashSet::new();
    for l in layers {
        if l.name.is_empty() || l.name.len() > MAX_LAYER_NAME || l.name.contains('\0') {
            return Err(format!("invalid name {:?}", l.name));
        }
        if !names.insert(l.name.as_str()) {
            return Err(format!("duplicate name {:?}", l.name));
        }
        if l.content.len() > i32::MAX as usize / 2 {
            return Err(format!("{:?} is too large", l.name));
        }
    }
    Ok(())
}

/// Most dimensions of a b2nd array.
pub const MAX_DIM: usize = 8;

/// What a dataset is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A `.b2nd` n-d array.
    Array,
    /// A `.b2frame` super-chunk.
    Frame,
    /// Any other file, exposed as a super-chunk of bytes compressed on the fly.
    File,
}

impl Kind {
    /// The kind of the Blosc2 file that stores this kind: plain files are stored (in caches,
    /// downloads) as super-chunks named `<name>.b2`.
    pub fn stored_as(self) -> Kind {
        if self == Kind::File {
            Kind::Frame
        } else {
            self
        }
    }
}

/// Compression parameters of a super-chunk, as stored in its frame header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CParams {
    /// Codec (0 BloscLZ, 1 LZ4, 2 LZ4HC, 4 ZLIB, 5 ZSTD, …).
    pub codec: u8,
    /// Codec meta.
    pub codec_meta: u8,
    /// Compression level.
    pub clevel: u8,
    /// Bytes per item.
    pub typesize: i32,
    /// Block size in bytes (0: automatic).
    pub blocksize: i32,
    /// Split mode.
    pub splitmode: u8,
    /// The six filter slots (0 none, 1 shuffle, 2 bitshuffle, 3 delta, 4 trunc-prec …).
    pub filters: [u8; 6],
    /// Meta of each filter slot.
    pub filters_meta: [u8; 6],
}

/// A named binary metalayer (fixed in the header, or a variable-length one in the trailer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// Name.
    pub name: String,
    /// Raw content (msgpack for b2nd and Caterva2's user attributes).
    #[serde(with = "serde_bytes")]
    pub content: Vec<u8>,
}

/// The n-d part of an array's metadata (the `b2nd` metalayer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrayMeta {
    /// Shape.
    pub shape: Vec<u64>,
    /// Chunk shape.
    pub chunks: Vec<u64>,
    /// Block shape.
    pub blocks: Vec<u64>,
    /// The dtype string as stored (`<i8`, `|S6`, or a structured list).
    pub dtype: String,
}

/// Everything known about a dataset but its chunks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// What it is.
    pub kind: Kind,
    /// Array metadata, for [`Kind::Array`].
    pub array: Option<ArrayMeta>,
    /// Bytes per chunk (padding included); the last chunk of a super-chunk may hold fewer.
    pub chunksize: i32,
    /// Uncompressed bytes.
    pub nbytes: i64,
    /// Compressed bytes of the chunks.
    pub cbytes: i64,
    /// Number of chunks.
    pub nchunks: i64,
    /// Whether the frame is contiguous (one file).
    pub contiguous: bool,
    /// Compression parameters.
    pub cparams: CParams,
    /// Fixed metalayers (e.g. `b2nd`), in header order.
    pub metalayers: Vec<Layer>,
    /// Variable-length metalayers (user attributes, "vlmeta").
    pub vlmeta: Vec<Layer>,
}

impl Meta {
    /// The chunk layout: the array's, or the 1-d layout of a super-chunk's items.
    ///
    /// # Errors
    /// [`MetaError`] when the metadata is inconsistent.
    pub fn layout(&self) -> Result<ChunkLayout, MetaError> {
        let typesize = usize::try_from(self.cparams.typesize)
            .ok()
            .filter(|t| *t > 0);
        let typesize = typesize.ok_or_else(|| self.bad("typesize must be positive"))?;
        match &self.array {
            Some(a) => Ok(ChunkLayout::new(
                a.shape.clone(),
                a.chunks.clone(),
                a.blocks.clone(),
                typesize,
            )?),
            None => {
                let nitems = u64::try_from(self.nbytes).map_err(|_| self.bad("negative nbytes"))?
                    / typesize as u64;
                // An empty super-chunk has no chunk size yet (c-blosc2 says -1).
                let chunk_items = if self.nbytes == 0 {
                    0
                } else {
                    u64::try_from(self.chunksize).map_err(|_| self.bad("negative chunksize"))?
                        / typesize as u64
                };
                if chunk_items == 0 && nitems > 0 {
                    return Err(self.bad("chunksize smaller than typesize"));
                }
                Ok(ChunkLayout::new_items(nitems, chunk_items, typesize)?)
            }
        }
    }

    /// Uncompressed bytes of chunk `nchunk` (the last chunk of a super-chunk may be short).
    ///
    /// # Errors
    /// [`MetaError::NoSuchChunk`] past the end.
    pub fn chunk_nbytes(&self, nchunk: u64) -> Result<i64, MetaError> {
        let n = u64::try_from(self.nchunks).unwrap_or(0);
        if nchunk >= n {
            return Err(MetaError::NoSuchChunk { nchunk, nchunks: n });
        }
        let full = i64::from(self.chunksize);
        Ok(if nchunk + 1 == n {
            self.nbytes - full * (self.nchunks - 1)
        } else {
            full
        })
    }

    /// Checks that the metadata is self-consistent (as a subscriber must before trusting
    /// metadata that came over the network).
    ///
    /// # Errors
    /// [`MetaError`] naming the inconsistency.
    pub fn validate(&self) -> Result<(), MetaError> {
        let layout = self.layout()?;
        // An empty super-chunk has no chunk size yet (c-blosc2 reports -1).
        let empty = self.nchunks == 0 && self.nbytes == 0;
        if self.nchunks < 0 || self.nbytes < 0 || (self.chunksize < 0 && !empty) {
            return Err(self.bad("negative sizes"));
        }
        if self.cparams.typesize <= 0 {
            return Err(self.bad("typesize must be positive"));
        }
        if self.nbytes > 0
            && (self.chunksize < self.cparams.typesize
                || self.chunksize % self.cparams.typesize != 0)
        {
            return Err(self.bad("chunksize must be a positive multiple of typesize"));
        }
        if self.cparams.blocksize < 0 {
            return Err(self.bad("negative blocksize"));
        }
        if !SAFE_CODECS.contains(&self.cparams.codec) {
            return Err(self.bad("unsupported codec"));
        }
        if self
            .cparams
            .filters
            .iter()
            .any(|f| !SAFE_FILTERS.contains(f))
        {
            return Err(self.bad("unsupported filter"));
        }
        check_layers(&self.metalayers, MAX_METALAYERS)
            .map_err(|r| self.bad(&format!("metalayers: {r}")))?;
        check_layers(&self.vlmeta, MAX_VLMETA).map_err(|r| self.bad(&format!("vlmeta: {r}")))?;
        if self.array.as_ref().is_some_and(|a| a.shape.len() > MAX_DIM) {
            return Err(self.bad("more than 8 dimensions"));
        }
        if self.array.is_some() {
            let expected = layout.nchunks();
            if (self.nchunks as i128) * i128::from(self.chunksize) != i128::from(self.nbytes) {
                return Err(self.bad("nbytes does not match nchunks and chunksize"));
            }
            if u64::try_from(self.nchunks).ok() != Some(expected) {
                return Err(self.bad("nchunks does not match the shape"));
            }
            let ext = layout.chunk_nitems() * layout.itemsize() as u64;
            if u64::try_from(self.chunksize).ok() != Some(ext) && expected > 0 {
                return Err(self.bad("chunksize does not match chunks, blocks and dtype"));
            }
            let dtype = DType::parse(
                &self
                    .array
                    .as_ref()
                    .map(|a| a.dtype.clone())
                    .unwrap_or_default(),
            )?;
            if dtype.itemsize() != layout.itemsize() {
                return Err(self.bad("dtype size does not match typesize"));
            }
        } else {
            let cs = i64::from(self.chunksize);
            let expected = if self.nbytes == 0 {
                0
            } else if cs > 0 {
                (self.nbytes + cs - 1) / cs
            } else {
                -1
            };
            if expected != self.nchunks {
                return Err(self.bad("nchunks does not match nbytes and chunksize"));
            }
        }
        if self.nbytes % i64::from(self.cparams.typesize) != 0 {
            return Err(self.bad("nbytes is not a multiple of typesize"));
        }
        Ok(())
    }

    fn bad(&self, reason: &str) -> MetaError {
        MetaError::Invalid(reason.to_owned())
    }

    /// Caterva2's `info` JSON (spec §2.5) for this dataset, with `urlpath` as given.
    pub fn info(&self, urlpath: &str) -> serde_json::Value {
        let cp = &self.cparams;
        let pairs: Vec<[u8; 2]> = cp
            .filters
            .iter()
            .zip(&cp.filters_meta)
            .filter(|(f, _)| **f != 0)
            .map(|(f, m)| [*f, *m])
            .collect();
        let cratio = if self.cbytes > 0 {
            self.nbytes as f64 / self.cbytes as f64
        } else {
            0.0
        };
        let chunkshape = if cp.typesize > 0 {
            i64::from(self.chunksize) / i64::from(cp.typesize)
        } else {
            0
        };
        let vlmeta: serde_json::Map<String, serde_json::Value> = self
            .vlmeta
            .iter()
            .map(|l| (l.name.clone(), crate::msgpack::to_json(&l.content)))
            .collect();
        let schunk = serde_json::json!({
            "cbytes": self.cbytes,
            "chunkshape": chunkshape,
            "chunksize": self.chunksize,
            "contiguous": self.contiguous,
            "cparams": {
                "codec": cp.codec,
                "filters": cp.filters,
                "filters_meta": cp.filters_meta,
                "typesize": cp.typesize,
                "blocksize": cp.blocksize,
                "filters, meta": pairs,
            },
            "cratio": cratio,
            "nbytes": self.nbytes,
            "urlpath": urlpath,
            "vlmeta": vlmeta,
            "nchunks": self.nchunks,
        });
        match &self.array {
            Some(a) => {
                let dtype =
                    DType::parse(&a.dtype).map_or_else(|_| a.dtype.clone(), |t| t.to_string());
                serde_json::json!({
                    "shape": a.shape, "chunks": a.chunks, "blocks": a.blocks, "dtype": dtype, "schunk": schunk,
                })
            }
            None => schunk,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn array_meta() -> Meta {
        Meta {
            kind: Kind::Array,
            array: Some(ArrayMeta {
                shape: vec![1000],
                chunks: vec![100],
                blocks: vec![10],
                dtype: "<i8".into(),
            }),
            chunksize: 800,
            nbytes: 8000,
            cbytes: 5000,
            nchunks: 10,
            contiguous: true,
            cparams: CParams {
                codec: 5,
                codec_meta: 0,
                clevel: 1,
                typesize: 8,
                blocksize: 80,
                splitmode: 4,
                filters: [0, 0, 0, 0, 0, 1],
                filters_meta: [0; 6],
            },
            metalayers: vec![Layer {
                name: "b2nd".into(),
                content: vec![1, 2],
            }],
            vlmeta: vec![],
        }
    }

    #[test]
    fn hostile_metadata_is_rejected() {
        assert!(array_meta().validate().is_ok());
        type Mutation = Box<dyn Fn(&mut Meta)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("nchunks", Box::new(|m| m.nchunks = 11)),
            ("nbytes", Box::new(|m| m.nbytes = 8)),
            ("chunksize 0", Box::new(|m| m.chunksize = 0)),
            ("typesize", Box::new(|m| m.cparams.typesize = 0)),
            (
                "dtype size",
                Box::new(|m| m.array.as_mut().unwrap().dtype = "<i4".into()),
            ),
            ("plugin codec", Box::new(|m| m.cparams.codec = 37)),
            ("plugin filter", Box::new(|m| m.cparams.filters[0] = 99)),
            ("blocksize", Box::new(|m| m.cparams.blocksize = -1)),
            (
                "9 dims",
                Box::new(|m| {
                    let a = m.array.as_mut().unwrap();
                    (a.shape, a.chunks, a.blocks) = (vec![1; 9], vec![1; 9], vec![1; 9]);
                }),
            ),
            (
                "too many metalayers",
                Box::new(|m| {
                    m.metalayers = (0..16)
                        .map(|i| Layer {
                            name: format!("m{i}"),
                            content: vec![],
                        })
                        .collect();
                }),
            ),
            (
                "long name",
                Box::new(|m| {
                    m.vlmeta = vec![Layer {
                        name: "x".repeat(40),
                        content: vec![],
                    }]
                }),
            ),
            (
                "duplicate",
                Box::new(|m| {
                    m.vlmeta = vec![
                        Layer {
                            name: "a".into(),
                            content: vec![],
                        },
                        Layer {
                            name: "a".into(),
                            content: vec![],
                        },
                    ];
                }),
            ),
            (
                "too many chunks",
                Box::new(|m| {
                    let a = m.array.as_mut().unwrap();
                    (a.shape, a.chunks, a.blocks) = (vec![1 << 40], vec![1], vec![1]);
                    m.nchunks = 1 << 40;
                    m.nbytes = 8 << 40;
                    m.chunksize = 8;
                }),
            ),
            (
                "empty array with bytes",
                Box::new(|m| {
                    let a = m.array.as_mut().unwrap();
                    (a.shape, a.chunks, a.blocks) = (vec![0], vec![0], vec![0]);
                    m.nchunks = 0;
                    m.chunksize = 0;
                }),
            ),
        ];
        for (what, f) in cases {
            let mut m = array_meta();
            f(&mut m);
            assert!(m.validate().is_err(), "{what} should be rejected");
        }
    }
}
