//! The ten CIFAR-10 networks of `CIFAR10_classification.ipynb`, trained from scratch on 32x32
//! RGB images, with the original's quirks reproduced (and named where they are):
//!
//! | model | parameters | quirk kept |
//! | --- | --- | --- |
//! | FCN | 12,332,010 | |
//! | LeNet5 | 83,126 | |
//! | AlexNet-style | 99,014 | |
//! | VGG1 | 2,105,562 | |
//! | VGG2 | 1,070,874 | forward uses conv2 twice, never conv4 (still counted) nor dropout3 |
//! | VGG3 | 602,010 | |
//! | ResNet_plain | 269,034 | no ReLU after conv0 |
//! | ResNet | 271,690 | global *max* pool; biased 1x1 projections (the printed count needs them) |
//! | Inception | 1,517,546 | |
//! | Inception2 | 1,119,818 | block 3 reuses block 2's stride-1 pool (same config: no effect) |
//!
//! Parameter names follow the original classes' attributes (`conv1.weight`, `dense1.bias`, ...)
//! for the custom networks, and `Sequential` indices for the others.

use crate::nn::functional::{adaptive_avg_pool2d, max_pool2d, relu, Pool2d};
use crate::nn::{dropout_rng, BatchNorm2d, Conv2d, Conv2dConfig, Dropout, Init, Linear, Model};
use crate::nn::{Params, Sequential};
use crate::rng::Rng;
use crate::{error, Result, Tensor};
use std::cell::RefCell;
use std::fmt;
use std::str::FromStr;

/// `Flatten -> Linear(3072, 4000) -> ReLU -> Dropout(0.5) -> Linear(4000, 10)`.
pub fn fcn(seed: u64) -> Result<Sequential> {
    Sequential::new("FCN")
        .flatten()
        .linear(3072, 4000)
        .relu()
        .dropout(0.5)
        .linear(4000, 10)
        .build(seed)
}

/// Two 5x5 conv + pool stages and three dense layers, dropout 0.2 throughout.
pub fn lenet5(seed: u64) -> Result<Sequential> {
    Sequential::new("LeNet5")
        .conv2d(3, 6, 5, 1, 2)
        .relu()
        .max_pool2d(2, 2, 0)
        .dropout(0.2)
        .conv2d(6, 16, 5, 1, 0)
        .relu()
        .max_pool2d(2, 2, 0)
        .dropout(0.2)
        .flatten()
        .linear(576, 120)
        .relu()
        .dropout(0.2)
        .linear(120, 84)
        .relu()
        .dropout(0.2)
        .linear(84, 10)
        .build(seed)
}

/// LeNet grown to five convolutions (7x7, 5x5, then three 3x3), AlexNet-style.
pub fn alexnet(seed: u64) -> Result<Sequential> {
    Sequential::new("AlexNet")
        .conv2d(3, 6, 7, 1, 3)
        .relu()
        .max_pool2d(2, 2, 0)
        .dropout(0.2)
        .conv2d(6, 16, 5, 1, 2)
        .relu()
        .max_pool2d(2, 2, 0)
        .dropout(0.2)
        .conv2d(16, 32, 3, 1, 1)
        .relu()
        .conv2d(32, 32, 3, 1, 1)
        .relu()
        .conv2d(32, 32, 3, 1, 1)
        .relu()
        .max_pool2d(2, 2, 0)
        .flatten()
        .linear(512, 120)
        .relu()
        .dropout(0.2)
        .linear(120, 84)
        .relu()
        .dropout(0.2)
        .linear(84, 10)
        .build(seed)
}

/// One VGG block (two 3x3 convs, pool, dropout 0.5) and a 512-unit dense layer.
pub fn vgg1(seed: u64) -> Result<Sequential> {
    Sequential::new("VGG1")
        .conv2d(3, 16, 3, 1, 1)
        .relu()
        .conv2d(16, 16, 3, 1, 1)
        .relu()
        .max_pool2d(2, 2, 0)
        .dropout(0.5)
        .flatten()
        .linear(4096, 512)
        .relu()
        .dropout(0.5)
        .linear(512, 10)
        .build(seed)
}

