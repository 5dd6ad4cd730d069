//! The figures of the notebooks: loss curves, image grids and panels (feature maps, kernels,
//! hidden layers), heat-maps, bar charts, scatter and line charts, the confusion matrix. Each
//! returns one [`Figure`]: evcxr shows one image per cell, so panels are composed into one.

use super::figure::{draw_err, text_size, Area, BLUE, FONT, LABEL, ORANGE, TICK, TITLE};
use super::Figure;
use crate::{error, Result, Tensor};
use plotters::prelude::*;
use plotters::style::colors::colormaps::{ColorMap, ViridisRGB};

/// Decimals that tell neighbouring ticks apart on an axis spanning `span` (plotters puts 5 to 10
/// ticks on it), as matplotlib's default formatter does: "0.5, 1.0" over 2, "2.3020, 2.3025"
/// over 0.002, whole numbers over 20.
pub(super) fn decimals(span: f64) -> usize {
    if !(span.is_finite() && span > 0.0) {
        return 2;
    }
    ((-(span / 5.0).log10()).ceil().max(0.0) as usize).min(6)
}

/// matplotlib's `tab:red`: mistakes.
const RED_MARK: RGBColor = RGBColor(0xd6, 0x27, 0x28);

/// The reference lines' and secondary text's colour.
const GREY: RGBColor = RGBColor(0x55, 0x55, 0x55);

/// Text in the bundled font at `size`, anchored at (`h`, `v`) of its box.
pub(super) fn anchored(
    size: f64,
    h: plotters::style::text_anchor::HPos,
    v: plotters::style::text_anchor::VPos,
    color: &'static RGBColor,
) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font())
        .color(color)
        .pos(plotters::style::text_anchor::Pos::new(h, v))
}

/// The legend places in matplotlib's order for `loc="best"`.
const LEGEND_PLACES: [SeriesLabelPosition; 9] = [
    SeriesLabelPosition::UpperRight,
    SeriesLabelPosition::UpperLeft,
    SeriesLabelPosition::LowerLeft,
    SeriesLabelPosition::LowerRight,
    SeriesLabelPosition::MiddleRight,
    SeriesLabelPosition::MiddleLeft,
    SeriesLabelPosition::LowerMiddle,
    SeriesLabelPosition::UpperMiddle,
    SeriesLabelPosition::MiddleMiddle,
];

/// matplotlib's `legend(loc="best")`: of the nine places, the one whose box covers the fewest
/// of `points` (pixels relative to the plotting area of size `area`), the first in matplotlib's
/// order on a tie. The box is measured as plotters draws it (text, 30-pixel sample, margins).
pub(super) fn best_legend(
    points: &[(i32, i32)],
    area: (i32, i32),
    labels: &[&str],
    font: f64,
) -> SeriesLabelPosition {
    let text_w = labels.iter().map(|l| text_size(l, font).0).max().unwrap_or(0);
    let (w, h) = (text_w + 50, (labels.len() as f64 * font * 1.25) as i32 + 20);
    let place = |p: &SeriesLabelPosition| {
        use SeriesLabelPosition::*;
        let x = match p {
            UpperLeft | MiddleLeft | LowerLeft => 5,
            UpperMiddle | MiddleMiddle | LowerMiddle => (area.0 - w) / 2,
            _ => area.0 - w - 5,
        };
        let y = match p {
            UpperLeft | UpperMiddle | UpperRight => 5,
            MiddleLeft | MiddleMiddle | MiddleRight => (area.1 - h) / 2,
            _ => area.1 - h - 5,
        };
        (x, y)
    };
    let covered = |p: &SeriesLabelPosition| {
        let (x, y) = place(p);
        points.iter().filter(|q| q.0 >= x && q.0 <= x + w && q.1 >= y && q.1 <= y + h).count()
    };
    let best = LEGEND_PLACES.iter().min_by_key(|p| covered(p));
    best.map(place)
        .map_or(SeriesLabelPosition::UpperRight, |(x, y)| SeriesLabelPosition::Coordinate(x, y))
}

/// The pixels (relative to the plotting area) that the polylines through `series` cover,
/// sampled every few pixels, and the plotting area's size: what [`best_legend`] avoids.
fn line_pixels<X, Y>(
    chart: &ChartContext<'_, SVGBackend<'_>, Cartesian2d<X, Y>>,
    series: &[&[(f64, f64)]],
) -> (Vec<(i32, i32)>, (i32, i32))
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let (xr, yr) = chart.plotting_area().get_pixel_range();
    let mut out = Vec::new();
    for pts in series {
        let px: Vec<(i32, i32)> = pts
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .map(|p| chart.backend_coord(p))
            .map(|(x, y)| (x - xr.start, y - yr.start))
            .collect();
        out.extend(&px);
        for w in px.windows(2) {
            let steps = ((w[1].0 - w[0].0).abs().max((w[1].1 - w[0].1).abs()) / 4).max(1);
            for k in 1..steps {
                let t = k as f64 / steps as f64;
                let lerp = |a: i32, b: i32| a + ((b - a) as f64 * t).round() as i32;
                out.push((lerp(w[0].0, w[1].0), lerp(w[0].1, w[1].1)));
            }
        }
    }
    (out, (xr.end - xr.start, yr.end - yr.start))
}

/// Draws the legend of `chart`'s labelled series where it covers the fewest points of `series`.
fn draw_legend<'a, 'b: 'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>,
    series: &[&[(f64, f64)]],
    labels: &[&str],
) -> Result<()>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let (points, area) = line_pixels(chart, series);
    draw_legend_at(chart, best_legend(&points, area, labels, LABEL))
}

/// Draws the legend of `chart`'s labelled series at `position`, in the figures' legend style.
fn draw_legend_at<'a, 'b: 'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> Result<()>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.8))
        .border_style(RGBColor(0xcc, 0xcc, 0xcc))
        .label_font((FONT, LABEL))
        .draw()
        .map_err(draw_err)
}

