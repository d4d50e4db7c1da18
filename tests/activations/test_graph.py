"""graph(model): node counts, shapes, parameters and multiply-adds equal hand-computed values and torch's own counts."""

from __future__ import annotations

import numpy as np
import pytest

import studio
from studio.activations import Graph
from tests.conftest import MODELS


def test_mlp_graph_equals_hand_computed_values(mlp_model):
    _, model = mlp_model
    g = studio.graph(model)
    assert g.source == "torch.fx"
    assert [n.op for n in g.nodes] == ["input", "Linear", "ReLU", "Linear", "ReLU", "Linear", "output"]
    assert [n.output_shape for n in g.nodes] == [[1, 4], [1, 8], [1, 8], [1, 6], [1, 6], [1, 3], [1, 3]]
    assert [n.params for n in g.nodes] == [0, 4 * 8 + 8, 0, 8 * 6 + 6, 0, 6 * 3 + 3, 0]
    assert [n.macs for n in g.nodes] == [0, 4 * 8, 0, 8 * 6, 0, 6 * 3, 0]
    assert g.total_params == 115 and g.layers == ["0", "1", "2", "3", "4"]
    names = [n.name for n in g.nodes]
    assert g.edges == list(zip(names[:-1], names[1:]))
    assert Graph.from_dict(g.to_dict()).to_dict() == g.to_dict()


def test_resnet18_params_equal_torch_and_residuals_show(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    net = torchvision.models.resnet18(weights=None)
    model = studio.wrap_model(net, card={"input_size": [3, 32, 32], "task": "classification"})
    g = studio.graph(model)
    assert g.total_params == sum(p.numel() for p in net.parameters())
    convs = [n for n in g.nodes if n.op == "Conv2d"]
    assert len(convs) == sum(type(m).__name__ == "Conv2d" for m in net.modules()) == 20
    assert g.nodes[-1].output_shape == [1, 1000]
    conv1 = next(n for n in g.nodes if n.name == "conv1")  # 7x7 stride 2 on 32x32: 64 x 16 x 16 outputs
    assert conv1.output_shape == [1, 64, 16, 16] and conv1.macs == 64 * 16 * 16 * 3 * 7 * 7
    adds = [n for n in g.nodes if n.op == "add"]
    assert len(adds) == 8 and all(sum(e[1] == a.name for e in g.edges) == 2 for a in adds)
    blocks = g.collapse(1)
    assert [n.name for n in blocks.nodes if n.op.startswith("block")] == ["layer1", "layer2", "layer3", "layer4"]
    assert blocks.total_params == g.total_params
    assert ("layer1", "layer2") in blocks.edges


def test_sample_torchscript_graph_counts_every_parameter(cnn):
    g = studio.graph(cnn)
    assert g.total_params == sum(p.numel() for p in cnn.native.parameters())
    assert g.nodes[-1].output_shape == [1, 10]


def test_scripted_residual_graph_reads_the_torchscript_graph():
    import torch
    from torch import nn

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            y = torch.relu(self.conv(x)) + x
            return self.fc(y.mean(dim=(2, 3)))

    net = torch.jit.script(Residual().eval())
    model = studio.wrap_model(net, card={"input_size": [3, 5, 5], "task": "classification"})
    g = studio.graph(model)
    assert g.source == "torchscript"
    conv = next(n for n in g.nodes if n.layer == "conv")
    assert conv.output_shape == [1, 3, 5, 5] and conv.params == 3 * 3 * 9 + 3 and conv.macs == 3 * 25 * 3 * 9
    add = next(n for n in g.nodes if n.op == "add")
    assert {e[0] for e in g.edges if e[1] == add.name} == {"relu", "input"}
    assert g.total_params == 84 + 12 == sum(p.numel() for p in net.parameters())


def test_onnx_graph_matches_the_torch_model_it_was_exported_from(mlp, mlp_onnx):
    torch_layers = [n for n in studio.graph(mlp).nodes if n.op == "Linear"]
    gemms = [n for n in studio.graph(mlp_onnx).nodes if n.op == "Gemm"]
    assert [(n.params, n.macs, n.output_shape) for n in gemms] == [
        (n.params, n.macs, n.output_shape) for n in torch_layers]


def test_models_without_layers_are_refused_in_words(gbt):
    with pytest.raises(studio.StudioError, match="without layers"):
        studio.graph(gbt)


def test_torch_export_program_graph_and_capture_by_node_name():
    import io

    import torch

    from tests.activations.conftest import mlp3, table

    net = mlp3()
    program = torch.export.export(net, (torch.zeros(2, 4),), dynamic_shapes=({0: torch.export.Dim("n")},))
    buf = io.BytesIO()
    torch.export.save(program, buf)
    card = {"feature_names": [f"f{i}" for i in range(4)], "task": "classification"}
    model = studio.load_model(buf.getvalue(), name="mlp3.pt2", card=card, sandbox="off")
    g = studio.graph(model)
    assert [(n.op, n.params, n.macs) for n in g.nodes] == [
        ("input", 0, 0), ("linear", 40, 32), ("relu", 0, 0), ("linear", 54, 48), ("relu", 0, 0), ("linear", 21, 18),
        ("output", 0, 0)]
    data = table()
    act = studio.activations(model, data, g.nodes[1].layer, rows=[0, 1])
    w, b = net[0].weight.detach().double().numpy(), net[0].bias.detach().double().numpy()
    np.testing.assert_allclose(act.matrix, data.x[[0, 1]] @ w.T + b, rtol=1e-5, atol=1e-6)
