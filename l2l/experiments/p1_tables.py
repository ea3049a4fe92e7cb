"""Li et al. (ICLR 2024) Tables 1-3: every method on every family, scored from the run store.

Table 1 = centre hole of half the side (the paper's 8x8 of 16x16 patches), Table 2 = quarter
side (4x4), Table 3 = ``li2024`` over alpha. Rows: the original model, the four baselines,
``li2024``, ``li2024-proxy`` and, beyond the paper, ``retrain``; column groups diffusion /
VQ-GAN / MAE; FID, IS and the CLIP-cosine analog (plus KID, hole MSE and PSNR) on forget and
retain test images, on the full image (the paper's metric) and the hole alone. Seeded methods
(``li2024``) are the mean over ``N_SEEDS`` unlearning seeds of one original.

Tidy columns (``TABLE_COLUMNS``): family, method, task, subset, region, metric, value, std
(bootstrap sigma; for seeded cells the root-mean-square of the seeds' sigmas), seed_sd (sd over
seeds, nan for one seed), n_seeds, n_images, paper_value (always empty: the paper's numbers are
not available) and paper_value_status.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from l2l.config import FAMILY_RECIPES, RunConfig, key_dict
from l2l.data import make_mask, take
from l2l.evaluation import full_reference, tidy_metrics
from l2l.experiments.store import (Run, completions, feature_extractor, retrain_available,
                                   run_config, test_rows, unlearned)
from l2l.extractors import Extractor
from l2l.io import load_or_compute
from l2l.metrics import completion_metrics, metric_provenance
from l2l.profile import timed

P1_FAMILIES = ("diffusion", "vqgan", "mae")  # the paper's column groups, in its order
TABLE_METHODS = ("original", "max_loss", "noisy_label", "retain_label", "random_encoder",
                 "li2024", "li2024-proxy", "retrain")
BEYOND_PAPER = ("retrain",)
SEEDED_METHODS = ("li2024",)
N_SEEDS = {"smoke": 2, "small": 3, "paper": 3, "paper-dry": 2}
MAIN_TASKS = {"tab1_main_8x8": "centre_half", "tab2_main_4x4": "centre_quarter"}
# The package's alpha grid, bracketing the released README's 0.2 (Li et al. 2024, Table 3
# ablates alpha; the paper's grid is not known).
ALPHAS = (0.05, 0.1, 0.2, 0.5, 1.0)
ALPHA_TASK = "centre_half"
TABLE_COLUMNS = ["family", "method", "task", "subset", "region", "metric", "value", "std",
                 "seed_sd", "n_seeds", "n_images", "paper_value", "paper_value_status"]
LABELS = {"original": "Original model", "max_loss": "Max Loss", "noisy_label": "Noisy Label",
          "retain_label": "Retain Label", "random_encoder": "Random Encoder", "li2024": "Ours",
          "li2024-proxy": "Ours (proxy D_R)", "retrain": "Retrain (beyond the paper)",
          "varshney2025": "Varshney & Torra",
          "diffusion": "Diffusion", "vqgan": "VQ-GAN", "mae": "MAE",
          "fid": "FID", "is": "IS", "cos": "CLIP", "forget": "F", "retain": "R"}


def seeds_of(method: str, scale: str) -> tuple[int, ...]:
    """Unlearning seed offsets of a table cell: ``N_SEEDS[scale]`` for seeded methods, else 0."""
    return tuple(range(N_SEEDS[scale])) if method in SEEDED_METHODS else (0,)


def score(run: Run, task: str, extractor: Extractor, *,
          subsets: tuple[str, ...] = ("forget", "retain"), limit: int | None = None,
          force: bool = False) -> pd.DataFrame:
    """Tidy metric rows (subset, region, metric, value, std, n_images) of ``run``'s cached
    completions for ``task`` against the ground truth of each of ``subsets``
    (``store.EVAL_SUBSETS``; at most ``limit`` images each, see ``store.test_images``), cached
    per extractor and bootstrap."""
    cfg = run.cfg
    ext_prov = extractor.provenance()
    key = run.key | {"method": run.name, "score": {
        "task": task, "eval": key_dict(cfg)["eval"],
        "extractor": [ext_prov.get("extractor"), ext_prov.get("weights_sha256")]}}
    if tuple(subsets) != ("forget", "retain"):  # the key of the two test subsets is unchanged
        key["score"]["subsets"] = list(subsets)
    if limit is not None:
        key["score"]["limit"] = limit

    def compute() -> pd.DataFrame:
        rows = []
        mask = make_mask(task, cfg.data.image_size)
        for subset in subsets:
            images, index = test_rows(cfg, subset, limit=limit)
            done = completions(run, task, subset, limit=limit)
            with timed("score"):
                m = completion_metrics(done, take(images, index), mask, extractor,
                                       n_boot=cfg.eval.n_boot, seed=cfg.seed,
                                       full_reference=full_reference(cfg, images, index,
                                                                     extractor))
            rows += [{"subset": subset, **r} for r in tidy_metrics(m)]
        return pd.DataFrame(rows)

    return load_or_compute(key, f"score_{task}.csv", compute, scale=cfg.scale, force=force)


def aggregate(per_seed: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Mean over seeds per ``by`` group: value = mean, std = sqrt(mean of the seeds' std^2),
    seed_sd = sd over seeds (ddof 1; nan for one seed), n_seeds, n_images."""
    g = per_seed.groupby(by, sort=False, dropna=False)
    out = g.agg(value=("value", "mean"), seed_sd=("value", lambda v: v.std(ddof=1)),
                n_seeds=("value", "size"), n_images=("n_images", "first"))
    out["std"] = g["std"].apply(lambda s: float(np.sqrt(np.mean(np.square(s)))))
    return out.reset_index()


