//! `cat2export ROOT_DIR HDF5_FILE` (spec §7.3, with 0.2.0's weak points fixed): directories
//! become groups; `.b2nd` arrays datasets of the same name (extension dropped), shape, dtype
//! and chunks, Blosc2-filtered as hdf5plugin reads them, their chunks copied without
//! recompression wherever the layouts allow; `.b2frame`/`.b2` super-chunks and plain files
//! 1-d `uint8` datasets of their bytes; vlmeta attributes. `<U` (UCS-4) arrays, which HDF5
//! cannot hold as such (0.2.0 failed on them), become fixed-length UTF-8 strings. The target
//! must not exist.

use std::path::Path;

use cat2_array::{ChunkLayout, DType, Selection};
use cat2_format::{CParams, Dataset, FormatError, Kind, embedded};
use hdf5::types::{CompoundField, CompoundType, FloatSize, IntSize, TypeDescriptor};

use crate::Converted;
use crate::write::{self, Blosc2Layout};

fn bad(what: &str, reason: impl Into<String>) -> FormatError {
    FormatError::BadMetadata {
        path: what.into(),
        reason: reason.into(),
    }
}

fn h5(what: &str) -> impl Fn(hdf5::Error) -> FormatError + '_ {
    move |e| bad(what, e.to_string())
}

/// Converts the root directory `src` into the new HDF5 file `dst`, calling `progress(done,
/// total)` in chunks.
///
/// # Errors
/// When `dst` exists or cannot be created, or `src` is not a directory. Failures of single
/// entries are reported in [`Converted::failed`].
pub fn export(
    src: &Path,
    dst: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Converted, FormatError> {
    hdf5::silence_errors(true);
    if !src.is_dir() {
        return Err(bad(&src.display().to_string(), "not a directory"));
    }
    crate::must_not_exist(dst, "HDF5 file")?;
    let mut leaves = Vec::new();
    let mut dirs = Vec::new();
    walk(src, "", &mut dirs, &mut leaves, 0);
    let mut opened = Vec::new();
    let mut out = Converted::default();
    for (rel, path) in leaves {
        match open_leaf(&path) {
            Ok(ds) => opened.push((rel, ds)),
            Err(e) => out.failed.push((rel, e.to_string())),
        }
    }
    let total: u64 = opened.iter().map(|(_, d)| d.nchunks()).sum();
    let file = hdf5::File::create_excl(dst).map_err(h5("create"))?;
    for d in &dirs {
        file.create_group(d).map_err(h5(d))?;
    }
    let mut done = 0;
    for (rel, ds) in &opened {
        let (dir, name) = match rel.rsplit_once('/') {
            Some((d, n)) => (d, n),
            None => ("", rel.as_str()),
        };
        let name = h5_name(name, ds.meta().kind);
        let group = if dir.is_empty() {
            file.group("/")
        } else {
            file.group(dir)
        }
        .map_err(h5(dir))?;
        let r = if group.link_exists(&name) {
            Err(bad(
                rel,
                format!("another entry is already exported as {name}"),
            ))
        } else if ds.meta().kind == Kind::Array {
            export_array(&group, &name, ds, &mut |n| progress(done + n, total))
        } else {
            export_bytes(&group, &name, ds, &mut |n| progress(done + n, total))
        };
        match r {
            Ok(()) => out.written += 1,
            Err(e) => {
                tracing::error!(entry = %rel, error = %e, "cannot export");
                out.failed.push((rel.clone(), e.to_string()));
            }
        }
        done += ds.nchunks();
        progress(done, total);
    }
    Ok(out)
}

/// The dataset name of a root entry: Blosc2 files lose their extension, plain files keep
/// their name.
fn h5_name(file: &str, kind: Kind) -> String {
    let stem = match kind {
        Kind::Array => file.strip_suffix(".b2nd"),
        Kind::Frame => file
            .strip_suffix(".b2frame")
            .or_else(|| file.strip_suffix(".b2")),
        Kind::File => None,
    };
    stem.unwrap_or(file).to_owned()
}

fn open_leaf(path: &Path) -> Result<Dataset, FormatError> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.ends_with(".b2") {
        Dataset::open_as(path, Kind::Frame)
    } else {
        Dataset::open(path)
    }
}

