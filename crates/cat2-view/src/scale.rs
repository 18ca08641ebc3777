//! Value → colour level maps: a domain `[lo, hi]` and a scale (linear, log, symlog, sqrt).

use crate::ViewError;
use crate::colormap::LEVELS;

/// How values are spread over the levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scale {
    /// Proportional.
    #[default]
    Linear,
    /// `log10`; values ≤ 0 have no level.
    Log,
    /// `sign(v)·log10(1 + |v|)`: log-like on both sides of 0.
    Symlog,
    /// `sqrt`; negative values have no level.
    Sqrt,
}

impl Scale {
    /// Every scale, in menu order.
    pub const ALL: [Scale; 4] = [Scale::Linear, Scale::Log, Scale::Symlog, Scale::Sqrt];

    /// Its name in URLs.
    pub fn name(self) -> &'static str {
        match self {
            Scale::Linear => "linear",
            Scale::Log => "log",
            Scale::Symlog => "symlog",
            Scale::Sqrt => "sqrt",
        }
    }

    /// The scale named `s`.
    ///
    /// # Errors
    /// [`ViewError::Unknown`] for other names.
    pub fn parse(s: &str) -> Result<Self, ViewError> {
        Self::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| ViewError::Unknown {
                what: "scale",
                given: s.to_owned(),
                known: "linear, log, symlog, sqrt",
            })
    }

    /// `v` on this scale (`None`: outside what it can show).
    pub fn apply(self, v: f64) -> Option<f64> {
        let t = match self {
            Scale::Linear => v,
            Scale::Log if v > 0.0 => v.log10(),
            Scale::Log => return None,
            Scale::Symlog => v.signum() * v.abs().ln_1p() / std::f64::consts::LN_10,
            Scale::Sqrt if v >= 0.0 => v.sqrt(),
            Scale::Sqrt => return None,
        };
        t.is_finite().then_some(t)
    }
}

/// A domain on a scale: maps values to colour levels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Norm {
    /// The value drawn with the first colour.
    pub lo: f64,
    /// The value drawn with the last colour.
    pub hi: f64,
    /// The scale between them.
    pub scale: Scale,
    tlo: f64,
    thi: f64,
}

impl Norm {
    /// A norm for `[lo, hi]`. Where the scale cannot show `lo` (log of 0), the domain starts at
    /// the smallest value it can show among `values`.
    pub fn new(lo: f64, hi: f64, scale: Scale) -> Self {
        let tlo = scale.apply(lo).unwrap_or(f64::NAN);
        let thi = scale.apply(hi).unwrap_or(f64::NAN);
        Self {
            lo,
            hi,
            scale,
            tlo,
            thi,
        }
    }

    /// The finite min and max of `values` that `scale` can show (`None`: none).
    pub fn auto(values: &[f64], scale: Scale) -> Option<(f64, f64)> {
        let mut it = values
            .iter()
            .copied()
            .filter(|v| v.is_finite() && scale.apply(*v).is_some());
        let first = it.next()?;
        Some(it.fold((first, first), |(a, b), v| (a.min(v), b.max(v))))
    }

    /// The level of `v`: values outside the domain are clamped to its ends; NaN and values the
    /// scale cannot show have none (255, drawn transparent).
    pub fn level(&self, v: f64) -> u8 {
        let Some(t) = self.scale.apply(v) else {
            return LEVELS as u8;
        };
        if !self.tlo.is_finite() || !self.thi.is_finite() {
            return LEVELS as u8;
        }
        let span = self.thi - self.tlo;
        let f = if span > 0.0 {
            ((t - self.tlo) / span).clamp(0.0, 1.0)
        } else {
            0.0
        };
        (f * (LEVELS - 1) as f64).round() as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ends_and_middle() {
        let n = Norm::new(0.0, 199.0, Scale::Linear);
        assert_eq!(n.level(0.0), 0);
        assert_eq!(n.level(199.0), 254);
        assert_eq!(n.level(-5.0), 0);
        assert_eq!(n.level(1e9), 254);
        assert_eq!(n.level(99.5), 127);
        assert_eq!(n.level(f64::NAN), 255);
    }

    #[test]
    fn log_has_no_level_for_non_positive() {
        let n = Norm::new(1.0, 1000.0, Scale::Log);
        assert_eq!(n.level(0.0), 255);
        assert_eq!(n.level(1.0), 0);
        assert_eq!(n.level(1000.0), 254);
        assert_eq!(n.level(31.622_776_601_683_8), 127);
        assert_eq!(
            Norm::auto(&[0.0, 2.0, 8.0, f64::NAN], Scale::Log),
            Some((2.0, 8.0))
        );
    }

    #[test]
    fn flat_domain_is_first_colour() {
        let n = Norm::new(3.0, 3.0, Scale::Linear);
        assert_eq!(n.level(3.0), 0);
        assert_eq!(Scale::parse("sqrt"), Ok(Scale::Sqrt));
        assert!(Scale::parse("cubic").is_err());
    }
}
