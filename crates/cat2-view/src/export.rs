//! Selections as files: `.npy` (NumPy's format 1.0/2.0) and `.csv` (one line per row of the
//! last dimension, cells as the table shows them).

use cat2_array::DType;

use crate::values::cell;

/// NumPy's `.npy` bytes for `data` (C order) of `dtype` and `shape`.
pub fn npy(dtype: &DType, shape: &[u64], data: &[u8]) -> Vec<u8> {
    let descr = match dtype {
        DType::Scalar { .. } => format!("'{}'", dtype.to_typestr()),
        // A structured dtype's str() is the list `np.lib.format` reads back.
        DType::Struct(_) => dtype.to_string(),
    };
    let shape_txt = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header =
        format!("{{'descr': {descr}, 'fortran_order': False, 'shape': {shape_txt}, }}");
    // Version 1.0 has a 2-byte header length; longer headers need 2.0 (4 bytes).
    let v1 = header.len() + 11 < 65_000;
    let pre = if v1 { 10 } else { 12 };
    let total = (pre + header.len() + 1).div_ceil(64) * 64;
    header.push_str(&" ".repeat(total - pre - header.len() - 1));
    header.push('\n');
    let mut out = Vec::with_capacity(total + data.len());
    out.extend(b"\x93NUMPY");
    if v1 {
        out.extend([1, 0]);
        out.extend((header.len() as u16).to_le_bytes());
    } else {
        out.extend([2, 0]);
        out.extend((header.len() as u32).to_le_bytes());
    }
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

/// CSV text for `data` (C order) of `dtype` and `shape`: a 0-d or 1-d selection has one value
/// per line, higher ones one line per row of their last dimension. Cells holding `,`, `"` or a
/// line break are quoted.
pub fn csv(dtype: &DType, shape: &[u64], data: &[u8]) -> String {
    let size = dtype.itemsize().max(1);
    let per_line = if shape.len() >= 2 {
        shape.last().copied().unwrap_or(1).max(1) as usize
    } else {
        1
    };
    let mut out = String::new();
    for line in data.chunks(size * per_line) {
        let cells: Vec<String> = line.chunks(size).map(|i| quote(cell(dtype, i))).collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

fn quote(s: String) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_aligned_and_exact() {
        let dt = DType::parse("<i8").unwrap();
        let data: Vec<u8> = (10i64..20).flat_map(i64::to_le_bytes).collect();
        let f = npy(&dt, &[10], &data);
        assert_eq!(&f[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([f[8], f[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let header = std::str::from_utf8(&f[10..10 + hlen]).unwrap();
        assert!(header.starts_with("{'descr': '<i8', 'fortran_order': False, 'shape': (10,), }"));
        assert!(header.ends_with('\n'));
        assert_eq!(&f[10 + hlen..], &data[..]);
        let s = DType::parse("[('a', '<i4'), ('b', 'S2')]").unwrap();
        let h = npy(&s, &[2, 3], &[]);
        assert!(String::from_utf8_lossy(&h).contains("'descr': [('a', '<i4'), ('b', 'S2')]"));
        assert!(String::from_utf8_lossy(&h).contains("'shape': (2, 3)"));
    }

    #[test]
    fn csv_rows_and_quotes() {
        let dt = DType::parse("<u2").unwrap();
        let data: Vec<u8> = (0u16..6).flat_map(u16::to_le_bytes).collect();
        assert_eq!(csv(&dt, &[2, 3], &data), "0,1,2\n3,4,5\n");
        assert_eq!(csv(&dt, &[6], &data).lines().count(), 6);
        let s = DType::parse("|S3").unwrap();
        assert_eq!(csv(&s, &[1], b"a,b"), "\"a,b\"\n");
    }
}