/// Directories and files of `dir`, sorted, hidden and temporary entries skipped.
fn walk(
    dir: &Path,
    prefix: &str,
    dirs: &mut Vec<String>,
    leaves: &mut Vec<(String, std::path::PathBuf)>,
    depth: usize,
) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        tracing::warn!(dir = %dir.display(), "cannot read directory, skipped");
        return;
    };
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        let Some(name) = e.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with('.') || name.ends_with('~') || name.ends_with(".tmp") {
            continue;
        }
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let path = e.path();
        if path.is_dir() && depth < 64 {
            dirs.push(rel.clone());
            walk(&path, &rel, dirs, leaves, depth + 1);
        } else if path.is_file() {
            leaves.push((rel, path));
        }
    }
}

/// The HDF5 file type for a NumPy dtype, and whether items must be converted (`<U`).
/// Structured dtypes become packed compounds (NumPy's list form has no padding), so raw
/// Blosc2 chunks fit them as they are.
fn h5_type(dtype: &DType) -> Result<(hdf5::Datatype, bool), String> {
    match dtype {
        DType::Scalar { kind: 'U', .. } => Ok((scalar_type(dtype)?, true)),
        DType::Scalar { .. } => Ok((scalar_type(dtype)?, false)),
        DType::Struct(_) => Ok((member_type(dtype)?, false)),
    }
}

/// The HDF5 type of a NumPy scalar dtype, in its byte order.
fn scalar_type(dtype: &DType) -> Result<hdf5::Datatype, String> {
    let DType::Scalar {
        order, kind, size, ..
    } = dtype
    else {
        return Err("not a scalar dtype".into());
    };
    let (size, order, kind) = (*size, *order, *kind);
    if order == '>' && kind == 'c' {
        return Err("big-endian complex numbers".into());
    }
    let t = hdf5::Datatype::from_descriptor(&scalar(kind, size)?).map_err(|e| e.to_string())?;
    if order == '>' && size > 1 && !matches!(kind, 'S' | 'U' | 'b') {
        crate::ffi::big_endian(&t).map_err(|e| e.0)
    } else {
        Ok(t)
    }
}

/// The HDF5 type of a structured dtype or of one of its members (packed, in field order).
fn member_type(dtype: &DType) -> Result<hdf5::Datatype, String> {
    let DType::Struct(fields) = dtype else {
        if matches!(dtype, DType::Scalar { kind: 'U', .. }) {
            return Err("structured dtypes with <U members".into());
        }
        return scalar_type(dtype);
    };
    let mut members = Vec::new();
    let mut offset = 0;
    for f in fields {
        let base = member_type(&f.dtype)?;
        let t = if f.shape.is_empty() {
            base
        } else {
            crate::ffi::array_type(&base, &f.shape).map_err(|e| e.0)?
        };
        let n: u64 = f.shape.iter().product();
        members.push((f.name.clone(), offset, t));
        offset += f.dtype.itemsize() * n as usize;
    }
    crate::ffi::compound_type(offset, &members).map_err(|e| e.0)
}

