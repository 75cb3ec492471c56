"""Python baseline of bench_train_step: images/s of a PyTorch training step (forward,
cross-entropy, backward, SGD with momentum 0.9) on random data, for the Python twin of a
slidetrain zoo model (tools/reference_models.py: same layers, same state_dict keys).

Run by bench_train_step (bench/train_step.cpp) with the same model, batch, size, steps and
threads; needs a Python with torch (/usr/bin/python3 with Debian's python3-torch).

  /usr/bin/python3 bench/train_step.py --model small_cnn --batch 32 --size 128 \
      --steps 40 --warmup 3 --threads 2
prints one line: images_per_s=<batch / median step time> mean_images_per_s=<batch * steps / total>
(the median is robust to other jobs on a shared machine; bench_train_step uses it on both sides)

--ddp BACKEND wraps the model in DistributedDataParallel over a one-process group (file store),
and --sync-batchnorm converts its BatchNorm with torch.nn.SyncBatchNorm.convert_sync_batchnorm
(CUDA only: torch's SyncBatchNorm refuses CPU input, so on the CPU it is left out, saying so):
launch/gpu_check.sh's train_vs_ddp step, PyTorch DDP + SyncBatchNorm beside `slidetrain train`.
At world size 1 torch's SyncBatchNorm takes plain batch norm's kernels, as it does on one GPU.
"""
import argparse
import contextlib
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from reference_models import build  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="small_cnn")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (launch/gpu_check.sh)")
    ap.add_argument("--uint8", action="store_true",
                    help="feed a uint8 NHWC batch converted and normalised in every step (as the trainer's step "
                         "does; bench_train_step passes it)")
    ap.add_argument("--ddp", default="", help="wrap in DistributedDataParallel with this backend (nccl, gloo)")
    ap.add_argument("--sync-batchnorm", action="store_true", help="torch.nn.SyncBatchNorm (CUDA)")
    ap.add_argument("--amp", default="off", choices=["off", "fp16", "bf16"],
                    help="torch.autocast at this precision; fp16 with torch.amp.GradScaler")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    model = build(a.model, a.classes)
    if a.sync_batchnorm:
        if dev.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        else:
            print("train_step.py: --sync-batchnorm ignored on the CPU (torch's SyncBatchNorm needs CUDA)", flush=True)
    model = model.to(dev)
    if a.ddp:
        import tempfile
        import torch.distributed as dist
        dist.init_process_group(a.ddp, init_method="file://" + tempfile.mktemp(prefix="train_step_store_"),
                                rank=0, world_size=1)
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev.index or 0] if dev.type == "cuda" else None)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(a.batch, 3, a.size, a.size).to(dev)
    u8 = torch.randint(0, 256, (a.batch, a.size, a.size, 3), dtype=torch.uint8).to(dev)
    mean = torch.tensor([0.485, 0.456, 0.406], device=dev).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=dev).view(1, 3, 1, 1)
    y = torch.randint(0, a.classes, (a.batch,)).to(dev)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(a.amp)
    # fp16 autocasts on CUDA only, as slidetrain's trainer (on the CPU only the scaler runs).
    autocast = dtype is not None and (a.amp == "bf16" or dev.type == "cuda")
    scaler = None
    if a.amp == "fp16":
        scaler = (torch.amp.GradScaler(dev.type) if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler")
                  else torch.cuda.amp.GradScaler(enabled=dev.type == "cuda"))

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def step():
        opt.zero_grad()
        inputs = (u8.permute(0, 3, 1, 2).float().div_(255.0) - mean) / std if a.uint8 else x
        with (torch.autocast(dev.type, dtype=dtype) if autocast else contextlib.nullcontext()):
            logits = model(inputs)
        loss = F.cross_entropy(logits.float(), y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        sync()

    for _ in range(a.warmup):
        step()
    sync()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    median = sorted(times)[len(times) // 2]
    print("images_per_s=%.3f mean_images_per_s=%.3f" % (a.batch / median, a.batch * len(times) / sum(times)),
          flush=True)


if __name__ == "__main__":
    main()
