"""Architectures reproscope ships (env-side, torch): ResNet-50 v1 as Keras builds it
(reproscope.runtime.resnet), and variants for ablations of model-definition conventions.

TensorFlow's SAME padding pads asymmetrically (the extra row/column goes bottom/right)
on stride-2 layers; PyTorch-style symmetric padding (k // 2 on every side) shifts the
sampling grid. Weights ported from TensorFlow expect SAME; this builder swaps it for
symmetric padding to measure what the mismatch costs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

# A manifest reaches these only through their entries in runtime/builders.py (torch is
# imported inside the builders, so the workflow's interpreter reads that registry without it).


def efficientnet_lite_symmetric_padding(model_name: str, **kwargs: Any) -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet
    from torch import nn

    model = EfficientNet.from_name(model_name, **kwargs)
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and hasattr(module, "static_padding"):
            module.static_padding = nn.Identity()
            kh, kw = module.kernel_size
            module.padding = (kh // 2, kw // 2)
    return model


def resnet50_v1(num_classes: int = 1000) -> nn.Module:
    """ResNet-50 v1 exactly as keras.applications.ResNet50 builds it (see runtime.resnet)."""
    from reproscope.runtime.resnet import ResNet50V1

    return ResNet50V1(num_classes)
