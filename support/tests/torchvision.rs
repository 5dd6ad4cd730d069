//! Parity with torchvision: every state_dict tensor is filled from the same integer hash on both
//! sides (He-uniform scale, so the signal survives depth), the same hashed image goes in, and the
//! logits must match the ones torchvision 0.29
//! printed (`tests/golden/make_golden_torchvision.py`). Checks key names, shapes, strides,
//! paddings, pooling, BatchNorm in eval mode and Inception v3's `transform_input`. Parameter
//! counts are torchvision's `sum(p.numel() for p in model.parameters())`.

use support::models::{TorchvisionModel, TorchvisionNet};
use support::nn::Model;
use support::{Device, Tensor};

fn key_seed(name: &str) -> u64 {
    name.bytes().map(|b| b as u64).sum::<u64>() % 97
}

/// Mirrors `uniform` in the Python script: n values in [-1, 1) from an integer hash.
fn uniform(n: usize, seed: u64) -> Vec<f64> {
    (0..n as u64)
        .map(|j| {
            let mut h = (j.wrapping_mul(2654435761).wrapping_add(seed * 1013904223)) & 0xFFFF_FFFF;
            h ^= h >> 15;
            h = (h * 2246822519) & 0xFFFF_FFFF;
            h ^= h >> 13;
            h as f64 / 4294967296.0 * 2.0 - 1.0
        })
        .collect()
}

/// Mirrors `fill` in the Python script.
fn fill(name: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let leaf = name.rsplit('.').next().unwrap();
    uniform(n, key_seed(name))
        .into_iter()
        .map(|s| {
            (match leaf {
                "running_var" => 1.0 + 0.2 * s * s,
                "running_mean" => 0.05 * s,
                "weight" if shape.len() == 1 => 1.0 + 0.1 * s,
                "bias" => 0.01 * s,
                _ => s * (6.0 / (n / shape[0]) as f64).sqrt(),
            }) as f32
        })
        .collect()
}

fn image(size: usize) -> Tensor {
    let v: Vec<f32> = uniform(3 * size * size, 7).into_iter().map(|u| (1.5 * u) as f32).collect();
    Tensor::from_vec(v, (1, 3, size, size), &Device::Cpu).unwrap()
}

fn check(
    name: &str,
    params: usize,
    size: usize,
    first: [f64; 8],
    sum: f64,
    norm: f64,
    argmax: usize,
) {
    let model = TorchvisionNet::new(name.parse().unwrap(), &Device::Cpu).unwrap();
    assert_eq!(model.num_parameters(), params, "{name} parameter count");
    let p = model.params();
    for (key, var) in p.named().iter().chain(p.buffers()) {
        var.set(&Tensor::from_vec(fill(key, var.dims()), var.dims(), &Device::Cpu).unwrap())
            .unwrap();
    }
    let out: Vec<f64> = model
        .forward(&image(size))
        .unwrap()
        .get(0)
        .unwrap()
        .to_dtype(support::candle::DType::F64)
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(out.len(), 1000);
    let scale = norm / (1000f64).sqrt();
    for (i, (g, w)) in out.iter().zip(first).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4 * scale.max(w.abs()),
            "{name} logit {i}: got {g}, torchvision {w}"
        );
    }
    let (s, n) = (out.iter().sum::<f64>(), out.iter().map(|v| v * v).sum::<f64>().sqrt());
    assert!((n - norm).abs() <= 1e-4 * norm, "{name} logit norm: got {n}, torchvision {norm}");
    assert!((s - sum).abs() <= 1e-4 * norm * 30.0, "{name} logit sum: got {s}, torchvision {sum}");
    let am = out.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
    assert_eq!(am, argmax, "{name} argmax");
}

#[test]
fn alexnet_matches_torchvision() {
    check(
        "AlexNet",
        61100840,
        224,
        [
            9.700729e-01, 5.781948e+00, -5.269471e+00, 6.918280e+00, 4.324163e+00, -5.578323e+00,
            -4.364000e+00, -1.702306e-01,
        ],
        1.478773e+02,
        1.329782e+02,
        22,
    );
}

