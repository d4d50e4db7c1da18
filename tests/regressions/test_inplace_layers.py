"""Issue 13, kind 4: layer methods on layers followed by an in-place activation.

A forward hook (or a graph that returns a layer's value) sees the tensor an
in-place ReLU overwrites afterwards, so Grad-CAM used to read the ReLU's
output instead of the layer's (on torchvision's SqueezeNet 1.1 the map was
off by 26-50% of its peak depending on the layer). The reference is Captum
(``LayerGradCam``, ``GuidedGradCam``) on ``softmax(model(x))`` of a copy of
the network whose activations are not in place (DESIGN.md: gradient methods
here explain probabilities). Random weights (``weights=None``): nothing is
downloaded.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import studio
from studio.errors import StudioError

SIDE = 64


def _not_in_place(net):
    """A copy of ``net`` with every in-place activation switched off."""
    ref = copy.deepcopy(net)
    for module in ref.modules():
        if hasattr(module, "inplace"):
            module.inplace = False
    return ref


def _captum_grad_cam(net, layer, x, targets):
    import torch
    from captum.attr import LayerAttribution, LayerGradCam

    def f(z):
        return torch.softmax(net(z), dim=1)

    module = dict(net.named_modules())[layer]
    attr = LayerGradCam(f, module).attribute(x, target=targets, relu_attributions=True)
    return LayerAttribution.interpolate(attr, tuple(x.shape[-2:]), "bilinear").detach().numpy()


def _captum_guided_grad_cam(net, layer, x, targets):
    from captum.attr import GuidedGradCam

    module = dict(net.named_modules())[layer]
    wrapper = _Softmax(net)  # captum's GuidedBackprop guides the ReLU modules of the model it is given
    return GuidedGradCam(wrapper, module).attribute(x, target=targets, interpolate_mode="bilinear").detach().numpy()


class _Softmax:
    """Built lazily: an nn.Module computing softmax(net(x)) that keeps ``net`` as a child."""

    def __new__(cls, net):
        import torch

        class Softmax(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, z):
                return torch.softmax(self.inner(z), dim=1)

        return Softmax(net).eval()


@pytest.fixture(scope="module")
def squeezenet():
    import torch
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.squeezenet1_1(weights=None).eval()
    card = {"task": "classification", "class_names": [f"c{i}" for i in range(1000)], "input_size": [3, SIDE, SIDE]}
    return net, studio.wrap_model(net, card=card)


def _images(n, channels=3, side=SIDE, seed=0):
    from studio.data.dataset import Dataset

    x = np.random.default_rng(seed).uniform(0, 1, size=(n, channels, side, side)).astype(np.float32)
    return Dataset(kind="image", x=x, y=np.zeros(n, dtype=np.int64), name="noise")


@pytest.mark.parametrize("layer", ["", "features.12.squeeze", "features.3.expand1x1"])
def test_squeezenet_grad_cam_equals_captum_on_a_copy_without_in_place_relu(squeezenet, layer):
    import torch

    net, model = squeezenet
    data = _images(2)
    rows = [0, 1]
    for target in (0, 7):
        exp = studio.explain(model, data, "grad_cam", rows=rows, target=target, params={"layer": layer}, cache=False)
        want = _captum_grad_cam(_not_in_place(net), layer or "classifier.1", torch.as_tensor(data.x), [target] * 2)
        assert want.max() > 0
        assert exp.values.max() > 0  # was all zero on the default layer
        np.testing.assert_allclose(exp.values, want, rtol=1e-4, atol=1e-6 * want.max())
    # the user's network keeps its in-place activations
    assert any(getattr(m, "inplace", False) for m in net.modules())


def test_squeezenet_guided_grad_cam_equals_captum_on_a_copy_without_in_place_relu(squeezenet):
    import torch

    net, model = squeezenet
    data = _images(2, seed=1)
    exp = studio.explain(model, data, "guided_grad_cam", rows=[0, 1], target=3, cache=False)
    want = _captum_guided_grad_cam(_not_in_place(net), "classifier.1", torch.as_tensor(data.x), [3, 3])
    assert np.abs(want).max() > 0
    np.testing.assert_allclose(exp.values, want, rtol=1e-4, atol=1e-6 * np.abs(want).max())


def _chain(inplace):
    import torch
    from torch import nn

    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(inplace=inplace), nn.Conv2d(6, 8, 3, padding=1),
        nn.ReLU(inplace=inplace), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10),
    ).eval()


def _skip(inplace):
    import torch
    import torch.nn.functional as F

    class Skip(torch.nn.Module):
        """A residual and functional in-place ReLUs: reached through the rewritten TorchScript graph."""

        def __init__(self, inplace: bool):
            super().__init__()
            torch.manual_seed(2)
            self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
            self.conv2 = torch.nn.Conv2d(4, 4, 3, padding=1)
            self.fc = torch.nn.Linear(4, 10)
            self.inplace = inplace

        def forward(self, x):
            h = F.relu(self.conv(x), inplace=self.inplace) + x
            h = F.relu(self.conv2(h), inplace=self.inplace)
            return self.fc(h.mean(dim=(2, 3)))

    return Skip(inplace).eval()


@pytest.mark.parametrize("build,layers", [(_chain, ("0", "2")), (_skip, ("conv", "conv2"))])
def test_torchscript_with_in_place_relu_equals_captum_on_the_eager_copy(build, layers, tmp_path):
    import torch

    path = tmp_path / "net.pt"
    torch.jit.script(build(True)).save(str(path))
    card = {"task": "classification", "class_names": [str(i) for i in range(10)], "input_size": [1, 16, 16]}
    model = studio.load_model(path, card=card, sandbox="off")  # internals checked below need it in this process
    assert model.format == "torchscript"
    data = _images(3, channels=1, side=16, seed=4)
    eager = build(False)
    for layer in layers:
        exp = studio.explain(model, data, "grad_cam", rows=[0, 1, 2], target=5, params={"layer": layer}, cache=False)
        want = _captum_grad_cam(eager, layer, torch.as_tensor(data.x), [5] * 3)
        assert want.max() > 0
        np.testing.assert_allclose(exp.values, want, rtol=1e-4, atol=1e-6 * want.max())
    if build is _chain:  # a scripted chain keeps its ReLU modules: guided Grad-CAM runs too
        exp = studio.explain(model, data, "guided_grad_cam", rows=[0, 1, 2], target=5, params={"layer": "2"},
                             cache=False)
        want = _captum_guided_grad_cam(eager, "2", torch.as_tensor(data.x), [5] * 3)
        np.testing.assert_allclose(exp.values, want, rtol=1e-4, atol=1e-6 * np.abs(want).max())


def test_sanity_check_of_grad_cam_reads_the_true_layer_output(squeezenet):
    """The model-randomisation check reruns Grad-CAM on a copy of the network: the first (trained) map
    is the same fixed map."""
    net, model = squeezenet
    data = _images(1, seed=5)
    exp = studio.explain(model, data, "model_randomisation", rows=[0], target=2,
                         params={"method": "grad_cam", "max_layers": 1}, cache=False)
    plain = studio.explain(model, data, "grad_cam", rows=[0], target=2, cache=False)
    import torch

    np.testing.assert_array_equal(exp.values, plain.values)
    want = _captum_grad_cam(_not_in_place(net), "classifier.1", torch.as_tensor(data.x), [2])
    assert want.max() > 0
    np.testing.assert_allclose(exp.values, want, rtol=1e-4, atol=1e-6 * want.max())


def test_activations_of_a_scripted_layer_before_an_in_place_relu():
    """studio.activations reads a scripted graph's layer through the same kind of tap: the true output too."""
    import torch

    from studio.activations import activations

    card = {"task": "classification", "class_names": [str(i) for i in range(10)], "input_size": [1, 16, 16]}
    model = studio.wrap_model(torch.jit.script(_skip(True)), card=card)
    data = _images(3, channels=1, side=16, seed=4)
    got = activations(model, data, "conv", reduce="mean")
    with torch.no_grad():
        want = _skip(False).conv(torch.as_tensor(data.x)).mean(dim=(2, 3)).numpy()
    assert want.min() < 0  # the in-place ReLU would have clipped these
    np.testing.assert_allclose(got.matrix, want, rtol=1e-5, atol=1e-6)


