"""activations(): hooked values equal a direct forward to the layer; reductions, dead neurons, groups, projections."""

from __future__ import annotations

import numpy as np
import pytest

import studio
from studio.activations import Activations, dead_neurons
from tests.activations.conftest import images, mlp3, table


def test_linear_layer_equals_x_w_plus_b(mlp_model):
    net, model = mlp_model
    data = table()
    act = studio.activations(model, data, "0", rows=[3, 0, 7])
    w = net[0].weight.detach().double().numpy()
    b = net[0].bias.detach().double().numpy()
    x = data.x[[3, 0, 7]]
    np.testing.assert_allclose(act.matrix, x @ w.T + b, rtol=1e-5, atol=1e-6)
    assert act.reduction == "none" and act.layer_shape == [8] and act.neuron_names[:2] == ["n0", "n1"]
    assert act.rows.tolist() == [3, 0, 7]


def test_batches_give_the_rows_of_one_pass(mlp_model):
    _, model = mlp_model
    data = table()
    whole = studio.activations(model, data, "2")
    batched = studio.activations(model, data, "2", batch_size=7, cache=False)
    np.testing.assert_allclose(batched.matrix, whole.matrix, rtol=1e-6)
    np.testing.assert_array_equal(batched.peak, whole.peak)


def test_conv_channels_are_reduced_by_spatial_mean_and_max(cnn_model):
    import torch

    net, model = cnn_model
    data = images()
    with torch.no_grad():
        conv = net[0](torch.as_tensor(data.x)).numpy()  # (n, 4, 6, 6)
    mean = studio.activations(model, data, "0")
    np.testing.assert_allclose(mean.matrix, conv.mean(axis=(2, 3)), rtol=1e-5, atol=1e-6)
    assert mean.reduction == "spatial mean over 6x6" and mean.neuron_names == ["ch0", "ch1", "ch2", "ch3"]
    peak = studio.activations(model, data, "0", reduce="max")
    np.testing.assert_allclose(peak.matrix, conv.max(axis=(2, 3)), rtol=1e-6)
    np.testing.assert_allclose(mean.peak, conv.max(axis=(0, 2, 3)), rtol=1e-6)


def test_in_place_relu_after_the_conv_does_not_change_the_captured_output(cnn_model):
    import torch

    net, model = cnn_model
    assert net[1].inplace
    data = images()
    with torch.no_grad():
        conv = net[0](torch.as_tensor(data.x)).numpy()
    act = studio.activations(model, data, "0")
    assert (act.matrix < 0).any()  # the ReLU would have zeroed these
    np.testing.assert_allclose(act.matrix, conv.mean(axis=(2, 3)), rtol=1e-5, atol=1e-6)


def test_a_neuron_with_a_very_negative_bias_is_dead():
    import torch

    net = mlp3()
    with torch.no_grad():
        net[0].bias[5] = -1e3
    model = studio.wrap_model(net, card={"feature_names": [f"f{i}" for i in range(4)], "task": "classification"})
    act = studio.activations(model, table(), "1")
    assert act.dead.tolist() == [i == 5 for i in range(8)] and act.n_dead == 1
    assert act.to_dict()["dead"] == [5]
    counts = dead_neurons(model, table())
    assert list(counts) == ["0", "1", "2", "3", "4"] and counts["1"] == (1, 8)
    for layer, (n_dead, n) in counts.items():
        one = studio.activations(model, table(), layer)
        assert (one.n_dead, len(one.neuron_names)) == (n_dead, n)


def test_group_means_and_the_difference_order_equal_numpy(mlp_model):
    _, model = mlp_model
    data = table()
    act = studio.activations(model, data, "3")
    groups = act.groups_by("label")
    names, means, counts = act.group_means(groups)
    for name, row, count in zip(names, means, counts):
        members = np.asarray(act.labels) == name
        assert count == members.sum()
        np.testing.assert_allclose(row, act.matrix[members].mean(axis=0), rtol=1e-6)
    correct = act.correct
    assert correct is not None and correct.tolist() == [a == p for a, p in zip(act.labels, act.predictions)]
    a, b = act.matrix[~correct].mean(axis=0), act.matrix[correct].mean(axis=0)
    order, diff = act.order_by_difference(~correct, correct)
    np.testing.assert_allclose(diff, a - b, rtol=1e-5, atol=1e-7)
    assert np.all(np.diff(np.abs(diff[order])) <= 0)
    assert act.predictions == [str(p) for p in model.predict(data.x)]


def test_pca_projection_equals_sklearn_and_is_seeded(cnn_model):
    from sklearn.decomposition import PCA

    _, model = cnn_model
    act = studio.activations(model, images(30), "0")
    proj = act.project("pca")
    np.testing.assert_allclose(proj.xy, PCA(n_components=2, random_state=0).fit_transform(act.matrix.astype(float)),
                               rtol=1e-6, atol=1e-9)
    sample = act.project("pca", seed=3, max_points=10)
    again = act.project("pca", seed=3, max_points=10)
    assert len(sample.rows) == 10 and sample.rows.tolist() == again.rows.tolist()
    np.testing.assert_array_equal(sample.xy, again.xy)
    with pytest.raises(studio.StudioError, match="pca, tsne, umap"):
        act.project("isomap")


def test_json_round_trip(cnn_model):
    _, model = cnn_model
    data = images()
    act = studio.activations(model, data, "0", rows=[1, 2, 4])
    d = act.to_dict(model, data)
    assert d["schema"] == "studio.activations/1" and d["kind"] == "activations"
    back = Activations.from_dict(d)
    np.testing.assert_array_equal(back.matrix, act.matrix)
    assert back.to_dict() == act.to_dict()


def test_scripted_residual_layer_through_its_graph():
    import torch
    from torch import nn

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3, padding=1)
            self.fc = nn.Linear(1, 3)

        def forward(self, x):
            y = torch.relu(self.conv(x)) + x
            return self.fc(y.mean(dim=(2, 3)))

    torch.manual_seed(0)
    eager = Residual().eval()
    card = {"input_size": [1, 6, 6], "task": "classification"}
    scripted = studio.wrap_model(torch.jit.script(eager), card=card)
    data = images()
    a = studio.activations(scripted, data, "conv")
    b = studio.activations(studio.wrap_model(eager, card=card), data, "conv")
    np.testing.assert_allclose(a.matrix, b.matrix, rtol=1e-6)
    assert a.predictions == b.predictions


def test_bad_layer_rows_and_models_are_refused(mlp_model, gbt, table):
    _, model = mlp_model
    with pytest.raises(studio.StudioError, match="layer 'nope' not found"):
        studio.activations(model, globals()["table"](), "nope")
    with pytest.raises(studio.StudioError, match="rows must be between"):
        studio.activations(model, globals()["table"](), "0", rows=[99])
    with pytest.raises(studio.StudioError, match="torch and ONNX models only"):
        studio.activations(gbt, table, "0")