NOT_AVAILABLE = ("beyond the paper; not available: no retrained model (place "
                 "model.retrain_checkpoint)")


def available(cfg: RunConfig, family: str, method: str) -> bool:
    """Whether the run of ``method`` on ``family`` can be made: every method can, except the
    retrain reference of a paper-scale config without ``model.retrain_checkpoint``."""
    return method != "retrain" or retrain_available(run_config(cfg, family, method))


def not_available_rows(template: pd.DataFrame, method: str) -> pd.DataFrame:
    """Rows of ``method`` shaped like ``template`` (another method's rows of the same family) with
    no value: value / std nan, n_images 0. ``_finish`` labels them ``NOT_AVAILABLE``."""
    first = template[template["seed_offset"] == template["seed_offset"].min()]
    return first.assign(method=method, value=math.nan, std=math.nan, n_images=0, seed_offset=0)


def _finish(table: pd.DataFrame) -> pd.DataFrame:
    table["paper_value"] = math.nan
    beyond = table["method"].isin(BEYOND_PAPER)
    table["paper_value_status"] = np.where(
        beyond & (table["n_images"] == 0), NOT_AVAILABLE,
        np.where(beyond, "beyond the paper", "not available"))
    return table


def cell_rows(cfg: RunConfig, family: str, method: str, task: str, extractor: Extractor, *,
              seeds: tuple[int, ...] = (0,), **overrides: Any) -> pd.DataFrame:
    """Per-seed tidy rows of one (family, method) cell: one run per seed offset."""
    parts = []
    for s in seeds:
        extra = overrides | ({"seed_offset": s} if method not in ("original", "retrain") else {})
        run = unlearned(cfg, family, method, **extra)
        parts.append(score(run, task, extractor).assign(family=family, method=method, task=task,
                                                        seed_offset=s))
    return pd.concat(parts, ignore_index=True)


def main_table(cfg: RunConfig, task: str, *, families: tuple[str, ...] = P1_FAMILIES,
               methods: tuple[str, ...] = TABLE_METHODS) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Table 1 (``task = "centre_half"``) or Table 2 (``"centre_quarter"``): tidy
    ``TABLE_COLUMNS`` rows for every (family, method, subset, region, metric), and the sidecar
    provenance (extractor, image count, seeds, bootstrap). A retrain reference that is not
    available (``available``) gets rows without values, labelled ``NOT_AVAILABLE``."""
    ext = feature_extractor(cfg)
    parts = []
    for f in families:
        rows = {m: cell_rows(cfg, f, m, task, ext, seeds=seeds_of(m, cfg.scale))
                for m in methods if available(cfg, f, m)}
        template = next(iter(rows.values()))
        parts += [rows[m] if m in rows else not_available_rows(template, m) for m in methods]
    per_seed = pd.concat(parts, ignore_index=True)
    by = ["family", "method", "task", "subset", "region", "metric"]
    table = _finish(aggregate(per_seed, by))[TABLE_COLUMNS]
    return table, table_provenance(cfg, ext, table, task=task)


def alpha_table(cfg: RunConfig, *, alphas: tuple[float, ...] = ALPHAS,
                families: tuple[str, ...] = P1_FAMILIES) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Table 3: ``li2024`` at every alpha of ``alphas`` (``N_SEEDS`` seeds each) and the
    original model, on Table 1's task; tidy ``TABLE_COLUMNS`` plus ``alpha`` (nan for the
    original)."""
    ext = feature_extractor(cfg)
    parts = []
    for f in families:
        parts.append(cell_rows(cfg, f, "original", ALPHA_TASK, ext).assign(alpha=math.nan))
        for a in alphas:
            parts.append(cell_rows(cfg, f, "li2024", ALPHA_TASK, ext, seeds=seeds_of(
                "li2024", cfg.scale), alpha=a).assign(alpha=a))
    by = ["family", "method", "alpha", "task", "subset", "region", "metric"]
    table = _finish(aggregate(pd.concat(parts, ignore_index=True), by))
    table = table[TABLE_COLUMNS[:2] + ["alpha"] + TABLE_COLUMNS[2:]]
    prov = table_provenance(cfg, ext, table, task=ALPHA_TASK) | {
        "alphas": list(alphas), "alpha_grid": "the package's grid bracketing the released "
                                              "default 0.2; the paper's grid is not known"}
    return table, prov


