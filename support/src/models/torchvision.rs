//! The torchvision ImageNet classifiers of the benchmark notebook, with torchvision's own
//! parameter names so its checkpoints load as they are: AlexNet, VGG16, ResNet18, ResNet101 and
//! Inception v3 (with `transform_input`, BN eps 1e-3, and the auxiliary head present for loading
//! but unused, as in eval mode).
//!
//! Parity with torchvision is tested on random weights shared by both sides (see
//! `tests/golden/make_golden_torchvision.py`); pretrained weights are loaded with
//! [`TorchvisionNet::load`] from the official `.pth` files.

use crate::data::Preset;
use crate::nn::functional::{adaptive_avg_pool2d, avg_pool2d, max_pool2d, relu, Pool2d};
use crate::nn::repr::{self, Module};
use crate::nn::{BatchNorm2d, Conv2d, Conv2dConfig, Init, Linear, Model, Params};
use crate::{error, Device, Result, Tensor};
use std::fmt;
use std::str::FromStr;

/// The layers of one network, from one [`Init`] (seed 0: placeholder weights until a checkpoint
/// is loaded).
struct Builder {
    init: Init,
}

impl Builder {
    fn new(device: &Device) -> Self {
        Builder { init: Init::new(0, device) }
    }
    /// A convolution with padding `(height, width)` on both sides of each axis.
    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        name: &str,
        cin: usize,
        cout: usize,
        k: (usize, usize),
        stride: usize,
        pad: (usize, usize),
        bias: bool,
    ) -> Result<Conv2d> {
        let cfg = Conv2dConfig { stride, padding: 0, bias };
        let conv = Conv2d::new(&mut self.init, name, cin, cout, k, cfg)?;
        Ok(conv.with_padding((pad.0, pad.0, pad.1, pad.1)))
    }
    fn bn(&mut self, name: &str, c: usize, eps: f64) -> Result<BatchNorm2d> {
        BatchNorm2d::new(&mut self.init, name, c, eps)
    }
    fn linear(&mut self, name: &str, i: usize, o: usize) -> Result<Linear> {
        Linear::new(&mut self.init, name, i, o)
    }
}

/// Convolution without bias, BatchNorm, ReLU: torchvision's `BasicConv2d` (Inception, keys
/// `<name>.conv.weight`, `<name>.bn.*`) and ResNet's conv/bn pairs.
struct ConvBn {
    conv: Conv2d,
    bn: BatchNorm2d,
}

impl ConvBn {
    fn basic(
        b: &mut Builder,
        name: &str,
        cin: usize,
        cout: usize,
        k: (usize, usize),
        stride: usize,
        pad: (usize, usize),
    ) -> Result<Self> {
        Ok(ConvBn {
            conv: b.conv(&format!("{name}.conv"), cin, cout, k, stride, pad, false)?,
            bn: b.bn(&format!("{name}.bn"), cout, 1e-3)?,
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.bn.fold_into(&self.conv, x)
    }
    fn forward_relu(&self, x: &Tensor) -> Result<Tensor> {
        self.bn.fold_into_relu(&self.conv, x)
    }
}

fn sq(k: usize) -> (usize, usize) {
    (k, k)
}

// ---------------------------------------------------------------------------------------------
// AlexNet and VGG16

/// `features` (convolutions + max pools), adaptive average pool, `classifier` (dropout
/// in eval: identity).
struct Plain {
    convs: Vec<(Conv2d, bool)>, // (conv, followed by a 3x3/2 (AlexNet) or 2x2/2 (VGG) max pool)
    pool: Pool2d,
    pooled: usize,
    classifier: Vec<Linear>,
}

impl Plain {
    fn alexnet(b: &mut Builder) -> Result<Self> {
        let specs = [
            (0, 3, 64, 11, 4, 2, true),
            (3, 64, 192, 5, 1, 2, true),
            (6, 192, 384, 3, 1, 1, false),
            (8, 384, 256, 3, 1, 1, false),
            (10, 256, 256, 3, 1, 1, true),
        ];
        let convs = specs
            .iter()
            .map(|&(i, ci, co, k, s, p, pool)| {
                Ok((b.conv(&format!("features.{i}"), ci, co, sq(k), s, (p, p), true)?, pool))
            })
            .collect::<Result<_>>()?;
        let classifier = vec![
            b.linear("classifier.1", 256 * 36, 4096)?,
            b.linear("classifier.4", 4096, 4096)?,
            b.linear("classifier.6", 4096, 1000)?,
        ];
        Ok(Plain { convs, pool: Pool2d::new(3, 2, 0), pooled: 6, classifier })
    }

    fn vgg16(b: &mut Builder) -> Result<Self> {
        let cfg: [usize; 18] =
            [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0];
        let (mut convs, mut cin, mut idx) = (Vec::<(Conv2d, bool)>::new(), 3, 0);
        for c in cfg {
            if c == 0 {
                convs.last_mut().expect("the config starts with a conv").1 = true;
                idx += 1;
            } else {
                convs.push((
                    b.conv(&format!("features.{idx}"), cin, c, sq(3), 1, (1, 1), true)?,
                    false,
                ));
                cin = c;
                idx += 2;
            }
        }
        let classifier = vec![
            b.linear("classifier.0", 512 * 49, 4096)?,
            b.linear("classifier.3", 4096, 4096)?,
            b.linear("classifier.6", 4096, 1000)?,
        ];
        Ok(Plain { convs, pool: Pool2d::new(2, 2, 0), pooled: 7, classifier })
    }

    /// `features`: the convolutions and their max pools (AlexNet at 224 pixels: 256 x 6 x 6).
    fn feature_maps(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = x.clone();
        for (conv, pool) in &self.convs {
            x = conv.forward_relu(&x)?;
            if *pool {
                x = max_pool2d(&x, self.pool)?;
            }
        }
        Ok(x)
    }

    /// `features` + the adaptive average pool, flattened (AlexNet: 9216, VGG16: 25088).
    fn features(&self, x: &Tensor) -> Result<Tensor> {
        adaptive_avg_pool2d(&self.feature_maps(x)?, (self.pooled, self.pooled))?.flatten_from(1)
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = self.features(x)?;
        for (i, l) in self.classifier.iter().enumerate() {
            x = l.forward(&x)?;
            if i + 1 < self.classifier.len() {
                x = relu(&x)?;
            }
        }
        Ok(x)
    }
}

// ---------------------------------------------------------------------------------------------
// ResNet

struct ResBlock {
    convs: Vec<ConvBn>, // 2 (basic) or 3 (bottleneck); ReLU between them
    downsample: Option<ConvBn>,
}

impl ResBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for (i, c) in self.convs.iter().enumerate() {
            h = if i + 1 < self.convs.len() { c.forward_relu(&h)? } else { c.forward(&h)? };
        }
        let skip = match &self.downsample {
            Some(d) => d.forward(x)?,
            None => x.clone(),
        };
        relu(&(h + skip)?)
    }
}

