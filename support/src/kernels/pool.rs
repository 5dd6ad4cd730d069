//! 2-D pooling with PyTorch semantics, forward *and* backward, as candle custom ops (CPU).
//!
//! candle 0.11 pools without padding and differentiates pooling only when kernel == stride.
//! The notebooks need `MaxPool2d(3, stride=1, padding=1)` (Inception blocks), global pools and
//! adaptive average pooling, all trainable. Semantics follow `torch.nn.functional`:
//! - `max_pool2d`: padding counts as -inf (never selected); the gradient goes to the first
//!   maximum of each window in row-major order, as in PyTorch.
//! - `avg_pool2d`: `count_include_pad=True` (PyTorch's default): the divisor counts the padded
//!   cells inside the padded border.
//! - `adaptive_avg_pool2d`: window `[floor(i*H/OH), ceil((i+1)*H/OH))`.
//!
//! `ceil_mode` is not supported (none of the notebooks uses it). Input `(N, C, H, W)` f32.

use super::slice;
use crate::{error, Result, Tensor};
use candle_core::{CpuStorage, CustomOp1, Layout, Shape};
use rayon::prelude::*;
use std::sync::Mutex;

/// Kernel, stride and padding of a pooling window, per axis (height, width), as the arguments
/// of PyTorch's `nn.MaxPool2d` / `nn.AvgPool2d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2d {
    /// Window size (height, width).
    pub kernel: (usize, usize),
    /// Step between windows (height, width).
    pub stride: (usize, usize),
    /// Implicit padding on both sides (height, width): -inf for max pooling, zeros counted in
    /// the divisor for average pooling (`count_include_pad=True`).
    pub padding: (usize, usize),
}

impl Pool2d {
    /// Square kernel `k`, stride `s`, padding `p` (PyTorch's `MaxPool2d(k, s, p)`).
    pub fn new(k: usize, s: usize, p: usize) -> Self {
        Pool2d { kernel: (k, k), stride: (s, s), padding: (p, p) }
    }
}

impl std::fmt::Display for Pool2d {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let one =
            |(a, b): (usize, usize)| if a == b { a.to_string() } else { format!("({a}, {b})") };
        write!(
            f,
            "kernel_size={}, stride={}, padding={}",
            one(self.kernel),
            one(self.stride),
            one(self.padding)
        )
    }
}

/// One output position along an axis: input range `[start, end)` (clipped to the input) and
/// the length of the window inside the padded border (the avg-pool divisor with padding).
#[derive(Clone, Copy, Debug)]
struct Span {
    start: usize,
    end: usize,
    padded_len: usize,
}

fn axis_spans(size: usize, k: usize, s: usize, p: usize, what: &str) -> Result<Vec<Span>> {
    if k == 0 || s == 0 {
        return Err(error(format!("pooling {what}: kernel and stride must be positive")));
    }
    if 2 * p > k {
        return Err(error(format!(
            "pooling {what}: padding {p} must be at most half the kernel size {k} (as in PyTorch)"
        )));
    }
    if size + 2 * p < k {
        return Err(error(format!(
            "pooling {what}: input size {size} (+2x padding {p}) is smaller than the kernel {k}"
        )));
    }
    let out = (size + 2 * p - k) / s + 1;
    Ok((0..out)
        .map(|o| {
            let lo = (o * s) as isize - p as isize;
            let hi_padded = (lo + k as isize).min((size + p) as isize);
            Span {
                start: lo.max(0) as usize,
                end: (lo + k as isize).min(size as isize) as usize,
                padded_len: (hi_padded - lo) as usize,
            }
        })
        .collect())
}

fn adaptive_spans(size: usize, out: usize) -> Vec<Span> {
    (0..out)
        .map(|o| {
            let start = o * size / out;
            let end = ((o + 1) * size).div_ceil(out);
            Span { start, end, padded_len: end - start }
        })
        .collect()
}

/// The f32 data of a contiguous `(N, C, H, W)` CPU storage and its four dimensions.
fn input4<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    name: &str,
) -> Result<(&'a [f32], [usize; 4])> {
    let (n, c, h, w) = layout.shape().dims4()?;
    Ok((slice(storage, layout, name)?, [n, c, h, w]))
}

#[derive(Clone, Copy)]
enum Kind {
    Max,
    Avg,
}

