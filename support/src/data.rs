//! Datasets: MNIST (IDX, gzip or raw) and CIFAR-10 (binary version), where they live, how they
//! are fetched, split and batched.
//!
//! Data root: `$PLAYGROUND_DATA` if set, else `data/` at the top of the repository. Inside it,
//! `mnist/` holds the four original IDX files and `cifar-10-batches-bin/` the six CIFAR `.bin`
//! files. Missing files are downloaded from the official mirrors (feature `download`, on by
//! default) and checked against the SHA-256 sums below before they are renamed into place;
//! offline, the error names every missing file and where to put it.

use crate::rng::Rng;
use crate::{error, Device, Result, Tensor};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The environment variable that points at the data root.
pub const DATA_ENV: &str = "PLAYGROUND_DATA";

/// The data root: `$PLAYGROUND_DATA`, or `data/` at the top of the repository.
pub fn data_root() -> PathBuf {
    crate::repo_folder(DATA_ENV, "data")
}

/// A file of a dataset: its name, its SHA-256, and the URLs that serve it (tried in order).
pub struct RemoteFile {
    pub name: &'static str,
    pub sha256: &'static str,
    pub urls: &'static [&'static str],
}

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

/// Lowercase hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path)
        .map_err(|e| error(format!("cannot open {}: {e}", path.display())))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n =
            f.read(&mut buf).map_err(|e| error(format!("cannot read {}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The environment variable that turns downloads off (any value but empty or `0`).
pub const OFFLINE_ENV: &str = "PLAYGROUND_OFFLINE";

/// Whether missing files may be downloaded: the `download` feature is on and `$PLAYGROUND_OFFLINE`
/// is not set.
pub fn downloads_enabled() -> bool {
    cfg!(feature = "download")
        && !std::env::var(OFFLINE_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Makes sure the MNIST files are in `<root>/mnist`, downloading the missing ones (and checking
/// their SHA-256) when [`downloads_enabled`]. Returns the folder.
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
    if downloads_enabled() {
        let mut failures = Vec::new();
        for f in &missing {
            if let Err(e) = crate::download::fetch_verified(f.urls, f.sha256, &dir.join(f.name)) {
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
    if downloads_enabled() {
        return match crate::download::fetch_cifar10(CIFAR10_TARBALL, &dir, &CIFAR10_FILES) {
            Ok(()) => Ok(dir),
            Err(e) => Err(missing_files_error("CIFAR-10", &dir, &missing, &[e.to_string()])),
        };
    }
    Err(missing_files_error("CIFAR-10", &dir, &missing, &[]))
}

fn missing_files_error(
    what: &str,
    dir: &Path,
    missing: &[&str],
    failures: &[String],
) -> crate::Error {
    let mut msg =
        format!("{what} data is missing: {} not found in {}.\n", missing.join(", "), dir.display());
    if failures.is_empty() {
        msg += &format!("Downloads are off (the `download` feature is missing or {OFFLINE_ENV} is set), so nothing was fetched.\n");
    } else {
        msg += "Downloading them failed:\n";
        for f in failures {
            msg += &format!("  - {f}\n");
        }
    }
    msg += &format!(
        "Put the files in that folder (or set {DATA_ENV} to a folder that has a `{}` subfolder with them) and run again.",
        dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
    );
    error(msg)
}

/// Reads a whole file, transparently un-gzipping it when it starts with the gzip magic.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw =
        std::fs::read(path).map_err(|e| error(format!("cannot read {}: {e}", path.display())))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 8);
        flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out).map_err(|e| {
            error(format!(
                "{} is a corrupt or truncated gzip file ({e}); delete it so it is fetched again, or replace it",
                path.display()
            ))
        })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn be_u32(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
}

/// Parsed IDX file: dimensions and the raw `u8` payload.
#[derive(Debug)]
pub struct Idx {
    pub dims: Vec<usize>,
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
            "{} has IDX magic {magic} but {expected_magic} was expected (unsigned bytes, rank {expected_rank}): \
             not the right MNIST file, or corrupt; replace it",
            what()
        )));
    }
    let header = 4 + 4 * expected_rank;
    if bytes.len() < header {
        return Err(error(format!("{} is truncated inside its header; replace it", what())));
    }
    let dims: Vec<usize> = (1..=expected_rank).map(|i| be_u32(&bytes, i) as usize).collect();
    let n: usize = dims.iter().product();
    let got = bytes.len() - header;
    if got != n {
        return Err(error(format!(
            "{} declares {dims:?} = {n} bytes of data but holds {got}: the file is {}; replace it",
            what(),
            if got < n { "truncated" } else { "longer than its header says" }
        )));
    }
    Ok(Idx { dims, data: bytes[header..].to_vec() })
}

/// Images and labels held in memory: `images` is `(N, C, H, W)` f32, `labels` is `(N,)` u32.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub images: Tensor,
    pub labels: Tensor,
}

impl Dataset {
    /// Builds a dataset from `(N, C, H, W)` images and `N` labels, checking that they agree.
    pub fn new(images: Tensor, labels: Tensor) -> Result<Self> {
        let n = images.dim(0)?;
        if labels.dims() != [n] {
            return Err(error(format!(
                "images {:?} and labels {:?} do not match: expected one label per image",
                images.dims(),
                labels.dims()
            )));
        }
        Ok(Dataset { images, labels })
    }

    /// From raw `u8` pixels `(N, C, H, W)` scaled to [0, 1], as torchvision's `ToTensor` does.
    pub fn from_u8(pixels: Vec<u8>, labels: Vec<u8>, c: usize, h: usize, w: usize) -> Result<Self> {
        let n = labels.len();
        let images = Tensor::from_vec(pixels, (n, c, h, w), &Device::Cpu)?
            .to_dtype(candle_core::DType::F32)?;
        let images = (images / 255.0)?;
        let labels = Tensor::from_vec(
            labels.into_iter().map(u32::from).collect::<Vec<u32>>(),
            n,
            &Device::Cpu,
        )?;
        Dataset::new(images, labels)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.dims()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The samples at `idx`, in that order.
    pub fn select(&self, idx: &[u32]) -> Result<Dataset> {
        let t = Tensor::from_slice(idx, idx.len(), self.images.device())?;
        Dataset::new(self.images.index_select(&t, 0)?, self.labels.index_select(&t, 0)?)
    }

    /// The first `n` samples (or all of them if there are fewer).
    pub fn take(&self, n: usize) -> Result<Dataset> {
        let n = n.min(self.len());
        Dataset::new(self.images.narrow(0, 0, n)?, self.labels.narrow(0, 0, n)?)
    }

    /// `(x - mean) / std` on every pixel, e.g. `normalize(0.5, 0.5)` maps [0, 1] to [-1, 1].
    pub fn normalize(&self, mean: f64, std: f64) -> Result<Dataset> {
        Dataset::new(self.images.affine(1.0 / std, -mean / std)?, self.labels.clone())
    }

    /// Image `i` as a `(C, H, W)` tensor and its label.
    pub fn get(&self, i: usize) -> Result<(Tensor, u32)> {
        if i >= self.len() {
            return Err(error(format!(
                "index {i} is out of range for a dataset of {} samples",
                self.len()
            )));
        }
        Ok((self.images.get(i)?, self.labels.get(i)?.to_scalar::<u32>()?))
    }
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
    let images = read_idx(&pick("images-idx3-ubyte"), 3)?;
    let labels = read_idx(&pick("labels-idx1-ubyte"), 1)?;
    let (n, h, w) = (images.dims[0], images.dims[1], images.dims[2]);
    if (h, w) != (28, 28) {
        return Err(error(format!(
            "MNIST images must be 28x28, the file says {h}x{w}; replace it"
        )));
    }
    if labels.dims[0] != n {
        return Err(error(format!(
            "MNIST {prefix} set has {n} images but {} labels: the two files do not belong together; replace them",
            labels.dims[0]
        )));
    }
    if let Some(bad) = labels.data.iter().find(|&&l| l > 9) {
        return Err(error(format!("MNIST {prefix} labels contain {bad}, outside 0..=9: the label file is corrupt; replace it")));
    }
    Dataset::from_u8(images.data, labels.data, 1, 28, 28)
}

const CIFAR_RECORD: usize = 1 + 3 * 32 * 32;

/// Reads one CIFAR-10 binary batch file: records of 1 label byte + 1024 R + 1024 G + 1024 B.
pub fn read_cifar_bin(path: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let bytes =
        std::fs::read(path).map_err(|e| error(format!("cannot read {}: {e}", path.display())))?;
    if bytes.is_empty() || bytes.len() % CIFAR_RECORD != 0 {
        return Err(error(format!(
            "{} has {} bytes, not a whole number of {CIFAR_RECORD}-byte CIFAR-10 records: the file is truncated or not a CIFAR-10 batch; replace it",
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
                "{} holds label {} outside 0..=9 (record {}): the file is corrupt or not a CIFAR-10 batch; replace it",
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
    Dataset::from_u8(pixels, labels, 3, 32, 32)
}

/// Splits `ds` into parts of the given lengths after a seeded shuffle, as
/// `torch.utils.data.random_split(ds, lengths, generator=torch.Generator().manual_seed(seed))`
/// does (the permutation differs from PyTorch's: its generator cannot be reproduced here).
pub fn random_split(ds: &Dataset, lengths: &[usize], seed: u64) -> Result<Vec<Dataset>> {
    let total: usize = lengths.iter().sum();
    if total != ds.len() {
        return Err(error(format!(
            "random_split lengths {lengths:?} add up to {total}, but the dataset has {} samples",
            ds.len()
        )));
    }
    let perm = Rng::new(seed).permutation(total);
    let mut start = 0;
    let mut parts = Vec::with_capacity(lengths.len());
    for &len in lengths {
        parts.push(ds.select(&perm[start..start + len])?);
        start += len;
    }
    Ok(parts)
}

/// Mini-batches over a [`Dataset`], reshuffled every epoch from a seed when `shuffle` is on.
///
/// Epoch `e` of a shuffled loader uses the permutation of `Rng::new(seed + e)`, so a run is
/// reproducible and each epoch sees a different order.
#[derive(Clone, Debug)]
pub struct DataLoader {
    pub dataset: Dataset,
    pub batch_size: usize,
    pub shuffle: bool,
    seed: u64,
    epoch: std::cell::Cell<u64>,
    /// Augmentation of each training batch (shuffled loaders only), see [`DataLoader::with_augmentation`].
    pub augment: Option<crate::augment::CropFlip>,
}

impl DataLoader {
    pub fn new(dataset: Dataset, batch_size: usize, shuffle: bool, seed: u64) -> Result<Self> {
        if batch_size == 0 {
            return Err(error("batch_size must be at least 1"));
        }
        Ok(DataLoader {
            dataset,
            batch_size,
            shuffle,
            seed,
            epoch: std::cell::Cell::new(0),
            augment: None,
        })
    }

    /// This loader with every batch augmented (random crop + flip), seeded by the loader's seed,
    /// the epoch and the batch index; only a shuffled (training) loader augments.
    pub fn with_augmentation(mut self, augment: crate::augment::CropFlip) -> Self {
        self.augment = Some(augment);
        self
    }

    /// Number of samples.
    pub fn num_samples(&self) -> usize {
        self.dataset.len()
    }

    /// Number of batches per epoch (the last one may be smaller).
    pub fn num_batches(&self) -> usize {
        self.num_samples().div_ceil(self.batch_size)
    }

    /// The batches of one epoch: `(images, labels)` pairs. Each call to `iter` on a shuffled
    /// loader starts a new epoch with a new order.
    pub fn iter(&self) -> Batches<'_> {
        let order = if self.shuffle {
            let e = self.epoch.get();
            self.epoch.set(e + 1);
            Some((Rng::new(self.seed.wrapping_add(e)).permutation(self.num_samples()), e))
        } else {
            None
        };
        Batches { loader: self, order, next: 0 }
    }

    /// How many epochs this loader has started: the next [`DataLoader::iter`] shuffles with
    /// `Rng::new(seed + epoch())`.
    pub fn epoch(&self) -> u64 {
        self.epoch.get()
    }

    /// Sets the epoch counter (resuming a run from a checkpoint continues its data order).
    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.set(epoch);
    }

    /// The first batch, without advancing the shuffling epoch.
    pub fn first_batch(&self) -> Result<(Tensor, Tensor)> {
        let n = self.batch_size.min(self.num_samples());
        Ok((self.dataset.images.narrow(0, 0, n)?, self.dataset.labels.narrow(0, 0, n)?))
    }
}

/// Iterator over the batches of one epoch; see [`DataLoader::iter`].
pub struct Batches<'a> {
    loader: &'a DataLoader,
    /// The epoch's permutation and the epoch number (shuffled loaders).
    order: Option<(Vec<u32>, u64)>,
    next: usize,
}

impl Iterator for Batches<'_> {
    type Item = Result<(Tensor, Tensor)>;

    fn next(&mut self) -> Option<Self::Item> {
        let n = self.loader.num_samples();
        if self.next >= n {
            return None;
        }
        let len = self.loader.batch_size.min(n - self.next);
        let ds = &self.loader.dataset;
        let batch = match &self.order {
            Some((order, epoch)) => ds.select(&order[self.next..self.next + len]).and_then(|d| {
                match &self.loader.augment {
                    Some(a) => {
                        let mut rng = Rng::new(
                            (self.loader.seed ^ 0xA5A5_5A5A)
                                .wrapping_add(epoch.wrapping_mul(1_000_003))
                                .wrapping_add(self.next as u64),
                        );
                        Ok((a.apply(&d.images, &mut rng)?, d.labels))
                    }
                    None => Ok((d.images, d.labels)),
                }
            }),
            None => (|| {
                Ok((ds.images.narrow(0, self.next, len)?, ds.labels.narrow(0, self.next, len)?))
            })(),
        };
        self.next += len;
        Some(batch)
    }
}

/// How many samples quick mode keeps of each split: (train, validation, test).
pub const QUICK_SIZES: (usize, usize, usize) = (4096, 1024, 1024);

/// The three MNIST splits of the original notebooks: the 60,000 training images split
/// 50,000 / 10,000 (train / validation) with `split_seed` (the notebooks use 42), and the
/// 10,000 test images. Prints the three sizes as the original does. In [`crate::quick_mode`]
/// each split keeps only its first [`QUICK_SIZES`] samples.
pub fn mnist_splits(split_seed: u64) -> Result<(Dataset, Dataset, Dataset)> {
    crate::tune_allocator();
    let root = data_root();
    splits(load_mnist(&root, true)?, load_mnist(&root, false)?, 50_000, split_seed)
}

/// The CIFAR-10 splits of the original notebook: the 50,000 training images split 40,000 /
/// 10,000 with `split_seed` (42 there), and the 10,000 test images, all normalised as
/// `Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))` to [-1, 1]. Quick mode as [`mnist_splits`].
pub fn cifar10_splits(split_seed: u64) -> Result<(Dataset, Dataset, Dataset)> {
    let (train, val, test) = cifar10_raw_splits(split_seed)?;
    Ok((train.normalize(0.5, 0.5)?, val.normalize(0.5, 0.5)?, test.normalize(0.5, 0.5)?))
}

/// [`cifar10_splits`] with the pixels left in [0, 1] (for other preprocessing, e.g. the ImageNet
/// presets of the transfer-learning notebook). Same split for the same seed.
pub fn cifar10_raw_splits(split_seed: u64) -> Result<(Dataset, Dataset, Dataset)> {
    crate::tune_allocator();
    let root = data_root();
    splits(load_cifar10(&root, true)?, load_cifar10(&root, false)?, 40_000, split_seed)
}

/// `full` split into `n_train` / the rest with `seed`, plus `test`; quick-mode slices; sizes printed.
fn splits(
    full: Dataset,
    mut test: Dataset,
    n_train: usize,
    seed: u64,
) -> Result<(Dataset, Dataset, Dataset)> {
    let n_val = full.len().checked_sub(n_train).ok_or_else(|| {
        error(format!(
            "cannot split {} samples into {n_train} for training and the rest",
            full.len()
        ))
    })?;
    let mut parts = random_split(&full, &[n_train, n_val], seed)?;
    let (mut val, mut train) = (parts.pop().unwrap(), parts.pop().unwrap());
    if crate::quick_mode() {
        println!("Quick mode (PLAYGROUND_QUICK=1): keeping {QUICK_SIZES:?} samples of train / validation / test.");
        train = train.take(QUICK_SIZES.0)?;
        val = val.take(QUICK_SIZES.1)?;
        test = test.take(QUICK_SIZES.2)?;
    }
    println!("Train set:      {} samples", train.len());
    println!("Validation set: {} samples", val.len());
    println!("Test set:       {} samples", test.len());
    Ok((train, val, test))
}

/// Train / validation / test loaders over `splits`: the training loader reshuffles every epoch
/// (seeded with `seed`), the others keep their order.
pub fn loaders(
    (train, val, test): (Dataset, Dataset, Dataset),
    batch_size: usize,
    seed: u64,
) -> Result<(DataLoader, DataLoader, DataLoader)> {
    Ok((
        DataLoader::new(train, batch_size, true, seed)?,
        DataLoader::new(val, batch_size, false, 0)?,
        DataLoader::new(test, batch_size, false, 0)?,
    ))
}

/// The CIFAR-10 loaders of the original notebook over [`cifar10_splits`] (batch 256 there).
pub fn cifar10_loaders(
    batch_size: usize,
    split_seed: u64,
) -> Result<(DataLoader, DataLoader, DataLoader)> {
    loaders(cifar10_splits(split_seed)?, batch_size, split_seed)
}

/// The three MNIST loaders of the original notebooks over [`mnist_splits`]: the training
/// loader reshuffles every epoch (seeded with `split_seed`), the others keep their order.
pub fn mnist_loaders(
    batch_size: usize,
    split_seed: u64,
) -> Result<(DataLoader, DataLoader, DataLoader)> {
    loaders(mnist_splits(split_seed)?, batch_size, split_seed)
}
