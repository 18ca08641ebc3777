//! Reading NumPy items: as `f64` for drawing ([`Numeric`]), and as the text of a table cell
//! ([`cell`]).

use cat2_array::DType;

use crate::ViewError;

/// What a complex item is drawn as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Complex {
    /// Its modulus.
    #[default]
    Abs,
    /// Its argument (radians).
    Phase,
    /// Its real part.
    Real,
    /// Its imaginary part.
    Imag,
}

impl Complex {
    /// Every mode, in menu order.
    pub const ALL: [Complex; 4] = [Complex::Abs, Complex::Phase, Complex::Real, Complex::Imag];

    /// Its name in URLs.
    pub fn name(self) -> &'static str {
        match self {
            Complex::Abs => "abs",
            Complex::Phase => "phase",
            Complex::Real => "re",
            Complex::Imag => "im",
        }
    }

    /// The mode named `s`.
    ///
    /// # Errors
    /// [`ViewError::Unknown`] for other names.
    pub fn parse(s: &str) -> Result<Self, ViewError> {
        Self::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| ViewError::Unknown {
                what: "complex mode",
                given: s.to_owned(),
                known: "abs, phase, re, im",
            })
    }
}

/// How to read items of one numeric dtype as `f64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numeric {
    kind: char,
    size: usize,
    big: bool,
    cplx: Complex,
}

impl Numeric {
    /// A reader for `dtype` (bool, ints, floats of 2, 4 or 8 bytes, complex of 8 or 16).
    ///
    /// # Errors
    /// [`ViewError::NotNumeric`] for other types.
    pub fn new(dtype: &DType, cplx: Complex) -> Result<Self, ViewError> {
        let not = || ViewError::NotNumeric(dtype.to_string());
        let DType::Scalar {
            order, kind, size, ..
        } = dtype
        else {
            return Err(not());
        };
        let ok = match kind {
            'b' => *size == 1,
            'i' | 'u' => matches!(size, 1 | 2 | 4 | 8),
            'f' => matches!(size, 2 | 4 | 8),
            'c' => matches!(size, 8 | 16),
            _ => false,
        };
        if !ok {
            return Err(not());
        }
        Ok(Self {
            kind: *kind,
            size: *size,
            big: *order == '>',
            cplx,
        })
    }

    /// Whether the type is complex.
    pub fn is_complex(&self) -> bool {
        self.kind == 'c'
    }

    /// Bytes per item.
    pub fn itemsize(&self) -> usize {
        self.size
    }

    /// The value of one item (`item` holds exactly [`Numeric::itemsize`] bytes).
    pub fn get(&self, item: &[u8]) -> f64 {
        let mut b = [0u8; 16];
        let n = self.size.min(item.len()).min(16);
        b[..n].copy_from_slice(&item[..n]);
        if self.big {
            // Each part on its own: a complex is two floats.
            let part = if self.kind == 'c' { n / 2 } else { n };
            for p in b[..n].chunks_mut(part.max(1)) {
                p.reverse();
            }
        }
        let le8 = |s: &[u8]| -> [u8; 8] { s.try_into().unwrap_or([0; 8]) };
        let le4 = |s: &[u8]| -> [u8; 4] { s.try_into().unwrap_or([0; 4]) };
        match (self.kind, self.size) {
            ('b', _) => f64::from(u8::from(b[0] != 0)),
            ('i', 1) => f64::from(b[0] as i8),
            ('i', 2) => f64::from(i16::from_le_bytes([b[0], b[1]])),
            ('i', 4) => f64::from(i32::from_le_bytes(le4(&b[..4]))),
            ('i', _) => i64::from_le_bytes(le8(&b[..8])) as f64,
            ('u', 1) => f64::from(b[0]),
            ('u', 2) => f64::from(u16::from_le_bytes([b[0], b[1]])),
            ('u', 4) => f64::from(u32::from_le_bytes(le4(&b[..4]))),
            ('u', _) => u64::from_le_bytes(le8(&b[..8])) as f64,
            ('f', 2) => f64::from(half::f16::from_le_bytes([b[0], b[1]])),
            ('f', 4) => f64::from(f32::from_le_bytes(le4(&b[..4]))),
            ('f', _) => f64::from_le_bytes(le8(&b[..8])),
            (_, 8) => self.complex(
                f64::from(f32::from_le_bytes(le4(&b[..4]))),
                f64::from(f32::from_le_bytes(le4(&b[4..8]))),
            ),
            _ => self.complex(
                f64::from_le_bytes(le8(&b[..8])),
                f64::from_le_bytes(le8(&b[8..16])),
            ),
        }
    }

