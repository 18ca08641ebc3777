//! NumPy data types as b2nd stores them (`dtype.str`, e.g. `<i8`, `|S6`, `<U6`, or the `str()`
//! of a structured dtype, `[('a', '<i4'), ('c', 'S10'), ('d', '?')]`), with their item size and
//! the name `str(numpy.dtype)` prints (`int64`, `|S6`, `<U6`, `complex128`).

use std::fmt;

use crate::DTypeError;

/// A NumPy data type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DType {
    /// A scalar type: byte order (`<`, `>` or `|`), kind character (`b i u f c S U V M m`),
    /// item size in bytes, and the unit of datetimes (`ns`, `s`, …; empty otherwise).
    Scalar {
        /// Byte order character.
        order: char,
        /// NumPy kind character.
        kind: char,
        /// Bytes per item.
        size: usize,
        /// Datetime/timedelta unit, empty for other kinds.
        unit: String,
    },
    /// A structured type: named fields, each with an optional sub-array shape.
    Struct(Vec<Field>),
}

/// One field of a structured dtype.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Field name.
    pub name: String,
    /// Field type.
    pub dtype: DType,
    /// Sub-array shape, empty for scalars.
    pub shape: Vec<u64>,
}

impl DType {
    /// Parses a NumPy dtype string as found in a b2nd metalayer.
    ///
    /// # Errors
    /// [`DTypeError`] for strings that are not a NumPy type string or structured list.
    pub fn parse(s: &str) -> Result<Self, DTypeError> {
        let mut p = Parser {
            depth: 0,
            s: s.as_bytes(),
            pos: 0,
            src: s,
        };
        let t = p.dtype()?;
        p.ws();
        if p.pos != p.s.len()
            || t.checked_itemsize()
                .is_none_or(|n| n == 0 || n > MAX_ITEMSIZE)
        {
            return Err(p.err());
        }
        Ok(t)
    }

    /// Bytes per item.
    pub fn itemsize(&self) -> usize {
        self.checked_itemsize().unwrap_or(usize::MAX)
    }

    /// Bytes per item, `None` on overflow.
    fn checked_itemsize(&self) -> Option<usize> {
        match self {
            DType::Scalar { size, .. } => Some(*size),
            DType::Struct(fields) => fields.iter().try_fold(0usize, |acc, f| {
                let n = f
                    .shape
                    .iter()
                    .try_fold(1usize, |a, &d| a.checked_mul(usize::try_from(d).ok()?))?;
                acc.checked_add(f.dtype.checked_itemsize()?.checked_mul(n)?)
            }),
        }
    }

    /// The string b2nd stores for this type (NumPy's `dtype.str`, or the structured list).
    pub fn to_typestr(&self) -> String {
        match self {
            DType::Scalar {
                order,
                kind,
                size,
                unit,
            } => {
                let n = if *kind == 'U' { size / 4 } else { *size };
                format!("{order}{kind}{n}{}", unit_suffix(unit))
            }
            DType::Struct(_) => self.to_string(),
        }
    }

    /// How NumPy writes a type inside a structured dtype's `str()`.
    fn field_repr(&self) -> String {
        match self {
            DType::Scalar {
                order,
                kind,
                size,
                unit,
            } => match kind {
                'b' => "?".to_owned(),
                'S' | 'V' => format!("{kind}{size}"),
                'U' => format!("{order}U{}", size / 4),
                'M' | 'm' if unit.is_empty() => format!("{order}{kind}8"),
                'M' | 'm' => format!("{order}{kind}8[{unit}]"),
                _ => format!("{order}{kind}{size}"),
            },
            DType::Struct(_) => self.to_string(),
        }
    }
}

impl fmt::Display for DType {
    /// Formats as `str(numpy.dtype)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DType::Scalar {
                order,
                kind,
                size,
                unit,
            } => {
                let native = *order != '>';
                let bits = size * 8;
                match kind {
                    'b' => f.write_str("bool"),
                    'i' if native => write!(f, "int{bits}"),
                    'u' if native => write!(f, "uint{bits}"),
                    'f' if native => write!(f, "float{bits}"),
                    'c' if native => write!(f, "complex{bits}"),
                    'M' if native => write!(f, "datetime64{}", unit_suffix(unit)),
                    'm' if native => write!(f, "timedelta64{}", unit_suffix(unit)),
                    'S' | 'V' => write!(f, "|{kind}{size}"),
                    'U' => write!(f, "{order}U{}", size / 4),
                    _ => f.write_str(&self.field_repr()),
                }
            }
            DType::Struct(fields) => {
                f.write_str("[")?;
                for (i, fl) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "('{}', ", fl.name)?;
                    match &fl.dtype {
                        DType::Struct(_) => write!(f, "{}", fl.dtype)?,
                        t => write!(f, "'{}'", t.field_repr())?,
                    }
                    match fl.shape.as_slice() {
                        [] => {}
                        [n] => write!(f, ", ({n},)")?,
                        dims => {
                            let dims: Vec<String> = dims.iter().map(u64::to_string).collect();
                            write!(f, ", ({})", dims.join(", "))?;
                        }
                    }
                    f.write_str(")")?;
                }
                f.write_str("]")
            }
        }
    }
}

