//! The ImageNet notebook's evaluation: the top-5 of one image, printed as the original prints
//! it, and a model's loss, top-1 and top-5 accuracy and speed over a validation folder.

use crate::data::{class_names, Preset, ValFolder};
use crate::nn::Model;
use crate::{error, Device, Result, Tensor};
use std::time::Instant;

/// The `k` most probable classes of one preprocessed image `(3, H, W)`: `(class, probability)`.
pub fn top_k(model: &dyn Model, image: &Tensor, k: usize) -> Result<Vec<(usize, f32)>> {
    let x = image.unsqueeze(0)?.to_device(&model.device())?;
    let probs = candle_nn::ops::softmax(&model.forward(&x)?.squeeze(0)?, 0)?.to_vec1::<f32>()?;
    Ok(top_indices(&probs, k).into_iter().map(|i| (i, probs[i])).collect())
}

fn top_indices(v: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]));
    idx.truncate(k);
    idx
}

/// Prints a top-5 list as the original notebooks: `name | confidence: 55.71%`, the name cut to
/// `width` characters and padded to them (35 for AlexNet and VGG, 65 for the others).
pub fn print_top5(top: &[(usize, f32)], width: usize) {
    let names = class_names();
    for &(i, p) in top {
        let name = names.get(i).copied().unwrap_or("?");
        println!("{:<width$} | confidence: {:.2}%", cut(name, width), p * 100.0);
    }
}

/// `name` cut to its first `width` characters (the original's top-5 column).
fn cut(name: &str, width: usize) -> &str {
    name.char_indices().nth(width).map_or(name, |(at, _)| &name[..at])
}

/// What [`evaluate`] measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct Evaluation {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Top-1 accuracy (fraction).
    pub top1: f64,
    /// Top-5 accuracy (fraction).
    pub top5: f64,
    /// Images evaluated.
    pub images: usize,
    /// Wall time: decoding, preprocessing and the forward passes.
    pub seconds: f64,
}

impl Evaluation {
    /// The 95% Wilson score interval of the top-1 accuracy: over 40 images one image is 2.5
    /// points, and 31/40 = 0.775 means anything from 0.625 to 0.877.
    pub fn top1_interval(&self) -> (f64, f64) {
        wilson_interval(self.top1 * self.images as f64, self.images)
    }

    /// The 95% Wilson score interval of the top-5 accuracy.
    pub fn top5_interval(&self) -> (f64, f64) {
        wilson_interval(self.top5 * self.images as f64, self.images)
    }

    /// Throughput of the whole evaluation.
    pub fn images_per_second(&self) -> f64 {
        self.images as f64 / self.seconds.max(1e-9)
    }
}

/// The 95% Wilson score interval of a proportion of `successes` out of `n` (Wilson 1927; what
/// `statsmodels.stats.proportion.proportion_confint(k, n, method="wilson")` gives): unlike
/// `p +- 1.96 sqrt(p(1-p)/n)` it stays inside [0, 1] and is honest at 0/n and n/n.
pub fn wilson_interval(successes: f64, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (n, z) = (n as f64, 1.959_963_984_540_054);
    let p = (successes / n).clamp(0.0, 1.0);
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Cross-entropy loss, top-1 and top-5 accuracy of `model` over `folder` with `preset`, in
/// batches of `batch_size`, on the model's device; the time covers decoding, preprocessing and
/// the forward passes (as the original's). A second thread decodes and preprocesses the next
/// batch while the model runs on this one (the original's DataLoader workers). Prints a
/// progress line about every 10% (with the time left) and the original's two result lines.
pub fn evaluate(
    model: &dyn Model,
    folder: &ValFolder,
    preset: &Preset,
    batch_size: usize,
) -> Result<Evaluation> {
    let bs = batch_size.max(1);
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        scope.spawn(move || {
            for lo in (0..folder.len()).step_by(bs) {
                // A closed channel: the evaluation stopped on an error.
                if tx.send(folder.batch(lo..lo + bs, preset)).is_err() {
                    break;
                }
            }
        });
        evaluate_batches(model, folder.len(), rx.into_iter())
    })
}

fn evaluate_batches(
    model: &dyn Model,
    n: usize,
    batches: impl Iterator<Item = Result<(Tensor, Vec<usize>)>>,
) -> Result<Evaluation> {
    let start = Instant::now();
    let (mut loss, mut top1, mut top5, mut seen) = (0.0f64, 0usize, 0usize, 0usize);
    let mut next_report = n / 10;
    for batch in batches {
        let (x, labels) = batch?;
        let logits = model.forward(&x.to_device(&model.device())?)?.to_device(&Device::Cpu)?;
        let target = Tensor::from_vec(
            labels.iter().map(|&l| l as u32).collect::<Vec<_>>(),
            labels.len(),
            &Device::Cpu,
        )?;
        let l = candle_nn::loss::cross_entropy(&logits, &target)?.to_scalar::<f32>()? as f64;
        if !l.is_finite() {
            return Err(error(
                "the loss is not finite: the weights or the preprocessing do not match the model",
            ));
        }
        loss += l * labels.len() as f64;
        for (row, &label) in logits.to_vec2::<f32>()?.iter().zip(&labels) {
            let top = top_indices(row, 5);
            top1 += (top[0] == label) as usize;
            top5 += top.contains(&label) as usize;
        }
        seen += labels.len();
        if seen >= next_report && seen < n {
            let rate = seen as f64 / start.elapsed().as_secs_f64();
            println!(
                "  {seen}/{n} images, top-1 so far {:.3}, {rate:.1} images/s, about {} left",
                top1 as f64 / seen as f64,
                duration((n - seen) as f64 / rate)
            );
            next_report = seen + n / 10;
        }
    }
    if seen == 0 {
        return Err(error("the validation folder holds no images to evaluate"));
    }
    let e = Evaluation {
        loss: loss / seen as f64,
        top1: top1 as f64 / seen as f64,
        top5: top5 as f64 / seen as f64,
        images: seen,
        seconds: start.elapsed().as_secs_f64(),
    };
    println!("Loss: {:.3}, accuracy: {:.3}, top-5 accuracy: {:.3}", e.loss, e.top1, e.top5);
    println!("Inference time: {:.2} min ({:.1} images/s)", e.seconds / 60.0, e.images_per_second());
    Ok(e)
}

/// `83 s`, `12 min`, `2.4 h`.
fn duration(secs: f64) -> String {
    if secs < 90.0 {
        format!("{secs:.0} s")
    } else if secs < 5400.0 {
        format!("{:.0} min", secs / 60.0)
    } else {
        format!("{:.1} h", secs / 3600.0)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_cut_to_the_column() {
        // The original transfer notebook: "polecat, fitch, foulmart, foumart, " (35 characters).
        let name = "polecat, fitch, foulmart, foumart, Mustela putorius";
        assert_eq!(super::cut(name, 35), "polecat, fitch, foulmart, foumart, ");
        assert_eq!(super::cut("tabby, tabby cat", 35), "tabby, tabby cat");
        assert_eq!(super::cut("café crème", 4), "café");
    }
}
