//! CPU kernels: candle custom ops for the layers whose CPU path in candle 0.11 is slow or
//! missing (convolution with a gemm backward and direct AVX2 kernels, the linear layer as one
//! op, pooling with padding and a backward pass, training-mode BatchNorm, ReLU with a one-pass
//! backward, depthwise convolution, in-place optimiser updates).
//!
//! Crate-private: the public API is [`crate::nn::functional`] (and the layers and optimisers
//! built on it). The one fallback rule lives there: a kernel runs when [`applies`] (every
//! tensor f32 on the CPU); otherwise the same function computes the same result with candle's
//! own tensor ops. Kernels themselves assume their case and return an error otherwise.
//!
//! This module holds the helpers every kernel uses, as candle-core's `cpu_backend/utils.rs`
//! does: reading a storage as an f32 slice, the thread count, the size below which one thread
//! is faster, and element-wise maps. Matrix products go through [`gemm`], the only place that
//! calls the `gemm` crate.

pub(crate) mod act;
pub(crate) mod conv;
#[cfg(target_arch = "x86_64")]
pub(crate) mod conv_direct;
pub(crate) mod depthwise;
pub(crate) mod gemm;
pub(crate) mod linear;
pub(crate) mod norm;
pub(crate) mod pool;
pub(crate) mod update;

use crate::{error, Result, Tensor};
use candle_core::{CpuStorage, DType, Layout, Storage};
use rayon::prelude::*;

/// `max(v, 0)` as PyTorch's ReLU computes it: a NaN stays NaN (`f32::max` would return 0 and
/// hide a diverging run). Written as a select, so loops over it vectorise.
#[inline(always)]
pub(crate) fn relu1(v: f32) -> f32 {
    if v < 0.0 {
        0.0
    } else {
        v
    }
}

/// Below this many elements one thread does an element-wise pass (spawning costs more).
pub(crate) const PAR_MIN: usize = 1 << 15;

/// Whether the kernels handle these tensors: every one f32 and on the CPU. The callers in
/// [`crate::nn::functional`] use candle's own ops otherwise.
pub(crate) fn applies(tensors: &[&Tensor]) -> bool {
    tensors.iter().all(|t| t.device().is_cpu() && t.dtype() == DType::F32)
}

/// The number of rayon threads (at least 1).
pub(crate) fn threads() -> usize {
    rayon::current_num_threads().max(1)
}

/// The f32 data of a contiguous CPU storage; `what` names it in the error ("conv2d: input").
pub(crate) fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else { return Err(error(format!("{what} must be f32"))) };
    let Some((a, b)) = l.contiguous_offsets() else {
        return Err(error(format!("{what} must be contiguous")));
    };
    Ok(&v[a..b])
}

/// [`slice`] of a storage that must be on the CPU.
fn storage_slice<'a>(s: &'a Storage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    match s {
        Storage::Cpu(s) => slice(s, l, what),
        _ => Err(error(format!("{what} must be on the CPU"))),
    }
}

/// Runs `f` on the f32 data of `tensors` (made contiguous first; borrowed, not copied), each
/// named in errors by the matching entry of `names`. The backward passes read their saved
/// tensors this way.
pub(crate) fn with_slices<R>(
    tensors: &[&Tensor],
    names: &[&str],
    f: impl FnOnce(&[&[f32]]) -> Result<R>,
) -> Result<R> {
    let owned = tensors.iter().map(|t| t.contiguous()).collect::<Result<Vec<_>>>()?;
    let guards: Vec<_> = owned.iter().map(|t| t.storage_and_layout()).collect();
    let slices = guards
        .iter()
        .zip(names)
        .map(|((s, l), name)| storage_slice(s, l, name))
        .collect::<Result<Vec<_>>>()?;
    f(&slices)
}

