//! ImageNet data: torchvision-exact preprocessing presets, the class names, and a reader for an
//! ImageNet-layout validation folder; also small images (CIFAR-10) upscaled with a preset.
//!
//! Preprocessing follows torchvision's `ImageClassification` preset on PIL images: resize the
//! shorter side to `resize` (bilinear with antialiasing, i.e. a triangle filter whose support
//! grows with the downscale factor, as PIL does; the longer side is `int(resize * long / short)`),
//! centre-crop `crop` (offsets rounded as torchvision), scale to [0, 1], normalise per channel.
//! Grayscale and CMYK JPEGs are converted to RGB first.

use super::Dataset;
use crate::{error, Device, Result, Tensor};
use image::imageops::FilterType;
use image::RgbImage;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// The 1000 ImageNet-1k class names in torchvision index order ("tabby, tabby cat", ...).
pub fn class_names() -> Vec<&'static str> {
    include_str!("../../assets/imagenet_classes.txt").lines().collect()
}

/// A preprocessing preset: resize, centre crop, normalisation `(x - mean) / std` with `x`
/// in [0, 1].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preset {
    /// Shorter side after resizing, in pixels.
    pub resize: u32,
    /// Side of the centre crop, in pixels.
    pub crop: u32,
    /// Per-channel mean subtracted from pixels in [0, 1].
    pub mean: [f32; 3],
    /// Per-channel standard deviation they are divided by.
    pub std: [f32; 3],
}

const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

impl Preset {
    /// AlexNet, VGG16, ResNet18/101: resize 256, crop 224, ImageNet mean/std.
    pub fn imagenet() -> Self {
        Preset { resize: 256, crop: 224, mean: IMAGENET_MEAN, std: IMAGENET_STD }
    }
    /// Inception v3: resize 342, crop 299, ImageNet mean/std.
    pub fn inception() -> Self {
        Preset { resize: 342, crop: 299, mean: IMAGENET_MEAN, std: IMAGENET_STD }
    }
    /// EfficientNet-Lite at `resolution` (224 for Lite0): crop = resolution, resize = resolution +
    /// 32 (TF's 0.875 crop), pixels in [0, 255] mapped by `(x - 127) / 128`.
    pub fn efficientnet_lite(resolution: u32) -> Self {
        Preset {
            resize: resolution + 32,
            crop: resolution,
            mean: [127.0 / 255.0; 3],
            std: [128.0 / 255.0; 3],
        }
    }

    /// Reads an image file and applies the preset: `(3, crop, crop)`.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<Tensor> {
        self.apply(&open_rgb(path.as_ref())?)
    }

    /// Applies the preset to a decoded RGB image.
    pub fn apply(&self, img: &RgbImage) -> Result<Tensor> {
        let (w, h) = img.dimensions();
        if w == 0 || h == 0 {
            return Err(error("cannot preprocess an empty image"));
        }
        let (nw, nh) = if w <= h {
            (self.resize, ((self.resize as u64 * h as u64) / w as u64) as u32)
        } else {
            (((self.resize as u64 * w as u64) / h as u64) as u32, self.resize)
        };
        let resized = if (nw, nh) == (w, h) {
            img.clone()
        } else {
            image::imageops::resize(img, nw, nh, FilterType::Triangle)
        };
        let c = self.crop.min(nw).min(nh);
        let top = ((nh - c) as f64 / 2.0).round() as u32;
        let left = ((nw - c) as f64 / 2.0).round() as u32;
        let crop = image::imageops::crop_imm(&resized, left, top, c, c).to_image();
        let n = (c * c) as usize;
        let mut data = vec![0f32; 3 * n];
        for (i, p) in crop.pixels().enumerate() {
            for ch in 0..3 {
                data[ch * n + i] = (p[ch] as f32 / 255.0 - self.mean[ch]) / self.std[ch];
            }
        }
        Tensor::from_vec(data, (3, c as usize, c as usize), &Device::Cpu)
    }

    /// Undoes the normalisation (for display): `x * std + mean`, `(3, H, W)` in [0, 1].
    pub fn denormalize(&self, x: &Tensor) -> Result<Tensor> {
        let dev = x.device();
        let std = Tensor::new(&self.std, dev)?.reshape((3, 1, 1))?;
        let mean = Tensor::new(&self.mean, dev)?.reshape((3, 1, 1))?;
        x.broadcast_mul(&std)?.broadcast_add(&mean)
    }
}

