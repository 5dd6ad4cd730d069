//! Evaluation: loss and accuracy over a data loader, the original's three-line summary, a
//! single prediction, and the confusion matrix.

use crate::data::DataLoader;
use crate::nn::Model;
use crate::viz::{Figure, Table};
use crate::{error, Result, Tensor};
use candle_core::DType;

use super::Loss;

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
    /// (loss, accuracy) on the training set.
    pub train: (f64, f64),
    /// (loss, accuracy) on the validation set.
    pub val: (f64, f64),
    /// (loss, accuracy) on the test set.
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

/// The predicted class and its softmax probability for one image `(C, H, W)`.
pub fn predict(model: &dyn Model, image: &Tensor) -> Result<(usize, f32)> {
    let x = image.unsqueeze(0)?.to_device(&model.device())?;
    let probs = candle_nn::ops::softmax(&model.forward(&x)?.squeeze(0)?, 0)?;
    let class = probs.argmax(0)?.to_scalar::<u32>()? as usize;
    let conf = probs.get(class)?.to_dtype(DType::F32)?.to_scalar::<f32>()?;
    Ok((class, conf))
}

/// Counts of (true class, predicted class) over a data set.
#[derive(Clone, Debug)]
pub struct ConfusionMatrix {
    /// Class names, in output order.
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
    pub fn table(&self, title: &str) -> Result<Table> {
        let mut header: Vec<&str> = vec!["true \\ predicted"];
        header.extend(self.classes.iter().map(|s| s.as_str()));
        header.push("accuracy");
        let mut table = Table::new(title, &header);
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
        crate::viz::matrix(&rows, &self.classes, title)
    }
}
