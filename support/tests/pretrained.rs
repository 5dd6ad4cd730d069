//! torchvision checkpoints as `TorchvisionNet::pretrained` gets them: downloaded from a server
//! (here one on 127.0.0.1 that the test runs) with the SHA-256 prefix of the file name checked as
//! `torch.hub` does, refused with nothing left behind when the hash differs, cut off when the
//! server stalls, and loaded from the weights folder when the file is there; then the transfer
//! notebook's frozen-backbone run on such a checkpoint. This binary sets `PLAYGROUND_WEIGHTS`,
//! `PLAYGROUND_WEIGHTS_URL`, `PLAYGROUND_CACHE` and `PLAYGROUND_OFFLINE`, so its steps run one
//! after another (one `#[test]`).
#![cfg(feature = "download")]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use support::data::fetch::{fetch_hash_prefix, set_read_timeout, sha256_file};
use support::data::Dataset;
use support::models::{TorchvisionModel, TorchvisionNet};
use support::recipes::transfer::{self, Backbone, HeadConfig};
use support::{Device, Model, Tensor};

#[path = "common/pth.rs"]
mod pth;

/// Writes a state dict in torch's own zip format, as torchvision's checkpoints are.
fn save_pth(sd: &std::collections::HashMap<String, Tensor>, path: &std::path::Path) {
    let mut items: Vec<(String, Tensor)> = sd.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    pth::save_pth(&items, path);
}

