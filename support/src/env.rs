//! The environment a notebook runs in: every `PLAYGROUND_*` variable is read here and nowhere
//! else, so this page lists them all.
//!
//! | variable | read by | default |
//! | --- | --- | --- |
//! | `PLAYGROUND_DEVICE` | [`device`] | `cpu` (also `cuda`, `cuda:N`, `metal`) |
//! | `PLAYGROUND_QUICK` | [`quick_mode`], [`epochs`] | off |
//! | `PLAYGROUND_DATA` | [`data_dir`] | `data/` at the top of the repository |
//! | `PLAYGROUND_WEIGHTS` | [`weights_dir`] | `weights/` |
//! | `PLAYGROUND_CACHE` | [`cache_dir`] | `cache/` |
//! | `PLAYGROUND_RUNS` | [`runs_dir`] | `runs/` |
//! | `PLAYGROUND_OFFLINE` | [`downloads_enabled`] | downloads on |
//!
//! Two process-wide settings live here too: glibc's allocator tuned for tensor workloads (done
//! once, by the first model built) and the evcxr tensor-id fence ([`fence_tensor_ids`]).

use crate::{error, Device, Result, Tensor};
use candle_core::Var;
use std::path::PathBuf;

/// The variable that names the device: `cpu`, `cuda`, `cuda:N` or `metal`.
pub const DEVICE_ENV: &str = "PLAYGROUND_DEVICE";
/// The variable that turns quick mode on (any value but empty or `0`).
pub const QUICK_ENV: &str = "PLAYGROUND_QUICK";
/// The variable that points at the data root.
pub const DATA_ENV: &str = "PLAYGROUND_DATA";
/// The variable that points at the folder of pretrained weights.
pub const WEIGHTS_ENV: &str = "PLAYGROUND_WEIGHTS";
/// The variable that points at the folder of computed feature caches.
pub const CACHE_ENV: &str = "PLAYGROUND_CACHE";
/// The variable that points at the folder of finished training runs.
pub const RUNS_ENV: &str = "PLAYGROUND_RUNS";
/// The variable that turns downloads off (any value but empty or `0`).
pub const OFFLINE_ENV: &str = "PLAYGROUND_OFFLINE";
/// The variable that points at an ImageNet validation folder (any layout of
/// [`crate::data::ValFolder::find`]).
pub const IMAGENET_VAL_ENV: &str = "PLAYGROUND_IMAGENET_VAL";
/// The variable that replaces `https://download.pytorch.org/models`, where torchvision's
/// checkpoints are downloaded from (a mirror; a local server in the tests).
pub const WEIGHTS_URL_ENV: &str = "PLAYGROUND_WEIGHTS_URL";

/// Whether a flag variable is on: set to anything but empty or `0`.
fn flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The device models are built on: `PLAYGROUND_DEVICE` = `cpu` (the default, also when unset),
/// `cuda`, `cuda:N` or `metal`, read by every model builder (`Sequential::build`,
/// `CifarModel::build`), so a notebook moves to a GPU with one environment variable and no code
/// change. [`crate::train::fit`] and the evaluators move each batch to the model's device.
/// A GPU needs `support` built with its feature: in a notebook's setup cell,
/// `:dep support = { path = "../support", features = ["cuda"] }` (or `"metal"`).
pub fn device() -> Result<Device> {
    parse_device(&std::env::var(DEVICE_ENV).unwrap_or_default())
}

