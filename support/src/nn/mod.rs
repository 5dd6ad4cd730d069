//! Layers and models: what a network is made of and what training needs from it.
//!
//! - [`Model`]: the trait training, evaluation, checkpoints and the optimisers work with.
//! - [`Params`] (a model's named parameters and buffers, saved and loaded by their PyTorch
//!   `state_dict` names) and [`Init`] (creates them with PyTorch's default init from a seed).
//! - Layers: [`Linear`], [`Conv2d`] ([`Conv2dConfig`]), [`BatchNorm2d`], [`Dropout`].
//! - [`Sequential`]: a stack of layers, built as `Sequential::new("MLP").flatten().linear(784,
//!   1024).relu().linear(1024, 10).build(seed)`, printed as PyTorch prints it.
//! - [`functional`]: the operations themselves (`relu`, `conv2d`, `max_pool2d`, ...).

pub mod functional;
mod layers;
mod params;
pub(crate) mod repr;
mod sequential;

pub use functional::Pool2d;
pub use layers::{dropout_rng, BatchNorm2d, Conv2d, Conv2dConfig, Dropout, Linear};
pub use params::{Init, Params};
pub use sequential::{Layer, Sequential, SequentialBuilder};

use crate::rng::Rng;
use crate::{Device, Result, Tensor};
use std::cell::RefCell;

/// A trainable network: what [`crate::train::fit`], the evaluators and the checkpoints need.
pub trait Model {
    /// Forward pass; `train` turns dropout on and BatchNorm to batch statistics (PyTorch's
    /// `model.train()` / `model.eval()`).
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
