//! `support`: the small library behind the deep-learning playground notebooks.
//!
//! One flat module per concept, as in candle-nn:
//! - [`rng`]: a seeded random generator (candle's CPU RNG cannot be seeded).
//! - [`data`]: MNIST / CIFAR-10 readers, data root, download with SHA-256 checks, splits, loaders.
//! - [`augment`]: random crop + flip for training batches.
//! - [`act`]: ReLU with a one-pass backward.
//! - [`conv`], [`pool`]: convolution (im2col + gemm, depthwise) and pooling ops with their backward.
//! - [`norm`]: BatchNorm in training mode as one op (with an optional fused ReLU).
//! - [`nn`]: parameters with PyTorch's default init, `Linear`, `Conv2d`, `BatchNorm2d`, `Dropout`,
//!   `Sequential`, the `Model` trait, checkpoint loading.
//! - [`optim`]: SGD and Adam exactly as `torch.optim` defines them, and `OneCycleLR`.
//! - [`train`]: `train_model`, `evaluate_model`, `print_overall_metrics`, `History`, confusion matrix.
//! - [`cifar`], [`denoise`]: the models and helpers of those notebooks.
//! - [`weights`]: reading `.pth` (zip and legacy) and `.safetensors`, the pretrained weight files.
//! - [`torchvision`], [`efficientnet`], [`imagenet`]: ImageNet classifiers, presets, evaluation.
//! - [`transfer`]: cached backbone features for transfer learning.
//! - [`bench`]: the reference models and protocol of the speed benchmark.
//! - [`plot`], [`report`]: PNG figures and Markdown tables that display inline in Jupyter (evcxr).
//!
//! Everything returns [`Result`] (candle's error type) so notebook cells can use `?`,
//! and the crate re-exports candle, candle-nn, plotters and image so a notebook never names a
//! second version of them.
//!
//! ```no_run
//! use support::prelude::*;
//! let (train, val, test) = support::data::mnist_loaders(64, 42)?;
//! # Ok::<(), support::Error>(())
//! ```

pub use candle_core as candle;
pub use candle_core::{Device, Error, Result, Tensor};
pub use candle_nn;
pub use image;
pub use plotters;

pub mod act;
pub mod augment;
pub mod bench;
pub mod cifar;
pub mod conv;
#[cfg(target_arch = "x86_64")]
mod conv_direct;
pub mod data;
pub mod denoise;
#[cfg(feature = "download")]
pub mod download;
pub mod efficientnet;
pub mod imagenet;
pub mod linear;
pub mod nn;
pub mod norm;
pub mod optim;
pub mod plot;
pub mod pool;
pub mod report;
pub mod rng;
pub mod torchvision;
pub mod train;
pub mod transfer;
pub mod weights;

/// Everything a notebook needs, in one `use support::prelude::*;`.
pub mod prelude {
    pub use crate::data::{mnist_loaders, DataLoader, Dataset};
    pub use crate::nn::{Model, Sequential};
    pub use crate::optim::{Adam, Optimizer, Sgd};
    pub use crate::plot;
    pub use crate::plot::Figure;
    pub use crate::report::Table;
    pub use crate::train::{
        evaluate_model, prediction_figure, print_overall_metrics, train_model, History, Loss,
        Metrics,
    };
    pub use crate::{device, epochs, quick_mode, Device, Result, Tensor};
}

/// The device models are built on: `PLAYGROUND_DEVICE` = `cpu` (the default, also when unset),
/// `cuda`, `cuda:N` or `metal`, read by every model builder (`Sequential::build`,
/// `cifar::build`), so a notebook moves to a GPU with one environment variable and no code
/// change. `train_model` and the evaluators move each batch to the model's device.
/// A GPU needs `support` built with its feature: in a notebook's setup cell,
/// `:dep support = { path = "../support", features = ["cuda"] }` (or `"metal"`).
pub fn device() -> Result<Device> {
    parse_device(&std::env::var("PLAYGROUND_DEVICE").unwrap_or_default())
}

