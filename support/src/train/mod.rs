//! Training and evaluation: the loop of the original notebooks (`utils/ML.py`'s `train_model`,
//! `evaluate_model`, `print_overall_metrics`) with their exact print formats:
//!
//! ```text
//!  epoch:  1, training loss: 0.501, validation loss 0.373, validation accuracy 0.897
//!
//! Average time per epoch: 1.314s
//! ```
//!
//! and `print_overall_metrics`' three aligned lines with 5 decimals. [`fit`] is the one training
//! loop: every notebook and recipe calls it, with [`FitOptions`] for what differs (validation,
//! verbosity, a one-cycle schedule, per-epoch checkpoints). The per-epoch time includes the
//! validation pass, as in the original.

mod checkpoint;
mod eval;
mod history;
mod loss;

pub use eval::{
    confusion_matrix, evaluate_model, predict, print_overall_metrics, ConfusionMatrix, Metrics,
};
pub use history::History;
pub use loss::Loss;

use crate::data::DataLoader;
use crate::nn::Model;
use crate::optim::{OneCycle, Optimizer};
use crate::{error, Result};
use candle_core::DType;
use checkpoint::Checkpoint;
use std::path::Path;
use std::time::Instant;

/// What [`fit`] does besides training for `epochs` epochs. `FitOptions::new(n)` is the
/// original's `train_model(..., n_epochs, verbose=True)` without validation; add it with
/// [`FitOptions::validate`].
#[derive(Clone, Copy, Debug)]
pub struct FitOptions<'a> {
    /// Epochs to train (a resumed run counts the ones its checkpoint holds).
    pub epochs: usize,
    /// Evaluated after every epoch (the history's validation columns); `None`: no validation
    /// pass (for runs measured only at the end, e.g. the many short runs of a sweep)
    /// and no checkpoint.
    pub val: Option<&'a DataLoader>,
    /// Print one line per validated epoch and the average time per epoch (default on).
    pub verbose: bool,
    /// Learning rate and momentum set before every step (`torch.optim.lr_scheduler.OneCycleLR`
    /// stepped after each batch); it should span `epochs * train.num_batches()` steps.
    pub schedule: Option<&'a OneCycle>,
    /// A `.safetensors` file written after every validated epoch (the weights and buffers, the
    /// optimiser's state, the history so far, the data loader's epoch and the dropout
    /// generator, replaced atomically). When it exists at the start, the run resumes from it
    /// and ends with the numbers of the run that was never interrupted. Costs one write of about
    /// three times the model's size per epoch (Adam). Delete it to start over.
    pub checkpoint: Option<&'a Path>,
}

impl<'a> FitOptions<'a> {
    /// `epochs` epochs, verbose, no validation, schedule or checkpoint.
    pub fn new(epochs: usize) -> Self {
        FitOptions { epochs, val: None, verbose: true, schedule: None, checkpoint: None }
    }

    /// Evaluates on `val` after every epoch.
    pub fn validate(self, val: &'a DataLoader) -> Self {
        FitOptions { val: Some(val), ..self }
    }

    /// Sets [`FitOptions::verbose`].
    pub fn verbose(self, verbose: bool) -> Self {
        FitOptions { verbose, ..self }
    }

    /// Follows `schedule` step by step.
    pub fn schedule(self, schedule: &'a OneCycle) -> Self {
        FitOptions { schedule: Some(schedule), ..self }
    }

    /// Keeps a per-epoch checkpoint in `path` and resumes from it.
    pub fn checkpoint(self, path: &'a Path) -> Self {
        FitOptions { checkpoint: Some(path), ..self }
    }
}

fn check_finite(loss: f64, epoch: usize, batch: usize, lr: f64) -> Result<()> {
    if loss.is_finite() {
        return Ok(());
    }
    Err(error(format!(
        "the training loss became {loss} at epoch {epoch}, batch {batch}: training diverged. \
         Lower the learning rate (now {lr}) and rebuild the model: its weights are no longer \
         finite."
    )))
}

