import json

import pandas as pd
import pytest
import torch

from l2l.config import cache_key, preset
from l2l.io import (CacheMismatchError, CheckpointError, cache_entry, load_checkpoint,
                    load_or_compute, load_or_compute_tables, load_table, save_checkpoint,
                    save_table)


def test_save_table_writes_csv_and_sidecar(smoke_cfg):
    df = pd.DataFrame({"model": ["a", "b"], "fid": [1.0, 2.5]})
    csv, side = save_table(df, "demo", smoke_cfg, provenance={"extractor": "domain"})
    assert pd.read_csv(csv).equals(df) and load_table("demo", "smoke").equals(df)
    meta = json.loads(side.read_text())
    assert meta["config"]["scale"] == "smoke" and meta["provenance"]["extractor"] == "domain"
    assert {"torch", "l2l", "clean-fid"} <= set(meta["versions"])
    first = csv.read_bytes(), side.read_bytes()
    save_table(df, "demo", smoke_cfg, provenance={"extractor": "domain"})
    assert (csv.read_bytes(), side.read_bytes()) == first  # byte-identical rerun


def test_empty_table_refused(smoke_cfg):
    with pytest.raises(ValueError, match="empty table"):
        save_table(pd.DataFrame(), "demo", smoke_cfg)


def test_cache_computes_once():
    key = cache_key(preset("smoke"), "train")
    calls = []

    def compute():
        calls.append(1)
        return {"w": torch.arange(3.0)}

    a = load_or_compute(key, "x.pt", compute, scale="smoke")
    b = load_or_compute(key, "x.pt", compute, scale="smoke")
    assert torch.equal(a["w"], b["w"]) and len(calls) == 1
    load_or_compute(key, "x.pt", compute, scale="smoke", force=True)
    assert len(calls) == 2


def test_cache_refuses_foreign_config():
    key = cache_key(preset("smoke"), "train")
    entry = cache_entry(key, "smoke")
    # another config wrote this folder (e.g. a hand-copied cache)
    (entry / "key.json").write_text(json.dumps(cache_key(preset("smoke", seed=9), "train")))
    (entry / "x.pt").write_bytes(b"stale")
    with pytest.raises(CacheMismatchError, match="written by another config.*FORCE = True"):
        load_or_compute(key, "x.pt", lambda: {"w": torch.zeros(1)}, scale="smoke")
    # FORCE replaces the foreign entry instead of raising the same error
    got = load_or_compute(key, "x.pt", lambda: {"w": torch.ones(1)}, scale="smoke", force=True)
    assert torch.equal(got["w"], torch.ones(1))
    assert json.loads((entry / "key.json").read_text()) == json.loads(json.dumps(key))
    assert torch.equal(load_or_compute(key, "x.pt", lambda: {}, scale="smoke")["w"], torch.ones(1))


def test_force_must_be_a_bool_and_bad_names_fail_before_compute():
    key = cache_key(preset("smoke"), "data")
    calls = []
    with pytest.raises(TypeError, match="FORCE must be True or False, got 'no'"):
        load_or_compute(key, "y.pt", lambda: calls.append(1), scale="smoke", force="no")
    with pytest.raises(ValueError, match="cache files must end in .pt, .csv, .json, got 'x.npy'"):
        load_or_compute(key, "x.npy", lambda: calls.append(1), scale="smoke")
    assert calls == []


def test_written_files_follow_the_umask(tmp_path):
    import os

    from l2l.io import atomic_write

    old = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "t.csv", lambda p: p.write_text("a\n"))
        assert path.stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        path = atomic_write(tmp_path / "u.csv", lambda p: p.write_text("a\n"))
        assert path.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_corrupt_cache_file_is_a_clear_error():
    key = cache_key(preset("smoke"), "data")
    (cache_entry(key, "smoke") / "x.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="delete it to recompute"):
        load_or_compute(key, "x.pt", lambda: {}, scale="smoke")


def test_checkpoint_round_trip(tmp_path, smoke_cfg):
    model = torch.nn.Linear(3, 2)
    path = save_checkpoint(tmp_path / "m.pt", model, smoke_cfg, step=5)
    ckpt = load_checkpoint(path)
    assert ckpt["step"] == 5 and ckpt["config"]["scale"] == "smoke"
    fresh = torch.nn.Linear(3, 2)
    fresh.load_state_dict(ckpt["model"])
    assert torch.equal(fresh.weight, model.weight)


def test_bad_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not an l2l checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    (tmp_path / "cut.pt").write_bytes(b"\x80\x02garbage")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "cut.pt")


def test_load_or_compute_tables_computes_once_and_returns_what_a_reload_gives():
    calls = []

    def compute():
        calls.append(1)
        return ({"a": pd.DataFrame({"x": [0.1, 1 / 3], "ok": [True, False], "s": ["u", "v"]}),
                 "none": None}, {"extractor": "test", "n": 2, "t": (1, 2)})

    key = {"scale": "smoke", "seed": 0, "what": "tables"}
    first, prov = load_or_compute_tables(key, compute, scale="smoke")
    again, prov2 = load_or_compute_tables(key, compute, scale="smoke")
    assert len(calls) == 1 and first["none"] is None and again["none"] is None
    pd.testing.assert_frame_equal(first["a"], again["a"])
    assert again["a"]["x"].tolist() == [0.1, 1 / 3]  # floats survive the CSV exactly
    assert prov == prov2 == {"extractor": "test", "n": 2, "t": [1, 2]}
    load_or_compute_tables(key, compute, scale="smoke", force=True)
    assert len(calls) == 2
    (cache_entry(key, "smoke") / "tables.json").unlink()  # an interrupted entry is recomputed
    load_or_compute_tables(key, compute, scale="smoke")
    assert len(calls) == 3


def test_a_figure_names_the_tables_it_was_drawn_with(smoke_cfg, tmp_path):
    import matplotlib.pyplot as plt

    from l2l import io, plotting

    io._TABLES_SEEN.clear()
    csv, _ = save_table(pd.DataFrame({"k": [1, 2]}, dtype=float), "pair_a", smoke_cfg)
    fig, ax = plt.subplots()
    ax.plot([1, 2])
    paths = plotting.save_figure(fig, "pair_fig", "smoke")
    plt.close(fig)
    side = json.loads(paths[0].with_suffix(".json").read_text())
    assert side["drawn_with_tables"] == {"pair_a.csv": io.file_sha256(csv)}
    assert side["figure"] == ["pair_fig.png", "pair_fig.pdf"]
    # a table read later is named too; one rewritten with other numbers changes its hash
    save_table(pd.DataFrame({"k": [3.0]}), "pair_a", smoke_cfg)
    load_table("pair_a", "smoke")
    fig, _ = plt.subplots()
    side2 = json.loads(plotting.save_figure(fig, "pair_fig", "smoke")[0].with_suffix(".json").read_text())
    plt.close(fig)
    assert side2["drawn_with_tables"]["pair_a.csv"] != side["drawn_with_tables"]["pair_a.csv"]
    assert io.tables_seen("paper") == {}  # per scale
