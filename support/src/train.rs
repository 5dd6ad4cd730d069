//! The training loop and metrics of the original notebooks (`utils/ML.py`), with their exact
//! print formats:
//!
//! ```text
//!  epoch:  1, training loss: 0.501, validation loss 0.373, validation accuracy 0.897
//!
//! Average time per epoch: 1.314s
//! ```
//!
//! and `print_overall_metrics`' three aligned lines with 5 decimals. The per-epoch time includes
//! the validation pass, as in the original.

use crate::data::DataLoader;
use crate::nn::Model;
use crate::optim::{OneCycle, Optimizer};
use crate::plot::Figure;
use crate::{error, Result, Tensor};
use candle_core::DType;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

/// The loss functions of the notebooks, both with mean reduction as in PyTorch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Loss {
    /// `nn.CrossEntropyLoss()`: log-softmax + negative log-likelihood over class logits.
    CrossEntropy,
    /// `nn.CrossEntropyLoss(label_smoothing=eps)`: the target puts `1 - eps` on the true class and
    /// spreads `eps` evenly over all classes, i.e. `(1 - eps) * NLL + eps * mean_k(-log p_k)`.
    CrossEntropyLabelSmoothing(f64),
    /// `nn.MSELoss()`.
    Mse,
}

impl Loss {
    /// The mean loss of a batch as a 0-d tensor (differentiable).
    pub fn compute(&self, output: &Tensor, target: &Tensor) -> Result<Tensor> {
        match self {
            Loss::CrossEntropy | Loss::CrossEntropyLabelSmoothing(_) => {
                if output.rank() != 2 || target.dims() != [output.dim(0)?] {
                    return Err(error(format!(
                        "cross-entropy needs logits (batch, classes) and labels (batch,), got {:?} and {:?}",
                        output.dims(),
                        target.dims()
                    )));
                }
                match *self {
                    Loss::CrossEntropyLabelSmoothing(eps) if eps != 0.0 => {
                        if !(0.0..=1.0).contains(&eps) {
                            return Err(error(format!(
                                "label smoothing must be in [0, 1], got {eps}"
                            )));
                        }
                        let logp = candle_nn::ops::log_softmax(output, 1)?;
                        let nll = logp
                            .gather(&target.to_dtype(DType::U32)?.unsqueeze(1)?, 1)?
                            .mean_all()?
                            .neg()?;
                        let uniform = logp.mean_all()?.neg()?;
                        nll.affine(1.0 - eps, 0.0)? + uniform.affine(eps, 0.0)?
                    }
                    _ => candle_nn::loss::cross_entropy(output, target),
                }
            }
            Loss::Mse => {
                if output.dims() != target.dims() {
                    return Err(error(format!(
                        "MSE needs equal shapes, got {:?} and {:?}",
                        output.dims(),
                        target.dims()
                    )));
                }
                candle_nn::loss::mse(output, target)
            }
        }
    }
}

/// Per-epoch record of a training run; displays as its loss curves in a notebook.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub train_loss: Vec<f64>,
    pub val_loss: Vec<f64>,
    pub val_accuracy: Vec<f64>,
    /// Wall time of each epoch in seconds (training + validation pass).
    pub epoch_seconds: Vec<f64>,
}

impl History {
    /// Mean wall time per epoch in seconds (what the original prints as "Average time per epoch").
    pub fn seconds_per_epoch(&self) -> f64 {
        if self.epoch_seconds.is_empty() {
            0.0
        } else {
            self.epoch_seconds.iter().sum::<f64>() / self.epoch_seconds.len() as f64
        }
    }

    /// The loss curves: training and validation loss per epoch (index 0..N-1).
    pub fn plot(&self) -> Result<Figure> {
        crate::plot::loss_curves(&self.train_loss, &self.val_loss)
    }

    /// The per-epoch log lines `train_model` prints, and its closing "Average time per epoch".
    pub fn print_log(&self) {
        self.print_epochs();
        println!();
        println!("Average time per epoch: {:.3}s", self.seconds_per_epoch());
    }

    /// The per-epoch lines alone.
    fn print_epochs(&self) {
        for (i, ((t, v), a)) in
            self.train_loss.iter().zip(&self.val_loss).zip(&self.val_accuracy).enumerate()
        {
            println!(" epoch: {:>2}, training loss: {t:.3}, validation loss {v:.3}, validation accuracy {a:.3}", i + 1);
        }
    }

