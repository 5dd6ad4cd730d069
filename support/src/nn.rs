//! Layers and models: parameters initialised as PyTorch does, `Linear`, seeded `Dropout`,
//! `Sequential`, and the [`Model`] trait that training, evaluation and saving work with.
//!
//! PyTorch's default init for `nn.Linear(in, out)` (and `nn.Conv2d`, with fan_in = in * kh * kw)
//! is `kaiming_uniform_(w, a=sqrt(5))`, i.e. `w ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, and
//! `b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))`. candle-nn's own init differs (kaiming-normal), and
//! its CPU RNG cannot be seeded, so every parameter here is drawn from [`crate::rng::Rng`].

use crate::rng::Rng;
use crate::{error, Device, Result, Tensor};
use candle_core::Var;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;

/// The named parameters of a model, in definition order (the order of PyTorch's `state_dict`).
#[derive(Clone, Debug, Default)]
pub struct Params {
    vars: Vec<(String, Var)>,
    /// Non-trainable state saved with the model (BatchNorm running statistics), as PyTorch's buffers.
    buffers: Vec<(String, Var)>,
}

impl Params {
    pub fn new() -> Self {
        Params::default()
    }

    /// Adds a parameter drawn `U(-bound, bound)` from `rng`.
    pub fn uniform(
        &mut self,
        name: impl Into<String>,
        shape: &[usize],
        bound: f32,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Tensor> {
        let n = shape.iter().product();
        let t = Tensor::from_vec(rng.uniform_vec(n, -bound, bound), shape, device)?;
        self.push(name, t)
    }

    /// Adds a parameter with the given initial value.
    pub fn push(&mut self, name: impl Into<String>, value: Tensor) -> Result<Tensor> {
        let var = Var::from_tensor(&value)?;
        let t = var.as_tensor().clone();
        self.vars.push((name.into(), var));
        Ok(t)
    }

    /// Adds a buffer: state that is saved and loaded but not trained nor counted
    /// (PyTorch's `register_buffer`, e.g. BatchNorm's `running_mean`).
    pub fn buffer(&mut self, name: impl Into<String>, value: Tensor) -> Result<Var> {
        let var = Var::from_tensor(&value)?;
        self.buffers.push((name.into(), var.clone()));
        Ok(var)
    }

    /// `(name, buffer)` pairs in definition order.
    pub fn buffers(&self) -> &[(String, Var)] {
        &self.buffers
    }

    /// All parameters (for an optimiser).
    pub fn vars(&self) -> Vec<Var> {
        self.vars.iter().map(|(_, v)| v.clone()).collect()
    }

    /// `(name, parameter)` pairs in definition order.
    pub fn named(&self) -> &[(String, Var)] {
        &self.vars
    }

    /// The parameters and buffers whose names satisfy `keep`, sharing their storage with `self`
    /// (training the selection trains these tensors of the model).
    pub fn select(&self, keep: impl Fn(&str) -> bool) -> Params {
        let pick = |v: &[(String, Var)]| v.iter().filter(|(n, _)| keep(n)).cloned().collect();
        Params { vars: pick(&self.vars), buffers: pick(&self.buffers) }
    }

    /// Adds every parameter and buffer of `other` (sharing storage) under `prefix` + its name.
    pub fn extend(&mut self, prefix: &str, other: &Params) {
        self.vars.extend(other.vars.iter().map(|(n, v)| (format!("{prefix}{n}"), v.clone())));
        self.buffers.extend(other.buffers.iter().map(|(n, v)| (format!("{prefix}{n}"), v.clone())));
    }

    /// Sets every parameter and buffer to the value of the one with the same name in `other`
    /// (copying the values, not sharing them); `source` names `other` in error messages.
    pub fn copy_from(&self, other: &Params, source: &str) -> Result<()> {
        // `Var::set` copies the values into this model's own storage.
        self.load_tensors(&other.state_dict(), source)
    }

    /// Every parameter and buffer by its PyTorch `state_dict` name (the tensors share storage
    /// with the model).
    pub fn state_dict(&self) -> HashMap<String, Tensor> {
        self.vars
            .iter()
            .chain(&self.buffers)
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect()
    }

    /// Total number of scalar parameters (PyTorch: `sum(p.numel() for p in model.parameters())`).
    pub fn count(&self) -> usize {
        self.vars.iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// Writes the parameters to a `.safetensors` file under their PyTorch `state_dict` names,
    /// creating the parent folder if needed.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| error(format!("cannot create {}: {e}", dir.display())))?;
        }
        candle_core::safetensors::save(&self.state_dict(), path)
    }

