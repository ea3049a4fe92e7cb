"""Varshney & Torra's I2I tables: Li et al.'s Tables 1-2 with ``varshney2025`` rows, ranked two ways.

The rows and scores come from the run store (``p1_tables.main_table``): no model is trained or
scored twice. The paper argues that "better" on forget means "closer to a retrained model", not
"maximal FID" (l2l's reading of Varshney & Torra 2025's abstract; their ranking rule is not
known), so every family's methods are ranked

* ``li_rank``: by Li et al.'s directions, forget hole FID up (relative to the original) and
  retain hole FID kept: the mean of the two ranks (forget FID descending, retain FID ascending),
  ties broken by the forget rank;
* ``retrain_rank``: by the distance to the retrained model, |F - F_retrain| / F_retrain +
  |R - R_retrain| / R_retrain on the hole FID (smaller is better),

and ``ranking_agreement`` says, per family, Kendall's tau between the two, the best method of
each, and the methods whose rank moves by more than two places.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from scipy.stats import kendalltau

from l2l.config import RunConfig
from l2l.experiments.p1_tables import P1_FAMILIES, TABLE_METHODS, available, main_table
from l2l.experiments.store import RetrainNotAvailable

P2_METHODS = TABLE_METHODS + ("varshney2025",)
RANKED = tuple(m for m in P2_METHODS if m not in ("original", "retrain"))


def i2i_table(cfg: RunConfig, task: str, *,
              families: tuple[str, ...] = P1_FAMILIES) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Li et al.'s Table 1 (``"centre_half"``) or 2 (``"centre_quarter"``) with the
    ``varshney2025`` rows (lambda calibrated on the retrained model, as in notebook 02).
    Its rankings measure every method against the retrained model, so a missing retrain
    reference (paper scale without ``model.retrain_checkpoint``) stops here, before compute."""
    missing = [f for f in families if not available(cfg, f, "retrain")]
    if missing:
        raise RetrainNotAvailable(
            f"Varshney & Torra's tables rank every method by its distance to the retrained model, "
            f"which is not available for {', '.join(missing)}: place a retrained checkpoint "
            f"(model.retrain_checkpoint, official layout) or give a training recipe (train__steps)")
    table, prov = main_table(cfg, task, families=families, methods=P2_METHODS)
    return table, prov | {"varshney2025": "lam_rule = 'retrain' (d(original, retrained) on the "
                                          "forget probe); stage 2 with the keep-OOD hinge"}


def rankings(table: pd.DataFrame, *, metric: str = "fid", region: str = "hole") -> pd.DataFrame:
    """One row per (family, method of ``RANKED``): forget and retain ``metric`` (``region``),
    their ratios to the original, the distance to retrain, ``li_rank`` and ``retrain_rank``."""
    t = table[(table["metric"] == metric) & (table["region"] == region)]
    out = []
    for family, f in t.groupby("family", sort=False):
        w = f.pivot_table(index="method", columns="subset", values="value")
        ref, re = w.loc["original"], w.loc["retrain"]
        r = w.loc[[m for m in RANKED if m in w.index]].copy()
        r["forget_ratio"] = r["forget"] / ref["forget"]
        r["retain_ratio"] = r["retain"] / ref["retain"]
        r["retrain_distance"] = ((r["forget"] - re["forget"]).abs() / re["forget"]
                                 + (r["retain"] - re["retain"]).abs() / re["retain"])
        li = (r["forget"].rank(ascending=False) + r["retain"].rank(ascending=True)) / 2
        order = sorted(r.index, key=lambda m: (li[m], r["forget"].rank(ascending=False)[m]))
        r["li_rank"] = [order.index(m) + 1 for m in r.index]
        r["retrain_rank"] = r["retrain_distance"].rank(method="min").astype(int)
        out.append(r.reset_index().assign(family=family))
    cols = ["family", "method", "forget", "retain", "forget_ratio", "retain_ratio",
            "retrain_distance", "li_rank", "retrain_rank"]
    return pd.concat(out, ignore_index=True)[cols]


def ranking_agreement(ranks: pd.DataFrame) -> pd.DataFrame:
    """Per family: Kendall's tau between the two rankings, the best method under each, and the
    methods whose rank differs by more than two places (where the two readings disagree)."""
    rows = []
    for family, r in ranks.groupby("family", sort=False):
        tau = kendalltau(r["li_rank"], r["retrain_rank"]).statistic
        moved = r[(r["li_rank"] - r["retrain_rank"]).abs() > 2]
        rows.append({"family": family, "kendall_tau": float(tau),
                     "best_li": r.loc[r["li_rank"].idxmin(), "method"],
                     "best_retrain": r.loc[r["retrain_rank"].idxmin(), "method"],
                     "agree_on_best": bool(r.loc[r["li_rank"].idxmin(), "method"]
                                           == r.loc[r["retrain_rank"].idxmin(), "method"]),
                     "disagree": ", ".join(f"{m} ({a} vs {b})" for m, a, b in
                                           zip(moved["method"], moved["li_rank"],
                                               moved["retrain_rank"])) or "none"})
    return pd.DataFrame(rows)
