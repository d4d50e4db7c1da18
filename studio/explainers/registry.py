"""The explicit registry of explainers.

Each method name (DESIGN.md) maps, per data kind, to ``"module:Class"``;
modules are imported only when a method is used, so ``import studio``
stays fast. Adding a method adds one line here.
"""

from __future__ import annotations

import importlib

from studio.errors import StudioError

REGISTRY: dict[str, dict[str, str]] = {
    # ---- tabular, global -------------------------------------------------------
    "permutation_importance": {"tabular": "studio.explainers.importance:PermutationImportance"},
    # ---- tabular explainers (issue 3) -------------------------------------------
    # ---- image explainers (issue 4) ---------------------------------------------
}

# Where the same name serves tables and images, the order the UI lists them.
SCOPES = ("local", "global")


def names() -> list[str]:
    """Every registered method name."""
    return list(REGISTRY)


def get(name: str, data_kind: str):
    """The explainer instance registered for ``name`` and ``data_kind``."""
    if name not in REGISTRY:
        raise StudioError(f"unknown method {name!r}; known methods: {', '.join(sorted(REGISTRY))}")
    by_kind = REGISTRY[name]
    if data_kind not in by_kind:
        kinds = " and ".join(by_kind)
        raise StudioError(f"method {name!r} works on {kinds} data, not {data_kind} data")
    module_name, cls_name = by_kind[data_kind].split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls()