/// Three VGG blocks with (16, 16), (32, 32), (64, 64) channels.
pub fn vgg3(seed: u64) -> Result<Sequential> {
    let mut b = Sequential::new("VGG3");
    for (i, o) in [(3, 16), (16, 32), (32, 64)] {
        b = b
            .conv2d(i, o, 3, 1, 1)
            .relu()
            .conv2d(o, o, 3, 1, 1)
            .relu()
            .max_pool2d(2, 2, 0)
            .dropout(0.5);
    }
    b.flatten().linear(1024, 512).relu().dropout(0.5).linear(512, 10).build(seed)
}

/// The CIFAR ResNet-20 layout (n = 3) without skip connections: conv0 (no ReLU), 3 x 6 convs
/// with 16 / 32 / 64 channels (stride 2 at each change), global average pool, Linear(64, 10).
pub fn resnet_plain(seed: u64) -> Result<Sequential> {
    let mut b = Sequential::new("ResNet_plain").conv2d(3, 16, 3, 1, 1);
    let mut cin = 16;
    for cout in [16, 32, 64] {
        for j in 0..6 {
            b = b.conv2d(cin, cout, 3, if j == 0 && cout != 16 { 2 } else { 1 }, 1).relu();
            cin = cout;
        }
    }
    b.avg_pool2d(8, 8, 0).flatten().linear(64, 10).build(seed)
}

/// Shared plumbing of the hand-written networks: their [`Init`] on [`crate::env::device`].
struct Parts {
    init: Init,
}

impl Parts {
    fn new(seed: u64) -> Result<Self> {
        Ok(Parts { init: Init::new(seed, &crate::env::device()?) })
    }
    fn conv(
        &mut self,
        name: &str,
        cin: usize,
        cout: usize,
        k: usize,
        cfg: Conv2dConfig,
    ) -> Result<Conv2d> {
        Conv2d::new(&mut self.init, name, cin, cout, (k, k), cfg)
    }
    /// A convolution + ReLU, with BatchNorm (`{name}_bn`) and no conv bias when `bn`.
    fn unit(
        &mut self,
        name: &str,
        (cin, cout): (usize, usize),
        k: usize,
        (stride, padding): (usize, usize),
        bn: bool,
    ) -> Result<Unit> {
        let conv = self.conv(name, cin, cout, k, Conv2dConfig { stride, padding, bias: !bn })?;
        let bn = if bn {
            Some(BatchNorm2d::new(&mut self.init, &format!("{name}_bn"), cout, 1e-5)?)
        } else {
            None
        };
        Ok(Unit { conv, bn })
    }
    fn linear(&mut self, name: &str, i: usize, o: usize) -> Result<Linear> {
        Linear::new(&mut self.init, name, i, o)
    }
}

/// `Conv2dConfig` with a bias, `stride` and `padding`.
fn cfg(stride: usize, padding: usize) -> Conv2dConfig {
    Conv2dConfig { stride, padding, bias: true }
}

fn drop(x: &Tensor, p: f32, train: bool, rng: &RefCell<Rng>) -> Result<Tensor> {
    Dropout { p }.forward_t(x, train, rng)
}

/// VGG2 exactly as the original's forward runs it: conv1, conv2, pool, dropout1, **conv2
/// again**, conv3, pool, dropout2, dense1, **dropout2 again**, dense2. `conv4` and `dropout3`
/// exist (conv4's 9,248 parameters are in the count) but are never used.
pub struct Vgg2 {
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv2d,
    #[allow(dead_code)]
    conv4: Conv2d,
    dense1: Linear,
    dense2: Linear,
    params: Params,
    dropout_rng: RefCell<Rng>,
}

impl Vgg2 {
    /// The original's VGG2 (1,070,874 parameters) with PyTorch's default init from `seed`.
    pub fn new(seed: u64) -> Result<Self> {
        let mut p = Parts::new(seed)?;
        Ok(Vgg2 {
            conv1: p.conv("conv1", 3, 16, 3, cfg(1, 1))?,
            conv2: p.conv("conv2", 16, 16, 3, cfg(1, 1))?,
            conv3: p.conv("conv3", 16, 32, 3, cfg(1, 1))?,
            conv4: p.conv("conv4", 32, 32, 3, cfg(1, 1))?,
            dense1: p.linear("dense1", 2048, 512)?,
            dense2: p.linear("dense2", 512, 10)?,
            params: p.init.finish(),
            dropout_rng: dropout_rng(seed),
        })
    }
}

