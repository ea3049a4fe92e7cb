"""Varshney & Torra's AutoEncoder study: every method against the retrained model.

The paper compares a simple AutoEncoder on CIFAR-10 with baselines and finds it "comparable to a
retrained model" (Varshney & Torra 2025, v1 abstract; architecture, splits and metrics here are
l2l's choices). Here: the conv AE of ``l2l.models`` on the photo set (small) or CIFAR-10 under
``DATA_ROOT`` (paper), centre-half hole, three splits

* ``class_1``: one forget class (class 0, CIFAR-10's airplane), retain = the other nine;
* ``class_5``: the shared 5 / 5 class split of Li et al.'s tables;
* ``sample_10``: a seeded random 10 % of the training images (sample-level),

and ``AE_SEEDS`` training seeds: the original and the retrained model are trained per seed on one
data set (``data.sample_seed`` fixed, so only initialisation and batches change); every method
unlearns that seed's original with that seed. Columns: hole MSE / PSNR and hole FID on
forget-train (what was unlearned), forget-test and retain-test images, each with its gap to the
retrained model of the same seed; membership-inference AUC (forget-train vs forget-test, loss =
per-image hole MSE) and OOD AUROC (forget-test vs retain-test; undefined at sample level, where
both are the whole test set). One domain feature network (trained on the clean photo set) scores
every split and seed. Completions and scores come from the run store.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from l2l.config import RunConfig, for_family, replace
from l2l.data import make_mask
from l2l.experiments.p1_tables import score
from l2l.experiments.store import completions, feature_extractor, test_images, unlearned
from l2l.metrics import hole_mse, metric_provenance
from l2l.privacy import mia_auc, ood_auroc

AE_SPLITS: dict[str, dict[str, Any]] = {
    "class_1": {"data__split": "class", "data__forget_classes": (0,),
                "data__retain_classes": tuple(range(1, 10))},
    "class_5": {"data__split": "class", "data__forget_classes": (0, 1, 2, 3, 4),
                "data__retain_classes": (5, 6, 7, 8, 9)},
    "sample_10": {"data__split": "sample", "data__forget_fraction": 0.1},
}
LEVEL = {"class_1": "class", "class_5": "class", "sample_10": "sample"}
AE_METHODS = ("original", "retrain", "finetune", "varshney2025-stage1", "max_loss",
              "noisy_label", "retain_label", "random_encoder", "li2024", "varshney2025")
AE_SEEDS = {"smoke": (0, 1), "small": (0, 1, 2), "paper": (0, 1, 2), "paper-dry": (0, 1)}  # smoke: seconds
AE_SUBSETS = ("forget_train", "forget", "retain")  # forget-train, forget-test, retain-test
AE_METRICS = ("mse", "psnr", "fid")  # hole region
SUBSET_LABELS = {"forget_train": "forget-train", "forget": "forget-test", "retain": "retain-test"}


def seed_config(cfg: RunConfig, seed: int) -> RunConfig:
    """``cfg`` with training seed ``seed`` on ``cfg.seed``'s data (``data.sample_seed``; left
    at -1 for ``cfg.seed`` itself, so that seed shares its runs with the other notebooks)."""
    if seed == cfg.seed:
        return cfg
    return replace(cfg, seed=seed, data__sample_seed=cfg.seed)


def _losses(run, task: str, subset: str) -> np.ndarray:
    """Per-image hole MSE of ``run``'s cached completions of ``subset``."""
    truth = test_images(run.cfg, subset)
    mask = make_mask(task, run.cfg.data.image_size)
    return hole_mse(completions(run, task, subset), truth, mask).numpy()


def run_rows(run, task: str, ext, level: str) -> pd.DataFrame:
    """Tidy rows (subset, metric, value, std) of one run: ``AE_METRICS`` on the hole of every
    ``AE_SUBSETS``, plus ``mia_auc`` and ``ood_auroc`` (subset "all")."""
    s = score(run, task, ext, subsets=AE_SUBSETS)
    s = s[(s["region"] == "hole") & s["metric"].isin(AE_METRICS)]
    rows = s[["subset", "metric", "value", "std", "n_images"]].to_dict("records")
    member, outside = _losses(run, task, "forget_train"), _losses(run, task, "forget")
    n = min(len(member), len(outside))
    rows.append({"subset": "all", "metric": "mia_auc", "value": mia_auc(member[:n], outside[:n]),
                 "std": math.nan, "n_images": n})
    ood = (ood_auroc(_losses(run, task, "retain"), outside) if level == "class" else math.nan)
    rows.append({"subset": "all", "metric": "ood_auroc", "value": ood, "std": math.nan,
                 "n_images": len(outside)})
    return pd.DataFrame(rows)


