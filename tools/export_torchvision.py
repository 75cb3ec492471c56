#!/usr/bin/env python3
"""Export torchvision's pretrained weights as a state_dict file for slidetrain's
model.pretrained.

    python3 tools/export_torchvision.py resnet50 resnet50_imagenet.pt
    python3 tools/export_torchvision.py vgg19 vgg19.pt --keep-head

Needs, on your side: PyTorch and torchvision (>= 0.13, for weights="DEFAULT") and internet
access the first time (torchvision downloads the weights into ~/.cache/torch/hub). slidetrain
itself needs neither: it reads the file written here with its own reader (src/train/Checkpoint.cpp).

What it writes: torch.save(model.state_dict(), out) in PyTorch's zip format, with torchvision's
parameter names, which are slidetrain's for these models (docs/models.md). By default the
final classifier layer (ImageNet's 1000 classes: resnet "fc", vgg/alexnet "classifier.6",
densenet "classifier", efficientnet "classifier.1", googlenet "fc") is left out, so it loads
into a slidetrain model with any number of classes: slidetrain reports those keys as missing
and keeps its own initialisation for them. --keep-head keeps them (then model.num_classes
must be 1000, or slidetrain stops with a shape-mismatch error).

Input normalisation: torchvision's weights expect ImageNet statistics, slidetrain's default
data.mean/data.std. For googlenet, torchvision's pretrained model re-normalises its input to
(x - 0.5) / 0.5 internally (transform_input=True), which slidetrain's googlenet does not:
set data.mean: [0.5, 0.5, 0.5] and data.std: [0.5, 0.5, 0.5] instead.
"""
import argparse
import sys

# slidetrain model.name -> torchvision builder name (identical today; kept explicit so a
# slidetrain-only model gives a clear error instead of a torchvision AttributeError).
MODELS = {
    name: name
    for name in [
        "alexnet", "vgg11", "vgg16", "vgg19", "vgg11_bn", "vgg16_bn", "vgg19_bn",
        "resnet18", "resnet34", "resnet50", "densenet121",
        "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "googlenet",
    ]
}


def head_prefix(state_dict):
    """Module prefix of the final classifier layer: the owner of the last key."""
    last = next(reversed(state_dict.keys()))
    return last.rsplit(".", 1)[0]


def export(model, out, keep_head=False):
    """Saves model.state_dict() (without the final layer unless keep_head) to `out`; returns
    (saved keys, dropped keys)."""
    import torch

    sd = model.state_dict()
    dropped = []
    if not keep_head:
        prefix = head_prefix(sd) + "."
        dropped = [k for k in sd if k.startswith(prefix)]
        for k in dropped:
            del sd[k]
    torch.save(sd, out, _use_new_zipfile_serialization=True)
    return list(sd.keys()), dropped


def load_torchvision(name, weights):
    try:
        import torchvision
    except ImportError:
        sys.exit("export_torchvision: torchvision is not installed (pip install torchvision)")
    models = torchvision.models
    if hasattr(models, "get_model"):  # torchvision >= 0.14
        return models.get_model(name, weights=weights)
    builder = getattr(models, name)
    try:
        return builder(weights=weights)  # torchvision 0.13
    except TypeError:
        return builder(pretrained=True)  # older torchvision


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="slidetrain model.name with torchvision weights: " +
                    ", ".join(MODELS))
    ap.add_argument("out", help="output file (e.g. resnet50_imagenet.pt)")
    ap.add_argument("--weights", default="DEFAULT",
                    help="torchvision weights enum name (default: DEFAULT, the best available)")
    ap.add_argument("--keep-head", action="store_true",
                    help="keep the 1000-class ImageNet classifier layer")
    a = ap.parse_args(argv)
    if a.model not in MODELS:
        sys.exit("export_torchvision: no torchvision weights for '%s'; choose one of: %s"
                 % (a.model, ", ".join(MODELS)))
    model = load_torchvision(MODELS[a.model], a.weights)
    if a.model == "googlenet":
        print("note: set data.mean/data.std to [0.5, 0.5, 0.5] for googlenet (see --help)")
    keys, dropped = export(model, a.out, a.keep_head)
    print("wrote %s: %d tensors%s" % (a.out, len(keys),
                                     "; left out the head: " + ", ".join(dropped) if dropped else ""))
    print("use it with:  model.name: %s   model.pretrained: %s" % (a.model, a.out))


if __name__ == "__main__":
    main()
