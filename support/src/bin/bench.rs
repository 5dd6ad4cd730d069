//! Training-step and inference benchmark: candle (through `support`) against the PyTorch CPU
//! peer, measured in the same run on the same machine.
//!
//!     cargo run --release -p support --bin bench            # all models this build knows
//!     TORCH_PYTHON=/path/to/python cargo run --release -p support --bin bench
//!
//! The peer is `shared/bench/torch_peer.py` (override with `TORCH_PEER`); it needs `torch`. Its
//! models and timing functions are imported from that file and run one model per call. When the
//! interpreter cannot import torch, the candle column is printed alone with a note.
//! Protocol (same as the peer): Adam(lr 1e-3), cross-entropy, random inputs in [0, 1) and random
//! labels, 2 warm-up steps, then the mean of 20 steps (batch <= 64) or 5 steps. Inference: the
//! torchvision architectures, batch 32, random weights, one warm-up pass then the mean of 2.
//! `bench NAME...` runs only those rows (e.g. `bench cifar_resnet resnet18`); `BENCH_NO_PEER=1`
//! skips the peer. The timing itself is `support::recipes::bench`.
//!
//! Pairs: the machine this runs on is shared, and either side can lose half its speed from one
//! minute to the next. A slow window must not flatter either side, so each row is timed in
//! `BENCH_PAIRS` (default 5) back-to-back pairs, candle then the peer, and the table reports the
//! **median of the per-pair ratios** (candle / torch) with their interquartile range, next to
//! each side's best time. The header gives the machine's fp32 peak, measured once with an FMA
//! loop on every core; each row's GFLOP/s is also given as a percentage of it.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;
use support::recipes::bench::{time, CASES, GFLOP, INFER};
use support::Result;

/// Times one model with the PyTorch peer's own code: the peer script is imported as a module
/// (its models, `time_train` and `time_infer`), and the model run by the same rules as its
/// `__main__`. Prints the header line (torch version, threads) on the first call.
const PEER_ONE: &str = r#"
import json, os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[1])))
import torch, torch_peer as p
name = sys.argv[2]
if sys.argv[3] == "1":
    print(json.dumps(dict(torch=torch.__version__, threads=torch.get_num_threads())), flush=True)
for n, ctor, shape, batch in p.TRAIN:
    if n == name:
        print(json.dumps(p.time_train(n, ctor, shape, batch, steps=20 if batch <= 64 else 5)))
        sys.exit(0)
import torchvision.models as tvm
infer = {"alexnet": (tvm.alexnet, 224), "vgg16": (tvm.vgg16, 224),
         "inception_v3": (lambda: tvm.inception_v3(init_weights=False, aux_logits=True), 299),
         "resnet18": (tvm.resnet18, 224), "resnet101": (tvm.resnet101, 224)}
ctor, size = infer[name]
print(json.dumps(p.time_infer(name, ctor(), size, 32, steps=2)))
"#;

/// The peer's interpreter and script, or why there is none.
fn peer() -> std::result::Result<(String, PathBuf), String> {
    if std::env::var_os("BENCH_NO_PEER").is_some() {
        return Err("BENCH_NO_PEER is set".into());
    }
    let python = std::env::var("TORCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = std::env::var_os("TORCH_PEER").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/torch_peer.py")
    });
    if !script.exists() {
        return Err(format!("peer script {} not found (set TORCH_PEER)", script.display()));
    }
    let probe = Command::new(&python)
        .args(["-c", "import torch"])
        .output()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    if !probe.status.success() {
        return Err(format!(
            "{python} cannot import torch (pip install torch, or set TORCH_PYTHON)"
        ));
    }
    Ok((python, script))
}

/// One peer timing of `name` in ms (and its header line when `header`).
fn peer_ms(
    (python, script): &(String, PathBuf),
    name: &str,
    header: bool,
) -> std::result::Result<(f64, Option<String>), String> {
    let out = Command::new(python)
        .args(["-c", PEER_ONE])
        .arg(script)
        .arg(name)
        .arg(if header { "1" } else { "0" })
        .output()
        .map_err(|e| format!("peer failed to start: {e}"))?;
    if !out.status.success() {
        return Err(format!("peer failed on {name}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let head = if header { lines.next().map(str::to_string) } else { None };
    let ms = lines
        .next()
        .and_then(|l| l.split("\"ms_per_step\": ").nth(1))
        .and_then(|r| r.split([',', '}']).next())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or_else(|| format!("the peer printed no time for {name}: {text}"))?;
    Ok((ms, head))
}

/// The machine's fp32 peak in GFLOP/s: independent chains of 8-wide fused multiply-adds on
/// every core at once for about half a second (`None` without AVX2 + FMA).
fn fma_peak_gflops() -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            return None;
        }
        /// 12 chains (FMA latency 4 cycles x 2 pipes, with room) of 8 lanes, 2 flops each.
        #[target_feature(enable = "avx2,fma")]
        unsafe fn chains(iters: u64) -> f32 {
            use std::arch::x86_64::*;
            let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
            let mut acc = [_mm256_set1_ps(1.0); 12];
            for _ in 0..iters {
                for v in acc.iter_mut() {
                    *v = _mm256_fmadd_ps(*v, a, b);
                }
            }
            let mut out = [0f32; 8];
            let mut sum = 0.0;
            for v in acc {
                _mm256_storeu_ps(out.as_mut_ptr(), v);
                sum += out.iter().sum::<f32>();
            }
            sum
        }
        const FLOPS_PER_ITER: f64 = 12.0 * 8.0 * 2.0;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        // SAFETY: the features were detected above.
        let run = |iters: u64| unsafe { std::hint::black_box(chains(iters)) };
        run(1_000_000); // warm up the clocks
        let iters = 200_000_000u64 / 12;
        let start = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| run(iters));
            }
        });
        let secs = start.elapsed().as_secs_f64();
        Some(threads as f64 * iters as f64 * FLOPS_PER_ITER / secs / 1e9)
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}

