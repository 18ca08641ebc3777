//! Heatmaps as indexed PNGs: the palette is the colormap, so a pixel's index is its level and
//! its colour is exactly the colormap's entry.

use crate::ViewError;
use crate::colormap::{Colormap, LEVELS};
use crate::scale::Norm;

/// An 8-bit indexed PNG of `width`×`height` levels (row-major), coloured by `cmap`; level 255
/// is transparent.
///
/// # Errors
/// [`ViewError::Size`] when `levels` does not hold `width × height` entries.
pub fn levels_png(
    width: u32,
    height: u32,
    levels: &[u8],
    cmap: Colormap,
) -> Result<Vec<u8>, ViewError> {
    if levels.len() as u64 != u64::from(width) * u64::from(height) || width == 0 || height == 0 {
        return Err(ViewError::Size(format!(
            "{} levels for a {width}×{height} image",
            levels.len()
        )));
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Indexed);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_palette(cmap.palette());
        let mut trns = vec![255u8; LEVELS];
        trns.push(0);
        enc.set_trns(trns);
        enc.set_compression(png::Compression::Fast);
        let mut w = enc
            .write_header()
            .map_err(|e| ViewError::Size(e.to_string()))?;
        w.write_image_data(levels)
            .map_err(|e| ViewError::Size(e.to_string()))?;
    }
    Ok(out)
}

/// A heatmap of `values` (row-major, `width`×`height`) through `norm` and `cmap`.
///
/// # Errors
/// As [`levels_png`].
pub fn heatmap_png(
    width: u32,
    height: u32,
    values: &[f64],
    norm: &Norm,
    cmap: Colormap,
) -> Result<Vec<u8>, ViewError> {
    let levels: Vec<u8> = values.iter().map(|&v| norm.level(v)).collect();
    levels_png(width, height, &levels, cmap)
}

/// A horizontal colorbar: every level once, left to right, `height` rows.
pub fn colorbar_png(cmap: Colormap, height: u32) -> Vec<u8> {
    let row: Vec<u8> = (0..LEVELS as u8).collect();
    let levels: Vec<u8> = (0..height.max(1))
        .flat_map(|_| row.iter().copied())
        .collect();
    levels_png(LEVELS as u32, height.max(1), &levels, cmap).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scale;

    fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let mut dec = png::Decoder::new(png_bytes);
        dec.set_transformations(png::Transformations::EXPAND);
        let mut r = dec.read_info().unwrap();
        let mut buf = vec![0; r.output_buffer_size()];
        let info = r.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    #[test]
    fn pixels_are_colormap_entries() {
        // 2×3 image of 0..=5 on [0, 5]: first pixel viridis' first colour, last its last.
        let v: Vec<f64> = (0..6).map(f64::from).collect();
        let png = heatmap_png(
            3,
            2,
            &v,
            &Norm::new(0.0, 5.0, Scale::Linear),
            Colormap::Viridis,
        )
        .unwrap();
        let (w, h, rgba) = decode(&png);
        assert_eq!((w, h), (3, 2));
        assert_eq!(&rgba[..4], &[0x44, 0x01, 0x54, 255]);
        assert_eq!(&rgba[20..24], &[0xfd, 0xe7, 0x25, 255]);
    }

    #[test]
    fn nan_is_transparent_and_sizes_are_checked() {
        let png = heatmap_png(
            2,
            1,
            &[f64::NAN, 1.0],
            &Norm::new(0.0, 1.0, Scale::Linear),
            Colormap::Gray,
        )
        .unwrap();
        let (_, _, rgba) = decode(&png);
        assert_eq!(rgba[3], 0);
        assert_eq!(&rgba[4..8], &[255, 255, 255, 255]);
        assert!(levels_png(2, 2, &[0; 3], Colormap::Gray).is_err());
        let (w, h, _) = decode(&colorbar_png(Colormap::Magma, 4));
        assert_eq!((w, h), (255, 4));
    }
}
