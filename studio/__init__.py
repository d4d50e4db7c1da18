"""Model Inspection Studio: load a model and data, explain, compare.

>>> import studio
>>> model = studio.load_model("models/tabular_gbt.skops")
>>> data = studio.load_dataset("sample_data/breast_cancer.csv")
>>> exp = studio.explain(model, data, "permutation_importance")
>>> studio.graph(torch_model)                                 # nodes and edges of a torch or ONNX model
>>> studio.activations(torch_model, images, "6", rows=[0, 1])  # one layer's activations
>>> studio.assess(model, data, ["shap", "lime"], ["noise"], rows=range(10))  # explanation quality
>>> studio.batch("model.skops", "big.parquet", "shap", out="results/")   # every row, on Ray

``studio.activations`` is the package ``studio/activations/`` and can be called
as its verb: ``studio.activations(...)`` is ``studio.activations.activations(...)``.

Heavy libraries (torch, shap, captum, ...) are imported only when used.
"""

from studio import activations
from studio.activations import Activations, Graph, graph
from studio.api import MethodInfo, explain, methods
from studio.data import Dataset, load_dataset
from studio.errors import StudioError
from studio.explanation import Curve, Explanation, Importance, Rule
from studio.models import Model, ModelCard, load_model, wrap_model
from studio.quality import Assessment, assess
from studio import batch  # noqa: E402  (the package, callable as its verb)

__version__ = "0.1.0"

__all__ = [
    "load_model",
    "wrap_model",
    "load_dataset",
    "methods",
    "explain",
    "graph",
    "activations",
    "assess",
    "batch",
    "Assessment",
    "Graph",
    "Activations",
    "Explanation",
    "Curve",
    "Rule",
    "Importance",
    "Model",
    "ModelCard",
    "Dataset",
    "MethodInfo",
    "StudioError",
]
