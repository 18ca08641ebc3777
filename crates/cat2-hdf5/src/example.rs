//! The example HDF5 root of spec §7 (what `python -m caterva2.services.hdf5root FILE`
//! writes), made with libhdf5 and cat2's own Blosc2 writer: the same groups, datasets, types,
//! layouts, filters, attributes and links, so that Caterva2's HDF5 tests run against it.

use std::path::Path;

use cat2_array::ChunkLayout;
use cat2_format::{CParams, FormatError, embedded};
use hdf5::types::{
    CompoundField, CompoundType, FixedAscii, FloatSize, IntSize, TypeDescriptor, VarLenAscii,
    VarLenUnicode,
};
use hdf5::{Extents, Group};
use num_complex::Complex64;

use crate::write::{self, Blosc2Layout};

fn err(what: &str) -> impl Fn(hdf5::Error) -> FormatError + '_ {
    move |e| FormatError::BadMetadata {
        path: what.into(),
        reason: e.to_string(),
    }
}

/// Writes the example file at `path` (which must not exist).
///
/// # Errors
/// When the file exists or cannot be written.
pub fn write_example(path: &Path) -> Result<(), FormatError> {
    hdf5::silence_errors(true);
    if path.exists() {
        return Err(FormatError::Io {
            path: path.into(),
            source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
        });
    }
    let f = hdf5::File::create_excl(path).map_err(err("create"))?;
    f.new_dataset::<f64>()
        .shape(())
        .create("scalar")
        .and_then(|d| d.write_scalar(&123.456f64))
        .map_err(err("scalar"))?;
    let hello = FixedAscii::<12>::from_ascii(b"Hello world!")
        .map_err(|x| err("string")(x.to_string().into()))?;
    f.new_dataset::<FixedAscii<12>>()
        .shape(())
        .create("string")
        .and_then(|d| d.write_scalar(&hello))
        .map_err(err("string"))?;
    let arrays = f.create_group("arrays").map_err(err("arrays"))?;
    let raw: Vec<u8> = (0..100u8).collect();
    arrays
        .new_dataset::<u8>()
        .shape(100)
        .create("1d-raw")
        .and_then(|d| d.write_raw(&raw[..]))
        .map_err(err("1d-raw"))?;
    foobar_blosc2(&arrays)?;
    let c: Vec<Complex64> = (0..100)
        .map(|v| Complex64::new(f64::from(v), f64::from(v)))
        .collect();
    arrays
        .new_dataset::<Complex64>()
        .shape((10, 10))
        .create("2d-nochunks")
        .and_then(|d| d.write_raw(&c[..]))
        .map_err(err("2d-nochunks"))?;
    arrays
        .new_dataset::<Complex64>()
        .shape((10, 10))
        .chunk((4, 4))
        .deflate(4)
        .create("2d-gzip")
        .and_then(|d| d.write_raw(&c[..]))
        .map_err(err("2d-gzip"))?;
    cube_blosc2(&arrays)?;
    attrs(&f)?;
    unsupported(&f)?;
    Ok(())
}

fn cparams(codec: u8, clevel: u8, filter: u8, typesize: i32, blocksize: i32) -> CParams {
    let mut cp = embedded::default_cparams(typesize as usize);
    cp.codec = codec;
    cp.clevel = clevel;
    cp.filters = [0, 0, 0, 0, 0, filter];
    cp.blocksize = blocksize;
    cp
}

/// Writes the chunks of `l` filled from `data` (the whole array, C order).
fn write_all(ds: &hdf5::Dataset, l: &Blosc2Layout, data: &[u8]) -> Result<(), FormatError> {
    let itemsize = l.cparams.typesize as usize;
    let layout = ChunkLayout::new(
        l.shape.clone(),
        l.chunks.clone(),
        l.blocks.clone(),
        itemsize,
    )?;
    for n in 0..layout.nchunks() {
        let mut chunk = vec![0u8; layout.chunk_nitems() as usize * itemsize];
        layout.copy_to_chunk(n, data, &mut chunk)?;
        let raw = embedded::compress_chunk(&chunk, &l.cparams)?;
        let start: Vec<u64> = layout.chunk_start(n);
        write::write_chunk(ds, l, &start, &raw)?;
    }
    Ok(())
}

/// `/arrays/1ds-blosc2`: `b'foobar'` × 100 in chunks of 50, hdf5plugin's default Blosc2
/// (BloscLZ level 5, shuffle).
fn foobar_blosc2(arrays: &Group) -> Result<(), FormatError> {
    let l = Blosc2Layout {
        shape: vec![100],
        chunks: vec![50],
        blocks: vec![50],
        dtype: "|S6".into(),
        cparams: cparams(0, 5, 1, 6, 300),
    };
    let dtype =
        hdf5::Datatype::from_descriptor(&TypeDescriptor::FixedAscii(6)).map_err(err("S6"))?;
    let ds = write::create(arrays, "1ds-blosc2", &dtype, &l)?;
    write_all(&ds, &l, &b"foobar".repeat(100))
}

