//! [`Figure`]: a rendered image that displays inline in Jupyter (evcxr) as a PNG and saves to a
//! file, and the drawing setup every figure shares.
//!
//! Figures are drawn with plotters' SVG backend and rasterised by resvg (usvg + tiny-skia): lines,
//! markers and text are anti-aliased, and text is shaped with the bundled DejaVu Sans (its
//! advances and kerning, no system fonts needed), as matplotlib's Agg renderer does. Axis-parallel
//! lines (axes, ticks, frames) are drawn crisp, on whole pixels. One figure pixel is one PNG
//! pixel (matplotlib's inline default, 100 dpi): evcxr cannot attach the width metadata that a
//! 2x ("retina") PNG needs to display at its intended size. PNG renders the same in JupyterLab,
//! GitHub, VS Code and nbviewer, trusted or not.

use crate::{error, Result};
use image::ImageEncoder;
use plotters::prelude::*;
use std::sync::{Arc, Once, OnceLock};

pub(super) const FONT: &str = "sans-serif";
/// matplotlib's first two colours (`tab:blue`, `tab:orange`).
pub(super) const BLUE: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
pub(super) const ORANGE: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
/// Font sizes in plotters' units (the font's ascent-to-descent height in pixels); DejaVu Sans
/// at 16 is a 13.7 px em, matplotlib's 10 pt at 100 dpi.
pub(super) const TICK: f64 = 15.0;
pub(super) const LABEL: f64 = 16.0;
pub(super) const TITLE: f64 = 18.0;

/// The drawing area every figure function draws on.
pub(super) type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

const FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// plotters lays text out with the bundled font through ab_glyph, where a size is the font's
/// ascent-to-descent height (DejaVu Sans: (1901 + 483) / 2048 em), and writes `size / 1.24` as
/// the SVG font size. The rasteriser gets the em size that matches plotters' layout.
const SVG_FONT_SCALE: f64 = 1.24 * 2048.0 / (1901.0 + 483.0);

/// The size in pixels of `text` in the bundled font at `size`, as plotters lays it out. Registers
/// the font first: evcxr gives every cell its own copy of plotters' font table, so a figure
/// function may measure text before any figure of its cell has been rendered.
pub(super) fn text_size(text: &str, size: f64) -> (i32, i32) {
    register_font();
    let font: FontDesc = (FONT, size).into_font();
    match font.box_size(text) {
        Ok((w, h)) => (w as i32, h as i32),
        // Not reached with the bundled font; DejaVu Sans averages about 0.55 em per character.
        Err(_) => ((text.chars().count() as f64 * size * 0.55) as i32, size as i32),
    }
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bundled file is a valid TrueType font; a failure here would be a packaging bug,
        // and plotters then reports a missing font as a drawing error (no panic).
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES);
    });
}

fn svg_options() -> &'static resvg::usvg::Options<'static> {
    static OPTIONS: OnceLock<resvg::usvg::Options<'static>> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        let mut fonts = resvg::usvg::fontdb::Database::new();
        fonts.load_font_data(FONT_BYTES.to_vec());
        fonts.set_sans_serif_family("DejaVu Sans");
        resvg::usvg::Options {
            font_family: "DejaVu Sans".into(),
            fontdb: Arc::new(fonts),
            ..Default::default()
        }
    })
}

pub(super) fn draw_err(e: impl std::fmt::Display) -> crate::Error {
    error(format!("drawing the figure failed: {e}"))
}

/// The SVG as the rasteriser gets it: font sizes matched to plotters' layout, and polylines
/// made only of horizontal and vertical segments (axes, ticks, frames) marked `crispEdges`, so
/// a 1-pixel line covers one pixel instead of two half-grey ones.
fn prepare_svg(svg: &str) -> String {
    let mut out = String::with_capacity(svg.len() + svg.len() / 16);
    for line in svg.lines() {
        if let Some(at) = line.find("font-size=\"") {
            let rest = &line[at + 11..];
            let end = rest.find('"').unwrap_or(0);
            if let Ok(v) = rest[..end].parse::<f64>() {
                out.push_str(&line[..at + 11]);
                out.push_str(&format!("{:.3}", v * SVG_FONT_SCALE));
                out.push_str(&rest[end..]);
                out.push('\n');
                continue;
            }
        }
        if line.starts_with("<polyline") && axis_parallel(line) {
            out.push_str("<polyline shape-rendering=\"crispEdges\"");
            out.push_str(&line["<polyline".len()..]);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

fn axis_parallel(polyline: &str) -> bool {
    let Some(at) = polyline.find("points=\"") else { return false };
    let pts: Vec<(f64, f64)> = polyline[at + 8..]
        .split('"')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|p| {
            let (x, y) = p.split_once(',')?;
            Some((x.parse().ok()?, y.parse().ok()?))
        })
        .collect();
    pts.len() >= 2 && pts.windows(2).all(|w| w[0].0 == w[1].0 || w[0].1 == w[1].1)
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
    /// Renders `draw` onto a white `width` x `height` canvas: plotters draws SVG, resvg
    /// rasterises it.
    pub fn render(
        width: u32,
        height: u32,
        draw: impl FnOnce(&Area<'_>) -> Result<()>,
    ) -> Result<Figure> {
        register_font();
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
            draw(&root)?;
            root.present().map_err(draw_err)?;
        }
        Figure::from_svg(&prepare_svg(&svg), width, height)
    }

    /// Rasterises an SVG document onto a white `width` x `height` canvas.
    fn from_svg(svg: &str, width: u32, height: u32) -> Result<Figure> {
        use resvg::tiny_skia::{Color, Pixmap, Transform};
        let tree = resvg::usvg::Tree::from_str(svg, svg_options())
            .map_err(|e| error(format!("drawing the figure failed: invalid SVG: {e}")))?;
        let mut pixmap = Pixmap::new(width, height)
            .ok_or_else(|| error(format!("a figure of {width}x{height} pixels cannot be drawn")))?;
        pixmap.fill(Color::WHITE);
        resvg::render(&tree, Transform::default(), &mut pixmap.as_mut());
        // Opaque white background: the premultiplied RGBA bytes are plain RGB.
        let rgb = pixmap.data().chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
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
