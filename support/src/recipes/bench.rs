//! The timing half of the benchmark (`src/bin/bench.rs` adds the PyTorch peer and the table):
//! the reference models of `shared/bench/torch_peer.py` and the peer's protocol. In the library
//! so that a notebook cell can time exactly what the binary times (the
//! notebook-vs-binary gap, `scripts/notebook_gap.py`).
//!
//! Protocol (the peer's): training: Adam(lr 1e-3), cross-entropy, random inputs in [0, 1) and
//! random labels, 2 warm-up steps, then the mean of 20 steps (batch <= 64) or 5 steps.
//! Inference: the torchvision architectures, batch 32, random weights, one warm-up pass then the
//! mean of 2.

use std::time::Instant;

use crate::models::{CifarModel, TorchvisionModel, TorchvisionNet};
use crate::nn::{Model, Sequential};
use crate::optim::{Adam, Optimizer};
use crate::rng::Rng;
use crate::train::Loss;
use crate::{error, Device, Result, Tensor};

/// One training-step reference model.
pub struct Case {
    /// Row name, as the PyTorch peer names it.
    pub name: &'static str,
    /// Batch size.
    pub batch: usize,
    /// Input shape of one sample `[C, H, W]`.
    pub shape: [usize; 3],
    /// Builds the model (seed 0).
    pub build: fn() -> Result<Box<dyn Model>>,
}

fn mnist_mlp() -> Result<Box<dyn Model>> {
    Ok(Box::new(
        Sequential::new("MLP").flatten().linear(784, 1024).relu().linear(1024, 10).build(0)?,
    ))
}

fn mnist_simplecnn() -> Result<Box<dyn Model>> {
    Ok(Box::new(
        Sequential::new("SimpleCNN")
            .conv2d(1, 8, 3, 1, 1)
            .relu()
            .conv2d(8, 16, 3, 1, 1)
            .relu()
            .conv2d(16, 32, 3, 2, 1)
            .relu()
            .conv2d(32, 64, 3, 2, 1)
            .relu()
            .conv2d(64, 128, 7, 1, 0)
            .relu()
            .flatten()
            .linear(128, 10)
            .build(0)?,
    ))
}

fn mnist_lenet5() -> Result<Box<dyn Model>> {
    Ok(Box::new(
        Sequential::new("LeNet5")
            .conv2d(1, 6, 5, 1, 2)
            .relu()
            .max_pool2d(2, 2, 0)
            .conv2d(6, 16, 5, 1, 0)
            .relu()
            .max_pool2d(2, 2, 0)
            .flatten()
            .linear(400, 120)
            .linear(120, 84)
            .linear(84, 10)
            .build(0)?,
    ))
}

fn cifar(model: CifarModel) -> Result<Box<dyn Model>> {
    Ok(Box::new(model.build(0)?))
}

/// The training-step reference models of `torch_peer.py`.
pub const CASES: &[Case] = &[
    Case { name: "mnist_mlp", batch: 64, shape: [1, 28, 28], build: mnist_mlp },
    Case { name: "mnist_simplecnn", batch: 512, shape: [1, 28, 28], build: mnist_simplecnn },
    Case { name: "mnist_lenet5", batch: 512, shape: [1, 28, 28], build: mnist_lenet5 },
    Case { name: "cifar_fcn", batch: 256, shape: [3, 32, 32], build: || cifar(CifarModel::Fcn) },
    Case {
        name: "cifar_lenet5",
        batch: 256,
        shape: [3, 32, 32],
        build: || cifar(CifarModel::LeNet5),
    },
    Case { name: "cifar_vgg1", batch: 256, shape: [3, 32, 32], build: || cifar(CifarModel::Vgg1) },
    Case { name: "cifar_vgg3", batch: 256, shape: [3, 32, 32], build: || cifar(CifarModel::Vgg3) },
    Case {
        name: "cifar_resnet",
        batch: 256,
        shape: [3, 32, 32],
        build: || cifar(CifarModel::ResNet),
    },
    Case {
        name: "cifar_inception",
        batch: 256,
        shape: [3, 32, 32],
        build: || cifar(CifarModel::Inception),
    },
];

