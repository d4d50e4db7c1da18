"""The HTTP API, served for real: tokens, uploads and their limits, hostile models, jobs, the committed OpenAPI document.

One server (``python -m studio serve`` on a free loopback port, one job at a time, a 200 kB dataset limit) serves
the whole module; its uploads live in a TMPDIR the test can look into.
"""

from __future__ import annotations

import json
import time

import httpx
import numpy as np
import pytest

import studio
from tests.sandbox import hostile
from tests.serve.server import ROOT, running

DATA_LIMIT = 200_000
CARD3 = {"feature_names": ["a", "b", "c"], "task": "classification"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A small gradient-boosted model of our own (skops) and its table; hostile files."""
    import pandas as pd
    import skops.io
    from sklearn.ensemble import GradientBoostingClassifier

    folder = tmp_path_factory.mktemp("serve-files")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(120, 4)), columns=["a", "b", "c", "d"])
    y = (frame["a"] + 0.5 * frame["b"] > 0).astype(int)
    model = GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=0).fit(frame, y)
    skops.io.dump(model, folder / "gbt.skops")
    frame.assign(label=y).to_csv(folder / "table.csv", index=False)
    secret = folder / "secret.txt"
    secret.write_text("TOPSECRET")
    return {
        "model": folder / "gbt.skops", "data": folder / "table.csv", "folder": folder,
        "reader": hostile.scripted("read", folder / "reader.pt", str(secret)),
        "pickle": hostile.pickled(folder / "m.pkl", exec, f"open({str(folder / 'pwned')!r}, 'w').write('x')"),
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-api")
    with running(root / "tmp", "--workers", "1",
                 env={"STUDIO_MAX_DATA_BYTES": str(DATA_LIMIT), "STUDIO_CACHE_DIR": str(root / "cache")}) as s:
        yield s


@pytest.fixture(scope="module")
def uploaded(server, files):
    c = server.client
    model = c.post("/v1/models", files={"file": ("gbt.skops", files["model"].read_bytes())})
    assert model.status_code == 201, model.text
    data = c.post("/v1/datasets", files={"file": ("table.csv", files["data"].read_bytes())})
    assert data.status_code == 201, data.text
    return model.json(), data.json()


def _error(response, status: int) -> str:
    """The one-sentence error of a ``status`` answer."""
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and isinstance(body["error"], str) and body["error"]
    assert "\n" not in body["error"] and "Traceback" not in body["error"]
    return body["error"]


def test_every_request_needs_the_servers_token(server, uploaded):
    model, data = uploaded
    calls = [("GET", "/v1/models", None), ("GET", f"/v1/models/{model['id']}", None),
             ("GET", "/v1/methods", None), ("GET", "/v1/jobs", None),
             ("POST", "/v1/jobs/explain", {"model": model["id"], "data": data["id"], "method": "shap"}),
             ("DELETE", f"/v1/datasets/{data['id']}", None)]
    for headers in ({}, {"Authorization": "Bearer not-the-token-at-all"}, {"Authorization": f"Basic {server.token}"}):
        for method, path, body in calls:
            r = httpx.request(method, server.url + path, json=body, headers=headers)
            assert "token" in _error(r, 401)
            assert r.headers["www-authenticate"] == "Bearer"
    assert server.client.get(f"/v1/datasets/{data['id']}").status_code == 200  # the refused DELETE did nothing
    assert httpx.get(server.url + "/v1/health").json()["status"] == "ok"  # the one open path


def _run(server, kind: str, body: dict) -> dict:
    r = server.client.post(f"/v1/jobs/{kind}", json=body)
    assert r.status_code == 202, r.text
    job = server.wait_job(r.json()["id"])
    assert job["status"] == "done", job
    assert job["progress"] == 1.0 and job["result"] == f"/v1/jobs/{job['id']}/result"
    return server.client.get(job["result"]).json()


@pytest.fixture(scope="module")
def local(files):
    """The same model and data loaded by the Python API (sandboxed, as the server loads them)."""
    model = studio.load_model(files["model"])
    data = studio.load_dataset(files["data"], feature_names=model.feature_names)
    yield model, data
    model.close()


@pytest.mark.parametrize("method, params", [("shap", {}), ("lime", {"num_samples": 300, "seed": 3})])
def test_an_explain_job_gives_the_python_calls_numbers(server, uploaded, local, method, params):
    model, data = uploaded
    got = _run(server, "explain", {"model": model["id"], "data": data["id"], "method": method, "rows": [0, 3, 7],
                                   "params": params, "cache": False})
    want = studio.explain(*local, method, rows=[0, 3, 7], params=params, cache=False).to_dict()
    assert got["schema"] == "studio.explanation/1" and got["cache"] == "miss"
    for key in ("method", "params", "model", "dataset", "rows", "target", "kind", "feature_names", "values",
                "base_values", "checks"):
        assert got[key] == want[key], key  # exactly: the same verb on the same bytes, through JSON
    assert np.abs(np.asarray(got["values"])).sum() > 0


def test_an_assess_job_gives_the_python_calls_numbers(server, uploaded, local):
    model, data = uploaded
    body = {"model": model["id"], "data": data["id"], "methods": ["shap"], "attacks": ["noise"], "rows": [0, 1, 2, 3],
            "severities": [1, 3], "seed": 2}
    got = _run(server, "assess", body)
    want = json.loads(studio.assess(*local, ["shap"], ["noise"], rows=[0, 1, 2, 3], severities=[1, 3],
                                    seed=2, cache=False).to_json())
    assert got["schema"] == "studio.assessment/1"

    def numbers(doc):
        return [r for r in doc["records"] if r["attribute"] != "cost"]

    assert numbers(got) and numbers(got) == numbers(want)
    # the same job again: every scenario comes from the server's cache, with the same numbers
    again = _run(server, "assess", body)
    assert got["provenance"]["grid"]["reused"] == 0
    assert again["provenance"]["grid"] == {**got["provenance"]["grid"], "reused": 2, "computed": 0, "units_reused":
                                           got["provenance"]["grid"]["units_computed"], "units_computed": 0}
    assert numbers(again) == numbers(got)


def _multipart(field: str, name: str, content: bytes) -> tuple[bytes, str]:
    boundary = "studio-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_a_body_declared_too_large_but_never_sent_is_answered_413(server):
    """A client that declares more than the limit and then sends little gets its 413 (after at most the drain
    wait), instead of a connection held open waiting for bytes that never come."""
    import socket
    from urllib.parse import urlsplit

    from studio.serve.uploads import DRAIN_SECONDS

    host, port = urlsplit(server.url).hostname, urlsplit(server.url).port
    head = (f"POST /v1/datasets HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {server.token}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 99999999999\r\n\r\n--b\r\n")
    with socket.create_connection((host, port), timeout=DRAIN_SECONDS + 30) as sock:
        sock.sendall(head.encode())
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply.split(b"\r\n\r\n", 1)[1]) < int(
                reply.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0]):
            chunk = sock.recv(65536)
            assert chunk, reply
            reply += chunk
    status, body = reply.decode().split("\r\n", 1)[0], reply.split(b"\r\n\r\n", 1)[1]
    assert status.startswith("HTTP/1.1 413"), status
    message = json.loads(body)["error"]
    assert "STUDIO_MAX_DATA_BYTES" in message
    assert f"(file {DATA_LIMIT} bytes (195 KiB))" in message  # the configured limit, not the body's bound


def test_an_oversized_upload_is_413_and_nothing_is_stored(server, uploaded):
    before = server.stored()
    big = b"a,b,c,d,label\n" + b"0.5,0.25,0.125,1.0,1\n" * (DATA_LIMIT // 20 + 100)
    assert len(big) > DATA_LIMIT
    # declared too large (Content-Length): refused before a byte is parsed
    message = _error(server.client.post("/v1/datasets", files={"file": ("big.csv", big)}), 413)
    assert f"limit of {DATA_LIMIT} bytes" in message and "STUDIO_MAX_DATA_BYTES" in message  # the configured limit
    # sent in chunks without a length: counted while it streams, refused at the limit, the partial file removed
    body, ctype = _multipart("file", "big.csv", big)
    chunks = (body[i:i + 16384] for i in range(0, len(body), 16384))
    r = server.client.post("/v1/datasets", content=chunks, headers={"content-type": ctype})
    assert f"limit of {DATA_LIMIT} bytes" in _error(r, 413)
    assert server.stored() == before
    # the server goes on: a small upload of the same form is taken
    small, ctype = _multipart("file", "small.csv", big[:5000].rsplit(b"\n", 1)[0] + b"\n")
    ok = server.client.post("/v1/datasets", content=small, headers={"content-type": ctype})
    assert ok.status_code == 201, ok.text
    assert server.client.delete(f"/v1/datasets/{ok.json()['id']}").status_code == 204
    assert server.stored() == before


def test_hostile_models_fail_with_one_message_and_the_server_goes_on(server, uploaded, files):
    model, data = uploaded
    before = server.stored()
    message = _error(server.client.post("/v1/models", files={"file": ("m.pkl", files["pickle"].read_bytes())}), 422)
    assert "pickle" in message
    assert not (files["folder"] / "pwned").exists()
    r = server.client.post("/v1/models", files={"file": ("reader.pt", files["reader"].read_bytes()),
                                                "card": ("reader.card.json", json.dumps(CARD3).encode())})
    assert "TOP" not in _error(r, 422)
    assert server.stored() == before  # refused files are not kept
    assert [m["id"] for m in server.client.get("/v1/models").json()] == [model["id"]]
    methods = server.client.get("/v1/methods", params={"model": model["id"], "data": data["id"]})
    assert methods.status_code == 200
    assert {m["name"]: m["available"] for m in methods.json()}["shap"] is True


def test_bad_requests_get_one_sentence(server, uploaded):
    model, data = uploaded
    c = server.client
    assert "method" in _error(c.post("/v1/jobs/explain", json={"model": model["id"], "data": data["id"],
                                                                "method": "no_such_method"}), 422)
    assert "out of range" in _error(c.post("/v1/jobs/explain", json={"model": model["id"], "data": data["id"],
                                                                      "method": "shap", "rows": [120]}), 422)
    assert "JSON" in _error(c.post("/v1/jobs/explain", content=b"{not json",
                                   headers={"content-type": "application/json"}), 422)
    assert "not valid JSON" in _error(c.post("/v1/jobs/explain", content=b"\x04Mi\x16juh\xff9",  # not even UTF-8
                                             headers={"content-type": "application/json"}), 422)
    assert "no model" in _error(c.post("/v1/jobs/explain", json={"model": "m-" + "0" * 16, "data": data["id"],
                                                                  "method": "shap"}), 404)
    assert "multipart" in _error(c.post("/v1/datasets", json={"file": "x"}), 415)
    assert "unknown form field" in _error(c.post("/v1/datasets", files={"other": ("x.csv", b"a\n1\n")}), 400)
    assert "unknown type" in _error(c.post("/v1/datasets", files={"file": ("x.bin", b"\0\1")}), 422)
    assert _error(c.get("/v1/jobs/j-" + "0" * 16), 404)
    # a malformed id in the path is no upload or job of this token: 404 with one sentence, as an unknown one
    for path in ("/v1/jobs/not-a-job", "/v1/jobs/j-123/result", "/v1/models/x%20y", "/v1/datasets/m-" + "0" * 16):
        assert "for this token" in _error(c.get(path), 404), path
    assert "no job 'not-a-job'" in _error(c.post("/v1/jobs/not-a-job/cancel"), 404)
    # an unknown target is refused at submission (422), not accepted and failed later
    jobs_before = len(c.get("/v1/jobs").json())
    for target, words in (("no_such_class", "not a class of this model"), (7, "out of range")):
        assert words in _error(c.post("/v1/jobs/explain", json={"model": model["id"], "data": data["id"],
                                                                 "method": "shap", "target": target}), 422)
    # so are an assessment's unknown methods, non-attribution methods and severities off the grid
    for change, words in (({"methods": ["no_such"]}, "unknown method"), ({"methods": ["pdp"]}, "local attributions"),
                          ({"severities": [9]}, "severities must be between 0")):
        assert words in _error(c.post("/v1/jobs/assess", json={"model": model["id"], "data": data["id"],
                                                                "methods": ["shap"], **change}), 422)
    # a model and dataset that cannot go together (another table width) too
    narrow = c.post("/v1/datasets", files={"file": ("narrow.csv", b"a,b,target\n1,2,0\n3,4,1\n")}).json()["id"]
    for path, body in (("explain", {"method": "shap"}), ("assess", {"methods": ["shap"]})):
        assert _error(c.post(f"/v1/jobs/{path}", json={"model": model["id"], "data": narrow, **body}), 422)
    assert len(c.get("/v1/jobs").json()) == jobs_before


def test_a_job_can_be_cancelled_queued_or_running(server, uploaded):
    model, data = uploaded
    c = server.client
    slow = {"model": model["id"], "data": data["id"], "method": "lime", "rows": list(range(100)),
            "params": {"num_samples": 5000}, "cache": False}
    running_job = c.post("/v1/jobs/explain", json=slow).json()
    queued = c.post("/v1/jobs/explain", json=dict(slow, rows=[0])).json()  # one worker: it waits
    assert c.post(f"/v1/jobs/{queued['id']}/cancel").json()["status"] == "cancelled"
    assert "cancel it first" in _error(c.delete(f"/v1/models/{model['id']}"), 409)  # the running job holds it
    c.post(f"/v1/jobs/{running_job['id']}/cancel")
    start = time.monotonic()
    assert server.wait_job(running_job["id"])["status"] == "cancelled"
    assert time.monotonic() - start < 30  # stopped, not run to its end
    assert "cancelled" in _error(c.get(f"/v1/jobs/{running_job['id']}/result"), 409)
    assert c.delete(f"/v1/jobs/{queued['id']}").status_code == 204
    assert c.get(f"/v1/jobs/{queued['id']}").status_code == 404


def test_deleting_an_upload_removes_its_file(server, files):
    before = server.stored()
    r = server.client.post("/v1/datasets", files={"file": ("again.csv", files["data"].read_bytes())},
                           data={"label": "label"})
    assert r.status_code == 201 and r.json()["label"] == "label"
    assert len(server.stored()) == len(before) + 1
    assert server.client.delete(f"/v1/datasets/{r.json()['id']}").status_code == 204
    assert server.stored() == before
    assert server.client.get(f"/v1/datasets/{r.json()['id']}").status_code == 404


def test_the_served_openapi_document_is_the_committed_one(server):
    committed = json.loads((ROOT / "docs" / "openapi.json").read_text())
    served = httpx.get(server.url + "/openapi.json").json()
    assert served == committed, ("docs/openapi.json differs from the served document; regenerate it with "
                                 "python -m studio serve --print-openapi > docs/openapi.json")


def test_a_non_loopback_host_needs_the_explicit_flag(capsys):
    from studio.cli import main

    assert main(["serve", "--host", "0.0.0.0", "--port", "8765"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "--allow-remote" in err and "loopback" in err and err.count("\n") == 1


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_each_token_sees_only_its_own_uploads(tmp_path):
    """In process (no model loaded): two tokens, two private folders; a short token is refused."""
    from fastapi.testclient import TestClient

    from studio.serve import create_app

    a, b = "a" * 20, "b" * 20
    with TestClient(create_app(token=[a, b], folder=tmp_path)) as client:
        up = client.post("/v1/datasets", headers={"Authorization": f"Bearer {a}"},
                         files={"file": ("t.csv", b"x,y,label\n1,2,0\n3,4,1\n")})
        assert up.status_code == 201, up.text
        key = up.json()["id"]
        assert client.get("/v1/datasets", headers={"Authorization": f"Bearer {b}"}).json() == []
        assert _error(client.get(f"/v1/datasets/{key}", headers={"Authorization": f"Bearer {b}"}), 404)
        assert _error(client.delete(f"/v1/datasets/{key}", headers={"Authorization": f"Bearer {b}"}), 404)
        assert client.get(f"/v1/datasets/{key}", headers={"Authorization": f"Bearer {a}"}).json()["rows"] == 2
        folders = [p for p in next(tmp_path.glob("studio-serve-*")).iterdir()]
        assert len(folders) == 2 and all((p.stat().st_mode & 0o777) == 0o700 for p in folders)
    assert not list(tmp_path.glob("studio-serve-*"))
    with pytest.raises(studio.StudioError, match="16"):
        create_app(token="short")


def test_stopping_the_server_deletes_every_upload(server, uploaded):
    """Last in the module: SIGTERM ends the server, which removes its private folder with every upload in it."""
    private = [p for p in server.folder.iterdir() if p.name.startswith("studio-serve-")]
    assert len(private) == 1 and any(private[0].rglob("*.model"))
    assert (private[0].stat().st_mode & 0o777) == 0o700
    assert server.stop() in (0, -15)  # uvicorn ends by re-raising the SIGTERM it handled
    assert not private[0].exists()


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_the_hostile_corpus_gets_4xx_and_the_loaders_message(tmp_path):
    """In process: every data and card case of tests/bad_inputs that needs no model run, uploaded through the API."""
    from fastapi.testclient import TestClient

    from studio.serve import create_app
    from tests.bad_inputs.make_corpus import BUILDERS, CASES
    from tests.conftest import MODELS

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    cases = [c for c in CASES if not c.env and c.model is None and c.stage in ("data", "card")
             and (c.data or c.card) and not str(c.data or c.card).startswith("@")]
    for c in cases:  # only these cases' files
        BUILDERS[c.name](corpus)
    assert len(cases) > 30
    token = "c" * 20
    auth = {"Authorization": f"Bearer {token}"}
    wrong = []
    with TestClient(create_app(token=token, folder=tmp_path)) as client:
        for c in cases:
            if c.stage == "data":
                form = {"label": c.label} if c.label else None
                r = client.post("/v1/datasets", headers=auth, data=form,
                                files={"file": (c.data, (corpus / c.data).read_bytes())})
            else:
                r = client.post("/v1/models", headers=auth, files={
                    "file": ("tabular_gbt.skops", (MODELS / "tabular_gbt.skops").read_bytes()),
                    "card": (c.card, (corpus / c.card).read_bytes())})
            body = r.json()
            ok = 400 <= r.status_code < 500 and list(body) == ["error"] and "\n" not in body["error"]
            if not ok or (r.status_code == 422 and c.expect.lower() not in body["error"].lower()):
                wrong.append((c.name, r.status_code, body))
        assert client.get("/v1/datasets", headers=auth).json() == []
    assert not wrong, wrong
