//! Trains CIFAR-10 models of the notebook in the background and saves each finished run where
//! `recipes::cifar::train_or_load` (used by `notebooks/CIFAR10_classification.ipynb`) picks it up:
//!
//!     nohup cargo run --release -p support --bin cifar_train -- ResNet Inception2 &
//!
//! Same data split, batch size (256), seed, optimiser and learning rate as the notebook;
//! `CIFAR_EPOCHS` sets the epochs (default 25, the original's). `Inception_BN` trains with the
//! notebook's modern recipe, and so does `ResNet_BN` (`recipes::cifar::train_or_load` picks the
//! recipe by the model).

use std::time::Instant;
use support::models::CifarModel;
use support::recipes::cifar::train_or_load;
use support::train::{print_overall_metrics, Loss};
use support::{Device, Tensor};

/// The shared host's speed at this moment: GFLOP/s of a 512 x 512 matmul (median of 21), printed
/// before and after each model, so that a reader of the log can tell a slow window of the host
/// from a slow model.
fn host_speed() -> support::Result<f64> {
    let a = Tensor::rand(-1f32, 1., (512, 512), &Device::Cpu)?;
    let mut times = Vec::with_capacity(21);
    for _ in 0..21 {
        let t = Instant::now();
        a.matmul(&a)?.sum_all()?.to_scalar::<f32>()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(2.0 * 512f64.powi(3) / times[10] / 1e9)
}

fn main() -> support::Result<()> {
    let names: Vec<String> = std::env::args().skip(1).collect();
    let all: Vec<&str> =
        CifarModel::ALL.iter().chain(&CifarModel::MODERN).map(|m| m.name()).collect();
    if names.is_empty() {
        return Err(support::Error::Msg(format!("name the models to train: {}", all.join(", "))));
    }
    let models =
        names.iter().map(|n| n.parse::<CifarModel>()).collect::<support::Result<Vec<_>>>()?;
    let epochs: usize =
        std::env::var("CIFAR_EPOCHS").ok().and_then(|v| v.parse().ok()).unwrap_or(25);
    let (train, val, test) = support::data::cifar10_loaders(256, 42)?;
    for model in models {
        println!("=== {model}: {epochs} epochs ===");
        println!("host speed before: {:.1} GFLOP/s (512 x 512 matmul)", host_speed()?);
        let net = model.build(0)?;
        train_or_load(&net, &train, &val, epochs)?;
        println!("host speed after: {:.1} GFLOP/s", host_speed()?);
        print_overall_metrics(&net, [&train, &val, &test], Loss::CrossEntropy)?;
    }
    Ok(())
}