/// The op: window spans per axis, and for max pooling the argmax of each output (flat index
/// within its input plane), kept for the backward pass.
struct PoolOp {
    kind: Kind,
    rows: Vec<Span>,
    cols: Vec<Span>,
    argmax: Mutex<Vec<u32>>,
}

impl PoolOp {
    fn name_(&self) -> &'static str {
        match self.kind {
            Kind::Max => "max_pool2d",
            Kind::Avg => "avg_pool2d",
        }
    }
}

/// The output columns `[j0, j1)` whose windows lie wholly inside the input and step evenly
/// (`cols[j].start = cols[j0].start + (j - j0) * stride`, all of length `k`):
/// `(j0, j1, k, stride)`. Max pooling runs these columns as one vectorisable loop; the border ones
/// one by one.
fn regular_band(cols: &[Span]) -> (usize, usize, usize, usize) {
    let k = cols.iter().map(|c| c.end - c.start).max().unwrap_or(0);
    let Some(j0) = cols.iter().position(|c| c.end - c.start == k) else { return (0, 0, 0, 1) };
    let stride = if j0 + 1 < cols.len() {
        cols[j0 + 1].start.saturating_sub(cols[j0].start).max(1)
    } else {
        1
    };
    let j1 = j0
        + cols[j0..]
            .iter()
            .enumerate()
            .take_while(|(d, c)| c.end - c.start == k && c.start == cols[j0].start + d * stride)
            .count();
    (j0, j1, k, stride)
}

/// The maximum of one window and the index of its first maximum in row-major order, a NaN
/// taking over wherever it appears (PyTorch's rule: `val > max || isnan(val)`).
fn max_window(xin: &[f32], w: usize, r: &Span, col: &Span) -> (f32, u32) {
    let (mut best, mut at) = (f32::NEG_INFINITY, (r.start * w + col.start) as u32);
    for y in r.start..r.end {
        for xx in col.start..col.end {
            let v = xin[y * w + xx];
            if v > best || v.is_nan() {
                (best, at) = (v, (y * w + xx) as u32);
            }
        }
    }
    (best, at)
}

/// One window cell for a run of outputs: `best[d], at[d] = src[d], idx0 + d` where `src[d]`
/// wins by the rule of [`max_window`]. `better` is an all-ones / all-zeros mask and the selects
/// are bit operations: this compiles to vector compares and blends (written with `||` and `if`,
/// LLVM kept it scalar).
fn max_update(best: &mut [f32], at: &mut [u32], src: &[f32], idx0: usize) {
    for ((b, a), (d, &v)) in best.iter_mut().zip(at.iter_mut()).zip(src.iter().enumerate()) {
        let m = 0u32.wrapping_sub(((v > *b) | v.is_nan()) as u32);
        *b = f32::from_bits((v.to_bits() & m) | (b.to_bits() & !m));
        *a = ((idx0 + d) as u32 & m) | (*a & !m);
    }
}

/// A "same" stride-1 pooling of one plane (`MaxPool2d(3, 1, 1)`: output size = input size):
/// the interior outputs, rows `i0..i1` and columns `j0..j1` whose windows lie inside the plane,
/// computed as one flat run per window cell (output `q` reads input `q + offset`; on small maps
/// the per-row loops cost more than the maxima), then the border outputs, those the flat run
/// got wrong included (its row ends wrap around), one by one. False if `rows`/`cols` are not
/// such a pooling.
#[allow(clippy::too_many_arguments)]
fn max_pool_same_plane(
    xin: &[f32],
    h: usize,
    w: usize,
    rows: &[Span],
    cols: &[Span],
    (i0, i1, kh, sh): (usize, usize, usize, usize),
    (j0, j1, kw, sw): (usize, usize, usize, usize),
    o: &mut [f32],
    a: &mut [u32],
) -> bool {
    if rows.len() != h || cols.len() != w || sh != 1 || sw != 1 || i0 >= i1 || j0 >= j1 {
        return false;
    }
    let (lo, hi) = (i0 * w + j0, (i1 - 1) * w + j1);
    // Window cell (0, 0) of output q is input q - back.
    let back = (i0 - rows[i0].start) * w + (j0 - cols[j0].start);
    o[lo..hi].fill(f32::NEG_INFINITY);
    a[lo..hi].iter_mut().enumerate().for_each(|(d, at)| *at = (lo - back + d) as u32);
    for dy in 0..kh {
        for dx in 0..kw {
            let start = lo - back + dy * w + dx;
            max_update(&mut o[lo..hi], &mut a[lo..hi], &xin[start..start + hi - lo], start);
        }
    }
    for (i, r) in rows.iter().enumerate() {
        let (left, right) = if (i0..i1).contains(&i) { (j0, j1) } else { (w, w) };
        for j in (0..left).chain(right..w) {
            (o[i * w + j], a[i * w + j]) = max_window(xin, w, r, &cols[j]);
        }
    }
    true
}