/// Training and validation loss per epoch (x = epoch 1..N), titled `title`, with axis labels
/// "epoch" / "loss" and the legend "train loss" / "validation loss" where it hides the fewest
/// points (the original plots against the epoch index 0..N-1, without title or labels).
pub fn loss_curves(title: &str, train: &[f64], val: &[f64]) -> Result<Figure> {
    let all: Vec<f64> = train.iter().chain(val).copied().filter(|v| v.is_finite()).collect();
    if all.is_empty() {
        return Err(error("no finite loss values to plot"));
    }
    let (lo, hi) = all.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let pad = ((hi - lo) * 0.05).max(hi.abs().max(1.0) * 1e-4);
    let n = train.len().max(val.len()).max(2);
    let places = decimals(hi - lo + 2.0 * pad);
    let curves: Vec<Vec<(f64, f64)>> = [train, val]
        .iter()
        .map(|v| v.iter().enumerate().map(|(i, &y)| ((i + 1) as f64, y)).collect())
        .collect();
    Figure::render(640, 440, |root| {
        root.fill(&WHITE).map_err(draw_err)?;
        let mut chart = ChartBuilder::on(root)
            .margin(15)
            .caption(title, (FONT, TITLE))
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(0.5..(n as f64 + 0.5), (lo - pad)..(hi + pad))
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .label_style((FONT, TICK))
            .axis_desc_style((FONT, LABEL))
            .x_desc("epoch")
            .y_desc("loss")
            // Epochs are integers: label only the integer ticks plotters picks.
            .x_label_formatter(&|x| {
                if (x - x.round()).abs() < 1e-6 {
                    format!("{}", x.round() as i64)
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| format!("{y:.places$}"))
            .draw()
            .map_err(draw_err)?;
        for (values, color, label) in
            [(&curves[0], BLUE, "train loss"), (&curves[1], ORANGE, "validation loss")]
        {
            chart
                .draw_series(LineSeries::new(values.iter().copied(), color.stroke_width(2)))
                .map_err(draw_err)?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        draw_legend(&mut chart, &[&curves[0], &curves[1]], &["train loss", "validation loss"])
    })
}

/// One image as rows of RGB colours: `(1, H, W)` or `(H, W)` through the viridis colour map
/// (matplotlib's default), scaled to `range` (`vmin`, `vmax`) or, when `None`, to the image's
/// own min..max like `imshow`; `(3, H, W)` in [0, 1] as RGB.
fn image_pixels(
    image: &Tensor,
    range: Option<(f32, f32)>,
) -> Result<(usize, usize, Vec<RGBColor>)> {
    let img = image.to_dtype(candle_core::DType::F32)?.to_device(&candle_core::Device::Cpu)?;
    let img = match img.rank() {
        2 => img.unsqueeze(0)?,
        3 => img,
        _ => {
            return Err(error(format!(
                "an image must be (H, W), (1, H, W) or (3, H, W), got {:?}",
                image.dims()
            )))
        }
    };
    let (c, h, w) = img.dims3()?;
    let v = img.flatten_all()?.to_vec1::<f32>()?;
    let px = match c {
        1 => {
            let (lo, hi) = range.unwrap_or_else(|| {
                v.iter().fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x)))
            });
            let span = if hi > lo { hi - lo } else { 1.0 };
            v.iter()
                .map(|&x| {
                    ViridisRGB.get_color_normalized(((x - lo) / span).clamp(0.0, 1.0), 0.0, 1.0)
                })
                .collect()
        }
        3 => {
            let q = |x: f32| (x.clamp(0.0, 1.0) * 255.0).round() as u8;
            (0..h * w).map(|i| RGBColor(q(v[i]), q(v[h * w + i]), q(v[2 * h * w + i]))).collect()
        }
        _ => return Err(error(format!("an image must have 1 or 3 channels, got {c}"))),
    };
    Ok((h, w, px))
}

/// Draws decoded pixels into the rectangle at (x0, y0) of `w_px` x `h_px` screen pixels.
fn draw_pixels(
    root: &Area<'_>,
    (h, w, px): &(usize, usize, Vec<RGBColor>),
    x0: i32,
    y0: i32,
    w_px: u32,
    h_px: u32,
) -> Result<()> {
    let (sx, sy) = (w_px as f64 / *w as f64, h_px as f64 / *h as f64);
    for r in 0..*h {
        for c in 0..*w {
            let (xa, ya) = (x0 + (c as f64 * sx) as i32, y0 + (r as f64 * sy) as i32);
            let (xb, yb) = (x0 + ((c + 1) as f64 * sx) as i32, y0 + ((r + 1) as f64 * sy) as i32);
            root.draw(&Rectangle::new([(xa, ya), (xb, yb)], px[r * w + c].filled()))
                .map_err(draw_err)?;
        }
    }
    Ok(())
}

fn draw_title(root: &Area<'_>, text: &str, x: i32, y: i32, centred: bool) -> Result<()> {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    let h = if centred { HPos::Center } else { HPos::Left };
    let style =
        TextStyle::from((FONT, LABEL).into_font()).color(&BLACK).pos(Pos::new(h, VPos::Bottom));
    root.draw_text(text, &style, (x, y)).map_err(draw_err)
}

/// Several images in a grid, each with its title above it; `cols` per row, each drawn
/// `cell` pixels wide. One figure, so a notebook cell can show them all.
pub fn image_grid(images: &[Tensor], titles: &[String], cols: usize, cell: u32) -> Result<Figure> {
    marked_grid(images, titles, &[], cols, cell)
}

/// A grid of classified images, each titled `true 7, predicted 7 (0.997)`; a mistake has its
/// title in red and a red frame, so it is seen at a glance. `confidence` may be empty.
pub fn prediction_grid(
    images: &[Tensor],
    truth: &[String],
    predicted: &[String],
    confidence: &[f32],
    cols: usize,
    cell: u32,
) -> Result<Figure> {
    if truth.len() != images.len() || predicted.len() != images.len() {
        return Err(error(format!(
            "prediction_grid got {} images, {} true labels and {} predictions",
            images.len(),
            truth.len(),
            predicted.len()
        )));
    }
    let titles: Vec<String> = (0..images.len())
        .map(|i| match confidence.get(i) {
            Some(c) => format!("true {}, predicted {} ({c:.3})", truth[i], predicted[i]),
            None => format!("true {}, predicted {}", truth[i], predicted[i]),
        })
        .collect();
    let wrong: Vec<bool> = truth.iter().zip(predicted).map(|(t, p)| t != p).collect();
    marked_grid(images, &titles, &wrong, cols, cell)
}

