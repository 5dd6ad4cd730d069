//! Conv2d forward and backward against PyTorch (golden/make_golden_conv.py), and the parameter
//! counts of the CNNs of the notebooks.

// The golden values are pasted as the generating script printed them.
#![allow(clippy::excessive_precision)]

use support::candle::{Device, Tensor};
use support::nn::{Conv2d, Conv2dConfig, Init, Model, Sequential};
use support::rng::Rng;

/// x[i] = sin(0.37 i + 0.1) over (1, 2, 4, 5); weight[i] = cos(0.21 i) / 3; bias [0.1, -0.2, 0.3];
/// gradient of sum(out * wgt), wgt[j] = sin(0.5 j + 1).
fn check(
    stride: usize,
    padding: (usize, usize, usize, usize),
    out_shape: &[usize],
    want: [&[f32]; 4],
) {
    check_on((1, 2, 4, 5), stride, padding, out_shape, want)
}

fn check_on(
    shape: (usize, usize, usize, usize),
    stride: usize,
    padding: (usize, usize, usize, usize),
    out_shape: &[usize],
    want: [&[f32]; 4],
) {
    let mut init = Init::new(0, &Device::Cpu);
    let cfg = Conv2dConfig { stride, ..Default::default() };
    let conv = Conv2d::new(&mut init, "c", 2, 3, (3, 3), cfg).unwrap().with_padding(padding);
    let params = init.finish();
    let named = params.named();
    named[0]
        .1
        .set(
            &Tensor::from_vec(
                (0..54).map(|i| ((0.21 * i as f64).cos() / 3.0) as f32).collect::<Vec<_>>(),
                (3, 2, 3, 3),
                &Device::Cpu,
            )
            .unwrap(),
        )
        .unwrap();
    named[1].1.set(&Tensor::from_slice(&[0.1f32, -0.2, 0.3], 3, &Device::Cpu).unwrap()).unwrap();
    let x = support::candle::Var::from_tensor(
        &Tensor::from_vec(
            (0..shape.0 * shape.1 * shape.2 * shape.3)
                .map(|i| (0.37 * i as f64 + 0.1).sin() as f32)
                .collect::<Vec<_>>(),
            shape,
            &Device::Cpu,
        )
        .unwrap(),
    )
    .unwrap();
    let out = conv.forward(x.as_tensor()).unwrap();
    assert_eq!(out.dims(), out_shape);
    let wgt = Tensor::from_vec(
        (0..out.elem_count()).map(|j| (0.5 * j as f64 + 1.0).sin() as f32).collect::<Vec<_>>(),
        out.shape(),
        &Device::Cpu,
    )
    .unwrap();
    let grads = out.mul(&wgt).unwrap().sum_all().unwrap().backward().unwrap();
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let got = [
        flat(&out),
        flat(grads.get(x.as_tensor()).unwrap()),
        flat(grads.get(&conv.weight).unwrap()),
        flat(grads.get(conv.bias.as_ref().unwrap()).unwrap()),
    ];
    for (what, (g, w)) in
        ["output", "grad x", "grad weight", "grad bias"].iter().zip(got.iter().zip(want))
    {
        assert_eq!(g.len(), w.len(), "{what} length");
        for (i, (a, b)) in g.iter().zip(w.iter()).enumerate() {
            assert!((a - b).abs() < 1e-5, "{what}[{i}]: got {a}, want {b}");
        }
    }
}

