//! The training loop on real MNIST, its error paths, and the figures and tables it produces.

use std::path::{Path, PathBuf};
use support::data::{load_mnist, DataLoader, DATA_ENV};
use support::nn::{Model, Sequential};
use support::optim::{Adam, Sgd};
use support::train::{evaluate_model, prediction_figure, train_model, Loss, Metrics};

fn real_data() -> PathBuf {
    std::env::var_os(DATA_ENV).map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

fn mnist_slice(n_train: usize, n_val: usize) -> (DataLoader, DataLoader) {
    let root = real_data();
    let train = load_mnist(&root, true).unwrap();
    let test = load_mnist(&root, false).unwrap();
    (DataLoader::new(train.take(n_train).unwrap(), 64, true, 42).unwrap(), DataLoader::new(test.take(n_val).unwrap(), 256, false, 0).unwrap())
}

#[test]
fn logistic_regression_learns_real_mnist_and_is_reproducible() {
    let (train, val) = mnist_slice(6000, 2000);
    let run = || {
        // A fresh loader: each pass over a loader is a new epoch with a new order.
        let train = DataLoader::new(train.dataset.clone(), 64, true, 42).unwrap();
        let model = Sequential::new("LogisticRegression").flatten().linear(784, 10).build(0).unwrap();
        let (loss0, acc0) = evaluate_model(&model, &val, Loss::CrossEntropy).unwrap();
        let mut opt = Sgd::new(model.params().vars(), 0.1).unwrap();
        let h = train_model(&model, &train, &val, &mut opt, Loss::CrossEntropy, 2, false).unwrap();
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
    let h3 = train_model(&model, &other, &val, &mut opt, Loss::CrossEntropy, 2, false).unwrap();
    assert_ne!(h.val_loss, h3.val_loss);
}

#[test]
fn a_diverging_run_stops_with_an_error_that_says_what_to_do() {
    let (train, val) = mnist_slice(1024, 256);
    let model = Sequential::new("MLP").flatten().linear(784, 1024).relu().linear(1024, 10).build(0).unwrap();
    let mut opt = Sgd::new(model.params().vars(), 1e30).unwrap();
    let err = train_model(&model, &train, &val, &mut opt, Loss::CrossEntropy, 1, false).unwrap_err().to_string();
    assert!(err.contains("training diverged") && err.contains("Lower the learning rate (now 1000000000000000000000000000000)"), "{err}");
    // Adam's steps are bounded by its learning rate, so it does not blow up the same way.
    let model = Sequential::new("MLP").flatten().linear(784, 1024).relu().linear(1024, 10).build(0).unwrap();
    let mut opt = Adam::new(model.params().vars(), 1e-3).unwrap();
    assert!(train_model(&model, &train, &val, &mut opt, Loss::CrossEntropy, 1, false).is_ok());
}

#[test]
fn figures_render_to_png_of_the_expected_size() {
    let (train, val) = mnist_slice(512, 64);
    let model = Sequential::new("LogisticRegression").flatten().linear(784, 10).build(0).unwrap();
    let mut opt = Sgd::new(model.params().vars(), 0.1).unwrap();
    let h = train_model(&model, &train, &val, &mut opt, Loss::CrossEntropy, 2, false).unwrap();
    let curves = h.plot().unwrap();
    assert_eq!((curves.width, curves.height), (640, 440));
    let png = curves.png().unwrap();
    let decoded = image::load_from_memory(&png).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (640, 440));
    // Both curves are drawn: matplotlib blue and orange pixels are present.
    let rgb = decoded.to_rgb8();
    assert!(rgb.pixels().any(|p| p.0 == [0x1f, 0x77, 0xb4]) && rgb.pixels().any(|p| p.0 == [0xff, 0x7f, 0x0e]));
    let grid = prediction_figure(&model, &val, 17, 6).unwrap();
    assert_eq!(grid.width, 6 * (180 + 10) + 10);
    assert_eq!(grid.height, 3 * (180 + 26 + 10) + 10);
    assert!(support::plot::image_grid(&[], &[], 1, 10).is_err());
    assert!(support::plot::loss_curves(&[f64::NAN], &[]).is_err());
}

#[test]
fn metrics_and_tables() {
    let m = Metrics::new((0.1, 0.9), (0.2, 0.8), (0.3, 0.7));
    assert_eq!(m.test, (0.3, 0.7));
    let mut t = support::report::Table::new("t", &["a", "b"]);
    t.push(vec!["1".into(), "2".into()]).unwrap();
    assert!(t.push(vec!["1".into()]).is_err());
    assert_eq!(t.to_markdown(), "| a | b |\n| --- | --- |\n| 1 | 2 |");
}