struct ResNet {
    stem: ConvBn,
    /// Blocks per stage (`layer1` .. `layer4`).
    layers: [usize; 4],
    blocks: Vec<ResBlock>,
    fc: Linear,
}

impl ResNet {
    /// `layers` blocks per stage; bottleneck blocks (expansion 4, stride on the 3x3) when
    /// `bottleneck`.
    fn new(b: &mut Builder, layers: [usize; 4], bottleneck: bool) -> Result<Self> {
        let cbn = |b: &mut Builder,
                   conv: &str,
                   bn: &str,
                   ci: usize,
                   co: usize,
                   k: usize,
                   s: usize|
         -> Result<ConvBn> {
            Ok(ConvBn {
                conv: b.conv(conv, ci, co, sq(k), s, (k / 2, k / 2), false)?,
                bn: b.bn(bn, co, 1e-5)?,
            })
        };
        let stem = cbn(b, "conv1", "bn1", 3, 64, 7, 2)?;
        let expansion = if bottleneck { 4 } else { 1 };
        let (mut blocks, mut cin) = (Vec::new(), 64);
        for (stage, &n) in layers.iter().enumerate() {
            let width = 64 << stage;
            for j in 0..n {
                let stride = if j == 0 && stage > 0 { 2 } else { 1 };
                let pre = format!("layer{}.{j}", stage + 1);
                let convs = if bottleneck {
                    vec![
                        cbn(b, &format!("{pre}.conv1"), &format!("{pre}.bn1"), cin, width, 1, 1)?,
                        cbn(
                            b,
                            &format!("{pre}.conv2"),
                            &format!("{pre}.bn2"),
                            width,
                            width,
                            3,
                            stride,
                        )?,
                        cbn(
                            b,
                            &format!("{pre}.conv3"),
                            &format!("{pre}.bn3"),
                            width,
                            width * 4,
                            1,
                            1,
                        )?,
                    ]
                } else {
                    vec![
                        cbn(
                            b,
                            &format!("{pre}.conv1"),
                            &format!("{pre}.bn1"),
                            cin,
                            width,
                            3,
                            stride,
                        )?,
                        cbn(b, &format!("{pre}.conv2"), &format!("{pre}.bn2"), width, width, 3, 1)?,
                    ]
                };
                let cout = width * expansion;
                let downsample = if stride != 1 || cin != cout {
                    Some(cbn(
                        b,
                        &format!("{pre}.downsample.0"),
                        &format!("{pre}.downsample.1"),
                        cin,
                        cout,
                        1,
                        stride,
                    )?)
                } else {
                    None
                };
                blocks.push(ResBlock { convs, downsample });
                cin = cout;
            }
        }
        let fc = b.linear("fc", 512 * expansion, 1000)?;
        Ok(ResNet { stem, layers, blocks, fc })
    }

    /// The output of `layer4` (ResNet18 at 224 pixels: 512 x 7 x 7).
    fn feature_maps(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = max_pool2d(&self.stem.forward_relu(x)?, Pool2d::new(3, 2, 1))?;
        for blk in &self.blocks {
            x = blk.forward(&x)?;
        }
        Ok(x)
    }

    fn features(&self, x: &Tensor) -> Result<Tensor> {
        self.feature_maps(x)?.mean((2, 3))
    }
}

// ---------------------------------------------------------------------------------------------
// Inception v3

