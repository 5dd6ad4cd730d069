//! 2-D convolution on the CPU as a candle custom op: im2col + gemm forward, and a backward
//! pass that computes the weight gradient and the input gradient with gemm as well.
//!
//! candle 0.11 differentiates `conv2d` through a direct-loop `conv_transpose2d` (slow, and
//! wrong in width for strided convolutions on non-square inputs) and computes the input
//! gradient even for the raw images. Here:
//! - forward: per image, `out (O, OH*OW) = W (O, C*KH*KW) @ col (C*KH*KW, OH*OW)`;
//! - backward: `dW += dOut @ col^T` (written column-major, so gemm packs the O rows of `dOut`, not the
//!   C*KH*KW rows of `col`) and `dcol = W^T @ dOut` folded back (col2im) into `dX`;
//!   `dX` is skipped when the input carries no gradient (the data batch of the first layer);
//! - images are spread over the cores (rayon); on small feature maps several images of a core
//!   share one gemm (their im2col matrices side by side, at least 512 columns);
//! - the bias is fused ([`conv2d_bias`]): written before the gemm accumulates, summed in backward.
//!
//! Stride-1 layers with a 3x3, 5x5 or 7x7 kernel and up to 128 -> 64 channels run their forward
//! pass and input gradient in the direct kernels of `conv_direct.rs` instead (no im2col; AVX2 +
//! FMA CPUs), and with at most 16 input and output channels their weight gradient too.
//!
//! Zero padding is symmetric here; `nn::Conv2d` pads explicitly for asymmetric padding.

use crate::{error, Result, Tensor};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Storage};
use gemm::{gemm, Parallelism};
use rayon::prelude::*;

#[derive(Clone, Copy, Debug)]
struct Geometry {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    stride: usize,
    pad: usize,
}

impl Geometry {
    fn ckk(&self) -> usize {
        self.c * self.kh * self.kw
    }
    fn ohw(&self) -> usize {
        self.oh * self.ow
    }
    /// A 1x1, stride-1, unpadded convolution: the image itself is its im2col matrix.
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.pad == 0
    }
}

/// The output columns `ox` whose input column `ox*s - p + kj` lies inside `0..w`.
fn valid_cols(g: &Geometry, kj: usize) -> (usize, usize) {
    let (s, p) = (g.stride as isize, g.pad as isize);
    let lo = ((p - kj as isize).max(0) + s - 1) / s;
    let hi = (((g.w as isize + p - kj as isize) + s - 1) / s).clamp(0, g.ow as isize);
    (lo as usize, (hi as usize).max(lo as usize))
}

