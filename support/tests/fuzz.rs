//! Deterministic fuzzing of every reader of untrusted files: 2,000 seeded mutations (bit flips,
//! truncations, length and size fields overwritten with extreme values, inserted, deleted and
//! repeated bytes) of a small valid file per reader, each read through the public API as a
//! notebook would. For every mutant: no panic (a panic kills the notebook's kernel), no single
//! allocation above the reader's bound (an abort would), no read slower than a bound, and an
//! error, when there is one, that names the file.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::rng::Rng;

/// Records the largest allocation each thread asks for (the readers run on the test's thread).
struct Counting;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MUTANTS: usize = 2000;
const MIB: usize = 1 << 20;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("support-fuzz-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One to three random edits of `seed`.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(3) {
        let n = b.len().max(1);
        match rng.below(6) {
            0 => {
                for _ in 0..1 + rng.below(8) {
                    if !b.is_empty() {
                        let i = rng.below(b.len());
                        b[i] ^= 1 << rng.below(8);
                    }
                }
            }
            1 => b.truncate(rng.below(n)),
            2 => {
                // A size or length field: 1, 2, 4 or 8 bytes set to an extreme value.
                let w = [1, 2, 4, 8][rng.below(4)];
                if b.len() >= w {
                    let at = rng.below(b.len() - w + 1);
                    let v: u64 = match rng.below(5) {
                        0 => 0,
                        1 => u64::MAX,
                        2 => i64::MAX as u64 >> (64 - 8 * w as u32).min(63),
                        3 => 1 << (8 * w - 1),
                        _ => rng.next_u64(),
                    };
                    b[at..at + w].copy_from_slice(&v.to_le_bytes()[..w]);
                }
            }
            3 => {
                let at = rng.below(n);
                let extra: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.below(256) as u8).collect();
                b.splice(at.min(b.len())..at.min(b.len()), extra);
            }
            4 => {
                let at = rng.below(n);
                let len = rng.below(32).min(b.len().saturating_sub(at));
                b.drain(at.min(b.len())..at.min(b.len()) + len);
            }
            _ => {
                let at = rng.below(n).min(b.len());
                let len = rng.below(64).min(b.len() - at);
                let chunk = b[at..at + len].to_vec();
                b.splice(at..at, chunk);
            }
        }
    }
    b
}