fn marked_grid(
    images: &[Tensor],
    titles: &[String],
    wrong: &[bool],
    cols: usize,
    cell: u32,
) -> Result<Figure> {
    if images.is_empty() {
        return Err(error("image_grid needs at least one image"));
    }
    if !titles.is_empty() && titles.len() != images.len() {
        return Err(error(format!(
            "image_grid got {} images but {} titles",
            images.len(),
            titles.len()
        )));
    }
    let decoded = images.iter().map(|i| image_pixels(i, None)).collect::<Result<Vec<_>>>()?;
    let cols = cols.clamp(1, images.len());
    let rows = images.len().div_ceil(cols);
    let title_h: u32 = if titles.is_empty() { 6 } else { 26 };
    let (h0, w0) = (decoded[0].0, decoded[0].1);
    let cell_h = (cell as f64 * h0 as f64 / w0 as f64).round() as u32;
    let pad = 10u32;
    let width = cols as u32 * (cell + pad) + pad;
    let height = rows as u32 * (cell_h + title_h + pad) + pad;
    Figure::render(width, height, |root| {
        root.fill(&WHITE).map_err(draw_err)?;
        for (k, px) in decoded.iter().enumerate() {
            let x0 = (pad + (k % cols) as u32 * (cell + pad)) as i32;
            let y0 = (pad + (k / cols) as u32 * (cell_h + title_h + pad) + title_h) as i32;
            let mistake = wrong.get(k).copied().unwrap_or(false);
            if let Some(t) = titles.get(k) {
                use plotters::style::text_anchor::{HPos, VPos};
                let color = if mistake { &RED_MARK } else { &BLACK };
                let style = anchored(TICK, HPos::Center, VPos::Bottom, color);
                root.draw_text(t, &style, (x0 + cell as i32 / 2, y0 - 5)).map_err(draw_err)?;
            }
            if mistake {
                let frame = [(x0 - 4, y0 - 4), (x0 + cell as i32 + 4, y0 + cell_h as i32 + 4)];
                root.draw(&Rectangle::new(frame, RED_MARK.filled())).map_err(draw_err)?;
            }
            draw_pixels(root, px, x0, y0, cell, cell_h)?;
        }
        Ok(())
    })
}

/// One image with a title, e.g. a digit and "predicted: 7 (conf 0.997)".
pub fn image(image: &Tensor, title: &str) -> Result<Figure> {
    image_grid(std::slice::from_ref(image), &[title.to_string()], 1, 224)
}

enum PanelRow {
    Images { title: String, images: Vec<(usize, usize, Vec<RGBColor>)>, cell: u32 },
    Strip { title: String, pixels: (usize, usize, Vec<RGBColor>) },
}

/// A figure made of titled rows: rows of images (feature maps, kernels) and heat-map strips
/// (hidden-layer vectors), e.g. a network's activations for one input.
///
/// ```no_run
/// # use support::viz::Panels;
/// # use support::Tensor;
/// # fn f(x: Tensor, maps: Vec<Tensor>, v: Tensor) -> support::Result<()> {
/// let fig = Panels::new()
///     .row("Input", &[x], None, 64)?
///     .row("conv1", &maps, Some((0.0, 1.0)), 64)?
///     .strip("dense1", &v)?
///     .render()?;
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct Panels {
    rows: Vec<PanelRow>,
    colorbar: Option<(f32, f32)>,
}

const PAD: u32 = 8;
const TITLE_H: u32 = 22;
const STRIP_H: u32 = 28;
/// A strip of at most this many values (e.g. ten class scores) gets its indices under it.
const STRIP_TICKS_MAX: usize = 20;
const STRIP_TICKS_H: u32 = 20;

impl Panels {
    /// A figure with no rows yet.
    pub fn new() -> Self {
        Panels::default()
    }

    /// A row of images drawn `cell` pixels wide, colour range `range` (None: each image its own).
    pub fn row(
        mut self,
        title: &str,
        images: &[Tensor],
        range: Option<(f32, f32)>,
        cell: u32,
    ) -> Result<Self> {
        if images.is_empty() {
            return Err(error(format!("panel row `{title}` has no images")));
        }
        let images = images.iter().map(|i| image_pixels(i, range)).collect::<Result<Vec<_>>>()?;
        self.rows.push(PanelRow::Images { title: title.to_string(), images, cell });
        Ok(self)
    }

    /// A one-row heat-map of a vector (any shape, flattened), scaled to its own min..max.
    pub fn strip(mut self, title: &str, values: &Tensor) -> Result<Self> {
        let v = values.flatten_all()?;
        let n = v.dim(0)?;
        let pixels = image_pixels(&v.reshape((1, 1, n))?, None)?;
        self.rows.push(PanelRow::Strip { title: title.to_string(), pixels });
        Ok(self)
    }

    fn row_size(row: &PanelRow) -> (u32, u32) {
        match row {
            PanelRow::Images { images, cell, .. } => {
                let (h, w) = (images[0].0, images[0].1);
                let cell_h = (*cell as f64 * h as f64 / w as f64).round() as u32;
                (images.len() as u32 * (cell + PAD) - PAD, TITLE_H + cell_h)
            }
            PanelRow::Strip { pixels, .. } => {
                let ticks = if pixels.1 <= STRIP_TICKS_MAX { STRIP_TICKS_H } else { 0 };
                ((pixels.1 as u32 * 4).clamp(240, 960), TITLE_H + STRIP_H + ticks)
            }
        }
    }

    /// Adds a colour bar for the range `(lo, hi)` on the right: use it with rows drawn at that
    /// same range (`row(.., Some((lo, hi)), ..)`), so that one colour means one value everywhere.
    pub fn colorbar(mut self, range: (f32, f32)) -> Self {
        self.colorbar = Some(range);
        self
    }

