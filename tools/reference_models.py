"""Plain-PyTorch twins of slidetrain zoo models, with the same module tree and state_dict keys.

Used by the interop tests (tests/python/state_dict_interop.py) and the train-step benchmark
(bench/train_step.py). No torchvision needed: ResNet is written out here in torchvision's
layout (conv1, bn1, layer1.0.conv1, layer1.0.downsample.0, fc), so torchvision's weights and
slidetrain's weights.pt load into it with strict=True.

    small_cnn(num_classes, dropout=0.0)   # slidetrain's default model (model.name: small_cnn)
    resnet(depth, num_classes)            # depth 18 or 34 (BasicBlock), 50 (Bottleneck)
"""
import torch
from torch import nn


def small_cnn(num_classes=2, dropout=0.0, in_channels=3):
    """4 x [conv 3x3 (no bias) -> BN -> ReLU -> max-pool 2], 16-32-64-64, global avg pool,
    Dropout, Linear: keys features.{0,4,8,12}.weight, features.{1,5,9,13}.*, classifier.1.*"""
    layers, cin = [], in_channels
    for c in (16, 32, 64, 64):
        layers += [nn.Conv2d(cin, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                   nn.MaxPool2d(2)]
        cin = c

    class SmallCnn(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(*layers)
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(64, num_classes))

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    return SmallCnn()


class BasicBlock(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    """torchvision's ResNet v1.5 bottleneck: 1x1, 3x3 (carries the stride), 1x1 x4."""
    expansion = 4

    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != planes * 4:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes * 4))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


BasicBlock.expansion = 1


class ResNet(nn.Module):
    def __init__(self, blocks, num_classes, in_channels=3, block=BasicBlock):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, n in enumerate(blocks):
            planes = 64 << i
            layer = []
            for b in range(n):
                layer.append(block(cin, planes, 2 if (b == 0 and i > 0) else 1))
                cin = planes * block.expansion
            setattr(self, "layer%d" % (i + 1), nn.Sequential(*layer))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet(depth, num_classes=2):
    if depth == 50:
        return ResNet([3, 4, 6, 3], num_classes, block=Bottleneck)
    return ResNet({18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}[depth], num_classes)


def build(name, num_classes=2):
    if name == "small_cnn":
        return small_cnn(num_classes)
    if name in ("resnet18", "resnet34", "resnet50"):
        return resnet(int(name[6:]), num_classes)
    raise SystemExit("reference_models: no Python twin of '%s'" % name)
