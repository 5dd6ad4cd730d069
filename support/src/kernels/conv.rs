//! 2-D convolution on the CPU as a candle custom op: im2col + gemm forward, and a backward
//! pass that computes the weight gradient and the input gradient with gemm as well.
//!
//! candle 0.11 differentiates `conv2d` through a direct-loop `conv_transpose2d` (slow, and
//! wrong in width for strided convolutions on non-square inputs) and computes the input
//! gradient even for the raw images. Here:
//! - forward: per image, `out (O, OH*OW) = W (O, C*KH*KW) @ col (C*KH*KW, OH*OW)`;
//! - backward: `dW += dOut @ col^T` (written column-major, so gemm packs the O rows of `dOut`,
//!   not the C*KH*KW rows of `col`) and `dcol = W^T @ dOut` folded back (col2im) into `dX`;
//!   `dX` is skipped when the input carries no gradient (the data batch of the first layer);
//! - images are spread over the cores (rayon); on small feature maps several images of a core
//!   share one gemm (their im2col matrices side by side, at least 512 columns);
//! - the bias is fused: written before the gemm accumulates, summed in backward.
//!
//! Stride-1 layers with a 3x3, 5x5 or 7x7 kernel and up to 128 -> 64 channels run their forward
//! pass and input gradient in the direct kernels of [`super::conv_direct`] instead (no im2col;
//! AVX2 + FMA CPUs), and with at most 16 input and output channels their weight gradient too.
//!
//! Zero padding is symmetric here; `nn::Conv2d` pads the input itself for asymmetric padding.

use super::gemm::{matmul, Mat, MatMut};
use super::{impl_bias_op, relu1, tensor_like, threads, with_slices};
use crate::{error, Result, Tensor};
use candle_core::{CpuStorage, Layout, Shape};
use gemm::Parallelism;
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

/// gemm runs single-threaded per image when there are enough images to keep every core busy.
fn inner_parallelism(n: usize) -> Parallelism {
    if n >= threads() {
        Parallelism::None
    } else {
        Parallelism::Rayon(threads())
    }
}

/// The convolution op: symmetric zero padding `pad`, square or not kernels, no dilation or groups.
pub(crate) struct Conv2dOp {
    pub(crate) stride: usize,
    pub(crate) pad: usize,
    /// ReLU fused on the output: applied in the same pass as the gemm's result, and its mask
    /// (output > 0) applied to the incoming gradient at the start of the backward pass.
    pub(crate) relu: bool,
    /// `Some(true)` / `Some(false)` forces the direct kernels / im2col + gemm (tests, benchmarks);
    /// `None` picks by shape ([`super::conv_direct::applies`]).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) direct: Option<bool>,
}