def table_provenance(cfg: RunConfig, ext: Extractor, table: pd.DataFrame, *,
                     task: str) -> dict[str, Any]:
    """Sidecar of a Li et al. table: the metric provenance, task, seeds and the run store."""
    n = int(table["n_images"].iloc[0])
    return metric_provenance(ext, n_images=n, image_size=cfg.data.image_size,
                             n_boot=cfg.eval.n_boot, seed=cfg.seed) | {
        "task": task, "families": sorted(table["family"].unique().tolist()),
        "seeds": {m: list(seeds_of(m, cfg.scale)) for m in table["method"].unique()},
        "seed_rule": "original trained once with cfg.seed; unlearning seed = cfg.seed + "
                     "config.SEED_STRIDE * seed_offset",
        "std": "bootstrap sigma over image pairs (IS: over splits; KID: over subsets); for "
               "several seeds the root-mean-square of the seeds' sigmas",
        "completions": "uint8, from the run store (l2l.experiments.store.completions)",
        "family_recipes": {f: FAMILY_RECIPES[cfg.scale][f] for f in table["family"].unique()},
        "paper_value": "not available: the paper's numbers are not public; never typed in"}


# ----------------------------------------------------------------------------- rendering
DIGITS = {"fid": 2, "is": 2, "cos": 3, "kid": 4, "mse": 4, "psnr": 2}


def _cell(value: float, std: float, metric: str) -> str:
    d = DIGITS.get(metric, 3)
    if not math.isfinite(value):
        return "–"
    return f"{value:.{d}f} ± {std:.{d}f}" if math.isfinite(std) else f"{value:.{d}f}"


def wide_table(table: pd.DataFrame, *, region: str = "hole",
               metrics: tuple[str, ...] = ("fid", "is", "cos"), index: str = "method") -> pd.DataFrame:
    """The paper's layout: one row per ``index`` value (method or alpha), column groups family >
    subset (F, R) > metric, cells "value ± std" (``DIGITS`` decimals per metric)."""
    t = table[(table["region"] == region) & table["metric"].isin(metrics)].copy()
    t["cell"] = [_cell(v, s, m) for v, s, m in zip(t["value"], t["std"], t["metric"])]
    families = [f for f in P1_FAMILIES if f in set(t["family"])]
    cols = [(f, s, m) for f in families for s in ("forget", "retain") for m in metrics]
    w = t.pivot_table(index=index, columns=["family", "subset", "metric"], values="cell",
                      aggfunc="first", sort=False)
    w = w.reindex(columns=pd.MultiIndex.from_tuples(cols))
    if index == "method":
        w = w.reindex([m for m in TABLE_METHODS if m in w.index]
                      + [m for m in w.index if m not in TABLE_METHODS])
        w.index = [LABELS.get(m, m) for m in w.index]
    w.columns = pd.MultiIndex.from_tuples([(LABELS[f], LABELS[s], LABELS[m]) for f, s, m in cols])
    return w


def render(wide: pd.DataFrame, fmt: str = "markdown") -> str:
    """A wide table as GitHub markdown or a LaTeX ``tabular`` (header = the flattened column
    groups)."""
    head = [" ".join(str(p) for p in c) for c in wide.columns]
    rows = [[str(i)] + [str(v) for v in r] for i, r in zip(wide.index, wide.to_numpy())]
    if fmt == "markdown":
        lines = ["| " + " | ".join([""] + head) + " |", "|" + "---|" * (len(head) + 1)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"
    if fmt == "latex":
        esc = lambda s: s.replace("_", r"\_").replace("±", r"$\pm$").replace("–", "--")  # noqa: E731
        lines = [r"\begin{tabular}{l" + "r" * len(head) + "}", r"\toprule",
                 " & ".join([""] + [esc(h) for h in head]) + r" \\", r"\midrule"]
        lines += [" & ".join(esc(c) for c in r) + r" \\" for r in rows]
        return "\n".join(lines + [r"\bottomrule", r"\end{tabular}"]) + "\n"
    raise ValueError(f"unknown format {fmt!r}; choose 'markdown' or 'latex'")


def tradeoff_rows(table: pd.DataFrame, family: str, *, index: str = "method") -> pd.DataFrame:
    """One row per method (or alpha) of ``family``: forget / retain hole FID and their sigma
    (bootstrap and seed sd combined), for ``plotting.tradeoff_axes``."""
    t = table[(table["family"] == family) & (table["metric"] == "fid") & (table["region"] == "hole")]
    t = t.assign(err=np.sqrt(t["std"] ** 2 + t["seed_sd"].fillna(0) ** 2))
    w = t.pivot_table(index=index, columns="subset", values=["value", "err"], sort=False)
    out = pd.DataFrame({"forget": w["value", "forget"], "forget_err": w["err", "forget"],
                        "retain": w["value", "retain"], "retain_err": w["err", "retain"]})
    out = out.reset_index()
    if index == "method":
        out["method"] = out["method"].map(lambda m: LABELS.get(m, m))
    return out
