//! What one notebook needs and no other, built on the layers below:
//!
//! - [`cifar`]: how the CIFAR-10 notebook trains its networks and keeps finished runs.
//! - [`transfer`]: frozen backbones' cached features, new heads, fine-tuning, size sweeps.
//! - [`denoise`]: noisy MNIST, the SNR, hand-crafted and learned filters.
//! - [`imagenet`]: top-5 of one photo, timed evaluation over a validation folder.
//! - [`interpret`]: predictions, hidden layers and activation maximisation of a classifier.
//! - [`bench`](mod@bench): the reference models and protocol of the speed benchmark.

pub mod bench;
pub mod cifar;
pub mod denoise;
pub mod imagenet;
pub mod interpret;
pub mod transfer;
