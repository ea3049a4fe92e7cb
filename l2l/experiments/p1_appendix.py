"""Li et al.'s appendix experiments (notebooks 30-33), read from the shared run store.

The released code has knobs the main text only mentions (outpainting in i2i_mage ``testpaint.py``,
``--noise_type``, the proxy options; which of them the paper's appendix reports is not
confirmed), and reviewers asked for other crop sizes. Every model below is a run of the store
(``store.unlearned``): the Table 1 runs are reused, only the new variants are trained.

* ``outpainting_table``: bands of k/16 of the side (``outpaint_k``, k = 1..13) on every side,
  every method of Table 1 on the VQ-GAN (the paper's outpainting family) and the MAE;
* ``crop_table``: centred holes of k/16 of the side (``centre_k``, k = 2..12) for the original,
  ``li2024`` and ``retrain`` on every family of Table 1;
* ``noise_table``: ``li2024`` with the noise input drawn "normal", "uniform" or "constant"
  (``unlearn.noise_type``, the released ``--noise_type``), Table 1's task;
* ``retain_table``: ``li2024`` with the real retain set at ``RETAIN_FRACTIONS`` of its size, and
  the proxy retain set of Table 1 alone (fraction 0), Table 1's task; claim P1-f reads it.

The sweeps score ``SWEEP_IMAGES[scale]`` images per subset and point with ``SWEEP_BOOT[scale]``
bootstrap draws (at small scale 200 of the 500 images of Tables 1-2 and 10 of their 50 draws:
the 13 x 8 x 2 outpainting points would otherwise cost more than the whole main table); the
unlearning seed is 0 everywhere (Tables 1-3 have three).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import torch.nn.functional as F

from l2l.config import NOISE_TYPES, RunConfig, replace
from l2l.data import make_mask
from l2l.experiments.p1_tables import (P1_FAMILIES, TABLE_METHODS, _finish, available, cell_rows,
                                       not_available_rows, score, table_provenance)
from l2l.experiments.store import feature_extractor, run_config, unlearned

OUTPAINT_KS = tuple(range(1, 14))
OUTPAINT_FAMILIES = ("vqgan", "mae")
CROP_KS = tuple(range(2, 13))
CROP_METHODS = ("original", "li2024", "retrain")
APPENDIX_TASK = "centre_half"  # Table 1's task: noise type and retain amount
RETAIN_FRACTIONS = (0.0, 0.1, 0.5, 1.0)  # 0 = no real retain image: the proxy set alone
# per subset and point; None: all
SWEEP_IMAGES = {"smoke": None, "small": 200, "paper": None, "paper-dry": 16}
# bootstrap draws; None: the preset's
SWEEP_BOOT = {"smoke": None, "small": 10, "paper": None, "paper-dry": None}
SWEEP_COLUMNS = ["family", "method", "k", "task", "subset", "region", "metric", "value", "std",
                 "n_images", "paper_value", "paper_value_status"]


def crop_task(k: int) -> str:
    """The mask of a k/16 centre hole; k = 8 and 4 are Tables 1-2's tasks (their completions are
    reused where the sweep scores as many images as the tables: smoke and paper scale)."""
    return {8: "centre_half", 4: "centre_quarter"}.get(k, f"centre_{k}")


def sweep(cfg: RunConfig, *, families: tuple[str, ...], methods: tuple[str, ...],
          tasks: dict[int, str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Tidy ``SWEEP_COLUMNS`` rows of every (family, method, k) with k -> task in ``tasks``."""
    if SWEEP_BOOT[cfg.scale] is not None:  # scores only: the runs' keys have no eval part
        cfg = replace(cfg, eval__n_boot=SWEEP_BOOT[cfg.scale])
    ext = feature_extractor(cfg)
    limit = SWEEP_IMAGES[cfg.scale]
    parts, skipped = [], set()
    for family in families:
        template: dict[int, pd.DataFrame] = {}
        for method in methods:
            if not available(cfg, family, method):  # the rows of the last method, no values
                parts += [not_available_rows(t, method) for t in template.values()]
                continue
            run = unlearned(cfg, family, method)
            for k, task in tasks.items():
                if not sees_something(run.model, task, cfg.data.image_size):
                    skipped.add(f"{family} k={k}")
                    continue
                template[k] = score(run, task, ext, limit=limit).assign(
                    family=family, method=method, k=k, task=task, seed_offset=0)
                parts.append(template[k])
    table = _finish(pd.concat(parts, ignore_index=True))[SWEEP_COLUMNS]
    prov = table_provenance(cfg, ext, table, task="per row") | {
        "k": list(tasks), "tasks": dict(tasks), "methods": list(methods),
        "skipped": sorted(skipped) or "none", "skip_rule": "an MAE whose every patch the mask "
                                                            "touches has nothing to encode",
        "unlearning_seed": "seed_offset 0 (one seed per point)",
        "images_per_point": limit or "all test images"}
    prov["seeds"] = {m: [0] for m in methods}
    return table, prov


def sees_something(model, task: str, size: int) -> bool:
    """False for an MAE mask that touches every patch (``MAE`` removes a patch if any of its
    pixels is in the hole, and then has nothing to encode: the widest outpainting band at 32 px
    with 4-px patches); True for every other family and mask."""
    if getattr(model, "family", None) != "mae":
        return True
    p = model.spec.patch_size
    return bool((F.max_pool2d(make_mask(task, size), p, p) <= 0.5).any())


