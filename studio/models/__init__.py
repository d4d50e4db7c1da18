"""Model formats, safe loaders and the Model adapter."""

from studio.models.adapter import Model, OnnxModel, SklearnModel, TorchModel
from studio.models.card import ModelCard, load_card
from studio.models.loaders import check_tree_bounds, detect_format, load_model, wrap_model

__all__ = [
    "Model",
    "SklearnModel",
    "TorchModel",
    "OnnxModel",
    "ModelCard",
    "load_card",
    "load_model",
    "wrap_model",
    "detect_format",
    "check_tree_bounds",
]
