//! Image denoising (the `CNN_for_image_denoising` notebook): noisy data drawn fresh at every
//! pass, the SNR metric, hand-crafted filters, and a training loop for filters and small CNNs.
//!
//! Noise model (as the original): `noisy = clip(clean + sigma * N(0, 1), 0, 1)`, i.i.d. per
//! pixel, drawn anew every time a batch is read, so every epoch and every evaluation sees new
//! noise. Here it is seeded: pass `p`, batch `b` of a loader draws from `Rng(seed, p, b)`.
//!
//! Metric (as the original): per batch `SNR = 10 log10(sum clean^2 / sum (estimate - clean)^2)`
//! in dB over the whole batch, averaged over the batches. It is an SNR, not a PSNR.

use crate::data::DataLoader;
use crate::optim::Optimizer;
use crate::rng::Rng;
use crate::{error, Result, Tensor};
use candle_core::{DType, Var};
use std::cell::Cell;

/// Batches of `(noisy, clean)` images over a [`DataLoader`], with fresh seeded noise per pass.
pub struct NoisyLoader {
    /// The clean images.
    pub loader: DataLoader,
    /// Standard deviation of the Gaussian noise.
    pub sigma: f32,
    seed: u64,
    pass: Cell<u64>,
}

impl NoisyLoader {
    /// Noisy batches of `loader` with noise of `sigma`, seeded by `seed`.
    pub fn new(loader: DataLoader, sigma: f32, seed: u64) -> Self {
        NoisyLoader { loader, sigma, seed, pass: Cell::new(0) }
    }

    /// Adds clipped Gaussian noise to `clean` from `rng`.
    pub fn add_noise(clean: &Tensor, sigma: f32, rng: &mut Rng) -> Result<Tensor> {
        let noise =
            Tensor::from_vec(rng.normal_vec(clean.elem_count()), clean.shape(), clean.device())?;
        (clean + (noise * sigma as f64)?)?.clamp(0f32, 1f32)
    }

    /// The batches of one pass: `(noisy, clean)`. Each call is a new pass with new noise.
    pub fn iter(&self) -> impl Iterator<Item = Result<(Tensor, Tensor)>> + '_ {
        let pass = self.pass.get();
        self.pass.set(pass + 1);
        let base = self.seed.wrapping_mul(0x9E37_79B9).wrapping_add(pass << 32);
        self.loader.iter().enumerate().map(move |(b, batch)| {
            let (clean, _) = batch?;
            let noisy =
                Self::add_noise(&clean, self.sigma, &mut Rng::new(base.wrapping_add(b as u64)))?;
            Ok((noisy, clean))
        })
    }

    /// The first batch of the loader with noise (does not advance the passes).
    pub fn first_batch(&self) -> Result<(Tensor, Tensor)> {
        let (clean, _) = self.loader.first_batch()?;
        Ok((Self::add_noise(&clean, self.sigma, &mut Rng::new(self.seed ^ 0xF1F1))?, clean))
    }
}

/// SNR in dB of `estimate` against `clean` over the whole tensor.
pub fn snr_db(clean: &Tensor, estimate: &Tensor) -> Result<f64> {
    let signal = clean.sqr()?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    let err = (estimate - clean)?.sqr()?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    Ok(10.0 * (signal / err).log10())
}

/// Input and output SNR (dB), averaged over the batches of one pass, of `filter` applied to the
/// noisy images (the original's `calculate_SNR`).
pub fn calculate_snr(
    loader: &NoisyLoader,
    filter: &dyn Fn(&Tensor) -> Result<Tensor>,
) -> Result<(f64, f64)> {
    let (mut s_in, mut s_out, mut n) = (0.0, 0.0, 0usize);
    for batch in loader.iter() {
        let (noisy, clean) = batch?;
        s_in += snr_db(&clean, &noisy)?;
        s_out += snr_db(&clean, &filter(&noisy)?.detach())?;
        n += 1;
    }
    if n == 0 {
        return Err(error("cannot compute an SNR over an empty loader"));
    }
    Ok((s_in / n as f64, s_out / n as f64))
}

/// The 3x3 "gaussian" kernel of the original: the outer product of `[a, 1, a]` with itself,
/// normalised to unit sum (a = 0: identity, a = 1: 3x3 mean). Differentiable in `alpha`
/// (a scalar or one-element tensor).
pub fn gaussian_kernel(alpha: &Tensor) -> Result<Tensor> {
    let a = alpha.flatten_all()?;
    if a.dim(0)? != 1 {
        return Err(error(format!("alpha must be a single number, got shape {:?}", alpha.dims())));
    }
    let one = Tensor::ones(1, a.dtype(), a.device())?;
    let v = Tensor::cat(&[&a, &one, &a], 0)?; // [a, 1, a]
    let k = v.unsqueeze(1)?.broadcast_mul(&v.unsqueeze(0)?)?; // (3, 3)
    k.broadcast_div(&k.sum_all()?)
}

