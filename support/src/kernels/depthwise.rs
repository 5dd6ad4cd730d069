//! Depthwise 2-D convolution (`groups = channels`, one `kh x kw` filter per channel) with zero
//! padding `(top, bottom, left, right)`, as MobileNet and EfficientNet use it: candle's grouped
//! convolution runs one convolution per group; this is one pass of direct loops over row
//! slices (vectorised), images x channels spread over the cores, forward and backward.

use super::{slice, tensor_like, with_slices};
use crate::{error, Result, Tensor};
use candle_core::{CpuStorage, CustomOp2, Layout, Shape};
use rayon::prelude::*;

/// The op: stride and zero padding `(top, bottom, left, right)`.
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
            return Err(error(format!(
                "depthwise conv: the input has {c} channels, the weight has \
             shape {w:?} (expected ({c}, 1, KH, KW))"
            )));
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
        let (x, wt) =
            (slice(s1, l1, "depthwise conv: input")?, slice(s2, l2, "depthwise conv: weight")?);
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
        let names = ["depthwise conv: input", "depthwise conv: weight", "depthwise conv: gradient"];
        with_slices(&[arg, kernel, grad], &names, |s| {
            let (x, wt, dy) = (s[0], s[1], s[2]);
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
            let dw = tensor_like(dw, kernel)?;
            let dx = if need_dx { Some(tensor_like(dx, arg)?) } else { None };
            Ok((dx, Some(dw)))
        })
    }
}

/// The depthwise convolution of CPU f32 tensors `x: (N, C, H, W)` and `w: (C, 1, KH, KW)`.
pub(crate) fn depthwise_conv2d(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    pad: (usize, usize, usize, usize),
) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, DepthwiseOp { stride, pad })
}
