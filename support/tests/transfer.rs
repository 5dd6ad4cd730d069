//! Transfer learning plumbing on real CIFAR-10 images with the real EfficientNet-Lite0 weights:
//! upscaling with the ImageNet preset, feature extraction, and the feature cache.

mod common;

use support::models::EfficientNetLite;
use support::nn::Model;
use support::recipes::transfer::Backbone;
use support::Device;

/// One feature cache folder for this test process (the tests run in parallel: each uses its own
/// data set name in it and removes its own files).
fn cache_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("support-transfer-{}", std::process::id()));
    std::env::set_var("PLAYGROUND_CACHE", &dir);
    dir
}

#[test]
fn features_of_upscaled_cifar_images_and_their_cache() {
    let cache = cache_dir();
    let test = support::data::load_cifar10(&common::real_data(), false).unwrap().take(6).unwrap();
    let backbone = Backbone::EfficientNet(EfficientNetLite::pretrained(0, &Device::Cpu).unwrap());
    let x = support::data::upscale(&test, &backbone.preset()).unwrap();
    assert_eq!(x.dims(), [6, 3, 224, 224]);
    // (x - 127) / 128 of 8-bit pixels lies in [-0.992, 1.0].
    let (lo, hi) = (
        x.min_all().unwrap().to_scalar::<f32>().unwrap(),
        x.max_all().unwrap().to_scalar::<f32>().unwrap(),
    );
    assert!(lo >= -0.9922 && hi <= 1.0 && hi > lo, "{lo} {hi}");
    let a = support::recipes::transfer::extract_features(&backbone, &test, "unit", 4).unwrap();
    assert!(!a.cached && a.block.is_none() && a.seconds > 0.0);
    assert_eq!(a.pooled.images.dims(), [6, 1280]);
    assert_eq!(a.pooled.labels.to_vec1::<u32>().unwrap(), test.labels.to_vec1::<u32>().unwrap());
    // ReLU6 then average pooling: every feature in [0, 6], and not all zero.
    let f = a.pooled.images.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(f.iter().all(|v| (0.0..=6.0).contains(v)) && f.iter().any(|v| *v > 0.1));
    let b = support::recipes::transfer::extract_features(&backbone, &test, "unit", 4).unwrap();
    assert!(b.cached && b.seconds == a.seconds, "the cache keeps the extraction time");
    assert_eq!(
        b.pooled.images.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        f,
        "the cached features differ"
    );
    // Asking for block activations the cached file does not hold recomputes (and caches them).
    let c = support::recipes::transfer::extract_features_with_block(&backbone, &test, "unit", 4, 3)
        .unwrap();
    assert!(!c.cached && c.block.unwrap().images.dims() == [6, 24, 56, 56]);
    assert!(
        support::recipes::transfer::extract_features_with_block(&backbone, &test, "unit", 4, 3)
            .unwrap()
            .cached
    );
    assert!(support::recipes::transfer::extract_features_with_block(
        &backbone, &test, "unit", 4, 16
    )
    .is_err());
    // Another data set of the same size under the same name is not served from the cache.
    let other = support::data::load_cifar10(&common::real_data(), false)
        .unwrap()
        .select(&[6, 7, 8, 9, 10, 11])
        .unwrap();
    assert!(
        !support::recipes::transfer::extract_features(&backbone, &other, "unit", 4).unwrap().cached
    );
    let _ = std::fs::remove_file(cache.join("efficientnet-lite0-224px-unit-6.safetensors"));
}

#[test]
fn torchvision_backbones_give_their_feature_sizes() {
    use support::models::TorchvisionModel;
    for (name, dim, size) in
        [(TorchvisionModel::AlexNet, 9216, 224), (TorchvisionModel::ResNet18, 512, 224)]
    {
        let m = support::models::TorchvisionNet::new(name, &Device::Cpu).unwrap();
        let x =
            support::Tensor::zeros((2, 3, size, size), support::candle::DType::F32, &Device::Cpu)
                .unwrap();
        assert_eq!(Backbone::Torchvision(m).features(&x).unwrap().dims(), [2, dim], "{name}");
    }
}