    /// Writes the history to a `.safetensors` file (four f64 vectors).
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let map: HashMap<String, Tensor> = self.tensors("")?.into_iter().collect();
        candle_core::safetensors::save(&map, path.as_ref())
    }

    /// Reads a history written by [`History::save`].
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let map = candle_core::safetensors::load(path, &candle_core::Device::Cpu)
            .map_err(|e| error(format!("{} is not a saved history: {e}", path.display())))?;
        History::from_tensors(&map, "", &path.display().to_string())
    }

    /// The four vectors as f64 tensors named `{prefix}train_loss` etc.
    fn tensors(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        let dev = candle_core::Device::Cpu;
        [
            ("train_loss", &self.train_loss),
            ("val_loss", &self.val_loss),
            ("val_accuracy", &self.val_accuracy),
            ("epoch_seconds", &self.epoch_seconds),
        ]
        .into_iter()
        .map(|(k, x)| Ok((format!("{prefix}{k}"), Tensor::new(x.as_slice(), &dev)?)))
        .collect()
    }

    fn from_tensors(map: &HashMap<String, Tensor>, prefix: &str, source: &str) -> Result<Self> {
        let get = |k: &str| -> Result<Vec<f64>> {
            map.get(&format!("{prefix}{k}"))
                .ok_or_else(|| {
                    error(format!("{source} has no `{prefix}{k}`: it is not a saved history"))
                })?
                .to_vec1::<f64>()
        };
        Ok(History {
            train_loss: get("train_loss")?,
            val_loss: get("val_loss")?,
            val_accuracy: get("val_accuracy")?,
            epoch_seconds: get("epoch_seconds")?,
        })
    }

    /// Shows the loss curves inline (evcxr calls this when a cell's value is a `History`).
    pub fn evcxr_display(&self) {
        match self.plot() {
            Ok(fig) => fig.evcxr_display(),
            Err(e) => println!("cannot plot the history: {e}"),
        }
    }
}

fn check_finite(loss: f64, epoch: usize, batch: usize, lr: f64) -> Result<()> {
    if loss.is_finite() {
        return Ok(());
    }
    Err(error(format!(
        "the training loss became {loss} at epoch {epoch}, batch {batch}: training diverged. \
         Lower the learning rate (now {lr}) and rebuild the model: its weights are no longer finite."
    )))
}

/// Trains `model` for `epochs` epochs, evaluating on `val` after each one, as the original
/// `train_model`: prints one line per epoch when `verbose`, then the average time per epoch.
/// The epoch's training loss is the sample-weighted mean over the epoch's batches.
pub fn train_model(
    model: &dyn Model,
    train: &DataLoader,
    val: &DataLoader,
    optimizer: &mut dyn Optimizer,
    loss_fn: Loss,
    epochs: usize,
    verbose: bool,
) -> Result<History> {
    train_loop(model, train, Some(val), optimizer, loss_fn, epochs, verbose, None, None)
}

/// [`train_model`] without the validation pass after each epoch (the history's validation
/// columns stay empty), for runs measured only at the end, e.g. the many short runs of a
/// training-set-size sweep, where validating after each of hundreds of epochs would cost more
/// than the training. Silent.
pub fn train_model_unvalidated(
    model: &dyn Model,
    train: &DataLoader,
    optimizer: &mut dyn Optimizer,
    loss_fn: Loss,
    epochs: usize,
) -> Result<History> {
    train_loop(model, train, None, optimizer, loss_fn, epochs, false, None, None)
}

/// [`train_model`] with the learning rate and momentum set before every step by a one-cycle
/// schedule (`torch.optim.lr_scheduler.OneCycleLR` stepped after each batch); the schedule
/// should span `epochs * train.num_batches()` steps.
#[allow(clippy::too_many_arguments)]
pub fn train_model_one_cycle(
    model: &dyn Model,
    train: &DataLoader,
    val: &DataLoader,
    optimizer: &mut dyn Optimizer,
    schedule: &OneCycle,
    loss_fn: Loss,
    epochs: usize,
    verbose: bool,
) -> Result<History> {
    train_loop(model, train, Some(val), optimizer, loss_fn, epochs, verbose, Some(schedule), None)
}

