//! Layers, init, loss and one full training step against PyTorch (golden/make_golden.py).

// The golden values are pasted as the generating script printed them.
#![allow(clippy::excessive_precision)]

use support::candle::{Device, Tensor};
use support::nn::functional::dropout;
use support::nn::{Model, Sequential};
use support::optim::{Adam, Optimizer};
use support::rng::Rng;
use support::train::Loss;

fn close(got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol, "element {i}: got {g}, want {w}");
    }
}

fn mlp() -> Sequential {
    Sequential::new("MLP").flatten().linear(784, 1024).relu().linear(1024, 10).build(0).unwrap()
}

#[test]
fn parameter_counts_match_the_original_notebook() {
    let lr = Sequential::new("LogisticRegression").flatten().linear(784, 10).build(0).unwrap();
    let dropout = Sequential::new("MLP_dropout")
        .flatten()
        .linear(784, 1024)
        .dropout(0.5)
        .relu()
        .linear(1024, 10)
        .build(0)
        .unwrap();
    let wide = Sequential::new("MLP_wide")
        .flatten()
        .linear(784, 2048)
        .dropout(0.5)
        .relu()
        .linear(2048, 10)
        .build(0)
        .unwrap();
    let deep = Sequential::new("MLP_deep")
        .flatten()
        .linear(784, 1024)
        .dropout(0.5)
        .relu()
        .linear(1024, 512)
        .dropout(0.5)
        .relu()
        .linear(512, 512)
        .dropout(0.5)
        .relu()
        .linear(512, 10)
        .build(0)
        .unwrap();
    assert_eq!(lr.num_parameters(), 7850);
    assert_eq!(mlp().num_parameters(), 814090);
    assert_eq!(dropout.num_parameters(), 814090);
    assert_eq!(wide.num_parameters(), 1628170);
    assert_eq!(deep.num_parameters(), 1596426);
}

#[test]
fn init_follows_pytorch_bounds_and_the_seed() {
    let m = mlp();
    let named = m.params().named();
    let names: Vec<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["1.weight", "1.bias", "3.weight", "3.bias"]);
    for (name, var, fan_in) in
        [(&named[0].0, &named[0].1, 784.0f32), (&named[2].0, &named[2].1, 1024.0)]
    {
        let v = var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let bound = 1.0 / fan_in.sqrt();
        let max = v.iter().fold(0.0f32, |a, &x| a.max(x.abs()));
        assert!(max <= bound && max > 0.99 * bound, "{name}: max |w| {max}, bound {bound}");
        // U(-b, b) has variance b^2 / 3.
        let var_ = v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32;
        assert!(
            (var_ - bound * bound / 3.0).abs() < 0.02 * bound * bound,
            "{name}: variance {var_}"
        );
    }
    let again =
        mlp().params().named()[0].1.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let first = named[0].1.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(first, again, "same seed, same weights");
    let other = Sequential::new("MLP")
        .flatten()
        .linear(784, 1024)
        .relu()
        .linear(1024, 10)
        .build(1)
        .unwrap();
    assert_ne!(
        first,
        other.params().named()[0].1.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()
    );
}

#[test]
fn printout_matches_pytorch_repr() {
    let m = Sequential::new("MLP_dropout")
        .flatten()
        .linear(784, 1024)
        .dropout(0.5)
        .relu()
        .linear(1024, 10)
        .build(0)
        .unwrap();
    assert_eq!(
        m.to_string(),
        "MLP_dropout(\n  (0): Flatten(start_dim=1, end_dim=-1)\n  \
         (1): Linear(in_features=784, out_features=1024, bias=True)\n  \
         (2): Dropout(p=0.5, inplace=False)\n  (3): ReLU()\n  \
         (4): Linear(in_features=1024, out_features=10, bias=True)\n)"
    );
}

#[test]
fn dropout_zeroes_a_fraction_p_and_rescales_and_is_seeded() {
    let x = Tensor::ones((100, 1000), support::candle::DType::F32, &Device::Cpu).unwrap();
    let y = dropout(&x, 0.5, &mut Rng::new(3))
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let zeros = y.iter().filter(|&&v| v == 0.0).count() as f32 / y.len() as f32;
    assert!((zeros - 0.5).abs() < 0.01, "dropped fraction {zeros}");
    assert!(y.iter().all(|&v| v == 0.0 || v == 2.0));
    let y2 = dropout(&x, 0.5, &mut Rng::new(3))
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_eq!(y, y2);
    assert!(dropout(&x, 1.0, &mut Rng::new(3)).is_err());
}

