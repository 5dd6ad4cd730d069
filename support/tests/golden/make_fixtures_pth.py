"""Writes the two tiny checkpoints of support/tests/weights.rs (run by hand: pip install torch):
the same state_dict saved in torch's zip format and in the legacy pickle format, one weight
stored transposed (as TF-converted checkpoints do), plus an int64 buffer that loaders must skip."""
import torch
sd = {
    "fc.weight": torch.arange(6, dtype=torch.float32).reshape(3, 2).t(),  # (2, 3), column-major storage
    "fc.bias": torch.tensor([0.5, -1.5]),
    "bn.num_batches_tracked": torch.tensor(7),
}
torch.save(sd, "support/tests/fixtures/tiny_zip.pth")
torch.save(sd, "support/tests/fixtures/tiny_legacy.pth", _use_new_zipfile_serialization=False)
print({k: v.tolist() for k, v in sd.items()})
