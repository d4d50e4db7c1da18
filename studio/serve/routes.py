"""The API's routers, one per resource: models, datasets, methods, jobs (FastAPI's "bigger applications" layout)."""

import hmac
import os
import threading
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from studio.errors import StudioError, last_line
from studio.serve import schemas as s
from studio.serve.jobs import Job
from studio.serve.state import Space, Upload, load_model_upload, new_id, token_digest
from studio.serve.uploads import FIELD_CHARS, Spec, UploadError, read_form


class ApiError(Exception):
    """An answer other than 2xx: HTTP status and one sentence."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


ERROR = {"model": s.ErrorBody}
_DESCRIPTIONS = {
    400: "Malformed request (multipart body, form fields).",
    401: "Missing or wrong bearer token.",
    404: "No such upload or job for this token (a malformed id in the path too).",
    409: "The resource is in a state that does not allow this (a job not finished, an upload in use).",
    413: "Upload over its size limit; nothing was stored.",
    415: "Uploads must be multipart/form-data.",
    422: "The request or the uploaded file cannot be used; the message says why and what to do.",
    429: "The server holds as many jobs as it takes; wait or cancel one.",
}


def errors(*codes) -> dict:
    """OpenAPI responses for these error statuses, each with the ``{"error": ...}`` body."""
    return {code: {**ERROR, "description": _DESCRIPTIONS[code]} for code in (401, 422, *codes)}


bearer = HTTPBearer(auto_error=False, description="The token `python -m studio serve` printed (or --token).")


def current_space(request: Request,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Space:
    """The caller's space, from the bearer token (401 without a known one)."""
    state = request.app.state.studio
    if credentials is None:
        raise ApiError(401, "send the token as the header 'Authorization: Bearer <token>' "
                            "(python -m studio serve printed it when it started)")
    digest = token_digest(credentials.credentials)
    found = None
    for known, space in state.spaces.items():  # compare with every one: the time does not depend on which matched
        if hmac.compare_digest(known, digest):
            found = space
    if found is None:
        raise ApiError(401, "the bearer token is not this server's; use the token it printed when it started")
    return found


SpaceDep = Annotated[Space, Depends(current_space)]
ModelId = Annotated[str, Path(pattern=s.ID_PATTERN["model"], description="A model id (m-...).")]
DatasetId = Annotated[str, Path(pattern=s.ID_PATTERN["dataset"], description="A dataset id (d-...).")]
JobId = Annotated[str, Path(pattern=s.ID_PATTERN["job"], description="A job id (j-...).")]

_load_slots = threading.BoundedSemaphore(2)  # model loads (each starts a sandbox worker) at once


def _state(request: Request):
    return request.app.state.studio


def _find(table: dict, key: str, what: str) -> Upload:
    upload = table.get(key)
    if upload is None:
        raise ApiError(404, f"no {what} {key} for this token; list them with GET /v1/{what}s")
    return upload


def _multipart(fields: dict, required: list, description: str) -> dict:
    """openapi_extra for an endpoint that streams its multipart body itself."""
    return {"requestBody": {"required": True, "description": description, "content": {"multipart/form-data": {
        "schema": {"type": "object", "properties": fields, "required": required, "additionalProperties": False}}}}}


def _binary(description: str) -> dict:
    return {"type": "string", "format": "binary", "description": description}


# ---- models --------------------------------------------------------------------------------------------------------
models = APIRouter(prefix="/v1/models", tags=["models"])


def _model_info(upload: Upload, model) -> dict:
    size = sum(os.path.getsize(p) for p in (upload.path, upload.card, *upload.extra.values()) if p is not None)
    names = model.feature_names
    return s.ModelInfo(
        id=upload.id, name=upload.name, format=model.format, task=model.task, kind=model.kind,
        sandbox=getattr(model, "sandbox", "off"), fingerprint=model.fingerprint,
        feature_names=[str(n) for n in names] if names else None,
        class_names=[str(n) for n in model.class_names] if model.class_names else None,
        bytes=size, warnings=[str(w) for w in model.card.warnings],
    ).model_dump()


def _upload_count(space: Space, state) -> None:
    if space.count() >= state.limits.uploads:
        raise ApiError(409, f"this token holds {space.count()} uploads, the most it may; delete one first "
                            "(DELETE /v1/models/{id} or /v1/datasets/{id})")


def _name(part, what: str) -> str:
    name = (part.filename or "").strip()
    if not name or name in (".", ".."):
        raise ApiError(422, f"the {what} has no file name; send it as a file (curl -F 'file=@model.skops') so its "
                            "suffix says its format")
    return name[:255]