/// How a run can survive its process: after every epoch the loop writes `path` (a
/// `.safetensors` file: the weights and buffers, the optimiser's state, the history so far, the
/// data loader's epoch and the dropout generator), replacing it atomically. A run started
/// with an existing `path` loads it and continues with the next epoch, and ends with the same
/// numbers as the run that was never interrupted (same data order, dropout masks and optimiser
/// state). Costs one write of about three times the model's size per epoch (Adam). Delete the
/// file to start over; the caller deletes it once the finished run is saved elsewhere.
#[derive(Clone, Copy, Debug)]
pub struct Checkpoint<'a> {
    pub path: &'a Path,
}

/// [`train_model`] (`schedule` `None`) or [`train_model_one_cycle`], checkpointed after every
/// epoch and resumed from `checkpoint` when it exists (see [`Checkpoint`]). A checkpoint with
/// more epochs than `epochs`, or from another model or optimiser, is an error that says so.
#[allow(clippy::too_many_arguments)]
pub fn train_model_checkpointed(
    model: &dyn Model,
    train: &DataLoader,
    val: &DataLoader,
    optimizer: &mut dyn Optimizer,
    schedule: Option<&OneCycle>,
    loss_fn: Loss,
    epochs: usize,
    verbose: bool,
    checkpoint: Checkpoint,
) -> Result<History> {
    train_loop(
        model,
        train,
        Some(val),
        optimizer,
        loss_fn,
        epochs,
        verbose,
        schedule,
        Some(checkpoint),
    )
}

const CKPT_MODEL: &str = "model.";
const CKPT_OPTIM: &str = "optimizer.";
const CKPT_HISTORY: &str = "history.";

impl Checkpoint<'_> {
    fn save(
        &self,
        model: &dyn Model,
        optimizer: &dyn Optimizer,
        history: &History,
        loader: &DataLoader,
    ) -> Result<()> {
        let cpu = candle_core::Device::Cpu;
        let mut map: HashMap<String, Tensor> = HashMap::new();
        for (name, t) in model.params().state_dict() {
            map.insert(format!("{CKPT_MODEL}{name}"), t.to_device(&cpu)?);
        }
        map.extend(optimizer.state()?.into_iter().map(|(k, t)| (format!("{CKPT_OPTIM}{k}"), t)));
        map.extend(history.tensors(CKPT_HISTORY)?);
        map.insert("loader_epoch".into(), Tensor::new(&[loader.epoch() as i64], &cpu)?);
        if let Some(rng) = model.dropout_rng() {
            let s = rng.borrow().state().map(|w| w as i64);
            map.insert("dropout_rng".into(), Tensor::new(&s, &cpu)?);
        }
        let tmp = self.path.with_extension("safetensors.partial");
        candle_core::safetensors::save(&map, &tmp)
            .map_err(|e| error(format!("cannot write the checkpoint {}: {e}", tmp.display())))?;
        std::fs::rename(&tmp, self.path).map_err(|e| {
            error(format!("cannot move the checkpoint into {}: {e}", self.path.display()))
        })
    }

    /// Restores everything [`Checkpoint::save`] wrote; returns the history so far.
    fn load(
        &self,
        model: &dyn Model,
        optimizer: &mut dyn Optimizer,
        loader: &DataLoader,
        epochs: usize,
    ) -> Result<History> {
        let source = format!("the checkpoint {}", self.path.display());
        let map =
            candle_core::safetensors::load(self.path, &candle_core::Device::Cpu).map_err(|e| {
                error(format!("{source} cannot be read ({e}); delete it to start the run over"))
            })?;
        let history = History::from_tensors(&map, CKPT_HISTORY, &source)?;
        let done = history.train_loss.len();
        if done > epochs {
            return Err(error(format!("{source} holds {done} epochs, more than the {epochs} asked for: ask for at least {done}, or delete it to start over")));
        }
        let part = |prefix: &str| -> HashMap<String, Tensor> {
            map.iter()
                .filter_map(|(k, t)| k.strip_prefix(prefix).map(|k| (k.to_string(), t.clone())))
                .collect()
        };
        let scalar = |k: &str| -> Result<Vec<i64>> {
            map.get(k).ok_or_else(|| error(format!("{source} has no `{k}`")))?.to_vec1::<i64>()
        };
        model.params().load_tensors(&part(CKPT_MODEL), &source)?;
        optimizer.load_state(&part(CKPT_OPTIM))?;
        loader.set_epoch(scalar("loader_epoch")?.first().copied().unwrap_or(0) as u64);
        if let Some(rng) = model.dropout_rng() {
            let s = scalar("dropout_rng")?;
            let state: [u64; 4] = std::array::from_fn(|i| s.get(i).copied().unwrap_or(0) as u64);
            *rng.borrow_mut() = crate::rng::Rng::from_state(state)
                .ok_or_else(|| error(format!("{source} has no valid dropout generator state")))?;
        }
        Ok(history)
    }
}

