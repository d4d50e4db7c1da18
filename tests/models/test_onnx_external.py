"""ONNX models with external data: from a path, a .zip, two uploads; hostile locations and new IR versions refused.

The models are written by ``torch.onnx.export`` (torch 2.14 keeps the weights in
``<name>.onnx.data``) or built with ``onnx.helper``, never copies of the samples.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

import studio
from studio.errors import StudioError


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(folder, torch module, rows): a held-out MLP exported by torch.onnx.export with its weights beside it."""
    import torch

    torch.manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Linear(12, 48), torch.nn.ReLU(), torch.nn.Linear(48, 3)).eval()
    folder = tmp_path_factory.mktemp("onnx-export")
    torch.onnx.export(net, (torch.zeros(2, 12),), str(folder / "mlp.onnx"), dynamic_shapes=({0: "batch"},))
    rows = np.random.default_rng(0).normal(size=(16, 12))
    return folder, net, rows


def _torch_probs(net, rows):
    import torch

    with torch.no_grad():
        return torch.softmax(net(torch.as_tensor(rows, dtype=torch.float32)), dim=1).double().numpy()


def test_torch_export_writes_external_data(exported):
    import onnx

    folder, _, _ = exported
    graph = onnx.load(str(folder / "mlp.onnx"), load_external_data=False)
    assert (folder / "mlp.onnx.data").stat().st_size > 0
    assert any(t.data_location == onnx.TensorProto.EXTERNAL for t in graph.graph.initializer)


def test_loads_from_a_path_with_its_data_beside_it(exported):
    folder, net, rows = exported
    model = studio.load_model(folder / "mlp.onnx")
    assert model.format == "onnx" and model.is_classifier
    np.testing.assert_allclose(model.predict_proba(rows), _torch_probs(net, rows), rtol=1e-5, atol=1e-6)


def test_loads_from_two_uploads_and_from_a_zip_with_the_same_id(exported, tmp_path, monkeypatch):
    folder, net, rows = exported
    graph, weights = (folder / "mlp.onnx").read_bytes(), (folder / "mlp.onnx.data").read_bytes()
    monkeypatch.chdir(tmp_path)  # nothing beside the bytes
    two = studio.load_model(graph, name="mlp.onnx", extra_files={"mlp.onnx.data": weights})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("export/mlp.onnx", graph)
        zf.writestr("export/mlp.onnx.data", weights)
        zf.writestr("export/mlp.card.json", '{"class_names": ["a", "b", "c"]}')
    zipped = studio.load_model(buf.getvalue(), name="mlp.zip")
    beside = studio.load_model(folder / "mlp.onnx")
    assert two.fingerprint == zipped.fingerprint == beside.fingerprint
    assert zipped.class_names == ["a", "b", "c"] and zipped.name == "mlp.onnx"
    for model in (two, zipped):
        np.testing.assert_allclose(model.predict_proba(rows), _torch_probs(net, rows), rtol=1e-5, atol=1e-6)
    # the weights are part of the model's id: other weights, another id (and other outputs)
    changed = bytearray(weights)
    changed[:4] = np.float32(5.0).tobytes()
    other = studio.load_model(graph, name="mlp.onnx", extra_files={"mlp.onnx.data": bytes(changed)})
    assert other.fingerprint != two.fingerprint
    assert not np.allclose(other.output(rows), two.output(rows))


def test_bytes_without_their_data_file_are_refused_even_when_it_lies_in_the_working_directory(exported, tmp_path, monkeypatch):
    """onnxruntime resolves external data against its working directory; the studio reads only the files given."""
    folder, _, _ = exported
    (tmp_path / "mlp.onnx.data").write_bytes((folder / "mlp.onnx.data").read_bytes())
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StudioError, match=r"keeps its weights in 'mlp.onnx.data', which was not given.*Model data file"):
        studio.load_model((folder / "mlp.onnx").read_bytes(), name="mlp.onnx")
    with pytest.raises(StudioError, match=r"given: 'other.data'"):
        studio.load_model((folder / "mlp.onnx").read_bytes(), name="mlp.onnx", extra_files={"other.data": b"x"})


