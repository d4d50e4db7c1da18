"""ONNX activations: a torch model exported with torch.onnx.export, captured by onnxruntime, equal the torch hooks."""

from __future__ import annotations

import io

import numpy as np
import pytest

import studio
from tests.activations.conftest import images, small_cnn

CARD = {"input_size": [1, 6, 6], "task": "classification", "class_names": ["a", "b", "c"], "mean": [0.5], "std": [0.25]}


@pytest.fixture(scope="module")
def exported():
    """(torch net, its torch Model, its ONNX Model): conv -> in-place ReLU -> pool -> flatten -> linear."""
    import torch

    net = small_cnn()
    buf = io.BytesIO()
    torch.onnx.export(net, (torch.zeros(2, 1, 6, 6),), buf, input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}}, dynamo=False)
    onnx_model = studio.load_model(buf.getvalue(), name="small_cnn.onnx", card=CARD, sandbox="off")
    return net, studio.wrap_model(net, card=CARD), onnx_model, buf.getvalue()


def test_onnx_capture_equals_the_torch_hook_and_a_manual_forward(exported):
    import torch

    net, torch_model, onnx_model, _ = exported
    data = images()
    g = studio.graph(onnx_model)
    conv = next(n for n in g.nodes if n.op == "Conv")
    gemm = next(n for n in g.nodes if n.op == "Gemm")
    assert conv.layer in g.layers and gemm.layer in g.layers
    got = {}
    for reduce in ("mean", "max"):
        a = got[reduce] = studio.activations(onnx_model, data, conv.layer, reduce=reduce, cache=False)
        b = studio.activations(torch_model, data, "0", reduce=reduce, cache=False)
        np.testing.assert_allclose(a.matrix, b.matrix, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a.peak, b.peak, rtol=1e-5, atol=1e-6)
        assert (a.reduction, a.layer_shape, a.predictions, a.labels) == (b.reduction, b.layer_shape, b.predictions, b.labels)
    with torch.no_grad():  # the conv's output before the in-place ReLU, by hand
        conv_out = net[0]((torch.as_tensor(data.x) - 0.5) / 0.25).numpy()
    np.testing.assert_allclose(a.peak, conv_out.max(axis=(0, 2, 3)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["mean"].matrix, conv_out.mean(axis=(2, 3)), rtol=1e-5, atol=1e-6)
    assert (got["mean"].matrix < 0).any()  # the conv's own output, not the ReLU's
    logits = studio.activations(onnx_model, data, gemm.layer, rows=[4, 2], cache=False)
    np.testing.assert_allclose(logits.matrix, studio.activations(torch_model, data, "4", rows=[4, 2], cache=False).matrix,
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(studio.StudioError, match="layer 'nope' not found in the ONNX graph"):
        studio.activations(onnx_model, data, "nope", cache=False)


def test_sandboxed_onnx_capture_equals_in_process(exported, tmp_path):
    from studio.sandbox import launcher

    if launcher.choose("auto") in ("off", "none"):
        pytest.skip("no sandbox launcher on this machine")
    _, _, local, blob = exported
    path = tmp_path / "small_cnn.onnx"
    path.write_bytes(blob)
    remote = studio.load_model(path, card=CARD)
    try:
        assert getattr(remote, "remote", False)
        data = images()
        layer = next(n.layer for n in studio.graph(remote).nodes if n.op == "Conv")
        a = studio.activations(remote, data, layer, rows=[1, 5, 7])
        b = studio.activations(local, data, layer, rows=[1, 5, 7], cache=False)
        np.testing.assert_array_equal(a.matrix, b.matrix)
        assert a.to_dict() == b.to_dict()
        remote.activations = None  # a hit must not reach the worker
        assert studio.activations(remote, data, layer, rows=[1, 5, 7]).cache == "hit"
    finally:
        remote.close()
