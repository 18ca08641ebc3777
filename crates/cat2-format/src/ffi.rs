//! Every `unsafe` call of cat2: raw c-blosc2 super-chunks (`blosc2-rs-sys`) for what the safe
//! `blosc2` crate lacks — frame header fields, fixed and variable-length metalayers, special
//! (uninitialised) chunks, and b2nd arrays of any dtype, string dtypes included.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::path::Path;
use std::ptr::{self, NonNull};
use std::sync::Once;

use blosc2_rs_sys as sys;

use crate::FormatError;
use cat2_proto::meta::{CParams, Layer};

mod embed;
mod shuffle;
pub(crate) use embed::{b2nd_metalayer, compress_chunk, one_chunk_frame};
pub(crate) use shuffle::unshuffle;

/// c-blosc2's special value for chunks not yet written.
pub(crate) const SPECIAL_UNINIT: u8 = 4;

/// Initialises c-blosc2 once, with [`run_jobs_serially`] as its threading backend.
pub(crate) fn init() {
    static INIT: Once = Once::new();
    // SAFETY: both take plain arguments; Once runs them exactly once, the callback first as
    // c-blosc2 asks.
    INIT.call_once(|| unsafe {
        sys::blosc2_set_threads_callback(Some(run_jobs_serially), ptr::null_mut());
        sys::blosc2_init();
    });
}

/// c-blosc2's threading backend: runs a parallel job's parts one after the other on the
/// calling thread. cat2 runs c-blosc2 single-threaded (it parallelises across chunks), but
/// c-blosc2's frame code compresses chunk indexes with 4 threads of its own, creating and
/// joining 4 OS threads per call (a tenth of the subscriber's CPU when encoding small
/// results, measured with `perf`).
unsafe extern "C" fn run_jobs_serially(
    _data: *mut std::ffi::c_void,
    dojob: Option<unsafe extern "C" fn(*mut std::ffi::c_void)>,
    numjobs: std::ffi::c_int,
    elsize: usize,
    jobdata: *mut std::ffi::c_void,
) {
    let Some(job) = dojob else { return };
    for i in 0..usize::try_from(numjobs).unwrap_or(0) {
        // SAFETY: c-blosc2 passes `numjobs` job records of `elsize` bytes at `jobdata`; each
        // job takes blocks from a shared counter, so running them in turn does all the work.
        unsafe { job(jobdata.cast::<u8>().add(i * elsize).cast()) };
    }
}

fn cpath(path: &Path) -> Result<CString, FormatError> {
    let s = path.to_str().ok_or_else(|| FormatError::BadMetadata {
        path: path.into(),
        reason: "path is not UTF-8".into(),
    })?;
    CString::new(s).map_err(|_| FormatError::BadMetadata {
        path: path.into(),
        reason: "path contains NUL".into(),
    })
}

/// Builds raw cparams from ours, single-threaded (callers parallelise across chunks).
pub(crate) fn raw_cparams(cp: &CParams) -> sys::blosc2_cparams {
    init();
    // SAFETY: returns a plain struct by value.
    let mut raw = unsafe { sys::blosc2_get_blosc2_cparams_defaults() };
    raw.compcode = cp.codec;
    raw.compcode_meta = cp.codec_meta;
    raw.clevel = cp.clevel;
    raw.typesize = cp.typesize;
    raw.blocksize = cp.blocksize;
    raw.splitmode = i32::from(cp.splitmode);
    raw.filters = cp.filters;
    raw.filters_meta = cp.filters_meta;
    raw.nthreads = 1;
    raw
}

/// An owned c-blosc2 super-chunk. c-blosc2 super-chunks are not thread-safe; this type is
/// `Send` but not `Sync`, so one thread uses it at a time.
pub(crate) struct Schunk(NonNull<sys::blosc2_schunk>);

// SAFETY: the schunk is exclusively owned; c-blosc2 keeps no thread-local state tied to it.
unsafe impl Send for Schunk {}

