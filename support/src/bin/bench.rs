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
//! skips the peer. The timing itself is `support::recipes::bench`.
//!
//! Rounds: the machine this runs on is shared, and both sides move by 15-35% from one minute
//! to the next. So the candle rows and the peer run alternately `BENCH_ROUNDS` times (default
//! 3); the table shows each side's best time (the least disturbed) and, next to their ratio,
//! the range of the per-round ratios (candle round r / torch round r).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use support::recipes::bench::{gflops, time, CASES, INFER};
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
    let probe = Command::new(&python)
        .args(["-c", "import torch"])
        .output()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    if !probe.status.success() {
        return Err(format!(
            "{python} cannot import torch (pip install torch, or set TORCH_PYTHON)"
        ));
    }
    let out = Command::new(&python)
        .arg(&script)
        .arg(std::env::var("BENCH_PEER_TASK").unwrap_or_else(|_| "all".into()))
        .output()
        .map_err(|e| format!("peer failed to start: {e}"))?;
    if !out.status.success() {
        return Err(format!("peer failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut header = String::new();
    let mut times = HashMap::new();
    for line in text.lines() {
        let field = |k: &str| {
            line.split(&format!("\"{k}\": "))
                .nth(1)
                .map(|r| r.split([',', '}']).next().unwrap_or("").trim_matches('"').to_string())
        };
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
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("candle 0.11.1 on CPU ({threads} threads)");
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(3);
    // `bench NAME...` times only those models (the peer still runs all of its own).
    let only: Vec<String> = std::env::args().skip(1).collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let rows: Vec<(String, usize)> = CASES
        .iter()
        .filter(|c| wanted(c.name))
        .map(|c| (c.name.to_string(), c.batch))
        .chain(INFER.iter().filter(|i| wanted(i.0)).map(|i| (i.0.to_string(), 32)))
        .collect();
    // Per round: candle's time of every row, then the peer's.
    let mut candle: Vec<Vec<f64>> = Vec::new();
    let mut torch: Vec<Option<HashMap<String, f64>>> = Vec::new();
    let mut peer_error = None;
    for round in 1..=rounds {
        let mut times = Vec::new();
        for (name, batch) in &rows {
            let ms = time(name)?;
            println!("round {round}: candle {name:<18} batch {batch:>4}: {ms:8.2} ms");
            times.push(ms);
        }
        candle.push(times);
        println!("round {round}: running the PyTorch peer ...");
        match torch_peer() {
            Ok((header, t)) => {
                println!("peer: {header}");
                torch.push(Some(t));
            }
            Err(e) => {
                peer_error = Some(e);
                torch.push(None);
            }
        }
    }
    println!(
        "\nbest of {rounds} alternating rounds; the last column is the range of the \
     per-round ratios\n"
    );
    println!(
        "| model | batch | candle ms | torch ms | ratio (candle/torch) | candle GFLOP/s | \
     torch GFLOP/s | per-round ratios |\n| --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    let best = |v: &mut dyn Iterator<Item = f64>| v.fold(f64::INFINITY, f64::min);
    for (i, (name, batch)) in rows.iter().enumerate() {
        let ms = best(&mut candle.iter().map(|r| r[i]));
        let per_round: Vec<(f64, f64)> = candle
            .iter()
            .zip(&torch)
            .filter_map(|(c, t)| Some((c[i], *t.as_ref()?.get(name)?)))
            .collect();
        let t = (!per_round.is_empty()).then(|| best(&mut per_round.iter().map(|p| p.1)));
        let label = if INFER.iter().any(|inf| inf.0 == *name) {
            format!("{name} (inference)")
        } else {
            name.clone()
        };
        let (ts, ratio) =
            t.map_or(("-".into(), "-".into()), |t| (format!("{t:.2}"), format!("{:.2}", ms / t)));
        let ratios: Vec<f64> = per_round.iter().map(|(c, t)| c / t).collect();
        let spread = if ratios.is_empty() {
            "-".into()
        } else {
            format!(
                "{:.2}-{:.2}",
                best(&mut ratios.iter().copied()),
                ratios.iter().copied().fold(0.0, f64::max)
            )
        };
        println!(
            "| {label} | {batch} | {ms:.2} | {ts} | {ratio} | {} | {} | {spread} |",
            gflops(name, Some(ms)),
            gflops(name, t)
        );
    }
    if let Some(e) = peer_error {
        println!("\nPyTorch peer skipped: {e}");
    }
    Ok(())
}
