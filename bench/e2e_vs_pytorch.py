"""The Python side of bench/e2e_vs_pytorch.sh: the training pipeline people glue together today,
PyTorch DistributedDataParallel (gloo) fed by a DataLoader whose worker reads patches with
openslide-python, on the same patch lists, model, optimizer and augmentation as the
`slidetrain train` run it is compared with. Run with /usr/bin/python3 (Debian's python3-torch and
python3-openslide), one process per rank, under torchrun or mpirun (Debian's torchrun 1.13 fails
on Python 3.11, so the bench launches with mpirun; the rendezvous is then env:// on localhost with
RANK and WORLD_SIZE taken from OpenMPI's variables):

  mpirun -np 2 --bind-to none /usr/bin/python3 bench/e2e_vs_pytorch.py \
      --cohort C/cohort.csv --patches RUN/patches --batch 32 --steps 90 --threads 1 --workers 1

<patches> holds the per-slide patch lists `slidetrain tile` writes with tiling.export_csv=true
(slide_id,x,y,level,size,tissue,label,read_size; x, y at level 0; label the class index the
trainer uses). The train split's patches are shuffled by DistributedSampler, flipped at random
(horizontal and vertical, p = 0.5 each: slidetrain's augment.flips), normalised with the ImageNet
mean/std (data.mean, data.std) and fed to tools/reference_models.py's small_cnn (slidetrain's
model, same layers) under DDP; SGD with momentum and weight decay. PyTorch 1.13 has no
SyncBatchNorm on the CPU (torch.nn.SyncBatchNorm needs CUDA), so this side uses plain BatchNorm
with DDP's broadcast_buffers (its default), as `slidetrain train train.sync_batchnorm=false` does.

Rank 0 prints `step N t=SECONDS` (time.perf_counter) after each optimizer step; the driver
takes the steady state between two of them.
"""
import argparse
import csv
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import numpy as np  # noqa: E402
import openslide  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from reference_models import build  # noqa: E402

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def train_patches(cohort_csv, patch_dir):
    """[(path, x, y, level, size, label)] of the train split, in cohort then patch-list order."""
    base = os.path.dirname(os.path.abspath(cohort_csv))
    out = []
    with open(cohort_csv) as f:
        for row in csv.DictReader(f):
            if row.get("split", "train") != "train":
                continue
            path = row["path"] if os.path.isabs(row["path"]) else os.path.join(base, row["path"])
            lst = os.path.join(patch_dir, row["slide_id"] + ".csv")
            if not os.path.exists(lst):
                continue
            with open(lst) as p:
                for r in csv.DictReader(p):
                    if int(r["read_size"]) != int(r["size"]):
                        sys.exit("e2e_vs_pytorch.py: %s needs resampling (read_size %s != size %s); "
                                 "use a tiling.level without target_mpp" % (lst, r["read_size"], r["size"]))
                    out.append((path, int(r["x"]), int(r["y"]), int(r["level"]), int(r["size"]),
                                max(0, int(r["label"]))))
    return out


class Patches(torch.utils.data.Dataset):
    def __init__(self, patches, flips):
        self.patches, self.flips = patches, flips
        self.slides = {}  # one handle per slide per worker process

    def __len__(self):
        return len(self.patches)

    def __getitem__(self, i):
        path, x, y, level, size, label = self.patches[i]
        slide = self.slides.get(path)
        if slide is None:
            slide = self.slides[path] = openslide.OpenSlide(path)
        rgba = np.asarray(slide.read_region((x, y), level, (size, size)))
        rgb = rgba[:, :, :3]  # tissue tiles are opaque; slidetrain composites on white the same way
        if self.flips:
            if torch.rand(()) < 0.5:
                rgb = rgb[:, ::-1]
            if torch.rand(()) < 0.5:
                rgb = rgb[::-1]
        t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255.0)
        return (t - MEAN) / STD, label


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cohort", required=True)
    ap.add_argument("--patches", required=True)
    ap.add_argument("--batch", type=int, default=32, help="per rank")
    ap.add_argument("--steps", type=int, default=90)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--no-flips", action="store_true")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if "RANK" not in os.environ and "OMPI_COMM_WORLD_RANK" in os.environ:  # launched by mpirun
        os.environ.update(RANK=os.environ["OMPI_COMM_WORLD_RANK"], WORLD_SIZE=os.environ["OMPI_COMM_WORLD_SIZE"],
                          MASTER_ADDR="127.0.0.1", MASTER_PORT=os.environ.get("MASTER_PORT", "29531"))
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    patches = train_patches(a.cohort, a.patches)
    if rank == 0:
        print("pytorch: %d train patches, %d ranks x batch %d, %d torch thread(s), %d loader worker(s), "
              "torch %s" % (len(patches), world, a.batch, a.threads, a.workers, torch.__version__), flush=True)
    torch.manual_seed(a.seed)
    model = torch.nn.parallel.DistributedDataParallel(build("small_cnn", 2))
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum, weight_decay=a.weight_decay)
    sampler = torch.utils.data.distributed.DistributedSampler(Patches(patches, False), seed=a.seed)
    loader = torch.utils.data.DataLoader(Patches(patches, not a.no_flips), batch_size=a.batch, sampler=sampler,
                                         num_workers=a.workers, drop_last=True)
    model.train()
    step = 0
    while step < a.steps:
        sampler.set_epoch(step)
        for x, y in loader:
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            step += 1
            if rank == 0:
                print("step %d t=%.6f loss=%.4f" % (step, time.perf_counter(), loss.item()), flush=True)
            if step == a.steps:
                break
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
