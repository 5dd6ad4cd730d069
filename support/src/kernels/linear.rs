//! `torch.nn.functional.linear` on the CPU as one candle custom op: `y = x W^T + b` with the
//! bias written into the output before the gemm accumulates onto it, and a backward pass that
//! returns every gradient contiguous and skips the input gradient when the input needs none.
//!
//! Why not `x.matmul(&w.t())`: candle differentiates that through its `Matmul` and `Transpose`
//! ops, which (1) always compute the input gradient, even for the data entering the first
//! layer (a third of the FCN's arithmetic: `256 x 4000 x 3072` multiply-adds per step thrown
//! away) and (2) hand back the weight gradient as a transposed view, which candle then adds,
//! strided, into a fresh zero tensor (18% of the FCN step in `perf`).

use super::gemm::{matmul, Mat, MatMut};
use super::{impl_bias_op, threads, with_slices};
use crate::{error, Result};
use candle_core::{CpuStorage, Layout, Shape, Tensor};
use gemm::Parallelism;

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
        let (x, w_t) = (Mat::new(x, n, i, i), Mat::new(w, o, i, i).t());
        matmul(MatMut::new(&mut y, n, o), bias.is_some(), x, w_t, par());
        Ok((CpuStorage::F32(y), Shape::from((n, o))))
    }

    fn backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
        with_bias: bool,
    ) -> Result<(Option<Tensor>, Tensor, Option<Tensor>)> {
        let (n, i, o) = dims(x.dims(), w.dims())?;
        let names = ["linear: input", "linear: weight", "linear: gradient"];
        with_slices(&[x, w, grad], &names, |s| {
            let (xv, wv, dy) = (s[0], s[1], s[2]);
            // dW (o, i) = dY^T (o, n) @ x (n, i)
            let mut dw = vec![0f32; o * i];
            let (dy_t, xm) = (Mat::new(dy, n, o, o).t(), Mat::new(xv, n, i, i));
            matmul(MatMut::new(&mut dw, o, i), false, dy_t, xm, par());
            let dx = if x.track_op() {
                // dX (n, i) = dY (n, o) @ W (o, i)
                let mut dx = vec![0f32; n * i];
                let (dym, wm) = (Mat::new(dy, n, o, o), Mat::new(wv, o, i, i));
                matmul(MatMut::new(&mut dx, n, i), false, dym, wm, par());
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
        })
    }
}

impl_bias_op!(LinearOp, "linear");

/// `x W^T + b` for CPU f32 tensors `x: (..., in)` (rank 2 or more), `w: (out, in)`, `b: (out,)`.
pub(crate) fn linear(x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
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
