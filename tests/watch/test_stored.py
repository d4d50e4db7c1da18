"""Stored runs: Parquet recordings (every value kind, appending, a crash mid-recording), TensorBoard event files
written by torch's SummaryWriter and MLflow runs written by mlflow's own client, read back exactly; damaged or
hostile files give one StudioError; a stored run lands on the same chart as a live one."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from studio.errors import StudioError
from studio.watch import WindowValue, mlflow_runs, replay, stored_runs, tensorboard_runs
from studio.watch.stored import PARQUET_SCHEMA, Recorder

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _windows(seed=0):
    """One window of each kind, as a client receives them."""
    rng = np.random.default_rng(seed)
    counts, edges = np.histogram(rng.normal(size=50), bins=7)
    return [
        WindowValue("s1", "run-a", "scalar", 0.1 + 1e-17, step=7, first_step=0, window=0, events=8, time=1.5),
        WindowValue("s1", "run-a", "layers", {"conv": 1 / 3, "fc.1": 2.0 ** -60}, step=15, first_step=8, window=1,
                    events=8, dropped=2, errors=1, time=2.5),
        WindowValue("s1", "run-a", "histogram", {"counts": counts, "edges": edges}, step=23, first_step=16,
                    window=2, events=8, time=3.5),
        WindowValue("s1", "run-a", "images", {"images": rng.random((3, 1, 4, 4)).astype(np.float32),
                                              "pred": np.array([1, 2, 3]), "target": np.array([1, 0, 3]),
                                              "loss": rng.random(3)}, step=31, first_step=24, window=3, events=8),
    ]


def _same(a: WindowValue, b: WindowValue):
    for field in ("stream", "run", "kind", "step", "first_step", "window", "events", "dropped", "errors", "time"):
        assert getattr(a, field) == getattr(b, field), field
    if a.kind in ("scalar", "layers"):
        assert a.value == b.value
    else:
        assert a.value.keys() == b.value.keys()
        for k in a.value:
            assert a.value[k].dtype == b.value[k].dtype
            np.testing.assert_array_equal(a.value[k], b.value[k])


def test_a_recording_round_trips_every_kind_exactly_and_appends(tmp_path):
    spec = {"event": "batch", "map": "scalar", "params": {"name": "loss"}}
    rec = Recorder(tmp_path / "r", run="run-a", stream="s1", spec=spec, flush_rows=2)
    first = _windows()
    for v in first:
        rec.write(v)
    rec.close()
    assert rec.parts == 2 and sorted(p.name for p in (tmp_path / "r").iterdir()) == ["part-000000.parquet",
                                                                                     "part-000001.parquet"]
    again = Recorder(tmp_path / "r", run="run-a", stream="s1", spec=spec)  # a later session appends
    later = _windows(1)[:1]
    later[0].window = 4
    again.write(later[0])
    again.close()
    back = replay(tmp_path / "r")
    assert back.run == "run-a" and back.streams["s1"]["params"] == {"name": "loss"}
    got = back.poll()
    assert len(got) == 5 and back.poll() == []
    for a, b in zip(first + later, got):
        _same(a, b)
    import pyarrow.parquet as pq

    assert pq.read_schema(tmp_path / "r" / "part-000002.parquet").metadata[b"studio.watch.schema"] == \
        PARQUET_SCHEMA.encode()
    with pytest.raises(StudioError, match="holds a recording of run-a/s1"):
        Recorder(tmp_path / "r", run="run-b", stream="s1", spec=spec)


def test_a_crash_while_recording_leaves_every_written_part_readable(tmp_path):
    """A process recording with a part every 2 windows is killed (SIGKILL) during its 7th window."""
    script = textwrap.dedent(f"""
        import os, sys, signal
        sys.path.insert(0, {ROOT!r})
        import pyarrow.parquet as pq
        from studio.watch import WindowValue
        from studio.watch.stored import Recorder
        rec = Recorder({str(tmp_path / "crash")!r}, run="r", stream="loss", spec={{}}, flush_rows=2,
                       flush_seconds=3600)
        real = pq.write_table
        def write_half(table, where, **kw):  # the 4th part dies half written, as a crash mid-write would
            if rec.parts == 3:
                real(table, where, **kw)
                with open(where, "r+b") as f:
                    f.truncate(os.path.getsize(where) // 2)
                os.kill(os.getpid(), signal.SIGKILL)
            real(table, where, **kw)
        pq.write_table = write_half
        for i in range(9):
            rec.write(WindowValue("loss", "r", "scalar", i / 7, step=i, first_step=i, window=i, events=1))
    """)
    proc = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert any(p.name.endswith(".tmp") for p in (tmp_path / "crash").iterdir())  # the torn part, never renamed
    got = replay(tmp_path / "crash").poll()
    assert [v.value for v in got] == [i / 7 for i in range(6)] and [v.step for v in got] == list(range(6))


def test_damaged_and_hostile_recordings_give_one_message(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "part-000000.parquet").write_bytes(os.urandom(500))
    with pytest.raises(StudioError, match="not a readable studio.watch recording") as err:
        replay(tmp_path / "junk")
    assert "\n" not in str(err.value)
    (tmp_path / "other").mkdir()
    pq.write_table(pa.table({"a": [1]}), tmp_path / "other" / "part-000000.parquet")
    with pytest.raises(StudioError, match="schema None"):
        replay(tmp_path / "other")
    rec = Recorder(tmp_path / "obj", run="r", stream="s", spec={})
    rec.write(_windows()[2])
    rec.close()
    part = tmp_path / "obj" / "part-000000.parquet"
    table = pq.read_table(part)
    rows = table.to_pylist()
    rows[0]["arrays"][0]["dtype"] = "|O"  # an object array could only be a pickle
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), part)
    with pytest.raises(StudioError, match="not a numeric array"):
        replay(tmp_path / "obj")
    with pytest.raises(StudioError, match="no part-NNNNNN.parquet"):
        replay(tmp_path)


def test_a_stored_run_over_its_byte_limit_is_refused_naming_the_limit(tmp_path, monkeypatch):
    rec = Recorder(tmp_path / "run", run="r", stream="s", spec={})
    for window in _windows():
        rec.write(window)
    rec.close()
    size = sum(p.stat().st_size for p in (tmp_path / "run").glob("*.parquet"))
    monkeypatch.setenv("STUDIO_MAX_STORED_BYTES", str(size - 1))
    with pytest.raises(StudioError, match="STUDIO_MAX_STORED_BYTES"):
        replay(tmp_path / "run")
    monkeypatch.setenv("STUDIO_MAX_STORED_BYTES", str(size))
    assert len(replay(tmp_path / "run").poll()) == len(_windows())


def test_a_file_that_is_not_a_stored_run_is_named_for_what_it_is(tmp_path):
    from studio.watch import stored_runs

    rec = Recorder(tmp_path / "run", run="r", stream="s", spec={})
    rec.write(_windows()[0])
    rec.close()
    with pytest.raises(StudioError, match="one part of a recording, not a stored run; give the folder"):
        stored_runs(tmp_path / "run" / "part-000000.parquet")
    (tmp_path / "wine.csv").write_text("a,b\n1,2\n")
    with pytest.raises(StudioError, match="is a file, not a stored run"):
        stored_runs(tmp_path / "wine.csv")
    assert len(stored_runs(tmp_path / "run")) == 1


@pytest.fixture(scope="module")
def tensorboard_log(tmp_path_factory):
    from torch.utils.tensorboard import SummaryWriter

    path = tmp_path_factory.mktemp("tb") / "past-run"
    rng = np.random.default_rng(0)
    logged = {"loss": [(i * 10, float(rng.random())) for i in range(20)],
              "acc": [(i * 10, float(i) / 20) for i in range(20)]}
    with SummaryWriter(str(path)) as w:
        for tag, points in logged.items():
            for step, value in points:
                w.add_scalar(tag, value, global_step=step)
        w.add_histogram("weights", rng.normal(size=100), global_step=0)  # not a scalar: left out
    return path, logged


def test_tensorboard_scalars_read_back_as_written(tensorboard_log):
    path, logged = tensorboard_log
    [run] = tensorboard_runs(path)
    assert run.run == "past-run" and run.source == "tensorboard" and sorted(run.streams) == ["acc", "loss"]
    got = run.poll()
    for tag, points in logged.items():
        mine = [v for v in got if v.stream == tag]
        assert [v.step for v in mine] == [s for s, _ in points]
        # TensorBoard stores a scalar as float32 (Summary.Value.simple_value): exactly float32 of what was logged
        assert [v.value for v in mine] == [float(np.float32(x)) for _, x in points]
    [only] = stored_runs(path, ["acc"])
    assert list(only.streams) == ["acc"]


def test_damaged_or_forged_event_files_give_one_message(tmp_path):
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "events.out.tfevents.1.host").write_bytes(os.urandom(400))
    with pytest.raises(StudioError) as err:
        tensorboard_runs(tmp_path / "junk")
    assert "\n" not in str(err.value)
    length = struct.pack("<Q", 2**40)  # a forged length with a valid CRC: tensorboard would allocate 1 TiB
    (tmp_path / "forged").mkdir()
    (tmp_path / "forged" / "events.out.tfevents.2.host").write_bytes(
        length + struct.pack("<I", masked_crc32c(length)) + b"x" * 64)
    with pytest.raises(StudioError, match="claims 1099511627776 bytes, past the end"):
        stored_runs(tmp_path / "forged")


@pytest.fixture(scope="module")
def mlruns(tmp_path_factory):
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # mlflow 3 keeps its file store behind this
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("ml") / "mlruns"
    client = MlflowClient(tracking_uri=root.as_uri())
    exp = client.create_experiment("digits")
    logged = {}
    rng = np.random.default_rng(1)
    for name in ("baseline", "wider"):
        run = client.create_run(exp, run_name=name)
        logged[name] = [(step, float(rng.random()) / 3) for step in range(0, 60, 5)]
        for step, value in logged[name]:
            client.log_metric(run.info.run_id, "loss", value, step=step)
        client.log_metric(run.info.run_id, "acc", 0.5, step=0)
        client.set_terminated(run.info.run_id)
    os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
    return root, logged


def test_mlflow_runs_read_back_exactly(mlruns):
    root, logged = mlruns
    runs = {r.run: r for r in mlflow_runs(root)}
    assert set(runs) == {"baseline", "wider"} and "MLFLOW_ALLOW_FILE_STORE" not in os.environ
    for name, points in logged.items():
        got = [v for v in runs[name].poll() if v.stream == "loss"]
        assert [(v.step, v.value) for v in got] == points  # float64, exactly as logged
    [only] = stored_runs(next(p for p in root.glob("*/*") if (p / "metrics").is_dir()), ["loss"])  # one run folder
    assert list(only.streams) == ["loss"]


def test_malformed_or_hostile_mlruns_give_one_message_and_run_nothing(mlruns, tmp_path):
    import shutil

    root, _ = mlruns
    bad = tmp_path / "mlruns"
    shutil.copytree(root, bad)
    marker = tmp_path / "pwned"
    [meta] = [p / "meta.yaml" for p in bad.glob("*/*") if (p / "metrics").is_dir()][:1]
    meta.write_text(f"!!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(StudioError, match="cannot read the MLflow runs") as err:
        mlflow_runs(bad)
    assert "\n" not in str(err.value) and not marker.exists()
    shutil.rmtree(bad)
    shutil.copytree(root, bad)
    metric = next(bad.glob("*/*/metrics/loss"))
    metric.write_text("not a metric line at all\n")
    with pytest.raises(StudioError, match="cannot read the MLflow runs"):
        mlflow_runs(bad)
    with pytest.raises(StudioError, match="not an MLflow mlruns folder"):
        mlflow_runs(tmp_path / "pwned-not-here")


def test_a_stored_run_is_drawn_on_the_live_runs_chart(tensorboard_log, mlruns):
    from studio.charts.live import frame, line_chart
    from studio.ui.live import LiveSession, StreamView

    class Live:  # what LiveSession reads of a live client
        def poll(self):
            return [WindowValue("s1", "digits-cnn", "scalar", 2.0 - i / 10, step=i * 10, window=i) for i in range(3)]

        def close(self):
            pass

    session = LiveSession()
    session.runs["digits-cnn"] = Live()
    session.views[("digits-cnn", "s1")] = StreamView("digits-cnn", "s1", "scalar(loss)", "loss", "scalar", {})
    assert session.add_replay(str(tensorboard_log[0]), chart="loss", tags="loss") == ["past-run (tensorboard)"]
    assert session.add_replay(str(mlruns[0]), tags="loss") == ["baseline (mlflow)", "wider (mlflow)"]
    session.refresh()
    charts = session.charts()
    assert set(charts) == {"loss"}  # the MLflow metric is named loss too: the default chart is its name
    df = frame(charts["loss"]["scalar"])
    assert set(df["series"]) == {"digits-cnn · scalar(loss)", "past-run (tensorboard) · loss",
                                 "baseline (mlflow) · loss", "wider (mlflow) · loss"}
    assert (df["series"] == "past-run (tensorboard) · loss").sum() == 20
    spec = line_chart(charts["loss"]["scalar"], stored=[k for k in charts["loss"]["scalar"] if "(" in k]).to_dict()
    assert spec["encoding"]["strokeDash"]["field"] == "run"  # stored runs dashed, the live one solid
    assert "strokeDash" not in line_chart(charts["loss"]["scalar"]).to_dict()["encoding"]
