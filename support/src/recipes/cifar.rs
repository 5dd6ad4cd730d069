//! How the CIFAR-10 notebook trains its networks, and where it keeps finished runs.
//!
//! [`train_or_load`] trains a [`CifarNet`] with its recipe ([`Recipe::Original`]: Adam at the
//! original's learning rate, cross-entropy; [`Recipe::Modern`]: crop + flip, one-cycle Adam,
//! label smoothing) and saves the run in [`crate::env::runs_dir`]`/cifar10`, or loads it from
//! there when an identical run was saved before (by the notebook, or by the `cifar_train`
//! binary in the background): a five-hour notebook can be assembled from runs made separately.

use crate::data::{CropFlip, DataLoader};
use crate::models::cifar::{CifarNet, Recipe};
use crate::nn::Model;
use crate::optim::{Adam, OneCycle};
use crate::train::{fit, FitOptions, History, Loss};
use crate::{error, Result};
use std::path::Path;

/// Trains `net` as the notebook does for `epochs` epochs, validating on `val` after each and
/// printing the original's log, or loads a finished run of the same network, recipe and
/// number of epochs on a training set of the same size, says so and prints its saved log.
///
/// - [`Recipe::Original`]: Adam at `net.kind().learning_rate()`, cross-entropy, the batches of
///   `train` as they are.
/// - [`Recipe::Modern`] (the notebook's extra section, same 25-epoch budget): every training
///   batch augmented (random crop of the image padded by 4, random horizontal flip: `train` is
///   the plain loader, the augmentation is added here), Adam with a one-cycle schedule peaking
///   at `net.kind().learning_rate()` (learning rate and beta1 cycled per step, as
///   `OneCycleLR`), label smoothing 0.1; BatchNorm is in the model. The validation loss printed
///   is the smoothed one (the accuracy is unaffected).
///
/// While it trains it keeps a checkpoint after each epoch next to the finished runs: a run
/// stopped by a killed process or a restarted kernel continues from its last finished epoch
/// when started again. What it trains, it saves.
pub fn train_or_load(
    net: &CifarNet,
    train: &DataLoader,
    val: &DataLoader,
    epochs: usize,
) -> Result<History> {
    let kind = net.kind();
    let lr = kind.learning_rate();
    let recipe = match kind.recipe() {
        Recipe::Original => "",
        Recipe::Modern => "modern-",
    };
    let stem = format!("{kind}-{recipe}{epochs}ep-{}", train.num_samples());
    let title = match kind.recipe() {
        Recipe::Original => kind.to_string(),
        Recipe::Modern => format!("{kind} (modern recipe)"),
    };
    let history = run_or_load(&stem, net, train.num_samples(), epochs, |checkpoint| {
        let mut optimizer = Adam::new(net.params().vars(), lr)?;
        let opts = FitOptions::new(epochs).validate(val).checkpoint(checkpoint);
        match kind.recipe() {
            Recipe::Original => fit(net, train, &mut optimizer, Loss::CrossEntropy, opts),
            Recipe::Modern => {
                let crop_flip = CropFlip { pad: 4, fill: -1.0, flip: true };
                let augmented = train.clone().with_augmentation(crop_flip);
                let schedule = OneCycle::new(lr, epochs * augmented.num_batches());
                let loss = Loss::CrossEntropyLabelSmoothing(0.1);
                fit(net, &augmented, &mut optimizer, loss, opts.schedule(&schedule))
            }
        }
    })?;
    Ok(history.titled(&title))
}

/// Loads the run saved as `stem` in the runs folder, or runs `train` (with the path of its
/// checkpoint) and saves the weights and history there; the finished run replaces the
/// checkpoint.
fn run_or_load(
    stem: &str,
    net: &CifarNet,
    images: usize,
    epochs: usize,
    train: impl FnOnce(&Path) -> Result<History>,
) -> Result<History> {
    let dir = crate::env::runs_dir().join("cifar10");
    let (weights, hist) =
        (dir.join(format!("{stem}.safetensors")), dir.join(format!("{stem}.history.safetensors")));
    let checkpoint = dir.join(format!("{stem}.checkpoint.safetensors"));
    if weights.exists() && hist.exists() {
        net.params().load(&weights)?;
        let history = History::load(&hist)?;
        println!(
            "(loaded the finished {epochs}-epoch run of {} on {images} images, {stem}.safetensors \
             in the runs folder `env::runs_dir()`; its training log:)",
            net.kind()
        );
        history.print_log();
        return Ok(history);
    }
    std::fs::create_dir_all(&dir).map_err(|e| {
        error(format!(
            "cannot create the runs folder {}: {e}; set {} to a writable folder",
            dir.display(),
            crate::env::RUNS_ENV
        ))
    })?;
    let history = train(&checkpoint)?;
    net.params().save(&weights)?;
    history.save(&hist)?;
    std::fs::remove_file(&checkpoint).ok(); // the finished run above supersedes it
    Ok(history)
}
