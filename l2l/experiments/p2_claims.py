"""Varshney & Torra's claims, checked against the saved 2N tables (rows of ``claims.csv``).

* P2-a (``p2_pipeline``): stage 1 pushes the forget distance to >= lambda and stage 2 restores
  retain (retain-test hole MSE within +15 % of the original) while d stays >= 50 % of lambda;
  one row per family.
* P2-b (``p2_autoencoder``): on the AutoEncoder, ``varshney2025``'s forget metrics are closer to
  ``retrain`` than ``li2024``'s: the mean over forget-train and forget-test of the relative gap
  |m - m_retrain| / m_retrain of hole MSE and hole FID, per seed, then mean and sd over seeds;
  one row per split (class-level: one class, five classes; sample-level).
* P2-c (``p2_poisoning_audit``): after unlearning the poisoned samples, ``varshney2025``'s BSR is
  within 0.05 of the retrained model's after stage 2 and after clean fine-tuning, and its
  membership-inference AUC on the poisoned images within 0.05 of the retrained model's; one
  row per lambda rule. Means over the seeds.
"""

from __future__ import annotations

from typing import Callable

import pandas as pd

from l2l.experiments.claims import CLAIM_COLUMNS, RETAIN_TOLERANCE, _row
from l2l.io import load_table

P2 = "Varshney & Torra 2025"
D_KEEP = 0.5  # P2-a: d after retention >= 50 % of lambda
AUDIT_TOLERANCE = 0.05  # P2-c
CLOSENESS = (("forget_train", "mse"), ("forget_train", "fid"), ("forget", "mse"), ("forget", "fid"))


def claim_p2a(pipeline: pd.DataFrame) -> list[dict[str, object]]:
    rows = []
    for r in pipeline.to_dict("records"):
        rise = r["retain_mse_varshney"] / r["retain_mse_original"] - 1
        keep = r["d_after_retention"] / r["lam"]
        passed = bool(r["reached"]) and rise <= RETAIN_TOLERANCE and keep >= D_KEEP
        rows.append(_row(
            f"P2-a[{r['family']}]", "pipeline", "Decoupling reaches lambda; retention restores "
            "retain while forget stays decoupled", "forget distance d, retain-test hole MSE",
            f"d at stop >= lambda, retain rise <= {RETAIN_TOLERANCE:.0%}, d after retention >= "
            f"{D_KEEP:.0%} of lambda", f"d/lambda {r['d_at_stop'] / r['lam']:.2f} at stop, "
            f"{keep:.2f} after; retain {rise:+.1%}", passed, 1,
            f"lambda {r['lam']:.3g} ({r['lambda_source']}); {int(r['stage1_steps'])} ascent steps",
            paper=P2))
    return rows


def closeness(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Per (split, method, seed): mean relative gap to retrain over ``CLOSENESS``."""
    keep = pd.Series(list(zip(per_seed["subset"], per_seed["metric"]))).isin(CLOSENESS).to_numpy()
    t = per_seed[keep].assign(rel=lambda d: (d["gap"] / d["retrain"]).abs())
    return t.groupby(["split", "level", "method", "seed"], sort=False)["rel"].mean().reset_index()


def claim_p2b(per_seed: pd.DataFrame) -> list[dict[str, object]]:
    c = closeness(per_seed)
    rows = []
    for split, s in c.groupby("split", sort=False):
        v = s[s["method"] == "varshney2025"]["rel"]
        li = s[s["method"] == "li2024"]["rel"]
        rows.append(_row(
            f"P2-b[{split}]", "AutoEncoder study", "On the AutoEncoder the proposed method is "
            "closer to the retrained model than Li et al. on the forget set",
            "mean |gap| / retrain of hole MSE and FID, forget-train and forget-test",
            "varshney2025 < li2024 (mean over seeds)",
            f"varshney2025 {v.mean():.3f} ± {v.std():.3f}; li2024 {li.mean():.3f} ± {li.std():.3f}",
            v.mean() < li.mean(), len(v), f"level: {s['level'].iloc[0]}", paper=P2))
    return rows


def claim_p2c(audit: pd.DataFrame) -> list[dict[str, object]]:
    rows = []
    ref = audit[audit["method"] == "retrain"][["bsr", "bsr_after_clean_ft",
                                               "poisoned_mia_auc"]].mean()
    for rule, a in audit[audit["method"] == "varshney2025"].groupby("lam_rule", sort=False):
        m = a[["bsr", "bsr_after_clean_ft", "poisoned_mia_auc"]].mean()
        gaps = (m - ref).abs()
        rows.append(_row(
            f"P2-c[{rule}]", "poisoning audit", "Unlearning the poisoned samples removes the "
            "backdoor for good and their membership signal, as retraining does",
            "BSR after stage 2 and after clean fine-tuning; MIA AUC of the poisoned images",
            f"each within {AUDIT_TOLERANCE} of the retrained model's",
            f"BSR {m['bsr']:.3f} (retrain {ref['bsr']:.3f}); after FT {m['bsr_after_clean_ft']:.3f} "
            f"({ref['bsr_after_clean_ft']:.3f}); MIA {m['poisoned_mia_auc']:.3f} "
            f"({ref['poisoned_mia_auc']:.3f})", bool((gaps <= AUDIT_TOLERANCE).all()),
            a["seed"].nunique(), f"lambda rule {rule}", paper=P2))
    return rows


def p2_claims(scale: str, read: Callable[[str, str], pd.DataFrame] = load_table) -> pd.DataFrame:
    """P2-a/b/c from ``p2_pipeline``, ``p2_autoencoder`` and ``p2_poisoning_audit`` (each read
    by ``read(name, scale)``); a claim whose table has not been written yet is left out."""
    rows = []
    for name, fn in (("p2_pipeline", claim_p2a), ("p2_autoencoder", claim_p2b),
                     ("p2_poisoning_audit", claim_p2c)):
        try:
            table = read(name, scale)
        except FileNotFoundError:
            continue
        rows += fn(table)
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)
