//! Trains CIFAR-10 models of the notebook in the background and saves each finished run where
//! `recipes::cifar::train_or_load` (used by `notebooks/CIFAR10_classification.ipynb`) picks it up:
//!
//!     nohup cargo run --release -p support --bin cifar_train -- ResNet Inception2 &
//!
//! Same data split, batch size (256), seed, optimiser and learning rate as the notebook;
//! `CIFAR_EPOCHS` sets the epochs (default 25, the original's). `Inception_BN` trains with the
//! notebook's modern recipe, and so does `ResNet_BN` (`recipes::cifar::train_or_load` picks the
//! recipe by the model).

use support::models::CifarModel;
use support::recipes::cifar::train_or_load;
use support::train::{print_overall_metrics, Loss};

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
        let net = model.build(0)?;
        train_or_load(&net, &train, &val, epochs)?;
        print_overall_metrics(&net, [&train, &val, &test], Loss::CrossEntropy)?;
    }
    Ok(())
}