#[test]
fn dropout_layer_only_in_training() {
    let m = Sequential::new("d").dropout(0.5).build(0).unwrap();
    let x = Tensor::ones((4, 8), support::candle::DType::F32, &Device::Cpu).unwrap();
    assert_eq!(
        m.forward_t(&x, false).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap(),
        32.0
    );
    let y = m.forward_t(&x, true).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(y.contains(&0.0) && y.contains(&2.0));
}

#[test]
fn cross_entropy_matches_pytorch() {
    let logits = support::candle::Var::from_slice(
        &[2.0f32, -1.0, 0.5, 0.1, 0.2, 0.3, -3.0, 4.0, 1.0, 0.0, 0.0, 0.0],
        (4, 3),
        &Device::Cpu,
    )
    .unwrap();
    let labels = Tensor::from_slice(&[0u32, 2, 1, 1], 4, &Device::Cpu).unwrap();
    let loss = Loss::CrossEntropy.compute(logits.as_tensor(), &labels).unwrap();
    close(&[loss.to_scalar::<f32>().unwrap()], &[0.59783047], 1e-6);
    let grad = loss
        .backward()
        .unwrap()
        .get(logits.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    close(
        &grad,
        &[
            -0.05360074, 0.00977814, 0.04382260, 0.07515240, 0.08305624, -0.15820865, 0.00021697,
            -0.01206313, 0.01184618, 0.08333333, -0.16666667, 0.08333333,
        ],
        1e-6,
    );
    let bad = Loss::CrossEntropy
        .compute(logits.as_tensor(), &Tensor::from_slice(&[0u32, 1], 2, &Device::Cpu).unwrap());
    assert!(bad.unwrap_err().to_string().contains("cross-entropy needs"));
}

#[test]
fn one_adam_step_on_an_mlp_matches_pytorch() {
    let m = Sequential::new("m").linear(4, 3).relu().linear(3, 2).build(0).unwrap();
    let values: [&[f32]; 4] = [
        &[0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, -0.8, 0.9, 0.1, -0.1, 0.2],
        &[0.01, -0.02, 0.03],
        &[0.3, -0.6, 0.9, -0.4, 0.5, 0.2],
        &[0.1, -0.1],
    ];
    for ((_, var), v) in m.params().named().iter().zip(values) {
        var.set(&Tensor::from_slice(v, var.shape(), &Device::Cpu).unwrap()).unwrap();
    }
    let x = Tensor::from_slice(
        &[1.0f32, 0.5, -0.5, 2.0, 0.0, -1.0, 1.0, 0.5, 0.3, 0.3, 0.3, 0.3],
        (3, 4),
        &Device::Cpu,
    )
    .unwrap();
    let y = Tensor::from_slice(&[1u32, 0, 1], 3, &Device::Cpu).unwrap();
    let mut opt = Adam::new(m.params().vars(), 0.05).unwrap();
    let l0 = Loss::CrossEntropy.compute(&m.forward_t(&x, true).unwrap(), &y).unwrap();
    opt.step(&l0.backward().unwrap()).unwrap();
    let out = m.forward(&x).unwrap();
    let l1 = Loss::CrossEntropy.compute(&out, &y).unwrap();
    close(
        &[l0.to_scalar::<f32>().unwrap(), l1.to_scalar::<f32>().unwrap()],
        &[1.08953428, 0.89528161],
        1e-6,
    );
    let w1 = m.params().named()[0].1.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    close(
        &w1,
        &[
            0.05000001, -0.25, 0.34999999, 0.35000002, -0.5, 0.60000002, 0.69999999, -0.80000001,
            0.84999996, 0.05000001, -0.05000001, 0.15000001,
        ],
        1e-6,
    );
    close(
        &out.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        &[1.15550005, 0.10149998, 0.23375002, -0.30725002, 0.31550002, -0.01850002],
        1e-5,
    );
}

#[test]
fn wrong_input_shape_is_a_clear_error() {
    let x = Tensor::zeros((2, 3, 32, 32), support::candle::DType::F32, &Device::Cpu).unwrap();
    let err = mlp().forward(&x).unwrap_err().to_string();
    assert!(err.contains("Linear(in_features=784") && err.contains("[2, 3072]"), "{err}");
}

#[test]
fn save_and_load_round_trip_and_mismatches_name_the_key() {
    let dir = std::env::temp_dir().join(format!("support-nn-{}", std::process::id()));
    let path = dir.join("mlp.safetensors");
    let a = mlp();
    a.save(&path).unwrap();
    let b = Sequential::new("MLP")
        .flatten()
        .linear(784, 1024)
        .relu()
        .linear(1024, 10)
        .build(7)
        .unwrap();
    b.load(&path).unwrap();
    let x = Tensor::ones((1, 1, 28, 28), support::candle::DType::F32, &Device::Cpu).unwrap();
    let (ya, yb) = (a.forward(&x).unwrap(), b.forward(&x).unwrap());
    assert_eq!(
        ya.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        yb.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    );

    let wide = Sequential::new("MLP_wide")
        .flatten()
        .linear(784, 2048)
        .relu()
        .linear(2048, 10)
        .build(0)
        .unwrap();
    let err = wide.load(&path).unwrap_err().to_string();
    assert!(
        err.contains("`1.weight`") && err.contains("[1024, 784]") && err.contains("[2048, 784]"),
        "{err}"
    );
    let deep = Sequential::new("d")
        .flatten()
        .linear(784, 1024)
        .relu()
        .linear(1024, 10)
        .relu()
        .linear(10, 10)
        .build(0)
        .unwrap();
    let err = deep.load(&path).unwrap_err().to_string();
    assert!(err.contains("no tensor `5.weight`"), "{err}");
    let err = a.load(dir.join("absent.safetensors")).unwrap_err().to_string();
    assert!(err.contains("does not exist"), "{err}");
    std::fs::write(dir.join("junk.safetensors"), b"not a safetensors file").unwrap();
    let err = a.load(dir.join("junk.safetensors")).unwrap_err().to_string();
    assert!(err.contains("junk.safetensors is neither a PyTorch checkpoint"), "{err}");
    // A safetensors header that promises more bytes than the file holds.
    let mut cut = std::fs::read(&path).unwrap();
    cut.truncate(cut.len() - 4);
    std::fs::write(dir.join("cut.safetensors"), cut).unwrap();
    let err = a.load(dir.join("cut.safetensors")).unwrap_err().to_string();
    assert!(err.contains("cut.safetensors is not a readable safetensors checkpoint"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fence_moves_new_tensor_ids_past_the_parameters() {
    use support::env::{fence_tensor_ids, tensor_id};
    let m = mlp();
    let vars = m.params().vars();
    let max = vars.iter().map(|v| tensor_id(v.as_tensor())).max().unwrap();
    assert!(max > 0);
    fence_tensor_ids(&vars).unwrap();
    let fresh = Tensor::new(1f32, &Device::Cpu).unwrap();
    assert!(tensor_id(&fresh) > max);
}

/// `PLAYGROUND_DEVICE` parsing: the CPU by default; a GPU asked for without its feature, a typo
/// or a bad ordinal is an error that says what to write instead.
#[test]
fn device_selection() {
    use support::env::parse_device;
    assert!(parse_device("").unwrap().is_cpu());
    assert!(parse_device(" CPU ").unwrap().is_cpu());
    if !cfg!(feature = "cuda") {
        let e = parse_device("cuda").unwrap_err().to_string();
        assert!(
            e.contains(r#"features = ["cuda"]"#) && e.contains("unset PLAYGROUND_DEVICE"),
            "{e}"
        );
    }
    if !cfg!(feature = "metal") {
        assert!(parse_device("metal").unwrap_err().to_string().contains(r#"features = ["metal"]"#));
    }
    assert!(parse_device("tpu").unwrap_err().to_string().contains("cpu, cuda, cuda:N or metal"));
    assert!(parse_device("cuda:first").unwrap_err().to_string().contains("GPU number"));
}

/// ReLU's backward passes the gradient where the output is positive and 0 elsewhere, at
/// exactly 0 too (PyTorch: `torch.relu(torch.tensor([0.])).backward()` gives 0), even where the
/// incoming gradient is infinite (a mask, not a multiply by 0). Long enough for the parallel path.
#[test]
fn relu_backward_masks_the_gradient() {
    use support::candle::Var;
    let n = 1 << 16;
    let xs: Vec<f32> = (0..n).map(|i| [-1.5f32, 0.0, 2.0, -0.0, 0.25][i % 5]).collect();
    let gs: Vec<f32> =
        (0..n).map(|i| [f32::INFINITY, 3.0, -2.0, 7.0, f32::NEG_INFINITY, 0.5][i % 6]).collect();
    for len in [n, 37] {
        let x = Var::from_vec(xs[..len].to_vec(), len, &Device::Cpu).unwrap();
        let g = Tensor::from_vec(gs[..len].to_vec(), len, &Device::Cpu).unwrap();
        let y = support::nn::functional::relu(x.as_tensor()).unwrap();
        let grads = y.mul(&g).unwrap().sum_all().unwrap().backward().unwrap();
        let dx = grads.get(x.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
        for (i, d) in dx.iter().enumerate() {
            let expect = if xs[i] > 0.0 { gs[i] } else { 0.0 };
            assert!(
                d.to_bits() == expect.to_bits() || (*d == 0.0 && expect == 0.0),
                "len {len}, x {} g {}: dx {d}, expected {expect}",
                xs[i],
                gs[i]
            );
        }
    }
}
