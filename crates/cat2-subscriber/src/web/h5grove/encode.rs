//! The bytes `/data` answers, with no I/O: NumPy-style selections with steps (h5grove's
//! `parse_slice`), and the items of a selection in each format (h5grove's `encoders.py`).

use cat2_array::{DType, Selection, SliceItem, SliceSpec};
use cat2_view::{Complex, Numeric, export, values};
use serde_json::Value;

use super::types::{scalar, subarray_size};

/// A selection as h5grove reads it: the box to read, the step along each dimension, and the
/// result's shape (integer indices drop their dimension).
#[derive(Debug, Clone)]
pub(super) struct Pick {
    pub(super) bbox: Selection,
    pub(super) steps: Vec<u64>,
    pub(super) shape: Vec<u64>,
}

/// Parses h5grove's `selection` (`3,:`, `0:5:2, 1`; none: everything) against `shape`. Steps
/// are taken out here and the rest resolved by [`Selection::new`] (NumPy's semantics: negative
/// indices, clipped ranges).
pub(super) fn pick(text: Option<&str>, shape: &[u64]) -> Result<Pick, String> {
    let text = text.unwrap_or("").trim();
    let mut steps = vec![1u64; shape.len()];
    let mut parts = Vec::new();
    if !text.is_empty() {
        for (d, part) in text.split(',').enumerate() {
            let pieces: Vec<&str> = part.split(':').collect();
            let [a, b, step] = pieces.as_slice() else {
                parts.push(part.to_owned());
                continue;
            };
            let s = step.trim();
            let n = if s.is_empty() {
                Some(1)
            } else {
                s.parse::<u64>().ok().filter(|n| *n >= 1)
            };
            let n =
                n.ok_or_else(|| format!("step must be an integer >= 1 in {:?}", part.trim()))?;
            if let Some(x) = steps.get_mut(d) {
                *x = n;
            }
            parts.push(format!("{a}:{b}"));
        }
    }
    let spec = SliceSpec::parse(&parts.join(",")).map_err(|e| e.to_string())?;
    let bbox = Selection::new(&spec, shape).map_err(|e| e.to_string())?;
    let kept = (0..shape.len()).map(|d| !matches!(spec.items().get(d), Some(SliceItem::Index(_))));
    let shape = bbox
        .extent()
        .iter()
        .zip(&steps)
        .zip(kept)
        .filter(|(_, keep)| *keep)
        .map(|((e, s), _)| e.div_ceil(*s))
        .collect();
    Ok(Pick { bbox, steps, shape })
}

/// The items of `data` (the box `pick.bbox`, C order) at `pick`'s steps, in C order.
pub(super) fn gather(data: Vec<u8>, pick: &Pick, itemsize: usize) -> Vec<u8> {
    if pick.steps.iter().all(|&s| s <= 1) {
        return data;
    }
    let ext = pick.bbox.extent();
    let lens: Vec<u64> = ext
        .iter()
        .zip(&pick.steps)
        .map(|(&e, &s)| e.div_ceil(s.max(1)))
        .collect();
    // Items of the box between two samples along each dimension.
    let mut jump = vec![0u64; ext.len()];
    let mut acc = 1u64;
    for ((j, &e), &s) in jump.iter_mut().zip(&ext).zip(&pick.steps).rev() {
        *j = acc.saturating_mul(s.max(1));
        acc = acc.saturating_mul(e);
    }
    let n: u64 = lens.iter().product();
    let mut out = Vec::with_capacity(usize::try_from(n).unwrap_or(0).saturating_mul(itemsize));
    let mut idx = vec![0u64; ext.len()];
    for _ in 0..n {
        let at: u64 = idx.iter().zip(&jump).map(|(i, j)| i * j).sum();
        let at = usize::try_from(at)
            .unwrap_or(usize::MAX)
            .saturating_mul(itemsize);
        out.extend_from_slice(data.get(at..at.saturating_add(itemsize)).unwrap_or(&[]));
        for (i, &len) in idx.iter_mut().zip(&lens).rev() {
            *i += 1;
            if *i < len {
                break;
            }
            *i = 0;
        }
    }
    out
}

/// A `/data` format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Json,
    Bin,
    Npy,
    Csv,
    Tiff,
}

impl Format {
    pub(super) fn parse(s: Option<&str>) -> Result<Self, String> {
        Ok(match s.unwrap_or("json") {
            "json" => Self::Json,
            "bin" => Self::Bin,
            "npy" => Self::Npy,
            "csv" => Self::Csv,
            "tiff" => Self::Tiff,
            other => return Err(format!("Unsupported encoding {other}")),
        })
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Bin => "bin",
            Self::Npy => "npy",
            Self::Csv => "csv",
            Self::Tiff => "tiff",
        }
    }
}