#[test]
fn conv_stride2_padding1_square_matches_pytorch() {
    check_on(
        (1, 2, 6, 6),
        2,
        (1, 1, 1, 1),
        &[1, 3, 3, 3],
        [
            &[
                -0.2632141, 0.3019973, 1.0060629, -0.0315891, -0.6202154, -0.8898559, 0.7582713,
                0.9479531, 0.3816760, 0.5342779, 0.3281279, -0.5481718, -0.3492930, 0.0695724,
                0.5082463, -0.6278833, -0.9998138, -0.7525547, -0.5161034, -0.7502191, -0.0468670,
                0.6713673, 0.5872573, 0.1523471, 0.3289484, 0.7366211, 0.9057773,
            ],
            &[
                0.3030820, 0.6294649, 0.3827950, 0.6891458, 0.3687865, 0.3879018, 0.1010186,
                0.1563141, 0.0807150, 0.1026283, 0.0406495, 0.0777065, 0.2644861, 0.3290251,
                0.0954303, -0.0026065, -0.0969901, -0.0043165, -0.0093684, -0.0608283, -0.0570925,
                -0.1305790, -0.0908385, -0.0623890, -0.2656640, -0.5829163, -0.3692941, -0.6895146,
                -0.3825081, -0.3885125, -0.0183696, -0.2050665, -0.2097612, -0.5119028, -0.3497960,
                -0.3067762, -0.3686277, -0.5325969, -0.2053302, -0.1811223, 0.0082393, -0.0734766,
                -0.0296375, 0.0464148, 0.0743289, 0.2263886, 0.1600971, 0.1366250, 0.2197915,
                0.5579515, 0.3775311, 0.7645998, 0.4428379, 0.4238931, 0.2066679, 0.3895596,
                0.2026392, 0.3328067, 0.1489974, 0.1554022, 0.3997226, 0.6115327, 0.2587412,
                0.2892936, 0.0544110, 0.1334466, 0.4099959, 0.7367530, 0.3878317, 0.6052629,
                0.2707127, 0.3229119,
            ],
            &[
                -1.5297854, -1.4882700, -1.7205968, 1.8905462, 1.9021566, 2.9439735, 0.9954603,
                1.4285105, 0.0762694, -1.4048580, -1.7154814, -1.4739758, 3.2155938, 3.6021023,
                3.7412200, -1.4151579, -1.3342478, -2.5130146, 0.3615505, 0.6355814, 0.1281473,
                -1.3532630, -1.4706616, -1.5954664, 1.1819155, 0.3949420, 0.9274581, -0.7753004,
                -0.4153610, -0.8831887, -0.6742929, -1.4969209, -1.1952881, 1.4105686, 1.3462585,
                1.5652310, 1.3773587, 1.2203143, 1.6665710, -1.3200221, -1.2821380, -2.2713382,
                -1.4937458, -1.5950147, -0.4672781, 1.7317181, 1.8905941, 1.8463207, -2.9313178,
                -2.9710126, -3.2372968, 0.8204739, 0.7666766, 1.8531265,
            ],
            &[0.4438151, 2.9499633, -1.6874952],
        ],
    );
}

#[test]

fn conv_stride2_padding1_matches_pytorch() {
    check(
        2,
        (1, 1, 1, 1),
        &[1, 3, 2, 3],
        [
            &[
                -0.3473030, 0.3961664, 0.8522578, 0.5833663, -0.1845002, -0.6891935, 0.7152848,
                0.4435746, -0.4252525, -1.1200895, -0.8642342, 0.0242991, -0.7227283, -1.0298060,
                -0.0904817, 1.2943819, 1.6513213, 0.7289487,
            ],
            &[
                0.0967686, 0.2223340, 0.0896275, 0.1440700, 0.0605426, 0.0698219, -0.2520865,
                -0.3029077, -0.9569948, -0.6014749, 0.0166347, -0.0904802, -0.0313460, -0.1893403,
                -0.0716520, -0.3460481, -0.5718611, -0.1697678, -0.1955623, 0.0480776, -0.6448838,
                -1.4515510, -0.8249827, -1.5971901, -0.8030972, -1.0314260, -1.8618877, -0.8045926,
                -1.1956683, -0.3807668, -0.5845854, -0.7754097, -0.2229468, -0.0091905, 0.1932770,
                -0.3688547, -0.4194259, -0.1172860, 0.1118468, 0.1629983,
            ],
            &[
                0.0747429, 0.7173129, 0.4497217, 1.5255952, 1.5266114, 0.6634111, 0.6068010,
                0.3564930, 0.6065198, 0.2606058, 0.3035927, -0.2954866, 1.6294252, 1.3961166,
                1.0289097, -1.3165308, -1.3627604, -0.5105151, -0.1870641, -0.8385409, -0.5393918,
                -1.3115151, -1.2367711, -0.3790809, -0.6225110, -0.3080369, -0.5785119, -0.1037014,
                -0.0924230, 0.4455691, -1.4950702, -1.1490276, -0.8047742, 1.1135429, 1.1005504,
                0.2497578, 0.2956412, 0.9429854, 0.6182659, 1.0711849, 0.9221767, 0.0871633,
                0.6257615, 0.2534156, 0.5389252, -0.0552787, -0.1205965, -0.5867336, 1.3307912,
                0.8789408, 0.5645310, -0.8882672, -0.8163130, 0.0159986,
            ],
            &[3.1370723, -3.4630928, 3.7197993],
        ],
    );
}

