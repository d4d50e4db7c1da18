"""Loaders bound work before doing it: each hostile file is refused from what it declares.

Every case ends in one StudioError, and the test proves the expensive step
never ran (no image decoded, no Parquet data page read, pandas never called,
no socket opened) and that no file changed in a watched folder.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket

import numpy as np
import pytest

import studio
from studio.data import images as images_module
from studio.errors import StudioError
from tests.bad_inputs.make_corpus import many_images_zip, parquet_declaring_rows
from tests.conftest import MODELS


def _snapshot(folder) -> dict:
    out = {}
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, folder)] = hashlib.sha256(fh.read()).hexdigest()
        for name in dirs:
            out[os.path.relpath(os.path.join(root, name), folder) + "/"] = "dir"
    return out


@pytest.fixture
def watched(tmp_path):
    """A folder the hostile file is written into; nothing else in it may appear, change or vanish."""
    folder = tmp_path / "watched"
    folder.mkdir()
    state = {}
    yield folder, state
    assert _snapshot(folder) == state["before"]


def _write(watched, name, blob):
    folder, state = watched
    path = folder / name
    path.write_bytes(blob)
    state["before"] = _snapshot(folder)
    return path


@pytest.fixture
def no_decoding(monkeypatch):
    calls = []
    real = images_module.decode_image_alpha  # what the loaders call (decode_image wraps it)
    monkeypatch.setattr(images_module, "decode_image_alpha", lambda data, name: calls.append(name) or real(data, name))
    return calls


# ---- image sets ----------------------------------------------------------------------------------
def test_zip_of_many_images_over_the_decoded_total(watched, no_decoding):
    blob = many_images_zip(48)  # 48 RGB images of 2048x2048, each within the pixel limit: 2.25 GiB as float32
    assert len(blob) < 2 * 2**20
    path = _write(watched, "many.zip", blob)
    with pytest.raises(StudioError, match=r"decode to more than 2147483648 bytes .*STUDIO_MAX_DECODED_BYTES"):
        studio.load_dataset(path)
    assert no_decoding == []  # refused from the headers alone


def test_folder_of_images_over_the_decoded_total(watched, no_decoding, monkeypatch):
    from PIL import Image

    folder, state = watched
    for i in range(12):
        (folder / "ab"[i % 2]).mkdir(exist_ok=True)
        Image.new("L", (64, 64), 3).save(folder / "ab"[i % 2] / f"{i}.png")
    state["before"] = _snapshot(folder)
    monkeypatch.setenv("STUDIO_MAX_DECODED_BYTES", str(10 * 64 * 64 * 4))  # ten images' worth
    with pytest.raises(StudioError, match="STUDIO_MAX_DECODED_BYTES"):
        studio.load_dataset(folder)
    assert no_decoding == []
    monkeypatch.setenv("STUDIO_MAX_DECODED_BYTES", str(12 * 64 * 64 * 4))  # exactly the set: loads
    data = studio.load_dataset(folder)
    assert data.x.shape == (12, 1, 64, 64) and data.x.dtype == np.float32
    assert len(no_decoding) == 12


def test_a_header_that_lies_about_its_size_is_refused(watched, monkeypatch):
    """The decode pass checks each image against the shape its header declared."""
    from tests.bad_inputs.make_corpus import _png, _zip

    path = _write(watched, "two.zip", _zip({"a/1.png": _png((8, 8)), "b/2.png": _png((8, 8))}))
    monkeypatch.setattr(images_module, "image_shape", lambda source, name, max_pixels: (1, 4, 4))
    with pytest.raises(StudioError, match="not the .* its header declares"):
        studio.load_dataset(path)


# ---- Parquet -------------------------------------------------------------------------------------
@pytest.fixture
def no_parquet_data_read(monkeypatch):
    import pyarrow.parquet as pq

    calls = []
    real = pq.ParquetFile.read
    monkeypatch.setattr(pq.ParquetFile, "read", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    return calls


def test_parquet_declaring_a_billion_rows(watched, no_parquet_data_read):
    import pyarrow.parquet as pq

    blob = parquet_declaring_rows(10**9)
    assert len(blob) < 4096 and pq.ParquetFile(io.BytesIO(blob)).metadata.num_rows == 10**9
    path = _write(watched, "billion.parquet", blob)
    with pytest.raises(StudioError, match="has 1000000000 rows, over the limit of 2000000"):
        studio.load_dataset(path)
    assert no_parquet_data_read == []


def test_parquet_with_many_real_rows_of_nothing(watched, no_parquet_data_read):
    """Ten million real rows of an all-null column: a few kB on disk, refused from the footer."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table({"a": pa.nulls(10**7, pa.int8())}), buf)
    path = _write(watched, "nulls.parquet", buf.getvalue())
    assert path.stat().st_size < 100_000
    with pytest.raises(StudioError, match="has 10000000 rows, over the limit"):
        studio.load_dataset(path)
    assert no_parquet_data_read == []


def test_parquet_within_limits_still_loads(watched, no_parquet_data_read):
    import pandas as pd

    frame = pd.DataFrame({"a": np.arange(50.0), "b": np.arange(50.0) ** 2, "target": np.arange(50) % 2})
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    data = studio.load_dataset(_write(watched, "ok.parquet", buf.getvalue()))
    assert data.x.shape == (50, 2) and list(data.feature_names) == ["a", "b"]
    assert no_parquet_data_read == [1]


