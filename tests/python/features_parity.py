"""Python side of tests/e2e/features_test.sh (run with /usr/bin/python3: Debian's python3-torch,
python3-h5py and python3-openslide).

  encoder <out.pt> [input_size]
      a small CNN ([N, 3, S, S] -> [N, 24]) saved as TorchScript (torch.jit.script), as a user
      brings a published encoder.
  wrong_output <out.pt>
      a TorchScript module that returns [N, 3, S, S] (not features): slidetrain must refuse it.
  check <h5 file> <slide file> <encoder> <mean,mean,mean> <std,std,std> [max_patches]
      reads a slidetrain feature file with h5py, checks the CLAM/TRIDENT layout (features [N, D]
      float32, coords [N, 2] int64, attributes), re-reads the patches at `coords` with
      openslide-python, runs the same encoder in PyTorch and prints the max abs difference;
      exits 1 when it is over 1e-4. <encoder>: a TorchScript file, or zoo:small_cnn:<weights.pt>
      (tools/reference_models.py's twin with slidetrain's weights; features = trunk + global
      average pooling, the classifier removed).
"""
import os
import sys

import h5py
import numpy as np
import openslide
import torch
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))


class SmallEncoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(16, 24, 3, stride=2, padding=1)

    def forward(self, x):
        y = torch.relu(self.conv1(x))
        y = torch.relu(self.conv2(y))
        return y.mean(dim=(2, 3))


class WrongOutput(torch.nn.Module):
    def forward(self, x):
        return x * 2.0


def load_encoder(spec):
    if spec.startswith("zoo:"):
        _, arch, weights = spec.split(":", 2)
        from reference_models import build
        model = build(arch)
        model.load_state_dict(torch.load(weights), strict=True)
        model.eval()
        return lambda x: model.features(x).mean(dim=(2, 3))
    module = torch.jit.load(spec)
    module.eval()
    return module


def check(h5_path, slide_path, encoder_spec, mean, std, max_patches):
    with h5py.File(h5_path, "r") as f:
        feats = f["features"][:]
        coords = f["coords"][:]
        attrs = dict(f.attrs)
        cattrs = dict(f["coords"].attrs)
    assert feats.ndim == 2 and coords.shape == (feats.shape[0], 2), (feats.shape, coords.shape)
    assert coords.dtype == np.int64, coords.dtype
    for key in ("slide_id", "encoder", "fingerprint", "patch_size", "patch_level",
                "patch_size_level0", "mpp", "input_size"):
        assert key in attrs, "attribute %s missing: %s" % (key, sorted(attrs))
    for key in ("patch_size", "patch_level"):
        assert key in cattrs, "coords attribute %s missing" % key
    size, level = int(attrs["patch_size"]), int(attrs["patch_level"])
    slide = openslide.OpenSlide(slide_path)
    assert int(attrs["patch_size_level0"]) == round(size * slide.level_downsamples[level])
    n = min(len(coords), max_patches)
    rows = np.linspace(0, len(coords) - 1, n).astype(int)
    imgs = []
    for i in rows:
        x, y = (int(v) for v in coords[i])
        rgba = slide.read_region((x, y), level, (size, size))
        white = Image.new("RGB", rgba.size, (255, 255, 255))  # slidetrain's background
        white.paste(rgba, mask=rgba.split()[3])
        imgs.append(np.asarray(white, dtype=np.uint8))
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 255.0
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    side = int(attrs["input_size"])
    if side != size:
        x = torch.nn.functional.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
    enc = load_encoder(encoder_spec)
    with torch.no_grad():
        ref = enc(x).float().numpy()
    got = feats[rows].astype(np.float32)
    diff = float(np.abs(ref - got).max())
    print("parity: %s: %d of %d patches, D = %d, max abs difference %.3g"
          % (attrs["slide_id"], n, len(coords), feats.shape[1], diff))
    return 0 if diff <= 1e-4 else 1


def main(argv):
    if argv[1] == "encoder":
        torch.manual_seed(0)
        torch.jit.script(SmallEncoder()).save(argv[2])
        return 0
    if argv[1] == "wrong_output":
        torch.jit.script(WrongOutput()).save(argv[2])
        return 0
    if argv[1] == "check":
        mean = [float(v) for v in argv[5].split(",")]
        std = [float(v) for v in argv[6].split(",")]
        max_patches = int(argv[7]) if len(argv) > 7 else 64
        return check(argv[2], argv[3], argv[4], mean, std, max_patches)
    raise SystemExit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
