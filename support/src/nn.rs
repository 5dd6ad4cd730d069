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
}

impl Params {
    pub fn new() -> Self {
        Params::default()
    }

    /// Adds a parameter drawn `U(-bound, bound)` from `rng`.
    pub fn uniform(&mut self, name: impl Into<String>, shape: &[usize], bound: f32, rng: &mut Rng, device: &Device) -> Result<Tensor> {
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

    /// All parameters (for an optimiser).
    pub fn vars(&self) -> Vec<Var> {
        self.vars.iter().map(|(_, v)| v.clone()).collect()
    }

    /// `(name, parameter)` pairs in definition order.
    pub fn named(&self) -> &[(String, Var)] {
        &self.vars
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
            std::fs::create_dir_all(dir).map_err(|e| error(format!("cannot create {}: {e}", dir.display())))?;
        }
        let map: HashMap<String, Tensor> = self.vars.iter().map(|(n, v)| (n.clone(), v.as_tensor().clone())).collect();
        candle_core::safetensors::save(&map, path)
    }

    /// Loads every parameter from a `.safetensors` file written by [`Params::save`] (or by
    /// PyTorch's `safetensors.torch.save_file(model.state_dict(), path)`). Each key must be
    /// present with the same shape; f16/bf16/f64 values are converted. Nothing is changed unless
    /// every key checks out.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(error(format!("weights file {} does not exist; train and save the model first, or fix the path", path.display())));
        }
        let device = self.vars.first().map(|(_, v)| v.device().clone()).unwrap_or(Device::Cpu);
        let map = candle_core::safetensors::load(path, &device)
            .map_err(|e| error(format!("{} is not a readable safetensors file: {e}", path.display())))?;
        let mut values = Vec::with_capacity(self.vars.len());
        for (name, var) in &self.vars {
            let t = map.get(name).ok_or_else(|| {
                error(format!(
                    "{} has no tensor `{name}`: it was saved from a different model (it holds {} tensors)",
                    path.display(),
                    map.len()
                ))
            })?;
            if t.dims() != var.dims() {
                return Err(error(format!(
                    "`{name}` in {} has shape {:?}, the model expects {:?}: the file belongs to a different architecture",
                    path.display(),
                    t.dims(),
                    var.dims()
                )));
            }
            if !t.dtype().is_float() {
                return Err(error(format!("`{name}` in {} has dtype {:?}, a float type was expected", path.display(), t.dtype())));
            }
            values.push(t.to_dtype(var.dtype())?);
        }
        for ((_, var), value) in self.vars.iter().zip(values) {
            var.set(&value)?;
        }
        Ok(())
    }
}

/// The number inside a tensor's id (`TensorId` has no public accessor, only `Debug`).
pub fn tensor_id(t: &Tensor) -> usize {
    format!("{:?}", t.id()).chars().filter(char::is_ascii_digit).collect::<String>().parse().unwrap_or(0)
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
    pub fn new(params: &mut Params, prefix: &str, in_features: usize, out_features: usize, bias: bool, rng: &mut Rng, device: &Device) -> Result<Self> {
        let bound = 1.0 / (in_features as f32).sqrt();
        let weight = params.uniform(format!("{prefix}.weight"), &[out_features, in_features], bound, rng, device)?;
        let bias = if bias { Some(params.uniform(format!("{prefix}.bias"), &[out_features], bound, rng, device)?) } else { None };
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
        let y = x.broadcast_matmul(&self.weight.t()?)?;
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
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
    let mask: Vec<f32> = (0..x.elem_count()).map(|_| if rng.uniform() < p { 0.0 } else { scale }).collect();
    let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
    x.mul(&mask)
}

/// One layer of a [`Sequential`].
#[derive(Clone, Debug)]
pub enum Layer {
    Flatten,
    Linear(Linear),
    ReLU,
    Dropout(f32),
}

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Layer::Flatten => write!(f, "Flatten(start_dim=1, end_dim=-1)"),
            Layer::Linear(l) => write!(f, "Linear(in_features={}, out_features={}, bias={})", l.in_features, l.out_features, if l.bias.is_some() { "True" } else { "False" }),
            Layer::ReLU => write!(f, "ReLU()"),
            Layer::Dropout(p) => write!(f, "Dropout(p={p}, inplace=False)"),
        }
    }
}

enum Spec {
    Flatten,
    Linear(usize, usize),
    ReLU,
    Dropout(f32),
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
    pub fn relu(mut self) -> Self {
        self.specs.push(Spec::ReLU);
        self
    }
    pub fn dropout(mut self, p: f32) -> Self {
        self.specs.push(Spec::Dropout(p));
        self
    }

    /// Creates the parameters on the CPU from `seed` (init and dropout masks both follow it).
    pub fn build(self, seed: u64) -> Result<Sequential> {
        self.build_on(seed, &Device::Cpu)
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
                Spec::Linear(i_f, o_f) => Layer::Linear(Linear::new(&mut params, &i.to_string(), i_f, o_f, true, &mut rng, device)?),
                Spec::ReLU => Layer::ReLU,
                Spec::Dropout(p) => {
                    if !(0.0..1.0).contains(&p) {
                        return Err(error(format!("layer {i}: dropout probability must be in [0, 1), got {p}")));
                    }
                    Layer::Dropout(p)
                }
            });
        }
        // Dropout draws from its own stream, so adding dropout does not change the init.
        let dropout_rng = RefCell::new(Rng::new(seed ^ 0xD80F_0D80_F0D8_0F0D));
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

impl Model for Sequential {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut x = x.clone();
        for layer in &self.layers {
            x = match layer {
                Layer::Flatten => x.flatten_from(1)?,
                Layer::Linear(l) => l.forward(&x)?,
                Layer::ReLU => x.relu()?,
                Layer::Dropout(p) if train => dropout(&x, *p, &mut self.dropout_rng.borrow_mut())?,
                Layer::Dropout(_) => x,
            };
        }
        Ok(x)
    }

    fn params(&self) -> &Params {
        &self.params
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
