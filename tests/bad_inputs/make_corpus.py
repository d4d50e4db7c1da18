"""The bad-input corpus: broken and hostile files, each with the error it must give.

Every file is generated (into a folder the caller names), so nothing binary or
large is committed. ``CASES`` is the manifest: for each case the stage that
must refuse it, the fragment its StudioError message must contain, and the
files and options that reproduce it.

Stages (what is called, in this order, until the error):

- ``card``: ``studio.models.load_card(card)``
- ``model``: ``studio.load_model(model, card=card)``
- ``data``: ``studio.load_dataset(data, label=label)``
- ``pair``: model and data load, then ``data.aligned_to(model)`` and
  ``studio.ui.state.check_pair`` (what the app and the CLI both do)
- ``explain``: the pair, then ``studio.explain(model, data, method)``

Run ``python tests/bad_inputs/make_corpus.py OUTDIR`` to write the corpus and
print the manifest as JSON.

Hostile cases that would plant a marker file when unpickled (or evaluated)
write it to ``OUTDIR/MARKER``; the tests check it never appears.
"""

from __future__ import annotations

import functools
import io
import json
import os
import sys
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = {
    "@gbt": ROOT / "models" / "tabular_gbt.skops",
    "@mlp": ROOT / "models" / "tabular_mlp.pt",
    "@onnx": ROOT / "models" / "tabular_mlp.onnx",
    "@cnn": ROOT / "models" / "image_cnn.pt",
    "@cnn_state": ROOT / "models" / "image_cnn_state.pt",
    "@table": ROOT / "sample_data" / "breast_cancer.csv",
    "@digits": ROOT / "sample_data" / "digits.zip",
}
MARKER = "MARKER"


@dataclass
class Case:
    """One corpus entry.

    Attributes
    ----------
    name : str
        Unique id (also the stem of the files it writes).
    stage : {"card", "model", "data", "pair", "explain"}
        Where the error must be raised.
    expect : str
        Fragment the error message must contain (case-insensitive).
    model, card, data : str or None
        File names in the corpus folder, or ``@sample`` names.
    label : str or None
    method : str or None
        For ``explain`` cases.
    env : dict
        Environment variables set while the case runs (lowered limits).
    hostile : bool
        The file tries to run code (plant the marker).
    cli_expect : str or None
        Where the CLI meets another error first, the fragment it must print instead.
    """

    name: str
    stage: str
    expect: str
    model: str | None = None
    card: str | None = None
    data: str | None = None
    label: str | None = None
    method: str | None = None
    env: dict = field(default_factory=dict)
    hostile: bool = False
    cli_expect: str | None = None

    def path(self, attr: str, folder: Path) -> Path | None:
        value = getattr(self, attr)
        if value is None:
            return None
        return SAMPLES[value] if value.startswith("@") else folder / value

    def default_data(self) -> str:
        return "@digits" if self.model in ("@cnn", "@cnn_state") else "@table"

    def image_data(self) -> bool:
        if self.data is None:
            return self.model in ("@cnn", "@cnn_state")
        return self.data == "@digits" or self.data.endswith(".zip")

    def cli_expect_fragment(self) -> str:
        """What the CLI must print: without an image method registered, image pairs stop at the method check."""
        if self.stage in ("pair", "explain") and self.image_data() and not image_method_registered():
            return "works on tabular data, not image data"
        return self.cli_expect or self.expect

    def cli_argv(self, folder: Path) -> list[str]:
        """``python -m studio`` arguments that reach this case's error."""
        images = self.image_data()
        model = self.path("model", folder) or SAMPLES["@cnn" if images else "@mlp"]
        data = self.path("data", folder) or SAMPLES[self.default_data()]
        method = self.method or ("saliency" if images and image_method_registered() else "permutation_importance")
        argv = ["explain", "--model", str(model), "--data", str(data), "--method", method, "--no-cache"]
        if method == "permutation_importance":
            argv += ["--param", "n_repeats=1", "--param", "max_rows=50"]
        if self.card:
            argv += ["--card", str(self.path("card", folder))]
        if self.label:
            argv += ["--label", self.label]
        return argv


def image_method_registered() -> bool:
    """Whether an image method (saliency) is registered, for CLI runs on image data."""
    from studio.explainers import registry

    return "image" in registry.REGISTRY.get("saliency", {})


# ---- small helpers ----------------------------------------------------------------------


