"""The cost table's retrain time at a scale with a model zoo: timed here, not read from the zoo."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from l2l import bench
from l2l.config import for_family, preset
from l2l.experiments import store


def test_retrain_seconds_times_steps_of_the_recipe_on_retain_and_scales(monkeypatch):
    cfg = for_family(preset("smoke"), "autoencoder")
    images, split = store.data(cfg)
    calls = []

    def fake_train(model, data, c, **kw):
        calls.append((data, c.train.steps))
        return pd.DataFrame({"step": [c.train.steps - 1], "time_s": [0.5 * c.train.steps]})

    monkeypatch.setattr(bench, "train_generator", fake_train)
    got = bench.retrain_seconds(cfg, images, split, steps=20)
    assert [n for _, n in calls] == [1, 20]  # one untimed step, then the timed ones
    assert all(d is split.retain for d, _ in calls)
    assert got == pytest.approx(0.5 * cfg.train.steps)


def test_run_cost_times_the_retrain_here_when_the_scale_has_a_zoo(monkeypatch):
    monkeypatch.setattr(bench, "manifest_sha256", lambda scale: "a zoo")
    monkeypatch.setattr(bench, "retrain_seconds", lambda cfg, images, split: 123.0)
    out = bench.run_cost(preset("smoke"), families=("autoencoder",),
                         methods=("retrain", "li2024"), fresh=False, progress=False)
    t = out["table"].set_index("method")
    assert t.loc["retrain", "wall_s"] == 123.0
    assert t.loc["li2024", "ratio_to_retrain"] == pytest.approx(t.loc["li2024", "wall_s"] / 123.0)
    assert "fresh initialisation" in out["provenance"]["retrain_timed"]
    assert math.isfinite(t.loc["li2024", "wall_s"])


def test_bench_make_small_keeps_one_note_per_run_label(monkeypatch, tmp_path):
    import json

    monkeypatch.setenv("L2L_OUTPUT_ROOT", str(tmp_path))
    prof = tmp_path / "results" / "smoke" / "profile"
    prof.mkdir(parents=True)
    (prof / "notebooks.csv").write_text("notebook,wall_ms\n00_a,10000\n")
    bench.main(["--scale", "smoke", "--make-small", "cold", "--note", "beside a test job"])
    (prof / "notebooks.csv").write_text("notebook,wall_ms\n00_a,2000\n")
    bench.main(["--scale", "smoke", "--make-small", "warm"])
    out = tmp_path / "results" / "smoke" / "bench_make_small"
    table = pd.read_csv(out.with_suffix(".csv"))
    totals = table[(table["notebook"] == "total") & (table["kind"] == "notebook")]
    assert dict(zip(totals["run"], totals["seconds"])) == {"cold": 10.0, "warm": 2.0}
    notes = json.loads(out.with_suffix(".json").read_text())["provenance"]["notes"]
    assert notes == {"cold": "beside a test job"}  # the warm run added none and kept cold's