/// [`device`] for an explicit `spec` (`""` and `"cpu"` are the CPU).
pub fn parse_device(spec: &str) -> Result<Device> {
    let spec = spec.trim().to_ascii_lowercase();
    let (kind, ordinal) = match spec.split_once(':') {
        Some((k, n)) => (k.to_string(), n.parse::<usize>().map_err(|_| error(format!("PLAYGROUND_DEVICE={spec}: the part after ':' must be a GPU number, as in cuda:0")))?),
        None => (spec.clone(), 0),
    };
    let built = |feature: &str, on: bool| -> Result<()> {
        if on {
            return Ok(());
        }
        Err(error(format!(
            "PLAYGROUND_DEVICE={spec} asks for a GPU, but support was built without its `{feature}` feature: \
             use `:dep support = {{ path = \"../support\", features = [\"{feature}\"] }}` in the notebook's setup cell \
             (cargo: --features {feature}), or unset PLAYGROUND_DEVICE to run on the CPU"
        )))
    };
    match kind.as_str() {
        "" | "cpu" => Ok(Device::Cpu),
        "cuda" => {
            built("cuda", cfg!(feature = "cuda"))?;
            Device::new_cuda(ordinal)
        }
        "metal" => {
            built("metal", cfg!(feature = "metal"))?;
            Device::new_metal(ordinal)
        }
        other => Err(error(format!(
            "PLAYGROUND_DEVICE={other} is not a device: use cpu, cuda, cuda:N or metal"
        ))),
    }
}

/// Tunes glibc's allocator for tensor workloads; called by the entry points (model builders,
/// data loaders, `train_model`), so notebooks never need to call it. Idempotent.
///
/// Every candle op allocates its output; buffers above glibc's mmap threshold (128 KiB to 32 MiB,
/// adaptive) are `mmap`ed and unmapped again on free, so a training step pays page faults and
/// TLB shoot-downs for each activation and gradient. Measured on the 2-core reference machine:
/// the MNIST MLP step (batch 64) takes 21 ms with the defaults and 8.8 ms with these settings
/// (system time 6.8 s -> 0.2 s over 300 steps). Buffers up to 32 MiB now come from the heap and
/// are reused; the heap is trimmed only past 1 GiB of free space at its top.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| unsafe {
            // SAFETY: mallopt only changes allocator parameters; it is safe to call at any time.
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
            libc::mallopt(libc::M_TOP_PAD, 64 << 20);
        });
    }
}

/// `$env` when it is set and not empty, else the folder `name` at the top of the repository: the
/// rule of the data root, the weights, the feature cache and the saved training runs.
pub(crate) fn repo_folder(env: &str, name: &str) -> std::path::PathBuf {
    match std::env::var_os(env) {
        Some(p) if !p.is_empty() => std::path::PathBuf::from(p),
        // The repository is the parent of this crate's folder (written without `..`, so that
        // messages show a plain path).
        _ => std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or(std::path::Path::new(".."))
            .join(name),
    }
}

/// Builds the error that every `support` function returns for bad input: a plain message that
/// says what happened and what to do.
pub(crate) fn error(msg: impl Into<String>) -> Error {
    Error::Msg(msg.into())
}

/// `true` when the environment variable `PLAYGROUND_QUICK` is set to anything but `0` or empty.
///
/// Quick mode is for CI and for a first look: loaders keep a small slice of each split and
/// [`epochs`] caps every run at 2 epochs, so a notebook executes in about a minute.
pub fn quick_mode() -> bool {
    std::env::var("PLAYGROUND_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The number of epochs to run: `full` normally, at most 2 in [`quick_mode`].
pub fn epochs(full: usize) -> usize {
    if quick_mode() {
        full.min(2)
    } else {
        full
    }
}