/// The HDF5 type of a NumPy scalar kind of `size` bytes (little-endian).
fn scalar(kind: char, size: usize) -> Result<TypeDescriptor, String> {
    let int = || IntSize::from_int(size).ok_or(format!("{size}-byte integers"));
    let float = |s: usize| match s {
        2 => Ok(FloatSize::U2),
        4 => Ok(FloatSize::U4),
        8 => Ok(FloatSize::U8),
        _ => Err(format!("{s}-byte floats")),
    };
    Ok(match kind {
        'b' => TypeDescriptor::Boolean,
        'i' => TypeDescriptor::Integer(int()?),
        'u' => TypeDescriptor::Unsigned(int()?),
        'f' => TypeDescriptor::Float(float(size)?),
        'c' => {
            let half = TypeDescriptor::Float(float(size / 2)?);
            TypeDescriptor::Compound(CompoundType {
                fields: vec![
                    CompoundField::new("r", half.clone(), 0, 0),
                    CompoundField::new("i", half, size / 2, 1),
                ],
                size,
            })
        }
        'S' => TypeDescriptor::FixedAscii(size),
        'U' => TypeDescriptor::FixedUnicode(size),
        k => return Err(format!("NumPy kind {k:?}")),
    })
}

/// UCS-4 items (`<U`/`>U` of `size` bytes) as NUL-padded UTF-8 of the same size (a UCS-4
/// item of n characters takes at most 4n UTF-8 bytes, exactly its own size).
fn ucs4_to_utf8(data: &[u8], size: usize, big: bool) -> Vec<u8> {
    let mut out = vec![0u8; data.len()];
    for (src, dst) in data.chunks(size).zip(out.chunks_mut(size)) {
        let mut s = String::new();
        for c in src.chunks(4) {
            let v = if big {
                u32::from_be_bytes([c[0], c[1], c[2], c[3]])
            } else {
                u32::from_le_bytes([c[0], c[1], c[2], c[3]])
            };
            if v == 0 {
                break;
            }
            s.push(char::from_u32(v).unwrap_or(char::REPLACEMENT_CHARACTER));
        }
        let b = s.as_bytes();
        dst[..b.len().min(size)].copy_from_slice(&b[..b.len().min(size)]);
    }
    out
}

fn export_array(
    group: &hdf5::Group,
    name: &str,
    ds: &Dataset,
    progress: &mut dyn FnMut(u64),
) -> Result<(), FormatError> {
    let meta = ds.meta();
    let a = meta
        .array
        .as_ref()
        .ok_or_else(|| bad(name, "no array metadata"))?;
    let dtype = DType::parse(&a.dtype)?;
    let (t, convert) = h5_type(&dtype).map_err(|r| bad(name, r))?;
    let itemsize = ds.layout().itemsize();
    let big = matches!(dtype, DType::Scalar { order: '>', .. });
    let fix = |d: Vec<u8>| {
        if convert {
            ucs4_to_utf8(&d, itemsize, big)
        } else {
            d
        }
    };
    if a.shape.is_empty() {
        // Scalars are stored uncompressed, as 0.2.0 does.
        let data = fix(ds.read(&Selection::all(&[]))?);
        let h = group
            .new_dataset_builder()
            .empty_as(&t)
            .shape(())
            .create(name)
            .map_err(h5(name))?;
        crate::ffi::write_all(h.id(), &data).map_err(|e| bad(name, e.0))?;
    } else {
        let layout = ds.layout();
        let ext_is_chunk = layout.chunk_nitems() == a.chunks.iter().product::<u64>();
        let verbatim = !convert && (a.shape.len() > 1 || ext_is_chunk);
        let l = Blosc2Layout {
            shape: a.shape.clone(),
            chunks: a.chunks.clone(),
            blocks: if verbatim {
                a.blocks.clone()
            } else {
                a.chunks.clone()
            },
            dtype: a.dtype.clone(),
            cparams: if verbatim {
                meta.cparams.clone()
            } else {
                CParams {
                    blocksize: (a.chunks.iter().product::<u64>() as usize * itemsize) as i32,
                    ..meta.cparams.clone()
                }
            },
        };
        let h = write::create(group, name, &t, &l)?;
        let mut buf = Vec::new();
        let one_block = ChunkLayout::new(
            a.shape.clone(),
            a.chunks.clone(),
            a.chunks.clone(),
            itemsize,
        )?;
        for n in 0..ds.nchunks() {
            let start: Vec<u64> = layout.chunk_start(n);
            ds.raw_chunk_into(n, &mut buf)?;
            if verbatim {
                write::write_chunk(&h, &l, &start, &buf)?;
            } else {
                // Decoded, re-laid out as one block (C order) and compressed again.
                let decoded = cat2_format::chunk::decompress_standalone(&buf)?;
                let mut box_ = vec![0u8; one_block.chunk_nitems() as usize * itemsize];
                let count: Vec<u64> = start
                    .iter()
                    .zip(&a.chunks)
                    .zip(&a.shape)
                    .map(|((s, c), d)| (*c).min(d - s))
                    .collect();
                let ranges = start.iter().zip(&count).map(|(s, c)| *s..s + c).collect();
                let sel = Selection::from_ranges(ranges, &a.shape)?;
                let mut clipped = vec![0u8; count.iter().product::<u64>() as usize * itemsize];
                layout.copy_from_chunk(n, &decoded, &sel, &mut clipped)?;
                one_block.copy_selection_to_chunk(n, &sel, &clipped, &mut box_)?;
                let raw = embedded::compress_chunk(&fix(box_), &l.cparams)?;
                write::write_chunk(&h, &l, &start, &raw)?;
            }
            progress(n + 1);
        }
        attributes(&h, name, meta);
        return Ok(());
    }
    let h = group.dataset(name).map_err(h5(name))?;
    attributes(&h, name, meta);
    Ok(())
}

