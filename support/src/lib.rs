//! `support`: the small library behind the deep-learning playground notebooks.
//!
//! A notebook starts with `:dep support = { path = "../support" }` and
//! `use support::prelude::*;`. The crate is layered; each layer uses only the ones above it in
//! this list, and nothing below it:
//!
//! - [`env`](mod@env): every `PLAYGROUND_*` variable: device, quick mode, the data / weights / cache /
//!   runs folders, downloads on or off.
//! - [`rng`]: a seeded random generator (candle's CPU RNG cannot be seeded).
//! - [`data`]: MNIST, CIFAR-10 and ImageNet folders: checksummed downloads, readers, splits,
//!   loaders, augmentation, the ImageNet presets.
//! - [`weights`]: reading checkpoints: `.pth` (zip and legacy pickle) and `.safetensors`.
//! - [`viz`]: figures (PNG, inline in Jupyter) and Markdown tables.
//! - [`nn`]: the `Model` trait, parameters and their init, `Linear`, `Conv2d`, `BatchNorm2d`,
//!   `Dropout`, `Sequential`, and the operations themselves ([`nn::functional`]).
//! - [`optim`]: `torch.optim`'s SGD and Adam exactly, and the one-cycle schedule.
//! - [`train`]: the one training loop [`fit`], evaluation, metrics, history, checkpoints.
//! - [`models`]: the CIFAR-10 networks, torchvision's ImageNet classifiers, EfficientNet-Lite.
//! - [`recipes`]: what one notebook needs and no other: CIFAR runs, transfer learning,
//!   denoising, ImageNet evaluation, interpretation, the benchmark.
//!
//! Below `nn::functional` sit the CPU kernels (crate-private) that replace candle's slow or
//! missing CPU paths; they never appear in this documentation.
//!
//! Everything returns [`Result`] (candle's error type) so notebook cells can use `?`, and the
//! crate re-exports candle, candle-nn, plotters and image so a notebook never names a second
//! version of them.
//!
//! ```no_run
//! use support::prelude::*;
//! let (train_dl, val_dl, test_dl) = support::data::mnist_loaders(64, 42)?;
//! let model = Sequential::new("MLP").flatten().linear(784, 1024).relu().linear(1024, 10);
//! let model = model.build(0)?;
//! let mut optimizer = Adam::new(model.params().vars(), 1e-3)?;
//! let opts = FitOptions::new(epochs(5)).validate(&val_dl);
//! let history = fit(&model, &train_dl, &mut optimizer, Loss::CrossEntropy, opts)?;
//! # Ok::<(), support::Error>(())
//! ```
#![warn(missing_docs)]

pub use candle_core as candle;
pub use candle_core::{DType, Device, Error, Result, Tensor, Var};
pub use candle_nn;
pub use image;
pub use plotters;

pub mod data;
pub mod env;
mod kernels;
pub mod models;
pub mod nn;
pub mod optim;
pub mod recipes;
pub mod rng;
pub mod train;
pub mod viz;
pub mod weights;

pub use data::{DataLoader, Dataset};
pub use env::{device, epochs, quick_mode};
pub use models::{CifarModel, CifarNet, EfficientNetLite, TorchvisionModel, TorchvisionNet};
pub use nn::{
    BatchNorm2d, Conv2d, Conv2dConfig, Dropout, Init, Linear, Model, Params, Pool2d, Sequential,
};
pub use optim::{Adam, OneCycle, Optimizer, Sgd};
pub use train::{
    evaluate_model, fit, print_overall_metrics, ConfusionMatrix, FitOptions, History, Loss, Metrics,
};
pub use viz::{Figure, Table};

/// Everything a notebook needs, in one `use support::prelude::*;`.
pub mod prelude {
    pub use crate::data::{DataLoader, Dataset};
    pub use crate::env::{device, epochs, quick_mode};
    pub use crate::models::{CifarModel, EfficientNetLite, TorchvisionModel, TorchvisionNet};
    pub use crate::nn::{functional as F, Conv2dConfig, Init, Model, Params, Sequential};
    pub use crate::optim::{Adam, Optimizer, Sgd};
    pub use crate::train::{evaluate_model, fit, print_overall_metrics, FitOptions};
    pub use crate::train::{History, Loss, Metrics};
    pub use crate::viz::{self, Figure, Table};
    pub use crate::{Device, Result, Tensor, Var};
}

/// What the tests and the benchmark reach below the public API. Not part of it.
#[doc(hidden)]
pub mod internals {
    use crate::kernels::{self, conv::Conv2dOp};
    use crate::{error, Result, Tensor};

    /// `relu?(conv2d(x, w, stride, pad) + bias)` on a chosen path: `direct` true runs the direct
    /// kernels wherever they can run (x86-64 with AVX2 + FMA, stride 1, a square kernel, padding
    /// below its size; else im2col + gemm), false im2col + gemm. CPU f32 tensors only.
    pub fn conv2d_path(
        x: &Tensor,
        w: &Tensor,
        bias: Option<&Tensor>,
        (stride, pad): (usize, usize),
        relu: bool,
        direct: bool,
    ) -> Result<Tensor> {
        if !(kernels::applies(&[x, w]) && bias.is_none_or(|b| kernels::applies(&[b]))) {
            return Err(error("conv2d_path runs on CPU f32 tensors only"));
        }
        Conv2dOp { stride, pad, relu, direct: Some(direct) }.apply(x, w, bias)
    }
}

/// Builds the error that every `support` function returns for bad input: a plain message that
/// says what happened and what to do.
pub(crate) fn error(msg: impl Into<String>) -> Error {
    Error::Msg(msg.into())
}
