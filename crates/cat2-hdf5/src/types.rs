//! HDF5 datatypes as NumPy dtypes (the `b2nd` metalayer's type strings), and which ones cannot
//! be represented.

use crate::ffi::H5Type;

fn endian(le: bool, size: usize) -> char {
    if size == 1 {
        '|'
    } else if le {
        '<'
    } else {
        '>'
    }
}

/// h5py stores `bool` as an 8-bit enum with members FALSE and TRUE.
fn is_h5py_bool(base: &H5Type, names: &[String]) -> bool {
    matches!(base, H5Type::Int { size: 1, .. }) && names == ["FALSE", "TRUE"]
}

/// h5py stores complex numbers as a compound of two floats named `r` and `i`.
pub(crate) fn complex_of(size: usize, fields: &[(String, usize, H5Type)]) -> Option<(usize, bool)> {
    match fields {
        [
            (r, 0, H5Type::Float { size: a, le }),
            (i, off, H5Type::Float { size: b, .. }),
        ] if r == "r"
            && i == "i"
            && a == b
            && *off == *a
            && size == 2 * a
            && matches!(a, 4 | 8) =>
        {
            Some((size, *le))
        }
        _ => None,
    }
}

/// The NumPy type string of `t` (`<f8`, `|S12`, `|b1`, `<c16` …), or why it has none here.
///
/// # Errors
/// A sentence saying what cannot be represented.
pub(crate) fn numpy_dtype(t: &H5Type) -> Result<String, String> {
    match t {
        H5Type::Int { size, signed, le } if matches!(size, 1 | 2 | 4 | 8) => Ok(format!(
            "{}{}{size}",
            endian(*le, *size),
            if *signed { 'i' } else { 'u' }
        )),
        H5Type::Int { size, .. } => Err(format!("{size}-byte integers")),
        H5Type::Float { size, le } if matches!(size, 2 | 4 | 8) => {
            Ok(format!("{}f{size}", endian(*le, *size)))
        }
        H5Type::Float { size, .. } => Err(format!("{size}-byte floats")),
        H5Type::Enum { base, names } if is_h5py_bool(base, names) => Ok("|b1".into()),
        H5Type::Enum { base, .. } => numpy_dtype(base),
        H5Type::FixedString { size } if *size > 0 => Ok(format!("|S{size}")),
        H5Type::FixedString { .. } => Err("zero-length strings".into()),
        H5Type::VarString => Err("variable-length strings".into()),
        H5Type::Compound { size, fields } => match complex_of(*size, fields) {
            Some((size, le)) => Ok(format!("{}c{size}", endian(le, size))),
            None => Err("compound types".into()),
        },
        H5Type::Array { .. } => Err("array (subarray) types".into()),
        H5Type::Other(what) => Err((*what).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_what_numpy_has() {
        let f8 = H5Type::Float { size: 8, le: true };
        assert_eq!(numpy_dtype(&f8).unwrap(), "<f8");
        let be = H5Type::Int {
            size: 4,
            signed: true,
            le: false,
        };
        assert_eq!(numpy_dtype(&be).unwrap(), ">i4");
        let u1 = H5Type::Int {
            size: 1,
            signed: false,
            le: true,
        };
        assert_eq!(numpy_dtype(&u1).unwrap(), "|u1");
        let b = H5Type::Enum {
            base: Box::new(H5Type::Int {
                size: 1,
                signed: true,
                le: true,
            }),
            names: vec!["FALSE".into(), "TRUE".into()],
        };
        assert_eq!(numpy_dtype(&b).unwrap(), "|b1");
        let e = H5Type::Enum {
            base: Box::new(be),
            names: vec!["A".into()],
        };
        assert_eq!(numpy_dtype(&e).unwrap(), ">i4");
        let c = H5Type::Compound {
            size: 16,
            fields: vec![("r".into(), 0, f8.clone()), ("i".into(), 8, f8.clone())],
        };
        assert_eq!(numpy_dtype(&c).unwrap(), "<c16");
        let s = H5Type::Compound {
            size: 9,
            fields: vec![("a".into(), 0, u1), ("b".into(), 1, f8)],
        };
        assert!(numpy_dtype(&s).is_err());
        assert_eq!(
            numpy_dtype(&H5Type::FixedString { size: 12 }).unwrap(),
            "|S12"
        );
        assert!(numpy_dtype(&H5Type::VarString).is_err());
        assert!(numpy_dtype(&H5Type::Other("references")).is_err());
    }
}
