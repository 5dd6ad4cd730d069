"""Writes support/tests/fixtures/reprs/<model>.txt: `print(model)` of the five torchvision
classifiers of the ImageNet notebook, the text `TorchvisionNet`'s Display must reproduce
(support/tests/torchvision.rs). Run once by hand from the repository root (pip install torch
torchvision); made with torch 2.15.0 / torchvision 0.29.2. Their BatchNorm2d lines carry
`bias=True` after `affine=True`; the originals' torch 1.x printed no such field, and the port
prints as the originals did, so it is taken out here (the only change to torch's text)."""
import torch, torchvision

models = {
    "alexnet": torchvision.models.alexnet(),
    "vgg16": torchvision.models.vgg16(),
    # As the notebooks build it for the pretrained weights (aux_logits=True, init_weights=False).
    "inception_v3": torchvision.models.inception_v3(init_weights=False, aux_logits=True),
    "resnet18": torchvision.models.resnet18(),
    "resnet101": torchvision.models.resnet101(),
}
for name, m in models.items():
    with open(f"support/tests/fixtures/reprs/{name}.txt", "w") as f:
        f.write(repr(m).replace(", affine=True, bias=True,", ", affine=True,") + "\n")
    print(name, torch.__version__, torchvision.__version__, len(repr(m).splitlines()), "lines")
