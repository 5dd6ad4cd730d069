//! Checkpoint reading on two tiny files written by torch (`tests/golden/make_fixtures_pth.py`):
//! the same state_dict in torch's zip format and in the legacy pickle format, one weight stored
//! transposed, an int64 buffer; and loading them into a model by key.

use support::nn::{Init, Linear};
use support::Device;

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
