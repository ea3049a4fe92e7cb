"""l2l.profile: exclusive seconds per run kind, written per process, assembled per notebook."""

import json
import time

import pytest

from l2l import profile


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.setattr(profile, "_TOTALS", {})
    monkeypatch.setattr(profile, "_STACK", [])


def test_inner_blocks_are_not_counted_twice(monkeypatch, tmp_path):
    monkeypatch.setenv("L2L_PROFILE_DIR", str(tmp_path))
    monkeypatch.setenv("L2L_NOTEBOOK", "99_probe")
    with profile.timed("unlearn"):
        time.sleep(0.05)
        with profile.timed("train"):
            time.sleep(0.1)
    t = profile.totals()
    assert 0.1 <= t["train"]["seconds"] < 0.2 and t["train"]["calls"] == 1
    assert 0.05 <= t["unlearn"]["seconds"] < 0.1
    written = json.loads((tmp_path / "99_probe.json").read_text())
    assert written == {"process": "99_probe", "kinds": t}
    with pytest.raises(ValueError, match="unknown run kind"):
        with profile.timed("training"):
            pass


def test_make_table_has_every_kind_other_and_totals(tmp_path):
    (tmp_path / "notebooks.csv").write_text("notebook,wall_ms\n00_a,10000\n01_b,4000\n")
    (tmp_path / "00_a.json").write_text(json.dumps({"kinds": {
        "train": {"seconds": 6.0, "calls": 2}, "score": {"seconds": 1.5, "calls": 3}}}))
    table = profile.make_table(tmp_path, run="cold")
    a = table[table["notebook"] == "00_a"].set_index("kind")["seconds"]
    assert a["notebook"] == 10.0 and a["train"] == 6.0 and a["other"] == 2.5 and a["zoo"] == 0
    b = table[table["notebook"] == "01_b"].set_index("kind")["seconds"]
    assert b["other"] == 4.0  # a notebook without a profile file: all of it is "other"
    total = table[table["notebook"] == "total"].set_index("kind")["seconds"]
    assert total["notebook"] == 14.0 and total["other"] == 6.5
    assert set(table["run"]) == {"cold"}