/// The fine-tuning model on the activations entering the last block computes exactly what the
/// whole network computes from the image, trains only the tail and the new head, and learns.
#[test]
fn fine_tuning_the_last_block_from_cached_activations() {
    let cache = cache_dir();
    let test = support::data::load_cifar10(&common::real_data(), false).unwrap().take(8).unwrap();
    let lite = EfficientNetLite::pretrained(0, &Device::Cpu).unwrap();
    let last = lite.num_blocks() - 1;
    let backbone = Backbone::EfficientNet(lite);
    let f = support::recipes::transfer::extract_features_with_block(
        &backbone, &test, "finetune", 4, last,
    )
    .unwrap();
    let blocks = f.block_data().unwrap();
    assert_eq!(blocks.images.dims(), [8, 192, 7, 7]);
    assert_eq!(blocks.images.dtype(), support::candle::DType::F16);
    // A second call loads both from the cache.
    let again = support::recipes::transfer::extract_features_with_block(
        &backbone, &test, "finetune", 4, last,
    )
    .unwrap();
    assert!(again.cached && again.seconds == f.seconds);

    let head = support::recipes::transfer::head(1280, 16, 10, 3).unwrap();
    let ft = support::recipes::transfer::FineTuned::new(
        EfficientNetLite::pretrained(0, &Device::Cpu).unwrap(),
        last,
        support::recipes::transfer::copy_head(&head, 1280, 16, 10).unwrap(),
    )
    .unwrap();
    // Last block (192 -> 1152 -> 320) + head conv (320 -> 1280) with their BatchNorms, and
    // the new head.
    let tail =
        192 * 1152 + 2 * 1152 + 1152 * 9 + 2 * 1152 + 1152 * 320 + 2 * 320 + 320 * 1280 + 2 * 1280;
    assert_eq!(ft.num_parameters(), tail + 1280 * 16 + 16 + 16 * 10 + 10);
    // Same logits as the frozen path: head(pooled features of the full network), up to f16 rounding
    // of the activations.
    let frozen =
        head.forward(&f.pooled.images).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let tuned =
        ft.forward(&blocks.images).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let worst = frozen.iter().zip(&tuned).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst < 2e-2, "fine-tuning model differs from the frozen path by {worst}");

    // Training moves the tail's weights (and not a copy of them), and the loss falls.
    let before = ft
        .params()
        .named()
        .iter()
        .find(|(n, _)| n == "_blocks.15._project_conv.weight")
        .expect("tail param")
        .1
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let (loader, _, _) =
        support::data::loaders((blocks.clone(), blocks.clone(), blocks.clone()), 8, 0).unwrap();
    let mut opt = support::optim::Adam::new(ft.params().vars(), 1e-3).unwrap();
    let opts = support::train::FitOptions::new(6).validate(&loader).verbose(false);
    let h = support::train::fit(&ft, &loader, &mut opt, support::train::Loss::CrossEntropy, opts)
        .unwrap();
    assert!(h.train_loss[5] < h.train_loss[0] * 0.5, "{:?}", h.train_loss);
    let after = ft
        .params()
        .named()
        .iter()
        .find(|(n, _)| n == "_blocks.15._project_conv.weight")
        .unwrap()
        .1
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_ne!(before, after);
    // The frozen head it was copied from is untouched.
    assert_eq!(
        head.forward(&f.pooled.images).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        frozen
    );
    assert!(support::recipes::transfer::FineTuned::new(
        EfficientNetLite::new(0, &Device::Cpu).unwrap(),
        16,
        head
    )
    .is_err());
    let _ = std::fs::remove_file(cache.join("efficientnet-lite0-224px-finetune-8.safetensors"));
}

/// A training-set-size sweep caps sizes at the training set and runs each size once; its figure
/// draws one curve per method, and an empty one is an error.
#[test]
fn sweep_sizes_and_figure() {
    let mut rng = support::rng::Rng::new(4);
    let n = 40;
    let labels: Vec<u32> = (0..n).map(|i| (i % 10) as u32).collect();
    // Features that carry their label (one-hot plus noise): a head must learn them.
    let feats: Vec<f32> = (0..n)
        .flat_map(|i| (0..12).map(move |j| if j == i % 10 { 1.0 } else { 0.0 }))
        .zip(rng.uniform_vec(n * 12, -0.1, 0.1))
        .map(|(a, b)| a + b)
        .collect();
    let ds = support::data::Dataset::new(
        support::Tensor::from_vec(feats, (n, 12), &Device::Cpu).unwrap(),
        support::Tensor::from_vec(labels, n, &Device::Cpu).unwrap(),
    )
    .unwrap();
    let cfg = support::recipes::transfer::HeadConfig { hidden: 16, lr: 1e-2, ..Default::default() };
    let pts = support::recipes::transfer::sweep_frozen(
        [&ds, &ds, &ds],
        &[(8, 2), (100, 60), (1000, 1)],
        cfg,
    )
    .unwrap();
    assert_eq!(pts.iter().map(|p| (p.n, p.epochs)).collect::<Vec<_>>(), [(8, 2), (40, 60)]);
    assert!(pts[1].test_accuracy > 0.9, "{pts:?}");
    let fig = support::recipes::transfer::sweep_figure(&[("a", &pts), ("b", &pts[..1])]).unwrap();
    assert_eq!((fig.width, fig.height), (760, 480));
    assert!(support::viz::lines(&[("none".to_string(), vec![])], "x", "y", true).is_err());
    assert!(
        support::viz::lines(&[("negative".to_string(), vec![(-1.0, 0.5)])], "x", "y", true)
            .is_err(),
        "log scale needs x > 0"
    );
    // The scatter shares the axes code: both scales render; its labels sit beside the points.
    let points: Vec<(String, f64, f64)> =
        (1..=12).map(|i| (format!("m{i}"), i as f64 * 3.0, 0.5 + i as f64 / 40.0)).collect();
    for log_x in [true, false] {
        let fig = support::viz::scatter(&points, "s", "acc", log_x).unwrap();
        assert_eq!((fig.width, fig.height), (760, 500));
        assert!(fig.png().unwrap().len() > 1000);
    }
    assert!(
        support::viz::scatter(&[("zero".to_string(), 0.0, 0.5)], "s", "acc", true).is_err(),
        "log scale needs x > 0"
    );
}
