//! HDF5 type descriptions of NumPy dtypes, as h5py would store the dtype (h5grove's
//! `get_type_metadata`), and vlmeta values as HDF5 attributes with a shape and a type.

use cat2_array::{DType, Field};
use serde_json::{Map, Value, json};

// HDF5 type classes (`H5T_class_t`), the numbers h5grove reports.
const INTEGER: u8 = 0;
const FLOAT: u8 = 1;
const STRING: u8 = 3;
const OPAQUE: u8 = 5;
const COMPOUND: u8 = 6;
const ENUM: u8 = 8;
const ARRAY: u8 = 10;

pub(super) fn scalar(order: char, kind: char, size: usize) -> DType {
    DType::Scalar {
        order,
        kind,
        size,
        unit: String::new(),
    }
}

/// `t` with `"name"` first, as h5grove writes compound members.
fn named(name: &str, t: Value) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), name.into());
    if let Value::Object(t) = t {
        m.extend(t);
    }
    Value::Object(m)
}

/// The HDF5 type h5py would store items of `dt` as, in h5grove's form.
pub(super) fn type_meta(dt: &DType) -> Value {
    let (order, kind, size) = match dt {
        DType::Struct(fields) => {
            let dtype: Map<String, Value> = fields
                .iter()
                .map(|f| (f.name.clone(), stringify(&f.dtype, &f.shape)))
                .collect();
            let members: Vec<Value> = fields
                .iter()
                .map(|f| named(&f.name, field_type(f)))
                .collect();
            return json!({"class": COMPOUND, "dtype": dtype, "size": dt.itemsize(),
                          "members": members});
        }
        DType::Scalar {
            order, kind, size, ..
        } => (*order, *kind, *size),
    };
    let dtype = dt.to_typestr();
    let big = u8::from(order == '>');
    match kind {
        'i' | 'u' => json!({"class": INTEGER, "dtype": dtype, "size": size, "order": big,
                            "sign": u8::from(kind == 'i')}),
        'f' => json!({"class": FLOAT, "dtype": dtype, "size": size, "order": big}),
        // h5py stores NumPy bools as an enum of int8 (and h5web reads that enum back as bool).
        'b' => json!({"class": ENUM, "dtype": dtype, "size": size,
                      "members": {"FALSE": 0, "TRUE": 1}, "base": type_meta(&scalar('|', 'i', 1))}),
        // … and complex numbers as a compound of two floats named r and i.
        'c' => {
            let part = type_meta(&scalar(order, 'f', size / 2));
            json!({"class": COMPOUND, "dtype": dtype, "size": size,
                   "members": [named("r", part.clone()), named("i", part)]})
        }
        // Fixed-length, null-padded strings: bytes (ASCII) or, for NumPy's UCS-4 `U`, which
        // HDF5 has no form for, UTF-8 (its items are served decoded anyway).
        'S' | 'U' => json!({"class": STRING, "dtype": dtype, "size": size,
                            "cset": u8::from(kind == 'U'), "strpad": 1, "vlen": false}),
        // Opaque bytes; datetimes keep their NumPy type in the tag, as h5py's opaque_dtype does.
        _ => {
            let tag = if kind == 'V' {
                String::new()
            } else {
                format!("NUMPY:{dtype}")
            };
            json!({"class": OPAQUE, "dtype": dtype, "size": size, "tag": tag})
        }
    }
}

pub(super) fn subarray_size(dtype: &DType, shape: &[u64]) -> usize {
    shape.iter().fold(dtype.itemsize(), |a, &d| {
        a.saturating_mul(usize::try_from(d).unwrap_or(usize::MAX))
    })
}

fn field_type(f: &Field) -> Value {
    if f.shape.is_empty() {
        return type_meta(&f.dtype);
    }
    let size = subarray_size(&f.dtype, &f.shape);
    json!({"class": ARRAY, "dtype": format!("|V{size}"), "size": size, "dims": f.shape,
           "base": type_meta(&f.dtype)})
}

/// NumPy's `dtype.str`, or for a structured type the map of its fields (`stringify_dtype`).
fn stringify(dt: &DType, shape: &[u64]) -> Value {
    match dt {
        _ if !shape.is_empty() => format!("|V{}", subarray_size(dt, shape)).into(),
        DType::Struct(fields) => Value::Object(
            fields
                .iter()
                .map(|f| (f.name.clone(), stringify(&f.dtype, &f.shape)))
                .collect(),
        ),
        DType::Scalar { .. } => dt.to_typestr().into(),
    }
}

