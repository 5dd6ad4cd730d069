//! Transfer learning: a frozen ImageNet backbone turns each CIFAR-10 image (upscaled with the
//! backbone's ImageNet preset) into a feature vector once; a small head is then trained on the
//! cached features, so an epoch costs seconds instead of a backbone pass per image per epoch.
//!
//! Features are cached as `.safetensors` in [`cache_dir`], keyed by backbone, preset, data set
//! name and size, so a notebook re-run (or a second head) reuses them.

use crate::data::Dataset;
use crate::efficientnet::EfficientNetLite;
use crate::imagenet::Preset;
use crate::nn::Model;
use crate::torchvision::TorchvisionNet;
use crate::{error, Device, Result, Tensor};
use rayon::prelude::*;
use std::path::PathBuf;
use std::time::Instant;

/// Where feature caches go: `$PLAYGROUND_CACHE`, else `cache/` at the top of the repository.
pub fn cache_dir() -> PathBuf {
    crate::repo_folder("PLAYGROUND_CACHE", "cache")
}

/// A `(3, H, W)` image with values in [0, 1] as an 8-bit RGB image (what torchvision's
/// `ToPILImage` gives), so the ImageNet presets resize it exactly as they would a photo.
pub fn to_rgb(image: &Tensor) -> Result<image::RgbImage> {
    let (c, h, w) = image.dims3()?;
    if c != 3 {
        return Err(error(format!("expected an RGB image (3, H, W), got {:?}", image.dims())));
    }
    let v = image.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let q = |x: f32| (x.clamp(0.0, 1.0) * 255.0).round() as u8;
    let n = h * w;
    Ok(image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let i = y as usize * w + x as usize;
        image::Rgb([q(v[i]), q(v[n + i]), q(v[2 * n + i])])
    }))
}

/// The images of `ds` (pixels in [0, 1]) preprocessed with `preset`: `(N, 3, crop, crop)`.
pub fn upscale(ds: &Dataset, preset: &Preset) -> Result<Tensor> {
    let images: Vec<Tensor> = (0..ds.len()).into_par_iter().map(|i| preset.apply(&to_rgb(&ds.images.get(i)?)?)).collect::<Result<_>>()?;
    Tensor::stack(&images, 0)
}

/// A frozen ImageNet backbone (a concrete enum rather than a trait object: see `cifar::CifarNet`).
#[allow(clippy::large_enum_variant)] // one value per notebook, built once
pub enum Backbone {
    EfficientNet(EfficientNetLite),
    Torchvision(TorchvisionNet),
}

impl Backbone {
    /// A short name for messages and cache files ("efficientnet-lite0", "resnet18", ...).
    pub fn name(&self) -> String {
        match self {
            Backbone::EfficientNet(m) => format!("efficientnet-lite{}", m.variant),
            Backbone::Torchvision(m) => m.name.to_lowercase().replace(' ', "_"),
        }
    }

    /// The preprocessing preset of its weights.
    pub fn preset(&self) -> Preset {
        match self {
            Backbone::EfficientNet(m) => m.preset(),
            Backbone::Torchvision(m) => m.preset(),
        }
    }

    /// Pooled features `(N, D)` in evaluation mode (BatchNorm with its ImageNet statistics).
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Backbone::EfficientNet(m) => m.features(x),
            Backbone::Torchvision(m) => m.features(x),
        }
    }

    fn device(&self) -> Device {
        match self {
            Backbone::EfficientNet(m) => m.device(),
            Backbone::Torchvision(m) => m.device(),
        }
    }
}

/// Pooled backbone features `(N, D)` of every image of `ds` (pixels in [0, 1], e.g. from
/// [`crate::data::cifar10_raw_splits`]) as a new data set with the same labels. `name` keys the
/// cache (e.g. "train"); a cached file with the same key is loaded instead of recomputing.
/// Prints progress about every 10% and the extraction time.
pub fn extract_features(backbone: &Backbone, ds: &Dataset, name: &str, batch_size: usize) -> Result<Dataset> {
    crate::tune_allocator();
    let preset = backbone.preset();
    let path = cache_dir().join(format!("{}-{}px-{name}-{}.safetensors", backbone.name(), preset.crop, ds.len()));
    if path.exists() {
        let map = candle_core::safetensors::load(&path, &Device::Cpu).map_err(|e| error(format!("the feature cache {} is unreadable ({e}); delete it", path.display())))?;
        if let (Some(f), Some(l)) = (map.get("features"), map.get("labels")) {
            if f.dim(0)? == ds.len() {
                println!("{name}: loaded {} cached feature vectors from {}", ds.len(), path.display());
                return Dataset::new(f.clone(), l.clone());
            }
        }
    }
    let start = Instant::now();
    let n = ds.len();
    let mut parts = Vec::new();
    let mut next_report = n / 10;
    for lo in (0..n).step_by(batch_size.max(1)) {
        let len = batch_size.max(1).min(n - lo);
        let x = upscale(&Dataset::new(ds.images.narrow(0, lo, len)?, ds.labels.narrow(0, lo, len)?)?, &preset)?;
        parts.push(backbone.features(&x.to_device(&backbone.device())?)?.to_device(&Device::Cpu)?.detach());
        if lo + len >= next_report && lo + len < n {
            let done = lo + len;
            let rate = done as f64 / start.elapsed().as_secs_f64();
            println!("  {name}: {done}/{n} images, {rate:.1} images/s, ~{:.0} s left", (n - done) as f64 / rate);
            next_report = done + n / 10;
        }
    }
    let features = Tensor::cat(&parts, 0)?;
    println!("{name}: {n} images -> features {:?} in {:.1} s ({:.1} images/s)", features.dims(), start.elapsed().as_secs_f64(), n as f64 / start.elapsed().as_secs_f64());
    if std::fs::create_dir_all(cache_dir()).is_ok() {
        let map: std::collections::HashMap<String, Tensor> = [("features".to_string(), features.clone()), ("labels".to_string(), ds.labels.clone())].into_iter().collect();
        if let Err(e) = candle_core::safetensors::save(&map, &path) {
            println!("(could not cache the features in {}: {e})", path.display());
        }
    }
    Dataset::new(features, ds.labels.clone())
}
