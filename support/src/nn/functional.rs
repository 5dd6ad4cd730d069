//! The operations of the layers, as `torch.nn.functional` names them: differentiable, with
//! PyTorch's semantics, and fast on the CPU.
//!
//! Each function runs a CPU kernel of this crate when every tensor is f32 on the CPU (candle
//! 0.11's own CPU paths for these are slow or missing: see the benchmark in the README), and
//! otherwise computes the same result with candle's own tensor ops (a GPU, or another dtype).
//! That is the one fallback rule; pooling, which candle cannot pad, falls back by pooling a
//! CPU copy (gradients flow through both moves).

use crate::kernels::{self, conv::Conv2dOp};
use crate::rng::Rng;
use crate::{error, Device, Result, Tensor};
use candle_core::DType;

pub use crate::kernels::pool::Pool2d;

/// `torch.relu(x)`; its backward reads the saved output once (`dX = dY where y > 0, else 0`).
pub fn relu(x: &Tensor) -> Result<Tensor> {
    if kernels::applies(&[x]) {
        return kernels::act::relu(x);
    }
    x.relu()
}

/// `torch.nn.functional.linear(x, w, b)`: `x W^T + b`.
///
/// # Shapes
/// `x: (..., in)`, `w: (out, in)`, `b: (out,)` -> `(..., out)`.
pub fn linear(x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    if kernels::applies(&[x, w])
        && bias.is_none_or(|b| kernels::applies(&[b]))
        && x.rank() >= 2
        && w.rank() == 2
    {
        return kernels::linear::linear(x, w, bias);
    }
    let y = x.broadcast_matmul(&w.t()?)?;
    match bias {
        Some(b) => y.broadcast_add(b),
        None => Ok(y),
    }
}

/// `torch.nn.functional.conv2d(x, w, b, stride, padding)` with symmetric zero padding (no
/// dilation or groups; [`crate::nn::Conv2d`] pads asymmetric cases itself).
///
/// # Shapes
/// `x: (N, C, H, W)`, `w: (O, C, KH, KW)`, `b: (O,)` -> `(N, O, OH, OW)` with
/// `OH = (H + 2 * padding - KH) / stride + 1`.
pub fn conv2d(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    if kernels::applies(&[x, w]) && bias.is_none_or(|b| kernels::applies(&[b])) {
        let op = Conv2dOp { stride, pad: padding, relu: false, direct: None };
        return op.apply(x, w, bias);
    }
    let y = x.conv2d(w, padding, stride, 1, 1)?;
    match bias {
        Some(b) => y.broadcast_add(&b.reshape((1, w.dim(0)?, 1, 1))?),
        None => Ok(y),
    }
}

/// `relu(conv2d(x, w, b, stride, padding))` as one op: the ReLU costs no extra pass or buffer
/// in the forward pass, and its backward is folded into the convolution's.
pub fn conv2d_relu(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    if kernels::applies(&[x, w]) && bias.is_none_or(|b| kernels::applies(&[b])) {
        let op = Conv2dOp { stride, pad: padding, relu: true, direct: None };
        return op.apply(x, w, bias);
    }
    relu(&conv2d(x, w, bias, stride, padding)?)
}

/// `torch.nn.functional.conv2d(F.pad(x, (l, r, t, b)), w, stride=stride, groups=C)`: one
/// `KH x KW` filter per channel, as MobileNet and EfficientNet use it; `pad` is
/// `(top, bottom, left, right)`.
///
/// # Shapes
/// `x: (N, C, H, W)`, `w: (C, 1, KH, KW)` -> `(N, C, OH, OW)`.
pub fn depthwise_conv2d(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    pad: (usize, usize, usize, usize),
) -> Result<Tensor> {
    if kernels::applies(&[x, w]) {
        return kernels::depthwise::depthwise_conv2d(x, w, stride, pad);
    }
    let x = x.pad_with_zeros(2, pad.0, pad.1)?.pad_with_zeros(3, pad.2, pad.3)?;
    x.conv2d(w, 0, stride, 1, w.dim(0)?)
}

/// Runs the pooling kernel `pool` on `x`, or on a CPU f32 copy of it moved back afterwards.
fn pool_any(x: &Tensor, pool: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
    if kernels::applies(&[x]) {
        return pool(x);
    }
    pool(&x.to_device(&Device::Cpu)?.to_dtype(DType::F32)?)?
        .to_dtype(x.dtype())?
        .to_device(x.device())
}

/// `torch.nn.functional.max_pool2d(x, kernel, stride, padding)`: padding counts as -inf, the
/// gradient goes to the first maximum of each window in row-major order (as PyTorch).
///
/// # Shapes
/// `x: (N, C, H, W)` -> `(N, C, OH, OW)` with `OH = (H + 2 * padding - kernel) / stride + 1`.
pub fn max_pool2d(x: &Tensor, cfg: Pool2d) -> Result<Tensor> {
    pool_any(x, |x| kernels::pool::max_pool2d(x, cfg))
}

/// `torch.nn.functional.avg_pool2d(x, kernel, stride, padding)` with `count_include_pad=True`.
///
/// # Shapes
/// As [`max_pool2d`].
pub fn avg_pool2d(x: &Tensor, cfg: Pool2d) -> Result<Tensor> {
    pool_any(x, |x| kernels::pool::avg_pool2d(x, cfg))
}

/// `torch.nn.functional.adaptive_avg_pool2d(x, (out_h, out_w))`: window
/// `[floor(i*H/OH), ceil((i+1)*H/OH))` along each axis.
///
/// # Shapes
/// `x: (N, C, H, W)` -> `(N, C, out_h, out_w)`.
pub fn adaptive_avg_pool2d(x: &Tensor, out: (usize, usize)) -> Result<Tensor> {
    pool_any(x, |x| kernels::pool::adaptive_avg_pool2d(x, out))
}

/// Inverted dropout as `torch.nn.functional.dropout(x, p, training=True)`: each element zeroed
/// with probability `p`, the rest scaled by `1 / (1 - p)`; the mask comes from `rng`.
pub fn dropout(x: &Tensor, p: f32, rng: &mut Rng) -> Result<Tensor> {
    if !(0.0..1.0).contains(&p) {
        return Err(error(format!("dropout probability must be in [0, 1), got {p}")));
    }
    if p == 0.0 {
        return Ok(x.clone());
    }
    let scale = 1.0 / (1.0 - p);
    let mask: Vec<f32> =
        (0..x.elem_count()).map(|_| if rng.uniform() < p { 0.0 } else { scale }).collect();
    let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
    x.mul(&mask)
}
