//! Every `unsafe` call of this crate: the parts of libhdf5 that `hdf5-metno` does not wrap
//! untyped (hyperslab reads and attribute reads in the file's own types, datatype trees, chunk
//! locations, fill values, direct chunk writes, filter registration).
//!
//! libhdf5 as Debian builds it is not thread-safe: every call here runs inside
//! [`hdf5::sync::sync`], the process-wide lock `hdf5-metno` takes around its own calls, so the
//! two never interleave.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_uint, c_void};
use std::ptr;

use hdf5::sync::sync;
use hdf5_sys::h5::{HADDR_UNDEF, haddr_t, hsize_t};
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5p::H5P_DEFAULT;
use hdf5_sys::h5s::{H5S_ALL, H5S_class_t, H5S_seloper_t};
use hdf5_sys::h5t::{H5T_class_t, H5T_order_t, H5T_sign_t};
use hdf5_sys::{h5, h5a, h5d, h5p, h5s, h5t, h5z};

/// An HDF5 error, as text (libhdf5's own stack is not kept: its printing is silenced).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct H5Error(pub(crate) String);

fn check(rc: i32, what: &str) -> Result<(), H5Error> {
    if rc < 0 {
        Err(H5Error(format!("libhdf5 {what} failed")))
    } else {
        Ok(())
    }
}

fn valid(id: hid_t, what: &str) -> Result<Id, H5Error> {
    if id < 0 {
        Err(H5Error(format!("libhdf5 {what} failed")))
    } else {
        Ok(Id(id))
    }
}

/// An identifier this module opened, closed when dropped (inside the lock: every `Id` lives
/// only within one [`sync`] call).
struct Id(hid_t);

impl Drop for Id {
    fn drop(&mut self) {
        // SAFETY: `self.0` is a valid identifier we own; H5Idec_ref closes any kind of it.
        unsafe { hdf5_sys::h5i::H5Idec_ref(self.0) };
    }
}

/// An HDF5 datatype, as much of it as the mapping to NumPy needs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum H5Type {
    /// Integer of `size` bytes.
    Int { size: usize, signed: bool, le: bool },
    /// IEEE float of `size` bytes.
    Float { size: usize, le: bool },
    /// An enumeration (h5py stores `bool` as one with members FALSE=0, TRUE=1).
    Enum {
        base: Box<H5Type>,
        names: Vec<String>,
    },
    /// Fixed-length string of `size` bytes.
    FixedString { size: usize },
    /// Variable-length string.
    VarString,
    /// Compound of `size` bytes: (name, offset, type) per member.
    Compound {
        size: usize,
        fields: Vec<(String, usize, H5Type)>,
    },
    /// Fixed-size array of `base`.
    Array { base: Box<H5Type>, dims: Vec<u64> },
    /// Anything else (references, opaque, bitfields, variable-length sequences, time).
    Other(&'static str),
}

impl H5Type {
    /// Bytes per item.
    pub(crate) fn size(&self) -> usize {
        match self {
            H5Type::Int { size, .. } | H5Type::Float { size, .. } => *size,
            H5Type::FixedString { size } | H5Type::Compound { size, .. } => *size,
            H5Type::Enum { base, .. } => base.size(),
            H5Type::Array { base, dims } => base.size() * dims.iter().product::<u64>() as usize,
            H5Type::VarString | H5Type::Other(_) => 0,
        }
    }
}