    /// Draws all rows, one under the other.
    pub fn render(&self) -> Result<Figure> {
        if self.rows.is_empty() {
            return Err(error("a Panels figure needs at least one row"));
        }
        let sizes: Vec<(u32, u32)> = self.rows.iter().map(Self::row_size).collect();
        let bar_w = if self.colorbar.is_some() { COLORBAR_W } else { 0 };
        let rows_w = sizes.iter().map(|s| s.0).max().unwrap_or(0);
        let width = rows_w + bar_w + 2 * PAD;
        let height = sizes.iter().map(|s| s.1 + PAD).sum::<u32>() + PAD;
        Figure::render(width, height, |root| {
            root.fill(&WHITE).map_err(draw_err)?;
            let mut y = PAD as i32;
            for (row, (rw, rh)) in self.rows.iter().zip(&sizes) {
                let x0 = PAD as i32;
                match row {
                    PanelRow::Images { title, images, cell } => {
                        draw_title(root, title, x0, y + TITLE_H as i32 - 4, false)?;
                        let cell_h = rh - TITLE_H;
                        for (k, px) in images.iter().enumerate() {
                            draw_pixels(
                                root,
                                px,
                                x0 + (k as u32 * (cell + PAD)) as i32,
                                y + TITLE_H as i32,
                                *cell,
                                cell_h,
                            )?;
                        }
                    }
                    PanelRow::Strip { title, pixels } => {
                        draw_title(root, title, x0, y + TITLE_H as i32 - 4, false)?;
                        draw_pixels(root, pixels, x0, y + TITLE_H as i32, *rw, STRIP_H)?;
                        if pixels.1 <= STRIP_TICKS_MAX {
                            use plotters::style::text_anchor::{HPos, VPos};
                            let style = anchored(TICK - 1.0, HPos::Center, VPos::Top, &BLACK);
                            let cell = *rw as f64 / pixels.1 as f64;
                            for k in 0..pixels.1 {
                                let cx = x0 + ((k as f64 + 0.5) * cell) as i32;
                                let cy = y + (TITLE_H + STRIP_H) as i32 + 3;
                                root.draw_text(&k.to_string(), &style, (cx, cy))
                                    .map_err(draw_err)?;
                            }
                        }
                    }
                }
                y += (rh + PAD) as i32;
            }
            if let Some(range) = self.colorbar {
                let top = (PAD + TITLE_H) as i32;
                let bar_h = (height - PAD - top as u32).max(40) as i32;
                draw_colorbar(root, ((PAD + rows_w + 12) as i32, top), bar_h.min(400), range)?;
            }
            Ok(())
        })
    }
}

/// An image with its title beside a curve (e.g. activation maximisation: the optimised input
/// and the loss per iteration), as one figure.
pub fn image_and_curve(
    image: &Tensor,
    title: &str,
    values: &[f64],
    curve_label: &str,
) -> Result<Figure> {
    let px = image_pixels(image, None)?;
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.is_empty() {
        return Err(error("image_and_curve: no finite values to plot"));
    }
    let (lo, hi) = finite.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let pad = ((hi - lo) * 0.05).max(hi.abs().max(1.0) * 1e-4);
    let places = decimals(hi - lo + 2.0 * pad);
    let curve: Vec<(f64, f64)> = values.iter().enumerate().map(|(i, &v)| (i as f64, v)).collect();
    Figure::render(820, 360, |root| {
        root.fill(&WHITE).map_err(draw_err)?;
        let (left, right) = root.split_horizontally(330);
        draw_title(&left, title, 165, 36, true)?;
        draw_pixels(&left, &px, 25, 45, 280, 280)?;
        let mut chart = ChartBuilder::on(&right)
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..values.len().max(2) as f64, (lo - pad)..(hi + pad))
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .label_style((FONT, TICK))
            .axis_desc_style((FONT, LABEL))
            .x_desc("iteration")
            .y_desc(curve_label)
            .x_label_formatter(&|x| format!("{}", x.round() as i64))
            .y_label_formatter(&|y| format!("{y:.places$}"))
            .draw()
            .map_err(draw_err)?;
        chart
            .draw_series(LineSeries::new(curve.iter().copied(), BLUE.stroke_width(2)))
            .map_err(draw_err)?
            .label(curve_label)
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        draw_legend(&mut chart, &[&curve], &[curve_label])
    })
}

/// Learned convolution kernels `(O, I, KH, KW)`: one row of `O` kernels when `I == 1`, else one
/// row per output channel with its `I` input slices. All are drawn on one colour scale,
/// symmetric about zero (`-m..m`, `m` the largest absolute weight), with its colour bar, so that
/// the sign and size of a weight read the same in every kernel (matplotlib's `imshow` would
/// scale each kernel to its own range).
pub fn kernels(weight: &Tensor, title: &str, cell: u32) -> Result<Figure> {
    let (o, i, _, _) = weight.dims4()?;
    let m = weight.abs()?.max_all()?.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()?;
    let m = if m.is_finite() && m > 0.0 { m } else { 1.0 };
    let range = Some((-m, m));
    let k = |a: usize, b: usize| weight.get(a)?.get(b);
    let mut panels = Panels::new().colorbar((-m, m));
    if i == 1 {
        let row: Vec<Tensor> = (0..o).map(|a| k(a, 0)).collect::<Result<_>>()?;
        panels = panels.row(title, &row, range, cell)?;
    } else {
        for a in 0..o {
            let row: Vec<Tensor> = (0..i).map(|b| k(a, b)).collect::<Result<_>>()?;
            panels = panels.row(&format!("{title}: output channel {a}"), &row, range, cell)?;
        }
    }
    panels.render()
}

/// A matrix `(H, W)` (e.g. a learned kernel) as a viridis heat-map with a colour bar and its
/// min / max, like `plt.imshow(k); plt.colorbar()`.
pub fn heatmap(values: &Tensor, title: &str) -> Result<Figure> {
    let m = match values.dims() {
        [_, _] => values.clone(),
        [1, h, w] | [1, 1, h, w] => values.reshape((*h, *w))?,
        d => return Err(error(format!("heatmap needs an (H, W) matrix, got {d:?}"))),
    };
    let px = image_pixels(&m, None)?;
    let v = m.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let (lo, hi) = v.iter().fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    Figure::render(330, 280, |root| {
        root.fill(&WHITE).map_err(draw_err)?;
        draw_title(root, title, 120, 26, true)?;
        draw_pixels(root, &px, 10, 35, 220, 220)?;
        draw_colorbar(root, (245, 35), 220, (lo, hi))
    })
}

/// Width in pixels that [`draw_colorbar`] takes (bar, ticks and labels).
const COLORBAR_W: u32 = 80;

/// A vertical viridis colour bar at `(x0, y0)`, `height` pixels tall, from `hi` (top) to `lo`
/// (bottom), with five labelled ticks, like `plt.colorbar()`.
fn draw_colorbar(
    root: &Area<'_>,
    (x0, y0): (i32, i32),
    height: i32,
    (lo, hi): (f32, f32),
) -> Result<()> {
    use plotters::style::text_anchor::{HPos, VPos};
    for i in 0..height {
        let t = 1.0 - i as f32 / (height - 1).max(1) as f32;
        root.draw(&Rectangle::new(
            [(x0, y0 + i), (x0 + 14, y0 + i + 1)],
            ViridisRGB.get_color_normalized(t, 0.0, 1.0).filled(),
        ))
        .map_err(draw_err)?;
    }
    root.draw(&Rectangle::new([(x0, y0), (x0 + 14, y0 + height)], BLACK.stroke_width(1)))
        .map_err(draw_err)?;
    let places = decimals((hi - lo) as f64);
    for k in 0..5 {
        let t = k as f32 / 4.0;
        let y = y0 + ((1.0 - t) * (height - 1) as f32).round() as i32;
        root.draw(&PathElement::new(vec![(x0 + 14, y), (x0 + 18, y)], BLACK.stroke_width(1)))
            .map_err(draw_err)?;
        let style = anchored(TICK - 2.0, HPos::Left, VPos::Center, &BLACK);
        root.draw_text(&format!("{:.places$}", lo + t * (hi - lo)), &style, (x0 + 21, y))
            .map_err(draw_err)?;
    }
    Ok(())
}

