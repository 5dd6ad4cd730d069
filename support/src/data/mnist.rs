//! MNIST: the four original IDX files (gzip or uncompressed) in `<data>/mnist`, fetched from
//! PyTorch's mirror when missing, checked by SHA-256; the splits and loaders of
//! the original notebooks.

use super::fetch::{missing_files_error, RemoteFile};
use super::{loaders, split_off_validation, DataLoader, Dataset};
use crate::{env, error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The four MNIST files (byte-identical to the ones torchvision verifies by MD5).
pub const MNIST_FILES: [RemoteFile; 4] = [
    RemoteFile {
        name: "train-images-idx3-ubyte.gz",
        sha256: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        urls: &[
            "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
            "https://storage.googleapis.com/cvdf-datasets/mnist/train-images-idx3-ubyte.gz",
        ],
    },
    RemoteFile {
        name: "train-labels-idx1-ubyte.gz",
        sha256: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        urls: &[
            "https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz",
            "https://storage.googleapis.com/cvdf-datasets/mnist/train-labels-idx1-ubyte.gz",
        ],
    },
    RemoteFile {
        name: "t10k-images-idx3-ubyte.gz",
        sha256: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        urls: &[
            "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz",
            "https://storage.googleapis.com/cvdf-datasets/mnist/t10k-images-idx3-ubyte.gz",
        ],
    },
    RemoteFile {
        name: "t10k-labels-idx1-ubyte.gz",
        sha256: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        urls: &[
            "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz",
            "https://storage.googleapis.com/cvdf-datasets/mnist/t10k-labels-idx1-ubyte.gz",
        ],
    },
];

/// Makes sure the MNIST files are in `<root>/mnist`, downloading the missing ones (and checking
/// their SHA-256) when [`env::downloads_enabled`]. Returns the folder.
pub fn ensure_mnist(root: &Path) -> Result<PathBuf> {
    let dir = root.join("mnist");
    let missing: Vec<&RemoteFile> = MNIST_FILES
        .iter()
        .filter(|f| {
            !dir.join(f.name).exists() && !dir.join(f.name.trim_end_matches(".gz")).exists()
        })
        .collect();
    if missing.is_empty() {
        return Ok(dir);
    }
    #[cfg(feature = "download")]
    if env::downloads_enabled() {
        let mut failures = Vec::new();
        for f in &missing {
            if let Err(e) = super::fetch::fetch_verified(f.urls, f.sha256, &dir.join(f.name)) {
                failures.push(format!("{}: {e}", f.name));
            }
        }
        if failures.is_empty() {
            return Ok(dir);
        }
        return Err(missing_files_error(
            "MNIST",
            &dir,
            &missing.iter().map(|f| f.name).collect::<Vec<_>>(),
            &failures,
        ));
    }
    Err(missing_files_error(
        "MNIST",
        &dir,
        &missing.iter().map(|f| f.name).collect::<Vec<_>>(),
        &[],
    ))
}

/// The most bytes a gzipped data file may expand to: MNIST's largest is 47 MB.
const MAX_UNZIPPED: u64 = 1 << 28;

/// Reads a whole file, transparently un-gzipping it when it starts with the gzip magic (up to
/// [`MAX_UNZIPPED`] bytes).
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = super::fetch::read_data_file(path)?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let mut out = Vec::with_capacity(raw.len() * 8);
    flate2::read::GzDecoder::new(&raw[..]).take(MAX_UNZIPPED + 1).read_to_end(&mut out).map_err(
        |e| {
            error(format!(
                "{} is a corrupt or truncated gzip file ({e}); delete it so it is fetched again, \
                 or replace it",
                path.display()
            ))
        },
    )?;
    if out.len() as u64 > MAX_UNZIPPED {
        return Err(error(format!(
            "{} expands to more than {MAX_UNZIPPED} bytes, far more than any MNIST file: it is \
             not one; delete it so it is fetched again, or replace it",
            path.display()
        )));
    }
    Ok(out)
}

fn be_u32(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
}