/// Reads the type tree of `tid` (caller holds the lock).
unsafe fn type_of(tid: hid_t) -> H5Type {
    // SAFETY (whole function): `tid` is a valid datatype id; every id we get is closed.
    unsafe {
        let size = h5t::H5Tget_size(tid);
        let order = h5t::H5Tget_order(tid);
        let le = order == H5T_order_t::H5T_ORDER_LE;
        let class = h5t::H5Tget_class(tid);
        if matches!(class, H5T_class_t::H5T_INTEGER | H5T_class_t::H5T_FLOAT) {
            // Served as stored: only plain little- or big-endian numbers with no padding bits
            // are what NumPy's types mean (h5py converts the others).
            let plain_order =
                size == 1 || matches!(order, H5T_order_t::H5T_ORDER_LE | H5T_order_t::H5T_ORDER_BE);
            if !plain_order
                || h5t::H5Tget_precision(tid) != 8 * size
                || h5t::H5Tget_offset(tid) != 0
            {
                return H5Type::Other("numbers with padding bits or an unusual byte order");
            }
        }
        match class {
            H5T_class_t::H5T_INTEGER => H5Type::Int {
                size,
                signed: h5t::H5Tget_sign(tid) == H5T_sign_t::H5T_SGN_2,
                le,
            },
            H5T_class_t::H5T_FLOAT => H5Type::Float { size, le },
            H5T_class_t::H5T_STRING => {
                if h5t::H5Tis_variable_str(tid) > 0 {
                    H5Type::VarString
                } else {
                    H5Type::FixedString { size }
                }
            }
            H5T_class_t::H5T_ENUM => {
                let Ok(sup) = valid(h5t::H5Tget_super(tid), "H5Tget_super") else {
                    return H5Type::Other("an enum without a base type");
                };
                let n = h5t::H5Tget_nmembers(tid).max(0) as c_uint;
                let names = (0..n)
                    .map(|i| take_name(h5t::H5Tget_member_name(tid, i)))
                    .collect();
                H5Type::Enum {
                    base: Box::new(type_of(sup.0)),
                    names,
                }
            }
            H5T_class_t::H5T_COMPOUND => {
                let n = h5t::H5Tget_nmembers(tid).max(0) as c_uint;
                let mut fields = Vec::new();
                for i in 0..n {
                    let name = take_name(h5t::H5Tget_member_name(tid, i));
                    let offset = h5t::H5Tget_member_offset(tid, i);
                    let Ok(mt) = valid(h5t::H5Tget_member_type(tid, i), "H5Tget_member_type")
                    else {
                        return H5Type::Other("a compound member without a type");
                    };
                    fields.push((name, offset, type_of(mt.0)));
                }
                H5Type::Compound { size, fields }
            }
            H5T_class_t::H5T_ARRAY => {
                let nd = h5t::H5Tget_array_ndims(tid).max(0) as usize;
                let mut dims = vec![0 as hsize_t; nd];
                h5t::H5Tget_array_dims2(tid, dims.as_mut_ptr());
                let Ok(sup) = valid(h5t::H5Tget_super(tid), "H5Tget_super") else {
                    return H5Type::Other("an array without a base type");
                };
                H5Type::Array {
                    base: Box::new(type_of(sup.0)),
                    dims,
                }
            }
            H5T_class_t::H5T_REFERENCE => H5Type::Other("references"),
            H5T_class_t::H5T_OPAQUE => H5Type::Other("opaque data"),
            H5T_class_t::H5T_BITFIELD => H5Type::Other("bitfields"),
            H5T_class_t::H5T_VLEN => H5Type::Other("variable-length sequences"),
            H5T_class_t::H5T_TIME => H5Type::Other("time values"),
            _ => H5Type::Other("an unknown type class"),
        }
    }
}

/// A name libhdf5 allocated, copied and freed.
unsafe fn take_name(p: *mut c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: libhdf5 returns a NUL-terminated string it allocated; we free it once.
    unsafe {
        let s = CStr::from_ptr(p).to_string_lossy().into_owned();
        h5::H5free_memory(p.cast());
        s
    }
}

/// The type data of `ds` is read in: its file type, or for compounds a packed copy of it
/// (members in offset order, no padding, each in its file byte order), which is exactly a
/// NumPy structured dtype's layout (caller holds the lock).
unsafe fn read_type(ds: hid_t) -> Result<(Id, bool), H5Error> {
    // SAFETY: `ds` is an open dataset; every id is closed by `Id`.
    unsafe {
        let t = valid(h5d::H5Dget_type(ds), "H5Dget_type")?;
        if h5t::H5Tget_class(t.0) != H5T_class_t::H5T_COMPOUND {
            return Ok((t, true));
        }
        let packed = valid(h5t::H5Tcopy(t.0), "H5Tcopy")?;
        check(h5t::H5Tpack(packed.0), "H5Tpack")?;
        let same = h5t::H5Tequal(t.0, packed.0) > 0;
        Ok((packed, same))
    }
}