/// Decodes an image file as RGB (grayscale, CMYK and alpha images are converted).
pub fn open_rgb(path: &Path) -> Result<RgbImage> {
    let img = image::ImageReader::open(path)
        .map_err(|e| error(format!("cannot open image {}: {e}", path.display())))?
        .with_guessed_format()
        .map_err(|e| error(format!("cannot read image {}: {e}", path.display())))?
        .decode()
        .map_err(|e| error(format!("{} is not a decodable image: {e}", path.display())))?;
    Ok(img.to_rgb8())
}

/// A flat folder of `ILSVRC2012_val_XXXXXXXX.JPEG` files with their labels.
#[derive(Clone, Debug)]
pub struct ValFolder {
    /// The image files, in label order.
    pub files: Vec<PathBuf>,
    /// Their ImageNet-1k class indices (torchvision's order).
    pub labels: Vec<usize>,
}

impl ValFolder {
    /// `dir` with a labels file that is either `file label` per line (any subset of the
    /// validation images) or one label per line for `ILSVRC2012_val_00000001.JPEG`, `..02`, ...
    /// (the full 50,000-image layout). Every listed file must exist; labels must be < 1000.
    pub fn open(dir: impl AsRef<Path>, labels: impl AsRef<Path>) -> Result<Self> {
        let (dir, labels_path) = (dir.as_ref(), labels.as_ref());
        let text = std::fs::read_to_string(labels_path).map_err(|e| {
            error(format!("cannot read the labels file {}: {e}", labels_path.display()))
        })?;
        let (mut files, mut labels) = (Vec::new(), Vec::new());
        for (n, line) in text.lines().map(str::trim).filter(|l| !l.is_empty()).enumerate() {
            let mut parts = line.split_whitespace();
            let (file, label) = match (parts.next(), parts.next()) {
                (Some(f), Some(l)) => (f.to_string(), l),
                (Some(l), None) => (format!("ILSVRC2012_val_{:08}.JPEG", n + 1), l),
                _ => continue,
            };
            let label: usize = label.parse().map_err(|_| {
                error(format!(
                    "{} line {}: `{line}` has no integer label",
                    labels_path.display(),
                    n + 1
                ))
            })?;
            if label >= 1000 {
                return Err(error(format!(
                    "{} line {}: label {label} is not an ImageNet-1k class (0..999)",
                    labels_path.display(),
                    n + 1
                )));
            }
            let path = dir.join(&file);
            if !path.exists() {
                return Err(error(format!(
                    "{} lists {file}, which is not in {}",
                    labels_path.display(),
                    dir.display()
                )));
            }
            files.push(path);
            labels.push(label);
        }
        if files.is_empty() {
            return Err(error(format!("{} lists no images", labels_path.display())));
        }
        Ok(ValFolder { files, labels })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Images `range` preprocessed with `preset` (decoded in parallel): `(N, 3, crop, crop)` and
    /// labels.
    pub fn batch(
        &self,
        range: std::ops::Range<usize>,
        preset: &Preset,
    ) -> Result<(Tensor, Vec<usize>)> {
        let range = range.start.min(self.len())..range.end.min(self.len());
        let images: Vec<Tensor> =
            self.files[range.clone()].par_iter().map(|f| preset.load(f)).collect::<Result<_>>()?;
        Ok((Tensor::stack(&images, 0)?, self.labels[range].to_vec()))
    }
}

/// A decoded RGB image as a `(3, H, W)` tensor in [0, 1] (for display; no resizing).
pub fn image_tensor(img: &RgbImage) -> Result<Tensor> {
    let (w, h) = img.dimensions();
    let n = (w * h) as usize;
    let mut data = vec![0f32; 3 * n];
    for (i, p) in img.pixels().enumerate() {
        for ch in 0..3 {
            data[ch * n + i] = p[ch] as f32 / 255.0;
        }
    }
    Tensor::from_vec(data, (3, h as usize, w as usize), &Device::Cpu)
}

/// The first of a class's names ("tabby, tabby cat" -> "tabby"), for figure titles.
pub fn short_name(class: usize) -> &'static str {
    class_names().get(class).map(|n| n.split(',').next().unwrap_or(n)).unwrap_or("?")
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
    let images: Vec<Tensor> = (0..ds.len())
        .into_par_iter()
        .map(|i| preset.apply(&to_rgb(&ds.images.get(i)?)?))
        .collect::<Result<_>>()?;
    Tensor::stack(&images, 0)
}