/// One output row of max pooling: for each output column the maximum of its window and the
/// index (in the input plane) of the first maximum in row-major order, a NaN taking over
/// wherever it appears (PyTorch's rule: `val > max || isnan(val)`). The band of regular
/// columns is scanned window cell by window cell across all its outputs at once, without
/// branches (the per-window scan with a data-dependent branch was 16% of Inception's step).
#[allow(clippy::too_many_arguments)]
fn max_pool_row(
    xin: &[f32],
    w: usize,
    r: &Span,
    cols: &[Span],
    (j0, j1, k, stride): (usize, usize, usize, usize),
    o: &mut [f32],
    a: &mut [u32],
    scratch: &mut (Vec<f32>, Vec<u32>),
) {
    for j in (0..j0).chain(j1..cols.len()) {
        (o[j], a[j]) = max_window(xin, w, r, &cols[j]);
    }
    if j0 >= j1 {
        return;
    }
    // With stride s > 1 the windows starting at every column of the band are pooled (the loop
    // stays contiguous, so it vectorises) and every s-th is kept.
    let (n, first) = (j1 - j0, cols[j0].start);
    let n1 = (n - 1) * stride + 1;
    let (tmp_o, tmp_a) = scratch;
    let (bo, ba): (&mut [f32], &mut [u32]) = if stride == 1 {
        (&mut o[j0..j1], &mut a[j0..j1])
    } else {
        tmp_o.resize(n1, 0.0);
        tmp_a.resize(n1, 0);
        (&mut tmp_o[..n1], &mut tmp_a[..n1])
    };
    bo.fill(f32::NEG_INFINITY);
    ba.iter_mut().enumerate().for_each(|(d, at)| *at = (r.start * w + first + d) as u32);
    for y in r.start..r.end {
        for dx in 0..k {
            let x0 = y * w + first + dx;
            max_update(bo, ba, &xin[x0..x0 + n1], x0);
        }
    }
    if stride > 1 {
        for d in 0..n {
            (o[j0 + d], a[j0 + d]) = (tmp_o[d * stride], tmp_a[d * stride]);
        }
    }
}

