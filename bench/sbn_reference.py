"""The reference of `bench_gpu_step sbn` (launch/gpu_check.sh): torch.nn.SyncBatchNorm's forward and
backward on one batch, written as raw float32 files for slidetrain's SyncBatchNorm to be compared
with (its ranks each take a share of the batch).

  python3 bench/sbn_reference.py DIR [cuda|cpu]

Writes DIR/{x,gy,w,b}.bin (the batch [8, 16, 12, 12], the upstream gradient, weight, bias) and
DIR/{y,dx,dw,db,rm,rv}_ref.bin: the output, the gradients of sum(y * gy) and the running mean and
variance after one training step (eps 1e-5, momentum 0.1). On CUDA the reference is
torch.nn.SyncBatchNorm's own autograd function (torch.nn.modules._functions.SyncBatchNorm: the
kernels batch_norm_stats, batch_norm_gather_stats_with_counts, batch_norm_elemt,
batch_norm_backward_reduce, batch_norm_backward_elemt) over a one-process NCCL group, TF32 off;
on the CPU, where those kernels do not exist, torch's batch_norm on the whole batch (the same
statistics). Prints "reference=<which>".
"""
import os
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

N, C, H, W = 8, 16, 12, 12
EPS, MOMENTUM = 1e-5, 0.1


def main(out, device):
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(N, C, H, W, generator=g) * 3 + 1
    gy = torch.randn(N, C, H, W, generator=g)
    w = torch.rand(C, generator=g) + 0.5
    b = torch.randn(C, generator=g)
    for name, t in (("x", x), ("gy", gy), ("w", w), ("b", b)):
        t.numpy().astype(np.float32).tofile(os.path.join(out, name + ".bin"))
    dev = torch.device(device)
    xd = x.to(dev).requires_grad_(True)
    wd, bd = w.to(dev).requires_grad_(True), b.to(dev).requires_grad_(True)
    rm, rv = torch.zeros(C, device=dev), torch.ones(C, device=dev)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        import torch.distributed as dist
        from torch.nn.modules._functions import SyncBatchNorm as SyncBatchNormFunction
        store = tempfile.mktemp(prefix="sbn_reference_store_")
        dist.init_process_group("nccl", init_method="file://" + store, rank=0, world_size=1)
        y = SyncBatchNormFunction.apply(xd, wd, bd, rm, rv, EPS, MOMENTUM, dist.group.WORLD, 1)
        which = "torch.nn.SyncBatchNorm (nccl, 1 process) on " + torch.cuda.get_device_name(0)
    else:
        y = F.batch_norm(xd, rm, rv, wd, bd, training=True, momentum=MOMENTUM, eps=EPS)
        which = "torch batch_norm on the CPU (no GPU: the SyncBatchNorm kernels are CUDA only)"
    (y * gy.to(dev)).sum().backward()
    for name, t in (("y_ref", y), ("dx_ref", xd.grad), ("dw_ref", wd.grad), ("db_ref", bd.grad),
                    ("rm_ref", rm), ("rv_ref", rv)):
        t.detach().float().cpu().contiguous().numpy().tofile(os.path.join(out, name + ".bin"))
    print("reference=" + which, flush=True)
    if dev.type == "cuda":
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else ("cuda" if torch.cuda.is_available() else "cpu"))
