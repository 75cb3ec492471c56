"""Python side of the state_dict interop tests (tests/models/TransferTest.cpp); run with a Python
that has torch (/usr/bin/python3 with Debian's python3-torch).

  load  <arch> <classes> <weights.pt> <input.pt> <out.bin>
      torch.load a slidetrain weights.pt into the Python twin with strict=True, run the input
      (torch.load(input.pt)["x"], written by C++ stateDictBytes) in eval mode, write the logits
      as raw little-endian float32 to out.bin. Both files are read with plain torch.load (whose
      default is weights_only=True from PyTorch 2.6 on) and, where this torch has the argument
      (>= 1.13), also with an explicit weights_only=True.
  save  <arch> <classes> <dir>
      build the twin (seed 0), run 3 training-mode forwards (running stats move,
      num_batches_tracked = 3), then in eval mode write with torch.save:
        dir/full.pt     model.state_dict()                     (zip format, OrderedDict)
        dir/proto4.pt   the same with pickle_protocol=4
        dir/ddp.pt      keys prefixed "module." (a DDP-wrapped model's state_dict)
        dir/partial.pt  without classifier/fc bias, plus "extra.weight"
        dir/io.pt       {"x": input, "y": eval logits}
  tool  <arch> <classes> <out.pt>
      tools/export_torchvision.py's export() (head left out) applied to the twin built with
      <classes> outputs, as it is applied to a torchvision model with ImageNet weights.
"""
import inspect
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import torch  # noqa: E402
from reference_models import build  # noqa: E402


def main(argv):
    torch.set_num_threads(1)
    mode, arch, classes = argv[1], argv[2], int(argv[3])
    if mode == "load":
        model = build(arch, classes)
        sd = torch.load(argv[4])
        x = torch.load(argv[5])["x"]
        if "weights_only" in inspect.signature(torch.load).parameters:
            safe = torch.load(argv[4], weights_only=True)
            assert list(safe) == list(sd), "weights_only load gives other keys"
            assert torch.equal(torch.load(argv[5], weights_only=True)["x"], x)
        model.load_state_dict(sd, strict=True)
        model.eval()
        with torch.no_grad():
            y = model(x).float().contiguous().view(-1).tolist()
        with open(argv[6], "wb") as f:
            f.write(struct.pack("<%df" % len(y), *y))
        print("torch %s loaded %d tensors, wrote %d logits" % (torch.__version__, len(sd), len(y)))
    elif mode == "save":
        out = argv[4]
        torch.manual_seed(0)
        model = build(arch, classes)
        size = 32
        with torch.no_grad():
            for _ in range(3):
                model(torch.randn(4, 3, size, size) * 2 + 0.5)
        model.eval()
        x = torch.randn(3, 3, size, size)
        with torch.no_grad():
            y = model(x)
        sd = model.state_dict()
        torch.save(sd, os.path.join(out, "full.pt"))
        torch.save(sd, os.path.join(out, "proto4.pt"), pickle_protocol=4)
        torch.save(type(sd)(("module." + k, v) for k, v in sd.items()), os.path.join(out, "ddp.pt"))
        partial = type(sd)(sd)
        head = [k for k in partial if k.startswith(("classifier.", "fc."))][-1]  # last bias
        del partial[head]
        partial["extra.weight"] = torch.ones(2, 2)
        torch.save(partial, os.path.join(out, "partial.pt"))
        torch.save({"x": x, "y": y}, os.path.join(out, "io.pt"))
        print("saved %d tensors (dropped %s)" % (len(sd), head))
    elif mode == "tool":
        from export_torchvision import export
        torch.manual_seed(1)
        keys, dropped = export(build(arch, classes), argv[4])
        print("saved %d tensors, dropped %s" % (len(keys), ",".join(dropped)))
    else:
        raise SystemExit("unknown mode " + mode)


if __name__ == "__main__":
    main(sys.argv)
