//! The CIFAR-10 zoo: parameter counts equal to the original notebook's, output shapes, and a
//! clear error for a wrong input size.

use support::nn::Model;
use support::candle::{DType, Device, Tensor};
use support::cifar::{build, MODELS};

#[test]
fn parameter_counts_match_the_original_notebook() {
    let want = [12_332_010, 83_126, 99_014, 2_105_562, 1_070_874, 602_010, 269_034, 271_690, 1_517_546, 1_119_818];
    for (name, n) in MODELS.iter().zip(want) {
        assert_eq!(build(name, 0).unwrap().num_parameters(), n, "{name}");
    }
}

#[test]
fn every_model_maps_a_batch_of_images_to_ten_logits_in_both_modes() {
    let x = Tensor::rand(-1f32, 1., (3, 3, 32, 32), &Device::Cpu).unwrap();
    for name in MODELS {
        let m = build(name, 0).unwrap();
        for train in [false, true] {
            assert_eq!(m.forward_t(&x, train).unwrap().dims(), [3, 10], "{name} train={train}");
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
    let grad_of = |n: &str| grads.get(named.iter().find(|(k, _)| k == n).unwrap().1.as_tensor()).is_some();
    assert!(grad_of("conv2.weight") && grad_of("conv3.weight"));
    assert!(!grad_of("conv4.weight"), "conv4 is declared but unused in the original's forward");
}

#[test]
fn wrong_image_size_is_a_clear_error() {
    let x = Tensor::zeros((1, 3, 20, 20), DType::F32, &Device::Cpu).unwrap();
    let err = build("Inception", 0).unwrap().forward(&x).unwrap_err().to_string();
    assert!(err.contains("expects 3x32x32 images"), "{err}");
    assert!(build("ResNet50", 0).err().unwrap().to_string().contains("no CIFAR model called `ResNet50`"));
}

/// A finished run is saved and, on the next call with the same model and epochs, loaded
/// (weights and history) instead of trained again.
#[test]
fn train_or_load_saves_then_resumes() {
    let dir = std::env::temp_dir().join(format!("support-runs-{}", std::process::id()));
    std::env::set_var("PLAYGROUND_RUNS", &dir);
    let ds = support::data::load_cifar10(&support::data::data_root(), false).unwrap().take(96).unwrap();
    let train = support::data::DataLoader::new(ds.take(64).unwrap(), 32, true, 1).unwrap();
    let val = support::data::DataLoader::new(ds.select(&(64..96).collect::<Vec<u32>>()).unwrap(), 32, false, 0).unwrap();
    let a = build("LeNet5", 0).unwrap();
    let ha = support::cifar::train_or_load("LeNet5", &a, &train, &val, 1).unwrap();
    assert!(dir.join("cifar10/LeNet5-1ep.safetensors").exists());
    let b = build("LeNet5", 7).unwrap();
    let hb = support::cifar::train_or_load("LeNet5", &b, &train, &val, 1).unwrap();
    assert_eq!(ha.train_loss, hb.train_loss);
    assert_eq!(ha.val_accuracy, hb.val_accuracy);
    let flat = |m: &support::cifar::CifarNet| m.params().named()[0].1.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(flat(&a), flat(&b), "the loaded weights are the trained ones");
    let _ = std::fs::remove_dir_all(&dir);
}