#[test]
fn conv_asymmetric_padding_matches_pytorch() {
    check(
        1,
        (0, 1, 1, 2),
        &[1, 3, 3, 6],
        [
            &[
                0.8721036, 1.5108656, 1.6734428, 1.6230623, 1.0017711, 0.4552355, 0.5833663,
                0.3971603, -0.1845002, -0.7276551, -0.6891935, -0.3810292, -0.5698377, -1.1706049,
                -1.3499343, -1.3330220, -0.7571313, -0.2414813, -0.3922862, -0.9097575, -1.3580587,
                -1.6496223, -1.2386883, -0.7111539, -1.1200895, -1.3237885, -0.8642342, -0.3147791,
                0.0242991, 0.0548456, -0.1133509, 0.3521381, 0.8141497, 1.1389010, 0.7786014,
                0.2901464, -0.1632741, 0.0290702, 0.5865057, 1.1051639, 1.0664579, 0.7657245,
                1.2943819, 1.8077474, 1.6513213, 1.3120006, 0.7289487, 0.3717239, 0.8306713,
                0.6838206, 0.1211168, -0.4173759, -0.4145923, -0.1457388,
            ],
            &[
                1.0248824, 1.5336999, 1.4944651, 1.0893333, 0.4174947, -0.4601907, -1.0026201,
                -1.3387805, -1.3471609, -1.0257093, 0.0730412, 0.0866109, 0.1133252, 0.1122932,
                0.0837683, 0.6309841, 1.1949742, 1.4442321, 1.3398918, 0.9074991, -0.9029221,
                -1.7178280, -2.0829334, -1.9380643, -1.3186895, -0.4469398, -0.4739398, -0.1751109,
                0.1665915, 0.4675063, -0.5563030, -0.9826168, -1.2124921, -1.1455075, -0.7980623,
                0.0716811, -0.2008365, -0.6267806, -0.8992664, -0.9515810,
            ],
            &[
                -3.8124604, -3.2118990, -1.4153297, 3.5775268, 5.2378693, 5.0830922, -1.0357207,
                -2.9040771, -3.9756374, 0.6904388, 2.6608245, 3.7668934, 4.2114720, 3.9503465,
                2.2427130, -4.0877876, -5.2839928, -4.5539360, 3.3585896, 2.0722191, 0.4739386,
                -5.0633054, -5.6484399, -4.6992364, 2.6587224, 3.9464488, 4.1827211, -2.3954966,
                -3.8381171, -4.0634184, -4.0559115, -2.9591155, -1.2931573, 5.1829381, 5.2866335,
                4.0532293, -2.3077652, -0.5642240, 0.5516897, 5.6491346, 5.0550594, 3.4801402,
                -3.8091638, -4.2873807, -3.6463709, 3.6747799, 4.3332253, 3.6377130, 3.1794562,
                1.4419327, 0.1137570, -5.3568754, -4.3496304, -2.8321033,
            ],
            &[3.3937790, -3.9260247, 3.7604613],
        ],
    );
}

#[test]
fn conv_init_follows_pytorch_bounds() {
    let mut init = Init::new(0, &Device::Cpu);
    let cfg = Conv2dConfig { padding: 1, ..Default::default() };
    let conv = Conv2d::new(&mut init, "c", 16, 32, (3, 3), cfg).unwrap();
    let bound = 1.0 / ((16 * 9) as f32).sqrt();
    for t in [&conv.weight, conv.bias.as_ref().unwrap()] {
        let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let max = v.iter().fold(0f32, |a, &x| a.max(x.abs()));
        assert!(max <= bound && max > 0.9 * bound, "max {max} bound {bound}");
    }
}

