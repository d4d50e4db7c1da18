"""AppTest of the Activations page: graph, layer choice, matrix rows (instances, subsets, classes), dead neurons."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from studio.evaluation import Condition
from tests.conftest import ROOT

APP = str(ROOT / "app.py")


def _page(model, data, **state):
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["model"] = model
    at.session_state["data"] = data.aligned_to(model)
    at.session_state["source"] = "test"
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    return at.switch_page("pages/activations.py").run()


def _ok(at):
    assert not at.exception, [e.value for e in at.exception]


def test_image_model_graph_matrix_and_projection(cnn, digits):
    at = _page(cnn, digits, subsets={"label is 3": [Condition("label", "==", "3")]})
    _ok(at)
    assert at.title[0].value == "Activations"
    assert len(at.get("graphviz_chart")) == 1 and len(at.get("vega_lite_chart")) == 2
    layer = at.selectbox(key="act-layer")
    assert layer.value == "7" and layer.options == [str(i) for i in range(11)]  # last ReLU before pooling
    assert any("dead" in w.value for w in at.warning)
    assert at.get("subheader")[0].value.startswith("Layer 7: 32 neurons, output 32x8x8")
    matrix = at.get("vega_lite_chart")[0]
    spec = matrix.proto.spec
    for name in ("all correct", "all misclassified", "subset: label is 3", "label = 3"):
        assert name in spec, name
    nodes = next(d.value for d in at.dataframe if "dead neurons" in d.value.columns)
    assert nodes.set_index("node").loc["7", "dead neurons"].endswith("of 32")
    layer.select("3").run()
    _ok(at)
    assert at.get("subheader")[0].value.startswith("Layer 3: 32 neurons, output 32x16x16")
    at.selectbox(key="act-sort-a").select("label = 3").run()
    _ok(at)
    assert any(c.value.startswith("Largest |label = 3 − all correct|") for c in at.caption)
    # drill-down: a fast local method by default, explained through the Local page's store and the disk cache
    assert at.multiselect(key="act-methods").value == ["saliency"]
    next(n for n in at.number_input if n.label.startswith("Instance")).set_value(5).run()
    at.button(key="act-explain").click().run()
    _ok(at)
    assert any("row **5**" in m.value for m in at.markdown)
    (result,) = [r for r in at.session_state["results"].values() if r.method == "saliency"]
    assert result.error == "" and result.explanation.rows == [5] and result.explanation.cache == "miss"
    assert any(m.value == "**saliency**" for m in at.markdown)  # its panel


def test_table_models_and_a_model_without_layers(mlp, mlp_onnx, gbt, table):
    at = _page(mlp, table)
    _ok(at)
    assert at.selectbox(key="act-layer").value == "4"  # the second hidden ReLU of the MLP
    at = _page(mlp_onnx, table)
    _ok(at)
    assert len(at.get("graphviz_chart")) == 1 and at.selectbox(key="act-layer").value == "/4/Relu"
    assert at.get("subheader")[0].value.startswith("Layer /4/Relu: ")  # captured by onnxruntime
    at = _page(gbt, table)
    _ok(at)
    assert any("without layers" in i.value for i in at.info)