    /// Loads every parameter and buffer from a checkpoint: a `.safetensors` file written by
    /// [`Params::save`] (or by `safetensors.torch.save_file(model.state_dict(), path)`), or a
    /// PyTorch `.pth` (zip or legacy format, see [`crate::weights`]). Keys are the PyTorch
    /// `state_dict` names; each must be present with the same shape and a float dtype (f16/bf16/f64
    /// are converted); extra keys (e.g. `num_batches_tracked`) are ignored. Nothing is changed
    /// unless every key checks out.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(error(format!(
                "weights file {} does not exist; train and save the model first, or fix the path",
                path.display()
            )));
        }
        let map = crate::weights::read_state_dict(path)?;
        self.load_tensors(&map, &path.display().to_string())
    }

    /// [`Params::load`] from tensors already read; `source` names them in error messages.
    pub fn load_tensors(&self, map: &HashMap<String, Tensor>, source: &str) -> Result<()> {
        let mut values = Vec::with_capacity(self.vars.len() + self.buffers.len());
        for (name, var) in self.vars.iter().chain(&self.buffers) {
            let t = map.get(name).ok_or_else(|| {
                error(format!("{source} has no tensor `{name}`: it was saved from a different model (it holds {} tensors)", map.len()))
            })?;
            if t.dims() != var.dims() {
                return Err(error(format!(
                    "`{name}` in {source} has shape {:?}, the model expects {:?}: the file belongs to a different architecture",
                    t.dims(),
                    var.dims()
                )));
            }
            if !t.dtype().is_float() {
                return Err(error(format!(
                    "`{name}` in {source} has dtype {:?}, a float type was expected",
                    t.dtype()
                )));
            }
            values.push(t.to_dtype(var.dtype())?.to_device(var.device())?);
        }
        for ((_, var), value) in self.vars.iter().chain(&self.buffers).zip(values) {
            var.set(&value)?;
        }
        Ok(())
    }
}

/// The number inside a tensor's id (`TensorId` has no public accessor, only `Debug`).
pub fn tensor_id(t: &Tensor) -> usize {
    format!("{:?}", t.id())
        .chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(0)
}

/// Makes the next tensors created by *this copy* of candle get ids above those of `vars`.
///
/// Why: evcxr compiles each notebook cell into its own shared object with its own copy of
/// candle, and each copy numbers its tensors from 1. Backpropagation keys gradients by tensor
/// id, so when a model built in one cell is trained in a later cell, the training step's
/// intermediate tensors can reuse the ids of the model's parameters and backward mixes them up
/// ("shape mismatch in add"). Burning ids up to the largest parameter id (creating scalar
/// tensors, ~100 ns each) removes every overlap. [`crate::train::train_model`] calls this; call
/// it yourself before a hand-written training loop in a notebook. Harmless outside notebooks.
pub fn fence_tensor_ids(vars: &[Var]) -> Result<()> {
    let max = vars.iter().map(|v| tensor_id(v.as_tensor())).max().unwrap_or(0);
    loop {
        let t = Tensor::new(0f32, &Device::Cpu)?;
        if tensor_id(&t) > max {
            return Ok(());
        }
    }
}