/// Refuses, before anything is read, what `format` (and `dtype=safe`) cannot encode for items
/// of `dt` in a result of `ndim` dimensions (h5grove's messages).
pub(super) fn check(dt: &DType, ndim: usize, format: Format, safe: bool) -> Result<(), String> {
    let numeric = Numeric::new(dt, Complex::Real).ok();
    let name = format.name();
    if safe && numeric.is_none() {
        return Err("Unsupported dtype safe for non-numeric data".into());
    }
    match format {
        Format::Json | Format::Bin => Ok(()),
        _ if numeric.is_none() => Err(format!(
            "Unsupported encoding {name} for non-numeric content"
        )),
        Format::Csv | Format::Tiff if ndim == 0 => Err(format!(
            "Unsupported encoding {name} for empty and scalar datasets"
        )),
        Format::Tiff if ndim != 2 => Err(format!(
            "tiff needs a 2-D selection; this one has {ndim} dimensions"
        )),
        Format::Tiff if numeric.is_some_and(|n| n.is_complex()) => {
            Err("tiff cannot hold complex items".into())
        }
        _ => Ok(()),
    }
}

/// An encoded `/data` answer.
pub(super) struct Encoded {
    pub(super) content_type: &'static str,
    pub(super) disposition: Option<&'static str>,
    pub(super) body: Vec<u8>,
}

/// `data` (items of `dt` in `shape`, C order) in `format`, converted first when `safe`.
pub(super) fn encode(
    dt: &DType,
    shape: &[u64],
    data: Vec<u8>,
    format: Format,
    safe: bool,
) -> Result<Encoded, String> {
    check(dt, shape.len(), format, safe)?;
    // A TIFF holds little-endian numbers of the widths it knows: the safe types.
    let (dt, data) = if safe || format == Format::Tiff {
        to_safe(dt, data)?
    } else {
        (dt.clone(), data)
    };
    let file = |content_type: &'static str,
                disposition: &'static str,
                body: Vec<u8>|
     -> Result<Encoded, String> {
        Ok(Encoded {
            content_type,
            disposition: Some(disposition),
            body,
        })
    };
    match format {
        Format::Json => Ok(Encoded {
            content_type: "application/json",
            disposition: None,
            body: json_items(&dt, shape, &data),
        }),
        Format::Bin => Ok(Encoded {
            content_type: "application/octet-stream",
            disposition: None,
            body: data,
        }),
        Format::Npy => file(
            "application/octet-stream",
            "attachment; filename=\"data.npy\"",
            export::npy(&dt, shape, &data),
        ),
        Format::Csv => file(
            "text/csv",
            "attachment; filename=\"data.csv\"",
            export::csv(&dt, shape, &data).into_bytes(),
        ),
        Format::Tiff => file(
            "image/tiff",
            "attachment; filename=\"data.tiff\"",
            tiff_image(&dt, shape, &data)?,
        ),
    }
}

/// h5grove's `dtype=safe`: items a JavaScript typed array holds (float16 as float32,
/// big-endian as little-endian).
fn to_safe(dt: &DType, mut data: Vec<u8>) -> Result<(DType, Vec<u8>), String> {
    let non_numeric = || "Unsupported dtype safe for non-numeric data".to_owned();
    let n = Numeric::new(dt, Complex::Real).map_err(|_| non_numeric())?;
    let DType::Scalar {
        order, kind, size, ..
    } = dt
    else {
        return Err(non_numeric());
    };
    if *kind == 'f' && *size == 2 {
        // Numeric reads halves of either byte order, and every half is exactly a single.
        let out = data
            .chunks_exact(2)
            .flat_map(|b| (n.get(b) as f32).to_le_bytes())
            .collect();
        return Ok((scalar('<', 'f', 4), out));
    }
    if *order == '>' {
        let part = if *kind == 'c' { size / 2 } else { *size };
        for p in data.chunks_exact_mut(part.max(1)) {
            p.reverse();
        }
        return Ok((scalar('<', *kind, *size), data));
    }
    Ok((dt.clone(), data))
}

/// The JSON text of items of `dt` in `shape`: nested lists, a bare value for a scalar.
pub(super) fn json_items(dt: &DType, shape: &[u64], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len().saturating_mul(2));
    write_nested(
        &mut out,
        dt,
        shape,
        &mut data.chunks_exact(dt.itemsize().max(1)),
    );
    out
}