def _tiny_external(location: str, offset: int = 0, length: int = 16):
    """A 2x2 MatMul whose weight is stored externally at ``location``."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 2])
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [w])
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 21)]).SerializeToString()


def test_a_tiny_external_model_runs_on_its_data():
    weights = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    model = studio.load_model(
        _tiny_external("w.bin", 8, 16), name="tiny.onnx", card={"task": "classification", "outputs": "probabilities"},
        extra_files={"w.bin": b"\0" * 8 + weights.tobytes()},
    )
    x = np.array([[1.0, 0.0], [0.5, 0.25]])
    np.testing.assert_allclose(model.output(x), x @ weights, rtol=1e-6)


@pytest.mark.parametrize(
    "location",
    ["../../etc/passwd", "/etc/passwd", "sub/w.bin", "..\\w.bin", "C:w.bin", "..", ".", "w.bin\x00.txt", ""],
)
def test_hostile_locations_are_refused_before_any_file_is_read(location, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "w.bin").write_bytes(b"\0" * 16)
    with pytest.raises(StudioError, match="not a plain file name"):
        studio.load_model(_tiny_external(location), name="evil.onnx", extra_files={"w.bin": b"\0" * 16})
    # from a path too: the file beside the model named by a traversal is never opened
    (tmp_path / "evil.onnx").write_bytes(_tiny_external(location))
    with pytest.raises(StudioError, match="not a plain file name"):
        studio.load_model(tmp_path / "evil.onnx")


def test_a_link_beside_the_model_is_not_followed(tmp_path):
    (tmp_path / "secret").write_bytes(b"\0" * 16)
    (tmp_path / "w.bin").symlink_to(tmp_path / "secret")
    (tmp_path / "m.onnx").write_bytes(_tiny_external("w.bin"))
    with pytest.raises(StudioError, match="links are refused"):
        studio.load_model(tmp_path / "m.onnx")


@pytest.mark.parametrize("offset,length", [(0, 64), (32, 16), (4, -1)])
def test_ranges_outside_the_data_file_are_refused(offset, length):
    with pytest.raises(StudioError, match="truncated|negative"):
        studio.load_model(_tiny_external("w.bin", offset, length), name="m.onnx", extra_files={"w.bin": b"\0" * 16})


def test_external_data_is_bounded_by_the_model_size_limit(monkeypatch):
    monkeypatch.setenv("STUDIO_MAX_MODEL_BYTES", "1000")
    with pytest.raises(StudioError, match="STUDIO_MAX_MODEL_BYTES"):
        studio.load_model(_tiny_external("w.bin"), name="m.onnx", extra_files={"w.bin": b"\0" * 2000})


def test_data_files_for_a_model_without_external_data_are_refused():
    with pytest.raises(StudioError, match="keeps all its weights inside"):
        studio.load_model(_inline_model(), name="m.onnx", extra_files={"x.data": b"1"})
    with pytest.raises(StudioError, match="external data only"):
        studio.load_model(b"PK\x03\x04", name="m.skops", extra_files={"x.data": b"1"})


def _inline_model(ir_version=10, opset=21):
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])
    w = numpy_helper.from_array(np.eye(2, dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [w])
    return helper.make_model(graph, ir_version=ir_version, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


@pytest.mark.parametrize(
    "members,match",
    [
        ({"a.onnx": b"1", "b.onnx": b"2"}, "holds 2 .onnx files"),
        ({"w.bin": b"1"}, "holds 0 .onnx files"),
        ({"../m.onnx": b"1"}, "unsafe path"),
    ],
)
def test_bad_model_zips_are_refused(members, match):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for member, content in members.items():
            zf.writestr(member, content)
    with pytest.raises(StudioError, match=match):
        studio.load_model(buf.getvalue(), name="m.zip")


def test_a_newer_ir_version_names_both_versions_and_how_to_resave():
    import onnxruntime as ort

    with pytest.raises(StudioError) as info:
        studio.load_model(_inline_model(ir_version=99), name="new.onnx")
    message = str(info.value)
    assert "IR version 99" in message and "opset ai.onnx 21" in message and ort.__version__ in message
    top = int(message.split("IR version up to ")[1].split(")")[0])
    assert 10 <= top < 99 and f"m.ir_version = {top}" in message and "onnx.helper.make_model" in message
    # the advice works: the same graph stamped with the supported IR version loads
    import onnx

    resaved = onnx.load_model_from_string(_inline_model(ir_version=99))
    resaved.ir_version = top
    assert studio.load_model(resaved.SerializeToString(), name="new.onnx").output(np.eye(2)).shape == (2, 2)


def test_a_newer_opset_names_both_opsets_and_the_converter():
    with pytest.raises(StudioError, match=r"opset 99 of ai.onnx .*opset up to \d+.*onnx.version_converter"):
        studio.load_model(_inline_model(opset=99), name="new.onnx")
