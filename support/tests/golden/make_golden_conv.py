"""Golden values for support/tests/conv.rs (run by hand: venv/bin/python make_golden_conv.py).

x[i] = sin(0.37 i + 0.1) over (1, 2, 4, 5) (or the shape given); weight[i] = cos(0.21 i) / 3 over (3, 2, 3, 3);
bias = [0.1, -0.2, 0.3]; gradient of sum(out * wgt) with wgt[j] = sin(0.5 j + 1).
"""
import math
import torch
import torch.nn.functional as F


def fmt(t):
    return "[" + ", ".join(f"{v:.7f}" for v in t.flatten().tolist()) + "]"


def run(name, f, shape=(1, 2, 4, 5)):
    x = torch.tensor([math.sin(0.37 * i + 0.1) for i in range(math.prod(shape))]).reshape(shape).requires_grad_(True)
    w = torch.tensor([math.cos(0.21 * i) / 3 for i in range(54)]).reshape(3, 2, 3, 3).requires_grad_(True)
    b = torch.tensor([0.1, -0.2, 0.3]).requires_grad_(True)
    out = f(x, w, b)
    wgt = torch.tensor([math.sin(0.5 * j + 1) for j in range(out.numel())]).reshape(out.shape)
    (out * wgt).sum().backward()
    print(f"// {name}: out {list(out.shape)}\n{fmt(out.detach())}\n// grad x\n{fmt(x.grad)}\n// grad w\n{fmt(w.grad)}\n// grad b\n{fmt(b.grad)}")


run("stride 2 padding 1", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1))
run("stride 1 padding (top 0, bottom 1, left 1, right 2)", lambda x, w, b: F.conv2d(F.pad(x, (1, 2, 0, 1)), w, b))
run("stride 2 padding 1 on a square 6x6 input", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), shape=(1, 2, 6, 6))
