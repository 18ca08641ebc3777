//! HDF5 datatypes as NumPy dtypes (the `b2nd` metalayer's type strings), and which ones cannot
//! be represented. Compounds become structured dtypes (beyond 0.2.0): their data is read in
//! a packed copy of the file type (see `ffi::dataset_type`), so members lie at increasing
//! offsets with no padding, which is the layout of NumPy's list form.

use cat2_array::{DType, Field};

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
            None => structured(*size, fields).map(|d| d.to_typestr()),
        },
        H5Type::Array { .. } => Err("array (subarray) types".into()),
        H5Type::Other(what) => Err((*what).into()),
    }
}

/// A packed compound as a NumPy structured dtype.
fn structured(size: usize, fields: &[(String, usize, H5Type)]) -> Result<DType, String> {
    let mut members: Vec<&(String, usize, H5Type)> = fields.iter().collect();
    members.sort_by_key(|m| m.1);
    let mut at = 0;
    let mut out = Vec::new();
    for (name, offset, t) in members {
        // NumPy's list form quotes names with `'`: keep names it prints back unchanged.
        let printable = !name.is_empty()
            && !name
                .chars()
                .any(|c| c == '\'' || c == '\\' || c.is_control());
        if !printable {
            return Err(format!("a compound member named {name:?}"));
        }
        if *offset != at {
            return Err("compound members that overlap or leave gaps".into());
        }
        let (dtype, shape) = member(t)?;
        out.push(Field {
            name: name.clone(),
            dtype,
            shape,
        });
        at += t.size();
    }
    if out.is_empty() || at != size {
        return Err("compound types without members, or with trailing padding".into());
    }
    Ok(DType::Struct(out))
}

/// One member's type and sub-array shape.
fn member(t: &H5Type) -> Result<(DType, Vec<u64>), String> {
    match t {
        H5Type::Array { base, dims } => {
            if dims.is_empty() || dims.contains(&0) {
                return Err("empty array members".into());
            }
            let (d, inner) = member(base)?;
            Ok((d, dims.iter().chain(&inner).copied().collect()))
        }
        H5Type::Compound { size, fields } if complex_of(*size, fields).is_none() => {
            Ok((structured(*size, fields)?, Vec::new()))
        }
        t => {
            let s = numpy_dtype(t)?;
            let d = DType::parse(&s).map_err(|e| e.to_string())?;
            Ok((d, Vec::new()))
        }
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
            fields: vec![("b".into(), 1, f8.clone()), ("a".into(), 0, u1.clone())],
        };
        let st = numpy_dtype(&s).unwrap();
        assert_eq!(st, "[('a', '|u1'), ('b', '<f8')]");
        assert_eq!(DType::parse(&st).unwrap().itemsize(), 9);
        let nested = H5Type::Compound {
            size: 9 + 2 * 3 * 8 + 4,
            fields: vec![
                ("s".into(), 0, s),
                (
                    "m".into(),
                    9,
                    H5Type::Array {
                        base: Box::new(f8.clone()),
                        dims: vec![2, 3],
                    },
                ),
                ("t".into(), 57, H5Type::FixedString { size: 4 }),
            ],
        };
        assert_eq!(
            numpy_dtype(&nested).unwrap(),
            "[('s', [('a', '|u1'), ('b', '<f8')]), ('m', '<f8', (2, 3)), ('t', 'S4')]"
        );
        let gap = H5Type::Compound {
            size: 16,
            fields: vec![("a".into(), 0, u1.clone()), ("b".into(), 8, f8)],
        };
        assert!(numpy_dtype(&gap).is_err());
        let quoted = H5Type::Compound {
            size: 1,
            fields: vec![("it's".into(), 0, u1)],
        };
        assert!(numpy_dtype(&quoted).is_err());
        assert_eq!(
            numpy_dtype(&H5Type::FixedString { size: 12 }).unwrap(),
            "|S12"
        );
        assert!(numpy_dtype(&H5Type::VarString).is_err());
        assert!(numpy_dtype(&H5Type::Other("references")).is_err());
    }
}
