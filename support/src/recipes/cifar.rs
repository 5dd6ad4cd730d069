//! How the CIFAR-10 notebook trains its networks, and where it keeps finished runs.
//!
//! [`train_or_load`] trains a [`CifarNet`] with its recipe ([`Recipe::Original`]: Adam at the
//! original's learning rate, cross-entropy; [`Recipe::Modern`]: crop + flip, one-cycle Adam,
//! label smoothing) and saves the run in [`crate::env::runs_dir`]`/cifar10`, or loads it from
//! there when an identical run was saved before (by the notebook, or by the `cifar_train`
//! binary in the background): a five-hour notebook can be assembled from runs made separately.
//! [`train_or_load_as`] does the same for a network written in a notebook cell that claims to be
//! one of the library's: same parameter names and shapes, and a loaded run must reproduce its
//! logged validation accuracy with the cell's forward pass.

use crate::data::{CropFlip, DataLoader};
use crate::models::cifar::{CifarModel, CifarNet, Recipe};
use crate::nn::{Model, Params};
use crate::optim::{Adam, OneCycle};
use crate::train::{evaluate_model, fit, FitOptions, History, Loss};
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
    run(net.kind(), net, train, val, epochs)
}

/// [`train_or_load`] for a network written somewhere else (a notebook cell) that claims to be
/// `kind`: its parameters must carry the names and shapes of `kind.build(..)`'s (an error
/// names the first that differs), so the runs of one load into the other. When a finished run
/// is loaded, `net` is evaluated on `val` and must reach the validation accuracy the run logged
/// after its last epoch (within 0.002, a few images: the order of floating-point sums may
/// differ between versions of the kernels); a different forward pass is an error that says so.
/// The check costs one pass over `val`.
pub fn train_or_load_as(
    net: &dyn Model,
    kind: CifarModel,
    train: &DataLoader,
    val: &DataLoader,
    epochs: usize,
) -> Result<History> {
    same_parameters(net.params(), kind)?;
    run(kind, net, train, val, epochs)
}

/// Checks that `params` has the names and shapes of the library's `kind`, in the same order.
fn same_parameters(params: &Params, kind: CifarModel) -> Result<()> {
    let reference = kind.build(0)?;
    let shapes = |p: &Params| -> Vec<(String, Vec<usize>)> {
        p.named().iter().chain(p.buffers()).map(|(n, v)| (n.clone(), v.dims().to_vec())).collect()
    };
    let (ours, theirs) = (shapes(params), shapes(reference.params()));
    for (i, want) in theirs.iter().enumerate() {
        let got = ours.get(i);
        if got != Some(want) {
            return Err(error(format!(
                "this network is not {kind} as `support::models::cifar` builds it: its \
                 parameter {} is {}, {kind}'s is `{}` {:?}; give the layers the original's names \
                 and sizes, in the order the original creates them",
                i + 1,
                got.map_or("missing".to_string(), |(n, d)| format!("`{n}` {d:?}")),
                want.0,
                want.1
            )));
        }
    }
    if ours.len() > theirs.len() {
        return Err(error(format!(
            "this network has {} parameter tensors, {kind} has {}: `{}` is extra",
            ours.len(),
            theirs.len(),
            ours[theirs.len()].0
        )));
    }
    Ok(())
}

fn run(
    kind: CifarModel,
    net: &dyn Model,
    train: &DataLoader,
    val: &DataLoader,
    epochs: usize,
) -> Result<History> {
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
    let history =
        run_or_load(&stem, kind, net, (train.num_samples(), val), epochs, |checkpoint| {
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
    kind: CifarModel,
    net: &dyn Model,
    (images, val): (usize, &DataLoader),
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
            "(loaded the finished {epochs}-epoch run of {kind} on {images} images, \
             {stem}.safetensors in the runs folder `env::runs_dir()`; its training log:)"
        );
        history.print_log();
        check_loaded(net, val, &history, &weights)?;
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

/// A loaded run must compute what it computed when it was trained: `net`'s accuracy on `val`
/// against the log's last epoch.
fn check_loaded(
    net: &dyn Model,
    val: &DataLoader,
    history: &History,
    weights: &Path,
) -> Result<()> {
    let Some(&logged) = history.val_accuracy.last() else {
        return Err(error(format!("{} has an empty training log: delete it", weights.display())));
    };
    let (_, accuracy) = evaluate_model(net, val, Loss::CrossEntropy)?;
    if (accuracy - logged).abs() > CHECK_TOLERANCE {
        return Err(error(format!(
            "with the weights of {} this network reaches validation accuracy {accuracy:.4}, the \
             run logged {logged:.4}: its forward pass is not the one that was trained (or the \
             validation set differs); fix the network, or delete the run to train it again",
            weights.display()
        )));
    }
    println!("(checked: validation accuracy {accuracy:.4} with these weights, {logged:.4} logged)");
    Ok(())
}

/// How far a loaded run's validation accuracy may move from its log: 0.002, a few images.
const CHECK_TOLERANCE: f64 = 0.002;