class Plant:
    """Unpickling this creates ``path`` (stands in for any code a pickle can run)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _zip(members: dict, symlinks=(), compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)
        for name, target in symlinks:
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, target)
    return buf.getvalue()


def _png(shape=(8, 8), mode="L", value=128) -> bytes:
    from PIL import Image

    img = Image.new(mode, shape, value if mode == "L" else (value, value, value))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _table(rows=20, seed=0):
    """A slice of the sample table as a DataFrame (same columns as the sample models)."""
    import pandas as pd

    return pd.read_csv(SAMPLES["@table"]).iloc[:rows].copy()


def _csv(frame) -> bytes:
    return frame.to_csv(index=False).encode()


def _sklearn(kind: str) -> bytes:
    import skops.io as sio
    from sklearn.linear_model import LinearRegression, LogisticRegression

    rng = np.random.RandomState(0)
    x = rng.rand(60, 3)
    if kind == "regressor":
        return sio.dumps(LinearRegression().fit(x, x @ [1.0, 2.0, 3.0]))
    y = (x[:, 0] > 0.5).astype(int)
    return sio.dumps(LogisticRegression().fit(x, y))


def _crafted_tree(what: str) -> bytes:
    import skops.io as sio
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.RandomState(0)
    x = rng.rand(60, 3)
    tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(x, (x[:, 0] > 0.5).astype(int))
    state = tree.tree_.__getstate__()
    nodes = state["nodes"].copy()
    if what == "feature":
        nodes["feature"][0] = 999
    elif what == "cycle":
        nodes["left_child"][0] = 0
    elif what == "child":
        nodes["right_child"][0] = 10_000
    state["nodes"] = nodes
    tree.tree_.__setstate__(state)
    return sio.dumps(tree)


def _crafted_hist(folder: Path) -> bytes:
    import skops.io as sio
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.RandomState(0)
    x = rng.rand(80, 3)
    model = HistGradientBoostingClassifier(max_iter=2, random_state=0).fit(x, (x[:, 0] > 0.5).astype(int))
    nodes = model._predictors[0][0].nodes
    nodes["feature_idx"][0] = 77
    return sio.dumps(model)


def _untrusted_skops() -> bytes:
    import skops.io as sio
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.linear_model import LogisticRegression

    rng = np.random.RandomState(0)
    x = rng.rand(30, 2)
    pipe = make_pipeline(FunctionTransformer(func=eval, validate=False), LogisticRegression())
    pipe.steps[1][1].fit(x, (x[:, 0] > 0.5).astype(int))
    return sio.dumps(pipe)


def _skops_with_pickled_array(folder: Path) -> bytes:
    """A valid skops file whose array member is replaced by a pickled object array."""
    src = zipfile.ZipFile(io.BytesIO(_sklearn("classifier")))
    members = {n: src.read(n) for n in src.namelist()}
    npy = [n for n in members if n.endswith(".npy")]
    buf = io.BytesIO()
    np.save(buf, np.array([Plant(folder / MARKER)], dtype=object), allow_pickle=True)
    members[npy[0]] = buf.getvalue()
    return _zip(members)


def _torch_save(obj, **kw) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf, **kw)
    return buf.getvalue()


def _state_dict():
    import torch

    return torch.load(SAMPLES["@cnn_state"], weights_only=True)


@functools.lru_cache(maxsize=1)
def _tiny_pt2() -> bytes:
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(30, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    program = torch.export.export(net, (torch.zeros(2, 30),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    buf = io.BytesIO()
    torch.export.save(program, buf)
    return buf.getvalue()


def _pt2_variant(folder: Path, how: str) -> bytes:
    """A real torch.export archive edited so that loading it with torch would run code."""
    src = zipfile.ZipFile(io.BytesIO(_tiny_pt2()))
    members = {n: src.read(n) for n in src.namelist()}
    marker = str(folder / MARKER)
    cfg_name = next(n for n in members if n.endswith("model_weights_config.json"))
    model_json = next(n for n in members if n.endswith("models/model.json"))
    if how == "pickled_weight":
        cfg = json.loads(members[cfg_name])
        first = next(iter(cfg["config"].values()))
        first["use_pickle"] = True
        members[cfg_name] = json.dumps(cfg).encode()
        weights_dir = cfg_name.rsplit("/", 1)[0]
        members[f"{weights_dir}/{first['path_name']}"] = _torch_save(Plant(marker))
    elif how == "sample_inputs":
        name = next(n for n in members if "sample_inputs" in n)
        members[name] = _torch_save(Plant(marker))
    elif how == "target":
        text = members[model_json].decode().replace("torch.ops.aten.relu.default", "torch.serialization.os.system")
        members[model_json] = text.encode()
    elif how == "sympy":
        payload = f"open('{marker}','w')"
        expr = "exec(" + "+".join(f"chr({ord(c)})" for c in payload) + ")"
        text = members[model_json].decode()
        text = text.replace("Symbol('s31', positive=True, integer=True)", expr.replace('"', '\\"'))
        # the symbol name differs between runs; replace whichever symbol expression is there
        import re

        text = re.sub(r"Symbol\('s\d+', positive=True, integer=True\)", lambda m: expr, text)
        members[model_json] = text.encode()
    elif how == "aoti":
        members["archive/data/aotinductor/model/model.so"] = b"\x7fELF" + b"\0" * 60
    return _zip(members, compression=zipfile.ZIP_STORED)


def _onnx_external(location: str) -> bytes:
    """An ONNX model whose weight is "external data" at ``location`` (a file on the server)."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    weight = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4], data_location=TensorProto.EXTERNAL)
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y], [weight])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


def _forged_size_zip(claimed: int) -> bytes:
    """A one-member zip whose central directory claims ``claimed`` uncompressed bytes."""
    import struct

    blob = bytearray(_zip({"cat/a.png": _png()}))
    cd = blob.rfind(b"PK\x01\x02")
    struct.pack_into("<I", blob, cd + 24, claimed & 0xFFFFFFFF)
    return bytes(blob)


# ---- the manifest -------------------------------------------------------------------------

