"""Schemathesis against the served API: every operation, valid and invalid inputs, no 5xx, errors as one sentence.

The schema is read from the running server (``schemathesis.openapi.from_url`` in a fixture,
``schemathesis.pytest.from_fixture``), so what is tested is what is served. Bounded and deterministic: a fixed
seed, derandomised Hypothesis, a few examples per operation, the coverage phase (boundary and invalid values of
every parameter) and fuzzing, no stateful phase. One model and one dataset are uploaded first, so job submissions
with their ids reach the jobs and their checks, not only the 404 for unknown ids.
"""

from __future__ import annotations

import zlib

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import MODELS, SAMPLE_DATA
from tests.serve.server import running

SEED = 20261130


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-fuzz")
    with running(root / "tmp", "--workers", "1", env={"STUDIO_CACHE_DIR": str(root / "cache")}) as server:
        model = server.client.post("/v1/models", files={"file": ("gbt.skops", (MODELS / "tabular_gbt.skops").read_bytes())})
        data = server.client.post("/v1/datasets", files={"file": ("bc.csv", (SAMPLE_DATA / "breast_cancer.csv").read_bytes())})
        assert model.status_code == 201 and data.status_code == 201, (model.text, data.text)
        server.ids = {"model": model.json()["id"], "data": data.json()["id"]}
        yield server


@pytest.fixture(scope="module")
def api_schema(api):
    config = SchemathesisConfig.from_dict({
        "seed": SEED,
        "request-timeout": 120,  # a loaded CI machine must not turn a slow answer into a failure
        "generation": {"max-examples": 6, "deterministic": True, "mode": "all"},
        "phases": {"examples": {"enabled": False}, "coverage": {"enabled": True}, "fuzzing": {"enabled": True},
                   "stateful": {"enabled": False}},
    })
    return schemathesis.openapi.from_url(api.url + "/openapi.json", config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


def error_is_one_sentence(ctx, response, case):
    """Every 4xx answer is ``{"error": "<one line>"}``."""
    if 400 <= response.status_code < 500:
        body = response.json()
        assert isinstance(body, dict) and list(body) == ["error"], f"error body {body!r} is not {{'error': ...}}"
        text = body["error"]
        assert isinstance(text, str) and text and "\n" not in text and "Traceback" not in text, text


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection, ignored_auth, error_is_one_sentence]


@settings(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@schema.parametrize()
def test_the_api_answers_every_input_without_a_server_error(case, api):
    if isinstance(case.body, dict):  # half of the job submissions name the uploaded model and dataset
        for key in ("model", "data"):
            if key in case.body and zlib.crc32(repr(case.body).encode()) % 2 == 0:
                case.body[key] = api.ids[key]
    case.call_and_validate(headers={"Authorization": f"Bearer {api.token}"}, checks=CHECKS)


def test_the_server_is_still_up_and_its_uploads_intact(api):
    assert api.proc.poll() is None
    models = api.client.get("/v1/models").json()
    assert api.ids["model"] in [m["id"] for m in models]