#[test]
fn vgg16_matches_torchvision() {
    check(
        "VGG16",
        138357544,
        224,
        [
            -2.009005e+00, -2.167196e+00, 3.580132e+00, 1.517798e+00, -3.945935e-02, 3.700812e+00,
            2.950071e+00, -1.455847e+00,
        ],
        1.282178e+02,
        1.091560e+02,
        356,
    );
}

#[test]
fn resnet18_matches_torchvision() {
    check(
        "ResNet18",
        11689512,
        224,
        [
            -4.971821e+01, -4.501657e+01, -4.735948e+00, 3.891695e+00, 1.184814e+01, -5.467498e+01,
            8.520658e+01, -3.729035e+01,
        ],
        2.367408e+03,
        1.197097e+03,
        820,
    );
}

#[test]
fn resnet101_matches_torchvision() {
    check(
        "ResNet101",
        44549160,
        224,
        [
            1.189606e+05, -2.913666e+04, -3.980992e+04, -2.319589e+05, -6.956312e+04,
            -7.120411e+04, 1.904488e+05, 1.407719e+05,
        ],
        5.640107e+05,
        5.534474e+06,
        887,
    );
}

#[test]
fn inception_v3_matches_torchvision() {
    check(
        "Inception v3",
        27161264,
        299,
        [
            3.876040e-01, -4.920188e-01, -7.201942e-02, -1.247271e+00, 5.274675e-01, 2.417396e-01,
            2.964571e-01, 1.859950e-02,
        ],
        1.200147e+01,
        1.221147e+01,
        255,
    );
}

#[test]
fn unknown_model_and_bad_input_are_errors() {
    assert!("ResNet50"
        .parse::<TorchvisionModel>()
        .err()
        .unwrap()
        .to_string()
        .contains("no torchvision model `ResNet50`"));
    let m = TorchvisionNet::new(TorchvisionModel::ResNet18, &Device::Cpu).unwrap();
    let err = m
        .forward(&Tensor::zeros((1, 1, 64, 64), support::candle::DType::F32, &Device::Cpu).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("expects images (N, 3, H, W)"), "{err}");
}

/// `println!("{model}")` prints torchvision's `print(model)` text (the golden files are
/// torchvision's own, written by `tests/golden/make_golden_reprs.py`), line for line.
#[test]
fn printed_as_torchvision_prints_them() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reprs");
    let files = ["alexnet", "vgg16", "inception_v3", "resnet18", "resnet101"];
    for (arch, file) in TorchvisionModel::ALL.into_iter().zip(files) {
        let net = TorchvisionNet::new(arch, &Device::Cpu).unwrap();
        let file = dir.join(format!("{file}.txt"));
        let want = std::fs::read_to_string(&file).unwrap();
        let got = format!("{net}\n");
        for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
            assert_eq!(g, w, "{arch}, line {}", i + 1);
        }
        assert_eq!(got.lines().count(), want.lines().count(), "{arch}");
    }
}

/// The maps the features are pooled from: AlexNet's `features` block gives the original's
/// `[32, 256, 6, 6]` at 224 pixels (here a batch of 2), ResNet18's `layer4` 512 x 7 x 7, and
/// the pooled features are those maps averaged.
#[test]
fn feature_maps_are_what_the_features_pool() {
    let x = Tensor::rand(-1f32, 1., (2, 3, 224, 224), &Device::Cpu).unwrap();
    let alexnet = TorchvisionNet::new(TorchvisionModel::AlexNet, &Device::Cpu).unwrap();
    let maps = alexnet.feature_maps(&x).unwrap();
    assert_eq!(maps.dims(), [2, 256, 6, 6]);
    let pooled: Vec<f32> = maps.flatten_from(1).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let features: Vec<f32> =
        alexnet.features(&x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(pooled, features, "AlexNet's avgpool is the identity at 224 pixels");
    let resnet18 = TorchvisionNet::new(TorchvisionModel::ResNet18, &Device::Cpu).unwrap();
    let maps = resnet18.feature_maps(&x).unwrap();
    assert_eq!(maps.dims(), [2, 512, 7, 7]);
    let mean: Vec<f32> = maps.mean((2, 3)).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let features: Vec<f32> =
        resnet18.features(&x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(mean, features);
}
