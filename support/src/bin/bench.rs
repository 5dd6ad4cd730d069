//! Training-step and inference benchmark: candle (through `support`) against the PyTorch CPU
//! peer, measured in the same run on the same machine.
//!
//!     cargo run --release -p support --bin bench            # all models this build knows
//!     TORCH_PYTHON=/path/to/python cargo run --release -p support --bin bench
//!
//! The peer is `shared/bench/torch_peer.py` (override with `TORCH_PEER`); it needs `torch`. When
//! the interpreter cannot import torch, the candle column is printed alone with a note.
//! Protocol (same as the peer): Adam(lr 1e-3), cross-entropy, random inputs in [0, 1) and random
//! labels, 2 warm-up steps, then the mean of 20 steps (batch <= 64) or 5 steps. Inference: the
//! torchvision architectures, batch 32, random weights, one warm-up pass then the mean of 2.
//! `bench NAME...` runs only those rows (e.g. `bench cifar_resnet resnet18`); `BENCH_NO_PEER=1`
//! skips the peer. The timing itself is `support::bench`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use support::bench::{gflops, time, CASES, INFER};
use support::Result;

/// Runs the PyTorch peer and returns (header line, model -> ms per step).
fn torch_peer() -> std::result::Result<(String, HashMap<String, f64>), String> {
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
    let probe = Command::new(&python).args(["-c", "import torch"]).output().map_err(|e| format!("cannot run {python}: {e}"))?;
    if !probe.status.success() {
        return Err(format!("{python} cannot import torch (pip install torch, or set TORCH_PYTHON)"));
    }
    let out = Command::new(&python).arg(&script).arg(std::env::var("BENCH_PEER_TASK").unwrap_or_else(|_| "all".into())).output().map_err(|e| format!("peer failed to start: {e}"))?;
    if !out.status.success() {
        return Err(format!("peer failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut header = String::new();
    let mut times = HashMap::new();
    for line in text.lines() {
        let field = |k: &str| line.split(&format!("\"{k}\": ")).nth(1).map(|r| r.split([',', '}']).next().unwrap_or("").trim_matches('"').to_string());
        match (field("model"), field("ms_per_step")) {
            (Some(m), Some(ms)) => {
                times.insert(m, ms.parse::<f64>().unwrap_or(f64::NAN));
            }
            _ => header = line.to_string(),
        }
    }
    Ok((header, times))
}

fn main() -> Result<()> {
    support::tune_allocator();
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("candle {} on CPU ({threads} threads)", "0.11.1");
    // `bench NAME...` times only those models (the peer still runs all of its own).
    let only: Vec<String> = std::env::args().skip(1).collect();
    let mut rows = Vec::new();
    for case in CASES.iter().filter(|c| only.is_empty() || only.iter().any(|o| o == c.name)) {
        let ms = time(case.name)?;
        println!("candle {:<18} batch {:>4}: {ms:8.2} ms/step", case.name, case.batch);
        rows.push((case, ms));
    }
    let mut infer_rows = Vec::new();
    for &(key, _, _) in INFER.iter().filter(|c| only.is_empty() || only.iter().any(|o| o == c.0)) {
        let ms = time(key)?;
        println!("candle {key:<18} batch   32: {ms:8.2} ms/batch (inference)");
        infer_rows.push((key, ms));
    }
    println!("running the PyTorch peer ...");
    let peer = torch_peer();
    if let Ok((header, _)) = &peer {
        println!("peer: {header}");
    }
    println!("\n| model | batch | candle ms | torch ms | ratio (candle/torch) | candle GFLOP/s | torch GFLOP/s |\n| --- | --- | --- | --- | --- | --- | --- |");
    let rows = rows.into_iter().map(|(case, ms)| (case.name.to_string(), case.batch, ms)).chain(infer_rows.into_iter().map(|(key, ms)| (key.to_string(), 32, ms)));
    for (name, batch, ms) in rows {
        let torch = peer.as_ref().ok().and_then(|(_, t)| t.get(&name).copied());
        let label = if INFER.iter().any(|i| i.0 == name) { format!("{name} (inference)") } else { name.clone() };
        let (t, ratio) = torch.map_or(("-".into(), "-".into()), |t| (format!("{t:.2}"), format!("{:.2}", ms / t)));
        println!("| {label} | {batch} | {ms:.2} | {t} | {ratio} | {} | {} |", gflops(&name, Some(ms)), gflops(&name, torch));
    }
    if let Err(e) = peer {
        println!("\nPyTorch peer skipped: {e}");
    }
    Ok(())
}
