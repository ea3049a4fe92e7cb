"""Varshney & Torra's figures: the motivation grid and the two-stage pipeline with its curves.

* Motivation: forget test images completed by the original, ``li2024`` (Li et al. push forget
  outputs towards noise), ``retrain`` (a model that never saw the forget set: plausible, generic)
  and ``varshney2025``; the same images in every column (``p1_figures.completion_panels``), and
  per method the hole MSE to the ground truth and to the retrained model's completion over all
  the forget test images.
* Pipeline: the measured forget distance d per optimiser step over both stages, with lambda,
  per family (the ``varshney2025`` run of the run store, as in notebook 02).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from l2l.data import make_mask
from l2l.experiments.p1_figures import FIG_TASK, completion_panels
from l2l.experiments.store import completions, test_images, unlearned
from l2l.metrics import hole_mse

MOTIVATION_METHODS = ("original", "li2024", "retrain", "varshney2025")
P2_FAMILIES = ("diffusion", "vqgan", "mae", "autoencoder")


def motivation(cfg, family: str, *, n: int) -> tuple[Any, pd.DataFrame]:
    """(uint8 [2 + 4, n, 3, S, S] forget panel: truth, masked input, ``MOTIVATION_METHODS``;
    numbers: method, hole MSE to the ground truth and to retrain's completion, n_images)."""
    panel = completion_panels(cfg, family, MOTIVATION_METHODS, n=n)["forget"]
    runs = {m: unlearned(cfg, family, m) for m in MOTIVATION_METHODS}
    truth = test_images(runs["original"].cfg, "forget")
    mask = make_mask(FIG_TASK, truth.shape[-1])
    ref = completions(runs["retrain"], FIG_TASK, "forget")
    rows = []
    for m, run in runs.items():
        out = completions(run, FIG_TASK, "forget")
        rows.append({"family": family, "method": m,
                     "mse_to_truth": hole_mse(out, truth, mask).mean().item(),
                     "mse_to_retrain": hole_mse(out, ref, mask).mean().item(),
                     "n_images": len(truth)})
    return panel, pd.DataFrame(rows)


def pipeline_curve(cfg, family: str, **overrides: Any) -> pd.DataFrame:
    """The ``varshney2025`` run's checks of d: family, stage, step (within its stage),
    optimiser step (over both stages), forget_distance, lam, lambda_source."""
    run = unlearned(cfg, family, "varshney2025", **overrides)
    h = run.history.dropna(subset=["forget_distance"]).copy()
    stage1 = run.history.loc[run.history["stage"] == "decouple", "step"]
    offset = int(stage1.max()) + 1 if len(stage1) else 0
    h["optimiser_step"] = h["step"] + h["stage"].eq("retain") * offset
    h["lambda_source"] = run.history.attrs.get("lambda_source", "")
    return h[["stage", "step", "optimiser_step", "forget_distance", "lam",
              "lambda_source"]].assign(family=family)


def pipeline_objects(cfg, family: str) -> dict[str, Any]:
    """What the pipeline schematic draws, read off the stored ``varshney2025`` run."""
    from l2l.bench import varshney_summary
    from l2l.unlearn.varshney import retention_steps

    run = unlearned(cfg, family, "varshney2025")
    s = varshney_summary({(family, "varshney2025"): run.history}).iloc[0]
    u = run.cfg.unlearn
    return {"family": family, "lam": float(s["lam"]), "lambda_source": str(s["lambda_source"]),
            "stage1_steps": int(s["stage1_steps"]), "reached": bool(s["reached"]),
            "ga_lr": u.ga_lr, "ga_check_every": u.ga_check_every,
            "ft_steps": retention_steps(run.cfg), "ft_lr": u.ft_lr, "ft_hinge": u.ft_hinge}


def pipeline_summary(cfg, families: tuple[str, ...] = P2_FAMILIES) -> pd.DataFrame:
    """Per family: lambda and its source, stage-1 steps, whether d reached lambda, d at the stop
    and after retention (``bench.varshney_summary``), and the retain-test hole MSE of the
    original and of ``varshney2025`` (``FIG_TASK``, the run store's completions): what claim
    P2-a reads."""
    from l2l.bench import varshney_summary

    rows = []
    for family in families:
        runs = {m: unlearned(cfg, family, m) for m in ("original", "varshney2025")}
        s = varshney_summary({(family, "varshney2025"): runs["varshney2025"].history})
        truth = test_images(runs["original"].cfg, "retain")
        mask = make_mask(FIG_TASK, truth.shape[-1])
        mse = {m: hole_mse(completions(r, FIG_TASK, "retain"), truth, mask).mean().item()
               for m, r in runs.items()}
        rows.append(s.iloc[0].to_dict() | {"retain_mse_original": mse["original"],
                                           "retain_mse_varshney": mse["varshney2025"],
                                           "n_images": len(truth)})
    return pd.DataFrame(rows)