/// Writes every mutant of `seed` to `file` and reads it with `read`; checks the three bounds
/// and that errors name the file. Returns (errors, oks).
fn fuzz(
    name: &str,
    seed: &[u8],
    file: &str,
    alloc_bound: usize,
    read: impl Fn(&Path) -> support::Result<()>,
) -> (usize, usize) {
    let dir = scratch(name);
    let path = dir.join(file);
    let mut rng = Rng::new(0x5EED ^ name.len() as u64 ^ seed.len() as u64);
    let (mut errors, mut oks, mut slowest) = (0, 0, Duration::ZERO);
    for i in 0..MUTANTS {
        let bytes = mutate(seed, &mut rng);
        std::fs::File::create(&path).unwrap().write_all(&bytes).unwrap();
        LARGEST.with(|l| l.set(0));
        let start = Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(&path)));
        let took = start.elapsed();
        slowest = slowest.max(took);
        let largest = LARGEST.with(|l| l.get());
        let result = result.unwrap_or_else(|_| panic!("{name} mutant {i} panicked ({bytes:?})"));
        assert!(
            largest <= alloc_bound,
            "{name} mutant {i}: an allocation of {largest} bytes (bound {alloc_bound}) for a file \
             of {} bytes",
            bytes.len()
        );
        assert!(took < Duration::from_secs(3), "{name} mutant {i} took {took:?}");
        match result {
            Ok(()) => oks += 1,
            Err(e) => {
                let e = e.to_string();
                assert!(
                    e.contains(file),
                    "{name} mutant {i}: the error does not name the file: {e}"
                );
                errors += 1;
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    println!("{name}: {errors} errors, {oks} read, slowest {slowest:?}");
    assert!(errors > MUTANTS / 10, "{name}: only {errors} of {MUTANTS} mutants were refused");
    (errors, oks)
}

fn idx(magic: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut b = magic.to_be_bytes().to_vec();
    dims.iter().for_each(|d| b.extend(d.to_be_bytes()));
    b.extend(payload);
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn images_idx() -> Vec<u8> {
    idx(2051, &[2, 28, 28], &(0..2 * 784).map(|i| (i % 251) as u8).collect::<Vec<_>>())
}

#[test]
fn idx_raw_and_gzip() {
    let read3 = |p: &Path| support::data::read_idx(p, 3).map(|_| ());
    fuzz("idx-raw", &images_idx(), "images-idx3-ubyte", 4 * MIB, read3);
    fuzz("idx-gz", &gzip(&images_idx()), "images-idx3-ubyte.gz", 4 * MIB, read3);
    let labels = idx(2049, &[5], &[1, 2, 3, 4, 5]);
    fuzz("idx-labels", &labels, "labels-idx1-ubyte", MIB, |p| {
        support::data::read_idx(p, 1).map(|_| ())
    });
}

#[test]
fn cifar_batches() {
    let seed: Vec<u8> =
        (0..3).flat_map(|r| [r as u8].into_iter().chain((0..3072).map(|i| i as u8))).collect();
    fuzz("cifar", &seed, "data_batch_1.bin", MIB, |p| support::data::read_cifar_bin(p).map(|_| ()));
}

fn picture() -> image::RgbImage {
    image::RgbImage::from_fn(24, 16, |x, y| image::Rgb([(x * 10) as u8, (y * 15) as u8, 128]))
}

#[test]
fn jpeg_and_png_photos() {
    let preset = support::data::Preset::imagenet();
    // Decoding is bounded by 64 megapixels (256 MiB as RGBA), the resize by the same budget.
    let bound = 300 * MIB;
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&picture())
        .unwrap();
    fuzz("jpeg", &jpeg, "photo.jpg", bound, |p| preset.load(p).map(|_| ()));
    let mut png = Vec::new();
    picture().write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
    fuzz("png", &png, "photo.png", bound, |p| preset.load(p).map(|_| ()));
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap()
}

fn read_weights(p: &Path) -> support::Result<()> {
    support::weights::read_state_dict(p).map(|_| ())
}

#[test]
fn safetensors_and_legacy_pth() {
    let dir = scratch("safetensors-seed");
    let mut init = support::nn::Init::new(0, &support::Device::Cpu);
    support::nn::Linear::new(&mut init, "fc", 4, 3).unwrap();
    init.finish().save(dir.join("w.safetensors")).unwrap();
    let seed = std::fs::read(dir.join("w.safetensors")).unwrap();
    fuzz("safetensors", &seed, "weights.safetensors", MIB, read_weights);
    fuzz("legacy-pth", &fixture("tiny_legacy.pth"), "legacy.pth", MIB, read_weights);
    fuzz("zip-pth-bytes", &fixture("tiny_zip.pth"), "tiny_zip.pth", MIB, read_weights);
}

/// The zip's CRCs reject most byte-level mutations before the pickle is read; these mutate the
/// pickle and the storages inside a well-formed zip, so the unpickler and the tensor gathering
/// see them.
#[test]
fn zip_pth_pickles() {
    use std::io::Read;
    let raw = fixture("tiny_zip.pth");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&raw)).unwrap();
    let entries: Vec<(String, Vec<u8>)> = (0..zip.len())
        .map(|i| {
            let mut e = zip.by_index(i).unwrap();
            let mut b = Vec::new();
            e.read_to_end(&mut b).unwrap();
            (e.name().unwrap().into_owned(), b)
        })
        .collect();
    let pickle = entries.iter().find(|e| e.0.ends_with("data.pkl")).unwrap().1.clone();
    // The mutated pickle is put back into a zip with correct CRCs (stored, as torch writes it).
    let dir = scratch("zip-pickle-out");
    let rezip = move |p: &Path| -> support::Result<()> {
        let pkl = std::fs::read(p).unwrap();
        let out = dir.join("checkpoint.pth");
        let mut w = zip::ZipWriter::new(std::fs::File::create(&out).unwrap());
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, bytes) in &entries {
            w.start_file(name.as_str(), opts).unwrap();
            w.write_all(if name.ends_with("data.pkl") { &pkl } else { bytes }).unwrap();
        }
        w.finish().unwrap();
        // Errors name checkpoint.pth; the harness looks for the mutant's own name.
        read_weights(&out).map_err(|e| support::Error::Msg(format!("data.pkl: {e}")))
    };
    fuzz("zip-pth-pickle", &pickle, "data.pkl", MIB, rezip);
}