fn cat(parts: &[Tensor]) -> Result<Tensor> {
    Tensor::cat(parts, 1)
}

fn avg3(x: &Tensor) -> Result<Tensor> {
    avg_pool2d(x, Pool2d::new(3, 1, 1))
}

/// One Inception-v3 module: named branches of `BasicConv2d` chains, see [`Inception3::new`].
enum Mixed {
    A {
        b1: ConvBn,
        b5: [ConvBn; 2],
        b3: [ConvBn; 3],
        pool: ConvBn,
    },
    B {
        b3: ConvBn,
        b3dbl: [ConvBn; 3],
    },
    C {
        b1: ConvBn,
        b7: [ConvBn; 3],
        b7dbl: [ConvBn; 5],
        pool: ConvBn,
    },
    D {
        b3: [ConvBn; 2],
        b7: [ConvBn; 4],
    },
    E {
        b1: ConvBn,
        b3_1: ConvBn,
        b3_2: [ConvBn; 2],
        dbl_1: ConvBn,
        dbl_2: ConvBn,
        dbl_3: [ConvBn; 2],
        pool: ConvBn,
    },
}

fn chain(x: &Tensor, convs: &[ConvBn]) -> Result<Tensor> {
    convs.iter().try_fold(x.clone(), |h, c| c.forward_relu(&h))
}

