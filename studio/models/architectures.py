"""Architectures a state dict may name in its card.

Only code that ships with the studio or torchvision builds a network; a
state dict file holds tensors, never code.
"""

from __future__ import annotations

from studio.errors import StudioError


def _small_cnn(in_channels: int = 1, num_classes: int = 10, width: int = 16):
    """A small CNN for small images (the sample digits model).

    Input (N, in_channels, H, W) -> logits (N, num_classes).
    """
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(2 * width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * width, num_classes),
    )


def _mlp(n_features: int, num_classes: int = 2, hidden: int = 32):
    """A two-hidden-layer MLP for tables: (N, n_features) -> (N, num_classes)."""
    from torch import nn

    return nn.Sequential(
        nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
    )


STUDIO_ARCHITECTURES = {"studio.small_cnn": _small_cnn, "studio.mlp": _mlp}


# torchvision's image classifiers (torchvision.models.list_models(module=torchvision.models)
# on torchvision 0.29): what the app's card form offers for a state dict. A card may also
# name any other torchvision model; a test keeps this list equal to torchvision's.
TORCHVISION_CLASSIFIERS = (
    "alexnet", "convnext_base", "convnext_large", "convnext_small", "convnext_tiny", "densenet121", "densenet161",
    "densenet169", "densenet201", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3",
    "efficientnet_b4", "efficientnet_b5", "efficientnet_b6", "efficientnet_b7", "efficientnet_v2_l",
    "efficientnet_v2_m", "efficientnet_v2_s", "googlenet", "inception_v3", "maxvit_t", "mnasnet0_5", "mnasnet0_75",
    "mnasnet1_0", "mnasnet1_3", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "regnet_x_16gf",
    "regnet_x_1_6gf", "regnet_x_32gf", "regnet_x_3_2gf", "regnet_x_400mf", "regnet_x_800mf", "regnet_x_8gf",
    "regnet_y_128gf", "regnet_y_16gf", "regnet_y_1_6gf", "regnet_y_32gf", "regnet_y_3_2gf", "regnet_y_400mf",
    "regnet_y_800mf", "regnet_y_8gf", "resnet101", "resnet152", "resnet18", "resnet34", "resnet50",
    "resnext101_32x8d", "resnext101_64x4d", "resnext50_32x4d", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0",
    "shufflenet_v2_x1_5", "shufflenet_v2_x2_0", "squeezenet1_0", "squeezenet1_1", "swin_b", "swin_s", "swin_t",
    "swin_v2_b", "swin_v2_s", "swin_v2_t", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19",
    "vgg19_bn", "vit_b_16", "vit_b_32", "vit_h_14", "vit_l_16", "vit_l_32", "wide_resnet101_2", "wide_resnet50_2",
)


def architecture_names() -> list[str]:
    """Architectures a card can name, for menus: the studio's own, then torchvision's classifiers (no torch import)."""
    return list(STUDIO_ARCHITECTURES) + list(TORCHVISION_CLASSIFIERS)


HEAD_KEYS = ("fc.weight", "classifier.weight", "head.weight", "heads.head.weight", "head.fc.weight")


