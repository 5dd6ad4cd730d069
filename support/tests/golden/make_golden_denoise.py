"""Golden values for support/tests/denoise.rs (run by hand: venv/bin/python make_golden_denoise.py).

The original notebook's 3x3 kernel: outer([a, 1, a], [a, 1, a]) / sum, and its gradient in a
of sum(kernel * W) with W[i] = (i / 10 - 0.3)^2; the filtered image of a fixed 1x1x4x4 input.
"""
import torch
import torch.nn.functional as F


def fmt(t):
    return "[" + ", ".join(f"{v:.7f}" for v in t.flatten().tolist()) + "]"


def gaussian_kernel(a):
    v = torch.cat([a.reshape(1), torch.ones(1), a.reshape(1)])
    k = torch.outer(v, v)
    return k / k.sum()


a = torch.tensor(0.3, requires_grad=True)
k = gaussian_kernel(a)
W = (torch.arange(9, dtype=torch.float32).reshape(3, 3) / 10 - 0.3) ** 2
(k * W).sum().backward()
x = torch.tensor([[0.0, 0.5, 1.0, 0.2], [0.3, 0.9, 0.1, 0.0], [1.0, 1.0, 0.4, 0.6], [0.2, 0.0, 0.7, 0.8]]).reshape(1, 1, 4, 4)
y = F.conv2d(x, k.detach()[None, None], padding=1)
print(f"// kernel(0.3)\n{fmt(k.detach())}\n// d/da sum(k*W)\n{a.grad.item():.7f}\n// filtered\n{fmt(y)}")
print(f"// kernel(0.5)\n{fmt(gaussian_kernel(torch.tensor(0.5)))}")
