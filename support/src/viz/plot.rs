//! The figures of the notebooks: loss curves, image grids and panels (feature maps, kernels,
//! hidden layers), heat-maps, bar charts, scatter and line charts, the confusion matrix. Each
//! returns one [`Figure`]: evcxr shows one image per cell, so panels are composed into one.

use super::figure::{draw_err, BLUE, FONT, ORANGE};
use super::Figure;
use crate::{error, Result, Tensor};
use plotters::prelude::*;
use plotters::style::colors::colormaps::{ColorMap, ViridisRGB};

/// Training and validation loss per epoch (x = epoch index 0..N-1), legend
/// "train loss" / "validation loss", as the original notebooks' loss plots.
pub fn loss_curves(train: &[f64], val: &[f64]) -> Result<Figure> {
    let all: Vec<f64> = train.iter().chain(val).copied().filter(|v| v.is_finite()).collect();
    if all.is_empty() {
        return Err(error("no finite loss values to plot"));
    }
    let (lo, hi) = all.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let pad = ((hi - lo) * 0.05).max(1e-3);
    let n = train.len().max(val.len()).max(2);
    Figure::render(640, 440, |root| {
        root.fill(&WHITE).map_err(draw_err)?;
        let mut chart = ChartBuilder::on(root)
            .margin(15)
            .x_label_area_size(30)
            .y_label_area_size(55)
            .build_cartesian_2d(-0.5..(n as f64 - 0.5), (lo - pad)..(hi + pad))
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .label_style((FONT, 14))
            // Epochs are integers: label only the integer ticks plotters picks.
            .x_label_formatter(&|x| {
                if (x - x.round()).abs() < 1e-6 {
                    format!("{}", x.round() as i64)
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| format!("{y:.2}"))
            .draw()
            .map_err(draw_err)?;
        for (values, color, label) in
            [(train, BLUE, "train loss"), (val, ORANGE, "validation loss")]
        {
            chart
                .draw_series(LineSeries::new(
                    values.iter().enumerate().map(|(i, &v)| (i as f64, v)),
                    color.stroke_width(2),
                ))
                .map_err(draw_err)?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(RGBColor(0xcc, 0xcc, 0xcc))
            .label_font((FONT, 14))
            .draw()
            .map_err(draw_err)?;
        Ok(())
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

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

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
        TextStyle::from((FONT, 15).into_font()).color(&BLACK).pos(Pos::new(h, VPos::Bottom));
    root.draw_text(text, &style, (x, y)).map_err(draw_err)
}

/// Several images in a grid, each with its title above it; `cols` per row, each drawn
/// `cell` pixels wide. One figure, so a notebook cell can show them all.
pub fn image_grid(images: &[Tensor], titles: &[String], cols: usize, cell: u32) -> Result<Figure> {
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
            if let Some(t) = titles.get(k) {
                draw_title(root, t, x0 + cell as i32 / 2, y0 - 4, true)?;
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
}

const PAD: u32 = 8;
const TITLE_H: u32 = 22;
const STRIP_H: u32 = 28;

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
                ((pixels.1 as u32 * 4).clamp(240, 960), TITLE_H + STRIP_H)
            }
        }
    }

    /// Draws all rows, one under the other.
    pub fn render(&self) -> Result<Figure> {
        if self.rows.is_empty() {
            return Err(error("a Panels figure needs at least one row"));
        }
        let sizes: Vec<(u32, u32)> = self.rows.iter().map(Self::row_size).collect();
        let width = sizes.iter().map(|s| s.0).max().unwrap_or(0) + 2 * PAD;
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
                    }
                }
                y += (rh + PAD) as i32;
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
    let pad = ((hi - lo) * 0.05).max(1e-3);
    Figure::render(820, 360, |root| {
        root.fill(&WHITE).map_err(draw_err)?;
        let (left, right) = root.split_horizontally(330);
        draw_title(&left, title, 165, 36, true)?;
        draw_pixels(&left, &px, 25, 45, 280, 280)?;
        let mut chart = ChartBuilder::on(&right)
            .margin(15)
            .x_label_area_size(30)
            .y_label_area_size(55)
            .build_cartesian_2d(0.0..values.len().max(2) as f64, (lo - pad)..(hi + pad))
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .label_style((FONT, 13))
            .x_label_formatter(&|x| format!("{}", x.round() as i64))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(draw_err)?;
        chart
            .draw_series(LineSeries::new(
                values.iter().enumerate().map(|(i, &v)| (i as f64, v)),
                BLUE.stroke_width(2),
            ))
            .map_err(draw_err)?
            .label(curve_label)
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(RGBColor(0xcc, 0xcc, 0xcc))
            .label_font((FONT, 13))
            .draw()
            .map_err(draw_err)?;
        Ok(())
    })
}

/// Learned convolution kernels `(O, I, KH, KW)`: one row of `O` kernels when `I == 1`, else one
/// row per output channel with its `I` input slices; each kernel scaled to its own range
/// (matplotlib's `imshow` default).
pub fn kernels(weight: &Tensor, title: &str, cell: u32) -> Result<Figure> {
    let (o, i, _, _) = weight.dims4()?;
    let k = |a: usize, b: usize| weight.get(a)?.get(b);
    let mut panels = Panels::new();
    if i == 1 {
        let row: Vec<Tensor> = (0..o).map(|a| k(a, 0)).collect::<Result<_>>()?;
        panels = panels.row(title, &row, None, cell)?;
    } else {
        for a in 0..o {
            let row: Vec<Tensor> = (0..i).map(|b| k(a, b)).collect::<Result<_>>()?;
            panels = panels.row(&format!("{title}: output channel {a}"), &row, None, cell)?;
        }
    }
    panels.render()
}

/// A matrix `(H, W)` (e.g. a learned kernel) as a viridis heat-map with a colour bar and its
/// min / max, like `plt.imshow(k); plt.colorbar()`.
pub fn heatmap(values: &Tensor, title: &str) -> Result<Figure> {
    let m = match values.dims() {
        [_, _] => values.clone(),
        [1, 1, h, w] => values.reshape((*h, *w))?,
        d => return Err(error(format!("heatmap needs an (H, W) matrix, got {d:?}"))),
    };
    let px = image_pixels(&m, None)?;
    let v = m.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let (lo, hi) = v.iter().fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    Figure::render(330, 280, |root| {
        root.fill(&WHITE).map_err(draw_err)?;
        draw_title(root, title, 120, 26, true)?;
        draw_pixels(root, &px, 10, 35, 220, 220)?;
        // Colour bar: 100 steps from hi (top) to lo (bottom), with five labels.
        let (x0, y0, bh) = (245, 35, 220);
        for i in 0..bh {
            let t = 1.0 - i as f64 / (bh - 1) as f64;
            root.draw(&Rectangle::new(
                [(x0, y0 + i), (x0 + 14, y0 + i + 1)],
                ViridisRGB.get_color_normalized(t as f32, 0.0, 1.0).filled(),
            ))
            .map_err(draw_err)?;
        }
        for k in 0..5 {
            let t = k as f32 / 4.0;
            let y = y0 + ((1.0 - t) * (bh - 1) as f32) as i32;
            let style = TextStyle::from((FONT, 12).into_font()).color(&BLACK).pos(
                plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Left,
                    plotters::style::text_anchor::VPos::Center,
                ),
            );
            root.draw_text(&format!("{:.3}", lo + t * (hi - lo)), &style, (x0 + 18, y))
                .map_err(draw_err)?;
        }
        Ok(())
    })
}

