//! Training-step and inference benchmark: candle (through `support`) against the PyTorch CPU
//! peer, measured in the same run on the same machine.
//!
//!     cargo run --release -p support --bin bench            # all models this build knows
//!     TORCH_PYTHON=/path/to/python cargo run --release -p support --bin bench
//!
//! The peer is `shared/bench/torch_peer.py` (override with `TORCH_PEER`); it needs `torch`. When
//! the interpreter cannot import torch, the candle column is printed alone with a note.
//! Protocol (same as the peer): Adam(lr 1e-3), cross-entropy, random inputs in [0, 1) and random
//! labels, 2 warm-up steps, then the mean of 20 steps (batch <= 64) or 5 steps. Inference: the
//! torchvision architectures, batch 32, random weights, one warm-up pass then the mean of 2.
//! `bench NAME...` runs only those rows (e.g. `bench cifar_resnet resnet18`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;
use support::nn::{Model, Sequential};
use support::optim::{Adam, Optimizer};
use support::rng::Rng;
use support::train::Loss;
use support::{Device, Result, Tensor};

struct Case {
    name: &'static str,
    batch: usize,
    shape: [usize; 3],
    build: fn() -> Result<Box<dyn Model>>,
}

fn mnist_mlp() -> Result<Box<dyn Model>> {
    Ok(Box::new(Sequential::new("MLP").flatten().linear(784, 1024).relu().linear(1024, 10).build(0)?))
}

fn mnist_simplecnn() -> Result<Box<dyn Model>> {
    Ok(Box::new(
        Sequential::new("SimpleCNN")
            .conv2d(1, 8, 3, 1, 1).relu().conv2d(8, 16, 3, 1, 1).relu().conv2d(16, 32, 3, 2, 1).relu()
            .conv2d(32, 64, 3, 2, 1).relu().conv2d(64, 128, 7, 1, 0).relu().flatten().linear(128, 10)
            .build(0)?,
    ))
}

fn mnist_lenet5() -> Result<Box<dyn Model>> {
    Ok(Box::new(
        Sequential::new("LeNet5")
            .conv2d(1, 6, 5, 1, 2).relu().max_pool2d(2, 2, 0).conv2d(6, 16, 5, 1, 0).relu().max_pool2d(2, 2, 0)
            .flatten().linear(400, 120).linear(120, 84).linear(84, 10)
            .build(0)?,
    ))
}

fn cifar(name: &str) -> Result<Box<dyn Model>> {
    Ok(Box::new(support::cifar::build(name, 0)?))
}

/// The training-step reference models of `torch_peer.py`.
const CASES: &[Case] = &[
    Case { name: "mnist_mlp", batch: 64, shape: [1, 28, 28], build: mnist_mlp },
    Case { name: "mnist_simplecnn", batch: 512, shape: [1, 28, 28], build: mnist_simplecnn },
    Case { name: "mnist_lenet5", batch: 512, shape: [1, 28, 28], build: mnist_lenet5 },
    Case { name: "cifar_fcn", batch: 256, shape: [3, 32, 32], build: || cifar("FCN") },
    Case { name: "cifar_lenet5", batch: 256, shape: [3, 32, 32], build: || cifar("LeNet5") },
    Case { name: "cifar_vgg1", batch: 256, shape: [3, 32, 32], build: || cifar("VGG1") },
    Case { name: "cifar_vgg3", batch: 256, shape: [3, 32, 32], build: || cifar("VGG3") },
    Case { name: "cifar_resnet", batch: 256, shape: [3, 32, 32], build: || cifar("ResNet") },
    Case { name: "cifar_inception", batch: 256, shape: [3, 32, 32], build: || cifar("Inception") },
];

