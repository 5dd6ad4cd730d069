//! Datasets: where they live, how they are fetched, read, split and batched.
//!
//! The data root is [`crate::env::data_dir`] (`$PLAYGROUND_DATA`, else `data/` at the top of the
//! repository). Inside it, `mnist/` holds the four original IDX files, `cifar-10-batches-bin/`
//! the six CIFAR-10 `.bin` files and `imagenet/` the validation images. Missing MNIST and
//! CIFAR-10 files are downloaded from the official mirrors and checked against their SHA-256
//! before they are renamed into place ([`fetch`]); offline, the error names every missing file
//! and where to put it. The ImageNet presets and the validation-folder reader are in this
//! module too (preprocessing is data, whichever model consumes it).

mod augment;
mod cifar10;
pub mod fetch;
mod imagenet;
mod mnist;

pub use augment::CropFlip;
pub use cifar10::{
    cifar10_loaders, cifar10_raw_splits, cifar10_splits, ensure_cifar10, load_cifar10,
    read_cifar_bin, CIFAR10_CLASSES, CIFAR10_FILES, CIFAR10_TARBALL,
};
pub use imagenet::{
    class_names, image_tensor, open_rgb, short_name, to_rgb, upscale, Preset, ValFolder,
};
pub use mnist::{
    ensure_mnist, load_mnist, mnist_loaders, mnist_splits, read_idx, Idx, MNIST_FILES,
};

use crate::rng::Rng;
use crate::{error, Device, Result, Tensor};

/// Images and labels held in memory: `images` is `(N, C, H, W)` f32, `labels` is `(N,)` u32.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// `(N, C, H, W)` f32 pixels.
    pub images: Tensor,
    /// `(N,)` u32 class labels.
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

    /// From raw `u8` pixels of `N = labels.len()` images of shape `(c, h, w)`, scaled to [0, 1]
    /// as torchvision's `ToTensor` does.
    pub fn from_u8(
        pixels: Vec<u8>,
        labels: Vec<u8>,
        (c, h, w): (usize, usize, usize),
    ) -> Result<Self> {
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

    /// Whether there are no samples.
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
    /// The samples.
    pub dataset: Dataset,
    /// Samples per batch (the last batch may be smaller).
    pub batch_size: usize,
    /// Whether each epoch visits the samples in a new seeded order.
    pub shuffle: bool,
    seed: u64,
    epoch: std::cell::Cell<u64>,
    /// Augmentation of each training batch (shuffled loaders only), see
    /// [`DataLoader::with_augmentation`].
    pub augment: Option<CropFlip>,
}

impl DataLoader {
    /// A loader over `dataset` in batches of `batch_size`, shuffled every epoch from `seed` when
    /// `shuffle` (the training loader), in order otherwise.
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
    pub fn with_augmentation(mut self, augment: CropFlip) -> Self {
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

/// The original notebooks' three splits: `full` split into `n_train` training samples and a
/// validation set of the rest (seeded shuffle, see [`random_split`]), and `test`. In
/// [`crate::env::quick_mode`] each keeps only its first [`QUICK_SIZES`] samples.
fn split_off_validation(
    full: Dataset,
    test: Dataset,
    n_train: usize,
    seed: u64,
) -> Result<(Dataset, Dataset, Dataset)> {
    let n_val = full.len().checked_sub(n_train).ok_or_else(|| {
        error(format!(
            "cannot split {} samples into {n_train} for training and the rest",
            full.len()
        ))
    })?;
    let [train, val]: [Dataset; 2] = random_split(&full, &[n_train, n_val], seed)?
        .try_into()
        .map_err(|_| error("random_split returned the wrong number of parts"))?;
    if !crate::env::quick_mode() {
        return Ok((train, val, test));
    }
    let (a, b, c) = QUICK_SIZES;
    Ok((train.take(a)?, val.take(b)?, test.take(c)?))
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