impl Mixed {
    fn a(b: &mut Builder, n: &str, cin: usize, pool_features: usize) -> Result<Self> {
        let bc = |b: &mut Builder, s: &str, ci, co, k, p| {
            ConvBn::basic(b, &format!("{n}.{s}"), ci, co, sq(k), 1, (p, p))
        };
        Ok(Mixed::A {
            b1: bc(b, "branch1x1", cin, 64, 1, 0)?,
            b5: [bc(b, "branch5x5_1", cin, 48, 1, 0)?, bc(b, "branch5x5_2", 48, 64, 5, 2)?],
            b3: [
                bc(b, "branch3x3dbl_1", cin, 64, 1, 0)?,
                bc(b, "branch3x3dbl_2", 64, 96, 3, 1)?,
                bc(b, "branch3x3dbl_3", 96, 96, 3, 1)?,
            ],
            pool: bc(b, "branch_pool", cin, pool_features, 1, 0)?,
        })
    }
    fn b(b: &mut Builder, n: &str, cin: usize) -> Result<Self> {
        Ok(Mixed::B {
            b3: ConvBn::basic(b, &format!("{n}.branch3x3"), cin, 384, sq(3), 2, (0, 0))?,
            b3dbl: [
                ConvBn::basic(b, &format!("{n}.branch3x3dbl_1"), cin, 64, sq(1), 1, (0, 0))?,
                ConvBn::basic(b, &format!("{n}.branch3x3dbl_2"), 64, 96, sq(3), 1, (1, 1))?,
                ConvBn::basic(b, &format!("{n}.branch3x3dbl_3"), 96, 96, sq(3), 2, (0, 0))?,
            ],
        })
    }
    fn c(b: &mut Builder, n: &str, cin: usize, c7: usize) -> Result<Self> {
        let bc = |b: &mut Builder, s: &str, ci, co, k, p| {
            ConvBn::basic(b, &format!("{n}.{s}"), ci, co, k, 1, p)
        };
        let (k17, k71, p17, p71) = ((1, 7), (7, 1), (0, 3), (3, 0));
        Ok(Mixed::C {
            b1: bc(b, "branch1x1", cin, 192, (1, 1), (0, 0))?,
            b7: [
                bc(b, "branch7x7_1", cin, c7, (1, 1), (0, 0))?,
                bc(b, "branch7x7_2", c7, c7, k17, p17)?,
                bc(b, "branch7x7_3", c7, 192, k71, p71)?,
            ],
            b7dbl: [
                bc(b, "branch7x7dbl_1", cin, c7, (1, 1), (0, 0))?,
                bc(b, "branch7x7dbl_2", c7, c7, k71, p71)?,
                bc(b, "branch7x7dbl_3", c7, c7, k17, p17)?,
                bc(b, "branch7x7dbl_4", c7, c7, k71, p71)?,
                bc(b, "branch7x7dbl_5", c7, 192, k17, p17)?,
            ],
            pool: bc(b, "branch_pool", cin, 192, (1, 1), (0, 0))?,
        })
    }
    fn d(b: &mut Builder, n: &str, cin: usize) -> Result<Self> {
        let bc = |b: &mut Builder, s: &str, ci, co, k, st, p| {
            ConvBn::basic(b, &format!("{n}.{s}"), ci, co, k, st, p)
        };
        Ok(Mixed::D {
            b3: [
                bc(b, "branch3x3_1", cin, 192, (1, 1), 1, (0, 0))?,
                bc(b, "branch3x3_2", 192, 320, (3, 3), 2, (0, 0))?,
            ],
            b7: [
                bc(b, "branch7x7x3_1", cin, 192, (1, 1), 1, (0, 0))?,
                bc(b, "branch7x7x3_2", 192, 192, (1, 7), 1, (0, 3))?,
                bc(b, "branch7x7x3_3", 192, 192, (7, 1), 1, (3, 0))?,
                bc(b, "branch7x7x3_4", 192, 192, (3, 3), 2, (0, 0))?,
            ],
        })
    }
    fn e(b: &mut Builder, n: &str, cin: usize) -> Result<Self> {
        let bc = |b: &mut Builder, s: &str, ci, co, k, p| {
            ConvBn::basic(b, &format!("{n}.{s}"), ci, co, k, 1, p)
        };
        Ok(Mixed::E {
            b1: bc(b, "branch1x1", cin, 320, (1, 1), (0, 0))?,
            b3_1: bc(b, "branch3x3_1", cin, 384, (1, 1), (0, 0))?,
            b3_2: [
                bc(b, "branch3x3_2a", 384, 384, (1, 3), (0, 1))?,
                bc(b, "branch3x3_2b", 384, 384, (3, 1), (1, 0))?,
            ],
            dbl_1: bc(b, "branch3x3dbl_1", cin, 448, (1, 1), (0, 0))?,
            dbl_2: bc(b, "branch3x3dbl_2", 448, 384, (3, 3), (1, 1))?,
            dbl_3: [
                bc(b, "branch3x3dbl_3a", 384, 384, (1, 3), (0, 1))?,
                bc(b, "branch3x3dbl_3b", 384, 384, (3, 1), (1, 0))?,
            ],
            pool: bc(b, "branch_pool", cin, 192, (1, 1), (0, 0))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Mixed::A { b1, b5, b3, pool } => cat(&[
                b1.forward_relu(x)?,
                chain(x, b5)?,
                chain(x, b3)?,
                pool.forward_relu(&avg3(x)?)?,
            ]),
            Mixed::B { b3, b3dbl } => {
                cat(&[b3.forward_relu(x)?, chain(x, b3dbl)?, max_pool2d(x, Pool2d::new(3, 2, 0))?])
            }
            Mixed::C { b1, b7, b7dbl, pool } => cat(&[
                b1.forward_relu(x)?,
                chain(x, b7)?,
                chain(x, b7dbl)?,
                pool.forward_relu(&avg3(x)?)?,
            ]),
            Mixed::D { b3, b7 } => {
                cat(&[chain(x, b3)?, chain(x, b7)?, max_pool2d(x, Pool2d::new(3, 2, 0))?])
            }
            Mixed::E { b1, b3_1, b3_2, dbl_1, dbl_2, dbl_3, pool } => {
                let h3 = b3_1.forward_relu(x)?;
                let hd = dbl_2.forward_relu(&dbl_1.forward_relu(x)?)?;
                cat(&[
                    b1.forward_relu(x)?,
                    cat(&[b3_2[0].forward_relu(&h3)?, b3_2[1].forward_relu(&h3)?])?,
                    cat(&[dbl_3[0].forward_relu(&hd)?, dbl_3[1].forward_relu(&hd)?])?,
                    pool.forward_relu(&avg3(x)?)?,
                ])
            }
        }
    }
}

struct Inception3 {
    stem: [ConvBn; 5],
    mixed: Vec<Mixed>,
    /// `AuxLogits`: conv0, conv1 and fc; in the checkpoints and the printout, unused in eval.
    aux: ([ConvBn; 2], Linear),
    fc: Linear,
}

impl Inception3 {
    fn new(b: &mut Builder) -> Result<Self> {
        let stem = [
            ConvBn::basic(b, "Conv2d_1a_3x3", 3, 32, sq(3), 2, (0, 0))?,
            ConvBn::basic(b, "Conv2d_2a_3x3", 32, 32, sq(3), 1, (0, 0))?,
            ConvBn::basic(b, "Conv2d_2b_3x3", 32, 64, sq(3), 1, (1, 1))?,
            ConvBn::basic(b, "Conv2d_3b_1x1", 64, 80, sq(1), 1, (0, 0))?,
            ConvBn::basic(b, "Conv2d_4a_3x3", 80, 192, sq(3), 1, (0, 0))?,
        ];
        let mut mixed = vec![
            Mixed::a(b, "Mixed_5b", 192, 32)?,
            Mixed::a(b, "Mixed_5c", 256, 64)?,
            Mixed::a(b, "Mixed_5d", 288, 64)?,
            Mixed::b(b, "Mixed_6a", 288)?,
        ];
        for (n, c7) in [("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)]
        {
            mixed.push(Mixed::c(b, n, 768, c7)?);
        }
        // The auxiliary classifier: registered (its weights are in the checkpoints),
        // unused in eval.
        let aux = (
            [
                ConvBn::basic(b, "AuxLogits.conv0", 768, 128, sq(1), 1, (0, 0))?,
                ConvBn::basic(b, "AuxLogits.conv1", 128, 768, sq(5), 1, (0, 0))?,
            ],
            b.linear("AuxLogits.fc", 768, 1000)?,
        );
        mixed.push(Mixed::d(b, "Mixed_7a", 768)?);
        mixed.push(Mixed::e(b, "Mixed_7b", 1280)?);
        mixed.push(Mixed::e(b, "Mixed_7c", 2048)?);
        let fc = b.linear("fc", 2048, 1000)?;
        Ok(Inception3 { stem, mixed, aux, fc })
    }

    fn features(&self, x: &Tensor) -> Result<Tensor> {
        self.feature_maps(x)?.mean((2, 3))
    }

    /// The output of `Mixed_7c` (2048 x 8 x 8 at 299 pixels).
    fn feature_maps(&self, x: &Tensor) -> Result<Tensor> {
        // transform_input: the pretrained weights expect (x - 0.5) / 0.5 on [0, 1] pixels; the
        // input comes normalised with ImageNet's mean/std, so re-map each channel.
        let (mean, std) = ([0.485f32, 0.456, 0.406], [0.229f32, 0.224, 0.225]);
        let chans = (0..3)
            .map(|c| {
                x.narrow(1, c, 1)?.affine((std[c] / 0.5) as f64, ((mean[c] - 0.5) / 0.5) as f64)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut x = cat(&chans)?;
        for (i, s) in self.stem.iter().enumerate() {
            x = s.forward_relu(&x)?;
            if i == 2 || i == 4 {
                x = max_pool2d(&x, Pool2d::new(3, 2, 0))?;
            }
        }
        for m in &self.mixed {
            x = m.forward(&x)?;
        }
        Ok(x)
    }
}

// ---------------------------------------------------------------------------------------------
// Printing: the text of PyTorch's `print(model)` for each architecture, built from the layers
// themselves (tests/torchvision.rs compares it with torchvision's, line by line).

fn relu_inplace() -> Module {
    Module::leaf("ReLU(inplace=True)")
}

fn adaptive_pool(n: usize) -> Module {
    Module::leaf(format!("AdaptiveAvgPool2d(output_size=({n}, {n}))"))
}

impl ConvBn {
    /// Inception's `BasicConv2d(conv, bn)`.
    fn printed(&self) -> Module {
        Module::node("BasicConv2d")
            .child("conv", repr::conv(&self.conv))
            .child("bn", repr::batch_norm(&self.bn))
    }
}

impl Plain {
    /// `AlexNet(features, avgpool, classifier)` or `VGG(...)`: the classifier's dropouts sit
    /// before AlexNet's linear layers and after VGG's.
    fn printed(&self, alexnet: bool) -> Module {
        let mut features = Vec::new();
        for (conv, pool) in &self.convs {
            features.push(repr::conv(conv));
            features.push(relu_inplace());
            if *pool {
                features.push(repr::max_pool(self.pool));
            }
        }
        let mut classifier = Vec::new();
        for (i, l) in self.classifier.iter().enumerate() {
            let last = i + 1 == self.classifier.len();
            if alexnet && !last {
                classifier.push(repr::dropout(0.5));
            }
            classifier.push(repr::linear(l));
            if !last {
                classifier.push(relu_inplace());
                if !alexnet {
                    classifier.push(repr::dropout(0.5));
                }
            }
        }
        Module::node(if alexnet { "AlexNet" } else { "VGG" })
            .child("features", Module::sequential("Sequential", features))
            .child("avgpool", adaptive_pool(self.pooled))
            .child("classifier", Module::sequential("Sequential", classifier))
    }
}

impl ResBlock {
    /// `BasicBlock` (ReLU after the first pair) or `Bottleneck` (ReLU after the three pairs).
    fn printed(&self) -> Module {
        let bottleneck = self.convs.len() == 3;
        let mut m = Module::node(if bottleneck { "Bottleneck" } else { "BasicBlock" });
        for (i, c) in self.convs.iter().enumerate() {
            m = m
                .child(format!("conv{}", i + 1), repr::conv(&c.conv))
                .child(format!("bn{}", i + 1), repr::batch_norm(&c.bn));
            if i == 0 && !bottleneck {
                m = m.child("relu", relu_inplace());
            }
        }
        if bottleneck {
            m = m.child("relu", relu_inplace());
        }
        if let Some(d) = &self.downsample {
            let pair = [repr::conv(&d.conv), repr::batch_norm(&d.bn)];
            m = m.child("downsample", Module::sequential("Sequential", pair));
        }
        m
    }
}

impl ResNet {
    fn printed(&self) -> Module {
        let mut m = Module::node("ResNet")
            .child("conv1", repr::conv(&self.stem.conv))
            .child("bn1", repr::batch_norm(&self.stem.bn))
            .child("relu", relu_inplace())
            .child("maxpool", repr::max_pool(Pool2d::new(3, 2, 1)));
        let mut blocks = self.blocks.iter();
        for (stage, &n) in self.layers.iter().enumerate() {
            let stage_blocks = blocks.by_ref().take(n).map(ResBlock::printed);
            m = m.child(
                format!("layer{}", stage + 1),
                Module::sequential("Sequential", stage_blocks),
            );
        }
        m.child("avgpool", adaptive_pool(1)).child("fc", repr::linear(&self.fc))
    }
}

impl Mixed {
    fn printed(&self) -> Module {
        let named = |class: &str, parts: Vec<(&str, &ConvBn)>| {
            parts.into_iter().fold(Module::node(class), |m, (n, c)| m.child(n, c.printed()))
        };
        match self {
            Mixed::A { b1, b5, b3, pool } => named(
                "InceptionA",
                vec![
                    ("branch1x1", b1),
                    ("branch5x5_1", &b5[0]),
                    ("branch5x5_2", &b5[1]),
                    ("branch3x3dbl_1", &b3[0]),
                    ("branch3x3dbl_2", &b3[1]),
                    ("branch3x3dbl_3", &b3[2]),
                    ("branch_pool", pool),
                ],
            ),
            Mixed::B { b3, b3dbl } => named(
                "InceptionB",
                vec![
                    ("branch3x3", b3),
                    ("branch3x3dbl_1", &b3dbl[0]),
                    ("branch3x3dbl_2", &b3dbl[1]),
                    ("branch3x3dbl_3", &b3dbl[2]),
                ],
            ),
            Mixed::C { b1, b7, b7dbl, pool } => named(
                "InceptionC",
                vec![
                    ("branch1x1", b1),
                    ("branch7x7_1", &b7[0]),
                    ("branch7x7_2", &b7[1]),
                    ("branch7x7_3", &b7[2]),
                    ("branch7x7dbl_1", &b7dbl[0]),
                    ("branch7x7dbl_2", &b7dbl[1]),
                    ("branch7x7dbl_3", &b7dbl[2]),
                    ("branch7x7dbl_4", &b7dbl[3]),
                    ("branch7x7dbl_5", &b7dbl[4]),
                    ("branch_pool", pool),
                ],
            ),
            Mixed::D { b3, b7 } => named(
                "InceptionD",
                vec![
                    ("branch3x3_1", &b3[0]),
                    ("branch3x3_2", &b3[1]),
                    ("branch7x7x3_1", &b7[0]),
                    ("branch7x7x3_2", &b7[1]),
                    ("branch7x7x3_3", &b7[2]),
                    ("branch7x7x3_4", &b7[3]),
                ],
            ),
            Mixed::E { b1, b3_1, b3_2, dbl_1, dbl_2, dbl_3, pool } => named(
                "InceptionE",
                vec![
                    ("branch1x1", b1),
                    ("branch3x3_1", b3_1),
                    ("branch3x3_2a", &b3_2[0]),
                    ("branch3x3_2b", &b3_2[1]),
                    ("branch3x3dbl_1", dbl_1),
                    ("branch3x3dbl_2", dbl_2),
                    ("branch3x3dbl_3a", &dbl_3[0]),
                    ("branch3x3dbl_3b", &dbl_3[1]),
                    ("branch_pool", pool),
                ],
            ),
        }
    }
}

impl Inception3 {
    fn printed(&self) -> Module {
        let stem =
            ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3"];
        let mut m = Module::node("Inception3");
        for (i, (name, s)) in stem.iter().zip(&self.stem).enumerate() {
            m = m.child(*name, s.printed());
            if i == 2 || i == 4 {
                m = m.child(format!("maxpool{}", i / 2), repr::max_pool(Pool2d::new(3, 2, 0)));
            }
        }
        let names = ["5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"];
        for (name, mixed) in names.iter().zip(&self.mixed) {
            m = m.child(format!("Mixed_{name}"), mixed.printed());
            if *name == "6e" {
                let ([c0, c1], fc) = &self.aux;
                let aux = Module::node("InceptionAux")
                    .child("conv0", c0.printed())
                    .child("conv1", c1.printed())
                    .child("fc", repr::linear(fc));
                m = m.child("AuxLogits", aux);
            }
        }
        m.child("avgpool", adaptive_pool(1))
            .child("dropout", repr::dropout(0.5))
            .child("fc", repr::linear(&self.fc))
    }
}

impl fmt::Display for TorchvisionNet {
    /// The same text as PyTorch's `print(model)` for the torchvision model (the originals'
    /// PyTorch 1.x, whose `BatchNorm2d` lines do not show `bias=True`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let printed = match &self.net {
            Arch::Plain(m) => m.printed(self.arch == TorchvisionModel::AlexNet),
            Arch::ResNet(m) => m.printed(),
            Arch::Inception(m) => m.printed(),
        };
        printed.fmt(f)
    }
}

// ---------------------------------------------------------------------------------------------

// One value per model, built once: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Arch {
    Plain(Plain),
    ResNet(ResNet),
    Inception(Inception3),
}

/// The torchvision architectures of the benchmark notebook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TorchvisionModel {
    /// `torchvision.models.alexnet`.
    AlexNet,
    /// `torchvision.models.vgg16`.
    Vgg16,
    /// `torchvision.models.inception_v3` (`transform_input=True`, as its pretrained weights).
    InceptionV3,
    /// `torchvision.models.resnet18`.
    ResNet18,
    /// `torchvision.models.resnet101`.
    ResNet101,
}

impl TorchvisionModel {
    /// The five, in the notebook's order.
    pub const ALL: [TorchvisionModel; 5] = [
        TorchvisionModel::AlexNet,
        TorchvisionModel::Vgg16,
        TorchvisionModel::InceptionV3,
        TorchvisionModel::ResNet18,
        TorchvisionModel::ResNet101,
    ];

