"""Loads the file that support/tests/weights.rs::written_pth_loads_in_torch_and_here writes with
the tests' torch-format writer (support/tests/common/pth.rs), as PyTorch would: run from the
repository root after `cargo test -p support --test weights` (pip install torch)."""
import torch
sd = torch.load("target/tmp/written.pth")  # weights_only=True: the default since torch 2.6
for k, v in sd.items():
    print(k, v.dtype, tuple(v.shape), v.tolist())
