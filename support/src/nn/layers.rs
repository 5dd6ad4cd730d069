//! The layers of the notebooks' models, as `torch.nn` defines them: [`Linear`], [`Conv2d`] (with
//! [`Conv2dConfig`]), [`BatchNorm2d`] and [`Dropout`]. Each is created from an [`Init`] under its
//! `state_dict` name and runs through [`super::functional`].

use super::functional;
use super::params::Fence;
use super::Init;
use crate::kernels;
use crate::rng::Rng;
use crate::{error, Result, Tensor};
use candle_core::Var;
use std::cell::RefCell;

/// `y = x W^T + b` with `W: (out, in)`, as `torch.nn.Linear(in, out)`; weight and bias drawn
/// `U(-1/sqrt(in), 1/sqrt(in))` (PyTorch's default init).
#[derive(Clone, Debug)]
pub struct Linear {
    /// `(out_features, in_features)`.
    pub weight: Tensor,
    /// `(out_features,)`.
    pub bias: Option<Tensor>,
    /// Size of each input sample.
    pub in_features: usize,
    /// Size of each output sample.
    pub out_features: usize,
    /// Shared with the other layers of its model (see `Init`).
    pub(crate) fence: Fence,
}

impl Linear {
    /// A new layer with a bias, registered as `<name>.weight` / `<name>.bias`.
    pub fn new(
        init: &mut Init,
        name: &str,
        in_features: usize,
        out_features: usize,
    ) -> Result<Self> {
        let bound = 1.0 / (in_features as f32).sqrt();
        let weight =
            init.uniform(&format!("{name}.weight"), &[out_features, in_features], bound)?;
        let bias = Some(init.uniform(&format!("{name}.bias"), &[out_features], bound)?);
        Ok(Linear { weight, bias, in_features, out_features, fence: init.fence() })
    }

    /// # Shapes
    /// `x: (..., in_features)` -> `(..., out_features)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.fence.pass()?;
        if x.dims().last() != Some(&self.in_features) {
            return Err(error(format!(
                "Linear(in_features={}, out_features={}) got an input of shape {:?}: its last \
                 dimension must be {}",
                self.in_features,
                self.out_features,
                x.dims(),
                self.in_features
            )));
        }
        functional::linear(x, &self.weight, self.bias.as_ref())
    }
}

/// The options of `torch.nn.Conv2d` besides the channels and the kernel size, with PyTorch's
/// defaults: stride 1, no padding, a bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dConfig {
    /// Step between output positions, both axes.
    pub stride: usize,
    /// Zero padding on every side (asymmetric padding: [`Conv2d::with_padding`]).
    pub padding: usize,
    /// Whether the layer adds a learned bias per output channel.
    pub bias: bool,
}

impl Default for Conv2dConfig {
    fn default() -> Self {
        Conv2dConfig { stride: 1, padding: 0, bias: true }
    }
}

/// A 2-D convolution as `torch.nn.Conv2d(in, out, kernel, stride, padding)`: weight
/// `(out, in, kh, kw)` and bias drawn `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` with
/// `fan_in = in * kh * kw`. Padding may differ per side (`(top, bottom, left, right)`), which
/// Inception's 1x7 / 7x1 convolutions and TF "SAME" padding need; zero padding as in PyTorch.
#[derive(Clone, Debug)]
pub struct Conv2d {
    /// `(out_channels, in_channels, kh, kw)`.
    pub weight: Tensor,
    /// `(out_channels,)`.
    pub bias: Option<Tensor>,
    /// Channels of the input.
    pub in_channels: usize,
    /// Channels of the output (the number of filters).
    pub out_channels: usize,
    /// Kernel size (height, width).
    pub kernel: (usize, usize),
    /// Step between output positions, both axes.
    pub stride: usize,
    /// Zero padding (top, bottom, left, right).
    pub padding: (usize, usize, usize, usize),
    /// Shared with the other layers of its model (see `Init`).
    pub(crate) fence: Fence,
}

