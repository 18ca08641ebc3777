//! `show DATASET[SLICE]`: fetch a selection and print it (spec §4.1, §4.3).
//!
//! `/api/fetch` answers with Blosc2 data: a contiguous frame holding a b2nd array or a
//! super-chunk of bytes, or one standalone chunk of bytes. Pickles (what Caterva2 sends when
//! asked for `prefer_schunk=false`) are never requested and never decoded.

use std::io::Write;

use cat2_array::{DType, Selection};
use cat2_format::{Dataset, FormatError, Kind};
use serde_json::Value;

use crate::{Api, CliError, ShowArgs, values};

/// A decoded `/api/fetch` reply.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fetched {
    /// Bytes of a super-chunk (a `.b2frame` or a plain file).
    Bytes(Vec<u8>),
    /// An n-d array: its items as JSON (nested by shape), and as NumPy prints it.
    Array(Value, String),
}

/// Splits `DATASET[SLICE]` as Caterva2's `(.*)\[(.*)]` does for a slice at the end: the
/// dataset before the last `[`, the slice up to the final `]`. Without a final `[...]` the
/// whole argument is the dataset.
pub(crate) fn split_slice(arg: &str) -> (&str, Option<&str>) {
    if let Some(inner) = arg.strip_suffix(']') {
        if let Some(open) = inner.rfind('[') {
            return (&arg[..open], Some(&inner[open + 1..]));
        }
    }
    (arg, None)
}

/// Prints a dataset or a slice of it as Caterva2's `cat2cli show` does: bytes as their text
/// (`Binary data` when not UTF-8), arrays as NumPy prints them. With `--json`, bytes are one
/// JSON string and arrays nested JSON lists.
///
/// # Errors
/// Request errors, and replies that are not decodable Blosc2 data.
pub async fn cmd_show(args: &ShowArgs, api: &Api, out: &mut impl Write) -> Result<(), CliError> {
    let (dataset, slice) = split_slice(&args.dataset);
    let mut query = vec![("prefer_schunk", "true")];
    if let Some(s) = slice {
        query.insert(0, ("slice_", s));
    }
    let url = api.url("fetch", dataset)?.to_string();
    let body = api.get_bytes("fetch", dataset, &query).await?;
    let fetched = tokio::task::spawn_blocking(move || decode(&url, &body)).await??;
    match fetched {
        Fetched::Bytes(b) if args.json => {
            writeln!(out, "{}", Value::from(String::from_utf8_lossy(&b)))?;
        }
        // As Caterva2 prints them: the text, or this when it is not UTF-8.
        Fetched::Bytes(b) => match std::str::from_utf8(&b) {
            Ok(text) => writeln!(out, "{text}")?,
            Err(_) => writeln!(out, "Binary data")?,
        },
        Fetched::Array(v, _) if args.json => writeln!(out, "{v}")?,
        Fetched::Array(_, text) => writeln!(out, "{text}")?,
    }
    Ok(())
}

/// Whether `body` starts like a Blosc2 contiguous frame: a msgpack fixarray, then the
/// fixstr `"b2frame\0"`.
fn is_cframe(body: &[u8]) -> bool {
    body.len() >= 10 && body[0] & 0xf0 == 0x90 && body[1] == 0xa8 && &body[2..10] == b"b2frame\0"
}

