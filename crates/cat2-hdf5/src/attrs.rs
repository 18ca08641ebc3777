//! HDF5 attributes as Blosc2 vlmeta, packed as Caterva2 0.2.0 packs them (spec §7.1): what h5py
//! reads, turned into plain values (`tolist()`), msgpack-encoded; tuples (compound values) as
//! `["__tuple__", …]` (never reached from h5py's reads: compound values are skipped as 0.2.0
//! skips them); empty (null dataspace) strings as empty values, other empty values as nil.
//! Attributes that cannot be packed (complex numbers, references …) are skipped and named.

use rmpv::Value;

use crate::ffi::{AttrValue, H5Type};

/// Packs one attribute value (msgpack bytes), or says why it cannot be.
pub(crate) fn pack(v: &AttrValue) -> Result<Vec<u8>, String> {
    let value = match &v.shape {
        None => match v.ty {
            H5Type::FixedString { .. } => Value::Binary(Vec::new()),
            _ => Value::Nil,
        },
        Some(dims) => {
            let items: Vec<Value> = if v.ty == H5Type::VarString {
                v.strings.iter().map(|s| Value::from(s.as_str())).collect()
            } else {
                let size = v.ty.size().max(1);
                v.raw
                    .chunks(size)
                    .map(|b| item(&v.ty, b, !dims.is_empty()))
                    .collect::<Result<_, _>>()?
            };
            nest(dims, &mut items.into_iter())
        }
    };
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &value).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Nested lists of `dims` (a scalar for no dims), as NumPy's `tolist()`.
fn nest(dims: &[u64], items: &mut impl Iterator<Item = Value>) -> Value {
    match dims.split_first() {
        None => items.next().unwrap_or(Value::Nil),
        Some((&n, rest)) => Value::Array((0..n).map(|_| nest(rest, items)).collect()),
    }
}

fn int(b: &[u8], signed: bool, le: bool) -> Value {
    let mut buf = [0u8; 8];
    let n = b.len().min(8);
    if le {
        buf[..n].copy_from_slice(&b[..n]);
    } else {
        for (i, x) in b[..n].iter().rev().enumerate() {
            buf[i] = *x;
        }
    }
    let negative = signed && n > 0 && buf[n - 1] & 0x80 != 0;
    if negative {
        for x in &mut buf[n..] {
            *x = 0xff;
        }
        Value::from(i64::from_le_bytes(buf))
    } else {
        Value::from(u64::from_le_bytes(buf))
    }
}

fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f64::from(h & 0x3ff);
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 if frac == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        _ => sign * (1.0 + frac / 1024.0) * 2f64.powi(exp - 15),
    }
}

fn float(b: &[u8], le: bool) -> Result<Value, String> {
    let mut v = b.to_vec();
    if !le {
        v.reverse();
    }
    Ok(Value::F64(match v.len() {
        2 => f16_to_f64(u16::from_le_bytes([v[0], v[1]])),
        4 => f64::from(f32::from_le_bytes([v[0], v[1], v[2], v[3]])),
        8 => f64::from_le_bytes(v.try_into().map_err(|_| "float")?),
        n => return Err(format!("{n}-byte floats")),
    }))
}

/// One item of type `t` from its bytes `b`, as h5py's value's `tolist()` (`in_list`: an
/// element of an array, which msgpack hands to 0.2.0's `default` on its own).
fn item(t: &H5Type, b: &[u8], in_list: bool) -> Result<Value, String> {
    Ok(match t {
        H5Type::Int { signed, le, .. } => int(b, *signed, *le),
        H5Type::Float { le, .. } => float(b, *le)?,
        // h5py reads its booleans as `numpy.bool_`.
        H5Type::Enum { names, .. } if names == &["FALSE", "TRUE"] => {
            Value::Boolean(b.iter().any(|x| *x != 0))
        }
        H5Type::Enum { base, .. } => item(base, b, in_list)?,
        // NumPy's bytes_ drops trailing NULs.
        H5Type::FixedString { .. } => {
            let end = b.iter().rposition(|x| *x != 0).map_or(0, |p| p + 1);
            Value::Binary(b[..end].to_vec())
        }
        H5Type::Compound { size, fields } => {
            if crate::types::complex_of(*size, fields).is_some() {
                return Err("complex numbers have no msgpack form".into());
            }
            // h5py reads them as `numpy.void`, whose `tolist()` is a tuple: 0.2.0's packing
            // (strict types, one `default` call per value) fails on a scalar one and skips it;
            // in an array each tuple gets its own `default` call: `["__tuple__", …]`.
            if !in_list {
                return Err("compound values (Caterva2 0.2.0 does not pack them)".into());
            }
            let mut tuple = vec![Value::from("__tuple__")];
            for (_, off, ft) in fields {
                let part = b
                    .get(*off..*off + ft.size())
                    .ok_or("compound member out of range")?;
                // Members are plain values already: packed as they are (nested compounds fail).
                match ft {
                    H5Type::Compound { .. } => return Err("nested compound values".into()),
                    _ => tuple.push(item(ft, part, false)?),
                }
            }
            Value::Array(tuple)
        }
        H5Type::Array { .. } => return Err("array types".into()),
        H5Type::VarString => return Err("nested variable-length strings".into()),
        H5Type::Other(what) => return Err((*what).into()),
    })
}