impl Model for Vgg2 {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.params().fence()?;
        let pool = Pool2d::new(2, 2, 0);
        let x = self.conv2.forward_relu(&self.conv1.forward_relu(x)?)?;
        let x = drop(&max_pool2d(&x, pool)?, 0.5, train, &self.dropout_rng)?;
        // conv2 again (the original's slip)
        let x = self.conv3.forward_relu(&self.conv2.forward_relu(&x)?)?;
        let x = drop(&max_pool2d(&x, pool)?, 0.5, train, &self.dropout_rng)?.flatten_from(1)?;
        // dropout2 again
        let x = drop(&relu(&self.dense1.forward(&x)?)?, 0.5, train, &self.dropout_rng)?;
        self.dense2.forward(&x)
    }
    fn params(&self) -> &Params {
        &self.params
    }
    fn dropout_rng(&self) -> Option<&RefCell<Rng>> {
        Some(&self.dropout_rng)
    }
}

/// The CIFAR ResNet-20 layout with identity skips every two convs and 1x1 stride-2 projections
/// (`res1`, `res2`, with bias: the original's printed 271,690 parameters need it). As the
/// original: no ReLU after conv0, global **max** pooling before the classifier.
///
/// `ResNet_BN` ([`ResNet::with_batch_norm`]) is the standard ResNet-20 of He et al. for the
/// notebook's modern-recipe section: BatchNorm after every convolution (projections included,
/// no conv biases), ReLU after conv0, global *average* pooling.
pub struct ResNet {
    conv0: Unit,
    convs: Vec<Unit>,
    res1: Unit,
    res2: Unit,
    fc: Linear,
    params: Params,
    bn: bool,
}

impl ResNet {
    /// The original's residual network (271,690 parameters) with PyTorch's default
    /// init from `seed`.
    pub fn new(seed: u64) -> Result<Self> {
        ResNet::build(seed, false)
    }

    /// 272,474 parameters: the 784 conv biases replaced by 2 x 784 BatchNorm weights and shifts.
    pub fn with_batch_norm(seed: u64) -> Result<Self> {
        ResNet::build(seed, true)
    }

    fn build(seed: u64, bn: bool) -> Result<Self> {
        let mut p = Parts::new(seed)?;
        let conv0 = p.unit("conv0", (3, 16), 3, (1, 1), bn)?;
        let mut convs = Vec::with_capacity(18);
        let mut cin = 16;
        for (stage, cout) in [16, 32, 64].into_iter().enumerate() {
            for j in 0..6 {
                let stride = if j == 0 && stage > 0 { 2 } else { 1 };
                convs.push(p.unit(
                    &format!("conv{}{}", stage + 1, j + 1),
                    (cin, cout),
                    3,
                    (stride, 1),
                    bn,
                )?);
                cin = cout;
            }
        }
        let res1 = p.unit("res1", (16, 32), 1, (2, 0), bn)?;
        let res2 = p.unit("res2", (32, 64), 1, (2, 0), bn)?;
        let fc = p.linear("fc", 64, 10)?;
        Ok(ResNet { conv0, convs, res1, res2, fc, params: p.init.finish(), bn })
    }
}

impl Model for ResNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.params().fence()?;
        let mut x = if self.bn {
            self.conv0.forward(x, train)?
        } else {
            self.conv0.forward_linear(x, train)?
        };
        for stage in 0..3 {
            let skip = match stage {
                0 => x.clone(),
                1 => self.res1.forward_linear(&x, train)?,
                _ => self.res2.forward_linear(&x, train)?,
            };
            for k in 0..3 {
                let c = &self.convs[stage * 6 + 2 * k..];
                let h = c[0].forward(&x, train)?;
                let shortcut = if k == 0 { &skip } else { &x };
                x = relu(&(c[1].forward_linear(&h, train)? + shortcut)?)?;
            }
        }
        let pooled = if self.bn {
            adaptive_avg_pool2d(&x, (1, 1))?
        } else {
            max_pool2d(&x, Pool2d::new(8, 8, 0))?
        };
        self.fc.forward(&pooled.flatten_from(1)?)
    }
    fn params(&self) -> &Params {
        &self.params
    }
}