#[test]
fn cnn_parameter_counts_match_the_originals() {
    let simple = Sequential::new("SimpleCNN")
        .conv2d(1, 8, 3, 1, 1)
        .relu()
        .conv2d(8, 16, 3, 1, 1)
        .relu()
        .conv2d(16, 32, 3, 2, 1)
        .relu()
        .conv2d(32, 64, 3, 2, 1)
        .relu()
        .conv2d(64, 128, 7, 1, 0)
        .relu()
        .flatten()
        .linear(128, 10)
        .build(0)
        .unwrap();
    assert_eq!(simple.num_parameters(), 427210);
    let x = Tensor::zeros((2, 1, 28, 28), support::candle::DType::F32, &Device::Cpu).unwrap();
    assert_eq!(simple.forward(&x).unwrap().dims(), [2, 10]);
    let lenet = Sequential::new("LeNet5")
        .conv2d(1, 6, 5, 1, 2)
        .relu()
        .max_pool2d(2, 2, 0)
        .conv2d(6, 16, 5, 1, 0)
        .relu()
        .max_pool2d(2, 2, 0)
        .flatten()
        .linear(400, 120)
        .linear(120, 84)
        .linear(84, 10)
        .build(0)
        .unwrap();
    assert_eq!(lenet.num_parameters(), 61706);
    assert_eq!(lenet.forward(&x).unwrap().dims(), [2, 10]);
    assert_eq!(
        lenet.to_string().lines().take(5).collect::<Vec<_>>(),
        [
            "LeNet5(",
            "  (0): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))",
            "  (1): ReLU()",
            "  (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)",
            // PyTorch leaves a zero padding out.
            "  (3): Conv2d(6, 16, kernel_size=(5, 5), stride=(1, 1))",
        ]
    );
    let bad = Tensor::zeros((2, 3, 28, 28), support::candle::DType::F32, &Device::Cpu).unwrap();
    assert!(lenet.forward(&bad).unwrap_err().to_string().contains("expected (N, 1, H, W)"));
}

/// The batched path (several images per core) against candle's own conv2d, on a square input
/// where candle's backward is right; and no input gradient for raw data.
#[test]
fn batched_conv_matches_candle_and_skips_the_data_gradient() {
    let mut rng = Rng::new(5);
    let x = Tensor::from_vec(rng.uniform_vec(7 * 3 * 9 * 9, -1.0, 1.0), (7, 3, 9, 9), &Device::Cpu)
        .unwrap();
    let xv = support::candle::Var::from_tensor(&x).unwrap();
    let w = support::candle::Var::from_vec(
        rng.uniform_vec(4 * 3 * 3 * 3, -1.0, 1.0),
        (4, 3, 3, 3),
        &Device::Cpu,
    )
    .unwrap();
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for (stride, pad) in [(1, 1), (2, 1), (2, 0), (3, 2)] {
        let ours =
            support::nn::functional::conv2d(xv.as_tensor(), w.as_tensor(), None, stride, pad)
                .unwrap();
        let theirs = xv.as_tensor().conv2d(w.as_tensor(), pad, stride, 1, 1).unwrap();
        assert_eq!(ours.dims(), theirs.dims());
        let wgt = Tensor::from_vec(
            rng.uniform_vec(ours.elem_count(), -1.0, 1.0),
            ours.shape(),
            &Device::Cpu,
        )
        .unwrap();
        let g1 = ours.mul(&wgt).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = theirs.mul(&wgt).unwrap().sum_all().unwrap().backward().unwrap();
        for (a, b) in [
            (flat(&ours), flat(&theirs)),
            (flat(g1.get(w.as_tensor()).unwrap()), flat(g2.get(w.as_tensor()).unwrap())),
            (flat(g1.get(xv.as_tensor()).unwrap()), flat(g2.get(xv.as_tensor()).unwrap())),
        ] {
            assert!(
                a.iter().zip(&b).all(|(p, q)| (p - q).abs() < 1e-4),
                "stride {stride} pad {pad}"
            );
        }
    }
    // Raw data (not a variable, no op): only the weight gets a gradient.
    let y = support::nn::functional::conv2d(&x, w.as_tensor(), None, 1, 1).unwrap();
    let grads = y.sum_all().unwrap().backward().unwrap();
    assert!(grads.get(&x).is_none() && grads.get(w.as_tensor()).is_some());
}

