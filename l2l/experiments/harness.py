"""Runners of the harness notebooks: 00 (quickstart) and 01 (every family before unlearning)."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd

from l2l.config import FAMILIES, FAMILY_RECIPES, RunConfig, for_family, key_dict
from l2l.data import load_data
from l2l.evaluation import completion_table, sample_panel
from l2l.experiments.store import feature_extractor, trained_generator, unlearned_model
from l2l.io import load_or_compute_tables


def run_quickstart(cfg: RunConfig, *, force: bool = False) -> dict[str, Any]:
    """The smallest end-to-end run (notebook 00): train original and retrain, unlearn with
    Li et al., score mean fill / noise fill / original / retrain / unlearned.

    Returns ``{"table", "provenance", "history", "samples"}``.
    """
    images, split = load_data(cfg)
    net = feature_extractor(cfg, images, force=force)
    original, _ = trained_generator(cfg, "original", images, split, force=force)
    retrain, _ = trained_generator(cfg, "retrain", images, split, force=force)
    unlearned, history = unlearned_model(cfg, original, split, force=force)
    models = {"mean fill": "mean fill", "noise fill": "noise fill", "original": original,
              "retrain": retrain, "unlearned": unlearned}

    def compute() -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
        table, prov = completion_table(models, split, net, cfg)
        return {"table": table}, prov

    # every model above is keyed by this config: a warm rerun loads the scores
    tables, prov = load_or_compute_tables({"quickstart": key_dict(cfg)}, compute,
                                          scale=cfg.scale, force=force)
    table = tables["table"]
    samples = sample_panel({k: models[k] for k in ("original", "unlearned", "retrain")}, split, cfg)
    return {"table": table, "provenance": prov, "history": history, "samples": samples}



GENERATOR_MASKS = ("centre_half", "centre_quarter", "outpaint_4")
# the masks of the competence bar (tests/test_results.py), where the retrain references are
# scored too: a retrained reference must inpaint as well as an original
RETRAIN_MASKS = ("centre_half", "centre_quarter")


def run_generators(cfg: RunConfig, *, families: tuple[str, ...] = FAMILIES,
                   force: bool = False) -> dict[str, Any]:
    """Notebook 01, the "before unlearning" half of Li et al. Fig. 1: train (or load) the
    original and retrain model of every family and score their completions.

    Returns ``{"table", "provenance", "samples"}``. The table has one row per (model, mask):
    the mean-fill and noise-fill references, every family's original (``model`` = family) and,
    for the ``RETRAIN_MASKS``, its retrain reference (``"<family> retrain"``: the
    original-vs-retrain gap on forget data is what realistic unlearning can aim for), with
    forget_* / retain_* metrics and ``train_time_s`` (cold training time from the cached
    history). ``samples`` maps "<mask> <subset>" to a panel (ground truth, masked input, one
    row per family's original).
    """
    images, split = load_data(cfg)
    net = feature_extractor(cfg, images, force=force)
    originals, retrains, times = {}, {}, {}
    for family in families:
        fcfg = for_family(cfg, family)
        start = time.perf_counter()
        originals[family], hist = trained_generator(fcfg, "original", images, split, force=force)
        retrains[f"{family} retrain"], rhist = trained_generator(fcfg, "retrain", images, split,
                                                                 force=force)
        for name, h in ((family, hist), (f"{family} retrain", rhist)):
            times[name] = float(h["time_s"].iloc[-1]) if len(h) else time.perf_counter() - start
    recipes = {f: FAMILY_RECIPES[cfg.scale][f] for f in families}

    def compute() -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
        tables, prov = [], {}
        for mask_name in GENERATOR_MASKS:
            models = {"mean fill": "mean fill", "noise fill": "noise fill"} | originals
            if mask_name in RETRAIN_MASKS:
                models |= retrains
            table, prov = completion_table(models, split, net, cfg, mask_name=mask_name)
            table["train_time_s"] = [times.get(m, float("nan")) for m in table["model"]]
            tables.append(table)
        prov = prov | {"mask": list(GENERATOR_MASKS), "train_time": "wall time of the model's "
                       "training loop when it was trained (cached), 2 CPU cores at small scale",
                       "recipes": recipes}
        return {"table": pd.concat(tables, ignore_index=True)}, prov

    # the scores are cached with the config and recipes they came from: a warm rerun loads them
    key = {"generators": key_dict(cfg), "families": list(families), "recipes": recipes,
           "masks": list(GENERATOR_MASKS)}
    tables, prov = load_or_compute_tables(key, compute, scale=cfg.scale, force=force)
    samples = {}
    for mask_name in GENERATOR_MASKS:
        panel = sample_panel(originals, split, cfg, mask_name=mask_name)
        samples |= {f"{mask_name} {subset}": p for subset, p in panel.items()}
    return {"table": tables["table"], "provenance": prov, "samples": samples}
