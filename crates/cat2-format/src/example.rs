//! The example root of spec §5 (Caterva2's `root-example/`), made with cat2's own writers.

use std::path::Path;

use crate::FormatError;
use crate::encode::{write_b2nd_file, write_frame_file};

/// Text of `README.md`.
pub const README: &str = "This is a simple example,\nwith several lines,\nfor showing purposes.\n";

fn le<T: Copy, const N: usize>(
    items: impl Iterator<Item = T>,
    to: impl Fn(T) -> [u8; N],
) -> Vec<u8> {
    items.flat_map(to).collect()
}

/// Writes the eight files of the example root into `dir` (created if missing; existing files
/// are replaced).
///
/// # Errors
/// I/O and c-blosc2 errors.
pub fn write_root_example(dir: &Path) -> Result<(), FormatError> {
    for sub in ["", "dir1", "dir2"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(FormatError::io(dir.join(sub)))?;
    }
    let readme = dir.join("README.md");
    std::fs::write(&readme, README).map_err(FormatError::io(&readme))?;
    write_frame_file(
        &dir.join("ds-hello.b2frame"),
        1,
        100,
        &b"Hello world!".repeat(100),
    )?;
    let f = |name: &str| dir.join(name);
    write_b2nd_file(
        &f("ds-1d.b2nd"),
        "<i8",
        &[1000],
        &[100],
        &[10],
        &le(0..1000i64, i64::to_le_bytes),
        &[],
    )?;
    write_b2nd_file(
        &f("ds-1d-b.b2nd"),
        "|S6",
        &[1000],
        &[100],
        &[10],
        &b"foobar".repeat(1000),
        &[],
    )?;
    let foobar_u6: Vec<u8> = le("foobar".chars().map(|c| c as u32), u32::to_le_bytes);
    let attrs = vec![
        ("a".to_owned(), serde_json::json!(1)),
        ("b".to_owned(), serde_json::json!("foo")),
        ("c".to_owned(), serde_json::json!(123.456)),
    ];
    write_b2nd_file(
        &f("ds-sc-attr.b2nd"),
        "<U6",
        &[],
        &[],
        &[],
        &foobar_u6,
        &attrs,
    )?;
    write_b2nd_file(
        &f("dir1/ds-2d.b2nd"),
        "<u2",
        &[10, 20],
        &[5, 5],
        &[2, 3],
        &le(0..200u16, u16::to_le_bytes),
        &[],
    )?;
    let a3 = le((0..60u8).map(f32::from), f32::to_le_bytes);
    write_b2nd_file(
        &f("dir1/ds-3d.b2nd"),
        "<f4",
        &[3, 4, 5],
        &[2, 3, 4],
        &[2, 2, 2],
        &a3,
        &[],
    )?;
    let a4: Vec<u8> = (0..120u8)
        .flat_map(|v| [f64::from(v).to_le_bytes(), f64::from(v).to_le_bytes()].concat())
        .collect();
    write_b2nd_file(
        &f("dir2/ds-4d.b2nd"),
        "<c16",
        &[2, 3, 4, 5],
        &[1, 2, 3, 4],
        &[1, 2, 2, 2],
        &a4,
        &[],
    )?;
    Ok(())
}