/// `/arrays/3d-blosc2`: `arange(1000, uint8)` as 10×10×10 in chunks of 4×10×10, LZ4 level 7
/// with bitshuffle.
fn cube_blosc2(arrays: &Group) -> Result<(), FormatError> {
    let l = Blosc2Layout {
        shape: vec![10, 10, 10],
        chunks: vec![4, 10, 10],
        blocks: vec![4, 10, 10],
        dtype: "|u1".into(),
        cparams: cparams(1, 7, 2, 1, 400),
    };
    let dtype = hdf5::Datatype::from_type::<u8>().map_err(err("u8"))?;
    let ds = write::create(arrays, "3d-blosc2", &dtype, &l)?;
    let data: Vec<u8> = (0..1000u32).map(|v| v as u8).collect();
    write_all(&ds, &l, &data)
}

/// `/attrs`: a scalar with one attribute of each kind 0.2.0's packing handles.
fn attrs(f: &hdf5::File) -> Result<(), FormatError> {
    let ds = f
        .new_dataset::<i64>()
        .shape(())
        .create("attrs")
        .map_err(err("attrs"))?;
    ds.write_scalar(&0i64).map_err(err("attrs"))?;
    let e = err("attribute");
    ds.new_attr::<i64>()
        .shape(())
        .create("Int")
        .and_then(|a| a.write_scalar(&42i64))
        .map_err(&e)?;
    ds.new_attr::<i16>()
        .shape(())
        .create("IntT")
        .and_then(|a| a.write_scalar(&42i16))
        .map_err(&e)?;
    // h5py stores `bytes` as variable-length ASCII, `numpy.bytes_` as fixed-length.
    let foo_ascii = VarLenAscii::from_ascii(b"foo").map_err(|x| e(x.to_string().into()))?;
    ds.new_attr::<VarLenAscii>()
        .shape(())
        .create("Bin")
        .and_then(|a| a.write_scalar(&foo_ascii))
        .map_err(&e)?;
    let foo3 = FixedAscii::<3>::from_ascii(b"foo").map_err(|x| e(x.to_string().into()))?;
    ds.new_attr::<FixedAscii<3>>()
        .shape(())
        .create("BinT")
        .and_then(|a| a.write_scalar(&foo3))
        .map_err(&e)?;
    let bar: VarLenUnicode = "bar"
        .parse()
        .map_err(|x: hdf5::types::StringError| e(x.to_string().into()))?;
    ds.new_attr::<VarLenUnicode>()
        .shape(())
        .create("Str")
        .and_then(|a| a.write_scalar(&bar))
        .map_err(&e)?;
    ds.new_attr::<i64>()
        .shape([2, 2])
        .create("Arr")
        .and_then(|a| a.write_raw(&[0i64, 1, 2, 3][..]))
        .map_err(&e)?;
    ds.new_attr::<u8>()
        .shape([2, 2])
        .create("ArrT")
        .and_then(|a| a.write_raw(&[0u8, 1, 2, 3][..]))
        .map_err(&e)?;
    ds.new_attr::<FixedAscii<4>>()
        .shape(Extents::Null)
        .create("NilBin")
        .map_err(&e)?;
    ds.new_attr::<u8>()
        .shape(Extents::Null)
        .create("NilInt")
        .map_err(&e)?;
    Ok(())
}

/// `/unsupported/*`: what cannot be represented (skipped by publishers and tools).
fn unsupported(f: &hdf5::File) -> Result<(), FormatError> {
    let u = f.create_group("unsupported").map_err(err("unsupported"))?;
    u.new_dataset::<f64>()
        .shape(Extents::Null)
        .create("empty")
        .map_err(err("empty"))?;
    let hello: VarLenUnicode = "Hello world!"
        .parse()
        .map_err(|x: hdf5::types::StringError| err("vlstring")(x.to_string().into()))?;
    u.new_dataset::<VarLenUnicode>()
        .shape(())
        .create("vlstring")
        .and_then(|d| d.write_scalar(&hello))
        .map_err(err("vlstring"))?;
    u.new_dataset::<u8>()
        .shape(vec![1usize; 23])
        .create("too-many-dimensions")
        .and_then(|d| d.write_raw(&[0u8][..]))
        .map_err(err("too-many-dimensions"))?;
    let f8 = TypeDescriptor::Float(FloatSize::U8);
    u.new_dataset_builder()
        .empty_as(TypeDescriptor::FixedArray(Box::new(f8.clone()), 4))
        .shape(10)
        .create("array-dtype")
        .map_err(err("array-dtype"))?;
    let compound = TypeDescriptor::Compound(CompoundType {
        fields: vec![
            CompoundField::new("f0", TypeDescriptor::Unsigned(IntSize::U1), 0, 0),
            CompoundField::new("f1", f8, 1, 1),
        ],
        size: 9,
    });
    u.new_dataset_builder()
        .empty_as(&compound)
        .packed(true)
        .shape(10)
        .create("compound-dtype")
        .map_err(err("compound-dtype"))?;
    u.link_soft("/arrays/1d-raw", "soft-link")
        .map_err(err("soft-link"))?;
    Ok(())
}