impl Drop for Schunk {
    fn drop(&mut self) {
        // SAFETY: we own the pointer, and it is freed once.
        unsafe { sys::blosc2_schunk_free(self.0.as_ptr()) };
    }
}

/// The header fields of a super-chunk.
pub(crate) struct Header {
    pub(crate) cparams: CParams,
    pub(crate) chunksize: i32,
    pub(crate) nbytes: i64,
    pub(crate) cbytes: i64,
    pub(crate) nchunks: i64,
    pub(crate) contiguous: bool,
}

impl Schunk {
    /// Opens a frame file.
    pub(crate) fn open(path: &Path) -> Result<Self, FormatError> {
        init();
        let c = cpath(path)?;
        // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
        let raw = unsafe { sys::blosc2_schunk_open(c.as_ptr()) };
        NonNull::new(raw)
            .map(Schunk)
            .ok_or_else(|| FormatError::NotBlosc2 { path: path.into() })
    }

    fn raw(&self) -> &sys::blosc2_schunk {
        // SAFETY: the pointer is valid while self lives.
        unsafe { self.0.as_ref() }
    }

    pub(crate) fn header(&self) -> Header {
        let s = self.raw();
        // SAFETY: storage is set by c-blosc2 for every schunk it returns.
        let contiguous = unsafe { s.storage.as_ref() }.is_some_and(|st| st.contiguous);
        Header {
            cparams: CParams {
                codec: s.compcode,
                codec_meta: s.compcode_meta,
                clevel: s.clevel,
                typesize: s.typesize,
                blocksize: s.blocksize,
                splitmode: s.splitmode,
                filters: s.filters,
                filters_meta: s.filters_meta,
            },
            chunksize: s.chunksize,
            nbytes: s.nbytes,
            cbytes: s.cbytes,
            nchunks: s.nchunks,
            contiguous,
        }
    }

    pub(crate) fn metalayers(&self) -> Vec<Layer> {
        let s = self.raw();
        let n = usize::from(s.nmetalayers).min(s.metalayers.len());
        s.metalayers[..n]
            .iter()
            .filter_map(|&m| {
                // SAFETY: the first `nmetalayers` entries are valid metalayers owned by the schunk,
                // with `content_len` bytes at `content` and a NUL-terminated `name`.
                let m = unsafe { m.as_ref() }?;
                // SAFETY: as above: `name` is NUL-terminated and lives as long as the schunk.
                let name = unsafe { CStr::from_ptr(m.name) }
                    .to_string_lossy()
                    .into_owned();
                let len = usize::try_from(m.content_len).ok()?;
                let content = if len == 0 || m.content.is_null() {
                    Vec::new()
                } else {
                    // SAFETY: as above: `content` holds `content_len` (= `len`) bytes.
                    unsafe { std::slice::from_raw_parts(m.content, len) }.to_vec()
                };
                Some(Layer { name, content })
            })
            .collect()
    }

    pub(crate) fn vlmeta(&mut self) -> Result<Vec<Layer>, FormatError> {
        let n = usize::try_from(self.raw().nvlmetalayers).unwrap_or(0);
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut names: Vec<*mut std::os::raw::c_char> = vec![ptr::null_mut(); n];
        // SAFETY: `names` has room for `nvlmetalayers` pointers, which c-blosc2 fills with
        // pointers to names it owns.
        let rc = unsafe { sys::blosc2_vlmeta_get_names(self.0.as_ptr(), names.as_mut_ptr()) };
        if rc < 0 {
            return Err(FormatError::blosc2("vlmeta_get_names", rc));
        }
        let mut out = Vec::with_capacity(n);
        for &name in names.iter().take(usize::try_from(rc).unwrap_or(0)) {
            if name.is_null() {
                continue;
            }
            let mut content: *mut u8 = ptr::null_mut();
            let mut len: i32 = 0;
            // SAFETY: `name` is a NUL-terminated string owned by the schunk; on success
            // c-blosc2 mallocs `content` with `len` bytes, which we copy and free.
            let rc =
                unsafe { sys::blosc2_vlmeta_get(self.0.as_ptr(), name, &mut content, &mut len) };
            if rc < 0 || content.is_null() {
                if !content.is_null() {
                    // SAFETY: c-blosc2 malloc'ed it for us.
                    unsafe { libc_free(content.cast()) };
                }
                return Err(FormatError::blosc2("vlmeta_get", rc));
            }
            // SAFETY: `content` holds `len` bytes (a negative length reads none).
            let bytes =
                unsafe { std::slice::from_raw_parts(content, usize::try_from(len).unwrap_or(0)) }
                    .to_vec();
            // SAFETY: c-blosc2 malloc'ed it for us; not used after this.
            unsafe { libc_free(content.cast()) };
            // SAFETY: `name` is a NUL-terminated string owned by the schunk (checked non-null).
            let name = unsafe { CStr::from_ptr(name) }
                .to_string_lossy()
                .into_owned();
            out.push(Layer {
                name,
                content: bytes,
            });
        }
        Ok(out)
    }
}

