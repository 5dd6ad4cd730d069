"""Golden values for support/tests/imagenet.rs (run by hand: pip install torch torchvision pillow).

1. torchvision's AlexNet preset (resize 256 bilinear+antialias on PIL, crop 224, ImageNet
   mean/std) and the Inception preset (342/299) applied to shared/data/imagenet/cat.jpg:
   shape, channel means and a few pixels.
2. A few values of the legacy-pickle EfficientNet-Lite0 checkpoint, incl. the transposed `_fc.weight`.
"""
import sys
import torch
from PIL import Image
from torchvision import transforms

cat = Image.open(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/imagenet/cat.jpg").convert("RGB")
print("cat size", cat.size)
for resize, crop in [(256, 224), (342, 299)]:
    t = transforms.Compose([transforms.Resize(resize), transforms.CenterCrop(crop), transforms.ToTensor(),
                            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])(cat)
    print(resize, crop, tuple(t.shape), "means", [round(v, 5) for v in t.mean((1, 2)).tolist()])
    print("  pixels [c][y][x] (0,0,0) (1,100,50) (2,223,223) (0,150,120):",
          [round(t[0, 0, 0].item(), 5), round(t[1, 100, 50].item(), 5), round(t[2, crop - 1, crop - 1].item(), 5), round(t[0, 150, 120].item(), 5)])
if len(sys.argv) > 2:
    sd = torch.load(sys.argv[2], map_location="cpu", weights_only=False)
    print("_fc.weight[0,:3]", sd["_fc.weight"][0, :3].tolist(), "[999,1279]", sd["_fc.weight"][999, 1279].item())
    print("_blocks.15._depthwise_conv.weight[5,0,1,:]", sd["_blocks.15._depthwise_conv.weight"][5, 0, 1, :].tolist())
    print("_bn1.running_var[:3]", sd["_bn1.running_var"][:3].tolist())

# 3. The transfer notebook's path: a 32x32 CIFAR-10 image (test image 5, a frog) as a PIL image
#    through the AlexNet preset (an upscale: 32 -> 256, crop 224). CIFAR's binary record: a label
#    byte, then the 1024 red, 1024 green and 1024 blue bytes.
import os
import numpy as np
data = os.environ.get("PLAYGROUND_DATA", "../shared/data")
raw = open(os.path.join(data, "cifar-10-batches-bin", "test_batch.bin"), "rb").read()
rec = np.frombuffer(raw[5 * 3073:6 * 3073], dtype=np.uint8)
frog = Image.fromarray(rec[1:].reshape(3, 32, 32).transpose(1, 2, 0))
t = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
                        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])(frog)
print("cifar test image 5, label", rec[0], tuple(t.shape), "means", [round(v, 5) for v in t.mean((1, 2)).tolist()])
print("  pixels [c][y][x] (0,0,0) (1,100,50) (2,223,223) (0,150,120):",
      [round(t[0, 0, 0].item(), 5), round(t[1, 100, 50].item(), 5), round(t[2, 223, 223].item(), 5), round(t[0, 150, 120].item(), 5)])