/// A convolution followed by ReLU, with a BatchNorm between them in the modern-recipe variants
/// ([`Inception::v1_bn`], [`ResNet::with_batch_norm`]; their convolutions then have no bias,
/// which BatchNorm's shift replaces).
struct Unit {
    conv: Conv2d,
    bn: Option<BatchNorm2d>,
}

impl Unit {
    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match &self.bn {
            Some(bn) => bn.forward_relu_t(&self.conv.forward(x)?, train),
            None => self.conv.forward_relu(x),
        }
    }

    /// The same without the ReLU (before a residual sum, or the original ResNet's conv0).
    fn forward_linear(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match &self.bn {
            Some(bn) => bn.forward_t(&self.conv.forward(x)?, train),
            None => self.conv.forward(x),
        }
    }
}

/// One inception branch: an optional 1x1 reduction (or, for the pool branch, a projection
/// after the pool), then the main conv.
struct Branch {
    reduce: Option<Unit>,
    conv: Option<Unit>,
    pool_first: bool,
}

impl Branch {
    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut x = if self.pool_first { max_pool2d(x, Pool2d::new(3, 1, 1))? } else { x.clone() };
        if let Some(r) = &self.reduce {
            x = r.forward(&x, train)?;
        }
        if let Some(c) = &self.conv {
            x = c.forward(&x, train)?;
        }
        Ok(x)
    }
}

/// The two GoogLeNet-style networks: parallel 1x1 / 3x3 / 5x5 convolutions and a 3x3 max pool,
/// concatenated along the channels in that order, each block followed by a 3x3 stride-2 max
/// pool; ReLU after every convolution; then Linear -> ReLU -> Dropout(0.5) -> Linear(256, 10).
/// `Inception` has two blocks without reductions, `Inception2` three blocks with 1x1
/// reductions in the last two.
pub struct Inception {
    name: &'static str,
    stem: Unit,
    blocks: Vec<Vec<Branch>>,
    fc1: Linear,
    fc2: Linear,
    params: Params,
    /// Dropout before the last layer: 0.5 as the original, 0 in `Inception_BN` (BatchNorm and
    /// the augmentation regularise; with dropout too the 25-epoch run underfits, 0.834 val).
    head_dropout: f32,
    dropout_rng: RefCell<Rng>,
}

impl Inception {
    /// The first network (1,517,546 parameters): blocks 16 -> 112 -> 304 channels.
    pub fn v1(seed: u64) -> Result<Self> {
        Inception::first("Inception", seed, false)
    }

    /// [`Inception::v1`] with BatchNorm after every convolution (convolutions without bias):
    /// the architecture of the notebook's modern-recipe section (1,517,850 parameters: the 304 conv
    /// biases replaced by 608 BatchNorm weights and shifts).
    /// No dropout in the head (see `head_dropout`).
    pub fn v1_bn(seed: u64) -> Result<Self> {
        Inception::first("Inception_BN", seed, true)
    }