/// `f` applied to every element of `x` (in parallel above [`PAR_MIN`]).
pub(crate) fn map(x: &[f32], f: impl Fn(f32) -> f32 + Sync) -> Vec<f32> {
    if x.len() < PAR_MIN {
        return x.iter().map(|&v| f(v)).collect();
    }
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(PAR_MIN)
        .zip(x.par_chunks(PAR_MIN))
        .for_each(|(o, x)| o.iter_mut().zip(x).for_each(|(o, &v)| *o = f(v)));
    out
}

/// `f(out, a, b)` on matching chunks of three slices of one length (in parallel above [`PAR_MIN`]).
pub(crate) fn zip_chunks(
    out: &mut [f32],
    a: &[f32],
    b: &[f32],
    f: impl Fn(&mut [f32], &[f32], &[f32]) + Sync,
) {
    if out.len() < PAR_MIN {
        f(out, a, b);
    } else {
        out.par_chunks_mut(PAR_MIN)
            .zip(a.par_chunks(PAR_MIN).zip(b.par_chunks(PAR_MIN)))
            .for_each(|(o, (a, b))| f(o, a, b));
    }
}

/// Implements candle's `CustomOp2` (no bias) and `CustomOp3` (with a bias `(O,)`) for an op type
/// with two inherent methods:
/// `fn forward(&self, x: &[f32], xl: &Layout, w: &[f32], wl: &Layout, bias: Option<&[f32]>)
/// -> Result<(CpuStorage, Shape)>` and
/// `fn backward(&self, x: &Tensor, w: &Tensor, res: &Tensor, grad: &Tensor, with_bias: bool)
/// -> Result<(Option<Tensor>, Tensor, Option<Tensor>)>` (dX when the input needs it, dW, dB).
/// `$name` names the op ("conv2d": "support-conv2d", "support-conv2d-bias", errors).
macro_rules! impl_bias_op {
    ($op:ty, $name:literal) => {
        impl candle_core::CustomOp2 for $op {
            fn name(&self) -> &'static str {
                concat!("support-", $name)
            }

            fn cpu_fwd(
                &self,
                s1: &CpuStorage,
                l1: &Layout,
                s2: &CpuStorage,
                l2: &Layout,
            ) -> Result<(CpuStorage, Shape)> {
                let x = $crate::kernels::slice(s1, l1, concat!($name, ": input"))?;
                let w = $crate::kernels::slice(s2, l2, concat!($name, ": weight"))?;
                self.forward(x, l1, w, l2, None)
            }

            fn bwd(
                &self,
                x: &Tensor,
                w: &Tensor,
                res: &Tensor,
                grad: &Tensor,
            ) -> Result<(Option<Tensor>, Option<Tensor>)> {
                let (dx, dw, _) = self.backward(x, w, res, grad, false)?;
                Ok((dx, Some(dw)))
            }
        }

        impl candle_core::CustomOp3 for $op {
            fn name(&self) -> &'static str {
                concat!("support-", $name, "-bias")
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
                let x = $crate::kernels::slice(s1, l1, concat!($name, ": input"))?;
                let w = $crate::kernels::slice(s2, l2, concat!($name, ": weight"))?;
                let b = $crate::kernels::slice(s3, l3, concat!($name, ": bias"))?;
                let outputs = l2.dims().first().copied().unwrap_or(0);
                if b.len() != outputs {
                    return Err($crate::error(format!(
                        "{}: the bias has {} values for {outputs} outputs",
                        $name,
                        b.len()
                    )));
                }
                self.forward(x, l1, w, l2, Some(b))
            }

            fn bwd(
                &self,
                x: &Tensor,
                w: &Tensor,
                _bias: &Tensor,
                res: &Tensor,
                grad: &Tensor,
            ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
                let (dx, dw, db) = self.backward(x, w, res, grad, true)?;
                Ok((dx, Some(dw), db))
            }
        }
    };
}
pub(crate) use impl_bias_op;

/// A tensor from `data` with `like`'s shape and device (the gradient of `like`).
pub(crate) fn tensor_like(data: Vec<f32>, like: &Tensor) -> Result<Tensor> {
    Tensor::from_vec(data, like.shape(), like.device())
}