/// Filters every image of `(N, 1, H, W)` with the `(k, k)` kernel (k odd), zero "same" padding:
/// a single-channel cross-correlation as `F.conv2d(x, kernel[None, None], padding=k // 2)`.
pub fn filter_batch(x: &Tensor, kernel: &Tensor) -> Result<Tensor> {
    let (kh, kw) = kernel.dims2()?;
    if kh != kw || kh % 2 == 0 {
        return Err(error(format!(
            "filter_batch needs a square kernel of odd size, got {kh}x{kw}"
        )));
    }
    if x.rank() != 4 || x.dim(1)? != 1 {
        return Err(error(format!("filter_batch needs (N, 1, H, W) images, got {:?}", x.dims())));
    }
    crate::nn::functional::conv2d(x, &kernel.reshape((1, 1, kh, kw))?, None, 1, kh / 2)
}

/// The k x k median filter (k odd) with the borders handled by replicating the edge pixels:
/// the classical non-linear denoiser the original does not try.
pub fn median_filter(x: &Tensor, k: usize) -> Result<Tensor> {
    if k.is_multiple_of(2) {
        return Err(error(format!("the median filter needs an odd size, got {k}")));
    }
    let (n, c, h, w) = x.dims4()?;
    let v = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let r = (k / 2) as isize;
    let mut out = vec![0f32; v.len()];
    let mut win = Vec::with_capacity(k * k);
    for p in 0..n * c {
        let img = &v[p * h * w..(p + 1) * h * w];
        for y in 0..h as isize {
            for xx in 0..w as isize {
                win.clear();
                for dy in -r..=r {
                    for dx in -r..=r {
                        let yy = (y + dy).clamp(0, h as isize - 1) as usize;
                        let xc = (xx + dx).clamp(0, w as isize - 1) as usize;
                        win.push(img[yy * w + xc]);
                    }
                }
                let mid = win.len() / 2;
                win.select_nth_unstable_by(mid, |a, b| a.total_cmp(b));
                out[p * h * w + y as usize * w + xx as usize] = win[mid];
            }
        }
    }
    Tensor::from_vec(out, x.shape(), x.device())?.to_dtype(x.dtype())
}

/// How long [`train_denoiser`] trains and how often it logs (the original: every 50 batches).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DenoiserFit {
    /// Passes over the training set.
    pub epochs: usize,
    /// A log line every this many batches (0: none).
    pub print_every: usize,
}

impl Default for DenoiserFit {
    fn default() -> Self {
        DenoiserFit { epochs: 1, print_every: 50 }
    }
}

/// Trains a denoiser: `forward(noisy)` should approach `clean` under the MSE loss. Prints
/// `epoch {e} - batch {b:<3} - loss = {l:.5f}` every `fit.print_every` batches (with
/// ` - alpha: {a:.5f}` before the loss when `params` is a single scalar, as the original's
/// learned-alpha log). Returns the loss of every batch.
pub fn train_denoiser(
    forward: &dyn Fn(&Tensor) -> Result<Tensor>,
    params: &[Var],
    loader: &NoisyLoader,
    optimizer: &mut dyn Optimizer,
    fit: DenoiserFit,
) -> Result<Vec<f64>> {
    let DenoiserFit { epochs, print_every } = fit;
    crate::env::fence_tensor_ids(params)?;
    let scalar = params.len() == 1 && params[0].elem_count() == 1;
    let mut losses = Vec::new();
    for epoch in 1..=epochs {
        for (b, batch) in loader.iter().enumerate() {
            let (noisy, clean) = batch?;
            let loss = candle_nn::loss::mse(&forward(&noisy)?, &clean)?;
            let l = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            if !l.is_finite() {
                return Err(error(format!(
                    "the loss became {l} at epoch {epoch}, batch {b}: training diverged; lower \
                     the learning rate (now {}) and start again",
                    optimizer.learning_rate()
                )));
            }
            optimizer.step(&loss.backward()?)?;
            losses.push(l);
            if print_every > 0 && b % print_every == 0 {
                if scalar {
                    let a = params[0]
                        .as_tensor()
                        .flatten_all()?
                        .to_dtype(DType::F64)?
                        .to_vec1::<f64>()?[0];
                    println!("epoch {epoch} - batch {b:<3} - alpha: {a:.5} - loss = {l:.5}");
                } else {
                    println!("epoch {epoch} - batch {b:<3} - loss = {l:.5}");
                }
            }
        }
    }
    Ok(losses)
}

/// A kernel `(k, k)` (or `(1, 1, k, k)`) written as the original prints it with 4 decimals:
/// `[[-0.0489, 0.1244, 0.0390], ...]`.
pub fn format_kernel(kernel: &Tensor) -> Result<String> {
    let (kh, kw) = match kernel.dims() {
        [kh, kw] | [1, 1, kh, kw] => (*kh, *kw),
        d => return Err(error(format!("format_kernel needs a (k, k) kernel, got {d:?}"))),
    };
    let v = kernel.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let rows: Vec<String> = (0..kh)
        .map(|r| {
            format!(
                "[{}]",
                (0..kw).map(|c| format!("{:.4}", v[r * kw + c])).collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    Ok(format!("[{}]", rows.join(",\n ")))
}
