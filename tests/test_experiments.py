"""Runners at smoke scale: the notebook groups' tables have the promised shape."""

import math

import torch

from l2l import config, experiments
from l2l.evaluation import selectivity
from l2l.experiments import harness


def test_run_generators_table_shape():
    cfg = config.preset("smoke")
    out = experiments.run_generators(cfg, families=("mae", "autoencoder"))
    table = out["table"]
    masks = list(experiments.GENERATOR_MASKS)
    assert table["mask"].unique().tolist() == masks
    refs = ["mean fill", "noise fill", "mae", "autoencoder"]
    expected = [m for mask in masks for m in refs + (["mae retrain", "autoencoder retrain"]
                                                     if mask in harness.RETRAIN_MASKS else [])]
    assert table["model"].tolist() == expected
    assert table["forget_mse_hole"].map(math.isfinite).all()
    trained = table[~table["model"].str.endswith("fill")]
    assert (trained["train_time_s"] > 0).all()
    assert table[table["model"].str.endswith("fill")]["train_time_s"].isna().all()
    assert set(out["samples"]) == {f"{m} {s}" for m in masks for s in ("forget", "retain")}
    assert out["samples"]["centre_half forget"].shape[:2] == (4, cfg.eval.n_samples_figure)


def test_run_generators_second_call_reads_its_scores(monkeypatch):
    import pandas as pd
    import pytest

    from l2l.experiments import harness

    cfg = config.preset("smoke")
    out = experiments.run_generators(cfg, families=("autoencoder",))
    monkeypatch.setattr(harness, "completion_table",
                        lambda *a, **k: pytest.fail("a warm rerun scored the models again"))
    again = experiments.run_generators(cfg, families=("autoencoder",))
    pd.testing.assert_frame_equal(out["table"], again["table"])
    assert again["provenance"] == out["provenance"]


def test_run_quickstart_second_call_reads_its_scores(monkeypatch):
    import pandas as pd
    import pytest

    from l2l.experiments import harness

    cfg = config.preset("smoke")
    out = experiments.run_quickstart(cfg)
    monkeypatch.setattr(harness, "completion_table",
                        lambda *a, **k: pytest.fail("a warm rerun scored the models again"))
    again = experiments.run_quickstart(cfg)
    pd.testing.assert_frame_equal(out["table"], again["table"])
    assert again["provenance"] == out["provenance"]
    assert list(again["table"]["model"]) == ["mean fill", "noise fill", "original", "retrain",
                                             "unlearned"]


def test_selectivity_ratios():
    import pandas as pd

    t = pd.DataFrame({"model": ["original", "unlearned"], "forget_fid_hole": [2.0, 6.0],
                      "retain_fid_hole": [4.0, 5.0], "forget_fid_hole_std": [0.1, 0.2],
                      "retain_fid_hole_std": [0.1, 0.3]})
    s = selectivity(t).set_index("subset")
    assert s.loc["forget", "ratio"] == 3.0 and s.loc["retain", "ratio"] == 1.25


def test_cold_runs_are_deterministic():
    # torch's default seed is random per process: every trained artefact must seed itself
    cfg = config.preset("smoke")
    images, split = experiments.load_data(cfg)
    torch.manual_seed(123)
    a = experiments.domain_classifier(cfg, images, force=True).state_dict()
    m1, _ = experiments.trained_generator(cfg, "original", images, split, force=True)
    torch.manual_seed(456)
    b = experiments.domain_classifier(cfg, images, force=True).state_dict()
    m2, _ = experiments.trained_generator(cfg, "original", images, split, force=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(v, m2.state_dict()[k]) for k, v in m1.state_dict().items())


def test_hole_mse_table_rows_and_subsets():
    from l2l.evaluation import hole_mse_table
    from l2l.evaluation import mean_fill
    from l2l.metrics import hole_mse

    cfg = config.preset("smoke")
    images, split = experiments.load_data(cfg)
    t = hole_mse_table({"mean fill": "mean fill", "noise fill": "noise fill"}, split, cfg,
                       max_images=10)
    assert t.columns.tolist() == ["model", "forget_train_mse_hole", "forget_test_mse_hole",
                                  "retain_test_mse_hole"]
    from l2l.data import make_mask, spread

    x = split.forget_test[spread(len(split.forget_test), 10)].float() / 255
    mask = make_mask(cfg.eval.hole, x.shape[-1])
    expected = hole_mse(mean_fill(x, mask.expand(10, 1, -1, -1)), x, mask).mean().item()
    assert abs(t.set_index("model").loc["mean fill", "forget_test_mse_hole"] - expected) < 1e-7
    assert (t.set_index("model").loc["noise fill"] > t.set_index("model").loc["mean fill"]).all()


def test_audit_keys_are_the_keys_the_run_store_wrote_the_models_under(smoke_cfg):
    from l2l.config import config_hash, for_family
    from l2l.io import cache_dir

    cfg = for_family(smoke_cfg, "autoencoder")
    images, split = experiments.load_data(cfg)
    models, keys = experiments.audit_runs(cfg, images, split)
    assert list(keys) == list(models) == ["original", "retrain", *experiments.AUDIT_METHODS]
    files = {"original": "original.pt", "retrain": "retrain.pt"}
    for name, key in keys.items():
        entry = cache_dir(cfg.scale) / config_hash(key)
        assert (entry / files.get(name, f"unlearned_{name}.pt")).is_file(), name
    assert keys["varshney2025"]["unlearn"]["lam"] > 0  # the calibrated lambda is in the key


def test_audit_tables_are_recomputed_when_an_audited_model_is_rekeyed(smoke_cfg, monkeypatch):
    import pandas as pd

    from l2l.experiments import audit

    model_key = {"lam": 0.1}
    calls = []
    monkeypatch.setattr(audit, "audit_runs",
                        lambda *a, **k: ({}, {"varshney2025": dict(model_key)}))
    monkeypatch.setattr(audit, "_audit_tables", lambda *a: (
        calls.append(1) or ({"privacy": pd.DataFrame({"mia_auc": [0.5]})}, {"seed": 0})))
    first = audit.run_audit(smoke_cfg)
    audit.run_audit(smoke_cfg)
    assert len(calls) == 1  # the second call read the cached tables
    model_key["lam"] = 0.2
    again = audit.run_audit(smoke_cfg)
    assert len(calls) == 2
    pd.testing.assert_frame_equal(first["privacy"], again["privacy"])
