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

/// Prints a top-5 list as the original notebook: `name (padded to width) | confidence: 55.71%`.
pub fn print_top5(top: &[(usize, f32)], width: usize) {
    let names = class_names();
    for &(i, p) in top {
        println!(
            "{:<width$} | confidence: {:.2}%",
            names.get(i).copied().unwrap_or("?"),
            p * 100.0
        );
    }
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
    /// Throughput of the whole evaluation.
    pub fn images_per_second(&self) -> f64 {
        self.images as f64 / self.seconds.max(1e-9)
    }
}

/// Cross-entropy loss, top-1 and top-5 accuracy of `model` over `folder` with `preset`, in
/// batches of `batch_size`; the time covers decoding, preprocessing and the forward passes (as
/// the original's). Prints a progress line about every 10% and the original's two result lines.
pub fn evaluate(
    model: &dyn Model,
    folder: &ValFolder,
    preset: &Preset,
    batch_size: usize,
) -> Result<Evaluation> {
    let start = Instant::now();
    let (mut loss, mut top1, mut top5, mut seen) = (0.0f64, 0usize, 0usize, 0usize);
    let n = folder.len();
    let mut next_report = n / 10;
    for lo in (0..n).step_by(batch_size.max(1)) {
        let (x, labels) = folder.batch(lo..lo + batch_size.max(1), preset)?;
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
            println!(
                "  {seen}/{n} images, top-1 so far {:.3}, {:.1} images/s",
                top1 as f64 / seen as f64,
                seen as f64 / start.elapsed().as_secs_f64()
            );
            next_report = seen + n / 10;
        }
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