/// The datatype data of dataset `ds` is served in, and whether it is the file type itself
/// (false: a compound with padding, packed when read).
pub(crate) fn dataset_type(ds: hid_t) -> Result<(H5Type, bool), H5Error> {
    sync(|| {
        // SAFETY: `ds` is an open dataset; the type id is closed by `Id`.
        let (t, same) = unsafe { read_type(ds)? };
        Ok((unsafe { type_of(t.0) }, same))
    })
}

/// The fill value of dataset `ds` as one item in its read type (`None`: undefined, zeros).
pub(crate) fn fill_value(ds: hid_t, itemsize: usize) -> Result<Option<Vec<u8>>, H5Error> {
    sync(|| {
        // SAFETY: valid ids, closed by `Id`; the buffer holds one item of the file type.
        unsafe {
            let dcpl = valid(h5d::H5Dget_create_plist(ds), "H5Dget_create_plist")?;
            let mut status = h5d::H5D_fill_value_t::H5D_FILL_VALUE_UNDEFINED;
            check(
                h5p::H5Pfill_value_defined(dcpl.0, &mut status),
                "H5Pfill_value_defined",
            )?;
            if status == h5d::H5D_fill_value_t::H5D_FILL_VALUE_UNDEFINED {
                return Ok(None);
            }
            let (t, _) = read_type(ds)?;
            if h5t::H5Tget_size(t.0) != itemsize {
                return Err(H5Error("the dataset's type changed".into()));
            }
            let mut buf = vec![0u8; itemsize.max(1)];
            check(
                h5p::H5Pget_fill_value(dcpl.0, t.0, buf.as_mut_ptr().cast()),
                "H5Pget_fill_value",
            )?;
            Ok(Some(buf))
        }
    })
}

/// Reads the box `start .. start + count` of dataset `ds` in its read type, C order, into
/// `out` (exactly `count` items). An empty `start` reads a scalar dataset whole.
pub(crate) fn read_region(
    ds: hid_t,
    start: &[u64],
    count: &[u64],
    out: &mut [u8],
) -> Result<(), H5Error> {
    sync(|| {
        // SAFETY: valid ids, closed by `Id`; `out` holds the selected items (checked by the
        // caller against the type size), and H5Dread writes only those.
        unsafe {
            let (t, _) = read_type(ds)?;
            let nitems: u64 = count.iter().product();
            if (h5t::H5Tget_size(t.0) as u64).saturating_mul(nitems) != out.len() as u64 {
                return Err(H5Error("read buffer does not match the selection".into()));
            }
            if start.is_empty() {
                return check(
                    h5d::H5Dread(
                        ds,
                        t.0,
                        H5S_ALL,
                        H5S_ALL,
                        H5P_DEFAULT,
                        out.as_mut_ptr().cast(),
                    ),
                    "H5Dread",
                );
            }
            let fspace = valid(h5d::H5Dget_space(ds), "H5Dget_space")?;
            // The dataset may have been recreated since it was described.
            if h5s::H5Sget_simple_extent_ndims(fspace.0) != start.len() as i32
                || count.len() != start.len()
            {
                return Err(H5Error("the dataset's rank changed".into()));
            }
            check(
                h5s::H5Sselect_hyperslab(
                    fspace.0,
                    H5S_seloper_t::H5S_SELECT_SET,
                    start.as_ptr(),
                    ptr::null(),
                    count.as_ptr(),
                    ptr::null(),
                ),
                "H5Sselect_hyperslab",
            )?;
            let mspace = valid(
                h5s::H5Screate_simple(count.len() as i32, count.as_ptr(), ptr::null()),
                "H5Screate_simple",
            )?;
            check(
                h5d::H5Dread(
                    ds,
                    t.0,
                    mspace.0,
                    fspace.0,
                    H5P_DEFAULT,
                    out.as_mut_ptr().cast(),
                ),
                "H5Dread",
            )
        }
    })
}