/// Writes `v` (a decoded vlmeta value) as attribute `name` of `h`, as h5py stores the Python
/// value it stands for: ints as `int64` (`uint64` past its range), floats as `float64`, text as
/// variable-length UTF-8, bytes as variable-length ASCII, lists of numbers or strings as
/// arrays (rectangular nested lists as 2-d ones).
pub(crate) fn write(h: &hdf5::Dataset, name: &str, v: &Value) -> Result<(), String> {
    use hdf5::types::{VarLenAscii, VarLenUnicode};
    let e = |x: hdf5::Error| x.to_string();
    match v {
        Value::Integer(i) => match i.as_i64() {
            Some(x) => h
                .new_attr::<i64>()
                .shape(())
                .create(name)
                .and_then(|a| a.write_scalar(&x))
                .map_err(e),
            None => {
                let x = i.as_u64().ok_or("integer out of range")?;
                h.new_attr::<u64>()
                    .shape(())
                    .create(name)
                    .and_then(|a| a.write_scalar(&x))
                    .map_err(e)
            }
        },
        Value::F32(_) | Value::F64(_) => {
            let x = v.as_f64().ok_or("float")?;
            h.new_attr::<f64>()
                .shape(())
                .create(name)
                .and_then(|a| a.write_scalar(&x))
                .map_err(e)
        }
        Value::Boolean(b) => h
            .new_attr::<bool>()
            .shape(())
            .create(name)
            .and_then(|a| a.write_scalar(b))
            .map_err(e),
        Value::String(s) => {
            let s = s.as_str().ok_or("text that is not UTF-8")?;
            let x: VarLenUnicode = s
                .parse()
                .map_err(|x: hdf5::types::StringError| x.to_string())?;
            h.new_attr::<VarLenUnicode>()
                .shape(())
                .create(name)
                .and_then(|a| a.write_scalar(&x))
                .map_err(e)
        }
        Value::Binary(b) => {
            let x = VarLenAscii::from_ascii(b).map_err(|x| x.to_string())?;
            h.new_attr::<VarLenAscii>()
                .shape(())
                .create(name)
                .and_then(|a| a.write_scalar(&x))
                .map_err(e)
        }
        Value::Array(items) => write_list(h, name, items),
        _ => Err("values of this kind (nil, maps, extensions) have no HDF5 attribute form".into()),
    }
}

