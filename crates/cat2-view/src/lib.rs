//! Pure rendering for cat2's web client, with no I/O and no async: what a view turns decoded
//! items into.
//!
//! # Layout
//! - [`values`]: NumPy items (ints, floats incl. f16, bool, complex) as `f64`, and as the text
//!   of a table cell.
//! - [`colormap`] and [`scale`]: 255-level colour tables and value → level maps.
//! - [`image`]: heatmaps as indexed PNGs (NaN and out-of-scale values transparent).
//! - [`line`]: 1-D profiles as SVG, min/max decimated.
//! - [`export`]: `.npy` and `.csv` files of a selection.
//! - [`plan`]: which items a decimated view reads so that its decoded bytes stay within a
//!   budget (whole blocks skipped, not merely pixels).

pub mod colormap;
pub mod export;
pub mod image;
pub mod line;
pub mod plan;
pub mod scale;
pub mod values;

pub use colormap::Colormap;
pub use scale::{Norm, Scale};
pub use values::{Complex, Numeric};

/// Input a view cannot render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ViewError {
    /// The dtype has no numeric reading (strings, structured, datetimes for images).
    #[error("{0} items cannot be drawn: use the table view")]
    NotNumeric(String),
    /// An unknown name for a colormap, scale or complex mode.
    #[error("unknown {what} {given:?} (one of {known})")]
    Unknown {
        /// What was named.
        what: &'static str,
        /// The name given.
        given: String,
        /// The names accepted.
        known: &'static str,
    },
    /// Bytes that do not hold a whole number of items, or the wrong number of them.
    #[error("{0}")]
    Size(String),
    /// A view that would decode more than its budget even with whole blocks skipped.
    #[error("{0}")]
    Budget(String),
}
