"""evaluate / gap_to_retrain / completion_table: tidy tables with provenance (smoke data)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from l2l import config, experiments
from l2l.data import make_mask, spread
from l2l.evaluation import (TIDY_COLUMNS, completion_table, evaluate, gap_to_retrain,
                            mean_fill)
from l2l.metrics import hole_mse

# the smoke feature net is barely trained: near-collinear features make SciPy's sqrtm warn
pytestmark = pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")


@pytest.fixture(scope="module")
def setting():
    cfg = config.preset("smoke")
    images, split = experiments.load_data(cfg)
    return cfg, split, experiments.feature_extractor(cfg, images)


def test_evaluate_is_tidy_matches_hole_mse_and_says_how_it_was_made(setting):
    cfg, split, ext = setting
    t = evaluate("mean fill", split, "centre_half", cfg, extractor=ext, name="mean", max_images=12)
    assert t.columns.tolist() == TIDY_COLUMNS
    assert set(t["subset"]) == {"forget", "retain"} and (t["n_images"] == 12).all()
    assert set(t["metric"]) == {"fid", "kid", "is", "cos", "mse", "psnr"}
    assert not t.duplicated(["subset", "region", "metric"]).any() and len(t) == 2 * 10
    x = split.retain_test[spread(len(split.retain_test), 12)].float() / 255  # every class
    mask = make_mask("centre_half", 32)
    expected = hole_mse(mean_fill(x, mask.expand(12, 1, -1, -1)), x, mask).mean().item()
    got = t.query("subset == 'retain' and metric == 'mse'")["value"].item()
    assert got == pytest.approx(expected, rel=1e-6)
    assert math.isnan(t.query("subset == 'retain' and metric == 'psnr'")["std"].item())
    prov = t.attrs
    assert prov["extractor"] == "domain" and len(prov["weights_sha256"]) == 64
    assert prov["n_images"] == 12 and prov["seed"] == cfg.seed and prov["mask"] == "centre_half"
    assert prov["image_size"] == 32 and "clean-fid" in prov["versions"]


def test_evaluate_task_is_the_mask_and_unknown_tasks_fail(setting):
    cfg, split, ext = setting
    quarter = evaluate("mean fill", split, "centre_quarter", cfg, extractor=ext, max_images=6)
    half = evaluate("mean fill", split, "centre_half", cfg, extractor=ext, max_images=6)
    assert set(quarter["task"]) == {"centre_quarter"}
    mse = {name: t.query("metric == 'mse'")["value"].to_numpy() for name, t in
           (("quarter", quarter), ("half", half))}
    assert (mse["quarter"] != mse["half"]).all()
    with pytest.raises(ValueError, match="mask"):
        evaluate("mean fill", split, "no_such_task", cfg, extractor=ext, max_images=6)


def test_gap_to_retrain_is_value_minus_reference_and_needs_every_reference_row(setting):
    cfg, split, ext = setting
    ref = evaluate("mean fill", split, "centre_half", cfg, extractor=ext, name="retrain",
                   max_images=10)
    noisy = evaluate("noise fill", split, "centre_half", cfg, extractor=ext, name="noise",
                     max_images=10)
    gap = gap_to_retrain(pd.concat([noisy, ref]), ref)
    assert len(gap) == len(noisy) + len(ref)
    own = gap[gap["model"] == "retrain"]
    assert (own["gap"] == 0).all() and (own["rel_gap"].fillna(0) == 0).all()
    mse = gap.query("model == 'noise' and metric == 'mse'")
    assert ((mse["value"] - mse["retrain"]) == mse["gap"]).all() and (mse["gap"] > 0).all()
    assert (mse["gap_sigma"] > 0).all()
    with pytest.raises(ValueError, match="no retrain value"):
        gap_to_retrain(noisy, ref[ref["subset"] == "forget"])


def test_completion_table_accepts_the_net_or_the_extractor_alike(setting):
    cfg, split, ext = setting
    images, _ = experiments.load_data(cfg)
    net = experiments.domain_classifier(cfg, images)
    a, prov_a = completion_table({"m": "mean fill"}, split, net, cfg, max_images=8)
    b, prov_b = completion_table({"m": "mean fill"}, split, ext, cfg, max_images=8)
    pd.testing.assert_frame_equal(a, b)
    assert prov_a == prov_b and prov_a["weights_sha256"] == ext.provenance()["weights_sha256"]
    with pytest.raises(TypeError, match="Extractor"):
        completion_table({"m": "mean fill"}, split, torch.nn.Linear(2, 2), cfg)


def test_unknown_extractor_is_rejected_by_the_config():
    with pytest.raises(ValueError, match="eval.extractor"):
        config.preset("smoke", extractor="dino")


def test_extractor_check_ranks_models_within_extractor_and_subset(setting):
    cfg, split, ext = setting
    models = {"mean": "mean fill", "noise": "noise fill"}
    t = experiments.extractor_check(models, split, cfg, {"a": ext, "b": ext}, n=8)
    assert len(t) == 2 * 2 * 2 and (t["n_images"] == 8).all()
    assert (t.groupby(["extractor", "subset"])["rank"].apply(sorted).map(tuple) == (1, 2)).all()
    a, b = (t[t["extractor"] == e].reset_index(drop=True) for e in ("a", "b"))
    assert (a["fid_hole"] == b["fid_hole"]).all() and (a["rank"] == b["rank"]).all()
    for _, g in t.groupby(["extractor", "subset"]):
        assert g.sort_values("fid_hole")["rank"].tolist() == [1, 2]  # 1 = lowest FID


def test_privacy_rows_scores_and_tsne_groups(setting):
    cfg, split, ext = setting
    p = experiments.privacy_rows({"mean": "mean fill"}, split, cfg, max_images=10)
    row = p.iloc[0]
    assert 0 <= row["mia_auc"] <= 1 and 0 <= row["ood_auroc"] <= 1 and row["n_members"] == 10
    assert row["forget_test_mse"] > 0
    pts = experiments.tsne_points("noise fill", split, ext, cfg, n=6)
    assert pts.columns.tolist() == ["x", "y", "group"] and len(pts) == 24
    assert pts.groupby("group").size().tolist() == [6, 6, 6, 6]
    assert pts[["x", "y"]].notna().all().all()
