//! Arrays printed as NumPy's `str(array)` prints them (what Caterva2's `cat2cli show`
//! prints): NumPy's default print options (75-column lines, summaries past 1000 items with 3
//! items at each edge, 8 digits at most, `maxprec` float mode), its per-kind formats
//! (`arrayprint.py`: integers right-aligned to a common width, floats aligned on the point
//! with the shortest digits that read back, scientific notation when the values span more
//! than 1000× or leave `[1e-4, 1e8)`, complex numbers as two such columns, ` True`/`False`,
//! `b'…'` for bytes), and 0-d arrays as NumPy scalars.

use cat2_array::DType;

use crate::values::{f16_to_f32, signed, unsigned};

const LINE_WIDTH: usize = 75;
const THRESHOLD: u64 = 1000;
const EDGE: u64 = 3;
const PRECISION: usize = 8;

/// One decoded item.
#[derive(Debug, Clone)]
enum Elem {
    Bool(bool),
    Int(i128),
    /// A float, and the bytes of its type (its shortest digits are those of that type).
    Float(f64, u8),
    Complex(f64, f64, u8),
    Bytes(Vec<u8>),
    Str(String),
    Record(Vec<Elem>),
    /// Kinds NumPy prints in ways cat2cli does not reproduce (datetimes, sub-arrays, …).
    Other(String),
}

fn decode(dtype: &DType, b: &[u8]) -> Elem {
    let (order, kind, size) = match dtype {
        DType::Scalar {
            order, kind, size, ..
        } => (*order, *kind, *size),
        DType::Struct(fields) => {
            let mut at = 0usize;
            let mut out = Vec::new();
            for f in fields {
                let len = f.dtype.itemsize() * f.shape.iter().product::<u64>() as usize;
                let part = b.get(at..at + len).unwrap_or(&[]);
                at += len;
                out.push(if f.shape.is_empty() {
                    decode(&f.dtype, part)
                } else {
                    Elem::Other(format!("{part:?}"))
                });
            }
            return Elem::Record(out);
        }
    };
    let big = order == '>';
    let float = |b: &[u8]| -> (f64, u8) {
        let bits = unsigned(b, big);
        match b.len() {
            2 => (f64::from(f16_to_f32(bits as u16)), 2),
            4 => (f64::from(f32::from_bits(bits as u32)), 4),
            _ => (f64::from_bits(bits), 8),
        }
    };
    match (kind, size) {
        ('b', 1) => Elem::Bool(b[0] != 0),
        ('i', 1 | 2 | 4 | 8) => Elem::Int(i128::from(signed(b, big))),
        ('u', 1 | 2 | 4 | 8) => Elem::Int(i128::from(unsigned(b, big))),
        ('f', 2 | 4 | 8) => {
            let (x, single) = float(b);
            Elem::Float(x, single)
        }
        ('c', 8 | 16) => {
            let (re, im) = b.split_at(size / 2);
            let ((r, single), (i, _)) = (float(re), float(im));
            Elem::Complex(r, i, single)
        }
        ('S', _) => {
            let end = b.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
            Elem::Bytes(b[..end].to_vec())
        }
        ('U', _) => {
            let s: String = b
                .chunks_exact(4)
                .map(|c| {
                    u32::try_from(unsigned(c, big))
                        .ok()
                        .and_then(char::from_u32)
                        .unwrap_or(char::REPLACEMENT_CHARACTER)
                })
                .collect();
            Elem::Str(s.trim_end_matches('\0').to_owned())
        }
        _ => Elem::Other(b.iter().map(|x| format!("{x:02x}")).collect()),
    }
}

/// For a half-precision `x`: the f64 with the fewest significant digits that reads back as
/// `x` (nearer to it than to either neighbouring half), so its own shortest text is NumPy's.
fn half_shortest(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let h = f32_to_f16_bits(x as f32);
    let near = |d: i32| f64::from(f16_to_f32((i32::from(h) + d) as u16));
    let (lo, mut hi) = (near(-1), near(1));
    if hi.is_infinite() {
        // Past the largest half, values round to infinity: its step is the boundary.
        hi = x + (x - lo);
    }
    for digits in 1..=5usize {
        let v: f64 = format!("{x:.*e}", digits - 1).parse().unwrap_or(x);
        if (v - x).abs() < (v - lo).abs() && (v - x).abs() < (v - hi).abs() {
            return v;
        }
    }
    x
}