/// [`device`] for an explicit `spec` (`""` and `"cpu"` are the CPU).
pub fn parse_device(spec: &str) -> Result<Device> {
    let spec = spec.trim().to_ascii_lowercase();
    let (kind, ordinal) = match spec.split_once(':') {
        Some((k, n)) => (
            k.to_string(),
            n.parse::<usize>().map_err(|_| {
                error(format!(
                    "{DEVICE_ENV}={spec}: the part after ':' must be a GPU number, as in cuda:0"
                ))
            })?,
        ),
        None => (spec.clone(), 0),
    };
    let built = |feature: &str, on: bool| -> Result<()> {
        if on {
            return Ok(());
        }
        Err(error(format!(
            "{DEVICE_ENV}={spec} asks for a GPU, but support was built without its `{feature}` \
             feature: use `:dep support = {{ path = \"../support\", features = [\"{feature}\"] }}` \
             in the notebook's setup cell (cargo: --features {feature}), or unset {DEVICE_ENV} \
             to run on the CPU"
        )))
    };
    match kind.as_str() {
        "" | "cpu" => Ok(Device::Cpu),
        "cuda" => {
            built("cuda", cfg!(feature = "cuda"))?;
            Device::new_cuda(ordinal)
        }
        "metal" => {
            built("metal", cfg!(feature = "metal"))?;
            Device::new_metal(ordinal)
        }
        other => Err(error(format!(
            "{DEVICE_ENV}={other} is not a device: use cpu, cuda, cuda:N or metal"
        ))),
    }
}

/// `true` when `PLAYGROUND_QUICK` is set to anything but `0` or empty.
///
/// Quick mode is for CI and for a first look: the data splits keep a small slice of each set
/// ([`crate::data::QUICK_SIZES`]) and [`epochs`] caps every run at 2 epochs, so a notebook
/// executes in about a minute.
pub fn quick_mode() -> bool {
    flag(QUICK_ENV)
}

/// The number of epochs to run: `full` normally, at most 2 in [`quick_mode`].
pub fn epochs(full: usize) -> usize {
    if quick_mode() {
        full.min(2)
    } else {
        full
    }
}

/// The top of the repository: the parent of this crate's folder (written without `..`, so that
/// messages show a plain path).
fn repo_root() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(std::path::Path::new(".."))
        .to_path_buf()
}

/// `$env` when it is set and not empty, else the folder `name` at the top of the repository.
fn repo_folder(env: &str, name: &str) -> PathBuf {
    match std::env::var_os(env) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => repo_root().join(name),
    }
}

/// `path` as a notebook prints it: relative to the folder variable that holds it
/// (`$PLAYGROUND_WEIGHTS/resnet18-f37072fd.pth`) or to the repository (`weights/resnet18-...`),
/// so that outputs carry no machine's absolute paths; any other path as it is.
pub fn shown(path: &std::path::Path) -> String {
    for var in [DATA_ENV, WEIGHTS_ENV, CACHE_ENV, RUNS_ENV] {
        if let Some(dir) = std::env::var_os(var).filter(|d| !d.is_empty()) {
            if let Ok(rest) = path.strip_prefix(&dir) {
                return format!("${var}/{}", rest.display());
            }
        }
    }
    match path.strip_prefix(repo_root()) {
        Ok(rest) => rest.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

/// The data root: `$PLAYGROUND_DATA`, or `data/` at the top of the repository. Inside it,
/// `mnist/`, `cifar-10-batches-bin/` and `imagenet/` (see [`crate::data`]).
pub fn data_dir() -> PathBuf {
    repo_folder(DATA_ENV, "data")
}

/// Where pretrained weights are looked for (and downloaded to): `$PLAYGROUND_WEIGHTS`, or
/// `weights/` at the top of the repository.
pub fn weights_dir() -> PathBuf {
    repo_folder(WEIGHTS_ENV, "weights")
}

/// The ImageNet validation folder: `$PLAYGROUND_IMAGENET_VAL`, or `imagenet/val` in
/// [`data_dir`] (the 40 labelled images of the reference machines, or the full 50,000).
pub fn imagenet_val_dir() -> PathBuf {
    match std::env::var_os(IMAGENET_VAL_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => data_dir().join("imagenet").join("val"),
    }
}

/// Where torchvision's checkpoints are downloaded from: `$PLAYGROUND_WEIGHTS_URL`, or
/// `https://download.pytorch.org/models` (torchvision's own URL).
pub fn torchvision_url() -> String {
    match std::env::var(WEIGHTS_URL_ENV) {
        Ok(u) if !u.is_empty() => u.trim_end_matches('/').to_string(),
        _ => "https://download.pytorch.org/models".to_string(),
    }
}

/// Where computed feature caches go: `$PLAYGROUND_CACHE`, or `cache/` at the top of the repository.
pub fn cache_dir() -> PathBuf {
    repo_folder(CACHE_ENV, "cache")
}

/// Where finished training runs are kept: `$PLAYGROUND_RUNS`, or `runs/` at the top
/// of the repository.
pub fn runs_dir() -> PathBuf {
    repo_folder(RUNS_ENV, "runs")
}

/// Whether missing files may be downloaded: the `download` feature is on and
/// `$PLAYGROUND_OFFLINE` is not set.
pub fn downloads_enabled() -> bool {
    cfg!(feature = "download") && !flag(OFFLINE_ENV)
}

/// Tunes glibc's allocator for tensor workloads, once per process; [`crate::nn::Init`] calls it,
/// so every model built does, and notebooks never need to.
///
/// Every candle op allocates its output; buffers above glibc's mmap threshold (128 KiB to 32 MiB,
/// adaptive) are `mmap`ed and unmapped again on free, so a training step pays page faults and
/// TLB shoot-downs for each activation and gradient. Measured on the 2-core reference machine:
/// the MNIST MLP step (batch 64) takes 21 ms with the defaults and 8.8 ms with these settings
/// (system time 6.8 s -> 0.2 s over 300 steps). Buffers up to 32 MiB now come from the heap and
/// are reused; the heap is trimmed only past 1 GiB of free space at its top.
pub(crate) fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| unsafe {
            // SAFETY: mallopt only changes allocator parameters; it is safe to call at any time.
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
            libc::mallopt(libc::M_TOP_PAD, 64 << 20);
        });
    }
}

