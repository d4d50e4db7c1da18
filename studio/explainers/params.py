"""Declared explainer parameters: types, defaults and ranges, stated once.

The CLI flags (``--param key=value``) and the app's widgets are generated
from these declarations, and validation errors say what to do instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from studio.errors import StudioError

_TYPES = {"int": int, "float": float, "bool": bool, "str": str, "list": list}


@dataclass(frozen=True)
class Param:
    """One declared parameter of an explainer.

    Attributes
    ----------
    name : str
    type : str
        ``"int"``, ``"float"``, ``"bool"``, ``"str"`` or ``"list"`` (a list of strings).
    default : Any
    low, high : float or None
        Inclusive bounds for numbers.
    choices : tuple or None
        Allowed values for strings.
    help : str
        One sentence shown in the CLI and as the widget's tooltip.
    fit_low : float or None
        For a sample size: the smallest value "cut to fit" a time budget may give it
        (:func:`studio.cost.estimate`), when ``low`` is too small for a useful result; None: ``low``.
    fit_why : str
        Why ``fit_low`` (a clause the cut's note quotes, e.g. "the score needs enough rows").
    """

    name: str
    type: str
    default: Any
    help: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    fit_low: float | None = None
    fit_why: str = ""

    def coerce(self, value: Any) -> Any:
        """Convert ``value`` (possibly a CLI string) and check it, or raise StudioError."""
        if value is None and self.default is None:
            return None
        try:
            if self.type == "bool":
                if isinstance(value, str):
                    low = value.strip().lower()
                    if low not in ("true", "false", "1", "0", "yes", "no"):
                        raise ValueError(value)
                    value = low in ("true", "1", "yes")
                else:
                    value = bool(value)
            elif self.type == "int":
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError(value)
                value = int(value)
            elif self.type == "float":
                value = float(value)
            elif self.type == "list":
                if isinstance(value, str):
                    value = [v.strip() for v in value.split(",") if v.strip()]
                value = [str(v) for v in value]
            else:
                value = str(value)
        except (TypeError, ValueError):
            raise StudioError(
                f"parameter {self.name!r} must be {self._describe()}, got {value!r}"
            ) from None
        if self.type in ("int", "float"):
            if value != value or (self.low is not None and value < self.low) or (
                self.high is not None and value > self.high
            ):
                raise StudioError(f"parameter {self.name!r} must be {self._describe()}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise StudioError(f"parameter {self.name!r} must be {self._describe()}, got {value!r}")
        return value

    def _describe(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(map(repr, self.choices))
        if self.type in ("int", "float"):
            kind = "an integer" if self.type == "int" else "a number"
            if self.low is not None and self.high is not None:
                return f"{kind} from {self.low:g} to {self.high:g}"
            if self.low is not None:
                return f"{kind} >= {self.low:g}"
            if self.high is not None:
                return f"{kind} <= {self.high:g}"
            return kind
        return {"bool": "true or false", "list": "a comma-separated list", "str": "a string"}[self.type]


@dataclass(frozen=True)
class ParamSpec:
    """The ordered parameter declarations of one explainer."""

    params: tuple = field(default_factory=tuple)

    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def defaults(self) -> dict:
        return {p.name: p.default for p in self.params}

    def validate(self, given: dict | None, method: str = "") -> dict:
        """Fill defaults, coerce types and check ranges; unknown keys are refused."""
        given = dict(given or {})
        known = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            where = f" for {method!r}" if method else ""
            accepted = ", ".join(known) or "none"
            raise StudioError(
                f"unknown parameter(s) {', '.join(unknown)}{where}; accepted: {accepted}"
            )
        return {name: p.coerce(given.get(name, p.default)) for name, p in known.items()}