# ---- conformance: every way of writing an in-place activation x every method that reads a layer --------------------
def _styled(style, inplace):
    """Conv -> act -> conv -> act -> pool -> linear, the activation written as ``nn.ReLU(inplace=...)``,
    ``F.relu(..., inplace=...)`` or ``x.relu_()`` (``torch.relu(x)`` when not in place); same weights for each."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Styled(nn.Module):
        def __init__(self, style: str, inplace: bool):
            super().__init__()
            torch.manual_seed(6)
            self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
            self.act1 = nn.ReLU(inplace=inplace)
            self.conv2 = nn.Conv2d(6, 8, 3, padding=1)
            self.act2 = nn.ReLU(inplace=inplace)
            self.fc = nn.Linear(8, 10)
            self.style, self.inplace = style, inplace

        def act(self, h: torch.Tensor) -> torch.Tensor:
            if self.style == "functional":
                return F.relu(h, inplace=self.inplace)
            return h.relu_() if self.inplace else torch.relu(h)

        def forward(self, x):
            h = self.conv1(x)
            h = self.act1(h) if self.style == "module" else self.act(h)
            h = self.conv2(h)
            h = self.act2(h) if self.style == "module" else self.act(h)
            return self.fc(h.mean(dim=(2, 3)))

    return Styled(style, inplace).eval()


STYLES = ["module", "functional", "method"]
STYLED_CARD = {"task": "classification", "class_names": [str(i) for i in range(10)], "input_size": [1, 16, 16]}


@pytest.mark.parametrize("scripted", [False, True], ids=["eager", "torchscript"])
@pytest.mark.parametrize("style", STYLES)
def test_in_place_conformance_every_layer_reader(style, scripted, tmp_path):
    """Grad-CAM (two layers, two targets), guided Grad-CAM, the model-randomisation check's first map and the
    activations capture, on a network whose activations overwrite the layer's output, equal the same readers
    (Captum, or the layer called directly) on its not-in-place twin."""
    import torch

    from studio.activations import activations

    net = _styled(style, True)
    if scripted:
        torch.jit.script(net).save(str(tmp_path / "net.pt"))
        model = studio.load_model(tmp_path / "net.pt", card=STYLED_CARD, sandbox="off")
    else:
        model = studio.wrap_model(net, card=STYLED_CARD)
    twin = _styled(style, False)
    data = _images(3, channels=1, side=16, seed=8)
    x = torch.as_tensor(data.x)
    maps = {}
    for layer in ("conv1", "conv2"):
        # two targets whose reference map is not all zero (Grad-CAM's ReLU can zero a class on a random net)
        targets = [t for t in range(10) if _captum_grad_cam(twin, layer, x, [t] * 3).max() > 0][:2]
        assert len(targets) == 2
        for target in targets:
            exp = studio.explain(model, data, "grad_cam", rows=[0, 1, 2], target=target, params={"layer": layer},
                                 cache=False)
            want = _captum_grad_cam(twin, layer, x, [target] * 3)
            np.testing.assert_allclose(exp.values, want, rtol=1e-4, atol=1e-6 * want.max())
            maps[layer] = maps.get(layer, []) + [exp.values]
        assert not np.allclose(*maps[layer])  # the target matters
    if scripted:  # guided backpropagation needs ReLU modules in a plain chain: this scripted graph is refused
        with pytest.raises(StudioError, match="guided backpropagation needs the model's ReLU layers as modules"):
            studio.explain(model, data, "guided_grad_cam", rows=[0], target=targets[0], params={"layer": "conv2"},
                           cache=False)
    else:
        guided = studio.explain(model, data, "guided_grad_cam", rows=[0, 1, 2], target=targets[0],
                                params={"layer": "conv2"}, cache=False)
        want = _captum_guided_grad_cam(twin, "conv2", x, [targets[0]] * 3)
        assert np.abs(want).max() > 0
        np.testing.assert_allclose(guided.values, want, rtol=1e-4, atol=1e-6 * np.abs(want).max())
    sanity = studio.explain(model, data, "model_randomisation", rows=[0], target=targets[0],
                            params={"method": "grad_cam", "max_layers": 1}, cache=False)  # the last Conv2d: conv2
    want = _captum_grad_cam(twin, "conv2", x[:1], [targets[0]])
    np.testing.assert_allclose(sanity.values, want, rtol=1e-4, atol=1e-6 * max(want.max(), 1e-6))
    got = activations(model, data, "conv1", reduce="mean")
    with torch.no_grad():
        want = twin.conv1(x).mean(dim=(2, 3)).numpy()
    assert want.min() < 0  # the in-place ReLU would have clipped these
    np.testing.assert_allclose(got.matrix, want, rtol=1e-5, atol=1e-6)
    assert net.act1.inplace if style == "module" else net.inplace  # the user's network is left as it was
