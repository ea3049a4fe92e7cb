"""Paper scale without a retrained checkpoint: Li et al.'s tables say "not available" for the
retrain row instead of stopping or reporting an untrained model."""

import math

import pandas as pd
import pytest

from l2l.config import preset
from l2l.experiments import p1_appendix, p1_figures, p1_tables, store


def paper_without_retrain():
    return preset("paper-dry", device="cpu", train__steps=0)


def test_retrain_availability_follows_the_recipe_and_the_placed_checkpoint():
    cfg = paper_without_retrain()
    assert not p1_tables.available(cfg, "mae", "retrain")
    assert p1_tables.available(cfg, "mae", "li2024")  # unlearning needs no retrain
    assert p1_tables.available(preset("paper-dry", device="cpu", train__steps=0,
                                      model__retrain_checkpoint="ckpt/retrain.pth"), "mae", "retrain")
    assert p1_tables.available(preset("small"), "vqgan", "retrain")
    assert p1_figures.figure_methods(cfg, p1_figures.FIG3_METHODS)[-1] == "li2024-proxy"
    assert p1_figures.figure_methods(preset("small"), p1_figures.FIG3_METHODS)[-1] == "retrain"


def test_the_store_raises_its_own_error_for_the_missing_retrain():
    cfg = store.run_config(paper_without_retrain(), "mae", "retrain")
    with pytest.raises(store.RetrainNotAvailable, match="model.retrain_checkpoint"):
        store.check_trainable(cfg, "retrain")


class _Run:
    def __init__(self, method):
        self.name = method


def _fake_score(run, task, ext, **_):
    base = {"original": 10.0, "li2024": 30.0}.get(run.name, 20.0)
    return pd.DataFrame([{"subset": s, "region": "hole", "metric": m, "value": base + i,
                          "std": 0.5, "n_images": 4}
                         for i, (s, m) in enumerate([(s, m) for s in ("forget", "retain")
                                                     for m in ("fid", "is", "cos")])])


def test_main_table_reports_the_missing_retrain_as_not_available(monkeypatch):
    made = []
    monkeypatch.setattr(p1_tables, "feature_extractor", lambda cfg: None)
    monkeypatch.setattr(p1_tables, "unlearned",
                        lambda cfg, f, m, **kw: made.append((f, m)) or _Run(m))
    monkeypatch.setattr(p1_tables, "score", _fake_score)
    monkeypatch.setattr(p1_tables, "table_provenance", lambda *a, **k: {})
    table, _ = p1_tables.main_table(paper_without_retrain(), "centre_half", families=("mae",))
    assert ("mae", "retrain") not in made and ("mae", "li2024") in made
    retrain = table[table["method"] == "retrain"]
    assert len(retrain) == 6 and retrain["value"].isna().all() and (retrain["n_images"] == 0).all()
    assert (retrain["paper_value_status"] == p1_tables.NOT_AVAILABLE).all()
    others = table[table["method"] != "retrain"]
    assert others["value"].notna().all() and (others["paper_value_status"] == "not available").all()
    assert math.isclose(others.loc[others["method"] == "li2024", "value"].min(), 30.0)
    wide = p1_tables.wide_table(table, region="hole")
    assert (wide.loc["Retrain (beyond the paper)"] == "–").all()


def test_crop_sweep_reports_the_missing_retrain_as_not_available(monkeypatch):
    monkeypatch.setattr(p1_appendix, "feature_extractor", lambda cfg: None)
    monkeypatch.setattr(p1_appendix, "unlearned", lambda cfg, f, m, **kw: type("R", (), {
        "model": None, "name": m})())
    monkeypatch.setattr(p1_appendix, "sees_something", lambda *a: True)
    monkeypatch.setattr(p1_appendix, "score", _fake_score)
    monkeypatch.setattr(p1_appendix, "table_provenance", lambda *a, **k: {})
    table, _ = p1_appendix.sweep(paper_without_retrain(), families=("mae",),
                                 methods=p1_appendix.CROP_METHODS, tasks={2: "centre_2", 8: "centre_half"})
    retrain = table[table["method"] == "retrain"]
    assert sorted(set(retrain["k"])) == [2, 8] and len(retrain) == 12
    assert retrain["value"].isna().all()
    assert (retrain["paper_value_status"] == p1_tables.NOT_AVAILABLE).all()
    assert table[table["method"] != "retrain"]["value"].notna().all()


def test_varshney_tables_need_the_retrain_and_say_so_before_compute(monkeypatch):
    from l2l.experiments import p2_tables

    monkeypatch.setattr(p2_tables, "main_table", lambda *a, **k: pytest.fail("computed"))
    with pytest.raises(store.RetrainNotAvailable, match="not available for diffusion, vqgan, mae"):
        p2_tables.i2i_table(paper_without_retrain(), "centre_half")
