#!/usr/bin/env python3
"""FLOPs of one benchmark step of each reference model, counted by PyTorch, for the GFLOP/s column
of `cargo run --release -p support --bin bench` (the numbers are pasted into `src/bin/bench.rs`).

    python support/bench/count_flops.py [path/to/torch_peer.py]

Uses the peer's own model definitions and `torch.utils.flop_counter.FlopCounterMode` (which counts
matrix multiplications and convolutions, forward and backward, 2 FLOPs per multiply-add):
training step = forward + backward of the peer's step (the backward includes the input gradient
of the first layer, which neither side computes for raw data, so this slightly over-counts);
inference = one forward pass at batch 32. The same count divides both sides' times.
"""
import importlib.util
import pathlib
import sys

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

peer_path = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parents[3] / "shared/bench/torch_peer.py")
spec = importlib.util.spec_from_file_location("torch_peer", peer_path)
peer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(peer)

for name, ctor, shape, batch in peer.TRAIN:
    m = ctor()
    m.train()
    x, y = torch.rand(batch, *shape), torch.randint(0, 10, (batch,))
    with FlopCounterMode(display=False) as fc:
        F.cross_entropy(m(x), y).backward()
    print(f'("{name}", {fc.get_total_flops() / 1e9:.4f}),')

import torchvision.models as tvm
for name, ctor, size in [("alexnet", tvm.alexnet, 224), ("vgg16", tvm.vgg16, 224),
                         ("inception_v3", lambda: tvm.inception_v3(init_weights=False, aux_logits=True), 299),
                         ("resnet18", tvm.resnet18, 224), ("resnet101", tvm.resnet101, 224)]:
    m = ctor().eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        m(torch.rand(32, 3, size, size))
    print(f'("{name}", {fc.get_total_flops() / 1e9:.4f}),')