@models.post("", status_code=201, response_model=s.ModelInfo, responses=errors(400, 409, 413, 415),
             summary="Upload a model, with its card and ONNX external data (optional)",
             openapi_extra=_multipart({
                 "file": _binary("The model file: .skops, .pt (TorchScript or state dict), .pt2, .safetensors, "
                                 ".onnx (or a .zip of an ONNX model and its data), XGBoost/LightGBM/CatBoost files."),
                 "card": _binary("The model card (JSON, docs/card.md)."),
                 "external_data": _binary("An ONNX model's external data file, named as the graph names it."),
             }, ["file"], "The model is loaded in a sandboxed worker before this answers; a file that cannot be "
                          "loaded is refused (422) and not kept."))
async def upload_model(request: Request, space: SpaceDep):
    """Store a model and load it in the sandbox; answers what was loaded."""
    state = _state(request)
    _upload_count(space, state)
    limits = state.limits
    advice = "raise it with the environment variable STUDIO_MAX_MODEL_BYTES (the server's)"
    spec = Spec(files={"file": limits.model_bytes, "card": limits.card_bytes, "external_data": limits.model_bytes},
                required=("file",), limit_advice={"file": advice, "external_data": advice, "upload": advice,
                                                  "card": "a card is a small JSON file"})
    parts = await _read(request, space, spec)
    try:
        name = _name(parts["file"], "model file")
        extra = {}
        if "external_data" in parts:
            extra[_name(parts["external_data"], "external data file")] = parts["external_data"]
            if parts["file"].size + parts["external_data"].size > limits.model_bytes:
                raise ApiError(413, f"the model with its external data is over the upload limit of "
                                    f"{limits.model_bytes} bytes; {advice}")
        uid = new_id("m")
        upload = Upload(uid, name, _keep(parts["file"], space, uid + ".model"), info={})
        if "card" in parts:
            upload.card = _keep(parts["card"], space, uid + ".card.json")
        for i, (ext_name, part) in enumerate(extra.items()):
            upload.extra[ext_name] = _keep(part, space, f"{uid}.data{i}")
        model = await run_in_threadpool(_load_bounded, upload)
        upload.info = _model_info(upload, model)
    except BaseException:
        for part in parts.values():
            if part.path is not None:
                part.path.unlink(missing_ok=True)
        if "upload" in locals():
            upload.delete()
        raise
    state.keep_model(upload.id, model)
    with space.lock:
        space.models[upload.id] = upload
    return upload.info


def _load_bounded(upload: Upload):
    with _load_slots:
        return load_model_upload(upload)


async def _read(request: Request, space: Space, spec: Spec) -> dict:
    try:
        return await read_form(request, space.folder, spec, _state(request).limits.drain_bytes)
    except UploadError as exc:
        raise ApiError(exc.status, str(exc)) from None


def _keep(part, space: Space, name: str):
    path = space.folder / name
    os.replace(part.path, path)
    part.path = path
    return path


def add_listing(router: APIRouter, what: str, table: str, key_type, info) -> None:
    """GET list, GET one and DELETE for an upload resource (models, datasets)."""

    @router.get("", response_model=list[info], responses=errors(), summary=f"List this token's {what}s",
                name=f"list_{what}s")
    def listing(space: SpaceDep):
        return [u.info for u in list(getattr(space, table).values())]

    @router.get(f"/{{{what}_id}}", response_model=info, responses=errors(404), summary=f"One {what}",
                name=f"get_{what}")
    def one(key: Annotated[key_type, Path(alias=f"{what}_id")], space: SpaceDep):
        return _find(getattr(space, table), key, what).info

    @router.delete(f"/{{{what}_id}}", status_code=204, responses=errors(404, 409),
                   summary=f"Delete a {what} and its files", name=f"delete_{what}")
    def delete(key: Annotated[key_type, Path(alias=f"{what}_id")], space: SpaceDep, request: Request):
        _delete(space, getattr(space, table), key, what, _state(request))
        return Response(status_code=204)


add_listing(models, "model", "models", ModelId, s.ModelInfo)


def _delete(space: Space, table: dict, key: str, what: str, state) -> None:
    upload = _find(table, key, what)
    busy = [j.id for j in list(space.jobs.values()) if j.active and key in j.uses]
    if busy:
        raise ApiError(409, f"{what} {key} is used by job {busy[0]}, still {space.jobs[busy[0]].status}; "
                            f"cancel it first (POST /v1/jobs/{busy[0]}/cancel)")
    with space.lock:
        table.pop(key, None)
    state.forget(key)
    upload.delete()


# ---- datasets ------------------------------------------------------------------------------------------------------
datasets = APIRouter(prefix="/v1/datasets", tags=["datasets"])