/// A training checkpoint (weights, optimiser state, history, loader epoch, dropout generator):
/// a mutant either resumes (and then the run continues) or is refused with what to do.
#[test]
fn training_checkpoints() {
    use support::prelude::*;
    let dir = scratch("checkpoint-seed");
    let images = Tensor::from_vec(
        (0..16 * 4).map(|i| (i % 7) as f32 / 7.0).collect::<Vec<_>>(),
        (16, 4),
        &Device::Cpu,
    )
    .unwrap();
    let labels =
        Tensor::from_vec((0..16u32).map(|i| i % 3).collect::<Vec<_>>(), 16, &Device::Cpu).unwrap();
    let ds = Dataset::new(images, labels).unwrap();
    let build =
        || Sequential::new("MLP").linear(4, 5).relu().dropout(0.2).linear(5, 3).build(0).unwrap();
    let run = |path: &Path, epochs: usize| -> support::Result<()> {
        let (train, val) =
            (DataLoader::new(ds.clone(), 8, true, 1)?, DataLoader::new(ds.clone(), 8, false, 0)?);
        let model = build();
        let mut opt = Adam::new(model.params().vars(), 1e-2)?;
        let opts = FitOptions::new(epochs).validate(&val).verbose(false).checkpoint(path);
        fit(&model, &train, &mut opt, Loss::CrossEntropy, opts).map(|_| ())
    };
    let seed_path = dir.join("run.safetensors");
    run(&seed_path, 2).unwrap();
    let seed = std::fs::read(&seed_path).unwrap();
    fuzz("checkpoint", &seed, "run.checkpoint.safetensors", 4 * MIB, |p| run(p, 2));
}

/// A backbone's cached features: a mutant is used only when it still has the shape and the
/// labels the data set needs; otherwise it is refused or recomputed.
#[test]
fn feature_caches() {
    use support::recipes::transfer::{cache_file, extract_features, Backbone};
    let cache = scratch("feature-cache");
    std::env::set_var("PLAYGROUND_CACHE", &cache);
    let backbone =
        Backbone::EfficientNet(support::EfficientNetLite::new(0, &support::Device::Cpu).unwrap());
    let images = support::Tensor::rand(0f32, 1., (1, 3, 32, 32), &support::Device::Cpu).unwrap();
    let labels = support::Tensor::new(&[3u32], &support::Device::Cpu).unwrap();
    let ds = support::Dataset::new(images, labels).unwrap();
    extract_features(&backbone, &ds, "fuzz", 1).unwrap();
    let path = cache_file(&backbone, "fuzz", 1);
    let seed = std::fs::read(&path).unwrap();
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    // The mutant is written where the cache is looked for; a refused one names it.
    fuzz("feature-cache", &seed, &file, 16 * MIB, |p| {
        std::fs::copy(p, &path).unwrap();
        extract_features(&backbone, &ds, "fuzz", 1).map(|_| ())
    });
}