    /// The notebook's name ("Inception v3", ...).
    pub fn name(self) -> &'static str {
        match self {
            TorchvisionModel::AlexNet => "AlexNet",
            TorchvisionModel::Vgg16 => "VGG16",
            TorchvisionModel::InceptionV3 => "Inception v3",
            TorchvisionModel::ResNet18 => "ResNet18",
            TorchvisionModel::ResNet101 => "ResNet101",
        }
    }

    /// The official checkpoint's file name (`https://download.pytorch.org/models/<file>`; the
    /// hex part is the start of its SHA-256).
    pub fn checkpoint_file(self) -> &'static str {
        match self {
            TorchvisionModel::AlexNet => "alexnet-owt-7be5be79.pth",
            TorchvisionModel::Vgg16 => "vgg16-397923af.pth",
            TorchvisionModel::InceptionV3 => "inception_v3_google-0cc3c7bd.pth",
            TorchvisionModel::ResNet18 => "resnet18-f37072fd.pth",
            TorchvisionModel::ResNet101 => "resnet101-63fe2227.pth",
        }
    }

    /// The SHA-256 prefix that the checkpoint's file name carries (`resnet18-f37072fd.pth` ->
    /// `f37072fd`), which `torch.hub` checks a download against.
    pub fn checkpoint_hash_prefix(self) -> &'static str {
        let file = self.checkpoint_file();
        let stem = file.strip_suffix(".pth").unwrap_or(file);
        stem.rsplit('-').next().unwrap_or(stem)
    }

    /// Where the checkpoint is downloaded from: [`crate::env::torchvision_url`] + its file name.
    pub fn checkpoint_url(self) -> String {
        format!("{}/{}", crate::env::torchvision_url(), self.checkpoint_file())
    }

    /// The published ImageNet-1k top-1 and top-5 accuracy of those weights (torchvision's docs).
    pub fn published_accuracy(self) -> (f64, f64) {
        match self {
            TorchvisionModel::AlexNet => (0.56522, 0.79066),
            TorchvisionModel::Vgg16 => (0.71592, 0.90382),
            TorchvisionModel::InceptionV3 => (0.77294, 0.93450),
            TorchvisionModel::ResNet18 => (0.69758, 0.89078),
            TorchvisionModel::ResNet101 => (0.77374, 0.93546),
        }
    }

    /// The size of its features ([`TorchvisionNet::features`]): AlexNet 9216, VGG16 25088,
    /// ResNet18 512, ResNet101 and Inception v3 2048.
    pub fn feature_dim(self) -> usize {
        match self {
            TorchvisionModel::AlexNet => 256 * 36,
            TorchvisionModel::Vgg16 => 512 * 49,
            TorchvisionModel::ResNet18 => 512,
            TorchvisionModel::ResNet101 | TorchvisionModel::InceptionV3 => 2048,
        }
    }

    /// The preprocessing preset of its pretrained weights (Inception: 342/299, others 256/224).
    pub fn preset(self) -> Preset {
        match self {
            TorchvisionModel::InceptionV3 => Preset::inception(),
            _ => Preset::imagenet(),
        }
    }
}

