//! The training loop on real MNIST, its error paths, and the figures and tables it produces.

mod common;

use std::path::Path;
use support::data::{load_mnist, DataLoader};
use support::nn::{Model, Sequential};
use support::optim::{Adam, Sgd};
use support::recipes::interpret::{activation_maximization, prediction_figure, ActMaxConfig};
use support::train::{evaluate_model, fit, FitOptions, Loss, Metrics};

fn mnist_slice(n_train: usize, n_val: usize) -> (DataLoader, DataLoader) {
    let root = common::real_data();
    let train = load_mnist(&root, true).unwrap();
    let test = load_mnist(&root, false).unwrap();
    (
        DataLoader::new(train.take(n_train).unwrap(), 64, true, 42).unwrap(),
        DataLoader::new(test.take(n_val).unwrap(), 256, false, 0).unwrap(),
    )
}

#[test]
fn logistic_regression_learns_real_mnist_and_is_reproducible() {
    let (train, val) = mnist_slice(6000, 2000);
    let run = || {
        // A fresh loader: each pass over a loader is a new epoch with a new order.
        let train = DataLoader::new(train.dataset.clone(), 64, true, 42).unwrap();
        let model =
            Sequential::new("LogisticRegression").flatten().linear(784, 10).build(0).unwrap();
        let (loss0, acc0) = evaluate_model(&model, &val, Loss::CrossEntropy).unwrap();
        let mut opt = Sgd::new(model.params().vars(), 0.1).unwrap();
        let h = fit(
            &model,
            &train,
            &mut opt,
            Loss::CrossEntropy,
            FitOptions::new(2).validate(&val).verbose(false),
        )
        .unwrap();
        (loss0, acc0, h)
    };
    let (loss0, acc0, h) = run();
    // Untrained: ~chance; after 2 epochs on 6,000 images: the original's epoch-1 level (~0.9).
    assert!(acc0 < 0.25 && loss0 > 2.0, "untrained acc {acc0} loss {loss0}");
    assert_eq!(h.train_loss.len(), 2);
    assert!(h.val_accuracy[1] > 0.8, "val acc {:?}", h.val_accuracy);
    assert!(h.train_loss[1] < h.train_loss[0]);
    let (_, _, h2) = run();
    assert_eq!(h.val_loss, h2.val_loss, "same seeds, same numbers");
    // A different shuffling seed gives a different run.
    let model = Sequential::new("LogisticRegression").flatten().linear(784, 10).build(0).unwrap();
    let other = DataLoader::new(train.dataset.clone(), 64, true, 7).unwrap();
    let mut opt = Sgd::new(model.params().vars(), 0.1).unwrap();
    let h3 = fit(
        &model,
        &other,
        &mut opt,
        Loss::CrossEntropy,
        FitOptions::new(2).validate(&val).verbose(false),
    )
    .unwrap();
    assert_ne!(h.val_loss, h3.val_loss);
}

#[test]
fn a_diverging_run_stops_with_an_error_that_says_what_to_do() {
    let (train, val) = mnist_slice(1024, 256);
    let model = Sequential::new("MLP")
        .flatten()
        .linear(784, 1024)
        .relu()
        .linear(1024, 10)
        .build(0)
        .unwrap();
    let mut opt = Sgd::new(model.params().vars(), 1e30).unwrap();
    let err = fit(
        &model,
        &train,
        &mut opt,
        Loss::CrossEntropy,
        FitOptions::new(1).validate(&val).verbose(false),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("training diverged")
            && err.contains("Lower the learning rate (now 1000000000000000000000000000000)"),
        "{err}"
    );
    // Adam's steps are bounded by its learning rate, so it does not blow up the same way.
    let model = Sequential::new("MLP")
        .flatten()
        .linear(784, 1024)
        .relu()
        .linear(1024, 10)
        .build(0)
        .unwrap();
    let mut opt = Adam::new(model.params().vars(), 1e-3).unwrap();
    assert!(fit(
        &model,
        &train,
        &mut opt,
        Loss::CrossEntropy,
        FitOptions::new(1).validate(&val).verbose(false)
    )
    .is_ok());
}

#[test]
fn figures_render_to_png_of_the_expected_size() {
    let (train, val) = mnist_slice(512, 64);
    let model = Sequential::new("LogisticRegression").flatten().linear(784, 10).build(0).unwrap();
    let mut opt = Sgd::new(model.params().vars(), 0.1).unwrap();
    let h = fit(
        &model,
        &train,
        &mut opt,
        Loss::CrossEntropy,
        FitOptions::new(2).validate(&val).verbose(false),
    )
    .unwrap();
    let curves = h.plot().unwrap();
    assert_eq!((curves.width, curves.height), (640, 440));
    let png = curves.png().unwrap();
    let decoded = image::load_from_memory(&png).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (640, 440));
    // Both curves are drawn: matplotlib blue and orange pixels are present.
    let rgb = decoded.to_rgb8();
    assert!(
        rgb.pixels().any(|p| p.0 == [0x1f, 0x77, 0xb4])
            && rgb.pixels().any(|p| p.0 == [0xff, 0x7f, 0x0e])
    );
    let grid = prediction_figure(&model, &val, 17, 6).unwrap();
    assert_eq!(grid.width, 6 * (200 + 10) + 10);
    assert_eq!(grid.height, 3 * (200 + 26 + 10) + 10);
    assert!(support::viz::image_grid(&[], &[], 1, 10).is_err());
    assert!(support::viz::loss_curves("t", &[f64::NAN], &[]).is_err());
}

