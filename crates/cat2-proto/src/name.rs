//! Validated identifiers: root names (one NATS subject token) and dataset paths (relative,
//! confined to their root).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest accepted root name.
const MAX_ROOT: usize = 128;
/// Longest accepted dataset path.
const MAX_PATH: usize = 4096;

/// An invalid root name or dataset path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// A root name that cannot be a NATS subject token.
    #[error(
        "invalid root name {0:?}: use 1-128 characters without '.', '*', '>', '/', '@' or whitespace"
    )]
    Root(String),
    /// A path that is absolute, escapes its root or is otherwise unusable.
    #[error("invalid path {0:?}")]
    Path(String),
}

/// A root name: one NATS subject token (no `.`, `*`, `>`, `/`, whitespace or control
/// characters; `@` is reserved for Caterva2's pseudo-roots such as `@scratch`).
///
/// In messages it is a plain string, validated when decoded: a message naming an invalid
/// root does not decode.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RootName(String);

impl RootName {
    /// Validates a root name.
    ///
    /// # Errors
    /// [`NameError::Root`].
    pub fn new(name: &str) -> Result<Self, NameError> {
        let ok = !name.is_empty()
            && name.len() <= MAX_ROOT
            && !name.starts_with('@')
            && name.chars().all(|c| {
                !matches!(c, '.' | '*' | '>' | '/' | '\\') && !c.is_whitespace() && !c.is_control()
            });
        if ok {
            Ok(Self(name.to_owned()))
        } else {
            Err(NameError::Root(name.to_owned()))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A dataset path relative to its root: `/`-separated, no empty, `.` or `..` components, no
/// leading `/`, no backslashes or control characters.
///
/// In messages it is a plain string, validated when decoded (as [`RootName`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DatasetPath(String);

impl DatasetPath {
    /// Validates a dataset path.
    ///
    /// # Errors
    /// [`NameError::Path`].
    pub fn new(path: &str) -> Result<Self, NameError> {
        let ok = !path.is_empty()
            && path.len() <= MAX_PATH
            && !path.contains('\\')
            && !path.chars().any(char::is_control)
            && path
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != "..");
        if ok {
            Ok(Self(path.to_owned()))
        } else {
            Err(NameError::Path(path.to_owned()))
        }
    }

    /// The path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What both name types share: shown and turned back into strings as they are, built from
/// strings only through validation (as serde does), compared with plain strings.
macro_rules! name_type {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl TryFrom<&str> for $t {
            type Error = NameError;
            fn try_from(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }
        impl TryFrom<String> for $t {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                Self::new(&s)
            }
        }
        impl From<$t> for String {
            fn from(n: $t) -> String {
                n.0
            }
        }
        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}
name_type!(RootName);
name_type!(DatasetPath);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_names() {
        for ok in ["foo", "hdf5root", "my-root_2", "données"] {
            assert!(RootName::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a.b",
            "a*",
            ">",
            "a b",
            "a/b",
            "a\tb",
            "@scratch",
            "a\\b",
            &"x".repeat(129),
        ] {
            assert!(RootName::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dataset_paths() {
        for ok in [
            "ds-1d.b2nd",
            "dir1/ds-2d.b2nd",
            "README.md",
            ".hidden",
            "a..b",
        ] {
            assert!(DatasetPath::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "a/",
            "./a",
            "a\\..\\b",
            "a\0b",
            "..",
        ] {
            assert!(DatasetPath::new(bad).is_err(), "{bad:?}");
        }
    }
}