impl fmt::Display for TorchvisionModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TorchvisionModel {
    type Err = crate::Error;

    /// "AlexNet", "VGG16", "Inception v3" (or "Inception"), "ResNet18" or "ResNet101".
    fn from_str(name: &str) -> Result<Self> {
        if name == "Inception" {
            return Ok(TorchvisionModel::InceptionV3);
        }
        TorchvisionModel::ALL.into_iter().find(|m| m.name() == name).ok_or_else(|| {
            let names: Vec<&str> = TorchvisionModel::ALL.iter().map(|m| m.name()).collect();
            error(format!("no torchvision model `{name}`; the models are {}", names.join(", ")))
        })
    }
}

#[cfg(feature = "download")]
fn download_checkpoint(url: &str, prefix: &str, path: &std::path::Path) -> Result<()> {
    crate::data::fetch::fetch_hash_prefix(&[url], prefix, path)
}

#[cfg(not(feature = "download"))]
fn download_checkpoint(_url: &str, _prefix: &str, _path: &std::path::Path) -> Result<()> {
    Err(crate::error("support was built without its `download` feature"))
}

/// One of torchvision's ImageNet classifiers (a concrete type, see `CifarNet` for why).
pub struct TorchvisionNet {
    /// Which architecture.
    pub arch: TorchvisionModel,
    /// Whether real pretrained weights were loaded (see [`TorchvisionNet::pretrained`]).
    pub pretrained: bool,
    params: Params,
    net: Arch,
}

