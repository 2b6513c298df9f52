"""The model builders a manifest (or an ablation or diagnosis variant) may name as
architecture.entry_point: reviewed, fully qualified callables that construct a model, and
nothing else. This module is data (literals only, no imports); adding a builder is a code
change, reviewed like any other. reproscope.runtime.entrypoints checks it on import.

Each entry: "package", the import prefix the resolved callable must be defined in (checked
again inside the environment); "pinned", whether that package must be pinned in the
environment (False for reproscope's own builders); "params", in positional order, each
with a "type" (int, float, bool, str, null; or a list of them) and "min"/"max" (numbers)
or "values" (the only values allowed; every str parameter has them, so none is a path);
"required": the manifest must give it.

Nothing of a framework's own namespace (torch, numpy, tensorflow, keras outside
keras.applications) is a builder: torch.hub.load, torch.load, numpy.load,
torch.utils.cpp_extension.load_inline, torch.save and the like read, write or run files.
"""

# Both EfficientNet-Lite builders take the package's own arguments.
_EFFICIENTNET_LITE_PARAMS = [
    {
        "name": "model_name",
        "type": "str",
        "required": True,
        "values": [
            "efficientnet-lite0",
            "efficientnet-lite1",
            "efficientnet-lite2",
            "efficientnet-lite3",
            "efficientnet-lite4",
        ],
    },
    {"name": "in_channels", "type": "int", "min": 1, "max": 4},
    {"name": "num_classes", "type": "int", "min": 1, "max": 100000},
    {"name": "image_size", "type": "int", "min": 8, "max": 2048},
    {"name": "dropout_rate", "type": "float", "min": 0, "max": 1},
    {"name": "drop_connect_rate", "type": "float", "min": 0, "max": 1},
    {"name": "batch_norm_momentum", "type": "float", "min": 0, "max": 1},
    {"name": "batch_norm_epsilon", "type": "float", "min": 1e-12, "max": 1},
]

BUILDERS = {
    "efficientnet_lite_pytorch:EfficientNet.from_name": {
        "package": "efficientnet_lite_pytorch",
        "pinned": True,
        "params": _EFFICIENTNET_LITE_PARAMS,
    },
    "reproscope.runtime.architectures:efficientnet_lite_symmetric_padding": {
        "package": "reproscope.runtime.architectures",
        "pinned": False,
        "params": _EFFICIENTNET_LITE_PARAMS,
    },
    "reproscope.runtime.architectures:resnet50_v1": {
        "package": "reproscope.runtime.architectures",
        "pinned": False,
        "params": [{"name": "num_classes", "type": "int", "min": 1, "max": 100000}],
    },
    "reproscope.runtime.tinynet:TinyColourNet": {
        "package": "reproscope.runtime.tinynet",
        "pinned": False,
        "params": [
            {"name": "num_classes", "type": "int", "required": True, "min": 1, "max": 100000}
        ],
    },
    "keras.applications:ResNet50": {
        "package": "keras",
        "pinned": True,
        "params": [
            {"name": "include_top", "type": "bool"},
            {"name": "weights", "type": "null", "required": True, "values": [None]},
            {"name": "input_tensor", "type": "null", "values": [None]},
            {"name": "input_shape", "type": "null", "values": [None]},
            {"name": "pooling", "type": ["null", "str"], "values": [None, "avg", "max"]},
            {"name": "classes", "type": "int", "min": 1, "max": 100000},
            {"name": "classifier_activation", "type": ["null", "str"], "values": [None, "softmax"]},
        ],
    },
}