impl Conv2d {
    /// A new layer registered as `<name>.weight` / `<name>.bias` (when `cfg.bias`).
    pub fn new(
        init: &mut Init,
        name: &str,
        in_channels: usize,
        out_channels: usize,
        kernel: (usize, usize),
        cfg: Conv2dConfig,
    ) -> Result<Self> {
        let Conv2dConfig { stride, padding, bias } = cfg;
        if in_channels == 0 || out_channels == 0 || kernel.0 == 0 || kernel.1 == 0 || stride == 0 {
            return Err(error(format!(
                "Conv2d({in_channels}, {out_channels}, kernel {kernel:?}, stride {stride}): sizes \
                 must be positive"
            )));
        }
        let fan_in = in_channels * kernel.0 * kernel.1;
        let bound = 1.0 / (fan_in as f32).sqrt();
        let shape = [out_channels, in_channels, kernel.0, kernel.1];
        let weight = init.uniform(&format!("{name}.weight"), &shape, bound)?;
        let bias = if bias {
            Some(init.uniform(&format!("{name}.bias"), &[out_channels], bound)?)
        } else {
            None
        };
        let padding = (padding, padding, padding, padding);
        let fence = init.fence();
        Ok(Conv2d { weight, bias, in_channels, out_channels, kernel, stride, padding, fence })
    }

    /// This layer with zero padding `(top, bottom, left, right)`.
    pub fn with_padding(mut self, padding: (usize, usize, usize, usize)) -> Self {
        self.padding = padding;
        self
    }

    /// # Shapes
    /// `x: (N, in_channels, H, W)` -> `(N, out_channels, OH, OW)` with
    /// `OH = (H + top + bottom - kh) / stride + 1` (and the same for the width).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (x, pad) = self.prepare(x)?;
        functional::conv2d(&x, &self.weight, self.bias.as_ref(), self.stride, pad)
    }

    /// `relu(self.forward(x))` in one op (see [`functional::conv2d_relu`]).
    pub fn forward_relu(&self, x: &Tensor) -> Result<Tensor> {
        let (x, pad) = self.prepare(x)?;
        functional::conv2d_relu(&x, &self.weight, self.bias.as_ref(), self.stride, pad)
    }

    /// Checks the input and pads it: (input for the op, symmetric padding left for the op).
    fn prepare(&self, x: &Tensor) -> Result<(Tensor, usize)> {
        self.fence.pass()?;
        let dims = x.dims();
        if dims.len() != 4 || dims[1] != self.in_channels {
            return Err(error(format!(
                "Conv2d({}, {}, kernel_size={:?}) got an input of shape {:?}: expected (N, {}, \
                 H, W)",
                self.in_channels, self.out_channels, self.kernel, dims, self.in_channels
            )));
        }
        let (t, b, l, r) = self.padding;
        let (x, pad) = if t == b && l == r && t == l {
            (x.clone(), t)
        } else {
            (x.pad_with_zeros(2, t, b)?.pad_with_zeros(3, l, r)?, 0)
        };
        let (h, w) = (x.dim(2)? + 2 * pad, x.dim(3)? + 2 * pad);
        if h < self.kernel.0 || w < self.kernel.1 {
            return Err(error(format!(
                "Conv2d: the padded input {h}x{w} is smaller than the kernel {:?}",
                self.kernel
            )));
        }
        Ok((x, pad))
    }
}

