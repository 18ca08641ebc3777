//! Array items as JSON values, typed by their NumPy dtype: nested lists following the shape,
//! a bare scalar for 0-d arrays.
//!
//! Conversions: `b` → bool; `i`/`u` → integers (either byte order); `f` (2, 4, 8 bytes) →
//! numbers printed with the shortest text that reads back as the same float, and the strings
//! `"nan"`, `"inf"`, `"-inf"`, which JSON numbers cannot express; `c` → `[re, im]`; `S` and `U`
//! → strings without their trailing NULs; structured items → the list of their field values;
//! anything else (`V`, datetimes, 16-byte floats) → `"0x…"` hex of the raw item.

use cat2_array::DType;
use serde_json::Value;

/// The items `data` (C order) of an array of `shape` and `dtype` as one JSON value.
///
/// Returns `None` when `data` does not hold exactly the items the shape asks for.
pub(crate) fn array_to_json(dtype: &DType, shape: &[u64], data: &[u8]) -> Option<Value> {
    let itemsize = dtype.itemsize();
    let nitems = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(usize::try_from(d).ok()?))?;
    if nitems.checked_mul(itemsize)? != data.len() {
        return None;
    }
    Some(nested(dtype, shape, data))
}

/// `data` holds exactly the items of `shape` (checked by the caller).
fn nested(dtype: &DType, shape: &[u64], data: &[u8]) -> Value {
    let Some((&n, rest)) = shape.split_first() else {
        return scalar(dtype, data);
    };
    // `n` items of `data.len() / n` bytes each; `n` == 0 means an empty list.
    let Some(step) = data.len().checked_div(n as usize) else {
        return Value::Array(Vec::new());
    };
    if step == 0 {
        // Zero-size sub-arrays: `n` copies of the (empty) nested value.
        let empty = nested(dtype, rest, &[]);
        return Value::Array(vec![empty; n as usize]);
    }
    Value::Array(
        data.chunks_exact(step)
            .map(|sub| nested(dtype, rest, sub))
            .collect(),
    )
}

/// One item (`bytes.len()` equals the dtype's item size).
fn scalar(dtype: &DType, bytes: &[u8]) -> Value {
    let (order, kind, size) = match dtype {
        DType::Scalar {
            order, kind, size, ..
        } => (*order, *kind, *size),
        DType::Struct(fields) => return record(fields, bytes),
    };
    let big = order == '>';
    match (kind, size) {
        ('b', 1) => Value::Bool(bytes[0] != 0),
        ('i', 1 | 2 | 4 | 8) => Value::from(signed(bytes, big)),
        ('u', 1 | 2 | 4 | 8) => Value::from(unsigned(bytes, big)),
        ('f', 2 | 4 | 8) => float(bytes, big),
        ('c', 8 | 16) => {
            let (re, im) = bytes.split_at(size / 2);
            Value::Array(vec![float(re, big), float(im, big)])
        }
        ('S', _) => {
            let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            Value::String(String::from_utf8_lossy(&bytes[..end]).into_owned())
        }
        ('U', _) => {
            let mut s: String = bytes
                .chunks_exact(4)
                .map(|c| {
                    let u = unsigned(c, big);
                    u32::try_from(u)
                        .ok()
                        .and_then(char::from_u32)
                        .unwrap_or(char::REPLACEMENT_CHARACTER)
                })
                .collect();
            s.truncate(s.trim_end_matches('\0').len());
            Value::String(s)
        }
        _ => hex(bytes),
    }
}

/// A structured item: its fields in order, packed one after the other.
fn record(fields: &[cat2_array::Field], bytes: &[u8]) -> Value {
    let mut values = Vec::with_capacity(fields.len());
    let mut offset = 0usize;
    for f in fields {
        let count: u64 = f.shape.iter().product();
        let len = f.dtype.itemsize().saturating_mul(count as usize);
        let Some(part) = bytes.get(offset..offset.saturating_add(len)) else {
            values.push(Value::Null);
            continue;
        };
        offset += len;
        values.push(nested(&f.dtype, &f.shape, part));
    }
    Value::Array(values)
}

pub(crate) fn unsigned(bytes: &[u8], big: bool) -> u64 {
    let fold = |acc: u64, b: &u8| (acc << 8) | u64::from(*b);
    if big {
        bytes.iter().fold(0, fold)
    } else {
        bytes.iter().rev().fold(0, fold)
    }
}

pub(crate) fn signed(bytes: &[u8], big: bool) -> i64 {
    let shift = 64 - 8 * bytes.len() as u32;
    ((unsigned(bytes, big) << shift) as i64) >> shift
}

/// A 2, 4 or 8-byte float, printed with the shortest text that reads back as itself.
fn float(bytes: &[u8], big: bool) -> Value {
    let bits = unsigned(bytes, big);
    let x = match bytes.len() {
        2 => shortest(f16_to_f32(bits as u16)),
        4 => shortest(f32::from_bits(bits as u32)),
        8 => f64::from_bits(bits),
        _ => return hex(bytes),
    };
    if x.is_nan() {
        Value::from("nan")
    } else if x.is_infinite() {
        Value::from(if x > 0.0 { "inf" } else { "-inf" })
    } else {
        serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

/// The f64 whose shortest text is that of `x` (so `0.1f32` prints `0.1`, not
/// `0.10000000149011612`).
fn shortest(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

/// IEEE 754 half precision to single precision (exact).
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let mant = f32::from(h & 0x3ff);
    match exp {
        0 => sign * mant * 2f32.powi(-24),
        0x1f if mant == 0.0 => sign * f32::INFINITY,
        0x1f => f32::NAN,
        _ => sign * (1.0 + mant / 1024.0) * 2f32.powi(exp - 15),
    }
}

fn hex(bytes: &[u8]) -> Value {
    let mut s = String::with_capacity(2 + 2 * bytes.len());
    s.push_str("0x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    Value::String(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(dtype: &str, shape: &[u64], data: &[u8]) -> String {
        let t = DType::parse(dtype).unwrap();
        array_to_json(&t, shape, data).unwrap().to_string()
    }

    #[test]
    fn halves() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
    }

    #[test]
    fn shapes_nest() {
        let data: Vec<u8> = (0u8..6).collect();
        assert_eq!(conv("|u1", &[2, 3], &data), "[[0,1,2],[3,4,5]]");
        assert_eq!(conv("|u1", &[], &[7]), "7");
        assert_eq!(conv("<i4", &[0, 20], &[]), "[]");
        assert_eq!(conv("<i4", &[2, 0], &[]), "[[],[]]");
        let t = DType::parse("<i2").unwrap();
        assert!(array_to_json(&t, &[3], &[0; 5]).is_none());
    }

    #[test]
    fn big_endian_and_signs() {
        assert_eq!(conv(">i2", &[2], &[0xff, 0xfe, 0x01, 0x00]), "[-2,256]");
        assert_eq!(conv("<i8", &[1], &(-5i64).to_le_bytes()), "[-5]");
        assert_eq!(
            conv("<u8", &[1], &u64::MAX.to_le_bytes()),
            "[18446744073709551615]"
        );
        assert_eq!(conv("|i1", &[1], &[0x80]), "[-128]");
    }

    #[test]
    fn odd_kinds_are_hex() {
        assert_eq!(conv("|V2", &[1], &[0xab, 0x01]), r#"["0xab01"]"#);
        assert_eq!(
            conv("<M8[ns]", &[], &[1, 0, 0, 0, 0, 0, 0, 0]),
            r#""0x0100000000000000""#
        );
    }
}
