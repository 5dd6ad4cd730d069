//! Data augmentation for image batches, as torchvision's `RandomCrop(size, padding)` +
//! `RandomHorizontalFlip()`: each image is padded by `pad` pixels of `fill` on every side, a
//! random `H x W` window is cut out, and it is mirrored left-right with probability 1/2.
//! Applied by [`crate::data::DataLoader`] to training batches (see `with_augmentation`).

use crate::rng::Rng;
use crate::{error, Result, Tensor};

/// Random crop after padding, then a random horizontal flip.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CropFlip {
    /// Padding on every side (4 for CIFAR-10).
    pub pad: usize,
    /// The padded pixels' value in the (normalised) data: torchvision pads the raw image with 0
    /// before `Normalize`, which is `-1` after CIFAR's `(x - 0.5) / 0.5`.
    pub fill: f32,
    /// Whether to flip (p = 0.5).
    pub flip: bool,
}

impl CropFlip {
    /// Augments a batch `(N, C, H, W)`; same shape out.
    pub fn apply(&self, images: &Tensor, rng: &mut Rng) -> Result<Tensor> {
        let (n, c, h, w) = images.dims4().map_err(|_| {
            error(format!("augmentation needs images (N, C, H, W), got {:?}", images.dims()))
        })?;
        let src = images.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let mut out = vec![self.fill; src.len()];
        let p = self.pad as isize;
        for i in 0..n {
            // Offsets of the window in the padded image, in 0..=2*pad.
            let dy = rng.below(2 * self.pad + 1) as isize - p;
            let dx = rng.below(2 * self.pad + 1) as isize - p;
            let flip = self.flip && rng.below(2) == 1;
            for ch in 0..c {
                let plane = (i * c + ch) * h * w;
                for y in 0..h {
                    let sy = y as isize + dy;
                    if sy < 0 || sy >= h as isize {
                        continue;
                    }
                    for x in 0..w {
                        let sx = x as isize + dx;
                        if sx < 0 || sx >= w as isize {
                            continue;
                        }
                        let ox = if flip { w - 1 - x } else { x };
                        out[plane + y * w + ox] = src[plane + sy as usize * w + sx as usize];
                    }
                }
            }
        }
        Tensor::from_vec(out, (n, c, h, w), images.device())
    }
}