    fn first(name: &'static str, seed: u64, bn: bool) -> Result<Self> {
        let mut p = Parts::new(seed)?;
        let stem = p.unit("stem", (3, 16), 3, (1, 1), bn)?;
        let mut blocks = Vec::new();
        for (b, (cin, cout)) in [(16, 32), (112, 64)].into_iter().enumerate() {
            let n = |s: &str| format!("block{}.{s}", b + 1);
            blocks.push(vec![
                Branch {
                    reduce: None,
                    conv: Some(p.unit(&n("conv1x1"), (cin, cout), 1, (1, 0), bn)?),
                    pool_first: false,
                },
                Branch {
                    reduce: None,
                    conv: Some(p.unit(&n("conv3x3"), (cin, cout), 3, (1, 1), bn)?),
                    pool_first: false,
                },
                Branch {
                    reduce: None,
                    conv: Some(p.unit(&n("conv5x5"), (cin, cout), 5, (1, 2), bn)?),
                    pool_first: false,
                },
                Branch { reduce: None, conv: None, pool_first: true },
            ]);
        }
        let fc1 = p.linear("fc1", 304 * 4 * 4, 256)?;
        let fc2 = p.linear("fc2", 256, 10)?;
        let head_dropout = if bn { 0.0 } else { 0.5 };
        Ok(Inception {
            name,
            stem,
            blocks,
            fc1,
            fc2,
            params: p.init.finish(),
            head_dropout,
            dropout_rng: dropout_rng(seed),
        })
    }

    /// The second network (1,119,818 parameters): block 1 as above but 16 5x5 filters (96
    /// channels out), blocks 2 and 3 with 1x1 reductions and pool projections (288, 544).
    pub fn v2(seed: u64) -> Result<Self> {
        let mut p = Parts::new(seed)?;
        let stem = p.unit("stem", (3, 16), 3, (1, 1), false)?;
        let block1 = vec![
            Branch {
                reduce: None,
                conv: Some(p.unit("block1.conv1x1", (16, 32), 1, (1, 0), false)?),
                pool_first: false,
            },
            Branch {
                reduce: None,
                conv: Some(p.unit("block1.conv3x3", (16, 32), 3, (1, 1), false)?),
                pool_first: false,
            },
            Branch {
                reduce: None,
                conv: Some(p.unit("block1.conv5x5", (16, 16), 5, (1, 2), false)?),
                pool_first: false,
            },
            Branch { reduce: None, conv: None, pool_first: true },
        ];
        let mut blocks = vec![block1];
        // (in, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection)
        for (b, (cin, c1, r3, c3, r5, c5, pp)) in
            [(96, 64, 64, 128, 16, 32, 64), (288, 128, 128, 256, 32, 32, 128)]
                .into_iter()
                .enumerate()
        {
            let n = |s: &str| format!("block{}.{s}", b + 2);
            blocks.push(vec![
                Branch {
                    reduce: None,
                    conv: Some(p.unit(&n("conv1x1"), (cin, c1), 1, (1, 0), false)?),
                    pool_first: false,
                },
                Branch {
                    reduce: Some(p.unit(&n("reduce3x3"), (cin, r3), 1, (1, 0), false)?),
                    conv: Some(p.unit(&n("conv3x3"), (r3, c3), 3, (1, 1), false)?),
                    pool_first: false,
                },
                Branch {
                    reduce: Some(p.unit(&n("reduce5x5"), (cin, r5), 1, (1, 0), false)?),
                    conv: Some(p.unit(&n("conv5x5"), (r5, c5), 5, (1, 2), false)?),
                    pool_first: false,
                },
                Branch {
                    reduce: Some(p.unit(&n("pool_proj"), (cin, pp), 1, (1, 0), false)?),
                    conv: None,
                    pool_first: true,
                },
            ]);
        }
        let fc1 = p.linear("fc1", 544 * 2 * 2, 256)?;
        let fc2 = p.linear("fc2", 256, 10)?;
        Ok(Inception {
            name: "Inception2",
            stem,
            blocks,
            fc1,
            fc2,
            params: p.init.finish(),
            head_dropout: 0.5,
            dropout_rng: dropout_rng(seed),
        })
    }

    /// The notebook's name of the network ("Inception", "Inception2", "Inception_BN").
    pub fn name(&self) -> &str {
        self.name
    }
}