impl TorchvisionNet {
    /// The architecture with placeholder (seeded) weights until [`TorchvisionNet::load`].
    pub fn new(arch: TorchvisionModel, device: &Device) -> Result<Self> {
        let mut b = Builder::new(device);
        let net = match arch {
            TorchvisionModel::AlexNet => Arch::Plain(Plain::alexnet(&mut b)?),
            TorchvisionModel::Vgg16 => Arch::Plain(Plain::vgg16(&mut b)?),
            TorchvisionModel::ResNet18 => Arch::ResNet(ResNet::new(&mut b, [2, 2, 2, 2], false)?),
            TorchvisionModel::ResNet101 => Arch::ResNet(ResNet::new(&mut b, [3, 4, 23, 3], true)?),
            TorchvisionModel::InceptionV3 => Arch::Inception(Inception3::new(&mut b)?),
        };
        Ok(TorchvisionNet { arch, pretrained: false, params: b.init.finish(), net })
    }

    /// The architecture with torchvision's ImageNet weights: its official checkpoint
    /// ([`TorchvisionModel::checkpoint_file`]) from [`crate::env::weights_dir`], downloaded there
    /// first when it is missing and downloads are on (from [`TorchvisionModel::checkpoint_url`],
    /// through a `.part` file, its SHA-256 checked against the prefix in its name as `torch.hub`
    /// does, with progress lines; a server that sends nothing for 60 s ends the attempt). When
    /// the file can be neither found nor downloaded, the model keeps seeded random weights and
    /// says so, naming the file, its URL and the folder: the timings are still real, the
    /// predictions are not. A file that is there but is not this architecture's checkpoint is an
    /// error that names it.
    pub fn pretrained(arch: TorchvisionModel, device: &Device) -> Result<Self> {
        let mut m = TorchvisionNet::new(arch, device)?;
        let file = arch.checkpoint_file();
        let dir = crate::env::weights_dir();
        let path = dir.join(file);
        let url = arch.checkpoint_url();
        let mut failure = None;
        if !path.exists() && crate::env::downloads_enabled() {
            if let Err(e) = download_checkpoint(&url, arch.checkpoint_hash_prefix(), &path) {
                failure = Some(e.to_string());
            }
        }
        if path.exists() {
            m.load(&path)?;
            m.pretrained = true;
            println!(
                "{arch}: loaded torchvision's ImageNet weights from {}",
                crate::env::shown(&path)
            );
        } else {
            let why = match failure {
                Some(e) => format!("the download failed ({e})"),
                None if cfg!(feature = "download") => {
                    format!("downloads are off (${} is set)", crate::env::OFFLINE_ENV)
                }
                None => "support was built without its `download` feature".to_string(),
            };
            println!(
                "{arch}: no checkpoint {file} in {}/ and {why}; put the file there (from {url}) \
                 for real predictions. Using random weights: timings are real, predictions are not",
                crate::env::shown(&dir),
            );
        }
        Ok(m)
    }

