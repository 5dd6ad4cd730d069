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
        let path = path.as_ref();
        self.apply_named(&open_rgb(path)?, &path.display().to_string())
    }

    /// Applies the preset to a decoded RGB image.
    pub fn apply(&self, img: &RgbImage) -> Result<Tensor> {
        self.apply_named(img, "the image")
    }

    /// [`Preset::apply`], naming the image `what` in errors.
    fn apply_named(&self, img: &RgbImage, what: &str) -> Result<Tensor> {
        let (w, h) = img.dimensions();
        if w == 0 || h == 0 {
            return Err(error(format!("cannot preprocess {what}: it is empty ({w}x{h})")));
        }
        let (short, long) = (w.min(h) as u64, w.max(h) as u64);
        let scaled_long = self.resize as u64 * long / short;
        let (nw, nh) = if w <= h {
            (self.resize as u64, scaled_long)
        } else {
            (scaled_long, self.resize as u64)
        };
        // The resized image is allocated whole: an image elongated enough to need more than
        // MAX_PIXELS after resizing is refused (Pillow would fail the same allocation).
        if scaled_long.saturating_mul(self.resize as u64) > MAX_PIXELS {
            return Err(error(format!(
                "cannot preprocess {what}: it is {w}x{h}, and resizing its shorter side to {} \
                 would make it {nw}x{nh} pixels; crop it to a less elongated photo first",
                self.resize,
            )));
        }
        let (nw, nh) = (nw as u32, nh as u32);
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

/// The most pixels an image may have, decoded or after resizing: 64 megapixels (192 MB as RGB),
/// far above any photo of the notebooks and far below what would exhaust memory.
const MAX_PIXELS: u64 = 1 << 26;

/// Decodes an image file as RGB (grayscale, CMYK and alpha images are converted). The size its
/// header declares is checked before anything is decoded (at most [`MAX_PIXELS`]), and a JPEG
/// whose data ends before its end-of-image marker is an error (Pillow: "image file is
/// truncated"), as is any file the decoders reject.
pub fn open_rgb(path: &Path) -> Result<RgbImage> {
    let shown = path.display();
    if path.is_dir() {
        return Err(error(format!("{shown} is a folder, not an image file")));
    }
    let bytes =
        std::fs::read(path).map_err(|e| error(format!("cannot open image {shown}: {e}")))?;
    if bytes.starts_with(&[0xFF, 0xD8]) && !jpeg_complete(&bytes) {
        return Err(error(format!(
            "{shown} is a truncated JPEG (its data ends before the end-of-image marker); \
             download or copy it again"
        )));
    }
    let mut reader = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| error(format!("cannot read image {shown}: {e}")))?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_PIXELS * 4);
    reader.limits(limits.clone());
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| error(format!("{shown} is not a decodable image: {e}")))?;
    if w as u64 * h as u64 > MAX_PIXELS {
        return Err(error(format!(
            "{shown} is {w}x{h} pixels, more than the {MAX_PIXELS} this reader decodes; \
             resize it first"
        )));
    }
    let mut reader = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| error(format!("cannot read image {shown}: {e}")))?;
    reader.limits(limits);
    let img =
        reader.decode().map_err(|e| error(format!("{shown} is not a decodable image: {e}")))?;
    Ok(img.to_rgb8())
}

/// Whether a JPEG's data reaches its end-of-image marker: walks the segments to each scan, then
/// the scan's entropy-coded data (where a 0xFF byte is followed by 0x00 or a restart marker) to
/// the next marker; the file is complete when that marker is EOI (0xFFD9).
fn jpeg_complete(b: &[u8]) -> bool {
    let mut i = 2; // after SOI
    loop {
        // The next marker: 0xFF, optional fill bytes 0xFF, the code.
        while i < b.len() && b[i] != 0xFF {
            i += 1; // tolerate stray bytes between segments, as decoders do
        }
        while i < b.len() && b[i] == 0xFF {
            i += 1;
        }
        let Some(&code) = b.get(i) else { return false };
        i += 1;
        match code {
            0xD9 => return true,
            0x01 | 0xD0..=0xD7 => {}
            _ => {
                let Some(len) = b.get(i..i + 2).map(|l| u16::from_be_bytes([l[0], l[1]]) as usize)
                else {
                    return false;
                };
                i += len;
                if i > b.len() {
                    return false;
                }
                if code == 0xDA {
                    // Entropy-coded data up to the next marker that is not a restart.
                    loop {
                        while i < b.len() && b[i] != 0xFF {
                            i += 1;
                        }
                        match b.get(i + 1) {
                            None => return false,
                            Some(0x00) | Some(0xD0..=0xD7) => i += 2,
                            Some(_) => break,
                        }
                    }
                }
            }
        }
    }
}