impl Model for Inception {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.params().fence()?;
        let down = Pool2d::new(3, 2, 1);
        let mut x = max_pool2d(&self.stem.forward(x, train)?, down)?;
        for block in &self.blocks {
            let outs = block.iter().map(|b| b.forward(&x, train)).collect::<Result<Vec<_>>>()?;
            x = max_pool2d(&Tensor::cat(&outs, 1)?, down)?;
        }
        let x = x.flatten_from(1)?;
        if x.dim(1)? != self.fc1.in_features {
            return Err(error(format!(
                "{} expects 3x32x32 images: got {} features before the classifier",
                self.name,
                x.dim(1)?
            )));
        }
        let x = drop(&relu(&self.fc1.forward(&x)?)?, self.head_dropout, train, &self.dropout_rng)?;
        self.fc2.forward(&x)
    }
    fn params(&self) -> &Params {
        &self.params
    }
    fn dropout_rng(&self) -> Option<&RefCell<Rng>> {
        Some(&self.dropout_rng)
    }
}

/// The networks of the CIFAR-10 notebook by name: the original's ten, in its order
/// ([`CifarModel::ALL`]), and the two of its modern-recipe section ([`CifarModel::MODERN`]).
/// `"VGG2".parse::<CifarModel>()` and `CifarModel::Vgg2.to_string()` use the notebook's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CifarModel {
    /// `FCN`: flatten, one hidden layer of 4,000 units, dropout.
    Fcn,
    /// `LeNet5`: two 5x5 convolution + pool stages, three dense layers.
    LeNet5,
    /// `AlexNet`: five convolutions (7x7, 5x5, three 3x3), three dense layers.
    AlexNet,
    /// `VGG1`: one VGG block.
    Vgg1,
    /// `VGG2`: two VGG blocks as the original's forward runs them (its slips kept).
    Vgg2,
    /// `VGG3`: three VGG blocks.
    Vgg3,
    /// `ResNet_plain`: the 20-layer CIFAR ResNet layout without skip connections.
    ResNetPlain,
    /// `ResNet`: the same with its skips (the original's variant: global max pool).
    ResNet,
    /// `Inception`: two Inception blocks without reductions.
    Inception,
    /// `Inception2`: three Inception blocks, the last two with 1x1 reductions.
    Inception2,
    /// `Inception_BN`: `Inception` with BatchNorm, for the modern recipe.
    InceptionBn,
    /// `ResNet_BN`: the standard ResNet-20 of He et al. (BatchNorm), for the modern recipe.
    ResNetBn,
}

/// How a CIFAR network is trained in the notebook (see `recipes::cifar`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recipe {
    /// The original's: Adam at [`CifarModel::learning_rate`], cross-entropy, no augmentation.
    Original,
    /// The modern-recipe section's: crop + flip, one-cycle Adam peaking at
    /// [`CifarModel::learning_rate`], label smoothing 0.1.
    Modern,
}

impl CifarModel {
    /// The original notebook's ten networks, in its order.
    pub const ALL: [CifarModel; 10] = [
        CifarModel::Fcn,
        CifarModel::LeNet5,
        CifarModel::AlexNet,
        CifarModel::Vgg1,
        CifarModel::Vgg2,
        CifarModel::Vgg3,
        CifarModel::ResNetPlain,
        CifarModel::ResNet,
        CifarModel::Inception,
        CifarModel::Inception2,
    ];

    /// The modern-recipe section's two networks.
    pub const MODERN: [CifarModel; 2] = [CifarModel::InceptionBn, CifarModel::ResNetBn];