    fn complex(&self, re: f64, im: f64) -> f64 {
        match self.cplx {
            Complex::Abs => re.hypot(im),
            Complex::Phase => im.atan2(re),
            Complex::Real => re,
            Complex::Imag => im,
        }
    }

    /// Every item of `bytes`.
    pub fn all(&self, bytes: &[u8]) -> Vec<f64> {
        bytes
            .chunks_exact(self.size.max(1))
            .map(|i| self.get(i))
            .collect()
    }
}

/// A float as NumPy prints it in arrays: `1.0`, `0.5`, `1e-07`, `nan`, `inf`.
pub fn float_text(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        return format!("{v:e}");
    }
    if v.fract() == 0.0 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// The text of each field of one structured item (sub-arrays as `[a, b, …]`).
pub fn field_cells(fields: &[cat2_array::Field], item: &[u8]) -> Vec<String> {
    let mut at = 0usize;
    let mut parts = Vec::with_capacity(fields.len());
    for f in fields {
        let n: usize = f.shape.iter().map(|&d| d as usize).product();
        let size = f.dtype.itemsize();
        let end = at.saturating_add(size.saturating_mul(n)).min(item.len());
        let bytes = item.get(at..end).unwrap_or(&[]);
        parts.push(if f.shape.is_empty() {
            cell(&f.dtype, bytes)
        } else {
            let items: Vec<String> = bytes
                .chunks(size.max(1))
                .map(|i| cell(&f.dtype, i))
                .collect();
            format!("[{}]", items.join(", "))
        });
        at = end;
    }
    parts
}

/// The text of one item of `dtype` in a table cell.
pub fn cell(dtype: &DType, item: &[u8]) -> String {
    match dtype {
        DType::Struct(fields) => format!("({})", field_cells(fields, item).join(", ")),
        DType::Scalar {
            order,
            kind,
            size,
            unit,
        } => scalar_cell(*order, *kind, *size, unit, item),
    }
}

fn scalar_cell(order: char, kind: char, size: usize, unit: &str, item: &[u8]) -> String {
    let big = order == '>';
    match kind {
        'S' => {
            let end = item.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
            String::from_utf8_lossy(&item[..end]).into_owned()
        }
        'U' => {
            let s: String = item
                .chunks_exact(4)
                .map(|c| {
                    let a = [c[0], c[1], c[2], c[3]];
                    if big {
                        u32::from_be_bytes(a)
                    } else {
                        u32::from_le_bytes(a)
                    }
                })
                .map(|u| char::from_u32(u).unwrap_or('\u{fffd}'))
                .collect();
            s.trim_end_matches('\0').to_owned()
        }
        'V' => item.iter().map(|b| format!("{b:02x}")).collect(),
        'M' | 'm' => {
            let mut b = [0u8; 8];
            let k = item.len().min(8);
            b[..k].copy_from_slice(&item[..k]);
            let raw = if big {
                i64::from_be_bytes(b)
            } else {
                i64::from_le_bytes(b)
            };
            if raw == i64::MIN {
                "NaT".into()
            } else if unit.is_empty() {
                raw.to_string()
            } else {
                format!("{raw} {unit}")
            }
        }
        _ => {
            let dt = DType::Scalar {
                order,
                kind,
                size,
                unit: String::new(),
            };
            let Ok(n) = Numeric::new(&dt, Complex::Real) else {
                return "?".into();
            };
            match kind {
                'b' => if item.first().copied().unwrap_or(0) != 0 {
                    "True"
                } else {
                    "False"
                }
                .into(),
                'i' | 'u' => int_text(kind, size, big, item),
                'f' => float_text(n.get(item)),
                _ => {
                    let re = n.get(item);
                    let im = Numeric {
                        cplx: Complex::Imag,
                        ..n
                    }
                    .get(item);
                    let p = |v: f64| {
                        if v.fract() == 0.0 && v.abs() < 1e16 {
                            format!("{v}")
                        } else {
                            float_text(v)
                        }
                    };
                    let sign = if im.is_sign_negative() { '-' } else { '+' };
                    format!("{}{sign}{}j", p(re), p(im.abs()))
                }
            }
        }
    }
}