/// How many JSON values (arrays and scalars) `json_items` writes for `shape` items of `dt`
/// (saturating): what bounds its work, since zero-size items or axes of length 0 read no
/// bytes.
pub(super) fn json_cells(dt: &DType, shape: &[u64]) -> u64 {
    // Arrays at each level of nesting, then one item per element.
    let (mut total, mut level) = (0u64, 1u64);
    for &d in shape {
        total = total.saturating_add(level);
        level = level.saturating_mul(d);
    }
    let per_item = match dt {
        DType::Struct(fields) => fields.iter().fold(1u64, |acc, f| {
            acc.saturating_add(json_cells(&f.dtype, &f.shape))
        }),
        _ => 1,
    };
    total.saturating_add(level.saturating_mul(per_item))
}

// Written as text, not built as a `Value` tree first: a tree takes tens of bytes per item.
fn write_nested(
    out: &mut Vec<u8>,
    dt: &DType,
    shape: &[u64],
    items: &mut std::slice::ChunksExact<'_, u8>,
) {
    let Some((&n, rest)) = shape.split_first() else {
        let v = items.next().map_or(Value::Null, |b| item_json(dt, b));
        out.extend_from_slice(v.to_string().as_bytes());
        return;
    };
    out.push(b'[');
    for i in 0..n {
        if i > 0 {
            out.push(b',');
        }
        write_nested(out, dt, rest, items);
    }
    out.push(b']');
}

fn nested(dt: &DType, shape: &[u64], items: &mut std::slice::ChunksExact<'_, u8>) -> Value {
    match shape.split_first() {
        None => items.next().map_or(Value::Null, |b| item_json(dt, b)),
        Some((&n, rest)) => Value::Array((0..n).map(|_| nested(dt, rest, items)).collect()),
    }
}