/// Every geometry the fast im2col/col2im paths distinguish (stride 1 slices, strided gathers,
/// kernels wider than the padding, rows entirely in the padding): the forward against candle's
/// conv2d, and the input gradient by the adjoint identity <conv(x), g> = <x, dX(g)> (exact for a
/// linear map, so it checks col2im against im2col without trusting candle's backward).
#[test]
fn conv_geometry_sweep_forward_and_adjoint() {
    let mut rng = Rng::new(3);
    for &(h, w) in &[(7usize, 5usize), (6, 9), (4, 4)] {
        for k in 1..=5 {
            for stride in 1..=3 {
                for pad in 0..=2 {
                    if h + 2 * pad < k || w + 2 * pad < k {
                        continue;
                    }
                    let x = support::candle::Var::from_vec(
                        rng.uniform_vec(2 * 3 * h * w, -1.0, 1.0),
                        (2, 3, h, w),
                        &Device::Cpu,
                    )
                    .unwrap();
                    let wt = Tensor::from_vec(
                        rng.uniform_vec(4 * 3 * k * k, -1.0, 1.0),
                        (4, 3, k, k),
                        &Device::Cpu,
                    )
                    .unwrap();
                    let ours =
                        support::nn::functional::conv2d(x.as_tensor(), &wt, None, stride, pad)
                            .unwrap();
                    let theirs = x.as_tensor().conv2d(&wt, pad, stride, 1, 1).unwrap();
                    assert_eq!(ours.dims(), theirs.dims(), "h{h} w{w} k{k} s{stride} p{pad}");
                    let diff = (&ours - &theirs)
                        .unwrap()
                        .abs()
                        .unwrap()
                        .max_all()
                        .unwrap()
                        .to_scalar::<f32>()
                        .unwrap();
                    assert!(
                        diff < 1e-4,
                        "forward h{h} w{w} k{k} s{stride} p{pad}: max diff {diff}"
                    );
                    let g = Tensor::from_vec(
                        rng.uniform_vec(ours.elem_count(), -1.0, 1.0),
                        ours.shape(),
                        &Device::Cpu,
                    )
                    .unwrap();
                    let dx = ours
                        .mul(&g)
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .backward()
                        .unwrap()
                        .get(x.as_tensor())
                        .unwrap()
                        .clone();
                    let lhs = ours.mul(&g).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
                    let rhs = x
                        .as_tensor()
                        .mul(&dx)
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .to_scalar::<f32>()
                        .unwrap();
                    assert!(
                        (lhs - rhs).abs() < 1e-3 * (1.0 + lhs.abs()),
                        "adjoint h{h} w{w} k{k} s{stride} p{pad}: {lhs} vs {rhs}"
                    );
                }
            }
        }
    }
}

/// Depthwise convolution (EfficientNet): forward against candle's grouped conv2d on explicitly
/// padded input, for TF-"SAME"-style asymmetric pads, strides 1 and 2, kernels 3 and 5; weight
/// and input gradients against candle's autograd on square inputs (where candle's is right).
#[test]
fn depthwise_conv_matches_grouped_conv() {
    let mut rng = Rng::new(5);
    for &(k, stride, pad) in &[
        (3usize, 1usize, (1usize, 1usize, 1usize, 1usize)),
        (3, 2, (0, 1, 0, 1)),
        (5, 2, (1, 2, 1, 2)),
        (5, 1, (2, 2, 2, 2)),
        (3, 2, (1, 1, 0, 2)),
    ] {
        let (c, h, w) = (4, 9, 9);
        let x = support::candle::Var::from_vec(
            rng.uniform_vec(2 * c * h * w, -1.0, 1.0),
            (2, c, h, w),
            &Device::Cpu,
        )
        .unwrap();
        let wt = support::candle::Var::from_vec(
            rng.uniform_vec(c * k * k, -1.0, 1.0),
            (c, 1, k, k),
            &Device::Cpu,
        )
        .unwrap();
        let ours =
            support::nn::functional::depthwise_conv2d(x.as_tensor(), wt.as_tensor(), stride, pad)
                .unwrap();
        let padded = x
            .as_tensor()
            .pad_with_zeros(2, pad.0, pad.1)
            .unwrap()
            .pad_with_zeros(3, pad.2, pad.3)
            .unwrap();
        let theirs = padded.conv2d(wt.as_tensor(), 0, stride, 1, c).unwrap();
        assert_eq!(ours.dims(), theirs.dims(), "k{k} s{stride} {pad:?}");
        let diff = (&ours - &theirs)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-5, "forward k{k} s{stride} {pad:?}: {diff}");
        let g = Tensor::from_vec(
            rng.uniform_vec(ours.elem_count(), -1.0, 1.0),
            ours.shape(),
            &Device::Cpu,
        )
        .unwrap();
        let ga = ours.mul(&g).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = theirs.mul(&g).unwrap().sum_all().unwrap().backward().unwrap();
        for (what, t) in [("weight", wt.as_tensor()), ("input", x.as_tensor())] {
            let d = (ga.get(t).unwrap() - gb.get(t).unwrap())
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(d < 1e-4, "grad {what} k{k} s{stride} {pad:?}: {d}");
        }
    }
}

