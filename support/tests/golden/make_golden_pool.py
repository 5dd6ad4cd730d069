"""Golden values for support/tests/pool.rs (run by hand: venv/bin/python make_golden_pool.py).

Input x[i] = sin(0.7 * i + 0.3) * (1 + i / 50) over a (1, 2, 5, 5) tensor (no ties), and the
gradient is taken of sum(out * wgt) with wgt[j] = cos(0.3 * j) over the output.
"""
import math
import torch
import torch.nn.functional as F


def fmt(t):
    return "[" + ", ".join(f"{v:.7f}" for v in t.flatten().tolist()) + "]"


def case(name, f, shape=(1, 2, 5, 5)):
    n = math.prod(shape)
    x = torch.tensor([math.sin(0.7 * i + 0.3) * (1 + i / 50) for i in range(n)]).reshape(shape).requires_grad_(True)
    out = f(x)
    wgt = torch.tensor([math.cos(0.3 * j) for j in range(out.numel())]).reshape(out.shape)
    (out * wgt).sum().backward()
    print(f"// {name}: out {list(out.shape)}\n{fmt(out.detach())}\n// grad\n{fmt(x.grad)}")


case("max k3 s2 p1", lambda x: F.max_pool2d(x, 3, 2, 1))
case("max k3 s1 p1", lambda x: F.max_pool2d(x, 3, 1, 1))
case("max k2 s2", lambda x: F.max_pool2d(x, 2, 2))
case("avg k3 s2 p1 (count_include_pad)", lambda x: F.avg_pool2d(x, 3, 2, 1))
case("avg k2 s1 p1", lambda x: F.avg_pool2d(x, 2, 1, 1))
case("adaptive avg (3, 2)", lambda x: F.adaptive_avg_pool2d(x, (3, 2)))
case("max (1,3) s(1,2) p(0,1) on 1x1x3x7", lambda x: F.max_pool2d(x, (1, 3), (1, 2), (0, 1)), shape=(1, 1, 3, 7))
