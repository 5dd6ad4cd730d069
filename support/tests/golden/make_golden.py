"""Generates the golden values pasted into support/tests/*.rs (run by hand, not in CI).

    python -m venv venv && venv/bin/pip install torch && venv/bin/python make_golden.py

Every case uses fixed inputs written out below (no RNG), so the Rust tests rebuild them exactly.
Gradients are injected as loss = sum(p * G) so that dloss/dp = G.
"""
import torch
import torch.nn.functional as F

torch.set_printoptions(precision=8)
P0 = torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.25, -0.75]])
GRADS = [torch.tensor([[0.1, -0.2, 0.3], [0.0, 1.0, -0.5]]),
         torch.tensor([[-0.3, 0.2, 0.1], [0.4, -1.0, 0.25]]),
         torch.tensor([[0.05, 0.05, -0.05], [-0.2, 0.5, 0.0]])]


def fmt(t):
    return "[" + ", ".join(f"{v:.8f}" for v in t.flatten().tolist()) + "]"


def run(make_opt, name):
    p = P0.clone().requires_grad_(True)
    opt = make_opt([p])
    for g in GRADS:
        opt.zero_grad()
        (p * g).sum().backward()
        opt.step()
    print(f"// {name}\n{fmt(p.detach())}")


run(lambda ps: torch.optim.SGD(ps, lr=0.1), "SGD lr=0.1")
run(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01), "SGD lr=0.1 momentum=0.9 wd=0.01")
run(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01), "SGD nesterov")
run(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.5, dampening=0.3), "SGD momentum=0.5 dampening=0.3")
run(lambda ps: torch.optim.Adam(ps, lr=0.1), "Adam lr=0.1")
run(lambda ps: torch.optim.Adam(ps, lr=0.1, weight_decay=0.1), "Adam lr=0.1 weight_decay=0.1 (coupled L2)")
run(lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-3), "Adam lr=0.01 betas=(0.8,0.99) eps=1e-3")

# Cross-entropy (mean) and its gradient w.r.t. the logits.
logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3], [-3.0, 4.0, 1.0], [0.0, 0.0, 0.0]], requires_grad=True)
labels = torch.tensor([0, 2, 1, 1])
loss = F.cross_entropy(logits, labels)
loss.backward()
print(f"// cross_entropy\n{loss.item():.8f}\n{fmt(logits.grad)}")

# A two-layer MLP (Linear 4->3, ReLU, Linear 3->2) with fixed weights: loss before and after
# one Adam(lr=0.05) step on a fixed batch, and the first layer's weights after the step.
w1 = torch.tensor([[0.1, -0.2, 0.3, 0.4], [-0.5, 0.6, 0.7, -0.8], [0.9, 0.1, -0.1, 0.2]])
b1 = torch.tensor([0.01, -0.02, 0.03])
w2 = torch.tensor([[0.3, -0.6, 0.9], [-0.4, 0.5, 0.2]])
b2 = torch.tensor([0.1, -0.1])
x = torch.tensor([[1.0, 0.5, -0.5, 2.0], [0.0, -1.0, 1.0, 0.5], [0.3, 0.3, 0.3, 0.3]])
y = torch.tensor([1, 0, 1])
m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
with torch.no_grad():
    m[0].weight.copy_(w1); m[0].bias.copy_(b1); m[2].weight.copy_(w2); m[2].bias.copy_(b2)
opt = torch.optim.Adam(m.parameters(), lr=0.05)
l0 = F.cross_entropy(m(x), y)
opt.zero_grad(); l0.backward(); opt.step()
l1 = F.cross_entropy(m(x), y)
print(f"// mlp adam step\n{l0.item():.8f} {l1.item():.8f}\n{fmt(m[0].weight.detach())}\n{fmt(m(x).detach())}")
