//! Activations as candle custom ops with a one-pass backward.
//!
//! candle 0.11 differentiates `relu` as `grad * (x >= 0).to_dtype()` (a zeros tensor, a
//! comparison, a cast and a multiply: four passes and three allocations per layer). Here the
//! backward reads the saved output once: `dX = dY where y > 0, else 0` (PyTorch's rule: the
//! gradient at exactly 0 is 0).

use super::{map, relu1, slice, zip_chunks};
use crate::{error, Result, Tensor};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape};

struct Relu;

impl CustomOp1 for Relu {
    fn name(&self) -> &'static str {
        "support-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        Ok((CpuStorage::F32(map(slice(s, l, "relu")?, relu1)), l.shape().clone()))
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
        let (dy, y) = (slice(s1, l1, "relu backward")?, slice(s2, l2, "relu backward")?);
        if dy.len() != y.len() {
            return Err(error("relu backward: gradient and output sizes differ"));
        }
        let mut out = vec![0f32; dy.len()];
        zip_chunks(&mut out, dy, y, relu_grad_into);
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

/// `torch.relu(x)` of a CPU f32 tensor, differentiable, with the one-pass backward above.
pub(crate) fn relu(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Relu)
}