/// The number inside a tensor's id (`TensorId` has no public accessor, only `Debug`).
pub fn tensor_id(t: &Tensor) -> usize {
    format!("{:?}", t.id())
        .chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(0)
}

/// Makes the next tensors created by *this copy* of candle get ids above those of `vars`.
///
/// Why: evcxr compiles each notebook cell into its own shared object with its own copy of
/// candle, and each copy numbers its tensors from 1. Backpropagation keys gradients by tensor
/// id, so when a model built in one cell is trained in a later cell, the training step's
/// intermediate tensors can reuse the ids of the model's parameters and backward mixes them up
/// ("shape mismatch in add"). Burning ids up to the largest parameter id (creating scalar
/// tensors, ~100 ns each) removes every overlap. The library's layers do it in their forward pass
/// for the whole model they belong to (the largest id among the parameters of the `Init` that
/// built them), so a training loop written in a notebook over a model made of them needs no
/// call; call this for parameters of your own (`Var`s used with the functional ops) created in
/// another cell than the loop. Harmless outside notebooks.
pub fn fence_tensor_ids(vars: &[Var]) -> Result<()> {
    fence_to(vars.iter().map(|v| tensor_id(v.as_tensor())).max().unwrap_or(0))
}

/// Makes the next tensors created by this copy of candle get ids above `max` (see
/// [`fence_tensor_ids`]). Each copy of `support` has its own copy of the mark below, as each
/// has its own copy of candle's counter: once a copy is past `max`, a call is one atomic load.
pub(crate) fn fence_to(max: usize) -> Result<()> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static PASSED: AtomicUsize = AtomicUsize::new(0);
    if PASSED.load(Ordering::Relaxed) >= max {
        return Ok(());
    }
    loop {
        let id = tensor_id(&Tensor::new(0f32, &Device::Cpu)?);
        if id > max {
            PASSED.fetch_max(id, Ordering::Relaxed);
            return Ok(());
        }
    }
}

#[cfg(test)]
mod shown_tests {
    use super::*;

    #[test]
    fn paths_in_the_repository_are_shown_relative_to_it() {
        let repo = repo_root();
        assert!(repo.is_absolute() && repo.join("support").is_dir(), "{}", repo.display());
        assert_eq!(shown(&repo.join("weights").join("a.pth")), "weights/a.pth");
        assert_eq!(shown(std::path::Path::new("/elsewhere/a.pth")), "/elsewhere/a.pth");
    }
}
