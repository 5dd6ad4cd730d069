"""Golden values for support/tests/linear.rs (run by hand: venv/bin/python make_golden_linear.py).

x[i] = sin(0.37 i + 0.1) over (3, 5); weight[i] = cos(0.21 i) / 3 over (4, 5); bias = [0.1, -0.2, 0.3, 0.05];
gradient of sum(out * wgt) with wgt[j] = sin(0.5 j + 1).
"""
import math
import torch
import torch.nn.functional as F


def fmt(t):
    return "[" + ", ".join(f"{v:.7f}" for v in t.flatten().tolist()) + "]"


x = torch.tensor([math.sin(0.37 * i + 0.1) for i in range(15)]).reshape(3, 5).requires_grad_(True)
w = torch.tensor([math.cos(0.21 * i) / 3 for i in range(20)]).reshape(4, 5).requires_grad_(True)
b = torch.tensor([0.1, -0.2, 0.3, 0.05]).requires_grad_(True)
out = F.linear(x, w, b)
wgt = torch.tensor([math.sin(0.5 * j + 1) for j in range(out.numel())]).reshape(out.shape)
(out * wgt).sum().backward()
print(f"// out {list(out.shape)}\n{fmt(out.detach())}\n// grad x\n{fmt(x.grad)}\n// grad w\n{fmt(w.grad)}\n// grad b\n{fmt(b.grad)}")