/// Options of [`bar_chart_with`]; the default is [`bar_chart`]'s chart.
#[derive(Clone, Debug, Default)]
pub struct BarChart {
    /// Title above the chart (none when empty).
    pub title: String,
    /// Longest bar first (default: the given order).
    pub sorted: bool,
    /// Vertical reference lines `(label, value)`, dashed and labelled, e.g. the input's SNR.
    pub references: Vec<(String, f64)>,
}

/// A horizontal bar chart of `values` with their `labels` (the first at the top), the value
/// written after each bar.
pub fn bar_chart(labels: &[String], values: &[f64], axis_label: &str) -> Result<Figure> {
    bar_chart_with(labels, values, axis_label, &BarChart::default())
}

/// [`bar_chart`] with a title, sorting and reference lines.
pub fn bar_chart_with(
    labels: &[String],
    values: &[f64],
    axis_label: &str,
    opts: &BarChart,
) -> Result<Figure> {
    if labels.len() != values.len() || labels.is_empty() {
        return Err(error(format!(
            "bar_chart got {} labels and {} values",
            labels.len(),
            values.len()
        )));
    }
    let n = values.len();
    let mut order: Vec<usize> = (0..n).collect();
    if opts.sorted {
        order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    }
    let shown = values.iter().chain(opts.references.iter().map(|r| &r.1)).filter(|v| v.is_finite());
    let (lo, hi) = shown.fold((0f64, 0f64), |(a, b), &v| (a.min(v), b.max(v)));
    let span = (hi - lo).max(1e-9);
    let (x0, x1) = (if lo < 0.0 { lo - 0.05 * span } else { 0.0 }, hi + 0.12 * span);
    let label_w = labels.iter().map(|l| text_size(l, TICK).0).max().unwrap_or(0) as u32 + 24;
    let top = if opts.title.is_empty() { 12 } else { 44 };
    let height = top + 34 * n as u32 + 60 + if opts.references.is_empty() { 0 } else { 20 };
    Figure::render(760, height, |root| {
        root.fill(&WHITE).map_err(draw_err)?;
        let mut builder = ChartBuilder::on(root);
        builder.margin(12).x_label_area_size(50).y_label_area_size(label_w);
        if !opts.title.is_empty() {
            builder.caption(&opts.title, (FONT, TITLE));
        }
        // Reference lines are labelled in a strip of half a row above the bars.
        let top_y = if opts.references.is_empty() { n as f64 } else { n as f64 + 0.6 };
        let mut chart = builder.build_cartesian_2d(x0..x1, 0.0..top_y).map_err(draw_err)?;
        let places = decimals(x1 - x0);
        chart
            .configure_mesh()
            .disable_mesh()
            .y_labels(0)
            .x_label_formatter(&|v| format!("{v:.places$}"))
            .label_style((FONT, TICK))
            .axis_desc_style((FONT, LABEL))
            .x_desc(axis_label)
            .draw()
            .map_err(draw_err)?;
        let row_y = |row: usize| (n - 1 - row) as f64;
        chart
            .draw_series(order.iter().enumerate().map(|(row, &i)| {
                let y = row_y(row);
                Rectangle::new([(0.0, y + 0.15), (values[i], y + 0.85)], BLUE.filled())
            }))
            .map_err(draw_err)?;
        let (xr, _) = chart.plotting_area().get_pixel_range();
        use plotters::style::text_anchor::{HPos, VPos};
        for (row, &i) in order.iter().enumerate() {
            let (vx, vy) = chart.backend_coord(&(values[i].max(0.0), row_y(row) + 0.5));
            root.draw_text(
                &labels[i],
                &anchored(TICK, HPos::Right, VPos::Center, &BLACK),
                (xr.start - 8, vy),
            )
            .map_err(draw_err)?;
            root.draw_text(
                &format!("{:.2}", values[i]),
                &anchored(TICK, HPos::Left, VPos::Center, &BLACK),
                (vx + 6, vy),
            )
            .map_err(draw_err)?;
        }
        for (label, v) in &opts.references {
            let grey = GREY;
            chart
                .draw_series(DashedLineSeries::new(
                    [(*v, 0.0), (*v, top_y)],
                    6,
                    4,
                    grey.stroke_width(2),
                ))
                .map_err(draw_err)?;
            let (px, py) = chart.backend_coord(&(*v, top_y));
            let style = anchored(TICK, HPos::Left, VPos::Top, &GREY);
            root.draw_text(&format!("{label} ({v:.2})"), &style, (px + 5, py + 2))
                .map_err(draw_err)?;
        }
        Ok(())
    })
}

/// A square matrix with values in [0, 1] (e.g. a row-normalised confusion matrix) as a
/// blue-scale grid, each cell labelled with its value, rows and columns labelled with `labels`
/// (rows: true class, columns: predicted class).
pub fn matrix(values: &[Vec<f64>], labels: &[String], title: &str) -> Result<Figure> {
    let n = labels.len();
    if n == 0 || values.len() != n || values.iter().any(|r| r.len() != n) {
        return Err(error(format!("matrix needs {n} rows of {n} values")));
    }
    let (cell, left, top) = (52i32, 80i32, 50i32);
    let size = cell * n as i32;
    Figure::render((left + size + 20) as u32, (top + size + 60) as u32, |root| {
        root.fill(&WHITE).map_err(draw_err)?;
        draw_title(root, title, left + size / 2, 22, true)?;
        let centered = |size: i32| {
            TextStyle::from((FONT, size).into_font()).color(&BLACK).pos(
                plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Center,
                    plotters::style::text_anchor::VPos::Center,
                ),
            )
        };
        for (i, row) in values.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                let v = v.clamp(0.0, 1.0);
                let shade = |c: u8| (255.0 - v * (255.0 - c as f64)) as u8;
                let (x, y) = (left + j as i32 * cell, top + i as i32 * cell);
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    RGBColor(shade(0x08), shade(0x30), shade(0x6b)).filled(),
                ))
                .map_err(draw_err)?;
                let text = centered(13).color(if v > 0.5 { &WHITE } else { &BLACK });
                root.draw_text(&format!("{v:.2}"), &text, (x + cell / 2, y + cell / 2))
                    .map_err(draw_err)?;
            }
            root.draw_text(&labels[i], &centered(13), (left / 2, top + i as i32 * cell + cell / 2))
                .map_err(draw_err)?;
            root.draw_text(
                &labels[i],
                &centered(13),
                (left + i as i32 * cell + cell / 2, top + size + 14),
            )
            .map_err(draw_err)?;
        }
        root.draw_text(
            "predicted class (rows: true class)",
            &centered(14),
            (left + size / 2, top + size + 40),
        )
        .map_err(draw_err)?;
        Ok(())
    })
}