def ae_study(cfg: RunConfig, *, splits: tuple[str, ...] = tuple(AE_SPLITS),
             methods: tuple[str, ...] = AE_METHODS,
             seeds: tuple[int, ...] | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-seed tidy rows: split, level, method, seed, subset, metric, value, std, n_images,
    retrain (that seed's retrained value) and gap = value - retrain; and the sidecar."""
    seeds = AE_SEEDS[cfg.scale] if seeds is None else seeds
    base = for_family(cfg, "autoencoder")
    ext = feature_extractor(base)  # one feature network for every split and seed
    task = base.eval.hole
    parts = []
    for split in splits:
        for seed in seeds:
            scfg = seed_config(cfg, seed)
            for method in methods:
                run = unlearned(scfg, "autoencoder", method, **AE_SPLITS[split])
                parts.append(run_rows(run, task, ext, LEVEL[split]).assign(
                    split=split, level=LEVEL[split], method=method, seed=seed))
    per_seed = pd.concat(parts, ignore_index=True)
    keys = ["split", "seed", "subset", "metric"]
    ref = per_seed[per_seed["method"] == "retrain"][keys + ["value"]].rename(
        columns={"value": "retrain"})
    per_seed = per_seed.merge(ref, on=keys, how="left")
    per_seed["gap"] = per_seed["value"] - per_seed["retrain"]
    cols = ["split", "level", "method", "seed", "subset", "metric", "value", "std", "retrain",
            "gap", "n_images"]
    n = int(per_seed.loc[per_seed["metric"] == "fid", "n_images"].iloc[0])
    prov = metric_provenance(ext, n_images=n, image_size=base.data.image_size,
                             n_boot=base.eval.n_boot, seed=cfg.seed) | {
        "family": "autoencoder", "task": task, "splits": {k: _plain(v) for k, v in
                                                          AE_SPLITS.items() if k in splits},
        "training_seeds": list(seeds), "data_seed": cfg.seed,
        "subsets": {k: SUBSET_LABELS[k] for k in AE_SUBSETS},
        "mia": "loss-threshold attack AUC (loss = per-image hole MSE), members = forget-train "
               "images, non-members = forget-test images, equal counts",
        "ood": "AUROC of hole MSE separating forget-test from retain-test images (class level "
               "only: at sample level both are the whole test set)",
        "gap": "value - value of the retrained model of the same seed and split",
        "varshney_lambda": "lam_rule = 'retrain': d(original, retrained) of that seed",
        "paper_value": "not available: the paper's numbers are not public"}
    return per_seed[cols], prov


def _plain(overrides: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()}


def summarise(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per (split, method, subset, metric): value, seed_sd, gap, gap_sd,
    abs_gap (mean |gap|), n_seeds; paper_value empty ("not available")."""
    g = per_seed.groupby(["split", "level", "method", "subset", "metric"], sort=False)
    out = g.agg(value=("value", "mean"), seed_sd=("value", "std"), gap=("gap", "mean"),
                gap_sd=("gap", "std"), abs_gap=("gap", lambda v: v.abs().mean()),
                n_seeds=("seed", "nunique")).reset_index()
    out["paper_value"] = math.nan
    out["paper_value_status"] = "not available"
    return out


def wide(summary: pd.DataFrame, split: str, *, digits: dict[str, int] | None = None) -> pd.DataFrame:
    """One split as the paper-style table: one row per method, columns subset x metric, cells
    "mean ± seed sd (gap)" and the MIA / OOD columns."""
    digits = digits or {"mse": 4, "psnr": 2, "fid": 2, "mia_auc": 3, "ood_auroc": 3}
    t = summary[summary["split"] == split]
    cols = [(s, m) for s in AE_SUBSETS for m in AE_METRICS] + [("all", "mia_auc"),
                                                               ("all", "ood_auroc")]
    rows = {}
    for method, r in t.groupby("method", sort=False):
        cells = {}
        for s, m in cols:
            hit = r[(r["subset"] == s) & (r["metric"] == m)]
            if hit.empty or not math.isfinite(hit["value"].iloc[0]):
                cells[(s, m)] = "–"
                continue
            v, sd, gap = hit[["value", "seed_sd", "gap"]].iloc[0]
            d = digits[m]
            cell = f"{v:.{d}f} ± {sd:.{d}f}" if math.isfinite(sd) else f"{v:.{d}f}"
            cells[(s, m)] = cell + (f" ({gap:+.{d}f})" if method != "retrain" else "")
        rows[method] = cells
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.columns = pd.MultiIndex.from_tuples(
        [(SUBSET_LABELS.get(s, ""), m.upper().replace("_", " ")) for s, m in cols])
    return out
