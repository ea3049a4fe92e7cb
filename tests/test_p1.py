"""Li et al.'s tables and claims: aggregation, rendering and every claim rule, on made-up tables."""

import math

import numpy as np
import pandas as pd
import pytest

from l2l.experiments import claims, p1_tables


def _tab(values: dict[tuple[str, str, str], float], *, std: float = 0.1, alpha=None) -> pd.DataFrame:
    """A Table-1-shaped tidy table: (family, method, subset) -> hole FID."""
    rows = []
    for (family, method, subset), v in values.items():
        rows.append({"family": family, "method": method, "task": "centre_half", "subset": subset,
                     "region": "hole", "metric": "fid", "value": v, "std": std,
                     "seed_sd": math.nan, "n_seeds": 1, "n_images": 500,
                     "alpha": alpha.get((family, method, subset)) if alpha else math.nan})
    return pd.DataFrame(rows)


def _table1(li=(10.0, 4.2), **methods) -> pd.DataFrame:
    base = {"original": (4.0, 4.0), "li2024": li, "li2024-proxy": (9.0, 4.3),
            "max_loss": (30.0, 30.0), "noisy_label": (20.0, 10.0), "retain_label": (4.5, 4.5),
            "random_encoder": (5.0, 4.0)} | methods
    return _tab({("mae", m, s): v for m, (f, r) in base.items()
                 for s, v in (("forget", f), ("retain", r))})


def test_aggregate_means_seeds_and_combines_sigmas():
    per_seed = pd.DataFrame({"g": ["a"] * 3 + ["b"], "value": [1.0, 2.0, 3.0, 5.0],
                             "std": [0.3, 0.4, 0.5, 0.2], "n_images": [10] * 4})
    out = p1_tables.aggregate(per_seed, ["g"]).set_index("g")
    assert out.loc["a", "value"] == 2.0 and out.loc["a", "n_seeds"] == 3
    assert out.loc["a", "seed_sd"] == pytest.approx(1.0)
    assert out.loc["a", "std"] == pytest.approx(math.sqrt((0.09 + 0.16 + 0.25) / 3))
    assert math.isnan(out.loc["b", "seed_sd"]) and out.loc["b", "std"] == pytest.approx(0.2)


def test_seeded_methods_get_every_seed():
    assert p1_tables.seeds_of("li2024", "small") == (0, 1, 2)
    assert p1_tables.seeds_of("max_loss", "small") == (0,)


def test_wide_table_has_the_papers_layout_and_renders():
    t = _table1()
    wide = p1_tables.wide_table(t, metrics=("fid",))
    assert wide.index[0] == "Original model" and "Ours (proxy D_R)" in wide.index
    assert list(wide.columns) == [("MAE", "F", "FID"), ("MAE", "R", "FID")]
    assert wide.loc["Ours", ("MAE", "F", "FID")] == "10.00 ± 0.10"
    md = p1_tables.render(wide)
    assert md.splitlines()[0] == "|  | MAE F FID | MAE R FID |" and "| Ours | 10.00 ± 0.10 |" in md
    tex = p1_tables.render(wide, "latex")
    assert r"10.00 $\pm$ 0.10" in tex and tex.strip().endswith(r"\end{tabular}")
    with pytest.raises(ValueError, match="unknown format"):
        p1_tables.render(wide, "html")


def test_p1a_passes_and_fails_on_its_thresholds():
    ok = claims.claim_p1a(_table1(li=(8.0, 4.5)))[0]
    assert ok["passed"] and ok["claim_id"] == "P1-a[mae]" and "x2.00" in ok["value"]
    weak = claims.claim_p1a(_table1(li=(7.9, 4.0)))[0]  # forget only x1.98
    assert not weak["passed"]
    broken = claims.claim_p1a(_table1(li=(20.0, 4.7)))[0]  # retain +17.5 % > 15 % and > 2 sigma
    assert not broken["passed"] and "+17.5%" in broken["value"]


def test_p1b_names_dominating_and_dominated_baselines():
    row = claims.claim_p1b(_table1())[0]
    assert row["passed"] and row["value"] == "dominated by: none"
    assert "retain_label" in row["note"] and "max_loss" not in row["note"]
    row = claims.claim_p1b(_table1(random_encoder=(12.0, 4.1)))[0]
    assert not row["passed"] and row["value"] == "dominated by: random_encoder"


def test_p1c_proxy_within_ten_percent_or_two_sigma():
    assert claims.claim_p1c(_table1())[0]["passed"]  # 4.2 -> 4.3
    far = _table1(**{"li2024-proxy": (9.0, 6.0)})
    assert not claims.claim_p1c(far)[0]["passed"]


def test_p1d_compares_the_two_distances():
    d = pd.DataFrame({"family": ["mae", "vqgan"], "method": "li2024", "d_forget": [2.0, 1.0],
                      "d_retain": [1.0, 1.5], "ratio": [2.0, 2 / 3], "n_per_group": 50})
    assert [r["passed"] for r in claims.claim_p1d(d)] == [True, False]


def test_p1e_needs_a_rising_forget_and_a_kept_retain():
    alphas = (0.1, 0.5, 1.0)
    rows = {("mae", "original", s): 4.0 for s in ("forget", "retain")}
    tab = [_tab(rows)]
    for a, f, r in zip(alphas, (6.0, 9.0, 12.0), (4.1, 4.2, 4.3)):
        tab.append(_tab({("mae", "li2024", "forget"): f, ("mae", "li2024", "retain"): r}).assign(alpha=a))
    tab3 = pd.concat(tab, ignore_index=True)
    row = claims.claim_p1e(tab3)[0]
    assert row["passed"] and row["value"].startswith("rho 1.00")
    tab3.loc[(tab3["alpha"] == 1.0) & (tab3["subset"] == "retain"), "value"] = 6.0
    assert not claims.claim_p1e(tab3)[0]["passed"]


def test_cell_refuses_missing_or_duplicate_rows():
    t = _table1()
    with pytest.raises(ValueError, match="found 0"):
        claims.cell(t, "vqgan", "li2024", "forget")
    with pytest.raises(ValueError, match="found 2"):
        claims.cell(pd.concat([t, t]), "mae", "li2024", "forget")


def test_sigma_combines_bootstrap_and_seed_spread():
    a = pd.Series({"std": 0.3, "seed_sd": 0.4})
    b = pd.Series({"std": 1.2, "seed_sd": np.nan})
    assert claims.sigma(a) == pytest.approx(0.5) and claims.sigma(a, b) == pytest.approx(1.3)