/// An attribute as h5grove serves it: its value (`/attr`), shape and type (`/meta`).
pub(super) struct Attr {
    pub(super) value: Value,
    pub(super) shape: Value,
    pub(super) ty: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaf {
    Bool,
    Int,
    UInt,
    Float,
    Str,
}

/// What h5py stores a Python `str` attribute as.
fn vlen_str() -> Value {
    json!({"class": STRING, "dtype": "|O", "size": 8, "cset": 1, "strpad": 0, "vlen": true})
}

fn leaf_type(l: Option<Leaf>) -> Value {
    match l {
        Some(Leaf::Bool) => type_meta(&scalar('|', 'b', 1)),
        Some(Leaf::Int) => type_meta(&scalar('<', 'i', 8)),
        Some(Leaf::UInt) => type_meta(&scalar('<', 'u', 8)),
        Some(Leaf::Str) => vlen_str(),
        // NumPy makes empty lists float64.
        Some(Leaf::Float) | None => type_meta(&scalar('<', 'f', 8)),
    }
}

fn leaf(v: &Value) -> Option<Leaf> {
    match v {
        Value::Bool(_) => Some(Leaf::Bool),
        Value::Number(n) if n.is_i64() => Some(Leaf::Int),
        Value::Number(n) if n.is_u64() => Some(Leaf::UInt),
        Value::Number(_) => Some(Leaf::Float),
        Value::String(_) => Some(Leaf::Str),
        _ => None,
    }
}

/// Items of two kinds in one array, as NumPy would type it; `None` when they do not mix.
fn merge(a: Option<Leaf>, b: Option<Leaf>) -> Option<Option<Leaf>> {
    use Leaf::{Float, Int, UInt};
    match (a, b) {
        (None, x) | (x, None) => Some(x),
        (Some(x), Some(y)) if x == y => Some(Some(x)),
        (Some(Int | UInt | Float), Some(Int | UInt | Float)) => Some(Some(Float)),
        _ => None,
    }
}

/// The shape of a rectangular (nested) list and the kind of its items (`None` for empty
/// lists); `None` for what has no array form (objects, nulls, ragged or mixed lists).
fn layout(v: &Value) -> Option<(Vec<u64>, Option<Leaf>)> {
    let Value::Array(items) = v else {
        return leaf(v).map(|l| (Vec::new(), Some(l)));
    };
    let mut inner: Option<(Vec<u64>, Option<Leaf>)> = None;
    for it in items {
        let (s, l) = layout(it)?;
        inner = Some(match inner {
            None => (s, l),
            Some((s0, l0)) if s0 == s => (s0, merge(l0, l)?),
            Some(_) => return None,
        });
    }
    let (mut shape, l) = inner.unwrap_or_default();
    shape.insert(0, items.len() as u64);
    Some((shape, l))
}

/// A vlmeta value as an attribute: `null` is an empty attribute (h5py's `Empty`), values with
/// no array form are served as their JSON text (so that `/attr` agrees with the type `/meta`
/// gives).
pub(super) fn attr(v: Value) -> Attr {
    if v.is_null() {
        return Attr {
            value: v,
            shape: Value::Null,
            ty: leaf_type(None),
        };
    }
    match layout(&v) {
        Some((shape, l)) => Attr {
            ty: leaf_type(l),
            shape: json!(shape),
            value: v,
        },
        None => Attr {
            value: Value::String(v.to_string()),
            shape: json!([]),
            ty: vlen_str(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> DType {
        DType::parse(s).unwrap()
    }

    #[test]
    fn types_are_h5pys() {
        assert_eq!(
            type_meta(&dt("<u2")),
            json!({"class": 0, "dtype": "<u2", "size": 2, "order": 0, "sign": 0})
        );
        assert_eq!(type_meta(&dt(">f8"))["order"], 1);
        assert_eq!(
            type_meta(&dt("|b1"))["members"],
            json!({"FALSE": 0, "TRUE": 1})
        );
        let c = type_meta(&dt("<c16"));
        assert_eq!(
            (c["class"].clone(), c["dtype"].clone()),
            (json!(6), json!("<c16"))
        );
        assert_eq!(
            c["members"][1],
            json!({"name": "i", "class": 1, "dtype": "<f8", "size": 8, "order": 0})
        );
        let s = type_meta(&dt("[('a', '<i4'), ('z', '<f4', (2,))]"));
        assert_eq!(s["dtype"], json!({"a": "<i4", "z": "|V8"}));
        assert_eq!(s["members"][1]["dims"], json!([2]));
        assert_eq!(type_meta(&dt("|S6"))["class"], 3);
    }

    #[test]
    fn attributes_get_numpys_shape_and_type() {
        let a = attr(json!([[1, 2], [3, 4.5]]));
        assert_eq!(
            (a.shape, a.ty["dtype"].clone()),
            (json!([2, 2]), json!("<f8"))
        );
        assert_eq!(attr(json!("foo")).ty["vlen"], true);
        let odd = attr(json!({"k": [1, "x"]}));
        assert_eq!(odd.value, json!(r#"{"k":[1,"x"]}"#));
    }
}
