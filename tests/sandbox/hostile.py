"""Hostile model files for the sandbox tests, each saved by its own library's save call."""

from __future__ import annotations

import pickle
from pathlib import Path


def scripted(kind: str, path: Path, target: str = "") -> Path:
    """A TorchScript file whose forward reads or writes ``target`` with TorchScript's own file operator, or loops."""
    import torch

    class Reader(torch.nn.Module):
        def __init__(self, path: str):
            super().__init__()
            self.path = path

        def forward(self, x):
            t = torch.from_file(self.path, shared=False, size=4, dtype=torch.uint8)
            return x[:, :2] * 0 + t[:2].to(torch.float32)

    class Writer(torch.nn.Module):
        def __init__(self, path: str):
            super().__init__()
            self.path = path

        def forward(self, x):
            t = torch.from_file(self.path, shared=True, size=4, dtype=torch.uint8)
            t.fill_(65)
            return x[:, :2]

    class Loop(torch.nn.Module):
        def forward(self, x):
            s = x.sum()
            while bool(s > -1.0):
                s = s + 1.0
            return x[:, :2]

    net = {"read": Reader, "write": Writer, "loop": Loop}[kind]
    torch.jit.script(net(target) if target else net()).save(str(path))
    return path


class Payload:
    """Pickles to a call of ``func(*args)``: what a hostile pickle runs when it is loaded."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def pickled(path: Path, func, *args) -> Path:
    path.write_bytes(pickle.dumps(Payload(func, *args)))
    return path


def onnx_model(kind: str, path: Path) -> Path:
    """An ONNX graph on 2 features: ``bomb`` fills 16 GiB (ConstantOfShape), ``loop`` runs 2**62 iterations."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2])
    if kind == "bomb":
        shape = helper.make_tensor("shape", TensorProto.INT64, [1], [2**32])
        nodes = [
            helper.make_node("Constant", [], ["s"], value=shape),
            helper.make_node("ConstantOfShape", ["s"], ["big"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])),
            helper.make_node("ReduceSum", ["big"], ["total"], keepdims=0),
            helper.make_node("Mul", ["x", "total"], ["y"]),
        ]
        graph = helper.make_graph(nodes, "bomb", [x], [y])
    else:
        body_in = [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                   helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                   helper.make_tensor_value_info("acc", TensorProto.FLOAT, ["n", 2])]
        body_out = [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
                    helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, ["n", 2])]
        body = helper.make_graph(
            [helper.make_node("Identity", ["c"], ["c_out"]), helper.make_node("Identity", ["acc"], ["acc_out"])],
            "body", body_in, body_out)
        trip = helper.make_tensor("trip", TensorProto.INT64, [], [2**62])
        cond = helper.make_tensor("cond", TensorProto.BOOL, [], [True])
        nodes = [helper.make_node("Constant", [], ["M"], value=trip), helper.make_node("Constant", [], ["C"], value=cond),
                 helper.make_node("Loop", ["M", "C", "x"], ["y"], body=body)]
        graph = helper.make_graph(nodes, "loop", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    del np
    return path


def crashing_tree(path: Path) -> Path:
    """A skops decision tree whose storage declares 10**9 features and splits on feature 10**8.

    It loads, and its first prediction reads far outside the input array: a segmentation fault.
    """
    import numpy as np
    import skops.io as sio
    from sklearn.tree import DecisionTreeClassifier
    from sklearn.tree._tree import Tree

    x = np.random.default_rng(0).normal(size=(50, 2))
    clf = DecisionTreeClassifier(max_depth=2, random_state=0).fit(x, (x[:, 0] > 0).astype(int))
    state = clf.tree_.__getstate__()
    state["nodes"] = state["nodes"].copy()
    state["nodes"]["feature"][0] = 10**8
    tree = Tree(10**9, np.array([2], dtype=np.intp), 1)
    tree.__setstate__(state)
    clf.tree_ = tree
    del clf.n_features_in_
    sio.dump(clf, str(path))
    return path
