"""ResNet-50 v1 in PyTorch, the same function as keras.applications.ResNet50 (env-side, torch).

Built through reproscope.runtime.architectures:resnet50_v1, the entry point manifests name.
"""

from __future__ import annotations

from typing import Any

from torch import nn

RESNET_BN_EPS = 1.001e-5
RESNET50_STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # filters, blocks, stride


class _Bottleneck(nn.Module):
    """ResNet v1 bottleneck as in keras.applications.ResNet50: the stride sits in the first
    1x1 convolution, every convolution has a bias, BatchNorm epsilon 1.001e-5."""

    def __init__(self, in_channels: int, filters: int, stride: int, shortcut: bool) -> None:
        super().__init__()
        out = 4 * filters
        self.conv1 = nn.Conv2d(in_channels, filters, 1, stride=stride)
        self.bn1 = nn.BatchNorm2d(filters, eps=RESNET_BN_EPS)
        self.conv2 = nn.Conv2d(filters, filters, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(filters, eps=RESNET_BN_EPS)
        self.conv3 = nn.Conv2d(filters, out, 1)
        self.bn3 = nn.BatchNorm2d(out, eps=RESNET_BN_EPS)
        self.relu = nn.ReLU()
        self.downsample = (
            nn.Sequential(
                nn.Conv2d(in_channels, out, 1, stride=stride),
                nn.BatchNorm2d(out, eps=RESNET_BN_EPS),
            )
            if shortcut
            else None
        )

    def forward(self, x: Any) -> Any:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + (self.downsample(x) if self.downsample is not None else x))


class ResNet50V1(nn.Module):
    """ResNet-50 v1 (He et al. 2015) exactly as keras.applications.ResNet50 builds it, so
    Keras weights port one to one (reproscope.runtime.convert.keras_resnet).

    torchvision's resnet50 is "v1.5": it puts the stride-2 of each downsampling block in the
    3x3 convolution instead of the first 1x1, and its convolutions have no bias (BatchNorm
    epsilon 1e-5). Same parameter count up to the biases, different function and ~4 % more
    FLOPs; weights of one do not run in the other. torchvision does not install beside the
    pinned torch here, hence this module. Module names follow torchvision (layer1..4,
    conv1/bn1, downsample), input NCHW, output logits (no softmax).
    """

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64, eps=RESNET_BN_EPS)
        self.relu = nn.ReLU()
        # Keras pads with zeros before its max-pool; after a ReLU that equals -inf padding.
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        in_channels, layers = 64, []
        for filters, blocks, stride in RESNET50_STAGES:
            stage = []
            for b in range(blocks):
                stage.append(
                    _Bottleneck(in_channels, filters, stride if b == 0 else 1, shortcut=b == 0)
                )
                in_channels = 4 * filters
            layers.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x: Any) -> Any:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(x.mean(dim=(2, 3)))