/// The `q` quantile of sorted `v` (linear interpolation, as numpy's default).
fn quantile(v: &[f64], q: f64) -> f64 {
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

fn main() -> Result<()> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let pairs: usize = std::env::var("BENCH_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(5);
    let peak = fma_peak_gflops();
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("candle 0.11.1 on CPU ({threads} threads), {date}");
    match peak {
        Some(p) => println!("fp32 peak of this machine (FMA loop, all cores): {p:.1} GFLOP/s"),
        None => println!("fp32 peak: not measured (no AVX2 + FMA)"),
    }
    // `bench NAME...` times only those models.
    let only: Vec<String> = std::env::args().skip(1).collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let rows: Vec<(String, usize)> = CASES
        .iter()
        .filter(|c| wanted(c.name))
        .map(|c| (c.name.to_string(), c.batch))
        .chain(INFER.iter().filter(|i| wanted(i.0)).map(|i| (i.0.to_string(), 32)))
        .collect();
    let peer = peer();
    let mut peer_error = peer.as_ref().err().cloned();
    let mut header_done = false;
    // Per row: `pairs` back-to-back (candle, peer) timings.
    let mut results: Vec<(Vec<f64>, Vec<f64>)> = Vec::new();
    for (name, batch) in &rows {
        let (mut c, mut t) = (Vec::new(), Vec::new());
        for pair in 1..=pairs {
            let ms = time(name)?;
            let mut line = format!("pair {pair}: {name:<16} batch {batch:>4}: candle {ms:8.2} ms");
            if let (Ok(p), None) = (&peer, &peer_error) {
                match peer_ms(p, name, !header_done) {
                    Ok((tms, head)) => {
                        if let Some(h) = head {
                            println!("peer: {h}");
                            header_done = true;
                        }
                        line += &format!(", torch {tms:8.2} ms, ratio {:.2}", ms / tms);
                        t.push(tms);
                    }
                    Err(e) => peer_error = Some(e),
                }
            }
            println!("{line}");
            c.push(ms);
        }
        results.push((c, t));
    }
    let peak_text = peak.map_or("not measured".into(), |p| format!("{p:.1} GFLOP/s"));
    println!(
        "\n{date}; {pairs} pairs per row (candle then torch, back to back); ratio = median of \
         the per-pair ratios candle/torch, with their interquartile range; best time of each \
         side; fp32 peak {peak_text}\n"
    );
    println!(
        "| model | batch | candle ms (best) | torch ms (best) | ratio (median) | ratio IQR | \
         candle GFLOP/s | torch GFLOP/s | candle % of peak | torch % of peak |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let mut medians = Vec::new();
    for ((name, batch), (c, t)) in rows.iter().zip(&results) {
        let label = if INFER.iter().any(|inf| inf.0 == *name) {
            format!("{name} (inference)")
        } else {
            name.clone()
        };
        let gflop = GFLOP.iter().find(|g| g.0 == name).map(|g| g.1);
        let rate = |ms: f64| gflop.map(|g| g / (ms / 1e3));
        let cols = |ms: Option<f64>| -> (String, String, String) {
            match ms {
                None => ("-".into(), "-".into(), "-".into()),
                Some(ms) => (
                    format!("{ms:.2}"),
                    rate(ms).map_or("-".into(), |r| format!("{r:.1}")),
                    match (rate(ms), peak) {
                        (Some(r), Some(p)) => format!("{:.0}%", 100.0 * r / p),
                        _ => "-".into(),
                    },
                ),
            }
        };
        let (c_ms, c_rate, c_pct) = cols(Some(best(c)));
        let (t_ms, t_rate, t_pct) = cols((t.len() == c.len()).then(|| best(t)));
        let (ratio, iqr) = if t.len() == c.len() {
            let mut r: Vec<f64> = c.iter().zip(t).map(|(c, t)| c / t).collect();
            r.sort_by(f64::total_cmp);
            let m = quantile(&r, 0.5);
            medians.push(m);
            (format!("{m:.2}"), format!("{:.2}-{:.2}", quantile(&r, 0.25), quantile(&r, 0.75)))
        } else {
            ("-".into(), "-".into())
        };
        println!(
            "| {label} | {batch} | {c_ms} | {t_ms} | {ratio} | {iqr} | {c_rate} | {t_rate} | \
             {c_pct} | {t_pct} |"
        );
    }
    if !medians.is_empty() {
        let geomean = (medians.iter().map(|m| m.ln()).sum::<f64>() / medians.len() as f64).exp();
        let above = medians.iter().filter(|&&m| m > 1.0).count();
        println!(
            "\ngeometric mean of the {} median ratios: {geomean:.2}; rows above 1.0: {above}",
            medians.len()
        );
    }
    if let Some(e) = peer_error {
        println!("\nPyTorch peer skipped: {e}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::quantile;

    /// numpy: `np.quantile([1, 2, 3, 4], [0.25, 0.5, 0.75])` = [1.75, 2.5, 3.25].
    #[test]
    fn quantiles_interpolate_as_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!([0.25, 0.5, 0.75].map(|q| quantile(&v, q)), [1.75, 2.5, 3.25]);
        assert_eq!(quantile(&[0.9, 1.1, 1.4], 0.5), 1.1);
    }
}