/// A 32-byte special chunk (1 zeros, 2 NaNs, 4 uninitialised) of `nbytes` bytes.
pub(crate) fn special_chunk(
    special: u8,
    nbytes: i32,
    typesize: i32,
) -> Result<Vec<u8>, FormatError> {
    let mut cp = raw_cparams(&default_cparams(typesize));
    if typesize > 255 {
        cp.typesize = 1;
    }
    // A blocksize of 0 in the header makes c-blosc2's frame reader (2.17+) refuse the frame
    // when such a chunk comes first: say the chunk is one block.
    cp.blocksize = nbytes;
    let mut out = vec![0u8; sys::BLOSC_EXTENDED_HEADER_LENGTH as usize];
    let len = out.len() as i32;
    // SAFETY: `out` has room for the 32-byte header c-blosc2 writes.
    let rc = unsafe {
        match special {
            1 => sys::blosc2_chunk_zeros(cp, nbytes, out.as_mut_ptr().cast(), len),
            2 => sys::blosc2_chunk_nans(cp, nbytes, out.as_mut_ptr().cast(), len),
            _ => sys::blosc2_chunk_uninit(cp, nbytes, out.as_mut_ptr().cast(), len),
        }
    };
    if rc < 0 {
        return Err(FormatError::blosc2("special chunk", rc));
    }
    out.truncate(rc as usize);
    Ok(out)
}

/// Creates a contiguous frame file at `path` with the given header, metalayers and
/// variable-length metalayers, whose `nbytes / typesize` items are all special UNINIT chunks
/// of `chunksize` bytes (the last one shorter when they do not divide).
pub(crate) fn create_uninit(
    path: &Path,
    cparams: &CParams,
    chunksize: i32,
    nbytes: i64,
    metalayers: &[Layer],
    vlmeta: &[Layer],
) -> Result<(), FormatError> {
    let mut schunk = new_schunk(Some(path), cparams)?;
    for m in metalayers {
        schunk.add_meta(m)?;
    }
    let nitems = nbytes / i64::from(cparams.typesize.max(1));
    if nitems > 0 {
        // SAFETY: the schunk is valid and empty; c-blosc2 appends special chunks.
        let rc = unsafe {
            sys::blosc2_schunk_fill_special(
                schunk.0.as_ptr(),
                nitems,
                i32::from(SPECIAL_UNINIT),
                chunksize,
            )
        };
        if rc < 0 {
            return Err(FormatError::blosc2("fill_special", rc));
        }
    }
    for v in vlmeta {
        schunk.add_vlmeta(v)?;
    }
    Ok(())
}

