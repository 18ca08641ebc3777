//! Caterva2 slice strings (spec §4.1): `""`, `3`, `-1`, `a:b`, `:b`, `a:`, comma-separated per
//! dimension, whitespace tolerated anywhere.

use std::fmt;
use std::str::FromStr;

use crate::SliceError;

/// One dimension of a slice string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SliceItem {
    /// A single index (may be negative, counted from the end). Drops the dimension from the
    /// result of an n-d selection.
    Index(i64),
    /// A half-open range with optional, possibly negative, bounds (Python semantics).
    Range {
        /// First index, `None` for the start of the dimension.
        start: Option<i64>,
        /// One past the last index, `None` for the end of the dimension.
        stop: Option<i64>,
    },
}

impl SliceItem {
    /// The range covering a whole dimension (`:`).
    pub const FULL: SliceItem = SliceItem::Range {
        start: None,
        stop: None,
    };
}

/// A parsed slice string: one item per leading dimension; missing trailing dimensions are whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SliceSpec {
    items: Vec<SliceItem>,
}

impl SliceSpec {
    /// Builds a spec from items.
    pub fn new(items: Vec<SliceItem>) -> Self {
        Self { items }
    }

    /// Parses a Caterva2 slice string.
    ///
    /// # Errors
    /// [`SliceError::Syntax`] for anything but integers and colons in a part, and
    /// [`SliceError::Step`] for a step other than 1.
    pub fn parse(s: &str) -> Result<Self, SliceError> {
        if s.trim().is_empty() {
            return Ok(Self::default());
        }
        let items = s.split(',').map(parse_item).collect::<Result<_, _>>()?;
        Ok(Self { items })
    }

    /// The items, one per leading dimension.
    pub fn items(&self) -> &[SliceItem] {
        &self.items
    }

    /// Whether the spec selects everything (no items).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl FromStr for SliceSpec {
    type Err = SliceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for SliceSpec {
    /// Formats as Caterva2's client does (`"1, 2:4"`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match item {
                SliceItem::Index(i) => write!(f, "{i}")?,
                SliceItem::Range { start, stop } => {
                    if let Some(a) = start {
                        write!(f, "{a}")?;
                    }
                    f.write_str(":")?;
                    if let Some(b) = stop {
                        write!(f, "{b}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn parse_item(part: &str) -> Result<SliceItem, SliceError> {
    let syntax = || SliceError::Syntax {
        part: part.trim().to_owned(),
    };
    let bound = |s: &str| -> Result<Option<i64>, SliceError> {
        let s = s.trim();
        if s.is_empty() {
            Ok(None)
        } else {
            s.parse().map(Some).map_err(|_| syntax())
        }
    };
    let pieces: Vec<&str> = part.split(':').collect();
    match pieces.as_slice() {
        [one] => bound(one)?.map(SliceItem::Index).ok_or_else(syntax),
        [a, b] => Ok(SliceItem::Range {
            start: bound(a)?,
            stop: bound(b)?,
        }),
        [a, b, step] => match bound(step)? {
            None | Some(1) => Ok(SliceItem::Range {
                start: bound(a)?,
                stop: bound(b)?,
            }),
            Some(_) => Err(SliceError::Step {
                part: part.trim().to_owned(),
            }),
        },
        _ => Err(syntax()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: Option<i64>, stop: Option<i64>) -> SliceItem {
        SliceItem::Range { start, stop }
    }

    #[test]
    fn parses_caterva2_forms() {
        assert!(SliceSpec::parse("").unwrap().is_empty());
        assert!(SliceSpec::parse("  ").unwrap().is_empty());
        assert_eq!(
            SliceSpec::parse("3").unwrap().items(),
            &[SliceItem::Index(3)]
        );
        assert_eq!(
            SliceSpec::parse("-1").unwrap().items(),
            &[SliceItem::Index(-1)]
        );
        assert_eq!(
            SliceSpec::parse("1:5").unwrap().items(),
            &[r(Some(1), Some(5))]
        );
        assert_eq!(SliceSpec::parse(":5").unwrap().items(), &[r(None, Some(5))]);
        assert_eq!(SliceSpec::parse("5:").unwrap().items(), &[r(Some(5), None)]);
        assert_eq!(SliceSpec::parse(":").unwrap().items(), &[SliceItem::FULL]);
        assert_eq!(
            SliceSpec::parse("1:5:1").unwrap().items(),
            &[r(Some(1), Some(5))]
        );
        assert_eq!(SliceSpec::parse("::").unwrap().items(), &[SliceItem::FULL]);
        assert_eq!(
            SliceSpec::parse(" :2, :8").unwrap().items(),
            &[r(None, Some(2)), r(None, Some(8))]
        );
        assert_eq!(
            SliceSpec::parse("1 , 2 : 4").unwrap().items(),
            &[SliceItem::Index(1), r(Some(2), Some(4))]
        );
    }

    #[test]
    fn rejects_bad_strings() {
        for bad in ["a", "1:b", "1,", ",", "1:2:3:4", "1.5", "--1", "1 2"] {
            assert!(
                matches!(SliceSpec::parse(bad), Err(SliceError::Syntax { .. })),
                "{bad:?} should be a syntax error"
            );
        }
        for bad in ["::2", "1:5:-1", "0:10:0"] {
            assert!(
                matches!(SliceSpec::parse(bad), Err(SliceError::Step { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn displays_like_the_client() {
        let s = SliceSpec::new(vec![
            SliceItem::Index(1),
            r(Some(2), Some(4)),
            r(None, None),
        ]);
        assert_eq!(s.to_string(), "1, 2:4, :");
        assert_eq!(SliceSpec::parse(&s.to_string()).unwrap(), s);
    }
}
