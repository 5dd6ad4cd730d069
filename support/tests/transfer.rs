//! Transfer learning plumbing on real CIFAR-10 images with the real EfficientNet-Lite0 weights:
//! upscaling with the ImageNet preset, feature extraction, and the feature cache.

use support::efficientnet::EfficientNetLite;
use support::transfer::Backbone;
use support::Device;

#[test]
fn features_of_upscaled_cifar_images_and_their_cache() {
    let cache = std::env::temp_dir().join(format!("support-transfer-{}", std::process::id()));
    std::env::set_var("PLAYGROUND_CACHE", &cache);
    let test = support::data::load_cifar10(&support::data::data_root(), false).unwrap().take(6).unwrap();
    let backbone = Backbone::EfficientNet(EfficientNetLite::pretrained(0, &Device::Cpu).unwrap());
    let x = support::transfer::upscale(&test, &backbone.preset()).unwrap();
    assert_eq!(x.dims(), [6, 3, 224, 224]);
    // (x - 127) / 128 of 8-bit pixels lies in [-0.992, 1.0].
    let (lo, hi) = (x.min_all().unwrap().to_scalar::<f32>().unwrap(), x.max_all().unwrap().to_scalar::<f32>().unwrap());
    assert!(lo >= -0.9922 && hi <= 1.0 && hi > lo, "{lo} {hi}");
    let a = support::transfer::extract_features(&backbone, &test, "unit", 4).unwrap();
    assert_eq!(a.images.dims(), [6, 1280]);
    assert_eq!(a.labels.to_vec1::<u32>().unwrap(), test.labels.to_vec1::<u32>().unwrap());
    // ReLU6 then average pooling: every feature in [0, 6], and not all zero.
    let f = a.images.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(f.iter().all(|v| (0.0..=6.0).contains(v)) && f.iter().any(|v| *v > 0.1));
    let b = support::transfer::extract_features(&backbone, &test, "unit", 4).unwrap();
    assert_eq!(b.images.flatten_all().unwrap().to_vec1::<f32>().unwrap(), f, "the cached features differ");
    let _ = std::fs::remove_dir_all(&cache);
}

#[test]
fn torchvision_backbones_give_their_feature_sizes() {
    for (name, dim, size) in [("AlexNet", 9216, 224), ("ResNet18", 512, 224)] {
        let m = support::torchvision::TorchvisionNet::new(name, &Device::Cpu).unwrap();
        let x = support::Tensor::zeros((2, 3, size, size), support::candle::DType::F32, &Device::Cpu).unwrap();
        assert_eq!(Backbone::Torchvision(m).features(&x).unwrap().dims(), [2, dim], "{name}");
    }
}