def _dataset_info(upload: Upload, data) -> dict:
    return s.DatasetInfo(
        id=upload.id, name=upload.name, kind=data.kind, rows=len(data),
        feature_names=[str(n) for n in data.feature_names] if data.feature_names else None,
        label=data.label, class_names=[str(c) for c in data.class_names] if data.class_names else None,
        fingerprint=data.fingerprint, bytes=os.path.getsize(upload.path),
    ).model_dump()


def _load_dataset(upload: Upload):
    import studio

    try:
        return studio.load_dataset(upload.path.read_bytes(), name=upload.name, label=upload.label)
    except StudioError:
        raise
    except Exception as exc:  # noqa: BLE001 -- a reader's own error on a crafted file: the file is the problem
        raise StudioError(f"dataset {upload.name!r} could not be read: {type(exc).__name__}: {last_line(exc)}") \
            from None


@datasets.post("", status_code=201, response_model=s.DatasetInfo, responses=errors(400, 409, 413, 415),
               summary="Upload a dataset",
               openapi_extra=_multipart({
                   "file": _binary("CSV, Parquet, .zip of class folders, or .npz with x and optional y."),
                   "label": {"type": "string", "maxLength": FIELD_CHARS,
                             "description": "The label column of a table (default: target, label, y or class)."},
               }, ["file"], "The dataset is read (bounded, data only) before this answers; a file that cannot be "
                            "read is refused (422) and not kept."))
async def upload_dataset(request: Request, space: SpaceDep):
    """Store a dataset and read it; answers what was read."""
    state = _state(request)
    _upload_count(space, state)
    spec = Spec(files={"file": state.limits.data_bytes}, fields=("label",), required=("file",),
                limit_advice={"file": "sample it, or raise the server's STUDIO_MAX_DATA_BYTES",
                              "upload": "sample it, or raise the server's STUDIO_MAX_DATA_BYTES"})
    parts = await _read(request, space, spec)
    try:
        name = _name(parts["file"], "dataset file")
        label = None
        if "label" in parts:
            label = bytes(parts["label"].value).decode("utf-8", "replace")
            if len(label) > FIELD_CHARS:
                raise ApiError(422, f"the label is over {FIELD_CHARS} characters; it names a column of the table")
            label = label.strip() or None
        uid = new_id("d")
        upload = Upload(uid, name, _keep(parts["file"], space, uid + ".data"), info={}, label=label)
        data = await run_in_threadpool(_load_dataset, upload)
        upload.info = _dataset_info(upload, data)
    except BaseException:
        if parts["file"].path is not None:
            parts["file"].path.unlink(missing_ok=True)
        raise
    with space.lock:
        space.datasets[upload.id] = upload
    return upload.info


add_listing(datasets, "dataset", "datasets", DatasetId, s.DatasetInfo)


# ---- methods -------------------------------------------------------------------------------------------------------
methods = APIRouter(prefix="/v1/methods", tags=["methods"])


@methods.get("", response_model=list[s.MethodOut], responses=errors(404),
             summary="Every method, available or not, with the reason (for a model and dataset when given)")
def list_methods(space: SpaceDep, request: Request,
                 model: Annotated[str | None, Query(pattern=s.ID_PATTERN["model"])] = None,
                 data: Annotated[str | None, Query(pattern=s.ID_PATTERN["dataset"])] = None):
    import studio

    state = _state(request)
    m = state.model(_find(space.models, model, "model")) if model else None
    d = state.dataset(_find(space.datasets, data, "dataset"), m) if data else None
    return [info.to_dict() for info in studio.methods(m, d)]


# ---- jobs ----------------------------------------------------------------------------------------------------------
jobs = APIRouter(prefix="/v1/jobs", tags=["jobs"])


def _check_rows(rows, upload: Upload) -> None:
    """Rows beyond the dataset: 422 now rather than a failed job."""
    n = upload.info["rows"]
    bad = [r for r in rows or [] if r >= n]
    if bad:
        raise StudioError(f"row {bad[0]} is out of range; the dataset has {n} rows (0 to {n - 1})")


def _check_pair(state, mup: Upload, dup: Upload):
    """The model and dataset, aligned: a pair that cannot go together (an image model and a table, another
    width) is a 422 now rather than a job that fails. Returns ``(model, data)``."""
    model = state.model(mup)
    return model, state.dataset(dup, model).aligned_to(model)


def _job_out(job: Job) -> dict:
    return s.JobOut(
        id=job.id, kind=job.kind, status=job.status, progress=job.progress, message=job.message, error=job.error,
        created=job.created, started=job.started, finished=job.finished,
        result=f"/v1/jobs/{job.id}/result" if job.status == "done" else None,
    ).model_dump()