CASES: list[Case] = []
BUILDERS: dict = {}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def parquet_declaring_rows(declared: int, real: int = 1000) -> bytes:
    """A Parquet file of ``real`` rows (a few hundred bytes) whose footer declares ``declared`` rows.

    The footer is Thrift compact protocol: every ``num_rows`` / ``num_values``
    of ``real`` follows an i64 field header (0x16) as the zigzag varint of
    ``real``; each is rewritten as ``declared`` (the footer length is updated;
    data pages and their offsets are untouched).
    """
    import struct

    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table({"a": pa.array([1] * real, pa.int8()), "target": pa.array([0] * real, pa.int8())}), buf)
    raw = buf.getvalue()
    (length,) = struct.unpack("<I", raw[-8:-4])
    footer = raw[-8 - length:-8]
    old, new = b"\x16" + _varint(2 * real), b"\x16" + _varint(2 * declared)
    assert footer.count(old) >= 2, "footer layout changed"
    footer = footer.replace(old, new)
    return raw[: -8 - length] + footer + struct.pack("<I", len(footer)) + b"PAR1"


def _parquet(frame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def many_images_zip(count: int, size: int = 2048) -> bytes:
    """A zip of ``count`` RGB PNGs of ``size`` x ``size`` (each well within the pixel limit), a few kB each.

    One flat PNG is reused for every member: the archive stays small while
    the decoded set grows by 12 * size^2 bytes (float32) per image.
    """
    png = _png((size, size), mode="RGB", value=7)
    return _zip({f"{'ab'[i % 2]}/{i}.png": png for i in range(count)}, compression=zipfile.ZIP_STORED)


def case(name, stage, expect, build=None, **kw):
    CASES.append(Case(name=name, stage=stage, expect=expect, **kw))
    if build is not None:
        BUILDERS[name] = build


def _files(**named):
    """Builder writing several files: name -> bytes or callable(folder) -> bytes."""

    def build(folder):
        for fname, blob in named.items():
            (folder / fname).write_bytes(blob(folder) if callable(blob) else blob)

    return build


# models ------------------------------------------------------------------------------------
case("empty_pt", "model", "is empty", _files(**{"empty.pt": b""}), model="empty.pt")
case("text_as_pt", "model", "not a torch file", _files(**{"text_as_pt.pt": b"hello, I am a text file\n"}), model="text_as_pt.pt")
case("truncated_torchscript", "model", "damaged torch archive",
     _files(**{"truncated_torchscript.pt": lambda f: SAMPLES["@cnn"].read_bytes()[:30000]}), model="truncated_torchscript.pt")
case("truncated_onnx", "model", "not a valid onnx model",
     _files(**{"truncated_onnx.onnx": lambda f: SAMPLES["@onnx"].read_bytes()[:3000]}), model="truncated_onnx.onnx")
case("random_onnx", "model", "not a valid onnx model",
     _files(**{"random_onnx.onnx": np.random.RandomState(1).bytes(4096)}), model="random_onnx.onnx")
case("onnx_external_data", "model", "not a plain file name",
     _files(**{"external.onnx": lambda f: _onnx_external("/etc/hostname")}), model="external.onnx")
case("onnx_external_data_relative", "model", "not a plain file name",
     _files(**{"external_rel.onnx": lambda f: _onnx_external("../../../../etc/hostname")}), model="external_rel.onnx")
case("onnx_external_data_missing", "model", "which was not given",
     _files(**{"external_missing.onnx": lambda f: _onnx_external("weights_not_here.data")}), model="external_missing.onnx")
case("unknown_suffix", "model", "unknown type", _files(**{"model.h5": b"\x89HDF\r\n"}), model="model.h5")
case("missing_model", "model", "was not found", model="does_not_exist.skops")
case("not_skops", "model", "not a valid skops file", _files(**{"not_skops.skops": b"just text"}), model="not_skops.skops")
case("skops_untrusted", "model", "does not trust: builtins.eval",
     _files(**{"skops_untrusted.skops": lambda f: _untrusted_skops()}), model="skops_untrusted.skops")
case("skops_tree_feature", "model", "feature index out of range",
     _files(**{"skops_tree_feature.skops": lambda f: _crafted_tree("feature")}), model="skops_tree_feature.skops")
case("skops_tree_cycle", "model", "malformed tree",
     _files(**{"skops_tree_cycle.skops": lambda f: _crafted_tree("cycle")}), model="skops_tree_cycle.skops")
case("skops_tree_child", "model", "child index out of range",
     _files(**{"skops_tree_child.skops": lambda f: _crafted_tree("child")}), model="skops_tree_child.skops")
case("skops_hist_feature", "model", "feature index out of range",
     _files(**{"skops_hist_feature.skops": _crafted_hist}), model="skops_hist_feature.skops")
case("skops_pickled_array", "model", "could not be loaded by skops",
     _files(**{"skops_pickled_array.skops": _skops_with_pickled_array}), model="skops_pickled_array.skops", hostile=True)
case("pickle_pkl", "model", "pickle file and was not loaded",
     _files(**{"plant.pkl": lambda f: __import__("pickle").dumps(Plant(f / MARKER))}), model="plant.pkl", hostile=True)
case("pickle_joblib", "model", "pickle file and was not loaded",
     _files(**{"plant.joblib": lambda f: _joblib(Plant(f / MARKER))}), model="plant.joblib", hostile=True)
case("pickle_in_pt", "model", "holds more than weights",
     _files(**{"plant_zip.pt": lambda f: _torch_save(Plant(f / MARKER))}), model="plant_zip.pt", hostile=True)
case("pickle_in_pth", "model", "holds more than weights",
     _files(**{"plant_zip.pth": lambda f: _torch_save({"fc.weight": Plant(f / MARKER)})}), model="plant_zip.pth", hostile=True)
case("legacy_pickle_pt", "model", "legacy (non-zip) torch pickle",
     _files(**{"plant_legacy.pt": lambda f: _torch_save(Plant(f / MARKER), _use_new_zipfile_serialization=False)}),
     model="plant_legacy.pt", hostile=True)
case("pt2_pickled_weight", "model", "not plain tensors",
     _files(**{"pt2_pickled_weight.pt2": lambda f: _pt2_variant(f, "pickled_weight")}), model="pt2_pickled_weight.pt2", hostile=True)
case("pt2_sample_inputs", "model", "not plain tensors",
     _files(**{"pt2_sample_inputs.pt2": lambda f: _pt2_variant(f, "sample_inputs")}), model="pt2_sample_inputs.pt2", hostile=True)
case("pt2_os_target", "model", "not a torch operator",
     _files(**{"pt2_os_target.pt2": lambda f: _pt2_variant(f, "target")}), model="pt2_os_target.pt2")
case("pt2_sympy_exec", "model", "not an arithmetic function",
     _files(**{"pt2_sympy_exec.pt2": lambda f: _pt2_variant(f, "sympy")}), model="pt2_sympy_exec.pt2", hostile=True)
case("pt2_compiled_code", "model", "compiled or python code",
     _files(**{"pt2_compiled_code.pt2": lambda f: _pt2_variant(f, "aoti")}), model="pt2_compiled_code.pt2")
case("pt2_garbage", "model", "not a torch.export archive", _files(**{"garbage.pt2": b"not a zip"}), model="garbage.pt2")
case("safetensors_garbage", "model", "not a valid safetensors",
     _files(**{"garbage.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00{bad json"}), model="garbage.safetensors")
case("state_dict_no_card", "model", "holds only weights",
     _files(**{"weights_only.pt": lambda f: _torch_save(_state_dict()), "weights_only.card.json": b"{}"}),
     model="weights_only.pt", card="weights_only.card.json")
case("state_dict_other_arch", "model", "do not fit architecture 'resnet18'",
     _files(**{"sd_arch.pt": lambda f: _torch_save(_state_dict()),
               "sd_arch.card.json": json.dumps({"architecture": "resnet18", "input_size": [3, 32, 32]}).encode()}),
     model="sd_arch.pt", card="sd_arch.card.json")
case("state_dict_class_count", "model", "do not fit architecture 'studio.small_cnn'",
     _files(**{"sd_classes.pt": lambda f: _torch_save(_state_dict()),
               "sd_classes.card.json": json.dumps({"architecture": "studio.small_cnn", "input_size": [1, 32, 32],
                                                   "architecture_args": {"num_classes": 5}}).encode()}),
     model="sd_classes.pt", card="sd_classes.card.json")
case("state_dict_huge_args", "model", "do not fit architecture",
     _files(**{"sd_huge.pt": lambda f: _torch_save(_state_dict()),
               "sd_huge.card.json": json.dumps({"architecture": "studio.small_cnn", "input_size": [1, 32, 32],
                                                "architecture_args": {"width": 900000}}).encode()}),
     model="sd_huge.pt", card="sd_huge.card.json")
case("state_dict_unknown_arch", "model", "neither a torchvision model",
     _files(**{"sd_unknown.pt": lambda f: _torch_save(_state_dict()),
               "sd_unknown.card.json": json.dumps({"architecture": "my_secret_net"}).encode()}),
     model="sd_unknown.pt", card="sd_unknown.card.json")
case("state_dict_not_tensors", "model", "does not hold a state dict",
     _files(**{"sd_numbers.pt": lambda f: _torch_save({"lr": 0.1, "epoch": 3}),
               "sd_numbers.card.json": json.dumps({"architecture": "studio.small_cnn"}).encode()}),
     model="sd_numbers.pt", card="sd_numbers.card.json")
case("regressor_with_classification_card", "model", "card says 'classification'",
     _files(**{"regressor.skops": lambda f: _sklearn("regressor"),
               "regressor.card.json": b'{"task": "classification"}'}), model="regressor.skops", card="regressor.card.json")
case("classifier_with_regression_card", "model", "card says 'regression'",
     _files(**{"classifier.skops": lambda f: _sklearn("classifier"),
               "classifier.card.json": b'{"task": "regression"}'}), model="classifier.skops", card="classifier.card.json")
case("card_class_count_sklearn", "model", "3 class names but the model has 2 classes",
     _files(**{"classifier3.skops": lambda f: _sklearn("classifier"),
               "classifier3.card.json": b'{"class_names": ["a", "b", "c"]}'}), model="classifier3.skops", card="classifier3.card.json")
case("card_feature_count", "model", "5 feature names but the model takes 3",
     _files(**{"classifier5.skops": lambda f: _sklearn("classifier"),
               "classifier5.card.json": b'{"feature_names": ["a", "b", "c", "d", "e"]}'}), model="classifier5.skops",
     card="classifier5.card.json")
case("card_class_count_torch", "model", "3 class names but the model returns 10 outputs",
     _files(**{"cnn3.card.json": json.dumps({"input_size": [1, 32, 32], "class_names": ["a", "b", "c"]}).encode()}),
     model="@cnn", card="cnn3.card.json")
case("card_wrong_input_size", "model", "does not run on an input of shape [3, 32, 32]",
     _files(**{"cnn_rgb.card.json": json.dumps({"input_size": [3, 32, 32]}).encode()}), model="@cnn", card="cnn_rgb.card.json")
case("card_torch_regression_10_outputs", "model", "2 output names but the model returns 10 outputs",
     _files(**{"cnn_reg.card.json": json.dumps({"input_size": [1, 32, 32], "task": "regression",
                                                "output_names": ["a", "b"]}).encode()}),
     model="@cnn", card="cnn_reg.card.json")
case("model_over_size_limit", "model", "STUDIO_MAX_MODEL_BYTES", model="@mlp", env={"STUDIO_MAX_MODEL_BYTES": "1000"})
case("torch_zip_bomb_members", "model", "STUDIO_MAX_ZIP_MEMBERS",
     _files(**{"many_members.pt": lambda f: _zip({f"archive/data/{i}": b"" for i in range(60)})}),
     model="many_members.pt", env={"STUDIO_MAX_ZIP_MEMBERS": "50"})

# cards ---------------------------------------------------------------------------------------
case("card_not_json", "card", "not valid json", _files(**{"not_json.card.json": b"task: classification\n"}), card="not_json.card.json")
case("card_not_object", "card", "must be a json object", _files(**{"list.card.json": b"[1, 2, 3]"}), card="list.card.json")
case("card_deeply_nested", "card", "nested too deeply",
     _files(**{"deep.card.json": b'{"description": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"}), card="deep.card.json")
case("card_huge", "card", "larger than 1000000 bytes",
     _files(**{"huge.card.json": b'{"description": "' + b"x" * 1_100_000 + b'"}'}), card="huge.card.json")
case("card_bad_modality", "card", "'modality' must be 'tabular' or 'image'",
     _files(**{"modality.card.json": b'{"modality": "audio"}'}), card="modality.card.json")
case("card_bad_task", "card", "'task' must be 'classification' or 'regression'",
     _files(**{"task.card.json": b'{"task": "clustering"}'}), card="task.card.json")
case("card_bad_input_size", "card", "'input_size' must be [channels, height, width]",
     _files(**{"size.card.json": b'{"input_size": [1, -32, 32]}'}), card="size.card.json")
case("card_nan_std", "card", "nan is not allowed", _files(**{"nan.card.json": b'{"mean": [0.5], "std": [NaN]}'}),
     card="nan.card.json")
case("card_zero_std", "card", "'std' values must be positive",
     _files(**{"zero_std.card.json": b'{"mean": [0.5], "std": [0]}'}), card="zero_std.card.json")
case("card_not_utf8", "card", "not utf-8", _files(**{"latin1.card.json": '{"description": "caf\xe9"}'.encode("latin-1")}),
     card="latin1.card.json")
case("card_duplicate_classes", "card", "duplicate names",
     _files(**{"dupes.card.json": b'{"class_names": ["cat", "cat"]}'}), card="dupes.card.json")
case("card_weights_download", "card", "may not set 'weights'",
     _files(**{"download.card.json": b'{"architecture": "resnet18", "architecture_args": {"weights": "DEFAULT"}}'}),
     card="download.card.json")
case("card_unknown_architecture", "model", "neither a torchvision model",
     _files(**{"arch.card.json": b'{"architecture": "not_a_net", "input_size": [1, 32, 32]}'}), model="@cnn_state",
     card="arch.card.json")

case("state_dict_detection_architecture", "model", "an object detection model",
     _files(**{"detect.card.json": b'{"architecture": "fasterrcnn_mobilenet_v3_large_320_fpn", "input_size": [3, 64, 64]}'}),
     model="@cnn_state", card="detect.card.json")
case("state_dict_segmentation_architecture", "model", "a semantic segmentation model",
     _files(**{"segment.card.json": b'{"architecture": "deeplabv3_mobilenet_v3_large", "input_size": [3, 64, 64]}'}),
     model="@cnn_state", card="segment.card.json")

# tables ----------------------------------------------------------------------------------------
case("csv_empty", "data", "is empty", _files(**{"empty.csv": b""}), data="empty.csv")
case("csv_header_only", "data", "has no rows", _files(**{"header_only.csv": b"a,b,target\n"}), data="header_only.csv")
case("csv_zero_columns", "data", "has no rows with values", _files(**{"blank_lines.csv": b'""\n""\n'}), data="blank_lines.csv")
case("csv_wrong_delimiter", "data", "separated by semicolons",
     _files(**{"semicolons.csv": b"a;b;target\n1,5;2,5;0\n3,5;1,0;1\n"}), data="semicolons.csv")
case("csv_duplicate_columns", "data", "duplicate column names ('mean radius')",
     _files(**{"dupes.csv": lambda f: _csv(_table()).replace(b"mean texture,", b"mean radius,", 1)}), data="dupes.csv")
case("csv_binary", "data", "binary, not a csv", _files(**{"binary.csv": np.random.RandomState(2).bytes(3000)}), data="binary.csv")
case("csv_not_utf8", "data", "not utf-8", _files(**{"latin1.csv": "a,b,target\ncaf\xe9,1,0\n".encode("latin-1")}),
     data="latin1.csv")
case("csv_ragged", "data", "expected 2 fields", _files(**{"ragged.csv": b"a,b\n1,2\n1,2,3,4\n"}), data="ragged.csv")
case("csv_inf", "data", "contain infinite values",
     _files(**{"inf.csv": lambda f: _csv(_table().assign(**{"mean area": np.inf}))}), data="inf.csv")
case("csv_label_missing", "data", "label column 'diagnosis' is not in", data="@table", label="diagnosis")
case("csv_label_with_gaps", "data", "missing value(s)",
     _files(**{"label_gaps.csv": lambda f: _csv(_table().assign(target=[0, None] * 10))}), data="label_gaps.csv")
case("csv_only_label", "data", "no feature columns besides the label", _files(**{"only_label.csv": b"target\n0\n1\n"}),
     data="only_label.csv")
case("xgboost_json_over_limit", "model", "raise it with STUDIO_MAX_JSON_BYTES",
     _files(**{"big.json": b'{"learner": {"gradient_booster": {}, "pad": "' + b"x" * 4000 + b'"}, "version": [2, 1, 0]}'}),
     model="big.json", env={"STUDIO_MAX_JSON_BYTES": "1000"})
case("csv_rows_over_limit", "data", "STUDIO_MAX_ROWS", data="@table", env={"STUDIO_MAX_ROWS": "100"})
case("data_over_size_limit", "data", "STUDIO_MAX_DATA_BYTES", data="@table", env={"STUDIO_MAX_DATA_BYTES": "1000"})
case("parquet_garbage", "data", "not a readable parquet", _files(**{"garbage.parquet": b"PAR1 not really"}),
     data="garbage.parquet")
case("csv_header_bomb", "data", "over the limit of 100000; select the columns the model uses, or raise STUDIO_MAX_COLUMNS",
     _files(**{"header_bomb.csv": b"," * 3_000_000 + b"\n1\n"}), data="header_bomb.csv")
case("csv_header_line_over_limit", "data", "header line longer than 4096 bytes; check the file is a CSV with one header "
     "line, or raise STUDIO_MAX_HEADER_BYTES",
     _files(**{"long_header.csv": b"a" * 10_000}), data="long_header.csv", env={"STUDIO_MAX_HEADER_BYTES": "4096"})
case("csv_column_name_over_limit", "data", "column name longer than 100 characters; shorten the header, or raise "
     "STUDIO_MAX_NAME_BYTES",
     _files(**{"long_name.csv": b"a" * 200 + b",target\n1,0\n2,1\n"}), data="long_name.csv",
     env={"STUDIO_MAX_NAME_BYTES": "100"})
case("parquet_declares_1e9_rows", "data", "has 1000000000 rows, over the limit of",  # the app: large tables' limit
     _files(**{"billion.parquet": lambda f: parquet_declaring_rows(10**9)}), data="billion.parquet",
     cli_expect="has 1000000000 rows, over the limit of 2000000")
case("parquet_columns_over_limit", "data", "has 31 columns, over the limit of 10",
     _files(**{"wide.parquet": lambda f: _parquet(_table())}), data="wide.parquet", env={"STUDIO_MAX_COLUMNS": "10"})
case("parquet_uncompressed_over_limit", "data", "raise STUDIO_MAX_DECODED_BYTES",
     _files(**{"zeros.parquet": lambda f: _parquet(__import__("pandas").DataFrame({"a": np.zeros(200_000), "target": 0}))}),
     data="zeros.parquet", env={"STUDIO_MAX_DECODED_BYTES": str(2**20)})
case("data_unknown_suffix", "data", "unknown type", _files(**{"data.xlsx": b"PK\x03\x04"}), data="data.xlsx")
case("csv_non_numeric_feature", "pair", "'mean radius' (e.g. 'abc' in row 3) hold non-numeric",
     _files(**{"text_in_numbers.csv": lambda f: _csv(_table().astype({"mean radius": object}).assign(
         **{"mean radius": lambda t: t["mean radius"].where(t.index != 3, "abc")}))}),
     model="@mlp", data="text_in_numbers.csv")
case("csv_nan_for_torch", "pair", "'mean texture' have missing values",
     _files(**{"nan_torch.csv": lambda f: _csv(_table().assign(
         **{"mean texture": lambda t: t["mean texture"].where(t.index % 4 != 1)}))}),
     model="@mlp", data="nan_torch.csv")
case("csv_nan_for_gbt", "pair", "'worst area' have missing values",
     _files(**{"nan_gbt.csv": lambda f: _csv(_table().assign(**{"worst area": lambda t: t["worst area"].where(t.index != 0)}))}),
     model="@gbt", data="nan_gbt.csv")
case("csv_missing_features", "pair", "lacks feature(s) the model needs: mean radius",
     _files(**{"fewer.csv": lambda f: _csv(_table().drop(columns=["mean radius"]))}), model="@mlp", data="fewer.csv")
case("csv_renamed_features", "pair", "lacks feature(s) the model needs: mean area",
     _files(**{"renamed.csv": lambda f: _csv(_table().rename(columns={"mean area": "area"}))}), model="@gbt",
     data="renamed.csv", label="target")
case("csv_extra_column", "pair", "column(s) the model does not use: patient_id",
     _files(**{"extra.csv": lambda f: _csv(_table().assign(patient_id=range(20)))}), model="@gbt", data="extra.csv",
     label="target")
case("table_for_image_model", "pair", "expects image input but the dataset holds tabular", model="@cnn", data="@table")
case("image_model_without_card_on_table", "pair", "could not run on this dataset's 30 feature columns",
     _files(**{"cnn_no_card.pt": lambda f: SAMPLES["@cnn"].read_bytes()}), model="cnn_no_card.pt", data="@table")
case("images_for_table_model", "pair", "expects tabular input but the dataset holds image", model="@mlp", data="@digits")
case("one_class_target", "explain", "only one class",
     _files(**{"one_class.csv": lambda f: _csv(_table().assign(target=1))}), model="@mlp", data="one_class.csv",
     method="permutation_importance")

# images and archives ---------------------------------------------------------------------------
case("zip_mixed_sizes", "data", "differ in size",
     _files(**{"mixed_sizes.zip": lambda f: _zip({"a/1.png": _png((8, 8)), "b/2.png": _png((16, 16))})}), data="mixed_sizes.zip")
# mixed grey and RGB files are read as RGB, as torchvision's ImageFolder does (tests/regressions/test_mixed_channels.py)
case("zip_corrupt_png", "data", "could not be decoded",
     _files(**{"corrupt_png.zip": lambda f: _zip({"a/1.png": _png(), "b/2.png": _png()[:40]})}), data="corrupt_png.zip")
case("zip_text_as_png", "data", "could not be decoded",
     _files(**{"text_png.zip": lambda f: _zip({"a/1.png": b"I am text"})}), data="text_png.zip")
case("zip_no_images", "data", "holds no images", _files(**{"no_images.zip": lambda f: _zip({"readme.txt": b"hi"})}),
     data="no_images.zip")
case("zip_no_class_folders", "data", "outside class folders",
     _files(**{"flat.zip": lambda f: _zip({"1.png": _png(), "2.png": _png()})}), data="flat.zip")
case("zip_not_a_zip", "data", "not a valid zip archive", _files(**{"fake.zip": b"this is not a zip"}), data="fake.zip")
case("zip_dotdot", "data", "unsafe path '../../evil.png'",
     _files(**{"dotdot.zip": lambda f: _zip({"a/1.png": _png(), "../../evil.png": _png()})}), data="dotdot.zip")
case("zip_absolute", "data", "unsafe path '/tmp/evil.png'",
     _files(**{"absolute.zip": lambda f: _zip({"a/1.png": _png(), "/tmp/evil.png": _png()})}), data="absolute.zip")
case("zip_windows_drive", "data", "unsafe path",
     _files(**{"drive.zip": lambda f: _zip({"a/1.png": _png(), "C:/evil.png": _png()})}), data="drive.zip")
case("zip_symlink", "data", "symbolic link 'a/link.png'",
     _files(**{"symlink.zip": lambda f: _zip({"a/1.png": _png()}, symlinks=[("a/link.png", "/etc/passwd")])}), data="symlink.zip")
case("zip_bomb_members", "data", "over the limit of 1000; raise STUDIO_MAX_ZIP_MEMBERS",
     _files(**{"bomb_members.zip": lambda f: _zip({f"a/{i}.png": b"" for i in range(1001)})}), data="bomb_members.zip",
     env={"STUDIO_MAX_ZIP_MEMBERS": "1000"})
case("zip_bomb_total_size", "data", "raise STUDIO_MAX_ZIP_BYTES",
     _files(**{"bomb_size.zip": lambda f: _zip({f"a/{i}.png": b"\0" * 2**20 for i in range(12)})}), data="bomb_size.zip",
     env={"STUDIO_MAX_ZIP_BYTES": str(10 * 2**20)})
case("zip_bomb_forged_size", "data", "uncompresses to more than",
     _files(**{"bomb_forged.zip": lambda f: _forged_size_zip(0xFFFFFFF0)}), data="bomb_forged.zip")
case("zip_bomb_ratio", "data", "compression ratio over 1000",
     _files(**{"bomb_ratio.zip": lambda f: _zip({"a/1.png": b"\0" * (8 * 2**20)})}), data="bomb_ratio.zip")
case("image_over_pixel_limit", "data", "raise STUDIO_MAX_IMAGE_PIXELS",
     _files(**{"big_image.zip": lambda f: _zip({"a/1.png": _png((64, 64)), "b/2.png": _png((64, 64))})}),
     data="big_image.zip", env={"STUDIO_MAX_IMAGE_PIXELS": "1000"})
case("zip_images_over_decoded_total", "data", "decode to more than 2147483648 bytes",
     _files(**{"many_images.zip": lambda f: many_images_zip(48)}), data="many_images.zip")
case("zip_images_over_lowered_total", "data", "raise STUDIO_MAX_DECODED_BYTES",
     _files(**{"twenty_images.zip": lambda f: _zip({f"{'ab'[i % 2]}/{i}.png": _png((64, 64)) for i in range(20)})}),
     data="twenty_images.zip", env={"STUDIO_MAX_DECODED_BYTES": str(200_000)})
case("images_wrong_size_for_model", "pair", "expects images of 1 channel(s) at 32x32",
     _files(**{"small_images.zip": lambda f: _zip({"0/1.png": _png((8, 8)), "1/2.png": _png((8, 8))})}),
     model="@cnn", data="small_images.zip")
case("images_more_classes_than_model", "pair", "the dataset has 12 classes but the model outputs 10",
     _files(**{"twelve.zip": lambda f: _zip({f"{c}/1.png": _png((32, 32)) for c in range(12)})}),
     model="@cnn", data="twelve.zip")

# npz ---------------------------------------------------------------------------------------------
case("npz_without_x", "data", "has no array named 'x'", _files(**{"no_x.npz": lambda f: _npz(features=np.zeros((3, 2)))}),
     data="no_x.npz")
case("npz_object_array", "data", "stores python objects",
     _files(**{"objects.npz": lambda f: _npz_objects(f)}), data="objects.npz", hostile=True)
case("npz_object_labels", "data", "stores python objects",
     _files(**{"object_y.npz": lambda f: _npz_objects(f, key="y")}), data="object_y.npz", hostile=True)
case("npz_text_x", "data", "'x' must be numeric", _files(**{"text_x.npz": lambda f: _npz(x=np.array(["a", "b"]))}),
     data="text_x.npz")
case("npz_scalar_x", "data", "'x' is a single number", _files(**{"scalar.npz": lambda f: _npz(x=np.float64(1.0))}),
     data="scalar.npz")
case("npz_y_length", "data", "'y' has 2 entries but 'x' has 3 rows",
     _files(**{"y_length.npz": lambda f: _npz(x=np.zeros((3, 2)), y=np.zeros(2))}), data="y_length.npz")
case("npz_nan_images", "data", "contain nan or infinite", _files(**{"nan_images.npz": lambda f: _npz(x=np.full((2, 4, 4), np.nan))}),
     data="nan_images.npz")
case("npz_five_channels", "data", "have 5 channels", _files(**{"five.npz": lambda f: _npz(x=np.zeros((2, 5, 8, 8)))}),
     data="five.npz")
case("npz_huge_declared_shape", "data", "raise STUDIO_MAX_NPZ_VALUES",
     _files(**{"huge_shape.npz": lambda f: _npy_zip((10**6, 10**6), b"\0" * 64)}), data="huge_shape.npz")
case("npz_truncated_array", "data", "is truncated", _files(**{"truncated.npz": lambda f: _npy_zip((1000, 10), b"\0" * 64)}),
     data="truncated.npz")
case("npz_garbage", "data", "not a valid .npz", _files(**{"garbage.npz": b"garbage"}), data="garbage.npz")


def _joblib(obj) -> bytes:
    import joblib

    buf = io.BytesIO()
    joblib.dump(obj, buf)
    return buf.getvalue()


def _npz_objects(folder: Path, key: str = "x") -> bytes:
    arrays = {"x": np.zeros((2, 3)), "y": np.zeros(2)}
    arrays[key] = np.array([Plant(folder / MARKER), 1], dtype=object)
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # object arrays are pickled inside the .npy
    return buf.getvalue()


def _npy_zip(shape, payload: bytes) -> bytes:
    """An .npz whose 'x' header declares ``shape`` float64 but holds only ``payload``."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return _zip({"x.npy": header.getvalue() + payload})


def build(folder) -> list[Case]:
    """Write every corpus file into ``folder``; return the cases."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, builder in BUILDERS.items():
        builder(folder)
    return CASES


def run_case(c: Case, folder: Path, models: dict | None = None):
    """Run a case through the library, stage by stage; return what the last stage returned.

    ``models`` caches loaded sample models between cases (they are never mutated).
    """
    import studio
    from studio.models import load_card

    folder = Path(folder)
    if c.stage == "card":
        return load_card(c.path("card", folder))
    models = {} if models is None else models
    model = None
    if c.model is not None:
        if c.card is None and c.model.startswith("@") and not c.env and c.model in models:
            model = models[c.model]
        else:
            model = studio.load_model(c.path("model", folder), card=c.path("card", folder))
            if c.card is None and c.model.startswith("@") and not c.env:
                models[c.model] = model
        if c.stage == "model":
            return model
    data = studio.load_dataset(
        c.path("data", folder) or SAMPLES[c.default_data()], label=c.label,
        feature_names=model.feature_names if model is not None else None,
    )
    if c.stage == "data":
        return data
    from studio.ui.state import check_pair

    data = data.aligned_to(model)
    check_pair(model, data)
    if c.stage == "pair":
        return model, data
    return studio.explain(model, data, c.method, params={"n_repeats": 1, "max_rows": 50}, cache=False)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python tests/bad_inputs/make_corpus.py OUTDIR", file=sys.stderr)
        return 2
    cases = build(argv[0])
    json.dump([asdict(c) for c in cases], sys.stdout, indent=1)
    print(f"\n{len(cases)} cases written to {argv[0]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
