"""Model cards: what a model file cannot say about itself."""

from __future__ import annotations

import difflib
import json
import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from studio.errors import StudioError

TASKS = ("classification", "regression")
OUTPUTS = ("logits", "probabilities")
MODALITIES = ("tabular", "image")
MAX_CARD_BYTES = 1_000_000
MAX_NAMES = 100_000
MAX_DESCRIPTION = 100_000


@dataclass
class ModelCard:
    """What a model file cannot say about itself.

    Attributes
    ----------
    task : {"classification", "regression"} or None
        None: inferred from the model.
    class_names : list of str or None
    feature_names : list of str or None
        Tabular models: the input columns, in the model's order.
    input_size : list of int or None
        Image models: ``[channels, height, width]``.
    mean, std : list of float or None
        Per-channel normalisation the model expects; applied by the studio
        exactly once, inside the adapter, to inputs in [0, 1].
    architecture : str or None
        For state dicts: a torchvision model name (``"resnet18"``) or a
        studio architecture (``"studio.small_cnn"``).
    architecture_args : dict
        Keyword arguments for the architecture (``num_classes`` is inferred
        from the weights when absent).
    outputs : {"logits", "probabilities"} or None
        What the network returns; logits pass through softmax. None (the
        default): read from the model at load (torch and ONNX): outputs
        that already are probabilities on every probe row (non-negative,
        summing to 1) get no second softmax, and the model says so in its
        ``notes``; otherwise they are taken as logits.
    output : str or int or None
        Which part of a structured output is the model's output: a dict key
        (``"logits"``) or a tuple/list index (``0``). None: the output must
        be a tensor (or a one-element dict/tuple).
    output_names : list of str or None
        Regression models with several outputs: a name per output
        (default ``"output 0"``, ``"output 1"``, ...).
    description : str
        Free text shown (escaped) in the app and the report.
    modality : {"tabular", "image"} or None
        What the model takes; None: inferred from ``input_size``,
        ``feature_names`` or the model itself.
    extra : dict
        Fields the studio does not know, kept as given (a ``license``, say);
        each is reported once in :attr:`warnings`.

    Every field is documented, with an example card per model kind, in
    ``docs/card.md``.
    """

    task: str | None = None
    class_names: list | None = None
    feature_names: list | None = None
    input_size: list | None = None
    mean: list | None = None
    std: list | None = None
    architecture: str | None = None
    architecture_args: dict = field(default_factory=dict)
    outputs: str | None = None
    output: str | int | None = None
    output_names: list | None = None
    description: str = ""
    modality: str | None = None
    extra: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list, repr=False, compare=False)

    def to_dict(self) -> dict:
        """The card's fields (unknown ones under ``extra``), as JSON-ready values."""
        out = asdict(self)
        out.pop("warnings")
        return out

    def canonical_json(self) -> str:
        """The card as sorted compact JSON (part of the model's cache id).

        Fields added later (``modality``, ``extra``) are left out while they
        hold their defaults, so cards without them keep the cache ids they had.
        """
        out = self.to_dict()
        for name, default in (("modality", None), ("extra", {})):
            if out[name] == default:
                del out[name]
        return json.dumps(out, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, raw: object, source: str = "model card") -> "ModelCard":
        """Validate a parsed card; raise StudioError naming the bad field."""
        if not isinstance(raw, dict):
            raise StudioError(f"{source} must be a JSON object with fields such as 'task' and 'class_names'")
        known = [f for f in cls.__dataclass_fields__ if f not in ("extra", "warnings")]
        fields = {k: v for k, v in raw.items() if k in known}
        extra = {str(k): v for k, v in raw.items() if k not in known}
        if isinstance(raw.get("extra"), dict):  # a card written by to_dict(): its unknown fields, nested
            extra = {**{str(k): v for k, v in raw["extra"].items()}, **{k: v for k, v in extra.items() if k != "extra"}}
        card = cls(**fields, extra=extra)
        card._check(source)
        card.warnings = unknown_field_warnings(extra, known, source)
        for message in card.warnings:
            warnings.warn(message, UserWarning, stacklevel=3)
        return card

    def _check(self, source: str) -> None:
        def bad(msg):
            raise StudioError(f"{source}: {msg}")

        if not isinstance(self.description, str):
            bad("'description' must be text")
        if self.task is not None and not isinstance(self.task, str):
            bad("'task' must be 'classification' or 'regression'")
        if self.task is not None and self.task not in TASKS:
            bad(f"'task' must be 'classification' or 'regression', got {self.task!r}")
        if self.outputs is not None and self.outputs not in OUTPUTS:
            bad(f"'outputs' must be 'logits' or 'probabilities', got {self.outputs!r}")
        if self.output is not None and not (
            isinstance(self.output, str) and 0 < len(self.output) <= 100
            or isinstance(self.output, int) and not isinstance(self.output, bool) and 0 <= self.output < 1000
        ):
            bad("'output' must be a dict key (short text) or a tuple index (0 to 999)")
        for name in ("class_names", "feature_names", "output_names"):
            value = getattr(self, name)
            if value is not None:
                if (
                    not isinstance(value, list) or not value or len(value) > MAX_NAMES
                    or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value)
                ):
                    bad(f"{name!r} must be a non-empty list of names (text), at most {MAX_NAMES}")
                value = [str(v) for v in value]
                if len(set(value)) != len(value):
                    bad(f"{name!r} has duplicate names")
                setattr(self, name, value)
        if self.input_size is not None:
            if (
                not isinstance(self.input_size, list)
                or len(self.input_size) != 3
                or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 8192 for v in self.input_size)
            ):
                bad("'input_size' must be [channels, height, width] with positive integers")
            if self.input_size[0] not in (1, 3, 4):
                bad(f"'input_size' channels must be 1, 3 or 4, got {self.input_size[0]}")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None:
                if not isinstance(value, list) or not value or len(value) > 4 or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value
                ):
                    bad(f"{name!r} must be a list of finite numbers, one per channel")
                if name == "std" and any(v <= 0 for v in value):
                    bad("'std' values must be positive")
                setattr(self, name, [float(v) for v in value])
        if (self.mean is None) != (self.std is None):
            bad("give both 'mean' and 'std', or neither")
        if self.mean is not None and len(self.mean) != len(self.std):
            bad("'mean' and 'std' must have one value per channel")
        if self.mean is not None and self.input_size is not None and len(self.mean) not in (1, self.input_size[0]):
            bad(f"'mean' has {len(self.mean)} values but the input has {self.input_size[0]} channels")
        if self.architecture is not None and not isinstance(self.architecture, str):
            bad("'architecture' must be a name such as 'resnet18'")
        if not isinstance(self.architecture_args, dict):
            bad("'architecture_args' must be an object")
        for key, value in self.architecture_args.items():
            if key.startswith("weights") or key in ("progress", "pretrained"):
                bad(f"'architecture_args' may not set {key!r}: the weights come from the file, never from the network")
            if not isinstance(value, (int, float, str, bool)) or isinstance(value, str) and len(value) > 100:
                bad(f"'architecture_args' value for {key!r} must be a number, short text or true/false")
            if isinstance(value, (int, float)) and not isinstance(value, bool) and not -1e6 <= value <= 1e6:
                bad(f"'architecture_args' value for {key!r} is out of range")
        if self.outputs is not None and not isinstance(self.outputs, str):
            bad("'outputs' must be 'logits' or 'probabilities'")
        if len(self.description) > MAX_DESCRIPTION:
            bad(f"'description' is longer than {MAX_DESCRIPTION} characters")
        if not isinstance(self.description, str):
            bad("'description' must be text")
        if self.architecture is not None and len(self.architecture) > 100:
            bad("'architecture' must be a short name such as 'resnet18'")
        if self.modality is not None and self.modality not in MODALITIES:
            bad(f"'modality' must be 'tabular' or 'image', got {str(self.modality)[:40]!r}")
        if self.modality == "tabular" and self.input_size is not None:
            bad("'modality' is 'tabular' but 'input_size' describes images; remove one of them")
        if self.modality == "image" and self.feature_names is not None:
            bad("'modality' is 'image' but 'feature_names' describes table columns; remove one of them")
        if len(self.extra) > 1000:
            bad(f"it has {len(self.extra)} unknown fields; a card has a few dozen at most")