/// `torch.nn.BatchNorm2d(channels, eps, momentum=0.1)`. Evaluation: per channel
/// `y = (x - running_mean) / sqrt(running_var + eps) * weight + bias`. Training
/// ([`BatchNorm2d::forward_t`]): the batch's own mean and (biased) variance over (N, H, W), and the
/// running statistics move by `momentum` towards them (the variance unbiased, as PyTorch).
/// Parameters `weight` (1) and `bias` (0); buffers `running_mean` (0) and `running_var` (1).
#[derive(Clone, Debug)]
pub struct BatchNorm2d {
    /// Per-channel scale `(C,)`, trained.
    pub weight: Tensor,
    /// Per-channel shift `(C,)`, trained.
    pub bias: Tensor,
    /// Running mean of the batches seen in training (a buffer).
    pub running_mean: Var,
    /// Running (unbiased) variance of the batches seen in training (a buffer).
    pub running_var: Var,
    /// Added to the variance before the square root.
    pub eps: f64,
    /// How far each training batch moves the running statistics (0.1).
    pub momentum: f64,
    /// Shared with the other layers of its model (see `Init`).
    pub(crate) fence: Fence,
}

impl BatchNorm2d {
    /// A new layer registered as `<name>.weight` (1), `<name>.bias` (0) and the buffers
    /// `<name>.running_mean` (0) and `<name>.running_var` (1); momentum 0.1 (PyTorch's default
    /// eps is 1e-5; torchvision's Inception v3 and the TF-converted EfficientNets use 1e-3).
    pub fn new(init: &mut Init, name: &str, channels: usize, eps: f64) -> Result<Self> {
        Ok(BatchNorm2d {
            weight: init.constant(&format!("{name}.weight"), &[channels], 1.0)?,
            bias: init.constant(&format!("{name}.bias"), &[channels], 0.0)?,
            running_mean: init.buffer(&format!("{name}.running_mean"), &[channels], 0.0)?,
            running_var: init.buffer(&format!("{name}.running_var"), &[channels], 1.0)?,
            eps,
            momentum: 0.1,
            fence: init.fence(),
        })
    }