/// The fused convolution + ReLU gives the same output and the same gradients (input, weight,
/// bias) as the convolution followed by a separate ReLU.
#[test]
fn fused_conv_relu_equals_conv_then_relu() {
    let mut rng = Rng::new(9);
    for &(stride, pad, with_bias) in
        &[(1usize, 1usize, true), (2, 1, true), (1, 0, false), (2, 0, false)]
    {
        let x = support::candle::Var::from_vec(
            rng.uniform_vec(2 * 3 * 8 * 8, -1.0, 1.0),
            (2, 3, 8, 8),
            &Device::Cpu,
        )
        .unwrap();
        let w = support::candle::Var::from_vec(
            rng.uniform_vec(5 * 3 * 9, -0.5, 0.5),
            (5, 3, 3, 3),
            &Device::Cpu,
        )
        .unwrap();
        let b =
            support::candle::Var::from_vec(rng.uniform_vec(5, -0.3, 0.3), 5, &Device::Cpu).unwrap();
        let bias = with_bias.then(|| b.as_tensor());
        let fused =
            support::nn::functional::conv2d_relu(x.as_tensor(), w.as_tensor(), bias, stride, pad)
                .unwrap();
        let plain = match bias {
            Some(b) => {
                support::nn::functional::conv2d(x.as_tensor(), w.as_tensor(), Some(b), stride, pad)
                    .unwrap()
            }
            None => {
                support::nn::functional::conv2d(x.as_tensor(), w.as_tensor(), None, stride, pad)
                    .unwrap()
            }
        };
        let plain = support::nn::functional::relu(&plain).unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(flat(&fused), flat(&plain), "output s{stride} p{pad} bias {with_bias}");
        let g = Tensor::from_vec(
            rng.uniform_vec(fused.elem_count(), -1.0, 1.0),
            fused.shape(),
            &Device::Cpu,
        )
        .unwrap();
        let ga = fused.mul(&g).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = plain.mul(&g).unwrap().sum_all().unwrap().backward().unwrap();
        let mut vars = vec![("x", x.as_tensor()), ("w", w.as_tensor())];
        if with_bias {
            vars.push(("b", b.as_tensor()));
        }
        for (what, t) in vars {
            let (a, c) = (flat(ga.get(t).unwrap()), flat(gb.get(t).unwrap()));
            for (i, (p, q)) in a.iter().zip(&c).enumerate() {
                assert!((p - q).abs() <= 1e-6, "grad {what}[{i}] s{stride} p{pad}: {p} vs {q}");
            }
        }
    }
}