/// Parsed IDX file: dimensions and the raw `u8` payload.
#[derive(Debug)]
pub struct Idx {
    /// The dimensions the header declares.
    pub dims: Vec<usize>,
    /// The payload, `dims.iter().product()` bytes.
    pub data: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes (gzip or raw) and checks its magic, rank and length.
/// `expected_rank` is 3 for images (magic 2051) and 1 for labels (magic 2049).
pub fn read_idx(path: &Path, expected_rank: usize) -> Result<Idx> {
    let bytes = read_maybe_gz(path)?;
    let what = || path.display().to_string();
    if bytes.len() < 4 {
        return Err(error(format!(
            "{} is too short to be an IDX file ({} bytes); replace it",
            what(),
            bytes.len()
        )));
    }
    let magic = be_u32(&bytes, 0);
    let expected_magic = 0x0800 + expected_rank as u32;
    if magic != expected_magic {
        return Err(error(format!(
            "{} has IDX magic {magic} but {expected_magic} was expected (unsigned bytes, rank \
             {expected_rank}): not the right MNIST file, or corrupt; replace it",
            what()
        )));
    }
    let header = 4 + 4 * expected_rank;
    if bytes.len() < header {
        return Err(error(format!("{} is truncated inside its header; replace it", what())));
    }
    let dims: Vec<usize> = (1..=expected_rank).map(|i| be_u32(&bytes, i) as usize).collect();
    let got = bytes.len() - header;
    let Some(n) = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) else {
        return Err(error(format!(
            "{} declares dimensions {dims:?}, more bytes than can exist: the file is corrupt; \
             replace it",
            what()
        )));
    };
    if got != n {
        return Err(error(format!(
            "{} declares {dims:?} = {n} bytes of data but holds {got}: the file is {}; replace it",
            what(),
            if got < n { "truncated" } else { "longer than its header says" }
        )));
    }
    Ok(Idx { dims, data: bytes[header..].to_vec() })
}

/// Loads the MNIST training (`train = true`, 60,000 images) or test (10,000) set from
/// `<root>/mnist`, fetching missing files first. Pixels in [0, 1], shape `(N, 1, 28, 28)`.
pub fn load_mnist(root: &Path, train: bool) -> Result<Dataset> {
    let dir = ensure_mnist(root)?;
    let prefix = if train { "train" } else { "t10k" };
    let pick = |stem: &str| {
        let gz = dir.join(format!("{prefix}-{stem}.gz"));
        if gz.exists() {
            gz
        } else {
            dir.join(format!("{prefix}-{stem}"))
        }
    };
    let (images_path, labels_path) = (pick("images-idx3-ubyte"), pick("labels-idx1-ubyte"));
    let images = read_idx(&images_path, 3)?;
    let labels = read_idx(&labels_path, 1)?;
    let (n, h, w) = (images.dims[0], images.dims[1], images.dims[2]);
    if (h, w) != (28, 28) {
        return Err(error(format!(
            "{} holds {h}x{w} images, MNIST's are 28x28: not an MNIST file; replace it",
            images_path.display()
        )));
    }
    if labels.dims[0] != n {
        return Err(error(format!(
            "{} holds {n} images but {} holds {} labels: the two files do not belong together; \
             replace them",
            images_path.display(),
            labels_path.display(),
            labels.dims[0]
        )));
    }
    if let Some((i, bad)) = labels.data.iter().enumerate().find(|(_, &l)| l > 9) {
        return Err(error(format!(
            "{} holds label {bad} (item {i}), outside 0..=9: the file is corrupt; replace it",
            labels_path.display()
        )));
    }
    Dataset::from_u8(images.data, labels.data, (1, 28, 28))
}

/// The three MNIST splits of the original notebooks: the 60,000 training images split
/// 50,000 / 10,000 (train / validation) with `split_seed` (the notebooks use 42), and the
/// 10,000 test images. In [`crate::env::quick_mode`]
/// each split keeps only its first [`super::QUICK_SIZES`] samples.
pub fn mnist_splits(split_seed: u64) -> Result<(Dataset, Dataset, Dataset)> {
    let root = env::data_dir();
    split_off_validation(load_mnist(&root, true)?, load_mnist(&root, false)?, 50_000, split_seed)
}

/// The three MNIST loaders of the original notebooks over [`mnist_splits`]: the training
/// loader reshuffles every epoch (seeded with `split_seed`), the others keep their order.
pub fn mnist_loaders(
    batch_size: usize,
    split_seed: u64,
) -> Result<(DataLoader, DataLoader, DataLoader)> {
    loaders(mnist_splits(split_seed)?, batch_size, split_seed)
}
