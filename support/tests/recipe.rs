//! The "modern recipe" pieces against PyTorch (`tests/golden/make_golden_recipe.py`): label
//! smoothing, OneCycleLR, BatchNorm2d in training mode; and the crop + flip augmentation.

use support::candle::{Device, Tensor, Var};
use support::data::CropFlip;
use support::nn::{BatchNorm2d, Init, Model, Sequential};
use support::optim::OneCycle;
use support::rng::Rng;
use support::train::Loss;

fn close(got: &[f32], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what} length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((*g as f64 - w).abs() <= tol, "{what}[{i}]: got {g}, want {w}");
    }
}

#[test]
fn label_smoothing_matches_pytorch() {
    let logits = Var::from_vec(
        vec![1.0f32, 2.0, 0.5, -1.0, 0.3, -0.2, 0.1, 2.2, -1.0, 0.0, 1.0, 0.5],
        (3, 4),
        &Device::Cpu,
    )
    .unwrap();
    let y = Tensor::new(&[1u32, 3, 0], &Device::Cpu).unwrap();
    let loss = Loss::CrossEntropyLabelSmoothing(0.1).compute(logits.as_tensor(), &y).unwrap();
    close(&[loss.to_scalar::<f32>().unwrap()], &[1.245416283607483], 1e-6, "loss");
    let grad = loss
        .backward()
        .unwrap()
        .get(logits.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let want = [
        0.06640259176492691,
        -0.10517998784780502,
        0.03699629381299019,
        0.0017810750287026167,
        0.028251850977540016,
        0.01385670155286789,
        0.02162007987499237,
        -0.06372861564159393,
        -0.2869507372379303,
        0.04979049041867256,
        0.14966358244419098,
        0.08749664574861526,
    ];
    close(&grad, &want, 1e-6, "grad");
    // eps = 0 is plain cross-entropy.
    let plain =
        Loss::CrossEntropy.compute(logits.as_tensor(), &y).unwrap().to_scalar::<f32>().unwrap();
    assert_eq!(
        Loss::CrossEntropyLabelSmoothing(0.0)
            .compute(logits.as_tensor(), &y)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap(),
        plain
    );
}

#[test]
fn one_cycle_matches_pytorch() {
    let s = OneCycle::new(0.01, 100);
    let want = [
        (0, 0.0003999999999999993, 0.95),
        (1, 0.00042813780565907275, 0.9497068978577179),
        (10, 0.002951639484641007, 0.9234204220349895),
        (28, 0.009971862194340927, 0.850293102142282),
        (29, 0.01, 0.85),
        (30, 0.009994965352845242, 0.8500503466729342),
        (50, 0.00793893450575732, 0.8706107373853763),
        (98, 5.07464715475788e-06, 0.9499496533270657),
        (99, 4e-08, 0.95),
    ];
    for (step, lr, m) in want {
        let (l, mm) = s.at(step);
        assert!((l - lr).abs() <= 1e-12 + 1e-9 * lr, "lr at {step}: {l} vs {lr}");
        assert!((mm - m).abs() <= 1e-12, "momentum at {step}: {mm} vs {m}");
    }
}

#[test]
fn batchnorm_training_mode_matches_pytorch() {
    let mut init = Init::new(0, &Device::Cpu);
    let bn = BatchNorm2d::new(&mut init, "bn", 3, 1e-5).unwrap();
    let p = init.finish();
    p.named()[0].1.set(&Tensor::new(&[1.0f32, 0.5, 2.0], &Device::Cpu).unwrap()).unwrap();
    p.named()[1].1.set(&Tensor::new(&[0.1f32, -0.2, 0.3], &Device::Cpu).unwrap()).unwrap();
    let x = Var::from_vec(
        (0..24).map(|i| (0.37 * i as f64 + 0.1).sin() as f32).collect::<Vec<_>>(),
        (2, 3, 2, 2),
        &Device::Cpu,
    )
    .unwrap();
    let out = bn.forward_t(x.as_tensor(), true).unwrap();
    let w = Tensor::from_vec(
        (0..24).map(|j| (0.5 * j as f64 + 1.0).sin() as f32).collect::<Vec<_>>(),
        (2, 3, 2, 2),
        &Device::Cpu,
    )
    .unwrap();
    let grads = out.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    close(
        &flat(&out),
        &[
            0.4289, 0.901334, 1.291746, 1.547294, 0.399891, 0.311333, 0.065949, -0.30305,
            -0.148419, -1.183206, -2.109133, -2.80088, -1.022998, -1.01679, -0.832995, -0.49649,
            -1.171883, -0.714403, -0.27492, 0.087082, 2.273622, 2.448585, 2.240863, 1.678569,
        ],
        2e-5,
        "output",
    );
    close(
        &flat(grads.get(x.as_tensor()).unwrap()),
        &[
            0.009104, 0.230435, 0.122784, -0.286356, 0.936234, 0.280204, -0.343905, -0.796174,
            -1.363448, -0.967419, -0.049189, 1.135027, -0.276327, 0.099874, 0.17348, -0.072994,
            0.520531, 0.132127, -0.241958, -0.487059, -0.729406, -0.323041, 0.570919, 1.726558,
        ],
        2e-5,
        "grad x",
    );
    close(
        &flat(grads.get(&bn.weight).unwrap()),
        &[-0.15879715979099274, -1.5378142595291138, -1.752440094947815],
        2e-5,
        "grad weight",
    );
    close(
        &flat(grads.get(&bn.bias).unwrap()),
        &[6.729567527770996, -3.030745506286621, -4.20709753036499],
        2e-5,
        "grad bias",
    );
    close(
        &flat(bn.running_mean.as_tensor()),
        &[-0.014595507644116879, 0.05190160498023033, 0.024007517844438553],
        1e-6,
        "running mean",
    );
    close(
        &flat(bn.running_var.as_tensor()),
        &[0.9638234376907349, 0.9183630347251892, 0.9571653008460999],
        1e-6,
        "running var",
    );
    // Evaluation mode uses the running statistics and changes nothing.
    let before = flat(bn.running_mean.as_tensor());
    bn.forward_t(x.as_tensor(), false).unwrap();
    assert_eq!(flat(bn.running_mean.as_tensor()), before);
}

#[test]
fn sequential_batchnorm_counts_parameters_not_buffers() {
    let m = Sequential::new("bn")
        .conv2d(3, 8, 3, 1, 1)
        .batch_norm2d(8)
        .relu()
        .flatten()
        .linear(8 * 4 * 4, 10)
        .build(0)
        .unwrap();
    assert_eq!(m.num_parameters(), 8 * 27 + 8 + 8 + 8 + 128 * 10 + 10);
    assert_eq!(m.params().buffers().len(), 2);
    let x = Tensor::ones((2, 3, 4, 4), support::candle::DType::F32, &Device::Cpu).unwrap();
    assert_eq!(m.forward_t(&x, true).unwrap().dims(), [2, 10]);
}

#[test]
fn crop_flip_moves_pixels_and_pads_with_fill() {
    // One 1x3x3 image 0..9; pad 1. Over many draws every output is a shifted (and maybe mirrored)
    // copy: each pixel is either the fill or an input value, and the multiset of shifts
    // covers all 9.
    let img =
        Tensor::from_vec((0..9).map(|v| v as f32).collect::<Vec<_>>(), (1, 1, 3, 3), &Device::Cpu)
            .unwrap();
    let aug = CropFlip { pad: 1, fill: -1.0, flip: true };
    let mut rng = Rng::new(0);
    let (mut identity, mut flipped, mut padded) = (0, 0, 0);
    for _ in 0..400 {
        let v = aug.apply(&img, &mut rng).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(v.iter().all(|&x| x == -1.0 || (0.0..9.0).contains(&x)));
        identity += (v == (0..9).map(|x| x as f32).collect::<Vec<_>>()) as usize;
        flipped += (v == [2.0, 1.0, 0.0, 5.0, 4.0, 3.0, 8.0, 7.0, 6.0]) as usize;
        padded += v.contains(&-1.0) as usize;
    }
    // 1/9 of the shifts are (0, 0); half of those are flipped.
    assert!(
        identity > 5 && flipped > 5 && padded > 250,
        "identity {identity}, flipped {flipped}, padded {padded}"
    );
    assert!(aug
        .apply(&Tensor::zeros((3, 3), support::candle::DType::F32, &Device::Cpu).unwrap(), &mut rng)
        .is_err());
}

/// The ReLU fused into the training-mode BatchNorm op: the same output, gradients and running
/// statistics as BatchNorm then ReLU, on a batch where many outputs are clipped.
#[test]
fn batchnorm_with_fused_relu_equals_batchnorm_then_relu() {
    let make = || {
        let mut init = Init::new(0, &Device::Cpu);
        let bn = BatchNorm2d::new(&mut init, "bn", 4, 1e-5).unwrap();
        let p = init.finish();
        p.named()[0].1.set(&Tensor::new(&[1.0f32, -0.5, 2.0, 0.7], &Device::Cpu).unwrap()).unwrap();
        p.named()[1]
            .1
            .set(&Tensor::new(&[0.1f32, -0.2, 0.3, -1.0], &Device::Cpu).unwrap())
            .unwrap();
        bn
    };
    let (a, b) = (make(), make());
    let x = Var::from_vec(
        (0..5 * 4 * 9).map(|i| (0.61 * i as f64).sin() as f32 * 3.0).collect::<Vec<_>>(),
        (5, 4, 3, 3),
        &Device::Cpu,
    )
    .unwrap();
    let fused = a.forward_relu_t(x.as_tensor(), true).unwrap();
    let plain = support::nn::functional::relu(&b.forward_t(x.as_tensor(), true).unwrap()).unwrap();
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let zeros = flat(&fused).iter().filter(|v| **v == 0.0).count();
    assert!(zeros > 30 && zeros < 150, "{zeros} clipped outputs");
    close(
        &flat(&fused),
        &flat(&plain).iter().map(|&v| v as f64).collect::<Vec<_>>(),
        1e-6,
        "output",
    );
    let g = Tensor::from_vec(
        (0..180).map(|j| (0.3 * j as f64 + 1.0).cos() as f32).collect::<Vec<_>>(),
        (5, 4, 3, 3),
        &Device::Cpu,
    )
    .unwrap();
    let (ga, gb) = (
        fused.mul(&g).unwrap().sum_all().unwrap().backward().unwrap(),
        plain.mul(&g).unwrap().sum_all().unwrap().backward().unwrap(),
    );
    for (what, ta, tb) in [
        ("x", x.as_tensor(), x.as_tensor()),
        ("weight", &a.weight, &b.weight),
        ("bias", &a.bias, &b.bias),
    ] {
        close(
            &flat(ga.get(ta).unwrap()),
            &flat(gb.get(tb).unwrap()).iter().map(|&v| v as f64).collect::<Vec<_>>(),
            1e-5,
            what,
        );
    }
    assert_eq!(flat(a.running_var.as_tensor()), flat(b.running_var.as_tensor()));
}