/// GFLOP of one step (training: forward + backward at the case's batch; inference: one forward
/// at batch 32), counted by PyTorch's `FlopCounterMode` on the peer's models
/// (`support/bench/count_flops.py`, torch 2.15); the same count divides both sides' times.
pub const GFLOP: &[(&str, f64)] = &[
    ("mnist_mlp", 0.2095),
    ("mnist_simplecnn", 9.6763),
    ("mnist_lenet5", 1.1591),
    ("cifar_fcn", 12.6444),
    ("cifar_lenet5", 1.1256),
    ("cifar_vgg1", 7.3060),
    ("cifar_vgg3", 15.7617),
    ("cifar_resnet", 62.4626),
    ("cifar_inception", 34.0785),
    ("alexnet", 45.7081),
    ("vgg16", 990.0969),
    ("inception_v3", 365.6458),
    ("resnet18", 116.1007),
    ("resnet101", 499.2899),
];

/// `GFLOP/s` of a step of `name` taking `ms`, as text ("-" when unknown).
pub fn gflops(name: &str, ms: Option<f64>) -> String {
    match (GFLOP.iter().find(|g| g.0 == name), ms) {
        (Some(g), Some(ms)) => format!("{:.1}", g.1 / (ms / 1e3)),
        _ => "-".into(),
    }
}

/// The inference reference models of `torch_peer.py` (batch 32, random weights and inputs).
pub const INFER: &[(&str, TorchvisionModel, usize)] = &[
    ("alexnet", TorchvisionModel::AlexNet, 224),
    ("vgg16", TorchvisionModel::Vgg16, 224),
    ("inception_v3", TorchvisionModel::InceptionV3, 299),
    ("resnet18", TorchvisionModel::ResNet18, 224),
    ("resnet101", TorchvisionModel::ResNet101, 224),
];

/// Same protocol as the peer: one warm-up forward, then the mean of 2 (batch 32, evaluation mode).
fn infer_ms(arch: TorchvisionModel, size: usize) -> Result<f64> {
    let model = TorchvisionNet::new(arch, &Device::Cpu)?;
    let x = Tensor::from_vec(
        Rng::new(1).uniform_vec(32 * 3 * size * size, 0.0, 1.0),
        (32, 3, size, size),
        &Device::Cpu,
    )?;
    let run = || model.forward(&x);
    run()?;
    let t = Instant::now();
    for _ in 0..2 {
        run()?;
    }
    Ok(t.elapsed().as_secs_f64() * 1e3 / 2.0)
}

fn train_ms(case: &Case) -> Result<f64> {
    let model = (case.build)()?;
    let mut opt = Adam::new(model.params().vars(), 1e-3)?;
    let mut rng = Rng::new(0);
    let [c, h, w] = case.shape;
    let n = case.batch * c * h * w;
    let x = Tensor::from_vec(rng.uniform_vec(n, 0.0, 1.0), (case.batch, c, h, w), &Device::Cpu)?;
    let y = Tensor::from_vec(
        (0..case.batch).map(|_| rng.below(10) as u32).collect::<Vec<_>>(),
        case.batch,
        &Device::Cpu,
    )?;
    let mut step = || -> Result<()> {
        let loss = Loss::CrossEntropy.compute(&model.forward_t(&x, true)?, &y)?;
        let grads = loss.backward()?;
        opt.step(&grads)
    };
    for _ in 0..2 {
        step()?;
    }
    let steps = if case.batch <= 64 { 20 } else { 5 };
    let t = Instant::now();
    for _ in 0..steps {
        step()?;
    }
    Ok(t.elapsed().as_secs_f64() * 1e3 / steps as f64)
}

/// Milliseconds per training step of the reference model `name` (`cifar_vgg1`, ...) or per
/// batch-32 inference of an ImageNet one (`resnet18`, ...), by the protocol above.
pub fn time(name: &str) -> Result<f64> {
    if let Some(case) = CASES.iter().find(|c| c.name == name) {
        return train_ms(case);
    }
    if let Some(&(_, arch, size)) = INFER.iter().find(|i| i.0 == name) {
        return infer_ms(arch, size);
    }
    let known: Vec<&str> = CASES.iter().map(|c| c.name).chain(INFER.iter().map(|i| i.0)).collect();
    Err(error(format!("no benchmark model {name}: use one of {}", known.join(", "))))
}