/// The bits of a half-precision value given exactly as an f32 (decoded from half bits, so
/// nothing is rounded): the f32's fields moved to the half's.
fn f32_to_f16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let a = x.abs();
    if a.is_infinite() || a >= 65536.0 {
        return sign | 0x7c00;
    }
    if a < 2f32.powi(-14) {
        // Subnormal halves: multiples of 2^-24.
        return sign | (a * 2f32.powi(24)) as u16;
    }
    let exp = ((b >> 23) & 0xff) as i32 - 127 + 15;
    sign | ((exp as u16) << 10) | ((b >> 13) & 0x3ff) as u16
}

/// Shortest digits that read back as `x` in its own precision.
fn shortest(x: f64, prec: u8) -> String {
    match prec {
        2 => half_shortest(x).to_string(),
        4 => (x as f32).to_string(),
        _ => x.to_string(),
    }
}

fn shortest_exp(x: f64, prec: u8) -> String {
    match prec {
        2 => format!("{:e}", half_shortest(x)),
        4 => format!("{:e}", x as f32),
        _ => format!("{x:e}"),
    }
}

/// `x` positional, `unique` digits but at most [`PRECISION`] after the point, trailing zeros
/// trimmed, the point kept (`1.`); `plus` signs non-negatives.
fn positional(x: f64, prec: u8, plus: bool) -> (String, String) {
    let mut s = shortest(x, prec);
    let frac_len = s.split_once('.').map_or(0, |(_, f)| f.len());
    if frac_len > PRECISION {
        s = format!("{x:.PRECISION$}");
        s.truncate(s.trim_end_matches('0').len());
    }
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    let int = if plus && !int.starts_with('-') {
        format!("+{int}")
    } else {
        int.to_owned()
    };
    (int, frac.to_owned())
}

/// `x` scientific: (integer digit with sign, fraction digits, exponent digits, exponent sign).
fn scientific(x: f64, prec: u8, plus: bool) -> (String, String, String, char) {
    let mut s = shortest_exp(x, prec);
    let (m, e) = s
        .split_once('e')
        .map_or((s.clone(), "0".to_owned()), |(m, e)| {
            (m.to_owned(), e.to_owned())
        });
    let frac_len = m.split_once('.').map_or(0, |(_, f)| f.len());
    let (m, e) = if frac_len > PRECISION {
        s = format!("{x:.PRECISION$e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let m = m.trim_end_matches('0').to_owned();
        (m, e.to_owned())
    } else {
        (m, e)
    };
    let (int, frac) = m.split_once('.').unwrap_or((&m, ""));
    let int = if plus && !int.starts_with('-') {
        format!("+{int}")
    } else {
        int.to_owned()
    };
    let (esign, edigits) = match e.strip_prefix('-') {
        Some(d) => ('-', d.to_owned()),
        None => ('+', e),
    };
    (int, frac.trim_end_matches('.').to_owned(), edigits, esign)
}

/// NumPy's `FloatingFormat` in `maxprec` mode, fitted to `values`.
struct FloatFmt {
    prec: u8,
    plus: bool,
    exp: bool,
    pad_left: usize,
    pad_right: usize,
    precision: usize,
    exp_size: usize,
}

impl FloatFmt {
    fn new(values: &[f64], prec: u8, plus: bool) -> Self {
        let finite: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        let nonzero: Vec<f64> = finite
            .iter()
            .map(|x| x.abs())
            .filter(|&x| x != 0.0)
            .collect();
        let mut f = Self {
            prec,
            plus,
            exp: false,
            pad_left: 0,
            pad_right: 0,
            precision: PRECISION,
            exp_size: 0,
        };
        if let (Some(max), Some(min)) = (
            nonzero.iter().copied().reduce(f64::max),
            nonzero.iter().copied().reduce(f64::min),
        ) {
            f.exp = max >= 1e8 || min < 1e-4 || max / min > 1000.0;
        }
        if finite.is_empty() {
            f.exp = false;
        } else if f.exp {
            let parts: Vec<_> = finite.iter().map(|&x| scientific(x, prec, plus)).collect();
            f.exp_size = parts.iter().map(|p| p.2.len()).max().unwrap_or(0).max(2);
            f.precision = parts.iter().map(|p| p.1.len()).max().unwrap_or(0);
            f.pad_left = parts.iter().map(|p| p.0.len()).max().unwrap_or(0);
            f.pad_right = f.exp_size + 2 + f.precision;
        } else {
            let parts: Vec<_> = finite.iter().map(|&x| positional(x, prec, plus)).collect();
            f.pad_left = parts.iter().map(|p| p.0.len()).max().unwrap_or(0);
            f.pad_right = parts.iter().map(|p| p.1.len()).max().unwrap_or(0);
        }
        if finite.len() != values.len() {
            let neginf = plus || values.iter().any(|x| x.is_infinite() && *x < 0.0);
            let offset = f.pad_right + 1;
            f.pad_left = f
                .pad_left
                .max(3usize.saturating_sub(offset))
                .max((3 + usize::from(neginf)).saturating_sub(offset));
        }
        f
    }

    fn format(&self, x: f64) -> String {
        if !x.is_finite() {
            let s = if x.is_nan() {
                if self.plus { "+nan" } else { "nan" }.to_owned()
            } else if x < 0.0 {
                "-inf".to_owned()
            } else if self.plus {
                "+inf".to_owned()
            } else {
                "inf".to_owned()
            };
            let width = self.pad_left + self.pad_right + 1;
            return format!("{s:>width$}");
        }
        if self.exp {
            // NumPy's `min_digits`: every value gets `precision` digits, of its exact value.
            let (pl, p, es) = (self.pad_left, self.precision, self.exp_size);
            let s = format!("{x:.p$e}");
            let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
            let m = if self.plus && !m.starts_with('-') {
                format!("+{m}")
            } else {
                m.to_owned()
            };
            let (int, frac) = m.split_once('.').unwrap_or((&m, ""));
            let (esign, e) = e.strip_prefix('-').map_or(('+', e), |d| ('-', d));
            format!("{int:>pl$}.{frac}e{esign}{e:0>es$}")
        } else {
            let (int, frac) = positional(x, self.prec, self.plus);
            let (pl, pr) = (self.pad_left, self.pad_right);
            format!("{int:>pl$}.{frac:<pr$}")
        }
    }
}

/// Python's `repr` of bytes.
fn bytes_repr(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut s = String::from("b");
    s.push(quote);
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            c if c as char == quote => {
                s.push('\\');
                s.push(quote);
            }
            0x20..=0x7e => s.push(c as char),
            c => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push(quote);
    s
}

/// Python's `repr` of a str.
fn str_repr(t: &str) -> String {
    let quote = if t.contains('\'') && !t.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut s = String::from(quote);
    for c in t.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if c == quote => {
                s.push('\\');
                s.push(quote);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                s.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => s.push(c),
        }
    }
    s.push(quote);
    s
}