/// A horizontal bar chart of `values` with their `labels`, the value written after each bar.
pub fn bar_chart(labels: &[String], values: &[f64], axis_label: &str) -> Result<Figure> {
    if labels.len() != values.len() || labels.is_empty() {
        return Err(error(format!(
            "bar_chart got {} labels and {} values",
            labels.len(),
            values.len()
        )));
    }
    let hi = values.iter().copied().fold(f64::MIN, f64::max).max(0.0) * 1.12;
    let n = values.len();
    Figure::render(760, 60 + 34 * n as u32, |root| {
        root.fill(&WHITE).map_err(draw_err)?;
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(250)
            .build_cartesian_2d(0.0..hi.max(1e-9), (0..n).into_segmented())
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .label_style((FONT, 13))
            .x_desc(axis_label)
            .y_labels(n)
            .y_label_formatter(&|s| match s {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .draw()
            .map_err(draw_err)?;
        chart
            .draw_series(values.iter().enumerate().map(|(i, &v)| {
                let mut r = Rectangle::new(
                    [(0.0, SegmentValue::Exact(i)), (v, SegmentValue::Exact(i + 1))],
                    BLUE.filled(),
                );
                r.set_margin(4, 4, 0, 0);
                r
            }))
            .map_err(draw_err)?;
        chart
            .draw_series(values.iter().enumerate().map(|(i, &v)| {
                Text::new(
                    format!("{v:.2}"),
                    (v + hi * 0.01, SegmentValue::CenterOf(i)),
                    (FONT, 13).into_font(),
                )
            }))
            .map_err(draw_err)?;
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

/// The axes of the scatter and line charts: no minor grid, the bundled font, y with two
/// decimals; the caller adds the x labels' format and draws.
macro_rules! mesh {
    ($chart:expr, $x_label:expr, $y_label:expr) => {
        $chart
            .configure_mesh()
            .light_line_style(WHITE)
            .label_style((FONT, 13))
            .y_label_formatter(&|v| format!("{v:.2}"))
            .x_desc($x_label)
            .y_desc($y_label)
            .axis_desc_style((FONT, 14))
    };
}

/// Labelled points `(label, x, y)`, e.g. accuracy against time per epoch for several models.
/// Each point is numbered; the numbers are explained in a legend on the right (labels written
/// next to crowded points would overlap). `log_x` puts x on a log scale.
pub fn scatter(
    points: &[(String, f64, f64)],
    x_label: &str,
    y_label: &str,
    log_x: bool,
) -> Result<Figure> {
    let finite: Vec<(usize, &(String, f64, f64))> = points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.1.is_finite() && p.2.is_finite() && (!log_x || p.1 > 0.0))
        .collect();
    if finite.is_empty() {
        return Err(error("scatter: no finite points to plot"));
    }
    let (x0, x1) =
        finite.iter().fold((f64::MAX, f64::MIN), |(a, b), (_, p)| (a.min(p.1), b.max(p.1)));
    let (y0, y1) =
        finite.iter().fold((f64::MAX, f64::MIN), |(a, b), (_, p)| (a.min(p.2), b.max(p.2)));
    let ypad = ((y1 - y0) * 0.1).max(0.01);
    let legend_w = 300;
    let draw = |root: &Area<'_>| -> Result<()> {
        root.fill(&WHITE).map_err(draw_err)?;
        let (plot_area, legend) = root.split_horizontally(1000 - legend_w);
        let mut builder = ChartBuilder::on(&plot_area);
        builder.margin(20).x_label_area_size(40).y_label_area_size(60);
        macro_rules! finish {
            ($chart:expr) => {{
                let mut chart = $chart;
                mesh!(chart, x_label, y_label)
                    .x_labels(6)
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
                chart
                    .draw_series(finite.iter().map(|(i, p)| {
                        EmptyElement::at((p.1, p.2))
                            + Circle::new((0, 0), 5, BLUE.filled())
                            + Text::new(
                                format!("{}", i + 1),
                                (7, -16),
                                (FONT, 14).into_font().color(&BLACK),
                            )
                    }))
                    .map_err(draw_err)?;
            }};
        }
        if log_x {
            finish!(builder
                .build_cartesian_2d((x0 / 1.5..x1 * 1.5).log_scale(), (y0 - ypad)..(y1 + ypad))
                .map_err(draw_err)?);
        } else {
            let xpad = ((x1 - x0) * 0.1).max(1e-3);
            finish!(builder
                .build_cartesian_2d((x0 - xpad)..(x1 + xpad), (y0 - ypad)..(y1 + ypad))
                .map_err(draw_err)?);
        }
        for (row, (i, p)) in finite.iter().enumerate() {
            let style = TextStyle::from((FONT, 13).into_font()).color(&BLACK);
            legend
                .draw_text(&format!("{}  {}", i + 1, p.0), &style, (10, 30 + 22 * row as i32))
                .map_err(draw_err)?;
        }
        Ok(())
    };
    Figure::render(1000, 480.max(60 + 22 * finite.len() as u32), draw)
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
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::LowerRight)
                    .background_style(WHITE.mix(0.8))
                    .border_style(RGBColor(0xcc, 0xcc, 0xcc))
                    .label_font((FONT, 14))
                    .draw()
                    .map_err(draw_err)?;
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