/// The axes of the scatter and line charts: no minor grid, the bundled font; the caller adds
/// the labels' formats and draws.
macro_rules! mesh {
    ($chart:expr, $x_label:expr, $y_label:expr) => {
        $chart
            .configure_mesh()
            .light_line_style(WHITE)
            .label_style((FONT, TICK))
            .x_desc($x_label)
            .y_desc($y_label)
            .axis_desc_style((FONT, LABEL))
    };
}

/// Places text boxes of size `sizes` next to `anchors` (pixels) inside `bounds`, each where it
/// overlaps no other label, no anchor, none of the `obstacles` (rectangles `(x0, y0, x1, y1)`,
/// e.g. error bars) and no box placed before it: right of its point first,
/// then left, above, below and the diagonals, nearer before farther, then straight above or
/// below further out; a place nearer to another point than to its own counts as a collision.
/// Returns each box's top-left corner.
pub(super) fn place_labels(
    anchors: &[(i32, i32)],
    sizes: &[(i32, i32)],
    bounds: (i32, i32, i32, i32),
    obstacles: &[(i32, i32, i32, i32)],
) -> Vec<(i32, i32)> {
    type Rect = (i32, i32, i32, i32);
    let overlap = |a: &Rect, b: &Rect| {
        let w = (a.2.min(b.2) - a.0.max(b.0)).max(0);
        let h = (a.3.min(b.3) - a.1.max(b.1)).max(0);
        w as i64 * h as i64
    };
    let mut taken: Vec<Rect> = anchors.iter().map(|&(x, y)| (x - 6, y - 6, x + 6, y + 6)).collect();
    taken.extend_from_slice(obstacles);
    // Squared distance from a point to a rectangle (0 inside it).
    let dist2 = |r: &Rect, (px, py): (i32, i32)| {
        let dx = (r.0 - px).max(px - r.2).max(0) as i64;
        let dy = (r.1 - py).max(py - r.3).max(0) as i64;
        dx * dx + dy * dy
    };
    let mut out = Vec::with_capacity(anchors.len());
    for (i, (&(x, y), &(w, h))) in anchors.iter().zip(sizes).enumerate() {
        let mut candidates = Vec::new();
        for d in [8, 20, 36] {
            candidates.extend([
                (x + d, y - h / 2),
                (x - d - w, y - h / 2),
                (x - w / 2, y - d - h),
                (x - w / 2, y + d),
                (x + d, y - d - h),
                (x + d, y + d),
                (x - d - w, y - d - h),
                (x - d - w, y + d),
            ]);
        }
        // Farther away only straight above or below (e.g. past the end of an error bar), where a
        // label still reads as its point's.
        for d in [60, 90, 120, 150] {
            candidates.extend([(x - w / 2, y - d - h), (x - w / 2, y + d)]);
        }
        let cost = |&(cx, cy): &(i32, i32)| {
            let r = (cx, cy, cx + w, cy + h);
            let outside = (bounds.0 - r.0).max(0)
                + (r.2 - bounds.2).max(0)
                + (bounds.1 - r.1).max(0)
                + (r.3 - bounds.3).max(0);
            let hits: i64 = taken.iter().map(|t| overlap(&r, t)).sum();
            // A label nearer to another point than to its own would be read as that point's.
            let own = dist2(&r, (x, y));
            let misread = anchors.iter().enumerate().any(|(j, &a)| j != i && dist2(&r, a) < own);
            hits + outside as i64 * 1000 + if misread { 400 } else { 0 }
        };
        // The first candidate of the lowest cost (candidates are in order of preference).
        let best = candidates.iter().copied().min_by_key(cost).unwrap_or((x + 8, y - h / 2));
        taken.push((best.0, best.1, best.0 + w, best.1 + h));
        out.push(best);
    }
    out
}

/// Labelled points `(label, x, y)`, e.g. accuracy against images per second for several
/// models: each label is written beside its point where it overlaps no other label or point
/// ([`place_labels`]). `log_x` puts x on a log scale.
pub fn scatter(
    points: &[(String, f64, f64)],
    x_label: &str,
    y_label: &str,
    log_x: bool,
) -> Result<Figure> {
    let group = PointGroup { name: String::new(), points: points.to_vec(), intervals: vec![] };
    scatter_groups(&[group], x_label, y_label, log_x)
}

/// A group of labelled points for [`scatter_groups`]: one colour, one legend entry.
#[derive(Clone, Debug, Default)]
pub struct PointGroup {
    /// The legend entry (none when empty).
    pub name: String,
    /// Labelled points `(label, x, y)`.
    pub points: Vec<(String, f64, f64)>,
    /// Optional `(low, high)` of each point's y, drawn as an error bar (empty: none), e.g. a
    /// 95% interval of an accuracy measured on few images.
    pub intervals: Vec<(f64, f64)>,
}

