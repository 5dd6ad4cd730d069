//! `torch.nn.functional.linear` on the CPU as one candle custom op: `y = x W^T + b` with the
//! bias written into the output before the gemm accumulates onto it, and a backward pass that
//! returns every gradient contiguous and skips the input gradient when the input needs none.
//!
//! Why not `x.matmul(&w.t())`: candle differentiates that through its `Matmul` and `Transpose`
//! ops, which (1) always compute the input gradient, even for the data entering the first
//! layer (a third of the FCN's arithmetic: `256 x 4000 x 3072` multiply-adds per step thrown
//! away) and (2) hand back the weight gradient as a transposed view, which candle then adds,
//! strided, into a fresh zero tensor (18% of the FCN step in `perf`). Off the CPU or for
//! non-f32 tensors, [`linear`] is that candle expression.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use gemm::Parallelism;

use crate::conv::{cpu_f32, f32_slice, is_cpu_f32, matmul, threads};
use crate::{error, Result};

struct LinearOp;

/// (n, in, out) of `x: (n, in)` and `w: (out, in)`.
fn dims(x: &[usize], w: &[usize]) -> Result<(usize, usize, usize)> {
    match (x, w) {
        (&[n, i], &[o, wi]) if i == wi => Ok((n, i, o)),
        _ => Err(error(format!(
            "linear: input {x:?} and weight {w:?} do not fit: expected (N, in) and (out, in)"
        ))),
    }
}

fn par() -> Parallelism {
    Parallelism::Rayon(threads())
}

impl LinearOp {
    fn forward(
        &self,
        x: &[f32],
        xl: &Layout,
        w: &[f32],
        wl: &Layout,
        bias: Option<&[f32]>,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, i, o) = dims(xl.dims(), wl.dims())?;
        let mut y = match bias {
            Some(b) => b.iter().copied().cycle().take(n * o).collect(),
            None => vec![0f32; n * o],
        };
        // y (n, o) [+]= x (n, i) @ W^T (i, o); W^T is W read with swapped strides.
        matmul(n, o, i, &mut y, bias.is_some(), x, (i as isize, 1), w, (1, i as isize), par());
        Ok((CpuStorage::F32(y), Shape::from((n, o))))
    }

    fn backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        grad: &Tensor,
        with_bias: bool,
    ) -> Result<(Option<Tensor>, Tensor, Option<Tensor>)> {
        let (n, i, o) = dims(x.dims(), w.dims())?;
        let (x_c, w_c, g_c) = (x.contiguous()?, w.contiguous()?, grad.contiguous()?);
        let ((xs, xl), (ws, wl), (gs, gl)) =
            (x_c.storage_and_layout(), w_c.storage_and_layout(), g_c.storage_and_layout());
        let (xv, wv, dy) = (
            cpu_f32(&xs, xl, "linear: input")?,
            cpu_f32(&ws, wl, "linear: weight")?,
            cpu_f32(&gs, gl, "linear: gradient")?,
        );
        // dW (o, i) = dY^T (o, n) @ x (n, i)
        let mut dw = vec![0f32; o * i];
        matmul(o, i, n, &mut dw, false, dy, (1, o as isize), xv, (i as isize, 1), par());
        let dx = if x.track_op() {
            // dX (n, i) = dY (n, o) @ W (o, i)
            let mut dx = vec![0f32; n * i];
            matmul(n, i, o, &mut dx, false, dy, (o as isize, 1), wv, (i as isize, 1), par());
            Some(Tensor::from_vec(dx, (n, i), x.device())?)
        } else {
            None
        };
        let db = if with_bias {
            let mut db = vec![0f32; o];
            for row in dy.chunks(o) {
                db.iter_mut().zip(row).for_each(|(d, g)| *d += g);
            }
            Some(Tensor::from_vec(db, o, w.device())?)
        } else {
            None
        };
        Ok((dx, Tensor::from_vec(dw, (o, i), w.device())?, db))
    }
}

impl CustomOp2 for LinearOp {
    fn name(&self) -> &'static str {
        "support-linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.forward(
            f32_slice(s1, l1, "linear: input")?,
            l1,
            f32_slice(s2, l2, "linear: weight")?,
            l2,
            None,
        )
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = self.backward(x, w, grad, false)?;
        Ok((dx, Some(dw)))
    }
}

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        "support-linear-bias"
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
        let b = f32_slice(s3, l3, "linear: bias")?;
        if b.len() != l2.dims()[0] {
            return Err(error(format!(
                "linear: bias of {} values for {} outputs",
                b.len(),
                l2.dims()[0]
            )));
        }
        self.forward(
            f32_slice(s1, l1, "linear: input")?,
            l1,
            f32_slice(s2, l2, "linear: weight")?,
            l2,
            Some(b),
        )
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, db) = self.backward(x, w, grad, true)?;
        Ok((dx, Some(dw), db))
    }
}

/// `x W^T + b` for `x: (..., in)`, `w: (out, in)`, `b: (out,)`, as `torch.nn.functional.linear`.
pub fn linear(x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    if !(is_cpu_f32(x) && is_cpu_f32(w) && bias.is_none_or(is_cpu_f32))
        || x.rank() < 2
        || w.rank() != 2
    {
        let y = x.broadcast_matmul(&w.t()?)?;
        return match bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        };
    }
    let dims = x.dims().to_vec();
    let x2 = if dims.len() == 2 {
        x.contiguous()?
    } else {
        x.flatten_to(dims.len() - 2)?.contiguous()?
    };
    let y = match bias {
        Some(b) => x2.apply_op3(&w.contiguous()?, &b.contiguous()?, LinearOp)?,
        None => x2.apply_op2(&w.contiguous()?, LinearOp)?,
    };
    if dims.len() == 2 {
        return Ok(y);
    }
    let mut out = dims;
    *out.last_mut().expect("rank >= 2") = w.dim(0)?;
    y.reshape(out)
}
