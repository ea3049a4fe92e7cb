"""Runners at smoke scale: the notebook groups' tables have the promised shape."""

import math

from l2l import config, experiments
from l2l.evaluation import selectivity


def test_run_generators_table_shape():
    cfg = config.preset("smoke")
    out = experiments.run_generators(cfg, families=("mae", "autoencoder"))
    table = out["table"]
    masks = list(experiments.GENERATOR_MASKS)
    assert table["mask"].unique().tolist() == masks
    assert table["model"].tolist() == ["mean fill", "mae", "autoencoder"] * len(masks)
    assert table["forget_mse_hole"].map(math.isfinite).all()
    trained = table[table["model"] != "mean fill"]
    assert (trained["train_time_s"] > 0).all()
    assert set(out["samples"]) == {f"{m} {s}" for m in masks for s in ("forget", "retain")}
    assert out["samples"]["centre_half forget"].shape[:2] == (4, cfg.eval.n_samples_figure)


def test_selectivity_ratios():
    import pandas as pd

    t = pd.DataFrame({"model": ["original", "unlearned"], "forget_fid_hole": [2.0, 6.0],
                      "retain_fid_hole": [4.0, 5.0], "forget_fid_hole_std": [0.1, 0.2],
                      "retain_fid_hole_std": [0.1, 0.3]})
    s = selectivity(t).set_index("subset")
    assert s.loc["forget", "ratio"] == 3.0 and s.loc["retain", "ratio"] == 1.25
