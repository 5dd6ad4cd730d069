#!/usr/bin/env python3
"""The notebook-vs-binary gap: times the same benchmark rows (`support::recipes::bench::time`) in an evcxr
notebook cell and in the release binary, one after the other on this machine, and prints both.

    .venv/bin/python scripts/notebook_gap.py [NAME ...]    # default: a row per kind of model

It writes a throw-away notebook into notebooks/ (so that evcxr uses the notebooks' build folder
and cargo settings, exactly as the real notebooks do), executes it with scripts/run_notebooks.py,
deletes it, then runs `target/release/bench NAME... ` with BENCH_NO_PEER=1. Run it on a quiet
machine: both sides are wall-clock times.
"""
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
names = sys.argv[1:] or ["mnist_mlp", "cifar_fcn", "cifar_lenet5", "cifar_vgg1", "cifar_resnet", "cifar_inception"]
bad = [n for n in names if not re.fullmatch(r"[a-z0-9_]+", n)]
if bad:
    sys.exit(f"not a benchmark row name: {bad}")

cells = [
    ':dep support = { path = "../support" }',
    "for name in [%s] {\n    println!(\"notebook {name}: {:.2} ms\", support::recipes::bench::time(name)?);\n}"
    % ", ".join(f'"{n}"' for n in names),
]
nb = {
    "cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": c} for c in cells],
    "metadata": {"kernelspec": {"display_name": "Rust", "language": "rust", "name": "rust"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}
path = ROOT / "notebooks" / "_notebook_gap.ipynb"
path.write_text(json.dumps(nb))
out = pathlib.Path(tempfile.mkdtemp())
try:
    subprocess.run([sys.executable, str(ROOT / "scripts/run_notebooks.py"), "--output-dir", str(out), str(path)], check=True, cwd=ROOT)
finally:
    path.unlink()
executed = json.loads((out / path.name).read_text())
text = "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))
notebook = {m[0]: float(m[1]) for m in re.findall(r"notebook (\w+): ([0-9.]+) ms", text)}

subprocess.run(["cargo", "build", "--release", "-p", "support", "--bin", "bench"], check=True, cwd=ROOT)
run = subprocess.run([str(ROOT / "target/release/bench"), *names], env={**os.environ, "BENCH_NO_PEER": "1"}, capture_output=True, text=True, check=True)
binary = {m[0]: float(m[1]) for m in re.findall(r"candle (\w+)\s+batch\s+\d+:\s+([0-9.]+) ms", run.stdout)}

print("\n| model | notebook ms | binary ms | notebook / binary |\n| --- | --- | --- | --- |")
for n in names:
    a, b = notebook.get(n), binary.get(n)
    ratio = f"{a / b:.2f}" if a and b else "-"
    print(f"| {n} | {a if a is not None else '-'} | {b if b is not None else '-'} | {ratio} |")