/// A new empty contiguous super-chunk, on disk at `path` or in memory.
fn new_schunk(path: Option<&Path>, cparams: &CParams) -> Result<Schunk, FormatError> {
    init();
    let mut raw_cp = raw_cparams(cparams);
    // SAFETY: plain structs by value.
    let mut dparams = unsafe { sys::blosc2_get_blosc2_dparams_defaults() };
    dparams.nthreads = 1;
    let cpath = path.map(cpath).transpose()?;
    // SAFETY: plain struct by value.
    let mut storage = unsafe { sys::blosc2_get_blosc2_storage_defaults() };
    storage.contiguous = true;
    storage.urlpath = cpath
        .as_ref()
        .map_or(ptr::null_mut(), |c| c.as_ptr().cast_mut());
    storage.cparams = &mut raw_cp;
    storage.dparams = &mut dparams;
    // SAFETY: every pointer in `storage` outlives the call; c-blosc2 copies what it keeps.
    let raw = unsafe { sys::blosc2_schunk_new(&mut storage) };
    NonNull::new(raw)
        .map(Schunk)
        .ok_or_else(|| FormatError::blosc2("schunk_new", -1))
}

impl Schunk {
    fn add_meta(&mut self, m: &Layer) -> Result<(), FormatError> {
        // c-blosc2 does not bound-check its fixed-size metalayer table.
        if usize::from(self.raw().nmetalayers) >= self.raw().metalayers.len() - 1 {
            return Err(FormatError::TooLarge {
                bytes: m.content.len() as u64,
                what: "the metalayer table",
            });
        }
        let name = CString::new(m.name.as_str()).map_err(|_| FormatError::BadMetadata {
            path: "(metalayer)".into(),
            reason: "NUL in name".into(),
        })?;
        let len = i32::try_from(m.content.len()).map_err(|_| FormatError::TooLarge {
            bytes: m.content.len() as u64,
            what: "a metalayer",
        })?;
        // SAFETY: c-blosc2 copies `len` bytes from `content`; it does not write through the
        // pointer despite the non-const signature.
        let rc = unsafe {
            sys::blosc2_meta_add(
                self.0.as_ptr(),
                name.as_ptr(),
                m.content.as_ptr().cast_mut(),
                len,
            )
        };
        if rc < 0 {
            Err(FormatError::blosc2("meta_add", rc))
        } else {
            Ok(())
        }
    }

    fn add_vlmeta(&mut self, m: &Layer) -> Result<(), FormatError> {
        // c-blosc2 does not bound-check its fixed-size vlmeta table.
        if usize::try_from(self.raw().nvlmetalayers).unwrap_or(usize::MAX)
            >= self.raw().vlmetalayers.len() - 1
        {
            return Err(FormatError::TooLarge {
                bytes: m.content.len() as u64,
                what: "the vlmeta table",
            });
        }
        let name = CString::new(m.name.as_str()).map_err(|_| FormatError::BadMetadata {
            path: "(vlmeta)".into(),
            reason: "NUL in name".into(),
        })?;
        let len = i32::try_from(m.content.len()).map_err(|_| FormatError::TooLarge {
            bytes: m.content.len() as u64,
            what: "a vlmeta entry",
        })?;
        let mut cp = raw_cparams(&default_cparams(1));
        // SAFETY: c-blosc2 compresses `len` bytes from `content` into its own storage.
        let rc = unsafe {
            sys::blosc2_vlmeta_add(
                self.0.as_ptr(),
                name.as_ptr(),
                m.content.as_ptr().cast_mut(),
                len,
                &mut cp,
            )
        };
        if rc < 0 {
            Err(FormatError::blosc2("vlmeta_add", rc))
        } else {
            Ok(())
        }
    }

    fn append(&mut self, data: &[u8], chunksize: usize) -> Result<(), FormatError> {
        for part in data.chunks(chunksize.max(1)) {
            // SAFETY: `part` is a valid buffer of its length; c-blosc2 compresses it.
            let rc = unsafe {
                sys::blosc2_schunk_append_buffer(
                    self.0.as_ptr(),
                    part.as_ptr().cast(),
                    part.len() as i32,
                )
            };
            if rc < 0 {
                return Err(FormatError::blosc2("append_buffer", rc));
            }
        }
        Ok(())
    }

