"""The Python baseline of bench/features.sh: what a CLAM/TRIDENT-style script does to embed
patches - openslide-python reads in a torch DataLoader, the encoder in PyTorch, one HDF5 file per
slide with h5py. Run with /usr/bin/python3 (Debian's python3-torch, -openslide, -h5py).

  features.py <patch lists dir> <out dir> <encoder.pt> <workers> <threads> <batch> <shard> <shards>

<patch lists dir> holds, per slide, <slide_id>.h5 feature files written by `slidetrain features`
(their coords and patch attributes are the patch list) and slides.txt (slide_id path lines).
Slides are dealt to shards by patch count as slidetrain does; prints "patches N seconds S".
"""
import os
import sys
import time

import h5py
import numpy as np
import openslide
import torch
from PIL import Image

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


class Patches(torch.utils.data.Dataset):
    def __init__(self, path, coords, level, size):
        self.path, self.coords, self.level, self.size = path, coords, level, size
        self.slide = None

    def __len__(self):
        return len(self.coords)

    def __getitem__(self, i):
        if self.slide is None:  # one handle per worker process
            self.slide = openslide.OpenSlide(self.path)
        x, y = (int(v) for v in self.coords[i])
        rgba = self.slide.read_region((x, y), self.level, (self.size, self.size))
        rgb = Image.new("RGB", rgba.size, (255, 255, 255))
        rgb.paste(rgba, mask=rgba.split()[3])
        t = torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255.0
        return (t - MEAN) / STD


def main(argv):
    lists, out, enc_path = argv[1], argv[2], argv[3]
    workers, threads, batch, shard, shards = (int(v) for v in argv[4:9])
    torch.set_num_threads(threads)
    encoder = torch.jit.load(enc_path)
    encoder.eval()
    slides = [line.split(None, 1) for line in open(os.path.join(lists, "slides.txt")).read().splitlines()]
    work = []
    for sid, path in slides:
        with h5py.File(os.path.join(lists, sid + ".h5"), "r") as f:
            work.append((len(f["coords"]), sid, path.strip(), f["coords"][:], int(f.attrs["patch_level"]),
                         int(f.attrs["patch_size"])))
    load = [0] * shards
    mine = []
    for n, sid, path, coords, level, size in sorted(work, key=lambda w: -w[0]):
        r = load.index(min(load))
        load[r] += n
        if r == shard:
            mine.append((sid, path, coords, level, size))
    os.makedirs(out, exist_ok=True)
    start, total = time.time(), 0
    with torch.no_grad():
        for sid, path, coords, level, size in mine:
            loader = torch.utils.data.DataLoader(Patches(path, coords, level, size), batch_size=batch,
                                                 num_workers=workers)
            feats = [encoder(x) for x in loader]
            with h5py.File(os.path.join(out, sid + ".h5"), "w") as f:
                f["features"] = torch.cat(feats).numpy()
                f["coords"] = coords
            total += len(coords)
    print("patches %d seconds %.3f" % (total, time.time() - start))


if __name__ == "__main__":
    main(sys.argv)