/// Serves `body` to every request on 127.0.0.1 (after `stall` seconds of silence mid-body when
/// set) and returns the base URL; records the paths requested.
fn serve(
    body: Vec<u8>,
    stall: Option<u64>,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = req.split_whitespace().nth(1).unwrap_or("").to_string();
            log.lock().unwrap().push(path);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            match stall {
                Some(secs) => {
                    let _ = s.write_all(&body[..body.len() / 2]);
                    std::thread::sleep(std::time::Duration::from_secs(secs));
                }
                None => {
                    let _ = s.write_all(&body);
                }
            }
        }
    });
    (format!("http://127.0.0.1:{port}/models"), seen)
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("support-pretrained-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn torchvision_checkpoints_download_check_and_load() {
    // 1. A small file under a name that carries its real hash prefix downloads and lands whole.
    let body = b"a small checkpoint".to_vec();
    let dir = scratch("fetch");
    let probe = dir.join("probe");
    std::fs::write(&probe, &body).unwrap();
    let prefix = sha256_file(&probe).unwrap()[..8].to_string();
    let (base, _) = serve(body.clone(), None);
    let dest = dir.join(format!("tiny-{prefix}.pth"));
    fetch_hash_prefix(&[&format!("{base}/tiny-{prefix}.pth")], &prefix, &dest).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    assert!(!dir.join(format!("tiny-{prefix}.pth.part")).exists());
    // A wrong prefix is refused and leaves nothing; so is a prefix that is not one.
    let wrong = dir.join("tiny-00000000.pth");
    let e = fetch_hash_prefix(&[&format!("{base}/tiny.pth")], "00000000", &wrong).unwrap_err();
    assert!(e.to_string().contains("checksum mismatch"), "{e}");
    assert!(!wrong.exists() && !dir.join("tiny-00000000.pth.part").exists());
    assert!(fetch_hash_prefix(&[&base], "xyz", &wrong).is_err());

    // 2. pretrained(): the official file name at $PLAYGROUND_WEIGHTS_URL; the server sends other
    // bytes, so the hash check refuses them, nothing is left in the weights folder, and the model
    // says it keeps random weights.
    let weights = scratch("weights");
    std::env::set_var("PLAYGROUND_WEIGHTS", &weights);
    let (base, seen) = serve(b"not resnet18".to_vec(), None);
    std::env::set_var("PLAYGROUND_WEIGHTS_URL", &base);
    let arch = TorchvisionModel::ResNet18;
    assert_eq!(arch.checkpoint_hash_prefix(), "f37072fd");
    assert_eq!(arch.checkpoint_url(), format!("{base}/resnet18-f37072fd.pth"));
    let net = TorchvisionNet::pretrained(arch, &Device::Cpu).unwrap();
    assert!(!net.pretrained);
    assert_eq!(seen.lock().unwrap().as_slice(), ["/models/resnet18-f37072fd.pth"]);
    let left: Vec<_> = std::fs::read_dir(&weights).unwrap().collect();
    assert!(left.is_empty(), "the refused download left {left:?}");

    // 3. A server that stalls mid-file: the read timeout ends the attempt, nothing is left.
    set_read_timeout(std::time::Duration::from_secs(1));
    let (base, _) = serve(vec![7u8; 100_000], Some(30));
    std::env::set_var("PLAYGROUND_WEIGHTS_URL", &base);
    let start = std::time::Instant::now();
    let net = TorchvisionNet::pretrained(arch, &Device::Cpu).unwrap();
    assert!(!net.pretrained && start.elapsed().as_secs() < 15, "{:?}", start.elapsed());
    assert!(std::fs::read_dir(&weights).unwrap().next().is_none());

    // 4. Offline, with the checkpoint in the weights folder: pretrained() loads it (every
    // architecture, Inception v3 also without its auxiliary classifier). The files are written
    // in torch's zip format under the official names, by the writer in common/pth.rs (which
    // torch.load reads: tests/weights.rs); 1.1 GB in all, one architecture at a time.
    std::env::set_var("PLAYGROUND_OFFLINE", "1");
    for arch in TorchvisionModel::ALL {
        let source = TorchvisionNet::new(arch, &Device::Cpu).unwrap();
        // Different weights from the placeholder init: a model that ignored the file would differ.
        let scaled: std::collections::HashMap<String, Tensor> = source
            .params()
            .state_dict()
            .into_iter()
            .map(|(k, v)| {
                let v = if v.dtype().is_float() { (v * 0.5).unwrap() } else { v };
                (k, v)
            })
            .collect();
        let path = weights.join(arch.checkpoint_file());
        save_pth(&scaled, &path);
        let net = TorchvisionNet::pretrained(arch, &Device::Cpu).unwrap();
        assert!(net.pretrained, "{arch}");
        for (k, v) in net.params().state_dict() {
            if !v.dtype().is_float() {
                continue;
            }
            let want = &scaled[k.as_str()];
            let diff = (v - want).unwrap().abs().unwrap().max_all().unwrap();
            assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0, "{arch}: {k}");
        }
        if arch == TorchvisionModel::InceptionV3 {
            // Saved with `aux_logits=False`: no `AuxLogits.*` tensors; everything else loads.
            let no_aux: std::collections::HashMap<String, Tensor> = scaled
                .iter()
                .filter(|(k, _)| !k.starts_with("AuxLogits."))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            assert!(no_aux.len() < scaled.len());
            save_pth(&no_aux, &path);
            let net = TorchvisionNet::pretrained(arch, &Device::Cpu).unwrap();
            let sd = net.params().state_dict();
            let w = "Mixed_7c.branch_pool.conv.weight";
            let diff = (&sd[w] - &no_aux[w]).unwrap().abs().unwrap().max_all().unwrap();
            assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
            // Without the auxiliary tensors and missing another one: still an error naming it.
            let mut broken = no_aux.clone();
            broken.remove(w);
            save_pth(&broken, &path);
            let e = TorchvisionNet::pretrained(arch, &Device::Cpu).err().expect("an error");
            assert!(e.to_string().contains(w), "{e}");
        }
        std::fs::remove_file(&path).unwrap();
    }

    // 5. The transfer notebook's frozen-backbone path end to end on a few images: ResNet18 from
    // its checkpoint file, features extracted (and cached in $PLAYGROUND_CACHE), a new head
    // trained for 2 epochs, metrics on the three splits; a second run reads the cache.
    let arch = TorchvisionModel::ResNet18;
    let path = weights.join(arch.checkpoint_file());
    save_pth(&TorchvisionNet::new(arch, &Device::Cpu).unwrap().params().state_dict(), &path);
    let cache = scratch("cache");
    std::env::set_var("PLAYGROUND_CACHE", &cache);
    let backbone = Backbone::Torchvision(TorchvisionNet::pretrained(arch, &Device::Cpu).unwrap());
    assert!(backbone.is_pretrained());
    let split = |n: usize, seed: u64| {
        let images = Tensor::rand(0f32, 1., (n, 3, 32, 32), &Device::Cpu).unwrap();
        let labels: Vec<u32> = (0..n as u32).map(|i| (i + seed as u32) % 10).collect();
        Dataset::new(images, Tensor::new(labels.as_slice(), &Device::Cpu).unwrap()).unwrap()
    };
    let (train, val, test) = (split(12, 0), split(4, 3), split(4, 7));
    let cfg = HeadConfig { hidden: 16, batch_size: 4, ..Default::default() };
    let run = transfer::frozen_run(&backbone, [&train, &val, &test], cfg, 2).unwrap();
    assert_eq!((run.backbone.as_str(), run.images), ("resnet18", 20));
    assert_eq!(run.history.train_loss.len(), 2);
    assert!(run.metrics.test.0.is_finite() && (0.0..=1.0).contains(&run.metrics.test.1));
    assert_eq!(run.head.num_parameters(), 512 * 16 + 16 + 16 * 10 + 10);
    let cached = std::fs::read_dir(&cache).unwrap().count();
    assert_eq!(cached, 3, "one feature file per split");
    let again = transfer::frozen_run(&backbone, [&train, &val, &test], cfg, 2).unwrap();
    assert_eq!(again.history.train_loss, run.history.train_loss, "same features, same seed");
    std::fs::remove_dir_all(&cache).ok();
    std::fs::remove_dir_all(&weights).ok();
    std::fs::remove_dir_all(&dir).ok();
}
