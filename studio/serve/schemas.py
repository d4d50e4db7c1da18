"""Pydantic models of every request and response: the OpenAPI document is the API's contract."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ID_PATTERN = {"model": r"^m-[0-9a-f]{16}$", "dataset": r"^d-[0-9a-f]{16}$", "job": r"^j-[0-9a-f]{16}$"}
MAX_ROWS = 10_000
"""Rows one job may name."""
Row = Annotated[int, Field(ge=0, le=2**31 - 1)]


class ErrorBody(BaseModel):
    """Every 4xx answer: one sentence saying what is wrong and what to do."""

    error: str = Field(description="What is wrong and what to do, in one sentence.")


class ModelInfo(BaseModel):
    id: str = Field(pattern=ID_PATTERN["model"])
    name: str = Field(description="The uploaded file's name.")
    format: str = Field(description="skops, torchscript, torch_export, state_dict, safetensors, onnx, ...")
    task: str = Field(description="classification or regression")
    kind: str | None = Field(description="tabular or image (None when the model cannot tell)")
    sandbox: str = Field(description="Where the model runs: bubblewrap, unshare or none.")
    fingerprint: str = Field(description="sha256 of the model's bytes (with ONNX external data: of all files).")
    feature_names: list[str] | None
    class_names: list[str] | None
    bytes: int = Field(ge=0, description="Bytes stored: the model, its card and external data.")
    warnings: list[str] = Field(description="What the card loader noticed (unknown fields, ...).")


class DatasetInfo(BaseModel):
    id: str = Field(pattern=ID_PATTERN["dataset"])
    name: str
    kind: str = Field(description="tabular or image")
    rows: int = Field(ge=0)
    feature_names: list[str] | None
    label: str | None = Field(description="The label column (tables), as given or found.")
    class_names: list[str] | None
    fingerprint: str = Field(description="sha256 over the feature names, values and labels.")
    bytes: int = Field(ge=0)


class ParamInfo(BaseModel):
    name: str
    type: str
    default: Any = None
    low: float | None = None
    high: float | None = None
    choices: list[Any] | None = None
    help: str = ""


class MethodOut(BaseModel):
    name: str
    data_kind: str
    scope: str
    kind: str
    available: bool
    reason: str
    summary: str
    params: list[ParamInfo]


class ExplainRequest(BaseModel):
    """One explanation: ``studio.explain(model, data, method, rows, target, params, cache)``."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(pattern=ID_PATTERN["model"], description="An uploaded model's id.")
    data: str = Field(pattern=ID_PATTERN["dataset"], description="An uploaded dataset's id.")
    method: str = Field(min_length=1, max_length=64, description="A method name (GET /v1/methods).")
    rows: list[Row] | None = Field(None, min_length=1, max_length=MAX_ROWS,
                                   description="Rows to explain (local methods; ICE draws these rows); default [0].")
    target: int | str | None = Field(None, description="Class index or name; null: each row's predicted class.")
    params: dict[str, Any] = Field(default_factory=dict, description="The method's parameters (GET /v1/methods).")
    cache: bool = Field(True, description="Read and write the studio's result cache; false computes afresh.")


class AssessRequest(BaseModel):
    """One assessment: ``studio.assess(model, data, methods, attacks, rows=..., ...)``."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(pattern=ID_PATTERN["model"])
    data: str = Field(pattern=ID_PATTERN["dataset"])
    methods: list[str] = Field(min_length=1, max_length=16, description="Local attribution methods, compared.")
    attacks: list[str] = Field(default_factory=lambda: ["noise"], min_length=1, max_length=16,
                               description="Perturbations (see docs/quality.md).")
    rows: list[Row] | None = Field(None, min_length=1, max_length=MAX_ROWS,
                                   description="Rows assessed; default the first 10.")
    severities: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5], min_length=1, max_length=16)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    top_k: int | None = Field(None, ge=1, le=1_000_000)
    method_params: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                                     description="Parameters per method, e.g. {\"lime\": {...}}.")
    cache: bool = Field(True, description="Keep each finished scenario in the studio's cache and reuse the stored "
                                          "ones (a resubmitted assessment computes only what is missing); false "
                                          "computes afresh.")


JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]


class JobOut(BaseModel):
    id: str = Field(pattern=ID_PATTERN["job"])
    kind: Literal["explain", "assess"]
    status: JobStatus
    progress: float = Field(ge=0, le=1, description="Fraction done, as the method reports it.")
    message: str = Field(description="What the job is doing now.")
    error: str | None = Field(description="Why it failed (status failed), in one sentence.")
    created: str = Field(description="UTC, YYYY-MM-DDTHH:MM:SSZ")
    started: str | None
    finished: str | None
    result: str | None = Field(description="Where to fetch the result once done.")


class ResultDocument(BaseModel):
    """``studio.explanation/1`` (docs/result-schema.md) or ``studio.assessment/1`` (docs/quality.md)."""

    model_config = ConfigDict(extra="allow")

    schema_: Literal["studio.explanation/1", "studio.assessment/1"] = Field(alias="schema")


class Health(BaseModel):
    status: Literal["ok"]
    version: str