# ---- CSV -----------------------------------------------------------------------------------------
@pytest.fixture
def no_pandas_parse(monkeypatch):
    import pandas as pd

    calls = []
    real = pd.read_csv
    monkeypatch.setattr(pd, "read_csv", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


@pytest.mark.parametrize("blob, env, match", [
    (b"," * 3_000_000 + b"\n1\n", {}, "has 3000001 columns, over the limit of 100000"),
    (b"a," * 1000 + b"a\n", {"STUDIO_MAX_COLUMNS": "1000"}, "has 1001 columns, over the limit of 1000"),
    (b'"x,y",' * 200 + b"z\n1\n", {"STUDIO_MAX_COLUMNS": "100"}, "has 201 columns, over the limit of 100"),
    (b"a" * (2**20 + 10), {"STUDIO_MAX_HEADER_BYTES": str(2**20)}, "header line longer than 1048576 bytes"),
    (b"b" * 5000 + b",target\n1,0\n", {"STUDIO_MAX_NAME_BYTES": "4096"}, "column name longer than 4096"),
], ids=["million_commas", "columns_over_lowered_limit", "quoted_commas", "endless_header_line", "long_name"])
def test_csv_header_bombs_are_refused_before_pandas(watched, no_pandas_parse, monkeypatch, blob, env, match):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    path = _write(watched, "bomb.csv", blob)
    with pytest.raises(StudioError, match=match):
        studio.load_dataset(path)
    assert no_pandas_parse == []


def _wide_csv(names, rows=2) -> bytes:
    header = ",".join(names) + "\n"
    return (header + "".join(",".join(str(r) for _ in names) + "\n" for r in range(rows))).encode()


def test_a_hundred_thousand_columns_parse_and_duplicates_are_found(no_pandas_parse):
    """10^5 distinct columns load (the duplicate check was quadratic: over a minute); one duplicate is named."""
    from studio.data.tabular import read_table

    names = [f"c{i}" for i in range(100_000)]
    frame = read_table(_wide_csv(names, rows=1), "wide.csv")
    assert frame.shape == (1, 100_000) and list(frame.columns[-2:]) == ["c99998", "c99999"]
    names[-1] = "c5"
    with pytest.raises(StudioError, match=r"duplicate column names \('c5'\)"):
        read_table(_wide_csv(names, rows=1), "dupes.csv")
    assert no_pandas_parse == [1]  # the duplicate is found in the header, before pandas parses


def test_long_column_names_within_the_limit_load(watched):
    name = "n" * 200_000
    path = _write(watched, "long.csv", f"{name},target\n1,0\n2,1\n".encode())
    data = studio.load_dataset(path)
    assert data.feature_names == [name]


def test_rows_are_bounded_while_parsing(watched, monkeypatch):
    monkeypatch.setenv("STUDIO_MAX_ROWS", "10")
    path = _write(watched, "rows.csv", b"a,target\n" + b"1,0\n" * 1000)
    with pytest.raises(StudioError, match="has more than 10 rows, over the limit of 10"):
        studio.load_dataset(path)


# ---- architectures that would download weights ---------------------------------------------------
@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """Every DNS lookup or socket connect is recorded and fails; torch's hub cache is an empty folder."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[:2])
        raise OSError("network access attempted in a test")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def test_the_network_guard_sees_a_backbone_download(no_network):
    """The guard is able to fail: torchvision's own builder, left to its defaults, reaches for the network."""
    import torchvision

    with pytest.raises(Exception):
        torchvision.models.get_model("fasterrcnn_mobilenet_v3_large_320_fpn", weights=None)
    assert no_network


@pytest.mark.parametrize("architecture, family", [
    ("fasterrcnn_mobilenet_v3_large_320_fpn", "object detection"),
    ("maskrcnn_resnet50_fpn", "object detection"),
    ("retinanet_resnet50_fpn", "object detection"),
    ("ssdlite320_mobilenet_v3_large", "object detection"),
    ("fcos_resnet50_fpn", "object detection"),
    ("keypointrcnn_resnet50_fpn", "object detection"),
    ("deeplabv3_mobilenet_v3_large", "semantic segmentation"),
    ("fcn_resnet50", "semantic segmentation"),
    ("lraspp_mobilenet_v3_large", "semantic segmentation"),
    ("raft_small", "optical flow"),
])
def test_architectures_that_would_download_are_refused_by_name(no_network, architecture, family):
    card = {"architecture": architecture, "input_size": [1, 32, 32]}
    with pytest.raises(StudioError, match=f"'{architecture}', an? {family} model") as info:
        studio.load_model(MODELS / "image_cnn_state.pt", card=card, sandbox="off")  # in this process: the guard sees it
    assert "\n" not in str(info.value)
    assert no_network == []


def test_a_classifier_architecture_builds_offline(no_network, tmp_path):
    import torch
    import torchvision

    path = tmp_path / "r18.pt"
    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), path)
    model = studio.load_model(path, card={"architecture": "resnet18", "input_size": [3, 32, 32]}, sandbox="off")
    assert model.output(np.zeros((1, 3, 32, 32), dtype=np.float32)).shape == (1, 3)
    assert no_network == []