def unknown_field_warnings(extra: dict, known, source: str = "model card") -> list[str]:
    """One sentence per unknown card field, with a did-you-mean for a near miss (``difflib``)."""
    out = []
    for key in list(extra)[:20]:
        shown = key[:60]
        near = difflib.get_close_matches(key.lower(), list(known), n=1, cutoff=0.75)
        if near:
            out.append(f"{source}: unknown field {shown!r} was kept but not used; did you mean {near[0]!r}?")
        else:
            out.append(
                f"{source}: unknown field {shown!r} was kept but not used by the studio "
                f"(known fields: {', '.join(known)}; see docs/card.md)"
            )
    if len(extra) > 20:
        out.append(f"{source}: {len(extra) - 20} more unknown field(s) were kept but not used")
    return out


def _no_constant(name):
    raise json.JSONDecodeError(f"{name} is not allowed in a card (use a finite number)", name, 0)


def load_card(card) -> ModelCard:
    """Read a card from a path, JSON text/bytes, a dict or a ModelCard."""
    if card is None:
        return ModelCard()
    if isinstance(card, ModelCard):
        return card
    if isinstance(card, dict):
        return ModelCard.from_dict(card)
    source = "model card"
    if isinstance(card, Path) or isinstance(card, str) and not card.lstrip().startswith(("{", "[")) and len(card) < 4096:
        path = Path(card)
        source = f"model card {path.name[:80]!r}"
        try:
            if not path.is_file():
                raise StudioError(f"{source} was not found; check the path")
            if path.stat().st_size > MAX_CARD_BYTES:
                raise StudioError(f"{source} is larger than {MAX_CARD_BYTES} bytes; a card is a small JSON file")
            card = path.read_bytes()
        except OSError as exc:
            raise StudioError(f"{source} could not be read ({exc.strerror or exc}); check the path") from None
    if isinstance(card, bytearray):
        card = bytes(card)
    if not isinstance(card, (str, bytes)):
        raise StudioError(f"a model card must be a path, JSON text, a dict or a ModelCard, not {type(card).__name__}")
    if isinstance(card, str) and len(card) > MAX_CARD_BYTES:
        raise StudioError(f"{source} is larger than {MAX_CARD_BYTES} bytes; a card is a small JSON file")
    if isinstance(card, bytes):
        if len(card) > MAX_CARD_BYTES:
            raise StudioError(f"{source} is larger than {MAX_CARD_BYTES} bytes; a card is a small JSON file")
        try:
            card = card.decode("utf-8")
        except UnicodeDecodeError:
            raise StudioError(f"{source} is not UTF-8 text; save it as a JSON file") from None
    try:
        raw = json.loads(card, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise StudioError(f"{source} is not valid JSON ({exc.msg} at line {exc.lineno}); fix the file or leave it out") from None
    except RecursionError:
        raise StudioError(f"{source} is nested too deeply to be a model card; a card is a flat JSON object") from None
    return ModelCard.from_dict(raw, source)