/// Trains `model` on `train` with `optimizer` and `loss`, as the original `train_model`: one
/// epoch is a pass over the shuffled training set (forward, loss, backward, step per batch),
/// then the validation pass; the epoch's training loss is the sample-weighted mean over its
/// batches. Returns the [`History`]. A checkpoint with more epochs than asked for, or from
/// another model or optimiser, is an error that says so.
pub fn fit(
    model: &dyn Model,
    train: &DataLoader,
    optimizer: &mut dyn Optimizer,
    loss: Loss,
    opts: FitOptions,
) -> Result<History> {
    let FitOptions { epochs, val, verbose, schedule, checkpoint } = opts;
    if train.num_samples() == 0 {
        return Err(error(
            "the training set is empty: there is nothing to train on (check the data split)",
        ));
    }
    let checkpoint = checkpoint.map(|path| Checkpoint { path });
    crate::env::fence_tensor_ids(&model.params().vars())?;
    let device = model.device();
    let mut history = History::default();
    if let Some(c) = checkpoint.filter(|c| c.path.exists()) {
        history = c.load(model, optimizer, train, epochs)?;
        if verbose {
            println!(
                "(resumed from the checkpoint {} after epoch {} of {epochs})",
                crate::env::shown(c.path),
                history.train_loss.len()
            );
            history.print_epochs();
        }
    }
    let first = history.train_loss.len() + 1;
    let mut step = (first - 1) * train.num_batches();
    // With a checkpoint, an error during an epoch says what the checkpoint still holds.
    let kept = |e: crate::Error, epoch: usize| match checkpoint {
        Some(c) if epoch > 1 => error(format!(
            "{e} (the checkpoint {} keeps the run up to epoch {})",
            c.path.display(),
            epoch - 1
        )),
        Some(c) => error(format!("{e} (no epoch was checkpointed in {})", c.path.display())),
        None => e,
    };
    for epoch in first..=epochs {
        let t0 = Instant::now();
        let (mut sum, mut count) = (0.0f64, 0usize);
        for (b, batch) in train.iter().enumerate() {
            let (x, y) = batch?;
            let (x, y) = (x.to_device(&device)?, y.to_device(&device)?);
            if let Some(s) = schedule {
                s.apply(optimizer, step.min(s.total_steps.saturating_sub(1)));
            }
            step += 1;
            let out = model.forward_t(&x, true)?;
            let batch_loss = loss.compute(&out, &y)?;
            let grads = batch_loss.backward()?;
            let l = batch_loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            check_finite(l, epoch, b + 1, optimizer.learning_rate()).map_err(|e| kept(e, epoch))?;
            optimizer.step(&grads)?;
            sum += l * x.dim(0)? as f64;
            count += x.dim(0)?;
        }
        let train_loss = sum / count.max(1) as f64;
        history.train_loss.push(train_loss);
        history.epoch_seconds.push(t0.elapsed().as_secs_f64());
        let Some(val) = val else { continue };
        let (val_loss, val_acc) = evaluate_model(model, val, loss)?;
        history.val_loss.push(val_loss);
        history.val_accuracy.push(val_acc);
        *history.epoch_seconds.last_mut().expect("pushed above") = t0.elapsed().as_secs_f64();
        if verbose {
            println!("{}", history.epoch_line(epoch - 1));
        }
        if let Some(c) = checkpoint {
            // A state that is no longer finite is never checkpointed: every later run would
            // resume it and fail again.
            if !val_loss.is_finite() || !params_finite(model)? {
                let e = error(format!(
                    "the model's weights stopped being finite in epoch {epoch} (validation loss \
                     {val_loss}): training diverged, and this epoch was not checkpointed. Lower \
                     the learning rate (now {}) and run again",
                    optimizer.learning_rate(),
                ));
                return Err(kept(e, epoch));
            }
            c.save(model, optimizer, &history, train)?;
        }
    }
    if verbose {
        println!();
        println!("Average time per epoch: {:.3}s", history.seconds_per_epoch());
    }
    Ok(history)
}

/// Whether every parameter and buffer of `model` is finite.
pub(crate) fn params_finite(model: &dyn Model) -> Result<bool> {
    for (_, t) in model.params().state_dict() {
        let v = t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        if !v.iter().all(|x| x.is_finite()) {
            return Ok(false);
        }
    }
    Ok(true)
}
