//! [`Sequential`]: a stack of layers applied in order, as `torch.nn.Sequential`, built by listing
//! the layers and a seed, and printed as PyTorch prints it.

use super::{dropout_rng, repr, Pool2d};
use super::{functional, BatchNorm2d, Conv2d, Conv2dConfig, Dropout, Init, Linear, Model, Params};
use crate::rng::Rng;
use crate::{error, Device, Result, Tensor};
use std::cell::RefCell;
use std::path::Path;

/// One layer of a [`Sequential`].
#[derive(Clone, Debug)]
pub enum Layer {
    /// `nn.Flatten()`: `(N, ...)` -> `(N, product of the rest)`.
    Flatten,
    /// `nn.Linear`.
    Linear(Linear),
    /// `nn.Conv2d`.
    Conv2d(Conv2d),
    /// `nn.MaxPool2d`.
    MaxPool2d(Pool2d),
    /// `nn.AvgPool2d` (`count_include_pad=True`).
    AvgPool2d(Pool2d),
    /// `nn.ReLU()`.
    ReLU,
    /// `nn.Dropout(p)`.
    Dropout(Dropout),
    /// `nn.BatchNorm2d` (eps 1e-5, momentum 0.1).
    BatchNorm2d(BatchNorm2d),
}

impl std::fmt::Display for Layer {
    /// The layer's line in PyTorch's `print(model)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Layer::Flatten => write!(f, "Flatten(start_dim=1, end_dim=-1)"),
            Layer::Linear(l) => repr::linear(l).fmt(f),
            Layer::Conv2d(c) => repr::conv(c).fmt(f),
            Layer::MaxPool2d(p) => repr::max_pool(*p).fmt(f),
            Layer::AvgPool2d(p) => write!(f, "AvgPool2d({p})"),
            Layer::ReLU => write!(f, "ReLU()"),
            Layer::Dropout(d) => repr::dropout(d.p).fmt(f),
            Layer::BatchNorm2d(b) => repr::batch_norm(b).fmt(f),
        }
    }
}

enum Spec {
    Flatten,
    Linear(usize, usize),
    Conv2d { cin: usize, cout: usize, k: usize, cfg: Conv2dConfig },
    MaxPool2d(Pool2d),
    AvgPool2d(Pool2d),
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
    /// `nn.Flatten()`.
    pub fn flatten(mut self) -> Self {
        self.specs.push(Spec::Flatten);
        self
    }
    /// `nn.Linear(in_features, out_features)`.
    pub fn linear(mut self, in_features: usize, out_features: usize) -> Self {
        self.specs.push(Spec::Linear(in_features, out_features));
        self
    }
    /// `nn.Conv2d(cin, cout, kernel_size=k, stride, padding)` with a bias.
    pub fn conv2d(mut self, cin: usize, cout: usize, k: usize, stride: usize, pad: usize) -> Self {
        let cfg = Conv2dConfig { stride, padding: pad, bias: true };
        self.specs.push(Spec::Conv2d { cin, cout, k, cfg });
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
        let cfg = Conv2dConfig { stride, padding: pad, bias: false };
        self.specs.push(Spec::Conv2d { cin, cout, k, cfg });
        self
    }
    /// `nn.MaxPool2d(k, stride, padding)`.
    pub fn max_pool2d(mut self, k: usize, stride: usize, pad: usize) -> Self {
        self.specs.push(Spec::MaxPool2d(Pool2d::new(k, stride, pad)));
        self
    }
    /// `nn.AvgPool2d(k, stride, padding)` (count_include_pad=True).
    pub fn avg_pool2d(mut self, k: usize, stride: usize, pad: usize) -> Self {
        self.specs.push(Spec::AvgPool2d(Pool2d::new(k, stride, pad)));
        self
    }
    /// `nn.ReLU()`.
    pub fn relu(mut self) -> Self {
        self.specs.push(Spec::ReLU);
        self
    }
    /// `nn.Dropout(p)`.
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
    /// [`crate::env::device`]: the CPU unless `PLAYGROUND_DEVICE` names a GPU.
    pub fn build(self, seed: u64) -> Result<Sequential> {
        self.build_on(seed, &crate::env::device()?)
    }

    /// As [`SequentialBuilder::build`], on `device`.
    pub fn build_on(self, seed: u64, device: &Device) -> Result<Sequential> {
        let mut init = Init::new(seed, device);
        let mut layers = Vec::with_capacity(self.specs.len());
        for (i, spec) in self.specs.into_iter().enumerate() {
            let name = i.to_string();
            layers.push(match spec {
                Spec::Flatten => Layer::Flatten,
                Spec::Linear(i_f, o_f) => Layer::Linear(Linear::new(&mut init, &name, i_f, o_f)?),
                Spec::Conv2d { cin, cout, k, cfg } => {
                    Layer::Conv2d(Conv2d::new(&mut init, &name, cin, cout, (k, k), cfg)?)
                }
                Spec::MaxPool2d(p) => Layer::MaxPool2d(p),
                Spec::AvgPool2d(p) => Layer::AvgPool2d(p),
                Spec::ReLU => Layer::ReLU,
                Spec::BatchNorm2d(c) => {
                    Layer::BatchNorm2d(BatchNorm2d::new(&mut init, &name, c, 1e-5)?)
                }
                Spec::Dropout(p) => {
                    Layer::Dropout(Dropout::new(p).map_err(|e| error(format!("layer {i}: {e}")))?)
                }
            });
        }
        let params = init.finish();
        Ok(Sequential { name: self.name, layers, params, dropout_rng: dropout_rng(seed) })
    }
}

/// A stack of layers applied in order, as `torch.nn.Sequential`; parameters are named
/// `<index>.weight` / `<index>.bias` like its `state_dict`.
pub struct Sequential {
    /// The name the printout shows (`MLP(` ...).
    pub name: String,
    /// The layers, in order (indices as in the printout and the parameter names).
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

    fn apply(&self, layer: &Layer, x: &Tensor, train: bool) -> Result<Tensor> {
        Ok(match layer {
            Layer::Flatten => x.flatten_from(1)?,
            Layer::Linear(l) => l.forward(x)?,
            Layer::Conv2d(c) => c.forward(x)?,
            Layer::MaxPool2d(p) => functional::max_pool2d(x, *p)?,
            Layer::AvgPool2d(p) => functional::avg_pool2d(x, *p)?,
            Layer::ReLU => functional::relu(x)?,
            Layer::Dropout(d) => d.forward_t(x, train, &self.dropout_rng)?,
            Layer::BatchNorm2d(b) => b.forward_t(x, train)?,
        })
    }
}

impl Model for Sequential {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.params().fence()?;
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
        let layers = self.layers.iter().map(|l| repr::Module::leaf(l.to_string()));
        repr::Module::sequential(&self.name, layers).fmt(f)
    }
}

impl std::fmt::Debug for Sequential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