fn write_list(h: &hdf5::Dataset, name: &str, items: &[Value]) -> Result<(), String> {
    use hdf5::types::VarLenUnicode;
    let e = |x: hdf5::Error| x.to_string();
    // Rows of equal length make a 2-d array.
    let rows: Option<Vec<&Vec<Value>>> = items.iter().map(Value::as_array).collect();
    let (shape, flat): (Vec<usize>, Vec<&Value>) = match rows {
        Some(r) if !r.is_empty() && r.iter().all(|x| x.len() == r[0].len()) => (
            vec![r.len(), r[0].len()],
            r.iter().flat_map(|x| x.iter()).collect(),
        ),
        Some(r) if !r.is_empty() => return Err("ragged nested lists".into()),
        _ => (vec![items.len()], items.iter().collect()),
    };
    if flat.iter().all(|x| x.is_i64() || x.is_u64()) && flat.iter().all(|x| x.as_i64().is_some()) {
        let v: Vec<i64> = flat.iter().filter_map(|x| x.as_i64()).collect();
        return h
            .new_attr::<i64>()
            .shape(shape)
            .create(name)
            .and_then(|a| a.write_raw(&v[..]))
            .map_err(e);
    }
    if flat
        .iter()
        .all(|x| x.as_f64().is_some() || x.as_i64().is_some())
    {
        let v: Vec<f64> = flat
            .iter()
            .map(|x| x.as_f64().or(x.as_i64().map(|i| i as f64)).unwrap_or(0.0))
            .collect();
        return h
            .new_attr::<f64>()
            .shape(shape)
            .create(name)
            .and_then(|a| a.write_raw(&v[..]))
            .map_err(e);
    }
    if flat.iter().all(|x| x.as_str().is_some()) {
        let v: Vec<VarLenUnicode> = flat
            .iter()
            .filter_map(|x| x.as_str())
            .map(|s| s.parse())
            .collect::<Result<_, _>>()
            .map_err(|x: hdf5::types::StringError| x.to_string())?;
        return h
            .new_attr::<VarLenUnicode>()
            .shape(shape)
            .create(name)
            .and_then(|a| a.write_raw(&v[..]))
            .map_err(e);
    }
    if flat.iter().all(|x| matches!(x, Value::Binary(_))) {
        let v: Vec<hdf5::types::VarLenAscii> = flat
            .iter()
            .filter_map(|x| x.as_slice())
            .map(hdf5::types::VarLenAscii::from_ascii)
            .collect::<Result<_, _>>()
            .map_err(|x| x.to_string())?;
        return h
            .new_attr::<hdf5::types::VarLenAscii>()
            .shape(shape)
            .create(name)
            .and_then(|a| a.write_raw(&v[..]))
            .map_err(e);
    }
    Err("lists of mixed or nested values".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(ty: H5Type, shape: Option<Vec<u64>>, raw: Vec<u8>) -> Vec<u8> {
        pack(&AttrValue {
            ty,
            shape,
            raw,
            strings: Vec::new(),
        })
        .unwrap()
    }

    #[test]
    fn packs_as_python_msgpack_does() {
        let i8 = H5Type::Int {
            size: 8,
            signed: true,
            le: true,
        };
        // 42 is a positive fixint; -1 a negative one; Python floats are doubles.
        assert_eq!(
            packed(i8.clone(), Some(vec![]), 42i64.to_le_bytes().to_vec()),
            [0x2a]
        );
        assert_eq!(
            packed(i8, Some(vec![]), (-1i64).to_le_bytes().to_vec()),
            [0xff]
        );
        let be16 = H5Type::Int {
            size: 2,
            signed: true,
            le: false,
        };
        assert_eq!(packed(be16, Some(vec![]), vec![0xff, 0xfe]), [0xfe]);
        let f4 = H5Type::Float { size: 4, le: true };
        let mut want = vec![0xcb];
        want.extend_from_slice(&1.5f64.to_be_bytes());
        assert_eq!(
            packed(f4, Some(vec![]), 1.5f32.to_le_bytes().to_vec()),
            want
        );
        let u1 = H5Type::Int {
            size: 1,
            signed: false,
            le: true,
        };
        assert_eq!(
            packed(u1.clone(), Some(vec![2, 2]), vec![0, 1, 2, 3]),
            [0x92, 0x92, 0, 1, 0x92, 2, 3]
        );
        assert_eq!(packed(u1, None, vec![]), [0xc0]);
        let s = H5Type::FixedString { size: 4 };
        assert_eq!(packed(s.clone(), None, vec![]), [0xc4, 0]);
        assert_eq!(
            packed(s, Some(vec![]), b"foo\0".to_vec()),
            [0xc4, 3, b'f', b'o', b'o']
        );
        let strs = AttrValue {
            ty: H5Type::VarString,
            shape: Some(vec![]),
            raw: vec![],
            strings: vec!["bar".into()],
        };
        assert_eq!(pack(&strs).unwrap(), [0xa3, b'b', b'a', b'r']);
        let f8 = H5Type::Float { size: 8, le: true };
        let complex = H5Type::Compound {
            size: 16,
            fields: vec![("r".into(), 0, f8.clone()), ("i".into(), 8, f8)],
        };
        assert!(
            pack(&AttrValue {
                ty: complex,
                shape: Some(vec![]),
                raw: vec![0; 16],
                strings: vec![]
            })
            .is_err()
        );
        let pair = H5Type::Compound {
            size: 2,
            fields: vec![
                (
                    "a".into(),
                    0,
                    H5Type::Int {
                        size: 1,
                        signed: false,
                        le: true,
                    },
                ),
                (
                    "b".into(),
                    1,
                    H5Type::Int {
                        size: 1,
                        signed: true,
                        le: true,
                    },
                ),
            ],
        };
        assert!(
            pack(&AttrValue {
                ty: pair,
                shape: Some(vec![]),
                raw: vec![7, 0xff],
                strings: vec![]
            })
            .is_err()
        );
    }

    #[test]
    fn half_floats() {
        assert_eq!(f16_to_f64(0x3c00), 1.0);
        assert_eq!(f16_to_f64(0xc000), -2.0);
        assert_eq!(f16_to_f64(0x0001), 2f64.powi(-24));
        assert!(f16_to_f64(0x7e00).is_nan());
    }
}