/// GFLOP of one step (training: forward + backward at the case's batch; inference: one forward
/// at batch 32), counted by PyTorch's `FlopCounterMode` on the peer's models
/// (`support/bench/count_flops.py`, torch 2.15); the same count divides both sides' times.
const GFLOP: &[(&str, f64)] = &[
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
fn gflops(name: &str, ms: Option<f64>) -> String {
    match (GFLOP.iter().find(|g| g.0 == name), ms) {
        (Some(g), Some(ms)) => format!("{:.1}", g.1 / (ms / 1e3)),
        _ => "-".into(),
    }
}

/// The inference reference models of `torch_peer.py` (batch 32, random weights and inputs).
const INFER: &[(&str, &str, usize)] = &[("alexnet", "AlexNet", 224), ("vgg16", "VGG16", 224), ("inception_v3", "Inception v3", 299), ("resnet18", "ResNet18", 224), ("resnet101", "ResNet101", 224)];

/// Same protocol as the peer: one warm-up forward, then the mean of 2 (batch 32, evaluation mode).
fn time_infer(arch: &str, size: usize) -> Result<f64> {
    let model = support::torchvision::TorchvisionNet::new(arch, &Device::Cpu)?;
    let x = Tensor::from_vec(Rng::new(1).uniform_vec(32 * 3 * size * size, 0.0, 1.0), (32, 3, size, size), &Device::Cpu)?;
    let run = || model.forward(&x);
    run()?;
    let t = Instant::now();
    for _ in 0..2 {
        run()?;
    }
    Ok(t.elapsed().as_secs_f64() * 1e3 / 2.0)
}

fn time_train(case: &Case) -> Result<f64> {
    let model = (case.build)()?;
    let mut opt = Adam::new(model.params().vars(), 1e-3)?;
    let mut rng = Rng::new(0);
    let [c, h, w] = case.shape;
    let n = case.batch * c * h * w;
    let x = Tensor::from_vec(rng.uniform_vec(n, 0.0, 1.0), (case.batch, c, h, w), &Device::Cpu)?;
    let y = Tensor::from_vec((0..case.batch).map(|_| rng.below(10) as u32).collect::<Vec<_>>(), case.batch, &Device::Cpu)?;
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

/// Runs the PyTorch peer and returns (header line, model -> ms per step).
fn torch_peer() -> std::result::Result<(String, HashMap<String, f64>), String> {
    let python = std::env::var("TORCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = std::env::var_os("TORCH_PEER").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/torch_peer.py")
    });
    if !script.exists() {
        return Err(format!("peer script {} not found (set TORCH_PEER)", script.display()));
    }
    let probe = Command::new(&python).args(["-c", "import torch"]).output().map_err(|e| format!("cannot run {python}: {e}"))?;
    if !probe.status.success() {
        return Err(format!("{python} cannot import torch (pip install torch, or set TORCH_PYTHON)"));
    }
    let out = Command::new(&python).arg(&script).arg(std::env::var("BENCH_PEER_TASK").unwrap_or_else(|_| "all".into())).output().map_err(|e| format!("peer failed to start: {e}"))?;
    if !out.status.success() {
        return Err(format!("peer failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut header = String::new();
    let mut times = HashMap::new();
    for line in text.lines() {
        let field = |k: &str| line.split(&format!("\"{k}\": ")).nth(1).map(|r| r.split([',', '}']).next().unwrap_or("").trim_matches('"').to_string());
        match (field("model"), field("ms_per_step")) {
            (Some(m), Some(ms)) => {
                times.insert(m, ms.parse::<f64>().unwrap_or(f64::NAN));
            }
            _ => header = line.to_string(),
        }
    }
    Ok((header, times))
}

fn main() -> Result<()> {
    support::tune_allocator();
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("candle {} on CPU ({threads} threads)", "0.11.1");
    // `bench NAME...` times only those models (the peer still runs all of its own).
    let only: Vec<String> = std::env::args().skip(1).collect();
    let mut rows = Vec::new();
    for case in CASES.iter().filter(|c| only.is_empty() || only.iter().any(|o| o == c.name)) {
        let ms = time_train(case)?;
        println!("candle {:<18} batch {:>4}: {ms:8.2} ms/step", case.name, case.batch);
        rows.push((case, ms));
    }
    let mut infer_rows = Vec::new();
    for &(key, arch, size) in INFER.iter().filter(|c| only.is_empty() || only.iter().any(|o| o == c.0)) {
        let ms = time_infer(arch, size)?;
        println!("candle {key:<18} batch   32: {ms:8.2} ms/batch (inference)");
        infer_rows.push((key, ms));
    }
    println!("running the PyTorch peer ...");
    let peer = torch_peer();
    if let Ok((header, _)) = &peer {
        println!("peer: {header}");
    }
    println!("\n| model | batch | candle ms | torch ms | ratio (candle/torch) | candle GFLOP/s | torch GFLOP/s |\n| --- | --- | --- | --- | --- | --- | --- |");
    let rows = rows.into_iter().map(|(case, ms)| (case.name.to_string(), case.batch, ms)).chain(infer_rows.into_iter().map(|(key, ms)| (key.to_string(), 32, ms)));
    for (name, batch, ms) in rows {
        let torch = peer.as_ref().ok().and_then(|(_, t)| t.get(&name).copied());
        let label = if INFER.iter().any(|i| i.0 == name) { format!("{name} (inference)") } else { name.clone() };
        let (t, ratio) = torch.map_or(("-".into(), "-".into()), |t| (format!("{t:.2}"), format!("{:.2}", ms / t)));
        println!("| {label} | {batch} | {ms:.2} | {t} | {ratio} | {} | {} |", gflops(&name, Some(ms)), gflops(&name, torch));
    }
    if let Err(e) = peer {
        println!("\nPyTorch peer skipped: {e}");
    }
    Ok(())
}