    /// The name the notebook gives it ("ResNet_plain", ...).
    pub fn name(self) -> &'static str {
        match self {
            CifarModel::Fcn => "FCN",
            CifarModel::LeNet5 => "LeNet5",
            CifarModel::AlexNet => "AlexNet",
            CifarModel::Vgg1 => "VGG1",
            CifarModel::Vgg2 => "VGG2",
            CifarModel::Vgg3 => "VGG3",
            CifarModel::ResNetPlain => "ResNet_plain",
            CifarModel::ResNet => "ResNet",
            CifarModel::Inception => "Inception",
            CifarModel::Inception2 => "Inception2",
            CifarModel::InceptionBn => "Inception_BN",
            CifarModel::ResNetBn => "ResNet_BN",
        }
    }

    /// How the notebook trains it.
    pub fn recipe(self) -> Recipe {
        match self {
            CifarModel::InceptionBn | CifarModel::ResNetBn => Recipe::Modern,
            _ => Recipe::Original,
        }
    }

    /// The learning rate of its recipe: the original's Adam rate (5e-4 for the two ResNets, 1e-3
    /// for the others), or the peak of the modern recipe's one-cycle schedule (2e-3; 4e-3 was
    /// too high for Inception_BN: the training loss stalled while the rate rose past ~2.5e-3,
    /// 0.834 validation accuracy).
    pub fn learning_rate(self) -> f64 {
        match self {
            CifarModel::ResNetPlain | CifarModel::ResNet => 5e-4,
            CifarModel::InceptionBn | CifarModel::ResNetBn => 2e-3,
            _ => 1e-3,
        }
    }

    /// The network with PyTorch's default init drawn from `seed`, on [`crate::env::device`].
    pub fn build(self, seed: u64) -> Result<CifarNet> {
        let net = match self {
            CifarModel::Fcn => Net::Sequential(fcn(seed)?),
            CifarModel::LeNet5 => Net::Sequential(lenet5(seed)?),
            CifarModel::AlexNet => Net::Sequential(alexnet(seed)?),
            CifarModel::Vgg1 => Net::Sequential(vgg1(seed)?),
            CifarModel::Vgg2 => Net::Vgg2(Vgg2::new(seed)?),
            CifarModel::Vgg3 => Net::Sequential(vgg3(seed)?),
            CifarModel::ResNetPlain => Net::Sequential(resnet_plain(seed)?),
            CifarModel::ResNet => Net::ResNet(ResNet::new(seed)?),
            CifarModel::Inception => Net::Inception(Inception::v1(seed)?),
            CifarModel::Inception2 => Net::Inception(Inception::v2(seed)?),
            CifarModel::InceptionBn => Net::Inception(Inception::v1_bn(seed)?),
            CifarModel::ResNetBn => Net::ResNet(ResNet::with_batch_norm(seed)?),
        };
        Ok(CifarNet { kind: self, net })
    }
}

impl fmt::Display for CifarModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CifarModel {
    type Err = crate::Error;

    /// The notebook's name of a network ("VGG2", "ResNet_plain", "Inception_BN", ...).
    fn from_str(name: &str) -> Result<Self> {
        let all = CifarModel::ALL.iter().chain(&CifarModel::MODERN);
        if let Some(m) = all.clone().find(|m| m.name() == name) {
            return Ok(*m);
        }
        let names: Vec<&str> = all.map(|m| m.name()).collect();
        Err(error(format!("no CIFAR model called `{name}`; the models are {}", names.join(", "))))
    }
}

/// A built CIFAR network and which one it is: a concrete type (no `Box<dyn Model>`) on purpose.
/// In evcxr every cell links its own copy of candle; a trait object built in one cell would run
/// its forward pass with that cell's tensor-id counter while the training cell uses its own, and
/// the two number their tensors alike (backward then mixes gradients up). An enum's methods
/// compile into the cell that calls them.
pub struct CifarNet {
    kind: CifarModel,
    net: Net,
}

enum Net {
    Sequential(Sequential),
    Vgg2(Vgg2),
    ResNet(ResNet),
    Inception(Inception),
}

impl CifarNet {
    /// Which network this is.
    pub fn kind(&self) -> CifarModel {
        self.kind
    }
}

impl Model for CifarNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        // Each network fences in its own forward pass.
        match &self.net {
            Net::Sequential(m) => m.forward_t(x, train),
            Net::Vgg2(m) => m.forward_t(x, train),
            Net::ResNet(m) => m.forward_t(x, train),
            Net::Inception(m) => m.forward_t(x, train),
        }
    }

    fn params(&self) -> &Params {
        match &self.net {
            Net::Sequential(m) => m.params(),
            Net::Vgg2(m) => m.params(),
            Net::ResNet(m) => m.params(),
            Net::Inception(m) => m.params(),
        }
    }

    fn dropout_rng(&self) -> Option<&RefCell<Rng>> {
        match &self.net {
            Net::Sequential(m) => m.dropout_rng(),
            Net::Vgg2(m) => m.dropout_rng(),
            Net::ResNet(m) => m.dropout_rng(),
            Net::Inception(m) => m.dropout_rng(),
        }
    }
}