    /// The notebook's name of the architecture.
    pub fn name(&self) -> &'static str {
        self.arch.name()
    }

    /// Loads a torchvision checkpoint (`.pth` or `.safetensors`) by its own key names. An
    /// Inception v3 checkpoint may lack the auxiliary classifier (`AuxLogits.*`, absent from a
    /// model built with `aux_logits=False`): it is not used at inference, and keeps its
    /// placeholder weights then.
    pub fn load(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let path = path.as_ref();
        if self.arch != TorchvisionModel::InceptionV3 {
            return self.params.load(path);
        }
        let map = crate::weights::read_state_dict(path)?;
        let source = path.display().to_string();
        if map.keys().any(|k| k.starts_with("AuxLogits.")) {
            self.params.load_tensors(&map, &source)
        } else {
            self.params.select(|k| !k.starts_with("AuxLogits.")).load_tensors(&map, &source)
        }
    }

    /// The preprocessing preset of its pretrained weights (Inception: 342/299, others 256/224).
    pub fn preset(&self) -> Preset {
        self.arch.preset()
    }
}

impl TorchvisionNet {
    /// The backbone's features, as the transfer-learning notebook uses them: AlexNet's pooled
    /// `features` (9216), VGG16's (25088), ResNet's and Inception's globally pooled maps (512,
    /// 2048 for ResNet101 and Inception v3): `(N, D)`.
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        self.check(x)?;
        match &self.net {
            Arch::Plain(m) => m.features(x),
            Arch::ResNet(m) => m.features(x),
            Arch::Inception(m) => m.features(x),
        }
    }

    /// The maps the features are pooled from, `(N, C, H, W)`: AlexNet's and VGG16's `features`
    /// block (256 x 6 x 6 and 512 x 7 x 7 at 224 pixels, before `avgpool`), ResNet's `layer4`
    /// (512 or 2048 x 7 x 7), Inception v3's `Mixed_7c` (2048 x 8 x 8 at 299 pixels).
    pub fn feature_maps(&self, x: &Tensor) -> Result<Tensor> {
        self.check(x)?;
        match &self.net {
            Arch::Plain(m) => m.feature_maps(x),
            Arch::ResNet(m) => m.feature_maps(x),
            Arch::Inception(m) => m.feature_maps(x),
        }
    }

    fn check(&self, x: &Tensor) -> Result<()> {
        self.params.fence()?;
        if x.rank() != 4 || x.dim(1)? != 3 {
            return Err(error(format!(
                "{} expects images (N, 3, H, W), got {:?}",
                self.name(),
                x.dims()
            )));
        }
        Ok(())
    }
}

impl Model for TorchvisionNet {
    fn forward_t(&self, x: &Tensor, _train: bool) -> Result<Tensor> {
        self.check(x)?;
        match &self.net {
            Arch::Plain(m) => m.forward(x),
            Arch::ResNet(m) => m.fc.forward(&m.features(x)?),
            Arch::Inception(m) => m.fc.forward(&m.features(x)?),
        }
    }

    fn params(&self) -> &Params {
        &self.params
    }
}