/// Super-chunks and plain files: a 1-d `uint8` dataset of their bytes, chunked as they are.
fn export_bytes(
    group: &hdf5::Group,
    name: &str,
    ds: &Dataset,
    progress: &mut dyn FnMut(u64),
) -> Result<(), FormatError> {
    let meta = ds.meta();
    let nbytes = u64::try_from(meta.nbytes).map_err(|_| bad(name, "negative size"))?;
    // HDF5 chunks may not exceed a fixed shape: a file smaller than a chunk is one chunk.
    let chunk = u64::try_from(meta.chunksize)
        .unwrap_or(0)
        .min(nbytes)
        .max(1);
    let l = Blosc2Layout {
        shape: vec![nbytes],
        chunks: vec![chunk],
        blocks: vec![chunk],
        dtype: "|u1".into(),
        cparams: meta.cparams.clone(),
    };
    let t = hdf5::Datatype::from_descriptor(&TypeDescriptor::Unsigned(IntSize::U1))
        .map_err(h5(name))?;
    let h = write::create(group, name, &t, &l)?;
    let mut buf = Vec::new();
    for n in 0..ds.nchunks() {
        ds.raw_chunk_into(n, &mut buf)?;
        let h5chunk = cat2_format::chunk::ChunkHeader::parse(n, &buf)?;
        if u64::try_from(h5chunk.nbytes).ok() != Some(chunk) {
            // A short last chunk: HDF5 chunks are whole, so pad it and compress it again.
            let mut data = cat2_format::chunk::decompress_standalone(&buf)?;
            data.resize(chunk as usize, 0);
            buf = embedded::compress_chunk(&data, &l.cparams)?;
        }
        write::write_chunk(&h, &l, &[n * chunk], &buf)?;
        progress(n + 1);
    }
    attributes(&h, name, meta);
    Ok(())
}

/// vlmeta entries as attributes, as h5py would store the values they decode to; values
/// HDF5 attributes cannot hold (maps, nil, ragged lists) are logged and skipped.
fn attributes(h: &hdf5::Dataset, name: &str, meta: &cat2_format::Meta) {
    for l in &meta.vlmeta {
        let value = rmpv::decode::read_value(&mut &l.content[..]);
        let r = match value {
            Ok(v) => crate::attrs::write(h, &l.name, &v),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = r {
            tracing::warn!(dataset = name, attribute = %l.name, reason = %e, "attribute not exported");
        }
    }
}