/// The format of one column of items (all items of the array, or of one record field).
enum Column {
    Bool,
    Int(usize),
    Float(FloatFmt),
    Complex(FloatFmt, FloatFmt),
    Repr,
    Record(Vec<Column>),
}

impl Column {
    fn fit(items: &[&Elem]) -> Self {
        match items.first() {
            Some(Elem::Bool(_)) => Self::Bool,
            Some(Elem::Int(_)) => {
                let w = items
                    .iter()
                    .filter_map(|e| match e {
                        Elem::Int(i) => Some(i.to_string().len()),
                        _ => None,
                    })
                    .max()
                    .unwrap_or(0);
                Self::Int(w)
            }
            Some(Elem::Float(_, single)) => {
                let v: Vec<f64> = items
                    .iter()
                    .filter_map(|e| match e {
                        Elem::Float(x, _) => Some(*x),
                        _ => None,
                    })
                    .collect();
                Self::Float(FloatFmt::new(&v, *single, false))
            }
            Some(Elem::Complex(_, _, single)) => {
                let (re, im): (Vec<f64>, Vec<f64>) = items
                    .iter()
                    .filter_map(|e| match e {
                        Elem::Complex(r, i, _) => Some((*r, *i)),
                        _ => None,
                    })
                    .unzip();
                Self::Complex(
                    FloatFmt::new(&re, *single, false),
                    FloatFmt::new(&im, *single, true),
                )
            }
            Some(Elem::Record(fields)) => Self::Record(
                (0..fields.len())
                    .map(|i| {
                        let col: Vec<&Elem> = items
                            .iter()
                            .filter_map(|e| match e {
                                Elem::Record(f) => f.get(i),
                                _ => None,
                            })
                            .collect();
                        Self::fit(&col)
                    })
                    .collect(),
            ),
            _ => Self::Repr,
        }
    }

