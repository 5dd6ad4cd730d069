//! Writes a state dict as `torch.save` does (torch >= 1.6's zip format), so that the tests can
//! give `TorchvisionNet::pretrained` checkpoints of every architecture without PyTorch and
//! without committing hundreds of megabytes: a zip of `archive/data.pkl` (a protocol-2 pickle of
//! a dict whose tensors are `torch._utils._rebuild_tensor_v2` calls on persistent storages),
//! `archive/byteorder`, `archive/data/<i>` (each storage's little-endian bytes, 64-byte aligned
//! as torch aligns them) and `archive/version`.
//!
//! Checked against PyTorch itself once: `tests/golden/check_written_pth.py` loads the file that
//! `weights.rs::written_pth_loads_in_torch_and_here` leaves in `target/tmp/` with `torch.load`
//! (`weights_only=True`, the default) and prints what it reads (pasted there).

use std::io::Write;
use std::path::Path;
use support::candle::DType;
use support::Tensor;

/// The opcodes of pickle protocol 2 that the writer uses.
struct Pickle(Vec<u8>);

impl Pickle {
    fn op(&mut self, op: u8) -> &mut Self {
        self.0.push(op);
        self
    }
    fn global(&mut self, module: &str, name: &str) -> &mut Self {
        self.op(b'c');
        self.0.extend_from_slice(format!("{module}\n{name}\n").as_bytes());
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.op(b'X');
        self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    fn int(&mut self, v: usize) -> &mut Self {
        let v = i32::try_from(v).expect("sizes below 2^31");
        self.op(b'J');
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn ints(&mut self, vs: &[usize]) -> &mut Self {
        self.op(b'(');
        for &v in vs {
            self.int(v);
        }
        self.op(b't')
    }
}

/// Saves `tensors` (f32 and i64) to `path` in torch's zip format, in the order given.
pub fn save_pth(tensors: &[(String, Tensor)], path: &Path) {
    let mut p = Pickle(vec![0x80, 2]);
    p.op(b'}').op(b'(');
    let mut storages = Vec::new();
    for (i, (name, t)) in tensors.iter().enumerate() {
        let t = t.flatten_all().unwrap();
        let (storage, bytes): (&str, Vec<u8>) = match t.dtype() {
            DType::F32 => (
                "FloatStorage",
                t.to_vec1::<f32>().unwrap().iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
            DType::I64 => (
                "LongStorage",
                t.to_vec1::<i64>().unwrap().iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
            other => panic!("save_pth writes f32 and i64 tensors, not {other:?}"),
        };
        let dims = tensors[i].1.dims();
        // Contiguous (row-major) strides.
        let mut strides = vec![1usize; dims.len()];
        for d in (0..dims.len().saturating_sub(1)).rev() {
            strides[d] = strides[d + 1] * dims[d + 1];
        }
        p.str(name);
        p.global("torch._utils", "_rebuild_tensor_v2").op(b'(');
        // The persistent id: ('storage', torch.FloatStorage, key, location, numel).
        p.op(b'(').str("storage").global("torch", storage).str(&i.to_string()).str("cpu");
        p.int(t.elem_count()).op(b't').op(b'Q');
        p.int(0).ints(dims).ints(&strides).op(0x89); // offset, size, stride, requires_grad=False
        p.global("collections", "OrderedDict").op(b')').op(b'R'); // backward hooks
        p.op(b't').op(b'R');
        storages.push(bytes);
    }
    p.op(b'u').op(b'.');

    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let stored = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .with_alignment(64);
    let mut entry = |name: &str, bytes: &[u8]| {
        zip.start_file(format!("archive/{name}"), stored).unwrap();
        zip.write_all(bytes).unwrap();
    };
    entry("data.pkl", &p.0);
    entry("byteorder", b"little");
    for (i, bytes) in storages.iter().enumerate() {
        entry(&format!("data/{i}"), bytes);
    }
    entry("version", b"3\n");
    zip.finish().unwrap();
}