/// Integers exactly (an i64/u64 through f64 would round).
fn int_text(kind: char, size: usize, big: bool, item: &[u8]) -> String {
    let mut b = [0u8; 8];
    let k = size.min(item.len()).min(8);
    b[..k].copy_from_slice(&item[..k]);
    if big {
        b[..k].reverse();
    }
    let u = u64::from_le_bytes(b);
    if kind == 'u' {
        return u.to_string();
    }
    let shift = 64 - 8 * k as u32;
    (((u << shift) as i64) >> shift).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> DType {
        DType::parse(s).unwrap()
    }

    #[test]
    fn numbers_of_every_width_and_order() {
        let n = Numeric::new(&dt("<u2"), Complex::Abs).unwrap();
        assert_eq!(n.all(&[1, 0, 0, 1]), vec![1.0, 256.0]);
        let n = Numeric::new(&dt(">i4"), Complex::Abs).unwrap();
        assert_eq!(n.get(&(-7i32).to_be_bytes()), -7.0);
        let n = Numeric::new(&dt("<f2"), Complex::Abs).unwrap();
        assert_eq!(n.get(&half::f16::from_f32(1.5).to_le_bytes()), 1.5);
        let mut c = 3f64.to_le_bytes().to_vec();
        c.extend(4f64.to_le_bytes());
        assert_eq!(
            Numeric::new(&dt("<c16"), Complex::Abs).unwrap().get(&c),
            5.0
        );
        assert_eq!(
            Numeric::new(&dt("<c16"), Complex::Imag).unwrap().get(&c),
            4.0
        );
        let mut c = 3f32.to_be_bytes().to_vec();
        c.extend((-4f32).to_be_bytes());
        assert_eq!(
            Numeric::new(&dt(">c8"), Complex::Imag).unwrap().get(&c),
            -4.0
        );
        assert_eq!(
            Numeric::new(&dt("|b1"), Complex::Abs).unwrap().get(&[2]),
            1.0
        );
        assert!(Numeric::new(&dt("|S6"), Complex::Abs).is_err());
        assert!(Numeric::new(&dt("<M8[s]"), Complex::Abs).is_err());
    }

    #[test]
    fn cells_read_like_numpy() {
        assert_eq!(cell(&dt("<i8"), &(-67i64).to_le_bytes()), "-67");
        assert_eq!(
            cell(&dt("<u8"), &u64::MAX.to_le_bytes()),
            u64::MAX.to_string()
        );
        assert_eq!(cell(&dt("<f8"), &1f64.to_le_bytes()), "1.0");
        assert_eq!(cell(&dt("<f4"), &0.5f32.to_le_bytes()), "0.5");
        assert_eq!(cell(&dt("<f8"), &1e-7f64.to_le_bytes()), "1e-7");
        assert_eq!(cell(&dt("|S6"), b"foo\0\0\0"), "foo");
        let u: Vec<u8> = "hé"
            .chars()
            .flat_map(|c| (c as u32).to_le_bytes())
            .chain([0; 4])
            .collect();
        assert_eq!(cell(&dt("<U3"), &u), "hé");
        let mut c = 119f64.to_le_bytes().to_vec();
        c.extend(119f64.to_le_bytes());
        assert_eq!(cell(&dt("<c16"), &c), "119+119j");
        assert_eq!(cell(&dt("|b1"), &[0]), "False");
        let s = dt("[('a', '<i4'), ('d', '?')]");
        assert_eq!(cell(&s, &[5, 0, 0, 0, 1]), "(5, True)");
        assert_eq!(cell(&dt("<M8[s]"), &i64::MIN.to_le_bytes()), "NaT");
    }
}
