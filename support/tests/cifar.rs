//! The CIFAR-10 zoo: parameter counts equal to the original notebook's, output shapes, and a
//! clear error for a wrong input size.

mod common;

use support::candle::{DType, Device, Tensor};
use support::models::{CifarModel, CifarNet};
use support::nn::Model;
use support::recipes::cifar::{train_or_load, train_or_load_as};

/// The network the notebook calls `name`.
fn build(name: &str, seed: u64) -> support::Result<CifarNet> {
    name.parse::<CifarModel>()?.build(seed)
}

/// A shuffled training loader over the first `n_train` of `ds`'s images and a validation loader
/// over the rest, both in batches of `batch`.
fn split_loaders(
    ds: &support::data::Dataset,
    n_train: usize,
    batch: usize,
) -> (support::data::DataLoader, support::data::DataLoader) {
    let rest: Vec<u32> = (n_train as u32..ds.len() as u32).collect();
    let train = support::data::DataLoader::new(ds.take(n_train).unwrap(), batch, true, 1).unwrap();
    let val = support::data::DataLoader::new(ds.select(&rest).unwrap(), batch, false, 0).unwrap();
    (train, val)
}

/// One runs folder for this test process (tests run in parallel; each removes its own files).
fn runs_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("support-runs-{}", std::process::id()));
    std::env::set_var("PLAYGROUND_RUNS", &dir);
    dir
}

#[test]
fn parameter_counts_match_the_original_notebook() {
    let want = [
        12_332_010, 83_126, 99_014, 2_105_562, 1_070_874, 602_010, 269_034, 271_690, 1_517_546,
        1_119_818,
    ];
    for (model, n) in CifarModel::ALL.into_iter().zip(want) {
        assert_eq!(model.build(0).unwrap().num_parameters(), n, "{model}");
    }
}

#[test]
fn every_model_maps_a_batch_of_images_to_ten_logits_in_both_modes() {
    let x = Tensor::rand(-1f32, 1., (3, 3, 32, 32), &Device::Cpu).unwrap();
    for model in CifarModel::ALL {
        let m = model.build(0).unwrap();
        for train in [false, true] {
            assert_eq!(m.forward_t(&x, train).unwrap().dims(), [3, 10], "{model} train={train}");
        }
    }
}

#[test]
fn vgg2_uses_conv2_twice_and_never_conv4() {
    let m = build("VGG2", 0).unwrap();
    let x = Tensor::rand(-1f32, 1., (2, 3, 32, 32), &Device::Cpu).unwrap();
    let loss = m.forward_t(&x, false).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    let named = m.params().named();
    let grad_of =
        |n: &str| grads.get(named.iter().find(|(k, _)| k == n).unwrap().1.as_tensor()).is_some();
    assert!(grad_of("conv2.weight") && grad_of("conv3.weight"));
    assert!(!grad_of("conv4.weight"), "conv4 is declared but unused in the original's forward");
}

#[test]
fn wrong_image_size_is_a_clear_error() {
    let x = Tensor::zeros((1, 3, 20, 20), DType::F32, &Device::Cpu).unwrap();
    let err = build("Inception", 0).unwrap().forward(&x).unwrap_err().to_string();
    assert!(err.contains("expects 3x32x32 images"), "{err}");
    assert!(build("ResNet50", 0)
        .err()
        .unwrap()
        .to_string()
        .contains("no CIFAR model called `ResNet50`"));
}