/// Where a stored chunk lies in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkLoc {
    /// Byte offset in the file.
    pub(crate) addr: u64,
    /// Stored bytes.
    pub(crate) size: u64,
    /// Bit `i` set: filter `i` of the pipeline was skipped for this chunk.
    pub(crate) filter_mask: u32,
}

/// The storage of the chunk at element coordinates `coords` of `ds`; `None` when the chunk
/// was never written (it reads as the fill value).
pub(crate) fn chunk_location(ds: hid_t, coords: &[u64]) -> Result<Option<ChunkLoc>, H5Error> {
    sync(|| {
        // SAFETY: valid ids, closed by `Id`.
        let rank = unsafe {
            let space = valid(h5d::H5Dget_space(ds), "H5Dget_space")?;
            h5s::H5Sget_simple_extent_ndims(space.0)
        };
        if rank != coords.len() as i32 {
            return Err(H5Error("the dataset's rank changed".into()));
        }
        let (mut mask, mut addr, mut size): (c_uint, haddr_t, hsize_t) = (0, HADDR_UNDEF, 0);
        // SAFETY: `coords` has the dataset's rank (checked by the caller); outputs are locals.
        let rc = unsafe {
            h5d::H5Dget_chunk_info_by_coord(ds, coords.as_ptr(), &mut mask, &mut addr, &mut size)
        };
        check(rc, "H5Dget_chunk_info_by_coord")?;
        Ok((addr != HADDR_UNDEF && size > 0).then_some(ChunkLoc {
            addr,
            size,
            filter_mask: mask,
        }))
    })
}

/// Whether dataset `ds` keeps its raw data in external files (which may be any file the
/// process can read, and which no etag or change check covers).
pub(crate) fn has_external_storage(ds: hid_t) -> Result<bool, H5Error> {
    sync(|| {
        // SAFETY: valid ids, closed by `Id`.
        unsafe {
            let dcpl = valid(h5d::H5Dget_create_plist(ds), "H5Dget_create_plist")?;
            Ok(h5p::H5Pget_external_count(dcpl.0) > 0)
        }
    })
}

/// What to add to chunk addresses from `H5Dget_chunk_info_by_coord` to get file offsets:
/// the file's userblock before libhdf5 1.14.4, which left it out (HDF5 issue 3003).
pub(crate) fn chunk_address_base(file: hid_t) -> Result<u64, H5Error> {
    sync(|| {
        // SAFETY: plain out-parameters; valid ids, closed by `Id`.
        unsafe {
            let (mut maj, mut min, mut rel) = (0, 0, 0);
            check(
                h5::H5get_libversion(&mut maj, &mut min, &mut rel),
                "H5get_libversion",
            )?;
            if (maj, min, rel) >= (1, 14, 4) {
                return Ok(0);
            }
            let fcpl = valid(
                hdf5_sys::h5f::H5Fget_create_plist(file),
                "H5Fget_create_plist",
            )?;
            let mut ub: hsize_t = 0;
            check(h5p::H5Pget_userblock(fcpl.0, &mut ub), "H5Pget_userblock")?;
            Ok(ub)
        }
    })
}

/// Where the raw data of a contiguous dataset starts (`None`: not allocated, or not
/// contiguous).
pub(crate) fn contiguous_offset(ds: hid_t) -> Option<u64> {
    // SAFETY: `ds` is an open dataset.
    let a = sync(|| unsafe { h5d::H5Dget_offset(ds) });
    (a != HADDR_UNDEF).then_some(a)
}

/// Whether libhdf5 can decode with filter `id` (built in, registered, or a plugin it finds).
pub(crate) fn filter_available(id: i32) -> bool {
    // SAFETY: plain integer argument.
    sync(|| unsafe { h5z::H5Zfilter_avail(id) } > 0)
}

/// The value of attribute `name` of object `obj`: its type, dataspace shape (`None`: a null
/// dataspace, h5py's `Empty`; `[]`: scalar) and raw items in the file type (variable-length
/// strings come back decoded, one per item).
pub(crate) struct AttrValue {
    pub(crate) ty: H5Type,
    pub(crate) shape: Option<Vec<u64>>,
    pub(crate) raw: Vec<u8>,
    pub(crate) strings: Vec<String>,
}

