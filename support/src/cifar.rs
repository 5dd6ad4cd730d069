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

use crate::act::ReLU;
use crate::nn::{dropout, dropout_stream, BatchNorm2d, Conv2d, Linear, Model, Params, Sequential};
use crate::pool::{max_pool2d, Pool2d};
use crate::rng::Rng;
use crate::{error, Device, Result, Tensor};
use std::cell::RefCell;

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

/// Shared plumbing of the hand-written networks: parameters, init stream, dropout stream.
struct Parts {
    params: Params,
    rng: Rng,
    device: Device,
}

impl Parts {
    /// On [`crate::device`] (the CPU unless `PLAYGROUND_DEVICE` says otherwise).
    fn new(seed: u64) -> Result<Self> {
        crate::tune_allocator();
        Ok(Parts { params: Params::new(), rng: Rng::new(seed), device: crate::device()? })
    }
    fn conv(
        &mut self,
        name: &str,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        pad: usize,
    ) -> Result<Conv2d> {
        Conv2d::new(
            &mut self.params,
            name,
            cin,
            cout,
            (k, k),
            stride,
            pad,
            true,
            &mut self.rng,
            &self.device,
        )
    }
    /// A convolution + ReLU, with BatchNorm (`{name}_bn`) and no conv bias when `bn`.
    #[allow(clippy::too_many_arguments)]
    fn unit(
        &mut self,
        name: &str,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        pad: usize,
        bn: bool,
    ) -> Result<Unit> {
        if !bn {
            return Ok(Unit { conv: self.conv(name, cin, cout, k, stride, pad)?, bn: None });
        }
        let conv = Conv2d::new(
            &mut self.params,
            name,
            cin,
            cout,
            (k, k),
            stride,
            pad,
            false,
            &mut self.rng,
            &self.device,
        )?;
        Ok(Unit {
            conv,
            bn: Some(BatchNorm2d::new(
                &mut self.params,
                &format!("{name}_bn"),
                cout,
                1e-5,
                &self.device,
            )?),
        })
    }
    fn linear(&mut self, name: &str, i: usize, o: usize) -> Result<Linear> {
        Linear::new(&mut self.params, name, i, o, true, &mut self.rng, &self.device)
    }
}

fn drop(x: &Tensor, p: f32, train: bool, rng: &RefCell<Rng>) -> Result<Tensor> {
    if train {
        dropout(x, p, &mut rng.borrow_mut())
    } else {
        Ok(x.clone())
    }
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
    pub fn new(seed: u64) -> Result<Self> {
        let mut p = Parts::new(seed)?;
        Ok(Vgg2 {
            conv1: p.conv("conv1", 3, 16, 3, 1, 1)?,
            conv2: p.conv("conv2", 16, 16, 3, 1, 1)?,
            conv3: p.conv("conv3", 16, 32, 3, 1, 1)?,
            conv4: p.conv("conv4", 32, 32, 3, 1, 1)?,
            dense1: p.linear("dense1", 2048, 512)?,
            dense2: p.linear("dense2", 512, 10)?,
            params: p.params,
            dropout_rng: dropout_stream(seed),
        })
    }
}

impl Model for Vgg2 {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let pool = Pool2d::new(2, 2, 0);
        let x = self.conv2.forward_relu(&self.conv1.forward_relu(x)?)?;
        let x = drop(&max_pool2d(&x, pool)?, 0.5, train, &self.dropout_rng)?;
        let x = self.conv3.forward_relu(&self.conv2.forward_relu(&x)?)?; // conv2 again (original's bug)
        let x = drop(&max_pool2d(&x, pool)?, 0.5, train, &self.dropout_rng)?.flatten_from(1)?;
        let x = drop(&self.dense1.forward(&x)?.apply(&ReLU)?, 0.5, train, &self.dropout_rng)?; // dropout2 again
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
    pub fn new(seed: u64) -> Result<Self> {
        ResNet::build(seed, false)
    }

    /// 272,474 parameters: the 784 conv biases replaced by 2 x 784 BatchNorm weights and shifts.
    pub fn with_batch_norm(seed: u64) -> Result<Self> {
        ResNet::build(seed, true)
    }

