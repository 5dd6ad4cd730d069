"""Golden values for support/tests/recipe.rs (run by hand: pip install torch).

The "modern recipe" pieces: cross-entropy with label smoothing, OneCycleLR (learning rate and
Adam beta1 per step), BatchNorm2d in training mode (output, gradients, running statistics).
"""
import torch, torch.nn as nn, torch.nn.functional as F

logits = torch.tensor([[1.0, 2.0, 0.5, -1.0], [0.3, -0.2, 0.1, 2.2], [-1.0, 0.0, 1.0, 0.5]], requires_grad=True)
y = torch.tensor([1, 3, 0])
l = F.cross_entropy(logits, y, label_smoothing=0.1); l.backward()
print("ls loss", l.item(), "grad", logits.grad.flatten().tolist())

p = nn.Parameter(torch.zeros(1)); opt = torch.optim.Adam([p], lr=1e-3)
sch = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.01, total_steps=100)
lrs, moms = [], []
for s in range(100):
    lrs.append(opt.param_groups[0]['lr']); moms.append(opt.param_groups[0]['betas'][0])
    opt.step(); sch.step()
for s in [0, 1, 10, 28, 29, 30, 50, 98, 99]: print(s, repr(lrs[s]), repr(moms[s]))

bn = nn.BatchNorm2d(3)
with torch.no_grad():
    bn.weight.copy_(torch.tensor([1.0, 0.5, 2.0])); bn.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
x = torch.tensor([[(0.37 * i + 0.1) for i in range(2 * 3 * 2 * 2)]]).reshape(2, 3, 2, 2).sin().requires_grad_()
out = bn(x)
w = torch.tensor([(0.5 * j + 1.0) for j in range(out.numel())]).sin().reshape(out.shape)
(out * w).sum().backward()
print("bn out", [round(v, 6) for v in out.flatten().tolist()])
print("bn dx", [round(v, 6) for v in x.grad.flatten().tolist()])
print("bn dw", bn.weight.grad.tolist(), "db", bn.bias.grad.tolist())
print("running mean", bn.running_mean.tolist(), "var", bn.running_var.tolist())