/// Reads attribute `name` of `obj`.
pub(crate) fn read_attr(obj: hid_t, name: &str) -> Result<AttrValue, H5Error> {
    let cname = std::ffi::CString::new(name).map_err(|_| H5Error("NUL in a name".into()))?;
    sync(|| {
        // SAFETY: valid ids, closed by `Id`; buffers sized from the attribute's own type and
        // dataspace; variable-length strings are reclaimed with the same type and space.
        unsafe {
            let a = valid(h5a::H5Aopen(obj, cname.as_ptr(), H5P_DEFAULT), "H5Aopen")?;
            let t = valid(h5a::H5Aget_type(a.0), "H5Aget_type")?;
            let ty = type_of(t.0);
            let space = valid(h5a::H5Aget_space(a.0), "H5Aget_space")?;
            let shape = match h5s::H5Sget_simple_extent_type(space.0) {
                H5S_class_t::H5S_NULL => None,
                H5S_class_t::H5S_SCALAR => Some(Vec::new()),
                _ => {
                    let nd = h5s::H5Sget_simple_extent_ndims(space.0).max(0) as usize;
                    let mut dims = vec![0 as hsize_t; nd];
                    h5s::H5Sget_simple_extent_dims(space.0, dims.as_mut_ptr(), ptr::null_mut());
                    Some(dims)
                }
            };
            let Some(dims) = shape.clone() else {
                return Ok(AttrValue {
                    ty,
                    shape,
                    raw: Vec::new(),
                    strings: Vec::new(),
                });
            };
            let n = usize::try_from(dims.iter().product::<u64>())
                .ok()
                .filter(|n| *n <= 1 << 24)
                .ok_or_else(|| H5Error("attribute too large".into()))?;
            if ty == H5Type::VarString {
                let mut ptrs: Vec<*mut c_char> = vec![ptr::null_mut(); n];
                check(h5a::H5Aread(a.0, t.0, ptrs.as_mut_ptr().cast()), "H5Aread")?;
                let strings = ptrs
                    .iter()
                    .map(|p| {
                        if p.is_null() {
                            String::new()
                        } else {
                            CStr::from_ptr(*p).to_string_lossy().into_owned()
                        }
                    })
                    .collect();
                h5d::H5Dvlen_reclaim(t.0, space.0, H5P_DEFAULT, ptrs.as_mut_ptr().cast());
                return Ok(AttrValue {
                    ty,
                    shape,
                    raw: Vec::new(),
                    strings,
                });
            }
            if matches!(ty, H5Type::Other(_)) || contains_vlen(&ty) {
                return Err(H5Error("values of this type are not supported".into()));
            }
            let mut raw = vec![0u8; n * h5t::H5Tget_size(t.0)];
            check(h5a::H5Aread(a.0, t.0, raw.as_mut_ptr().cast()), "H5Aread")?;
            Ok(AttrValue {
                ty,
                shape,
                raw,
                strings: Vec::new(),
            })
        }
    })
}

fn contains_vlen(t: &H5Type) -> bool {
    match t {
        H5Type::VarString | H5Type::Other(_) => true,
        H5Type::Compound { fields, .. } => fields.iter().any(|(_, _, f)| contains_vlen(f)),
        H5Type::Array { base, .. } | H5Type::Enum { base, .. } => contains_vlen(base),
        _ => false,
    }
}

/// Writes `data` as the stored bytes of the chunk at element coordinates `coords` of `ds`,
/// its filters applied already (HDF5's direct chunk write).
pub(crate) fn write_chunk(ds: hid_t, coords: &[u64], data: &[u8]) -> Result<(), H5Error> {
    sync(|| {
        // SAFETY: `coords` has the dataset's rank (checked by the caller); `data` is valid.
        let rc = unsafe {
            h5d::H5Dwrite_chunk(
                ds,
                H5P_DEFAULT,
                0,
                coords.as_ptr(),
                data.len(),
                data.as_ptr().cast(),
            )
        };
        check(rc, "H5Dwrite_chunk")
    })
}