/// Small feature maps with a batch large enough that several images share one gemm (groups of
/// up to 512 columns, the last group of each core shorter): output, input, weight and bias
/// gradients against candle's conv2d and autograd (square inputs, where candle's backward is
/// right), for 3x3, strided and pointwise convolutions, with and without the fused ReLU.
#[test]
fn grouped_small_maps_match_candle() {
    let mut rng = Rng::new(17);
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for &(n, c, o, hw, k, stride, pad, relu) in &[
        (13usize, 5usize, 6usize, 7usize, 1usize, 1usize, 0usize, false),
        (13, 5, 6, 7, 1, 1, 0, true),
        (11, 4, 3, 8, 3, 1, 1, true),
        (9, 3, 4, 6, 3, 2, 1, false),
        (21, 6, 2, 4, 3, 1, 1, false),
        (9, 3, 6, 12, 5, 1, 2, true), // CIFAR LeNet-5's first layer: O = 6 rows against C*K*K = 75
        // per core: groups of 8, 8 and 4 images (the im2col layout changes)
        (40, 20, 5, 8, 3, 1, 1, false),
    ] {
        let x = support::candle::Var::from_vec(
            rng.uniform_vec(n * c * hw * hw, -1.0, 1.0),
            (n, c, hw, hw),
            &Device::Cpu,
        )
        .unwrap();
        let w = support::candle::Var::from_vec(
            rng.uniform_vec(o * c * k * k, -0.5, 0.5),
            (o, c, k, k),
            &Device::Cpu,
        )
        .unwrap();
        let b =
            support::candle::Var::from_vec(rng.uniform_vec(o, -0.3, 0.3), o, &Device::Cpu).unwrap();
        let ours = if relu {
            support::nn::functional::conv2d_relu(
                x.as_tensor(),
                w.as_tensor(),
                Some(b.as_tensor()),
                stride,
                pad,
            )
            .unwrap()
        } else {
            support::nn::functional::conv2d(
                x.as_tensor(),
                w.as_tensor(),
                Some(b.as_tensor()),
                stride,
                pad,
            )
            .unwrap()
        };
        let mut theirs = x
            .as_tensor()
            .conv2d(w.as_tensor(), pad, stride, 1, 1)
            .unwrap()
            .broadcast_add(&b.as_tensor().reshape((1, o, 1, 1)).unwrap())
            .unwrap();
        if relu {
            theirs = theirs.relu().unwrap();
        }
        let case = format!("n{n} c{c} o{o} {hw}x{hw} k{k} s{stride} p{pad} relu {relu}");
        assert_eq!(ours.dims(), theirs.dims(), "{case}");
        let g = Tensor::from_vec(
            rng.uniform_vec(ours.elem_count(), -1.0, 1.0),
            ours.shape(),
            &Device::Cpu,
        )
        .unwrap();
        let ga = ours.mul(&g).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = theirs.mul(&g).unwrap().sum_all().unwrap().backward().unwrap();
        let mut pairs = vec![("output", flat(&ours), flat(&theirs))];
        for (what, t) in [("dx", x.as_tensor()), ("dw", w.as_tensor()), ("db", b.as_tensor())] {
            pairs.push((what, flat(ga.get(t).unwrap()), flat(gb.get(t).unwrap())));
        }
        for (what, a, e) in pairs {
            assert_eq!(a.len(), e.len(), "{what} {case}");
            let worst = a.iter().zip(&e).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
            assert!(worst < 1e-4, "{what} {case}: max diff {worst}");
        }
    }
}

/// The direct kernels (stride 1, few channels) against im2col + gemm on the same op: output,
/// input, weight and bias gradients, for LeNet-5's and SimpleCNN's layers, several output-channel
/// blocks (11 = 6 + 5), rows that end in a partial 8-pixel tile or are narrower than one, padding
/// up to K-1, kernels from 3 to 9, with and without bias and the fused ReLU. (On a CPU without
/// AVX2 + FMA both runs take the gemm path.)
#[test]
fn direct_kernels_match_im2col_gemm() {
    let mut rng = Rng::new(23);
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for &(n, c, o, h, w, k, pad, relu, bias) in &[
        // CIFAR LeNet-5, first layer
        (3usize, 3usize, 6usize, 32usize, 32usize, 5usize, 2usize, true, true),
        (2, 6, 16, 16, 16, 5, 0, true, true), // and second
        (2, 1, 8, 28, 28, 3, 1, true, true),  // SimpleCNN, first layer
        (2, 16, 16, 12, 9, 3, 1, false, false),
        (3, 5, 11, 10, 13, 7, 3, false, true),
        (1, 2, 1, 6, 6, 3, 2, true, false),
        (2, 4, 3, 5, 5, 3, 1, false, false),
        (2, 20, 24, 9, 17, 3, 0, true, true),
        (2, 3, 7, 11, 10, 4, 1, true, true), // an even kernel (weight-gradient blocks of 3)
        (1, 2, 3, 12, 12, 9, 4, false, true), // wider than 7 (one tap at a time)
    ] {
        let x = support::candle::Var::from_vec(
            rng.uniform_vec(n * c * h * w, -1.0, 1.0),
            (n, c, h, w),
            &Device::Cpu,
        )
        .unwrap();
        let wt = support::candle::Var::from_vec(
            rng.uniform_vec(o * c * k * k, -0.5, 0.5),
            (o, c, k, k),
            &Device::Cpu,
        )
        .unwrap();
        let b =
            support::candle::Var::from_vec(rng.uniform_vec(o, -0.3, 0.3), o, &Device::Cpu).unwrap();
        let case = format!("n{n} c{c} o{o} {h}x{w} k{k} p{pad} relu {relu} bias {bias}");
        let run = |direct: bool| {
            let y = support::internals::conv2d_path(
                x.as_tensor(),
                wt.as_tensor(),
                bias.then_some(b.as_tensor()),
                (1, pad),
                relu,
                direct,
            )
            .unwrap();
            let g = Tensor::from_vec(
                Rng::new(9).uniform_vec(y.elem_count(), -1.0, 1.0),
                y.shape(),
                &Device::Cpu,
            )
            .unwrap();
            let grads = y.mul(&g).unwrap().sum_all().unwrap().backward().unwrap();
            let mut out = vec![
                ("output", flat(&y)),
                ("dx", flat(grads.get(x.as_tensor()).unwrap())),
                ("dw", flat(grads.get(wt.as_tensor()).unwrap())),
            ];
            if bias {
                out.push(("db", flat(grads.get(b.as_tensor()).unwrap())));
            }
            out
        };
        for ((what, a), (_, e)) in run(true).into_iter().zip(run(false)) {
            assert_eq!(a.len(), e.len(), "{what} {case}");
            let scale = e.iter().fold(1f32, |m, v| m.max(v.abs()));
            let worst = a.iter().zip(&e).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
            assert!(worst < 2e-5 * scale, "{what} {case}: max diff {worst} (scale {scale})");
        }
    }
}

