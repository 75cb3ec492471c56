"""PyTorch's side of launch/gpu_check.sh's "train_vs_ddp" step: DistributedDataParallel + SyncBatchNorm
(torch.nn.SyncBatchNorm.convert_sync_batchnorm) training images/s on one GPU, for the same model as
slidetrain's (tools/reference_models.py), the same batch, autocast precision and optimizer (SGD,
momentum 0.9, lr 0.01). The data is the easiest PyTorch can have: one uint8 NHWC batch already on
the device, converted and normalised in every step (slidetrain's side reads its patches from slides).

  python3 bench/ddp_step.py --model resnet50 --size 224 --batch 64 --steps 20 --amp bf16 \
      --backend nccl --device cuda

One process, world size 1 (the process group is made here with a file store): PyTorch's
SyncBatchNorm then takes plain batch norm's kernels, as it does on one GPU. Prints one line:
images_per_s=<batch / median step time>.
"""
import argparse
import contextlib
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from reference_models import build  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--amp", default="bf16", choices=["off", "fp16", "bf16"])
    ap.add_argument("--backend", default="nccl")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--threads", type=int, default=4)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    store = tempfile.mktemp(prefix="ddp_step_store_")
    dist.init_process_group(a.backend, init_method="file://" + store, rank=0, world_size=1)
    torch.manual_seed(0)
    model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(build(a.model, 2)).to(dev)
    model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev.index or 0] if dev.type == "cuda" else None)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    u8 = torch.randint(0, 256, (a.batch, a.size, a.size, 3), dtype=torch.uint8).to(dev)
    y = (torch.arange(a.batch) % 2).to(dev)
    mean = torch.tensor([0.485, 0.456, 0.406], device=dev).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=dev).view(1, 3, 1, 1)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(a.amp)
    scaler = torch.amp.GradScaler(dev.type) if a.amp == "fp16" else None

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def step():
        opt.zero_grad()
        x = (u8.permute(0, 3, 1, 2).float().div_(255.0) - mean) / std
        with (torch.autocast(dev.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        sync()

    model.train()
    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print("images_per_s=%.2f" % (a.batch / sorted(times)[len(times) // 2]), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