fn unit_suffix(unit: &str) -> String {
    if unit.is_empty() {
        String::new()
    } else {
        format!("[{unit}]")
    }
}

/// Deepest nesting of structured dtypes accepted (NumPy itself nests far less in practice).
const MAX_DEPTH: usize = 8;
/// Largest item size accepted (c-blosc2 items are at most a 2 GiB chunk).
const MAX_ITEMSIZE: usize = i32::MAX as usize;

struct Parser<'a> {
    depth: usize,
    s: &'a [u8],
    pos: usize,
    src: &'a str,
}

impl Parser<'_> {
    fn err(&self) -> DTypeError {
        DTypeError {
            dtype: self.src.to_owned(),
        }
    }

    fn ws(&mut self) {
        while self.s.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), DTypeError> {
        if self.eat(c) { Ok(()) } else { Err(self.err()) }
    }

    fn dtype(&mut self) -> Result<DType, DTypeError> {
        self.ws();
        match self.s.get(self.pos) {
            Some(b'[') => self.structured(),
            Some(b'\'' | b'"') => {
                let s = self.quoted()?;
                parse_scalar(&s).ok_or_else(|| self.err())
            }
            _ => {
                let rest = std::str::from_utf8(&self.s[self.pos..])
                    .map_err(|_| self.err())?
                    .trim_end();
                self.pos = self.s.len();
                parse_scalar(rest).ok_or_else(|| self.err())
            }
        }
    }

    fn quoted(&mut self) -> Result<String, DTypeError> {
        self.ws();
        let q = *self.s.get(self.pos).ok_or_else(|| self.err())?;
        if q != b'\'' && q != b'"' {
            return Err(self.err());
        }
        let start = self.pos + 1;
        let end = self.s[start..]
            .iter()
            .position(|&c| c == q)
            .ok_or_else(|| self.err())?
            + start;
        self.pos = end + 1;
        String::from_utf8(self.s[start..end].to_vec()).map_err(|_| self.err())
    }

    fn structured(&mut self) -> Result<DType, DTypeError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err());
        }
        let t = self.structured_fields();
        self.depth -= 1;
        t
    }

    fn structured_fields(&mut self) -> Result<DType, DTypeError> {
        self.expect(b'[')?;
        let mut fields = Vec::new();
        loop {
            if self.eat(b']') {
                break;
            }
            if !fields.is_empty() {
                self.expect(b',')?;
                if self.eat(b']') {
                    break;
                }
            }
            self.expect(b'(')?;
            let name = self.quoted()?;
            self.expect(b',')?;
            self.ws();
            let dtype = if self.s.get(self.pos) == Some(&b'[') {
                self.structured()?
            } else {
                self.dtype_quoted()?
            };
            let mut shape = Vec::new();
            if self.eat(b',') {
                if self.eat(b')') {
                    fields.push(Field { name, dtype, shape });
                    continue;
                }
                self.expect(b'(')?;
                while !self.eat(b')') {
                    self.ws();
                    let start = self.pos;
                    while self.s.get(self.pos).is_some_and(u8::is_ascii_digit) {
                        self.pos += 1;
                    }
                    let n = std::str::from_utf8(&self.s[start..self.pos])
                        .ok()
                        .and_then(|t| t.parse().ok());
                    shape.push(n.ok_or_else(|| self.err())?);
                    self.eat(b',');
                }
            }
            self.expect(b')')?;
            fields.push(Field { name, dtype, shape });
        }
        if fields.is_empty() {
            return Err(self.err());
        }
        Ok(DType::Struct(fields))
    }

    fn dtype_quoted(&mut self) -> Result<DType, DTypeError> {
        let s = self.quoted()?;
        parse_scalar(&s).ok_or_else(|| self.err())
    }
}