def _submit(space: Space, state, kind: str, uses: tuple, work) -> dict:
    job = Job(kind, uses=uses)
    with space.lock:
        finished = [k for k, j in space.jobs.items() if not j.active]
        for k in finished[:max(0, len(space.jobs) + 1 - state.limits.jobs_kept)]:
            del space.jobs[k]
        state.runner.submit(job, work)
        space.jobs[job.id] = job
    return _job_out(job)


@jobs.post("/explain", status_code=202, response_model=s.JobOut, responses=errors(404, 429),
           summary="Submit an explanation (studio.explain); poll GET /v1/jobs/{id}")
def submit_explain(req: s.ExplainRequest, space: SpaceDep, request: Request):
    import studio
    from studio.explainers import registry

    state = _state(request)
    mup, dup = _find(space.models, req.model, "model"), _find(space.datasets, req.data, "dataset")
    explainer = registry.get(req.method, dup.info["kind"])  # an unknown method or bad params: 422 now, not later
    explainer.params.validate(req.params, req.method)
    _check_rows(req.rows, dup)
    model, aligned = _check_pair(state, mup, dup)
    if req.target is not None:  # an unknown class or output: 422 now, not a job that fails
        from studio.api import requested_target

        requested_target(model, aligned, req.target, explainer.scope)

    def work(job):
        model = state.model(mup)
        data = state.dataset(dup, model)
        exp = studio.explain(model, data, req.method, rows=req.rows, target=req.target, params=req.params,
                             cache=req.cache, progress=job.report, cancel=job.cancelled,
                             timeout=state.limits.job_seconds)
        return exp.to_json()

    return _submit(space, state, "explain", (req.model, req.data), work)


@jobs.post("/assess", status_code=202, response_model=s.JobOut, responses=errors(404, 429),
           summary="Submit an assessment of explanation quality (studio.assess); poll GET /v1/jobs/{id}")
def submit_assess(req: s.AssessRequest, space: SpaceDep, request: Request):
    import studio
    from studio.quality.assess import check_grid

    state = _state(request)
    mup, dup = _find(space.models, req.model, "model"), _find(space.datasets, req.data, "dataset")
    # unknown methods or attacks, severities off the grid, rows beyond the data: 422 now, not a job that fails
    check_grid(req.methods, req.attacks, req.severities, kind=dup.info["kind"])
    _check_rows(req.rows, dup)
    _check_pair(state, mup, dup)

    def work(job):
        model = state.model(mup)
        data = state.dataset(dup, model)
        result = studio.assess(model, data, req.methods, req.attacks, rows=req.rows, severities=req.severities,
                               seed=req.seed, top_k=req.top_k, method_params=req.method_params or None,
                               progress=job.report_or_stop, cache=req.cache)
        return result.to_json()

    return _submit(space, state, "assess", (req.model, req.data), work)


@jobs.get("", response_model=list[s.JobOut], responses=errors(), summary="This token's jobs, oldest first")
def list_jobs(space: SpaceDep):
    return [_job_out(j) for j in list(space.jobs.values())]


@jobs.get("/{job_id}", response_model=s.JobOut, responses=errors(404), summary="A job's status and progress")
def get_job(job_id: JobId, space: SpaceDep):
    return _job_out(_job(space, job_id))


def _job(space: Space, job_id: str) -> Job:
    job = space.jobs.get(job_id)
    if job is None:
        raise ApiError(404, f"no job {job_id} for this token; list them with GET /v1/jobs")
    return job


@jobs.post("/{job_id}/cancel", status_code=202, response_model=s.JobOut, responses=errors(404),
           summary="Ask a job to stop; it ends as cancelled at its next progress point")
def cancel_job(job_id: JobId, space: SpaceDep):
    job = _job(space, job_id)
    if job.active:
        job.cancel()
    return _job_out(job)


@jobs.get("/{job_id}/result", response_model=s.ResultDocument, responses=errors(404, 409),
          summary="A finished job's result: studio.explanation/1 or studio.assessment/1")
def job_result(job_id: JobId, space: SpaceDep):
    job = _job(space, job_id)
    if job.status != "done":
        why = {"failed": f"it failed: {job.error}", "cancelled": "it was cancelled"}.get(
            job.status, f"it is {job.status} ({job.progress:.0%}); poll GET /v1/jobs/{job.id} until it is done")
        raise ApiError(409, f"job {job.id} has no result: {why}")
    return Response(job.result, media_type="application/json")


@jobs.delete("/{job_id}", status_code=204, responses=errors(404), summary="Cancel a job if running and forget it")
def delete_job(job_id: JobId, space: SpaceDep):
    job = _job(space, job_id)
    job.cancel()
    with space.lock:
        space.jobs.pop(job_id, None)
    return Response(status_code=204)