    fn format(&self, e: &Elem) -> String {
        match (self, e) {
            (Self::Bool, Elem::Bool(b)) => if *b { " True" } else { "False" }.to_owned(),
            (Self::Int(w), Elem::Int(i)) => format!("{i:>w$}"),
            (Self::Float(f), Elem::Float(x, _)) => f.format(*x),
            (Self::Complex(fr, fi), Elem::Complex(r, i, _)) => {
                let (r, i) = (fr.format(*r), fi.format(*i));
                let sp = i.trim_end().len();
                format!("{r}{}j{}", &i[..sp], " ".repeat(i.len() - sp))
            }
            (Self::Record(cols), Elem::Record(fields)) => {
                let parts: Vec<String> =
                    cols.iter().zip(fields).map(|(c, f)| c.format(f)).collect();
                if parts.len() == 1 {
                    format!("({},)", parts[0])
                } else {
                    format!("({})", parts.join(", "))
                }
            }
            (_, e) => repr(e),
        }
    }
}

fn repr(e: &Elem) -> String {
    match e {
        Elem::Bytes(b) => bytes_repr(b),
        Elem::Str(s) => str_repr(s),
        Elem::Other(s) => s.clone(),
        other => scalar_str(other),
    }
}

/// Python's `repr` of a float (`1.0`, `1e-05`, `1e+16`), in `x`'s own precision.
fn py_float(x: f64, prec: u8) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf" } else { "inf" }.into();
    }
    let a = x.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        let (int, frac, e, esign) = scientific(x, prec, false);
        let m = if frac.is_empty() {
            int
        } else {
            format!("{int}.{frac}")
        };
        return format!("{m}e{esign}{e:0>2}");
    }
    let s = shortest(x, prec);
    if s.contains('.') { s } else { format!("{s}.0") }
}

/// `str` of a NumPy scalar (0-d arrays print as their item).
fn scalar_str(e: &Elem) -> String {
    match e {
        Elem::Bool(b) => if *b { "True" } else { "False" }.to_owned(),
        Elem::Int(i) => i.to_string(),
        Elem::Float(x, single) => py_float(*x, *single),
        Elem::Complex(r, i, single) => {
            let strip = |s: String| s.strip_suffix(".0").map(str::to_owned).unwrap_or(s);
            let im = strip(py_float(*i, *single));
            if *r == 0.0 && !r.is_sign_negative() {
                format!("{im}j")
            } else {
                let sign = if im.starts_with('-') { "" } else { "+" };
                format!("({}{sign}{im}j)", strip(py_float(*r, *single)))
            }
        }
        Elem::Bytes(b) => bytes_repr(b),
        Elem::Str(s) => s.clone(),
        Elem::Record(f) => {
            let parts: Vec<String> = f.iter().map(repr).collect();
            format!("({})", parts.join(", "))
        }
        Elem::Other(s) => s.clone(),
    }
}

/// The items of `shape` shown: all, or when summarised the first and last [`EDGE`] of each
/// axis longer than twice that.
fn shown(shape: &[u64], summary: bool) -> Vec<Vec<u64>> {
    shape
        .iter()
        .map(|&n| {
            if summary && n > 2 * EDGE {
                (0..EDGE).chain(n - EDGE..n).collect()
            } else {
                (0..n).collect()
            }
        })
        .collect()
}

/// `data` (C order) of an array of `dtype` and `shape` as `str(array)` prints it; `None`
/// when the data does not hold the shape's items.
pub(crate) fn array_str(dtype: &DType, shape: &[u64], data: &[u8]) -> Option<String> {
    let size = dtype.itemsize();
    let n: u64 = shape.iter().product();
    if (n as usize).checked_mul(size)? != data.len() {
        return None;
    }
    let elems: Vec<Elem> = if size == 0 {
        (0..n).map(|_| Elem::Other(String::new())).collect()
    } else {
        data.chunks_exact(size).map(|b| decode(dtype, b)).collect()
    };
    if shape.is_empty() {
        return Some(scalar_str(elems.first()?));
    }
    if n == 0 {
        return Some("[]".into());
    }
    let summary = n > THRESHOLD;
    let picks = shown(shape, summary);
    let mut strides = vec![1u64; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    // The items shown decide the widths, as in NumPy.
    let mut idx = Vec::new();
    collect(&picks, &strides, 0, 0, &mut idx);
    let sample: Vec<&Elem> = idx.iter().map(|&i| &elems[i as usize]).collect();
    let col = Column::fit(&sample);
    let fmt = |i: u64| col.format(&elems[i as usize]);
    let p = Printer {
        shape,
        strides: &strides,
        summary,
        fmt: &fmt,
    };
    Some(p.recurse(0, 0, " ", LINE_WIDTH))
}

fn collect(picks: &[Vec<u64>], strides: &[u64], axis: usize, at: u64, out: &mut Vec<u64>) {
    if axis == picks.len() {
        out.push(at);
        return;
    }
    for &i in &picks[axis] {
        collect(picks, strides, axis + 1, at + i * strides[axis], out);
    }
}

struct Printer<'a> {
    shape: &'a [u64],
    strides: &'a [u64],
    summary: bool,
    fmt: &'a dyn Fn(u64) -> String,
}