    fn serialize(&mut self) -> Result<Vec<u8>, FormatError> {
        let mut buf: *mut u8 = ptr::null_mut();
        let mut needs_free = false;
        // SAFETY: on success `buf` holds `len` bytes, owned by us iff `needs_free`.
        let len =
            unsafe { sys::blosc2_schunk_to_buffer(self.0.as_ptr(), &mut buf, &mut needs_free) };
        if len < 0 || buf.is_null() {
            return Err(FormatError::blosc2("schunk_to_buffer", len));
        }
        // SAFETY: `buf` holds `len` bytes, `len` checked non-negative above.
        let out = unsafe { std::slice::from_raw_parts(buf, len as usize) }.to_vec();
        if needs_free {
            // SAFETY: ours to free (`needs_free`), not used after this.
            unsafe { libc_free(buf.cast()) };
        }
        Ok(out)
    }
}

/// Default cparams of cat2's own writes: ZSTD level 1 with shuffle (python-blosc2's defaults).
pub(crate) fn default_cparams(typesize: i32) -> CParams {
    CParams {
        codec: sys::BLOSC_ZSTD as u8,
        codec_meta: 0,
        clevel: 1,
        typesize,
        blocksize: 0,
        splitmode: sys::BLOSC_FORWARD_COMPAT_SPLIT as u8,
        filters: [0, 0, 0, 0, 0, sys::BLOSC_SHUFFLE as u8],
        filters_meta: [0; 6],
    }
}

/// Writes `data` (whole items) as a super-chunk of `chunksize`-byte chunks: to a frame file at
/// `path`, or, without a path, returns its contiguous frame (cframe) bytes.
pub(crate) fn write_schunk(
    path: Option<&Path>,
    cparams: &CParams,
    chunksize: usize,
    data: &[u8],
    vlmeta: &[Layer],
) -> Result<Option<Vec<u8>>, FormatError> {
    let mut s = new_schunk(path, cparams)?;
    s.append(data, chunksize)?;
    for v in vlmeta {
        s.add_vlmeta(v)?;
    }
    if path.is_some() {
        Ok(None)
    } else {
        s.serialize().map(Some)
    }
}

/// The geometry of a b2nd array to write.
pub(crate) struct NdSpec<'a> {
    pub(crate) shape: &'a [u64],
    pub(crate) chunks: &'a [u64],
    pub(crate) blocks: &'a [u64],
    pub(crate) dtype: &'a str,
}