#[allow(clippy::too_many_arguments)]
fn train_loop(
    model: &dyn Model,
    train: &DataLoader,
    val: Option<&DataLoader>,
    optimizer: &mut dyn Optimizer,
    loss_fn: Loss,
    epochs: usize,
    verbose: bool,
    schedule: Option<&OneCycle>,
    checkpoint: Option<Checkpoint>,
) -> Result<History> {
    crate::tune_allocator();
    crate::nn::fence_tensor_ids(&model.params().vars())?;
    let device = model.device();
    let mut history = History::default();
    if let Some(c) = checkpoint.filter(|c| c.path.exists()) {
        history = c.load(model, optimizer, train, epochs)?;
        if verbose {
            println!(
                "(resumed from the checkpoint {} after epoch {} of {epochs})",
                c.path.display(),
                history.train_loss.len()
            );
            history.print_epochs();
        }
    }
    let first = history.train_loss.len() + 1;
    let mut step = (first - 1) * train.num_batches();
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
            let loss = loss_fn.compute(&out, &y)?;
            let grads = loss.backward()?;
            let l = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            check_finite(l, epoch, b + 1, optimizer.learning_rate())?;
            optimizer.step(&grads)?;
            sum += l * x.dim(0)? as f64;
            count += x.dim(0)?;
        }
        let train_loss = sum / count.max(1) as f64;
        history.train_loss.push(train_loss);
        history.epoch_seconds.push(t0.elapsed().as_secs_f64());
        let Some(val) = val else { continue };
        let (val_loss, val_acc) = evaluate_model(model, val, loss_fn)?;
        history.val_loss.push(val_loss);
        history.val_accuracy.push(val_acc);
        *history.epoch_seconds.last_mut().expect("pushed above") = t0.elapsed().as_secs_f64();
        if verbose {
            println!(" epoch: {epoch:>2}, training loss: {train_loss:.3}, validation loss {val_loss:.3}, validation accuracy {val_acc:.3}");
        }
        if let Some(c) = checkpoint {
            c.save(model, optimizer, &history, train)?;
        }
    }
    if verbose {
        println!();
        println!("Average time per epoch: {:.3}s", history.seconds_per_epoch());
    }
    Ok(history)
}

/// Sample-weighted mean loss and accuracy (fraction) of `model` in evaluation mode over `loader`.
/// Accuracy counts the argmax of the output over dim 1 (classification losses only).
pub fn evaluate_model(model: &dyn Model, loader: &DataLoader, loss_fn: Loss) -> Result<(f64, f64)> {
    let device = model.device();
    let (mut loss_sum, mut correct, mut count) = (0.0f64, 0u64, 0usize);
    for batch in loader.iter() {
        let (x, y) = batch?;
        let (x, y) = (x.to_device(&device)?, y.to_device(&device)?);
        let n = x.dim(0)?;
        let out = model.forward_t(&x, false)?.detach();
        let l = loss_fn.compute(&out, &y)?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        loss_sum += l * n as f64;
        if matches!(loss_fn, Loss::CrossEntropy | Loss::CrossEntropyLabelSmoothing(_)) {
            correct += out
                .argmax(1)?
                .eq(&y.to_dtype(DType::U32)?)?
                .to_dtype(DType::U32)?
                .sum_all()?
                .to_scalar::<u32>()? as u64;
        }
        count += n;
    }
    if count == 0 {
        return Err(error("cannot evaluate on an empty data loader"));
    }
    Ok((loss_sum / count as f64, correct as f64 / count as f64))
}

/// Loss and accuracy on the training, validation and test sets.
#[derive(Clone, Copy, Debug, Default)]
pub struct Metrics {
    pub train: (f64, f64),
    pub val: (f64, f64),
    pub test: (f64, f64),
}

impl Metrics {
    /// Metrics from `(loss, accuracy)` pairs, e.g. the numbers printed in the original notebook.
    pub fn new(train: (f64, f64), val: (f64, f64), test: (f64, f64)) -> Self {
        Metrics { train, val, test }
    }