/// NumPy's `_extendLine`: a word wraps the line when it would pass `width`, unless the line
/// holds only its indent.
fn extend(s: &mut String, line: &mut String, word: &str, width: usize, indent: &str) {
    if line.len() + word.len() > width && line.len() > indent.len() {
        s.push_str(line.trim_end());
        s.push('\n');
        *line = indent.to_owned();
    }
    line.push_str(word);
}

impl Printer<'_> {
    /// NumPy's `_formatArray` recursion (separator `' '`, no legacy mode).
    fn recurse(&self, axis: usize, at: u64, indent: &str, width: usize) -> String {
        if axis == self.shape.len() {
            return (self.fmt)(at);
        }
        let next_indent = format!("{indent} ");
        let next_width = width - 1;
        let n = self.shape[axis];
        let stride = self.strides[axis];
        let summarise = self.summary && 2 * EDGE < n;
        let (lead, trail) = if summarise { (EDGE, EDGE) } else { (0, n) };
        let left = self.shape.len() - axis;
        let mut s = String::new();
        if left == 1 {
            let elem_width = width - 1;
            let mut line = indent.to_owned();
            for i in 0..lead {
                let w = self.recurse(axis + 1, at + i * stride, &next_indent, next_width);
                extend(&mut s, &mut line, &w, elem_width, indent);
                line.push(' ');
            }
            if summarise {
                extend(&mut s, &mut line, "...", elem_width, indent);
                line.push(' ');
            }
            for i in (2..=trail).rev() {
                let w = self.recurse(axis + 1, at + (n - i) * stride, &next_indent, next_width);
                extend(&mut s, &mut line, &w, elem_width, indent);
                line.push(' ');
            }
            let w = self.recurse(axis + 1, at + (n - 1) * stride, &next_indent, next_width);
            extend(&mut s, &mut line, &w, elem_width, indent);
            s.push_str(&line);
        } else {
            let sep = "\n".repeat(left - 1);
            for i in 0..lead {
                let nested = self.recurse(axis + 1, at + i * stride, &next_indent, next_width);
                s.push_str(indent);
                s.push_str(&nested);
                s.push_str(&sep);
            }
            if summarise {
                s.push_str(indent);
                s.push_str("...");
                s.push_str(&sep);
            }
            for i in (2..=trail).rev() {
                let nested =
                    self.recurse(axis + 1, at + (n - i) * stride, &next_indent, next_width);
                s.push_str(indent);
                s.push_str(&nested);
                s.push_str(&sep);
            }
            let nested = self.recurse(axis + 1, at + (n - 1) * stride, &next_indent, next_width);
            s.push_str(indent);
            s.push_str(&nested);
        }
        format!("[{}]", &s[indent.len()..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(dtype: &str, shape: &[u64], data: &[u8]) -> String {
        array_str(&DType::parse(dtype).unwrap(), shape, data).unwrap()
    }

    #[test]
    fn half_bits_round_trip() {
        for h in (0u16..0x7c00).chain(0x8000..0xfc00) {
            assert_eq!(f32_to_f16_bits(f16_to_f32(h)), h, "{h:#06x}");
        }
        assert_eq!(half_shortest(65504.0), 65500.0);
    }

    #[test]
    fn strings() {
        let u: Vec<u8> = "hé\0x\0\0"
            .chars()
            .flat_map(|c| (c as u32).to_le_bytes())
            .collect();
        assert_eq!(show("<U3", &[2], &u), "['hé' 'x']");
        assert_eq!(
            show("|S4", &[2], b"it's\x01\xff\0\0"),
            "[b\"it's\" b'\\x01\\xff']"
        );
    }
}