    fn build(seed: u64, bn: bool) -> Result<Self> {
        let mut p = Parts::new(seed)?;
        let conv0 = p.unit("conv0", 3, 16, 3, 1, 1, bn)?;
        let mut convs = Vec::with_capacity(18);
        let mut cin = 16;
        for (stage, cout) in [16, 32, 64].into_iter().enumerate() {
            for j in 0..6 {
                let stride = if j == 0 && stage > 0 { 2 } else { 1 };
                convs.push(p.unit(
                    &format!("conv{}{}", stage + 1, j + 1),
                    cin,
                    cout,
                    3,
                    stride,
                    1,
                    bn,
                )?);
                cin = cout;
            }
        }
        let res1 = p.unit("res1", 16, 32, 1, 2, 0, bn)?;
        let res2 = p.unit("res2", 32, 64, 1, 2, 0, bn)?;
        let fc = p.linear("fc", 64, 10)?;
        Ok(ResNet { conv0, convs, res1, res2, fc, params: p.params, bn })
    }
}

impl Model for ResNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
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
                x = (c[1].forward_linear(&h, train)? + shortcut)?.apply(&ReLU)?;
            }
        }
        let pooled = if self.bn {
            crate::pool::adaptive_avg_pool2d(&x, (1, 1))?
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
    /// the architecture of the notebook's modern-recipe section (1,517,850 parameters: the 304 conv biases replaced by 608 BatchNorm weights and shifts).
    /// No dropout in the head (see `head_dropout`).
    pub fn v1_bn(seed: u64) -> Result<Self> {
        Inception::first("Inception_BN", seed, true)
    }

    fn first(name: &'static str, seed: u64, bn: bool) -> Result<Self> {
        let mut p = Parts::new(seed)?;
        let stem = p.unit("stem", 3, 16, 3, 1, 1, bn)?;
        let mut blocks = Vec::new();
        for (b, (cin, cout)) in [(16, 32), (112, 64)].into_iter().enumerate() {
            let n = |s: &str| format!("block{}.{s}", b + 1);
            blocks.push(vec![
                Branch {
                    reduce: None,
                    conv: Some(p.unit(&n("conv1x1"), cin, cout, 1, 1, 0, bn)?),
                    pool_first: false,
                },
                Branch {
                    reduce: None,
                    conv: Some(p.unit(&n("conv3x3"), cin, cout, 3, 1, 1, bn)?),
                    pool_first: false,
                },
                Branch {
                    reduce: None,
                    conv: Some(p.unit(&n("conv5x5"), cin, cout, 5, 1, 2, bn)?),
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
            params: p.params,
            head_dropout,
            dropout_rng: dropout_stream(seed),
        })
    }

    /// The second network (1,119,818 parameters): block 1 as above but 16 5x5 filters (96
    /// channels out), blocks 2 and 3 with 1x1 reductions and pool projections (288, 544).
    pub fn v2(seed: u64) -> Result<Self> {
        let mut p = Parts::new(seed)?;
        let stem = p.unit("stem", 3, 16, 3, 1, 1, false)?;
        let block1 = vec![
            Branch {
                reduce: None,
                conv: Some(p.unit("block1.conv1x1", 16, 32, 1, 1, 0, false)?),
                pool_first: false,
            },
            Branch {
                reduce: None,
                conv: Some(p.unit("block1.conv3x3", 16, 32, 3, 1, 1, false)?),
                pool_first: false,
            },
            Branch {
                reduce: None,
                conv: Some(p.unit("block1.conv5x5", 16, 16, 5, 1, 2, false)?),
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
                    conv: Some(p.unit(&n("conv1x1"), cin, c1, 1, 1, 0, false)?),
                    pool_first: false,
                },
                Branch {
                    reduce: Some(p.unit(&n("reduce3x3"), cin, r3, 1, 1, 0, false)?),
                    conv: Some(p.unit(&n("conv3x3"), r3, c3, 3, 1, 1, false)?),
                    pool_first: false,
                },
                Branch {
                    reduce: Some(p.unit(&n("reduce5x5"), cin, r5, 1, 1, 0, false)?),
                    conv: Some(p.unit(&n("conv5x5"), r5, c5, 5, 1, 2, false)?),
                    pool_first: false,
                },
                Branch {
                    reduce: Some(p.unit(&n("pool_proj"), cin, pp, 1, 1, 0, false)?),
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
            params: p.params,
            head_dropout: 0.5,
            dropout_rng: dropout_stream(seed),
        })
    }

    pub fn name(&self) -> &str {
        self.name
    }
}

impl Model for Inception {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
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
        let x = drop(
            &self.fc1.forward(&x)?.apply(&ReLU)?,
            self.head_dropout,
            train,
            &self.dropout_rng,
        )?;
        self.fc2.forward(&x)
    }
    fn params(&self) -> &Params {
        &self.params
    }
    fn dropout_rng(&self) -> Option<&RefCell<Rng>> {
        Some(&self.dropout_rng)
    }
}

/// One of the ten networks: a concrete type (no `Box<dyn Model>`) on purpose. In evcxr every
/// cell links its own copy of candle; a trait object built in one cell would run its forward
/// pass with that cell's tensor-id counter while the training cell uses its own, and the two
/// number their tensors alike (backward then mixes gradients up). An enum's methods compile
/// into the cell that calls them.
pub enum CifarNet {
    Sequential(Sequential),
    Vgg2(Vgg2),
    ResNet(ResNet),
    Inception(Inception),
}

impl Model for CifarNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match self {
            CifarNet::Sequential(m) => m.forward_t(x, train),
            CifarNet::Vgg2(m) => m.forward_t(x, train),
            CifarNet::ResNet(m) => m.forward_t(x, train),
            CifarNet::Inception(m) => m.forward_t(x, train),
        }
    }

    fn params(&self) -> &Params {
        match self {
            CifarNet::Sequential(m) => m.params(),
            CifarNet::Vgg2(m) => m.params(),
            CifarNet::ResNet(m) => m.params(),
            CifarNet::Inception(m) => m.params(),
        }
    }

    fn dropout_rng(&self) -> Option<&RefCell<Rng>> {
        match self {
            CifarNet::Sequential(m) => m.dropout_rng(),
            CifarNet::Vgg2(m) => m.dropout_rng(),
            CifarNet::ResNet(m) => m.dropout_rng(),
            CifarNet::Inception(m) => m.dropout_rng(),
        }
    }
}

