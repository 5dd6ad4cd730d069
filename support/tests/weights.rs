//! Checkpoint reading on two tiny files written by torch (`tests/golden/make_fixtures_pth.py`):
//! the same state_dict in torch's zip format and in the legacy pickle format, one weight stored
//! transposed, an int64 buffer; and loading them into a model by key.

use support::nn::{Init, Linear};
use support::{Device, Tensor};

#[path = "common/pth.rs"]
mod pth;

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

#[test]
fn zip_and_legacy_pth_read_the_same_tensors() {
    for file in ["tiny_zip.pth", "tiny_legacy.pth"] {
        let sd = support::weights::read_state_dict(fixture(file)).unwrap();
        assert_eq!(sd.len(), 3, "{file}");
        assert_eq!(
            sd["fc.weight"].to_vec2::<f32>().unwrap(),
            [[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]],
            "{file}"
        );
        assert_eq!(sd["fc.bias"].to_vec1::<f32>().unwrap(), [0.5, -1.5], "{file}");
        assert_eq!(sd["bn.num_batches_tracked"].to_scalar::<i64>().unwrap(), 7, "{file}");
    }
}

#[test]
fn a_model_loads_a_pth_by_key_and_ignores_extra_buffers() {
    let mut init = Init::new(0, &Device::Cpu);
    let fc = Linear::new(&mut init, "fc", 3, 2).unwrap();
    let p = init.finish();
    p.load(fixture("tiny_zip.pth")).unwrap();
    assert_eq!(fc.weight.to_vec2::<f32>().unwrap(), [[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]]);
    let mut init = Init::new(0, &Device::Cpu);
    Linear::new(&mut init, "head", 3, 2).unwrap();
    let q = init.finish();
    let err = q.load(fixture("tiny_legacy.pth")).unwrap_err().to_string();
    assert!(err.contains("has no tensor `head.weight`"), "{err}");
}

/// A safetensors file whose header length starts with the byte 0x80 (as a pickle does) is still
/// read as safetensors (a saved AlexNet hit this).
#[test]
fn safetensors_whose_first_byte_looks_like_a_pickle() {
    let dir = std::env::temp_dir().join(format!("support-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("w.safetensors");
    let mut hit = false;
    for len in 1..200 {
        let mut init = Init::new(0, &Device::Cpu);
        Linear::new(&mut init, &"k".repeat(len), 3, 2).unwrap();
        let p = init.finish();
        p.save(&path).unwrap();
        if std::fs::read(&path).unwrap()[0] == 0x80 {
            let sd = support::weights::read_state_dict(&path).unwrap();
            assert_eq!(sd.len(), 2);
            p.load(&path).unwrap();
            hit = true;
            break;
        }
    }
    assert!(hit, "no header length starting with 0x80 was produced");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The torch-format writer the pretrained-weights tests use (`common/pth.rs`) writes what torch
/// reads: the file left in `target/tmp/written.pth` was loaded by `torch.load` with
/// `tests/golden/check_written_pth.py` (torch 2.15.0, `weights_only=True`), which printed
///
/// ```text
/// fc.weight torch.float32 (2, 3) [[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]]
/// fc.bias torch.float32 (2,) [0.5, -1.5]
/// bn.num_batches_tracked torch.int64 () 7
/// ```
///
/// the same values as the PyTorch-made fixtures; here it reads back as those fixtures do.
#[test]
fn written_pth_loads_in_torch_and_here() {
    let dev = Device::Cpu;
    let sd = vec![
        ("fc.weight".to_string(), Tensor::new(&[[0f32, 2., 4.], [1., 3., 5.]], &dev).unwrap()),
        ("fc.bias".to_string(), Tensor::new(&[0.5f32, -1.5], &dev).unwrap()),
        ("bn.num_batches_tracked".to_string(), Tensor::new(7i64, &dev).unwrap()),
    ];
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("written.pth");
    pth::save_pth(&sd, &path);
    let back = support::weights::read_state_dict(&path).unwrap();
    let want = support::weights::read_state_dict(fixture("tiny_zip.pth")).unwrap();
    assert_eq!(back.len(), want.len());
    for (k, v) in &want {
        assert_eq!(back[k].dims(), v.dims(), "{k}");
        assert_eq!(back[k].dtype(), v.dtype(), "{k}");
        let same = back[k].flatten_all().unwrap().eq(&v.flatten_all().unwrap()).unwrap();
        assert_eq!(same.min_all().unwrap().to_scalar::<u8>().unwrap(), 1, "{k}");
    }
}
