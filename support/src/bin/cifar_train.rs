//! Trains CIFAR-10 models of the notebook in the background and saves each finished run where
//! `cifar::train_or_load` (used by `notebooks/CIFAR10_classification.ipynb`) picks it up:
//!
//!     nohup cargo run --release -p support --bin cifar_train -- ResNet Inception2 &
//!
//! Same data split, batch size (256), seed, optimiser and learning rate as the notebook;
//! `CIFAR_EPOCHS` sets the epochs (default 25, the original's). `Inception_BN` trains with the
//! notebook's modern recipe (`cifar::train_modern_or_load`), and so does `ResNet_BN`.

fn main() -> support::Result<()> {
    let names: Vec<String> = std::env::args().skip(1).collect();
    if names.is_empty() {
        return Err(support::Error::Msg(format!(
            "name the models to train: {}",
            support::cifar::MODELS.join(", ")
        )));
    }
    let epochs: usize =
        std::env::var("CIFAR_EPOCHS").ok().and_then(|v| v.parse().ok()).unwrap_or(25);
    let (train, val, test) = support::data::cifar10_loaders(256, 42)?;
    for name in names {
        println!("=== {name}: {epochs} epochs ===");
        let model = support::cifar::build(&name, 0)?;
        if name.ends_with("_BN") {
            support::cifar::train_modern_or_load(&name, &model, &train, &val, epochs)?;
        // the modern-recipe section
        } else {
            support::cifar::train_or_load(&name, &model, &train, &val, epochs)?;
        }
        support::train::print_overall_metrics(
            &model,
            [&train, &val, &test],
            support::train::Loss::CrossEntropy,
        )?;
    }
    Ok(())
}