/// A finished run is saved and, on the next call with the same model, epochs and training-set
/// size, loaded (weights and history) instead of trained again.
#[test]
fn train_or_load_saves_then_resumes() {
    let dir = runs_dir();
    let ds = support::data::load_cifar10(&common::real_data(), false).unwrap().take(96).unwrap();
    let (train, val) = split_loaders(&ds, 64, 32);
    let a = build("LeNet5", 0).unwrap();
    let ha = train_or_load(&a, &train, &val, 1).unwrap();
    assert!(dir.join("cifar10/LeNet5-1ep-64.safetensors").exists());
    let b = build("LeNet5", 7).unwrap();
    let hb = train_or_load(&b, &train, &val, 1).unwrap();
    assert_eq!(ha.train_loss, hb.train_loss);
    assert_eq!(ha.val_accuracy, hb.val_accuracy);
    let flat = |m: &CifarNet| {
        m.params().named()[0].1.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    assert_eq!(flat(&a), flat(&b), "the loaded weights are the trained ones");
    // A run on another number of images (quick mode's 4,096 vs the full 40,000) is not
    // taken for it.
    let fewer = support::data::DataLoader::new(ds.take(32).unwrap(), 32, true, 1).unwrap();
    let c = build("LeNet5", 7).unwrap();
    train_or_load(&c, &fewer, &val, 1).unwrap();
    assert!(dir.join("cifar10/LeNet5-1ep-32.safetensors").exists());
    assert_ne!(
        flat(&c),
        flat(&a),
        "a run on 32 images is trained, not loaded from the 64-image one"
    );
    for f in ["LeNet5-1ep-64", "LeNet5-1ep-32"] {
        let _ = std::fs::remove_file(dir.join(format!("cifar10/{f}.safetensors")));
        let _ = std::fs::remove_file(dir.join(format!("cifar10/{f}.history.safetensors")));
    }
}

/// A network written elsewhere (a notebook cell) trains and loads as the library's model of the
/// same name when its parameters match, and a loaded run is checked against its log: a
/// different parameter layout or a different forward pass is an error that says which.
#[test]
fn a_network_written_elsewhere_shares_the_runs_of_its_name() {
    let dir = runs_dir();
    let ds = support::data::load_cifar10(&common::real_data(), false).unwrap().take(96).unwrap();
    let (train, val) = split_loaders(&ds, 48, 16);
    let trained = build("LeNet5", 0).unwrap();
    let h = train_or_load(&trained, &train, &val, 1).unwrap();
    // LeNet5 as the notebook's cell writes it: a `Sequential`, not a `CifarNet`, another seed.
    let cell = support::models::cifar::lenet5(3).unwrap();
    let loaded = train_or_load_as(&cell, CifarModel::LeNet5, &train, &val, 1).unwrap();
    assert_eq!(loaded.val_accuracy, h.val_accuracy);
    let first = |m: &dyn Model| m.params().named()[0].1.as_tensor().flatten_all().unwrap();
    assert_eq!(first(&cell).to_vec1::<f32>().unwrap(), first(&trained).to_vec1::<f32>().unwrap());

    let fcn = build("FCN", 0).unwrap();
    let err = train_or_load_as(&fcn, CifarModel::LeNet5, &train, &val, 1).unwrap_err().to_string();
    assert!(err.contains("is not LeNet5") && err.contains("`0.weight` [6, 3, 5, 5]"), "{err}");

    /// The same parameters with the logits' classes rolled by one: another forward pass.
    struct Rolled(CifarNet);
    impl Model for Rolled {
        fn forward_t(&self, x: &Tensor, train: bool) -> support::Result<Tensor> {
            let y = self.0.forward_t(x, train)?;
            Tensor::cat(&[y.narrow(1, 1, 9)?, y.narrow(1, 0, 1)?], 1)
        }
        fn params(&self) -> &support::nn::Params {
            self.0.params()
        }
    }
    let rolled = Rolled(build("LeNet5", 0).unwrap());
    let err =
        train_or_load_as(&rolled, CifarModel::LeNet5, &train, &val, 1).unwrap_err().to_string();
    assert!(err.contains("its forward pass is not the one that was trained"), "{err}");
    let _ = std::fs::remove_file(dir.join("cifar10/LeNet5-1ep-48.safetensors"));
    let _ = std::fs::remove_file(dir.join("cifar10/LeNet5-1ep-48.history.safetensors"));
}

/// The modern-recipe ResNet-20: BatchNorm after all 21 convolutions (784 conv biases out, 2 x 784
/// BatchNorm parameters in); training mode moves every running statistic, projections' included.
#[test]
fn resnet_bn_is_resnet20_with_batch_norm() {
    let m = build("ResNet_BN", 0).unwrap();
    assert_eq!(m.num_parameters(), 271_690 - 784 + 2 * 784);
    let x = Tensor::rand(-1f32, 1., (3, 3, 32, 32), &Device::Cpu).unwrap();
    assert_eq!(m.forward_t(&x, true).unwrap().dims(), [3, 10]);
    let moved = m
        .params()
        .buffers()
        .iter()
        .filter(|(n, _)| n.ends_with("running_mean"))
        .filter(|(_, b)| b.as_tensor().to_vec1::<f32>().unwrap().iter().any(|v| *v != 0.0))
        .count();
    assert_eq!(moved, 21, "every BatchNorm (19 convs + 2 projections) updated its statistics");
    assert_eq!(
        build("ResNet", 0).unwrap().num_parameters(),
        271_690,
        "the original keeps its biases"
    );
}

/// The modern-recipe Inception: the original's layout with BatchNorm after every convolution
/// (304 conv biases out, 2 x 304 BatchNorm parameters in), batch statistics in training mode
/// and running statistics updated; and the recipe trains, saves and reloads its run.
#[test]
fn inception_bn_and_the_modern_recipe() {
    let m = build("Inception_BN", 0).unwrap();
    assert_eq!(m.num_parameters(), 1_517_546 - 304 + 2 * 304);
    let buffer = |m: &CifarNet| {
        m.params()
            .buffers()
            .iter()
            .find(|(n, _)| n == "stem_bn.running_mean")
            .unwrap()
            .1
            .as_tensor()
            .to_vec1::<f32>()
            .unwrap()
    };
    assert!(buffer(&m).iter().all(|v| *v == 0.0));
    let x = Tensor::rand(-1f32, 1., (4, 3, 32, 32), &Device::Cpu).unwrap();
    assert_eq!(m.forward_t(&x, true).unwrap().dims(), [4, 10]);
    assert!(buffer(&m).iter().any(|v| *v != 0.0), "training mode moves the running statistics");
    let before = buffer(&m);
    m.forward_t(&x, false).unwrap();
    assert_eq!(buffer(&m), before, "evaluation mode leaves them");

    let dir = runs_dir();
    let ds = support::data::load_cifar10(&common::real_data(), false)
        .unwrap()
        .take(96)
        .unwrap()
        .normalize(0.5, 0.5)
        .unwrap();
    let (train, val) = split_loaders(&ds, 64, 32);
    let a = build("Inception_BN", 0).unwrap();
    let h = train_or_load(&a, &train, &val, 2).unwrap();
    assert!(h.train_loss.iter().all(|l| l.is_finite()) && h.val_accuracy.len() == 2);
    assert!(dir.join("cifar10/Inception_BN-modern-2ep-64.safetensors").exists());
    let b = build("Inception_BN", 5).unwrap();
    assert_eq!(train_or_load(&b, &train, &val, 2).unwrap().train_loss, h.train_loss);
    assert_eq!(buffer(&a), buffer(&b), "the running statistics are saved with the weights");
    let _ = std::fs::remove_file(dir.join("cifar10/Inception_BN-modern-2ep-64.safetensors"));
    let _ =
        std::fs::remove_file(dir.join("cifar10/Inception_BN-modern-2ep-64.history.safetensors"));
}