/// Several groups of labelled points on one chart, each in its own colour with a legend entry
/// and optional error bars, e.g. accuracies measured here (with their intervals) apart from
/// published ones. Labels are placed as in [`scatter`].
pub fn scatter_groups(
    groups: &[PointGroup],
    x_label: &str,
    y_label: &str,
    log_x: bool,
) -> Result<Figure> {
    let colors = [BLUE, ORANGE, RGBColor(0x2c, 0xa0, 0x2c), RGBColor(0xd6, 0x27, 0x28)];
    // (group, label, x, y, interval) of every drawable point.
    let mut finite = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        if !group.intervals.is_empty() && group.intervals.len() != group.points.len() {
            return Err(error(format!(
                "scatter group `{}` has {} points but {} intervals",
                group.name,
                group.points.len(),
                group.intervals.len()
            )));
        }
        for (i, p) in group.points.iter().enumerate() {
            if p.1.is_finite() && p.2.is_finite() && (!log_x || p.1 > 0.0) {
                let iv = group
                    .intervals
                    .get(i)
                    .copied()
                    .filter(|iv| iv.0.is_finite() && iv.1.is_finite());
                finite.push((g, p.0.as_str(), p.1, p.2, iv));
            }
        }
    }
    if finite.is_empty() {
        return Err(error("scatter: no finite points to plot"));
    }
    let (x0, x1) = finite.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.2), b.max(p.2)));
    let (y0, y1) = finite.iter().fold((f64::MAX, f64::MIN), |(a, b), p| {
        let (lo, hi) = p.4.unwrap_or((p.3, p.3));
        (a.min(p.3).min(lo), b.max(p.3).max(hi))
    });
    let ypad = ((y1 - y0) * 0.12).max(0.01);
    let places = decimals(y1 - y0 + 2.0 * ypad);
    let sizes: Vec<(i32, i32)> =
        finite.iter().map(|p| text_size(p.1, TICK)).map(|(w, h)| (w + 2, h + 2)).collect();
    let named: Vec<(usize, &str)> = groups
        .iter()
        .enumerate()
        .filter(|(_, g)| !g.name.is_empty())
        .map(|(i, g)| (i, g.name.as_str()))
        .collect();
    // Headroom above the points for the legend, when there is one.
    let top = if named.is_empty() { y1 + ypad } else { y1 + ypad + (y1 - y0) * 0.35 };
    let draw = |root: &Area<'_>| -> Result<()> {
        root.fill(&WHITE).map_err(draw_err)?;
        let mut builder = ChartBuilder::on(root);
        builder.margin(20).x_label_area_size(50).y_label_area_size(70);
        macro_rules! finish {
            ($chart:expr) => {{
                let mut chart = $chart;
                mesh!(chart, x_label, y_label)
                    .x_labels(6)
                    .y_label_formatter(&|v| format!("{v:.places$}"))
                    .x_label_formatter(&|v| {
                        if *v >= 10.0 {
                            format!("{v:.0}")
                        } else {
                            format!("{v:.2}")
                                .trim_end_matches('0')
                                .trim_end_matches('.')
                                .to_string()
                        }
                    })
                    .draw()
                    .map_err(draw_err)?;
                for p in &finite {
                    if let Some((lo, hi)) = p.4 {
                        let c = colors[p.0 % colors.len()];
                        chart
                            .draw_series(std::iter::once(PathElement::new(
                                vec![(p.2, lo), (p.2, hi)],
                                c.stroke_width(2),
                            )))
                            .map_err(draw_err)?;
                        for y in [lo, hi] {
                            let (cx, cy) = chart.backend_coord(&(p.2, y));
                            root.draw(&PathElement::new(
                                vec![(cx - 5, cy), (cx + 5, cy)],
                                c.stroke_width(2),
                            ))
                            .map_err(draw_err)?;
                        }
                    }
                }
                for (g, group) in groups.iter().enumerate() {
                    let c = colors[g % colors.len()];
                    let pts: Vec<(f64, f64)> =
                        finite.iter().filter(|p| p.0 == g).map(|p| (p.2, p.3)).collect();
                    let series = chart
                        .draw_series(pts.iter().map(|&p| Circle::new(p, 5, c.filled())))
                        .map_err(draw_err)?;
                    if !group.name.is_empty() {
                        series
                            .label(group.name.as_str())
                            .legend(move |(x, y)| Circle::new((x + 10, y), 5, c.filled()));
                    }
                }
                let (xr, yr) = chart.plotting_area().get_pixel_range();
                let anchors: Vec<(i32, i32)> =
                    finite.iter().map(|p| chart.backend_coord(&(p.2, p.3))).collect();
                let bars: Vec<(i32, i32, i32, i32)> = finite
                    .iter()
                    .filter_map(|p| {
                        let (lo, hi) = p.4?;
                        let (x, y_lo) = chart.backend_coord(&(p.2, lo));
                        let (_, y_hi) = chart.backend_coord(&(p.2, hi));
                        Some((x - 6, y_hi, x + 6, y_lo))
                    })
                    .collect();
                let bounds = (xr.start, yr.start, xr.end, yr.end);
                let at = place_labels(&anchors, &sizes, bounds, &bars);
                use plotters::style::text_anchor::{HPos, VPos};
                let style = anchored(TICK, HPos::Left, VPos::Top, &BLACK);
                for (p, &(x, y)) in finite.iter().zip(&at) {
                    root.draw_text(p.1, &style, (x + 1, y + 1)).map_err(draw_err)?;
                }
                if !named.is_empty() {
                    // Avoid the points and their labels (a few pixels of each label box).
                    let mut avoid: Vec<(i32, i32)> =
                        anchors.iter().map(|&(x, y)| (x - xr.start, y - yr.start)).collect();
                    for (&(x, y), &(w, h)) in at.iter().zip(&sizes) {
                        for k in 0..=8 {
                            avoid.push((x + w * k / 8 - xr.start, y + h / 2 - yr.start));
                        }
                    }
                    for p in &finite {
                        if let Some((lo, hi)) = p.4 {
                            let (ax, ay) = chart.backend_coord(&(p.2, lo));
                            let (_, by) = chart.backend_coord(&(p.2, hi));
                            for y in (by..=ay).step_by(4) {
                                avoid.push((ax - xr.start, y - yr.start));
                            }
                        }
                    }
                    let labels: Vec<&str> = named.iter().map(|n| n.1).collect();
                    let area = (xr.end - xr.start, yr.end - yr.start);
                    draw_legend_at(&mut chart, best_legend(&avoid, area, &labels, LABEL))?;
                }
            }};
        }
        if log_x {
            finish!(builder
                .build_cartesian_2d((x0 / 1.6..x1 * 1.6).log_scale(), (y0 - ypad)..top)
                .map_err(draw_err)?);
        } else {
            let xpad = ((x1 - x0) * 0.12).max(1e-3);
            finish!(builder
                .build_cartesian_2d((x0 - xpad)..(x1 + xpad), (y0 - ypad)..top)
                .map_err(draw_err)?);
        }
        Ok(())
    };
    Figure::render(760, 500, draw)
}

