//! In-place optimiser updates on the CPU: `f(param, grad)` runs on the parameter's own storage
//! as a candle in-place op, in one pass, with no temporary tensors (the optimisers' formulas as
//! tensor ops allocate several per parameter and step).

use super::slice;
use crate::{error, Result, Tensor};
use candle_core::{CpuStorage, InplaceOp2, Layout, Var};
use std::cell::RefCell;

/// Runs `f(param, grad)` on the f32 slices of a parameter and its gradient.
struct CpuUpdate<F: FnMut(&mut [f32], &[f32])>(RefCell<F>);

impl<F: FnMut(&mut [f32], &[f32])> InplaceOp2 for CpuUpdate<F> {
    fn name(&self) -> &'static str {
        "optimizer-update"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let CpuStorage::F32(p) = s1 else {
            return Err(error("the optimisers update f32 parameters only"));
        };
        let Some((p0, p1)) = l1.contiguous_offsets() else {
            return Err(error("optimizer update: the parameter must be contiguous"));
        };
        let g = slice(s2, l2, "optimizer update: the gradient")?;
        (self.0.borrow_mut())(&mut p[p0..p1], g);
        Ok(())
    }
}

/// Applies `f(param, grad)` to the values of `var` in place (CPU f32 tensors).
pub(crate) fn update(var: &Var, grad: &Tensor, f: impl FnMut(&mut [f32], &[f32])) -> Result<()> {
    var.as_tensor().inplace_op2(&grad.contiguous()?, &CpuUpdate(RefCell::new(f)))
}