impl CustomOp1 for PoolOp {
    fn name(&self) -> &'static str {
        self.name_()
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, [n, c, h, w]) = input4(storage, layout, self.name_())?;
        let (oh, ow) = (self.rows.len(), self.cols.len());
        let plane_out = oh * ow;
        let mut out = vec![0f32; n * c * plane_out];
        let mut arg = vec![0u32; if matches!(self.kind, Kind::Max) { out.len() } else { 0 }];
        let (band, row_band) = (regular_band(&self.cols), regular_band(&self.rows));
        let work = |scratch: &mut (Vec<f32>, Vec<u32>),
                    (p, (o, a)): (usize, (&mut [f32], &mut [u32]))| {
            let xin = &x[p * h * w..(p + 1) * h * w];
            if matches!(self.kind, Kind::Max)
                && max_pool_same_plane(xin, h, w, &self.rows, &self.cols, row_band, band, o, a)
            {
                return;
            }
            for (i, r) in self.rows.iter().enumerate() {
                let o = &mut o[i * ow..(i + 1) * ow];
                match self.kind {
                    Kind::Max => max_pool_row(
                        xin,
                        w,
                        r,
                        &self.cols,
                        band,
                        o,
                        &mut a[i * ow..(i + 1) * ow],
                        scratch,
                    ),
                    Kind::Avg => {
                        for (j, col) in self.cols.iter().enumerate() {
                            let mut s = 0f32;
                            for y in r.start..r.end {
                                s += xin[y * w + col.start..y * w + col.end].iter().sum::<f32>();
                            }
                            o[j] = s / (r.padded_len * col.padded_len) as f32;
                        }
                    }
                }
            }
        };
        match self.kind {
            Kind::Max => out
                .par_chunks_mut(plane_out)
                .zip(arg.par_chunks_mut(plane_out))
                .enumerate()
                .for_each_init(Default::default, work),
            Kind::Avg => out
                .par_chunks_mut(plane_out)
                .map(|o| (o, &mut [][..]))
                .enumerate()
                .for_each_init(Default::default, work),
        }
        *self.argmax.lock().map_err(|_| error("pooling state poisoned"))? = arg;
        Ok((CpuStorage::F32(out), Shape::from((n, c, oh, ow))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let (n, c, h, w) = arg.dims4()?;
        let (oh, ow) = (self.rows.len(), self.cols.len());
        let g = grad_res
            .to_device(&candle_core::Device::Cpu)?
            .contiguous()?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let mut gi = vec![0f32; n * c * h * w];
        let argmax = self.argmax.lock().map_err(|_| error("pooling state poisoned"))?;
        gi.par_chunks_mut(h * w).enumerate().for_each(|(p, gin)| {
            let gout = &g[p * oh * ow..(p + 1) * oh * ow];
            match self.kind {
                Kind::Max => {
                    let a = &argmax[p * oh * ow..(p + 1) * oh * ow];
                    for (k, &v) in gout.iter().enumerate() {
                        gin[a[k] as usize] += v;
                    }
                }
                Kind::Avg => {
                    for (i, r) in self.rows.iter().enumerate() {
                        for (j, col) in self.cols.iter().enumerate() {
                            let v = gout[i * ow + j] / (r.padded_len * col.padded_len) as f32;
                            for y in r.start..r.end {
                                gin[y * w + col.start..y * w + col.end]
                                    .iter_mut()
                                    .for_each(|t| *t += v);
                            }
                        }
                    }
                }
            }
        });
        Ok(Some(Tensor::from_vec(gi, (n, c, h, w), arg.device())?))
    }
}

fn apply(x: &Tensor, kind: Kind, rows: Vec<Span>, cols: Vec<Span>) -> Result<Tensor> {
    let op = PoolOp { kind, rows, cols, argmax: Mutex::new(Vec::new()) };
    x.contiguous()?.apply_op1(op)
}

fn dims(x: &Tensor, name: &str) -> Result<(usize, usize)> {
    match x.dims() {
        [_, _, h, w] => Ok((*h, *w)),
        d => Err(error(format!("{name} needs an (N, C, H, W) input, got {d:?}"))),
    }
}

/// `torch.nn.functional.max_pool2d(x, kernel, stride, padding)` of a CPU f32 tensor.
pub(crate) fn max_pool2d(x: &Tensor, cfg: Pool2d) -> Result<Tensor> {
    let (h, w) = dims(x, "max_pool2d")?;
    let rows = axis_spans(h, cfg.kernel.0, cfg.stride.0, cfg.padding.0, "height")?;
    let cols = axis_spans(w, cfg.kernel.1, cfg.stride.1, cfg.padding.1, "width")?;
    apply(x, Kind::Max, rows, cols)
}

/// `torch.nn.functional.avg_pool2d(x, kernel, stride, padding)` with `count_include_pad=True`,
/// of a CPU f32 tensor.
pub(crate) fn avg_pool2d(x: &Tensor, cfg: Pool2d) -> Result<Tensor> {
    let (h, w) = dims(x, "avg_pool2d")?;
    let rows = axis_spans(h, cfg.kernel.0, cfg.stride.0, cfg.padding.0, "height")?;
    let cols = axis_spans(w, cfg.kernel.1, cfg.stride.1, cfg.padding.1, "width")?;
    apply(x, Kind::Avg, rows, cols)
}

/// `torch.nn.functional.adaptive_avg_pool2d(x, (out_h, out_w))` of a CPU f32 tensor.
pub(crate) fn adaptive_avg_pool2d(x: &Tensor, out: (usize, usize)) -> Result<Tensor> {
    let (h, w) = dims(x, "adaptive_avg_pool2d")?;
    if out.0 == 0 || out.1 == 0 {
        return Err(error("adaptive_avg_pool2d: the output size must be positive"));
    }
    apply(x, Kind::Avg, adaptive_spans(h, out.0), adaptive_spans(w, out.1))
}