fn float_json(v: f64, single: bool) -> Value {
    // orjson writes float32 items with float32's shortest digits (0.1, not 0.10000000149…).
    let v = if single {
        (v as f32).to_string().parse().unwrap_or(v)
    } else {
        v
    };
    // Non-finite floats are null, as orjson writes them.
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// One item as orjson writes NumPy's `tolist()`: integers exact, complex as `[re, im]`,
/// strings decoded, structured items as lists of their fields; opaque items and datetimes as
/// the text cat2's tables show (hex, `123 ns`).
pub(super) fn item_json(dt: &DType, b: &[u8]) -> Value {
    match dt {
        DType::Struct(fields) => {
            let mut at = 0usize;
            Value::Array(
                fields
                    .iter()
                    .map(|f| {
                        let len = subarray_size(&f.dtype, &f.shape);
                        let end = at.saturating_add(len).min(b.len());
                        let bytes = b.get(at..end).unwrap_or(&[]);
                        at = end;
                        let mut items = bytes.chunks_exact(f.dtype.itemsize().max(1));
                        nested(&f.dtype, &f.shape, &mut items)
                    })
                    .collect(),
            )
        }
        DType::Scalar { kind: 'b', .. } => Value::Bool(b.first().is_some_and(|&x| x != 0)),
        // The table's text of an integer is exact (through f64 an i64 would round).
        DType::Scalar { kind: 'i', .. } => values::cell(dt, b)
            .parse::<i64>()
            .map_or(Value::Null, Value::from),
        DType::Scalar { kind: 'u', .. } => values::cell(dt, b)
            .parse::<u64>()
            .map_or(Value::Null, Value::from),
        DType::Scalar {
            kind: 'f', size, ..
        } => Numeric::new(dt, Complex::Real)
            .map_or(Value::Null, |n| float_json(n.get(b), *size <= 4)),
        DType::Scalar {
            kind: 'c', size, ..
        } => {
            match (
                Numeric::new(dt, Complex::Real),
                Numeric::new(dt, Complex::Imag),
            ) {
                (Ok(re), Ok(im)) => Value::Array(vec![
                    float_json(re.get(b), *size <= 8),
                    float_json(im.get(b), *size <= 8),
                ]),
                _ => Value::Null,
            }
        }
        DType::Scalar { .. } => Value::String(values::cell(dt, b)),
    }
}

fn le<const N: usize, T>(data: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
    data.chunks_exact(N)
        .map(|c| f(c.try_into().unwrap_or([0; N])))
        .collect()
}

/// A grey TIFF of a 2-D selection of little-endian numbers (tifffile's `minisblack`).
fn tiff_image(dt: &DType, shape: &[u64], data: &[u8]) -> Result<Vec<u8>, String> {
    use ::tiff::encoder::{TiffEncoder, colortype as ct};
    let [h, w] = shape else {
        return Err("tiff needs a 2-D selection".into());
    };
    let (Ok(h), Ok(w)) = (u32::try_from(*h), u32::try_from(*w)) else {
        return Err("this selection is too large for a tiff".into());
    };
    let DType::Scalar { kind, size, .. } = dt else {
        return Err(format!("tiff cannot hold {dt} items"));
    };
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut enc = TiffEncoder::new(&mut out).map_err(|e| e.to_string())?;
        let written = match (*kind, *size) {
            ('u' | 'b', 1) => enc.write_image::<ct::Gray8>(w, h, data),
            ('i', 1) => enc.write_image::<ct::GrayI8>(w, h, &le(data, i8::from_le_bytes)),
            ('u', 2) => enc.write_image::<ct::Gray16>(w, h, &le(data, u16::from_le_bytes)),
            ('i', 2) => enc.write_image::<ct::GrayI16>(w, h, &le(data, i16::from_le_bytes)),
            ('u', 4) => enc.write_image::<ct::Gray32>(w, h, &le(data, u32::from_le_bytes)),
            ('i', 4) => enc.write_image::<ct::GrayI32>(w, h, &le(data, i32::from_le_bytes)),
            ('u', 8) => enc.write_image::<ct::Gray64>(w, h, &le(data, u64::from_le_bytes)),
            ('i', 8) => enc.write_image::<ct::GrayI64>(w, h, &le(data, i64::from_le_bytes)),
            ('f', 4) => enc.write_image::<ct::Gray32Float>(w, h, &le(data, f32::from_le_bytes)),
            ('f', 8) => enc.write_image::<ct::Gray64Float>(w, h, &le(data, f64::from_le_bytes)),
            _ => return Err(format!("tiff cannot hold {dt} items")),
        };
        written.map_err(|e| e.to_string())?;
    }
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> DType {
        DType::parse(s).unwrap()
    }

    #[test]
    fn json_cells_bound_what_reads_no_bytes() {
        // [[1, 2], [3, 4]]: 1 + 2 arrays, 4 items.
        assert_eq!(json_cells(&dt("<i4"), &[2, 2]), 7);
        assert_eq!(json_cells(&dt("<i4"), &[]), 1);
        // A trillion empty rows, or items with a trillion empty sub-arrays.
        assert!(json_cells(&dt("<i4"), &[1_000_000_000_000, 0]) > 1_000_000_000_000);
        let empty = DType::Struct(vec![cat2_array::Field {
            name: "z".into(),
            dtype: dt("|u1"),
            shape: vec![1_000_000_000_000, 0],
        }]);
        assert!(json_cells(&empty, &[1]) > 1_000_000_000_000);
        assert_eq!(json_cells(&dt("<i4"), &[u64::MAX, u64::MAX]), u64::MAX);
    }

    #[test]
    fn selections_take_steps() {
        let p = pick(Some("0:5:2, 1"), &[10, 20]).unwrap();
        assert_eq!(
            (p.shape.clone(), p.bbox.ranges().to_vec()),
            (vec![3], vec![0..5, 1..2])
        );
        let data: Vec<u8> = (0..5u8).collect();
        assert_eq!(gather(data, &p, 1), vec![0, 2, 4]);
        assert_eq!(pick(Some("3,:"), &[10, 20]).unwrap().shape, vec![20]);
        assert_eq!(pick(None, &[]).unwrap().shape, Vec::<u64>::new());
        for bad in ["a", "::0", "::-1", "1,2,3", "99", "1:2:3:4"] {
            assert!(pick(Some(bad), &[10, 20]).is_err(), "{bad}");
        }
    }

    #[test]
    fn safe_and_json() {
        let (t, b) = to_safe(&dt(">u2"), vec![0, 1, 1, 0]).unwrap();
        assert_eq!((t.to_typestr(), b), ("<u2".to_owned(), vec![1, 0, 0, 1]));
        let data: Vec<u8> = (0u16..6).flat_map(u16::to_le_bytes).collect();
        assert_eq!(json_items(&dt("<u2"), &[2, 3], &data), b"[[0,1,2],[3,4,5]]");
        assert_eq!(json_items(&dt("<f4"), &[], &0.1f32.to_le_bytes()), b"0.1");
        assert!(check(&dt("|S6"), 1, Format::Npy, false).is_err());
    }
}