/// A trainable network: what `train_model`, `evaluate_model` and the optimisers need.
pub trait Model {
    /// Forward pass; `train` turns dropout on (PyTorch's `model.train()` / `model.eval()`).
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor>;
    /// The parameters.
    fn params(&self) -> &Params;

    /// Forward pass in evaluation mode.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_t(x, false)
    }
    /// Number of scalar parameters.
    fn num_parameters(&self) -> usize {
        self.params().count()
    }
    /// The generator of the dropout masks, for models with dropout: a checkpoint saves its
    /// state so that a resumed run draws the masks the uninterrupted run would have.
    fn dropout_rng(&self) -> Option<&RefCell<Rng>> {
        None
    }
    /// The device the parameters live on.
    fn device(&self) -> Device {
        self.params().named().first().map(|(_, v)| v.device().clone()).unwrap_or(Device::Cpu)
    }
}

/// `y = x W^T + b` with `W: (out, in)`, as `torch.nn.Linear`.
#[derive(Clone, Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub in_features: usize,
    pub out_features: usize,
}

impl Linear {
    /// A new layer registered in `params` as `<prefix>.weight` / `<prefix>.bias`, PyTorch init.
    pub fn new(
        params: &mut Params,
        prefix: &str,
        in_features: usize,
        out_features: usize,
        bias: bool,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Self> {
        let bound = 1.0 / (in_features as f32).sqrt();
        let weight = params.uniform(
            format!("{prefix}.weight"),
            &[out_features, in_features],
            bound,
            rng,
            device,
        )?;
        let bias = if bias {
            Some(params.uniform(format!("{prefix}.bias"), &[out_features], bound, rng, device)?)
        } else {
            None
        };
        Ok(Linear { weight, bias, in_features, out_features })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.dims().last() != Some(&self.in_features) {
            return Err(error(format!(
                "Linear(in_features={}, out_features={}) got an input of shape {:?}: its last dimension must be {}",
                self.in_features,
                self.out_features,
                x.dims(),
                self.in_features
            )));
        }
        crate::linear::linear(x, &self.weight, self.bias.as_ref())
    }
}

/// A 2-D convolution as `torch.nn.Conv2d(in, out, kernel, stride, padding)`: weight
/// `(out, in, kh, kw)` and bias drawn `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` with
/// `fan_in = in * kh * kw`. Padding may differ per side (`(top, bottom, left, right)`), which
/// Inception's 1x7 / 7x1 convolutions and TF "SAME" padding need; zero padding as in PyTorch.
#[derive(Clone, Debug)]
pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: (usize, usize),
    pub stride: usize,
    /// Zero padding (top, bottom, left, right).
    pub padding: (usize, usize, usize, usize),
}