    /// Prints these metrics next to `original` (the PyTorch notebook's printed values).
    pub fn compare(&self, original: Metrics) {
        println!("{:<11} {:>17}   {:>17}", "", "ours loss / acc", "original loss / acc");
        for (label, ours, orig) in [
            ("train", self.train, original.train),
            ("validation", self.val, original.val),
            ("test", self.test, original.test),
        ] {
            println!(
                "{label:<11} {:>8.5} / {:.5}   {:>8.5} / {:.5}",
                ours.0, ours.1, orig.0, orig.1
            );
        }
    }
}

/// Evaluates on `[train, val, test]` and prints the original's three lines:
/// `train loss:      0.24101, accuracy: 0.93456` etc.
pub fn print_overall_metrics(
    model: &dyn Model,
    loaders: [&DataLoader; 3],
    loss_fn: Loss,
) -> Result<Metrics> {
    let mut out = [(0.0, 0.0); 3];
    for (i, (label, loader)) in
        ["train loss:     ", "validation loss:", "test loss:      "].iter().zip(loaders).enumerate()
    {
        let (l, a) = evaluate_model(model, loader, loss_fn)?;
        println!("{label} {l:.5}, accuracy: {a:.5}");
        out[i] = (l, a);
    }
    Ok(Metrics { train: out[0], val: out[1], test: out[2] })
}

/// The first `n` images of `loader` in one figure, each titled as the original notebook's
/// prediction plots: `predicted: 7 (conf 0.997)` (class and softmax probability of `model`).
pub fn prediction_figure(
    model: &dyn Model,
    loader: &DataLoader,
    n: usize,
    cols: usize,
) -> Result<Figure> {
    let (images, _) = loader.first_batch()?;
    let n = n.min(images.dim(0)?);
    let mut pics = Vec::with_capacity(n);
    let mut titles = Vec::with_capacity(n);
    for i in 0..n {
        let img = images.get(i)?;
        let (class, conf) = predict(model, &img)?;
        titles.push(format!("predicted: {class} (conf {conf:.3})"));
        pics.push(img);
    }
    crate::plot::image_grid(&pics, &titles, cols, 180)
}

/// The predicted class and its softmax probability for one image `(C, H, W)`.
pub fn predict(model: &dyn Model, image: &Tensor) -> Result<(usize, f32)> {
    let x = image.unsqueeze(0)?.to_device(&model.device())?;
    let probs = candle_nn::ops::softmax(&model.forward(&x)?.squeeze(0)?, 0)?;
    let class = probs.argmax(0)?.to_scalar::<u32>()? as usize;
    let conf = probs.get(class)?.to_dtype(DType::F32)?.to_scalar::<f32>()?;
    Ok((class, conf))
}

/// Anisotropic total variation of `(N, C, H, W)` images: the sum of absolute differences between
/// vertical neighbours plus those between horizontal neighbours (as the original notebook).
pub fn total_variation(x: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let dv = (x.narrow(2, 1, h - 1)? - x.narrow(2, 0, h - 1)?)?.abs()?.sum_all()?;
    let dh = (x.narrow(3, 1, w - 1)? - x.narrow(3, 0, w - 1)?)?.abs()?.sum_all()?;
    dv + dh
}

/// The result of [`activation_maximization`].
#[derive(Clone, Debug)]
pub struct Maximized {
    /// The class whose logit was maximised.
    pub class: usize,
    /// The optimised input, `(C, H, W)`.
    pub image: Tensor,
    /// Loss at each iteration (before that iteration's update).
    pub losses: Vec<f64>,
    /// The model's prediction and softmax confidence for the final image.
    pub predicted: usize,
    pub confidence: f32,
}

impl Maximized {
    /// The image titled `class, predicted, confidence` next to its loss curve.
    pub fn figure(&self) -> Result<Figure> {
        crate::plot::image_and_curve(
            &self.image,
            &format!("{}, {}, {:.3}", self.class, self.predicted, self.confidence),
            &self.losses,
            "loss",
        )
    }

    pub fn evcxr_display(&self) {
        match self.figure() {
            Ok(f) => f.evcxr_display(),
            Err(e) => println!("cannot draw: {e}"),
        }
    }
}

