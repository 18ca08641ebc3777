//! Colour tables of 255 levels: level 0 is the colormap's first colour (e.g. viridis
//! `#440154`), level 254 its last (`#fde725`); level 255 is kept for "no value" (transparent).

use crate::ViewError;

/// Levels a colormap has (the 256th palette entry is transparent).
pub const LEVELS: usize = 255;

/// A named colormap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Colormap {
    /// Matplotlib's default: perceptually uniform, colour-blind safe.
    #[default]
    Viridis,
    /// Black → purple → yellow-white.
    Magma,
    /// Black → red → yellow.
    Inferno,
    /// Blue → magenta → yellow.
    Plasma,
    /// Colour-blind optimised blue → yellow.
    Cividis,
    /// Google's rainbow replacement.
    Turbo,
    /// Black → white.
    Gray,
}

impl Colormap {
    /// Every colormap, in menu order.
    pub const ALL: [Colormap; 7] = [
        Colormap::Viridis,
        Colormap::Magma,
        Colormap::Inferno,
        Colormap::Plasma,
        Colormap::Cividis,
        Colormap::Turbo,
        Colormap::Gray,
    ];

    /// Its name in URLs.
    pub fn name(self) -> &'static str {
        match self {
            Colormap::Viridis => "viridis",
            Colormap::Magma => "magma",
            Colormap::Inferno => "inferno",
            Colormap::Plasma => "plasma",
            Colormap::Cividis => "cividis",
            Colormap::Turbo => "turbo",
            Colormap::Gray => "gray",
        }
    }

    /// The colormap named `s`.
    ///
    /// # Errors
    /// [`ViewError::Unknown`] for other names.
    pub fn parse(s: &str) -> Result<Self, ViewError> {
        Self::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| ViewError::Unknown {
                what: "colormap",
                given: s.to_owned(),
                known: "viridis, magma, inferno, plasma, cividis, turbo, gray",
            })
    }

    /// The colour of `level` (0..[`LEVELS`]) as RGB.
    pub fn rgb(self, level: usize) -> [u8; 3] {
        let level = level.min(LEVELS - 1);
        let g = match self {
            Colormap::Viridis => colorous::VIRIDIS,
            Colormap::Magma => colorous::MAGMA,
            Colormap::Inferno => colorous::INFERNO,
            Colormap::Plasma => colorous::PLASMA,
            Colormap::Cividis => colorous::CIVIDIS,
            Colormap::Turbo => colorous::TURBO,
            Colormap::Gray => {
                let v = (level * 255 / (LEVELS - 1)) as u8;
                return [v, v, v];
            }
        };
        let c = g.eval_rational(level, LEVELS);
        [c.r, c.g, c.b]
    }

    /// The PNG palette: [`LEVELS`] colours then one for "no value" (256 RGB triples).
    pub fn palette(self) -> Vec<u8> {
        let mut p: Vec<u8> = (0..LEVELS).flat_map(|l| self.rgb(l)).collect();
        p.extend([0, 0, 0]);
        p
    }

    /// `#rrggbb` of `level`.
    pub fn hex(self, level: usize) -> String {
        let [r, g, b] = self.rgb(level);
        format!("#{r:02x}{g:02x}{b:02x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_ends_are_matplotlibs() {
        assert_eq!(Colormap::Viridis.hex(0), "#440154");
        assert_eq!(Colormap::Viridis.hex(LEVELS - 1), "#fde725");
        assert_eq!(Colormap::Gray.rgb(0), [0, 0, 0]);
        assert_eq!(Colormap::Gray.rgb(LEVELS - 1), [255, 255, 255]);
        assert_eq!(Colormap::Viridis.palette().len(), 256 * 3);
    }

    #[test]
    fn names_round_trip() {
        for c in Colormap::ALL {
            assert_eq!(Colormap::parse(c.name()), Ok(c));
        }
        assert!(Colormap::parse("jet").is_err());
    }
}