impl Conv2d {
    /// A new layer registered in `params` as `<prefix>.weight` / `<prefix>.bias`, PyTorch init,
    /// symmetric padding `padding` on every side.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        params: &mut Params,
        prefix: &str,
        in_channels: usize,
        out_channels: usize,
        kernel: (usize, usize),
        stride: usize,
        padding: usize,
        bias: bool,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Self> {
        if in_channels == 0 || out_channels == 0 || kernel.0 == 0 || kernel.1 == 0 || stride == 0 {
            return Err(error(format!("Conv2d({in_channels}, {out_channels}, kernel {kernel:?}, stride {stride}): sizes must be positive")));
        }
        let fan_in = in_channels * kernel.0 * kernel.1;
        let bound = 1.0 / (fan_in as f32).sqrt();
        let weight = params.uniform(
            format!("{prefix}.weight"),
            &[out_channels, in_channels, kernel.0, kernel.1],
            bound,
            rng,
            device,
        )?;
        let bias = if bias {
            Some(params.uniform(format!("{prefix}.bias"), &[out_channels], bound, rng, device)?)
        } else {
            None
        };
        Ok(Conv2d {
            weight,
            bias,
            in_channels,
            out_channels,
            kernel,
            stride,
            padding: (padding, padding, padding, padding),
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (x, pad) = self.prepare(x)?;
        match &self.bias {
            Some(bias) => crate::conv::conv2d_bias(&x, &self.weight, bias, self.stride, pad),
            None => crate::conv::conv2d(&x, &self.weight, self.stride, pad),
        }
    }

    /// Checks the input and pads it: (input for the op, symmetric padding left for the op).
    fn prepare(&self, x: &Tensor) -> Result<(Tensor, usize)> {
        let dims = x.dims();
        if dims.len() != 4 || dims[1] != self.in_channels {
            return Err(error(format!(
                "Conv2d({}, {}, kernel_size={:?}) got an input of shape {:?}: expected (N, {}, H, W)",
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

    /// `relu(self.forward(x))` in one op (see [`crate::conv::conv2d_relu`]).
    pub fn forward_relu(&self, x: &Tensor) -> Result<Tensor> {
        let (x, pad) = self.prepare(x)?;
        crate::conv::conv2d_relu(&x, &self.weight, self.bias.as_ref(), self.stride, pad)
    }
}

/// `torch.nn.BatchNorm2d(channels, eps, momentum=0.1)`. Evaluation: per channel
/// `y = (x - running_mean) / sqrt(running_var + eps) * weight + bias`. Training
/// ([`BatchNorm2d::forward_t`]): the batch's own mean and (biased) variance over (N, H, W), and the
/// running statistics move by `momentum` towards them (the variance unbiased, as PyTorch).
/// Parameters `weight` (1) and `bias` (0); buffers `running_mean` (0) and `running_var` (1).
#[derive(Clone, Debug)]
pub struct BatchNorm2d {
    pub weight: Tensor,
    pub bias: Tensor,
    pub running_mean: Var,
    pub running_var: Var,
    pub eps: f64,
    pub momentum: f64,
}

impl BatchNorm2d {
    pub fn new(
        params: &mut Params,
        prefix: &str,
        channels: usize,
        eps: f64,
        device: &Device,
    ) -> Result<Self> {
        let ones = Tensor::ones(channels, candle_core::DType::F32, device)?;
        let zeros = Tensor::zeros(channels, candle_core::DType::F32, device)?;
        Ok(BatchNorm2d {
            weight: params.push(format!("{prefix}.weight"), ones.clone())?,
            bias: params.push(format!("{prefix}.bias"), zeros.clone())?,
            running_mean: params.buffer(format!("{prefix}.running_mean"), zeros)?,
            running_var: params.buffer(format!("{prefix}.running_var"), ones)?,
            eps,
            momentum: 0.1,
        })
    }

    /// Training mode (`train`: batch statistics, running statistics updated) or evaluation mode.
    /// On the CPU (f32) training mode is one custom op ([`crate::norm::batch_norm_train`]).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_maybe_relu(x, train, false)
    }

    /// `relu(self.forward_t(x, train))`, the ReLU fused into the BatchNorm op in training mode.
    pub fn forward_relu_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_maybe_relu(x, train, true)
    }

    fn forward_maybe_relu(&self, x: &Tensor, train: bool, relu: bool) -> Result<Tensor> {
        let relu_if = |y: Tensor| if relu { crate::act::relu(&y) } else { Ok(y) };
        if !train {
            return relu_if(self.forward(x)?);
        }
        let c = self.check(x)?;
        let n = x.elem_count() / c;
        if n < 2 {
            return Err(error(format!("BatchNorm2d in training mode needs more than one value per channel, got input {:?}", x.dims())));
        }
        if let Some((y, mean, var)) =
            crate::norm::batch_norm_train(x, &self.weight, &self.bias, self.eps, relu)?
        {
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
            None => crate::act::relu(&self.forward(&conv.forward(x)?)?),
        }
    }

    fn folded(&self, conv: &Conv2d) -> Result<Option<Conv2d>> {
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

    /// Evaluation mode.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = self.check(x)?;
        let (scale, shift) = self.scale_shift()?;
        x.broadcast_mul(&scale.reshape((1, c, 1, 1))?)?.broadcast_add(&shift.reshape((1, c, 1, 1))?)
    }
}

/// Inverted dropout as `torch.nn.Dropout(p)`: in training, zero each element with probability
/// `p` and scale the rest by `1 / (1 - p)`; identity in evaluation. The mask comes from `rng`.
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

/// The dropout-mask generator of a model built from `seed`: its own stream, so adding dropout
/// does not change the init.
pub(crate) fn dropout_stream(seed: u64) -> RefCell<Rng> {
    RefCell::new(Rng::new(seed ^ 0xD80F_0D80_F0D8_0F0D))
}

/// One layer of a [`Sequential`].
#[derive(Clone, Debug)]
pub enum Layer {
    Flatten,
    Linear(Linear),
    Conv2d(Conv2d),
    MaxPool2d(crate::pool::Pool2d),
    AvgPool2d(crate::pool::Pool2d),
    ReLU,
    Dropout(f32),
    BatchNorm2d(BatchNorm2d),
}

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Layer::Flatten => write!(f, "Flatten(start_dim=1, end_dim=-1)"),
            Layer::Linear(l) => write!(
                f,
                "Linear(in_features={}, out_features={}, bias={})",
                l.in_features,
                l.out_features,
                if l.bias.is_some() { "True" } else { "False" }
            ),
            Layer::Conv2d(c) => {
                let (t, b, l, r) = c.padding;
                let pad = if t == b && l == r {
                    format!("({t}, {l})")
                } else {
                    format!("({t}, {b}, {l}, {r})")
                };
                write!(
                    f,
                    "Conv2d({}, {}, kernel_size=({}, {}), stride=({}, {}), padding={pad}{})",
                    c.in_channels,
                    c.out_channels,
                    c.kernel.0,
                    c.kernel.1,
                    c.stride,
                    c.stride,
                    if c.bias.is_some() { "" } else { ", bias=False" }
                )
            }
            Layer::MaxPool2d(p) => write!(f, "MaxPool2d({p}, dilation=1, ceil_mode=False)"),
            Layer::AvgPool2d(p) => write!(f, "AvgPool2d({p})"),
            Layer::ReLU => write!(f, "ReLU()"),
            Layer::Dropout(p) => write!(f, "Dropout(p={p}, inplace=False)"),
            Layer::BatchNorm2d(b) => write!(
                f,
                "BatchNorm2d({}, eps={:e}, momentum={}, affine=True, track_running_stats=True)",
                b.weight.dims()[0],
                b.eps,
                b.momentum
            ),
        }
    }
}

enum Spec {
    Flatten,
    Linear(usize, usize),
    Conv2d { cin: usize, cout: usize, k: usize, stride: usize, pad: usize, bias: bool },
    MaxPool2d(crate::pool::Pool2d),
    AvgPool2d(crate::pool::Pool2d),
    ReLU,
    Dropout(f32),
    BatchNorm2d(usize),
}

/// Builds a [`Sequential`]: list the layers, then `build(seed)`.
pub struct SequentialBuilder {
    name: String,
    specs: Vec<Spec>,
}

impl SequentialBuilder {
    pub fn flatten(mut self) -> Self {
        self.specs.push(Spec::Flatten);
        self
    }
    pub fn linear(mut self, in_features: usize, out_features: usize) -> Self {
        self.specs.push(Spec::Linear(in_features, out_features));
        self
    }
    /// `nn.Conv2d(cin, cout, kernel_size=k, stride, padding)` with a bias.
    pub fn conv2d(mut self, cin: usize, cout: usize, k: usize, stride: usize, pad: usize) -> Self {
        self.specs.push(Spec::Conv2d { cin, cout, k, stride, pad, bias: true });
        self
    }
    /// `nn.Conv2d(cin, cout, kernel_size=k, stride, padding, bias=False)`.
    pub fn conv2d_no_bias(
        mut self,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        pad: usize,
    ) -> Self {
        self.specs.push(Spec::Conv2d { cin, cout, k, stride, pad, bias: false });
        self
    }
    /// `nn.MaxPool2d(k, stride, padding)`.
    pub fn max_pool2d(mut self, k: usize, stride: usize, pad: usize) -> Self {
        self.specs.push(Spec::MaxPool2d(crate::pool::Pool2d::new(k, stride, pad)));
        self
    }
    /// `nn.AvgPool2d(k, stride, padding)` (count_include_pad=True).
    pub fn avg_pool2d(mut self, k: usize, stride: usize, pad: usize) -> Self {
        self.specs.push(Spec::AvgPool2d(crate::pool::Pool2d::new(k, stride, pad)));
        self
    }
    pub fn relu(mut self) -> Self {
        self.specs.push(Spec::ReLU);
        self
    }
    pub fn dropout(mut self, p: f32) -> Self {
        self.specs.push(Spec::Dropout(p));
        self
    }
    /// `nn.BatchNorm2d(channels)` (eps 1e-5, momentum 0.1).
    pub fn batch_norm2d(mut self, channels: usize) -> Self {
        self.specs.push(Spec::BatchNorm2d(channels));
        self
    }

    /// Creates the parameters from `seed` (init and dropout masks both follow it) on
    /// [`crate::device`]: the CPU unless `PLAYGROUND_DEVICE` names a GPU.
    pub fn build(self, seed: u64) -> Result<Sequential> {
        self.build_on(seed, &crate::device()?)
    }

    /// As [`SequentialBuilder::build`], on `device`.
    pub fn build_on(self, seed: u64, device: &Device) -> Result<Sequential> {
        crate::tune_allocator();
        let mut rng = Rng::new(seed);
        let mut params = Params::new();
        let mut layers = Vec::with_capacity(self.specs.len());
        for (i, spec) in self.specs.into_iter().enumerate() {
            layers.push(match spec {
                Spec::Flatten => Layer::Flatten,
                Spec::Linear(i_f, o_f) => Layer::Linear(Linear::new(
                    &mut params,
                    &i.to_string(),
                    i_f,
                    o_f,
                    true,
                    &mut rng,
                    device,
                )?),
                Spec::Conv2d { cin, cout, k, stride, pad, bias } => Layer::Conv2d(Conv2d::new(
                    &mut params,
                    &i.to_string(),
                    cin,
                    cout,
                    (k, k),
                    stride,
                    pad,
                    bias,
                    &mut rng,
                    device,
                )?),
                Spec::MaxPool2d(p) => Layer::MaxPool2d(p),
                Spec::AvgPool2d(p) => Layer::AvgPool2d(p),
                Spec::ReLU => Layer::ReLU,
                Spec::BatchNorm2d(c) => Layer::BatchNorm2d(BatchNorm2d::new(
                    &mut params,
                    &i.to_string(),
                    c,
                    1e-5,
                    device,
                )?),
                Spec::Dropout(p) => {
                    if !(0.0..1.0).contains(&p) {
                        return Err(error(format!(
                            "layer {i}: dropout probability must be in [0, 1), got {p}"
                        )));
                    }
                    Layer::Dropout(p)
                }
            });
        }
        let dropout_rng = dropout_stream(seed);
        Ok(Sequential { name: self.name, layers, params, dropout_rng })
    }
}

/// A stack of layers applied in order, as `torch.nn.Sequential`; parameters are named
/// `<index>.weight` / `<index>.bias` like its `state_dict`.
pub struct Sequential {
    pub name: String,
    pub layers: Vec<Layer>,
    params: Params,
    dropout_rng: RefCell<Rng>,
}

impl Sequential {
    /// Starts a model called `name` (the name its printout shows).
    #[allow(clippy::new_ret_no_self)]
    pub fn new(name: &str) -> SequentialBuilder {
        SequentialBuilder { name: name.to_string(), specs: Vec::new() }
    }

    /// Saves the parameters (see [`Params::save`]).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        self.params.save(path)
    }

    /// Loads the parameters (see [`Params::load`]).
    pub fn load(&self, path: impl AsRef<Path>) -> Result<()> {
        self.params.load(path)
    }
}

impl Sequential {
    /// The output of every layer for `x`, in evaluation mode: `outputs[i]` is what layer `i`
    /// (as numbered in the printout) returns. For visualising hidden layers and feature maps.
    pub fn forward_all(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut outs = Vec::with_capacity(self.layers.len());
        let mut x = x.clone();
        for layer in &self.layers {
            x = self.apply(layer, &x, false)?;
            outs.push(x.clone());
        }
        Ok(outs)
    }

