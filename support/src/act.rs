//! Activations as candle custom ops with a one-pass backward.
//!
//! candle 0.11 differentiates `relu` as `grad * (x >= 0).to_dtype()` (a zeros tensor, a
//! comparison, a cast and a multiply: four passes and three allocations per layer). Here the
//! backward reads the saved output once: `dX = dY where y > 0, else 0` (PyTorch's rule: the
//! gradient at exactly 0 is 0). Off the CPU, or for non-f32 tensors, candle's ops are used.

use crate::{error, Result, Tensor};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape};
use rayon::prelude::*;

/// Below this many elements one thread does the work (spawning costs more).
const PAR_MIN: usize = 1 << 15;

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else { return Err(error(format!("{op}: expected f32"))) };
    let Some((a, b)) = l.contiguous_offsets() else {
        return Err(error(format!("{op}: expected a contiguous tensor")));
    };
    Ok(&v[a..b])
}

fn map(x: &[f32], f: impl Fn(f32) -> f32 + Sync) -> Vec<f32> {
    if x.len() < PAR_MIN {
        return x.iter().map(|&v| f(v)).collect();
    }
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(PAR_MIN)
        .zip(x.par_chunks(PAR_MIN))
        .for_each(|(o, x)| o.iter_mut().zip(x).for_each(|(o, &v)| *o = f(v)));
    out
}

struct Relu;

impl CustomOp1 for Relu {
    fn name(&self) -> &'static str {
        "support-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        Ok((CpuStorage::F32(map(contiguous(s, l, "relu")?, |v| v.max(0.0))), l.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op2_no_bwd(&res.contiguous()?, &ReluGrad)?))
    }
}

/// `(dY, Y) -> dY * (Y > 0)`: the backward of a ReLU from its output (also used by fused ops).
pub(crate) struct ReluGrad;

impl CustomOp2 for ReluGrad {
    fn name(&self) -> &'static str {
        "support-relu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (dy, y) = (contiguous(s1, l1, "relu backward")?, contiguous(s2, l2, "relu backward")?);
        if dy.len() != y.len() {
            return Err(error("relu backward: gradient and output sizes differ"));
        }
        let mut out = vec![0f32; dy.len()];
        if dy.len() < PAR_MIN {
            relu_grad_into(&mut out, dy, y);
        } else {
            out.par_chunks_mut(PAR_MIN)
                .zip(dy.par_chunks(PAR_MIN).zip(y.par_chunks(PAR_MIN)))
                .for_each(|(o, (d, y))| relu_grad_into(o, d, y));
        }
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// `o = d where y > 0, else 0`, as a bit mask rather than a branch or a multiply (so the loop
/// compiles to vector compares and ands: the branchy form stayed scalar and was ~5% of the
/// residual ResNet's step; `d * mask` would turn an infinite or NaN `d` into NaN where the
/// gradient is 0).
fn relu_grad_into(o: &mut [f32], d: &[f32], y: &[f32]) {
    for ((o, d), y) in o.iter_mut().zip(d).zip(y) {
        let keep = if *y > 0.0 { u32::MAX } else { 0 };
        *o = f32::from_bits(d.to_bits() & keep);
    }
}

/// `torch.relu(x)`, differentiable, with the cheap backward above.
pub fn relu(x: &Tensor) -> Result<Tensor> {
    if !crate::conv::is_cpu_f32(x) {
        return x.relu();
    }
    x.contiguous()?.apply_op1(Relu)
}

/// [`relu`] as a candle `Module`, for chains: `conv.forward(&x)?.apply(&ReLU)?`.
#[derive(Clone, Copy, Debug)]
pub struct ReLU;

impl candle_core::Module for ReLU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        relu(x)
    }
}