/// Layers with more than 16 channels run their forward pass and input gradient in the direct
/// kernels and their weight gradient through im2col + gemm: that mix, the path `conv2d_relu`
/// picks by shape, must give what im2col + gemm alone gives.
#[test]
fn default_path_mixes_direct_and_gemm() {
    let mut rng = Rng::new(31);
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for &(n, c, o, h, k, pad) in &[
        (2usize, 32usize, 24usize, 10usize, 3usize, 1usize),
        (2, 40, 20, 8, 5, 2),
        (3, 12, 36, 9, 3, 1),
    ] {
        let x = support::candle::Var::from_vec(
            rng.uniform_vec(n * c * h * h, -1.0, 1.0),
            (n, c, h, h),
            &Device::Cpu,
        )
        .unwrap();
        let wt = support::candle::Var::from_vec(
            rng.uniform_vec(o * c * k * k, -0.3, 0.3),
            (o, c, k, k),
            &Device::Cpu,
        )
        .unwrap();
        let b =
            support::candle::Var::from_vec(rng.uniform_vec(o, -0.3, 0.3), o, &Device::Cpu).unwrap();
        let run = |default: bool| {
            let y = if default {
                support::nn::functional::conv2d_relu(
                    x.as_tensor(),
                    wt.as_tensor(),
                    Some(b.as_tensor()),
                    1,
                    pad,
                )
                .unwrap()
            } else {
                support::internals::conv2d_path(
                    x.as_tensor(),
                    wt.as_tensor(),
                    Some(b.as_tensor()),
                    (1, pad),
                    true,
                    false,
                )
                .unwrap()
            };
            let g = Tensor::from_vec(
                Rng::new(5).uniform_vec(y.elem_count(), -1.0, 1.0),
                y.shape(),
                &Device::Cpu,
            )
            .unwrap();
            let grads = y.mul(&g).unwrap().sum_all().unwrap().backward().unwrap();
            [
                ("output", flat(&y)),
                ("dx", flat(grads.get(x.as_tensor()).unwrap())),
                ("dw", flat(grads.get(wt.as_tensor()).unwrap())),
                ("db", flat(grads.get(b.as_tensor()).unwrap())),
            ]
        };
        let case = format!("n{n} c{c} o{o} {h}x{h} k{k}");
        for ((what, a), (_, e)) in run(true).into_iter().zip(run(false)) {
            assert_eq!(a.len(), e.len(), "{what} {case}");
            let scale = e.iter().fold(1f32, |m, v| m.max(v.abs()));
            let worst = a.iter().zip(&e).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
            assert!(worst < 2e-5 * scale, "{what} {case}: max diff {worst} (scale {scale})");
        }
    }
}