/// Every model of the notebook by its name there: FCN, LeNet5, AlexNet, VGG1, VGG2, VGG3,
/// ResNet_plain, ResNet, Inception, Inception2; and Inception_BN and ResNet_BN, the
/// modern-recipe section's.
pub fn build(name: &str, seed: u64) -> Result<CifarNet> {
    Ok(match name {
        "FCN" => CifarNet::Sequential(fcn(seed)?),
        "LeNet5" => CifarNet::Sequential(lenet5(seed)?),
        "AlexNet" => CifarNet::Sequential(alexnet(seed)?),
        "VGG1" => CifarNet::Sequential(vgg1(seed)?),
        "VGG2" => CifarNet::Vgg2(Vgg2::new(seed)?),
        "VGG3" => CifarNet::Sequential(vgg3(seed)?),
        "ResNet_plain" => CifarNet::Sequential(resnet_plain(seed)?),
        "ResNet" => CifarNet::ResNet(ResNet::new(seed)?),
        "Inception" => CifarNet::Inception(Inception::v1(seed)?),
        "Inception2" => CifarNet::Inception(Inception::v2(seed)?),
        "Inception_BN" => CifarNet::Inception(Inception::v1_bn(seed)?),
        "ResNet_BN" => CifarNet::ResNet(ResNet::with_batch_norm(seed)?),
        other => {
            return Err(error(format!(
                "no CIFAR model called `{other}`; the models are {}",
                MODELS.join(", ")
            )))
        }
    })
}

/// The names [`build`] knows, in the notebook's order.
pub const MODELS: [&str; 10] = [
    "FCN", "LeNet5", "AlexNet", "VGG1", "VGG2", "VGG3", "ResNet_plain", "ResNet", "Inception",
    "Inception2",
];

/// The learning rate the original trains `name` with: 5e-4 for the two ResNets, 1e-3 otherwise
/// (Adam, no weight decay, 25 epochs for all).
pub fn learning_rate(name: &str) -> f64 {
    if name.starts_with("ResNet") {
        5e-4
    } else {
        1e-3
    }
}

/// Where finished training runs are kept: `$PLAYGROUND_RUNS`, else `runs/` at the top of the repository.
pub fn runs_dir() -> std::path::PathBuf {
    crate::repo_folder("PLAYGROUND_RUNS", "runs")
}