    /// A figure of the hidden layers for one image `(C, H, W)`: the input, then for each
    /// `(layer index, title)` the output of that layer: a row of feature maps (drawn with the
    /// colour range `range`, or each map its own when `None`) for convolutional outputs, a
    /// heat-map strip for vectors.
    pub fn hidden_layers_figure(
        &self,
        image: &Tensor,
        layers: &[(usize, &str)],
        range: Option<(f32, f32)>,
        cell: u32,
    ) -> Result<crate::plot::Figure> {
        let outs = self.forward_all(&image.unsqueeze(0)?)?;
        let mut panels =
            crate::plot::Panels::new().row("Input", std::slice::from_ref(image), None, cell)?;
        for &(i, title) in layers {
            let out = outs
                .get(i)
                .ok_or_else(|| {
                    error(format!("the model has {} layers, there is no layer {i}", outs.len()))
                })?
                .get(0)?;
            panels = match out.rank() {
                3 => {
                    let maps: Vec<Tensor> =
                        (0..out.dim(0)?).map(|c| out.get(c)).collect::<Result<_>>()?;
                    panels.row(title, &maps, range, cell)?
                }
                _ => panels.strip(title, &out)?,
            };
        }
        panels.render()
    }

    fn apply(&self, layer: &Layer, x: &Tensor, train: bool) -> Result<Tensor> {
        Ok(match layer {
            Layer::Flatten => x.flatten_from(1)?,
            Layer::Linear(l) => l.forward(x)?,
            Layer::Conv2d(c) => c.forward(x)?,
            Layer::MaxPool2d(p) => crate::pool::max_pool2d(x, *p)?,
            Layer::AvgPool2d(p) => crate::pool::avg_pool2d(x, *p)?,
            Layer::ReLU => crate::act::relu(x)?,
            Layer::Dropout(p) if train => dropout(x, *p, &mut self.dropout_rng.borrow_mut())?,
            Layer::Dropout(_) => x.clone(),
            Layer::BatchNorm2d(b) => b.forward_t(x, train)?,
        })
    }
}

impl Model for Sequential {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut x = x.clone();
        let mut i = 0;
        while i < self.layers.len() {
            // A convolution followed by a ReLU runs as one fused op (same numbers, one pass less).
            if let (Layer::Conv2d(c), Some(Layer::ReLU)) = (&self.layers[i], self.layers.get(i + 1))
            {
                x = c.forward_relu(&x)?;
                i += 2;
                continue;
            }
            x = self.apply(&self.layers[i], &x, train)?;
            i += 1;
        }
        Ok(x)
    }

    fn params(&self) -> &Params {
        &self.params
    }
    fn dropout_rng(&self) -> Option<&RefCell<Rng>> {
        Some(&self.dropout_rng)
    }
}

impl std::fmt::Display for Sequential {
    /// The same text as PyTorch's `print(model)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}(", self.name)?;
        for (i, l) in self.layers.iter().enumerate() {
            writeln!(f, "  ({i}): {l}")?;
        }
        write!(f, ")")
    }
}

impl std::fmt::Debug for Sequential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
