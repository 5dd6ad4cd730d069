//! [`Figure`]: a rendered image that displays inline in Jupyter (evcxr) as a PNG and saves to a
//! file, and the drawing setup every figure shares.
//!
//! Drawn with plotters' bitmap backend and the bundled DejaVu Sans font (registered once, so no
//! system fonts are needed). PNG renders the same in JupyterLab, GitHub, VS Code and nbviewer.

use crate::{error, Result};
use image::ImageEncoder;
use plotters::prelude::*;
use std::sync::Once;

pub(super) const FONT: &str = "sans-serif";
/// matplotlib's first two colours (`tab:blue`, `tab:orange`).
pub(super) const BLUE: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
pub(super) const ORANGE: RGBColor = RGBColor(0xff, 0x7f, 0x0e);

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/DejaVuSans.ttf");
        // The bundled file is a valid TrueType font; a failure here would be a packaging bug,
        // and plotters then reports a missing font as a drawing error (no panic).
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, bytes);
    });
}

pub(super) fn draw_err(e: impl std::fmt::Display) -> crate::Error {
    error(format!("drawing the figure failed: {e}"))
}

/// An RGB image (a rendered figure) that shows itself inline in a notebook.
#[derive(Clone)]
pub struct Figure {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Row-major RGB bytes.
    pub rgb: Vec<u8>,
}

impl std::fmt::Debug for Figure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Figure({}x{})", self.width, self.height)
    }
}

impl Figure {
    /// Renders `draw` onto a white `width` x `height` canvas.
    pub fn render(
        width: u32,
        height: u32,
        draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>) -> Result<()>,
    ) -> Result<Figure> {
        register_font();
        let mut rgb = vec![255u8; (width * height * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
            draw(&root)?;
            root.present().map_err(draw_err)?;
        }
        Ok(Figure { width, height, rgb })
    }

    /// The figure encoded as PNG.
    pub fn png(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(&self.rgb, self.width, self.height, image::ExtendedColorType::Rgb8)
            .map_err(|e| error(format!("PNG encoding failed: {e}")))?;
        Ok(out)
    }

    /// Writes the figure as a PNG file.
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.png()?)
            .map_err(|e| error(format!("cannot write {}: {e}", path.display())))
    }

    /// Shows the figure inline (evcxr calls this when a cell's value is a `Figure`).
    pub fn evcxr_display(&self) {
        use base64::Engine;
        match self.png() {
            Ok(png) => println!(
                "EVCXR_BEGIN_CONTENT image/png\n{}\nEVCXR_END_CONTENT",
                base64::engine::general_purpose::STANDARD.encode(png)
            ),
            Err(e) => println!("{e}"),
        }
    }
}

/// Figures stacked vertically into one (evcxr shows one image per cell).
pub fn stack(figures: &[Figure]) -> Result<Figure> {
    if figures.is_empty() {
        return Err(error("stack needs at least one figure"));
    }
    let width = figures.iter().map(|f| f.width).max().unwrap_or(0);
    let height: u32 = figures.iter().map(|f| f.height).sum();
    let mut rgb = vec![255u8; (width * height * 3) as usize];
    let mut y0 = 0usize;
    for f in figures {
        for r in 0..f.height as usize {
            let src = &f.rgb[r * f.width as usize * 3..(r + 1) * f.width as usize * 3];
            let at = ((y0 + r) * width as usize) * 3;
            rgb[at..at + src.len()].copy_from_slice(src);
        }
        y0 += f.height as usize;
    }
    Ok(Figure { width, height, rgb })
}