/// Decodes a `/api/fetch` reply from `url` (blocking: file I/O and decompression).
pub(crate) fn decode(url: &str, body: &[u8]) -> Result<Fetched, CliError> {
    let bad = |reason: &str| CliError::BadReply {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    if is_cframe(body) {
        return decode_frame(body);
    }
    match body.first() {
        None => Err(bad("empty body")),
        Some(0x80) => Err(bad("a Python pickle, which cat2cli does not decode")),
        Some(1..=6) => Ok(Fetched::Bytes(cat2_format::chunk::decompress_standalone(
            body,
        )?)),
        Some(_) => Err(bad("neither a Blosc2 frame nor a Blosc2 chunk")),
    }
}

/// Decodes a contiguous frame: a b2nd array, else a super-chunk of bytes.
fn decode_frame(body: &[u8]) -> Result<Fetched, CliError> {
    let mut tmp = tempfile::NamedTempFile::new().map_err(CliError::io(std::env::temp_dir()))?;
    tmp.write_all(body).map_err(CliError::io(tmp.path()))?;
    tmp.flush().map_err(CliError::io(tmp.path()))?;
    let ds = match Dataset::open_as(tmp.path(), Kind::Array) {
        Err(FormatError::NotAnArray { .. }) => {
            let ds = Dataset::open_as(tmp.path(), Kind::Frame)?;
            let mut bytes = Vec::new();
            crate::download::write_chunks(&ds, &mut bytes, tmp.path())?;
            return Ok(Fetched::Bytes(bytes));
        }
        other => other?,
    };
    let array = ds
        .meta()
        .array
        .as_ref()
        .ok_or_else(|| FormatError::NotAnArray {
            path: tmp.path().into(),
        })?;
    let dtype = DType::parse(&array.dtype).map_err(FormatError::from)?;
    let data = ds.read(&Selection::all(ds.layout().shape()))?;
    let mismatch = || FormatError::BadMetadata {
        path: tmp.path().into(),
        reason: "the data does not match the shape and dtype".to_owned(),
    };
    let value = values::array_to_json(&dtype, &array.shape, &data).ok_or_else(mismatch)?;
    let text = crate::numpy_text::array_str(&dtype, &array.shape, &data).ok_or_else(mismatch)?;
    Ok(Fetched::Array(value, text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cat2_format::encode;

    fn show(dtype: &str, shape: &[u64], data: &[u8]) -> String {
        let frame = encode::b2nd_cframe(dtype, shape, data).unwrap();
        assert!(is_cframe(&frame));
        match decode("test", &frame).unwrap() {
            Fetched::Array(v, _) => v.to_string(),
            Fetched::Bytes(b) => panic!("bytes {b:?}"),
        }
    }

    fn le<T: Copy, const N: usize>(xs: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
        xs.iter().flat_map(|&x| f(x)).collect()
    }

    #[test]
    fn splits_slices() {
        assert_eq!(
            split_slice("foo/x.b2nd[0:2, 4:8]"),
            ("foo/x.b2nd", Some("0:2, 4:8"))
        );
        assert_eq!(split_slice("foo/x.b2nd"), ("foo/x.b2nd", None));
        assert_eq!(split_slice("foo/x.b2nd[]"), ("foo/x.b2nd", Some("")));
        assert_eq!(
            split_slice("foo/d[1]/x[2].b2nd[3]"),
            ("foo/d[1]/x[2].b2nd", Some("3"))
        );
        assert_eq!(split_slice("foo/x[1].txt"), ("foo/x[1].txt", None));
        assert_eq!(split_slice("foo/x]"), ("foo/x]", None));
    }

    #[test]
    fn integers_and_bools() {
        assert_eq!(show("|b1", &[3], &[1, 0, 1]), "[true,false,true]");
        assert_eq!(show("|i1", &[2], &[0xff, 7]), "[-1,7]");
        assert_eq!(show("|u1", &[2], &[0xff, 7]), "[255,7]");
        let d = le(&[-3i16, 300], i16::to_le_bytes);
        assert_eq!(show("<i2", &[2], &d), "[-3,300]");
        let d = le(&[65535u16, 1], u16::to_le_bytes);
        assert_eq!(show("<u2", &[1, 2], &d), "[[65535,1]]");
        let d = le(&[-70000i32, 5, 6, 7], i32::to_be_bytes);
        assert_eq!(show(">i4", &[2, 2], &d), "[[-70000,5],[6,7]]");
        let d = le(&[u32::MAX], u32::to_le_bytes);
        assert_eq!(show("<u4", &[1], &d), "[4294967295]");
        let d = le(&[i64::MIN, 0, 1], i64::to_le_bytes);
        assert_eq!(show("<i8", &[3], &d), "[-9223372036854775808,0,1]");
        let d = le(&[u64::MAX], u64::to_be_bytes);
        assert_eq!(show(">u8", &[1], &d), "[18446744073709551615]");
    }

    #[test]
    fn floats_and_complex() {
        assert_eq!(show("<f2", &[2], &[0x00, 0x3c, 0x00, 0xc0]), "[1.0,-2.0]");
        let d = le(&[0.1f32, f32::NAN, f32::INFINITY], f32::to_le_bytes);
        assert_eq!(show("<f4", &[3], &d), r#"[0.1,"nan","inf"]"#);
        let d = le(&[123.456f64], f64::to_le_bytes);
        assert_eq!(show("<f8", &[], &d), "123.456");
        let d = le(&[1.5f64, -2.0], f64::to_be_bytes);
        assert_eq!(show(">f8", &[2], &d), "[1.5,-2.0]");
        let d = le(&[1.0f32, -0.5, 3.0, 4.0], f32::to_le_bytes);
        assert_eq!(show("<c8", &[2], &d), "[[1.0,-0.5],[3.0,4.0]]");
        let d = le(&[0.25f64, f64::NEG_INFINITY], f64::to_le_bytes);
        assert_eq!(show("<c16", &[], &d), r#"[0.25,"-inf"]"#);
    }

    #[test]
    fn strings_and_structs() {
        assert_eq!(show("|S12", &[], b"Hello world!"), r#""Hello world!""#);
        assert_eq!(show("|S3", &[2], b"ab\0xyz"), r#"["ab","xyz"]"#);
        let u: Vec<u8> = "hé\0"
            .chars()
            .flat_map(|c| (c as u32).to_le_bytes())
            .collect();
        assert_eq!(show("<U3", &[1], &u), r#"["hé"]"#);
        let u: Vec<u8> = "ok"
            .chars()
            .flat_map(|c| (c as u32).to_be_bytes())
            .collect();
        assert_eq!(show(">U2", &[], &u), r#""ok""#);
        let mut rec = Vec::new();
        for (a, c, d) in [(1i32, *b"xy\0", 1u8), (-2, *b"abc", 0)] {
            rec.extend(a.to_le_bytes());
            rec.extend(c);
            rec.push(d);
        }
        let t = "[('a', '<i4'), ('c', 'S3'), ('d', '?')]";
        assert_eq!(show(t, &[2], &rec), r#"[[1,"xy",true],[-2,"abc",false]]"#);
        let t = "[('x', '<u2', (2,)), ('y', [('z', '|u1')])]";
        assert_eq!(show(t, &[], &[1, 0, 2, 0, 9]), "[[1,2],[9]]");
        assert_eq!(show("|V2", &[1], &[0xde, 0xad]), r#"["0xdead"]"#);
    }

    #[test]
    fn empty_and_scalar_arrays() {
        assert_eq!(show("<u2", &[0, 20], &[]), "[]");
        assert_eq!(show("<f8", &[0, 3, 4, 5], &[]), "[]");
        assert_eq!(show("<i8", &[], &7i64.to_le_bytes()), "7");
    }

    #[test]
    fn bytes_replies() {
        let text = b"Hello world! This is a super-chunk of bytes.".repeat(10);
        let frame = encode::schunk_cframe(1, &text).unwrap();
        assert_eq!(decode("t", &frame).unwrap(), Fetched::Bytes(text.clone()));
        let chunk = encode::single_chunk(1, &text).unwrap();
        assert_eq!(decode("t", &chunk).unwrap(), Fetched::Bytes(text));
        for bad in [&b""[..], b"\x80\x05\x95", b"<html>", b"\x05garbage"] {
            assert!(decode("t", bad).is_err(), "{bad:?}");
        }
    }
}
