//! Loaders on the real files (found as the library finds them: `$PLAYGROUND_DATA`, else `data/`),
//! and every kind of bad input on small files the tests write themselves.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use support::data::fetch::sha256_file;
use support::data::*;
use support::env::{downloads_enabled, DATA_ENV, OFFLINE_ENV};

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("support-data-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn idx_bytes(magic: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend(payload);
    v
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn real_mnist_loads_with_the_known_counts_and_first_labels() {
    let root = common::real_data();
    let train = load_mnist(&root, true).unwrap();
    let test = load_mnist(&root, false).unwrap();
    assert_eq!(train.images.dims(), [60000, 1, 28, 28]);
    assert_eq!(test.images.dims(), [10000, 1, 28, 28]);
    // The first training labels of MNIST are 5 0 4 1 9 2; the first test labels 7 2 1 0 4 1.
    assert_eq!(train.labels.narrow(0, 0, 6).unwrap().to_vec1::<u32>().unwrap(), [5, 0, 4, 1, 9, 2]);
    assert_eq!(test.labels.narrow(0, 0, 6).unwrap().to_vec1::<u32>().unwrap(), [7, 2, 1, 0, 4, 1]);
    let (lo, hi) = (
        train.images.min_all().unwrap().to_scalar::<f32>().unwrap(),
        train.images.max_all().unwrap().to_scalar::<f32>().unwrap(),
    );
    assert_eq!((lo, hi), (0.0, 1.0));
    // Mean pixel of the MNIST training set: 0.1307 (the value torchvision examples normalise with).
    let mean = train.images.mean_all().unwrap().to_scalar::<f32>().unwrap();
    assert!((mean - 0.1307).abs() < 1e-3, "mean {mean}");
}

#[test]
fn real_cifar10_loads_with_the_known_counts_and_first_labels() {
    let root = common::real_data();
    let test = load_cifar10(&root, false).unwrap();
    assert_eq!(test.images.dims(), [10000, 3, 32, 32]);
    // The original notebook's 4x4 grid: cat, ship, ship, plane, frog, frog, car, frog, ...
    let first: Vec<&str> = test
        .labels
        .narrow(0, 0, 8)
        .unwrap()
        .to_vec1::<u32>()
        .unwrap()
        .iter()
        .map(|&l| CIFAR10_CLASSES[l as usize])
        .collect();
    assert_eq!(first, ["cat", "ship", "ship", "plane", "frog", "frog", "car", "frog"]);
    let train = load_cifar10(&root, true).unwrap();
    assert_eq!(train.len(), 50000);
    let counts = train.labels.to_vec1::<u32>().unwrap().iter().fold([0usize; 10], |mut c, &l| {
        c[l as usize] += 1;
        c
    });
    assert_eq!(counts, [5000; 10]);
}

#[test]
fn real_files_match_their_published_checksums() {
    let root = common::real_data();
    for f in &MNIST_FILES {
        assert_eq!(sha256_file(&root.join("mnist").join(f.name)).unwrap(), f.sha256, "{}", f.name);
    }
    let (name, sha) = CIFAR10_FILES[5];
    assert_eq!(sha256_file(&root.join("cifar-10-batches-bin").join(name)).unwrap(), sha);
}

#[test]
fn split_is_seeded_disjoint_and_complete() {
    let ds =
        Dataset::from_u8((0..100u8).collect(), (0..100u8).map(|i| i % 10).collect(), (1, 1, 1))
            .unwrap();
    let a = random_split(&ds, &[80, 20], 42).unwrap();
    let b = random_split(&ds, &[80, 20], 42).unwrap();
    let c = random_split(&ds, &[80, 20], 43).unwrap();
    let pix = |d: &Dataset| d.images.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(pix(&a[0]), pix(&b[0]));
    assert_ne!(pix(&a[0]), pix(&c[0]));
    let mut all: Vec<u32> =
        pix(&a[0]).iter().chain(pix(&a[1]).iter()).map(|v| (v * 255.0).round() as u32).collect();
    all.sort();
    assert_eq!(all, (0..100).collect::<Vec<u32>>());
    assert!(random_split(&ds, &[80, 30], 42).unwrap_err().to_string().contains("add up to 110"));
}

#[test]
fn loader_batches_cover_each_sample_once_and_reshuffle_per_epoch() {
    let ds = Dataset::from_u8((0..10u8).collect(), (0..10u8).collect(), (1, 1, 1)).unwrap();
    let dl = DataLoader::new(ds.clone(), 4, true, 1).unwrap();
    assert_eq!(dl.num_batches(), 3);
    let epoch = |dl: &DataLoader| -> Vec<u32> {
        dl.iter().flat_map(|b| b.unwrap().1.to_vec1::<u32>().unwrap()).collect()
    };
    let (e1, e2) = (epoch(&dl), epoch(&dl));
    let sizes: Vec<usize> = dl.iter().map(|b| b.unwrap().0.dim(0).unwrap()).collect();
    assert_eq!(sizes, [4, 4, 2]);
    assert_ne!(e1, e2, "a new order every epoch");
    let mut s = e1.clone();
    s.sort();
    assert_eq!(s, (0..10).collect::<Vec<u32>>());
    let again = DataLoader::new(ds.clone(), 4, true, 1).unwrap();
    assert_eq!(epoch(&again), e1, "same seed, same order");
    let ordered = DataLoader::new(ds, 4, false, 0).unwrap();
    assert_eq!(epoch(&ordered), (0..10).collect::<Vec<u32>>());
}

#[test]
fn idx_reader_accepts_raw_and_gzip() {
    let d = scratch("idx-ok");
    let bytes = idx_bytes(2051, &[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    std::fs::write(d.join("raw"), &bytes).unwrap();
    std::fs::write(d.join("z.gz"), gz(&bytes)).unwrap();
    for f in ["raw", "z.gz"] {
        let idx = read_idx(&d.join(f), 3).unwrap();
        assert_eq!(idx.dims, [2, 2, 3]);
        assert_eq!(idx.data, (1..=12).collect::<Vec<u8>>());
    }
}

#[test]
fn idx_reader_rejects_bad_files_with_what_to_do() {
    let d = scratch("idx-bad");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("wrong-magic", idx_bytes(2049, &[2, 2, 3], &[0; 12]), "magic 2049 but 2051"),
        ("truncated", idx_bytes(2051, &[2, 2, 3], &[0; 7]), "truncated"),
        ("too-long", idx_bytes(2051, &[1, 2, 3], &[0; 12]), "longer than its header"),
        ("tiny", vec![0, 0], "too short"),
        ("header", idx_bytes(2051, &[2], &[]), "inside its header"),
    ];
    for (name, bytes, want) in cases {
        std::fs::write(d.join(name), bytes).unwrap();
        let err = read_idx(&d.join(name), 3).unwrap_err().to_string();
        assert!(err.contains(want) && err.contains("replace"), "{name}: {err}");
    }
    let mut broken = gz(&idx_bytes(2051, &[2, 2, 3], &[0; 12]));
    broken.truncate(broken.len() - 10);
    std::fs::write(d.join("broken.gz"), broken).unwrap();
    let err = read_idx(&d.join("broken.gz"), 3).unwrap_err().to_string();
    assert!(err.contains("corrupt or truncated gzip"), "{err}");
}

fn write_mnist(dir: &Path, n_images: u32, n_labels: u32, label: u8) {
    let m = dir.join("mnist");
    std::fs::create_dir_all(&m).unwrap();
    for (prefix, n, nl) in [("train", n_images, n_labels), ("t10k", n_images, n_labels)] {
        std::fs::write(
            m.join(format!("{prefix}-images-idx3-ubyte")),
            idx_bytes(2051, &[n, 28, 28], &vec![7u8; n as usize * 784]),
        )
        .unwrap();
        std::fs::write(
            m.join(format!("{prefix}-labels-idx1-ubyte")),
            idx_bytes(2049, &[nl], &vec![label; nl as usize]),
        )
        .unwrap();
    }
}

#[test]
fn mnist_checks_that_images_and_labels_agree() {
    let d = scratch("mnist-mismatch");
    write_mnist(&d, 3, 3, 4);
    assert_eq!(load_mnist(&d, true).unwrap().len(), 3);
    write_mnist(&d, 3, 2, 4);
    let e = load_mnist(&d, true).unwrap_err().to_string();
    assert!(e.contains("train-images-idx3-ubyte holds 3 images but"), "{e}");
    assert!(e.contains("train-labels-idx1-ubyte holds 2 labels"), "{e}");
    write_mnist(&d, 3, 3, 11);
    assert!(load_mnist(&d, false).unwrap_err().to_string().contains("outside 0..=9"));
}

#[test]
fn cifar_reader_rejects_truncated_and_corrupt_files() {
    let d = scratch("cifar-bad");
    let mut rec = vec![3u8];
    rec.extend(vec![128u8; 3072]);
    std::fs::write(d.join("ok.bin"), [rec.clone(), rec.clone()].concat()).unwrap();
    let (px, labels) = read_cifar_bin(&d.join("ok.bin")).unwrap();
    assert_eq!((px.len(), labels), (2 * 3072, vec![3, 3]));
    std::fs::write(d.join("short.bin"), &rec[..3000]).unwrap();
    let err = read_cifar_bin(&d.join("short.bin")).unwrap_err().to_string();
    assert!(err.contains("not a whole number of 3073-byte") && err.contains("replace"), "{err}");
    let mut bad = rec.clone();
    bad[0] = 42;
    std::fs::write(d.join("label.bin"), bad).unwrap();
    assert!(read_cifar_bin(&d.join("label.bin")).unwrap_err().to_string().contains("label 42"));
}

#[test]
fn missing_data_names_the_files_and_the_folder() {
    let d = scratch("missing");
    // Tests never reach the internet: downloads off, as for a user who sets PLAYGROUND_OFFLINE.
    // (The download path itself is tested against a loopback server in tests/download.rs.)
    std::env::set_var(OFFLINE_ENV, "1");
    assert!(!downloads_enabled());
    let msg = ensure_mnist(&d).unwrap_err().to_string();
    let folder = d.join("mnist").display().to_string();
    for f in &MNIST_FILES {
        assert!(msg.contains(f.name), "{msg}");
    }
    assert!(
        msg.contains(&folder) && msg.contains(DATA_ENV) && msg.contains("Downloads are off"),
        "{msg}"
    );
    let msg = ensure_cifar10(&d).unwrap_err().to_string();
    assert!(
        msg.contains("data_batch_1.bin")
            && msg.contains("test_batch.bin")
            && msg.contains("cifar-10-batches-bin"),
        "{msg}"
    );
}

#[test]
fn checksum_of_a_known_file() {
    let d = scratch("sha");
    std::fs::write(d.join("abc"), b"abc").unwrap();
    assert_eq!(
        sha256_file(&d.join("abc")).unwrap(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}