    /// Training mode (`train`: batch statistics, running statistics updated) or evaluation mode.
    /// On the CPU (f32) training mode is one custom op (statistics, normalisation and the fused
    /// ReLU in two passes; the backward in two more).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_maybe_relu(x, train, false)
    }

    /// `relu(self.forward_t(x, train))`, the ReLU fused into the BatchNorm op in training mode.
    pub fn forward_relu_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_maybe_relu(x, train, true)
    }

    fn forward_maybe_relu(&self, x: &Tensor, train: bool, relu: bool) -> Result<Tensor> {
        let relu_if = |y: Tensor| if relu { functional::relu(&y) } else { Ok(y) };
        if !train {
            return relu_if(self.forward(x)?);
        }
        let c = self.check(x)?;
        let n = x.elem_count() / c;
        if n < 2 {
            return Err(error(format!(
                "BatchNorm2d in training mode needs more than one value per channel, got input \
                 {:?}",
                x.dims()
            )));
        }
        if kernels::applies(&[x, &self.weight, &self.bias]) {
            let (y, mean, var) =
                kernels::norm::batch_norm_train(x, &self.weight, &self.bias, self.eps, relu)?;
            self.update_running(&mean, &var, n)?;
            return Ok(y);
        }
        let mean = x.mean_keepdim(0)?.mean_keepdim(2)?.mean_keepdim(3)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(0)?.mean_keepdim(2)?.mean_keepdim(3)?;
        let y = centred.broadcast_div(&(&var + self.eps)?.sqrt()?)?;
        let y = y
            .broadcast_mul(&self.weight.reshape((1, c, 1, 1))?)?
            .broadcast_add(&self.bias.reshape((1, c, 1, 1))?)?;
        self.update_running(&mean.detach().flatten_all()?, &var.detach().flatten_all()?, n)?;
        relu_if(y)
    }

    /// Moves the running statistics by `momentum` towards the batch's mean and (biased) variance
    /// `var` of `n` values per channel; the variance is stored unbiased, as PyTorch does.
    fn update_running(&self, mean: &Tensor, var: &Tensor, n: usize) -> Result<()> {
        let m = self.momentum;
        self.running_mean
            .set(&(self.running_mean.as_tensor().affine(1.0 - m, 0.0)? + mean.affine(m, 0.0)?)?)?;
        self.running_var.set(
            &(self.running_var.as_tensor().affine(1.0 - m, 0.0)?
                + var.affine(m * n as f64 / (n - 1) as f64, 0.0)?)?,
        )?;
        Ok(())
    }

    fn check(&self, x: &Tensor) -> Result<usize> {
        self.fence.pass()?;
        let c = self.weight.dim(0)?;
        if x.rank() != 4 || x.dim(1)? != c {
            return Err(error(format!(
                "BatchNorm2d({c}) got an input of shape {:?}: expected (N, {c}, H, W)",
                x.dims()
            )));
        }
        Ok(c)
    }

    /// The per-channel `(scale, shift)` with `y = x * scale + shift` (evaluation mode).
    pub fn scale_shift(&self) -> Result<(Tensor, Tensor)> {
        let scale = (&self.weight / (self.running_var.as_tensor() + self.eps)?.sqrt()?)?;
        let shift = (&self.bias - (self.running_mean.as_tensor() * &scale)?)?;
        Ok((scale, shift))
    }

    /// `self.forward(conv(x))` for a bias-free convolution, as one convolution: the BatchNorm is
    /// folded into the weights (`w * scale`) and a bias (`shift`), saving two passes over the
    /// activations. Evaluation mode only (the frozen backbones use it).
    pub fn fold_into(&self, conv: &Conv2d, x: &Tensor) -> Result<Tensor> {
        match self.folded(conv)? {
            Some(f) => f.forward(x),
            None => self.forward(&conv.forward(x)?),
        }
    }

    /// `relu(self.fold_into(conv, x))`, the ReLU fused into the same op.
    pub fn fold_into_relu(&self, conv: &Conv2d, x: &Tensor) -> Result<Tensor> {
        match self.folded(conv)? {
            Some(f) => f.forward_relu(x),
            None => functional::relu(&self.forward(&conv.forward(x)?)?),
        }
    }

    fn folded(&self, conv: &Conv2d) -> Result<Option<Conv2d>> {
        self.fence.pass()?;
        let (scale, shift) = self.scale_shift()?;
        let o = conv.out_channels;
        if conv.bias.is_some() || scale.dim(0)? != o {
            return Ok(None);
        }
        Ok(Some(Conv2d {
            weight: conv.weight.broadcast_mul(&scale.reshape((o, 1, 1, 1))?)?,
            bias: Some(shift),
            ..conv.clone()
        }))
    }

    /// Evaluation mode: the running statistics.
    ///
    /// # Shapes
    /// `x: (N, C, H, W)` -> `(N, C, H, W)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = self.check(x)?;
        let (scale, shift) = self.scale_shift()?;
        x.broadcast_mul(&scale.reshape((1, c, 1, 1))?)?.broadcast_add(&shift.reshape((1, c, 1, 1))?)
    }
}

/// Inverted dropout as `torch.nn.Dropout(p)`: in training, each element is zeroed with
/// probability `p` and the rest scaled by `1 / (1 - p)`; identity in evaluation. The masks come
/// from the model's dropout generator ([`dropout_rng`]), which its checkpoints save.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    /// Probability of zeroing an element, in `[0, 1)`.
    pub p: f32,
}

impl Dropout {
    /// Dropout with probability `p` (an error outside `[0, 1)`).
    pub fn new(p: f32) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(error(format!("dropout probability must be in [0, 1), got {p}")));
        }
        Ok(Dropout { p })
    }

    /// The masked input in training (`train`), the input itself in evaluation.
    pub fn forward_t(&self, x: &Tensor, train: bool, rng: &RefCell<Rng>) -> Result<Tensor> {
        if !train {
            return Ok(x.clone());
        }
        functional::dropout(x, self.p, &mut rng.borrow_mut())
    }
}

/// The dropout-mask generator of a model built from `seed`: a stream of its own, so adding
/// dropout to a model does not change its init.
pub fn dropout_rng(seed: u64) -> RefCell<Rng> {
    RefCell::new(Rng::new(seed ^ 0xD80F_0D80_F0D8_0F0D))
}