/// HDF5's registered id of the Blosc2 filter (hdf5plugin, hdf5-blosc2).
pub(crate) const BLOSC2_FILTER: i32 = 32026;

/// The Blosc2 filter as this process declares it to libhdf5: enough to create datasets that
/// name it (their chunks are written directly, already compressed). Its function refuses to
/// run, so libhdf5 never hands it data to encode or decode (reads go around it too).
extern "C" fn blosc2_refuses(
    _flags: c_uint,
    _cd_nelmts: usize,
    _cd_values: *const c_uint,
    _nbytes: usize,
    _buf_size: *mut usize,
    _buf: *mut *mut c_void,
) -> usize {
    0
}

/// Declares the Blosc2 filter (once) unless libhdf5 has one already (e.g. a plugin).
pub(crate) fn declare_blosc2_filter() -> Result<(), H5Error> {
    static NAME: &CStr = c"blosc2 (cat2: direct chunk writes only)";
    sync(|| {
        if filter_available(BLOSC2_FILTER) {
            return Ok(());
        }
        let class = h5z::H5Z_class2_t {
            version: h5z::H5Z_CLASS_T_VERS as i32,
            id: BLOSC2_FILTER,
            encoder_present: 1,
            decoder_present: 1,
            name: NAME.as_ptr(),
            can_apply: None,
            set_local: None,
            filter: Some(blosc2_refuses),
        };
        // SAFETY: libhdf5 copies the class; the name is static.
        check(
            unsafe { h5z::H5Zregister((&raw const class).cast()) },
            "H5Zregister",
        )
    })
}
/// Whether libhdf5 recognises the file at `path` as HDF5 (its signature), whatever its name.
pub(crate) fn is_hdf5(path: &std::path::Path) -> bool {
    let Some(c) = path.to_str().and_then(|s| std::ffi::CString::new(s).ok()) else {
        return false;
    };
    if !path.is_file() {
        return false;
    }
    // hdf5-metno initialises the library (and silences its error printing) on first use.
    hdf5::silence_errors(true);
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    sync(|| unsafe { hdf5_sys::h5f::H5Fis_hdf5(c.as_ptr()) } > 0)
}

/// Writes all of dataset `ds` from `data` (C order, in the dataset's file type).
pub(crate) fn write_all(ds: hid_t, data: &[u8]) -> Result<(), H5Error> {
    sync(|| {
        // SAFETY: valid ids, closed by `Id`; the size is checked against the dataset's.
        unsafe {
            let t = valid(h5d::H5Dget_type(ds), "H5Dget_type")?;
            let space = valid(h5d::H5Dget_space(ds), "H5Dget_space")?;
            let n = h5s::H5Sget_simple_extent_npoints(space.0).max(0) as usize;
            if n * h5t::H5Tget_size(t.0) != data.len() {
                return Err(H5Error("data does not fill the dataset".into()));
            }
            check(
                h5d::H5Dwrite(ds, t.0, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.as_ptr().cast()),
                "H5Dwrite",
            )
        }
    })
}

/// A big-endian copy of the atomic datatype `t`.
pub(crate) fn big_endian(t: &hdf5::Datatype) -> Result<hdf5::Datatype, H5Error> {
    sync(|| {
        // SAFETY: `t` is a valid datatype; the copy's id is handed to `from_id`, which owns it.
        unsafe {
            let c = h5t::H5Tcopy(t.id());
            if c < 0 {
                return Err(H5Error("libhdf5 H5Tcopy failed".into()));
            }
            if h5t::H5Tset_order(c, H5T_order_t::H5T_ORDER_BE) < 0 {
                hdf5_sys::h5i::H5Idec_ref(c);
                return Err(H5Error("libhdf5 H5Tset_order failed".into()));
            }
            hdf5::from_id(c).map_err(|e| H5Error(e.to_string()))
        }
    })
}

