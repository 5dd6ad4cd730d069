"""Parity fixtures for support/tests/torchvision.rs (run by hand: pip install torch torchvision).

No checkpoint is stored: both sides fill every state_dict tensor from the same integer hash
(`fill` below, mirrored in the Rust test), feed the same formula input, and the Rust test
compares its logits with the ones printed here. This checks architecture, key names, shapes,
padding, pooling, BatchNorm (eval) and Inception's transform_input against torchvision itself.
"""
import math
import numpy as np
import torch
import torchvision

def key_seed(name):
    return sum(name.encode()) % 97

def uniform(n, seed):
    """n values in [-1, 1) from an integer hash of (index, seed): exact on both sides."""
    m = np.uint64(0xFFFFFFFF)
    h = (np.arange(n, dtype=np.uint64) * np.uint64(2654435761) + np.uint64(seed * 1013904223)) & m
    h ^= h >> np.uint64(15)
    h = (h * np.uint64(2246822519)) & m
    h ^= h >> np.uint64(13)
    return h.astype(np.float64) / 4294967296.0 * 2.0 - 1.0

def fill(name, shape):
    n = int(np.prod(shape)) if len(shape) else 1
    s = uniform(n, key_seed(name))
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "running_var":
        v = 1.0 + 0.2 * s * s
    elif leaf == "running_mean":
        v = 0.05 * s
    elif len(shape) == 1 and leaf == "weight":  # BatchNorm scale
        v = 1.0 + 0.1 * s
    elif leaf == "bias":
        v = 0.01 * s
    else:  # conv / linear weight: He-uniform, so the signal keeps its scale through depth
        fan_in = n // shape[0]
        v = s * math.sqrt(6.0 / fan_in)
    return torch.from_numpy(v.astype(np.float32)).reshape(shape)

def image(size):
    return torch.from_numpy((1.5 * uniform(3 * size * size, 7)).astype(np.float32)).reshape(1, 3, size, size)

models = {
    "AlexNet": (torchvision.models.alexnet(), 224),
    "VGG16": (torchvision.models.vgg16(), 224),
    "ResNet18": (torchvision.models.resnet18(), 224),
    "ResNet101": (torchvision.models.resnet101(), 224),
    "Inception v3": (torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=True), 299),
}
torch.set_grad_enabled(False)
for name, (m, size) in models.items():
    sd = m.state_dict()
    m.load_state_dict({k: (v if k.endswith("num_batches_tracked") else fill(k, tuple(v.shape))) for k, v in sd.items()})
    m.eval()
    out = m(image(size))[0].double()
    params = sum(p.numel() for p in m.parameters())
    print(f'("{name}", {params}, {size}, [{", ".join(f"{v:.6e}" for v in out[:8].tolist())}], {out.sum().item():.6e}, {out.norm().item():.6e}, {int(out.argmax())}),')
