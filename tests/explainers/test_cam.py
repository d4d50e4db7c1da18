"""Grad-CAM and guided Grad-CAM, on eager and TorchScript models."""

from __future__ import annotations

import numpy as np
import pytest
from image_test_models import block_images, image_dataset, quadrant_model, quadrant_share

import studio
from studio.errors import StudioError
from studio.explainers.cam import find_layer, grad_cam, layer_view

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def test_scripted_view_matches_and_finds_last_conv(cnn, digits):
    import torch

    view = layer_view(cnn.native)
    x = torch.as_tensor(digits.x[:3])
    with torch.no_grad():
        torch.testing.assert_close(view(x), cnn.native(x), rtol=0, atol=0)
    assert find_layer(view)[0] == "6"


def test_scripted_grad_cam_equals_eager_grad_cam(cnn, digits):
    """The same weights as a state dict (eager, hooked directly) give the same maps."""
    eager = studio.load_model(ROOT / "models" / "image_cnn_state.pt", card=ROOT / "models" / "image_cnn_state.card.json", sandbox="off")
    assert eager.format != cnn.format
    rows = [0, 7, 19]
    a = studio.explain(cnn, digits, "grad_cam", rows=rows, cache=False)
    b = studio.explain(eager, digits, "grad_cam", rows=rows, cache=False)
    assert a.values.shape == (3, 1, 32, 32) and a.values.dtype == np.float32
    assert np.all(a.values >= 0) and a.values.max() > 0
    np.testing.assert_allclose(a.values, b.values, rtol=1e-5, atol=1e-9)
    fx = cnn.output(digits.x[rows])[np.arange(3), a.target]  # base values come from Grad-CAM's own forward pass
    np.testing.assert_allclose(a.base_values, fx, rtol=0, atol=1e-6)
    np.testing.assert_allclose(b.base_values, fx, rtol=0, atol=1e-6)
    g = studio.explain(cnn, digits, "guided_grad_cam", rows=rows, cache=False)
    np.testing.assert_allclose(g.base_values, fx, rtol=0, atol=1e-6)
    assert g.values.shape == (3, 1, 32, 32) and g.values.dtype == np.float32
    np.testing.assert_array_equal(g.values == 0, (g.values == 0) | (a.values == 0))  # zero wherever Grad-CAM is
    again = studio.explain(cnn, digits, "guided_grad_cam", rows=rows, cache=False)
    np.testing.assert_array_equal(g.values, again.values)


def test_guided_backprop_matches_captum_on_eager_model():
    import torch
    from captum.attr import GuidedBackprop

    from studio.explainers.cam import guided_backprop

    model = quadrant_model(3)
    x = torch.as_tensor(block_images(3, n=2, seed=3))
    ours = guided_backprop(model, x, [0, 2])
    ref = GuidedBackprop(model.torch_module("probabilities")).attribute(x.clone(), target=[0, 2])
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("scripted", [False, True])
@pytest.mark.parametrize("channels", [1, 3])
def test_quadrant_model_grad_cam_mass_in_quadrant(channels, scripted):
    model = quadrant_model(channels, scripted=scripted)
    data = image_dataset(block_images(channels, n=3, seed=channels))
    exp = studio.explain(model, data, "grad_cam", rows=[0, 1, 2], cache=False)
    assert np.all(quadrant_share(exp.values) >= 0.9), quadrant_share(exp.values)
    again = studio.explain(model, data, "grad_cam", rows=[0, 1, 2], cache=False)
    np.testing.assert_array_equal(exp.values, again.values)


def test_layer_by_name_and_unknown_layer(cnn, digits):
    import torch

    x = torch.as_tensor(digits.x[:2])
    cam3 = grad_cam(cnn, x, [0, 1], layer="3")
    cam6 = grad_cam(cnn, x, [0, 1])
    assert cam3.shape == cam6.shape == (2, 1, 32, 32) and not torch.equal(cam3, cam6)
    with pytest.raises(StudioError, match="not found"):
        studio.explain(cnn, digits, "grad_cam", params={"layer": "nope"}, cache=False)


def _skip_net():
    import torch

    class Skip(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
            self.conv2 = torch.nn.Conv2d(4, 4, 3, padding=1)
            self.fc = torch.nn.Linear(4, 10)

        def forward(self, x):
            h = torch.relu(self.conv(x)) + x  # a residual and a functional relu: not a chain of submodule calls
            h = torch.relu(self.conv2(h))
            return self.fc(h.mean(dim=(2, 3)))

    return Skip().eval()


def test_scripted_module_that_is_not_a_chain_is_reached_through_its_graph(digits, tmp_path):
    import torch

    card = {"input_size": [1, 32, 32], "class_names": list("0123456789"), "mean": [0.2], "std": [0.3]}
    eager_net = _skip_net()
    torch.jit.script(eager_net).save(str(tmp_path / "skip.pt"))
    scripted = studio.load_model(tmp_path / "skip.pt", card=card, sandbox="off")
    eager = studio.wrap_model(eager_net, card=card)
    assert scripted.format == "torchscript"
    info = {m.name: m for m in studio.methods(scripted, digits)}
    assert info["grad_cam"].available, info["grad_cam"].reason
    assert not info["guided_grad_cam"].available and "ReLU layers as modules" in info["guided_grad_cam"].reason
    rows = [0, 11]
    for layer in ("", "conv"):
        a = studio.explain(scripted, digits, "grad_cam", rows=rows, params={"layer": layer}, cache=False)
        b = studio.explain(eager, digits, "grad_cam", rows=rows, params={"layer": layer or "conv2"}, cache=False)
        assert a.values.max() > 0
        np.testing.assert_allclose(a.values, b.values, rtol=1e-5, atol=1e-9 * a.values.max())
        fx = eager.output(digits.x[rows])[np.arange(2), a.target]  # from the rewritten graph's own forward pass
        np.testing.assert_allclose(a.base_values, fx, rtol=0, atol=1e-6)
    with pytest.raises(StudioError, match="among the scripted model's convolutions: conv, conv2"):
        studio.explain(scripted, digits, "grad_cam", params={"layer": "fc"}, cache=False)