/// Several curves `(label, points)` on one chart, each a line with its points marked and a
/// legend entry, e.g. test accuracy against the number of training images for two methods.
/// `log_x` puts x on a log scale (x must then be positive).
pub fn lines(
    series: &[(String, Vec<(f64, f64)>)],
    x_label: &str,
    y_label: &str,
    log_x: bool,
) -> Result<Figure> {
    let pts: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|(_, p)| p.iter().copied())
        .filter(|p| p.0.is_finite() && p.1.is_finite() && (!log_x || p.0 > 0.0))
        .collect();
    if pts.is_empty() {
        return Err(error("lines: no finite points to plot"));
    }
    let (x0, x1) = pts.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y0, y1) = pts.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let ypad = ((y1 - y0) * 0.1).max(0.01);
    let places = decimals(y1 - y0 + 2.0 * ypad);
    // matplotlib's tab10 after blue and orange: green, red, purple.
    let colors = [
        BLUE,
        ORANGE,
        RGBColor(0x2c, 0xa0, 0x2c),
        RGBColor(0xd6, 0x27, 0x28),
        RGBColor(0x94, 0x67, 0xbd),
    ];
    Figure::render(760, 480, |root| {
        root.fill(&WHITE).map_err(draw_err)?;
        let mut builder = ChartBuilder::on(root);
        builder.margin(20).x_label_area_size(40).y_label_area_size(60);
        macro_rules! finish {
            ($chart:expr) => {{
                let mut chart = $chart;
                mesh!(chart, x_label, y_label)
                    .x_label_formatter(&|v| format!("{v:.0}"))
                    .y_label_formatter(&|v| format!("{v:.places$}"))
                    .draw()
                    .map_err(draw_err)?;
                for (i, (label, points)) in series.iter().enumerate() {
                    let color = colors[i % colors.len()];
                    let points: Vec<(f64, f64)> = points
                        .iter()
                        .copied()
                        .filter(|p| p.0.is_finite() && p.1.is_finite() && (!log_x || p.0 > 0.0))
                        .collect();
                    chart
                        .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                        .map_err(draw_err)?
                        .label(label.as_str())
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                        });
                    chart
                        .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                        .map_err(draw_err)?;
                }
                let pts: Vec<&[(f64, f64)]> = series.iter().map(|s| s.1.as_slice()).collect();
                let labels: Vec<&str> = series.iter().map(|s| s.0.as_str()).collect();
                draw_legend(&mut chart, &pts, &labels)?;
            }};
        }
        if log_x {
            finish!(builder
                .build_cartesian_2d((x0 / 1.5..x1 * 1.5).log_scale(), (y0 - ypad)..(y1 + ypad))
                .map_err(draw_err)?);
        } else {
            let xpad = ((x1 - x0) * 0.05).max(1e-3);
            finish!(builder
                .build_cartesian_2d((x0 - xpad)..(x1 + xpad), (y0 - ypad)..(y1 + ypad))
                .map_err(draw_err)?);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_decimals_follow_the_range() {
        // 0.3..2.5 -> "0.5, 1.0"; ResNet_plain's plateau 2.3023..2.3029 -> "2.3025"; 0..200 -> "50".
        assert_eq!(decimals(2.2), 1);
        assert_eq!(decimals(0.0006), 4);
        assert_eq!(decimals(0.002), 4);
        assert_eq!(decimals(200.0), 0);
        assert_eq!(decimals(0.0), 2);
        assert_eq!(decimals(f64::NAN), 2);
    }

    #[test]
    fn the_legend_goes_where_it_hides_the_fewest_points() {
        let labels = ["train loss", "validation loss"];
        let area = (600, 400);
        // Empty chart: matplotlib's first choice, upper right.
        let SeriesLabelPosition::Coordinate(x, y) = best_legend(&[], area, &labels, LABEL) else {
            panic!("a coordinate")
        };
        assert!(x > 300 && y < 50, "{x}, {y}");
        // Points crowd the upper right: the legend moves to another corner, away from them.
        let crowd: Vec<(i32, i32)> =
            (0..200).map(|i| (400 + (i % 20) * 10, 5 + (i / 20) * 10)).collect();
        let SeriesLabelPosition::Coordinate(x, y) = best_legend(&crowd, area, &labels, LABEL)
        else {
            panic!("a coordinate")
        };
        assert!(!(x > 300 && y < 100), "the legend stayed on the points at {x}, {y}");
    }

    #[test]
    fn scatter_labels_do_not_overlap() {
        // Three points close together, a fourth near the right border, a fifth beside an error bar.
        let anchors = [(100, 100), (110, 104), (104, 96), (590, 300), (295, 200)];
        let sizes = [(90, 16); 5];
        let at = place_labels(&anchors, &sizes, (0, 0, 600, 400), &[(300, 0, 310, 400)]);
        for i in 0..5 {
            let a = (at[i].0, at[i].1, at[i].0 + 90, at[i].1 + 16);
            assert!(a.0 >= 0 && a.2 <= 600 && a.1 >= 0 && a.3 <= 400, "label {i} outside");
            for (j, p) in at.iter().enumerate().take(i) {
                let b = (p.0, p.1, p.0 + 90, p.1 + 16);
                let apart = a.2 <= b.0 || b.2 <= a.0 || a.3 <= b.1 || b.3 <= a.1;
                assert!(apart, "labels {i} and {j} overlap: {a:?} {b:?}");
            }
        }
        // The point near the border is labelled on its left.
        assert!(at[3].0 + 90 <= 590, "{:?}", at[3]);
        // No label crosses the obstacle (an error bar at x = 300..310): the last point's label,
        // whose first choice (right of it) would, goes elsewhere.
        // Every label is nearer to its own point than to any other.
        let d2 = |a: (i32, i32), (px, py): (i32, i32)| {
            let dx = (a.0 - px).max(px - a.0 - 90).max(0) as i64;
            let dy = (a.1 - py).max(py - a.1 - 16).max(0) as i64;
            dx * dx + dy * dy
        };
        for (i, &a) in at.iter().enumerate() {
            let own = d2(a, anchors[i]);
            assert!(
                anchors.iter().all(|&p| d2(a, p) >= own),
                "label {i} at {a:?} reads as another's"
            );
        }
        assert!(at.iter().all(|a| a.0 + 90 <= 300 || a.0 >= 310), "{at:?}");
    }
}