/// Trains `model` (called `name`) as the notebook does: Adam at [`learning_rate`]`(name)`,
/// cross-entropy, `epochs` epochs, printing the original's log. When `runs_dir()/cifar10` holds a
/// finished run of the same model with the same number of epochs on a training set of the same
/// size (saved by this function, e.g. from the `cifar_train` binary running in the background),
/// it loads those weights and that history instead, says so and prints the saved log: a
/// five-hour notebook can be assembled from runs made separately. What it trains, it saves.
pub fn train_or_load(
    name: &str,
    model: &CifarNet,
    train: &crate::data::DataLoader,
    val: &crate::data::DataLoader,
    epochs: usize,
) -> Result<crate::train::History> {
    let stem = format!("{name}-{epochs}ep-{}", train.num_samples());
    run_or_load(&stem, name, model, train.num_samples(), epochs, |checkpoint| {
        let mut optimizer = crate::optim::Adam::new(model.params().vars(), learning_rate(name))?;
        crate::train::train_model_checkpointed(
            model,
            train,
            val,
            &mut optimizer,
            None,
            crate::train::Loss::CrossEntropy,
            epochs,
            true,
            checkpoint,
        )
    })
}

/// The modern recipe of the notebook's extra section, for the same 25-epoch budget: every
/// training batch augmented (random crop of the image padded by 4, random horizontal flip),
/// Adam with a one-cycle schedule peaking at [`MODERN_MAX_LR`] (learning rate and beta1 cycled
/// per step, as `OneCycleLR`), label smoothing 0.1; BatchNorm is in the model ([`Inception::v1_bn`]).
/// (4e-3 was too high: the training loss stalled while the rate rose past ~2.5e-3, 0.834 val.)
pub const MODERN_MAX_LR: f64 = 2e-3;

/// Trains `model` with the modern recipe for `epochs` on `train` (the plain loader: the
/// augmentation is added here), validating on `val`, or loads a finished run saved under
/// `{name}-modern-{epochs}ep-{N}` (see [`train_or_load`]). The validation loss printed is the
/// smoothed one (the accuracy is unaffected).
pub fn train_modern_or_load(
    name: &str,
    model: &CifarNet,
    train: &crate::data::DataLoader,
    val: &crate::data::DataLoader,
    epochs: usize,
) -> Result<crate::train::History> {
    let stem = format!("{name}-modern-{epochs}ep-{}", train.num_samples());
    run_or_load(&stem, name, model, train.num_samples(), epochs, |checkpoint| {
        let augmented = train.clone().with_augmentation(crate::augment::CropFlip {
            pad: 4,
            fill: -1.0,
            flip: true,
        });
        let mut optimizer = crate::optim::Adam::new(model.params().vars(), MODERN_MAX_LR)?;
        let schedule = crate::optim::OneCycle::new(MODERN_MAX_LR, epochs * augmented.num_batches());
        let loss = crate::train::Loss::CrossEntropyLabelSmoothing(0.1);
        crate::train::train_model_checkpointed(
            model,
            &augmented,
            val,
            &mut optimizer,
            Some(&schedule),
            loss,
            epochs,
            true,
            checkpoint,
        )
    })
}

/// Loads the run saved as `stem` in `runs_dir()/cifar10`, or runs `train` and saves it there.
/// While it trains, `train` keeps a checkpoint after each epoch in `{stem}.checkpoint.safetensors`
/// (see [`crate::train::Checkpoint`]): a run stopped by a killed process or a restarted kernel
/// continues from its last finished epoch when started again. The finished run replaces it.
fn run_or_load(
    stem: &str,
    name: &str,
    model: &CifarNet,
    images: usize,
    epochs: usize,
    train: impl FnOnce(crate::train::Checkpoint) -> Result<crate::train::History>,
) -> Result<crate::train::History> {
    let dir = runs_dir().join("cifar10");
    let (weights, hist) =
        (dir.join(format!("{stem}.safetensors")), dir.join(format!("{stem}.history.safetensors")));
    let checkpoint = dir.join(format!("{stem}.checkpoint.safetensors"));
    if weights.exists() && hist.exists() {
        model.params().load(&weights)?;
        let history = crate::train::History::load(&hist)?;
        println!("(loaded the finished {epochs}-epoch run of {name} on {images} images, {stem}.safetensors in the runs folder `cifar::runs_dir()`; its training log:)");
        history.print_log();
        return Ok(history);
    }
    std::fs::create_dir_all(&dir).map_err(|e| {
        error(format!(
            "cannot create the runs folder {}: {e}; set PLAYGROUND_RUNS to a writable folder",
            dir.display()
        ))
    })?;
    let history = train(crate::train::Checkpoint { path: &checkpoint })?;
    model.params().save(&weights)?;
    history.save(&hist)?;
    std::fs::remove_file(&checkpoint).ok(); // the finished run above supersedes it
    Ok(history)
}
