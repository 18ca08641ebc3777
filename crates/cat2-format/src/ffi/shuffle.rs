//! c-blosc2's byte shuffle, undone (its SIMD kernels), for HDF5's shuffle filter, which lays
//! bytes out the same way: byte `j` of item `i` at `j * nitems + i`, the bytes past the last
//! whole item left in place.
#![allow(unsafe_code)]

use blosc2_rs_sys as sys;

use crate::FormatError;

/// `src` unshuffled for items of `typesize` bytes.
pub(crate) fn unshuffle(src: &[u8], typesize: usize) -> Result<Vec<u8>, FormatError> {
    if typesize <= 1 || src.len() < 2 * typesize {
        return Ok(src.to_vec());
    }
    let (Ok(ts), Ok(len)) = (i32::try_from(typesize), i32::try_from(src.len())) else {
        return Err(FormatError::TooLarge {
            bytes: src.len() as u64,
            what: "c-blosc2's unshuffle",
        });
    };
    if ts > 255 {
        // c-blosc2 refuses wider items; rare enough (compound items) to do it plainly.
        let n = src.len() / typesize;
        let mut out = src.to_vec();
        for (i, item) in out[..n * typesize].chunks_exact_mut(typesize).enumerate() {
            for (j, b) in item.iter_mut().enumerate() {
                *b = src[j * n + i];
            }
        }
        return Ok(out);
    }
    super::init();
    let mut out = vec![0u8; src.len()];
    // SAFETY: both buffers hold `len` bytes and do not overlap; 1 < ts < 256 as asked.
    let rc =
        unsafe { sys::blosc2_unshuffle(ts, len, src.as_ptr().cast(), out.as_mut_ptr().cast()) };
    if rc < 0 {
        return Err(FormatError::blosc2("unshuffle", rc));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn undoes_hdf5s_shuffle() {
        // Three 4-byte items and two trailing bytes, shuffled as HDF5 does.
        let items: Vec<u8> = (0..14).collect();
        let n = 3;
        let mut shuffled = vec![0u8; 14];
        for i in 0..n {
            for j in 0..4 {
                shuffled[j * n + i] = items[i * 4 + j];
            }
        }
        shuffled[12..].copy_from_slice(&items[12..]);
        assert_eq!(super::unshuffle(&shuffled, 4).unwrap(), items);
        // Wide items (compounds) take the plain path.
        let wide: Vec<u8> = (0..=255u8).chain(0..=255).chain(0..=255).collect();
        let n = 2;
        let mut sh = vec![0u8; wide.len()];
        for i in 0..n {
            for j in 0..300 {
                sh[j * n + i] = wide[i * 300 + j];
            }
        }
        sh[600..].copy_from_slice(&wide[600..]);
        assert_eq!(super::unshuffle(&sh, 300).unwrap(), wide);
        assert_eq!(super::unshuffle(&[1, 2, 3], 8).unwrap(), [1, 2, 3]);
    }
}