/// Parses a scalar type string: `<i8`, `|S6`, `?`, `S10`, `<M8[ns]`, `float64`, `bool`.
fn parse_scalar(s: &str) -> Option<DType> {
    let named = |order: char, kind: char, size: usize| DType::Scalar {
        order,
        kind,
        size,
        unit: String::new(),
    };
    let by_name = match s {
        "bool" | "?" | "b1" => Some(named('|', 'b', 1)),
        _ => None,
    };
    if by_name.is_some() {
        return by_name;
    }
    for (prefix, kind) in [
        ("uint", 'u'),
        ("int", 'i'),
        ("float", 'f'),
        ("complex", 'c'),
    ] {
        if let Some(bits) = s.strip_prefix(prefix).and_then(|b| b.parse::<usize>().ok()) {
            if bits % 8 == 0 && bits > 0 {
                let order = if bits == 8 { '|' } else { '<' };
                return Some(named(order, kind, bits / 8));
            }
        }
    }
    let mut chars = s.chars();
    let (order, rest) = match s.chars().next()? {
        c @ ('<' | '>' | '|' | '=') => {
            chars.next();
            (if c == '=' { '<' } else { c }, chars.as_str())
        }
        _ => ('\0', s),
    };
    let kind = rest.chars().next()?;
    let tail = &rest[kind.len_utf8()..];
    let (num, unit) = match tail.find('[') {
        Some(i) => (&tail[..i], tail[i + 1..].strip_suffix(']')?.to_owned()),
        None => (tail, String::new()),
    };
    let n: usize = num.parse().ok()?;
    let (size, default_order) = match kind {
        'b' if n == 1 => (1, '|'),
        'i' | 'u' if matches!(n, 1 | 2 | 4 | 8) => (n, if n == 1 { '|' } else { '<' }),
        'f' if matches!(n, 2 | 4 | 8 | 16) => (n, '<'),
        'c' if matches!(n, 8 | 16 | 32) => (n, '<'),
        'S' | 'V' => (n, '|'),
        'U' => (n.checked_mul(4)?, '<'),
        'M' | 'm' if n == 8 => (8, '<'),
        _ => return None,
    };
    if !unit.is_empty() && !matches!(kind, 'M' | 'm') {
        return None;
    }
    let order = match (order, default_order) {
        (_, '|') => '|',
        ('\0' | '|', d) => d,
        (o, _) => o,
    };
    Some(DType::Scalar {
        order,
        kind,
        size,
        unit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_names_match_numpy() {
        for (typestr, name, size) in [
            ("|i1", "int8", 1),
            ("<u2", "uint16", 2),
            ("<i8", "int64", 8),
            ("<f2", "float16", 2),
            ("<f4", "float32", 4),
            ("<f8", "float64", 8),
            ("<c16", "complex128", 16),
            ("|b1", "bool", 1),
            ("|S6", "|S6", 6),
            ("<U6", "<U6", 24),
            ("|V8", "|V8", 8),
            ("<M8[ns]", "datetime64[ns]", 8),
            ("<m8[s]", "timedelta64[s]", 8),
            (">i4", ">i4", 4),
        ] {
            let t = DType::parse(typestr).unwrap();
            assert_eq!(t.to_string(), name, "{typestr}");
            assert_eq!(t.itemsize(), size, "{typestr}");
            assert_eq!(t.to_typestr(), typestr, "{typestr}");
        }
    }

    #[test]
    fn structured_matches_numpy_str() {
        let s =
            "[('a', '<i4'), ('b', '<f8'), ('c', 'S10'), ('d', '?'), ('e', '<U3'), ('f', '<c8')]";
        let t = DType::parse(s).unwrap();
        assert_eq!(t.to_string(), s);
        assert_eq!(t.itemsize(), 4 + 8 + 10 + 1 + 12 + 8);
        // descr form normalises to str form
        let d = DType::parse("[('c', '|S10'), ('d', '|b1')]").unwrap();
        assert_eq!(d.to_string(), "[('c', 'S10'), ('d', '?')]");
        let nested = "[('x', [('y', '<i2')]), ('z', '<f4', (2,))]";
        let n = DType::parse(nested).unwrap();
        assert_eq!(n.to_string(), nested);
        assert_eq!(n.itemsize(), 2 + 8);
    }

    #[test]
    fn rejects_garbage() {
        let deep = format!("{}('a', '<i4'){}", "[('x', ".repeat(100), ")]".repeat(100));
        assert!(DType::parse(&deep).is_err());
        assert!(DType::parse("[('a', '<f8', (4294967296, 4294967296, 4294967296))]").is_err());
        for bad in [
            "",
            "x",
            "<i3",
            "[",
            "[]",
            "[('a')]",
            "<S",
            "int7",
            "<U99999999999999999999",
        ] {
            assert!(DType::parse(bad).is_err(), "{bad:?}");
        }
    }
}