/// ImageNet validation images with their labels (ImageNet-1k class indices in torchvision's
/// order: the sorted WordNet ids, `n01440764` "tench" = 0), from any of the usual layouts
/// ([`ValFolder::find`]): one folder per WordNet id (torchvision's `ImageFolder` / `ImageNet`,
/// `valprep.sh`), or a flat folder of `ILSVRC2012_val_XXXXXXXX.JPEG` files with a labels file.
#[derive(Clone, Debug)]
pub struct ValFolder {
    /// The image files, in label order.
    pub files: Vec<PathBuf>,
    /// Their ImageNet-1k class indices (torchvision's order).
    pub labels: Vec<usize>,
}

/// Whether `name` is a WordNet id (`n` and eight digits), as ImageNet's class folders are named.
fn is_wnid(name: &str) -> bool {
    name.len() == 9 && name.starts_with('n') && name[1..].bytes().all(|b| b.is_ascii_digit())
}

/// Whether `name` is an image file name the validation readers take.
fn is_image(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".jpeg") || lower.ends_with(".jpg") || lower.ends_with(".png")
}

impl ValFolder {
    /// The validation set in `dir`, whichever of the usual layouts it has:
    /// - one subfolder per WordNet id (`n01440764/`, ...), all 1000 of them: the class index is
    ///   the folder's rank in sorted order, as torchvision's `ImageFolder` numbers them;
    /// - a flat folder of images with `val_labels.txt` in it or beside it (the folder's parent):
    ///   `file label` per line, or one label per line for `ILSVRC2012_val_00000001.JPEG`, ...
    ///   (see [`ValFolder::open`]).
    ///
    /// [`crate::env::imagenet_val_dir`] says where the notebooks look (`$PLAYGROUND_IMAGENET_VAL`,
    /// else `imagenet/val` in the data folder).
    pub fn find(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let entries: Vec<std::fs::DirEntry> = std::fs::read_dir(dir)
            .map_err(|e| {
                error(format!(
                    "cannot read the ImageNet validation folder {}: {e}; set {} to the folder, or \
                     pass it to ValFolder::find",
                    dir.display(),
                    crate::env::IMAGENET_VAL_ENV
                ))
            })?
            .filter_map(|e| e.ok())
            .collect();
        let mut classes: Vec<String> = entries
            .iter()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_wnid(n))
            .collect();
        if !classes.is_empty() {
            classes.sort();
            return Self::from_class_folders(dir, &classes);
        }
        let candidates =
            [dir.join("val_labels.txt"), dir.parent().unwrap_or(dir).join("val_labels.txt")];
        match candidates.iter().find(|p| p.is_file()) {
            Some(labels) => Self::open(dir, labels),
            None => Err(error(format!(
                "{} has neither one folder per WordNet id (n01440764/, ...) nor a labels file \
                 ({} or {}): put the validation set in one of these layouts (labels in \
                 torchvision's class order)",
                dir.display(),
                candidates[0].display(),
                candidates[1].display()
            ))),
        }
    }

    fn from_class_folders(dir: &Path, classes: &[String]) -> Result<Self> {
        if classes.len() != 1000 {
            return Err(error(format!(
                "{} has {} WordNet-id folders ({} ... {}); the class indices are the ranks of all \
                 1000 ImageNet-1k ids in sorted order, so all 1000 folders must be there (empty \
                 ones are fine)",
                dir.display(),
                classes.len(),
                classes[0],
                classes[classes.len() - 1]
            )));
        }
        let (mut files, mut labels) = (Vec::new(), Vec::new());
        for (label, class) in classes.iter().enumerate() {
            let sub = dir.join(class);
            let mut names: Vec<PathBuf> = std::fs::read_dir(&sub)
                .map_err(|e| error(format!("cannot list {}: {e}", sub.display())))?
                .filter_map(|e| e.ok())
                .filter(|e| is_image(&e.file_name().to_string_lossy()))
                .map(|e| e.path())
                .collect();
            names.sort();
            labels.extend(std::iter::repeat_n(label, names.len()));
            files.extend(names);
        }
        if files.is_empty() {
            return Err(error(format!("the class folders of {} hold no images", dir.display())));
        }
        Ok(ValFolder { files, labels })
    }

    /// `dir` with a labels file that is either `file label` per line (any subset of the
    /// validation images) or one label per line for `ILSVRC2012_val_00000001.JPEG`, `..02`, ...
    /// (the full 50,000-image layout), told apart by the first line. Every listed file must
    /// exist and labels must be < 1000; with one label per line, every line must hold one label
    /// and their count must equal the folder's `.JPEG` files (a missing line would shift every
    /// later label).
    pub fn open(dir: impl AsRef<Path>, labels: impl AsRef<Path>) -> Result<Self> {
        let (dir, labels_path) = (dir.as_ref(), labels.as_ref());
        let list = labels_path.display();
        let text = std::fs::read_to_string(labels_path)
            .map_err(|e| error(format!("cannot read the labels file {list}: {e}")))?;
        let lines: Vec<&str> = text.trim_end().lines().map(str::trim).collect();
        // One label per line (the full 50,000-image layout) or `file label` per line.
        let per_line = lines.first().is_some_and(|l| l.split_whitespace().count() == 1);
        let (mut files, mut labels) = (Vec::new(), Vec::new());
        for (n, line) in lines.iter().enumerate() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (file, label) = match (per_line, fields.as_slice()) {
                (true, [l]) => (format!("ILSVRC2012_val_{:08}.JPEG", n + 1), *l),
                (false, [f, l]) => (f.to_string(), *l),
                (false, []) => continue,
                (true, _) => {
                    return Err(error(format!(
                        "{list} line {}: `{line}` is not one label, as the lines before it are \
                         (an empty or extra line would shift every later label); fix the list",
                        n + 1
                    )))
                }
                (false, _) => {
                    return Err(error(format!(
                        "{list} line {}: `{line}` is not `file label`, as the lines before it \
                         are; fix the list",
                        n + 1
                    )))
                }
            };
            let label: usize = label.parse().map_err(|_| {
                error(format!("{list} line {}: `{line}` has no integer label; fix the list", n + 1))
            })?;
            if label >= 1000 {
                return Err(error(format!(
                    "{list} line {}: label {label} is not an ImageNet-1k class (0..999, \
                     torchvision's class order); fix the list",
                    n + 1
                )));
            }
            let path = dir.join(&file);
            if !path.exists() {
                return Err(error(format!(
                    "{list} lists {file}, which is not in {}; fix the list or add the image",
                    dir.display()
                )));
            }
            files.push(path);
            labels.push(label);
        }
        if files.is_empty() {
            return Err(error(format!("{list} lists no images")));
        }
        if per_line {
            // As the original's loader checks: a missing line would shift every later label.
            let jpegs = std::fs::read_dir(dir)
                .map_err(|e| error(format!("cannot list {}: {e}", dir.display())))?
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().to_ascii_uppercase().ends_with(".JPEG"))
                .count();
            if jpegs != files.len() {
                return Err(error(format!(
                    "{list} has {} labels, one per line, but {} holds {jpegs} .JPEG files: a \
                     missing or extra line would shift every later label; fix the list (or use \
                     `file label` lines)",
                    files.len(),
                    dir.display()
                )));
            }
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