/// Writes `data` (the whole array in C order) as a b2nd array: to a file at `path`, or,
/// without a path, returns its cframe bytes. Works for every dtype, zero-size shapes included.
pub(crate) fn write_b2nd(
    path: Option<&Path>,
    nd: &NdSpec<'_>,
    cparams: &CParams,
    data: &[u8],
    vlmeta: &[Layer],
) -> Result<Option<Vec<u8>>, FormatError> {
    init();
    let bad = |reason: &str| FormatError::BadMetadata {
        path: "(b2nd)".into(),
        reason: reason.to_owned(),
    };
    // c-blosc2 trusts the ranks and divides by chunk and block sizes: validate first.
    let itemsize = usize::try_from(cparams.typesize).map_err(|_| bad("typesize"))?;
    let layout = cat2_array::ChunkLayout::new(
        nd.shape.to_vec(),
        nd.chunks.to_vec(),
        nd.blocks.to_vec(),
        itemsize,
    )?;
    let nitems: u64 = layout.shape().iter().product();
    if nitems.checked_mul(itemsize as u64) != Some(data.len() as u64) {
        return Err(bad("data does not fill the shape"));
    }
    let ndim = i8::try_from(nd.shape.len())
        .ok()
        .filter(|n| *n <= sys::B2ND_MAX_DIM as i8)
        .ok_or_else(|| bad("too many dimensions"))?;
    let shape: Vec<i64> = nd
        .shape
        .iter()
        .map(|&v| i64::try_from(v))
        .collect::<Result<_, _>>()
        .map_err(|_| bad("shape"))?;
    let chunks: Vec<i32> = nd
        .chunks
        .iter()
        .map(|&v| i32::try_from(v))
        .collect::<Result<_, _>>()
        .map_err(|_| bad("chunks"))?;
    let blocks: Vec<i32> = nd
        .blocks
        .iter()
        .map(|&v| i32::try_from(v))
        .collect::<Result<_, _>>()
        .map_err(|_| bad("blocks"))?;
    let dtype = CString::new(nd.dtype).map_err(|_| bad("dtype"))?;
    let mut raw_cp = raw_cparams(cparams);
    // SAFETY: plain structs by value.
    let mut dparams = unsafe { sys::blosc2_get_blosc2_dparams_defaults() };
    dparams.nthreads = 1;
    let cpath = path.map(cpath).transpose()?;
    let mut storage = unsafe { sys::blosc2_get_blosc2_storage_defaults() };
    storage.contiguous = true;
    storage.urlpath = cpath
        .as_ref()
        .map_or(ptr::null_mut(), |c| c.as_ptr().cast_mut());
    storage.cparams = &mut raw_cp;
    storage.dparams = &mut dparams;
    // SAFETY: all pointers outlive the call; c-blosc2 copies shapes, dtype and storage.
    let ctx = unsafe {
        sys::b2nd_create_ctx(
            &storage,
            ndim,
            shape.as_ptr(),
            chunks.as_ptr(),
            blocks.as_ptr(),
            dtype.as_ptr(),
            0,
            ptr::null(),
            0,
        )
    };
    if ctx.is_null() {
        return Err(FormatError::blosc2("b2nd_create_ctx", -1));
    }
    let mut array: *mut sys::b2nd_array_t = ptr::null_mut();
    // SAFETY: ctx is valid; `data` holds `data.len()` bytes.
    let rc =
        unsafe { sys::b2nd_from_cbuffer(ctx, &mut array, data.as_ptr().cast(), data.len() as i64) };
    // SAFETY: the array keeps its own copy of what it needs from ctx.
    unsafe { sys::b2nd_free_ctx(ctx) };
    struct Array(*mut sys::b2nd_array_t);
    impl Drop for Array {
        fn drop(&mut self) {
            if !self.0.is_null() {
                // SAFETY: owned, freed once (this also frees its schunk).
                unsafe { sys::b2nd_free(self.0) };
            }
        }
    }
    let array = Array(array);
    if rc < 0 || array.0.is_null() {
        return Err(FormatError::blosc2("b2nd_from_cbuffer", rc));
    }
    // Borrow the array's schunk without taking ownership.
    // SAFETY: `sc` is valid while `array` lives.
    let sc = unsafe { (*array.0).sc };
    let mut borrowed =
        std::mem::ManuallyDrop::new(Schunk(NonNull::new(sc).ok_or_else(|| bad("no schunk"))?));
    for v in vlmeta {
        borrowed.add_vlmeta(v)?;
    }
    if path.is_some() {
        return Ok(None);
    }
    let mut buf: *mut u8 = ptr::null_mut();
    let mut len: i64 = 0;
    let mut needs_free = false;
    // SAFETY: on success `buf` holds `len` bytes, owned by us iff `needs_free`.
    let rc = unsafe { sys::b2nd_to_cframe(array.0, &mut buf, &mut len, &mut needs_free) };
    if rc < 0 || buf.is_null() {
        return Err(FormatError::blosc2("b2nd_to_cframe", rc));
    }
    // A length from C is checked before it sizes a slice.
    let out = usize::try_from(len)
        // SAFETY: `buf` holds `len` bytes, `len` checked non-negative.
        .map(|n| unsafe { std::slice::from_raw_parts(buf, n) }.to_vec());
    if needs_free {
        // SAFETY: ours to free (`needs_free`), not used after this.
        unsafe { libc_free(buf.cast()) };
    }
    out.map(Some)
        .map_err(|_| FormatError::blosc2("b2nd_to_cframe", -1))
}

unsafe extern "C" {
    #[link_name = "free"]
    fn libc_free(p: *mut std::ffi::c_void);
}