/// col[(c*KH + ki)*KW + kj][oy*OW + ox] = x[c][oy*s - p + ki][ox*s - p + kj] (0 outside), the
/// rows `ld` apart (`ld` > OH*OW when several images share one matrix, see [`group_size`]).
/// Rows are copied as slices (stride 1) or gathered without per-pixel bounds checks. With
/// `zeros` false the entries outside the image are left as they are: they depend only on the
/// geometry, so a buffer that already holds this layout's zeros keeps them.
fn im2col(x: &[f32], g: &Geometry, col: &mut [f32], ld: usize, zeros: bool) {
    let ohw = g.ohw();
    for c in 0..g.c {
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let (lo, hi) = valid_cols(g, kj);
                let row = &mut col[((c * g.kh + ki) * g.kw + kj) * ld..][..ohw];
                for oy in 0..g.oh {
                    let y = (oy * g.stride + ki) as isize - g.pad as isize;
                    let dst = &mut row[oy * g.ow..(oy + 1) * g.ow];
                    if y < 0 || y >= g.h as isize || lo >= hi {
                        if zeros {
                            dst.fill(0.0);
                        }
                        continue;
                    }
                    let src = &x[(c * g.h + y as usize) * g.w..][..g.w];
                    if zeros {
                        dst[..lo].fill(0.0);
                        dst[hi..].fill(0.0);
                    }
                    let first = lo * g.stride + kj - g.pad;
                    if g.stride == 1 {
                        dst[lo..hi].copy_from_slice(&src[first..first + hi - lo]);
                    } else {
                        for (d, s) in
                            dst[lo..hi].iter_mut().zip(src[first..].iter().step_by(g.stride))
                        {
                            *d = *s;
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds each column entry back into its input pixel.
fn col2im(col: &[f32], g: &Geometry, x: &mut [f32], ld: usize) {
    let ohw = g.ohw();
    for c in 0..g.c {
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let (lo, hi) = valid_cols(g, kj);
                if lo >= hi {
                    continue;
                }
                let row = &col[((c * g.kh + ki) * g.kw + kj) * ld..][..ohw];
                let first = lo * g.stride + kj - g.pad;
                for oy in 0..g.oh {
                    let y = (oy * g.stride + ki) as isize - g.pad as isize;
                    if y < 0 || y >= g.h as isize {
                        continue;
                    }
                    let dst = &mut x[(c * g.h + y as usize) * g.w..][..g.w];
                    let src = &row[oy * g.ow + lo..oy * g.ow + hi];
                    if g.stride == 1 {
                        dst[first..first + hi - lo].iter_mut().zip(src).for_each(|(d, v)| *d += v);
                    } else {
                        dst[first..]
                            .iter_mut()
                            .step_by(g.stride)
                            .zip(src)
                            .for_each(|(d, v)| *d += v);
                    }
                }
            }
        }
    }
}

/// `dst (m, n) = [dst +] lhs (m, k) @ rhs (k, n)`; all row-major unless strides say otherwise.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    accumulate: bool,
    lhs: &[f32],
    lhs_strides: (isize, isize),
    rhs: &[f32],
    rhs_strides: (isize, isize),
    par: Parallelism,
) {
    debug_assert!(dst.len() >= m * n);
    // SAFETY: the slices hold at least the (m, k), (k, n), (m, n) elements addressed through the
    // given (row, column) strides; every caller passes buffers sized from the same geometry.
    unsafe {
        gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_strides.1,
            lhs_strides.0,
            rhs.as_ptr(),
            rhs_strides.1,
            rhs_strides.0,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

/// `dst (m, n) [+]= lhs (m, k) @ rhs (k, n)` with `dst` stored column-major (element `(i, j)` at
/// `i + j * m`) and `lhs`, `rhs` addressed through their (row, column) strides. gemm keeps `m`
/// as its row dimension here (it transposes a row-major `dst` to make it column-major), which
/// decides which operand it packs: the weight gradient `dW (O, CKK) = dY @ col^T` computed this
/// way packs `dY` (O rows) and streams `col`, instead of packing all CKK rows of `col` with a
/// transposing copy for only O multiply-adds per element (23% of CIFAR LeNet-5's step).
#[allow(clippy::too_many_arguments)]
fn matmul_col_major(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    accumulate: bool,
    lhs: &[f32],
    lhs_strides: (isize, isize),
    rhs: &[f32],
    rhs_strides: (isize, isize),
    par: Parallelism,
) {
    debug_assert!(dst.len() >= m * n);
    // SAFETY: as `matmul`: the buffers hold every element the sizes and strides address.
    unsafe {
        gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            m as isize,
            1,
            accumulate,
            lhs.as_ptr(),
            lhs_strides.1,
            lhs_strides.0,
            rhs.as_ptr(),
            rhs_strides.1,
            rhs_strides.0,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

/// Columns one gemm should have at least: below this the gemm's packing and edge handling cost
/// more than its arithmetic (small maps: 8x8 in the CIFAR ResNets, 7x7 at EfficientNet's top).
const MIN_GEMM_COLS: usize = 512;

/// How many images share one gemm: their im2col matrices side by side (`G * OH*OW` columns), so
/// small feature maps still make a wide matrix. At most `per_thread`, the images a core handles.
fn group_size(g: &Geometry, per_thread: usize) -> usize {
    MIN_GEMM_COLS.div_ceil(g.ohw().max(1)).clamp(1, per_thread.max(1))
}

/// One core's im2col scratch matrix, allocated zeroed, and the row length `ld` whose padding
/// entries it already holds (they are zero and the same for every image, so they are written
/// once per layout, not once per image: those short fills were 5% of Inception's step).
struct ColBuf {
    buf: Vec<f32>,
    /// The `ld` last written (0: none yet, the buffer is all zeros and fits every layout).
    layout: usize,
}

impl ColBuf {
    fn new(len: usize) -> Self {
        ColBuf { buf: vec![0f32; len], layout: 0 }
    }
}

/// The `(C*KH*KW, m*OH*OW)` gemm operand of images `xs[0..m]` (each `C*H*W`): their im2col
/// matrices side by side in `col`, or for a lone pointwise image the image itself.
fn gemm_input<'a>(xs: &'a [f32], m: usize, g: &Geometry, col: &'a mut ColBuf) -> &'a [f32] {
    let (img, ohw, ckk) = (g.c * g.h * g.w, g.ohw(), g.ckk());
    if g.pointwise() && m == 1 {
        return &xs[..img];
    }
    let ld = m * ohw;
    // A fresh buffer holds every layout's padding zeros; a used one only its own layout's.
    let zeros = col.layout != 0 && col.layout != ld;
    col.layout = ld;
    for (i, xb) in xs.chunks(img).take(m).enumerate() {
        if g.pointwise() {
            for (c, plane) in xb.chunks(ohw).enumerate() {
                col.buf[c * ld + i * ohw..][..ohw].copy_from_slice(plane);
            }
        } else {
            im2col(xb, g, &mut col.buf[i * ohw..], ld, zeros);
        }
    }
    &col.buf[..ckk * ld]
}

pub(crate) fn threads() -> usize {
    rayon::current_num_threads().max(1)
}

/// gemm runs single-threaded per image when there are enough images to keep every core busy.
fn inner_parallelism(n: usize) -> Parallelism {
    if n >= threads() {
        Parallelism::None
    } else {
        Parallelism::Rayon(threads())
    }
}

/// Whether `t` is an f32 tensor on the CPU, the case support's kernels handle (elsewhere the
/// callers fall back to candle's ops).
pub(crate) fn is_cpu_f32(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == candle_core::DType::F32
}

/// The f32 data of a contiguous CPU storage; `what` names it in the error ("conv2d: input").
pub(crate) fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else { return Err(error(format!("{what} must be f32"))) };
    let Some((a, b)) = l.contiguous_offsets() else {
        return Err(error(format!("{what} must be contiguous")));
    };
    Ok(&v[a..b])
}

/// The f32 data of a contiguous CPU tensor, borrowed from its storage (no copy).
pub(crate) fn cpu_f32<'a>(s: &'a Storage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    match s {
        Storage::Cpu(s) => f32_slice(s, l, what),
        _ => Err(error(format!("{what} must be on the CPU"))),
    }
}

struct Conv2dOp {
    stride: usize,
    pad: usize,
    /// ReLU fused on the output: applied in the same pass as the gemm's result, and its mask
    /// (output > 0) applied to the incoming gradient at the start of the backward pass.
    relu: bool,
    /// `Some(true)` / `Some(false)` forces the direct kernels / im2col + gemm (tests, benchmarks);
    /// `None` picks by shape ([`crate::conv_direct::applies`]).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    direct: Option<bool>,
}

impl Conv2dOp {
    fn geometry(&self, x: &[usize], w: &[usize]) -> Result<Geometry> {
        let ([n, c, h, wd], [o, c2, kh, kw]) = (
            <[usize; 4]>::try_from(x).map_err(|_| error("conv2d: input must be (N, C, H, W)"))?,
            <[usize; 4]>::try_from(w)
                .map_err(|_| error("conv2d: weight must be (O, C, KH, KW)"))?,
        );
        if c != c2 {
            return Err(error(format!(
                "conv2d: the input has {c} channels, the weight expects {c2}"
            )));
        }
        if h + 2 * self.pad < kh || wd + 2 * self.pad < kw || self.stride == 0 {
            return Err(error(format!(
                "conv2d: kernel {kh}x{kw} does not fit the padded input {}x{}",
                h + 2 * self.pad,
                wd + 2 * self.pad
            )));
        }
        let oh = (h + 2 * self.pad - kh) / self.stride + 1;
        let ow = (wd + 2 * self.pad - kw) / self.stride + 1;
        Ok(Geometry { n, c, h, w: wd, o, kh, kw, oh, ow, stride: self.stride, pad: self.pad })
    }

    /// The direct kernels' view of `g`, when they are to run it: where
    /// [`crate::conv_direct::applies`], or wherever they can when forced.
    #[cfg(target_arch = "x86_64")]
    fn direct(&self, g: &Geometry) -> Option<crate::conv_direct::Shape> {
        use crate::conv_direct::{applies, supports, Shape};
        let s = Shape { c: g.c, h: g.h, w: g.w, o: g.o, k: g.kh, pad: g.pad };
        let ok = g.kh == g.kw
            && supports(&s, g.stride)
            && self.direct.unwrap_or_else(|| applies(&s, g.stride));
        ok.then_some(s)
    }

    /// `out = conv(x, w) [+ bias]`, the bias written first and the gemm accumulated onto it.
    fn forward(
        &self,
        x: &[f32],
        xl: &Layout,
        wt: &[f32],
        wl: &Layout,
        bias: Option<&[f32]>,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.geometry(xl.dims(), wl.dims())?;
        if let Some(b) = bias {
            if b.len() != g.o {
                return Err(error(format!(
                    "conv2d: the bias has {} values for {} output channels",
                    b.len(),
                    g.o
                )));
            }
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(s) = self.direct(&g) {
            let mut out = vec![0f32; g.n * g.o * g.ohw()];
            crate::conv_direct::forward(x, wt, bias, self.relu, &s, &mut out);
            return Ok((CpuStorage::F32(out), Shape::from((g.n, g.o, g.oh, g.ow))));
        }
        let (ckk, ohw, img) = (g.ckk(), g.ohw(), g.c * g.h * g.w);
        let mut out = vec![0f32; g.n * g.o * ohw];
        let par = inner_parallelism(g.n);
        let chunk = g.n.div_ceil(threads());
        let gsz = group_size(&g, chunk);
        out.par_chunks_mut(chunk * g.o * ohw).enumerate().for_each(|(t, out)| {
            let mut col = ColBuf::new(if g.pointwise() && gsz == 1 { 0 } else { ckk * gsz * ohw });
            let mut wide = vec![0f32; if gsz == 1 { 0 } else { g.o * gsz * ohw }];
            for (j, dst) in out.chunks_mut(gsz * g.o * ohw).enumerate() {
                let (first, m) = (t * chunk + j * gsz, dst.len() / (g.o * ohw));
                let src = gemm_input(&x[first * img..(first + m) * img], m, &g, &mut col);
                if m == 1 {
                    if let Some(bias) = bias {
                        dst.chunks_mut(ohw).zip(bias).for_each(|(row, v)| row.fill(*v));
                    }
                    matmul(
                        g.o,
                        ohw,
                        ckk,
                        dst,
                        bias.is_some(),
                        wt,
                        (ckk as isize, 1),
                        src,
                        (ohw as isize, 1),
                        par,
                    );
                    if self.relu {
                        dst.iter_mut().for_each(|v| *v = v.max(0.0));
                    }
                    continue;
                }
                // (O, m*OHW) in one gemm, then each image's columns to its place, bias and ReLU on the way.
                let ld = m * ohw;
                matmul(
                    g.o,
                    ld,
                    ckk,
                    &mut wide,
                    false,
                    wt,
                    (ckk as isize, 1),
                    src,
                    (ld as isize, 1),
                    par,
                );
                for (i, d_img) in dst.chunks_mut(g.o * ohw).enumerate() {
                    for (oc, d) in d_img.chunks_mut(ohw).enumerate() {
                        let (s, b) =
                            (&wide[oc * ld + i * ohw..][..ohw], bias.map_or(0.0, |b| b[oc]));
                        if self.relu {
                            d.iter_mut().zip(s).for_each(|(d, s)| *d = (s + b).max(0.0));
                        } else {
                            d.iter_mut().zip(s).for_each(|(d, s)| *d = s + b);
                        }
                    }
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((g.n, g.o, g.oh, g.ow))))
    }

    /// (dX if the input needs it, dW, dBias if asked).
    fn backward(
        &self,
        arg: &Tensor,
        kernel: &Tensor,
        res: &Tensor,
        grad: &Tensor,
        with_bias: bool,
    ) -> Result<(Option<Tensor>, Tensor, Option<Tensor>)> {
        let g = self.geometry(arg.dims(), kernel.dims())?;
        let (ckk, ohw, img) = (g.ckk(), g.ohw(), g.c * g.h * g.w);
        // Through a fused ReLU: the gradient where the output is positive, 0 elsewhere.
        let grad = if self.relu {
            grad.contiguous()?.apply_op2_no_bwd(&res.contiguous()?, &crate::act::ReluGrad)?
        } else {
            grad.clone()
        };
        let (arg_c, kernel_c, grad_c) =
            (arg.contiguous()?, kernel.contiguous()?, grad.contiguous()?);
        let ((xs, xl), (ws, wl), (ds, dl)) = (
            arg_c.storage_and_layout(),
            kernel_c.storage_and_layout(),
            grad_c.storage_and_layout(),
        );
        let (x, wt, dy) = (
            cpu_f32(&xs, xl, "conv2d: input")?,
            cpu_f32(&ws, wl, "conv2d: weight")?,
            cpu_f32(&ds, dl, "conv2d: gradient")?,
        );
        let need_dx = arg.track_op();
        // The direct kernels' input gradient, and their weight gradient where that is faster
        // than im2col + gemm (few channels); else the gemm loop below computes dW (and dX).
        #[cfg(target_arch = "x86_64")]
        let (dx_direct, need_dx) = match self.direct(&g) {
            Some(s) => {
                let dx = if need_dx {
                    let mut dx = vec![0f32; g.n * img];
                    crate::conv_direct::input_grad(dy, wt, &s, &mut dx);
                    Some(Tensor::from_vec(dx, arg.shape(), arg.device())?)
                } else {
                    None
                };
                if self.direct.unwrap_or_else(|| crate::conv_direct::weight_grad_applies(&s)) {
                    let dw = Tensor::from_vec(
                        crate::conv_direct::weight_grad(x, dy, &s),
                        kernel.shape(),
                        kernel.device(),
                    )?;
                    let db = if with_bias {
                        let mut db = vec![0f32; g.o];
                        for (k, row) in dy.chunks(ohw).enumerate() {
                            db[k % g.o] += row.iter().sum::<f32>();
                        }
                        Some(Tensor::from_vec(db, g.o, kernel.device())?)
                    } else {
                        None
                    };
                    return Ok((dx, dw, db));
                }
                (dx, false)
            }
            None => (None, need_dx),
        };
        #[cfg(not(target_arch = "x86_64"))]
        let dx_direct: Option<Tensor> = None;
        let par = inner_parallelism(g.n);
        let chunk = g.n.div_ceil(threads());
        let mut dx = vec![0f32; if need_dx { g.n * img } else { 0 }];
        let dx_chunks: Vec<&mut [f32]> = if need_dx {
            dx.chunks_mut(chunk * img).collect()
        } else {
            (0..g.n.div_ceil(chunk)).map(|_| &mut [][..]).collect()
        };
        let gsz = group_size(&g, chunk);
        let parts: Vec<(Vec<f32>, Vec<f32>)> = dx_chunks
            .into_par_iter()
            .enumerate()
            .map(|(t, dx)| {
                let cols = gsz * ohw;
                let mut col = ColBuf::new(if g.pointwise() && gsz == 1 { 0 } else { ckk * cols });
                let mut dy_wide = vec![0f32; if gsz == 1 { 0 } else { g.o * cols }];
                let mut dcol =
                    vec![
                        0f32;
                        if need_dx && !(g.pointwise() && gsz == 1) { ckk * cols } else { 0 }
                    ];
                let mut dw = vec![0f32; g.o * ckk]; // column-major
                let mut db = vec![0f32; if with_bias { g.o } else { 0 }];
                let end = ((t + 1) * chunk).min(g.n);
                for first in (t * chunk..end).step_by(gsz) {
                    let (m, ld) = ((end - first).min(gsz), (end - first).min(gsz) * ohw);
                    let dys = &dy[first * g.o * ohw..(first + m) * g.o * ohw];
                    if with_bias {
                        for dyb in dys.chunks(g.o * ohw) {
                            db.iter_mut()
                                .zip(dyb.chunks(ohw))
                                .for_each(|(d, row)| *d += row.iter().sum::<f32>());
                        }
                    }
                    // dY of the group as one (O, m*OHW) matrix, the layout of the forward's gemm.
                    let dyg: &[f32] = if m == 1 {
                        dys
                    } else {
                        for (i, dyb) in dys.chunks(g.o * ohw).enumerate() {
                            for (oc, row) in dyb.chunks(ohw).enumerate() {
                                dy_wide[oc * ld + i * ohw..][..ohw].copy_from_slice(row);
                            }
                        }
                        &dy_wide[..g.o * ld]
                    };
                    let src = gemm_input(&x[first * img..(first + m) * img], m, &g, &mut col);
                    // dW (O, CKK) += dY (O, m*OHW) @ col^T (m*OHW, CKK), kept column-major (see matmul_col_major)
                    matmul_col_major(
                        g.o,
                        ckk,
                        ld,
                        &mut dw,
                        true,
                        dyg,
                        (ld as isize, 1),
                        src,
                        (1, ld as isize),
                        par,
                    );
                    if need_dx {
                        let dxs = &mut dx[(first - t * chunk) * img..(first - t * chunk + m) * img];
                        // dcol (CKK, m*OHW) = W^T (CKK, O) @ dY (O, m*OHW), folded back into dX
                        // (a lone pointwise image: dcol is dX).
                        if g.pointwise() && m == 1 {
                            matmul(
                                ckk,
                                ohw,
                                g.o,
                                dxs,
                                false,
                                wt,
                                (1, ckk as isize),
                                dyg,
                                (ohw as isize, 1),
                                par,
                            );
                            continue;
                        }
                        matmul(
                            ckk,
                            ld,
                            g.o,
                            &mut dcol,
                            false,
                            wt,
                            (1, ckk as isize),
                            dyg,
                            (ld as isize, 1),
                            par,
                        );
                        for (i, dxb) in dxs.chunks_mut(img).enumerate() {
                            if g.pointwise() {
                                for (c, plane) in dxb.chunks_mut(ohw).enumerate() {
                                    plane.copy_from_slice(&dcol[c * ld + i * ohw..][..ohw]);
                                }
                            } else {
                                col2im(&dcol[i * ohw..], &g, dxb, ld);
                            }
                        }
                    }
                }
                (dw, db)
            })
            .collect();
        let (mut dw, mut db) = (vec![0f32; g.o * ckk], vec![0f32; g.o]);
        for (pw, pb) in parts {
            // Each part is dW^T (CKK, O), the column-major dW.
            for (j, col) in pw.chunks(g.o).enumerate() {
                col.iter().enumerate().for_each(|(oc, b)| dw[oc * ckk + j] += b);
            }
            db.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
        }
        let dw = Tensor::from_vec(dw, kernel.shape(), kernel.device())?;
        let dx = if need_dx {
            Some(Tensor::from_vec(dx, arg.shape(), arg.device())?)
        } else {
            dx_direct
        };
        let db = if with_bias { Some(Tensor::from_vec(db, g.o, kernel.device())?) } else { None };
        Ok((dx, dw, db))
    }
}

impl CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        "support-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.forward(
            f32_slice(s1, l1, "conv2d: input")?,
            l1,
            f32_slice(s2, l2, "conv2d: weight")?,
            l2,
            None,
        )
    }

    fn bwd(
        &self,
        arg: &Tensor,
        kernel: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = self.backward(arg, kernel, res, grad, false)?;
        Ok((dx, Some(dw)))
    }
}

impl CustomOp3 for Conv2dOp {
    fn name(&self) -> &'static str {
        "support-conv2d-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.forward(
            f32_slice(s1, l1, "conv2d: input")?,
            l1,
            f32_slice(s2, l2, "conv2d: weight")?,
            l2,
            Some(f32_slice(s3, l3, "conv2d: bias")?),
        )
    }

    fn bwd(
        &self,
        arg: &Tensor,
        kernel: &Tensor,
        _bias: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, db) = self.backward(arg, kernel, res, grad, true)?;
        Ok((dx, Some(dw), db))
    }
}

/// `torch.nn.functional.conv2d(x, w, stride=stride, padding=pad)` (no bias, no dilation or
/// groups) with the gemm-based forward and backward above. Falls back to candle's `conv2d` off
/// the CPU or for non-f32 tensors.
pub fn conv2d(x: &Tensor, w: &Tensor, stride: usize, pad: usize) -> Result<Tensor> {
    if !(is_cpu_f32(x) && is_cpu_f32(w)) {
        return x.conv2d(w, pad, stride, 1, 1);
    }
    x.contiguous()?.apply_op2(&w.contiguous()?, Conv2dOp { stride, pad, relu: false, direct: None })
}

/// [`conv2d`] plus a per-channel `bias` of shape `(O,)`, added inside the same op (no
/// broadcast add, and the bias gradient is summed in the backward pass's own loop).
pub fn conv2d_bias(
    x: &Tensor,
    w: &Tensor,
    bias: &Tensor,
    stride: usize,
    pad: usize,
) -> Result<Tensor> {
    if !(is_cpu_f32(x) && is_cpu_f32(w) && is_cpu_f32(bias)) {
        let o = w.dim(0)?;
        return x.conv2d(w, pad, stride, 1, 1)?.broadcast_add(&bias.reshape((1, o, 1, 1))?);
    }
    x.contiguous()?.apply_op3(
        &w.contiguous()?,
        &bias.contiguous()?,
        Conv2dOp { stride, pad, relu: false, direct: None },
    )
}

/// [`conv2d_relu`] (or without the ReLU) on a chosen path: `direct` true runs the direct
/// kernels (`conv_direct.rs`) wherever they can run (x86-64 with AVX2 + FMA, stride 1, a square
/// kernel, padding below its size; else im2col + gemm), false im2col + gemm. For tests and
/// benchmarks of the two paths; the other functions choose by shape. CPU f32 tensors only.
#[doc(hidden)]
pub fn conv2d_path(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    pad: usize,
    relu: bool,
    direct: bool,
) -> Result<Tensor> {
    if !(is_cpu_f32(x) && is_cpu_f32(w) && bias.is_none_or(is_cpu_f32)) {
        return Err(error("conv2d_path runs on CPU f32 tensors only"));
    }
    let op = Conv2dOp { stride, pad, relu, direct: Some(direct) };
    match bias {
        Some(b) => x.contiguous()?.apply_op3(&w.contiguous()?, &b.contiguous()?, op),
        None => x.contiguous()?.apply_op2(&w.contiguous()?, op),
    }
}

/// `relu(conv2d(x, w, stride, pad) + bias)` as one op (bias optional): the ReLU costs no extra
/// pass or buffer in the forward pass, and its backward is folded into the convolution's.
pub fn conv2d_relu(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    pad: usize,
) -> Result<Tensor> {
    let cpu_f32 = is_cpu_f32(x) && is_cpu_f32(w) && bias.is_none_or(is_cpu_f32);
    let op = Conv2dOp { stride, pad, relu: true, direct: None };
    match bias {
        _ if !cpu_f32 => crate::act::relu(&match bias {
            Some(b) => conv2d_bias(x, w, b, stride, pad)?,
            None => conv2d(x, w, stride, pad)?,
        }),
        Some(b) => x.contiguous()?.apply_op3(&w.contiguous()?, &b.contiguous()?, op),
        None => x.contiguous()?.apply_op2(&w.contiguous()?, op),
    }
}

/// Depthwise 2-D convolution (`groups = channels`, one `kh x kw` filter per channel) with
/// zero padding `(top, bottom, left, right)`, as MobileNet/EfficientNet use it. Direct loops,
/// images x channels spread over the cores; forward and backward.
struct DepthwiseOp {
    stride: usize,
    pad: (usize, usize, usize, usize),
}

#[derive(Clone, Copy)]
struct DwGeometry {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
}

impl DepthwiseOp {
    fn geometry(&self, x: &[usize], w: &[usize]) -> Result<DwGeometry> {
        let ([n, c, h, wd], [c2, one, kh, kw]) = (
            <[usize; 4]>::try_from(x)
                .map_err(|_| error("depthwise conv: input must be (N, C, H, W)"))?,
            <[usize; 4]>::try_from(w)
                .map_err(|_| error("depthwise conv: weight must be (C, 1, KH, KW)"))?,
        );
        if c != c2 || one != 1 {
            return Err(error(format!("depthwise conv: the input has {c} channels, the weight has shape {w:?} (expected ({c}, 1, KH, KW))")));
        }
        let (t, b, l, r) = self.pad;
        if h + t + b < kh || wd + l + r < kw || self.stride == 0 {
            return Err(error(format!(
                "depthwise conv: kernel {kh}x{kw} does not fit the padded input {}x{}",
                h + t + b,
                wd + l + r
            )));
        }
        Ok(DwGeometry {
            n,
            c,
            h,
            w: wd,
            kh,
            kw,
            oh: (h + t + b - kh) / self.stride + 1,
            ow: (wd + l + r - kw) / self.stride + 1,
        })
    }

    /// For every output row `oy` and kernel tap `(ki, kj)` that lands inside the input: calls
    /// `f(oy, y, k, lo, hi, first)` where output columns `lo..hi` read input row `y` from column
    /// `first` with this op's stride, and `k = ki * kw + kj`. The callers then work on whole row
    /// slices (vectorised) instead of pixel by pixel.
    #[inline(always)]
    fn rows(&self, g: &DwGeometry, mut f: impl FnMut(usize, usize, usize, usize, usize, usize)) {
        let (t, _, l, _) = self.pad;
        let s = self.stride as isize;
        let cols: Vec<(usize, usize, usize)> = (0..g.kw)
            .map(|kj| {
                let lo = ((l as isize - kj as isize).max(0) + s - 1) / s;
                let hi =
                    ((g.w as isize + l as isize - kj as isize + s - 1) / s).clamp(0, g.ow as isize);
                let (lo, hi) = (lo as usize, (hi as usize).max(lo as usize));
                (lo, hi, (lo * self.stride + kj).saturating_sub(l))
            })
            .collect();
        for oy in 0..g.oh {
            for ki in 0..g.kh {
                let y = (oy * self.stride + ki) as isize - t as isize;
                if y < 0 || y >= g.h as isize {
                    continue;
                }
                for (kj, &(lo, hi, first)) in cols.iter().enumerate() {
                    if lo < hi {
                        f(oy, y as usize, ki * g.kw + kj, lo, hi, first);
                    }
                }
            }
        }
    }
}

impl CustomOp2 for DepthwiseOp {
    fn name(&self) -> &'static str {
        "support-depthwise-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, wt) = (f32_slice(s1, l1, "conv2d: input")?, f32_slice(s2, l2, "conv2d: weight")?);
        let g = self.geometry(l1.dims(), l2.dims())?;
        let (hw, ohw, kk) = (g.h * g.w, g.oh * g.ow, g.kh * g.kw);
        let mut out = vec![0f32; g.n * g.c * ohw];
        out.par_chunks_mut(ohw).enumerate().for_each(|(nc, o)| {
            let (xs, ws) = (&x[nc * hw..(nc + 1) * hw], &wt[(nc % g.c) * kk..(nc % g.c + 1) * kk]);
            let st = self.stride;
            self.rows(&g, |oy, y, k, lo, hi, first| {
                let (orow, irow, wv) = (
                    &mut o[oy * g.ow + lo..oy * g.ow + hi],
                    &xs[y * g.w + first..(y + 1) * g.w],
                    ws[k],
                );
                if st == 1 {
                    orow.iter_mut().zip(irow).for_each(|(o, i)| *o += wv * i);
                } else {
                    orow.iter_mut().zip(irow.iter().step_by(st)).for_each(|(o, i)| *o += wv * i);
                }
            });
        });
        Ok((CpuStorage::F32(out), Shape::from((g.n, g.c, g.oh, g.ow))))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        kernel: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = self.geometry(arg.dims(), kernel.dims())?;
        let (hw, ohw, kk) = (g.h * g.w, g.oh * g.ow, g.kh * g.kw);
        let (arg_c, kernel_c, grad_c) =
            (arg.contiguous()?, kernel.contiguous()?, grad.contiguous()?);
        let ((xs, xl), (ws, wl), (ds, dl)) = (
            arg_c.storage_and_layout(),
            kernel_c.storage_and_layout(),
            grad_c.storage_and_layout(),
        );
        let (x, wt, dy) = (
            cpu_f32(&xs, xl, "conv2d: input")?,
            cpu_f32(&ws, wl, "conv2d: weight")?,
            cpu_f32(&ds, dl, "conv2d: gradient")?,
        );
        let need_dx = arg.track_op();
        let mut dx = vec![0f32; if need_dx { g.n * g.c * hw } else { 0 }];
        // Per (image, channel): its dX plane and its contribution to the channel's dW.
        let dws: Vec<Vec<f32>> = if need_dx {
            dx.par_chunks_mut(hw)
                .enumerate()
                .map(|(nc, dxp)| {
                    let (xp, dyp, ws) = (
                        &x[nc * hw..(nc + 1) * hw],
                        &dy[nc * ohw..(nc + 1) * ohw],
                        &wt[(nc % g.c) * kk..(nc % g.c + 1) * kk],
                    );
                    let mut dw = vec![0f32; kk];
                    let st = self.stride;
                    self.rows(&g, |oy, y, k, lo, hi, first| {
                        let (drow, irow, dxrow) = (
                            &dyp[oy * g.ow + lo..oy * g.ow + hi],
                            &xp[y * g.w + first..(y + 1) * g.w],
                            &mut dxp[y * g.w + first..(y + 1) * g.w],
                        );
                        let wv = ws[k];
                        if st == 1 {
                            dw[k] += drow.iter().zip(irow).map(|(d, i)| d * i).sum::<f32>();
                            dxrow.iter_mut().zip(drow).for_each(|(dx, d)| *dx += wv * d);
                        } else {
                            dw[k] += drow
                                .iter()
                                .zip(irow.iter().step_by(st))
                                .map(|(d, i)| d * i)
                                .sum::<f32>();
                            dxrow
                                .iter_mut()
                                .step_by(st)
                                .zip(drow)
                                .for_each(|(dx, d)| *dx += wv * d);
                        }
                    });
                    dw
                })
                .collect()
        } else {
            (0..g.n * g.c)
                .into_par_iter()
                .map(|nc| {
                    let (xp, dyp) = (&x[nc * hw..(nc + 1) * hw], &dy[nc * ohw..(nc + 1) * ohw]);
                    let mut dw = vec![0f32; kk];
                    let st = self.stride;
                    self.rows(&g, |oy, y, k, lo, hi, first| {
                        let (drow, irow) = (
                            &dyp[oy * g.ow + lo..oy * g.ow + hi],
                            &xp[y * g.w + first..(y + 1) * g.w],
                        );
                        dw[k] += drow
                            .iter()
                            .zip(irow.iter().step_by(st))
                            .map(|(d, i)| d * i)
                            .sum::<f32>();
                    });
                    dw
                })
                .collect()
        };
        let mut dw = vec![0f32; g.c * kk];
        for (nc, part) in dws.into_iter().enumerate() {
            dw[(nc % g.c) * kk..(nc % g.c + 1) * kk]
                .iter_mut()
                .zip(part)
                .for_each(|(a, b)| *a += b);
        }
        let dw = Tensor::from_vec(dw, kernel.shape(), kernel.device())?;
        let dx =
            if need_dx { Some(Tensor::from_vec(dx, arg.shape(), arg.device())?) } else { None };
        Ok((dx, Some(dw)))
    }
}

/// `torch.nn.functional.conv2d(F.pad(x, (l, r, t, b)), w, stride=stride, groups=C)` with
/// `w: (C, 1, KH, KW)`; `pad = (top, bottom, left, right)`. Candle's grouped convolution runs one
/// convolution per group; this is one pass. Off the CPU, candle's grouped conv2d is used.
pub fn depthwise_conv2d(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    pad: (usize, usize, usize, usize),
) -> Result<Tensor> {
    if !(is_cpu_f32(x) && is_cpu_f32(w)) {
        let x = x.pad_with_zeros(2, pad.0, pad.1)?.pad_with_zeros(3, pad.2, pad.3)?;
        return x.conv2d(w, 0, stride, 1, w.dim(0)?);
    }
    x.contiguous()?.apply_op2(&w.contiguous()?, DepthwiseOp { stride, pad })
}
