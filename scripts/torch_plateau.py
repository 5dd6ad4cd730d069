"""PyTorch's side of the CIFAR notebook's ResNet_plain plateau experiment (section 5).

The original's plain 20-layer network (conv0 without ReLU, 18 3x3 convolutions with ReLU, stride 2
where the channels double, global average pool, Linear(64, 10); PyTorch's default init), trained
for one epoch (157 steps of 256 images) with Adam at 5e-4 from several seeds, on the original's
data: CIFAR-10 scaled to [-1, 1], the 50,000 training images split 40,000 / 10,000 with
`random_split(generator=torch.Generator().manual_seed(42))`. Prints, per seed, what the notebook
prints for its own seeds: the mean training loss of the first and the last 10 steps, the gradient
norm reaching conv0 and the classifier, the validation accuracy after the epoch. Its output is
pasted in the notebook, with this script's name.

    PLAYGROUND_DATA=path/to/data python scripts/torch_plateau.py [seeds, default 6]

Needs torch and numpy; reads cifar-10-batches-bin/ from $PLAYGROUND_DATA (default data/).
"""
import os
import sys
import time

import numpy as np
import torch
from torch import nn


def load(root, names):
    raw = b"".join(open(os.path.join(root, "cifar-10-batches-bin", n), "rb").read() for n in names)
    rec = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3073)
    x = torch.from_numpy(rec[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)
    return (x - 0.5) / 0.5, torch.from_numpy(rec[:, 0].astype(np.int64))


def resnet_plain():
    layers, cin = [nn.Conv2d(3, 16, 3, padding=1)], 16
    for cout in (16, 32, 64):
        for j in range(6):
            stride = 2 if j == 0 and cout != 16 else 1
            layers += [nn.Conv2d(cin, cout, 3, stride, 1), nn.ReLU()]
            cin = cout
    return nn.Sequential(*layers, nn.AvgPool2d(8), nn.Flatten(), nn.Linear(64, 10))


def main():
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    root = os.environ.get("PLAYGROUND_DATA", "data")
    x, y = load(root, [f"data_batch_{i}.bin" for i in range(1, 6)])
    train, val = torch.utils.data.random_split(
        torch.utils.data.TensorDataset(x, y), [40000, 10000], generator=torch.Generator().manual_seed(42))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("seed | loss, steps 1-10 | loss, last 10 steps | |grad| conv0, step 1 | |grad| conv0, last "
          "| |grad| fc, step 1 | val acc after | left ln 10")
    for seed in range(seeds):
        torch.manual_seed(seed)
        net = resnet_plain()
        opt = torch.optim.Adam(net.parameters(), lr=5e-4)
        loader = torch.utils.data.DataLoader(train, batch_size=256, shuffle=True)
        losses, g0, gfc, t0 = [], [], [], time.time()
        for xb, yb in loader:
            loss = nn.functional.cross_entropy(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            g0.append(net[0].weight.grad.norm().item())
            gfc.append(net[-1].weight.grad.norm().item())
            opt.step()
            losses.append(loss.item())
        with torch.no_grad():
            vx, vy = x[val.indices], y[val.indices]
            acc = sum((net(vx[i:i + 1000]).argmax(1) == vy[i:i + 1000]).sum().item() for i in range(0, 10000, 1000)) / 10000
        first, last = np.mean(losses[:10]), np.mean(losses[-10:])
        print(f"{seed} | {first:.3f} | {last:.3f} | {g0[0]:.1e} | {g0[-1]:.1e} | {gfc[0]:.1e} | {acc:.3f} | "
              f"{'yes' if last < 2.25 else 'no'}   ({len(losses)} steps, {time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