/// Activation maximisation: starting from uniform noise in [0, 1) (seeded), optimise an input
/// of shape `shape` with Adam(`lr`) for `steps` iterations to maximise the logit of `class`,
/// with loss `-logit[class] + tv_weight * TV(x)` ([`total_variation`]). The model is in
/// evaluation mode and its weights are not changed; the image is not clamped (as the original).
pub fn activation_maximization(
    model: &dyn Model,
    class: usize,
    shape: (usize, usize, usize),
    steps: usize,
    lr: f64,
    tv_weight: f64,
    seed: u64,
) -> Result<Maximized> {
    crate::nn::fence_tensor_ids(&model.params().vars())?;
    let device = model.device();
    let (c, h, w) = shape;
    let mut rng = crate::rng::Rng::new(seed);
    let x = candle_core::Var::from_tensor(&Tensor::from_vec(
        rng.uniform_vec(c * h * w, 0.0, 1.0),
        (1, c, h, w),
        &device,
    )?)?;
    let mut opt = crate::optim::Adam::new(vec![x.clone()], lr)?;
    let mut losses = Vec::with_capacity(steps);
    for step in 0..steps {
        let logits = model.forward_t(x.as_tensor(), false)?;
        if class >= logits.dim(1)? {
            return Err(error(format!(
                "class {class} is out of range: the model has {} outputs",
                logits.dim(1)?
            )));
        }
        let loss = ((logits.get(0)?.get(class)? * -1.0)?
            + (total_variation(x.as_tensor())? * tv_weight)?)?;
        let l = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        check_finite(l, 1, step + 1, lr)?;
        losses.push(l);
        // Only the image is optimised: gradients of the weights are computed but never applied.
        opt.step(&loss.backward()?)?;
    }
    let image = x.as_tensor().detach().squeeze(0)?;
    let (predicted, confidence) = predict(model, &image)?;
    Ok(Maximized { class, image, losses, predicted, confidence })
}

/// Counts of (true class, predicted class) over a data set.
#[derive(Clone, Debug)]
pub struct ConfusionMatrix {
    pub classes: Vec<String>,
    /// `counts[true][predicted]`.
    pub counts: Vec<Vec<usize>>,
}

/// The confusion matrix of `model` (evaluation mode) over `loader`; `classes` names the outputs.
pub fn confusion_matrix(
    model: &dyn Model,
    loader: &DataLoader,
    classes: &[&str],
) -> Result<ConfusionMatrix> {
    let k = classes.len();
    let mut counts = vec![vec![0usize; k]; k];
    let device = model.device();
    for batch in loader.iter() {
        let (x, y) = batch?;
        let pred = model.forward_t(&x.to_device(&device)?, false)?.argmax(1)?.to_vec1::<u32>()?;
        let truth = y.to_dtype(DType::U32)?.to_vec1::<u32>()?;
        for (t, p) in truth.into_iter().zip(pred) {
            let (t, p) = (t as usize, p as usize);
            if t >= k || p >= k {
                return Err(error(format!(
                    "confusion_matrix: class {} outside the {k} class names",
                    t.max(p)
                )));
            }
            counts[t][p] += 1;
        }
    }
    Ok(ConfusionMatrix { classes: classes.iter().map(|s| s.to_string()).collect(), counts })
}

impl ConfusionMatrix {
    /// Accuracy of each true class (the diagonal over the row sums).
    pub fn per_class_accuracy(&self) -> Vec<f64> {
        self.counts
            .iter()
            .enumerate()
            .map(|(i, row)| row[i] as f64 / row.iter().sum::<usize>().max(1) as f64)
            .collect()
    }

    /// The matrix as a table: rows are true classes, columns predictions, last column the recall.
    pub fn table(&self, title: &str) -> Result<crate::report::Table> {
        let mut header: Vec<&str> = vec!["true \\ predicted"];
        header.extend(self.classes.iter().map(|s| s.as_str()));
        header.push("accuracy");
        let mut table = crate::report::Table::new(title, &header);
        for ((name, row), acc) in
            self.classes.iter().zip(&self.counts).zip(self.per_class_accuracy())
        {
            let mut cells = vec![format!("**{name}**")];
            cells.extend(row.iter().map(|c| c.to_string()));
            cells.push(format!("{acc:.3}"));
            table.push(cells)?;
        }
        Ok(table)
    }

    /// The row-normalised matrix as a labelled heat-map.
    pub fn figure(&self, title: &str) -> Result<Figure> {
        let rows: Vec<Vec<f64>> = self
            .counts
            .iter()
            .map(|r| {
                let s = r.iter().sum::<usize>().max(1) as f64;
                r.iter().map(|&c| c as f64 / s).collect()
            })
            .collect();
        crate::plot::matrix(&rows, &self.classes, title)
    }
}