def natural_key(key: str):
    """Sort key that orders ``layer.10`` after ``layer.9``."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in key.split(".")]


def infer_num_classes(state_dict) -> int | None:
    """The output size of the model's last linear (or 1x1 conv) layer.

    Known head names first; otherwise the last weight in the file's order.
    """
    for key in HEAD_KEYS:
        if key in state_dict and getattr(state_dict[key], "ndim", 0) in (2, 4):
            return int(state_dict[key].shape[0])
    for key in reversed(list(state_dict)):
        tensor = state_dict[key]
        if key.endswith("weight") and getattr(tensor, "ndim", 0) in (2, 4):
            return int(tensor.shape[0])
    return None


# torchvision families other than image classification: their builders fetch backbone weights from the
# network unless told not to (``weights_backbone``), and their outputs (boxes, masks, flow, clips) are not
# the class scores the studio explains. Refused by name, before torchvision builds anything.
_DOWNLOADS = ", and building it would fetch backbone weights from the network"
_REFUSED_FAMILIES = {
    "detection": ("an object detection model", _DOWNLOADS),
    "segmentation": ("a semantic segmentation model", _DOWNLOADS),
    "optical_flow": ("an optical flow model", ""),
    "video": ("a video model", ""),
    "quantization": ("a quantized model", ""),
}


def check_torchvision_name(name: str) -> None:
    """Refuse an architecture name that is not a torchvision image classifier, by name alone.

    Only ``torchvision.models.list_models(module=torchvision.models)`` (the
    classification builders) is allowed: no builder of theirs downloads
    anything when called with ``weights=None``. Detection, segmentation,
    optical-flow, video and quantized builders are refused with one
    sentence naming the family; they would otherwise fetch backbone weights
    (outbound network) at construction.

    Raises
    ------
    StudioError
        The name is not a torchvision classification model.
    """
    from torchvision import models

    if name in models.list_models(module=models):
        return
    for family, (what, why) in _REFUSED_FAMILIES.items():
        module = getattr(models, family, None)
        if module is not None and name in models.list_models(module=module):
            raise StudioError(
                f"the card names architecture {name!r}, {what}: the studio builds torchvision image classifiers "
                f"only (such as 'resnet18'){why}; export the model to TorchScript or ONNX instead"
            )
    raise StudioError(
        f"the card names architecture {name!r}, which is neither a torchvision model nor one of "
        f"{', '.join(STUDIO_ARCHITECTURES)}; use a name such as 'resnet18' or export the model to TorchScript"
    )


def build_architecture(name: str, args: dict, state_dict) -> "object":
    """Build an untrained network by name and load ``state_dict`` into it strictly."""
    args = dict(args)
    if "num_classes" not in args:
        inferred = infer_num_classes(state_dict)
        if inferred is not None:
            args["num_classes"] = inferred
    if name in STUDIO_ARCHITECTURES:
        factory = STUDIO_ARCHITECTURES[name]
    else:
        import torchvision

        check_torchvision_name(name)

        def factory(**kw):
            return torchvision.models.get_model(name, weights=None, **kw)

    import torch

    def bad_fit(detail):
        raise StudioError(
            f"the weights do not fit architecture {name!r} with {args}: {detail}. "
            "Check the card's 'architecture' and 'architecture_args'"
        )

    # Build on the meta device first (no memory): compare every shape with the file's
    # tensors, so crafted architecture_args cannot make the studio allocate a huge network.
    try:
        with torch.device("meta"):
            skeleton = factory(**args)
    except (TypeError, ValueError, AssertionError, RuntimeError) as exc:
        raise StudioError(f"architecture {name!r} does not accept {args}: {' '.join(str(exc).split())[:200]}") from None
    expected = skeleton.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
        bad_fit(
            (f"missing {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}; " if missing else "")
            + (f"unexpected {', '.join(unexpected[:4])}{' ...' if len(unexpected) > 4 else ''}" if unexpected else "")
        )
    for key, tensor in expected.items():
        if tuple(tensor.shape) != tuple(state_dict[key].shape):
            bad_fit(f"{key} has shape {list(state_dict[key].shape)} in the file but {list(tensor.shape)} in the network")
    del skeleton
    try:
        net = factory(**args)
    except (TypeError, ValueError, AssertionError, RuntimeError) as exc:
        raise StudioError(f"architecture {name!r} does not accept {args}: {exc}") from None
    try:
        net.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()
        detail = " ".join(s.strip() for s in first[:3])[:400]
        raise StudioError(
            f"the weights do not fit architecture {name!r} with {args}: {detail}. "
            "Check the card's 'architecture' and 'architecture_args'"
        ) from None
    return net.eval()