#[test]
fn metrics_and_tables() {
    let m = Metrics::new((0.1, 0.9), (0.2, 0.8), (0.3, 0.7));
    assert_eq!(m.test, (0.3, 0.7));
    let mut t = support::viz::Table::new("t", &["a", "b"]);
    t.push(vec!["1".into(), "2".into()]).unwrap();
    assert!(t.push(vec!["1".into()]).is_err());
    assert_eq!(t.to_markdown(), "| a | b |\n| --- | --- |\n| 1 | 2 |");
}

#[test]
fn total_variation_by_hand() {
    use support::candle::{Device, Tensor};
    // [[1, 2], [4, 8]]: vertical |4-1| + |8-2| = 9, horizontal |2-1| + |8-4| = 5.
    let x = Tensor::from_slice(&[1f32, 2., 4., 8.], (1, 1, 2, 2), &Device::Cpu).unwrap();
    assert_eq!(
        support::recipes::interpret::total_variation(&x).unwrap().to_scalar::<f32>().unwrap(),
        14.0
    );
}

#[test]
fn activation_maximization_raises_the_class_logit_and_leaves_the_model_alone() {
    let (train, val) = mnist_slice(2048, 256);
    let model = Sequential::new("LeNet5")
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
    let mut opt = Adam::new(model.params().vars(), 1e-3).unwrap();
    fit(
        &model,
        &train,
        &mut opt,
        Loss::CrossEntropy,
        FitOptions::new(1).validate(&val).verbose(false),
    )
    .unwrap();
    let before: Vec<f32> =
        model.params().named()[0].1.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
    // Without the TV term the logit of 3 climbs from ~0 to tens (with LeNet's linear dense stack,
    // other logits climb too: the prediction is reported, not forced).
    let m = activation_maximization(
        &model,
        3,
        (1, 28, 28),
        ActMaxConfig { steps: 100, lr: 5e-2, tv_weight: 0.0, seed: 0 },
    )
    .unwrap();
    assert_eq!(m.losses.len(), 100);
    assert!(m.losses[99] < m.losses[0] - 1.0, "loss {} -> {}", m.losses[0], m.losses[99]);
    let logits =
        model.forward(&m.image.unsqueeze(0).unwrap()).unwrap().to_vec2::<f32>().unwrap()[0].clone();
    assert!(
        logits[3] > -m.losses[0] as f32 + 20.0,
        "logit of 3: {} (start {})",
        logits[3],
        -m.losses[0]
    );
    let argmax = (0..10).max_by(|&a, &b| logits[a].total_cmp(&logits[b])).unwrap();
    assert_eq!(m.predicted, argmax);
    // The TV term makes the image smoother.
    let smooth = activation_maximization(
        &model,
        3,
        (1, 28, 28),
        ActMaxConfig { steps: 100, lr: 5e-2, tv_weight: 0.2, seed: 0 },
    )
    .unwrap();
    let tv = |t: &support::Tensor| {
        support::recipes::interpret::total_variation(&t.unsqueeze(0).unwrap())
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    assert!(tv(&smooth.image) < 0.5 * tv(&m.image), "TV {} vs {}", tv(&smooth.image), tv(&m.image));
    assert_eq!(m.image.dims(), [1, 28, 28]);
    let after: Vec<f32> =
        model.params().named()[0].1.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(before, after);
    let fig = m.figure().unwrap();
    assert_eq!((fig.width, fig.height), (820, 360));
    assert!(activation_maximization(
        &model,
        12,
        (1, 28, 28),
        ActMaxConfig { steps: 1, lr: 1e-2, tv_weight: 0.2, seed: 0 }
    )
    .unwrap_err()
    .to_string()
    .contains("out of range"));
}

#[test]
fn feature_maps_and_panels() {
    use support::candle::{DType, Device, Tensor};
    let model = Sequential::new("LeNet5")
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
    let x = Tensor::rand(0f32, 1., (2, 1, 28, 28), &Device::Cpu).unwrap();
    let outs = model.forward_all(&x).unwrap();
    let dims: Vec<Vec<usize>> = outs.iter().map(|t| t.dims().to_vec()).collect();
    assert_eq!(dims[1], [2, 6, 28, 28]);
    assert_eq!(dims[2], [2, 6, 14, 14]);
    assert_eq!(dims[5], [2, 16, 5, 5]);
    assert_eq!(dims[7], [2, 120]);
    assert_eq!(
        outs[9].to_vec2::<f32>().unwrap(),
        model.forward(&x).unwrap().to_vec2::<f32>().unwrap()
    );
    let maps: Vec<Tensor> = (0..6).map(|i| outs[1].get(0).unwrap().get(i).unwrap()).collect();
    let fig = support::viz::Panels::new()
        .row("Input", &[x.get(0).unwrap()], None, 56)
        .unwrap()
        .row("conv1", &maps, Some((0.0, 1.0)), 56)
        .unwrap()
        .strip("dense1", &outs[7].get(0).unwrap())
        .unwrap()
        .render()
        .unwrap();
    // The widest row is the 120-unit strip, drawn 4 px per unit.
    assert_eq!(fig.width, 120 * 4 + 16);
    assert!(support::viz::Panels::new().render().is_err());
    assert!(support::viz::Panels::new().row("empty", &[], None, 10).is_err());
    let _ = DType::F32;
}

/// Trains a small MLP with dropout from scratch (fresh loader, model and optimiser, as a new
/// process would), checkpointed into `path` when given.
fn mlp_run(
    train: &DataLoader,
    val: &DataLoader,
    epochs: usize,
    momentum_one_cycle: bool,
    path: Option<&Path>,
) -> support::Result<(Vec<f32>, support::train::History)> {
    use support::optim::{OneCycle, Optimizer};
    let loader = DataLoader::new(train.dataset.clone(), 64, true, 42)?;
    let model = Sequential::new("MLP")
        .flatten()
        .linear(784, 64)
        .relu()
        .dropout(0.5)
        .linear(64, 10)
        .build(0)?;
    let vars = model.params().vars();
    // Adam on the fused CPU path; SGD with momentum on the tensor-op path other devices take.
    let mut opt: Box<dyn Optimizer> = if momentum_one_cycle {
        Box::new(Sgd::new(vars, 0.05)?.momentum(0.9).fused(false))
    } else {
        Box::new(Adam::new(vars, 1e-3)?)
    };
    let schedule = OneCycle::new(0.05, 3 * loader.num_batches());
    let schedule = momentum_one_cycle.then_some(&schedule);
    let mut opts = FitOptions::new(epochs).validate(val).verbose(false);
    if let Some(s) = schedule {
        opts = opts.schedule(s);
    }
    if let Some(path) = path {
        opts = opts.checkpoint(path);
    }
    let h = fit(&model, &loader, opt.as_mut(), Loss::CrossEntropy, opts)?;
    let mut weights = Vec::new();
    for v in model.params().vars() {
        weights.extend(v.as_tensor().flatten_all()?.to_vec1::<f32>()?);
    }
    Ok((weights, h))
}

#[test]
fn a_run_resumed_from_its_checkpoint_ends_exactly_as_the_uninterrupted_run() {
    let (train, val) = mnist_slice(1024, 256);
    let dir = std::env::temp_dir().join(format!("support-checkpoint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (case, stop_after) in [(false, 1), (true, 2)] {
        let (w_whole, h_whole) = mlp_run(&train, &val, 3, case, None).unwrap();
        let path = dir.join(format!("run-{case}.safetensors"));
        let (w_first, _) = mlp_run(&train, &val, stop_after, case, Some(&path)).unwrap();
        assert!(path.exists() && w_first != w_whole);
        let (w_resumed, h_resumed) = mlp_run(&train, &val, 3, case, Some(&path)).unwrap();
        assert_eq!(h_resumed.train_loss.len(), 3);
        assert_eq!(
            (&h_resumed.train_loss, &h_resumed.val_loss, &h_resumed.val_accuracy),
            (&h_whole.train_loss, &h_whole.val_loss, &h_whole.val_accuracy),
            "case {case}"
        );
        assert_eq!(
            w_resumed, w_whole,
            "same weights bit for bit (data order, dropout masks and \
         optimiser state restored), case {case}"
        );
        // The checkpoint now holds 3 epochs: asking for fewer is refused with what to do.
        let err = mlp_run(&train, &val, 2, case, Some(&path)).unwrap_err().to_string();
        assert!(
            err.contains("holds 3 epochs, more than the 2 asked for") && err.contains("delete it"),
            "{err}"
        );
    }
    // Another architecture's checkpoint is refused before anything is changed.
    let model =
        Sequential::new("MLP").flatten().linear(784, 32).relu().linear(32, 10).build(0).unwrap();
    let mut opt = Adam::new(model.params().vars(), 1e-3).unwrap();
    let ckpt = dir.join("run-false.safetensors");
    let opts = FitOptions::new(3).validate(&val).verbose(false).checkpoint(&ckpt);
    let err = fit(&model, &train, &mut opt, Loss::CrossEntropy, opts).unwrap_err().to_string();
    assert!(err.contains("has shape [64, 784], the model expects [32, 784]"), "{err}");
    // A file that is not a checkpoint says so.
    std::fs::write(dir.join("junk.safetensors"), b"not a checkpoint").unwrap();
    let ckpt = dir.join("junk.safetensors");
    let opts = FitOptions::new(3).validate(&val).verbose(false).checkpoint(&ckpt);
    let err = fit(&model, &train, &mut opt, Loss::CrossEntropy, opts).unwrap_err().to_string();
    assert!(
        err.contains("cannot be read") && err.contains("delete it to start the run over"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
