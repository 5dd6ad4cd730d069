//! CIFAR-10, binary version: the six `.bin` files in `<data>/cifar-10-batches-bin`, unpacked
//! from the official tarball when missing, each checked by SHA-256; the splits and loaders of
//! the original notebook.

use super::fetch::missing_files_error;
use super::{loaders, split_off_validation, DataLoader, Dataset};
use crate::{env, error, Result};
use std::path::{Path, PathBuf};

/// The official CIFAR-10 binary tarball; the files below are extracted from it and each is
/// checked by its SHA-256.
pub const CIFAR10_TARBALL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";

/// The six CIFAR-10 `.bin` files (10,000 records of 1 label byte + 3,072 pixel bytes each).
pub const CIFAR10_FILES: [(&str, &str); 6] = [
    ("data_batch_1.bin", "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5"),
    ("data_batch_2.bin", "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed"),
    ("data_batch_3.bin", "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67"),
    ("data_batch_4.bin", "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48"),
    ("data_batch_5.bin", "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add"),
    ("test_batch.bin", "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b"),
];

/// CIFAR-10 class names in label order, as the original notebooks spell them.
pub const CIFAR10_CLASSES: [&str; 10] =
    ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// Makes sure the six CIFAR-10 `.bin` files are in `<root>/cifar-10-batches-bin`, downloading
/// and unpacking the official tarball when some are missing. Returns the folder.
pub fn ensure_cifar10(root: &Path) -> Result<PathBuf> {
    let dir = root.join("cifar-10-batches-bin");
    let missing: Vec<&str> =
        CIFAR10_FILES.iter().map(|(n, _)| *n).filter(|n| !dir.join(n).exists()).collect();
    if missing.is_empty() {
        return Ok(dir);
    }
    #[cfg(feature = "download")]
    if env::downloads_enabled() {
        return match super::fetch::fetch_tar_members(CIFAR10_TARBALL, &dir, &CIFAR10_FILES) {
            Ok(()) => Ok(dir),
            Err(e) => Err(missing_files_error("CIFAR-10", &dir, &missing, &[e.to_string()])),
        };
    }
    Err(missing_files_error("CIFAR-10", &dir, &missing, &[]))
}

const CIFAR_RECORD: usize = 1 + 3 * 32 * 32;

/// Reads one CIFAR-10 binary batch file: records of 1 label byte + 1024 R + 1024 G + 1024 B.
pub fn read_cifar_bin(path: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let bytes = super::fetch::read_data_file(path)?;
    if bytes.is_empty() || bytes.len() % CIFAR_RECORD != 0 {
        return Err(error(format!(
            "{} has {} bytes, not a whole number of {CIFAR_RECORD}-byte CIFAR-10 records: the \
             file is truncated or not a CIFAR-10 batch; replace it",
            path.display(),
            bytes.len()
        )));
    }
    let n = bytes.len() / CIFAR_RECORD;
    let mut labels = Vec::with_capacity(n);
    let mut pixels = Vec::with_capacity(n * (CIFAR_RECORD - 1));
    for rec in bytes.chunks_exact(CIFAR_RECORD) {
        if rec[0] > 9 {
            return Err(error(format!(
                "{} holds label {} outside 0..=9 (record {}): the file is corrupt or not a \
                 CIFAR-10 batch; replace it",
                path.display(),
                rec[0],
                labels.len()
            )));
        }
        labels.push(rec[0]);
        pixels.extend_from_slice(&rec[1..]);
    }
    Ok((pixels, labels))
}

/// Loads CIFAR-10 from `<root>/cifar-10-batches-bin`: the 50,000 training images (`train`) or
/// the 10,000 test images, shape `(N, 3, 32, 32)`, pixels in [0, 1].
pub fn load_cifar10(root: &Path, train: bool) -> Result<Dataset> {
    let dir = ensure_cifar10(root)?;
    let names: Vec<&str> = if train {
        CIFAR10_FILES[..5].iter().map(|f| f.0).collect()
    } else {
        vec![CIFAR10_FILES[5].0]
    };
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for name in names {
        let (p, l) = read_cifar_bin(&dir.join(name))?;
        pixels.extend(p);
        labels.extend(l);
    }
    Dataset::from_u8(pixels, labels, (3, 32, 32))
}

/// The CIFAR-10 splits of the original notebook: the 50,000 training images split 40,000 /
/// 10,000 with `split_seed` (42 there), and the 10,000 test images, all normalised as
/// `Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))` to [-1, 1]. Quick mode as [`super::mnist_splits`].
pub fn cifar10_splits(split_seed: u64) -> Result<(Dataset, Dataset, Dataset)> {
    let (train, val, test) = cifar10_raw_splits(split_seed)?;
    Ok((train.normalize(0.5, 0.5)?, val.normalize(0.5, 0.5)?, test.normalize(0.5, 0.5)?))
}

/// [`cifar10_splits`] with the pixels left in [0, 1] (for other preprocessing, e.g. the ImageNet
/// presets of the transfer-learning notebook). Same split for the same seed.
pub fn cifar10_raw_splits(split_seed: u64) -> Result<(Dataset, Dataset, Dataset)> {
    let root = env::data_dir();
    split_off_validation(
        load_cifar10(&root, true)?,
        load_cifar10(&root, false)?,
        40_000,
        split_seed,
    )
}

/// The CIFAR-10 loaders of the original notebook over [`cifar10_splits`] (batch 256 there).
pub fn cifar10_loaders(
    batch_size: usize,
    split_seed: u64,
) -> Result<(DataLoader, DataLoader, DataLoader)> {
    loaders(cifar10_splits(split_seed)?, batch_size, split_seed)
}
