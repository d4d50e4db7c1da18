"""Explainers: one file per method family, an explicit registry."""

from studio.explainers.base import Cancelled, Context, Explainer
from studio.explainers.params import Param, ParamSpec
from studio.explainers.registry import REGISTRY, get, names

__all__ = ["Explainer", "Context", "Cancelled", "Param", "ParamSpec", "REGISTRY", "get", "names"]