def _ks(ks: tuple[int, ...], scale: str) -> tuple[int, ...]:
    """Every k, except at smoke scale (the notebook test): the first, middle and last."""
    return (ks[0], ks[len(ks) // 2], ks[-1]) if scale == "smoke" else ks


def outpainting_table(cfg: RunConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every Table 1 method on the VQ-GAN and the MAE for outpainting bands k = 1..13."""
    return sweep(cfg, families=OUTPAINT_FAMILIES, methods=TABLE_METHODS,
                 tasks={k: f"outpaint_{k}" for k in _ks(OUTPAINT_KS, cfg.scale)})


def crop_table(cfg: RunConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The original, ``li2024`` and ``retrain`` for centre holes of k/16 of the side, k = 2..12."""
    return sweep(cfg, families=P1_FAMILIES, methods=CROP_METHODS,
                 tasks={k: crop_task(k) for k in _ks(CROP_KS, cfg.scale)})


def _variant_table(cfg: RunConfig, variants: dict[str, tuple[str, dict[str, Any]]],
                   column: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Rows of Table 1's task for each family and each ``variants`` label -> (method,
    overrides), the label in ``column``."""
    ext = feature_extractor(cfg)
    parts = [cell_rows(cfg, family, method, APPENDIX_TASK, ext, **extra).assign(**{column: label})
             for family in P1_FAMILIES for label, (method, extra) in variants.items()]
    table = _finish(pd.concat(parts, ignore_index=True))
    cols = ["family", "method", column] + [c for c in SWEEP_COLUMNS if c not in
                                           ("family", "method", "k")]
    table = table[cols]
    prov = table_provenance(cfg, ext, table, task=APPENDIX_TASK) | {
        "variants": {k: [m, {f: v for f, v in e.items()}] for k, (m, e) in variants.items()},
        "unlearning_seed": "seed_offset 0"}
    return table, prov


def noise_table(cfg: RunConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The original and ``li2024`` with each noise input of ``config.NOISE_TYPES``."""
    variants = {"none (original)": ("original", {})} | {
        kind: ("li2024", {"noise_type": kind}) for kind in NOISE_TYPES}
    table, prov = _variant_table(cfg, variants, "noise_type")
    return table, prov | {"noise_type": "l2l.unlearn.ops.noise_image (uniform: U[0, 1) per "
                                        "pixel; constant: the batch mean; normal: N(batch mean, "
                                        "batch std))"}


def retain_table(cfg: RunConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The original and ``li2024`` with ``RETAIN_FRACTIONS`` of the real retain set; fraction 0
    is ``li2024-proxy`` (Table 1's proxy set, no real retain image)."""
    variants = {"original": ("original", {})}
    for f in RETAIN_FRACTIONS:
        variants[f"{f:g}"] = (("li2024-proxy", {}) if f == 0 else
                              ("li2024", {} if f == 1 else {"retain_fraction": f}))
    table, prov = _variant_table(cfg, variants, "retain_fraction")
    proxies = {f: run_config(cfg, f, "li2024-proxy").unlearn.proxy for f in P1_FAMILIES}
    return table, prov | {"proxy": proxies,
                          "retain_fraction": "share of the real retain images, evenly spaced "
                                             "over the set; 0 = the proxy set alone"}


# ----------------------------------------------------------------------------- claim P1-f
FEW_RETAIN = 0.1  # P1-f: the smallest real retain share tried


def claim_p1f(table: pd.DataFrame) -> list[dict[str, object]]:
    """P1-f: the method "does not rely on the availability of the retain samples": with
    ``FEW_RETAIN`` of the real retain images, the retain hole FID stays within max(10 %,
    2 sigma) of the full-retain run's, per family (the proxy alone is P1-c)."""
    from l2l.experiments.claims import PROXY_TOLERANCE, _row

    def cell(family: str, label: str, subset: str) -> pd.Series:
        t = table[(table["family"] == family) & (table["retain_fraction"] == label)
                  & (table["subset"] == subset) & (table["region"] == "hole")
                  & (table["metric"] == "fid")]
        if len(t) != 1:
            raise ValueError(f"expected one {family}/{label}/{subset} hole FID row, found {len(t)}")
        return t.iloc[0]

    rows = []
    few = f"{FEW_RETAIN:g}"
    for f in table["family"].unique():
        full, part = cell(f, "1", "retain"), cell(f, few, "retain")
        diff = part["value"] - full["value"]
        allowed = max(PROXY_TOLERANCE * full["value"],
                      2 * math.sqrt(full["std"] ** 2 + part["std"] ** 2))
        forget = {lab: cell(f, lab, "forget")["value"] for lab in ("original", few, "1")}
        rows.append(_row(
            f"P1-f[{f}]", "appendix: retain amount", "The method does not rely on the "
            "availability of the retain samples", "retain hole FID (centre_half)",
            f"|{few} x real retain - all| <= max({PROXY_TOLERANCE:.0%}, 2 sigma)",
            f"{full['value']:.2f} -> {part['value']:.2f} ({diff / full['value']:+.1%}, allowed "
            f"{allowed / full['value']:.1%})", abs(diff) <= allowed, 1,
            f"forget hole FID: original {forget['original']:.2f}, {few}: {forget[few]:.2f}, "
            f"all: {forget['1']:.2f}"))
    return rows