impl Conv2dOp {
    /// `relu?(conv2d(x, w) + bias)` for f32 CPU tensors, differentiable.
    pub(crate) fn apply(self, x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        match bias {
            Some(b) => x.contiguous()?.apply_op3(&w.contiguous()?, &b.contiguous()?, self),
            None => x.contiguous()?.apply_op2(&w.contiguous()?, self),
        }
    }

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
    /// [`super::conv_direct::applies`], or wherever they can when forced.
    #[cfg(target_arch = "x86_64")]
    fn direct(&self, g: &Geometry) -> Option<super::conv_direct::Shape> {
        use super::conv_direct::{applies, supports, Shape};
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
        // (The bias length is checked by `impl_bias_op!`.)
        let g = self.geometry(xl.dims(), wl.dims())?;
        #[cfg(target_arch = "x86_64")]
        if let Some(s) = self.direct(&g) {
            let mut out = vec![0f32; g.n * g.o * g.ohw()];
            super::conv_direct::forward(x, wt, bias, self.relu, &s, &mut out);
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
                    let w = Mat::new(wt, g.o, ckk, ckk);
                    let out = MatMut::new(&mut *dst, g.o, ohw);
                    matmul(out, bias.is_some(), w, Mat::new(src, ckk, ohw, ohw), par);
                    if self.relu {
                        dst.iter_mut().for_each(|v| *v = relu1(*v));
                    }
                    continue;
                }
                // (O, m*OHW) in one gemm, then each image's columns to its place, bias and ReLU on
                // the way.
                let ld = m * ohw;
                let w = Mat::new(wt, g.o, ckk, ckk);
                matmul(MatMut::new(&mut wide, g.o, ld), false, w, Mat::new(src, ckk, ld, ld), par);
                for (i, d_img) in dst.chunks_mut(g.o * ohw).enumerate() {
                    for (oc, d) in d_img.chunks_mut(ohw).enumerate() {
                        let (s, b) =
                            (&wide[oc * ld + i * ohw..][..ohw], bias.map_or(0.0, |b| b[oc]));
                        if self.relu {
                            d.iter_mut().zip(s).for_each(|(d, s)| *d = relu1(s + b));
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
            grad.contiguous()?.apply_op2_no_bwd(&res.contiguous()?, &super::act::ReluGrad)?
        } else {
            grad.clone()
        };
        let names = ["conv2d: input", "conv2d: weight", "conv2d: gradient"];
        with_slices(&[arg, kernel, &grad], &names, |s| {
            let (x, wt, dy) = (s[0], s[1], s[2]);
            let need_dx = arg.track_op();
            // The direct kernels' input gradient, and their weight gradient where that is faster
            // than im2col + gemm (few channels); else the gemm loop below computes dW (and dX).
            #[cfg(target_arch = "x86_64")]
            let (dx_direct, need_dx) = match self.direct(&g) {
                Some(s) => {
                    let dx = if need_dx {
                        let mut dx = vec![0f32; g.n * img];
                        super::conv_direct::input_grad(dy, wt, &s, &mut dx);
                        Some(tensor_like(dx, arg)?)
                    } else {
                        None
                    };
                    if self.direct.unwrap_or_else(|| super::conv_direct::weight_grad_applies(&s)) {
                        let dw = Tensor::from_vec(
                            super::conv_direct::weight_grad(x, dy, &s),
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
                    let mut col =
                        ColBuf::new(if g.pointwise() && gsz == 1 { 0 } else { ckk * cols });
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
                        // dY of the group as one (O, m*OHW) matrix, the layout of
                        // the forward's gemm.
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
                        // dW (O, CKK) += dY (O, m*OHW) @ col^T (m*OHW, CKK), kept column-major
                        // (see `MatMut::col_major`).
                        let col_t = Mat::new(src, ckk, ld, ld).t();
                        let dw_t = MatMut::col_major(&mut dw, g.o, ckk);
                        matmul(dw_t, true, Mat::new(dyg, g.o, ld, ld), col_t, par);
                        if need_dx {
                            let dxs =
                                &mut dx[(first - t * chunk) * img..(first - t * chunk + m) * img];
                            // dcol (CKK, m*OHW) = W^T (CKK, O) @ dY (O, m*OHW), folded back into dX
                            // (a lone pointwise image: dcol is dX).
                            if g.pointwise() && m == 1 {
                                let w_t = Mat::new(wt, g.o, ckk, ckk).t();
                                let dy = Mat::new(dyg, g.o, ohw, ohw);
                                matmul(MatMut::new(dxs, ckk, ohw), false, w_t, dy, par);
                                continue;
                            }
                            let w_t = Mat::new(wt, g.o, ckk, ckk).t();
                            let dy = Mat::new(dyg, g.o, ld, ld);
                            matmul(MatMut::new(&mut dcol, ckk, ld), false, w_t, dy, par);
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
            let dw = tensor_like(dw, kernel)?;
            let dx = if need_dx { Some(tensor_like(dx, arg)?) } else { dx_direct };
            let db =
                if with_bias { Some(Tensor::from_vec(db, g.o, kernel.device())?) } else { None };
            Ok((dx, dw, db))
        })
    }
}

impl_bias_op!(Conv2dOp, "conv2d");
