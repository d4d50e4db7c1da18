"""Shared by the batch tests: one local Ray (2 CPUs) for this folder (stopped after its last test), a held-out
LightGBM model and 100k rows.

Ray takes seconds to start, so every test here joins the one started by
``ray_address``; subprocesses join it with ``--address``.
"""

from __future__ import annotations

import numpy as np
import pytest

ROWS = 100_000
PARTITION_ROWS = 5_000
FEATURES = ["income", "age", "debt", "tenure", "region"]


@pytest.fixture(scope="package")
def ray_address():
    from studio.batch.run import local_ray

    with local_ray(2) as address:
        yield address


@pytest.fixture(scope="package")
def files(tmp_path_factory):
    """(model path, data path): a LightGBM classifier saved by ``Booster.save_model``, scored on 100k other rows."""
    import lightgbm as lgb
    import pandas as pd

    root = tmp_path_factory.mktemp("batch-files")
    rng = np.random.default_rng(7)

    def draw(n):
        x = rng.normal(size=(n, len(FEATURES)))
        x[:, 4] = rng.integers(0, 4, size=n)  # a small integer "region", for values by subset
        y = (x[:, 0] - 0.5 * x[:, 1] + x[:, 2] * x[:, 3] + 0.3 * x[:, 4] + rng.normal(scale=0.3, size=n) > 0.4)
        return x, y.astype(int)

    x_train, y_train = draw(3_000)
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 8, "seed": 0},
                        lgb.Dataset(x_train, y_train, feature_name=FEATURES), num_boost_round=20)
    model = root / "scorer.txt"
    booster.save_model(str(model))
    x, y = draw(ROWS)  # held out: never seen in training
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["target"] = y
    data = root / "scoring.parquet"
    frame.to_parquet(data, row_group_size=7_000)  # row groups that do not line up with the partitions
    return model, data


@pytest.fixture(scope="package")
def two_workers(ray_address, files, tmp_path_factory):
    """SHAP on every row with 2 workers: the run the other tests compare with."""
    import studio

    model, data = files
    return studio.batch(model, data, "shap", out=tmp_path_factory.mktemp("two") / "out", workers=2,
                        partition_rows=PARTITION_ROWS)