/// What a link is, without following it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Link {
    /// A hard link (names an object of this file).
    Hard,
    /// A soft link holding this path.
    Soft(String),
    /// An external link (to another file).
    External,
    /// A user-defined link class.
    Other,
}

/// Longest soft link value read.
const MAX_LINK_VALUE: usize = 64 << 10;

/// Link `name` (one path component) of group `g`, not followed; `None` when there is none.
pub(crate) fn link(g: hid_t, name: &str) -> Result<Option<Link>, H5Error> {
    if name.contains('/') || name.is_empty() {
        return Err(H5Error("not one link name".into()));
    }
    let cname = std::ffi::CString::new(name).map_err(|_| H5Error("NUL in a name".into()))?;
    sync(|| {
        // SAFETY: `g` is an open group and `cname` a one-component name, so libhdf5 looks at
        // this group's own links only; outputs are locals, the value buffer has its size.
        unsafe {
            if hdf5_sys::h5l::H5Lexists(g, cname.as_ptr(), H5P_DEFAULT) <= 0 {
                return Ok(None);
            }
            let mut info = hdf5_sys::h5l::H5L_info1_t::default();
            #[allow(deprecated)]
            let rc = hdf5_sys::h5l::H5Lget_info1(g, cname.as_ptr(), &mut info, H5P_DEFAULT);
            check(rc, "H5Lget_info")?;
            use hdf5_sys::h5l::H5L_type_t as T;
            Ok(Some(match info.type_ {
                T::H5L_TYPE_HARD => Link::Hard,
                T::H5L_TYPE_SOFT => {
                    let size = *info.u.val_size();
                    if size == 0 || size > MAX_LINK_VALUE {
                        return Err(H5Error("soft link value of an unusual size".into()));
                    }
                    let mut buf = vec![0u8; size];
                    check(
                        hdf5_sys::h5l::H5Lget_val(
                            g,
                            cname.as_ptr(),
                            buf.as_mut_ptr().cast(),
                            size,
                            H5P_DEFAULT,
                        ),
                        "H5Lget_val",
                    )?;
                    let end = buf.iter().position(|&b| b == 0).unwrap_or(size);
                    Link::Soft(String::from_utf8_lossy(&buf[..end]).into_owned())
                }
                T::H5L_TYPE_EXTERNAL => Link::External,
                _ => Link::Other,
            }))
        }
    })
}

/// An HDF5 array type of `dims` items of `base`.
pub(crate) fn array_type(base: &hdf5::Datatype, dims: &[u64]) -> Result<hdf5::Datatype, H5Error> {
    sync(|| {
        // SAFETY: `base` is a valid datatype and `dims` holds `dims.len()` extents; the new id
        // is handed to `from_id`, which owns it.
        unsafe {
            let t = h5t::H5Tarray_create2(base.id(), dims.len() as c_uint, dims.as_ptr());
            if t < 0 {
                return Err(H5Error("libhdf5 H5Tarray_create2 failed".into()));
            }
            hdf5::from_id(t).map_err(|e| H5Error(e.to_string()))
        }
    })
}

/// A compound type of `size` bytes with `members` (name, offset, type).
pub(crate) fn compound_type(
    size: usize,
    members: &[(String, usize, hdf5::Datatype)],
) -> Result<hdf5::Datatype, H5Error> {
    let names = members
        .iter()
        .map(|(n, ..)| std::ffi::CString::new(n.as_str()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| H5Error("NUL in a member name".into()))?;
    sync(|| {
        // SAFETY: valid member types and NUL-terminated names; the new id is closed by `Id`
        // on failure and otherwise handed to `from_id`, which owns it.
        unsafe {
            let t = valid(h5t::H5Tcreate(H5T_class_t::H5T_COMPOUND, size), "H5Tcreate")?;
            for ((_, offset, mt), name) in members.iter().zip(&names) {
                check(
                    h5t::H5Tinsert(t.0, name.as_ptr(), *offset, mt.id()),
                    "H5Tinsert",
                )?;
            }
            let id = t.0;
            std::mem::forget(t);
            hdf5::from_id(id).map_err(|e| H5Error(e.to_string()))
        }
    })
}
